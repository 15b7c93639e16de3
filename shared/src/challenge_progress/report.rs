//! What became of each transaction record: typed outcomes, the batch's
//! report (for the partial batch response and the metrics) and its logs.

use super::TransactionInput;
use crate::domain::PersonalizedOfferId;
use crate::stream::runner::{BatchReport, Classified, Outcome, OutcomeKind, RecordReport};
use offers_domain::ReasonCode;
use uuid::Uuid;

/// What happened to one record.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgressOutcome {
    /// A valid transaction, applied to each of its user's active challenges:
    /// the goals it met now (offer, goal), the challenges that completed, and
    /// on how many challenges it had been counted already (a redelivery).
    Applied {
        met: Vec<(PersonalizedOfferId, String)>,
        completed: Vec<PersonalizedOfferId>,
        already_counted: usize,
    },
    /// It can never count: kept in the rejected table with its reason.
    Rejected {
        code: ReasonCode,
        rejection_id: Uuid,
    },
    /// Its rejection is stored already (a redelivery).
    DuplicateRejection { rejection_id: Uuid },
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

impl OutcomeKind for ProgressKind {
    const FAILED: Self = ProgressKind::Failed;
    const IGNORED: Self = ProgressKind::Ignored;

    fn name(self) -> &'static str {
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

impl Classified for ProgressOutcome {
    type Kind = ProgressKind;

    fn kind(&self) -> ProgressKind {
        match self {
            ProgressOutcome::Applied { met, .. } if !met.is_empty() => ProgressKind::Counted,
            ProgressOutcome::Applied {
                already_counted, ..
            } if *already_counted > 0 => ProgressKind::Duplicate,
            ProgressOutcome::Applied { .. } => ProgressKind::Unchanged,
            ProgressOutcome::Rejected { .. } => ProgressKind::Rejected,
            ProgressOutcome::DuplicateRejection { .. } => ProgressKind::Duplicate,
        }
    }
}

/// One batch's outcomes.
pub type ProgressReport = BatchReport<ProgressOutcome>;

/// Goals met and challenges completed in the batch.
pub fn goals_and_completions(report: &ProgressReport) -> (usize, usize) {
    report
        .records
        .iter()
        .fold((0, 0), |(goals, done), record| match &record.outcome {
            Outcome::Done(ProgressOutcome::Applied { met, completed, .. }) => {
                (goals + met.len(), done + completed.len())
            }
            _ => (goals, done),
        })
}

/// One line per record, and one for the batch.
pub(super) fn log_batch(report: &ProgressReport, records: &[TransactionInput], duration_ms: u64) {
    for (record, input) in report.records.iter().zip(records) {
        let transaction_id = input
            .change()
            .and_then(|change| change.transaction_id.as_deref())
            .unwrap_or_default();
        log_record(record, transaction_id);
    }
    let (goals_met, completed) = goals_and_completions(report);
    tracing::info!(
        records = report.records.len(),
        counted = report.count(ProgressKind::Counted),
        unchanged = report.count(ProgressKind::Unchanged),
        duplicates = report.count(ProgressKind::Duplicate),
        rejected = report.count(ProgressKind::Rejected),
        failed = report.count(ProgressKind::Failed),
        ignored = report.count(ProgressKind::Ignored),
        goals_met,
        completed,
        store_down = report.store_down,
        duration_ms,
        "batch done"
    );
}

fn log_record(record: &RecordReport<ProgressOutcome>, transaction_id: &str) {
    let event_id = record.event_id.as_deref().unwrap_or_default();
    let sequence_number = record.sequence_number.as_deref().unwrap_or_default();
    let user_id = record.key.as_deref().unwrap_or_default();
    let outcome = record.outcome.name();
    match &record.outcome {
        Outcome::Done(ProgressOutcome::Applied {
            met,
            completed,
            already_counted,
        }) => {
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
        Outcome::Done(ProgressOutcome::Rejected { code, rejection_id }) => {
            tracing::info!(event_id, sequence_number, user_id, transaction_id, outcome,
                reason_code = code.as_str(), rejection_id = %rejection_id, "transaction rejected");
        }
        Outcome::Done(ProgressOutcome::DuplicateRejection { rejection_id }) => {
            tracing::info!(event_id, sequence_number, user_id, transaction_id, outcome,
                rejection_id = %rejection_id, "transaction rejected before");
        }
        Outcome::Failed(failure) => {
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
        Outcome::Ignored(reason) => {
            tracing::debug!(event_id, sequence_number, outcome, reason = %reason, "record ignored");
        }
    }
}
