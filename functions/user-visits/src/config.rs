//! The user visits function's configuration, read once at init from the
//! environment that template.yaml gives it.

use offers_shared::config::{Env, SdkSettings, USER_PROFILES_TABLE_VARIABLE};
use offers_shared::error::ConfigError;
use offers_shared::metrics::Observability;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitsConfig {
    /// `UserProfilesTable`, its only table.
    pub profiles_table: String,
    pub sdk: SdkSettings,
    /// Where metrics go (`OBSERVABILITY`), checked at init.
    pub observability: Observability,
    /// How many users' transactions are handled at once.
    pub concurrency: usize,
    /// Time kept in hand before the invocation deadline.
    pub deadline_margin: Duration,
}

impl VisitsConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            profiles_table: env.table(USER_PROFILES_TABLE_VARIABLE)?,
            sdk: env.sdk()?,
            observability: env.observability()?,
            concurrency: usize::try_from(env.number_or("VISITS_CONCURRENCY", 16, 1..=256)?)
                .unwrap_or(16),
            deadline_margin: Duration::from_millis(env.number_or(
                "DEADLINE_MARGIN_MS",
                2_000,
                0..=60_000,
            )?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offers_shared::config::env_of;

    #[test]
    fn its_table_and_defaults_and_failures_at_init() {
        let config =
            VisitsConfig::from_env(&env_of(&[("USER_PROFILES_TABLE_NAME", "p")])).expect("valid");
        assert_eq!(config.profiles_table, "p");
        assert_eq!(config.concurrency, 16);
        assert_eq!(config.deadline_margin, Duration::from_millis(2_000));
        assert_eq!(
            VisitsConfig::from_env(&env_of(&[])),
            Err(ConfigError::Missing("USER_PROFILES_TABLE_NAME"))
        );
        assert!(matches!(
            VisitsConfig::from_env(&env_of(&[
                ("USER_PROFILES_TABLE_NAME", "p"),
                ("VISITS_CONCURRENCY", "0")
            ])),
            Err(ConfigError::Invalid {
                name: "VISITS_CONCURRENCY",
                ..
            })
        ));
    }
}
