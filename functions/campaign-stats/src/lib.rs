//! campaignStats: the Lambda on the loyalty offers table's stream; campaign
//! counters and selection's learning counters, exactly once.

pub mod config;
pub mod handler;
pub mod records;

pub use config::StatsConfig;
use offers_shared::campaign_stats::StatsService;
use offers_shared::dynamo::DynamoStore;

/// The service as deployed.
pub type DynamoStats = StatsService<DynamoStore>;

/// Wires the service from its configuration and one DynamoDB client.
pub fn build_stats(client: aws_sdk_dynamodb::Client, config: &StatsConfig) -> DynamoStats {
    StatsService::new(
        DynamoStore::new(client, config.tables.clone()),
        config.settings,
    )
}
