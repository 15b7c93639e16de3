use super::*;
use crate::domain::PersonalizedOfferId;
use crate::fakes::{active_offer, MemoryCatalog, MemoryOffers};
use chrono::{Duration, Utc};

fn user(id: &str) -> UserId {
    UserId::try_from(id).expect("user id")
}

fn lookup(offers: MemoryOffers) -> LookupService<MemoryOffers, MemoryCatalog> {
    LookupService::new(offers, MemoryCatalog::default())
}

fn page(limit: usize, after: Option<ListPosition>) -> PageRequest {
    PageRequest {
        limit,
        after,
        now: Utc::now(),
    }
}

#[tokio::test]
async fn the_owner_gets_the_offer_and_others_the_same_not_found_as_missing() {
    let offer = active_offer("owner", Utc::now());
    let id = offer.personalized_offer_id;
    let lookup = lookup(MemoryOffers::of([offer.clone()]));
    let get = |user_id: &str, personalized_offer_id| LookupRequest::Offer {
        user_id: user(user_id),
        personalized_offer_id,
    };
    assert_eq!(
        lookup.look_up(&get("owner", id)).await,
        Ok(LookedUp::Offer(Box::new(offer)))
    );
    let other = lookup.look_up(&get("other", id)).await;
    let missing = lookup
        .look_up(&get("owner", PersonalizedOfferId::random()))
        .await;
    assert_eq!(other, Err(LookupError::NotFound));
    assert_eq!(other, missing);
    assert_eq!(
        lookup.offers().reads()[1],
        format!("get other {id}"),
        "read under the caller's key"
    );
}

#[tokio::test]
async fn the_list_pages_through_the_callers_current_offers_only() {
    let now = Utc::now();
    let mut expired = active_offer("owner", now);
    expired.expiry_date = now - Duration::hours(1);
    let mut revoked = active_offer("owner", now);
    revoked.revoked_at = Some(now);
    let current: Vec<_> = (0..3).map(|_| active_offer("owner", now)).collect();
    let lookup = lookup(MemoryOffers::of(current.iter().cloned().chain([
        expired,
        revoked,
        active_offer("other", now),
    ])));
    let list = |after| LookupRequest::Page {
        user_id: user("owner"),
        page: page(2, after),
    };
    let Ok(LookedUp::Page { offers, next }) = lookup.look_up(&list(None)).await else {
        panic!("a page");
    };
    assert_eq!(offers, current[..2]);
    let next = next.expect("a next page");
    let Ok(LookedUp::Page { offers, next }) = lookup.look_up(&list(Some(next))).await else {
        panic!("a page");
    };
    assert_eq!(offers, current[2..]);
    assert_eq!(next, None, "no cursor on the last page");
    let second = &lookup.offers().reads()[1];
    assert!(second.starts_with("list owner 2 Some("), "{second}");
}

#[tokio::test]
async fn a_store_failure_is_the_stores_error() {
    let offers = MemoryOffers::default();
    offers.set_failure(Some(StoreError::Throttled("t".into())));
    let lookup = lookup(offers);
    for request in [
        LookupRequest::Offer {
            user_id: user("owner"),
            personalized_offer_id: PersonalizedOfferId::random(),
        },
        LookupRequest::Page {
            user_id: user("owner"),
            page: page(DEFAULT_LIMIT, None),
        },
    ] {
        assert_eq!(
            lookup.look_up(&request).await,
            Err(LookupError::Store(StoreError::Throttled("t".into())))
        );
    }
}
