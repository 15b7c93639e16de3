//! The dispatcher's configuration, read once at init from the environment
//! that template.yaml gives it.

use offers_shared::config::{Env, SdkSettings, TableNames};
use offers_shared::dynamo::Adapter;
use offers_shared::error::ConfigError;
use offers_shared::metrics::Observability;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatcherConfig {
    /// Pending (deleted), offers and rejections (written, each checked
    /// against the other), catalog (read), campaigns (offers budgets).
    pub tables: TableNames,
    pub sdk: SdkSettings,
    /// How long a config offer or template stays cached in a warm process.
    pub catalog_cache_ttl: Duration,
    /// How long the list of campaigns with offers budgets is cached.
    pub campaign_cache_ttl: Duration,
    /// How many pending-row keys are dispatched at once.
    pub concurrency: usize,
    /// Time kept in hand before the invocation deadline: records not started
    /// by then are reported as failed so that Lambda retries them.
    pub deadline_margin: Duration,
    /// How long an offer record is kept after it expires (its `ttl`).
    pub retention: chrono::Duration,
    /// Where the batch metrics go (`OBSERVABILITY`: EMF or DogStatsD).
    pub observability: Observability,
}

impl DispatcherConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            tables: env.tables_for(&[
                Adapter::Dispatch,
                Adapter::Catalog,
                Adapter::OffersBudgets,
            ])?,
            sdk: env.sdk()?,
            catalog_cache_ttl: env.catalog_cache_ttl()?,
            campaign_cache_ttl: env.campaign_cache_ttl()?,
            concurrency: usize::try_from(env.number_or("DISPATCH_CONCURRENCY", 16, 1..=256)?)
                .unwrap_or(16),
            deadline_margin: Duration::from_millis(env.number_or(
                "DEADLINE_MARGIN_MS",
                2_000,
                0..=60_000,
            )?),
            retention: env.retention()?,
            observability: env.observability()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offers_shared::config::env_of;

    const TABLES: [(&str, &str); 5] = [
        ("PENDING_TABLE_NAME", "p"),
        ("LOYALTY_OFFERS_TABLE_NAME", "o"),
        ("OFFER_CATALOG_TABLE_NAME", "c"),
        ("CAMPAIGNS_TABLE_NAME", "k"),
        ("REJECTED_TABLE_NAME", "r"),
    ];

    #[test]
    fn defaults_apply_when_only_tables_are_set() {
        let config = DispatcherConfig::from_env(&env_of(&TABLES)).expect("valid");
        assert_eq!(config.tables.loyalty_offers(), Ok("o"));
        assert_eq!(config.tables.rejected(), Ok("r"));
        assert_eq!(config.tables.campaigns(), Ok("k"));
        assert_eq!(config.campaign_cache_ttl, Duration::from_secs(60));
        assert_eq!(config.concurrency, 16);
        assert_eq!(config.sdk, SdkSettings::default());
        assert_eq!(config.catalog_cache_ttl, Duration::from_secs(60));
        assert_eq!(config.observability, Observability::CloudWatch);
    }

    #[test]
    fn missing_table_and_bad_numbers_fail_at_init() {
        assert_eq!(
            DispatcherConfig::from_env(&env_of(&TABLES[..4])).unwrap_err(),
            ConfigError::Missing("REJECTED_TABLE_NAME")
        );
        let mut pairs = TABLES.to_vec();
        pairs.push(("DISPATCH_CONCURRENCY", "lots"));
        assert!(matches!(
            DispatcherConfig::from_env(&env_of(&pairs)),
            Err(ConfigError::Invalid {
                name: "DISPATCH_CONCURRENCY",
                ..
            })
        ));
        let mut pairs = TABLES.to_vec();
        pairs.push(("OBSERVABILITY", "newrelic"));
        assert!(matches!(
            DispatcherConfig::from_env(&env_of(&pairs)),
            Err(ConfigError::Invalid {
                name: "OBSERVABILITY",
                ..
            })
        ));
    }
}
