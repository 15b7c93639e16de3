//! In-memory fakes of the dispatcher's ports, for unit tests of the service
//! (and of anything built on it): the same semantics as the DynamoDB adapter
//! (conditional writes, one outcome per record, the pending row deleted only
//! as the stream saw it), with faults that can be scripted per key.

use crate::domain::CampaignId;
use crate::domain::PersonalizedOfferId;
use crate::error::StoreError;
use crate::ports::{
    BudgetedWrite, CampaignOffersBudgets, CatalogReader, DispatchStore, OffersBudgetUse,
    OffersBudgets, PendingRef, PriorRejection, RejectedRow, RejectionKey, RowCopy, WriteOutcome,
};
use chrono::{DateTime, Utc};
use offers_domain::{CatalogEntry, PersonalizedOffer};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use uuid::Uuid;

/// What the fake store holds and has been asked.
#[derive(Debug, Default)]
pub struct MemoryState {
    /// Pending rows by (userId, sortKey), as stored.
    pub pending: HashMap<(String, String), RowCopy>,
    pub offers: HashMap<PersonalizedOfferId, PersonalizedOffer>,
    /// The `assignmentId` stored with an offer, by offer id.
    pub assignment_ids: HashMap<PersonalizedOfferId, String>,
    pub rejections: HashMap<Uuid, RejectedRow>,
    pub catalog: HashMap<String, CatalogEntry>,
    /// Every write attempted, in order: (sortKey, "offer" | "budgeted offer"
    /// | "rejection").
    pub writes: Vec<(String, &'static str)>,
    /// What each offer write was told of the record's rejection, in order
    /// (by sortKey). The fake decides atomically either way.
    pub priors: Vec<(String, PriorRejection)>,
    /// Record ids whose rejection was read before the writes, in order.
    pub rejection_reads: Vec<Uuid>,
    /// The rejections mark (`None`: not set).
    pub rejections_mark: Option<DateTime<Utc>>,
    /// How often the mark was read.
    pub mark_reads: usize,
    /// Raising the mark fails (throttled).
    pub mark_down: bool,
    /// Each raise of the mark (or its setting where there was none): how
    /// many writes had been attempted before it.
    pub mark_raises: Vec<usize>,
    /// Catalog ids asked for, in order.
    pub catalog_reads: Vec<String>,
    /// Writes for these sort keys fail with the error.
    pub failing_keys: HashMap<String, StoreError>,
    /// Offers (not rejections) for these sort keys are refused, as DynamoDB
    /// refuses an item it cannot store.
    pub refused_offers: std::collections::HashSet<String>,
    /// Every write fails with this error (an outage).
    pub down: Option<StoreError>,
    /// The read of rejections before a batch's writes fails (throttled).
    pub failing_reads: bool,
    /// Every catalog read fails with this error.
    pub catalog_down: Option<StoreError>,
    /// Each write takes this long.
    pub write_delay: Duration,
    /// Campaigns' offers budgets: the limit (`None`: removed, or the
    /// campaign deleted) and the count used, as the campaign's item holds them.
    pub offers_budgets: HashMap<CampaignId, (Option<u64>, u64)>,
    /// What the dispatcher reads of the budgets (cached by it, so possibly
    /// behind `offers_budgets`): the campaigns and limits as last listed.
    /// `None`: read `offers_budgets` itself.
    pub listed_offers_budgets: Option<HashMap<CampaignId, Option<u64>>>,
    /// Reads of the campaigns' budgets fail (throttled).
    pub budgets_down: bool,
    /// Consistent reads of one campaign's budget, in order.
    pub budget_reads: Vec<String>,
}

/// A store and catalog in memory. Cheap to share by reference.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The state, to arrange a test or to inspect it afterwards.
    pub fn state(&self) -> MutexGuard<'_, MemoryState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A conditional write of `kind`: nothing if `existing` finds an
    /// earlier outcome (then, of an assignment whose offer exists, the
    /// pending row is consumed), else `store` and the pending delete.
    async fn write(
        &self,
        pending: &PendingRef,
        kind: &'static str,
        existing: impl FnOnce(&MemoryState) -> Option<WriteOutcome>,
        store: impl FnOnce(&mut MemoryState),
    ) -> Result<WriteOutcome, StoreError> {
        let written = self
            .write_if(pending, kind, existing, |state| {
                store(state);
                true
            })
            .await?;
        match written {
            BudgetedWrite::Done(outcome) => Ok(outcome),
            BudgetedWrite::BudgetRefused => unreachable!("an unconditional store is never refused"),
        }
    }

    /// As `write`, where `store` may refuse (a budget): then nothing is
    /// written and the pending row stays.
    async fn write_if(
        &self,
        pending: &PendingRef,
        kind: &'static str,
        existing: impl FnOnce(&MemoryState) -> Option<WriteOutcome>,
        store: impl FnOnce(&mut MemoryState) -> bool,
    ) -> Result<BudgetedWrite, StoreError> {
        let delay = {
            let mut state = self.state();
            state.writes.push((pending.sort_key.clone(), kind));
            if let Some(error) = state
                .down
                .clone()
                .or_else(|| state.failing_keys.get(&pending.sort_key).cloned())
            {
                return Err(error);
            }
            if kind != "rejection" && state.refused_offers.contains(&pending.sort_key) {
                return Err(StoreError::Refused(
                    "Item size has exceeded the maximum".into(),
                ));
            }
            state.write_delay
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut state = self.state();
        if let Some(earlier) = existing(&state) {
            // The assignment's offer, or (for a rejection) its rejection.
            let id = pending.offer_id();
            let assignment_done = pending.assignment_id.is_some()
                && match (kind, earlier) {
                    ("rejection", WriteOutcome::AlreadyWritten) => {
                        state.rejections.contains_key(id.as_uuid())
                    }
                    ("rejection", WriteOutcome::OtherOutcomeWritten)
                    | (_, WriteOutcome::AlreadyWritten) => state.offers.contains_key(&id),
                    _ => false,
                };
            if assignment_done {
                state.delete_pending_as_seen(pending);
            }
            return Ok(BudgetedWrite::Done(earlier));
        }
        if !store(&mut state) {
            return Ok(BudgetedWrite::BudgetRefused);
        }
        Ok(BudgetedWrite::Done(
            match state.delete_pending_as_seen(pending) {
                true => WriteOutcome::Written,
                false => WriteOutcome::WrittenPendingRowKept,
            },
        ))
    }
}

impl MemoryState {
    /// Deletes the pending row only as the stream saw it (or finds it
    /// already gone); false if a newer write of the key replaced it.
    fn delete_pending_as_seen(&mut self, pending: &PendingRef) -> bool {
        let key = (pending.user_id.clone(), pending.sort_key.clone());
        match self.pending.get(&key) {
            Some(stored) if *stored != pending.row => false,
            _ => {
                self.pending.remove(&key);
                true
            }
        }
    }
}

impl DispatchStore for MemoryStore {
    async fn rejections_mark(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut state = self.state();
        state.mark_reads += 1;
        if let Some(error) = state.down.clone() {
            return Err(error);
        }
        if state.failing_reads {
            return Err(StoreError::Throttled("mark not read".into()));
        }
        Ok(state.rejections_mark)
    }

    async fn raise_rejections_mark(
        &self,
        at_least: DateTime<Utc>,
        when_unset: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let writes = state.writes.len();
        state.mark_raises.push(writes);
        if let Some(error) = state.down.clone() {
            return Err(error);
        }
        if state.mark_down {
            return Err(StoreError::Throttled("mark not raised".into()));
        }
        state.rejections_mark = Some(match state.rejections_mark {
            Some(mark) => mark.max(at_least),
            None => when_unset.max(at_least),
        });
        Ok(())
    }

    async fn rejections_absent(
        &self,
        records: &[RejectionKey<'_>],
    ) -> Result<HashSet<Uuid>, StoreError> {
        let mut state = self.state();
        state
            .rejection_reads
            .extend(records.iter().map(|key| key.record_id));
        if let Some(error) = state.down.clone() {
            return Err(error);
        }
        if state.failing_reads {
            return Err(StoreError::Throttled("rejections not read".into()));
        }
        Ok(records
            .iter()
            .filter(|key| !has_own_rejection(&state, key))
            .map(|key| key.record_id)
            .collect())
    }

    async fn dispatch_offer(
        &self,
        offer: &PersonalizedOffer,
        pending: &PendingRef,
        prior: PriorRejection,
    ) -> Result<WriteOutcome, StoreError> {
        self.state().priors.push((pending.sort_key.clone(), prior));
        let existing = |state: &MemoryState| offer_existing(state, offer, pending);
        self.write(pending, "offer", existing, |state| {
            store_offer(state, offer, pending)
        })
        .await
    }

    async fn dispatch_budgeted_offer(
        &self,
        offer: &PersonalizedOffer,
        pending: &PendingRef,
        prior: PriorRejection,
        campaign_id: &CampaignId,
    ) -> Result<BudgetedWrite, StoreError> {
        self.state().priors.push((pending.sort_key.clone(), prior));
        let existing = |state: &MemoryState| offer_existing(state, offer, pending);
        self.write_if(pending, "budgeted offer", existing, |state| {
            // The limit as the campaign's item holds it now.
            match state.offers_budgets.get_mut(campaign_id) {
                Some((Some(limit), used)) if *used < *limit => *used += 1,
                _ => return false,
            }
            store_offer(state, offer, pending);
            true
        })
        .await
    }

    async fn reject_row(
        &self,
        rejection: &RejectedRow,
        pending: &PendingRef,
    ) -> Result<WriteOutcome, StoreError> {
        let id = rejection.rejection_id;
        let existing = |state: &MemoryState| {
            if state.rejections.contains_key(&id) {
                Some(WriteOutcome::AlreadyWritten)
            } else if state.offers.contains_key(&pending.offer_id()) {
                Some(WriteOutcome::OtherOutcomeWritten)
            } else {
                None
            }
        };
        self.write(pending, "rejection", existing, |state| {
            state.rejections.insert(id, rejection.clone());
        })
        .await
    }
}

/// Whether the record of `key` was rejected (a rejection of its assignment
/// from another record is not its own).
fn has_own_rejection(state: &MemoryState, key: &RejectionKey<'_>) -> bool {
    state
        .rejections
        .get(&key.rejection_id)
        .is_some_and(|rejection| rejection.record_id == key.record_id)
}

/// The record's outcome stored earlier, if any (the offer's write's view).
fn offer_existing(
    state: &MemoryState,
    offer: &PersonalizedOffer,
    pending: &PendingRef,
) -> Option<WriteOutcome> {
    if has_own_rejection(state, &pending.rejection_key()) {
        Some(WriteOutcome::OtherOutcomeWritten)
    } else if state.offers.contains_key(&offer.personalized_offer_id) {
        Some(WriteOutcome::AlreadyWritten)
    } else {
        None
    }
}

fn store_offer(state: &mut MemoryState, offer: &PersonalizedOffer, pending: &PendingRef) {
    let id = offer.personalized_offer_id;
    state.offers.insert(id, offer.clone());
    if let Some(assignment_id) = &pending.assignment_id {
        state.assignment_ids.insert(id, assignment_id.clone());
    }
}

impl OffersBudgets for MemoryStore {
    async fn offers_budgets(&self) -> Result<Arc<CampaignOffersBudgets>, StoreError> {
        let state = self.state();
        if state.budgets_down {
            return Err(StoreError::Throttled("campaigns not read".into()));
        }
        let used = |id: &str| state.offers_budgets.get(id).map_or(0, |(_, used)| *used);
        let budget =
            |limit: Option<u64>, used: u64| limit.map(|limit| OffersBudgetUse { limit, used });
        let listed: CampaignOffersBudgets = match &state.listed_offers_budgets {
            Some(listed) => listed
                .iter()
                .map(|(id, limit)| (id.clone(), budget(*limit, used(id))))
                .collect(),
            None => state
                .offers_budgets
                .iter()
                .map(|(id, (limit, used))| (id.clone(), budget(*limit, *used)))
                .collect(),
        };
        Ok(Arc::new(listed))
    }

    async fn offers_budget_now(
        &self,
        campaign_id: &CampaignId,
    ) -> Result<Option<OffersBudgetUse>, StoreError> {
        let mut state = self.state();
        state.budget_reads.push(campaign_id.to_string());
        if state.budgets_down {
            return Err(StoreError::Throttled("campaign not read".into()));
        }
        Ok(match state.offers_budgets.get(campaign_id) {
            Some((Some(limit), used)) => Some(OffersBudgetUse {
                limit: *limit,
                used: *used,
            }),
            _ => None,
        })
    }
}

impl CatalogReader for MemoryStore {
    async fn fetch_entries(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, CatalogEntry>, StoreError> {
        let mut state = self.state();
        state.catalog_reads.extend(ids.iter().cloned());
        if let Some(error) = state.catalog_down.clone() {
            return Err(error);
        }
        Ok(ids
            .iter()
            .filter_map(|id| Some((id.clone(), state.catalog.get(id)?.clone())))
            .collect())
    }
}

impl<T: DispatchStore> DispatchStore for &T {
    async fn rejections_mark(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        (**self).rejections_mark().await
    }

    async fn raise_rejections_mark(
        &self,
        at_least: DateTime<Utc>,
        when_unset: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        (**self).raise_rejections_mark(at_least, when_unset).await
    }

    async fn rejections_absent(
        &self,
        records: &[RejectionKey<'_>],
    ) -> Result<HashSet<Uuid>, StoreError> {
        (**self).rejections_absent(records).await
    }

    async fn dispatch_offer(
        &self,
        offer: &PersonalizedOffer,
        pending: &PendingRef,
        prior: PriorRejection,
    ) -> Result<WriteOutcome, StoreError> {
        (**self).dispatch_offer(offer, pending, prior).await
    }

    async fn reject_row(
        &self,
        rejection: &RejectedRow,
        pending: &PendingRef,
    ) -> Result<WriteOutcome, StoreError> {
        (**self).reject_row(rejection, pending).await
    }

    async fn dispatch_budgeted_offer(
        &self,
        offer: &PersonalizedOffer,
        pending: &PendingRef,
        prior: PriorRejection,
        campaign_id: &CampaignId,
    ) -> Result<BudgetedWrite, StoreError> {
        (**self)
            .dispatch_budgeted_offer(offer, pending, prior, campaign_id)
            .await
    }
}

impl<T: OffersBudgets> OffersBudgets for &T {
    async fn offers_budgets(&self) -> Result<Arc<CampaignOffersBudgets>, StoreError> {
        (**self).offers_budgets().await
    }

    async fn offers_budget_now(
        &self,
        campaign_id: &CampaignId,
    ) -> Result<Option<OffersBudgetUse>, StoreError> {
        (**self).offers_budget_now(campaign_id).await
    }
}

impl<T: CatalogReader> CatalogReader for &T {
    async fn fetch_entries(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, CatalogEntry>, StoreError> {
        (**self).fetch_entries(ids).await
    }
}
