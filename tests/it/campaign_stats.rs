//! Campaign statistics end to end on DynamoDB Local: offers assigned by the
//! dispatcher, then viewed, clicked, redeemed, voided and revoked as the
//! other functions update the offer item; the offers table's real stream
//! handed to the statistics function as Lambda would; the counts read back
//! through the support API. Replayed and concurrent deliveries change
//! nothing, nor does a TTL deletion.

use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::join_all;
use offers_integration_tests::*;
use serde_json::{json, Value};
use std::collections::HashMap;

const CAMPAIGN: &str = "camp-1";

/// An UpdateItem of one offer, as the redemption and event functions write
/// them: `values` are plain JSON, turned into attribute values.
async fn update_offer(bed: &TestBed, user: &str, id: &str, expression: &str, values: Value) {
    let mut request = bed
        .client
        .update_item()
        .table_name(bed.table(OFFERS))
        .key("userId", AttributeValue::S(user.into()))
        .key("personalizedOfferId", AttributeValue::S(id.into()))
        .update_expression(expression)
        .condition_expression("attribute_exists(personalizedOfferId)");
    for (name, value) in values.as_object().into_iter().flatten() {
        let value: AttributeValue = serde_dynamo::to_attribute_value(value).expect("attribute");
        request = request.expression_attribute_values(name, value);
    }
    request.send().await.expect("update offer");
}

async fn view(bed: &TestBed, user: &str, id: &str) {
    update_offer(
        bed,
        user,
        id,
        "SET viewedAt = if_not_exists(viewedAt, :at) ADD viewCount :one",
        json!({":at": "2026-03-01T10:00:00Z", ":one": 1}),
    )
    .await;
}

async fn click(bed: &TestBed, user: &str, id: &str) {
    update_offer(
        bed,
        user,
        id,
        "SET clickedAt = if_not_exists(clickedAt, :at) ADD clickCount :one",
        json!({":at": "2026-03-01T10:01:00Z", ":one": 1}),
    )
    .await;
}

fn redemption(order: &str, total: f64, at: &str) -> Value {
    json!({"redemptionId": format!("r-{order}"), "orderId": order, "totalCost": total,
           "serviceMode": "eatIn", "redeemedAt": at})
}

/// A first redemption (the map does not exist yet) or a later one.
async fn redeem(
    bed: &TestBed,
    user: &str,
    id: &str,
    order: &str,
    total: f64,
    at: &str,
    first: bool,
) {
    if first {
        update_offer(
            bed,
            user,
            id,
            "SET redemptions = :map ADD redemptionCount :one",
            json!({":map": {order: redemption(order, total, at)}, ":one": 1}),
        )
        .await;
    } else {
        update_offer(
            bed,
            user,
            id,
            &format!("SET redemptions.{order} = :r ADD redemptionCount :one"),
            json!({":r": redemption(order, total, at), ":one": 1}),
        )
        .await;
    }
}

async fn void(bed: &TestBed, user: &str, id: &str, order: &str) {
    update_offer(
        bed,
        user,
        id,
        &format!("SET redemptions.{order}.voidedAt = :at ADD redemptionCount :minus"),
        json!({":at": "2026-03-03T09:00:00Z", ":minus": -1}),
    )
    .await;
}

async fn revoke(bed: &TestBed, user: &str, id: &str) {
    update_offer(
        bed,
        user,
        id,
        "SET revokedAt = :at, revokedBy = :by",
        json!({":at": "2026-03-04T00:00:00Z", ":by": "agent-1"}),
    )
    .await;
}

async fn stats_of(bed: &TestBed, campaign: &str) -> ApiResponse {
    let support = bed.support(&[]);
    call_support(
        &support,
        &support_event(
            "GET",
            &format!("/support/campaigns/{campaign}/stats"),
            "",
            Agent::Support("agent-1"),
        ),
    )
    .await
}

fn counts(
    assigned: u64,
    viewed: u64,
    clicked: u64,
    redeemed: u64,
    redemptions: u64,
    revoked: u64,
    order_value: f64,
) -> Value {
    json!({"assigned": assigned, "viewed": viewed, "clicked": clicked, "redeemed": redeemed,
           "redemptions": redemptions, "revoked": revoked, "orderValue": order_value,
           "discountValue": 0.0})
}

/// A decimal text without trailing zeros after its point.
fn normal(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// A counter's stored amount, as DynamoDB's decimal text.
async fn stored_amount(bed: &TestBed, sk: &str, name: &str) -> Option<String> {
    let item = bed
        .client
        .get_item()
        .table_name(bed.table(STATS))
        .key("pk", AttributeValue::S(format!("campaign#{CAMPAIGN}")))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get counter")
        .item?;
    item.get(name)?.as_n().ok().cloned()
}

/// Four offers of `camp-1` (users u-a..u-d) made by the dispatcher, and
/// their life: three viewed, two clicked, two redeemed (one of them twice,
/// the second use voided), one revoked. Returns the bed, the offers'
/// ids by user, and every record of the offers table's stream.
async fn campaign_lived() -> (TestBed, HashMap<String, String>, Vec<Value>) {
    let bed = TestBed::with_sample_catalog().await;
    let mut offers_stream = bed.offers_stream().await;
    let mut pending = bed.stream().await;
    let rows: Vec<Value> = ["a", "b", "c", "d"]
        .iter()
        .map(|k| fries_row(&format!("u-{k}"), k))
        .collect();
    let by_key = bed.dispatch_rows(&mut pending, &rows).await;
    let ids: HashMap<String, String> = by_key
        .into_iter()
        .map(|(key, id)| (format!("u-{key}"), id))
        .collect();
    let id = |user: &str| ids[user].clone();
    for user in ["u-a", "u-b", "u-c"] {
        view(&bed, user, &id(user)).await;
    }
    // A second view of the same offer counts once.
    view(&bed, "u-a", &id("u-a")).await;
    for user in ["u-a", "u-b"] {
        click(&bed, user, &id(user)).await;
    }
    redeem(
        &bed,
        "u-a",
        &id("u-a"),
        "order1",
        12.10,
        "2026-03-02T12:00:00Z",
        true,
    )
    .await;
    redeem(
        &bed,
        "u-b",
        &id("u-b"),
        "order2",
        5.0,
        "2026-03-02T13:00:00Z",
        true,
    )
    .await;
    redeem(
        &bed,
        "u-b",
        &id("u-b"),
        "order3",
        3.3,
        "2026-03-03T08:00:00Z",
        false,
    )
    .await;
    void(&bed, "u-b", &id("u-b"), "order3").await;
    revoke(&bed, "u-d", &id("u-d")).await;
    let records = offers_stream.read_new().await.expect("offers stream");
    (bed, ids, records)
}

fn expected_fries() -> Value {
    counts(4, 3, 2, 2, 2, 1, 17.1)
}

fn check_counts(body: &Value, expected: &Value) {
    assert_eq!(body["campaignId"], CAMPAIGN);
    let offers = body["offers"].as_array().expect("offers");
    assert_eq!(offers.len(), 1, "{body}");
    let mut entry = offers[0].clone();
    assert_eq!(entry["offerId"], "co-fries");
    entry.as_object_mut().map(|e| e.remove("offerId"));
    assert_eq!(&entry, expected, "{body}");
    assert_eq!(&body["totals"], expected, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stats_api_shows_exact_counts_after_the_offers_life() {
    let (bed, _ids, records) = campaign_lived().await;
    assert!(
        records.iter().any(|r| r["eventName"] == "MODIFY"),
        "the offers table streams its changes"
    );
    let stats = bed.stats(&[]);
    deliver_stats(&stats, &records).await;
    let response = stats_of(&bed, CAMPAIGN).await;
    assert_eq!(response.status, 200);
    check_counts(&response.body, &expected_fries());
    assert!(
        response.body["totals"].get("selected").is_none(),
        "no selection used"
    );

    // Redemptions over time: the voided use is not there (its use and its
    // void came in one batch and cancel out: nothing was written for them).
    let days: Vec<(String, Value)> = bed
        .scan(STATS)
        .await
        .into_iter()
        .filter(|item| {
            item["pk"] == format!("campaign#{CAMPAIGN}")
                && item["sk"].as_str().is_some_and(|sk| sk.starts_with("day#"))
        })
        .map(|item| {
            (
                item["day"].as_str().unwrap_or_default().to_owned(),
                item["redemptions"].clone(),
            )
        })
        .collect();
    let mut days = days;
    days.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(days, vec![("2026-03-02".to_owned(), json!(2))]);

    // Learning counters for selection: the offer overall, all campaigns.
    assert_eq!(fries_learning(&bed).await, (json!(4), json!(2), json!(2)));
}

/// What selection learns of `co-fries` overall: assigned, clicked, redeemed,
/// summed over its dated counters (the days its offers were made: today,
/// or yesterday too if the test ran over midnight UTC). No undated counter
/// is written any more.
async fn fries_learning(bed: &TestBed) -> (Value, Value, Value) {
    let items = bed.scan(STATS).await;
    let learning: Vec<_> = items
        .iter()
        .filter(|item| item["pk"] == "offer#co-fries")
        .collect();
    assert!(
        learning.iter().all(|item| item["sk"]
            .as_str()
            .is_some_and(|sk| sk.starts_with("day#") && sk.ends_with("#overall"))),
        "only dated overall counters: {learning:?}"
    );
    let sum = |name: &str| {
        json!(learning
            .iter()
            .map(|item| item.get(name).and_then(Value::as_i64).unwrap_or(0))
            .sum::<i64>())
    };
    (sum("assigned"), sum("clicked"), sum("redeemed"))
}

/// The records delivered by `invocations` statistics functions at once,
/// each until none of its records fails.
async fn deliver_at_once(bed: &TestBed, records: &[Value], invocations: usize) {
    let invocations: Vec<_> = (0..invocations).map(|_| bed.stats(&[])).collect();
    join_all(
        invocations
            .iter()
            .map(|stats| deliver_until_none_fail(records, |batch| invoke_stats(stats, batch))),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_and_concurrent_deliveries_change_nothing() {
    let (bed, _ids, records) = campaign_lived().await;
    // First delivery: the batch in N concurrent invocations at once.
    deliver_at_once(&bed, &records, 6).await;
    check_counts(&stats_of(&bed, CAMPAIGN).await.body, &expected_fries());
    let items_after_first = bed.scan(STATS).await;

    // The same batch again, in sequence, then twice at once, then halves.
    let stats = bed.stats(&[]);
    deliver_stats(&stats, &records).await;
    let other = bed.stats(&[]);
    tokio::join!(
        deliver_until_none_fail(&records, |batch| invoke_stats(&stats, batch)),
        deliver_until_none_fail(&records, |batch| invoke_stats(&other, batch))
    );
    let half = records.len() / 2;
    deliver_stats(&stats, &records[half..]).await;
    check_counts(&stats_of(&bed, CAMPAIGN).await.body, &expected_fries());
    // Compared as JSON values (key order aside), sorted by key.
    let by_key = |items: Vec<serde_json::Map<String, Value>>| {
        let mut items: Vec<Value> = items.into_iter().map(Value::Object).collect();
        items.sort_by_key(|item| format!("{}|{}", item["pk"], item["sk"]));
        items
    };
    let before = by_key(items_after_first);
    let after = by_key(bed.scan(STATS).await);
    assert_eq!(before, after, "not one item changed");
    // The dated learning counters among them counted each offer once.
    assert_eq!(fries_learning(&bed).await, (json!(4), json!(2), json!(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttl_deletion_counts_nothing_down() {
    let (bed, ids, records) = campaign_lived().await;
    let stats = bed.stats(&[]);
    deliver_stats(&stats, &records).await;
    let mut stream = bed.offers_stream().await;
    stream.read_new().await.expect("stream");
    // The offer's TTL deletes it: on AWS a REMOVE by dynamodb.amazonaws.com,
    // on DynamoDB Local an UNKNOWN_TO_SDK_VERSION record. Both are delivered.
    bed.client
        .delete_item()
        .table_name(bed.table(OFFERS))
        .key("userId", AttributeValue::S("u-a".into()))
        .key("personalizedOfferId", AttributeValue::S(ids["u-a"].clone()))
        .send()
        .await
        .expect("delete");
    let mut removes = stream.read_new().await.expect("stream");
    assert_eq!(removes.len(), 1);
    assert_eq!(removes[0]["eventName"], "REMOVE");
    let mut ttl = removes[0].clone();
    ttl["eventName"] = json!("UNKNOWN_TO_SDK_VERSION");
    ttl["eventID"] = json!("ttl-deletion");
    removes.push(ttl);
    deliver_stats(&stats, &removes).await;
    check_counts(&stats_of(&bed, CAMPAIGN).await.body, &expected_fries());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selection_splits_counts_into_selected_and_holdout() {
    let bed = TestBed::with_sample_catalog().await;
    let mut stream = bed.offers_stream().await;
    // Offers as the dispatcher writes them for pending rows with `selection`.
    for (index, holdout, tier) in [(0, false, "gold"), (1, false, "blue"), (2, true, "gold")] {
        bed.put(
            OFFERS,
            json!({
                "userId": format!("s-{index}"), "personalizedOfferId": format!("00000000-0000-4000-8000-00000000000{index}"),
                "offerId": "co-coffee", "templateId": "tpl-coffee", "campaignId": "camp-sel",
                "rules": {}, "startDate": "2026-01-01T00:00:00Z", "expiryDate": "2099-01-01T00:00:00Z",
                "rank": 1, "source": "campaign", "createdAt": "2026-01-01T00:00:00Z", "ttl": future_epoch(400),
                "selection": {"policy": "thompson-v1", "propensity": 0.5, "holdout": holdout,
                              "context": {"tier": tier, "region": "north"}}
            }),
        )
        .await;
    }
    update_offer(
        &bed,
        "s-0",
        "00000000-0000-4000-8000-000000000000",
        "SET redemptions = :map, clickedAt = :at ADD redemptionCount :one",
        json!({":map": {"o1": redemption("o1", 4.5, "2026-03-02T12:00:00Z")},
               ":at": "2026-03-02T11:00:00Z", ":one": 1}),
    )
    .await;
    let records = stream.read_new().await.expect("stream");
    deliver_stats(&bed.stats(&[]), &records).await;
    let body = stats_of(&bed, "camp-sel").await.body;
    let entry = &body["offers"][0];
    assert_eq!(entry["assigned"], 3);
    assert_eq!(entry["selected"], counts(2, 0, 1, 1, 1, 0, 4.5));
    assert_eq!(entry["holdout"], counts(1, 0, 0, 0, 0, 0, 0.0));
    assert_eq!(body["totals"]["selected"]["assigned"], 2);
    assert_eq!(body["totals"]["holdout"]["assigned"], 1);
    // Learning counters per attribute value.
    let learning: HashMap<String, (Value, Value)> = bed
        .scan(STATS)
        .await
        .into_iter()
        .filter(|item| item["pk"] == "offer#co-coffee")
        .map(|item| {
            (
                item["sk"].as_str().unwrap_or_default().to_owned(),
                (
                    item.get("assigned").cloned().unwrap_or(json!(0)),
                    item.get("redeemed").cloned().unwrap_or(json!(0)),
                ),
            )
        })
        .collect();
    // Dated by the day the offers were made (createdAt), whenever redeemed.
    assert_eq!(learning["day#2026-01-01#overall"], (json!(3), json!(1)));
    assert_eq!(
        learning["day#2026-01-01#attr#tier#gold"],
        (json!(2), json!(1))
    );
    assert_eq!(learning["day#2026-01-01#attr#tier#blue"].0, json!(1));
    assert_eq!(learning["day#2026-01-01#attr#region#north"].0, json!(3));
    assert_eq!(learning.len(), 4, "no undated counter: {learning:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_campaigns_are_zeros_and_only_support_may_read() {
    let bed = TestBed::with_sample_catalog().await;
    let response = stats_of(&bed, "never-run").await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.body,
        json!({"campaignId": "never-run", "offers": [], "totals": counts(0, 0, 0, 0, 0, 0, 0.0)})
    );
    let support = bed.support(&[]);
    let path = "/support/campaigns/never-run/stats";
    for (agent, status) in [
        (Agent::WithGroups("u-1", "[customers]"), 403),
        (Agent::Nobody, 401),
    ] {
        let answer = call_support(&support, &support_event("GET", path, "", agent)).await;
        assert_eq!(answer.status, status);
        assert!(answer.body["error"]["code"].is_string());
    }
    let long = format!("/support/campaigns/{}/stats", "c".repeat(1_001));
    let answer = call_support(
        &support,
        &support_event("GET", &long, "", Agent::Support("a")),
    )
    .await;
    assert_eq!(answer.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_image_between_valid_neighbours_is_not_counted_and_never_retried() {
    let bed = TestBed::with_sample_catalog().await;
    let mut stream = bed.offers_stream().await;
    let offer = |index: usize, extra: Value| {
        let mut item = json!({
            "userId": format!("h-{index}"), "personalizedOfferId": format!("00000000-0000-4000-8000-00000000010{index}"),
            "offerId": "co-fries", "campaignId": "camp-h", "ttl": future_epoch(400)});
        for (name, value) in extra.as_object().into_iter().flatten() {
            item[name] = value.clone();
        }
        item
    };
    bed.put(OFFERS, offer(0, json!({}))).await;
    // An offer id no counter's key can hold: no function of ours writes one.
    bed.put(OFFERS, offer(1, json!({"offerId": "x".repeat(1_001)})))
        .await;
    bed.put(OFFERS, offer(2, json!({}))).await;
    // A negative use count: not read (the uses not voided instead, none),
    // the rest of the offer counted.
    bed.put(OFFERS, offer(3, json!({"redemptionCount": -3})))
        .await;
    let records = stream.read_new().await.expect("stream");
    deliver_stats(&bed.stats(&[]), &records).await;
    let body = stats_of(&bed, "camp-h").await.body;
    assert_eq!(body["totals"]["assigned"], 3, "{body}");
    assert_eq!(body["totals"]["redemptions"], 0, "{body}");
    assert_eq!(body["offers"].as_array().map(Vec::len), Some(1), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_events_count_as_documented() {
    let bed = TestBed::with_sample_catalog().await;
    // An assignment, its first view, its first use, then its TTL deletion.
    let event = read_json("events/stats-offer-changes.json");
    let records = event["Records"].as_array().cloned().expect("records");
    deliver_stats(&bed.stats(&[]), &records).await;
    let support = bed.support(&[]);
    let answer = call_support(&support, &read_json("events/support-campaign-stats.json")).await;
    assert_eq!(answer.status, 200);
    let one_use = counts(1, 1, 0, 1, 1, 0, 12.1);
    assert_eq!(answer.body["totals"]["selected"], one_use);
    let mut all = one_use;
    all["selected"] = counts(1, 1, 0, 1, 1, 0, 12.1);
    all["holdout"] = counts(0, 0, 0, 0, 0, 0, 0.0);
    assert_eq!(
        answer.body["totals"], all,
        "the REMOVE counted nothing down"
    );
}

/// The same counts when the real functions change the offers: the app's
/// activity function records views, clicks, redemptions and a void, the
/// support function revokes; the statistics function counts what the
/// offers table's stream shows, and a second delivery changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_follow_what_the_real_functions_do() {
    let bed = TestBed::with_sample_catalog().await;
    let mut offers_stream = bed.offers_stream().await;
    let mut pending = bed.stream().await;
    let rows: Vec<Value> = ["x", "y", "z"]
        .iter()
        .map(|k| fries_row(&format!("u-{k}"), k))
        .collect();
    let by_key = bed.dispatch_rows(&mut pending, &rows).await;
    let id = |key: &str| by_key[key].clone();
    let activity = bed.activity(&[]);
    let app = |method: &str, user: &str, path: String, body: Option<Value>| {
        let event = api_event(method, &path, "", Identity::Jwt(user));
        match body {
            Some(body) => with_body(event, &body),
            None => event,
        }
    };
    let event = |user: &str, key: &str, event_id: &str, kind: &str| {
        app(
            "POST",
            user,
            format!("/rewards/offers/{}/events", id(key)),
            Some(json!({"eventId": event_id, "type": kind})),
        )
    };
    let redeem = |user: &str, key: &str, order: &str, total: f64| {
        app(
            "POST",
            user,
            format!("/rewards/offers/{}/redemptions", id(key)),
            Some(json!({"orderId": order, "totalCost": total, "serviceMode": "pickup"})),
        )
    };
    // u-x: viewed (twice, and one event delivered twice), clicked, redeemed.
    let first_view = "3b241101-e2bb-4255-8caf-4136c566a962";
    for (event_id, kind) in [
        (first_view, "viewed"),
        (first_view, "viewed"),
        ("6f1c2a90-1d5e-4c1b-9a43-2b7e8f0c9d11", "viewed"),
        ("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "clicked"),
    ] {
        let response = call_activity(&activity, &event("u-x", "x", event_id, kind)).await;
        assert_eq!(response.status, 202, "{:?}", response.body);
    }
    let response = call_activity(&activity, &redeem("u-x", "x", "order-x", 10.0)).await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    // u-y: a use voided (the order was cancelled), then a new order.
    let response = call_activity(&activity, &redeem("u-y", "y", "order-y1", 8.0)).await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    let void = app(
        "DELETE",
        "u-y",
        format!("/rewards/offers/{}/redemptions/order-y1", id("y")),
        None,
    );
    assert_eq!(call_activity(&activity, &void).await.status, 200);
    let response = call_activity(&activity, &redeem("u-y", "y", "order-y2", 9.5)).await;
    assert_eq!(response.status, 201, "{:?}", response.body);
    // u-z: revoked by an agent.
    let support = bed.support(&[]);
    let revoke = support_event(
        "DELETE",
        &format!("/support/users/u-z/offers/{}", id("z")),
        "reason=test",
        Agent::Support("agent-1"),
    );
    assert_eq!(call_support(&support, &revoke).await.status, 200);

    let records = offers_stream.read_new().await.expect("offers stream");
    let stats = bed.stats(&[]);
    deliver_stats(&stats, &records).await;
    let expected = counts(3, 1, 1, 2, 2, 1, 19.5);
    check_counts(&stats_of(&bed, CAMPAIGN).await.body, &expected);
    deliver_stats(&stats, &records).await;
    check_counts(&stats_of(&bed, CAMPAIGN).await.body, &expected);
}

/// Amounts through the real activity function, written as the client
/// writes them: the largest one is counted exactly in `orderValue`,
/// discounts are summed in `discountValue`, and a void takes both back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_amounts_are_counted_exactly_and_a_void_takes_the_discount_back() {
    let bed = TestBed::with_sample_catalog().await;
    let mut offers_stream = bed.offers_stream().await;
    let mut pending = bed.stream().await;
    let rows: Vec<Value> = ["x", "y"]
        .iter()
        .map(|k| fries_row(&format!("u-{k}"), k))
        .collect();
    let by_key = bed.dispatch_rows(&mut pending, &rows).await;
    let activity = bed.activity(&[]);
    let call = |method: &str, user: &str, path: String, text: Option<String>| {
        let mut event = api_event(method, &path, "", Identity::Jwt(user));
        if let Some(text) = text {
            event["body"] = json!(text);
            event["headers"]["content-type"] = json!("application/json");
        }
        event
    };
    let redeem = |user: &str, key: &str, order: &str, total: &str, discount: &str| {
        call(
            "POST",
            user,
            format!("/rewards/offers/{}/redemptions", by_key[key]),
            Some(format!(
                r#"{{"orderId": "{order}", "totalCost": {total}, "discount": {discount}, "serviceMode": "pickup"}}"#
            )),
        )
    };
    for (user, key, order, total, discount) in [
        ("u-x", "x", "order-x", "999999999.9999", "0.0001"),
        ("u-y", "y", "order-y1", "8.0001", "2.5"),
    ] {
        let answer = call_activity(&activity, &redeem(user, key, order, total, discount)).await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
    }
    let stats = bed.stats(&[]);
    let records = offers_stream.read_new().await.expect("offers stream");
    deliver_stats(&stats, &records).await;
    let all = "offer#co-fries#all";
    assert_eq!(
        stored_amount(&bed, all, "orderValue")
            .await
            .as_deref()
            .map(normal),
        Some("1000000008")
    );
    assert_eq!(
        stored_amount(&bed, all, "discountValue")
            .await
            .as_deref()
            .map(normal),
        Some("2.5001")
    );
    // The order was cancelled; a new one used the offer again.
    let void = call(
        "DELETE",
        "u-y",
        format!("/rewards/offers/{}/redemptions/order-y1", by_key["y"]),
        None,
    );
    assert_eq!(call_activity(&activity, &void).await.status, 200);
    let answer = call_activity(&activity, &redeem("u-y", "y", "order-y2", "9.5", "0.25")).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let records = offers_stream.read_new().await.expect("offers stream");
    deliver_stats(&stats, &records).await;
    // Replayed: nothing moves.
    deliver_stats(&stats, &records).await;
    let order_value = stored_amount(&bed, all, "orderValue").await;
    let discount_value = stored_amount(&bed, all, "discountValue").await;
    assert_eq!(
        order_value.as_deref().map(normal),
        Some("1000000009.4999"),
        "999999999.9999 + 9.5, exactly"
    );
    assert_eq!(discount_value.as_deref().map(normal), Some("0.2501"));
    let body = stats_of(&bed, CAMPAIGN).await.body;
    let mut expected = counts(2, 0, 0, 2, 2, 0, 1_000_000_009.499_9);
    expected["discountValue"] = json!(0.2501);
    check_counts(&body, &expected);
}

/// Counts the stream's new records, twice (a replay moves nothing), and
/// checks the campaign's counts.
async fn count_new(bed: &TestBed, stream: &mut offers_local::StreamReader, expected: &Value) {
    let stats = bed.stats(&[]);
    let records = stream.read_new().await.expect("offers stream");
    deliver_stats(&stats, &records).await;
    deliver_stats(&stats, &records).await;
    check_counts(&stats_of(bed, CAMPAIGN).await.body, expected);
}

/// An offer item the statistics cannot read in full, written directly
/// (amounts no API accepts: 1e30 and 1e-100, a redemption that is no map):
/// what can be read counts, and every later change of that offer (a view,
/// a click, a void, a revocation) still counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_read_in_part_still_counts_its_later_changes() {
    let bed = TestBed::with_sample_catalog().await;
    let mut offers_stream = bed.offers_stream().await;
    let mut pending = bed.stream().await;
    let by_key = bed
        .dispatch_rows(&mut pending, &[fries_row("u-h", "h")])
        .await;
    let id = by_key["h"].clone();
    count_new(&bed, &mut offers_stream, &counts(1, 0, 0, 0, 0, 0, 0.0)).await;
    // Written directly, as no function of ours would.
    update_offer(
        &bed,
        "u-h",
        &id,
        "SET redemptions = :map ADD redemptionCount :three",
        json!({":map": {
            "huge": redemption("huge", 1e30, "2026-03-02T12:00:00Z"),
            "tiny": redemption("tiny", 1e-100, "2026-03-02T12:00:00Z"),
            "fine": redemption("fine", 12.5, "2026-03-02T12:00:00Z"),
            "odd": "not a redemption"
        }, ":three": 3}),
    )
    .await;
    count_new(&bed, &mut offers_stream, &counts(1, 0, 0, 1, 3, 0, 12.5)).await;
    // The later changes of that offer, one batch each.
    view(&bed, "u-h", &id).await;
    count_new(&bed, &mut offers_stream, &counts(1, 1, 0, 1, 3, 0, 12.5)).await;
    click(&bed, "u-h", &id).await;
    void(&bed, "u-h", &id, "huge").await;
    count_new(&bed, &mut offers_stream, &counts(1, 1, 1, 1, 2, 0, 12.5)).await;
    revoke(&bed, "u-h", &id).await;
    count_new(&bed, &mut offers_stream, &counts(1, 1, 1, 1, 2, 1, 12.5)).await;
    assert_eq!(
        fries_learning(&bed).await,
        (json!(1), json!(1), json!(1)),
        "selection learns from the offer too"
    );
}

/// Offers of two campaigns made yesterday, a deployment's old all-time
/// counters beside them, the stream delivered twice and six times at once:
/// the dated counters count each offer once, and the reader gives planned
/// and always-on choices the dated days and the old bucket behind them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dated_learning_counters_count_once_and_steer_the_choices() {
    use offers_shared::domain::always_on::AlwaysOnCampaign;
    use offers_shared::domain::campaign::parse_definition;
    use offers_shared::domain::selection::history::utc_day;
    use offers_shared::dynamo::SelectionStatsTable;
    use offers_shared::ports::SelectionStatsReader;

    let bed = TestBed::with_sample_catalog().await;
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    let made_at = yesterday.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let day = yesterday.format("%Y-%m-%d").to_string();
    // Kept before counters were dated: fries once did well.
    bed.put(
        STATS,
        json!({"pk": "offer#co-fries", "sk": "overall", "offerId": "co-fries",
               "assigned": 500, "redeemed": 100}),
    )
    .await;
    let mut stream = bed.offers_stream().await;
    // 30 coffee offers (15 redeemed) and 30 fries offers (none), gold users.
    for index in 0..60 {
        let (offer, redeemed) = if index < 30 {
            ("co-coffee", index % 2 == 0)
        } else {
            ("co-fries", false)
        };
        let campaign = if index % 3 == 0 { "camp-a" } else { "camp-b" };
        let mut item = json!({
            "userId": format!("d-{index}"),
            "personalizedOfferId": format!("00000000-0000-4000-8000-{index:012}"),
            "offerId": offer, "templateId": "tpl", "campaignId": campaign,
            "rules": {}, "startDate": made_at, "expiryDate": "2099-01-01T00:00:00Z",
            "rank": 1, "source": "campaign", "createdAt": made_at, "ttl": future_epoch(400),
            "selection": {"policy": "thompson-backoff/3", "propensity": 0.5, "holdout": false,
                          "context": {"tier": "gold"}}
        });
        if redeemed {
            item["redemptionCount"] = json!(1);
        }
        bed.put(OFFERS, item).await;
    }
    let records = stream.read_new().await.expect("stream");
    assert_eq!(records.len(), 60);
    let stats = bed.stats(&[]);
    deliver_stats(&stats, &records).await;
    deliver_stats(&stats, &records).await;
    deliver_at_once(&bed, &records, 6).await;

    let counter = |items: &[serde_json::Map<String, Value>], pk: &str, sk: &str| {
        items
            .iter()
            .find(|item| item["pk"] == pk && item["sk"] == sk)
            .map(|item| {
                (
                    item.get("assigned").and_then(Value::as_i64).unwrap_or(0),
                    item.get("redeemed").and_then(Value::as_i64).unwrap_or(0),
                )
            })
    };
    let items = bed.scan(STATS).await;
    let dated = |scope: &str| format!("day#{day}#{scope}");
    assert_eq!(
        counter(&items, "offer#co-coffee", &dated("overall")),
        Some((30, 15))
    );
    assert_eq!(
        counter(&items, "offer#co-coffee", &dated("attr#tier#gold")),
        Some((30, 15))
    );
    assert_eq!(
        counter(&items, "offer#co-fries", &dated("overall")),
        Some((30, 0))
    );
    assert_eq!(
        counter(&items, "offer#co-fries", "overall"),
        Some((500, 100)),
        "the old counter is left as it was"
    );
    assert_eq!(counter(&items, "offer#co-coffee", "overall"), None);

    // The reader: dated counters with their day, the old one undated.
    let reader = SelectionStatsTable::new(bed.client.clone(), bed.table(STATS));
    let pool = vec!["co-coffee".to_owned(), "co-fries".to_owned()];
    let read = reader.learning_counters(&pool).await.expect("counters");
    assert_eq!(read.unreadable, 0);
    let today = utc_day(chrono::Utc::now().timestamp());
    let days: Vec<Option<u32>> = read.counters.iter().map(|c| c.day).collect();
    assert!(days.contains(&None), "{days:?}");
    assert!(days.contains(&Some(today - 1)), "{days:?}");
    // A plan's history: yesterday at 2^(-1/14), the old bucket a day older.
    let history = offers_shared::domain::selection::History::discounted(
        pool.clone(),
        &read.counters,
        today,
        14.0,
    )
    .expect("history");
    let weight = |age: u32| offers_shared::domain::selection::history::age_weight(age, 14.0);
    let coffee = history.overall(0);
    assert!(
        (coffee.assigned - 30.0 * weight(1)).abs() < 1e-9,
        "{coffee:?}"
    );
    assert!(
        (coffee.redeemed - 15.0 * weight(1)).abs() < 1e-9,
        "{coffee:?}"
    );
    let fries = history.overall(1);
    let expected = 30.0 * weight(1) + 500.0 * weight(2);
    assert!((fries.assigned - expected).abs() < 1e-9, "{fries:?}");
    assert_eq!(fries.undiscounted, 530.0);

    // An always-on campaign's choices: coffee (50% lately) over fries (19%).
    let definition = parse_definition(
        &json!({"campaignId": "camp-ao", "mode": "alwaysOn",
                "pool": [{"offerId": "co-coffee"}, {"offerId": "co-fries"}],
                "startDate": "2026-01-01T00:00:00Z", "endDate": "2099-01-01T00:00:00Z",
                "validDays": 7, "cadence": "P1D",
                "slots": 1, "holdout": 0, "reward": "redeemed", "halfLife": 7})
        .to_string(),
    )
    .expect("a definition");
    let campaign = AlwaysOnCampaign::of(definition, 1, false).expect("always-on");
    let mut engine = campaign.engine(&read.counters, today).expect("engine");
    let context = std::collections::BTreeMap::from([("tier".to_owned(), "gold".to_owned())]);
    let coffee_first = (0..200)
        .filter(|user| {
            offers_shared::domain::always_on::choose(
                &mut engine,
                &campaign,
                &format!("u{user}"),
                0,
                &context,
                &[],
            )
            .is_some_and(|choice| choice.offer == 0)
        })
        .count();
    assert!(coffee_first > 180, "{coffee_first}");
}
