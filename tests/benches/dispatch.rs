//! Dispatch throughput on DynamoDB Local against a floor measured in the same run.
//!
//! 2,000 pending rows, as 20 stream batches of 100, go through the handler;
//! the floor is the same number of bare transactions of the same shape (put
//! offer + delete pending row, with the dispatcher's own conditions: put if
//! absent, delete only the row as the stream saw it) at the same concurrency. Each side gets a fresh
//! DynamoDB Local and an uncounted warm-up round (its JVM settles on the first
//! workload it serves). The release binary is also run through a local
//! Runtime API for its peak RSS and its CPU time per row (user + system of the
//! process over the measured rows, from `/proc/<pid>/stat`). The floor's CPU
//! per transaction is this process's own (getrusage), which then does nothing
//! but the bare SDK calls: what the SDK alone costs per transaction.
//! Run: `bash scripts/bench.sh`.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use futures::stream::{self, StreamExt};
use offers_integration_tests::*;
use offers_local::streams::lambda_event;
use offers_local::{Answer, DynamoDbLocal, RuntimeApi, StartOptions};
use offers_shared::domain::PersonalizedOffer;
use offers_shared::dynamo::{offer_to_item, pending_delete};
use offers_shared::ports::{PendingRef, RowCopy};
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const ROWS: usize = 2_000;
const BATCH: usize = 100;
const WARM_UP_ROWS: usize = 300;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let handler = measure_handler(&fresh_dynamodb()).await;
    let binary = measure_binary(&fresh_dynamodb()).await;
    let floor = measure_floor(handler.concurrency).await;
    let floor_time = floor.time;

    let per_second = |time: Duration| ROWS as f64 / time.as_secs_f64();
    println!(
        "dispatch bench: {ROWS} rows in {} batches of {BATCH}, concurrency {}",
        ROWS / BATCH,
        handler.concurrency
    );
    println!(
        "  handler (in process):  {:>6.0} rows/s  ({:.2} s)",
        per_second(handler.time),
        handler.time.as_secs_f64()
    );
    println!(
        "  release binary:        {:>6.0} rows/s  ({:.2} s, through a local Runtime API; CPU {:.3} ms/row: user {:.3} + system {:.3})",
        per_second(binary.time),
        binary.time.as_secs_f64(),
        binary.cpu.per_item_ms(ROWS),
        binary.cpu.user_per_item_ms(ROWS),
        binary.cpu.system_per_item_ms(ROWS),
    );
    println!("  floor:                 {:>6.0} txn/s   ({:.2} s, bare TransactWriteItems put offer + delete pending; CPU {:.3} ms/txn of the bench process)", per_second(floor_time), floor_time.as_secs_f64(), floor.cpu.per_item_ms(ROWS));
    println!(
        "  ratio handler/floor:   {:>6.3}  (target <= 1.15)",
        handler.time.as_secs_f64() / floor_time.as_secs_f64()
    );
    println!(
        "  ratio binary/floor:    {:>6.3}",
        binary.time.as_secs_f64() / floor_time.as_secs_f64()
    );
    println!("  catalog reads:         cold batch {} items for {} distinct ids; warm batches at most {} (target: <= distinct ids)",
        handler.cold_reads, handler.cold_distinct_ids, handler.warm_reads_max);
    println!(
        "  peak RSS of the binary: {:>5.1} MiB (VmHWM after {ROWS} rows; target <= 40)",
        binary.peak_rss_kib as f64 / 1024.0
    );
    println!(
        "  CPU of the binary:     {:>6.3} ms/row (user + system over the {ROWS} measured rows; target <= 0.25)",
        binary.cpu.per_item_ms(ROWS)
    );
}

struct HandlerRun {
    time: Duration,
    concurrency: usize,
    cold_reads: u64,
    cold_distinct_ids: usize,
    warm_reads_max: u64,
}

struct BinaryRun {
    time: Duration,
    peak_rss_kib: u64,
    /// CPU of the binary's process over the measured rows only.
    cpu: CpuTime,
}

struct FloorRun {
    time: Duration,
    /// CPU of this process over the measured transactions.
    cpu: CpuTime,
}

/// Rows for one batch-sized run, spread over users and two config offers.
/// The pending rows of a run: two in three for `co-fries`, the rest
/// `co-coffee`. Built once, so the floor deletes exactly the rows it put.
fn bench_rows(prefix: &str, count: usize) -> Vec<Value> {
    (0..count)
        .map(|index| {
            let mut row = fries_row(
                &format!("user-{}", index % 97),
                &format!("{prefix}+{index}"),
            );
            if index.is_multiple_of(3) {
                row["offerId"] = Value::from("co-coffee");
                row.as_object_mut().map(|row| row.remove("rules"));
            }
            row
        })
        .collect()
}

async fn put_rows(bed: &TestBed, rows: &[Value]) {
    stream::iter(rows)
        .for_each_concurrent(16, |row| bed.put(PENDING, row.clone()))
        .await;
}

async fn measure_handler(local: &DynamoDbLocal) -> HandlerRun {
    let bed = TestBed::on(&local.endpoint()).await;
    bed.load_sample_catalog().await;
    let dispatcher = bed.dispatcher(&[]);
    let concurrency = bed.dispatcher_config(&[]).concurrency;
    let mut stream = bed.stream().await;

    put_rows(&bed, &bench_rows("warm", WARM_UP_ROWS)).await;
    let warm_up = stream.read_new().await.expect("stream");
    let mut cold_reads = 0;
    for (index, batch) in warm_up.chunks(BATCH).enumerate() {
        assert!(invoke(&dispatcher, batch).await.is_empty());
        if index == 0 {
            cold_reads = dispatcher.store().catalog_items_read();
        }
    }
    let cold_distinct_ids = distinct_catalog_ids(&warm_up[..BATCH.min(warm_up.len())]);
    stream.read_new().await.expect("stream"); // our own deletes (REMOVE), not counted

    put_rows(&bed, &bench_rows("run", ROWS)).await;
    let records: Vec<Value> = inserts(&stream.read_new().await.expect("stream"));
    assert_eq!(records.len(), ROWS);
    let mut warm_reads_max = 0;
    let started = Instant::now();
    for batch in records.chunks(BATCH) {
        let before = dispatcher.store().catalog_items_read();
        let failures = invoke(&dispatcher, batch).await;
        assert!(failures.is_empty(), "{failures:?}");
        warm_reads_max = warm_reads_max.max(dispatcher.store().catalog_items_read() - before);
    }
    let time = started.elapsed();
    assert_eq!(
        bed.scan(OFFERS).await.len(),
        ROWS + WARM_UP_ROWS,
        "every row dispatched once"
    );
    HandlerRun {
        time,
        concurrency,
        cold_reads,
        cold_distinct_ids,
        warm_reads_max,
    }
}

/// Each side gets a DynamoDB Local of its own: its JVM settles on the first
/// workload it serves, and a later one would measure the order, not the code.
fn fresh_dynamodb() -> DynamoDbLocal {
    DynamoDbLocal::start(StartOptions::default()).unwrap_or_else(|err| panic!("{err}"))
}

/// The release binary, through a local Runtime API, after its own warm-up.
async fn measure_binary(local: &DynamoDbLocal) -> BinaryRun {
    let bed = TestBed::on(&local.endpoint()).await;
    bed.load_sample_catalog().await;
    let mut stream = bed.stream().await;
    put_rows(&bed, &bench_rows("warm", WARM_UP_ROWS)).await;
    let warm_up = stream.read_new().await.expect("stream");
    put_rows(&bed, &bench_rows("bin", ROWS)).await;
    let records: Vec<Value> = inserts(&stream.read_new().await.expect("stream"));
    let runtime = RuntimeApi::start().await.expect("runtime api");
    let mut function = spawn_function(
        &function_binary("offer-dispatcher"),
        &bed.environment("OfferDispatcherFunction", &[]),
        &local.endpoint(),
        &runtime,
    );
    for batch in warm_up.chunks(BATCH) {
        assert_no_failures(
            runtime
                .invoke(lambda_event(batch), Duration::from_secs(60))
                .await,
        );
    }
    let cpu_before = CpuTime::of_process(function.id());
    let started = Instant::now();
    for batch in records.chunks(BATCH) {
        assert_no_failures(
            runtime
                .invoke(lambda_event(batch), Duration::from_secs(60))
                .await,
        );
    }
    let time = started.elapsed();
    let cpu = CpuTime::of_process(function.id()).since(cpu_before);
    let peak_rss_kib = peak_rss_kib(function.id());
    let _ = function.kill();
    let _ = function.wait();
    assert_eq!(bed.scan(OFFERS).await.len(), ROWS + WARM_UP_ROWS);
    BinaryRun {
        time,
        peak_rss_kib,
        cpu,
    }
}

fn assert_no_failures(answer: Result<Answer, String>) {
    assert_eq!(
        answer,
        Ok(Answer::Response(
            serde_json::json!({"batchItemFailures": []})
        ))
    );
}

/// Config offer and template ids a batch refers to (its rows name the config
/// offer; each config offer names one template).
fn distinct_catalog_ids(batch: &[Value]) -> usize {
    let offers: HashSet<&str> = batch
        .iter()
        .filter_map(|record| record["dynamodb"]["NewImage"]["offerId"]["S"].as_str())
        .collect();
    offers.len() * 2
}

async fn measure_floor(concurrency: usize) -> FloorRun {
    let local = fresh_dynamodb();
    let bed = TestBed::on(&local.endpoint()).await;
    bed.load_sample_catalog().await;
    let template_offer = sample_offer(&bed).await;

    let warm_up = bench_rows("warm", WARM_UP_ROWS);
    put_rows(&bed, &warm_up).await;
    bare_transactions(&bed, &template_offer, &warm_up, concurrency).await;
    let rows = bench_rows("run", ROWS);
    put_rows(&bed, &rows).await;
    let cpu_before = CpuTime::of_self();
    let started = Instant::now();
    bare_transactions(&bed, &template_offer, &rows, concurrency).await;
    let time = started.elapsed();
    let cpu = CpuTime::of_self().since(cpu_before);
    assert!(
        bed.scan(PENDING).await.is_empty(),
        "the floor consumed every row"
    );
    FloorRun { time, cpu }
}

/// One real offer, made by the dispatcher, as the model for the floor's items.
async fn sample_offer(bed: &TestBed) -> PersonalizedOffer {
    bed.put(PENDING, fries_row("model-user", "model")).await;
    let records = bed.stream().await.read_new().await.expect("stream");
    assert!(invoke(&bed.dispatcher(&[]), &records).await.is_empty());
    let item = bed
        .client
        .scan()
        .table_name(bed.table(OFFERS))
        .send()
        .await
        .expect("scan")
        .items()
        .first()
        .cloned()
        .expect("the model offer");
    offers_shared::dynamo::offer_from_item(item).expect("offer")
}

async fn bare_transactions(
    bed: &TestBed,
    model: &PersonalizedOffer,
    rows: &[Value],
    concurrency: usize,
) {
    for batch in rows.chunks(BATCH) {
        stream::iter(batch)
            .for_each_concurrent(concurrency, |row| async move {
                let text = |name: &str| row[name].as_str().unwrap_or_default().to_owned();
                let mut offer = model.clone();
                offer.personalized_offer_id = uuid::Uuid::new_v4();
                offer.user_id = text("userId");
                offer.sort_key = Some(text("sortKey"));
                let put = Put::builder()
                    .table_name(bed.table(OFFERS))
                    .set_item(Some(offer_to_item(&offer).expect("item")))
                    .condition_expression("attribute_not_exists(personalizedOfferId)")
                    .build()
                    .expect("put");
                // The dispatcher's own delete: only the row as the stream saw it.
                let pending = PendingRef {
                    user_id: text("userId"),
                    sort_key: text("sortKey"),
                    row: RowCopy::Image(serde_dynamo::to_item(row).expect("row image")),
                    record_id: offer.personalized_offer_id,
                    assignment_id: None,
                };
                let delete = pending_delete(bed.table(PENDING), &pending).expect("delete");
                bed.client
                    .transact_write_items()
                    .transact_items(TransactWriteItem::builder().put(put).build())
                    .transact_items(TransactWriteItem::builder().delete(delete).build())
                    .send()
                    .await
                    .expect("bare transaction");
            })
            .await;
    }
}
