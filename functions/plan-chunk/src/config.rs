//! The plan-chunk function's configuration, read once at init from the
//! environment that template.yaml gives it: the pending table only (the plan
//! and the statistics come in each batch).

use offers_shared::config::{Env, SdkSettings, TableNames, PENDING_TABLE_VARIABLE};
use offers_shared::error::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanChunkConfig {
    pub tables: TableNames,
    pub sdk: SdkSettings,
    /// BatchWriteItem calls in flight at once (`PLAN_CHUNK_WRITE_CONCURRENCY`).
    pub write_concurrency: usize,
}

/// BatchWriteItem calls in flight by default: a chunk of 1,000 users (3,000
/// rows, 120 calls) writes in about 15 rounds.
pub const DEFAULT_WRITE_CONCURRENCY: u64 = 8;

impl PlanChunkConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            tables: TableNames {
                pending: Some(env.table(PENDING_TABLE_VARIABLE)?),
                ..TableNames::default()
            },
            sdk: env.sdk()?,
            write_concurrency: env.number_or(
                "PLAN_CHUNK_WRITE_CONCURRENCY",
                DEFAULT_WRITE_CONCURRENCY,
                1..=64,
            )? as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offers_shared::config::env_of;

    #[test]
    fn it_needs_the_pending_table_and_bounds_its_concurrency() {
        let config =
            PlanChunkConfig::from_env(&env_of(&[("PENDING_TABLE_NAME", "p")])).expect("valid");
        assert_eq!(config.tables.pending(), Ok("p"));
        assert!(config.tables.loyalty_offers().is_err());
        assert_eq!(config.write_concurrency, 8);
        assert_eq!(
            PlanChunkConfig::from_env(&env_of(&[])),
            Err(ConfigError::Missing("PENDING_TABLE_NAME"))
        );
        assert!(PlanChunkConfig::from_env(&env_of(&[
            ("PENDING_TABLE_NAME", "p"),
            ("PLAN_CHUNK_WRITE_CONCURRENCY", "0")
        ]))
        .is_err());
    }
}
