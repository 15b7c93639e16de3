//! The campaign webhook against a floor measured in the same run, on
//! DynamoDB Local.
//!
//! Requests of 500 assignments each (distinct users and sort keys, one new
//! delivery id each) go through the handler as main.rs wires it: signature,
//! JSON, validation (the dispatcher's parser and the catalog, warm cache),
//! the delivery's claim, the rows with BatchWriteItem, the completion. The
//! floor is bare BatchWriteItem of the same rows (as DynamoDB items already),
//! 25 a call, at the handler's concurrency. Each side gets a fresh DynamoDB
//! Local and uncounted warm-up requests (its JVM settles on the first
//! workload it serves); the measured requests alternate between the sides,
//! so that other load on the machine slows both alike. Printed: the ratio of
//! the totals and the median of the per-request ratios.
//! Run: `bash scripts/bench.sh`.

use futures::stream::{self, StreamExt};
use offers_integration_tests::*;
use offers_local::{DynamoDbLocal, StartOptions};
use offers_shared::dynamo::WEBHOOK_ROW_WRITE_CONCURRENCY;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ASSIGNMENTS: usize = 500;
const REQUESTS: usize = 30;
const WARM_UP_REQUESTS: usize = 4;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // Each side on its own fresh DynamoDB Local, warmed up; then the
    // measured requests alternate between the sides (the order swapped each
    // time), so that a machine busy with something else slows both alike.
    let handler_local = fresh_dynamodb();
    let floor_local = fresh_dynamodb();
    let handler = HandlerSide::new(&handler_local).await;
    let floor = FloorSide::new(&floor_local).await;
    for request in 0..WARM_UP_REQUESTS {
        handler.request("warm", request).await;
        floor.request("warm", request).await;
    }
    let (mut handler_times, mut floor_times) = (Vec::new(), Vec::new());
    for request in 0..REQUESTS {
        if request % 2 == 0 {
            handler_times.push(handler.request("run", request).await);
            floor_times.push(floor.request("run", request).await);
        } else {
            floor_times.push(floor.request("run", request).await);
            handler_times.push(handler.request("run", request).await);
        }
    }
    handler.check().await;
    floor.check().await;
    let cpu_only = in_memory_handler_time().await;

    let rows = (REQUESTS * ASSIGNMENTS) as f64;
    let percentile = |times: &[Duration], p: f64| {
        let mut sorted = times.to_vec();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[index].as_secs_f64() * 1000.0
    };
    let total = |times: &[Duration]| times.iter().sum::<Duration>().as_secs_f64();
    let mut paired: Vec<f64> = handler_times
        .iter()
        .zip(&floor_times)
        .map(|(handler, floor)| handler.as_secs_f64() / floor.as_secs_f64())
        .collect();
    paired.sort_by(f64::total_cmp);
    println!(
        "webhook bench: {REQUESTS} requests of {ASSIGNMENTS} assignments, {} chunks of 25 in flight, sides alternating",
        WEBHOOK_ROW_WRITE_CONCURRENCY
    );
    println!(
        "  handler:  {:>7.0} rows/s  ({:.2} s; per request p50 {:.1} ms, p95 {:.1} ms)",
        rows / total(&handler_times),
        total(&handler_times),
        percentile(&handler_times, 0.5),
        percentile(&handler_times, 0.95)
    );
    println!(
        "  floor:    {:>7.0} rows/s  ({:.2} s, bare BatchWriteItem of the same rows; per request p50 {:.1} ms, p95 {:.1} ms)",
        rows / total(&floor_times),
        total(&floor_times),
        percentile(&floor_times, 0.5),
        percentile(&floor_times, 0.95)
    );
    println!(
        "  the handler alone (in-memory store and catalog, no I/O): p50 {:.1} ms per request",
        percentile(&cpu_only, 0.5)
    );
    println!(
        "  ratio handler/floor: {:.3} of the totals, {:.3} the median of the {REQUESTS} paired requests  (target <= 1.15)",
        total(&handler_times) / total(&floor_times),
        paired[paired.len() / 2]
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

/// The handler as main.rs wires it, on its own DynamoDB Local.
struct HandlerSide {
    bed: TestBed,
    webhook: campaign_webhook::DynamoWebhook,
}

impl HandlerSide {
    async fn new(local: &DynamoDbLocal) -> Self {
        let bed = TestBed::on(&local.endpoint()).await;
        bed.load_sample_catalog().await;
        let webhook = bed.webhook(&[]).await;
        Self { bed, webhook }
    }

    async fn request(&self, round: &str, request: usize) -> Duration {
        let body = body(&assignments(round, request));
        let event = signed_webhook_event(&body, &format!("bench-{round}-{request}"));
        let started = Instant::now();
        let answer = call_webhook(&self.webhook, &event).await;
        let time = started.elapsed();
        assert_eq!(answer.status, 202, "{:?}", answer.body);
        assert_eq!(answer.body["accepted"], ASSIGNMENTS);
        time
    }

    async fn check(&self) {
        assert_eq!(
            self.bed.scan(PENDING).await.len(),
            (WARM_UP_REQUESTS + REQUESTS) * ASSIGNMENTS
        );
    }
}

/// Bare BatchWriteItem of the same rows, on its own DynamoDB Local.
struct FloorSide {
    bed: TestBed,
}

impl FloorSide {
    async fn new(local: &DynamoDbLocal) -> Self {
        Self {
            bed: TestBed::on(&local.endpoint()).await,
        }
    }

    async fn request(&self, round: &str, request: usize) -> Duration {
        let table = self.bed.table(PENDING).to_owned();
        let chunks = put_request_chunks(&assignments(round, request));
        let started = Instant::now();
        stream::iter(chunks)
            .map(|chunk| {
                let client = self.bed.client.clone();
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
        started.elapsed()
    }

    async fn check(&self) {
        assert_eq!(
            self.bed.scan(PENDING).await.len(),
            (WARM_UP_REQUESTS + REQUESTS) * ASSIGNMENTS
        );
    }
}

/// The same requests through the handler with the in-memory fakes of its
/// ports: what the handler costs besides its DynamoDB calls.
async fn in_memory_handler_time() -> Vec<Duration> {
    use offers_shared::fakes::MemoryCatalog;
    use offers_shared::webhook::memory::MemoryWebhookStore;
    use offers_shared::webhook::{WebhookService, WebhookSettings};
    let webhook = campaign_webhook::CampaignWebhook::new(
        WebhookService::new(
            MemoryWebhookStore::default(),
            MemoryCatalog::of(sample_catalog()),
            WebhookSettings::default(),
        ),
        campaign_webhook::SigningSecret::new(offers_local::moto::LOCAL_SIGNING_SECRET)
            .expect("secret"),
    );
    let mut times = Vec::new();
    for request in 0..REQUESTS {
        let body = body(&assignments("memory", request));
        let event = signed_webhook_event(&body, &format!("bench-memory-{request}"));
        let request = lambda_http::request::from_str(&event.to_string()).expect("event");
        let started = Instant::now();
        let response = campaign_webhook::handler::handle(&webhook, request)
            .await
            .expect("answer");
        times.push(started.elapsed());
        assert_eq!(response.status(), 202);
    }
    times
}
