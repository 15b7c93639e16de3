//! offerDispatcher: the Lambda on the pendingPersonalizedOffers stream.

pub mod config;
pub mod handler;
pub mod records;

pub use config::DispatcherConfig;
use offers_shared::budget_cache::CachedBudgets;
use offers_shared::catalog_cache::CachedCatalog;
use offers_shared::dispatch::{DispatchSettings, Dispatcher};
use offers_shared::dynamo::DynamoStore;

/// The dispatcher as deployed: DynamoDB behind warm-process caches of the
/// catalog and of the campaigns' offers budgets.
pub type DynamoDispatcher =
    Dispatcher<DynamoStore, CachedCatalog<DynamoStore>, CachedBudgets<DynamoStore>>;

/// Wires the dispatcher from its configuration and one DynamoDB client.
pub fn build_dispatcher(
    client: aws_sdk_dynamodb::Client,
    config: &DispatcherConfig,
) -> DynamoDispatcher {
    let store = DynamoStore::new(client, config.tables.clone());
    let catalog = CachedCatalog::new(store.clone(), config.catalog_cache_ttl);
    let budgets = CachedBudgets::new(store.clone(), config.campaign_cache_ttl);
    Dispatcher::with_budgets(
        store,
        catalog,
        budgets,
        DispatchSettings {
            concurrency: config.concurrency,
            deadline_margin: config.deadline_margin,
            retention: config.retention,
        },
    )
}
