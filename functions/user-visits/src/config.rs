//! The user visits function's configuration, read once at init from the
//! environment that template.yaml gives it.

use offers_shared::config::{
    Env, SdkSettings, CAMPAIGNS_TABLE_VARIABLE, CAMPAIGN_STATS_TABLE_VARIABLE,
    CATALOG_TABLE_VARIABLE, LOYALTY_OFFERS_TABLE_VARIABLE, PENDING_TABLE_VARIABLE,
    USER_PROFILES_TABLE_VARIABLE,
};
use offers_shared::error::ConfigError;
use offers_shared::metrics::Observability;
use offers_shared::stream::runner::RunnerSettings;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitsConfig {
    /// `UserProfilesTable`: the profiles it counts visits in.
    pub profiles_table: String,
    /// The always-on chooser's tables: definitions, learning statistics,
    /// the pool's catalog entries, the users' offers and pending rows.
    pub campaigns_table: String,
    pub stats_table: String,
    pub catalog_table: String,
    pub offers_table: String,
    pub pending_table: String,
    /// How long the chooser keeps campaign definitions and statistics
    /// (`ALWAYS_ON_CACHE_SECONDS`, 0 to 60: the statistics a choice uses
    /// are at most this old).
    pub cache_ttl: Duration,
    pub sdk: SdkSettings,
    /// Where metrics go (`OBSERVABILITY`), checked at init.
    pub observability: Observability,
    /// How many users' transactions are handled at once (`VISITS_CONCURRENCY`)
    /// and the time kept in hand before the deadline.
    pub runner: RunnerSettings,
}

impl VisitsConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            profiles_table: env.table(USER_PROFILES_TABLE_VARIABLE)?,
            campaigns_table: env.table(CAMPAIGNS_TABLE_VARIABLE)?,
            stats_table: env.table(CAMPAIGN_STATS_TABLE_VARIABLE)?,
            catalog_table: env.table(CATALOG_TABLE_VARIABLE)?,
            offers_table: env.table(LOYALTY_OFFERS_TABLE_VARIABLE)?,
            pending_table: env.table(PENDING_TABLE_VARIABLE)?,
            cache_ttl: Duration::from_secs(env.number_or("ALWAYS_ON_CACHE_SECONDS", 30, 0..=60)?),
            sdk: env.sdk()?,
            observability: env.observability()?,
            runner: env.runner_settings("VISITS_CONCURRENCY")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offers_shared::config::env_of;

    const TABLES: [(&str, &str); 6] = [
        ("USER_PROFILES_TABLE_NAME", "p"),
        ("CAMPAIGNS_TABLE_NAME", "c"),
        ("CAMPAIGN_STATS_TABLE", "s"),
        ("OFFER_CATALOG_TABLE_NAME", "o"),
        ("LOYALTY_OFFERS_TABLE_NAME", "l"),
        ("PENDING_TABLE_NAME", "q"),
    ];

    #[test]
    fn its_tables_and_defaults_and_failures_at_init() {
        let config = VisitsConfig::from_env(&env_of(&TABLES)).expect("valid");
        assert_eq!(config.profiles_table, "p");
        assert_eq!(config.campaigns_table, "c");
        assert_eq!(config.stats_table, "s");
        assert_eq!(config.catalog_table, "o");
        assert_eq!(config.offers_table, "l");
        assert_eq!(config.pending_table, "q");
        assert_eq!(config.cache_ttl, Duration::from_secs(30));
        assert_eq!(config.runner.concurrency, 16);
        assert_eq!(config.runner.deadline_margin, Duration::from_millis(2_000));
        assert_eq!(
            VisitsConfig::from_env(&env_of(&[])),
            Err(ConfigError::Missing("USER_PROFILES_TABLE_NAME"))
        );
        assert_eq!(
            VisitsConfig::from_env(&env_of(&TABLES[..5])),
            Err(ConfigError::Missing("PENDING_TABLE_NAME"))
        );
        let mut stale = TABLES.to_vec();
        stale.push(("ALWAYS_ON_CACHE_SECONDS", "61"));
        assert!(VisitsConfig::from_env(&env_of(&stale)).is_err());
        let mut zero = TABLES.to_vec();
        zero.push(("VISITS_CONCURRENCY", "0"));
        assert!(matches!(
            VisitsConfig::from_env(&env_of(&zero)),
            Err(ConfigError::Invalid {
                name: "VISITS_CONCURRENCY",
                ..
            })
        ));
    }
}
