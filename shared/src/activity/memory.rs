//! An in-memory fake of the activity store, with the DynamoDB adapter's
//! conditions: each write checks and changes one offer under one lock.

use crate::domain::redemption::{redemption_limit, MAX_REDEMPTION_RECORDS};
use crate::domain::{
    decide_redemption, OfferEvent, OfferEventType, PersonalizedOffer, RedeemDecision, Redemption,
    RedemptionRequest,
};
use crate::error::StoreError;
use crate::ports::{ActivityStore, ActivityWrite, EventWrite, OfferPage, OfferReader, PageRequest};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use uuid::Uuid;

#[derive(Debug, Default)]
pub struct MemoryActivityState {
    /// Offers by (userId, personalizedOfferId).
    pub offers: HashMap<(String, Uuid), PersonalizedOffer>,
    /// Recorded events: (personalizedOfferId, eventId).
    pub events: HashSet<(Uuid, Uuid)>,
    /// Writes (not reads) attempted.
    pub writes: usize,
    /// Every call fails with this error.
    pub down: Option<StoreError>,
}

#[derive(Debug, Default)]
pub struct MemoryActivity {
    state: Mutex<MemoryActivityState>,
}

impl MemoryActivity {
    pub fn with_offers(offers: impl IntoIterator<Item = PersonalizedOffer>) -> Self {
        let store = Self::default();
        store.state().offers = offers
            .into_iter()
            .map(|offer| ((offer.user_id.clone(), offer.personalized_offer_id), offer))
            .collect();
        store
    }

    pub fn state(&self) -> MutexGuard<'_, MemoryActivityState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The state for a write: counted, and failing if the store is down.
    fn for_write(&self) -> Result<MutexGuard<'_, MemoryActivityState>, StoreError> {
        let mut state = self.state();
        state.writes += 1;
        match &state.down {
            Some(err) => Err(err.clone()),
            None => Ok(state),
        }
    }
}

impl OfferReader for MemoryActivity {
    async fn get_offer(
        &self,
        user_id: &str,
        personalized_offer_id: Uuid,
    ) -> Result<Option<PersonalizedOffer>, StoreError> {
        let state = self.state();
        if let Some(err) = &state.down {
            return Err(err.clone());
        }
        Ok(state
            .offers
            .get(&(user_id.to_owned(), personalized_offer_id))
            .cloned())
    }

    async fn list_offers(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> Result<OfferPage, StoreError> {
        let state = self.state();
        let mut offers: Vec<PersonalizedOffer> = state
            .offers
            .values()
            .filter(|offer| offer.user_id == user_id)
            .cloned()
            .collect();
        offers.sort_by_key(|offer| (offer.rank, offer.personalized_offer_id));
        offers.truncate(page.limit);
        Ok(OfferPage { offers, next: None })
    }
}

impl ActivityStore for MemoryActivity {
    async fn redeem(
        &self,
        user_id: &str,
        personalized_offer_id: Uuid,
        known: Option<&PersonalizedOffer>,
        redemption: &Redemption,
    ) -> Result<ActivityWrite, StoreError> {
        let mut state = self.for_write()?;
        let Some(offer) = state
            .offers
            .get_mut(&(user_id.to_owned(), personalized_offer_id))
        else {
            return Ok(ActivityWrite::NotWritten(None));
        };
        let request = RedemptionRequest {
            order_id: redemption.order_id.clone(),
            total_cost: redemption.total_cost.clone(),
            discount: redemption.discount.clone(),
            service_mode: redemption.service_mode.clone(),
            store_id: redemption.store_id.clone(),
        };
        // The adapter creates the records map unless the offer it knows has
        // records; a stale view fails either way.
        let first = known.is_none_or(|known| known.redemptions.is_empty());
        let limit = match known {
            Some(known) => redemption_limit(&known.rules),
            None => redemption_limit(&offer.rules),
        };
        let holds = offer.revoked_at.is_none()
            && first == offer.redemptions.is_empty()
            && !offer.redemptions.contains_key(&redemption.order_id)
            && offer.redemptions.len() < MAX_REDEMPTION_RECORDS
            && limit.is_none_or(|limit| offer.redemption_count < limit)
            // Without a read, the condition also holds time and rules.
            && (known.is_some()
                || decide_redemption(offer, &request, redemption.redeemed_at)
                    == RedeemDecision::Redeem);
        if !holds {
            return Ok(ActivityWrite::NotWritten(Some(Box::new(offer.clone()))));
        }
        offer
            .redemptions
            .insert(redemption.order_id.clone(), redemption.clone());
        offer.redemption_count = offer.redemption_count.saturating_add(1);
        Ok(ActivityWrite::Written(Box::new(offer.clone())))
    }

    async fn void_redemption(
        &self,
        user_id: &str,
        personalized_offer_id: Uuid,
        order_id: &str,
        at: DateTime<Utc>,
    ) -> Result<ActivityWrite, StoreError> {
        let mut state = self.for_write()?;
        let Some(offer) = state
            .offers
            .get_mut(&(user_id.to_owned(), personalized_offer_id))
        else {
            return Ok(ActivityWrite::NotWritten(None));
        };
        match offer.redemptions.get_mut(order_id) {
            Some(redemption) if redemption.voided_at.is_none() => {
                redemption.voided_at = Some(at);
                offer.redemption_count = offer.redemption_count.saturating_sub(1);
                Ok(ActivityWrite::Written(Box::new(offer.clone())))
            }
            _ => Ok(ActivityWrite::NotWritten(Some(Box::new(offer.clone())))),
        }
    }

    async fn record_event(
        &self,
        user_id: &str,
        event: &OfferEvent,
        _ttl: i64,
    ) -> Result<EventWrite, StoreError> {
        let mut state = self.for_write()?;
        let state = &mut *state;
        let Some(offer) = state
            .offers
            .get_mut(&(user_id.to_owned(), event.personalized_offer_id))
        else {
            return Ok(EventWrite::NoSuchOffer);
        };
        if !state
            .events
            .insert((event.personalized_offer_id, event.event_id))
        {
            return Ok(EventWrite::Duplicate);
        }
        let (first, count) = match event.event_type {
            OfferEventType::Viewed => (&mut offer.viewed_at, &mut offer.view_count),
            OfferEventType::Clicked => (&mut offer.clicked_at, &mut offer.click_count),
        };
        first.get_or_insert(event.received_at);
        *count = count.saturating_add(1);
        Ok(EventWrite::Recorded)
    }
}
