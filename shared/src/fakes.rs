//! In-memory fakes of ports that several services share, for unit tests.
//! (The dispatcher's own store fake is `dispatch::memory`.)

use crate::domain::CampaignId;
use crate::domain::PersonalizedOfferId;
use crate::error::StoreError;
use crate::ports::{
    CatalogReader, CreateOutcome, LearningCounters, ListPosition, OfferPage, OfferReader,
    PageRequest, Revocation, RevokeOutcome, SelectionStatsReader, SupportStore,
};
use chrono::{DateTime, Utc};
use offers_domain::campaign::{Budget, BudgetUse};
use offers_domain::selection::LearningCounter;
use offers_domain::{AuditEntry, CatalogEntry, OfferSource, PersonalizedOffer, UserId};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// A catalog of fixed items, given as the JSON the CMS writes.
#[derive(Debug, Clone, Default)]
pub struct MemoryCatalog {
    entries: HashMap<String, CatalogEntry>,
}

impl MemoryCatalog {
    /// The items (objects with an `id`); anything else is left out.
    pub fn of(items: impl IntoIterator<Item = Value>) -> Self {
        let entries = items
            .into_iter()
            .filter_map(|item| match item {
                Value::Object(item) => Some(item),
                _ => None,
            })
            .filter_map(|item| {
                let id = item.get("id").and_then(Value::as_str)?.to_owned();
                Some((id.clone(), CatalogEntry::from_json(&id, item)))
            })
            .collect();
        Self { entries }
    }
}

impl CatalogReader for MemoryCatalog {
    async fn fetch_entries(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, CatalogEntry>, StoreError> {
        Ok(ids
            .iter()
            .filter_map(|id| Some((id.clone(), self.entries.get(id)?.clone())))
            .collect())
    }
}

/// Learning counters held in memory, or a store that fails.
#[derive(Debug, Clone, Default)]
pub struct MemorySelectionStats {
    pub counters: Vec<LearningCounter>,
    pub failure: Option<StoreError>,
}

impl SelectionStatsReader for MemorySelectionStats {
    async fn learning_counters(
        &self,
        offer_ids: &[String],
    ) -> Result<LearningCounters, StoreError> {
        if let Some(err) = &self.failure {
            return Err(err.clone());
        }
        Ok(LearningCounters {
            counters: self
                .counters
                .iter()
                .filter(|counter| offer_ids.contains(&counter.offer_id))
                .cloned()
                .collect(),
            unreadable: 0,
        })
    }
}

/// The offers table in memory, for the lookup and the support tool: every
/// read and write lands at once, in the order the offers were put. It
/// records the reads it is asked for, may fail every call, and may take
/// `delay` to answer (DynamoDB applied a write, its response is slow). No
/// campaign has a budget.
#[derive(Debug, Default)]
pub struct MemoryOffers {
    offers: Mutex<Vec<PersonalizedOffer>>,
    reads: Mutex<Vec<String>>,
    failure: Mutex<Option<StoreError>>,
    delay: Mutex<Option<Duration>>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemoryOffers {
    pub fn of(offers: impl IntoIterator<Item = PersonalizedOffer>) -> Self {
        Self {
            offers: Mutex::new(offers.into_iter().collect()),
            ..Self::default()
        }
    }

    /// Every offer held, in the order they were put.
    pub fn offers(&self) -> Vec<PersonalizedOffer> {
        locked(&self.offers).clone()
    }

    /// The reads asked for: `get <user> <id>`, `list <user> <limit> <after>`.
    pub fn reads(&self) -> Vec<String> {
        locked(&self.reads).clone()
    }

    /// Every later call fails with `failure` (or none does).
    pub fn set_failure(&self, failure: Option<StoreError>) {
        *locked(&self.failure) = failure;
    }

    /// Every later call takes `delay` to answer, after it took effect.
    pub fn set_delay(&self, delay: Option<Duration>) {
        *locked(&self.delay) = delay;
    }

    fn record(&self, read: String) {
        locked(&self.reads).push(read);
    }

    async fn answer<T>(&self, result: T) -> Result<T, StoreError> {
        let delay = *locked(&self.delay);
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        match locked(&self.failure).clone() {
            Some(failure) => Err(failure),
            None => Ok(result),
        }
    }

    fn find(&self, user_id: &str, id: PersonalizedOfferId) -> Option<PersonalizedOffer> {
        locked(&self.offers)
            .iter()
            .find(|offer| offer.user_id == user_id && offer.personalized_offer_id == id)
            .cloned()
    }

    /// The user's offers that `keep` keeps, paged in the order they were put.
    fn page(
        &self,
        user_id: &str,
        page: &PageRequest,
        keep: impl Fn(&PersonalizedOffer) -> bool,
    ) -> OfferPage {
        let mine: Vec<PersonalizedOffer> = locked(&self.offers)
            .iter()
            .filter(|offer| offer.user_id == user_id && keep(offer))
            .cloned()
            .collect();
        let start = page.after.as_ref().map_or(0, |after| {
            mine.iter()
                .position(|offer| offer.personalized_offer_id == after.personalized_offer_id)
                .map_or(mine.len(), |index| index + 1)
        });
        let rest: Vec<PersonalizedOffer> = mine.into_iter().skip(start).collect();
        let next = (rest.len() > page.limit)
            .then(|| rest.get(page.limit.saturating_sub(1)))
            .flatten()
            .map(|last| ListPosition {
                index_key: format!("k#{}", last.personalized_offer_id),
                personalized_offer_id: last.personalized_offer_id,
            });
        OfferPage {
            offers: rest.into_iter().take(page.limit).collect(),
            next,
        }
    }

    fn record_list(&self, verb: &str, user_id: &str, page: &PageRequest) {
        self.record(format!(
            "{verb} {user_id} {} {:?}",
            page.limit,
            page.after.as_ref().map(|after| after.personalized_offer_id)
        ));
    }
}

impl OfferReader for MemoryOffers {
    async fn get_offer(
        &self,
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
    ) -> Result<Option<PersonalizedOffer>, StoreError> {
        self.record(format!("get {user_id} {personalized_offer_id}"));
        let found = self.find(user_id.as_str(), personalized_offer_id);
        self.answer(found).await
    }

    async fn list_offers(
        &self,
        user_id: &UserId,
        page: &PageRequest,
    ) -> Result<OfferPage, StoreError> {
        self.record_list("list", user_id.as_str(), page);
        let listed = self.page(user_id.as_str(), page, |offer| {
            offer.revoked_at.is_none() && offer.expiry_date > page.now
        });
        self.answer(listed).await
    }
}

impl SupportStore for MemoryOffers {
    async fn create_offer(&self, offer: &PersonalizedOffer) -> Result<CreateOutcome, StoreError> {
        let existing = {
            let mut offers = locked(&self.offers);
            let existing = offers
                .iter()
                .find(|stored| stored.personalized_offer_id == offer.personalized_offer_id)
                .cloned();
            if existing.is_none() {
                offers.push(offer.clone());
            }
            existing
        };
        self.answer(match existing {
            Some(existing) => CreateOutcome::AlreadyExists(Box::new(existing)),
            None => CreateOutcome::Created,
        })
        .await
    }

    async fn create_budgeted_offer(
        &self,
        offer: &PersonalizedOffer,
        _campaign_id: &CampaignId,
    ) -> Result<CreateOutcome, StoreError> {
        self.create_offer(offer).await
    }

    async fn offers_limit(&self, _campaign_id: &CampaignId) -> Result<Option<u64>, StoreError> {
        self.answer(None).await
    }

    async fn campaign_budget(
        &self,
        _campaign_id: &CampaignId,
    ) -> Result<Option<(Budget, BudgetUse)>, StoreError> {
        self.answer(None).await
    }

    async fn find_offer(
        &self,
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
    ) -> Result<Option<PersonalizedOffer>, StoreError> {
        let found = self.find(user_id.as_str(), personalized_offer_id);
        self.answer(found).await
    }

    async fn revoke_offer(
        &self,
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
        revocation: &Revocation,
    ) -> Result<RevokeOutcome, StoreError> {
        let outcome = {
            let mut offers = locked(&self.offers);
            match offers.iter_mut().find(|offer| {
                offer.user_id == *user_id && offer.personalized_offer_id == personalized_offer_id
            }) {
                None => RevokeOutcome::NotFound,
                Some(offer) if offer.revoked_at.is_some() => {
                    RevokeOutcome::AlreadyRevoked(Box::new(offer.clone()))
                }
                Some(offer) => {
                    offer.revoked_at = Some(revocation.at);
                    offer.revoked_by = Some(revocation.by.clone());
                    offer.audit.push(AuditEntry {
                        action: "revoked".into(),
                        by: revocation.by.clone(),
                        at: revocation.at,
                        reason: revocation.reason.clone(),
                    });
                    RevokeOutcome::Revoked(Box::new(offer.clone()))
                }
            }
        };
        self.answer(outcome).await
    }

    async fn list_all_offers(
        &self,
        user_id: &UserId,
        page: &PageRequest,
    ) -> Result<OfferPage, StoreError> {
        self.record_list("list_all", user_id.as_str(), page);
        let listed = self.page(user_id.as_str(), page, |_| true);
        self.answer(listed).await
    }
}

/// An active offer of config offer `co-1` (template `tpl-1`, campaign
/// `camp-1`) for `user_id`, valid from a day before `now` to a day after.
pub fn active_offer(user_id: &str, now: DateTime<Utc>) -> PersonalizedOffer {
    PersonalizedOffer {
        personalized_offer_id: PersonalizedOfferId::random(),
        user_id: user_id.into(),
        offer_id: "co-1".into(),
        template_id: "tpl-1".into(),
        campaign_id: Some(CampaignId::literal("camp-1")),
        rules: BTreeMap::new(),
        start_date: now - chrono::Duration::days(1),
        expiry_date: now + chrono::Duration::days(1),
        rank: 1,
        challenge: None,
        source: OfferSource::Campaign,
        sort_key: None,
        task_id: None,
        assigned_by: None,
        reason: None,
        created_at: now,
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

/// A pending table in memory for the batch writer: every item put, in order.
#[derive(Debug, Default)]
pub struct MemoryPending {
    pub items: std::sync::Mutex<Vec<crate::dynamo::Item>>,
}

impl crate::dynamo::batch_write::BatchPut for MemoryPending {
    async fn put_batch(
        &self,
        items: Vec<crate::dynamo::Item>,
    ) -> Result<Vec<crate::dynamo::Item>, StoreError> {
        if let Ok(mut kept) = self.items.lock() {
            kept.extend(items);
        }
        Ok(Vec::new())
    }
}
