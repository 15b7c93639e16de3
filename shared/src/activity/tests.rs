use super::memory::MemoryActivity;
use super::*;
use crate::domain::dates::parse_timestamp;
use crate::domain::{OfferEventType, OfferStatus};
use crate::fakes::MemoryCatalog;
use futures::future::join_all;
use serde_json::{json, Value};

const USER: &str = "user-1";

fn at(text: &str) -> DateTime<Utc> {
    parse_timestamp(text).expect("timestamp")
}

fn now() -> DateTime<Utc> {
    at("2026-06-01T00:00:00Z")
}

fn user(id: &str) -> UserId {
    UserId::try_from(id).expect("user id")
}

fn order_id(id: &str) -> OrderId {
    OrderId::try_from(id).expect("order id")
}

fn offer(rules: Value) -> PersonalizedOffer {
    PersonalizedOffer::builder()
        .user(USER)
        .rules(rules)
        .valid(at("2026-01-01T00:00:00Z"), at("2026-12-31T00:00:00Z"))
        .created_at(at("2026-01-01T00:00:00Z"))
        .build()
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

fn stored<B: crate::ports::RedemptionBudgets>(
    service: &ActivityService<MemoryActivity, MemoryCatalog, B>,
    id: PersonalizedOfferId,
) -> PersonalizedOffer {
    service.store().state().offers[&(USER.to_owned(), id)].clone()
}

#[tokio::test]
async fn an_order_uses_the_offer_once_and_a_retry_replays_it() {
    let offer = offer(json!({"redemptionLimit": 2, "minimumSpend": 5}));
    let id = offer.personalized_offer_id;
    let service = service(vec![offer]);
    let first = service
        .redeem(&user(USER), id, &order("o-1", 9.0), now())
        .await
        .expect("redeemed");
    assert!(first.new);
    assert_eq!(first.offer.redemption_count, 1);
    assert_eq!(first.offer.remaining_redemptions(), Some(1));
    let again = service
        .redeem(
            &user(USER),
            id,
            &order("o-1", 9.0),
            now() + Duration::minutes(1),
        )
        .await
        .expect("replayed");
    assert!(!again.new);
    assert_eq!(
        again.redemption, first.redemption,
        "the first redemption, its time included"
    );
    assert_eq!(stored(&service, id).redemption_count, 1);
    let low = service
        .redeem(&user(USER), id, &order("o-2", 1.0), now())
        .await;
    assert!(matches!(
        low,
        Err(ActivityError::Refused(RedeemRefusal::RuleNotMet(_)))
    ));
    assert_eq!(
        service
            .redeem(&user("someone-else"), id, &order("o-3", 9.0), now())
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
        let owner = user(USER);
        let results = join_all(
            requests
                .iter()
                .map(|request| service.redeem(&owner, id, request, now())),
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
        .redeem(&user(USER), id, &order("o-1", 1.0), now())
        .await
        .expect("redeemed");
    assert_eq!(stored(&service, id).status(now()), OfferStatus::Redeemed);
    let voided = service
        .void(&user(USER), id, &order_id("o-1"), now())
        .await
        .expect("voided");
    assert!(voided.new);
    assert_eq!(voided.redemption.voided_at, Some(now()));
    assert_eq!(voided.offer.status(now()), OfferStatus::Active);
    let again = service
        .void(
            &user(USER),
            id,
            &order_id("o-1"),
            now() + Duration::hours(1),
        )
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
        .redeem(&user(USER), id, &order("o-1", 1.0), now())
        .await
        .expect("replay");
    assert!(!replay.new && replay.redemption.voided_at.is_some());
    assert!(
        service
            .redeem(&user(USER), id, &order("o-2", 1.0), now())
            .await
            .expect("new")
            .new
    );
    assert_eq!(
        service
            .void(&user(USER), id, &order_id("o-unknown"), now())
            .await,
        Err(ActivityError::NotFound(
            "no redemption of this offer for that order"
        ))
    );
    assert_eq!(
        service
            .void(
                &user(USER),
                PersonalizedOfferId::random(),
                &order_id("o-1"),
                now()
            )
            .await,
        Err(ActivityError::NotFound("no such offer"))
    );
}

#[tokio::test]
async fn events_count_once_by_id_and_only_on_the_callers_offer() {
    let offer = offer(json!({}));
    let id = offer.personalized_offer_id;
    let service = service(vec![offer]);
    let viewed = OfferEventRequest {
        event_id: uuid::Uuid::new_v4(),
        event_type: OfferEventType::Viewed,
    };
    let owner = user(USER);
    let results = join_all((0..10).map(|_| service.record_event(&owner, id, viewed, now()))).await;
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
        event_id: uuid::Uuid::new_v4(),
        ..viewed
    };
    service
        .record_event(&user(USER), id, second, later)
        .await
        .expect("recorded");
    let offer = stored(&service, id);
    assert_eq!((offer.view_count, offer.viewed_at), (2, Some(now())));
    assert_eq!((offer.click_count, offer.clicked_at), (0, None));
    assert_eq!(
        service
            .record_event(&user("someone-else"), id, viewed, now())
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
        service
            .redeem(&user(USER), id, &order("o-1", 1.0), now())
            .await,
        Err(ActivityError::Store(StoreError::Throttled(_)))
    ));
    assert!(matches!(
        service.void(&user(USER), id, &order_id("o-1"), now()).await,
        Err(ActivityError::Store(StoreError::Throttled(_)))
    ));
}

mod budgets {
    use super::*;
    use crate::activity::memory::{MemoryBudget, MemoryBudgets};
    use crate::domain::CampaignId;
    use crate::ports::RedemptionLimits;

    const CAMPAIGN: &str = "camp-budget";

    fn campaign() -> CampaignId {
        CampaignId::literal(CAMPAIGN)
    }

    type Budgeted = ActivityService<MemoryActivity, MemoryCatalog, MemoryBudgets>;

    fn campaign_offer() -> PersonalizedOffer {
        PersonalizedOffer {
            campaign_id: Some(campaign()),
            ..offer(json!({}))
        }
    }

    fn budgeted(offers: Vec<PersonalizedOffer>, limits: RedemptionLimits) -> Budgeted {
        let store = MemoryActivity::with_offers(offers);
        let budgets = store.budgets();
        budgets.put(&campaign(), limits);
        ActivityService::with_budgets(store, MemoryCatalog::default(), budgets, Duration::days(30))
    }

    fn used(service: &Budgeted) -> MemoryBudget {
        service.budgets().lock()[CAMPAIGN].clone()
    }

    fn discounted(id: &str, discount: u64) -> RedemptionRequest {
        let body =
            json!({"orderId": id, "totalCost": 100, "discount": discount, "serviceMode": "pickup"});
        crate::domain::parse_redemption_request(body.to_string().as_bytes()).expect("valid")
    }

    fn exhausted<T: std::fmt::Debug>(result: Result<T, ActivityError>) -> bool {
        matches!(
            result,
            Err(ActivityError::Refused(RedeemRefusal::BudgetExhausted(_)))
        )
    }

    #[tokio::test]
    async fn redemptions_at_once_on_different_offers_use_exactly_the_budget() {
        let offers: Vec<PersonalizedOffer> = (0..40).map(|_| campaign_offer()).collect();
        let ids: Vec<PersonalizedOfferId> =
            offers.iter().map(|o| o.personalized_offer_id).collect();
        let service = budgeted(
            offers,
            RedemptionLimits {
                redemptions: Some(10),
                discount_value: None,
            },
        );
        let order = order("o-1", 9.0);
        let owner = user(USER);
        let results = join_all(
            ids.iter()
                .map(|id| service.redeem(&owner, *id, &order, now())),
        )
        .await;
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 10);
        assert_eq!(
            results.into_iter().filter(|r| exhausted(r.clone())).count(),
            30
        );
        assert_eq!(used(&service).used_redemptions, 10);
        let unused = ids
            .iter()
            .filter(|id| stored(&service, **id).redemption_count == 0)
            .count();
        assert_eq!(unused, 30, "a refused redemption uses nothing of its offer");
    }

    #[tokio::test]
    async fn a_discount_budget_refuses_what_would_pass_it_and_a_void_gives_back() {
        let offers: Vec<PersonalizedOffer> = (0..4).map(|_| campaign_offer()).collect();
        let ids: Vec<PersonalizedOfferId> =
            offers.iter().map(|o| o.personalized_offer_id).collect();
        let service = budgeted(
            offers,
            RedemptionLimits {
                redemptions: None,
                discount_value: Some(50 * 10_000),
            },
        );
        for id in &ids[..2] {
            service
                .redeem(&user(USER), *id, &discounted("o-1", 20), now())
                .await
                .expect("within the budget");
        }
        // The same order again replays: no second use.
        let again = service
            .redeem(&user(USER), ids[0], &discounted("o-1", 20), now())
            .await
            .expect("replayed");
        assert!(!again.new);
        assert_eq!(used(&service).used_discount, 40 * 10_000);
        assert!(exhausted(
            service
                .redeem(&user(USER), ids[2], &discounted("o-1", 20), now())
                .await
        ));
        assert_eq!(stored(&service, ids[2]).redemption_count, 0);
        // A smaller one still fits.
        service
            .redeem(&user(USER), ids[3], &discounted("o-1", 10), now())
            .await
            .expect("10 of 50 left");
        let voided = service
            .void(&user(USER), ids[0], &order_id("o-1"), now())
            .await
            .expect("void");
        assert!(voided.new);
        assert_eq!(used(&service).used_discount, 30 * 10_000);
        let again = service
            .void(&user(USER), ids[0], &order_id("o-1"), now())
            .await
            .expect("void");
        assert!(!again.new);
        assert_eq!(used(&service).used_discount, 30 * 10_000, "given back once");
        service
            .redeem(&user(USER), ids[2], &discounted("o-2", 20), now())
            .await
            .expect("the void made room");
    }

    #[tokio::test]
    async fn a_lowered_limit_stops_use_at_once_and_a_deleted_campaign_has_no_budget() {
        let offers: Vec<PersonalizedOffer> = (0..3).map(|_| campaign_offer()).collect();
        let ids: Vec<PersonalizedOfferId> =
            offers.iter().map(|o| o.personalized_offer_id).collect();
        let limits = |n| RedemptionLimits {
            redemptions: Some(n),
            discount_value: None,
        };
        let service = budgeted(offers, limits(5));
        service
            .redeem(&user(USER), ids[0], &order("o-1", 9.0), now())
            .await
            .expect("1 of 5");
        service.budgets().put(&campaign(), limits(1));
        assert!(exhausted(
            service
                .redeem(&user(USER), ids[1], &order("o-1", 9.0), now())
                .await
        ));
        assert_eq!(used(&service).used_redemptions, 1, "nothing taken back");
        service.budgets().lock().remove(CAMPAIGN);
        let redeemed = service
            .redeem(&user(USER), ids[1], &order("o-1", 9.0), now())
            .await
            .expect("no budget any more");
        assert_eq!(redeemed.redemption.budget_use, None);
        // The first redemption's void finds no campaign: it is voided alone.
        assert!(
            service
                .void(&user(USER), ids[0], &order_id("o-1"), now())
                .await
                .expect("void")
                .new
        );
    }
}
