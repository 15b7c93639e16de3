//! What became of each transaction record: typed outcomes, the batch's
//! report (for the partial batch response and the metrics) and its logs.

use crate::dispatch::IgnoredReason;
use crate::error::StoreError;
use offers_domain::ReasonCode;
use uuid::Uuid;

/// What happened to one record.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgressOutcome {
    /// A valid transaction, applied to each of its user's active challenges:
    /// the goals it met now (offer, goal), the challenges that completed, and
    /// on how many challenges it had been counted already (a redelivery).
    Applied {
        met: Vec<(Uuid, String)>,
        completed: Vec<Uuid>,
        already_counted: usize,
    },
    /// It can never count: kept in the rejected table with its reason.
    Rejected {
        code: ReasonCode,
        rejection_id: Uuid,
    },
    /// Its rejection is stored already (a redelivery).
    DuplicateRejection {
        rejection_id: Uuid,
    },
    /// Transient: reported in `batchItemFailures` so that Lambda retries it.
    Failed(ProgressFailure),
    Ignored(IgnoredReason),
}

/// The kinds of outcome, for counting and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProgressKind {
    /// At least one goal met now.
    Counted,
    /// Valid, but nothing to count now: no active challenge, no goal its
    /// conditions allow, or every challenge completed.
    Unchanged,
    /// Counted before on every challenge it meets (or its rejection stored before).
    Duplicate,
    Rejected,
    Failed,
    Ignored,
}

impl ProgressKind {
    pub fn name(self) -> &'static str {
        match self {
            ProgressKind::Counted => "counted",
            ProgressKind::Unchanged => "unchanged",
            ProgressKind::Duplicate => "duplicate",
            ProgressKind::Rejected => "rejected",
            ProgressKind::Failed => "failed",
            ProgressKind::Ignored => "ignored",
        }
    }
}

impl ProgressOutcome {
    pub fn kind(&self) -> ProgressKind {
        match self {
            ProgressOutcome::Applied { met, .. } if !met.is_empty() => ProgressKind::Counted,
            ProgressOutcome::Applied {
                already_counted, ..
            } if *already_counted > 0 => ProgressKind::Duplicate,
            ProgressOutcome::Applied { .. } => ProgressKind::Unchanged,
            ProgressOutcome::Rejected { .. } => ProgressKind::Rejected,
            ProgressOutcome::DuplicateRejection { .. } => ProgressKind::Duplicate,
            ProgressOutcome::Failed(_) => ProgressKind::Failed,
            ProgressOutcome::Ignored(_) => ProgressKind::Ignored,
        }
    }
}

/// Why a record is reported failed (to be retried by Lambda).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProgressFailure {
    #[error("{0} ({kind})", kind = .0.kind())]
    Store(StoreError),
    /// A record of the same user before it failed: retried in order.
    #[error("an earlier record of the same user failed")]
    EarlierRecordOfUser,
    #[error("not started: the store was found down earlier in this batch")]
    StoreDown,
    #[error("not started: too close to the invocation deadline")]
    DeadlineNear,
}

impl ProgressFailure {
    pub fn kind(&self) -> &'static str {
        match self {
            ProgressFailure::Store(error) => error.kind(),
            ProgressFailure::EarlierRecordOfUser => "earlier_record_of_user",
            ProgressFailure::StoreDown => "store_down",
            ProgressFailure::DeadlineNear => "deadline",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordProgress {
    pub event_id: Option<String>,
    pub sequence_number: Option<String>,
    pub user_id: Option<String>,
    pub transaction_id: Option<String>,
    pub outcome: ProgressOutcome,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProgressReport {
    pub records: Vec<RecordProgress>,
    /// Whether a call found the store down (the rest was not started).
    pub store_down: bool,
}

impl ProgressReport {
    /// Sequence numbers to report in `batchItemFailures`.
    pub fn failed_sequence_numbers(&self) -> Vec<String> {
        self.records
            .iter()
            .filter(|record| record.outcome.kind() == ProgressKind::Failed)
            .filter_map(|record| record.sequence_number.clone())
            .collect()
    }

    pub fn count(&self, kind: ProgressKind) -> usize {
        self.records
            .iter()
            .filter(|record| record.outcome.kind() == kind)
            .count()
    }

    /// Goals met and challenges completed in the batch.
    pub fn goals_and_completions(&self) -> (usize, usize) {
        self.records
            .iter()
            .fold((0, 0), |(goals, done), record| match &record.outcome {
                ProgressOutcome::Applied { met, completed, .. } => {
                    (goals + met.len(), done + completed.len())
                }
                _ => (goals, done),
            })
    }

    /// One line per record, and one for the batch.
    pub fn log(&self, duration_ms: u64) {
        for record in &self.records {
            log_record(record);
        }
        let (goals_met, completed) = self.goals_and_completions();
        tracing::info!(
            records = self.records.len(),
            counted = self.count(ProgressKind::Counted),
            unchanged = self.count(ProgressKind::Unchanged),
            duplicates = self.count(ProgressKind::Duplicate),
            rejected = self.count(ProgressKind::Rejected),
            failed = self.count(ProgressKind::Failed),
            ignored = self.count(ProgressKind::Ignored),
            goals_met,
            completed,
            store_down = self.store_down,
            duration_ms,
            "batch done"
        );
    }
}

fn log_record(record: &RecordProgress) {
    let event_id = record.event_id.as_deref().unwrap_or_default();
    let sequence_number = record.sequence_number.as_deref().unwrap_or_default();
    let user_id = record.user_id.as_deref().unwrap_or_default();
    let transaction_id = record.transaction_id.as_deref().unwrap_or_default();
    let outcome = record.outcome.kind().name();
    match &record.outcome {
        ProgressOutcome::Applied {
            met,
            completed,
            already_counted,
        } => {
            for (personalized_offer_id, goal) in met {
                tracing::info!(event_id, sequence_number, user_id, transaction_id, outcome,
                    personalized_offer_id = %personalized_offer_id, goal = goal.as_str(),
                    completed = completed.contains(personalized_offer_id), "goal met");
            }
            if met.is_empty() {
                tracing::info!(
                    event_id,
                    sequence_number,
                    user_id,
                    transaction_id,
                    outcome,
                    already_counted,
                    "transaction changed no challenge"
                );
            }
        }
        ProgressOutcome::Rejected { code, rejection_id } => {
            tracing::info!(event_id, sequence_number, user_id, transaction_id, outcome,
                reason_code = code.as_str(), rejection_id = %rejection_id, "transaction rejected");
        }
        ProgressOutcome::DuplicateRejection { rejection_id } => {
            tracing::info!(event_id, sequence_number, user_id, transaction_id, outcome,
                rejection_id = %rejection_id, "transaction rejected before");
        }
        ProgressOutcome::Failed(failure) => {
            tracing::warn!(
                event_id,
                sequence_number,
                user_id,
                transaction_id,
                outcome,
                failure = failure.kind(),
                error = %failure,
                "record failed; reported for retry"
            );
        }
        ProgressOutcome::Ignored(reason) => {
            tracing::debug!(event_id, sequence_number, outcome, reason = %reason, "record ignored");
        }
    }
}
