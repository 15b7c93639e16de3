//! The dispatcher: each INSERT becomes exactly one of dispatched, rejected or
//! failed. The batch's rows are parsed and its catalog read once, then the
//! shared runner (`crate::stream::runner`) runs the records: those of
//! different keys concurrently, those of one key in stream order.

use super::input::{InsertRecord, StreamInput};
use super::plan::{parse_insert, plan_insert, Plan, Planned};
use super::report::{log_batch, DispatchOutcome, DispatchReport, DispatchSummary, Earlier};
use crate::assign::load_catalog;
use crate::error::StoreError;
use crate::ports::{
    CatalogReader, DispatchStore, PendingRef, PriorRejection, RejectedRow, WriteOutcome,
};
use crate::stream::runner::{run_batch, Failure, RecordHandler, Run};
use chrono::Utc;
use offers_domain::{ReasonCode, Rejection};
use std::collections::HashSet;
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

/// One batch's run of the dispatcher: what it read before the writes.
struct DispatchRun<'a, S, C> {
    dispatcher: &'a Dispatcher<S, C>,
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
        // The rejections of the valid rows are read at the same time (a row
        // the catalog then rejects costs one key read for nothing), so that
        // the read adds no round trip to the batch.
        let valid: Vec<(&str, Uuid)> = inserts()
            .filter(|(_, assignment)| assignment.is_ok())
            .map(|(insert, _)| (insert.user_id.as_str(), insert.record_id))
            .collect();
        // Boxed: nested in the batch's future, the catalog read (with its
        // per-id fallback and the SDK call) is deeper than the compiler's
        // layout limit allows. Neither read stops the batch when it fails.
        let (catalog, rejections_absent) = futures::join!(
            run.call_aside(Box::pin(load_catalog(&self.catalog, wanted))),
            Box::pin(self.rejections_absent(&valid, &run))
        );
        drop(valid);
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
        let batch = DispatchRun {
            dispatcher: self,
            rejections_absent,
        };
        let report = run_batch(&batch, &planned, &run, self.settings.concurrency)
            .await
            .with_summary(DispatchSummary { catalog_ids });
        log_batch(&report, &planned, run.elapsed_ms());
        report
    }

    /// One strongly consistent read of the rejections of the records that
    /// may become offers (at most 100 keys a call): those found absent may
    /// take the two-item common path. Should the read fail, every offer
    /// takes the checked path; the read is only a hint (docs/design.md).
    async fn rejections_absent(&self, records: &[(&str, Uuid)], run: &Run) -> HashSet<Uuid> {
        if records.is_empty() {
            return HashSet::new();
        }
        match run.call_aside(self.store.rejections_absent(records)).await {
            Ok(absent) => absent,
            Err(error) => {
                tracing::warn!(error = %error, records = records.len(), "rejections not read: the checked path is used");
                HashSet::new()
            }
        }
    }
}

impl<S: DispatchStore, C: CatalogReader> DispatchRun<'_, S, C> {
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
                let written = run
                    .call(self.dispatcher.store.dispatch_offer(offer, &pending, prior))
                    .await;
                match written {
                    Ok(WriteOutcome::Written) => Ok(DispatchOutcome::Dispatched {
                        personalized_offer_id: id,
                        pending_row_kept: false,
                    }),
                    Ok(WriteOutcome::WrittenPendingRowKept) => Ok(DispatchOutcome::Dispatched {
                        personalized_offer_id: id,
                        pending_row_kept: true,
                    }),
                    Ok(WriteOutcome::AlreadyWritten) => Ok(DispatchOutcome::Duplicate {
                        id,
                        earlier: Earlier::Dispatched,
                    }),
                    Ok(WriteOutcome::OtherOutcomeWritten) => Ok(DispatchOutcome::Duplicate {
                        id,
                        earlier: Earlier::Rejected,
                    }),
                    // DynamoDB will never store this offer: the row is
                    // rejected with its words, not retried.
                    Err(StoreError::Refused(detail)) => {
                        let rejection = Rejection::new(
                            ReasonCode::InvalidRow,
                            format!("DynamoDB refused the offer: {detail}"),
                        );
                        self.reject(insert, &pending, rejection, run).await
                    }
                    Err(error) => Err(error.into()),
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
    ) -> Result<DispatchOutcome, Failure> {
        let rejected = RejectedRow {
            rejection_id: insert.record_id,
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

impl<S: DispatchStore, C: CatalogReader> RecordHandler<Planned> for DispatchRun<'_, S, C> {
    type Outcome = DispatchOutcome;

    async fn apply(&self, planned: &Planned, run: &Run) -> Result<DispatchOutcome, Failure> {
        DispatchRun::apply(self, &planned.insert, &planned.plan, run).await
    }
}
