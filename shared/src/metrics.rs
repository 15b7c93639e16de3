//! Metrics as CloudWatch Embedded Metric Format (EMF): one JSON log line per
//! batch that CloudWatch Logs turns into metrics, and that Datadog reads from
//! the same logs. No metrics API call on the hot path, nothing to fail.

use crate::challenge_progress::{ProgressKind, ProgressReport};
use crate::dispatch::{BatchReport, OutcomeKind, RecordReport};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// The CloudWatch namespace of the system's own metrics.
pub const NAMESPACE: &str = "PersonalizedOffers";
/// EMF takes at most 100 values of one metric in one line.
const MAX_VALUES: usize = 100;

/// The dispatcher's metrics for one batch, dimensioned by function name:
/// `Dispatched`, `Rejected`, `Duplicates`, `Failed`, `Ignored` (counts) and
/// `DispatchLag` (milliseconds from each INSERT's stream write to now, one
/// value per record, so that CloudWatch can give percentiles).
pub fn dispatch_metrics(report: &BatchReport, function_name: &str, now: DateTime<Utc>) -> Value {
    let lags: Vec<i64> = report
        .records
        .iter()
        .filter_map(|record: &RecordReport| record.created_at)
        .map(|created| (now - created).num_milliseconds().max(0))
        .take(MAX_VALUES)
        .collect();
    let mut metrics = vec![
        (
            "Dispatched",
            "Count",
            json!(report.count(OutcomeKind::Dispatched)),
        ),
        (
            "Rejected",
            "Count",
            json!(report.count(OutcomeKind::Rejected)),
        ),
        (
            "Duplicates",
            "Count",
            json!(report.count(OutcomeKind::Duplicate)),
        ),
        ("Failed", "Count", json!(report.count(OutcomeKind::Failed))),
        (
            "Ignored",
            "Count",
            json!(report.count(OutcomeKind::Ignored)),
        ),
    ];
    // A declared metric must have a value: no INSERT, no lag.
    if !lags.is_empty() {
        metrics.push(("DispatchLag", "Milliseconds", json!(lags)));
    }
    emf_line(&metrics, function_name, now)
}

/// The statistics function's metrics for one batch, dimensioned by function
/// name: `Applied`, `Duplicates`, `NoChange`, `Ignored`, `NotCounted`
/// (images that cannot be counted and writes DynamoDB refused: never
/// retried, so alarmed on), `Failed` (reported for retry), `Conflicts`
/// (transactions retried after a conflict) and `StatsLag` (milliseconds from
/// each counted record's stream write to now).
pub fn stats_metrics(
    report: &crate::campaign_stats::StatsBatchReport,
    function_name: &str,
    now: DateTime<Utc>,
) -> Value {
    let lags: Vec<i64> = report
        .records
        .iter()
        .filter(|record| record.outcome.name() == "applied")
        .filter_map(|record| record.created_at)
        .map(|created| (now - created).num_milliseconds().max(0))
        .take(MAX_VALUES)
        .collect();
    let mut metrics = vec![
        ("Applied", "Count", json!(report.count("applied"))),
        ("Duplicates", "Count", json!(report.count("duplicate"))),
        ("NoChange", "Count", json!(report.count("no_change"))),
        ("Ignored", "Count", json!(report.count("ignored"))),
        (
            "NotCounted",
            "Count",
            json!(report.count("not_counted") + report.count("refused")),
        ),
        ("Failed", "Count", json!(report.count("failed"))),
        ("Conflicts", "Count", json!(report.conflicts)),
    ];
    if !lags.is_empty() {
        metrics.push(("StatsLag", "Milliseconds", json!(lags)));
    }
    emf_line(&metrics, function_name, now)
}

/// The challenge progress function's metrics for one batch, dimensioned by
/// function name: records `Counted`, `Unchanged`, `Duplicates`, `Rejected`,
/// `Failed`, `Ignored`, and `GoalsMet`, `ChallengesCompleted`.
pub fn challenge_metrics(
    report: &ProgressReport,
    function_name: &str,
    now: DateTime<Utc>,
) -> Value {
    let (goals, completed) = report.goals_and_completions();
    let count = |kind| json!(report.count(kind));
    let metrics = vec![
        ("Counted", "Count", count(ProgressKind::Counted)),
        ("Unchanged", "Count", count(ProgressKind::Unchanged)),
        ("Duplicates", "Count", count(ProgressKind::Duplicate)),
        ("Rejected", "Count", count(ProgressKind::Rejected)),
        ("Failed", "Count", count(ProgressKind::Failed)),
        ("Ignored", "Count", count(ProgressKind::Ignored)),
        ("GoalsMet", "Count", json!(goals)),
        ("ChallengesCompleted", "Count", json!(completed)),
    ];
    emf_line(&metrics, function_name, now)
}

/// One EMF line: the declaration under `_aws`, the dimension and every
/// declared metric's value at the top level.
fn emf_line(metrics: &[(&str, &str, Value)], function_name: &str, now: DateTime<Utc>) -> Value {
    let mut line = Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": now.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": metrics.iter()
                    .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    line.insert("FunctionName".into(), json!(function_name));
    for (name, _, value) in metrics {
        line.insert((*name).into(), value.clone());
    }
    Value::Object(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{Failure, IgnoredReason, Outcome};
    use crate::domain::dates::parse_timestamp;

    fn at(text: &str) -> DateTime<Utc> {
        parse_timestamp(text).expect("timestamp")
    }

    fn record(outcome: Outcome, created_at: Option<&str>) -> RecordReport {
        RecordReport {
            created_at: created_at.map(at),
            ..RecordReport::of_other(None, None, outcome)
        }
    }

    #[test]
    fn a_batch_becomes_one_emf_line() {
        let report = BatchReport {
            records: vec![
                record(
                    Outcome::Dispatched {
                        personalized_offer_id: uuid::Uuid::nil(),
                        pending_row_kept: false,
                    },
                    Some("2026-01-01T00:00:00Z"),
                ),
                record(
                    Outcome::Failed(Failure::StoreDown),
                    Some("2026-01-01T00:00:01.5Z"),
                ),
                record(Outcome::Ignored(IgnoredReason::Modify), None),
            ],
            catalog_ids: 0,
            store_down: false,
        };
        let line = dispatch_metrics(&report, "dispatcher", at("2026-01-01T00:00:02Z"));
        let declared = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], NAMESPACE);
        assert_eq!(declared["Dimensions"], json!([["FunctionName"]]));
        let names: Vec<&str> = declared["Metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|metric| metric["Name"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "Dispatched",
                "Rejected",
                "Duplicates",
                "Failed",
                "Ignored",
                "DispatchLag"
            ]
        );
        // Every declared metric has its value at the top level, as EMF requires.
        for name in names {
            assert!(line.get(name).is_some(), "{name}");
        }
        assert_eq!(line["Dispatched"], 1);
        assert_eq!(line["Failed"], 1);
        assert_eq!(line["Ignored"], 1);
        assert_eq!(line["DispatchLag"], json!([2000, 500]));
        assert_eq!(line["FunctionName"], "dispatcher");
        assert_eq!(
            line["_aws"]["Timestamp"],
            at("2026-01-01T00:00:02Z").timestamp_millis()
        );
    }

    #[test]
    fn a_progress_batch_declares_its_counts() {
        use crate::challenge_progress::{ProgressOutcome, RecordProgress};
        let record = |outcome| RecordProgress {
            event_id: None,
            sequence_number: None,
            user_id: None,
            transaction_id: None,
            outcome,
        };
        let report = ProgressReport {
            records: vec![
                record(ProgressOutcome::Applied {
                    met: vec![(uuid::Uuid::nil(), "visit1".into())],
                    completed: vec![uuid::Uuid::nil()],
                    already_counted: 0,
                }),
                record(ProgressOutcome::Rejected {
                    code: crate::domain::ReasonCode::InvalidTransaction,
                    rejection_id: uuid::Uuid::nil(),
                }),
            ],
            store_down: false,
        };
        let line = challenge_metrics(&report, "progress", Utc::now());
        let declared = line["_aws"]["CloudWatchMetrics"][0]["Metrics"].to_string();
        for name in [
            "Counted",
            "Rejected",
            "Failed",
            "GoalsMet",
            "ChallengesCompleted",
        ] {
            assert!(declared.contains(name), "{name}");
            assert!(line.get(name).is_some(), "{name}");
        }
        assert_eq!(line["Counted"], 1);
        assert_eq!(line["Rejected"], 1);
        assert_eq!(line["ChallengesCompleted"], 1);
        assert_eq!(line["FunctionName"], "progress");
    }

    #[test]
    fn without_inserts_no_lag_is_declared() {
        let report = BatchReport {
            records: vec![record(Outcome::Ignored(IgnoredReason::Modify), None)],
            catalog_ids: 0,
            store_down: false,
        };
        let line = dispatch_metrics(&report, "f", Utc::now());
        assert!(line.get("DispatchLag").is_none());
        let declared = line["_aws"]["CloudWatchMetrics"][0]["Metrics"].to_string();
        assert!(!declared.contains("DispatchLag"));
    }
}
