//! The support tool's configuration, read once at init from the environment that
//! template.yaml gives it: the loyalty offers, the catalog, the campaign
//! statistics and the user profiles (read) and the campaigns (their
//! budgets), no other table.

use offers_shared::config::{Env, SdkSettings, TableNames, USER_PROFILES_TABLE_VARIABLE};
use offers_shared::dynamo::Adapter;
use offers_shared::error::ConfigError;
use offers_shared::metrics::Observability;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportConfig {
    /// The loyalty offers, the catalog, the statistics and the campaigns:
    /// any other is refused.
    pub tables: TableNames,
    /// `UserProfilesTable` (read by key).
    pub profiles_table: String,
    pub sdk: SdkSettings,
    /// How long a config offer's name, description and image stay cached in
    /// a warm process.
    pub catalog_cache_ttl: Duration,
    /// Where its metrics would go (`OBSERVABILITY`), checked at init like
    /// every function's; it emits none today.
    pub observability: Observability,
    /// How long an offer record is kept after it expires (its `ttl`).
    pub retention: chrono::Duration,
}

impl SupportConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            tables: env.tables_for(&[
                Adapter::Support,
                Adapter::OfferReader,
                Adapter::Catalog,
                Adapter::CampaignStats,
            ])?,
            profiles_table: env.table(USER_PROFILES_TABLE_VARIABLE)?,
            sdk: env.sdk()?,
            catalog_cache_ttl: env.catalog_cache_ttl()?,
            observability: env.observability()?,
            retention: env.retention()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offers_shared::config::env_of;

    #[test]
    fn it_reads_its_tables_and_settings_and_fails_at_init_without_them() {
        let config = SupportConfig::from_env(&env_of(&[
            ("LOYALTY_OFFERS_TABLE_NAME", "o"),
            ("OFFER_CATALOG_TABLE_NAME", "c"),
            ("CAMPAIGN_STATS_TABLE", "s"),
            ("CAMPAIGNS_TABLE_NAME", "k"),
            ("USER_PROFILES_TABLE_NAME", "p"),
            ("CATALOG_CACHE_TTL_SECONDS", "30"),
            ("OFFER_RETENTION_DAYS", "30"),
        ]))
        .expect("valid");
        assert_eq!(config.tables.loyalty_offers(), Ok("o"));
        assert_eq!(config.tables.campaign_stats(), Ok("s"));
        assert_eq!(config.tables.campaigns(), Ok("k"));
        assert_eq!(config.profiles_table, "p");
        assert_eq!(config.catalog_cache_ttl, Duration::from_secs(30));
        assert_eq!(config.retention, chrono::Duration::days(30));
        assert_eq!(
            SupportConfig::from_env(&env_of(&[("OFFER_CATALOG_TABLE_NAME", "c")])),
            Err(ConfigError::Missing("LOYALTY_OFFERS_TABLE_NAME"))
        );
    }
}
