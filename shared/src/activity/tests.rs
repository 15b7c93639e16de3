use super::memory::MemoryActivity;
use super::*;
use crate::domain::dates::parse_timestamp;
use crate::domain::{OfferEventType, OfferSource, OfferStatus};
use crate::fakes::MemoryCatalog;
use futures::future::join_all;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const USER: &str = "user-1";

fn at(text: &str) -> DateTime<Utc> {
    parse_timestamp(text).expect("timestamp")
}

fn now() -> DateTime<Utc> {
    at("2026-06-01T00:00:00Z")
}

fn offer(rules: Value) -> PersonalizedOffer {
    PersonalizedOffer {
        personalized_offer_id: Uuid::new_v4(),
        user_id: USER.into(),
        offer_id: "co-1".into(),
        template_id: "tpl-1".into(),
        campaign_id: None,
        rules: serde_json::from_value(rules).expect("rules"),
        start_date: at("2026-01-01T00:00:00Z"),
        expiry_date: at("2026-12-31T00:00:00Z"),
        rank: 1,
        challenge: None,
        source: OfferSource::Campaign,
        sort_key: None,
        task_id: None,
        assigned_by: None,
        reason: None,
        created_at: at("2026-01-01T00:00:00Z"),
        ttl: 0,
        revoked_at: None,
        revoked_by: None,
        audit: Vec::new(),
        idempotency: None,
        redemption_count: 0,
        redemptions: BTreeMap::new(),
        viewed_at: None,
        clicked_at: None,
        view_count: 0,
        click_count: 0,
        selection: None,
    }
}

fn order(id: &str, cost: f64) -> RedemptionRequest {
    let body = json!({"orderId": id, "totalCost": cost, "serviceMode": "pickup"});
    crate::domain::parse_redemption_request(body.to_string().as_bytes()).expect("valid")
}

fn service(offers: Vec<PersonalizedOffer>) -> ActivityService<MemoryActivity, MemoryCatalog> {
    ActivityService::new(
        MemoryActivity::with_offers(offers),
        MemoryCatalog::default(),
        Duration::days(30),
    )
}

fn stored(service: &ActivityService<MemoryActivity, MemoryCatalog>, id: Uuid) -> PersonalizedOffer {
    service.store().state().offers[&(USER.to_owned(), id)].clone()
}

#[tokio::test]
async fn an_order_uses_the_offer_once_and_a_retry_replays_it() {
    let offer = offer(json!({"redemptionLimit": 2, "minimumSpend": 5}));
    let id = offer.personalized_offer_id;
    let service = service(vec![offer]);
    let first = service
        .redeem(USER, id, &order("o-1", 9.0), now())
        .await
        .expect("redeemed");
    assert!(first.new);
    assert_eq!(first.offer.redemption_count, 1);
    assert_eq!(first.offer.remaining_redemptions(), Some(1));
    let again = service
        .redeem(USER, id, &order("o-1", 9.0), now() + Duration::minutes(1))
        .await
        .expect("replayed");
    assert!(!again.new);
    assert_eq!(
        again.redemption, first.redemption,
        "the first redemption, its time included"
    );
    assert_eq!(stored(&service, id).redemption_count, 1);
    let low = service.redeem(USER, id, &order("o-2", 1.0), now()).await;
    assert!(matches!(
        low,
        Err(ActivityError::Refused(RedeemRefusal::RuleNotMet(_)))
    ));
    assert_eq!(
        service
            .redeem("someone-else", id, &order("o-3", 9.0), now())
            .await,
        Err(ActivityError::NotFound("no such offer"))
    );
}

#[tokio::test]
async fn concurrent_orders_take_exactly_the_uses_left() {
    for (limit, orders) in [(1u64, 20usize), (3, 20), (5, 3)] {
        let offer = offer(json!({"redemptionLimit": limit}));
        let id = offer.personalized_offer_id;
        let service = service(vec![offer]);
        let requests: Vec<RedemptionRequest> =
            (0..orders).map(|n| order(&format!("o-{n}"), 1.0)).collect();
        let results = join_all(
            requests
                .iter()
                .map(|request| service.redeem(USER, id, request, now())),
        )
        .await;
        let won = results
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|r| r.new))
            .count();
        let refused = results
            .iter()
            .filter(|r| {
                matches!(
                    r,
                    Err(ActivityError::Refused(RedeemRefusal::LimitReached { .. }))
                )
            })
            .count();
        let expected = orders.min(limit as usize);
        assert_eq!(
            (won, refused),
            (expected, orders - expected),
            "limit {limit}"
        );
        let stored = stored(&service, id);
        assert_eq!(stored.redemption_count as usize, expected);
        assert_eq!(stored.redemptions.len(), expected);
    }
}

#[tokio::test]
async fn a_void_gives_the_use_back_once_and_the_order_stays_used() {
    let offer = offer(json!({"redemptionLimit": 1}));
    let id = offer.personalized_offer_id;
    let service = service(vec![offer]);
    service
        .redeem(USER, id, &order("o-1", 1.0), now())
        .await
        .expect("redeemed");
    assert_eq!(stored(&service, id).status(now()), OfferStatus::Redeemed);
    let voided = service.void(USER, id, "o-1", now()).await.expect("voided");
    assert!(voided.new);
    assert_eq!(voided.redemption.voided_at, Some(now()));
    assert_eq!(voided.offer.status(now()), OfferStatus::Active);
    let again = service
        .void(USER, id, "o-1", now() + Duration::hours(1))
        .await
        .expect("no change");
    assert!(!again.new);
    assert_eq!(
        again.redemption.voided_at,
        Some(now()),
        "the first void stands"
    );
    assert_eq!(stored(&service, id).redemption_count, 0);
    // The voided order replays voided; a new order takes the use back.
    let replay = service
        .redeem(USER, id, &order("o-1", 1.0), now())
        .await
        .expect("replay");
    assert!(!replay.new && replay.redemption.voided_at.is_some());
    assert!(
        service
            .redeem(USER, id, &order("o-2", 1.0), now())
            .await
            .expect("new")
            .new
    );
    assert_eq!(
        service.void(USER, id, "o-unknown", now()).await,
        Err(ActivityError::NotFound(
            "no redemption of this offer for that order"
        ))
    );
    assert_eq!(
        service.void(USER, Uuid::new_v4(), "o-1", now()).await,
        Err(ActivityError::NotFound("no such offer"))
    );
}

#[tokio::test]
async fn events_count_once_by_id_and_only_on_the_callers_offer() {
    let offer = offer(json!({}));
    let id = offer.personalized_offer_id;
    let service = service(vec![offer]);
    let viewed = OfferEventRequest {
        event_id: Uuid::new_v4(),
        event_type: OfferEventType::Viewed,
    };
    let results = join_all((0..10).map(|_| service.record_event(USER, id, viewed, now()))).await;
    let recorded = results
        .iter()
        .filter(|r| **r == Ok(EventWrite::Recorded))
        .count();
    let duplicates = results
        .iter()
        .filter(|r| **r == Ok(EventWrite::Duplicate))
        .count();
    assert_eq!((recorded, duplicates), (1, 9));
    let later = now() + Duration::hours(1);
    let second = OfferEventRequest {
        event_id: Uuid::new_v4(),
        ..viewed
    };
    service
        .record_event(USER, id, second, later)
        .await
        .expect("recorded");
    let offer = stored(&service, id);
    assert_eq!((offer.view_count, offer.viewed_at), (2, Some(now())));
    assert_eq!((offer.click_count, offer.clicked_at), (0, None));
    assert_eq!(
        service
            .record_event("someone-else", id, viewed, now())
            .await,
        Err(ActivityError::NotFound("no such offer"))
    );
}

#[tokio::test]
async fn store_failures_are_passed_on_not_decided() {
    let offer = offer(json!({}));
    let id = offer.personalized_offer_id;
    let service = service(vec![offer]);
    service.store().state().down = Some(StoreError::Throttled("slow down".into()));
    assert!(matches!(
        service.redeem(USER, id, &order("o-1", 1.0), now()).await,
        Err(ActivityError::Store(StoreError::Throttled(_)))
    ));
    assert!(matches!(
        service.void(USER, id, "o-1", now()).await,
        Err(ActivityError::Store(StoreError::Throttled(_)))
    ));
}
