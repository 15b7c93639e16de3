//! The campaign webhook against a floor measured in the same run, on
//! DynamoDB Local.
//!
//! Requests of 500 assignments each (distinct users and sort keys, one new
//! delivery id each) go through the handler as main.rs wires it: signature,
//! JSON, validation (the dispatcher's parser and the catalog, warm cache),
//! the delivery's claim, the rows with BatchWriteItem, the completion. The
//! floor is bare BatchWriteItem of the same rows (as DynamoDB items already),
//! 25 a call, at the handler's concurrency, request after request. Each side
//! gets a fresh DynamoDB Local and uncounted warm-up requests (its JVM
//! settles on the first workload it serves).
//! Run: `bash scripts/bench.sh`.

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use futures::stream::{self, StreamExt};
use offers_integration_tests::*;
use offers_local::{DynamoDbLocal, StartOptions};
use offers_shared::dynamo::WEBHOOK_ROW_WRITE_CONCURRENCY;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ASSIGNMENTS: usize = 500;
const REQUESTS: usize = 20;
const WARM_UP_REQUESTS: usize = 4;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let handler = measure_handler(&fresh_dynamodb()).await;
    let floor = measure_floor(&fresh_dynamodb()).await;
    let rows = (REQUESTS * ASSIGNMENTS) as f64;
    let percentile = |times: &[Duration], p: f64| {
        let mut sorted = times.to_vec();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[index].as_secs_f64() * 1000.0
    };
    let total = |times: &[Duration]| times.iter().sum::<Duration>().as_secs_f64();
    println!(
        "webhook bench: {REQUESTS} requests of {ASSIGNMENTS} assignments, {} chunks of 25 in flight",
        WEBHOOK_ROW_WRITE_CONCURRENCY
    );
    println!(
        "  handler:  {:>7.0} rows/s  ({:.2} s; per request p50 {:.1} ms, p95 {:.1} ms)",
        rows / total(&handler),
        total(&handler),
        percentile(&handler, 0.5),
        percentile(&handler, 0.95)
    );
    println!(
        "  floor:    {:>7.0} rows/s  ({:.2} s, bare BatchWriteItem of the same rows; per request p50 {:.1} ms)",
        rows / total(&floor),
        total(&floor),
        percentile(&floor, 0.5)
    );
    println!(
        "  ratio handler/floor: {:.3}  (target <= 1.15)",
        total(&handler) / total(&floor)
    );
}

fn fresh_dynamodb() -> DynamoDbLocal {
    DynamoDbLocal::start(StartOptions::default()).unwrap_or_else(|err| panic!("{err}"))
}

/// The assignments of request `request` of round `round`.
fn assignments(round: &str, request: usize) -> Vec<Value> {
    (0..ASSIGNMENTS)
        .map(|i| {
            fries_row(
                &format!("bench-{round}-{request}-{}", i % 100),
                &format!("camp-bench+co-fries-{i}"),
            )
        })
        .collect()
}

fn body(assignments: &[Value]) -> Vec<u8> {
    json!({ "assignments": assignments })
        .to_string()
        .into_bytes()
}

async fn measure_handler(local: &DynamoDbLocal) -> Vec<Duration> {
    let bed = TestBed::on(&local.endpoint()).await;
    bed.load_sample_catalog().await;
    let webhook = bed.webhook(&[]).await;
    let mut times = Vec::with_capacity(REQUESTS);
    for (round, count) in [("warm", WARM_UP_REQUESTS), ("run", REQUESTS)] {
        for request in 0..count {
            let body = body(&assignments(round, request));
            let event = signed_webhook_event(&body, &format!("bench-{round}-{request}"));
            let started = Instant::now();
            let answer = call_webhook(&webhook, &event).await;
            let time = started.elapsed();
            assert_eq!(answer.status, 202, "{:?}", answer.body);
            assert_eq!(answer.body["accepted"], ASSIGNMENTS);
            if round == "run" {
                times.push(time);
            }
        }
    }
    let written = bed.scan(PENDING).await.len();
    assert_eq!(written, (WARM_UP_REQUESTS + REQUESTS) * ASSIGNMENTS);
    times
}

async fn measure_floor(local: &DynamoDbLocal) -> Vec<Duration> {
    let bed = TestBed::on(&local.endpoint()).await;
    let table = bed.table(PENDING).to_owned();
    let mut times = Vec::with_capacity(REQUESTS);
    for (round, count) in [("warm", WARM_UP_REQUESTS), ("run", REQUESTS)] {
        for request in 0..count {
            let chunks: Vec<Vec<WriteRequest>> = assignments(round, request)
                .chunks(25)
                .map(|chunk| {
                    chunk
                        .iter()
                        .map(|row| {
                            let item = serde_dynamo::to_item(row).expect("item");
                            WriteRequest::builder()
                                .put_request(
                                    PutRequest::builder()
                                        .set_item(Some(item))
                                        .build()
                                        .expect("put"),
                                )
                                .build()
                        })
                        .collect()
                })
                .collect();
            let started = Instant::now();
            stream::iter(chunks)
                .map(|chunk| {
                    let client = bed.client.clone();
                    let table = table.clone();
                    async move {
                        let mut left = chunk;
                        while !left.is_empty() {
                            let output = client
                                .batch_write_item()
                                .request_items(&table, left)
                                .send()
                                .await
                                .expect("batch write");
                            left = output
                                .unprocessed_items
                                .and_then(|mut items| items.remove(&table))
                                .unwrap_or_default();
                        }
                    }
                })
                .buffer_unordered(WEBHOOK_ROW_WRITE_CONCURRENCY)
                .collect::<Vec<()>>()
                .await;
            if round == "run" {
                times.push(started.elapsed());
            }
        }
    }
    assert_eq!(
        bed.scan(PENDING).await.len(),
        (WARM_UP_REQUESTS + REQUESTS) * ASSIGNMENTS
    );
    times
}
