//! campaignWebhook: marketing platforms (Braze, Iterable, Customer.io)
//! assign offers with a signed POST /campaigns/webhook. The signature is the
//! authentication; each valid assignment becomes a pending row (the
//! dispatcher does the rest), once per delivery id.

pub mod config;
pub mod handler;
pub mod secret;

pub use config::WebhookConfig;
use offers_shared::catalog_cache::CachedCatalog;
use offers_shared::dynamo::DynamoStore;
use offers_shared::ports::{CatalogReader, WebhookStore};
use offers_shared::webhook::WebhookService;
pub use secret::{load_signing_secret, secrets_client, SigningSecret};

/// The service and the key its requests are signed with.
pub struct CampaignWebhook<S, C> {
    pub service: WebhookService<S, C>,
    pub secret: SigningSecret,
}

impl<S: WebhookStore, C: CatalogReader> CampaignWebhook<S, C> {
    pub fn new(service: WebhookService<S, C>, secret: SigningSecret) -> Self {
        Self { service, secret }
    }
}

/// The webhook as deployed: DynamoDB behind a warm-process catalog cache.
pub type DynamoWebhook = CampaignWebhook<DynamoStore, CachedCatalog<DynamoStore>>;

/// Wires the service from its configuration, one DynamoDB client and the
/// secret read at init.
pub fn build_webhook(
    client: aws_sdk_dynamodb::Client,
    config: &WebhookConfig,
    secret: SigningSecret,
) -> DynamoWebhook {
    let store = DynamoStore::new(client, config.tables.clone());
    let catalog = CachedCatalog::new(store.clone(), config.catalog_cache_ttl);
    CampaignWebhook::new(WebhookService::new(store, catalog, config.webhook), secret)
}
