//! What the benches share: the redemption handler timed as API Gateway
//! calls it, the offers as stored, and percentiles.

use crate::{api_event, with_body, Identity, OFFERS};
use offers_shared::domain::PersonalizedOffer;
use offers_shared::dynamo::offer_from_item;
use serde_json::Value;
use std::time::{Duration, Instant};

/// One `POST /rewards/offers/{id}/redemptions` by the offer's owner, timed
/// from the API Gateway v2 event JSON to the 201 response.
pub async fn redeem_through_handler(
    activity: &offer_activity::DynamoActivity,
    offer: &PersonalizedOffer,
    body: &Value,
) -> Duration {
    let event = with_body(
        api_event(
            "POST",
            &format!(
                "/rewards/offers/{}/redemptions",
                offer.personalized_offer_id
            ),
            "",
            Identity::Jwt(&offer.user_id),
        ),
        body,
    )
    .to_string();
    let started = Instant::now();
    let request = lambda_http::request::from_str(&event).expect("event");
    let response = offer_activity::handler::handle(activity, request)
        .await
        .expect("response");
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 201);
    elapsed
}

/// Every offer of the bed's offers table, as stored.
pub async fn stored_offers(bed: &crate::TestBed) -> Vec<PersonalizedOffer> {
    let mut offers = Vec::new();
    let mut start = None;
    loop {
        let page = bed
            .client
            .scan()
            .table_name(bed.table(OFFERS))
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        for item in page.items() {
            offers.push(offer_from_item(item.clone()).expect("offer"));
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return offers;
        }
    }
}

/// Nearest-rank percentile, `percent` of 100 (sorts `times`).
pub fn nearest_rank(times: &mut [Duration], p: f64) -> Duration {
    times.sort_unstable();
    let rank = ((p / 100.0) * times.len() as f64).ceil() as usize;
    times[rank.clamp(1, times.len()) - 1]
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// Runs a bench's body on two worker threads (the Lambda-like runtime the
/// handler benches share), its logs at `warn` unless `RUST_LOG` says otherwise.
/// The machine's load averages (1, 5, 15 minutes), for a bench's figures.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

pub fn run_bench<F: std::future::Future>(bench: F) -> F::Output {
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "warn");
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(bench)
}
