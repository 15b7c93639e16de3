//! offerLookup: the app's `/rewards/offers` API, each caller seeing only their own offers.

pub mod config;
pub mod handler;

pub use config::LookupConfig;
use offers_shared::catalog_cache::CachedCatalog;
use offers_shared::dynamo::DynamoStore;
use offers_shared::lookup::LookupService;

/// The lookup as deployed: DynamoDB behind a warm-process catalog cache.
pub type DynamoLookup = LookupService<DynamoStore, CachedCatalog<DynamoStore>>;

/// Wires the lookup from its configuration and one DynamoDB client.
pub fn build_lookup(client: aws_sdk_dynamodb::Client, config: &LookupConfig) -> DynamoLookup {
    let store = DynamoStore::new(client, config.tables.clone());
    let catalog = CachedCatalog::new(store.clone(), config.catalog_cache_ttl);
    LookupService::new(store, catalog)
}
