//! `offers report CAMPAIGN`: a campaign's statistics, read by the same
//! adapter and built into the same report as the support API's
//! (`CampaignStatsTable::report`); shown as a table, JSON, or an HTML page.

use crate::aws::{Connection, Table};
use crate::cli::ReportArgs;
use crate::error::CliError;
use crate::output::say;
use crate::report_html::html_report;
use offers_shared::domain::campaign::percent_used;
use offers_shared::domain::campaign_stats::{redemption_lift, CampaignReport, Counts};
use offers_shared::dynamo::{CampaignStatsTable, CampaignsTable};
use rust_decimal::Decimal;
use serde_json::{json, Value};

pub async fn run(args: ReportArgs, connection: &Connection) -> Result<(), CliError> {
    let name = connection
        .table_names()
        .name(Table::CampaignStats)?
        .to_owned();
    if args.campaign.is_empty()
        || args.campaign.len() > offers_shared::domain::campaign_stats::MAX_STATS_ID_BYTES
    {
        return Err(CliError::Invalid(
            "the campaign id must be 1 to 1000 bytes".to_owned(),
        ));
    }
    let client = connection.client().await?;
    let report = CampaignStatsTable::new(client, name)
        .report(&args.campaign)
        .await?;
    if let Some(path) = &args.html {
        let page = html_report(&report).map_err(CliError::Service)?;
        std::fs::write(path, page).map_err(|source| CliError::Read {
            path: path.clone(),
            source,
        })?;
        eprintln!("offers: wrote {}", path.display());
    }
    let budget = budget_use(&args.campaign, connection).await?;
    if args.json {
        let mut body = report_json(&report);
        if let Some(budget) = budget {
            body["budget"] = budget;
        }
        say(body)
    } else {
        for line in render(&report)
            .into_iter()
            .chain(budget.iter().flat_map(budget_lines))
        {
            say(line)?;
        }
        Ok(())
    }
}

/// The campaign's budget (contract section 14) as its definition and
/// counters stand: `{ offers|redemptions|discountValue: { limit, used } }`
/// for the limits set; `None` without a definition or a budget.
async fn budget_use(campaign: &str, connection: &Connection) -> Result<Option<Value>, CliError> {
    let name = connection.table_names().name(Table::Campaigns)?.to_owned();
    let table = CampaignsTable::new(connection.client().await?, name);
    let stored = table.get(campaign).await?;
    Ok(stored.and_then(|stored| Some(stored.budget?.view(&stored.used))))
}

/// One line per limit: `budget offers: 18 of 20 used (90%)`.
pub fn budget_lines(budget: &Value) -> Vec<String> {
    let Some(limits) = budget.as_object() else {
        return Vec::new();
    };
    let decimal = |value: &Value| value.to_string().parse::<Decimal>().unwrap_or_default();
    limits
        .iter()
        .map(|(name, limit)| {
            let percent = percent_used(decimal(&limit["used"]), decimal(&limit["limit"]));
            format!(
                "budget {name}: {} of {} used ({percent}%)",
                limit["used"], limit["limit"]
            )
        })
        .collect()
}

/// The support API's body, plus `redemptionsByDay` and, with selection,
/// `lift` (of the totals and of each offer) and `armsByDay` (per day the
/// offers were made: each arm's counts and the day's lift).
pub fn report_json(report: &CampaignReport) -> Value {
    let mut body = report.to_json();
    body["redemptionsByDay"] = json!(report.days);
    if report.uses_selection {
        body["armsByDay"] = json!(report
            .arm_days
            .iter()
            .map(|day| json!({
                "day": day.day,
                "selected": day.selected,
                "holdout": day.holdout,
                "lift": day.lift(),
            }))
            .collect::<Vec<_>>());
        body["lift"] = json!({
            "totals": redemption_lift(&report.totals.selected, &report.totals.holdout),
            "offers": report.offers.iter().map(|offer| json!({
                "offerId": offer.offer_id,
                "lift": redemption_lift(&offer.selected, &offer.holdout),
            })).collect::<Vec<_>>(),
        });
    }
    body
}

fn rate(part: i64, whole: i64) -> String {
    if whole <= 0 {
        "-".to_owned()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

fn row(label: &str, counts: &Counts) -> Vec<String> {
    let average = if counts.redemptions > 0 {
        (counts.order_value / rust_decimal::Decimal::from(counts.redemptions))
            .round_dp(2)
            .to_string()
    } else {
        "-".to_owned()
    };
    vec![
        label.to_owned(),
        counts.assigned.to_string(),
        counts.viewed.to_string(),
        counts.clicked.to_string(),
        counts.redeemed.to_string(),
        rate(counts.redeemed, counts.assigned),
        counts.redemptions.to_string(),
        counts.revoked.to_string(),
        counts.order_value.to_string(),
        average,
        counts.discount_value.to_string(),
    ]
}

/// Rows as lines, columns aligned: the first to the left, the others to
/// the right.
fn aligned(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(column, (cell, width))| {
                    if column == 0 {
                        format!("{cell:<width$}")
                    } else {
                        format!("{cell:>width$}")
                    }
                })
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect()
}

/// Each day's arms (the offers made that day) and the day's lift.
fn arms_by_day(report: &CampaignReport) -> Vec<String> {
    let mut rows = vec![[
        "made on", "selected", "redeemed", "rate", "holdout", "redeemed", "rate", "lift",
    ]
    .map(str::to_owned)
    .to_vec()];
    for day in &report.arm_days {
        rows.push(vec![
            day.day.clone(),
            day.selected.assigned.to_string(),
            day.selected.redeemed.to_string(),
            rate(day.selected.redeemed, day.selected.assigned),
            day.holdout.assigned.to_string(),
            day.holdout.redeemed.to_string(),
            rate(day.holdout.redeemed, day.holdout.assigned),
            day.lift()
                .map_or_else(|| "-".to_owned(), |lift| lift.to_string()),
        ]);
    }
    let mut lines = vec!["by day the offers were made, per arm:".to_owned()];
    lines.extend(aligned(&rows));
    lines
}

/// The report as a table: one row per offer (and per arm with selection),
/// the totals, and the lift.
pub fn render(report: &CampaignReport) -> Vec<String> {
    let header: Vec<String> = [
        "offer",
        "assigned",
        "viewed",
        "clicked",
        "redeemed",
        "rate",
        "uses",
        "revoked",
        "order value",
        "avg order",
        "discounts",
    ]
    .iter()
    .map(|h| h.to_string())
    .collect();
    let mut rows = vec![header];
    let mut add = |label: &str, stats: &offers_shared::domain::campaign_stats::OfferStats| {
        rows.push(row(label, &stats.all));
        if report.uses_selection {
            rows.push(row("  selected", &stats.selected));
            rows.push(row("  holdout", &stats.holdout));
        }
    };
    for offer in &report.offers {
        add(&offer.offer_id, offer);
    }
    add("TOTAL", &report.totals);
    let mut lines = vec![format!("campaign {}", report.campaign_id)];
    lines.extend(aligned(&rows));
    if report.offers.is_empty() {
        lines.push("(no offer of this campaign has been counted)".to_owned());
    }
    if report.uses_selection {
        match redemption_lift(&report.totals.selected, &report.totals.holdout) {
            Some(lift) => lines.push(format!(
                "redemption-rate lift of selected over holdout: {lift}"
            )),
            None => lines.push(
                "redemption-rate lift: not computable (an arm has no offer assigned)".to_owned(),
            ),
        }
        if !report.arm_days.is_empty() {
            lines.extend(arms_by_day(report));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use offers_shared::domain::campaign_stats::{Arm, CounterKey, Counts};

    #[test]
    fn each_budget_limit_is_a_line_with_its_share_used() {
        let budget = json!({"offers": {"limit": 20, "used": 18},
                            "discountValue": {"limit": 50.5, "used": 40}});
        assert_eq!(
            budget_lines(&budget),
            vec![
                "budget offers: 18 of 20 used (90%)",
                "budget discountValue: 40 of 50.5 used (79%)",
            ]
        );
        assert!(budget_lines(&Value::Null).is_empty());
    }

    fn report() -> CampaignReport {
        let key = |offer: &str, arm| CounterKey::Campaign {
            campaign_id: "c1".into(),
            offer_id: offer.into(),
            arm,
        };
        let counts = |assigned, redeemed| Counts {
            assigned,
            viewed: assigned,
            redeemed,
            redemptions: redeemed,
            order_value: rust_decimal::Decimal::new(1250, 2)
                * rust_decimal::Decimal::from(redeemed),
            discount_value: rust_decimal::Decimal::new(75, 2)
                * rust_decimal::Decimal::from(redeemed),
            ..Counts::default()
        };
        offers_shared::domain::campaign_stats::campaign_report(
            "c1",
            vec![
                (key("co-a", Arm::All), counts(100, 20)),
                (key("co-a", Arm::Selected), counts(90, 19)),
                (key("co-a", Arm::Holdout), counts(10, 1)),
                (
                    CounterKey::ArmDay {
                        campaign_id: "c1".into(),
                        day: "2026-03-04".into(),
                        arm: Arm::Selected,
                    },
                    counts(90, 19),
                ),
                (
                    CounterKey::ArmDay {
                        campaign_id: "c1".into(),
                        day: "2026-03-04".into(),
                        arm: Arm::Holdout,
                    },
                    counts(10, 1),
                ),
            ],
        )
        .expect("report")
    }

    #[test]
    fn the_table_has_a_row_per_offer_and_arm_and_the_lift() {
        let lines = render(&report());
        assert!(lines[2].starts_with("co-a"), "{lines:?}");
        assert!(lines[2].contains("20.0%"), "{lines:?}");
        assert!(lines[2].contains("12.50"), "average order value: {lines:?}");
        assert!(lines[1].ends_with("discounts"), "{lines:?}");
        assert!(
            lines[2].ends_with("15.00"),
            "the discounts of 20 uses: {lines:?}"
        );
        assert!(lines.iter().any(|l| l.trim_start().starts_with("holdout")));
        let lift = lines
            .iter()
            .find(|l| l.starts_with("redemption-rate lift"))
            .expect("lift");
        assert!(lift.contains("+11.1 pp (95% CI"), "{lift}");
        let day = lines.last().expect("a day");
        assert!(day.starts_with("2026-03-04"), "{lines:?}");
        assert!(day.contains("21.1%") && day.contains("10.0%"), "{day}");
        assert!(day.contains("+11.1 pp (95% CI"), "{day}");
    }

    #[test]
    fn json_is_the_apis_plus_days_and_lift() {
        let json = report_json(&report());
        assert_eq!(json["totals"]["assigned"], 100);
        assert_eq!(json["totals"]["selected"]["assigned"], 90);
        assert_eq!(json["totals"]["discountValue"], 15.0);
        assert!(json["lift"]["totals"]["ci95"].is_array());
        assert_eq!(json["redemptionsByDay"], json!([]));
        assert_eq!(json["armsByDay"][0]["day"], "2026-03-04");
        assert_eq!(json["armsByDay"][0]["holdout"]["assigned"], 10);
        assert!(json["armsByDay"][0]["lift"]["ci95"].is_array());
    }
}
