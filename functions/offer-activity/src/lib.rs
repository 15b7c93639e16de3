//! offerActivity: the app's writes on its own offers. Redemptions at
//! checkout (`/rewards/offers/{id}/redemptions`), their voiding when an order
//! is cancelled, and offer events (`/rewards/offers/{id}/events`). The lookup
//! function stays read-only.

pub mod config;
pub mod handler;

pub use config::ActivityConfig;
use offers_shared::activity::ActivityService;
use offers_shared::budget_cache::CachedBudgets;
use offers_shared::catalog_cache::CachedCatalog;
use offers_shared::dynamo::DynamoStore;

/// The service as deployed: DynamoDB behind warm-process caches of the
/// catalog and of the campaigns' redemption budgets.
pub type DynamoActivity =
    ActivityService<DynamoStore, CachedCatalog<DynamoStore>, CachedBudgets<DynamoStore>>;

/// Wires the service from its configuration and one DynamoDB client.
pub fn build_activity(client: aws_sdk_dynamodb::Client, config: &ActivityConfig) -> DynamoActivity {
    let store = DynamoStore::new(client, config.tables.clone());
    let catalog = CachedCatalog::new(store.clone(), config.catalog_cache_ttl);
    let budgets = CachedBudgets::new(store.clone(), config.campaign_cache_ttl);
    ActivityService::with_budgets(store, catalog, budgets, config.event_retention)
}
