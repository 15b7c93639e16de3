//! supportAssignment: the support tool's API. Agents assign offers (validated
//! and merged exactly as the dispatcher does), list a user's offers and revoke them.

pub mod config;
pub mod handler;

pub use config::SupportConfig;
use offers_shared::catalog_cache::CachedCatalog;
use offers_shared::dynamo::DynamoStore;
use offers_shared::support::SupportService;

/// The support service as deployed: DynamoDB behind a warm-process catalog cache.
pub type DynamoSupport = SupportService<DynamoStore, CachedCatalog<DynamoStore>>;

/// Wires the service from its configuration and one DynamoDB client.
pub fn build_support(client: aws_sdk_dynamodb::Client, config: &SupportConfig) -> DynamoSupport {
    let store = DynamoStore::new(client, config.tables.clone());
    let catalog = CachedCatalog::new(store.clone(), config.catalog_cache_ttl);
    SupportService::new(store, catalog, config.retention)
}
