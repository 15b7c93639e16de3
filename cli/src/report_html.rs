//! The campaign report as one self-contained HTML page: the counts table,
//! the lift of selected over holdout, a funnel per offer (assigned, viewed,
//! clicked, redeemed) and the redemptions over time, as inline SVG drawn by
//! `plotters` (its SVG backend only: no script, no font file, no network).

use chrono::NaiveDate;
use offers_shared::domain::campaign_stats::{redemption_lift, CampaignReport, Counts};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The funnel's bars, top to bottom, and their colours.
pub const FUNNEL_STAGES: [&str; 4] = ["assigned", "viewed", "clicked", "redeemed"];
const STAGE_COLOURS: [RGBColor; 4] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0xd6, 0x27, 0x28),
];
/// The timeline shows at most this many days (the last ones).
const MAX_DAYS: usize = 366;

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn stage_values(counts: &Counts) -> [i64; 4] {
    [
        counts.assigned,
        counts.viewed,
        counts.clicked,
        counts.redeemed,
    ]
}

type ChartError = String;

fn chart_error(err: impl std::fmt::Display) -> ChartError {
    format!("drawing a chart: {err}")
}

/// One offer's funnel: a horizontal bar per stage, its count at its end.
pub fn funnel_svg(title: &str, counts: &Counts) -> Result<String, ChartError> {
    let values = stage_values(counts);
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (460, 200)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..max * 1.15, (0..4i32).into_segmented())
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(4)
            .y_label_formatter(&|value| match value {
                SegmentValue::CenterOf(row) if (0..4).contains(row) => {
                    FUNNEL_STAGES[(3 - row) as usize].to_owned()
                }
                _ => String::new(),
            })
            .x_labels(5)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .map_err(chart_error)?;
        chart
            .draw_series(values.iter().enumerate().map(|(stage, value)| {
                let row = 3 - stage as i32;
                let mut bar = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(row)),
                        (*value as f64, SegmentValue::Exact(row + 1)),
                    ],
                    STAGE_COLOURS[stage].filled(),
                );
                bar.set_margin(4, 4, 0, 0);
                bar
            }))
            .map_err(chart_error)?;
        chart
            .draw_series(values.iter().enumerate().map(|(stage, value)| {
                Text::new(
                    format!(" {value}"),
                    (*value as f64, SegmentValue::CenterOf(3 - stage as i32)),
                    ("sans-serif", 12),
                )
            }))
            .map_err(chart_error)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

/// Every day from the first to the last with redemptions (at most the last
/// [`MAX_DAYS`]), and each offer's redemptions on each.
fn timeline(report: &CampaignReport) -> (Vec<String>, BTreeMap<String, Vec<i64>>) {
    let dates: Vec<NaiveDate> = report
        .days
        .iter()
        .filter_map(|day| NaiveDate::parse_from_str(&day.day, "%Y-%m-%d").ok())
        .collect();
    let (Some(first), Some(last)) = (dates.iter().min(), dates.iter().max()) else {
        return (Vec::new(), BTreeMap::new());
    };
    let mut days: Vec<String> = first
        .iter_days()
        .take_while(|day| day <= last)
        .map(|day| day.format("%Y-%m-%d").to_string())
        .collect();
    if days.len() > MAX_DAYS {
        days.drain(..days.len() - MAX_DAYS);
    }
    let index: BTreeMap<&str, usize> = days
        .iter()
        .enumerate()
        .map(|(i, day)| (day.as_str(), i))
        .collect();
    let mut series: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for day in &report.days {
        if let Some(at) = index.get(day.day.as_str()) {
            let values = series
                .entry(day.offer_id.clone())
                .or_insert_with(|| vec![0; days.len()]);
            if let Some(slot) = values.get_mut(*at) {
                *slot = slot.saturating_add(day.redemptions);
            }
        }
    }
    (days, series)
}

/// Redemptions per day, one line per offer.
pub fn timeline_svg(report: &CampaignReport) -> Result<String, ChartError> {
    let (days, series) = timeline(report);
    let max = series.values().flatten().copied().max().unwrap_or(0).max(1) as f64;
    let count = days.len().max(1) as i32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Redemptions per day", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((0..count).into_segmented(), 0f64..max * 1.15)
            .map_err(chart_error)?;
        let label_of = |value: &SegmentValue<i32>| match value {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => usize::try_from(*i)
                .ok()
                .and_then(|i| days.get(i))
                .cloned()
                .unwrap_or_default(),
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .x_labels(days.len().clamp(1, 8))
            .x_label_formatter(&label_of)
            .y_labels(5)
            .y_label_formatter(&|y| format!("{y:.0}"))
            .y_desc("uses")
            .draw()
            .map_err(chart_error)?;
        for (index, (offer, values)) in series.iter().enumerate() {
            let colour = Palette99::pick(index).to_rgba();
            let points: Vec<(SegmentValue<i32>, f64)> = values
                .iter()
                .enumerate()
                .map(|(day, value)| (SegmentValue::CenterOf(day as i32), *value as f64))
                .collect();
            chart
                .draw_series(std::iter::once(PathElement::new(
                    points.clone(),
                    colour.stroke_width(2),
                )))
                .map_err(chart_error)?
                .label(offer.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|point| Circle::new(point, 3, colour.filled())),
                )
                .map_err(chart_error)?;
        }
        if !series.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(chart_error)?;
        }
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

fn counts_row(out: &mut String, label: &str, counts: &Counts) {
    let _ = write!(out, "<tr><th scope=\"row\">{}</th>", escape(label));
    for value in counts.numbers() {
        let _ = write!(out, "<td>{value}</td>");
    }
    let _ = write!(
        out,
        "<td>{}</td><td>{}</td></tr>",
        counts.order_value, counts.discount_value
    );
}

/// Each day's arms (the offers made that day) and the day's lift.
fn arms_by_day_table(page: &mut String, report: &CampaignReport) {
    page.push_str(
        "<h2>Arms by day the offers were made</h2>\n<table class=\"arms-by-day\"><thead><tr>\
         <th>day</th><th>selected</th><th>redeemed</th><th>holdout</th><th>redeemed</th>\
         <th>lift</th></tr></thead><tbody>",
    );
    for day in &report.arm_days {
        let lift = day
            .lift()
            .map_or_else(|| "-".to_owned(), |lift| lift.to_string());
        let _ = write!(
            page,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td></tr>",
            escape(&day.day),
            day.selected.assigned,
            day.selected.redeemed,
            day.holdout.assigned,
            day.holdout.redeemed,
            escape(&lift)
        );
    }
    page.push_str("</tbody></table>\n");
}

/// The whole page.
pub fn html_report(report: &CampaignReport) -> Result<String, ChartError> {
    let title = format!("Campaign {}", report.campaign_id);
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title><style>\
         body{{font-family:sans-serif;margin:2em;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:right}}\
         th[scope=row]{{text-align:left}}\
         .funnels{{display:flex;flex-wrap:wrap;gap:1em}}\
         figure{{margin:0}}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    page.push_str("<table><thead><tr><th>offer</th>");
    for name in offers_shared::domain::campaign_stats::COUNT_NAMES {
        let _ = write!(page, "<th>{name}</th>");
    }
    page.push_str("<th>orderValue</th><th>discountValue</th></tr></thead><tbody>");
    for offer in &report.offers {
        counts_row(&mut page, &offer.offer_id, &offer.all);
        if report.uses_selection {
            counts_row(&mut page, "selected", &offer.selected);
            counts_row(&mut page, "holdout", &offer.holdout);
        }
    }
    counts_row(&mut page, "total", &report.totals.all);
    page.push_str("</tbody></table>\n");
    if report.uses_selection {
        let text = match redemption_lift(&report.totals.selected, &report.totals.holdout) {
            Some(lift) => lift.to_string(),
            None => "not computable (an arm has no offer assigned)".to_owned(),
        };
        let _ = writeln!(
            page,
            "<p class=\"lift\">Redemption-rate lift of selected over holdout: {} \
             (Newcombe's hybrid score interval).</p>",
            escape(&text)
        );
    }
    if report.uses_selection && !report.arm_days.is_empty() {
        arms_by_day_table(&mut page, report);
    }
    page.push_str("<h2>Funnel per offer</h2>\n<div class=\"funnels\">\n");
    for offer in &report.offers {
        let _ = writeln!(
            page,
            "<figure class=\"funnel\" data-offer-id=\"{}\">{}</figure>",
            escape(&offer.offer_id),
            funnel_svg(&offer.offer_id, &offer.all)?
        );
    }
    if report.offers.is_empty() {
        page.push_str("<p>No offer of this campaign has been counted.</p>\n");
    }
    page.push_str("</div>\n<h2>Redemptions over time</h2>\n");
    let _ = write!(
        page,
        "<figure class=\"timeline\">{}</figure>\n</body></html>\n",
        timeline_svg(report)?
    );
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use offers_shared::domain::campaign_stats::{campaign_report, Arm, CounterKey};

    fn report() -> CampaignReport {
        let mut rows = Vec::new();
        for (offer, assigned) in [("co-a", 40), ("co-<b>", 25), ("co-c", 3)] {
            rows.push((
                CounterKey::Campaign {
                    campaign_id: "c1".into(),
                    offer_id: offer.into(),
                    arm: Arm::All,
                },
                Counts {
                    assigned,
                    viewed: assigned / 2,
                    clicked: assigned / 4,
                    redeemed: assigned / 8,
                    ..Counts::default()
                },
            ));
            for day in ["2026-03-01", "2026-03-04"] {
                rows.push((
                    CounterKey::Day {
                        campaign_id: "c1".into(),
                        offer_id: offer.into(),
                        day: day.into(),
                    },
                    Counts {
                        redemptions: 2,
                        ..Counts::default()
                    },
                ));
            }
        }
        campaign_report("c1", rows).expect("report")
    }

    /// The `<figure class="funnel" ...>` elements of a page: offer id and SVG.
    pub fn funnels(page: &str) -> Vec<(String, String)> {
        page.split("<figure class=\"funnel\" data-offer-id=\"")
            .skip(1)
            .filter_map(|rest| {
                let (id, rest) = rest.split_once("\">")?;
                let (svg, _) = rest.split_once("</figure>")?;
                Some((id.to_owned(), svg.to_owned()))
            })
            .collect()
    }

    /// Filled rectangles of a colour with a positive width, in an SVG.
    fn bars(svg: &str, colour: &RGBColor) -> usize {
        let fill = format!("fill=\"#{:02X}{:02X}{:02X}\"", colour.0, colour.1, colour.2);
        svg.split("<rect")
            .skip(1)
            .filter_map(|rect| rect.split_once("/>").map(|(attributes, _)| attributes))
            .filter(|attributes| attributes.contains(&fill))
            .filter(|attributes| {
                attributes
                    .split("width=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .and_then(|width| width.parse::<f64>().ok())
                    .is_some_and(|width| width > 0.0)
            })
            .count()
    }

    #[test]
    fn every_offer_has_its_funnel_with_a_bar_per_stage() {
        let page = html_report(&report()).expect("page");
        let found = funnels(&page);
        let ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            ids,
            ["co-&lt;b&gt;", "co-a", "co-c"],
            "escaped, every offer"
        );
        for (id, svg) in &found {
            assert!(svg.trim_start().starts_with("<svg"), "{id}: {svg}");
            // Every stage with a count has its bar; co-c redeemed nothing.
            let drawn: Vec<usize> = STAGE_COLOURS.iter().map(|c| bars(svg, c)).collect();
            assert_eq!(drawn[0], 1, "{id}: the assigned bar");
            assert_eq!(drawn[1], 1, "{id}: the viewed bar");
        }
        assert!(!page.contains("<script"), "no scripts");
        assert!(
            !page.contains(" src=") && !page.contains(" href="),
            "nothing fetched"
        );
        assert!(page.contains("<figure class=\"timeline\"><svg"));
        // The timeline spans the days between, with each offer's line.
        let timeline = page
            .split("<figure class=\"timeline\">")
            .nth(1)
            .expect("timeline");
        assert!(timeline.contains("2026-03-01") && timeline.contains("2026-03-04"));
        for id in ["co-a", "co-&lt;b&gt;", "co-c"] {
            assert!(
                timeline.contains(&format!(">\n{id}\n</text>")),
                "{id} in the legend"
            );
        }
    }

    #[test]
    fn with_selection_each_days_arms_and_lift_are_a_table() {
        let arm_counts = |arm, assigned, redeemed| {
            [
                (
                    CounterKey::Campaign {
                        campaign_id: "c1".into(),
                        offer_id: "co-a".into(),
                        arm,
                    },
                    Counts {
                        assigned,
                        redeemed,
                        ..Counts::default()
                    },
                ),
                (
                    CounterKey::ArmDay {
                        campaign_id: "c1".into(),
                        day: "2026-03-04".into(),
                        arm,
                    },
                    Counts {
                        assigned,
                        redeemed,
                        ..Counts::default()
                    },
                ),
            ]
        };
        let mut rows = arm_counts(Arm::Selected, 80, 20).to_vec();
        rows.extend(arm_counts(Arm::Holdout, 20, 1));
        let page = html_report(&campaign_report("c1", rows).expect("report")).expect("page");
        let table = page
            .split("<table class=\"arms-by-day\">")
            .nth(1)
            .expect("the arms by day");
        assert!(
            table.contains(
                "<th scope=\"row\">2026-03-04</th><td>80</td><td>20</td><td>20</td><td>1</td>"
            ),
            "{table}"
        );
        assert!(table.contains("+20.0 pp (95% CI"), "{table}");
        assert!(!html_report(&report())
            .expect("page")
            .contains("arms-by-day"));
    }

    #[test]
    fn an_empty_campaign_still_renders() {
        let page =
            html_report(&campaign_report("none", Vec::new()).expect("report")).expect("page");
        assert!(funnels(&page).is_empty());
        assert!(page.contains("No offer of this campaign"));
    }
}
