//! challengeProgress: the Lambda on the loyalty transactions stream.

pub mod config;
pub mod handler;
pub mod records;

pub use config::ProgressConfig;
use offers_shared::challenge_progress::{ChallengeProgress, ProgressSettings};
use offers_shared::dynamo::DynamoStore;

/// The service as deployed: DynamoDB behind it.
pub type DynamoChallengeProgress = ChallengeProgress<DynamoStore>;

/// Wires the service from its configuration and one DynamoDB client.
pub fn build_progress(
    client: aws_sdk_dynamodb::Client,
    config: &ProgressConfig,
) -> DynamoChallengeProgress {
    ChallengeProgress::new(
        DynamoStore::new(client, config.tables.clone()),
        ProgressSettings {
            concurrency: config.concurrency,
            deadline_margin: config.deadline_margin,
        },
    )
}
