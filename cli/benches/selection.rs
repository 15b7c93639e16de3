//! `offers campaign plan` (release build) on DynamoDB Local:
//!
//! 1. Choice alone: `--dry-run` to /dev/null, pool 50, k 3, one attribute
//!    with 8 values (learning counters for every offer and value), the
//!    process pinned to one core: users per second (target >= 200,000) at
//!    1,000,000 users, and the peak RSS at 1,000,000 and 10,000,000 users
//!    (wait4's ru_maxrss; target: within 10% of each other).
//! 2. End to end: the plan of 100,000 users written to the pending table,
//!    beside a floor: the same rows (the plan's own `--out`) written with
//!    bare BatchWriteItem calls (25 a call, 8 in flight), each side on a
//!    DynamoDB Local process of its own, two rounds in both orders (target:
//!    plan <= 1.1 x floor; the plan's time is the whole command: start,
//!    catalog and statistics reads, the audience's check, the writes).
//!
//! Run: `cargo bench -p offers-cli --bench selection`
//! (`SELECTION_BENCH_PARTS=choice|write`, `SELECTION_BENCH_WRITE_USERS=N`). The audience files
//! (about 40 and 400 MB) are written to a temporary folder, removed at the end.

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures::stream::{self, StreamExt};
use offers_integration_tests::*;
use offers_local::{DynamoDbLocal, StartOptions};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufWriter, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const POOL: usize = 50;
const SEGMENTS: usize = 8;
const THROUGHPUT_USERS: u64 = 1_000_000;
const MEMORY_USERS: [u64; 2] = [1_000_000, 10_000_000];
const WRITE_USERS: u64 = 100_000;

/// `SELECTION_BENCH_WRITE_USERS` overrides the users of the end-to-end part;
/// `SELECTION_BENCH_PARTS` (`choice`, `write`, or both, comma-separated) picks the parts.
fn setting(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}
const IN_FLIGHT: usize = 8;

fn plan_json() -> Value {
    let pool: Vec<Value> = (0..POOL)
        .map(|i| json!({"offerId": format!("co-bench-{i}")}))
        .collect();
    json!({"campaignId": "bench", "pool": pool, "slots": 3, "holdout": 0.1, "seed": 11,
           "startDate": "2024-01-01T00:00:00Z", "expiryDate": future_date(30)})
}

async fn prepare(bed: &TestBed) {
    for i in 0..POOL {
        bed.put(CATALOG, json!({"id": format!("co-bench-{i}"), "kind": "configOffer",
            "name": format!("Bench offer {i}"), "templateId": format!("tpl-bench-{i}"), "rules": {}}))
            .await;
        bed.put(
            CATALOG,
            json!({"id": format!("tpl-bench-{i}"), "kind": "offerTemplate",
            "configOfferId": format!("co-bench-{i}"), "rules": []}),
        )
        .await;
        let pk = format!("offer#co-bench-{i}");
        bed.put(
            "CampaignStatsTable",
            json!({"pk": pk, "sk": "overall", "assigned": 8_000,
            "clicked": 800, "redeemed": 80 + i}),
        )
        .await;
        for s in 0..SEGMENTS {
            let redeemed = if (i + s) % 10 == 0 { 60 } else { 10 + (i % 7) };
            bed.put(
                "CampaignStatsTable",
                json!({"pk": pk, "sk": format!("attr#segment#s{s}"),
                "attribute": "segment", "value": format!("s{s}"),
                "assigned": 1_000, "clicked": 100, "redeemed": redeemed}),
            )
            .await;
        }
    }
}

fn audience(dir: &Path, users: u64) -> PathBuf {
    let path = dir.join(format!("audience-{users}.jsonl"));
    let mut out = BufWriter::new(std::fs::File::create(&path).expect("create audience"));
    for user in 0..users {
        writeln!(
            out,
            r#"{{"userId":"us-east-1:{user:012}","segment":"s{}"}}"#,
            user % SEGMENTS as u64
        )
        .expect("write");
    }
    out.flush().expect("flush");
    path
}

fn offers_command(bed: &TestBed, args: &[&str]) -> Command {
    offers_command_on(&shared_dynamodb().endpoint(), bed, args)
}

fn offers_command_on(endpoint: &str, bed: &TestBed, args: &[&str]) -> Command {
    let prefix = bed
        .table(PENDING)
        .strip_suffix(PENDING)
        .unwrap_or_default()
        .to_owned();
    let mut command = Command::new(env!("CARGO_BIN_EXE_offers"));
    command
        .args(["--endpoint-url", endpoint, "--region", "us-east-1"])
        .args(["--table-prefix", &prefix])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "fake")
        .env("AWS_SECRET_ACCESS_KEY", "fake")
        .env_remove("CAMPAIGN_STATS_TABLE");
    command
}

struct Measure {
    elapsed: Duration,
    peak_rss_kib: i64,
}

/// Runs the command pinned to CPU 0, reaped with wait4 for its own peak RSS.
#[allow(clippy::zombie_processes)]
fn measured(mut command: Command) -> Measure {
    // SAFETY: sched_setaffinity on the child itself between fork and exec,
    // with a cpu_set_t built by the libc macros.
    unsafe {
        command.pre_exec(|| {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            Ok(())
        });
    }
    let started = Instant::now();
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn offers");
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is a child of ours that nobody else reaps.
    let reaped = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let elapsed = started.elapsed();
    assert_eq!(reaped, child.id() as libc::pid_t, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "offers failed: {status}"
    );
    Measure {
        elapsed,
        peak_rss_kib: usage.ru_maxrss,
    }
}

async fn floor_write(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    rows: &Path,
) -> (Duration, usize) {
    let file = std::io::BufReader::new(std::fs::File::open(rows).expect("rows"));
    let requests: Vec<WriteRequest> = file
        .lines()
        .map(|line| {
            let row: Value = serde_json::from_str(&line.expect("line")).expect("row");
            let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(row).expect("item");
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .expect("put"),
                )
                .build()
        })
        .collect();
    let count = requests.len();
    let chunks: Vec<Vec<WriteRequest>> = requests.chunks(25).map(<[_]>::to_vec).collect();
    let started = Instant::now();
    stream::iter(chunks)
        .for_each_concurrent(IN_FLIGHT, |mut chunk| async move {
            while !chunk.is_empty() {
                let output = client
                    .batch_write_item()
                    .request_items(table, chunk)
                    .send()
                    .await
                    .expect("batch write");
                chunk = output
                    .unprocessed_items()
                    .and_then(|items| items.get(table))
                    .cloned()
                    .unwrap_or_default();
            }
        })
        .await;
    (started.elapsed(), count)
}

/// Dry runs: users per second and peak RSS.
fn choice_part(bed: &TestBed, dir: &Path, plan_arg: &str) {
    let mut peaks = Vec::new();
    for users in MEMORY_USERS {
        let file = audience(dir, users);
        let file_arg = file.to_string_lossy().into_owned();
        let measure = measured(offers_command(
            bed,
            &[
                "campaign",
                "plan",
                plan_arg,
                "--audience",
                &file_arg,
                "--dry-run",
            ],
        ));
        std::fs::remove_file(&file).expect("remove audience");
        let rate = users as f64 / measure.elapsed.as_secs_f64();
        println!(
            "  dry run, {users:>10} users on one core: {:>6.1} s, {:>9.0} users/s, peak RSS {:>6.1} MiB",
            measure.elapsed.as_secs_f64(),
            rate,
            measure.peak_rss_kib as f64 / 1024.0
        );
        if users == THROUGHPUT_USERS {
            println!(
                "    users/s target >= 200,000: {}",
                if rate >= 200_000.0 { "met" } else { "NOT met" }
            );
        }
        peaks.push(measure.peak_rss_kib as f64);
    }
    let ratio = peaks[1] / peaks[0];
    println!(
        "  peak RSS 10M / 1M users: {ratio:.3} (target within 10%: {})",
        if (ratio - 1.0).abs() <= 0.10 {
            "met"
        } else {
            "NOT met"
        }
    );
}

/// A DynamoDB Local of its own, with the bench's catalog and statistics.
async fn fresh_side() -> (DynamoDbLocal, TestBed) {
    let local = DynamoDbLocal::start(StartOptions::default()).unwrap_or_else(|err| panic!("{err}"));
    let bed = TestBed::on(&local.endpoint()).await;
    prepare(&bed).await;
    (local, bed)
}

/// The plan's write beside bare BatchWriteItem calls of the same rows. Each
/// side gets a DynamoDB Local process of its own, prepared alike: DynamoDB
/// Local's cost per write grows with the stream records it holds (also
/// those of dropped tables), so a shared one would charge the second
/// writer for the first one's rows. Two rounds, in both orders.
async fn write_part(bed: &TestBed, dir: &Path, plan_arg: &str, users: u64) {
    let file = audience(dir, users);
    let file_arg = file.to_string_lossy().into_owned();
    let rows = dir.join("rows.jsonl");
    let rows_arg = rows.to_string_lossy().into_owned();
    let status = offers_command(
        bed,
        &[
            "campaign",
            "plan",
            plan_arg,
            "--audience",
            &file_arg,
            "--out",
            &rows_arg,
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .status()
    .expect("plan --out");
    assert!(status.success());
    let count = std::fs::read_to_string(&rows)
        .expect("rows")
        .lines()
        .count();

    let floor_side = || async {
        let (_local, bed) = fresh_side().await;
        let (floor, written) = floor_write(&bed.client, bed.table(PENDING), &rows).await;
        assert_eq!(bed.count(PENDING).await, written as u64);
        floor
    };
    let plan_side = || async {
        let (local, bed) = fresh_side().await;
        let log = dir.join("plan.log");
        let started = Instant::now();
        let status = offers_command_on(
            &local.endpoint(),
            &bed,
            &["campaign", "plan", plan_arg, "--audience", &file_arg],
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .status()
        .expect("plan");
        let elapsed = started.elapsed();
        let written = bed.count(PENDING).await;
        if !status.success() || written != count as u64 {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("the plan wrote {written} of {count} rows ({status}):\n{text}");
        }
        elapsed
    };
    for round in 0..2 {
        let (plan_time, floor) = if round == 0 {
            let floor = floor_side().await;
            (plan_side().await, floor)
        } else {
            let plan_time = plan_side().await;
            (plan_time, floor_side().await)
        };
        let ratio = plan_time.as_secs_f64() / floor.as_secs_f64();
        println!(
            "  plan of {users} users ({count} rows) to DynamoDB Local: {:.1} s; bare BatchWriteItem of the same rows: {:.1} s; ratio {ratio:.3} (target <= 1.1: {}){}",
            plan_time.as_secs_f64(),
            floor.as_secs_f64(),
            if ratio <= 1.1 { "met" } else { "NOT met" },
            if round == 0 { "" } else { " (plan first)" }
        );
    }
}

#[tokio::main]
async fn main() {
    let parts = setting("SELECTION_BENCH_PARTS").unwrap_or_else(|| "choice,write".into());
    let write_users = setting("SELECTION_BENCH_WRITE_USERS")
        .map(|text| {
            text.parse::<u64>()
                .expect("SELECTION_BENCH_WRITE_USERS: a number")
        })
        .unwrap_or(WRITE_USERS);
    let dir = std::env::temp_dir().join(format!("offers-selection-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bed = TestBed::new().await;
    prepare(&bed).await;
    let plan = dir.join("plan.json");
    std::fs::write(&plan, plan_json().to_string()).expect("plan");
    let plan_arg = plan.to_string_lossy().into_owned();

    println!("offers campaign plan (release build; pool {POOL}, k 3, {SEGMENTS} attribute values, holdout 0.1)");
    if parts.split(',').any(|part| part == "choice") {
        choice_part(&bed, &dir, &plan_arg);
    }
    if parts.split(',').any(|part| part == "write") {
        write_part(&bed, &dir, &plan_arg, write_users).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
