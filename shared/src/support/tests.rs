use super::*;
use crate::fakes::{MemoryCatalog, MemoryOffers};
use chrono::Duration;
use serde_json::{json, Value};

/// A config offer `co-1` whose template `tpl-1` needs no rules.
fn catalog() -> MemoryCatalog {
    MemoryCatalog::of([
        json!({"id": "co-1", "kind": "configOffer", "name": "Free fries",
               "templateId": "tpl-1", "rules": {}}),
        json!({"id": "tpl-1", "kind": "offerTemplate", "configOfferId": "co-1",
               "rules": []}),
    ])
}

fn service() -> SupportService<MemoryOffers, MemoryCatalog> {
    SupportService::new(MemoryOffers::default(), catalog(), Duration::days(90))
}

fn now() -> DateTime<Utc> {
    "2030-06-01T00:00:00Z".parse().expect("time")
}

fn user(id: &str) -> UserId {
    UserId::try_from(id).expect("user id")
}

/// Agent `agent-1`'s request to give `co-1` to `user_id`, expiring `expiry`.
fn request(user_id: &str, expiry: &str, key: Option<&str>) -> AssignRequest {
    with_body(
        user_id,
        json!({"offerId": "co-1", "expiryDate": expiry, "reason": " ticket 1: goodwill "}),
        key,
    )
}

fn with_body(user_id: &str, body: Value, key: Option<&str>) -> AssignRequest {
    let Value::Object(body) = body else {
        panic!("an object");
    };
    AssignRequest {
        user_id: user(user_id),
        agent: "agent-1".into(),
        offer: SupportRequest::parse(&body).expect("well formed"),
        idempotency_key: key.map(str::to_owned),
    }
}

const EXPIRY: &str = "2030-12-31T00:00:00Z";

#[tokio::test]
async fn an_assignment_is_written_at_once_for_the_user_by_the_agent() {
    let support = service();
    let assigned = support
        .assign(&request("u-1", EXPIRY, None), now())
        .await
        .expect("assigned");
    assert!(!assigned.replayed);
    let offer = &assigned.offer;
    assert_eq!(
        (offer.user_id.as_str(), offer.offer_id.as_str()),
        ("u-1", "co-1")
    );
    assert_eq!(offer.assigned_by.as_deref(), Some("agent-1"));
    assert_eq!(offer.reason.as_deref(), Some("ticket 1: goodwill"));
    assert_eq!(offer.start_date, now());
    assert_eq!(support.store().offers(), vec![assigned.offer]);
}

#[tokio::test]
async fn a_key_makes_a_retry_the_first_offer_and_another_body_a_conflict() {
    let support = service();
    let keyed = request("u-1", EXPIRY, Some("ticket-1"));
    let first = support.assign(&keyed, now()).await.expect("assigned");
    // Even once expired, the retry of a request that succeeded gets its offer.
    let later = now() + Duration::days(365);
    let again = support.assign(&keyed, later).await.expect("replayed");
    assert!(again.replayed);
    assert_eq!(again.offer, first.offer);
    let other = request("u-1", "2031-01-01T00:00:00Z", Some("ticket-1"));
    assert_eq!(
        support.assign(&other, now()).await,
        Err(SupportError::IdempotencyConflict)
    );
    // The same key for another user is another request.
    let elsewhere = support
        .assign(&request("u-2", EXPIRY, Some("ticket-1")), now())
        .await
        .expect("assigned");
    assert_ne!(
        elsewhere.offer.personalized_offer_id,
        first.offer.personalized_offer_id
    );
    assert_eq!(support.store().offers().len(), 2);
    // Without a key, the same request twice is two offers.
    for _ in 0..2 {
        let plain = request("u-1", EXPIRY, None);
        support.assign(&plain, now()).await.expect("assigned");
    }
    assert_eq!(support.store().offers().len(), 4);
}

#[tokio::test]
async fn an_expired_or_unknown_offer_is_a_rejection_and_writes_nothing() {
    let support = service();
    let expired = request("u-1", "2030-05-01T00:00:00Z", Some("k"));
    let unknown = with_body(
        "u-1",
        json!({"offerId": "nope", "expiryDate": EXPIRY, "reason": "r"}),
        None,
    );
    for (request, code) in [
        (expired, ReasonCode::Expired),
        (unknown, ReasonCode::UnknownOffer),
    ] {
        match support.assign(&request, now()).await {
            Err(SupportError::Rejected(rejection)) => assert_eq!(rejection.code, code),
            other => panic!("{other:?}"),
        }
    }
    assert!(support.store().offers().is_empty());
}

#[tokio::test]
async fn a_revocation_stands_once_and_keeps_the_offer() {
    let support = service();
    let offer = support
        .assign(&request("u-1", EXPIRY, None), now())
        .await
        .expect("assigned")
        .offer;
    let revocation = |reason: &str| Revocation {
        by: "agent-2".into(),
        at: now(),
        reason: Some(reason.to_owned()),
    };
    let id = offer.personalized_offer_id;
    let Ok(RevokeOutcome::Revoked(revoked)) =
        support.revoke(&user("u-1"), id, revocation("fraud")).await
    else {
        panic!("revoked");
    };
    assert_eq!(revoked.revoked_by.as_deref(), Some("agent-2"));
    assert!(matches!(
        support.revoke(&user("u-1"), id, revocation("again")).await,
        Ok(RevokeOutcome::AlreadyRevoked(_))
    ));
    assert_eq!(
        support.revoke(&user("u-2"), id, revocation("x")).await,
        Ok(RevokeOutcome::NotFound),
        "another user's offer is not found"
    );
    let long = "x".repeat(MAX_REASON_CHARS + 1);
    assert!(matches!(
        support.revoke(&user("u-1"), id, revocation(&long)).await,
        Err(SupportError::Rejected(rejection)) if rejection.code == ReasonCode::InvalidRow
    ));
    let page = PageRequest {
        limit: 10,
        after: None,
        now: now(),
    };
    let listed = support.list(&user("u-1"), &page).await.expect("listed");
    assert_eq!(listed.offers.len(), 1, "kept, for audit");
    let revocations: Vec<_> = listed.offers[0]
        .audit
        .iter()
        .filter(|entry| entry.action == "revoked")
        .collect();
    assert_eq!(revocations.len(), 1, "the first revocation stands");
    assert_eq!(revocations[0].reason.as_deref(), Some("fraud"));
}
