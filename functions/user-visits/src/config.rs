//! The user visits function's configuration, read once at init from the
//! environment that template.yaml gives it.

use offers_shared::config::{Env, SdkSettings, USER_PROFILES_TABLE_VARIABLE};
use offers_shared::error::ConfigError;
use offers_shared::metrics::Observability;
use offers_shared::stream::runner::RunnerSettings;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitsConfig {
    /// `UserProfilesTable`, its only table.
    pub profiles_table: String,
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
    use std::time::Duration;

    #[test]
    fn its_table_and_defaults_and_failures_at_init() {
        let config =
            VisitsConfig::from_env(&env_of(&[("USER_PROFILES_TABLE_NAME", "p")])).expect("valid");
        assert_eq!(config.profiles_table, "p");
        assert_eq!(config.runner.concurrency, 16);
        assert_eq!(config.runner.deadline_margin, Duration::from_millis(2_000));
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
