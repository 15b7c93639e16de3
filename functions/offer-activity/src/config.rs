//! The activity function's configuration, read once at init from the
//! environment that template.yaml gives it: the loyalty offers, the catalog
//! (for the offer JSON's names and images), the offer events and the
//! campaigns (their redemption budgets).

use offers_shared::config::{Env, SdkSettings, TableNames};
use offers_shared::error::ConfigError;
use offers_shared::metrics::Observability;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityConfig {
    /// The loyalty offers, the catalog, the offer events and the campaigns only.
    pub tables: TableNames,
    pub sdk: SdkSettings,
    /// Where metrics go (`OBSERVABILITY`), checked at init.
    pub observability: Observability,
    pub catalog_cache_ttl: Duration,
    /// How long the campaigns' redemption budgets are cached.
    pub campaign_cache_ttl: Duration,
    /// How long an event id is remembered for deduplication.
    pub event_retention: chrono::Duration,
}

impl ActivityConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            tables: env.activity_tables()?,
            sdk: env.sdk()?,
            observability: env.observability()?,
            catalog_cache_ttl: env.catalog_cache_ttl()?,
            campaign_cache_ttl: env.campaign_cache_ttl()?,
            event_retention: env.event_retention()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offers_shared::config::env_of;
    use offers_shared::error::StoreError;

    #[test]
    fn it_reads_its_tables_and_settings_and_fails_at_init_without_them() {
        let config = ActivityConfig::from_env(&env_of(&[
            ("LOYALTY_OFFERS_TABLE_NAME", "o"),
            ("OFFER_CATALOG_TABLE_NAME", "c"),
            ("OFFER_EVENTS_TABLE_NAME", "e"),
            ("CAMPAIGNS_TABLE_NAME", "k"),
            ("OFFER_EVENT_RETENTION_DAYS", "7"),
        ]))
        .expect("valid");
        assert_eq!(config.tables.offer_events(), Ok("e"));
        assert_eq!(config.tables.loyalty_offers(), Ok("o"));
        assert_eq!(
            config.tables.pending(),
            Err(StoreError::Unconfigured("pending"))
        );
        assert_eq!(config.tables.campaigns(), Ok("k"));
        assert_eq!(config.campaign_cache_ttl, Duration::from_secs(60));
        assert_eq!(config.event_retention, chrono::Duration::days(7));
        assert_eq!(
            ActivityConfig::from_env(&env_of(&[
                ("LOYALTY_OFFERS_TABLE_NAME", "o"),
                ("OFFER_CATALOG_TABLE_NAME", "c"),
            ])),
            Err(ConfigError::Missing("OFFER_EVENTS_TABLE_NAME"))
        );
        assert!(ActivityConfig::from_env(&env_of(&[
            ("LOYALTY_OFFERS_TABLE_NAME", "o"),
            ("OFFER_CATALOG_TABLE_NAME", "c"),
            ("OFFER_EVENTS_TABLE_NAME", "e"),
            ("CAMPAIGNS_TABLE_NAME", "k"),
            ("OFFER_EVENT_RETENTION_DAYS", "0"),
        ]))
        .is_err());
    }
}
