//! userVisits: the Lambda on the loyalty transactions stream that counts
//! each visit in its user's behaviour profile (the always-on chooser runs
//! on the same visits).

pub mod config;
pub mod handler;

pub use config::VisitsConfig;
use offers_shared::dynamo::UserProfilesTable;
use offers_shared::profiles::UserVisits;

/// The service as deployed: DynamoDB behind it.
pub type DynamoUserVisits = UserVisits<UserProfilesTable>;

/// Wires the service from its configuration and one DynamoDB client.
pub fn build_visits(client: aws_sdk_dynamodb::Client, config: &VisitsConfig) -> DynamoUserVisits {
    UserVisits::new(
        UserProfilesTable::new(client, config.profiles_table.clone()),
        config.runner,
    )
}
