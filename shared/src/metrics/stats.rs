//! The campaign statistics function's metrics for one batch.

use super::{MetricSet, Tag};
use crate::campaign_stats::{StatsBatchReport, StatsKind};
use crate::domain::campaign::BudgetLimit;
use crate::domain::CampaignId;
use chrono::{DateTime, Utc};

/// The Datadog name of the per-batch record counts (tag `outcome`).
pub const RECORDS: &str = "stats.records";
/// Transactions retried after a conflict.
pub const CONFLICTS: &str = "stats.conflicts";
/// Milliseconds from a counted record's stream write to now.
pub const LAG: &str = "stats.lag";
/// Changes counted without the parts of their offer that could not be read.
pub const PARTLY_READ: &str = "stats.partly_read";
/// Batches whose campaigns' budgets could not be read for their metric.
pub const BUDGETS_UNREAD: &str = "stats.budgets_unread";

/// Per batch: `Applied`, `Duplicates`, `NoChange`, `Ignored`, `NotCounted`
/// (images that cannot be counted and writes DynamoDB refused: never
/// retried, so alarmed on), `Failed` (reported for retry), `Conflicts`,
/// `PartlyRead` (changes counted without what of their offer could not be
/// read), `BudgetsUnread` (1 when the budgets of the batch's campaigns
/// could not be read); per counted record `StatsLag`; per limit of each
/// budgeted campaign the batch changed `BudgetUsedPercent`. In Datadog
/// `stats.records` tagged `outcome`, `stats.conflicts`, `stats.partly_read`,
/// `stats.budgets_unread`, `stats.lag` and `budget.used_percent` tagged
/// `campaign_id` and `budget` (`offers`, `redemptions`, `discount_value`).
pub fn stats_metrics(report: &StatsBatchReport, now: DateTime<Utc>) -> MetricSet {
    let mut set = MetricSet::new(now);
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    for (cloudwatch, outcome, n) in [
        ("Applied", "applied", report.count(StatsKind::Applied)),
        (
            "Duplicates",
            "duplicate",
            report.count(StatsKind::Duplicate),
        ),
        ("NoChange", "no_change", report.count(StatsKind::NoChange)),
        ("Ignored", "ignored", report.count(StatsKind::Ignored)),
        (
            "NotCounted",
            "not_counted",
            report
                .count(StatsKind::NotCounted)
                .saturating_add(report.count(StatsKind::Refused)),
        ),
        ("Failed", "failed", report.count(StatsKind::Failed)),
    ] {
        set.count(
            cloudwatch,
            RECORDS,
            count(n),
            vec![Tag::new("outcome", outcome)],
        );
    }
    set.count(
        "Conflicts",
        CONFLICTS,
        count(report.summary.conflicts),
        vec![],
    );
    set.count(
        "PartlyRead",
        PARTLY_READ,
        count(report.summary.partly_read.len()),
        vec![],
    );
    let lags = report
        .records
        .iter()
        .filter(|record| record.outcome.kind() == StatsKind::Applied)
        .filter_map(|record| record.created_at)
        .map(|created| u64::try_from((now - created).num_milliseconds()).unwrap_or(0))
        .collect();
    set.milliseconds("StatsLag", LAG, lags, vec![]);
    set.count(
        "BudgetsUnread",
        BUDGETS_UNREAD,
        u64::from(report.summary.budgets_unread),
        vec![],
    );
    for limit in [
        BudgetLimit::Offers,
        BudgetLimit::Redemptions,
        BudgetLimit::DiscountValue,
    ] {
        let budgets: Vec<(CampaignId, u64)> = report
            .summary
            .budgets
            .iter()
            .filter(|budget| budget.limit == limit)
            .map(|budget| (budget.campaign_id.clone(), budget.percent))
            .collect();
        super::budget_use(&mut set, limit.metric_name(), &budgets);
    }
    set
}
