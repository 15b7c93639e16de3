//! The dispatcher: each INSERT becomes exactly one of dispatched, rejected or
//! failed. Records of different keys run concurrently; records of one key run
//! in stream order.

use super::input::{IgnoredReason, InsertRecord, StreamInput};
use super::plan::{parse_inserts, plan_batch, Plan};
use super::report::{BatchReport, Earlier, Failure, Outcome, RecordReport};
use crate::activity::NoBudgets;
use crate::assign::load_catalog;
use crate::deadline::{within_deadline, Deadline};
use crate::error::StoreError;
use crate::ports::{
    BudgetedWrite, CampaignOffersBudgets, CatalogReader, DispatchStore, OffersBudgetUse,
    OffersBudgets, PendingRef, PriorRejection, RejectedRow, WriteOutcome,
};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use offers_domain::{PersonalizedOffer, ReasonCode, Rejection};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
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

/// One batch's shared state while its groups run.
struct Run {
    now: DateTime<Utc>,
    deadline: Option<Deadline>,
    /// Set once a write finds the store down: no new write starts.
    store_down: AtomicBool,
    /// Records whose rejection a read before the writes found absent: their
    /// offers take the two-item common path first.
    rejections_absent: HashSet<Uuid>,
    /// The offers budgets of the batch's campaigns, as the cache lists them
    /// (and the campaigns it did not know, read now); `None` when they could
    /// not be read (only rows with a campaign need them).
    offers_budgeted: Option<Arc<CampaignOffersBudgets>>,
    /// Campaigns whose offers budget an offer of this batch used.
    budgets_used: Mutex<BTreeSet<String>>,
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

    /// Handles the records of one stream batch. Records of different keys run
    /// concurrently; records of the same key run in stream order, and after a
    /// failure the key's later records fail too, so that they are retried in order.
    ///
    /// Once a write finds the store down (no answer, a server error), no new
    /// write starts: the records not yet started are reported failed at once.
    /// Lambda retries from the lowest failed sequence number anyway, so this
    /// loses nothing, and an outage costs one timeout per concurrent write
    /// instead of one per record, without piling load on a struggling table.
    ///
    /// `deadline` is when the invocation ends: no record starts within the
    /// configured margin of it, and a call still running at half the margin
    /// is abandoned (the record is reported failed).
    pub async fn dispatch_batch(
        &self,
        records: Vec<StreamInput>,
        deadline: Option<Instant>,
    ) -> BatchReport {
        let started = Instant::now();
        let mut run = Run {
            now: Utc::now(),
            deadline: deadline.map(|at| Deadline::new(at, self.settings.deadline_margin)),
            store_down: AtomicBool::new(false),
            rejections_absent: HashSet::new(),
            offers_budgeted: None,
            budgets_used: Mutex::new(BTreeSet::new()),
        };
        let mut reports: Vec<Option<RecordReport>> = vec![None; records.len()];
        let mut inserts: Vec<(usize, &InsertRecord)> = Vec::with_capacity(records.len());
        for (index, input) in records.iter().enumerate() {
            match input {
                StreamInput::Insert(insert) => inserts.push((index, insert)),
                StreamInput::Ignored {
                    event_id,
                    sequence_number,
                    reason,
                } => {
                    reports[index] = Some(RecordReport::of_other(
                        event_id.clone(),
                        sequence_number.clone(),
                        Outcome::Ignored(reason.clone()),
                    ));
                }
                StreamInput::Unusable {
                    event_id,
                    sequence_number,
                    error,
                } => {
                    // Without a sequence number it cannot even be reported.
                    let outcome = match sequence_number {
                        Some(_) => Outcome::Failed(Failure::Unusable(error.clone())),
                        None => Outcome::Ignored(IgnoredReason::UnreadableWithoutSequenceNumber(
                            error.clone(),
                        )),
                    };
                    reports[index] = Some(RecordReport::of_other(
                        event_id.clone(),
                        sequence_number.clone(),
                        outcome,
                    ));
                }
            }
        }

        let parsed = parse_inserts(&inserts, run.now);
        let wanted = parsed
            .iter()
            .filter_map(|(_, _, assignment)| assignment.as_ref().ok());
        // Boxed: nested in the batch's future, the catalog read (with its
        // per-id fallback and the SDK call) is deeper than the compiler's
        // layout limit allows.
        // The rejections of the valid rows are read at the same time (a row
        // the catalog then rejects costs one key read for nothing), so that
        // the read adds no round trip to the batch.
        let valid: Vec<(&str, Uuid)> = parsed
            .iter()
            .filter(|(_, _, assignment)| assignment.is_ok())
            .map(|(_, insert, _)| (insert.user_id.as_str(), insert.record_id))
            .collect();
        let campaigns: BTreeSet<&str> = parsed
            .iter()
            .filter_map(|(_, _, assignment)| assignment.as_ref().ok()?.campaign_id.as_deref())
            .collect();
        let (catalog, rejections_absent, offers_budgeted) = futures::join!(
            within_deadline(run.deadline, Box::pin(load_catalog(&self.catalog, wanted))),
            self.rejections_absent(&valid, run.deadline),
            self.offers_budgets(&campaigns, run.deadline)
        );
        run.rejections_absent = rejections_absent;
        run.offers_budgeted = offers_budgeted;
        let catalog_ids = catalog.as_ref().map_or(0, |catalog| catalog.ids_requested);
        let plans = plan_batch(parsed, &catalog, run.now, self.settings.retention);

        let results: Vec<Vec<(usize, RecordReport)>> = stream::iter(group_by_key(plans))
            .map(|group| self.run_group(group, &run))
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        for (index, report) in results.into_iter().flatten() {
            reports[index] = Some(report);
        }
        let budgets_used = std::mem::take(&mut *lock(&run.budgets_used));
        let budgets = self.budgets_now(budgets_used, run.deadline).await;
        let report = BatchReport {
            records: reports.into_iter().flatten().collect(),
            catalog_ids,
            store_down: run.store_down.load(Ordering::Relaxed),
            budgets,
        };
        report.log(started.elapsed().as_millis().try_into().unwrap_or(u64::MAX));
        report
    }

    /// One strongly consistent read of the rejections of the records that
    /// may become offers (at most 100 keys a call): those found absent may
    /// take the two-item common path. Should the read fail, every offer
    /// takes the checked path; the read is only a hint (docs/design.md).
    async fn rejections_absent(
        &self,
        records: &[(&str, Uuid)],
        deadline: Option<Deadline>,
    ) -> HashSet<Uuid> {
        if records.is_empty() {
            return HashSet::new();
        }
        match within_deadline(deadline, self.store.rejections_absent(records)).await {
            Ok(absent) => absent,
            Err(error) => {
                tracing::warn!(error = %error, records = records.len(), "rejections not read: the checked path is used");
                HashSet::new()
            }
        }
    }

    /// The offers budgets of the batch's `campaigns`: the cached list, and
    /// each campaign it does not know read on its own (a campaign put since
    /// the list was read has its budget at once; the cache keeps what was
    /// read). `None` when the list could not be read; a campaign whose own
    /// read failed is left out. Rows of campaigns left out fail (retried).
    async fn offers_budgets(
        &self,
        campaigns: &BTreeSet<&str>,
        deadline: Option<Deadline>,
    ) -> Option<Arc<CampaignOffersBudgets>> {
        if campaigns.is_empty() {
            return Some(Arc::default());
        }
        let listed = match within_deadline(deadline, self.budgets.offers_budgets()).await {
            Ok(listed) => listed,
            Err(error) => {
                tracing::warn!(error = %error, "offers budgets not read: rows of campaigns fail");
                return None;
            }
        };
        let unknown: Vec<&str> = campaigns
            .iter()
            .copied()
            .filter(|campaign_id| !listed.contains_key(*campaign_id))
            .collect();
        if unknown.is_empty() {
            return Some(listed);
        }
        let read = futures::future::join_all(unknown.iter().map(|campaign_id| {
            within_deadline(deadline, self.budgets.offers_budget_now(campaign_id))
        }))
        .await;
        let mut budgets = (*listed).clone();
        for (campaign_id, read) in unknown.into_iter().zip(read) {
            match read {
                Ok(budget) => {
                    budgets.insert(campaign_id.to_owned(), budget);
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
        campaigns: BTreeSet<String>,
        deadline: Option<Deadline>,
    ) -> Vec<(String, OffersBudgetUse)> {
        let mut budgets = Vec::with_capacity(campaigns.len());
        for campaign_id in campaigns {
            if deadline.is_some_and(|deadline| deadline.is_near()) {
                break;
            }
            match within_deadline(deadline, self.budgets.offers_budget_now(&campaign_id)).await {
                Ok(Some(budget)) => budgets.push((campaign_id, budget)),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(error = %error, campaign_id = %campaign_id, "offers budget not read for its metric");
                }
            }
        }
        budgets
    }

    async fn run_group(
        &self,
        group: Vec<(usize, &InsertRecord, Plan)>,
        run: &Run,
    ) -> Vec<(usize, RecordReport)> {
        let mut reports = Vec::with_capacity(group.len());
        let mut earlier_failure = false;
        for (index, insert, plan) in group {
            let outcome = if earlier_failure {
                Outcome::Failed(Failure::EarlierRecordOfKey)
            } else if run.store_down.load(Ordering::Relaxed) {
                Outcome::Failed(Failure::StoreDown)
            } else if run.deadline.is_some_and(|deadline| deadline.is_near()) {
                Outcome::Failed(Failure::DeadlineNear)
            } else {
                self.apply(insert, plan, run).await
            };
            earlier_failure |= matches!(outcome, Outcome::Failed(_));
            reports.push((index, RecordReport::of_insert(insert, outcome)));
        }
        reports
    }

    async fn apply(&self, insert: &InsertRecord, plan: Plan, run: &Run) -> Outcome {
        let pending = insert.pending();
        match plan {
            Plan::Fail(failure) => Outcome::Failed(failure),
            Plan::Reject(rejection) => self.reject(insert, &pending, rejection, run).await,
            Plan::Dispatch(offer) => {
                let id = offer.personalized_offer_id;
                let prior = match run.rejections_absent.contains(&insert.record_id) {
                    true => PriorRejection::NotFound,
                    false => PriorRejection::Unknown,
                };
                match budgeted_campaign(&offer, run) {
                    Err(()) => {
                        return Outcome::Failed(Failure::Budgets);
                    }
                    Ok(Some(campaign_id)) => {
                        return self
                            .dispatch_within_budget(
                                insert,
                                &pending,
                                &offer,
                                campaign_id,
                                prior,
                                run,
                            )
                            .await;
                    }
                    Ok(None) => {}
                }
                let written = within_deadline(
                    run.deadline,
                    self.store.dispatch_offer(&offer, &pending, prior),
                )
                .await;
                match written {
                    Ok(written) => dispatched(written, id),
                    Err(error) => self.offer_not_written(insert, &pending, error, run).await,
                }
            }
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
    ) -> Outcome {
        match error {
            StoreError::Refused(detail) => {
                let rejection = Rejection::new(
                    ReasonCode::InvalidRow,
                    format!("DynamoDB refused the offer: {detail}"),
                );
                self.reject(insert, pending, rejection, run).await
            }
            error => failed(error, run),
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
        campaign_id: &str,
        prior: PriorRejection,
        run: &Run,
    ) -> Outcome {
        let id = offer.personalized_offer_id;
        let (mut conflicts, mut refusals) = (0, 0);
        loop {
            let written = within_deadline(
                run.deadline,
                self.store
                    .dispatch_budgeted_offer(offer, pending, prior, campaign_id),
            )
            .await;
            match written {
                Ok(BudgetedWrite::Done(written)) => {
                    if written == WriteOutcome::Written
                        || written == WriteOutcome::WrittenPendingRowKept
                    {
                        lock(&run.budgets_used).insert(campaign_id.to_owned());
                    }
                    return dispatched(written, id);
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
            let now =
                within_deadline(run.deadline, self.budgets.offers_budget_now(campaign_id)).await;
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
    ) -> Outcome {
        let campaign_id = offer.campaign_id.as_deref().unwrap_or_default();
        match now {
            Ok(Some(budget)) => {
                let rejection = Rejection::new(
                    ReasonCode::BudgetExhausted,
                    format!(
                        "campaign {campaign_id} has used its offers budget ({} of {})",
                        budget.used, budget.limit
                    ),
                );
                self.reject(insert, pending, rejection, run).await
            }
            Ok(None) => {
                let written = within_deadline(
                    run.deadline,
                    self.store.dispatch_offer(offer, pending, prior),
                )
                .await;
                match written {
                    Ok(written) => dispatched(written, offer.personalized_offer_id),
                    Err(error) => self.offer_not_written(insert, pending, error, run).await,
                }
            }
            Err(error) => failed(error, run),
        }
    }

    async fn reject(
        &self,
        insert: &InsertRecord,
        pending: &PendingRef,
        rejection: Rejection,
        run: &Run,
    ) -> Outcome {
        let rejected = RejectedRow {
            rejection_id: insert.record_id,
            code: rejection.code,
            message: rejection.message,
            rejected_at: run.now,
            event_id: insert.event_id.clone(),
            sequence_number: insert.sequence_number.clone(),
        };
        let id = rejected.rejection_id;
        let written =
            within_deadline(run.deadline, self.store.reject_row(&rejected, pending)).await;
        match written {
            Ok(WriteOutcome::Written) => Outcome::Rejected {
                code: rejected.code,
                rejection_id: id,
                pending_row_kept: false,
            },
            Ok(WriteOutcome::WrittenPendingRowKept) => Outcome::Rejected {
                code: rejected.code,
                rejection_id: id,
                pending_row_kept: true,
            },
            Ok(WriteOutcome::AlreadyWritten) => Outcome::Duplicate {
                id,
                earlier: Earlier::Rejected,
            },
            Ok(WriteOutcome::OtherOutcomeWritten) => Outcome::Duplicate {
                id,
                earlier: Earlier::Dispatched,
            },
            Err(error) => failed(error, run),
        }
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

/// The campaign whose offers budget `offer` uses: `Ok(None)` without one;
/// `Err` when the budgets could not be read and the offer has a campaign.
fn budgeted_campaign<'a>(offer: &'a PersonalizedOffer, run: &Run) -> Result<Option<&'a str>, ()> {
    let Some(campaign_id) = offer.campaign_id.as_deref() else {
        return Ok(None);
    };
    match run
        .offers_budgeted
        .as_ref()
        .and_then(|budgets| budgets.get(campaign_id))
    {
        Some(Some(_)) => Ok(Some(campaign_id)),
        Some(None) => Ok(None),
        None => Err(()),
    }
}

/// The outcome of an offer's write.
fn dispatched(written: WriteOutcome, id: Uuid) -> Outcome {
    match written {
        WriteOutcome::Written => Outcome::Dispatched {
            personalized_offer_id: id,
            pending_row_kept: false,
        },
        WriteOutcome::WrittenPendingRowKept => Outcome::Dispatched {
            personalized_offer_id: id,
            pending_row_kept: true,
        },
        WriteOutcome::AlreadyWritten => Outcome::Duplicate {
            id,
            earlier: Earlier::Dispatched,
        },
        WriteOutcome::OtherOutcomeWritten => Outcome::Duplicate {
            id,
            earlier: Earlier::Rejected,
        },
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A store error that ends a record as failed (to be retried); an outage
/// also stops the batch from starting new writes.
fn failed(error: StoreError, run: &Run) -> Outcome {
    if error.is_outage() {
        run.store_down.store(true, Ordering::Relaxed);
    }
    Outcome::Failed(Failure::Store(error))
}

/// The planned records by pending-row key, in order of first appearance,
/// keeping stream order inside each key.
pub(super) fn group_by_key(
    plans: Vec<(usize, &InsertRecord, Plan)>,
) -> Vec<Vec<(usize, &InsertRecord, Plan)>> {
    let mut groups: Vec<Vec<(usize, &InsertRecord, Plan)>> = Vec::new();
    let mut group_of_key: HashMap<(&str, &str), usize> = HashMap::new();
    for planned in plans {
        let key = (planned.1.user_id.as_str(), planned.1.sort_key.as_str());
        let next = groups.len();
        let group = *group_of_key.entry(key).or_insert(next);
        if group == next {
            groups.push(Vec::new());
        }
        if let Some(members) = groups.get_mut(group) {
            members.push(planned);
        }
    }
    groups
}
