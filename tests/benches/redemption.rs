//! Redemption latency on DynamoDB Local against floors measured in the same run.
//!
//! A fresh DynamoDB Local gets offers made by the dispatcher from pending rows
//! (`co-fries`: minimumSpend, serviceModes, redemptionLimit 1). Each offer is
//! redeemed once, the common case at checkout:
//!
//! - through the handler: `POST /rewards/offers/{id}/redemptions` (API Gateway
//!   v2 event JSON parsed, the offer read, the rules and status decided, the
//!   conditional UpdateItem, the offer JSON with the catalog's names from the
//!   warm cache);
//! - the floor: a bare conditional UpdateItem of the same shape
//!   (`offers_shared::dynamo::redemption_update` without a known offer: the
//!   same condition, update and returned values as the handler's write) on
//!   another offer, with a client of the same settings;
//! - for comparison, a bare GetItem then the UpdateItem for a known offer:
//!   what a read-then-write design would cost at least.
//!
//! Interleaved, alternating the order, after an uncounted warm-up of each.
//! Run: `cargo bench -p offers-integration-tests --bench redemption`.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::Utc;
use offers_integration_tests::*;
use offers_local::{DynamoDbLocal, StartOptions};
use offers_shared::domain::{parse_redemption_request, PersonalizedOffer, Redemption};
use offers_shared::dynamo::{dynamodb_client, redemption_update};
use serde_json::json;
use std::time::Instant;

const REDEMPTIONS: usize = 500;
const WARM_UP: usize = 100;
const TARGET_RATIO: f64 = 1.15;

fn main() {
    run_bench(run());
}

async fn run() {
    let local = DynamoDbLocal::start(StartOptions::default()).unwrap_or_else(|err| panic!("{err}"));
    let bed = TestBed::on(&local.endpoint()).await;
    bed.load_sample_catalog().await;
    let per_kind = REDEMPTIONS + WARM_UP;
    let mut offers = seed(&bed, 3 * per_kind).await.into_iter();
    let mut take = |n: usize| offers.by_ref().take(n).collect::<Vec<_>>();
    let (handler_offers, bare_offers, pair_offers) =
        (take(per_kind), take(per_kind), take(per_kind));

    let activity = bed.activity(&[]);
    let config = bed.activity_config(&[]);
    let bare = dynamodb_client(&bed.sdk, &config.sdk);
    let table = config
        .tables
        .loyalty_offers()
        .expect("the activity function has the offers table")
        .to_owned();
    let body = json!({"orderId": "order-1", "totalCost": 12.5, "serviceMode": "pickup"});
    let request = parse_redemption_request(body.to_string().as_bytes()).expect("valid");

    // `known`: the offer as read (the read-then-write design), or none (the
    // handler's first write, which needs no read).
    let bare_update = |offer: &PersonalizedOffer, known: bool| {
        let (bare, table, request) = (&bare, &table, &request);
        let offer = offer.clone();
        async move {
            let started = Instant::now();
            let redemption = Redemption::of(offer.personalized_offer_id, request, Utc::now());
            let record = serde_dynamo::to_attribute_value(&redemption).expect("record");
            let update = bare
                .update_item()
                .table_name(table)
                .key("userId", AttributeValue::S(offer.user_id.clone()))
                .key(
                    "personalizedOfferId",
                    AttributeValue::S(offer.personalized_offer_id.to_string()),
                )
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            let output = redemption_update(update, known.then_some(&offer), &redemption, record)
                .send()
                .await
                .expect("conditional update");
            let elapsed = started.elapsed();
            assert!(output.attributes.is_some());
            elapsed
        }
    };
    let bare_get_then_update = |offer: &PersonalizedOffer| {
        let (bare, table) = (&bare, &table);
        let offer = offer.clone();
        let update = bare_update(&offer, true);
        async move {
            let started = Instant::now();
            let read = bare
                .get_item()
                .table_name(table)
                .key("userId", AttributeValue::S(offer.user_id.clone()))
                .key(
                    "personalizedOfferId",
                    AttributeValue::S(offer.personalized_offer_id.to_string()),
                )
                .send()
                .await
                .expect("get item");
            assert!(read.item.is_some());
            update.await;
            started.elapsed()
        }
    };

    for index in 0..WARM_UP {
        redeem_through_handler(&activity, &handler_offers[index], &body).await;
        bare_update(&bare_offers[index], false).await;
        bare_get_then_update(&pair_offers[index]).await;
    }
    let mut handler_times = Vec::with_capacity(REDEMPTIONS);
    let mut bare_times = Vec::with_capacity(REDEMPTIONS);
    let mut pair_times = Vec::with_capacity(REDEMPTIONS);
    for index in WARM_UP..per_kind {
        // Rotate which goes first, so that none always follows another.
        match index % 3 {
            0 => {
                handler_times
                    .push(redeem_through_handler(&activity, &handler_offers[index], &body).await);
                bare_times.push(bare_update(&bare_offers[index], false).await);
                pair_times.push(bare_get_then_update(&pair_offers[index]).await);
            }
            1 => {
                bare_times.push(bare_update(&bare_offers[index], false).await);
                pair_times.push(bare_get_then_update(&pair_offers[index]).await);
                handler_times
                    .push(redeem_through_handler(&activity, &handler_offers[index], &body).await);
            }
            _ => {
                pair_times.push(bare_get_then_update(&pair_offers[index]).await);
                handler_times
                    .push(redeem_through_handler(&activity, &handler_offers[index], &body).await);
                bare_times.push(bare_update(&bare_offers[index], false).await);
            }
        }
    }

    let handler_p50 = nearest_rank(&mut handler_times, 50.0);
    let bare_p50 = nearest_rank(&mut bare_times, 50.0);
    let pair_p50 = nearest_rank(&mut pair_times, 50.0);
    let ratio = handler_p50.as_secs_f64() / bare_p50.as_secs_f64();
    let pair_ratio = handler_p50.as_secs_f64() / pair_p50.as_secs_f64();
    println!("redemption bench: {REDEMPTIONS} first redemptions of distinct offers each, warm-up {WARM_UP} each, not counted");
    println!(
        "  handler (event JSON -> POST .../redemptions -> 201 JSON):     p50 {:>8.3} ms  p99 {:>8.3} ms",
        ms(handler_p50),
        ms(nearest_rank(&mut handler_times, 99.0))
    );
    println!(
        "  bare conditional UpdateItem (same shape):                     p50 {:>8.3} ms  p99 {:>8.3} ms",
        ms(bare_p50),
        ms(nearest_rank(&mut bare_times, 99.0))
    );
    println!(
        "  bare GetItem + UpdateItem (a read-then-write design):          p50 {:>8.3} ms  p99 {:>8.3} ms",
        ms(pair_p50),
        ms(nearest_rank(&mut pair_times, 99.0))
    );
    println!(
        "  ratio of p50s, handler / bare UpdateItem: {ratio:.3}  (target <= {TARGET_RATIO:.2}: {})",
        if ratio <= TARGET_RATIO {
            "met"
        } else {
            "NOT met"
        }
    );
    println!("  ratio of p50s, handler / bare GetItem + UpdateItem: {pair_ratio:.3}  (what the read saves)");
}

/// `count` offers made the production way (pending rows through the
/// dispatcher), as stored.
async fn seed(bed: &TestBed, count: usize) -> Vec<PersonalizedOffer> {
    let mut stream = bed.stream().await;
    let rows: Vec<_> = (0..count)
        .map(|n| {
            fries_row(
                &format!("us-east-1:bench-user-{}", n % 50),
                &format!("camp-{n}+co-fries"),
            )
        })
        .collect();
    for chunk in rows.chunks(100) {
        bed.dispatch_rows(&mut stream, chunk).await;
    }
    let offers = stored_offers(bed).await;
    assert_eq!(offers.len(), count);
    offers
}
