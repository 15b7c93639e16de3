//! Dispatch throughput on DynamoDB Local against a floor measured in the same run.
//!
//! 2,000 pending rows, as 20 stream batches of 100, go through the handler;
//! the floor is the same number of bare transactions of the same shape (put
//! offer + delete pending row) at the same concurrency. Each side gets a fresh
//! DynamoDB Local and an uncounted warm-up round (its JVM settles on the first
//! workload it serves). Run: `cargo bench -p offers-integration-tests --bench dispatch`.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use futures::stream::{self, StreamExt};
use offers_integration_tests::*;
use offers_local::{DynamoDbLocal, StartOptions};
use offers_shared::domain::PersonalizedOffer;
use offers_shared::dynamo::offer_to_item;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

const ROWS: usize = 2_000;
const BATCH: usize = 100;
const WARM_UP_ROWS: usize = 300;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (handler_time, catalog_report, peak_rss_kib, concurrency) = measure_handler().await;
    let floor_time = measure_floor(concurrency).await;

    let rows_per_second = ROWS as f64 / handler_time.as_secs_f64();
    let floor_per_second = ROWS as f64 / floor_time.as_secs_f64();
    println!(
        "dispatch bench: {ROWS} rows in {} batches of {BATCH}, concurrency {concurrency}",
        ROWS / BATCH
    );
    println!(
        "  handler:   {rows_per_second:>8.0} rows/s  ({:.2} s)",
        handler_time.as_secs_f64()
    );
    println!("  floor:     {floor_per_second:>8.0} txn/s   ({:.2} s, bare TransactWriteItems put+delete)", floor_time.as_secs_f64());
    println!(
        "  ratio:     {:>8.3}  (handler time / floor time; target <= 1.15)",
        handler_time.as_secs_f64() / floor_time.as_secs_f64()
    );
    println!("  catalog:   {catalog_report}");
    println!(
        "  peak RSS:  {:>8.1} MiB of the bench process after the handler phase (target <= 40)",
        peak_rss_kib as f64 / 1024.0
    );
}

/// Rows for one batch-sized run, spread over users and two config offers.
async fn put_rows(bed: &TestBed, prefix: &str, count: usize) {
    stream::iter(0..count)
        .for_each_concurrent(16, |index| async move {
            let mut row = fries_row(
                &format!("user-{}", index % 97),
                &format!("{prefix}+{index}"),
            );
            if index % 3 == 0 {
                row["offerId"] = Value::from("co-coffee");
                row.as_object_mut().map(|row| row.remove("rules"));
            }
            bed.put(PENDING, row).await;
        })
        .await;
}

async fn measure_handler() -> (Duration, String, u64, usize) {
    let local = DynamoDbLocal::start(StartOptions::default()).unwrap_or_else(|err| panic!("{err}"));
    let bed = TestBed::on(&local.endpoint()).await;
    bed.load_sample_catalog().await;
    let dispatcher = bed.dispatcher(&[]);
    let concurrency = bed.dispatcher_config(&[]).concurrency;
    let mut stream = bed.stream().await;

    put_rows(&bed, "warm", WARM_UP_ROWS).await;
    let warm_up = stream.read_new().await.expect("stream");
    for batch in warm_up.chunks(BATCH) {
        assert!(invoke(&dispatcher, batch).await.is_empty());
    }
    stream.read_new().await.expect("stream"); // our own deletes (REMOVE), not counted

    put_rows(&bed, "run", ROWS).await;
    let records: Vec<Value> = inserts(&stream.read_new().await.expect("stream"));
    assert_eq!(records.len(), ROWS);
    let reads_before = dispatcher.store().catalog_items_read();
    let mut most_reads_in_a_batch = 0;
    let mut most_distinct_ids = 0;
    let started = Instant::now();
    for batch in records.chunks(BATCH) {
        let before = dispatcher.store().catalog_items_read();
        let failures = invoke(&dispatcher, batch).await;
        assert!(failures.is_empty(), "{failures:?}");
        most_reads_in_a_batch =
            most_reads_in_a_batch.max(dispatcher.store().catalog_items_read() - before);
        most_distinct_ids = most_distinct_ids.max(distinct_catalog_ids(batch));
    }
    let elapsed = started.elapsed();
    let peak_rss = peak_rss_kib();
    let offers = bed.scan(OFFERS).await.len();
    assert_eq!(offers, ROWS + WARM_UP_ROWS, "every row dispatched once");
    let catalog = format!(
        "{} items read in the measured batches; at most {most_reads_in_a_batch} in one batch of at most {most_distinct_ids} distinct ids (target: reads <= distinct ids)",
        dispatcher.store().catalog_items_read() - reads_before
    );
    (elapsed, catalog, peak_rss, concurrency)
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

async fn measure_floor(concurrency: usize) -> Duration {
    let local = DynamoDbLocal::start(StartOptions::default()).unwrap_or_else(|err| panic!("{err}"));
    let bed = TestBed::on(&local.endpoint()).await;
    bed.load_sample_catalog().await;
    let template_offer = sample_offer(&bed).await;

    put_rows(&bed, "warm", WARM_UP_ROWS).await;
    bare_transactions(&bed, &template_offer, "warm", WARM_UP_ROWS, concurrency).await;
    put_rows(&bed, "run", ROWS).await;
    let started = Instant::now();
    bare_transactions(&bed, &template_offer, "run", ROWS, concurrency).await;
    let elapsed = started.elapsed();
    assert!(
        bed.scan(PENDING).await.is_empty(),
        "the floor consumed every row"
    );
    elapsed
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
    prefix: &str,
    count: usize,
    concurrency: usize,
) {
    let batches: Vec<Vec<usize>> = (0..count)
        .collect::<Vec<_>>()
        .chunks(BATCH)
        .map(<[usize]>::to_vec)
        .collect();
    for batch in batches {
        stream::iter(batch)
            .for_each_concurrent(concurrency, |index| async move {
                let mut offer = model.clone();
                offer.personalized_offer_id = uuid::Uuid::new_v4();
                offer.user_id = format!("user-{}", index % 97);
                offer.sort_key = Some(format!("{prefix}+{index}"));
                let put = Put::builder()
                    .table_name(bed.table(OFFERS))
                    .set_item(Some(offer_to_item(&offer).expect("item")))
                    .condition_expression("attribute_not_exists(personalizedOfferId)")
                    .build()
                    .expect("put");
                let key = HashMap::from([
                    (
                        "userId".to_owned(),
                        AttributeValue::S(offer.user_id.clone()),
                    ),
                    (
                        "sortKey".to_owned(),
                        AttributeValue::S(format!("{prefix}+{index}")),
                    ),
                ]);
                let delete = Delete::builder()
                    .table_name(bed.table(PENDING))
                    .set_key(Some(key))
                    .condition_expression("attribute_exists(userId)")
                    .build()
                    .expect("delete");
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

/// The process's peak resident set (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}
