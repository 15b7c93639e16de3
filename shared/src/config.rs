//! Typed configuration read once from the environment, at init.

use crate::error::ConfigError;
use std::time::Duration;

/// The local stack's conventions (`local-stack`, `offers --local`): the
/// tables of template.yaml are created as `<LOCAL_TABLE_PREFIX><LogicalId>`
/// on DynamoDB Local at `LOCAL_DYNAMODB_ENDPOINT`.
pub const LOCAL_TABLE_PREFIX: &str = "offers-local-";
pub const LOCAL_DYNAMODB_ENDPOINT: &str = "http://127.0.0.1:8000";
/// The local stand-in for the dispatcher's SQS on-failure destination: a
/// local-only table (HASH `id`) of the stream batches that exhausted their
/// retries. Each item: `id` (S), `timestamp` (S, RFC 3339), `condition` (S,
/// e.g. `RetryAttemptsExhausted`), `batchSize` (N: records in the batch),
/// `message` (S: the JSON Lambda sends to an on-failure destination, with
/// `DDBStreamBatchInfo`), `records` (S: JSON list of the batch's
/// `{sequenceNumber, userId, sortKey}`).
pub const LOCAL_ON_FAILURE_TABLE: &str = "offers-local-DispatcherOnFailure";

/// Table names, always from the environment (template.yaml sets them with `!Ref`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    pub pending: String,
    pub loyalty_offers: String,
    pub catalog: String,
    pub rejected: String,
}

/// Timeouts and retries of the DynamoDB client: they must end well inside
/// the function timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdkSettings {
    pub operation_timeout: Duration,
    pub attempt_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_attempts: u32,
}

impl Default for SdkSettings {
    fn default() -> Self {
        Self {
            operation_timeout: Duration::from_millis(5_000),
            attempt_timeout: Duration::from_millis(2_000),
            connect_timeout: Duration::from_millis(1_000),
            max_attempts: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatcherConfig {
    pub tables: TableNames,
    pub sdk: SdkSettings,
    /// How long a config offer or template stays cached in a warm process.
    pub catalog_cache_ttl: Duration,
    /// How many pending-row keys are dispatched at once.
    pub concurrency: usize,
    /// Time kept in hand before the invocation deadline: records not started
    /// by then are reported as failed so that Lambda retries them.
    pub deadline_margin: Duration,
    /// How long an offer record is kept after it expires (its `ttl`).
    pub retention: chrono::Duration,
}

/// Reads variables through `lookup` so that tests need not touch the process environment.
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl Env<fn(&str) -> Option<String>> {
    pub fn process() -> Self {
        Env(|name| std::env::var(name).ok())
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        match (self.0)(name) {
            Some(value) if !value.trim().is_empty() => Ok(value),
            _ => Err(ConfigError::Missing(name)),
        }
    }

    pub fn number_or(
        &self,
        name: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        match (self.0)(name) {
            None => Ok(default),
            Some(value) => match value.trim().parse::<u64>() {
                Ok(number) if range.contains(&number) => Ok(number),
                _ => Err(ConfigError::Invalid {
                    name,
                    value,
                    expected: "a whole number in range",
                }),
            },
        }
    }

    pub fn tables(&self) -> Result<TableNames, ConfigError> {
        Ok(TableNames {
            pending: self.required("PENDING_TABLE_NAME")?,
            loyalty_offers: self.required("LOYALTY_OFFERS_TABLE_NAME")?,
            catalog: self.required("OFFER_CATALOG_TABLE_NAME")?,
            rejected: self.required("REJECTED_TABLE_NAME")?,
        })
    }

    pub fn sdk(&self) -> Result<SdkSettings, ConfigError> {
        let defaults = SdkSettings::default();
        let millis = |name, default: Duration| {
            self.number_or(name, default.as_millis() as u64, 50..=60_000)
                .map(Duration::from_millis)
        };
        Ok(SdkSettings {
            operation_timeout: millis("DYNAMODB_OPERATION_TIMEOUT_MS", defaults.operation_timeout)?,
            attempt_timeout: millis("DYNAMODB_ATTEMPT_TIMEOUT_MS", defaults.attempt_timeout)?,
            connect_timeout: millis("DYNAMODB_CONNECT_TIMEOUT_MS", defaults.connect_timeout)?,
            max_attempts: self.number_or(
                "DYNAMODB_MAX_ATTEMPTS",
                defaults.max_attempts.into(),
                1..=10,
            )? as u32,
        })
    }

    pub fn catalog_cache_ttl(&self) -> Result<Duration, ConfigError> {
        self.number_or("CATALOG_CACHE_TTL_SECONDS", 60, 0..=3_600)
            .map(Duration::from_secs)
    }

    pub fn dispatcher(&self) -> Result<DispatcherConfig, ConfigError> {
        Ok(DispatcherConfig {
            tables: self.tables()?,
            sdk: self.sdk()?,
            catalog_cache_ttl: self.catalog_cache_ttl()?,
            concurrency: self.number_or("DISPATCH_CONCURRENCY", 16, 1..=256)? as usize,
            deadline_margin: Duration::from_millis(self.number_or(
                "DEADLINE_MARGIN_MS",
                2_000,
                0..=60_000,
            )?),
            retention: self.retention()?,
        })
    }

    /// How long an offer record is kept after it expires (`OFFER_RETENTION_DAYS`).
    pub fn retention(&self) -> Result<chrono::Duration, ConfigError> {
        self.number_or("OFFER_RETENTION_DAYS", 90, 0..=3_650)
            .map(|days| chrono::Duration::days(days as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    pub(super) fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env(move |name: &str| map.get(name).cloned())
    }

    const TABLES: [(&str, &str); 4] = [
        ("PENDING_TABLE_NAME", "p"),
        ("LOYALTY_OFFERS_TABLE_NAME", "o"),
        ("OFFER_CATALOG_TABLE_NAME", "c"),
        ("REJECTED_TABLE_NAME", "r"),
    ];

    #[test]
    fn defaults_apply_when_only_tables_are_set() {
        let config = env(&TABLES).dispatcher().expect("valid");
        assert_eq!(config.tables.loyalty_offers, "o");
        assert_eq!(config.concurrency, 16);
        assert_eq!(config.sdk, SdkSettings::default());
        assert_eq!(config.catalog_cache_ttl, Duration::from_secs(60));
    }

    #[test]
    fn missing_table_and_bad_numbers_fail_at_init() {
        assert_eq!(
            env(&TABLES[..3]).dispatcher().unwrap_err(),
            ConfigError::Missing("REJECTED_TABLE_NAME")
        );
        let mut pairs = TABLES.to_vec();
        pairs.push(("DISPATCH_CONCURRENCY", "lots"));
        assert!(matches!(
            env(&pairs).dispatcher(),
            Err(ConfigError::Invalid {
                name: "DISPATCH_CONCURRENCY",
                ..
            })
        ));
    }
}

/// The tables of an API function: the loyalty offers and the catalog. The
/// others are left empty, so that any use of them fails instead of reaching
/// a table.
fn api_tables(loyalty_offers: &str, catalog: &str) -> TableNames {
    TableNames {
        pending: String::new(),
        loyalty_offers: loyalty_offers.to_owned(),
        catalog: catalog.to_owned(),
        rejected: String::new(),
    }
}

/// The offer lookup's configuration: it reads the loyalty offers and the
/// catalog only, so it is given no other table name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupConfig {
    pub loyalty_offers_table: String,
    pub catalog_table: String,
    pub sdk: SdkSettings,
    /// How long a config offer's name, description and image stay cached in
    /// a warm process.
    pub catalog_cache_ttl: Duration,
}

impl LookupConfig {
    /// Table names for `DynamoStore`.
    pub fn tables(&self) -> TableNames {
        api_tables(&self.loyalty_offers_table, &self.catalog_table)
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn lookup(&self) -> Result<LookupConfig, ConfigError> {
        Ok(LookupConfig {
            loyalty_offers_table: self.required("LOYALTY_OFFERS_TABLE_NAME")?,
            catalog_table: self.required("OFFER_CATALOG_TABLE_NAME")?,
            sdk: self.sdk()?,
            catalog_cache_ttl: self.catalog_cache_ttl()?,
        })
    }
}

#[cfg(test)]
mod lookup_tests {
    use super::tests::env;
    use super::*;

    #[test]
    fn lookup_needs_only_its_two_tables() {
        let config = env(&[
            ("LOYALTY_OFFERS_TABLE_NAME", "o"),
            ("OFFER_CATALOG_TABLE_NAME", "c"),
            ("CATALOG_CACHE_TTL_SECONDS", "30"),
            ("DYNAMODB_MAX_ATTEMPTS", "2"),
        ])
        .lookup()
        .expect("valid");
        assert_eq!(config.tables().loyalty_offers, "o");
        assert_eq!(config.tables().catalog, "c");
        assert_eq!(config.tables().pending, "");
        assert_eq!(config.catalog_cache_ttl, Duration::from_secs(30));
        assert_eq!(config.sdk.max_attempts, 2);
    }

    #[test]
    fn lookup_fails_at_init_without_a_table_or_with_bad_numbers() {
        assert_eq!(
            env(&[("LOYALTY_OFFERS_TABLE_NAME", "o")]).lookup(),
            Err(ConfigError::Missing("OFFER_CATALOG_TABLE_NAME"))
        );
        assert!(matches!(
            env(&[
                ("LOYALTY_OFFERS_TABLE_NAME", "o"),
                ("OFFER_CATALOG_TABLE_NAME", "c"),
                ("DYNAMODB_ATTEMPT_TIMEOUT_MS", "fast"),
            ])
            .lookup(),
            Err(ConfigError::Invalid {
                name: "DYNAMODB_ATTEMPT_TIMEOUT_MS",
                ..
            })
        ));
    }
}

/// The support tool's configuration: the loyalty offers and the catalog only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportConfig {
    pub loyalty_offers_table: String,
    pub catalog_table: String,
    pub sdk: SdkSettings,
    pub catalog_cache_ttl: Duration,
    /// How long an offer record is kept after it expires (its `ttl`).
    pub retention: chrono::Duration,
}

impl SupportConfig {
    /// Table names for `DynamoStore`.
    pub fn tables(&self) -> TableNames {
        api_tables(&self.loyalty_offers_table, &self.catalog_table)
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn support(&self) -> Result<SupportConfig, ConfigError> {
        Ok(SupportConfig {
            loyalty_offers_table: self.required("LOYALTY_OFFERS_TABLE_NAME")?,
            catalog_table: self.required("OFFER_CATALOG_TABLE_NAME")?,
            sdk: self.sdk()?,
            catalog_cache_ttl: self.catalog_cache_ttl()?,
            retention: self.retention()?,
        })
    }
}

#[cfg(test)]
mod support_tests {
    use super::tests::env;
    use super::*;

    #[test]
    fn support_needs_its_two_tables_and_reads_retention() {
        let config = env(&[
            ("LOYALTY_OFFERS_TABLE_NAME", "o"),
            ("OFFER_CATALOG_TABLE_NAME", "c"),
            ("OFFER_RETENTION_DAYS", "30"),
        ])
        .support()
        .expect("valid");
        assert_eq!(config.tables().loyalty_offers, "o");
        assert_eq!(config.tables().rejected, "");
        assert_eq!(config.retention, chrono::Duration::days(30));
        assert_eq!(
            env(&[("OFFER_CATALOG_TABLE_NAME", "c")]).support(),
            Err(ConfigError::Missing("LOYALTY_OFFERS_TABLE_NAME"))
        );
        assert!(matches!(
            env(&[
                ("LOYALTY_OFFERS_TABLE_NAME", "o"),
                ("OFFER_CATALOG_TABLE_NAME", "c"),
                ("OFFER_RETENTION_DAYS", "forever"),
            ])
            .support(),
            Err(ConfigError::Invalid {
                name: "OFFER_RETENTION_DAYS",
                ..
            })
        ));
    }
}
