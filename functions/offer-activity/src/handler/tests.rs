use super::*;
use chrono::Duration;
use offers_shared::activity::memory::MemoryActivity;
use offers_shared::error::StoreError;
use offers_shared::fakes::MemoryCatalog;
use serde_json::json;

type Service = ActivityService<MemoryActivity, MemoryCatalog>;

fn offer(user_id: &str, rules: Value) -> PersonalizedOffer {
    let now = Utc::now();
    PersonalizedOffer::builder()
        .user(user_id)
        .rules(rules)
        .valid(now - Duration::days(1), now + Duration::days(1))
        .created_at(now)
        .build()
}

fn service(offers: Vec<PersonalizedOffer>) -> Service {
    ActivityService::new(
        MemoryActivity::with_offers(offers),
        MemoryCatalog::of([json!({"id": "co-1", "kind": "configOffer", "name": "Free fries"})]),
        Duration::days(30),
    )
}

fn event(method: &str, path: &str, body: Option<&str>, sub: Option<&str>) -> Request {
    let mut event = json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": method, "path": path}, "stage": "$default",
                           "requestId": "r-1"},
        "isBase64Encoded": false
    });
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    if let Some(sub) = sub {
        event["requestContext"]["authorizer"] = json!({"jwt": {"claims": {"sub": sub}}});
    }
    lambda_http::request::from_str(&event.to_string()).expect("event")
}

async fn call(service: &Service, request: Request) -> (u16, Value) {
    let response = handle(service, request).await.expect("never Err");
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).expect("JSON"),
        other => panic!("body {other:?}"),
    };
    assert_eq!(response.headers()["cache-control"], "private, no-store");
    (response.status().as_u16(), body)
}

fn redemption(order: &str, cost: f64) -> String {
    json!({"orderId": order, "totalCost": cost, "serviceMode": "pickup"}).to_string()
}

#[test]
fn routes() {
    let id = Uuid::new_v4().to_string();
    let redeem = format!("/rewards/offers/{id}/redemptions");
    assert_eq!(
        route(&Method::POST, &redeem),
        Ok(Route::Redeem { id: id.as_str() })
    );
    assert_eq!(
        route(&Method::DELETE, &format!("{redeem}/o-1")),
        Ok(Route::Void {
            id: id.as_str(),
            order: "o-1"
        })
    );
    assert_eq!(
        route(&Method::POST, &format!("/rewards/offers/{id}/events")),
        Ok(Route::Event { id: id.as_str() })
    );
    for (method, path, status) in [
        (Method::GET, redeem.clone(), 405),
        (Method::POST, format!("{redeem}/o-1"), 405),
        (Method::GET, format!("/rewards/offers/{id}/events"), 405),
        (Method::POST, format!("{redeem}/"), 404),
        (Method::POST, "/rewards/offers//redemptions".into(), 404),
        (Method::POST, format!("/rewards/offers/{id}"), 404),
        (Method::POST, format!("{redeem}/a/b"), 404),
    ] {
        assert_eq!(
            route(&method, &path).map_err(|e| e.status().as_u16()),
            Err(status),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn a_redemption_is_201_then_200_with_the_same_redemption() {
    let offer = offer("owner", json!({"redemptionLimit": 2, "minimumSpend": 5}));
    let path = format!(
        "/rewards/offers/{}/redemptions",
        offer.personalized_offer_id
    );
    let service = service(vec![offer]);
    let (status, first) = call(
        &service,
        event("POST", &path, Some(&redemption("o-1", 9.5)), Some("owner")),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["redemption"]["orderId"], "o-1");
    assert_eq!(first["redemption"]["totalCost"], 9.5);
    assert_eq!(first["redemption"]["discount"], 0, "0 when absent");
    assert_eq!(first["offer"]["redemptionCount"], 1);
    assert_eq!(first["offer"]["remainingRedemptions"], 1);
    assert_eq!(first["offer"]["name"], "Free fries");
    let (status, again) = call(
        &service,
        event("POST", &path, Some(&redemption("o-1", 9.5)), Some("owner")),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(again["redemption"], first["redemption"]);
    let (status, low) = call(
        &service,
        event("POST", &path, Some(&redemption("o-2", 1.0)), Some("owner")),
    )
    .await;
    assert_eq!(
        (status, low["error"]["code"].as_str()),
        (422, Some("rule_not_met"))
    );
    assert!(low["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("minimumSpend")));
    let (status, _) = call(
        &service,
        event("POST", &path, Some(&redemption("o-2", 6.0)), Some("owner")),
    )
    .await;
    assert_eq!(status, 201);
    let (status, full) = call(
        &service,
        event("POST", &path, Some(&redemption("o-3", 6.0)), Some("owner")),
    )
    .await;
    assert_eq!(
        (status, full["error"]["code"].as_str()),
        (409, Some("redemption_limit_reached"))
    );
    let (status, other) = call(
        &service,
        event(
            "POST",
            &path,
            Some(&redemption("o-4", 6.0)),
            Some("intruder"),
        ),
    )
    .await;
    assert_eq!(
        (status, other["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    let (status, voided) = call(
        &service,
        event("DELETE", &format!("{path}/o-1"), None, Some("owner")),
    )
    .await;
    assert_eq!(status, 200, "{voided}");
    assert!(voided["redemption"]["voidedAt"].is_string());
    assert_eq!(voided["offer"]["remainingRedemptions"], 1);
    let (status, unknown) = call(
        &service,
        event("DELETE", &format!("{path}/o-9"), None, Some("owner")),
    )
    .await;
    assert_eq!(
        (status, unknown["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test]
async fn an_offer_not_active_is_409_naming_its_status() {
    let mut revoked = offer("owner", json!({}));
    revoked.revoked_at = Some(Utc::now());
    let mut scheduled = offer("owner", json!({}));
    scheduled.start_date = Utc::now() + Duration::days(1);
    scheduled.expiry_date = Utc::now() + Duration::days(2);
    let cases = [
        (revoked.personalized_offer_id, "revoked"),
        (scheduled.personalized_offer_id, "scheduled"),
    ];
    let service = service(vec![revoked, scheduled]);
    for (id, status_name) in cases {
        let path = format!("/rewards/offers/{id}/redemptions");
        let (status, body) = call(
            &service,
            event("POST", &path, Some(&redemption("o", 1.0)), Some("owner")),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("offer_not_active"))
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(status_name)),
            "{body}"
        );
    }
}

#[tokio::test]
async fn bad_input_is_refused_before_any_write() {
    let offer = offer("owner", json!({}));
    let id = offer.personalized_offer_id;
    let service = service(vec![offer]);
    let redeem = format!("/rewards/offers/{id}/redemptions");
    let events = format!("/rewards/offers/{id}/events");
    let big = json!({"orderId": "o", "totalCost": 1, "serviceMode": "x".repeat(MAX_BODY_BYTES)})
        .to_string();
    let good = redemption("o-1", 1.0);
    for (method, path, body, sub, status, code) in [
        (
            "POST",
            redeem.clone(),
            Some(good.as_str()),
            None,
            401,
            "unauthorized",
        ),
        (
            "POST",
            "/rewards/offers/nope/redemptions".to_owned(),
            Some(good.as_str()),
            Some("owner"),
            400,
            "invalid_id",
        ),
        (
            "POST",
            redeem.clone(),
            Some(big.as_str()),
            Some("owner"),
            413,
            "payload_too_large",
        ),
        (
            "POST",
            redeem.clone(),
            None,
            Some("owner"),
            400,
            "invalid_body",
        ),
        (
            "POST",
            redeem.clone(),
            Some("[1]"),
            Some("owner"),
            400,
            "invalid_body",
        ),
        (
            "POST",
            redeem.clone(),
            Some("{\"orderId\": \"o\"}"),
            Some("owner"),
            400,
            "invalid_body",
        ),
        (
            "POST",
            redeem.clone(),
            Some("{not json"),
            Some("owner"),
            400,
            "invalid_body",
        ),
        (
            "DELETE",
            format!("{redeem}/{}", "o".repeat(129)),
            None,
            Some("owner"),
            400,
            "invalid_order_id",
        ),
        (
            "DELETE",
            format!("{redeem}/%FF"),
            None,
            Some("owner"),
            400,
            "invalid_order_id",
        ),
        (
            "POST",
            events.clone(),
            Some("{\"eventId\": \"x\", \"type\": \"viewed\"}"),
            Some("owner"),
            400,
            "invalid_body",
        ),
        ("POST", events.clone(), None, None, 401, "unauthorized"),
    ] {
        let (got, answer) = call(&service, event(method, &path, body, sub)).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path}"
        );
    }
    assert_eq!(service.store().state().writes, 0);
}

#[tokio::test]
async fn events_are_202_once_or_again_and_404_on_someone_elses_offer() {
    let offer = offer("owner", json!({}));
    let id = offer.personalized_offer_id;
    let service = service(vec![offer]);
    let path = format!("/rewards/offers/{id}/events");
    let body = json!({"eventId": Uuid::new_v4(), "type": "viewed"}).to_string();
    for _ in 0..2 {
        let (status, answer) =
            call(&service, event("POST", &path, Some(&body), Some("owner"))).await;
        assert_eq!(status, 202);
        assert_eq!(answer["type"], "viewed");
    }
    assert_eq!(
        service
            .store()
            .state()
            .offers
            .values()
            .next()
            .map(|o| o.view_count),
        Some(1)
    );
    let (status, _) = call(
        &service,
        event("POST", &path, Some(&body), Some("intruder")),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn store_trouble_is_503() {
    let offer = offer("owner", json!({}));
    let path = format!(
        "/rewards/offers/{}/redemptions",
        offer.personalized_offer_id
    );
    let service = service(vec![offer]);
    service.store().state().down = Some(StoreError::Timeout("t".into()));
    let (status, body) = call(
        &service,
        event("POST", &path, Some(&redemption("o", 1.0)), Some("owner")),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("service_unavailable"))
    );
}

proptest::proptest! {
    /// Any method, path, body and caller get an answer with a known status
    /// and the contract's JSON, never a panic.
    #[test]
    fn any_request_is_answered_in_the_contracts_shape(
        method in "(GET|POST|PUT|DELETE|PATCH)",
        tail in "(/(redemptions|events|x)(/([A-Za-z0-9._~-]|%[0-9A-F]{2}){0,20})?)?",
        body in proptest::option::of(proptest::prop_oneof![
            ".{0,80}",
            "\\{\"orderId\": \".{0,10}\", \"totalCost\": -?[0-9]{1,4}(\\.[0-9])?(e[0-9]{1,3})?, \"serviceMode\": \".{0,8}\"\\}",
            "\\{\"eventId\": \"[0-9a-f-]{30,36}\", \"type\": \"(viewed|clicked|other)\"\\}",
        ]),
        sub in proptest::option::of("(owner|[ -~]{0,20})"),
    ) {
        let offer = offer("owner", json!({"redemptionLimit": 1}));
        let path = format!("/rewards/offers/{}{tail}", offer.personalized_offer_id);
        let service = service(vec![offer]);
        let mut event = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
            "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
            "isBase64Encoded": false
        });
        if let Some(body) = body {
            event["body"] = json!(body);
        }
        if let Some(sub) = sub {
            event["requestContext"]["authorizer"] = json!({"jwt": {"claims": {"sub": sub}}});
        }
        let text = event.to_string();
        let Ok(Ok(request)) = std::panic::catch_unwind(|| lambda_http::request::from_str(&text)) else {
            return Ok(());
        };
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let response = runtime.block_on(handle(&service, request)).expect("never Err");
        let status = response.status().as_u16();
        proptest::prop_assert!([200, 201, 202, 400, 401, 404, 405, 409, 413, 422].contains(&status), "{}", status);
        let body: Value = match response.body() {
            Body::Text(text) => serde_json::from_str(text).expect("JSON"),
            other => panic!("{other:?}"),
        };
        if status >= 400 {
            proptest::prop_assert!(body["error"]["code"].is_string());
            proptest::prop_assert!(body["error"]["message"].is_string());
        }
    }
}
