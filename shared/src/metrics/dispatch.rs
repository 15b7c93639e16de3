//! The dispatcher's metrics for one batch.

use super::{MetricSet, Tag};
use crate::dispatch::{DispatchKind, DispatchOutcome, DispatchReport, Outcome};
use crate::domain::CampaignId;
use crate::stream::runner::OutcomeKind;
use chrono::{DateTime, Utc};

/// The Datadog name of the per-batch record counts (tag `outcome`, and
/// `reason_code` for rejections, `failure` for failures).
pub const RECORDS: &str = "dispatch.records";
/// The Datadog name of the per-record lag.
pub const LAG: &str = "dispatch.lag";

/// The dispatcher's metrics for one batch:
///
/// - per batch, the records by outcome: in CloudWatch the counts
///   `Dispatched`, `Rejected`, `Duplicates`, `Failed`, `Ignored` (each always
///   present, zero included); in Datadog `dispatch.records` tagged `outcome`,
///   rejections split by `reason_code` and failures by `failure` (both bounded
///   sets of names);
/// - per record, `DispatchLag` / `dispatch.lag`: milliseconds from each
///   INSERT's stream write to now, one value per record, so that both give
///   percentiles.
pub fn dispatch_metrics(report: &DispatchReport, now: DateTime<Utc>) -> MetricSet {
    let mut set = MetricSet::new(now);
    for kind in DispatchKind::ALL {
        let outcome = || Tag::new("outcome", kind.name());
        // The records of this kind, grouped by their bounded detail.
        let mut groups: Vec<(Option<Tag>, u64)> = Vec::new();
        for record in report.records.iter().filter(|r| r.outcome.kind() == kind) {
            let detail = match &record.outcome {
                Outcome::Done(DispatchOutcome::Rejected { code, .. }) => {
                    Some(Tag::new("reason_code", code.as_str()))
                }
                Outcome::Failed(failure) => Some(Tag::new("failure", failure.kind())),
                _ => None,
            };
            match groups.iter_mut().find(|(tag, _)| *tag == detail) {
                Some((_, count)) => *count = count.saturating_add(1),
                None => groups.push((detail, 1)),
            }
        }
        if groups.is_empty() {
            groups.push((None, 0));
        }
        for (detail, count) in groups {
            let tags = std::iter::once(outcome()).chain(detail).collect();
            set.count(cloudwatch_name(kind), RECORDS, count, tags);
        }
    }
    let lags: Vec<u64> = report
        .records
        .iter()
        .filter_map(|record| record.created_at)
        .map(|created| u64::try_from((now - created).num_milliseconds()).unwrap_or(0))
        .collect();
    set.milliseconds("DispatchLag", LAG, lags, vec![]);
    let budgets: Vec<(CampaignId, u64)> = report
        .summary
        .budgets
        .iter()
        .map(|(campaign_id, budget)| (campaign_id.clone(), budget.percent()))
        .collect();
    super::budget_use(&mut set, "offers", &budgets);
    set
}

/// The CloudWatch count of an outcome (the names of the EMF line since the start).
pub fn cloudwatch_name(kind: DispatchKind) -> &'static str {
    match kind {
        DispatchKind::Dispatched => "Dispatched",
        DispatchKind::Rejected => "Rejected",
        DispatchKind::Duplicate => "Duplicates",
        DispatchKind::Failed => "Failed",
        DispatchKind::Ignored => "Ignored",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{DispatchSummary, Failure, RecordReport};
    use crate::domain::dates::parse_timestamp;
    use crate::domain::ReasonCode;
    use crate::metrics::emf::emf_line;
    use crate::stream::IgnoredReason;
    use serde_json::json;

    fn at(text: &str) -> DateTime<Utc> {
        parse_timestamp(text).expect("timestamp")
    }

    fn record(outcome: Outcome, created_at: Option<&str>) -> RecordReport {
        RecordReport {
            created_at: created_at.map(at),
            ..RecordReport::of_outcome(outcome)
        }
    }

    fn rejected(code: ReasonCode) -> Outcome {
        Outcome::Done(DispatchOutcome::Rejected {
            code,
            rejection_id: uuid::Uuid::nil(),
            pending_row_kept: false,
        })
    }

    fn batch() -> DispatchReport {
        DispatchReport {
            records: vec![
                record(
                    Outcome::Done(DispatchOutcome::Dispatched {
                        personalized_offer_id: crate::domain::PersonalizedOfferId::from_uuid(
                            uuid::Uuid::nil(),
                        ),
                        pending_row_kept: false,
                    }),
                    Some("2026-01-01T00:00:00Z"),
                ),
                record(
                    Outcome::Failed(Failure::StoreDown),
                    Some("2026-01-01T00:00:01.5Z"),
                ),
                record(rejected(ReasonCode::Expired), Some("2026-01-01T00:00:01Z")),
                record(
                    rejected(ReasonCode::UnknownOffer),
                    Some("2026-01-01T00:00:01Z"),
                ),
                record(rejected(ReasonCode::Expired), Some("2026-01-01T00:00:01Z")),
                record(Outcome::Ignored(IgnoredReason::Modify), None),
            ],
            store_down: false,
            summary: DispatchSummary::default(),
        }
    }

    /// The EMF line of a batch, exactly as the dispatcher wrote it before
    /// the port existed.
    #[test]
    fn a_batch_is_the_same_emf_line_as_ever() {
        let now = at("2026-01-01T00:00:02Z");
        let line = emf_line("dispatcher", &dispatch_metrics(&batch(), now));
        crate::metrics::emf::tests::assert_emf(&line);
        assert_eq!(
            line,
            json!({
                "_aws": {
                    "Timestamp": now.timestamp_millis(),
                    "CloudWatchMetrics": [{
                        "Namespace": "PersonalizedOffers",
                        "Dimensions": [["FunctionName"]],
                        "Metrics": [
                            {"Name": "Dispatched", "Unit": "Count"},
                            {"Name": "Rejected", "Unit": "Count"},
                            {"Name": "Duplicates", "Unit": "Count"},
                            {"Name": "Failed", "Unit": "Count"},
                            {"Name": "Ignored", "Unit": "Count"},
                            {"Name": "DispatchLag", "Unit": "Milliseconds"}
                        ]
                    }]
                },
                "FunctionName": "dispatcher",
                "Dispatched": 1,
                "Rejected": 3,
                "Duplicates": 0,
                "Failed": 1,
                "Ignored": 1,
                "DispatchLag": [2000, 500, 1000, 1000, 1000]
            })
        );
    }

    #[test]
    fn a_batch_in_dogstatsd_lines() {
        let now = at("2026-01-01T00:00:02Z");
        let lines = crate::metrics::dogstatsd::tests::lines_of(&dispatch_metrics(&batch(), now));
        let tags = "|d|#function:offer-dispatcher,outcome:";
        assert_eq!(
            lines,
            [
                format!("personalized_offers.dispatch.records:1{tags}dispatched"),
                format!("personalized_offers.dispatch.records:2{tags}rejected,reason_code:expired"),
                format!("personalized_offers.dispatch.records:1{tags}rejected,reason_code:unknown_offer"),
                format!("personalized_offers.dispatch.records:0{tags}duplicate"),
                format!("personalized_offers.dispatch.records:1{tags}failed,failure:store_down"),
                format!("personalized_offers.dispatch.records:1{tags}ignored"),
                "personalized_offers.dispatch.lag:2000:500:1000:1000:1000|d|#function:offer-dispatcher"
                    .to_owned(),
            ]
        );
    }

    #[test]
    fn without_inserts_no_lag_is_declared() {
        let report = DispatchReport {
            records: vec![record(Outcome::Ignored(IgnoredReason::Modify), None)],
            store_down: false,
            summary: DispatchSummary::default(),
        };
        let line = emf_line("f", &dispatch_metrics(&report, Utc::now()));
        assert!(line.get("DispatchLag").is_none());
        let declared = line["_aws"]["CloudWatchMetrics"][0]["Metrics"].to_string();
        assert!(!declared.contains("DispatchLag"));
    }
}
