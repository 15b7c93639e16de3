//! What became of each record of a batch: typed outcomes, the batch's
//! report (for the partial batch response and the metrics) and its logs.

use super::plan::Planned;
use crate::domain::PersonalizedOfferId;
use crate::stream::runner::{self, Classified, OutcomeKind};
use crate::stream::Input;
use offers_domain::{CampaignId, ReasonCode};
use uuid::Uuid;

/// What the dispatcher did with one INSERT (beside failed and ignored: the
/// runner's).
#[derive(Debug, Clone, PartialEq)]
pub enum DispatchOutcome {
    Dispatched {
        personalized_offer_id: PersonalizedOfferId,
        pending_row_kept: bool,
    },
    Rejected {
        code: ReasonCode,
        rejection_id: Uuid,
        pending_row_kept: bool,
    },
    /// A redelivery of a record whose result is already stored: `earlier`
    /// is that result, whatever this delivery would have decided.
    Duplicate { id: Uuid, earlier: Earlier },
}

/// What happened to one record.
pub type Outcome = runner::Outcome<DispatchOutcome>;
pub type RecordReport = runner::RecordReport<DispatchOutcome>;

/// What a batch reports beside its records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DispatchSummary {
    /// Distinct catalog ids this batch needed.
    pub catalog_ids: usize,
    /// The offers budgets this batch used, as they stand after it.
    pub budgets: Vec<(CampaignId, crate::ports::OffersBudgetUse)>,
}

/// One batch's outcomes.
pub type DispatchReport = runner::BatchReport<DispatchOutcome, DispatchSummary>;

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

/// The kinds of outcome, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DispatchKind {
    Dispatched,
    Rejected,
    Duplicate,
    Failed,
    Ignored,
}

impl DispatchKind {
    pub const ALL: [DispatchKind; 5] = [
        DispatchKind::Dispatched,
        DispatchKind::Rejected,
        DispatchKind::Duplicate,
        DispatchKind::Failed,
        DispatchKind::Ignored,
    ];
}

impl OutcomeKind for DispatchKind {
    const FAILED: Self = DispatchKind::Failed;
    const IGNORED: Self = DispatchKind::Ignored;

    fn name(self) -> &'static str {
        match self {
            DispatchKind::Dispatched => "dispatched",
            DispatchKind::Rejected => "rejected",
            DispatchKind::Duplicate => "duplicate",
            DispatchKind::Failed => "failed",
            DispatchKind::Ignored => "ignored",
        }
    }
}

impl Classified for DispatchOutcome {
    type Kind = DispatchKind;

    fn kind(&self) -> DispatchKind {
        match self {
            DispatchOutcome::Dispatched { .. } => DispatchKind::Dispatched,
            DispatchOutcome::Rejected { .. } => DispatchKind::Rejected,
            DispatchOutcome::Duplicate { .. } => DispatchKind::Duplicate,
        }
    }
}

/// One line per record, and one for the batch.
pub(super) fn log_batch(report: &DispatchReport, records: &[Input<Planned>], duration_ms: u64) {
    for (record, input) in report.records.iter().zip(records) {
        let sort_key = input
            .change()
            .map(|planned| planned.insert.sort_key.as_str())
            .unwrap_or_default();
        log_record(record, sort_key);
    }
    tracing::info!(
        records = report.records.len(),
        dispatched = report.count(DispatchKind::Dispatched),
        rejected = report.count(DispatchKind::Rejected),
        duplicates = report.count(DispatchKind::Duplicate),
        failed = report.count(DispatchKind::Failed),
        ignored = report.count(DispatchKind::Ignored),
        catalog_ids = report.summary.catalog_ids,
        store_down = report.store_down,
        duration_ms,
        "batch done"
    );
}

fn log_record(record: &RecordReport, sort_key: &str) {
    let event_id = record.event_id.as_deref().unwrap_or_default();
    let user_id = record.key.as_deref().unwrap_or_default();
    let sequence_number = record.sequence_number.as_deref().unwrap_or_default();
    let outcome = record.outcome.name();
    match &record.outcome {
        Outcome::Done(DispatchOutcome::Dispatched {
            personalized_offer_id,
            pending_row_kept,
        }) => {
            if *pending_row_kept {
                tracing::warn!(event_id, sequence_number, user_id, sort_key, outcome, personalized_offer_id = %personalized_offer_id,
                    "offer dispatched; a newer pending row with the same key was left in place");
            } else {
                tracing::info!(event_id, sequence_number, user_id, sort_key, outcome, personalized_offer_id = %personalized_offer_id, "offer dispatched");
            }
        }
        Outcome::Done(DispatchOutcome::Rejected {
            code, rejection_id, ..
        }) => {
            tracing::info!(event_id, sequence_number, user_id, sort_key, outcome, reason_code = code.as_str(), rejection_id = %rejection_id, "row rejected");
        }
        Outcome::Done(DispatchOutcome::Duplicate { id, earlier }) => {
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
