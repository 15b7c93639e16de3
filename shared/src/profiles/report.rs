//! What became of each transaction record in the user visits function:
//! typed outcomes, the batch's report and its logs; and a profile as the
//! support API shows it.

use crate::ports::StoredProfile;
use crate::stream::runner::{BatchReport, Classified, Outcome, OutcomeKind};
use chrono::{DateTime, Utc};
use offers_domain::dates::rfc3339;
use offers_domain::profile::{ProfileContext, Spend, Visits30, NO_MODE};
use offers_domain::ReasonCode;
use serde::Serialize;

/// What one valid or invalid transaction did.
#[derive(Debug, Clone, PartialEq)]
pub enum VisitOutcome {
    /// Counted now: the profile as written and the visit's context.
    Counted {
        profile: Box<StoredProfile>,
        context: ProfileContext,
    },
    /// Counted before (a redelivery): nothing written.
    AlreadyCounted,
    /// It can never count (section 8); challenge progress keeps it in the
    /// rejected table.
    Invalid { code: ReasonCode },
    /// DynamoDB refused the write for good (or the user id is reserved):
    /// logged and counted, never retried.
    Refused { detail: String },
}

/// The kinds of outcome, for counting and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VisitKind {
    Counted,
    Duplicate,
    Invalid,
    Refused,
    Failed,
    Ignored,
}

impl VisitKind {
    pub const ALL: [VisitKind; 6] = [
        VisitKind::Counted,
        VisitKind::Duplicate,
        VisitKind::Invalid,
        VisitKind::Refused,
        VisitKind::Failed,
        VisitKind::Ignored,
    ];

    /// The CloudWatch metric name of its count.
    pub fn metric(self) -> &'static str {
        match self {
            VisitKind::Counted => "Counted",
            VisitKind::Duplicate => "Duplicates",
            VisitKind::Invalid => "Invalid",
            VisitKind::Refused => "Refused",
            VisitKind::Failed => "Failed",
            VisitKind::Ignored => "Ignored",
        }
    }
}

impl OutcomeKind for VisitKind {
    const FAILED: Self = VisitKind::Failed;
    const IGNORED: Self = VisitKind::Ignored;

    fn name(self) -> &'static str {
        match self {
            VisitKind::Counted => "counted",
            VisitKind::Duplicate => "duplicate",
            VisitKind::Invalid => "invalid",
            VisitKind::Refused => "refused",
            VisitKind::Failed => "failed",
            VisitKind::Ignored => "ignored",
        }
    }
}

impl Classified for VisitOutcome {
    type Kind = VisitKind;

    fn kind(&self) -> VisitKind {
        match self {
            VisitOutcome::Counted { .. } => VisitKind::Counted,
            VisitOutcome::AlreadyCounted => VisitKind::Duplicate,
            VisitOutcome::Invalid { .. } => VisitKind::Invalid,
            VisitOutcome::Refused { .. } => VisitKind::Refused,
        }
    }
}

/// One batch's outcomes.
pub type VisitReport = BatchReport<VisitOutcome>;

/// One line per record that is not plain (counted lines at debug), and
/// one for the batch.
pub(super) fn log_batch(report: &VisitReport, duration_ms: u64) {
    for record in &report.records {
        let event_id = record.event_id.as_deref().unwrap_or_default();
        let sequence_number = record.sequence_number.as_deref().unwrap_or_default();
        let user_id = record.key.as_deref().unwrap_or_default();
        let outcome = record.outcome.name();
        match &record.outcome {
            Outcome::Done(VisitOutcome::Counted { profile, context }) => tracing::debug!(
                event_id,
                sequence_number,
                user_id,
                outcome,
                version = profile.version,
                visits = profile.profile.visits,
                visits30 = context.visits30.as_str(),
                mode = context.mode.as_str(),
                spend = context.spend.as_str(),
                daypart = context.daypart.as_str(),
                "visit counted"
            ),
            Outcome::Done(VisitOutcome::AlreadyCounted) => tracing::info!(
                event_id,
                sequence_number,
                user_id,
                outcome,
                "visit counted before"
            ),
            Outcome::Done(VisitOutcome::Invalid { code }) => tracing::info!(
                event_id,
                sequence_number,
                user_id,
                outcome,
                reason_code = code.as_str(),
                "transaction not counted"
            ),
            Outcome::Done(VisitOutcome::Refused { detail }) => tracing::error!(
                event_id,
                sequence_number,
                user_id,
                outcome,
                error = detail.as_str(),
                "profile write refused; not retried"
            ),
            Outcome::Failed(failure) => tracing::warn!(
                event_id, sequence_number, user_id, outcome, failure = failure.kind(),
                error = %failure, "record failed; reported for retry"
            ),
            Outcome::Ignored(reason) => tracing::debug!(
                event_id, sequence_number, outcome, reason = %reason, "record ignored"
            ),
        }
    }
    tracing::info!(
        records = report.records.len(),
        counted = report.count(VisitKind::Counted),
        duplicates = report.count(VisitKind::Duplicate),
        invalid = report.count(VisitKind::Invalid),
        refused = report.count(VisitKind::Refused),
        failed = report.count(VisitKind::Failed),
        ignored = report.count(VisitKind::Ignored),
        store_down = report.store_down,
        duration_ms,
        "batch done"
    );
}

/// Per batch: the records of each kind (`Counted`, `Duplicates`, `Invalid`,
/// `Refused`, `Failed`, `Ignored`; in Datadog `visits.records` tagged `outcome`).
pub fn visit_metrics(report: &VisitReport, now: DateTime<Utc>) -> crate::metrics::MetricSet {
    use crate::metrics::{MetricSet, Tag};
    let mut set = MetricSet::new(now);
    for kind in VisitKind::ALL {
        set.count(
            kind.metric(),
            "visits.records",
            u64::try_from(report.count(kind)).unwrap_or(u64::MAX),
            vec![Tag::new("outcome", kind.name())],
        );
    }
    set
}

/// `GET /support/users/{userId}/profile`'s body.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileView {
    pub user_id: String,
    /// As of `lastVisitAt`.
    pub visits30: Visits30,
    pub mode: String,
    pub spend: Spend,
    #[serde(with = "rfc3339")]
    pub last_visit_at: DateTime<Utc>,
    /// Every counted visit.
    pub visits: u64,
}

impl ProfileView {
    /// `None` for a profile without visits.
    pub fn of(stored: &StoredProfile) -> Option<Self> {
        let profile = &stored.profile;
        let last_visit_at = profile.last_visit_at.filter(|_| profile.visits > 0)?;
        Some(Self {
            user_id: stored.user_id.clone(),
            visits30: profile.visits30_at(last_visit_at),
            mode: profile.mode().unwrap_or(NO_MODE).to_owned(),
            spend: profile.spend(),
            last_visit_at,
            visits: profile.visits,
        })
    }
}
