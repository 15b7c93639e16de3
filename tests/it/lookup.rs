//! offerLookup end to end on DynamoDB Local: offers made by the dispatcher
//! from pending rows (or, for states it cannot produce, written or updated
//! with the SDK), read back through the handler with API Gateway v2 events.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Duration, Utc};
use offers_integration_tests::*;
use offers_shared::domain::dates::format_timestamp;
use offers_shared::domain::PersonalizedOffer;
use offers_shared::dynamo::{offer_from_item, offer_to_item};
use serde_json::{json, Value};
use std::collections::HashSet;

const OWNER: &str = "us-east-1:0d6f2c1e-1111-4a43-9d27-0f5d8a7c1e11";
const OTHER: &str = "us-east-1:0d6f2c1e-2222-4a43-9d27-0f5d8a7c1e11";

fn get(id: &str, identity: Identity<'_>) -> Value {
    api_event("GET", &format!("/rewards/offers/{id}"), "", identity)
}

fn list(query: &str, identity: Identity<'_>) -> Value {
    api_event("GET", "/rewards/offers", query, identity)
}

fn ids_of(page: &ApiResponse) -> Vec<String> {
    page.body["offers"]
        .as_array()
        .map(|offers| {
            offers
                .iter()
                .filter_map(|offer| offer["personalizedOfferId"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Every page of the caller's list at `limit`, following `nextCursor`.
async fn all_pages(
    lookup: &offer_lookup::DynamoLookup,
    limit: usize,
    identity: Identity<'_>,
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut query = format!("limit={limit}");
    loop {
        let page = call_lookup(lookup, &list(&query, identity)).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        let ids = ids_of(&page);
        assert!(ids.len() <= limit, "a page holds at most limit offers");
        pages.push(ids);
        match page.body.get("nextCursor").and_then(Value::as_str) {
            Some(cursor) => query = format!("limit={limit}&cursor={cursor}"),
            None => return pages,
        }
        assert!(pages.len() <= 50, "paging ends");
    }
}

async fn stored(bed: &TestBed, user_id: &str, id: &str) -> PersonalizedOffer {
    let item = bed
        .client
        .get_item()
        .table_name(bed.table(OFFERS))
        .key("userId", AttributeValue::S(user_id.into()))
        .key("personalizedOfferId", AttributeValue::S(id.into()))
        .send()
        .await
        .expect("get item")
        .item
        .expect("stored offer");
    offer_from_item(item).expect("offer")
}

/// An offer the dispatcher would refuse (it rejects expired rows): a copy of
/// a real one under a new id, written with the SDK.
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

/// What the support tool's revoke does to the record: `revokedAt` set.
async fn revoke(bed: &TestBed, user_id: &str, id: &str) {
    bed.client
        .update_item()
        .table_name(bed.table(OFFERS))
        .key("userId", AttributeValue::S(user_id.into()))
        .key("personalizedOfferId", AttributeValue::S(id.into()))
        .update_expression("SET revokedAt = :at, revokedBy = :by")
        .expression_attribute_values(":at", AttributeValue::S(format_timestamp(Utc::now())))
        .expression_attribute_values(":by", AttributeValue::S("agent-1".into()))
        .condition_expression("attribute_exists(personalizedOfferId)")
        .send()
        .await
        .expect("revoke");
}

fn row(user_id: &str, sort_key: &str, rank: i64, start: &str) -> Value {
    let mut row = fries_row(user_id, sort_key);
    row["rank"] = json!(rank);
    row["startDate"] = json!(start);
    row
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_gets_every_field_of_a_dispatched_offer() {
    let expiry = future_date(60);
    let (bed, ids) = TestBed::with_offers(&[
        fries_row(OWNER, "camp-1+co-fries"),
        seed_challenge_row(&expiry),
    ])
    .await;
    let lookup = bed.lookup(&[]);
    let id = &ids["camp-1+co-fries"];

    let response = call_lookup(&lookup, &get(id, Identity::Jwt(OWNER))).await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!(response.content_type.as_deref(), Some("application/json"));
    assert_eq!(response.cache_control.as_deref(), Some("private, no-store"));
    let offer = &response.body;
    let mut fields: Vec<&str> = offer
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "campaignId",
            "challenge",
            "description",
            "expiryDate",
            "imageUrl",
            "name",
            "offerId",
            "personalizedOfferId",
            "rank",
            "redemptionCount",
            "remainingRedemptions",
            "rules",
            "startDate",
            "status",
            "templateId",
            "url"
        ]
    );
    assert_eq!(offer["personalizedOfferId"], id.as_str());
    assert_eq!(offer["offerId"], "co-fries");
    assert_eq!(offer["templateId"], "tpl-fries");
    assert_eq!(offer["campaignId"], "camp-1");
    assert_eq!(offer["name"], "Free fries");
    assert_eq!(offer["description"], "Any size, any day");
    assert_eq!(offer["imageUrl"], "https://images.example/fries.png");
    assert_eq!(
        offer["rules"],
        json!({"minimumSpend": 7.5, "serviceModes": ["pickup"], "redemptionLimit": 1})
    );
    assert_eq!(offer["startDate"], "2024-01-01T00:00:00Z");
    let stored = stored(&bed, OWNER, id).await;
    assert_eq!(offer["expiryDate"], format_timestamp(stored.expiry_date));
    assert_eq!(offer["rank"], 1);
    assert_eq!(offer["status"], "active");
    assert_eq!(offer["challenge"], Value::Null);
    assert_eq!(offer["url"], format!("/rewards/offers/{id}"));
    // Never redeemed, one use (redemptionLimit 1) left.
    assert_eq!(offer["redemptionCount"], 0);
    assert_eq!(offer["remainingRedemptions"], 1);

    // The contract's challenge row, read by its owner's Cognito identity.
    let challenge_id = &ids[seed_challenge_row(&expiry)["sortKey"]
        .as_str()
        .unwrap_or_default()];
    let response = call_lookup(&lookup, &get(challenge_id, Identity::Iam(SEED_USER))).await;
    assert_eq!(response.status, 200);
    let challenge = &response.body["challenge"];
    assert_eq!(challenge["type"], "frequency");
    assert_eq!(challenge["reward"]["value"], "100");
    assert_eq!(challenge["goals"]["visit1"]["condition"]["total_cost"], "1");
    assert_eq!(challenge["taskId"], "e2dd4cb3-9b0f-479c-8e1b-e42234f27314");
    assert_eq!(response.body["campaignId"], Value::Null);
    assert_eq!(response.body["name"], "Visit twice, get 100 points");
    assert_eq!(response.body["rank"], 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_offer_is_the_same_404_as_a_missing_one() {
    let (bed, ids) = TestBed::with_offers(&[fries_row(OWNER, "mine")]).await;
    let lookup = bed.lookup(&[]);
    let id = &ids["mine"];

    let someone_elses = call_lookup(&lookup, &get(id, Identity::Jwt(OTHER))).await;
    let missing = call_lookup(
        &lookup,
        &get(&uuid::Uuid::new_v4().to_string(), Identity::Jwt(OTHER)),
    )
    .await;
    let owners_missing = call_lookup(
        &lookup,
        &get(&uuid::Uuid::new_v4().to_string(), Identity::Jwt(OWNER)),
    )
    .await;
    assert_eq!(someone_elses.status, 404);
    assert_eq!(someone_elses.body["error"]["code"], "not_found");
    assert_eq!(someone_elses, missing, "status, headers and body alike");
    assert_eq!(someone_elses, owners_missing);
    let text = someone_elses.body.to_string();
    assert!(
        !text.contains(id.as_str()) && !text.contains(OWNER),
        "nothing about the offer leaks"
    );

    assert_eq!(
        call_lookup(&lookup, &get(id, Identity::Jwt(OWNER)))
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ids_are_400_no_caller_401_and_other_routes_404_or_405() {
    let (bed, ids) = TestBed::with_offers(&[fries_row(OWNER, "mine")]).await;
    let lookup = bed.lookup(&[]);
    let id = &ids["mine"];

    for bad in ["not-a-uuid", "123", &id.replace('-', ""), &format!("{id}0")] {
        let response = call_lookup(&lookup, &get(bad, Identity::Jwt(OWNER))).await;
        assert_eq!(response.status, 400, "{bad}");
        assert_eq!(response.body["error"]["code"], "invalid_id");
        assert_eq!(response.cache_control.as_deref(), Some("private, no-store"));
    }

    // No authorizer identity: a user id in the query or a header changes nothing.
    let mut event = api_event(
        "GET",
        &format!("/rewards/offers/{id}"),
        &format!("userId={OWNER}"),
        Identity::Nobody,
    );
    event["headers"]["x-user-id"] = json!(OWNER);
    for event in [event, list(&format!("userId={OWNER}"), Identity::Nobody)] {
        let response = call_lookup(&lookup, &event).await;
        assert_eq!(response.status, 401);
        assert_eq!(response.body["error"]["code"], "unauthorized");
    }

    let response = call_lookup(
        &lookup,
        &api_event(
            "DELETE",
            &format!("/rewards/offers/{id}"),
            "",
            Identity::Jwt(OWNER),
        ),
    )
    .await;
    assert_eq!(
        (response.status, response.body["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let response = call_lookup(
        &lookup,
        &api_event("GET", "/rewards/other", "", Identity::Jwt(OWNER)),
    )
    .await;
    assert_eq!(
        (response.status, response.body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    for query in ["limit=0", "limit=101", "limit=many"] {
        let response = call_lookup(&lookup, &list(query, Identity::Jwt(OWNER))).await;
        assert_eq!(
            (response.status, response.body["error"]["code"].as_str()),
            (400, Some("invalid_limit")),
            "{query}"
        );
    }
    let response = call_lookup(
        &lookup,
        &list("cursor=bm90LWEtY3Vyc29y", Identity::Jwt(OWNER)),
    )
    .await;
    assert_eq!(
        (response.status, response.body["error"]["code"].as_str()),
        (400, Some("invalid_cursor"))
    );

    // The offer is still there for its owner.
    assert_eq!(
        call_lookup(&lookup, &get(id, Identity::Jwt(OWNER)))
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_are_computed_at_read_time_and_the_list_hides_expired_and_revoked() {
    let mut scheduled = fries_row(OWNER, "scheduled");
    scheduled["startDate"] = json!(future_date(5));
    let (bed, ids) = TestBed::with_offers(&[
        fries_row(OWNER, "active"),
        scheduled,
        fries_row(OWNER, "to-revoke"),
    ])
    .await;
    let model = stored(&bed, OWNER, &ids["active"]).await;
    let expired = put_copy(&bed, &model, |offer| {
        offer.expiry_date = Utc::now() - Duration::days(1);
        offer.sort_key = Some("expired".into());
    })
    .await;
    let just_expired = put_copy(&bed, &model, |offer| {
        offer.expiry_date = Utc::now() - Duration::milliseconds(1);
        offer.rank = -1;
    })
    .await;
    revoke(&bed, OWNER, &ids["to-revoke"]).await;
    let lookup = bed.lookup(&[]);

    let status = |id: String| {
        let lookup = &lookup;
        async move {
            let response = call_lookup(lookup, &get(&id, Identity::Jwt(OWNER))).await;
            assert_eq!(response.status, 200, "{id}: {:?}", response.body);
            response.body["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    assert_eq!(status(ids["active"].clone()).await, "active");
    assert_eq!(status(ids["scheduled"].clone()).await, "scheduled");
    assert_eq!(status(expired.clone()).await, "expired");
    assert_eq!(status(just_expired.clone()).await, "expired");
    assert_eq!(status(ids["to-revoke"].clone()).await, "revoked");

    let listed: HashSet<String> =
        ids_of(&call_lookup(&lookup, &list("", Identity::Jwt(OWNER))).await)
            .into_iter()
            .collect();
    assert_eq!(
        listed,
        HashSet::from([ids["active"].clone(), ids["scheduled"].clone()]),
        "active and scheduled only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_is_by_rank_then_start_then_id_across_pages() {
    let rows = [
        row(OWNER, "r3", 3, "2024-01-01T00:00:00Z"),
        row(OWNER, "r1-march", 1, "2024-03-01T00:00:00Z"),
        row(OWNER, "r1-jan-a", 1, "2024-01-01T00:00:00Z"),
        row(OWNER, "r2", 2, "2024-02-01T00:00:00Z"),
        row(OWNER, "r-5", -5, "2024-06-01T00:00:00Z"),
        row(OWNER, "r1-jan-b", 1, "2024-01-01T00:00:00Z"),
        row(OWNER, "r1-jan-c", 1, "2024-01-01T00:00:00Z"),
        row(OWNER, "r1000", 1000, "2023-01-01T00:00:00Z"),
        row(OWNER, "r2-later", 2, &future_date(3)),
        row(OWNER, "r0-revoked", 0, "2024-01-01T00:00:00Z"),
        row(OTHER, "other-r0", 0, "2024-01-01T00:00:00Z"),
    ];
    let (bed, ids) = TestBed::with_offers(&rows).await;
    revoke(&bed, OWNER, &ids["r0-revoked"]).await;
    let model = stored(&bed, OWNER, &ids["r2"]).await;
    let expired = put_copy(&bed, &model, |offer| {
        offer.rank = 2;
        offer.expiry_date = Utc::now() - Duration::hours(1);
    })
    .await;

    // Expected: rank, then start date, then id (text order of the UUID).
    let mut jan: Vec<String> = ["r1-jan-a", "r1-jan-b", "r1-jan-c"]
        .iter()
        .map(|k| ids[*k].clone())
        .collect();
    jan.sort();
    let mut expected = vec![ids["r-5"].clone()];
    expected.extend(jan);
    expected.extend(
        ["r1-march", "r2", "r2-later", "r3", "r1000"]
            .iter()
            .map(|k| ids[*k].clone()),
    );
    assert!(!expected.contains(&expired));

    let lookup = bed.lookup(&[]);
    let whole = call_lookup(&lookup, &list("", Identity::Jwt(OWNER))).await;
    assert_eq!(
        ids_of(&whole),
        expected,
        "default page: everything, in order"
    );
    assert!(whole.body.get("nextCursor").is_none());
    let ranks: Vec<i64> = whole.body["offers"]
        .as_array()
        .expect("offers")
        .iter()
        .filter_map(|o| o["rank"].as_i64())
        .collect();
    assert_eq!(ranks, [-5, 1, 1, 1, 1, 2, 2, 3, 1000]);

    for limit in [1, 2, 4, 9, 100] {
        let pages = all_pages(&lookup, limit, Identity::Jwt(OWNER)).await;
        assert_eq!(
            pages.len(),
            expected.len().div_ceil(limit),
            "limit {limit}: no empty last page"
        );
        assert_eq!(pages.concat(), expected, "limit {limit}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_cannot_reach_another_users_offers() {
    let rows = [
        row(OWNER, "a1", 1, "2024-01-01T00:00:00Z"),
        row(OWNER, "a2", 2, "2024-01-01T00:00:00Z"),
        row(OWNER, "a3", 3, "2024-01-01T00:00:00Z"),
        row(OTHER, "b5", 5, "2024-01-01T00:00:00Z"),
        row(OTHER, "b9", 9, "2024-01-01T00:00:00Z"),
    ];
    let (bed, ids) = TestBed::with_offers(&rows).await;
    let theirs: HashSet<String> = ["b5", "b9"].iter().map(|k| ids[*k].clone()).collect();
    let lookup = bed.lookup(&[]);

    // The owner's own cursor, replayed by the other user.
    let first = call_lookup(&lookup, &list("limit=1", Identity::Jwt(OWNER))).await;
    assert_eq!(ids_of(&first), [ids["a1"].clone()]);
    let cursor = first.body["nextCursor"]
        .as_str()
        .expect("more remain")
        .to_owned();
    let replayed = call_lookup(
        &lookup,
        &list(&format!("cursor={cursor}"), Identity::Jwt(OTHER)),
    )
    .await;
    assert_eq!(replayed.status, 200);
    let seen: HashSet<String> = ids_of(&replayed).into_iter().collect();
    assert_eq!(seen, theirs, "only the caller's own offers");

    // A forged cursor naming the position of the owner's first offer.
    let a1 = stored(&bed, OWNER, &ids["a1"]).await;
    let forged = URL_SAFE_NO_PAD.encode(
        json!({"k": offers_shared::dynamo::offer_to_item(&a1).expect("item")["rankKey"].as_s().expect("rankKey"),
               "id": ids["a1"]})
        .to_string(),
    );
    let response = call_lookup(
        &lookup,
        &list(&format!("cursor={forged}"), Identity::Jwt(OTHER)),
    )
    .await;
    assert_eq!(response.status, 200);
    let seen: HashSet<String> = ids_of(&response).into_iter().collect();
    assert_eq!(
        seen, theirs,
        "the position only moves within the caller's own offers"
    );

    // A cursor can't carry a user: extra fields make it invalid.
    let with_user = URL_SAFE_NO_PAD.encode(
        json!({"k": format!("1000000000#2024-01-01T00:00:00Z#{}", ids["a1"]), "id": ids["a1"], "userId": OWNER}).to_string(),
    );
    let response = call_lookup(
        &lookup,
        &list(&format!("cursor={with_user}"), Identity::Jwt(OTHER)),
    )
    .await;
    assert_eq!(response.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cognito_identity_wins_over_the_jwt_sub() {
    let (bed, ids) = TestBed::with_offers(&[fries_row(OWNER, "a"), fries_row(OTHER, "b")]).await;
    let lookup = bed.lookup(&[]);

    let both = Identity::IamAndJwt(OWNER, OTHER);
    assert_eq!(
        call_lookup(&lookup, &get(&ids["a"], both)).await.status,
        200
    );
    assert_eq!(
        call_lookup(&lookup, &get(&ids["b"], both)).await.status,
        404
    );
    let listed = ids_of(&call_lookup(&lookup, &list("", both)).await);
    assert_eq!(listed, [ids["a"].clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_fields_are_null_once_the_config_offer_is_gone() {
    let mut coffee = fries_row(OWNER, "coffee");
    coffee["offerId"] = json!("co-coffee");
    coffee.as_object_mut().map(|row| row.remove("rules"));
    let (bed, ids) = TestBed::with_offers(&[coffee]).await;
    bed.client
        .delete_item()
        .table_name(bed.table(CATALOG))
        .key("id", AttributeValue::S("co-coffee".into()))
        .send()
        .await
        .expect("delete config offer");

    let response = call_lookup(&bed.lookup(&[]), &get(&ids["coffee"], Identity::Jwt(OWNER))).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body["offerId"], "co-coffee");
    assert_eq!(response.body["name"], Value::Null);
    assert_eq!(response.body["imageUrl"], Value::Null);
    assert_eq!(response.body["status"], "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_events_answer_as_documented() {
    let bed = TestBed::with_sample_catalog().await;
    let event = read_json("events/dispatcher-mixed-batch.json");
    let records = event["Records"].as_array().cloned().unwrap_or_default();
    deliver(&bed.dispatcher(&[]), &records).await;
    let lookup = bed.lookup(&[]);

    let answer = |name: &'static str| {
        let lookup = &lookup;
        async move { call_lookup(lookup, &read_json(&format!("events/{name}"))).await }
    };
    let owner = answer("lookup-get-owner.json").await;
    assert_eq!(owner.status, 200, "{:?}", owner.body);
    assert_eq!(owner.body["offerId"], SEED_OFFER);
    assert_eq!(owner.body["challenge"]["type"], "frequency");
    let other = answer("lookup-get-other-user.json").await;
    assert_eq!(
        (other.status, other.body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    assert_eq!(answer("lookup-get-malformed-id.json").await.status, 400);
    assert_eq!(answer("lookup-get-no-caller.json").await.status, 401);
    let list = answer("lookup-list.json").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["offers"][0]["offerId"], "co-fries");
    assert_eq!(list.body["offers"].as_array().map(Vec::len), Some(1));
    let after = answer("lookup-list-limit-cursor.json").await;
    assert_eq!(after.status, 200, "{:?}", after.body);
    assert_eq!(
        after.body,
        json!({"offers": []}),
        "nothing after the user's only offer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lookup_binary_answers_through_the_runtime_api() {
    let bed = TestBed::with_sample_catalog().await;
    let event = read_json("events/dispatcher-mixed-batch.json");
    let records = event["Records"].as_array().cloned().unwrap_or_default();
    deliver(&bed.dispatcher(&[]), &records).await;

    let runtime = offers_local::RuntimeApi::start()
        .await
        .expect("runtime api");
    let mut function = spawn_function(
        &function_binary("offer-lookup"),
        &bed.environment(LOOKUP, &[]),
        &shared_dynamodb().endpoint(),
        &runtime,
    );
    let timeout = std::time::Duration::from_secs(10);
    let owner = runtime
        .invoke(read_json("events/lookup-get-owner.json"), timeout)
        .await;
    let other = runtime
        .invoke(read_json("events/lookup-get-other-user.json"), timeout)
        .await;
    let nobody = runtime
        .invoke(read_json("events/lookup-get-no-caller.json"), timeout)
        .await;
    let listed = runtime
        .invoke(read_json("events/lookup-list.json"), timeout)
        .await;
    let _ = function.kill();
    let _ = function.wait();

    let (status, headers, body) = http_answer(owner);
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "private, no-store");
    assert_eq!(body["offerId"], SEED_OFFER);
    assert_eq!(body["status"], "active");
    let (status, _, body) = http_answer(other);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    assert_eq!(http_answer(nobody).0, 401);
    let (status, _, body) = http_answer(listed);
    assert_eq!(status, 200);
    assert_eq!(body["offers"][0]["offerId"], "co-fries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lookup_binary_stops_at_init_without_its_table_names() {
    let bed = TestBed::new().await;
    let runtime = offers_local::RuntimeApi::start()
        .await
        .expect("runtime api");
    let mut environment = bed.environment(LOOKUP, &[]);
    assert!(
        !environment.contains_key("PENDING_TABLE_NAME"),
        "no table it does not read"
    );
    environment.remove("OFFER_CATALOG_TABLE_NAME");
    let (status, stderr) = exit_at_init(
        &function_binary("offer-lookup"),
        &environment,
        &shared_dynamodb().endpoint(),
        &runtime,
    )
    .await;
    assert!(!status.success());
    assert!(stderr.contains("OFFER_CATALOG_TABLE_NAME"), "{stderr}");
    assert!(runtime.first_poll().is_none(), "it never asked for work");
}
