//! The CloudWatch adapter: a set is one Embedded Metric Format line on
//! stdout, which CloudWatch Logs turns into metrics (namespace
//! `PersonalizedOffers`, dimension `FunctionName`).

use super::{MetricSet, MetricsSink, Unit, Values, NAMESPACE};
use serde_json::{json, Map, Value};
use std::io::Write;

/// EMF takes at most 100 values of one metric in one line.
pub const MAX_VALUES: usize = 100;

/// Writes each set as one EMF line to stdout.
#[derive(Debug, Clone)]
pub struct EmfMetrics {
    function_name: String,
}

impl EmfMetrics {
    pub fn stdout(function_name: &str) -> Self {
        Self {
            function_name: function_name.to_owned(),
        }
    }
}

impl MetricsSink for EmfMetrics {
    fn emit(&self, set: &MetricSet) {
        let line = emf_line(&self.function_name, set);
        // A closed stdout must not fail (or panic) the function.
        if let Err(error) = writeln!(std::io::stdout().lock(), "{line}") {
            tracing::warn!(error = %error, "metrics line not written");
        }
    }
}

/// A set as one EMF line: `_aws.Timestamp` (ms), one `CloudWatchMetrics`
/// directive with the namespace, the dimension set `[["FunctionName"]]` and
/// each metric's name and unit, then the dimension's and the metrics' values
/// at the root. Metrics of the set with the same name are one CloudWatch
/// metric (counts added, lists joined, at most [`MAX_VALUES`]); Datadog tags
/// are not dimensions here.
pub fn emf_line(function_name: &str, set: &MetricSet) -> Value {
    let mut merged: Vec<(&str, Unit, Values)> = Vec::new();
    for metric in &set.metrics {
        match merged.iter_mut().find(|(name, _, _)| *name == metric.name) {
            Some((_, _, values)) => *values = join(values, &metric.values),
            None => merged.push((metric.name, metric.unit, metric.values.clone())),
        }
    }
    let mut line = Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": set.at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": merged.iter()
                    .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.cloudwatch_name()}))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    line.insert("FunctionName".into(), json!(function_name));
    for (name, _, values) in merged {
        let value = match values {
            Values::One(count) => json!(count),
            Values::Many(mut list) => {
                list.truncate(MAX_VALUES);
                json!(list)
            }
        };
        line.insert(name.into(), value);
    }
    Value::Object(line)
}

fn join(left: &Values, right: &Values) -> Values {
    match (left, right) {
        (Values::One(a), Values::One(b)) => Values::One(a.saturating_add(*b)),
        (Values::One(a), Values::Many(list)) | (Values::Many(list), Values::One(a)) => {
            Values::One(a.saturating_add(list.iter().fold(0, |sum, v| sum.saturating_add(*v))))
        }
        (Values::Many(a), Values::Many(b)) => Values::Many(a.iter().chain(b).copied().collect()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::metrics::Tag;
    use chrono::{TimeZone, Utc};

    /// The EMF specification's required fields: `_aws.Timestamp` (ms),
    /// `_aws.CloudWatchMetrics[]` each with `Namespace`, `Dimensions` (a list
    /// of lists of names, each name a root member), `Metrics[]` each with
    /// `Name` (a root member, a number or a list of at most 100 numbers) and
    /// an optional standard `Unit`.
    pub(crate) fn assert_emf(line: &Value) {
        let aws = &line["_aws"];
        assert!(aws["Timestamp"].is_i64(), "_aws.Timestamp: {line}");
        let directives = aws["CloudWatchMetrics"].as_array().expect("directives");
        assert!(!directives.is_empty());
        for directive in directives {
            assert!(directive["Namespace"]
                .as_str()
                .is_some_and(|n| !n.is_empty()));
            for set in directive["Dimensions"].as_array().expect("dimensions") {
                let names = set.as_array().expect("a dimension set");
                assert!(names.len() <= 30);
                for name in names {
                    let name = name.as_str().expect("a dimension name");
                    assert!(line[name].is_string(), "dimension {name} at the root");
                }
            }
            for metric in directive["Metrics"].as_array().expect("metrics") {
                let name = metric["Name"].as_str().expect("Name");
                let value = &line[name];
                let numbers = match value {
                    Value::Array(list) => {
                        assert!(list.len() <= MAX_VALUES, "{name}");
                        list.iter().all(Value::is_number)
                    }
                    other => other.is_number(),
                };
                assert!(numbers, "{name} has a numeric value at the root");
                if let Some(unit) = metric.get("Unit") {
                    assert!(
                        ["Count", "Milliseconds", "Percent"].contains(&unit.as_str().unwrap_or(""))
                    );
                }
            }
        }
    }

    #[test]
    fn a_set_is_one_line_with_the_required_fields_and_the_golden_values() {
        let at = Utc.timestamp_millis_opt(1_767_225_602_000).unwrap();
        let mut set = MetricSet::new(at);
        set.count("Dispatched", "dispatch.records", 2, vec![])
            .count(
                "Rejected",
                "dispatch.records",
                1,
                vec![Tag::new("reason_code", "expired")],
            )
            .count(
                "Rejected",
                "dispatch.records",
                3,
                vec![Tag::new("reason_code", "unknown_offer")],
            )
            .milliseconds("DispatchLag", "dispatch.lag", vec![2000, 500], vec![]);
        let line = emf_line("dispatcher", &set);
        assert_emf(&line);
        assert_eq!(
            line,
            json!({
                "_aws": {
                    "Timestamp": 1_767_225_602_000_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "PersonalizedOffers",
                        "Dimensions": [["FunctionName"]],
                        "Metrics": [
                            {"Name": "Dispatched", "Unit": "Count"},
                            {"Name": "Rejected", "Unit": "Count"},
                            {"Name": "DispatchLag", "Unit": "Milliseconds"}
                        ]
                    }]
                },
                "FunctionName": "dispatcher",
                "Dispatched": 2,
                "Rejected": 4,
                "DispatchLag": [2000, 500]
            })
        );
    }

    #[test]
    fn at_most_a_hundred_values_of_a_metric() {
        let mut set = MetricSet::new(Utc::now());
        set.milliseconds("Lag", "lag", (0..250).collect(), vec![]);
        let line = emf_line("f", &set);
        assert_emf(&line);
        assert_eq!(line["Lag"].as_array().map(Vec::len), Some(100));
    }
}
