//! The dispatcher: each INSERT becomes exactly one of dispatched, rejected or
//! failed. The batch's rows are parsed and its catalog read once, then the
//! shared runner (`crate::stream::runner`) runs the records: those of
//! different keys concurrently, those of one key in stream order.

use super::input::{InsertRecord, StreamInput};
use super::plan::{parse_insert, plan_insert, Plan, Planned};
use super::report::{log_batch, DispatchOutcome, DispatchReport, DispatchSummary, Earlier};
use crate::activity::NoBudgets;
use crate::assign::load_catalog;
use crate::domain::PersonalizedOfferId;
use crate::error::StoreError;
use crate::ports::{
    BudgetedWrite, CampaignOffersBudgets, CatalogReader, DispatchStore, OffersBudgetUse,
    OffersBudgets, PendingRef, PriorRejection, RejectedRow, RejectionKey, WriteOutcome,
};
use crate::stream::runner::{run_batch, Failure, RecordHandler, Run};
use chrono::{DateTime, Utc};
use offers_domain::{CampaignId, PersonalizedOffer, ReasonCode, Rejection};
use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchSettings {
    pub concurrency: usize,
    pub deadline_margin: Duration,
    pub retention: chrono::Duration,
}

pub struct Dispatcher<S, C, B = NoBudgets> {
    store: S,
    catalog: C,
    /// Which campaigns have an offers budget (contract section 14).
    budgets: B,
    settings: DispatchSettings,
}

/// How far past the moment it is first set the rejections mark starts: no
/// record created before it is taken for one without a rejection. It covers
/// the clocks of DynamoDB and of Lambda, and a dispatcher of an older version
/// (which does not raise the mark) still running for a moment after a
/// deployment (docs/design.md, "The common path").
pub const REJECTIONS_MARK_MARGIN: Duration = Duration::from_secs(300);

/// One batch's run of the dispatcher: what it read before the writes, and
/// the offers budgets its writes used.
struct DispatchRun<'a, S, C, B> {
    dispatcher: &'a Dispatcher<S, C, B>,
    /// Records whose rejection cannot exist (created after the rejections
    /// mark) or a read before the writes found absent: their offers take the
    /// two-item common path first.
    rejections_absent: HashSet<Uuid>,
    /// The latest creation time of the records this batch plans to reject:
    /// the first rejection raises the mark to it for all of them at once.
    rejections_planned_until: Option<DateTime<Utc>>,
    /// How far this batch has raised the rejections mark.
    mark_raised: tokio::sync::Mutex<Option<DateTime<Utc>>>,
    /// The offers budgets of the batch's campaigns, as the cache lists them
    /// (and the campaigns it did not know, read now); `None` when they could
    /// not be read (only rows with a campaign need them).
    offers_budgeted: Option<Arc<CampaignOffersBudgets>>,
    /// Campaigns whose offers budget an offer of this batch used.
    budgets_used: Mutex<BTreeSet<CampaignId>>,
}

impl<S: DispatchStore, C: CatalogReader> Dispatcher<S, C, NoBudgets> {
    /// A dispatcher for which no campaign has an offers budget.
    pub fn new(store: S, catalog: C, settings: DispatchSettings) -> Self {
        Self::with_budgets(store, catalog, NoBudgets, settings)
    }
}

impl<S: DispatchStore, C: CatalogReader, B: OffersBudgets> Dispatcher<S, C, B> {
    pub fn with_budgets(store: S, catalog: C, budgets: B, settings: DispatchSettings) -> Self {
        Self {
            store,
            catalog,
            budgets,
            settings,
        }
    }

    pub fn budgets(&self) -> &B {
        &self.budgets
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn catalog(&self) -> &C {
        &self.catalog
    }

    pub fn settings(&self) -> &DispatchSettings {
        &self.settings
    }

    /// Handles the records of one stream batch (see `crate::stream::runner`
    /// for the order, the failures and the cut-offs).
    ///
    /// `deadline` is when the invocation ends: no record starts within the
    /// configured margin of it, and a call still running at half the margin
    /// is abandoned (the record is reported failed).
    pub async fn apply_batch(
        &self,
        records: Vec<StreamInput>,
        deadline: Option<Instant>,
    ) -> DispatchReport {
        let run = Run::new(Utc::now(), deadline, self.settings.deadline_margin);
        let parsed: Vec<_> = records
            .into_iter()
            .map(|input| {
                input.map(|insert| {
                    let assignment = parse_insert(&insert, run.now);
                    (insert, assignment)
                })
            })
            .collect();
        let inserts = || parsed.iter().filter_map(|input| input.change());
        let wanted = inserts().filter_map(|(_, assignment)| assignment.as_ref().ok());
        // Which valid rows cannot have a rejection is read at the same time
        // (the rejections mark; a row the catalog then rejects costs nothing
        // more), so that the read adds no round trip to a cold batch.
        let valid: Vec<&InsertRecord> = inserts()
            .filter(|(_, assignment)| assignment.is_ok())
            .map(|(insert, _)| insert)
            .collect();
        let campaigns: BTreeSet<&CampaignId> = inserts()
            .filter_map(|(_, assignment)| assignment.as_ref().ok()?.campaign_id.as_ref())
            .collect();
        // Boxed: nested in the batch's future, the catalog read (with its
        // per-id fallback and the SDK call) is deeper than the compiler's
        // layout limit allows. No read stops the batch when it fails.
        let (catalog, rejections_absent, offers_budgeted) = futures::join!(
            run.call_aside(Box::pin(load_catalog(&self.catalog, wanted))),
            Box::pin(self.rejections_absent(&valid, &run)),
            Box::pin(self.offers_budgets(&campaigns, &run))
        );
        drop(valid);
        drop(campaigns);
        let catalog_ids = catalog.as_ref().map_or(0, |catalog| catalog.ids_requested);
        let planned: Vec<_> = parsed
            .into_iter()
            .map(|input| {
                input.map(|(insert, assignment)| {
                    plan_insert(
                        insert,
                        assignment,
                        &catalog,
                        run.now,
                        self.settings.retention,
                    )
                })
            })
            .collect();
        let rejections_planned_until = planned
            .iter()
            .filter_map(|input| input.change())
            .filter(|planned| matches!(planned.plan, Plan::Reject(_)))
            .filter_map(|planned| planned.insert.created_at)
            .max();
        let batch = DispatchRun {
            dispatcher: self,
            rejections_absent,
            rejections_planned_until,
            mark_raised: tokio::sync::Mutex::new(None),
            offers_budgeted,
            budgets_used: Mutex::new(BTreeSet::new()),
        };
        let report = run_batch(&batch, &planned, &run, self.settings.concurrency).await;
        let budgets_used = std::mem::take(&mut *lock(&batch.budgets_used));
        // Boxed: nested in the batch's future, the cached read (with the
        // SDK call behind it) is deeper than the compiler's layout limit allows.
        let budgets = Box::pin(self.budgets_now(budgets_used, &run)).await;
        let report = report.with_summary(DispatchSummary {
            catalog_ids,
            budgets,
        });
        log_batch(&report, &planned, run.elapsed_ms());
        report
    }

    /// The records that may become offers and cannot have a rejection: those
    /// created after the rejections mark (one strongly consistent read of one
    /// item), and of the others (a replay, a record of a moment ago, one
    /// without a creation time), those a strongly consistent read of their
    /// rejections (at most 100 keys a call) finds absent. They may take the
    /// two-item common path. Should a read fail, the records it would have
    /// cleared take the checked path: the reads are only a hint
    /// (docs/design.md, "The common path").
    async fn rejections_absent(&self, records: &[&InsertRecord], run: &Run) -> HashSet<Uuid> {
        if records.is_empty() {
            return HashSet::new();
        }
        let mark = match run.call_aside(self.store.rejections_mark()).await {
            Ok(Some(mark)) => Some(mark),
            Ok(None) => {
                self.set_rejections_mark(run).await;
                None
            }
            Err(error) => {
                tracing::warn!(error = %error, "rejections mark not read: every rejection is read");
                None
            }
        };
        let (cleared, uncleared): (Vec<&InsertRecord>, Vec<&InsertRecord>) = records
            .iter()
            .copied()
            .partition(|record| created_after(record.created_at, mark));
        let mut absent: HashSet<Uuid> = cleared.iter().map(|record| record.record_id).collect();
        let to_read: Vec<RejectionKey> = uncleared
            .iter()
            .map(|record| record.rejection_key())
            .collect();
        if to_read.is_empty() {
            return absent;
        }
        match run.call_aside(self.store.rejections_absent(&to_read)).await {
            Ok(found_absent) => absent.extend(found_absent),
            Err(error) => {
                tracing::warn!(error = %error, records = to_read.len(), "rejections not read: the checked path is used");
            }
        }
        absent
    }

    /// Sets the rejections mark where there is none (a first deployment, or
    /// the item deleted): to a moment past now, since every record rejected
    /// so far was created before now. This batch reads every rejection.
    async fn set_rejections_mark(&self, run: &Run) {
        let set = run
            .call_aside(
                self.store
                    .raise_rejections_mark(DateTime::UNIX_EPOCH, mark_when_unset(run.now)),
            )
            .await;
        if let Err(error) = set {
            tracing::warn!(error = %error, "rejections mark not set: the next batch tries again");
        }
    }

    /// The offers budgets of the batch's `campaigns`: the cached list, and
    /// each campaign it does not know read on its own (a campaign put since
    /// the list was read has its budget at once; the cache keeps what was
    /// read). `None` when the list could not be read; a campaign whose own
    /// read failed is left out. Rows of campaigns left out fail (retried).
    async fn offers_budgets(
        &self,
        campaigns: &BTreeSet<&CampaignId>,
        run: &Run,
    ) -> Option<Arc<CampaignOffersBudgets>> {
        if campaigns.is_empty() {
            return Some(Arc::default());
        }
        let listed = match run.call_aside(self.budgets.offers_budgets()).await {
            Ok(listed) => listed,
            Err(error) => {
                tracing::warn!(error = %error, "offers budgets not read: rows of campaigns fail");
                return None;
            }
        };
        let unknown: Vec<&CampaignId> = campaigns
            .iter()
            .copied()
            .filter(|campaign_id| !listed.contains_key(*campaign_id))
            .collect();
        if unknown.is_empty() {
            return Some(listed);
        }
        let read = futures::future::join_all(
            unknown
                .iter()
                .map(|campaign_id| run.call_aside(self.budgets.offers_budget_now(campaign_id))),
        )
        .await;
        let mut budgets = (*listed).clone();
        for (campaign_id, read) in unknown.into_iter().zip(read) {
            match read {
                Ok(budget) => {
                    budgets.insert(campaign_id.clone(), budget);
                }
                Err(error) => {
                    tracing::warn!(error = %error, campaign_id = %campaign_id, "offers budget not read: the campaign's rows fail");
                }
            }
        }
        Some(Arc::new(budgets))
    }

    /// The budgets used by the batch as they stand after it (for the use
    /// metric); one read per campaign, a failed one left out.
    async fn budgets_now(
        &self,
        campaigns: BTreeSet<CampaignId>,
        run: &Run,
    ) -> Vec<(CampaignId, OffersBudgetUse)> {
        let mut budgets = Vec::with_capacity(campaigns.len());
        for campaign_id in campaigns {
            if run.deadline_near() {
                break;
            }
            match run
                .call_aside(self.budgets.offers_budget_now(&campaign_id))
                .await
            {
                Ok(Some(budget)) => budgets.push((campaign_id, budget)),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(error = %error, campaign_id = %campaign_id, "offers budget not read for its metric");
                }
            }
        }
        budgets
    }
}

impl<S: DispatchStore, C: CatalogReader, B: OffersBudgets> DispatchRun<'_, S, C, B> {
    async fn apply(
        &self,
        insert: &InsertRecord,
        plan: &Plan,
        run: &Run,
    ) -> Result<DispatchOutcome, Failure> {
        let pending = insert.pending();
        match plan {
            Plan::Fail(failure) => Err(failure.clone()),
            Plan::Reject(rejection) => self.reject(insert, &pending, rejection.clone(), run).await,
            Plan::Dispatch(offer) => {
                let id = offer.personalized_offer_id;
                let prior = match self.rejections_absent.contains(&insert.record_id) {
                    true => PriorRejection::NotFound,
                    false => PriorRejection::Unknown,
                };
                if let Some(campaign_id) = self.budgeted_campaign(offer)? {
                    return self
                        .dispatch_within_budget(insert, &pending, offer, campaign_id, prior, run)
                        .await;
                }
                let written = run
                    .call(self.dispatcher.store.dispatch_offer(offer, &pending, prior))
                    .await;
                match written {
                    Ok(written) => Ok(dispatched(written, id)),
                    Err(error) => self.offer_not_written(insert, &pending, error, run).await,
                }
            }
        }
    }

    /// The campaign whose offers budget `offer` uses: `Ok(None)` without
    /// one; a failure when the budgets could not be read and the offer has
    /// a campaign.
    fn budgeted_campaign<'o>(
        &self,
        offer: &'o PersonalizedOffer,
    ) -> Result<Option<&'o CampaignId>, Failure> {
        let Some(campaign_id) = offer.campaign_id.as_ref() else {
            return Ok(None);
        };
        match self
            .offers_budgeted
            .as_ref()
            .and_then(|budgets| budgets.get(campaign_id))
        {
            Some(Some(_)) => Ok(Some(campaign_id)),
            Some(None) => Ok(None),
            None => Err(Failure::Budgets),
        }
    }

    /// A write of an offer that failed: DynamoDB will never store it (the
    /// row is rejected with its words, not retried), or it is retried.
    async fn offer_not_written(
        &self,
        insert: &InsertRecord,
        pending: &PendingRef,
        error: StoreError,
        run: &Run,
    ) -> Result<DispatchOutcome, Failure> {
        match error {
            StoreError::Refused(detail) => {
                let rejection = Rejection::new(
                    ReasonCode::InvalidRow,
                    format!("DynamoDB refused the offer: {detail}"),
                );
                self.reject(insert, pending, rejection, run).await
            }
            error => Err(error.into()),
        }
    }

    /// The offer of a campaign with an offers budget: written with the
    /// budget's use in one transaction (conditional on the limit the
    /// campaign's item holds). Refused, the campaign is read again: past its
    /// limit, the row is rejected `budget_exhausted`; a limit removed (or the
    /// campaign deleted) since the list was read is no budget, and the offer
    /// is written alone. Budget transactions of one campaign at once may
    /// conflict: tried again a few times, then the record is retried.
    async fn dispatch_within_budget(
        &self,
        insert: &InsertRecord,
        pending: &PendingRef,
        offer: &PersonalizedOffer,
        campaign_id: &CampaignId,
        prior: PriorRejection,
        run: &Run,
    ) -> Result<DispatchOutcome, Failure> {
        let id = offer.personalized_offer_id;
        let (mut conflicts, mut refusals) = (0, 0);
        loop {
            let written = run
                .call(self.dispatcher.store.dispatch_budgeted_offer(
                    offer,
                    pending,
                    prior,
                    campaign_id,
                ))
                .await;
            match written {
                Ok(BudgetedWrite::Done(written)) => {
                    if written == WriteOutcome::Written
                        || written == WriteOutcome::WrittenPendingRowKept
                    {
                        lock(&self.budgets_used).insert(campaign_id.clone());
                    }
                    return Ok(dispatched(written, id));
                }
                Ok(BudgetedWrite::BudgetRefused) => {}
                Err(StoreError::Conflict(_)) if conflicts < BUDGET_CONFLICT_ATTEMPTS => {
                    conflicts += 1;
                    tokio::time::sleep(conflict_pause(conflicts)).await;
                    continue;
                }
                Err(error) => return self.offer_not_written(insert, pending, error, run).await,
            }
            refusals += 1;
            let now = run
                .call(self.dispatcher.budgets.offers_budget_now(campaign_id))
                .await;
            match now {
                // Room again (a limit raised meanwhile): tried once more.
                Ok(Some(budget)) if !budget.exhausted() && refusals < 2 => continue,
                now => {
                    return self
                        .budget_refused(insert, pending, offer, now, prior, run)
                        .await
                }
            }
        }
    }

    /// A budgeted offer the budget refused, decided on the campaign as read
    /// after the refusal.
    async fn budget_refused(
        &self,
        insert: &InsertRecord,
        pending: &PendingRef,
        offer: &PersonalizedOffer,
        now: Result<Option<OffersBudgetUse>, StoreError>,
        prior: PriorRejection,
        run: &Run,
    ) -> Result<DispatchOutcome, Failure> {
        let campaign_id = offer.campaign_id.as_deref().unwrap_or_default();
        match now? {
            Some(budget) => {
                let rejection = Rejection::new(
                    ReasonCode::BudgetExhausted,
                    format!(
                        "campaign {campaign_id} has used its offers budget ({} of {})",
                        budget.used, budget.limit
                    ),
                );
                self.reject(insert, pending, rejection, run).await
            }
            None => {
                let written = run
                    .call(self.dispatcher.store.dispatch_offer(offer, pending, prior))
                    .await;
                match written {
                    Ok(written) => Ok(dispatched(written, offer.personalized_offer_id)),
                    Err(error) => self.offer_not_written(insert, pending, error, run).await,
                }
            }
        }
    }

    /// Raises the rejections mark to at least the creation time of a record
    /// about to be rejected, before its rejection is written: a later
    /// delivery of the record must then read its rejection. The batch's
    /// first rejection raises it for all its planned ones; a record without
    /// a creation time is never cleared by the mark and needs none. A mark
    /// that cannot be raised fails the record (retried), never skipped.
    async fn raise_mark_for(
        &self,
        created_at: Option<DateTime<Utc>>,
        run: &Run,
    ) -> Result<(), Failure> {
        let Some(created_at) = created_at else {
            return Ok(());
        };
        let mut raised = self.mark_raised.lock().await;
        if raised.is_some_and(|raised| raised >= created_at) {
            return Ok(());
        }
        let at_least = self
            .rejections_planned_until
            .map_or(created_at, |planned| planned.max(created_at));
        run.call(
            self.dispatcher
                .store
                .raise_rejections_mark(at_least, mark_when_unset(run.now)),
        )
        .await?;
        *raised = Some(at_least);
        Ok(())
    }

    async fn reject(
        &self,
        insert: &InsertRecord,
        pending: &PendingRef,
        rejection: Rejection,
        run: &Run,
    ) -> Result<DispatchOutcome, Failure> {
        self.raise_mark_for(insert.created_at, run).await?;
        let rejected = RejectedRow {
            rejection_id: *insert.offer_id().as_uuid(),
            record_id: insert.record_id,
            code: rejection.code,
            message: rejection.message,
            rejected_at: run.now,
            event_id: insert.event_id.clone(),
            sequence_number: insert.sequence_number.clone(),
        };
        let id = rejected.rejection_id;
        let written = run
            .call(self.dispatcher.store.reject_row(&rejected, pending))
            .await?;
        Ok(match written {
            WriteOutcome::Written => DispatchOutcome::Rejected {
                code: rejected.code,
                rejection_id: id,
                pending_row_kept: false,
            },
            WriteOutcome::WrittenPendingRowKept => DispatchOutcome::Rejected {
                code: rejected.code,
                rejection_id: id,
                pending_row_kept: true,
            },
            WriteOutcome::AlreadyWritten => DispatchOutcome::Duplicate {
                id,
                earlier: Earlier::Rejected,
            },
            WriteOutcome::OtherOutcomeWritten => DispatchOutcome::Duplicate {
                id,
                earlier: Earlier::Dispatched,
            },
        })
    }
}

impl<S: DispatchStore, C: CatalogReader, B: OffersBudgets> RecordHandler<Planned>
    for DispatchRun<'_, S, C, B>
{
    type Outcome = DispatchOutcome;

    async fn apply(&self, planned: &Planned, run: &Run) -> Result<DispatchOutcome, Failure> {
        DispatchRun::apply(self, &planned.insert, &planned.plan, run).await
    }
}

/// How often a budgeted offer's transaction is tried again after a
/// conflict with another transaction on its campaign's item.
const BUDGET_CONFLICT_ATTEMPTS: u32 = 4;

/// A short, growing, jittered pause before a budget transaction is tried again.
fn conflict_pause(attempt: u32) -> Duration {
    let base = 10u64.saturating_mul(1 << attempt.min(6));
    Duration::from_millis(base + u64::from(Uuid::new_v4().as_bytes()[0]) % base)
}

/// The rejections mark set where there is none: past every record created
/// until now.
fn mark_when_unset(now: DateTime<Utc>) -> DateTime<Utc> {
    let margin =
        chrono::Duration::from_std(REJECTIONS_MARK_MARGIN).unwrap_or(chrono::Duration::MAX);
    now.checked_add_signed(margin)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Whether a record was created after the rejections mark (so that no
/// rejection of it can exist); `false` without a mark or a creation time.
fn created_after(created_at: Option<DateTime<Utc>>, mark: Option<DateTime<Utc>>) -> bool {
    matches!((created_at, mark), (Some(created_at), Some(mark)) if created_at > mark)
}

/// The outcome of an offer's write.
fn dispatched(written: WriteOutcome, id: PersonalizedOfferId) -> DispatchOutcome {
    match written {
        WriteOutcome::Written => DispatchOutcome::Dispatched {
            personalized_offer_id: id,
            pending_row_kept: false,
        },
        WriteOutcome::WrittenPendingRowKept => DispatchOutcome::Dispatched {
            personalized_offer_id: id,
            pending_row_kept: true,
        },
        WriteOutcome::AlreadyWritten => DispatchOutcome::Duplicate {
            id: *id.as_uuid(),
            earlier: Earlier::Dispatched,
        },
        WriteOutcome::OtherOutcomeWritten => DispatchOutcome::Duplicate {
            id: *id.as_uuid(),
            earlier: Earlier::Rejected,
        },
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
