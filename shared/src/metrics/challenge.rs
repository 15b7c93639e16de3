//! The challenge progress function's metrics for one batch.

use super::{MetricSet, Tag};
use crate::challenge_progress::{goals_and_completions, ProgressKind, ProgressReport};
use chrono::{DateTime, Utc};

/// The Datadog name of the per-batch record counts (tag `outcome`).
pub const RECORDS: &str = "challenge.records";
/// Goals met in the batch.
pub const GOALS_MET: &str = "challenge.goals_met";
/// Challenges completed (rewards granted) in the batch.
pub const COMPLETED: &str = "challenge.completed";

/// Per batch: records `Counted`, `Unchanged`, `Duplicates`, `Rejected`,
/// `Failed`, `Ignored`, and `GoalsMet`, `ChallengesCompleted`. In Datadog
/// `challenge.records` tagged `outcome`, `challenge.goals_met`,
/// `challenge.completed`.
pub fn challenge_metrics(report: &ProgressReport, now: DateTime<Utc>) -> MetricSet {
    let mut set = MetricSet::new(now);
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    for (cloudwatch, outcome, kind) in [
        ("Counted", "counted", ProgressKind::Counted),
        ("Unchanged", "unchanged", ProgressKind::Unchanged),
        ("Duplicates", "duplicate", ProgressKind::Duplicate),
        ("Rejected", "rejected", ProgressKind::Rejected),
        ("Failed", "failed", ProgressKind::Failed),
        ("Ignored", "ignored", ProgressKind::Ignored),
    ] {
        set.count(
            cloudwatch,
            RECORDS,
            count(report.count(kind)),
            vec![Tag::new("outcome", outcome)],
        );
    }
    let (goals, completed) = goals_and_completions(report);
    set.count("GoalsMet", GOALS_MET, count(goals), vec![]);
    set.count("ChallengesCompleted", COMPLETED, count(completed), vec![]);
    set
}
