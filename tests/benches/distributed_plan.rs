//! The distributed plan (`offers campaign plan --audience s3://...`: the
//! template's state machine in the local Step Functions stand-in, chunks of
//! 1,000 users, 4 plan-chunk invocations at once, each writing with 8
//! BatchWriteItem calls in flight) against the CLI's in-process plan of the
//! same audience file (one process, `--concurrency 8`), on one DynamoDB
//! Local: users, rows, seconds from the command's start to its end, rows/s
//! and their ratio. Both write the same rows (2 a user); DynamoDB Local takes
//! every write of both, so it is what bounds them on one machine.
//!
//! `PLAN_BENCH_USERS` users (default 1,000,000; docs/benchmarks.md says
//! what was run on the 2-core machine).
//!
//! Run (the binaries of the profile it is built with):
//! `cargo build --workspace --bins && PLAN_BENCH_USERS=1000000 cargo test -p offers-integration-tests --bench distributed_plan`

use offers_integration_tests::*;
use offers_shared::local_conventions::LOCAL_PLAN_BUCKET;
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

const ROWS_PER_USER: u64 = 2;

fn write_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("offers-plan-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn plan(campaign_id: &str) -> PathBuf {
    let plan = json!({
        "campaignId": campaign_id,
        "pool": [
            {"offerId": "co-fries", "rules": {"minimumSpend": 4}},
            {"offerId": "co-coffee"},
            {"offerId": "290fb746-9850-4994-b7d7-5630046792e1"}
        ],
        "slots": ROWS_PER_USER,
        "startDate": "2024-01-01T00:00:00Z",
        "expiryDate": future_date(30),
        "holdout": 0.1,
        "seed": 11
    });
    write_file(&format!("{campaign_id}.json"), &plan.to_string())
}

fn audience(users: u64) -> String {
    let mut text = String::with_capacity(users as usize * 48);
    for i in 0..users {
        let tier = ["gold", "silver", "bronze"][(i % 3) as usize];
        text.push_str(&format!(
            "{{\"userId\":\"bench-user-{i}\",\"tier\":\"{tier}\"}}\n"
        ));
    }
    text
}

fn run(mut command: Command) -> f64 {
    let started = Instant::now();
    let output = command.output().expect("offers runs");
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    seconds
}

fn main() {
    run_bench(async {
        let users: u64 = std::env::var("PLAN_BENCH_USERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1_000_000);
        let rows = users * ROWS_PER_USER;
        let text = audience(users);
        let file = write_file("audience.jsonl", &text);
        let endpoint = shared_dynamodb().endpoint();
        let offers = function_binary("offers");
        let offers = offers.to_str().expect("UTF-8 path");
        println!("distributed plan vs in-process plan: {users} users, {rows} rows");

        // The CLI's own process.
        let bed = TestBed::new().await;
        bed.load_sample_catalog().await;
        let stack = PlanStack::start(
            &bed,
            &[("PlanChunkUsers", "1000"), ("PlanMaxConcurrency", "4")],
            &endpoint,
            "8",
        )
        .await;
        let plan_file = plan("bench-in-process");
        let in_process = run(stack.offers(
            offers,
            &bed,
            &[
                "campaign",
                "plan",
                plan_file.to_str().expect("path"),
                "--audience",
                file.to_str().expect("path"),
                "--allow-cold",
            ],
        ));
        assert_eq!(bed.count(PENDING).await, rows);
        drop(stack);

        // The plan-chunk path, on tables of its own.
        let bed = TestBed::new().await;
        bed.load_sample_catalog().await;
        let stack = PlanStack::start(
            &bed,
            &[("PlanChunkUsers", "1000"), ("PlanMaxConcurrency", "4")],
            &endpoint,
            "8",
        )
        .await;
        let url = stack.put_audience("audiences/bench.jsonl", &text).await;
        let plan_file = plan("bench-distributed");
        let distributed = run(stack.offers(
            offers,
            &bed,
            &[
                "campaign",
                "plan",
                plan_file.to_str().expect("path"),
                "--audience",
                &url,
                "--allow-cold",
            ],
        ));
        assert_eq!(bed.count(PENDING).await, rows);
        let most = stack
            .recording
            .most_in_flight
            .load(std::sync::atomic::Ordering::SeqCst);
        assert!(url.starts_with(&format!("s3://{LOCAL_PLAN_BUCKET}/")));

        let rate = |seconds: f64| rows as f64 / seconds;
        println!(
            "  in-process (one process, 8 calls in flight): {in_process:.1} s, {:.0} rows/s",
            rate(in_process)
        );
        println!(
            "  plan-chunk (chunks of 1,000 users, {most} of 4 at once, 8 calls in flight each): {distributed:.1} s, {:.0} rows/s",
            rate(distributed)
        );
        println!(
            "  ratio plan-chunk / in-process: {:.2}x",
            in_process / distributed
        );
    });
}
