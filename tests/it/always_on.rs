//! Always-on campaigns end to end on DynamoDB Local (contract section 13):
//! a definition stored with the campaigns adapter (what `offers campaign
//! put` runs), transactions put as the ordering backend does, the
//! transactions stream handed to UserVisitsFunction's handler, the pending
//! table's stream to the dispatcher's, the offers read back from the table
//! and through the app's list.

use chrono::{DateTime, Duration, Utc};
use futures::future::join_all;
use offers_integration_tests::*;
use offers_local::StreamReader;
use offers_shared::domain::campaign::parse_definition;
use offers_shared::domain::dates::format_timestamp;
use offers_shared::dynamo::CampaignsTable;
use serde_json::{json, Map, Value};

const CAMPAIGNS: &str = "CampaignsTable";
const POOL: [&str; 3] = ["co-tea", "co-cake", "co-soup"];

/// The bed with a catalog of three plain offers and the campaign stored.
async fn bed_with_campaign(campaign_id: &str, slots: u64, start: DateTime<Utc>) -> TestBed {
    let bed = TestBed::new().await;
    bed.load_plain_offers(&POOL).await;
    put_campaign(&bed, campaign_id, slots, start).await;
    bed
}

fn campaigns(bed: &TestBed) -> CampaignsTable {
    CampaignsTable::new(bed.client.clone(), bed.table(CAMPAIGNS))
}

async fn put_campaign(bed: &TestBed, campaign_id: &str, slots: u64, start: DateTime<Utc>) {
    put_campaign_with(bed, campaign_id, slots, start, "P1D").await;
}

async fn put_campaign_with(
    bed: &TestBed,
    campaign_id: &str,
    slots: u64,
    start: DateTime<Utc>,
    cadence: &str,
) {
    let text = json!({
        "campaignId": campaign_id, "mode": "alwaysOn",
        "pool": POOL.iter().map(|offer| json!({"offerId": offer})).collect::<Vec<_>>(),
        "startDate": format_timestamp(start),
        "endDate": format_timestamp(start + Duration::days(90)),
        "validDays": 14, "cadence": cadence, "slots": slots, "holdout": 0.1,
        "reward": "redeemed"
    })
    .to_string();
    let definition = parse_definition(&text).expect("a valid definition");
    campaigns(bed)
        .put_definition(&definition, Utc::now())
        .await
        .expect("stored");
}

fn visit(id: &str, user: &str, at: DateTime<Utc>) -> Value {
    transaction(id, user, 14.0, &format_timestamp(at))
}

/// Puts the transactions; the stream records they made.
async fn put_transactions(bed: &TestBed, stream: &mut StreamReader, items: &[Value]) -> Vec<Value> {
    join_all(items.iter().map(|item| bed.put(TRANSACTIONS, item.clone()))).await;
    let mut records = Vec::new();
    while records.len() < items.len() {
        let new = stream.read_new().await.expect("transactions stream");
        assert!(!new.is_empty(), "the stream shows every transaction");
        records.extend(inserts(&new));
    }
    records
}

/// The function wired as main.rs wires it, reading its caches every visit.
fn visits(bed: &TestBed) -> user_visits::DynamoUserVisits {
    bed.visits(&[("ALWAYS_ON_CACHE_SECONDS", "0")])
}

async fn deliver(visits: &user_visits::DynamoUserVisits, records: &[Value]) {
    deliver_until_none_fail(records, |batch| invoke_visits(visits, batch)).await;
}

/// Hands what the pending table's stream shows to the dispatcher.
async fn dispatch(bed: &TestBed, pending: &mut StreamReader) {
    let records = pending.read_new().await.expect("pending stream");
    let dispatcher = bed.dispatcher(&[]);
    deliver_until_none_fail(&records, |batch| invoke(&dispatcher, batch)).await;
}

async fn offers_of(bed: &TestBed, user: &str) -> Vec<Map<String, Value>> {
    bed.scan(OFFERS)
        .await
        .into_iter()
        .filter(|offer| offer["userId"] == user)
        .collect()
}

async fn pending_of(bed: &TestBed, user: &str) -> Vec<Map<String, Value>> {
    bed.scan(PENDING)
        .await
        .into_iter()
        .filter(|row| row["userId"] == user)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_becomes_one_offer_with_selection_and_its_dates_in_the_apps_list() {
    let bed = bed_with_campaign("always-1", 2, Utc::now() - Duration::days(3)).await;
    let visits = visits(&bed);
    let mut transactions = bed.transactions_stream().await;
    let mut pending = bed.stream().await;
    let user = "us-east-1:always-user";
    let at = Utc::now() - Duration::minutes(2);
    let records = put_transactions(&bed, &mut transactions, &[visit("ao-1", user, at)]).await;
    deliver(&visits, &records).await;

    let rows = pending_of(&bed, user).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    let offer_id = row["offerId"].as_str().expect("offerId");
    assert!(POOL.contains(&offer_id));
    assert_eq!(row["sortKey"], json!(format!("always-1+{offer_id}")));
    assert_eq!(row["campaignId"], "always-1");
    assert_eq!(row["rank"], 1);
    assert!(row["assignmentId"]
        .as_str()
        .is_some_and(|id| id.len() == 36));
    let selection = &row["selection"];
    assert!(selection["propensity"]
        .as_f64()
        .is_some_and(|p| p > 0.0 && p <= 1.0));
    assert_eq!(
        selection["context"],
        json!({"visits30": "1", "mode": "pickup", "spend": "10-25",
               "daypart": offers_shared::domain::profile::Daypart::of(at).as_str()})
    );

    dispatch(&bed, &mut pending).await;
    let offers = offers_of(&bed, user).await;
    assert_eq!(offers.len(), 1);
    let offer = &offers[0];
    assert_eq!(offer["offerId"], json!(offer_id));
    assert_eq!(offer["campaignId"], "always-1");
    assert_eq!(offer["startDate"], json!(format_timestamp(at)));
    assert_eq!(
        offer["expiryDate"],
        json!(format_timestamp(at + Duration::days(14)))
    );
    assert_eq!(offer["selection"]["context"], selection["context"]);

    // In the app's list.
    let lookup = bed.lookup(&[]);
    let listed = call_lookup(
        &lookup,
        &api_event("GET", "/rewards/offers", "", Identity::Iam(user)),
    )
    .await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let listed = listed.body["offers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["offerId"], json!(offer_id));
    assert_eq!(listed[0]["campaignId"], "always-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_delivered_twice_and_eight_times_at_once_makes_one_offer() {
    let bed = bed_with_campaign("always-2", 2, Utc::now() - Duration::days(3)).await;
    let mut transactions = bed.transactions_stream().await;
    let mut pending = bed.stream().await;
    let user = "us-east-1:replayed";
    let records = put_transactions(
        &bed,
        &mut transactions,
        &[visit("ao-r", user, Utc::now() - Duration::minutes(1))],
    )
    .await;
    // Eight function instances at once, each with its own caches.
    let instances: Vec<_> = (0..8).map(|_| visits(&bed)).collect();
    join_all(instances.iter().map(|visits| deliver(visits, &records))).await;
    deliver(&instances[0], &records).await;
    assert_eq!(pending_of(&bed, user).await.len(), 1);
    dispatch(&bed, &mut pending).await;
    // After dispatch, the same visit again: still one offer, no new row.
    deliver(&instances[1], &records).await;
    assert!(pending_of(&bed, user).await.is_empty());
    assert_eq!(offers_of(&bed, user).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_visits_of_one_window_at_once_make_one_offer_and_other_windows_more_until_slots() {
    // Windows of 6 hours: the current one began an hour ago.
    let now = Utc::now();
    let bed = TestBed::new().await;
    bed.load_plain_offers(&POOL).await;
    put_campaign_with(
        &bed,
        "always-3",
        2,
        now - Duration::days(3) - Duration::hours(1),
        "PT6H",
    )
    .await;
    let mut transactions = bed.transactions_stream().await;
    let mut pending = bed.stream().await;
    let user = "us-east-1:twice";
    let today = [
        visit("ao-w1", user, now - Duration::seconds(30)),
        visit("ao-w2", user, now - Duration::minutes(50)),
    ];
    let records = put_transactions(&bed, &mut transactions, &today).await;
    let (one, two) = (visits(&bed), visits(&bed));
    tokio::join!(deliver(&one, &records[..1]), deliver(&two, &records[1..]));
    dispatch(&bed, &mut pending).await;
    let offers = offers_of(&bed, user).await;
    assert_eq!(offers.len(), 1, "one offer in one window: {offers:?}");
    assert!(
        pending_of(&bed, user).await.is_empty(),
        "a second row, if any, was consumed as a duplicate"
    );

    // The previous window: a second offer, not the one held.
    let earlier = put_transactions(
        &bed,
        &mut transactions,
        &[visit("ao-w0", user, now - Duration::hours(3))],
    )
    .await;
    deliver(&one, &earlier).await;
    dispatch(&bed, &mut pending).await;
    let offers = offers_of(&bed, user).await;
    assert_eq!(offers.len(), 2);
    assert_ne!(offers[0]["offerId"], offers[1]["offerId"]);

    // Both slots held: a visit of a third window gives nothing.
    let third = put_transactions(
        &bed,
        &mut transactions,
        &[visit("ao-w9", user, now - Duration::hours(10))],
    )
    .await;
    deliver(&two, &third).await;
    assert!(pending_of(&bed, user).await.is_empty());
    assert_eq!(offers_of(&bed, user).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_old_ahead_and_before_the_campaign_assign_nothing_but_count() {
    let start = Utc::now() - Duration::hours(2);
    let bed = bed_with_campaign("always-4", 1, start).await;
    let mut transactions = bed.transactions_stream().await;
    let now = Utc::now();
    let records = put_transactions(
        &bed,
        &mut transactions,
        &[
            visit("ao-old", "us-east-1:old", now - Duration::hours(25)),
            visit("ao-ahead", "us-east-1:ahead", now + Duration::minutes(30)),
            visit(
                "ao-before",
                "us-east-1:before",
                start - Duration::minutes(5),
            ),
        ],
    )
    .await;
    let visits = visits(&bed);
    deliver(&visits, &records).await;
    assert_eq!(bed.count(PENDING).await, 0);
    assert_eq!(
        bed.count(PROFILES).await,
        6,
        "each counted in its profile (a profile and a mark each)"
    );

    assert!(campaigns(&bed)
        .set_paused("always-4", true, Utc::now())
        .await
        .expect("paused"));
    let paused = put_transactions(
        &bed,
        &mut transactions,
        &[visit("ao-p", "us-east-1:paused", Utc::now())],
    )
    .await;
    deliver(&visits, &paused).await;
    assert_eq!(bed.count(PENDING).await, 0);
    campaigns(&bed)
        .set_paused("always-4", false, Utc::now())
        .await
        .expect("resumed");
    let resumed = put_transactions(
        &bed,
        &mut transactions,
        &[visit("ao-q", "us-east-1:paused", Utc::now())],
    )
    .await;
    deliver(&visits, &resumed).await;
    assert_eq!(bed.count(PENDING).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_offer_deleted_from_the_catalog_is_skipped() {
    let bed = bed_with_campaign("always-5", 1, Utc::now() - Duration::days(1)).await;
    for id in ["co-tea", "co-soup"] {
        bed.client
            .delete_item()
            .table_name(bed.table(CATALOG))
            .key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.into()))
            .send()
            .await
            .expect("deleted");
    }
    let mut transactions = bed.transactions_stream().await;
    let mut pending = bed.stream().await;
    let items: Vec<Value> = (0..6)
        .map(|i| visit(&format!("ao-d{i}"), &format!("us-east-1:d{i}"), Utc::now()))
        .collect();
    let records = put_transactions(&bed, &mut transactions, &items).await;
    deliver(&visits(&bed), &records).await;
    let rows = bed.scan(PENDING).await;
    assert_eq!(rows.len(), 6);
    assert!(
        rows.iter().all(|row| row["offerId"] == "co-cake"),
        "{rows:?}"
    );
    dispatch(&bed, &mut pending).await;
    assert_eq!(bed.count(OFFERS).await, 6);
    assert_eq!(bed.count(REJECTED).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_transactions_of_now_assign_nothing_and_fail_nothing() {
    let bed = bed_with_campaign("always-6", 2, Utc::now() - Duration::days(1)).await;
    let mut transactions = bed.transactions_stream().await;
    let user = "us-east-1:hostile-now";
    let now = format_timestamp(Utc::now());
    // The fixture's invalid transactions, dated now where they have a date.
    let invalid: Vec<Value> = invalid_transactions(user)
        .into_iter()
        .map(|mut item| {
            if item["occurredAt"] == "2026-05-02T10:00:00Z" {
                item["occurredAt"] = json!(now);
            }
            item
        })
        .collect();
    let records = put_transactions(&bed, &mut transactions, &invalid).await;
    let visits = visits(&bed);
    for _delivery in 0..2 {
        assert!(invoke_visits(&visits, &records).await.is_empty());
    }
    assert_eq!(bed.count(PENDING).await, 0);
    assert_eq!(bed.count(PROFILES).await, 0, "nothing counted");
    // The same user's valid visit: the campaign assigns.
    let valid = put_transactions(&bed, &mut transactions, &[visit("ao-v", user, Utc::now())]).await;
    deliver(&visits, &valid).await;
    assert_eq!(pending_of(&bed, user).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_whose_offers_budget_is_used_up_assigns_nothing_more() {
    let bed = TestBed::new().await;
    bed.load_plain_offers(&POOL).await;
    let start = Utc::now() - Duration::days(3);
    let text = json!({
        "campaignId": "always-budget", "mode": "alwaysOn",
        "pool": POOL.iter().map(|offer| json!({"offerId": offer})).collect::<Vec<_>>(),
        "startDate": format_timestamp(start),
        "endDate": format_timestamp(start + Duration::days(90)),
        "validDays": 14, "cadence": "P1D", "slots": 1, "holdout": 0.1,
        "reward": "redeemed", "budget": {"offers": 2}
    })
    .to_string();
    let definition = parse_definition(&text).expect("a valid definition");
    campaigns(&bed)
        .put_definition(&definition, Utc::now())
        .await
        .expect("stored");
    let visits = visits(&bed);
    let mut transactions = bed.transactions_stream().await;
    let mut pending = bed.stream().await;
    let at = Utc::now() - Duration::minutes(2);

    // Two users: two offers, the budget used up by the dispatcher.
    let first = [
        visit("ab-1", "us-east-1:budget-a", at),
        visit("ab-2", "us-east-1:budget-b", at),
    ];
    let records = put_transactions(&bed, &mut transactions, &first).await;
    deliver(&visits, &records).await;
    dispatch(&bed, &mut pending).await;
    assert_eq!(bed.count(OFFERS).await, 2);
    let used = campaigns(&bed)
        .get("always-budget")
        .await
        .expect("read")
        .expect("stored")
        .used;
    assert_eq!(used.offers, 2);

    // A third user's visit: the campaign is exhausted, nothing is chosen
    // (no pending row, so no rejection either).
    let third = [visit("ab-3", "us-east-1:budget-c", at)];
    let records = put_transactions(&bed, &mut transactions, &third).await;
    deliver(&visits, &records).await;
    assert!(pending_of(&bed, "us-east-1:budget-c").await.is_empty());
    assert_eq!(bed.count(REJECTED).await, 0);
    assert_eq!(bed.count(OFFERS).await, 2);
}
