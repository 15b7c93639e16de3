//! The offer lookup's configuration, read once at init from the environment that
//! template.yaml gives it: the loyalty offers and the catalog, no other table.

use offers_shared::config::{Env, SdkSettings, TableNames};
use offers_shared::error::ConfigError;
use offers_shared::metrics::Observability;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupConfig {
    /// The loyalty offers and the catalog only: any other table is refused.
    pub tables: TableNames,
    pub sdk: SdkSettings,
    /// How long a config offer's name, description and image stay cached in
    /// a warm process.
    pub catalog_cache_ttl: Duration,
    /// Where its metrics would go (`OBSERVABILITY`), checked at init like
    /// every function's; it emits none today.
    pub observability: Observability,
}

impl LookupConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            tables: env.api_tables()?,
            sdk: env.sdk()?,
            catalog_cache_ttl: env.catalog_cache_ttl()?,
            observability: env.observability()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offers_shared::config::env_of;

    #[test]
    fn it_reads_its_tables_and_settings_and_fails_at_init_without_them() {
        let config = LookupConfig::from_env(&env_of(&[
            ("LOYALTY_OFFERS_TABLE_NAME", "o"),
            ("OFFER_CATALOG_TABLE_NAME", "c"),
            ("CATALOG_CACHE_TTL_SECONDS", "30"),
        ]))
        .expect("valid");
        assert_eq!(config.tables.loyalty_offers(), Ok("o"));
        assert_eq!(config.catalog_cache_ttl, Duration::from_secs(30));
        assert_eq!(
            LookupConfig::from_env(&env_of(&[("OFFER_CATALOG_TABLE_NAME", "c")])),
            Err(ConfigError::Missing("LOYALTY_OFFERS_TABLE_NAME"))
        );
    }
}
