//! What became of each record of a batch: typed outcomes, the batch's
//! report (for the partial batch response and the metrics) and its logs.

use super::input::{IgnoredReason, InsertRecord};
use crate::error::StoreError;
use chrono::{DateTime, Utc};
use offers_domain::ReasonCode;
use uuid::Uuid;

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
    Failed(Failure),
    Ignored(IgnoredReason),
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

/// Why a record is reported failed (to be retried by Lambda).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    /// The write failed for a reason retrying can help with.
    #[error("{0} ({kind})", kind = .0.kind())]
    Store(StoreError),
    /// The catalog could not be read for the batch.
    #[error("catalog read failed: {0}")]
    Catalog(StoreError),
    /// A record of the same key before it failed: it is retried in order.
    #[error("an earlier record of the same key failed")]
    EarlierRecordOfKey,
    #[error("not started: the store was found down earlier in this batch")]
    StoreDown,
    #[error("not started: too close to the invocation deadline")]
    DeadlineNear,
    /// The row has a campaign, and which campaigns have an offers budget
    /// could not be read for the batch.
    #[error("campaigns' offers budgets not read")]
    Budgets,
    /// An INSERT without keys: nothing can be written; retrying lets it reach
    /// the on-failure destination instead of vanishing.
    #[error("{0}")]
    Unusable(String),
}

impl Failure {
    /// A stable, short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Store(error) => error.kind(),
            Failure::Catalog(_) => "catalog",
            Failure::EarlierRecordOfKey => "earlier_record_of_key",
            Failure::StoreDown => "store_down",
            Failure::DeadlineNear => "deadline",
            Failure::Budgets => "budgets",
            Failure::Unusable(_) => "unusable",
        }
    }
}

/// The kinds of outcome, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeKind {
    Dispatched,
    Rejected,
    Duplicate,
    Failed,
    Ignored,
}

impl OutcomeKind {
    pub const ALL: [OutcomeKind; 5] = [
        OutcomeKind::Dispatched,
        OutcomeKind::Rejected,
        OutcomeKind::Duplicate,
        OutcomeKind::Failed,
        OutcomeKind::Ignored,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OutcomeKind::Dispatched => "dispatched",
            OutcomeKind::Rejected => "rejected",
            OutcomeKind::Duplicate => "duplicate",
            OutcomeKind::Failed => "failed",
            OutcomeKind::Ignored => "ignored",
        }
    }
}

impl Outcome {
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Outcome::Dispatched { .. } => OutcomeKind::Dispatched,
            Outcome::Rejected { .. } => OutcomeKind::Rejected,
            Outcome::Duplicate { .. } => OutcomeKind::Duplicate,
            Outcome::Failed(_) => OutcomeKind::Failed,
            Outcome::Ignored(_) => OutcomeKind::Ignored,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
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

impl RecordReport {
    /// The report of an INSERT.
    pub fn of_insert(insert: &InsertRecord, outcome: Outcome) -> Self {
        Self {
            event_id: Some(insert.event_id.clone()),
            sequence_number: Some(insert.sequence_number.clone()),
            user_id: Some(insert.user_id.clone()),
            sort_key: Some(insert.sort_key.clone()),
            created_at: insert.created_at,
            outcome,
        }
    }

    /// The report of a record that is not a usable INSERT.
    pub fn of_other(
        event_id: Option<String>,
        sequence_number: Option<String>,
        outcome: Outcome,
    ) -> Self {
        Self {
            event_id,
            sequence_number,
            user_id: None,
            sort_key: None,
            created_at: None,
            outcome,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchReport {
    pub records: Vec<RecordReport>,
    /// Distinct catalog ids this batch needed.
    pub catalog_ids: usize,
    /// Whether a write found the store down (the rest was not started).
    pub store_down: bool,
    /// The offers budgets this batch used, as they stand after it.
    pub budgets: Vec<(String, crate::ports::OffersBudgetUse)>,
}

impl BatchReport {
    /// Sequence numbers to report in `batchItemFailures`.
    pub fn failed_sequence_numbers(&self) -> Vec<String> {
        self.records
            .iter()
            .filter(|record| record.outcome.kind() == OutcomeKind::Failed)
            .filter_map(|record| record.sequence_number.clone())
            .collect()
    }

    pub fn count(&self, kind: OutcomeKind) -> usize {
        self.records
            .iter()
            .filter(|record| record.outcome.kind() == kind)
            .count()
    }

    /// One line per record, and one for the batch.
    pub fn log(&self, duration_ms: u64) {
        for record in &self.records {
            log_record(record);
        }
        tracing::info!(
            records = self.records.len(),
            dispatched = self.count(OutcomeKind::Dispatched),
            rejected = self.count(OutcomeKind::Rejected),
            duplicates = self.count(OutcomeKind::Duplicate),
            failed = self.count(OutcomeKind::Failed),
            ignored = self.count(OutcomeKind::Ignored),
            catalog_ids = self.catalog_ids,
            store_down = self.store_down,
            duration_ms,
            "batch done"
        );
    }
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
        Outcome::Failed(failure) => {
            tracing::warn!(
                event_id,
                sequence_number,
                user_id,
                sort_key,
                outcome,
                failure = failure.kind(),
                error = %failure,
                "record failed; reported for retry"
            );
        }
        Outcome::Ignored(reason) => {
            tracing::debug!(
                event_id,
                sequence_number,
                outcome,
                reason = %reason,
                "record ignored"
            );
        }
    }
}
