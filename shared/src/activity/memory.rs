//! An in-memory fake of the activity store, with the DynamoDB adapter's
//! conditions: each write checks and changes one offer under one lock.

use crate::activity::discount_of;
use crate::domain::redemption::{redemption_limit, MAX_REDEMPTION_RECORDS};
use crate::domain::CampaignId;
use crate::domain::PersonalizedOfferId;
use crate::domain::{
    decide_redemption, OfferEvent, OfferEventType, OrderId, PersonalizedOffer, RedeemDecision,
    Redemption, RedemptionRequest, UserId,
};
use crate::error::StoreError;
use crate::ports::{
    ActivityStore, ActivityWrite, EventWrite, OfferPage, OfferReader, PageRequest, RedeemBudget,
    RedemptionBudgets, RedemptionLimits, VoidBudget,
};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard};
use uuid::Uuid;

#[derive(Debug, Default)]
pub struct MemoryActivityState {
    /// Offers by (userId, personalizedOfferId).
    pub offers: HashMap<(String, PersonalizedOfferId), PersonalizedOffer>,
    /// Recorded events: (personalizedOfferId, eventId).
    pub events: HashSet<(PersonalizedOfferId, Uuid)>,
    /// Writes (not reads) attempted.
    pub writes: usize,
    /// Every call fails with this error.
    pub down: Option<StoreError>,
}

/// A campaign's redemption limits and counters, as its item holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryBudget {
    pub limits: RedemptionLimits,
    pub used_redemptions: u64,
    /// Ten-thousandths.
    pub used_discount: u64,
}

/// Campaigns with redemption limits and what they used, by id: the items
/// of `CampaignsTable` that the store's transactions change and the
/// service's budgets read.
#[derive(Debug, Clone, Default)]
pub struct MemoryBudgets {
    campaigns: Arc<Mutex<HashMap<CampaignId, MemoryBudget>>>,
}

impl MemoryBudgets {
    pub fn lock(&self) -> MutexGuard<'_, HashMap<CampaignId, MemoryBudget>> {
        self.campaigns
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets a campaign's limits, keeping what it used (as `campaign put`).
    pub fn put(&self, campaign_id: &CampaignId, limits: RedemptionLimits) {
        self.lock()
            .entry(campaign_id.clone())
            .and_modify(|budget| budget.limits = limits.clone())
            .or_insert(MemoryBudget {
                limits,
                used_redemptions: 0,
                used_discount: 0,
            });
    }
}

#[derive(Debug, Default)]
pub struct MemoryActivity {
    state: Mutex<MemoryActivityState>,
    budgets: MemoryBudgets,
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

    /// The campaigns' budgets this store's writes use (shared).
    pub fn budgets(&self) -> MemoryBudgets {
        self.budgets.clone()
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
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
    ) -> Result<Option<PersonalizedOffer>, StoreError> {
        let user_id = user_id.as_str();
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
        user_id: &UserId,
        page: &PageRequest,
    ) -> Result<OfferPage, StoreError> {
        let user_id = user_id.as_str();
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
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
        known: Option<&PersonalizedOffer>,
        redemption: &Redemption,
        budget: RedeemBudget<'_>,
    ) -> Result<ActivityWrite, StoreError> {
        let user_id = user_id.as_str();
        let mut state = self.for_write()?;
        let state = &mut *state;
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
                    == RedeemDecision::Redeem)
            && match budget {
                RedeemBudget::NoneOf(campaigns) => offer
                    .campaign_id
                    .as_ref()
                    .is_none_or(|campaign| !campaigns.contains(campaign)),
                RedeemBudget::Use { .. } => true,
            };
        if !holds {
            return Ok(ActivityWrite::NotWritten(Some(Box::new(offer.clone()))));
        }
        if let RedeemBudget::Use {
            campaign_id,
            limits,
        } = budget
        {
            // The limits as the item holds them, and each counter's room.
            let discount = discount_of(redemption);
            let mut campaigns = self.budgets.lock();
            let allowed = campaigns.get(campaign_id).is_some_and(|stored| {
                stored.limits == *limits
                    && limits
                        .redemptions
                        .is_none_or(|limit| stored.used_redemptions < limit)
                    && limits
                        .discount_value
                        .is_none_or(|limit| stored.used_discount.saturating_add(discount) <= limit)
            });
            let Some(stored) = campaigns.get_mut(campaign_id).filter(|_| allowed) else {
                return Ok(ActivityWrite::BudgetRefused);
            };
            if let Some(taken) = &redemption.budget_use {
                if taken.redemptions {
                    stored.used_redemptions += 1;
                }
                if taken.discount_value {
                    stored.used_discount = stored.used_discount.saturating_add(discount);
                }
            }
        }
        offer
            .redemptions
            .insert(redemption.order_id.clone(), redemption.clone());
        offer.redemption_count = offer.redemption_count.saturating_add(1);
        Ok(ActivityWrite::Written(Box::new(offer.clone())))
    }

    async fn void_redemption(
        &self,
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
        order_id: &OrderId,
        at: DateTime<Utc>,
        budget: VoidBudget<'_>,
    ) -> Result<ActivityWrite, StoreError> {
        let user_id = user_id.as_str();
        let order_id = order_id.as_str();
        let mut state = self.for_write()?;
        let state = &mut *state;
        let Some(offer) = state
            .offers
            .get_mut(&(user_id.to_owned(), personalized_offer_id))
        else {
            return Ok(ActivityWrite::NotWritten(None));
        };
        match offer.redemptions.get_mut(order_id) {
            Some(redemption)
                if redemption.voided_at.is_none()
                    && (budget != VoidBudget::Untouched || redemption.budget_use.is_none()) =>
            {
                if let VoidBudget::GiveBack {
                    campaign_id, taken, ..
                } = budget
                {
                    let mut campaigns = self.budgets.lock();
                    let Some(stored) = campaigns.get_mut(campaign_id) else {
                        return Ok(ActivityWrite::BudgetRefused);
                    };
                    if taken.redemptions {
                        stored.used_redemptions = stored.used_redemptions.saturating_sub(1);
                    }
                    if taken.discount_value {
                        stored.used_discount =
                            stored.used_discount.saturating_sub(discount_of(redemption));
                    }
                }
                redemption.voided_at = Some(at);
                offer.redemption_count = offer.redemption_count.saturating_sub(1);
                Ok(ActivityWrite::Written(Box::new(offer.clone())))
            }
            _ => Ok(ActivityWrite::NotWritten(Some(Box::new(offer.clone())))),
        }
    }

    async fn record_event(
        &self,
        user_id: &UserId,
        event: &OfferEvent,
        _ttl: i64,
    ) -> Result<EventWrite, StoreError> {
        let user_id = user_id.as_str();
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

impl RedemptionBudgets for MemoryBudgets {
    async fn budgeted(&self) -> Result<Arc<HashMap<CampaignId, RedemptionLimits>>, StoreError> {
        Ok(Arc::new(
            self.lock()
                .iter()
                .map(|(id, budget)| (id.clone(), budget.limits.clone()))
                .collect(),
        ))
    }

    async fn current(
        &self,
        campaign_id: &CampaignId,
    ) -> Result<Option<RedemptionLimits>, StoreError> {
        Ok(self
            .lock()
            .get(campaign_id)
            .map(|budget| budget.limits.clone()))
    }
}
