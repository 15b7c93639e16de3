//! The statistics function's configuration, read once at init from the
//! environment that template.yaml gives it: the statistics table, and the
//! campaigns table whose budgets it reads for their metric (the offers come
//! in the stream's images).

use offers_shared::campaign_stats::StatsSettings;
use offers_shared::config::{Env, SdkSettings, TableNames};
use offers_shared::dynamo::Adapter;
use offers_shared::error::ConfigError;
use offers_shared::metrics::Observability;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsConfig {
    pub tables: TableNames,
    pub sdk: SdkSettings,
    /// Where metrics go (`OBSERVABILITY`), checked at init.
    pub observability: Observability,
    pub settings: StatsSettings,
}

impl StatsConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let defaults = StatsSettings::default();
        Ok(Self {
            tables: env.tables_for(&[Adapter::CampaignStats, Adapter::CampaignBudgets])?,
            sdk: env.sdk()?,
            observability: env.observability()?,
            settings: StatsSettings {
                conflict_attempts: env.number_or(
                    "STATS_CONFLICT_ATTEMPTS",
                    defaults.conflict_attempts.into(),
                    1..=20,
                )? as u32,
                backoff: Duration::from_millis(env.number_or(
                    "STATS_CONFLICT_BACKOFF_MS",
                    defaults.backoff.as_millis() as u64,
                    1..=1_000,
                )?),
                deadline_margin: Duration::from_millis(env.number_or(
                    "DEADLINE_MARGIN_MS",
                    defaults.deadline_margin.as_millis() as u64,
                    0..=60_000,
                )?),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offers_shared::config::env_of;

    #[test]
    fn it_needs_its_tables_and_bounds_its_settings() {
        let config = StatsConfig::from_env(&env_of(&[
            ("CAMPAIGN_STATS_TABLE", "s"),
            ("CAMPAIGNS_TABLE_NAME", "c"),
        ]))
        .expect("valid");
        assert_eq!(config.tables.campaign_stats(), Ok("s"));
        assert_eq!(config.tables.campaigns(), Ok("c"));
        assert!(config.tables.loyalty_offers().is_err());
        assert_eq!(config.settings, StatsSettings::default());
        assert_eq!(
            StatsConfig::from_env(&env_of(&[])),
            Err(ConfigError::Missing("CAMPAIGN_STATS_TABLE"))
        );
        assert_eq!(
            StatsConfig::from_env(&env_of(&[("CAMPAIGN_STATS_TABLE", "s")])),
            Err(ConfigError::Missing("CAMPAIGNS_TABLE_NAME")),
            "the budgets' table is needed at init"
        );
        assert!(StatsConfig::from_env(&env_of(&[
            ("CAMPAIGN_STATS_TABLE", "s"),
            ("CAMPAIGNS_TABLE_NAME", "c"),
            ("STATS_CONFLICT_ATTEMPTS", "0")
        ]))
        .is_err());
    }
}
