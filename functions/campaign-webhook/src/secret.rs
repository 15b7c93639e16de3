//! The signing secret: read once at init from AWS Secrets Manager
//! (GetSecretValue of the ARN the template gives; the SecretString is the
//! key). Locally the same call goes to moto's Secrets Manager server
//! (`AWS_ENDPOINT_URL_SECRETS_MANAGER`).

use aws_sdk_secretsmanager::config::retry::RetryConfig;
use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
use aws_types::SdkConfig;
use offers_shared::config::SdkSettings;
use offers_shared::dynamo::environment_endpoint;
use std::fmt;

/// The shared key. Its Debug never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

impl SigningSecret {
    /// The key as given; empty (or blank) keys are refused.
    pub fn new(key: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        let key = key.into();
        if key.iter().all(u8::is_ascii_whitespace) {
            return Err(SecretError::Empty);
        }
        Ok(Self(key))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningSecret(<{} bytes>)", self.0.len())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("reading the webhook signing secret failed: {0}")]
    Read(String),
    #[error("the webhook signing secret has no SecretString")]
    NotAString,
    #[error("the webhook signing secret is empty")]
    Empty,
}

/// A Secrets Manager client with the function's timeouts, at `endpoint`
/// (main.rs: [`secrets_endpoint`]), never at DynamoDB's.
pub fn secrets_client(
    sdk_config: &SdkConfig,
    settings: &SdkSettings,
    endpoint: Option<String>,
) -> aws_sdk_secretsmanager::Client {
    let mut builder = aws_sdk_secretsmanager::config::Builder::from(sdk_config);
    builder.set_endpoint_url(endpoint);
    let config = builder
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(settings.operation_timeout)
                .operation_attempt_timeout(settings.attempt_timeout)
                .connect_timeout(settings.connect_timeout)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts))
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

/// The endpoint the environment gives Secrets Manager:
/// `AWS_ENDPOINT_URL_SECRETS_MANAGER` (moto locally), else `AWS_ENDPOINT_URL`,
/// else AWS's own.
pub fn secrets_endpoint() -> Option<String> {
    environment_endpoint("SECRETS_MANAGER")
}

/// GetSecretValue of `arn`, once.
pub async fn load_signing_secret(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<SigningSecret, SecretError> {
    let output = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|err| {
            SecretError::Read(aws_sdk_secretsmanager::error::DisplayErrorContext(&err).to_string())
        })?;
    let key = output.secret_string().ok_or(SecretError::NotAString)?;
    SigningSecret::new(key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_never_shown_and_never_empty() {
        let secret = SigningSecret::new("whsec_local_only").expect("key");
        assert_eq!(format!("{secret:?}"), "SigningSecret(<16 bytes>)");
        assert!(matches!(SigningSecret::new(" \n"), Err(SecretError::Empty)));
    }
}
