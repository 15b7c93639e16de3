//! The challenge progress function's configuration, read once at init from
//! the environment that template.yaml gives it.

use offers_shared::config::{Env, SdkSettings, TableNames};
use offers_shared::dynamo::Adapter;
use offers_shared::error::ConfigError;
use offers_shared::metrics::Observability;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressConfig {
    /// The offers (challenges read and advanced) and the rejected table
    /// (invalid transactions); no other.
    pub tables: TableNames,
    pub sdk: SdkSettings,
    /// Where metrics go (`OBSERVABILITY`), checked at init.
    pub observability: Observability,
    /// How many users' transactions are handled at once.
    pub concurrency: usize,
    /// Time kept in hand before the invocation deadline.
    pub deadline_margin: Duration,
}

impl ProgressConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let runner = env.runner_settings("PROGRESS_CONCURRENCY")?;
        Ok(Self {
            tables: env.tables_for(&[Adapter::Challenges])?,
            sdk: env.sdk()?,
            observability: env.observability()?,
            concurrency: runner.concurrency,
            deadline_margin: runner.deadline_margin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offers_shared::config::env_of;
    use offers_shared::error::StoreError;

    const TABLES: [(&str, &str); 2] = [
        ("LOYALTY_OFFERS_TABLE_NAME", "o"),
        ("REJECTED_TABLE_NAME", "r"),
    ];

    #[test]
    fn only_its_two_tables_and_defaults() {
        let config = ProgressConfig::from_env(&env_of(&TABLES)).expect("valid");
        assert_eq!(config.tables.loyalty_offers(), Ok("o"));
        assert_eq!(config.tables.rejected(), Ok("r"));
        assert_eq!(
            config.tables.pending(),
            Err(StoreError::Unconfigured("pending"))
        );
        assert_eq!(config.concurrency, 16);
        assert_eq!(config.deadline_margin, Duration::from_millis(2_000));
    }

    #[test]
    fn missing_table_and_bad_numbers_fail_at_init() {
        assert_eq!(
            ProgressConfig::from_env(&env_of(&TABLES[..1])).unwrap_err(),
            ConfigError::Missing("REJECTED_TABLE_NAME")
        );
        let mut pairs = TABLES.to_vec();
        pairs.push(("PROGRESS_CONCURRENCY", "0"));
        assert!(matches!(
            ProgressConfig::from_env(&env_of(&pairs)),
            Err(ConfigError::Invalid {
                name: "PROGRESS_CONCURRENCY",
                ..
            })
        ));
    }
}
