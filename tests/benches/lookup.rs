//! Offer lookup latency on DynamoDB Local against a floor measured in the same run.
//!
//! A fresh DynamoDB Local gets 200 offers (made by the dispatcher from
//! pending rows, for 20 users). Then 1,000 `GET /rewards/offers/{id}`
//! requests go through the handler (API Gateway v2 event JSON parsed into a
//! request, handled, JSON response) and 1,000 bare GetItem calls of the same
//! keys go through a client with the same settings, interleaved so that both
//! see the same DynamoDB Local. An uncounted warm-up of each comes first (the
//! JVM settles, the catalog cache fills as in a warm Lambda).
//! Run: `cargo bench -p offers-integration-tests --bench lookup`.

use aws_sdk_dynamodb::types::AttributeValue;
use offers_integration_tests::*;
use offers_local::{DynamoDbLocal, StartOptions};
use offers_shared::dynamo::dynamodb_client;
use std::time::Instant;

const USERS: usize = 20;
const OFFERS_PER_USER: usize = 10;
const LOOKUPS: usize = 1_000;
const WARM_UP: usize = 200;
const TARGET_RATIO: f64 = 1.10;

fn main() {
    // Setup logs (one line per dispatched row) would drown the figures.
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "warn");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

struct Target {
    user_id: String,
    personalized_offer_id: String,
    /// The API Gateway v2 event of a GET of this offer by its owner.
    event: String,
}

async fn run() {
    let local = DynamoDbLocal::start(StartOptions::default()).unwrap_or_else(|err| panic!("{err}"));
    let bed = TestBed::on(&local.endpoint()).await;
    bed.load_sample_catalog().await;
    let targets = seed(&bed).await;

    let lookup = bed.lookup(&[]);
    let config = bed.lookup_config(&[]);
    let bare = dynamodb_client(&bed.sdk, &config.sdk);
    let table = config
        .tables
        .loyalty_offers()
        .expect("the lookup has the offers table")
        .to_owned();

    let through_handler = |target: &Target| {
        let lookup = &lookup;
        let event = target.event.clone();
        async move {
            let started = Instant::now();
            let request = lambda_http::request::from_str(&event).expect("event");
            let response = offer_lookup::handler::handle(lookup, request)
                .await
                .expect("response");
            let elapsed = started.elapsed();
            assert_eq!(response.status(), 200);
            elapsed
        }
    };
    let bare_get = |target: &Target| {
        let bare = &bare;
        let table = &table;
        let user_id = target.user_id.clone();
        let id = target.personalized_offer_id.clone();
        async move {
            let started = Instant::now();
            let output = bare
                .get_item()
                .table_name(table)
                .key("userId", AttributeValue::S(user_id))
                .key("personalizedOfferId", AttributeValue::S(id))
                .send()
                .await
                .expect("get item");
            let elapsed = started.elapsed();
            assert!(output.item.is_some());
            elapsed
        }
    };

    for index in 0..WARM_UP {
        let target = &targets[index % targets.len()];
        through_handler(target).await;
        bare_get(target).await;
    }

    let mut handler_times = Vec::with_capacity(LOOKUPS);
    let mut bare_times = Vec::with_capacity(LOOKUPS);
    for index in 0..LOOKUPS {
        let target = &targets[(index * 7) % targets.len()];
        // Alternate which goes first, so neither always follows the other.
        if index % 2 == 0 {
            handler_times.push(through_handler(target).await);
            bare_times.push(bare_get(target).await);
        } else {
            bare_times.push(bare_get(target).await);
            handler_times.push(through_handler(target).await);
        }
    }

    let (handler_p50, handler_p99) = (
        nearest_rank(&mut handler_times, 50.0),
        nearest_rank(&mut handler_times, 99.0),
    );
    let (bare_p50, bare_p99) = (
        nearest_rank(&mut bare_times, 50.0),
        nearest_rank(&mut bare_times, 99.0),
    );
    let ratio = handler_p50.as_secs_f64() / bare_p50.as_secs_f64();
    println!("lookup bench: {LOOKUPS} lookups of existing offers ({} offers, {USERS} users), warm-up {WARM_UP} each, not counted", targets.len());
    println!("  handler  (event JSON -> GET /rewards/offers/{{id}} -> JSON):  p50 {:>8.3} ms  p99 {:>8.3} ms", ms(handler_p50), ms(handler_p99));
    println!("  bare GetItem (same keys, same client settings):            p50 {:>8.3} ms  p99 {:>8.3} ms", ms(bare_p50), ms(bare_p99));
    println!(
        "  ratio of p50s (handler / bare): {ratio:.3}  (target <= {TARGET_RATIO:.2}: {})",
        if ratio <= TARGET_RATIO {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "  catalog items read from DynamoDB by the lookup: {}",
        lookup.catalog().inner().catalog_items_read()
    );
}

/// Offers made the production way: pending rows through the dispatcher.
async fn seed(bed: &TestBed) -> Vec<Target> {
    let mut stream = bed.stream().await;
    let mut rows = Vec::new();
    for user in 0..USERS {
        for offer in 0..OFFERS_PER_USER {
            let mut row = fries_row(
                &format!("us-east-1:bench-user-{user}"),
                &format!("u{user}-camp-{offer}+co-fries"),
            );
            row["rank"] = serde_json::json!(offer);
            rows.push(row);
        }
    }
    let mut targets = Vec::new();
    for chunk in rows.chunks(100) {
        let ids = bed.dispatch_rows(&mut stream, chunk).await;
        for row in chunk {
            let user_id = row["userId"].as_str().unwrap_or_default().to_owned();
            let id = ids[row["sortKey"].as_str().unwrap_or_default()].clone();
            let event = api_event(
                "GET",
                &format!("/rewards/offers/{id}"),
                "",
                Identity::Jwt(&user_id),
            )
            .to_string();
            targets.push(Target {
                user_id,
                personalized_offer_id: id,
                event,
            });
        }
    }
    targets
}
