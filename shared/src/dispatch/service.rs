//! The dispatcher: each INSERT becomes exactly one of dispatched, rejected or
//! failed. Records of different keys run concurrently; records of one key run
//! in stream order.

use super::input::{IgnoredReason, InsertRecord, StreamInput};
use super::plan::{parse_inserts, plan_batch, Plan};
use super::report::{BatchReport, Earlier, Failure, Outcome, RecordReport};
use crate::assign::load_catalog;
use crate::deadline::{within_deadline, Deadline};
use crate::error::StoreError;
use crate::ports::{
    CatalogReader, DispatchStore, PendingRef, PriorRejection, RejectedRow, WriteOutcome,
};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use offers_domain::{ReasonCode, Rejection};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchSettings {
    pub concurrency: usize,
    pub deadline_margin: Duration,
    pub retention: chrono::Duration,
}

pub struct Dispatcher<S, C> {
    store: S,
    catalog: C,
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
}

impl<S: DispatchStore, C: CatalogReader> Dispatcher<S, C> {
    pub fn new(store: S, catalog: C, settings: DispatchSettings) -> Self {
        Self {
            store,
            catalog,
            settings,
        }
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
        let (catalog, rejections_absent) = futures::join!(
            within_deadline(run.deadline, Box::pin(load_catalog(&self.catalog, wanted))),
            self.rejections_absent(&valid, run.deadline)
        );
        run.rejections_absent = rejections_absent;
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
        let report = BatchReport {
            records: reports.into_iter().flatten().collect(),
            catalog_ids,
            store_down: run.store_down.load(Ordering::Relaxed),
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
                let written = within_deadline(
                    run.deadline,
                    self.store.dispatch_offer(&offer, &pending, prior),
                )
                .await;
                match written {
                    Ok(WriteOutcome::Written) => Outcome::Dispatched {
                        personalized_offer_id: id,
                        pending_row_kept: false,
                    },
                    Ok(WriteOutcome::WrittenPendingRowKept) => Outcome::Dispatched {
                        personalized_offer_id: id,
                        pending_row_kept: true,
                    },
                    Ok(WriteOutcome::AlreadyWritten) => Outcome::Duplicate {
                        id,
                        earlier: Earlier::Dispatched,
                    },
                    Ok(WriteOutcome::OtherOutcomeWritten) => Outcome::Duplicate {
                        id,
                        earlier: Earlier::Rejected,
                    },
                    // DynamoDB will never store this offer: the row is
                    // rejected with its words, not retried.
                    Err(StoreError::Refused(detail)) => {
                        let rejection = Rejection::new(
                            ReasonCode::InvalidRow,
                            format!("DynamoDB refused the offer: {detail}"),
                        );
                        self.reject(insert, &pending, rejection, run).await
                    }
                    Err(error) => failed(error, run),
                }
            }
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
