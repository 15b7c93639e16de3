//! Campaign statistics benchmark (`cargo bench -p offers-integration-tests --bench stats`).
//!
//! 1. Events applied per second: the offers table's real stream (assignments
//!    with selection, then views and redemptions) handed in batches of 100
//!    to the statistics handler, as one shard's poller would, against two
//!    floors: the very same counter updates (each batch's sums) issued bare,
//!    as concurrent UpdateItems with no marker, no condition and no
//!    transaction; and each record's own counter updates issued bare (a
//!    counter per event, as a function without summing would write them). Each side runs on a DynamoDB Local of its own, after a
//!    warm-up round that is not counted (docs: a server settles on the first
//!    workload it serves).
//! 2. Event to visible: on the local stack (release binaries, the stream
//!    mapping with its 1 s batching window), an offer item is written and
//!    the support API polled over HTTP until its campaign counts it.

use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::join_all;
use futures::stream::{self, StreamExt};
use offers_integration_tests::*;
use offers_local::conventions::LOCAL_TABLE_PREFIX;
use offers_local::{DynamoDbLocal, StartOptions};
use offers_shared::campaign_stats::read_offer_image;
use offers_shared::domain::campaign_stats::{aggregate, record_deltas, CounterKey, Counts, Deltas};
use offers_shared::dynamo::counter_update;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const OFFERS_PER_RUN: usize = 1_500;
const WARM_UP_OFFERS: usize = 300;
const BATCH: usize = 100;
const LATENCY_SAMPLES: usize = 40;

fn offer_item(run: &str, index: usize) -> Value {
    let tier = ["gold", "silver", "blue"][index % 3];
    let region = ["north", "south"][index % 2];
    json!({
        "userId": format!("{run}-user-{index}"),
        "personalizedOfferId": format!("{run}-{index:08}"),
        "offerId": format!("co-{}", index % 10),
        "campaignId": format!("{run}-camp"),
        "ttl": future_epoch(400),
        "selection": {"policy": "bench-v1", "propensity": 0.1, "holdout": index.is_multiple_of(10),
                      "context": {"tier": tier, "region": region}},
    })
}

/// Writes `count` offers, then views every second one and redeems every
/// fifth; returns the offers table's stream records.
async fn offers_life(bed: &TestBed, run: &str, count: usize) -> Vec<Value> {
    let mut stream = bed.offers_stream().await;
    let table = bed.table(OFFERS).to_owned();
    let items: Vec<Value> = (0..count).map(|i| offer_item(run, i)).collect();
    for chunk in items.chunks(16) {
        join_all(chunk.iter().map(|item| bed.put(OFFERS, item.clone()))).await;
    }
    let update = |index: usize, expression: &'static str, values: Value| {
        let client = bed.client.clone();
        let table = table.clone();
        async move {
            let mut request = client
                .update_item()
                .table_name(table)
                .key("userId", AttributeValue::S(format!("{run}-user-{index}")))
                .key(
                    "personalizedOfferId",
                    AttributeValue::S(format!("{run}-{index:08}")),
                )
                .update_expression(expression);
            for (name, value) in values.as_object().into_iter().flatten() {
                request = request.expression_attribute_values(
                    name,
                    serde_dynamo::to_attribute_value(value).expect("value"),
                );
            }
            request.send().await.expect("update");
        }
    };
    let mut updates = Vec::new();
    for index in (0..count).step_by(2) {
        updates.push(update(
            index,
            "SET viewedAt = if_not_exists(viewedAt, :at) ADD viewCount :one",
            json!({":at": "2026-03-01T10:00:00Z", ":one": 1}),
        ));
    }
    stream::iter(updates)
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let mut redemptions = Vec::new();
    for index in (0..count).step_by(5) {
        redemptions.push(update(
            index,
            "SET redemptions = :map ADD redemptionCount :one",
            json!({":map": {"o1": {"orderId": "o1", "totalCost": 7.35,
                    "redeemedAt": format!("2026-03-{:02}T12:00:00Z", index % 28 + 1)}}, ":one": 1}),
        ));
    }
    stream::iter(redemptions)
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let records = stream.read_new().await.expect("offers stream");
    assert!(records.len() >= count, "{} records", records.len());
    records
}

/// Each record's own deltas (what a function without summing would write).
fn record_sums(records: &[Value]) -> Vec<Deltas> {
    let image = |record: &Value, name: &str| -> Option<Map<String, Value>> {
        record["dynamodb"][name].as_object().cloned()
    };
    records
        .iter()
        .filter_map(|record| {
            let new = read_offer_image(&image(record, "NewImage")?).ok()?;
            let old = image(record, "OldImage").and_then(|old| read_offer_image(&old).ok());
            record_deltas(old.as_ref(), Some(&new)).ok()
        })
        .collect()
}

/// What the function applies per batch: the sum of its records' deltas.
fn batch_sums(records: &[Value]) -> Vec<Deltas> {
    let image = |record: &Value, name: &str| -> Option<Map<String, Value>> {
        record["dynamodb"][name].as_object().cloned()
    };
    records
        .chunks(BATCH)
        .map(|batch| {
            let deltas: Vec<Deltas> = batch
                .iter()
                .filter_map(|record| {
                    let new = read_offer_image(&image(record, "NewImage")?).ok()?;
                    let old = image(record, "OldImage").and_then(|old| read_offer_image(&old).ok());
                    record_deltas(old.as_ref(), Some(&new)).ok()
                })
                .collect();
            aggregate(&deltas).expect("sums")
        })
        .collect()
}

async fn run_function(bed: &TestBed, records: &[Value]) -> Duration {
    let stats = bed.stats(&[]);
    let started = Instant::now();
    for batch in records.chunks(BATCH) {
        let failures = invoke_stats(&stats, batch).await;
        assert!(failures.is_empty(), "{failures:?}");
    }
    started.elapsed()
}

/// Per batch, every update of `updates` at once (bare UpdateItems).
async fn run_floor(bed: &TestBed, updates: &[Vec<(CounterKey, Counts)>]) -> Duration {
    let table = bed.table(STATS).to_owned();
    let started = Instant::now();
    for batch in updates {
        join_all(batch.iter().map(|(key, counts)| {
            let update = counter_update(&table, key, counts).expect("update");
            bed.client
                .update_item()
                .table_name(&table)
                .set_key(Some(update.key().clone()))
                .update_expression(update.update_expression())
                .set_expression_attribute_names(update.expression_attribute_names().cloned())
                .set_expression_attribute_values(update.expression_attribute_values().cloned())
                .send()
        }))
        .await
        .into_iter()
        .for_each(|result| {
            result.expect("bare update");
        });
    }
    started.elapsed()
}

/// The three ways of landing the same counts.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Function,
    /// Each batch's summed counter updates, bare: the least any design writes.
    SummedFloor,
    /// Each record's own counter updates, bare: a counter per event, no summing.
    PerRecordFloor,
}

fn updates_of(records: &[Value], side: Side) -> Vec<Vec<(CounterKey, Counts)>> {
    match side {
        Side::PerRecordFloor => records
            .chunks(BATCH)
            .map(|batch| {
                record_sums(batch)
                    .into_iter()
                    .flat_map(|deltas| deltas.into_iter())
                    .collect()
            })
            .collect(),
        _ => batch_sums(records)
            .into_iter()
            .map(|sum| sum.into_iter().collect())
            .collect(),
    }
}

/// One side on a fresh DynamoDB Local: a warm-up round, then the measured one.
/// Returns the time, the records and the counter updates it wrote.
async fn measure(side: Side) -> (Duration, usize, usize) {
    let local = DynamoDbLocal::start(StartOptions::default()).expect("DynamoDB Local");
    let warm = TestBed::on(&local.endpoint()).await;
    let warm_records = offers_life(&warm, "warm", WARM_UP_OFFERS).await;
    let bed = TestBed::on(&local.endpoint()).await;
    let records = offers_life(&bed, "run", OFFERS_PER_RUN).await;
    let updates = updates_of(&records, side);
    let written: usize = updates.iter().map(Vec::len).sum();
    let elapsed = if side == Side::Function {
        run_function(&warm, &warm_records).await;
        run_function(&bed, &records).await
    } else {
        run_floor(&warm, &updates_of(&warm_records, side)).await;
        run_floor(&bed, &updates).await
    };
    drop(local);
    (elapsed, records.len(), written)
}

async fn event_to_visible() -> Vec<Duration> {
    let dir = std::env::temp_dir().join(format!("offers-stats-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let stack = LocalStack::start(&dir.join("data"));
    let sdk = offers_local::local_sdk_config(&stack.dynamodb).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let offers = format!("{LOCAL_TABLE_PREFIX}LoyaltyOffersTable");
    let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
    for sample in 0..LATENCY_SAMPLES {
        let mut item = offer_item("latency", sample);
        item["campaignId"] = json!("latency-camp");
        let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(item).expect("item");
        let started = Instant::now();
        client
            .put_item()
            .table_name(&offers)
            .set_item(Some(item))
            .send()
            .await
            .expect("put offer");
        loop {
            let (status, body) =
                stack.get_as("/support/campaigns/latency-camp/stats", "agent", "support");
            if status == 200 && body["totals"]["assigned"].as_u64() == Some(sample as u64 + 1) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "never counted: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        latencies.push(started.elapsed());
    }
    drop(stack);
    let _ = std::fs::remove_dir_all(&dir);
    latencies.sort();
    latencies
}

#[tokio::main]
async fn main() {
    let (function, records, counters) = measure(Side::Function).await;
    let (summed, _, _) = measure(Side::SummedFloor).await;
    let (per_record, _, per_record_updates) = measure(Side::PerRecordFloor).await;
    let rate = |elapsed: Duration| records as f64 / elapsed.as_secs_f64();
    println!(
        "stats bench: {OFFERS_PER_RUN} offers with selection, {records} stream records \
         (INSERT and MODIFY) in batches of {BATCH}; {counters} counter updates after summing \
         per batch, {per_record_updates} without"
    );
    println!(
        "  statistics function  {:>8.0} events/s  ({:.2} s: parse, deltas, sums, markers + ADDs in transactions)",
        rate(function),
        function.as_secs_f64()
    );
    println!(
        "  floor, summed        {:>8.0} events/s  ({:.2} s: each batch's summed ADDs as concurrent bare UpdateItems)",
        rate(summed),
        summed.as_secs_f64()
    );
    println!(
        "  floor, per record    {:>8.0} events/s  ({:.2} s: each record's ADDs as concurrent bare UpdateItems)",
        rate(per_record),
        per_record.as_secs_f64()
    );
    println!(
        "  ratio                {:>8.2} vs the summed floor, {:.2} vs the per-record floor (function time / floor time; target <= 1.2)",
        function.as_secs_f64() / summed.as_secs_f64(),
        function.as_secs_f64() / per_record.as_secs_f64()
    );
    let latencies = event_to_visible().await;
    println!(
        "  event -> visible     p50 {:.0} ms, p99 {:.0} ms over {LATENCY_SAMPLES} offers (local stack, batching window 1 s, HTTP poll)",
        millis(percentile(&latencies, 0.50)),
        millis(percentile(&latencies, 0.99))
    );
}
