//! The dispatcher through the running local stack with the mapping's
//! `ParallelizationFactor` 1 and 4 (`local-stack --parameter
//! DispatcherParallelizationFactor=N`): rows/s from the first pending row
//! written to the last offer made, and that every row became exactly one
//! offer (each row has an `assignmentId`; the offers of the run are scanned
//! and matched to the rows one to one; nothing rejected, nothing sent to the
//! on-failure destination, nothing left pending).
//!
//! The mapping retries a batch up to 10,000 times here (the parameter's
//! maximum) instead of the template's 10: on a loaded machine DynamoDB Local
//! times out often, and a row given up on would end the run.
//!
//! Each measurement gets a fresh stack and an uncounted warm-up; the factors
//! alternate (1, 4, 4, 1, ...) over `PARALLEL_BENCH_ROUNDS` rounds (default
//! 2), so that other load on the machine weighs on both alike.
//!
//! Run (the binaries of the profile it is built with; the figures in
//! docs/benchmarks.md are of debug binaries):
//! `cargo build --workspace --bins && cargo test -p offers-integration-tests --bench parallel_dispatch`

use offers_integration_tests::*;
use offers_local::conventions::LOCAL_TABLE_PREFIX;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const USERS: usize = 200;
const ROWS_PER_USER: usize = 10;
const ROWS: usize = USERS * ROWS_PER_USER;
const WARM_UP_ROWS: usize = 500;
/// BatchWriteItem calls in flight while the rows are written (as `offers assign`).
const IN_FLIGHT: usize = 8;
/// A bound on the wait for the dispatch, not a timed assertion.
const SETTLE: Duration = Duration::from_secs(1_800);

fn row(run: &str, index: usize, expiry: &str) -> Value {
    json!({
        "userId": format!("{run}-user-{}", index % USERS),
        "sortKey": format!("{run}-camp+{index}"),
        "assignmentId": format!("{run}-{index}"),
        "offerId": "co-fries",
        "campaignId": format!("{run}-camp"),
        "startDate": "2026-01-01T00:00:00Z",
        "expiryDate": expiry,
        "rank": (index % 50) as i64,
        "rules": {"minimumSpend": 3},
        "ttl": future_epoch(30),
    })
}

/// Every item of a table, as JSON.
async fn scan_all(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        items.extend(
            page.items()
                .iter()
                .map(|item| serde_dynamo::from_item(item.clone()).expect("item as JSON")),
        );
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return items;
        }
    }
}

/// Offers of `run` by assignment id, once the pending table is empty.
async fn wait_until_dispatched(
    client: &aws_sdk_dynamodb::Client,
    run: &str,
    rows: usize,
) -> Vec<Value> {
    let pending = format!("{LOCAL_TABLE_PREFIX}PendingPersonalizedOffersTable");
    let offers = format!("{LOCAL_TABLE_PREFIX}LoyaltyOffersTable");
    let started = Instant::now();
    loop {
        let left = client
            .scan()
            .table_name(&pending)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .send()
            .await
            .map(|output| output.count())
            .unwrap_or(1);
        if left == 0 {
            let made: Vec<Value> = scan_all(client, &offers)
                .await
                .into_iter()
                .filter(|offer| {
                    offer["userId"]
                        .as_str()
                        .is_some_and(|user| user.starts_with(&format!("{run}-user-")))
                })
                .collect();
            // The pending row goes with its offer in one transaction: none
            // left means every row has its outcome.
            if made.len() >= rows {
                return made;
            }
        }
        assert!(started.elapsed() < SETTLE, "rows stay pending");
        // Not more often: a count is a scan, and DynamoDB Local is what is measured.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

struct Measurement {
    factor: usize,
    elapsed: Duration,
}

async fn measure(factor: usize, round: usize) -> Measurement {
    let dir = std::env::temp_dir().join(format!(
        "offers-parallel-bench-{}-{factor}-{round}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let parameter = format!("DispatcherParallelizationFactor={factor}");
    // A loaded machine times DynamoDB Local out often (the dispatcher's 2 s
    // attempt timeout): records are retried until done instead of going to
    // the on-failure destination after 10 retries, so that every run ends
    // with every row an offer and the rate includes the retries.
    let retries = "DispatcherMaximumRetryAttempts=10000";
    let stack = LocalStack::start_with(&dir.join("data"), &[&parameter, retries]);
    assert!(
        stack
            .banner
            .iter()
            .any(|line| line.contains(&format!("OfferDispatcherFunction x{factor}"))),
        "{:?}",
        stack.banner
    );
    let sdk = offers_local::local_sdk_config(&stack.dynamodb).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let pending = format!("{LOCAL_TABLE_PREFIX}PendingPersonalizedOffersTable");
    let expiry = future_date(30);

    // Warm-up: DynamoDB Local's JVM, every dispatcher process, the catalog caches.
    let warm_up: Vec<Value> = (0..WARM_UP_ROWS).map(|i| row("warm", i, &expiry)).collect();
    batch_write(&client, &pending, put_request_chunks(&warm_up), IN_FLIGHT).await;
    wait_until_dispatched(&client, "warm", WARM_UP_ROWS).await;

    let run = format!("pf{factor}r{round}");
    let rows: Vec<Value> = (0..ROWS).map(|i| row(&run, i, &expiry)).collect();
    let started = Instant::now();
    batch_write(&client, &pending, put_request_chunks(&rows), IN_FLIGHT).await;
    let offers = wait_until_dispatched(&client, &run, ROWS).await;
    let elapsed = started.elapsed();

    // Exactly one offer per row: matched one to one by assignment.
    let mut by_assignment: BTreeMap<String, usize> = BTreeMap::new();
    for offer in &offers {
        let assignment = offer["assignmentId"].as_str().unwrap_or("(none)");
        *by_assignment.entry(assignment.to_owned()).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = rows
        .iter()
        .filter_map(|row| row["assignmentId"].as_str())
        .map(|id| (id.to_owned(), 1))
        .collect();
    assert_eq!(
        by_assignment.len(),
        ROWS,
        "offers of {} assignments",
        by_assignment.len()
    );
    assert!(
        by_assignment == expected,
        "an assignment without exactly one offer"
    );
    let (code, output) = stack.offers(&["status", "--json"]);
    assert_eq!(code, 0, "{output}");
    let status: Value = serde_json::from_str(&output).expect("status JSON");
    assert_eq!(status["pendingRows"], 0, "{status}");
    assert_eq!(status["rejectedRows"]["total"], 0, "{status}");
    assert_eq!(status["failures"]["records"], 0, "{status}");
    drop(stack);
    let _ = std::fs::remove_dir_all(&dir);
    Measurement { factor, elapsed }
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("PARALLEL_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2);
    let mut measurements = Vec::new();
    for round in 0..rounds {
        let order = if round % 2 == 0 { [1, 4] } else { [4, 1] };
        for factor in order {
            let measurement = measure(factor, round).await;
            println!(
                "  round {round}: ParallelizationFactor {factor}: {ROWS} rows in {:.2} s ({:.0} rows/s), one offer each",
                measurement.elapsed.as_secs_f64(),
                ROWS as f64 / measurement.elapsed.as_secs_f64()
            );
            measurements.push(measurement);
        }
    }
    let mean_rate = |factor: usize| {
        let times: Vec<f64> = measurements
            .iter()
            .filter(|m| m.factor == factor)
            .map(|m| m.elapsed.as_secs_f64())
            .collect();
        ROWS as f64 * times.len() as f64 / times.iter().sum::<f64>()
    };
    let (one, four) = (mean_rate(1), mean_rate(4));
    println!(
        "parallel dispatch bench: {ROWS} rows ({USERS} users x {ROWS_PER_USER}) a measurement, {rounds} rounds, batch 100, window 1 s, retries until done"
    );
    println!("  ParallelizationFactor 1  {one:>7.0} rows/s");
    println!("  ParallelizationFactor 4  {four:>7.0} rows/s");
    println!("  ratio 4 / 1              {:>7.2}", four / one);
    println!("  every row exactly one offer (matched by assignmentId), no rejection, no failure, none pending");
}
