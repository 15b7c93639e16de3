//! userVisits: the Lambda on the loyalty transactions stream that counts
//! each visit in its user's behaviour profile, then runs the always-on
//! campaigns' chooser on it (contract section 13).

pub mod config;
pub mod handler;

pub use config::VisitsConfig;
use offers_shared::always_on::AlwaysOnChooser;
use offers_shared::dynamo::{AlwaysOnTables, CatalogTable, SelectionStatsTable, UserProfilesTable};
use offers_shared::profiles::UserVisits;

/// The always-on chooser as deployed.
pub type DynamoChooser = AlwaysOnChooser<AlwaysOnTables, SelectionStatsTable, CatalogTable>;

/// The service as deployed: DynamoDB behind it.
pub type DynamoUserVisits = UserVisits<UserProfilesTable, DynamoChooser>;

/// Wires the service from its configuration and one DynamoDB client.
pub fn build_visits(client: aws_sdk_dynamodb::Client, config: &VisitsConfig) -> DynamoUserVisits {
    let chooser = AlwaysOnChooser::with_ttls(
        AlwaysOnTables::new(
            client.clone(),
            config.campaigns_table.clone(),
            config.offers_table.clone(),
            config.pending_table.clone(),
        ),
        SelectionStatsTable::new(client.clone(), config.stats_table.clone()),
        CatalogTable::new(client.clone(), config.catalog_table.clone()),
        config.cache_ttl,
        config.cache_ttl,
    );
    UserVisits::with_after(
        UserProfilesTable::new(client, config.profiles_table.clone()),
        chooser,
        config.runner,
    )
}
