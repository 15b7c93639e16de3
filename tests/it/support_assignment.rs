//! supportAssignment end to end on DynamoDB Local: agents assign, list and
//! revoke offers through the handler with API Gateway v2 events; what they do
//! is read back through the app's lookup handler.

use futures::future::join_all;
use offers_http::OFFER_VIEW_FIELDS;
use offers_integration_tests::*;
use offers_shared::domain::ReasonCode;
use serde_json::{json, Value};
use std::collections::HashSet;

const USER: &str = "us-east-1:5b1c7c7e-3333-4a43-9d27-0f5d8a7c1e11";
const OTHER_USER: &str = "us-east-1:5b1c7c7e-4444-4a43-9d27-0f5d8a7c1e11";
const AGENT: &str = "agent-0001";

/// The user's offers path, the colon percent-encoded as a client sends it.
fn offers_path(user_id: &str) -> String {
    format!("/support/users/{}/offers", user_id.replace(':', "%3A"))
}

fn assign_event(user_id: &str, body: &Value) -> Value {
    with_body(
        support_event("POST", &offers_path(user_id), "", Agent::Support(AGENT)),
        body,
    )
}

fn fries(minimum_spend: Value) -> Value {
    json!({
        "offerId": "co-fries",
        "campaignId": "goodwill",
        "expiryDate": future_date(14),
        "rank": 2,
        "rules": {"minimumSpend": minimum_spend},
        "reason": "order 1234 arrived cold"
    })
}

async fn offers_of(bed: &TestBed, user_id: &str) -> Vec<serde_json::Map<String, Value>> {
    bed.scan(OFFERS)
        .await
        .into_iter()
        .filter(|offer| offer["userId"] == user_id)
        .collect()
}

fn id_of(response: &ApiResponse) -> String {
    response.body["personalizedOfferId"]
        .as_str()
        .unwrap_or_else(|| panic!("no offer in {:?}", response.body))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_assigns_an_offer_and_its_owner_reads_it_back() {
    let (bed, support) = TestBed::with_support().await;

    let created = call_support(&support, &assign_event(USER, &fries(json!(9)))).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.content_type.as_deref(), Some("application/json"));
    assert_eq!(created.cache_control.as_deref(), Some("private, no-store"));
    assert_eq!(created.idempotent_replayed, None);
    let id = id_of(&created);
    let body = &created.body;
    assert_eq!(body["offerId"], "co-fries");
    assert_eq!(body["templateId"], "tpl-fries");
    assert_eq!(body["campaignId"], "goodwill");
    assert_eq!(body["name"], "Free fries");
    assert_eq!(
        body["rules"],
        json!({"minimumSpend": 9, "serviceModes": ["pickup"], "redemptionLimit": 1}),
        "the assignment's value overrides the config offer's"
    );
    assert_eq!(body["status"], "active");
    assert_eq!(body["rank"], 2);
    assert_eq!(body["url"], format!("/rewards/offers/{id}"));
    assert_eq!(body["userId"], USER);
    assert_eq!(body["assignedBy"], AGENT);
    assert_eq!(body["reason"], "order 1234 arrived cold");
    assert_eq!(body["source"], "support");
    assert_eq!(body["revokedAt"], Value::Null);
    assert_eq!(body["audit"][0]["action"], "assigned");
    assert_eq!(body["audit"][0]["by"], AGENT);
    assert_eq!(body["audit"][0]["reason"], "order 1234 arrived cold");

    // The owner sees the very same offer in the app.
    let lookup = bed.lookup(&[]);
    let read = call_lookup(
        &lookup,
        &api_event(
            "GET",
            &format!("/rewards/offers/{id}"),
            "",
            Identity::Jwt(USER),
        ),
    )
    .await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    for field in OFFER_VIEW_FIELDS {
        assert_eq!(read.body[field], body[field], "{field}");
    }
    assert!(
        read.body.get("assignedBy").is_none(),
        "the app sees no audit"
    );
    let listed = call_lookup(
        &lookup,
        &api_event("GET", "/rewards/offers", "", Identity::Jwt(USER)),
    )
    .await;
    assert_eq!(listed.body["offers"][0]["personalizedOfferId"], id.as_str());

    // Stored once, with its retention after expiry, for that user only.
    let stored = offers_of(&bed, USER).await;
    assert_eq!(stored.len(), 1);
    let expiry =
        chrono::DateTime::parse_from_rfc3339(stored[0]["expiryDate"].as_str().expect("expiryDate"))
            .expect("RFC 3339");
    assert_eq!(
        stored[0]["ttl"].as_i64(),
        Some((expiry + chrono::Duration::days(90)).timestamp())
    );
    assert!(offers_of(&bed, OTHER_USER).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_sent_twice_or_ten_times_at_once_makes_one_offer() {
    let (bed, support) = TestBed::with_support().await;
    let keyed =
        |key: &str, body: &Value| with_header(assign_event(USER, body), "idempotency-key", key);

    // In sequence: the retry (the same body, byte for byte) gets the first
    // offer back, marked as a replay.
    let body = fries(json!(5));
    let first = call_support(&support, &keyed("ticket-1", &body)).await;
    let again = call_support(&support, &keyed("ticket-1", &body)).await;
    assert_eq!((first.status, again.status), (201, 201), "{:?}", again.body);
    assert_eq!(id_of(&first), id_of(&again));
    assert_eq!(first.idempotent_replayed, None);
    assert_eq!(again.idempotent_replayed.as_deref(), Some("true"));
    assert_eq!(again.body["createdAt"], first.body["createdAt"]);

    // At once: ten requests with one key race; one offer, every answer is it.
    let event = keyed("ticket-2", &fries(json!(6)));
    let answers = join_all((0..10).map(|_| call_support(&support, &event))).await;
    let ids: HashSet<String> = answers.iter().map(id_of).collect();
    assert!(answers.iter().all(|answer| answer.status == 201));
    assert_eq!(ids.len(), 1, "one offer for one key");
    assert_eq!(
        answers
            .iter()
            .filter(|answer| answer.idempotent_replayed.is_none())
            .count(),
        1,
        "exactly one request created it"
    );
    assert_eq!(offers_of(&bed, USER).await.len(), 2, "one offer per key");

    // The same key with another body is refused, and writes nothing.
    let conflict = call_support(&support, &keyed("ticket-1", &fries(json!(50)))).await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.body["error"]["code"], "idempotency_conflict");
    // The same key for another user is another request.
    let other = call_support(
        &support,
        &with_header(
            assign_event(OTHER_USER, &body),
            "idempotency-key",
            "ticket-1",
        ),
    )
    .await;
    assert_eq!(other.status, 201);
    assert_ne!(id_of(&other), id_of(&first));
    assert_eq!(offers_of(&bed, USER).await.len(), 2);

    // Without a key, two identical requests are two assignments.
    call_support(&support, &assign_event(USER, &body)).await;
    call_support(&support, &assign_event(USER, &body)).await;
    assert_eq!(offers_of(&bed, USER).await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reason_code_is_a_422_and_nothing_is_written() {
    let (bed, support) = TestBed::with_support().await;
    let with = |mut body: Value, name: &str, value: Value| {
        body[name] = value;
        body
    };
    let without = |mut body: Value, name: &str| {
        body.as_object_mut().map(|fields| fields.remove(name));
        body
    };
    let challenge = |frequency: &str| {
        json!({
            "offerId": SEED_OFFER,
            "expiryDate": future_date(10),
            "reason": "missed visit credited",
            "challengeType": "frequency",
            "challengeStatus": SEED_STATUS,
            "frequency": frequency,
        })
    };
    let cases = [
        (without(fries(json!(5)), "reason"), "invalid_row"),
        (
            with(fries(json!(5)), "startDate", json!(future_date(20))),
            "invalid_dates",
        ),
        (
            with(fries(json!(5)), "expiryDate", json!("2024-01-01T00:00:00Z")),
            "expired",
        ),
        (
            with(fries(json!(5)), "offerId", json!("co-nope")),
            "unknown_offer",
        ),
        (
            json!({"offerId": "co-untemplated", "expiryDate": future_date(5), "reason": "r"}),
            "missing_template",
        ),
        (
            with(fries(json!(5)), "templateId", json!("tpl-nope")),
            "unknown_template",
        ),
        (
            with(fries(json!(5)), "templateId", json!("tpl-coffee")),
            "template_mismatch",
        ),
        (without(fries(json!(5)), "rules"), "missing_rule"),
        (
            with(
                fries(json!(5)),
                "rules",
                json!({"minimumSpend": 5, "colour": "red"}),
            ),
            "unknown_rule",
        ),
        (fries(json!("lots")), "invalid_rule_value"),
        (
            without(challenge(SEED_OFFER), "challengeStatus"),
            "invalid_challenge",
        ),
        (challenge("another-offer"), "frequency_mismatch"),
    ];
    let mut seen = HashSet::new();
    for (body, code) in &cases {
        let response = call_support(&support, &assign_event(USER, body)).await;
        assert_eq!(
            (response.status, response.body["error"]["code"].as_str()),
            (422, Some(*code)),
            "{body}: {:?}",
            response.body
        );
        assert!(response.body["error"]["message"]
            .as_str()
            .is_some_and(|message| !message.is_empty()));
        seen.insert(code.to_string());
    }
    // `invalid_transaction` is the challenge progress's (section 8), never an assignment's.
    let every_code: HashSet<String> = ReasonCode::ALL
        .iter()
        .filter(|code| **code != ReasonCode::InvalidTransaction)
        // A campaign's budget's, with its own test (tests/budgets.rs).
        .filter(|code| **code != ReasonCode::BudgetExhausted)
        .map(|code| code.as_str().to_owned())
        .collect();
    assert_eq!(seen, every_code, "one case per reason code of the contract");
    assert!(
        bed.scan(OFFERS).await.is_empty(),
        "a rejection writes nothing"
    );

    // The challenge itself is accepted when it is right.
    let ok = call_support(&support, &assign_event(USER, &challenge(SEED_OFFER))).await;
    assert_eq!(ok.status, 201, "{:?}", ok.body);
    assert_eq!(
        ok.body["challenge"]["goals"]["visit2"]["condition"]["total_cost"],
        "1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_beyond_dynamodbs_limits_is_a_422_with_a_short_message() {
    let (bed, support) = TestBed::with_support().await;
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!([deep]);
    }
    let challenge = |status: Value| {
        json!({
            "offerId": SEED_OFFER,
            "expiryDate": future_date(10),
            "reason": "missed visit credited",
            "challengeType": "frequency",
            "challengeStatus": status,
            "frequency": SEED_OFFER,
        })
    };
    let mut far = fries(json!(5));
    far["expiryDate"] = json!("+10000-01-01T00:00:00Z");
    let mut long_id = fries(json!(5));
    long_id["offerId"] = json!("o".repeat(3_000));
    let cases = [
        (long_id, "invalid_row"),
        (far, "invalid_dates"),
        (fries(json!(1e300)), "invalid_row"),
        (
            challenge(json!({"reward": {"value": "1"}, "goals": {"v": {"condition": {"x": deep}}}})),
            "invalid_row",
        ),
        (
            challenge(json!({"reward": {"value": "1"}, "goals": {"v": {"condition": {"total_cost": 1e300}}}})),
            "invalid_row",
        ),
        (
            challenge(json!(format!(
                "{{\"reward\": {{\"value\": \"1\"}}, \"goals\": {{\"v\": {{\"condition\": {{\"x\": {}1{}}}}}}}}}",
                "[".repeat(20),
                "]".repeat(20)
            ))),
            "invalid_challenge",
        ),
    ];
    for (body, code) in &cases {
        let response = call_support(&support, &assign_event(USER, body)).await;
        assert_eq!(
            (response.status, response.body["error"]["code"].as_str()),
            (422, Some(*code)),
            "{:?}",
            response.body
        );
        let message = response.body["error"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(!message.is_empty() && message.len() < 1_200, "{message}");
    }
    // A user id in the path is checked before anything else: a 400.
    let long_user = "u".repeat(2_049);
    let response = call_support(&support, &assign_event(&long_user, &fries(json!(5)))).await;
    assert_eq!(
        (response.status, response.body["error"]["code"].as_str()),
        (400, Some("invalid_user_id")),
        "{:?}",
        response.body
    );
    assert!(bed.scan(OFFERS).await.is_empty(), "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_members_of_the_support_group_may_call() {
    let (bed, support) = TestBed::with_support().await;
    let path = offers_path(USER);

    let nobody = call_support(&support, &support_event("GET", &path, "", Agent::Nobody)).await;
    assert_eq!(
        (nobody.status, nobody.body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    for groups in ["[admins]", "", "[supportive]", r#"["admins"]"#] {
        let denied = call_support(
            &support,
            &with_body(
                support_event("POST", &path, "", Agent::WithGroups(AGENT, groups)),
                &fries(json!(5)),
            ),
        )
        .await;
        assert_eq!(
            (denied.status, denied.body["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "groups {groups:?}"
        );
    }
    // The app's users (no groups claim) are refused too, even for their own offers.
    let app_user = call_support(&support, &api_event("GET", &path, "", Identity::Jwt(USER))).await;
    assert_eq!(app_user.status, 403);
    assert!(bed.scan(OFFERS).await.is_empty());

    // Both renderings of the list claim are understood.
    for groups in ["[admins support]", r#"["admins","support"]"#] {
        let allowed = call_support(
            &support,
            &support_event("GET", &path, "", Agent::WithGroups(AGENT, groups)),
        )
        .await;
        assert_eq!(allowed.status, 200, "groups {groups:?}: {:?}", allowed.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_keeps_the_offer_for_audit_and_hides_it_from_the_app() {
    let (bed, support) = TestBed::with_support().await;
    let lookup = bed.lookup(&[]);
    let kept = id_of(&call_support(&support, &assign_event(USER, &fries(json!(5)))).await);
    let revoked = id_of(&call_support(&support, &assign_event(USER, &fries(json!(6)))).await);
    let revoke = |id: &str, user_id: &str, sub: &'static str| {
        with_body(
            support_event(
                "DELETE",
                &format!("{}/{id}", offers_path(user_id)),
                "",
                Agent::Support(sub),
            ),
            &json!({"reason": "customer asked to remove it"}),
        )
    };

    let first = call_support(&support, &revoke(&revoked, USER, "agent-0002")).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.body["status"], "revoked");
    assert_eq!(first.body["revokedBy"], "agent-0002");
    assert!(first.body["revokedAt"].is_string());
    let actions: Vec<&str> = first.body["audit"]
        .as_array()
        .map(|audit| {
            audit
                .iter()
                .filter_map(|entry| entry["action"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(actions, ["assigned", "revoked"]);
    assert_eq!(
        first.body["audit"][1]["reason"],
        "customer asked to remove it"
    );

    // A second revocation (another agent, even) changes nothing.
    let second = call_support(&support, &revoke(&revoked, USER, "agent-0003")).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.body, first.body);

    // The app: the offer reads as revoked and leaves the list.
    let read = call_lookup(
        &lookup,
        &api_event(
            "GET",
            &format!("/rewards/offers/{revoked}"),
            "",
            Identity::Jwt(USER),
        ),
    )
    .await;
    assert_eq!(
        (read.status, read.body["status"].as_str()),
        (200, Some("revoked"))
    );
    let listed = call_lookup(
        &lookup,
        &api_event("GET", "/rewards/offers", "", Identity::Jwt(USER)),
    )
    .await;
    let listed_ids: Vec<&str> = listed.body["offers"]
        .as_array()
        .map(|offers| {
            offers
                .iter()
                .filter_map(|o| o["personalizedOfferId"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(listed_ids, [kept.as_str()]);

    // Support still sees both, with the audit trail.
    let all = call_support(
        &support,
        &support_event("GET", &offers_path(USER), "", Agent::Support(AGENT)),
    )
    .await;
    let statuses: HashSet<(String, String)> = all.body["offers"]
        .as_array()
        .map(|offers| {
            offers
                .iter()
                .map(|o| {
                    (
                        o["personalizedOfferId"].to_string(),
                        o["status"].to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        statuses,
        HashSet::from([
            (json!(kept).to_string(), "\"active\"".to_owned()),
            (json!(revoked).to_string(), "\"revoked\"".to_owned()),
        ])
    );

    // Unknown ids, and ids of another user's offer, are 404 and change nothing.
    let unknown = uuid::Uuid::new_v4().to_string();
    let missing = call_support(&support, &revoke(&unknown, USER, AGENT)).await;
    assert_eq!(
        (missing.status, missing.body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let elsewhere = call_support(&support, &revoke(&kept, OTHER_USER, AGENT)).await;
    assert_eq!(elsewhere, missing);
    let still = call_lookup(
        &lookup,
        &api_event(
            "GET",
            &format!("/rewards/offers/{kept}"),
            "",
            Identity::Jwt(USER),
        ),
    )
    .await;
    assert_eq!(still.body["status"], "active");
    assert_eq!(
        bed.scan(OFFERS).await.len(),
        2,
        "revocation deletes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_shows_every_source_and_status_newest_first_across_pages() {
    // A campaign offer first, through the dispatcher, then five from support.
    let (bed, campaign) = TestBed::with_offers(&[fries_row(USER, "camp-1+co-fries")]).await;
    let support = bed.support(&[]);
    let mut created: Vec<String> = campaign.into_values().collect();
    for spend in 1..=5 {
        let answer = call_support(&support, &assign_event(USER, &fries(json!(spend)))).await;
        assert_eq!(answer.status, 201);
        created.push(id_of(&answer));
    }
    call_support(&support, &assign_event(OTHER_USER, &fries(json!(1)))).await;

    let mut listed: Vec<String> = Vec::new();
    let mut sources: Vec<String> = Vec::new();
    let mut query = "limit=4".to_owned();
    for _ in 0..10 {
        let page = call_support(
            &support,
            &support_event("GET", &offers_path(USER), &query, Agent::Support(AGENT)),
        )
        .await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        for offer in page.body["offers"].as_array().cloned().unwrap_or_default() {
            listed.push(
                offer["personalizedOfferId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
            sources.push(offer["source"].as_str().unwrap_or_default().to_owned());
        }
        match page.body["nextCursor"].as_str() {
            Some(cursor) => query = format!("limit=4&cursor={cursor}"),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(
        listed, created,
        "newest first, every offer once, this user's only"
    );
    assert_eq!(sources.last().map(String::as_str), Some("campaign"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_400_unknown_routes_404_and_wrong_methods_405() {
    let (bed, support) = TestBed::with_support().await;
    let post = || support_event("POST", &offers_path(USER), "", Agent::Support(AGENT));
    let raw_body = |text: &str| {
        let mut event = post();
        event["body"] = json!(text);
        event
    };
    let cases = [
        (raw_body("{not json"), "invalid_body"),
        (raw_body("[1, 2]"), "invalid_body"),
        (post(), "invalid_body"),
        (
            raw_body(&format!(r#"{{"reason": "{}"}}"#, "x".repeat(40_000))),
            "body_too_large",
        ),
        (
            with_header(
                assign_event(USER, &fries(json!(5))),
                "idempotency-key",
                "two words",
            ),
            "invalid_idempotency_key",
        ),
        (
            support_event("GET", &offers_path(USER), "limit=0", Agent::Support(AGENT)),
            "invalid_limit",
        ),
        (
            support_event(
                "GET",
                &offers_path(USER),
                "cursor=nope!",
                Agent::Support(AGENT),
            ),
            "invalid_cursor",
        ),
        (
            support_event(
                "DELETE",
                &format!("{}/not-a-uuid", offers_path(USER)),
                "",
                Agent::Support(AGENT),
            ),
            "invalid_id",
        ),
        (
            support_event(
                "GET",
                "/support/users/%FF/offers",
                "",
                Agent::Support(AGENT),
            ),
            "invalid_user_id",
        ),
    ];
    for (event, code) in &cases {
        let response = call_support(&support, event).await;
        assert_eq!(
            (response.status, response.body["error"]["code"].as_str()),
            (400, Some(*code)),
            "{:?}",
            response.body
        );
    }
    for (method, path, status) in [
        ("GET", "/support/users".to_owned(), 404),
        ("GET", "/support/users//offers".to_owned(), 404),
        ("PUT", offers_path(USER), 405),
        (
            "GET",
            format!("{}/{}", offers_path(USER), uuid::Uuid::new_v4()),
            405,
        ),
    ] {
        let response = call_support(
            &support,
            &support_event(method, &path, "", Agent::Support(AGENT)),
        )
        .await;
        assert_eq!(response.status, status, "{method} {path}");
    }
    assert!(bed.scan(OFFERS).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_events_answer_as_documented() {
    let (_bed, support) = TestBed::with_support().await;
    let answer = |name: &'static str| {
        let support = &support;
        async move { call_support(support, &read_json(&format!("events/{name}"))).await }
    };
    let assigned = answer("support-assign.json").await;
    assert_eq!(assigned.status, 201, "{:?}", assigned.body);
    let replayed = answer("support-assign.json").await;
    assert_eq!(replayed.idempotent_replayed.as_deref(), Some("true"));
    assert_eq!(id_of(&replayed), id_of(&assigned));
    let listed = answer("support-list.json").await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["offers"].as_array().map(Vec::len), Some(1));
    let revoked = answer("support-revoke.json").await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    assert_eq!(
        id_of(&revoked),
        id_of(&assigned),
        "the revoke sample names it"
    );
    assert_eq!(revoked.body["status"], "revoked");
    let denied = answer("support-assign-not-an-agent.json").await;
    assert_eq!(denied.status, 403);
    let rejected = answer("support-assign-missing-rule.json").await;
    assert_eq!(
        (rejected.status, rejected.body["error"]["code"].as_str()),
        (422, Some("missing_rule"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_support_binary_answers_through_the_runtime_api() {
    let bed = TestBed::with_sample_catalog().await;
    let runtime = offers_local::RuntimeApi::start()
        .await
        .expect("runtime api");
    let mut function = spawn_function(
        &function_binary("support-assignment"),
        &bed.environment(SUPPORT, &[]),
        &shared_dynamodb().endpoint(),
        &runtime,
    );
    let timeout = std::time::Duration::from_secs(10);
    let assigned = runtime
        .invoke(read_json("events/support-assign.json"), timeout)
        .await;
    let revoked = runtime
        .invoke(read_json("events/support-revoke.json"), timeout)
        .await;
    let denied = runtime
        .invoke(
            read_json("events/support-assign-not-an-agent.json"),
            timeout,
        )
        .await;
    let _ = function.kill();
    let _ = function.wait();

    let (status, headers, body) = http_answer(assigned);
    assert_eq!(status, 201, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body["source"], "support");
    let (status, _, body) = http_answer(revoked);
    assert_eq!((status, body["status"].as_str()), (200, Some("revoked")));
    assert_eq!(http_answer(denied).0, 403);
    assert_eq!(bed.scan(OFFERS).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_support_binary_stops_at_init_without_its_table_names() {
    let bed = TestBed::new().await;
    let runtime = offers_local::RuntimeApi::start()
        .await
        .expect("runtime api");
    let mut environment = bed.environment(SUPPORT, &[]);
    assert!(!environment.contains_key("PENDING_TABLE_NAME"));
    environment.remove("LOYALTY_OFFERS_TABLE_NAME");
    let (status, stderr) = exit_at_init(
        &function_binary("support-assignment"),
        &environment,
        &shared_dynamodb().endpoint(),
        &runtime,
    )
    .await;
    assert!(!status.success());
    assert!(stderr.contains("LOYALTY_OFFERS_TABLE_NAME"), "{stderr}");
    assert!(runtime.first_poll().is_none());
}
