//! Metrics through one port, two adapters.
//!
//! A function builds a [`MetricSet`] (what happened, in its own words) and
//! hands it to its [`Metrics`] sink in one line: `metrics.emit(&set)`. Which
//! sink it has is decided at init from the environment ([`Observability`],
//! `OBSERVABILITY` in template.yaml):
//!
//! - `cloudwatch` ([`emf::EmfMetrics`]): one CloudWatch Embedded Metric
//!   Format line per set on stdout, which CloudWatch Logs turns into metrics;
//!   no API call on the hot path.
//! - `datadog` ([`dogstatsd::DogStatsdMetrics`]): DogStatsD distributions
//!   over UDP to the Datadog Lambda extension on 127.0.0.1:8125
//!   (`DD_DOGSTATSD_PORT` for tests), tagged with the function and the
//!   metric's own tags.
//!
//! Emitting never fails the function: a line that cannot be written or sent
//! is logged once per set and dropped.

pub mod challenge;
pub mod dispatch;
pub mod dogstatsd;
pub mod emf;
pub mod memory;
pub mod stats;

pub use challenge::challenge_metrics;
pub use dispatch::dispatch_metrics;
pub use stats::stats_metrics;

use crate::config::Env;
use crate::domain::CampaignId;
use crate::error::ConfigError;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// The CloudWatch namespace of the system's own metrics, and (in snake
/// case) the prefix of its Datadog metric names.
pub const NAMESPACE: &str = "PersonalizedOffers";
/// The prefix of the Datadog metric names (`personalized_offers.<name>`).
pub const DATADOG_PREFIX: &str = "personalized_offers";

/// The port: where a function's metrics go.
pub trait MetricsSink: Send + Sync {
    /// Emits one set. Never fails and never blocks on the network.
    fn emit(&self, set: &MetricSet);
}

/// The sink a function was given at init.
pub type Metrics = Arc<dyn MetricsSink>;

/// The unit of a metric (CloudWatch's names; Datadog metrics carry the unit
/// in their metadata, not in the line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Percent,
}

impl Unit {
    pub fn cloudwatch_name(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Percent => "Percent",
        }
    }
}

/// A metric's values: one (a count for the set, written as a number) or
/// one per observation (written as a list, so that both backends give
/// percentiles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Values {
    One(u64),
    Many(Vec<u64>),
}

/// A Datadog tag. The key is fixed in code and the value must come from a
/// bounded set (an outcome, a reason code, a failure kind, a campaign id
/// only where campaigns are few): every distinct value is a custom metric
/// series that Datadog bills. Never a user id, an offer id or an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: &'static str,
    pub value: String,
}

impl Tag {
    pub fn new(key: &'static str, value: impl Into<String>) -> Self {
        Self {
            key,
            value: value.into(),
        }
    }
}

/// One metric of a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    /// The CloudWatch metric name (`Rejected`): a key of the EMF line, with
    /// the function as its one dimension. Metrics of a set that share it are
    /// one CloudWatch metric: counts are added, lists joined.
    pub name: &'static str,
    /// The Datadog name under [`DATADOG_PREFIX`] (`dispatch.records`).
    pub datadog_name: &'static str,
    pub unit: Unit,
    pub values: Values,
    /// Datadog tags beyond `function` (CloudWatch keeps the function as the
    /// only dimension: its cost grows with each combination).
    pub tags: Vec<Tag>,
}

/// What a function emits at once (a batch, a request), at one time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricSet {
    pub at: DateTime<Utc>,
    pub metrics: Vec<Metric>,
}

impl MetricSet {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self {
            at,
            metrics: Vec::new(),
        }
    }

    /// Adds a count (`name` in CloudWatch, `datadog_name` with `tags` in Datadog).
    pub fn count(
        &mut self,
        name: &'static str,
        datadog_name: &'static str,
        count: u64,
        tags: Vec<Tag>,
    ) -> &mut Self {
        self.metrics.push(Metric {
            name,
            datadog_name,
            unit: Unit::Count,
            values: Values::One(count),
            tags,
        });
        self
    }

    /// Adds one value per observation, in milliseconds; nothing when there
    /// is none (EMF requires a value for every declared metric).
    pub fn milliseconds(
        &mut self,
        name: &'static str,
        datadog_name: &'static str,
        values: Vec<u64>,
        tags: Vec<Tag>,
    ) -> &mut Self {
        self.observations(name, datadog_name, Unit::Milliseconds, values, tags)
    }

    /// One value per observation in `unit`; nothing when there is none.
    fn observations(
        &mut self,
        name: &'static str,
        datadog_name: &'static str,
        unit: Unit,
        values: Vec<u64>,
        tags: Vec<Tag>,
    ) -> &mut Self {
        if !values.is_empty() {
            self.metrics.push(Metric {
                name,
                datadog_name,
                unit,
                values: Values::Many(values),
                tags,
            });
        }
        self
    }
}

impl MetricSet {
    /// Adds one percentage per observation (a budget's use); nothing when
    /// there is none.
    pub fn percents(
        &mut self,
        name: &'static str,
        datadog_name: &'static str,
        values: Vec<u64>,
        tags: Vec<Tag>,
    ) -> &mut Self {
        self.observations(name, datadog_name, Unit::Percent, values, tags)
    }
}

/// The metric of a budget's use, in percent of its limit: the alarm
/// (`BudgetNearlyUsedAlarm`) and the Datadog monitor fire above 90.
pub const BUDGET_USED_METRIC: &str = "BudgetUsedPercent";
/// Its Datadog name, tagged `campaign_id` and `budget` (`offers`, ...).
pub const BUDGET_USED_DATADOG: &str = "budget.used_percent";

/// Adds the use of each budget in `budgets` (campaign id, percent).
pub fn budget_use(set: &mut MetricSet, budget: &'static str, budgets: &[(CampaignId, u64)]) {
    for (campaign_id, percent) in budgets {
        set.percents(
            BUDGET_USED_METRIC,
            BUDGET_USED_DATADOG,
            vec![*percent],
            vec![
                Tag::new("campaign_id", campaign_id.to_string()),
                Tag::new("budget", budget),
            ],
        );
    }
}

/// Where the metrics go, read at init from `OBSERVABILITY` (template.yaml's
/// `Observability` parameter); unset means `cloudwatch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observability {
    CloudWatch,
    /// DogStatsD to the Datadog extension on 127.0.0.1 at this port
    /// (`DD_DOGSTATSD_PORT`, default 8125).
    Datadog {
        dogstatsd_port: u16,
    },
}

pub const OBSERVABILITY_VARIABLE: &str = "OBSERVABILITY";
pub const DOGSTATSD_PORT_VARIABLE: &str = "DD_DOGSTATSD_PORT";
/// The port the Datadog Lambda extension listens on for DogStatsD.
pub const DEFAULT_DOGSTATSD_PORT: u16 = 8125;
/// Lambda's variable for the function's name, the `function` of every metric.
pub const FUNCTION_NAME_VARIABLE: &str = "AWS_LAMBDA_FUNCTION_NAME";

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// Which metrics adapter the function uses; an unknown value stops it at init.
    pub fn observability(&self) -> Result<Observability, ConfigError> {
        let value = (self.0)(OBSERVABILITY_VARIABLE).unwrap_or_default();
        match value.trim() {
            "" | "cloudwatch" => Ok(Observability::CloudWatch),
            "datadog" => {
                let port = self.number_or(
                    DOGSTATSD_PORT_VARIABLE,
                    DEFAULT_DOGSTATSD_PORT.into(),
                    1..=u64::from(u16::MAX),
                )?;
                Ok(Observability::Datadog {
                    dogstatsd_port: u16::try_from(port).unwrap_or(DEFAULT_DOGSTATSD_PORT),
                })
            }
            _ => Err(ConfigError::Invalid {
                name: OBSERVABILITY_VARIABLE,
                value,
                expected: "cloudwatch or datadog",
            }),
        }
    }
}

impl Observability {
    /// The sink for `function_name` (Lambda's `AWS_LAMBDA_FUNCTION_NAME`).
    /// For Datadog this binds a local UDP socket, non-blocking: failing that
    /// fails init.
    pub fn sink(&self, function_name: &str) -> std::io::Result<Metrics> {
        Ok(match self {
            Observability::CloudWatch => Arc::new(emf::EmfMetrics::stdout(function_name)),
            Observability::Datadog { dogstatsd_port } => Arc::new(
                dogstatsd::DogStatsdMetrics::udp(function_name, *dogstatsd_port)?,
            ),
        })
    }

    /// The sink of the function running in this process, named by Lambda's
    /// environment (main.rs: `config.observability.sink_from_env()?`).
    pub fn sink_from_env(&self) -> std::io::Result<Metrics> {
        let name = std::env::var(FUNCTION_NAME_VARIABLE).unwrap_or_default();
        self.sink(&name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env_of;

    #[test]
    fn the_adapter_is_chosen_at_init_and_an_unknown_one_is_refused() {
        assert_eq!(env_of(&[]).observability(), Ok(Observability::CloudWatch));
        assert_eq!(
            env_of(&[("OBSERVABILITY", "cloudwatch")]).observability(),
            Ok(Observability::CloudWatch)
        );
        assert_eq!(
            env_of(&[("OBSERVABILITY", "datadog")]).observability(),
            Ok(Observability::Datadog {
                dogstatsd_port: 8125
            })
        );
        assert_eq!(
            env_of(&[("OBSERVABILITY", "datadog"), ("DD_DOGSTATSD_PORT", "9125")]).observability(),
            Ok(Observability::Datadog {
                dogstatsd_port: 9125
            })
        );
        assert!(matches!(
            env_of(&[("OBSERVABILITY", "Datadog ")]).observability(),
            Err(ConfigError::Invalid {
                name: "OBSERVABILITY",
                ..
            })
        ));
        assert!(matches!(
            env_of(&[("OBSERVABILITY", "datadog"), ("DD_DOGSTATSD_PORT", "70000")]).observability(),
            Err(ConfigError::Invalid {
                name: "DD_DOGSTATSD_PORT",
                ..
            })
        ));
    }

    #[test]
    fn a_set_without_observations_declares_no_lag() {
        let mut set = MetricSet::new(Utc::now());
        set.count("A", "a", 0, vec![])
            .milliseconds("Lag", "lag", vec![], vec![]);
        assert_eq!(set.metrics.len(), 1);
    }
}
