//! The dispatcher: each INSERT becomes exactly one of dispatched, rejected or failed.

use super::record::{read_record, InsertRecord, StreamInput};
use crate::assign::load_catalog;
use crate::domain::{parse_pending_row, Assignment, ReasonCode, Rejection};
use crate::error::StoreError;
use crate::ports::{CatalogReader, DispatchStore, PendingRef, RejectedRow, RowCopy, WriteOutcome};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// Namespace of the ids derived from stream records (offer and rejection ids).
const RECORD_NAMESPACE: Uuid = Uuid::from_u128(0x6f1d_2c4e_8b3a_4f0e_9d57_1a2b_3c4d_5e6f);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchSettings {
    pub concurrency: usize,
    pub deadline_margin: Duration,
    pub retention: chrono::Duration,
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Dispatched {
        personalized_offer_id: Uuid,
        pending_row_kept: bool,
    },
    Rejected {
        code: ReasonCode,
        rejection_id: Uuid,
        pending_row_kept: bool,
    },
    /// A redelivery of a record whose result is already stored: `earlier`
    /// is that result, whatever this delivery would have decided.
    Duplicate {
        id: Uuid,
        earlier: Earlier,
    },
    /// Transient: reported in `batchItemFailures` so that Lambda retries it.
    Failed {
        error: String,
    },
    Ignored {
        reason: String,
    },
}

/// The outcome an earlier delivery of a record stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Earlier {
    Dispatched,
    Rejected,
}

impl Earlier {
    pub fn name(self) -> &'static str {
        match self {
            Earlier::Dispatched => "dispatched",
            Earlier::Rejected => "rejected",
        }
    }
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Dispatched { .. } => "dispatched",
            Outcome::Rejected { .. } => "rejected",
            Outcome::Duplicate { .. } => "duplicate",
            Outcome::Failed { .. } => "failed",
            Outcome::Ignored { .. } => "ignored",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordReport {
    pub event_id: Option<String>,
    pub sequence_number: Option<String>,
    pub user_id: Option<String>,
    pub sort_key: Option<String>,
    /// When the record was written to the stream (INSERTs only).
    pub created_at: Option<DateTime<Utc>>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchReport {
    pub records: Vec<RecordReport>,
    /// Distinct catalog ids this batch needed.
    pub catalog_ids: usize,
}

impl BatchReport {
    /// Sequence numbers to report in `batchItemFailures`.
    pub fn failed_sequence_numbers(&self) -> Vec<String> {
        self.records
            .iter()
            .filter(|record| matches!(record.outcome, Outcome::Failed { .. }))
            .filter_map(|record| record.sequence_number.clone())
            .collect()
    }

    pub fn count(&self, name: &str) -> usize {
        self.records
            .iter()
            .filter(|record| record.outcome.name() == name)
            .count()
    }
}

/// The invocation deadline and the time kept in hand before it.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    margin: Duration,
}

impl Deadline {
    /// The configured margin, but never more than a fifth of the time the
    /// invocation has: a function given a short timeout still does its work.
    fn new(at: Instant, configured_margin: Duration) -> Self {
        let budget = at.saturating_duration_since(Instant::now());
        Self {
            at,
            margin: configured_margin.min(budget / 5),
        }
    }
}

/// What the dispatcher will do with one INSERT once the catalog is known.
enum Plan {
    Dispatch(Box<crate::domain::PersonalizedOffer>),
    Reject(Rejection),
    Fail(String),
}

pub struct Dispatcher<S, C> {
    store: S,
    catalog: C,
    settings: DispatchSettings,
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

    /// Handles the records of one stream batch. Records of different keys run
    /// concurrently; records of the same key run in stream order, and after a
    /// failure the key's later records fail too, so that they are retried in order.
    ///
    /// Once a write finds the store down (no answer, a server error), no new
    /// write starts: the records not yet started are reported failed at once.
    /// Lambda retries from the lowest failed sequence number anyway, so this
    /// loses nothing, and an outage costs one timeout per concurrent write
    /// instead of one per record, without piling load on a struggling table.
    pub async fn dispatch_batch(
        &self,
        records: Vec<Value>,
        deadline: Option<Instant>,
    ) -> BatchReport {
        let started = Instant::now();
        let now = Utc::now();
        let inputs: Vec<StreamInput> = records.into_iter().map(read_record).collect();
        let mut reports: Vec<Option<RecordReport>> = vec![None; inputs.len()];

        let mut assignments: Vec<(usize, &InsertRecord, Result<Assignment, Rejection>)> =
            Vec::new();
        for (index, input) in inputs.iter().enumerate() {
            match input {
                StreamInput::Insert(insert) => {
                    assignments.push((index, insert, parse_insert(insert, now)))
                }
                StreamInput::Ignored {
                    event_id,
                    sequence_number,
                    event_name,
                } => {
                    reports[index] = Some(RecordReport {
                        event_id: event_id.clone(),
                        sequence_number: sequence_number.clone(),
                        user_id: None,
                        sort_key: None,
                        created_at: None,
                        outcome: Outcome::Ignored {
                            reason: ignored_reason(event_name),
                        },
                    });
                }
                StreamInput::Unusable {
                    event_id,
                    sequence_number,
                    error,
                } => {
                    // Without keys nothing can be written; retrying lets the
                    // failure reach the on-failure destination instead of vanishing.
                    let outcome = match sequence_number {
                        Some(_) => Outcome::Failed {
                            error: error.clone(),
                        },
                        None => Outcome::Ignored {
                            reason: format!("unreadable record without sequence number: {error}"),
                        },
                    };
                    reports[index] = Some(RecordReport {
                        event_id: event_id.clone(),
                        sequence_number: sequence_number.clone(),
                        user_id: None,
                        sort_key: None,
                        created_at: None,
                        outcome,
                    });
                }
            }
        }

        let deadline = deadline.map(|at| Deadline::new(at, self.settings.deadline_margin));
        let valid = assignments
            .iter()
            .filter_map(|(_, _, parsed)| parsed.as_ref().ok());
        let catalog = self
            // Boxed: nested in the batch's future, the catalog read (with its
            // per-id fallback and the SDK call) is deeper than the compiler's
            // layout limit allows.
            .with_deadline(deadline, Box::pin(load_catalog(&self.catalog, valid)))
            .await;
        let catalog_ids = catalog.as_ref().map_or(0, |catalog| catalog.ids_requested);
        let plans: Vec<(usize, &InsertRecord, Plan)> = assignments
            .into_iter()
            .map(|(index, insert, parsed)| {
                let plan = match (parsed, &catalog) {
                    (Err(rejection), _) => Plan::Reject(rejection),
                    (Ok(_), Err(error)) => Plan::Fail(format!("catalog read failed: {error}")),
                    (Ok(assignment), Ok(catalog)) => match catalog.offer_for(
                        &assignment,
                        record_uuid(insert),
                        now,
                        self.settings.retention,
                    ) {
                        Ok(offer) => Plan::Dispatch(Box::new(offer)),
                        Err(rejection) => Plan::Reject(rejection),
                    },
                };
                (index, insert, plan)
            })
            .collect();

        // Group by pending-row key, keeping stream order inside each group.
        let mut groups: Vec<Vec<(usize, &InsertRecord, Plan)>> = Vec::new();
        let mut group_of_key: HashMap<(&str, &str), usize> = HashMap::new();
        for planned in plans {
            let key = (planned.1.user_id.as_str(), planned.1.sort_key.as_str());
            let group = *group_of_key.entry(key).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[group].push(planned);
        }

        let store_down = AtomicBool::new(false);
        let results: Vec<Vec<(usize, RecordReport)>> = stream::iter(groups)
            .map(|group| self.run_group(group, now, deadline, &store_down))
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        for (index, report) in results.into_iter().flatten() {
            reports[index] = Some(report);
        }

        let report = BatchReport {
            records: reports.into_iter().flatten().collect(),
            catalog_ids,
        };
        for record in &report.records {
            log_record(record);
        }
        tracing::info!(
            records = report.records.len(),
            dispatched = report.count("dispatched"),
            rejected = report.count("rejected"),
            duplicates = report.count("duplicate"),
            failed = report.count("failed"),
            ignored = report.count("ignored"),
            catalog_ids = report.catalog_ids,
            store_down = store_down.load(Ordering::Relaxed),
            duration_ms = started.elapsed().as_millis() as u64,
            "batch done"
        );
        report
    }

    async fn run_group(
        &self,
        group: Vec<(usize, &InsertRecord, Plan)>,
        now: DateTime<Utc>,
        deadline: Option<Deadline>,
        store_down: &AtomicBool,
    ) -> Vec<(usize, RecordReport)> {
        let mut reports = Vec::with_capacity(group.len());
        let mut earlier_failure = false;
        for (index, insert, plan) in group {
            let outcome = if earlier_failure {
                Outcome::Failed {
                    error: "an earlier record of the same key failed".into(),
                }
            } else if store_down.load(Ordering::Relaxed) {
                Outcome::Failed {
                    error: "not started: the store was found down earlier in this batch".into(),
                }
            } else if deadline
                .is_some_and(|deadline| Instant::now() + deadline.margin >= deadline.at)
            {
                Outcome::Failed {
                    error: "not started: too close to the invocation deadline".into(),
                }
            } else {
                self.apply(insert, plan, now, deadline, store_down).await
            };
            earlier_failure |= matches!(outcome, Outcome::Failed { .. });
            reports.push((
                index,
                RecordReport {
                    event_id: Some(insert.event_id.clone()),
                    sequence_number: Some(insert.sequence_number.clone()),
                    user_id: Some(insert.user_id.clone()),
                    sort_key: Some(insert.sort_key.clone()),
                    created_at: insert.created_at,
                    outcome,
                },
            ));
        }
        reports
    }

    async fn apply(
        &self,
        insert: &InsertRecord,
        plan: Plan,
        now: DateTime<Utc>,
        deadline: Option<Deadline>,
        store_down: &AtomicBool,
    ) -> Outcome {
        let pending = PendingRef {
            user_id: insert.user_id.clone(),
            sort_key: insert.sort_key.clone(),
            row: insert.row.clone(),
        };
        match plan {
            Plan::Fail(error) => Outcome::Failed { error },
            Plan::Dispatch(offer) => {
                let id = offer.personalized_offer_id;
                match self
                    .with_deadline(deadline, self.store.dispatch_offer(&offer, &pending))
                    .await
                {
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
                        self.reject(insert, &pending, rejection, now, deadline, store_down)
                            .await
                    }
                    Err(error) => failed(error, store_down),
                }
            }
            Plan::Reject(rejection) => {
                self.reject(insert, &pending, rejection, now, deadline, store_down)
                    .await
            }
        }
    }

    async fn reject(
        &self,
        insert: &InsertRecord,
        pending: &PendingRef,
        rejection: Rejection,
        now: DateTime<Utc>,
        deadline: Option<Deadline>,
        store_down: &AtomicBool,
    ) -> Outcome {
        let rejected = RejectedRow {
            rejection_id: record_uuid(insert),
            code: rejection.code,
            message: rejection.message,
            rejected_at: now,
            event_id: insert.event_id.clone(),
            sequence_number: insert.sequence_number.clone(),
        };
        let id = rejected.rejection_id;
        match self
            .with_deadline(deadline, self.store.reject_row(&rejected, pending))
            .await
        {
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
            Err(error) => failed(error, store_down),
        }
    }

    /// Abandons a store call that would run past the deadline; the record is
    /// then reported failed (its write, if it lands anyway, makes the retry a no-op).
    async fn with_deadline<T>(
        &self,
        deadline: Option<Deadline>,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match deadline {
            None => call.await,
            Some(deadline) => {
                let cutoff = deadline
                    .at
                    .checked_sub(deadline.margin / 2)
                    .unwrap_or(deadline.at);
                tokio::time::timeout_at(cutoff, call)
                    .await
                    .unwrap_or_else(|_| {
                        Err(StoreError::Timeout(
                            "abandoned at the invocation deadline".into(),
                        ))
                    })
            }
        }
    }
}

/// A store error that ends a record as failed (to be retried); an outage
/// also stops the batch from starting new writes.
fn failed(error: StoreError, store_down: &AtomicBool) -> Outcome {
    if error.is_outage() {
        store_down.store(true, Ordering::Relaxed);
    }
    Outcome::Failed {
        error: format!("{} ({})", error, error.kind()),
    }
}

fn parse_insert(insert: &InsertRecord, now: DateTime<Utc>) -> Result<Assignment, Rejection> {
    if let Some(problem) = &insert.unreadable {
        return Err(Rejection::new(
            ReasonCode::InvalidRow,
            format!("stream record image is unreadable: {problem}"),
        ));
    }
    let RowCopy::Image(image) = &insert.row else {
        return Err(Rejection::new(
            ReasonCode::InvalidRow,
            "stream record has no image",
        ));
    };
    let row: Map<String, Value> = serde_dynamo::from_item(image.clone()).map_err(|err| {
        Rejection::new(
            ReasonCode::InvalidRow,
            format!("row attributes cannot be read: {err}"),
        )
    })?;
    parse_pending_row(&row, now)
}

fn ignored_reason(event_name: &str) -> String {
    match event_name {
        "REMOVE" => "remove".into(),
        "MODIFY" => "modify".into(),
        // DynamoDB Local names TTL deletions so.
        "UNKNOWN_TO_SDK_VERSION" => "ttl_remove".into(),
        "" => "no_event_name".into(),
        other => format!("unknown_event_name:{other}"),
    }
}

/// The id of a record's offer or rejection: the same for every delivery of
/// one stream record, different for every insert (even of the same key).
pub fn record_uuid(insert: &InsertRecord) -> Uuid {
    let mut name = String::new();
    for part in [
        &insert.event_id,
        &insert.sequence_number,
        &insert.user_id,
        &insert.sort_key,
    ] {
        name.push_str(part);
        name.push('\u{1f}');
    }
    match &insert.row {
        RowCopy::Image(image) => {
            let json = serde_json::to_value(image).unwrap_or(Value::Null);
            crate::domain::canonical::write_canonical(&json, &mut name);
        }
        RowCopy::Unreadable(text) => name.push_str(text),
    }
    Uuid::new_v5(&RECORD_NAMESPACE, name.as_bytes())
}

fn log_record(record: &RecordReport) {
    let event_id = record.event_id.as_deref().unwrap_or_default();
    let user_id = record.user_id.as_deref().unwrap_or_default();
    let sort_key = record.sort_key.as_deref().unwrap_or_default();
    let sequence_number = record.sequence_number.as_deref().unwrap_or_default();
    let outcome = record.outcome.name();
    match &record.outcome {
        Outcome::Dispatched {
            personalized_offer_id,
            pending_row_kept,
        } => {
            if *pending_row_kept {
                tracing::warn!(event_id, sequence_number, user_id, sort_key, outcome, personalized_offer_id = %personalized_offer_id,
                    "offer dispatched; a newer pending row with the same key was left in place");
            } else {
                tracing::info!(event_id, sequence_number, user_id, sort_key, outcome, personalized_offer_id = %personalized_offer_id, "offer dispatched");
            }
        }
        Outcome::Rejected {
            code, rejection_id, ..
        } => {
            tracing::info!(event_id, sequence_number, user_id, sort_key, outcome, reason_code = code.as_str(), rejection_id = %rejection_id, "row rejected");
        }
        Outcome::Duplicate { id, earlier } => {
            tracing::info!(event_id, sequence_number, user_id, sort_key, outcome, record_id = %id,
                earlier_outcome = earlier.name(), "record already handled");
        }
        Outcome::Failed { error } => {
            tracing::warn!(
                event_id,
                sequence_number,
                user_id,
                sort_key,
                outcome,
                error = error.as_str(),
                "record failed; reported for retry"
            );
        }
        Outcome::Ignored { reason } => {
            tracing::debug!(
                event_id,
                sequence_number,
                outcome,
                reason = reason.as_str(),
                "record ignored"
            );
        }
    }
}
