//! offerActivity end to end on DynamoDB Local: offers made by the dispatcher
//! from pending rows (or copies written with the SDK for states and rules it
//! would not produce), redeemed, voided and reported on through the handler
//! with API Gateway v2 events, concurrent deliveries included.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, Utc};
use futures::future::join_all;
use offers_integration_tests::*;
use offers_shared::domain::redemption::redemption_id;
use offers_shared::domain::PersonalizedOffer;
use offers_shared::dynamo::{offer_from_item, offer_to_item};
use serde_json::{json, Value};
use std::collections::HashSet;
use uuid::Uuid;

const OWNER: &str = "us-east-1:0d6f2c1e-3333-4a43-9d27-0f5d8a7c1e11";
const OTHER: &str = "us-east-1:0d6f2c1e-4444-4a43-9d27-0f5d8a7c1e11";
const SORT_KEY: &str = "camp-1+co-fries";

/// The owner's `co-fries` offer (minimumSpend 7.5, serviceModes [pickup],
/// redemptionLimit 1), made by the dispatcher.
async fn fries_offer() -> (TestBed, String) {
    let (bed, ids) = TestBed::with_offers(&[fries_row(OWNER, SORT_KEY)]).await;
    let id = ids[SORT_KEY].clone();
    (bed, id)
}

async fn stored(bed: &TestBed, user_id: &str, id: &str) -> PersonalizedOffer {
    offer_from_item(raw_item(bed, user_id, id).await).expect("offer")
}

/// The offer item as DynamoDB keeps it, attribute values and all.
async fn raw_item(
    bed: &TestBed,
    user_id: &str,
    id: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    bed.client
        .get_item()
        .table_name(bed.table(OFFERS))
        .key("userId", AttributeValue::S(user_id.into()))
        .key("personalizedOfferId", AttributeValue::S(id.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get item")
        .item
        .expect("stored offer")
}

/// A copy of `model` under a new id, edited, written with the SDK.
async fn put_copy(
    bed: &TestBed,
    model: &PersonalizedOffer,
    edit: impl FnOnce(&mut PersonalizedOffer),
) -> String {
    let mut offer = model.clone();
    offer.personalized_offer_id = offers_shared::domain::PersonalizedOfferId::random();
    edit(&mut offer);
    bed.client
        .put_item()
        .table_name(bed.table(OFFERS))
        .set_item(Some(offer_to_item(&offer).expect("item")))
        .send()
        .await
        .expect("put offer");
    offer.personalized_offer_id.to_string()
}

fn redeem(id: &str, body: Value, identity: Identity<'_>) -> Value {
    with_body(
        api_event(
            "POST",
            &format!("/rewards/offers/{id}/redemptions"),
            "",
            identity,
        ),
        &body,
    )
}

fn order(order_id: &str, cost: f64) -> Value {
    json!({"orderId": order_id, "totalCost": cost, "serviceMode": "pickup", "storeId": "store-42"})
}

fn void(id: &str, order_id: &str, identity: Identity<'_>) -> Value {
    api_event(
        "DELETE",
        &format!("/rewards/offers/{id}/redemptions/{order_id}"),
        "",
        identity,
    )
}

fn offer_event(id: &str, event_id: Uuid, kind: &str, identity: Identity<'_>) -> Value {
    with_body(
        api_event(
            "POST",
            &format!("/rewards/offers/{id}/events"),
            "",
            identity,
        ),
        &json!({"eventId": event_id, "type": kind}),
    )
}

fn error_of(answer: &ApiResponse) -> (u16, &str) {
    (
        answer.status,
        answer.body["error"]["code"].as_str().unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redemption_within_the_rules_is_201_and_the_offer_shows_it_everywhere() {
    let (bed, id) = fries_offer().await;
    let activity = bed.activity(&[]);
    let answer = call_activity(
        &activity,
        &redeem(&id, order("order-1", 9.25), Identity::Jwt(OWNER)),
    )
    .await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    let redemption = &answer.body["redemption"];
    let offer_id = id.parse().expect("uuid");
    assert_eq!(
        redemption["redemptionId"],
        redemption_id(offer_id, "order-1").to_string()
    );
    assert_eq!(redemption["personalizedOfferId"], id.as_str());
    assert_eq!(redemption["orderId"], "order-1");
    assert_eq!(redemption["totalCost"], 9.25);
    assert_eq!(redemption["serviceMode"], "pickup");
    assert_eq!(redemption["storeId"], "store-42");
    assert!(redemption["redeemedAt"].is_string());
    assert!(redemption.get("voidedAt").is_none());
    let offer = &answer.body["offer"];
    assert_eq!(
        (
            &offer["status"],
            &offer["redemptionCount"],
            &offer["remainingRedemptions"]
        ),
        (&json!("redeemed"), &json!(1), &json!(0))
    );
    assert_eq!(offer["name"], "Free fries");

    // The item: one record, the count.
    let stored = stored(&bed, OWNER, &id).await;
    assert_eq!(stored.redemption_count, 1);
    assert_eq!(stored.redemptions.len(), 1);
    assert_eq!(
        stored.redemptions["order-1"].total_cost.as_f64(),
        Some(9.25)
    );

    // The lookup: the status; the list hides a redeemed offer.
    let lookup = bed.lookup(&[]);
    let one = call_lookup(
        &lookup,
        &api_event(
            "GET",
            &format!("/rewards/offers/{id}"),
            "",
            Identity::Jwt(OWNER),
        ),
    )
    .await;
    assert_eq!(one.body["status"], "redeemed");
    assert_eq!(one.body["remainingRedemptions"], 0);
    let list = call_lookup(
        &lookup,
        &api_event("GET", "/rewards/offers", "", Identity::Jwt(OWNER)),
    )
    .await;
    assert_eq!(list.body["offers"], json!([]), "a redeemed offer is hidden");

    // The support tool: every redemption.
    let support = bed.support(&[]);
    let listed = call_support(
        &support,
        &support_event(
            "GET",
            &format!("/support/users/{OWNER}/offers"),
            "",
            Agent::Support("agent-1"),
        ),
    )
    .await;
    assert_eq!(listed.status, 200);
    assert_eq!(
        listed.body["offers"][0]["redemptions"][0]["orderId"],
        "order-1"
    );
    assert_eq!(listed.body["offers"][0]["status"], "redeemed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refusal_has_its_status_and_code_and_writes_nothing() {
    let (bed, id) = fries_offer().await;
    let model = stored(&bed, OWNER, &id).await;
    let activity = bed.activity(&[]);
    let now = Utc::now();
    let revoked = put_copy(&bed, &model, |o| o.revoked_at = Some(now)).await;
    let expired = put_copy(&bed, &model, |o| {
        o.start_date = now - Duration::days(10);
        o.expiry_date = now - Duration::days(1);
    })
    .await;
    let scheduled = put_copy(&bed, &model, |o| {
        o.start_date = now + Duration::days(1);
    })
    .await;
    for (offer, status) in [
        (&revoked, "revoked"),
        (&expired, "expired"),
        (&scheduled, "scheduled"),
    ] {
        let answer = call_activity(
            &activity,
            &redeem(offer, order("o-1", 9.0), Identity::Jwt(OWNER)),
        )
        .await;
        assert_eq!(error_of(&answer), (409, "offer_not_active"), "{status}");
        let message = answer.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(status), "{message}");
    }
    let low = call_activity(
        &activity,
        &redeem(&id, order("o-1", 7.49), Identity::Jwt(OWNER)),
    )
    .await;
    assert_eq!(error_of(&low), (422, "rule_not_met"));
    assert!(low.body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("minimumSpend")));
    let mut delivery = order("o-1", 9.0);
    delivery["serviceMode"] = json!("delivery");
    let mode = call_activity(&activity, &redeem(&id, delivery, Identity::Jwt(OWNER))).await;
    assert_eq!(error_of(&mode), (422, "rule_not_met"));
    assert!(mode.body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("serviceModes")));
    for body in [
        json!({"orderId": "", "totalCost": 9, "serviceMode": "pickup"}),
        json!({"orderId": "x".repeat(129), "totalCost": 9, "serviceMode": "pickup"}),
        json!({"orderId": "o", "totalCost": -1, "serviceMode": "pickup"}),
        json!({"orderId": "o", "totalCost": 1e300, "serviceMode": "pickup"}),
        json!({"orderId": "o", "totalCost": 9}),
        json!({"orderId": "o", "totalCost": 9, "serviceMode": "pickup", "storeId": 5}),
    ] {
        let answer =
            call_activity(&activity, &redeem(&id, body.clone(), Identity::Jwt(OWNER))).await;
        assert_eq!(error_of(&answer), (400, "invalid_body"), "{body}");
    }
    let too_large =
        json!({"orderId": "o", "totalCost": 9, "serviceMode": "pickup", "pad": "x".repeat(20_000)});
    let answer = call_activity(&activity, &redeem(&id, too_large, Identity::Jwt(OWNER))).await;
    assert_eq!(error_of(&answer), (413, "payload_too_large"));
    let others = call_activity(
        &activity,
        &redeem(&id, order("o-1", 9.0), Identity::Jwt(OTHER)),
    )
    .await;
    let missing = call_activity(
        &activity,
        &redeem(
            &Uuid::new_v4().to_string(),
            order("o-1", 9.0),
            Identity::Jwt(OWNER),
        ),
    )
    .await;
    assert_eq!(error_of(&others), (404, "not_found"));
    assert_eq!(
        others.body, missing.body,
        "someone else's offer is the same 404 as none"
    );
    let bad_id = call_activity(
        &activity,
        &redeem("not-a-uuid", order("o-1", 9.0), Identity::Jwt(OWNER)),
    )
    .await;
    assert_eq!(error_of(&bad_id), (400, "invalid_id"));
    let nobody = call_activity(&activity, &redeem(&id, order("o-1", 9.0), Identity::Nobody)).await;
    assert_eq!(error_of(&nobody), (401, "unauthorized"));
    let wrong_method = call_activity(
        &activity,
        &api_event(
            "GET",
            &format!("/rewards/offers/{id}/redemptions"),
            "",
            Identity::Jwt(OWNER),
        ),
    )
    .await;
    assert_eq!(error_of(&wrong_method), (405, "method_not_allowed"));
    // Nothing of that was written.
    let stored_offer = stored(&bed, OWNER, &id).await;
    assert_eq!(
        (
            stored_offer.redemption_count,
            stored_offer.redemptions.len()
        ),
        (0, 0)
    );

    // The limit: the one use taken, the next order is refused.
    assert_eq!(
        call_activity(
            &activity,
            &redeem(&id, order("o-1", 9.0), Identity::Jwt(OWNER))
        )
        .await
        .status,
        201
    );
    let full = call_activity(
        &activity,
        &redeem(&id, order("o-2", 9.0), Identity::Jwt(OWNER)),
    )
    .await;
    assert_eq!(error_of(&full), (409, "redemption_limit_reached"));
}

/// A redemption whose body is `text` exactly as the client sends it (JSON
/// numbers written as they are, not through a double).
fn redeem_text(id: &str, text: &str) -> Value {
    let mut event = api_event(
        "POST",
        &format!("/rewards/offers/{id}/redemptions"),
        "",
        Identity::Jwt(OWNER),
    );
    event["body"] = json!(text);
    event["headers"]["content-type"] = json!("application/json");
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amounts_out_of_bounds_are_400_and_leave_the_offer_byte_for_byte() {
    let (bed, id) = fries_offer().await;
    let activity = bed.activity(&[]);
    let before = raw_item(&bed, OWNER, &id).await;
    let body = |total: &str, discount: Option<&str>| {
        let discount = discount
            .map(|discount| format!(r#", "discount": {discount}"#))
            .unwrap_or_default();
        format!(r#"{{"orderId": "o-1", "totalCost": {total}{discount}, "serviceMode": "pickup"}}"#)
    };
    for text in [
        body("1e9", None),
        body("1000000000", None),
        body("1000000000.0000", None),
        body("9.00001", None),
        body("-9", None),
        body("-0.0001", None),
        body(r#""NaN""#, None),
        body(r#""9""#, None),
        body("null", None),
        body("1e30", None),
        body("1e-100", None),
        // The nearest double is 9.1: the number has 20 decimal places.
        body("9.10000000000000000001", None),
        body("9", Some("1e9")),
        body("9", Some("0.00001")),
        body("9", Some("-1")),
        body("9", Some(r#""NaN""#)),
        body("9", Some("1e-100")),
        r#"{"orderId": "o-1", "totalCost": 9, "totalCost": 1e30, "serviceMode": "pickup"}"#
            .to_owned(),
    ] {
        let answer = call_activity(&activity, &redeem_text(&id, &text)).await;
        assert_eq!(error_of(&answer), (400, "invalid_body"), "{text}");
        assert_eq!(
            raw_item(&bed, OWNER, &id).await,
            before,
            "{text} changed the offer"
        );
    }

    // The largest amount is accepted, kept and answered exactly.
    let text = body("999999999.9999", Some("1.50000"));
    let answer = call_activity(&activity, &redeem_text(&id, &text)).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let redemption = &answer.body["redemption"];
    assert_eq!(redemption["totalCost"].to_string(), "999999999.9999");
    assert_eq!(redemption["discount"].to_string(), "1.5");
    let after = raw_item(&bed, OWNER, &id).await;
    let record = after["redemptions"].as_m().expect("map")["o-1"]
        .as_m()
        .expect("record")
        .clone();
    assert_eq!(
        record["totalCost"].as_n().ok().map(String::as_str),
        Some("999999999.9999")
    );
    assert_eq!(
        record["discount"].as_n().ok().map(String::as_str),
        Some("1.5")
    );
    // The same order again: the first redemption, as it was answered.
    let again = call_activity(&activity, &redeem_text(&id, &text)).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["redemption"], answer.body["redemption"]);
    // The smallest step and no discount (0).
    let model = stored(&bed, OWNER, &id).await;
    let other = put_copy(&bed, &model, |o| {
        o.redemptions.clear();
        o.redemption_count = 0;
        o.rules.remove("minimumSpend");
    })
    .await;
    let answer = call_activity(&activity, &redeem_text(&other, &body("1e-4", None))).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    assert_eq!(answer.body["redemption"]["totalCost"].to_string(), "0.0001");
    assert_eq!(answer.body["redemption"]["discount"], 0);
}

/// `orders` redemptions with different orders at once on a copy of the
/// fries offer with `redemptionLimit` `limit`, each sent again after a 503 as
/// a client does: each order's last answer, and the offer after.
async fn race(limit: u64, orders: usize) -> (Vec<Retried>, PersonalizedOffer) {
    let (bed, id) = fries_offer().await;
    let model = stored(&bed, OWNER, &id).await;
    let id = put_copy(&bed, &model, |o| {
        o.rules.insert("redemptionLimit".into(), json!(limit));
    })
    .await;
    let activity = bed.activity(&[]);
    let events: Vec<Value> = (0..orders)
        .map(|n| redeem(&id, order(&format!("race-{n}"), 10.0), Identity::Jwt(OWNER)))
        .collect();
    let answers = join_all(
        events
            .iter()
            .map(|event| call_activity_retrying(&activity, event)),
    )
    .await;
    (answers, stored(&bed, OWNER, &id).await)
}

/// The orders of a race that made a use: a 201, or a 200 (the redemption
/// as first made) to an order sent again after a 503, whose first attempt
/// was written before its answer was lost. Every other order is a 409
/// `redemption_limit_reached`.
fn uses_of(answers: &[Retried]) -> usize {
    let statuses: Vec<(u16, usize)> = answers
        .iter()
        .map(|a| (a.answer.status, a.unavailable))
        .collect();
    let made = answers
        .iter()
        .filter(|a| a.answer.status == 201 || (a.answer.status == 200 && a.unavailable > 0))
        .count();
    let refused = answers
        .iter()
        .filter(|a| {
            a.answer.status == 409 && a.answer.body["error"]["code"] == "redemption_limit_reached"
        })
        .count();
    assert_eq!(made + refused, answers.len(), "{statuses:?}");
    made
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_orders_at_once_on_a_limit_1_offer_make_exactly_one_use() {
    let (answers, offer) = race(1, 50).await;
    assert_eq!(uses_of(&answers), 1);
    assert_eq!((offer.redemption_count, offer.redemptions.len()), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_orders_at_once_on_a_limit_3_offer_make_exactly_three_uses() {
    let (answers, offer) = race(3, 50).await;
    assert_eq!(uses_of(&answers), 3);
    assert_eq!((offer.redemption_count, offer.redemptions.len()), (3, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_order_ten_times_at_once_is_one_use_and_one_redemption() {
    let (bed, id) = fries_offer().await;
    let model = stored(&bed, OWNER, &id).await;
    // Unlimited, so that only the order's novelty can stop a second use.
    let id = put_copy(&bed, &model, |o| {
        o.rules.remove("redemptionLimit");
    })
    .await;
    let activity = bed.activity(&[]);
    let event = redeem(&id, order("same-order", 10.0), Identity::Jwt(OWNER));
    let retried = join_all((0..10).map(|_| call_activity_retrying(&activity, &event))).await;
    // One 201 and nine 200s; a request whose 201 was lost to a 503 and that
    // was sent again gets the 200 too, so then no 201 is seen.
    let statuses: Vec<(u16, usize)> = retried
        .iter()
        .map(|a| (a.answer.status, a.unavailable))
        .collect();
    let created = statuses.iter().filter(|(s, _)| *s == 201).count();
    let any_retried = statuses.iter().any(|(_, unavailable)| *unavailable > 0);
    assert!(
        created == 1 || (created == 0 && any_retried),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|(s, _)| *s == 200).count(),
        10 - created,
        "{statuses:?}"
    );
    let answers: Vec<ApiResponse> = retried.into_iter().map(|a| a.answer).collect();
    let redemptions: HashSet<String> = answers
        .iter()
        .map(|a| a.body["redemption"].to_string())
        .collect();
    let shown: Vec<(u16, String)> = answers
        .iter()
        .map(|a| (a.status, a.body["redemption"]["totalCost"].to_string()))
        .collect();
    assert_eq!(
        redemptions.len(),
        1,
        "all the same redemption: {redemptions:?} {shown:?}"
    );
    assert!(answers
        .iter()
        .all(|a| a.body["offer"]["remainingRedemptions"].is_null()));
    // And once more in sequence.
    let again = call_activity(&activity, &event).await;
    assert_eq!(again.status, 200);
    assert!(redemptions.contains(&again.body["redemption"].to_string()));
    let offer = stored(&bed, OWNER, &id).await;
    assert_eq!((offer.redemption_count, offer.redemptions.len()), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_void_gives_the_use_back_once_and_a_voided_order_stays_voided() {
    let (bed, id) = fries_offer().await;
    let activity = bed.activity(&[]);
    let first = call_activity(
        &activity,
        &redeem(&id, order("order-1", 9.0), Identity::Jwt(OWNER)),
    )
    .await;
    assert_eq!(first.status, 201);
    let voided = call_activity(&activity, &void(&id, "order-1", Identity::Jwt(OWNER))).await;
    assert_eq!(voided.status, 200, "{:?}", voided.body);
    let voided_at = voided.body["redemption"]["voidedAt"].clone();
    assert!(voided_at.is_string());
    assert_eq!(
        voided.body["redemption"]["redemptionId"],
        first.body["redemption"]["redemptionId"]
    );
    assert_eq!(voided.body["offer"]["status"], "active");
    assert_eq!(voided.body["offer"]["remainingRedemptions"], 1);
    // Again, and ten at once: no change, the first void stands.
    let again = join_all((0..10).map(|_| {
        let event = void(&id, "order-1", Identity::Jwt(OWNER));
        let activity = &activity;
        async move { call_activity(activity, &event).await }
    }))
    .await;
    assert!(again
        .iter()
        .all(|a| a.status == 200 && a.body["redemption"]["voidedAt"] == voided_at));
    assert_eq!(stored(&bed, OWNER, &id).await.redemption_count, 0);
    // The voided order replays voided and takes no use; a new order does.
    let replay = call_activity(
        &activity,
        &redeem(&id, order("order-1", 9.0), Identity::Jwt(OWNER)),
    )
    .await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.body["redemption"]["voidedAt"], voided_at);
    assert_eq!(replay.body["offer"]["remainingRedemptions"], 1);
    let second = call_activity(
        &activity,
        &redeem(&id, order("order-2", 9.0), Identity::Jwt(OWNER)),
    )
    .await;
    assert_eq!(second.status, 201);
    assert_eq!(second.body["offer"]["status"], "redeemed");
    // The lookup and the list follow.
    let lookup = bed.lookup(&[]);
    let one = call_lookup(
        &lookup,
        &api_event(
            "GET",
            &format!("/rewards/offers/{id}"),
            "",
            Identity::Jwt(OWNER),
        ),
    )
    .await;
    assert_eq!(
        (
            one.body["status"].as_str(),
            one.body["redemptionCount"].as_u64()
        ),
        (Some("redeemed"), Some(1))
    );
    // Unknown orders and other users' offers are 404.
    let unknown = call_activity(&activity, &void(&id, "order-9", Identity::Jwt(OWNER))).await;
    assert_eq!(error_of(&unknown), (404, "not_found"));
    let others = call_activity(&activity, &void(&id, "order-2", Identity::Jwt(OTHER))).await;
    assert_eq!(error_of(&others), (404, "not_found"));
    let offer = stored(&bed, OWNER, &id).await;
    assert_eq!((offer.redemption_count, offer.redemptions.len()), (1, 2));
    // An order id with characters that need percent-encoding in the path.
    let unusual = "order/ü 1";
    assert_eq!(
        call_activity(&activity, &void(&id, "order-2", Identity::Jwt(OWNER)))
            .await
            .status,
        200
    );
    let made = call_activity(
        &activity,
        &redeem(&id, order(unusual, 9.0), Identity::Jwt(OWNER)),
    )
    .await;
    assert_eq!(made.status, 201);
    let encoded = "order%2F%C3%BC%201";
    let undone = call_activity(&activity, &void(&id, encoded, Identity::Jwt(OWNER))).await;
    assert_eq!(undone.status, 200, "{:?}", undone.body);
    assert_eq!(undone.body["redemption"]["orderId"], unusual);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_counts_once_by_its_id_and_never_on_someone_elses_offer() {
    let (bed, id) = fries_offer().await;
    let activity = bed.activity(&[]);
    let viewed = Uuid::new_v4();
    for _ in 0..2 {
        let answer = call_activity(
            &activity,
            &offer_event(&id, viewed, "viewed", Identity::Jwt(OWNER)),
        )
        .await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
        assert_eq!(answer.body["eventId"], viewed.to_string());
    }
    let at_once = Uuid::new_v4();
    let event = offer_event(&id, at_once, "clicked", Identity::Jwt(OWNER));
    let answers = join_all((0..10).map(|_| call_activity(&activity, &event))).await;
    assert!(answers.iter().all(|a| a.status == 202));
    let offer = stored(&bed, OWNER, &id).await;
    assert_eq!((offer.view_count, offer.click_count), (1, 1));
    let first_view = offer.viewed_at.expect("viewedAt");
    assert!(offer.clicked_at.is_some());
    // A second view counts, and the first view's time stays.
    let answer = call_activity(
        &activity,
        &offer_event(&id, Uuid::new_v4(), "viewed", Identity::Jwt(OWNER)),
    )
    .await;
    assert_eq!(answer.status, 202);
    let offer = stored(&bed, OWNER, &id).await;
    assert_eq!((offer.view_count, offer.viewed_at), (2, Some(first_view)));
    // Someone else's offer: 404, with a new event id and with one the owner used.
    for event_id in [Uuid::new_v4(), viewed] {
        let answer = call_activity(
            &activity,
            &offer_event(&id, event_id, "viewed", Identity::Jwt(OTHER)),
        )
        .await;
        assert_eq!(error_of(&answer), (404, "not_found"), "{event_id}");
    }
    let missing = call_activity(
        &activity,
        &offer_event(
            &Uuid::new_v4().to_string(),
            Uuid::new_v4(),
            "viewed",
            Identity::Jwt(OWNER),
        ),
    )
    .await;
    assert_eq!(error_of(&missing), (404, "not_found"));
    // One item per event id, with the owner and a ttl in the future.
    let events = bed.scan(EVENTS).await;
    assert_eq!(events.len(), 3, "{events:?}");
    let now = Utc::now().timestamp();
    for event in &events {
        assert_eq!(event["userId"], OWNER);
        assert!(event["ttl"].as_i64().is_some_and(|ttl| ttl > now + 86_400));
    }
    let offer = stored(&bed, OWNER, &id).await;
    assert_eq!(
        offer.view_count, 2,
        "the other user's events changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_events_answer_as_documented() {
    let bed = TestBed::with_sample_catalog().await;
    let batch = read_json("events/dispatcher-mixed-batch.json");
    let records = batch["Records"].as_array().cloned().unwrap_or_default();
    deliver(&bed.dispatcher(&[]), &records).await;
    let activity = bed.activity(&[]);
    let redeemed = call_activity(&activity, &read_json("events/activity-redeem.json")).await;
    assert_eq!(redeemed.status, 201, "{:?}", redeemed.body);
    assert_eq!(redeemed.body["redemption"]["orderId"], "order-1001");
    assert_eq!(redeemed.body["offer"]["offerId"], SEED_OFFER);
    let voided = call_activity(&activity, &read_json("events/activity-void.json")).await;
    assert_eq!(voided.status, 200, "{:?}", voided.body);
    assert!(voided.body["redemption"]["voidedAt"].is_string());
    let event = call_activity(&activity, &read_json("events/activity-event.json")).await;
    assert_eq!(event.status, 202, "{:?}", event.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_binary_answers_through_the_runtime_api() {
    let (bed, id) = fries_offer().await;
    let runtime = offers_local::RuntimeApi::start()
        .await
        .expect("runtime api");
    let mut function = spawn_function(
        &function_binary("offer-activity"),
        &bed.environment(ACTIVITY, &[]),
        &shared_dynamodb().endpoint(),
        &runtime,
    );
    let answer = runtime
        .invoke(
            redeem(&id, order("bin-1", 10.0), Identity::Jwt(OWNER)),
            std::time::Duration::from_secs(30),
        )
        .await;
    let _ = function.kill();
    let _ = function.wait();
    let (status, _, body) = http_answer(answer);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["redemption"]["orderId"], "bin-1");
    assert_eq!(stored(&bed, OWNER, &id).await.redemption_count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_without_a_read_agrees_with_the_decision_on_odd_rules_and_edges() {
    let (bed, id) = fries_offer().await;
    let model = stored(&bed, OWNER, &id).await;
    let activity = bed.activity(&[]);
    let now = Utc::now();
    let with_rules = |rules: Value| {
        let model = &model;
        let bed = &bed;
        async move {
            put_copy(bed, model, |o| {
                o.rules = serde_json::from_value(rules).expect("rules");
            })
            .await
        }
    };
    // (rules, order cost, expected status, code)
    for (rules, cost, status, code) in [
        (
            json!({"redemptionLimit": "2"}),
            10.0,
            409,
            "redemption_limit_reached",
        ),
        (
            json!({"redemptionLimit": 0}),
            10.0,
            409,
            "redemption_limit_reached",
        ),
        (json!({"redemptionLimit": 0.5}), 10.0, 201, ""),
        (json!({"minimumSpend": "5"}), 10.0, 422, "rule_not_met"),
        (json!({"minimumSpend": 10}), 10.0, 201, ""),
        (json!({"serviceModes": "pickup"}), 10.0, 422, "rule_not_met"),
        (json!({"serviceModes": [1, "pickup"]}), 10.0, 201, ""),
        (
            json!({"serviceModes": ["delivery"]}),
            10.0,
            422,
            "rule_not_met",
        ),
    ] {
        let id = with_rules(rules.clone()).await;
        let answer = call_activity(
            &activity,
            &redeem(&id, order("o-1", cost), Identity::Jwt(OWNER)),
        )
        .await;
        assert_eq!(answer.status, status, "{rules}: {:?}", answer.body);
        if !code.is_empty() {
            assert_eq!(answer.body["error"]["code"], code, "{rules}");
        }
    }
    // At the edges of the time window the write without a read refuses and
    // the decision on the returned offer is exact.
    let started = put_copy(&bed, &model, |o| o.start_date = now).await;
    let answer = call_activity(
        &activity,
        &redeem(&started, order("o-1", 10.0), Identity::Jwt(OWNER)),
    )
    .await;
    assert_eq!(
        answer.status, 201,
        "started a moment ago: {:?}",
        answer.body
    );
    let ending = put_copy(&bed, &model, |o| {
        o.expiry_date = Utc::now() + Duration::milliseconds(1_500)
    })
    .await;
    let answer = call_activity(
        &activity,
        &redeem(&ending, order("o-1", 10.0), Identity::Jwt(OWNER)),
    )
    .await;
    assert_eq!(answer.status, 201, "ends in a moment: {:?}", answer.body);
    let later = put_copy(&bed, &model, |o| {
        o.start_date = Utc::now() + Duration::milliseconds(1_500)
    })
    .await;
    let answer = call_activity(
        &activity,
        &redeem(&later, order("o-1", 10.0), Identity::Jwt(OWNER)),
    )
    .await;
    assert_eq!(error_of(&answer), (409, "offer_not_active"));
}
