//! supportAssignment: the support tool's API. Agents assign offers (validated
//! and merged exactly as the dispatcher does), list a user's offers and revoke
//! them, and read a campaign's statistics.

pub mod config;
pub mod handler;

pub use config::SupportConfig;
use offers_shared::campaign_stats::{StatsService, StatsSettings};
use offers_shared::catalog_cache::CachedCatalog;
use offers_shared::dynamo::DynamoStore;
use offers_shared::support::SupportService;

/// What the support API serves: the assignment service, and the campaign
/// statistics (read only).
pub struct SupportApi<S, C, T> {
    pub assignment: SupportService<S, C>,
    pub stats: StatsService<T>,
}

/// The support API as deployed: DynamoDB behind a warm-process catalog cache.
pub type DynamoSupport = SupportApi<DynamoStore, CachedCatalog<DynamoStore>, DynamoStore>;

/// Wires the services from their configuration and one DynamoDB client.
pub fn build_support(client: aws_sdk_dynamodb::Client, config: &SupportConfig) -> DynamoSupport {
    let store = DynamoStore::new(client, config.tables.clone());
    let catalog = CachedCatalog::new(store.clone(), config.catalog_cache_ttl);
    SupportApi {
        assignment: SupportService::new(store.clone(), catalog, config.retention),
        stats: StatsService::new(store, StatsSettings::default()),
    }
}
