//! The webhook's configuration, read once at init from the environment that
//! template.yaml gives it: the pending table, the catalog, its deliveries
//! table, and the ARN of its signing secret (never the secret itself).

use offers_shared::config::{Env, SdkSettings, TableNames};
use offers_shared::dynamo::Adapter;
use offers_shared::error::ConfigError;
use offers_shared::metrics::Observability;
use offers_shared::webhook::WebhookSettings;
use std::time::Duration;

/// The variable holding the signing secret's ARN (template parameter
/// `WebhookSigningSecretArn`).
pub const SIGNING_SECRET_ARN_VARIABLE: &str = "WEBHOOK_SIGNING_SECRET_ARN";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Pending, catalog and webhook deliveries only.
    pub tables: TableNames,
    pub sdk: SdkSettings,
    /// Where metrics go (`OBSERVABILITY`), checked at init.
    pub observability: Observability,
    pub catalog_cache_ttl: Duration,
    pub webhook: WebhookSettings,
    pub signing_secret_arn: String,
}

impl WebhookConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let defaults = WebhookSettings::default();
        Ok(Self {
            tables: env.tables_for(&[Adapter::Webhook, Adapter::Catalog])?,
            sdk: env.sdk()?,
            observability: env.observability()?,
            catalog_cache_ttl: env.catalog_cache_ttl()?,
            webhook: WebhookSettings {
                lease: chrono::Duration::seconds(env.number_or(
                    "WEBHOOK_LEASE_SECONDS",
                    60,
                    10..=3_600,
                )? as i64),
                wait_for_holder: Duration::from_millis(env.number_or(
                    "WEBHOOK_WAIT_FOR_HOLDER_MS",
                    defaults.wait_for_holder.as_millis() as u64,
                    0..=20_000,
                )?),
                retention: chrono::Duration::days(env.number_or(
                    "WEBHOOK_DELIVERY_RETENTION_DAYS",
                    7,
                    1..=365,
                )? as i64),
                offer_retention: env.retention()?,
                ..defaults
            },
            signing_secret_arn: env.required(SIGNING_SECRET_ARN_VARIABLE)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offers_shared::config::env_of;
    use offers_shared::error::StoreError;

    #[test]
    fn it_reads_its_tables_settings_and_the_secrets_arn_and_fails_without_them() {
        let env = [
            ("PENDING_TABLE_NAME", "p"),
            ("OFFER_CATALOG_TABLE_NAME", "c"),
            ("WEBHOOK_DELIVERIES_TABLE_NAME", "d"),
            ("LOYALTY_OFFERS_TABLE_NAME", "o"),
            (
                "WEBHOOK_SIGNING_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:000000000000:secret:x",
            ),
            ("WEBHOOK_LEASE_SECONDS", "90"),
        ];
        let config = WebhookConfig::from_env(&env_of(&env)).expect("valid");
        assert_eq!(config.tables.pending(), Ok("p"));
        assert_eq!(config.tables.webhook_deliveries(), Ok("d"));
        assert_eq!(
            config.tables.loyalty_offers(),
            Err(StoreError::Unconfigured("loyalty offers")),
            "not a table it writes"
        );
        assert_eq!(config.webhook.lease, chrono::Duration::seconds(90));
        assert!(config.signing_secret_arn.starts_with("arn:"));
        assert_eq!(
            WebhookConfig::from_env(&env_of(&env[..4])),
            Err(ConfigError::Missing("WEBHOOK_SIGNING_SECRET_ARN"))
        );
        assert_eq!(
            WebhookConfig::from_env(&env_of(&env[1..])),
            Err(ConfigError::Missing("PENDING_TABLE_NAME"))
        );
    }
}
