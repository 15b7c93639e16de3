//! Typed configuration read once from the environment, at init.

use crate::dynamo::Adapter;
use crate::error::{ConfigError, StoreError};
use std::time::Duration;

/// The tables a function was given, always from the environment
/// (template.yaml sets them with `!Ref`). A function is given only the tables
/// it uses; the adapter refuses to reach one it was not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableNames {
    pub pending: Option<String>,
    pub loyalty_offers: Option<String>,
    pub catalog: Option<String>,
    pub rejected: Option<String>,
    pub campaign_stats: Option<String>,
    /// The offer events' deduplication table (`OfferEventsTable`).
    pub offer_events: Option<String>,
    /// The campaign webhook's idempotency records.
    pub webhook_deliveries: Option<String>,
    /// Campaign definitions and their budgets' counters (`CampaignsTable`).
    pub campaigns: Option<String>,
    /// `LoyaltyTransactionsTable`: no function is given it (challenge
    /// progress reads its stream); the CLI writes it.
    pub transactions: Option<String>,
}

impl TableNames {
    /// All four tables (the dispatcher, the CLI, tests).
    pub fn all(pending: &str, loyalty_offers: &str, catalog: &str, rejected: &str) -> Self {
        Self {
            pending: Some(pending.to_owned()),
            loyalty_offers: Some(loyalty_offers.to_owned()),
            catalog: Some(catalog.to_owned()),
            rejected: Some(rejected.to_owned()),
            campaign_stats: None,
            offer_events: None,
            webhook_deliveries: None,
            campaigns: None,
            transactions: None,
        }
    }

    pub fn pending(&self) -> Result<&str, StoreError> {
        given(&self.pending, "pending")
    }

    pub fn loyalty_offers(&self) -> Result<&str, StoreError> {
        given(&self.loyalty_offers, "loyalty offers")
    }

    pub fn catalog(&self) -> Result<&str, StoreError> {
        given(&self.catalog, "catalog")
    }

    pub fn rejected(&self) -> Result<&str, StoreError> {
        given(&self.rejected, "rejected")
    }

    pub fn campaign_stats(&self) -> Result<&str, StoreError> {
        given(&self.campaign_stats, "campaign statistics")
    }

    pub fn offer_events(&self) -> Result<&str, StoreError> {
        given(&self.offer_events, "offer events")
    }

    pub fn campaigns(&self) -> Result<&str, StoreError> {
        given(&self.campaigns, "campaigns")
    }

    pub fn webhook_deliveries(&self) -> Result<&str, StoreError> {
        given(&self.webhook_deliveries, "webhook deliveries")
    }
}

fn given<'a>(name: &'a Option<String>, table: &'static str) -> Result<&'a str, StoreError> {
    name.as_deref().ok_or(StoreError::Unconfigured(table))
}

/// A table of template.yaml a function (or the CLI) can be given, by the
/// variable its name comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Pending,
    LoyaltyOffers,
    Catalog,
    Rejected,
    CampaignStats,
    OfferEvents,
    WebhookDeliveries,
    Campaigns,
    Transactions,
}

impl Table {
    /// Every table, in declaration order (so `table as usize` indexes it).
    pub const ALL: [Table; 9] = [
        Table::Pending,
        Table::LoyaltyOffers,
        Table::Catalog,
        Table::Rejected,
        Table::CampaignStats,
        Table::OfferEvents,
        Table::WebhookDeliveries,
        Table::Campaigns,
        Table::Transactions,
    ];

    /// Its logical id in template.yaml (a stack output is `<LogicalId>Name`).
    pub const fn logical_id(self) -> &'static str {
        match self {
            Table::Pending => "PendingPersonalizedOffersTable",
            Table::LoyaltyOffers => "LoyaltyOffersTable",
            Table::Catalog => "OfferCatalogTable",
            Table::Rejected => "RejectedPersonalizedOffersTable",
            Table::CampaignStats => "CampaignStatsTable",
            Table::OfferEvents => "OfferEventsTable",
            Table::WebhookDeliveries => "WebhookDeliveriesTable",
            Table::Campaigns => "CampaignsTable",
            Table::Transactions => "LoyaltyTransactionsTable",
        }
    }

    /// The environment variable of its name (template.yaml sets it with `!Ref`).
    pub const fn variable(self) -> &'static str {
        match self {
            Table::Pending => PENDING_TABLE_VARIABLE,
            Table::LoyaltyOffers => LOYALTY_OFFERS_TABLE_VARIABLE,
            Table::Catalog => CATALOG_TABLE_VARIABLE,
            Table::Rejected => REJECTED_TABLE_VARIABLE,
            Table::CampaignStats => CAMPAIGN_STATS_TABLE_VARIABLE,
            Table::OfferEvents => OFFER_EVENTS_TABLE_VARIABLE,
            Table::WebhookDeliveries => WEBHOOK_DELIVERIES_TABLE_VARIABLE,
            Table::Campaigns => CAMPAIGNS_TABLE_VARIABLE,
            Table::Transactions => TRANSACTIONS_TABLE_VARIABLE,
        }
    }
}

impl TableNames {
    fn slot(&mut self, table: Table) -> &mut Option<String> {
        match table {
            Table::Pending => &mut self.pending,
            Table::LoyaltyOffers => &mut self.loyalty_offers,
            Table::Catalog => &mut self.catalog,
            Table::Rejected => &mut self.rejected,
            Table::CampaignStats => &mut self.campaign_stats,
            Table::OfferEvents => &mut self.offer_events,
            Table::WebhookDeliveries => &mut self.webhook_deliveries,
            Table::Campaigns => &mut self.campaigns,
            Table::Transactions => &mut self.transactions,
        }
    }
}

/// The tables of an API function that reads offers: the loyalty offers and the catalog.
pub const API_TABLES: [Table; 2] = [Table::LoyaltyOffers, Table::Catalog];

/// What an API function that reads offers builds: the offers' reader and the catalog's.
pub const API_ADAPTERS: [Adapter; 2] = [Adapter::OfferReader, Adapter::Catalog];

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

    /// A table's name, required.
    pub fn table(&self, variable: &'static str) -> Result<String, ConfigError> {
        self.required(variable)
    }

    /// Exactly the tables a function needs, read in the order given, each
    /// required: a missing one fails at init, naming its variable; the
    /// adapter refuses any table not named here.
    pub fn tables(&self, needed: &[Table]) -> Result<TableNames, ConfigError> {
        let mut names = TableNames::default();
        for &table in needed {
            *names.slot(table) = Some(self.table(table.variable())?);
        }
        Ok(names)
    }

    /// Exactly the tables of the adapters a function builds (each once, in
    /// the order of the adapters): a table any of them reaches is missing
    /// at init or never.
    pub fn tables_for(&self, adapters: &[Adapter]) -> Result<TableNames, ConfigError> {
        let mut needed: Vec<Table> = Vec::new();
        for table in adapters.iter().flat_map(|adapter| adapter.tables()) {
            if !needed.contains(table) {
                needed.push(*table);
            }
        }
        self.tables(&needed)
    }

    /// The tables of an API function: the loyalty offers and the catalog,
    /// no other (any other is refused by the adapter).
    pub fn api_tables(&self) -> Result<TableNames, ConfigError> {
        self.tables_for(&API_ADAPTERS)
    }

    /// The tables of the app's activity function: the API tables, the
    /// offer events and the campaigns (redemption budgets).
    pub fn activity_tables(&self) -> Result<TableNames, ConfigError> {
        self.tables_for(&[
            Adapter::Activity,
            Adapter::RedemptionBudgets,
            Adapter::OfferReader,
            Adapter::Catalog,
        ])
    }

    /// How long an offer event's id is kept for deduplication
    /// (`OFFER_EVENT_RETENTION_DAYS`, 1 to 365, default 30).
    pub fn event_retention(&self) -> Result<chrono::Duration, ConfigError> {
        self.number_or("OFFER_EVENT_RETENTION_DAYS", 30, 1..=365)
            .map(|days| chrono::Duration::days(days as i64))
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

    /// A stream function's batch settings: how many keys run at once
    /// (`concurrency_variable`, 1 to 256, default 16) and the time kept in
    /// hand before the deadline (`DEADLINE_MARGIN_MS`, default 2 s).
    pub fn runner_settings(
        &self,
        concurrency_variable: &'static str,
    ) -> Result<crate::stream::runner::RunnerSettings, ConfigError> {
        Ok(crate::stream::runner::RunnerSettings {
            concurrency: usize::try_from(self.number_or(concurrency_variable, 16, 1..=256)?)
                .unwrap_or(16),
            deadline_margin: Duration::from_millis(self.number_or(
                "DEADLINE_MARGIN_MS",
                2_000,
                0..=60_000,
            )?),
        })
    }

    pub fn catalog_cache_ttl(&self) -> Result<Duration, ConfigError> {
        self.number_or("CATALOG_CACHE_TTL_SECONDS", 60, 0..=3_600)
            .map(Duration::from_secs)
    }

    /// How long the list of campaigns with redemption budgets is kept
    /// (`CAMPAIGN_CACHE_TTL_SECONDS`, default 60): a limit set by `campaign
    /// put` applies within it.
    pub fn campaign_cache_ttl(&self) -> Result<Duration, ConfigError> {
        self.number_or("CAMPAIGN_CACHE_TTL_SECONDS", 60, 0..=3_600)
            .map(Duration::from_secs)
    }

    /// How long an offer record is kept after it expires (`OFFER_RETENTION_DAYS`).
    pub fn retention(&self) -> Result<chrono::Duration, ConfigError> {
        self.number_or("OFFER_RETENTION_DAYS", 90, 0..=3_650)
            .map(|days| chrono::Duration::days(days as i64))
    }
}

/// The environment variables that carry the table names (template.yaml).
pub const PENDING_TABLE_VARIABLE: &str = "PENDING_TABLE_NAME";
pub const LOYALTY_OFFERS_TABLE_VARIABLE: &str = "LOYALTY_OFFERS_TABLE_NAME";
pub const CATALOG_TABLE_VARIABLE: &str = "OFFER_CATALOG_TABLE_NAME";
pub const REJECTED_TABLE_VARIABLE: &str = "REJECTED_TABLE_NAME";
/// The campaign statistics table (CampaignStatsTable): counters, and what selection learns from.
pub const CAMPAIGN_STATS_TABLE_VARIABLE: &str = "CAMPAIGN_STATS_TABLE";
pub const OFFER_EVENTS_TABLE_VARIABLE: &str = "OFFER_EVENTS_TABLE_NAME";
/// `LoyaltyTransactionsTable`: written by the ordering backend (and `offers
/// transactions add`); challenge progress reads only its stream, so no
/// function is given its name.
pub const TRANSACTIONS_TABLE_VARIABLE: &str = "LOYALTY_TRANSACTIONS_TABLE_NAME";
/// `CampaignsTable`: campaign definitions and their budgets (section 13, 14).
pub const CAMPAIGNS_TABLE_VARIABLE: &str = "CAMPAIGNS_TABLE_NAME";
pub const WEBHOOK_DELIVERIES_TABLE_VARIABLE: &str = "WEBHOOK_DELIVERIES_TABLE_NAME";
/// `UserProfilesTable`: behaviour profiles (user visits writes, support reads).
pub const USER_PROFILES_TABLE_VARIABLE: &str = "USER_PROFILES_TABLE_NAME";

/// An environment given as pairs, for tests.
pub fn env_of(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Env(move |name: &str| map.get(name).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds_of_the_shared_settings() {
        let env = env_of(&[
            ("DYNAMODB_MAX_ATTEMPTS", "2"),
            ("CATALOG_CACHE_TTL_SECONDS", "30"),
        ]);
        assert_eq!(env.sdk().map(|sdk| sdk.max_attempts), Ok(2));
        assert_eq!(env.catalog_cache_ttl(), Ok(Duration::from_secs(30)));
        assert_eq!(env_of(&[]).sdk(), Ok(SdkSettings::default()));
        assert_eq!(env_of(&[]).retention(), Ok(chrono::Duration::days(90)));
        assert!(matches!(
            env_of(&[("DYNAMODB_ATTEMPT_TIMEOUT_MS", "fast")]).sdk(),
            Err(ConfigError::Invalid {
                name: "DYNAMODB_ATTEMPT_TIMEOUT_MS",
                ..
            })
        ));
        assert_eq!(
            env_of(&[]).table(PENDING_TABLE_VARIABLE),
            Err(ConfigError::Missing("PENDING_TABLE_NAME"))
        );
    }

    #[test]
    fn an_api_function_gets_the_offers_and_the_catalog_only() {
        let tables = env_of(&[
            ("LOYALTY_OFFERS_TABLE_NAME", "o"),
            ("OFFER_CATALOG_TABLE_NAME", "c"),
            ("PENDING_TABLE_NAME", "p"),
        ])
        .api_tables()
        .expect("valid");
        assert_eq!(tables.loyalty_offers(), Ok("o"));
        assert_eq!(tables.catalog(), Ok("c"));
        assert_eq!(tables.pending(), Err(StoreError::Unconfigured("pending")));
        assert_eq!(tables.rejected(), Err(StoreError::Unconfigured("rejected")));
        assert_eq!(
            env_of(&[("LOYALTY_OFFERS_TABLE_NAME", "o")]).api_tables(),
            Err(ConfigError::Missing("OFFER_CATALOG_TABLE_NAME"))
        );
    }

    #[test]
    fn a_function_gets_exactly_the_tables_it_names_and_fails_at_init_without_one() {
        let env = env_of(&[
            ("PENDING_TABLE_NAME", "p"),
            ("REJECTED_TABLE_NAME", "r"),
            ("CAMPAIGNS_TABLE_NAME", "k"),
        ]);
        let tables = env
            .tables(&[Table::Pending, Table::Rejected])
            .expect("both given");
        assert_eq!(tables.pending(), Ok("p"));
        assert_eq!(tables.rejected(), Ok("r"));
        assert_eq!(
            tables.campaigns(),
            Err(StoreError::Unconfigured("campaigns")),
            "in the environment, but not named"
        );
        assert_eq!(
            env.tables(&[Table::Pending, Table::LoyaltyOffers]),
            Err(ConfigError::Missing("LOYALTY_OFFERS_TABLE_NAME"))
        );
    }

    #[test]
    fn a_function_gets_the_tables_of_its_adapters_each_once_in_order() {
        let env = env_of(&[
            ("PENDING_TABLE_NAME", "p"),
            ("LOYALTY_OFFERS_TABLE_NAME", "o"),
            ("REJECTED_TABLE_NAME", "r"),
            ("OFFER_CATALOG_TABLE_NAME", "c"),
            ("CAMPAIGNS_TABLE_NAME", "k"),
        ]);
        let tables = env
            .tables_for(&[Adapter::Challenges, Adapter::Support])
            .expect("all given");
        assert_eq!(tables.loyalty_offers(), Ok("o"));
        assert_eq!(tables.rejected(), Ok("r"));
        assert_eq!(tables.campaigns(), Ok("k"));
        assert_eq!(tables.pending(), Err(StoreError::Unconfigured("pending")));
        assert_eq!(tables.catalog(), Err(StoreError::Unconfigured("catalog")));
        assert_eq!(
            env_of(&[("CAMPAIGNS_TABLE_NAME", "k")]).tables_for(&[Adapter::Dispatch]),
            Err(ConfigError::Missing("PENDING_TABLE_NAME")),
            "the first table of the first adapter"
        );
    }

    #[test]
    fn every_table_has_its_variable_and_logical_id_in_declaration_order() {
        for (index, table) in Table::ALL.into_iter().enumerate() {
            assert_eq!(table as usize, index);
            assert!(table.variable().ends_with("_TABLE_NAME") || table == Table::CampaignStats);
            assert!(table.logical_id().ends_with("Table"));
        }
    }

    #[test]
    fn a_table_not_given_is_refused_by_name() {
        let tables = TableNames {
            catalog: Some("c".into()),
            ..TableNames::default()
        };
        assert_eq!(tables.catalog(), Ok("c"));
        assert_eq!(tables.pending(), Err(StoreError::Unconfigured("pending")));
    }
}
