//! Through the running local stack (release binaries):
//!
//! 1. `offers assign` of 10,000 rows (the whole CLI: validation pass, write
//!    pass, process start) beside a floor: the same number of rows written
//!    with bare BatchWriteItem calls (25 rows each, the CLI's default 8 in
//!    flight) into the same table, in the same run. The floor runs before and
//!    after the CLI (after an uncounted warm-up) and their mean is the floor,
//!    so that neither side gains from going second.
//! 2. The latency from a pending row's insert to its offer being visible
//!    over HTTP (`GET /rewards/offers` as its owner), p50 and p99 over
//!    sequential single rows. It includes the template's batching window
//!    (1 s), which dominates it by design.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p offers-integration-tests --bench stack`

use aws_sdk_dynamodb::types::AttributeValue;
use offers_integration_tests::*;
use offers_local::conventions::LOCAL_TABLE_PREFIX;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const ROWS: usize = 10_000;
const WARM_UP_ROWS: usize = 1_000;
const IN_FLIGHT: usize = 8;
const LATENCY_SAMPLES: usize = 60;

fn row(run: &str, index: usize, expiry: &str) -> Value {
    json!({
        "userId": format!("{run}-user-{}", index % 500),
        "sortKey": format!("{run}-camp+{index}"),
        "offerId": "co-fries",
        "campaignId": format!("{run}-camp"),
        "startDate": "2026-01-01T00:00:00Z",
        "expiryDate": expiry,
        "rank": (index % 50) as i64,
        "rules": {"minimumSpend": 3},
        "ttl": future_epoch(30),
    })
}

/// Bare BatchWriteItem: chunks of 25, `IN_FLIGHT` at once, unprocessed items resent.
async fn floor_write(client: &aws_sdk_dynamodb::Client, table: &str, rows: Vec<Value>) -> Duration {
    let chunks = put_request_chunks(&rows);
    let started = Instant::now();
    batch_write(client, table, chunks, IN_FLIGHT).await;
    started.elapsed()
}

async fn wait_until_nothing_pending(client: &aws_sdk_dynamodb::Client, table: &str) {
    let started = Instant::now();
    loop {
        let count = client
            .scan()
            .table_name(table)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .send()
            .await
            .map(|output| output.count())
            .unwrap_or(1);
        if count == 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "rows stay pending"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir().join(format!("offers-stack-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let stack = LocalStack::start(&dir.join("data"));
    let sdk = offers_local::local_sdk_config(&stack.dynamodb).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let pending = format!("{LOCAL_TABLE_PREFIX}PendingPersonalizedOffersTable");
    let expiry = future_date(30);

    // Warm-up: DynamoDB Local's JVM, the functions, the catalog caches.
    let warm_up: Vec<Value> = (0..WARM_UP_ROWS).map(|i| row("warm", i, &expiry)).collect();
    floor_write(&client, &pending, warm_up).await;
    wait_until_nothing_pending(&client, &pending).await;

    let floor_before = floor_write(
        &client,
        &pending,
        (0..ROWS).map(|i| row("floor1", i, &expiry)).collect(),
    )
    .await;
    wait_until_nothing_pending(&client, &pending).await;

    let file = dir.join("rows.jsonl");
    let lines: Vec<String> = (0..ROWS)
        .map(|i| row("cli", i, &expiry).to_string())
        .collect();
    std::fs::write(&file, lines.join("\n") + "\n").expect("rows file");
    let started = Instant::now();
    let (code, output) = stack.offers(&["assign", &file.to_string_lossy()]);
    let cli = started.elapsed();
    assert_eq!(code, 0, "{output}");
    wait_until_nothing_pending(&client, &pending).await;

    let floor_after = floor_write(
        &client,
        &pending,
        (0..ROWS).map(|i| row("floor2", i, &expiry)).collect(),
    )
    .await;
    wait_until_nothing_pending(&client, &pending).await;
    let floor = (floor_before + floor_after) / 2;

    // Insert to visible: one row at a time, each for a user of its own.
    let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
    for sample in 0..LATENCY_SAMPLES {
        let user = format!("latency-user-{sample}");
        let mut one = row("latency", sample, &expiry);
        one["userId"] = json!(user);
        let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(one).expect("item");
        let started = Instant::now();
        client
            .put_item()
            .table_name(&pending)
            .set_item(Some(item))
            .send()
            .await
            .expect("put pending row");
        loop {
            let (status, body) = stack.get("/rewards/offers", &user);
            if status == 200 && body["offers"].as_array().is_some_and(|o| !o.is_empty()) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "offer never visible"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();

    let rate = |elapsed: Duration| ROWS as f64 / elapsed.as_secs_f64();
    println!(
        "stack bench: {ROWS} rows, {IN_FLIGHT} BatchWriteItem calls in flight, release binaries"
    );
    println!(
        "  offers assign      {:>9.0} rows/s  ({:.2} s, validation + write + process start)",
        rate(cli),
        cli.as_secs_f64()
    );
    println!(
        "  BatchWriteItem     {:>9.0} rows/s  ({:.2} s before, {:.2} s after the CLI; floor = mean)",
        rate(floor),
        floor_before.as_secs_f64(),
        floor_after.as_secs_f64()
    );
    println!(
        "  ratio              {:>9.2}  (CLI time / floor time)",
        cli.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "  insert -> visible  p50 {:.0} ms, p99 {:.0} ms over {LATENCY_SAMPLES} rows (batching window 1 s)",
        millis(percentile(&latencies, 0.50)),
        millis(percentile(&latencies, 0.99))
    );
    drop(stack);
    let _ = std::fs::remove_dir_all(&dir);
}
