//! supportAssignment: the support tool's API. Agents assign offers (validated
//! and merged exactly as the dispatcher does), list a user's offers and revoke
//! them, and read a campaign's statistics and a user's behaviour profile.

pub mod config;
pub mod handler;

pub use config::SupportConfig;
use offers_shared::campaign_stats::{StatsService, StatsSettings};
use offers_shared::catalog_cache::CachedCatalog;
use offers_shared::dynamo::{DynamoStore, UserProfilesTable};
use offers_shared::support::SupportService;

/// What the support API serves: the assignment service, the campaign
/// statistics and the users' behaviour profiles (both read only).
pub struct SupportApi<S, C, T, P> {
    pub assignment: SupportService<S, C>,
    pub stats: StatsService<T>,
    pub profiles: P,
}

/// The support API as deployed: DynamoDB behind a warm-process catalog cache.
pub type DynamoSupport =
    SupportApi<DynamoStore, CachedCatalog<DynamoStore>, DynamoStore, UserProfilesTable>;

/// Wires the services from their configuration and one DynamoDB client.
pub fn build_support(client: aws_sdk_dynamodb::Client, config: &SupportConfig) -> DynamoSupport {
    let profiles = UserProfilesTable::new(client.clone(), config.profiles_table.clone());
    let store = DynamoStore::new(client, config.tables.clone());
    let catalog = CachedCatalog::new(store.clone(), config.catalog_cache_ttl);
    SupportApi {
        assignment: SupportService::new(store.clone(), catalog, config.retention),
        stats: StatsService::new(store, StatsSettings::default()),
        profiles,
    }
}
