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
//! what was run on the 2-core machine). `PLAN_BENCH_CHUNKS` (4) chunks at
//! once and `PLAN_BENCH_CHUNK_WRITES` (8) calls in flight each vary the
//! plan-chunk path, to tell DynamoDB Local's contention from the path's
//! own cost. Progress every 30 s; DynamoDB Local's CPU from
//! `/proc/<pid>/stat`, as tests/benches/dispatch.rs measures it.
//!
//! Run (the binaries of the profile it is built with):
//! `cargo build --workspace --bins && PLAN_BENCH_USERS=1000000 cargo test -p offers-integration-tests --bench distributed_plan`

use offers_integration_tests::*;
use offers_local::{DynamoDbLocal, StartOptions};
use offers_shared::local_conventions::LOCAL_PLAN_BUCKET;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// `offers campaign plan PLAN --audience AUDIENCE --allow-cold` on `stack`.
fn plan_command(stack: &PlanStack, bed: &TestBed, plan: &Path, audience: &str) -> Command {
    let offers = function_binary("offers");
    stack.offers(
        offers.to_str().expect("UTF-8 path"),
        bed,
        &[
            "campaign",
            "plan",
            plan.to_str().expect("path"),
            "--audience",
            audience,
            "--allow-cold",
        ],
    )
}

fn seconds(cpu: CpuTime) -> f64 {
    (cpu.user + cpu.system).as_secs_f64()
}

/// One run: its wall time, DynamoDB Local's CPU and the command's own CPU;
/// progress (elapsed, DynamoDB Local's CPU so far, load) every 30 s.
struct Run {
    seconds: f64,
    dynamodb_cpu: CpuTime,
    command_cpu: CpuTime,
}

fn run(label: &str, mut command: Command, dynamodb_pid: u32) -> Run {
    let dynamodb_before = CpuTime::of_process(dynamodb_pid);
    let children_before = CpuTime::of_ended_children();
    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let reporter = {
        let done = done.clone();
        let label = label.to_owned();
        std::thread::spawn(move || {
            let mut next = Duration::from_secs(30);
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(200));
                if started.elapsed() >= next {
                    next += Duration::from_secs(30);
                    let cpu = CpuTime::of_process(dynamodb_pid).since(dynamodb_before);
                    println!(
                        "    {label}: {:.0} s, DynamoDB Local {:.0} CPU-s so far, load {}",
                        started.elapsed().as_secs_f64(),
                        seconds(cpu),
                        load_average()
                    );
                }
            }
        })
    };
    let output = command.output().expect("offers runs");
    let seconds = started.elapsed().as_secs_f64();
    done.store(true, Ordering::SeqCst);
    let _ = reporter.join();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Run {
        seconds,
        dynamodb_cpu: CpuTime::of_process(dynamodb_pid).since(dynamodb_before),
        command_cpu: CpuTime::of_ended_children().since(children_before),
    }
}

fn main() {
    run_bench(async {
        let users: u64 = std::env::var("PLAN_BENCH_USERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1_000_000);
        let rows = users * ROWS_PER_USER;
        let setting = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| value.parse::<u32>().is_ok_and(|n| n > 0))
                .unwrap_or_else(|| default.to_owned())
        };
        let chunks = setting("PLAN_BENCH_CHUNKS", "4");
        let chunk_writes = setting("PLAN_BENCH_CHUNK_WRITES", "8");
        let text = audience(users);
        let file = write_file("audience.jsonl", &text);
        // Each path on a DynamoDB Local of its own: the second path on the
        // first's JVM measured the order, not the path (docs/benchmarks.md).
        let fresh = || {
            let local =
                DynamoDbLocal::start(StartOptions::default()).unwrap_or_else(|err| panic!("{err}"));
            let (endpoint, pid) = (local.endpoint(), local.pid().expect("DynamoDB Local runs"));
            (local, endpoint, pid)
        };
        let (_in_process_local, endpoint, dynamodb_pid) = fresh();
        println!(
            "distributed plan vs in-process plan: {users} users, {rows} rows (load {})",
            load_average()
        );

        // The CLI's own process.
        let bed = TestBed::on(&endpoint).await;
        bed.load_sample_catalog().await;
        let stack = PlanStack::start(
            &bed,
            &[("PlanChunkUsers", "1000"), ("PlanMaxConcurrency", "4")],
            &endpoint,
            "8",
        )
        .await;
        let plan_file = plan("bench-in-process");
        println!("  in-process plan started");
        let in_process = run(
            "in-process",
            plan_command(&stack, &bed, &plan_file, file.to_str().expect("path")),
            dynamodb_pid,
        );
        assert_eq!(bed.count(PENDING).await, rows);
        drop(stack);

        // The plan-chunk path, on a DynamoDB Local of its own.
        let (_chunk_local, endpoint, dynamodb_pid) = fresh();
        let bed = TestBed::on(&endpoint).await;
        bed.load_sample_catalog().await;
        let stack = PlanStack::start(
            &bed,
            &[("PlanChunkUsers", "1000"), ("PlanMaxConcurrency", &chunks)],
            &endpoint,
            &chunk_writes,
        )
        .await;
        let url = stack.put_audience("audiences/bench.jsonl", &text).await;
        let plan_file = plan("bench-distributed");
        let chunk_pids = stack.recording.function.pids();
        let chunks_before: Vec<CpuTime> = chunk_pids
            .iter()
            .map(|pid| CpuTime::of_process(*pid))
            .collect();
        println!("  plan-chunk path started");
        let distributed = run(
            "plan-chunk",
            plan_command(&stack, &bed, &plan_file, &url),
            dynamodb_pid,
        );
        let chunks_cpu = chunk_pids
            .iter()
            .zip(&chunks_before)
            .map(|(pid, before)| CpuTime::of_process(*pid).since(*before))
            .fold(CpuTime::default(), |sum, cpu| CpuTime {
                user: sum.user + cpu.user,
                system: sum.system + cpu.system,
            });
        assert_eq!(bed.count(PENDING).await, rows);
        let most = stack
            .recording
            .most_in_flight
            .load(std::sync::atomic::Ordering::SeqCst);
        assert!(url.starts_with(&format!("s3://{LOCAL_PLAN_BUCKET}/")));

        let rate = |run: &Run| rows as f64 / run.seconds;
        let per_row_us = |cpu: CpuTime| seconds(cpu) * 1e6 / rows as f64;
        let describe = |run: &Run| {
            format!(
                "{:.1} s, {:.0} rows/s; DynamoDB Local {:.0} CPU-s ({:.0} us a row, {:.2} cores)",
                run.seconds,
                rate(run),
                seconds(run.dynamodb_cpu),
                per_row_us(run.dynamodb_cpu),
                seconds(run.dynamodb_cpu) / run.seconds
            )
        };
        println!(
            "  in-process (one process, 8 calls in flight): {}; the CLI {:.1} CPU-s ({:.0} us a row)",
            describe(&in_process),
            seconds(in_process.command_cpu),
            per_row_us(in_process.command_cpu)
        );
        println!(
            "  plan-chunk (chunks of 1,000 users, {most} of {chunks} at once, {chunk_writes} calls in flight each): {}; plan-chunk {:.1} CPU-s ({:.0} us a row), the CLI following it {:.1} CPU-s",
            describe(&distributed),
            seconds(chunks_cpu),
            per_row_us(chunks_cpu),
            seconds(distributed.command_cpu)
        );
        println!(
            "  ratio plan-chunk / in-process: {:.2}x (load {})",
            in_process.seconds / distributed.seconds,
            load_average()
        );
    });
}
