use crate::config::SdkSettings;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;

/// A DynamoDB client whose timeouts and retries end inside the function timeout.
/// Endpoint, region and credentials come from `sdk_config` (the standard AWS
/// configuration, so `AWS_ENDPOINT_URL` points it at DynamoDB Local).
pub fn dynamodb_client(sdk_config: &aws_types::SdkConfig, settings: &SdkSettings) -> Client {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk_config)
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(settings.operation_timeout)
                .operation_attempt_timeout(settings.attempt_timeout)
                .connect_timeout(settings.connect_timeout)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts))
        .build();
    Client::from_conf(config)
}
