use crate::config::SdkSettings;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Region, SharedCredentialsProvider};
use aws_sdk_dynamodb::Client;
use aws_types::app_name::AppName;
use aws_types::SdkConfig;

/// A DynamoDB client whose timeouts and retries end inside the function timeout.
/// Endpoint, region and credentials come from `sdk_config` (in a function,
/// [`environment_sdk_config`], so `AWS_ENDPOINT_URL` points it at DynamoDB Local).
pub fn dynamodb_client(sdk_config: &SdkConfig, settings: &SdkSettings) -> Client {
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

/// The AWS configuration of a function: what Lambda puts in its environment,
/// and nothing else.
///
/// - region: `AWS_REGION`, else `AWS_DEFAULT_REGION`;
/// - credentials: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
///   `AWS_SESSION_TOKEN`, through aws-config's environment provider (read at
///   the first call; without them calls fail with a credentials error, as
///   they did when the default chain found none);
/// - endpoint: `AWS_ENDPOINT_URL_DYNAMODB`, else `AWS_ENDPOINT_URL` (DynamoDB
///   Local in tests and the local stack), none when
///   `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is true;
/// - `AWS_USE_FIPS_ENDPOINT`, `AWS_USE_DUALSTACK_ENDPOINT`, `AWS_SDK_UA_APP_ID`.
///
/// `aws_config::load_from_env` reads these first too, then falls back to
/// profile files, SSO, web identity (with an STS client), container and
/// instance metadata: none of which Lambda gives a function, and whose code
/// the function binaries no longer carry (docs/benchmarks.md). Retries and
/// timeouts are the function's own ([`dynamodb_client`]); the HTTP client,
/// identity cache, sleep and time source are the SDK's defaults, as with
/// `load_from_env`.
/// Synchronous: nothing is read but the environment.
pub fn environment_sdk_config() -> SdkConfig {
    sdk_config_from(|name| std::env::var(name).ok())
}

/// The endpoint the environment gives another service than DynamoDB
/// (`AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`; none when
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is true): the SdkConfig of
/// [`environment_sdk_config`] carries DynamoDB's, which another service's
/// client must not inherit. `service` is the variable's suffix, e.g.
/// `SECRETS_MANAGER`.
pub fn environment_endpoint(service: &str) -> Option<String> {
    endpoint_from(service, |name| std::env::var(name).ok())
}

fn endpoint_from(service: &str, var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let set = |name: &str| var(name).filter(|value| !value.trim().is_empty());
    if set("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
    {
        return None;
    }
    set(&format!("AWS_ENDPOINT_URL_{service}")).or_else(|| set("AWS_ENDPOINT_URL"))
}

fn sdk_config_from(var: impl Fn(&str) -> Option<String>) -> SdkConfig {
    let set = |name: &str| var(name).filter(|value| !value.trim().is_empty());
    let flag = |name: &str| match set(name) {
        Some(value) if value.trim().eq_ignore_ascii_case("true") => Some(true),
        Some(value) if value.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    };
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(
            set("AWS_REGION")
                .or_else(|| set("AWS_DEFAULT_REGION"))
                .map(Region::new),
        )
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ));
    if flag("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") != Some(true) {
        if let Some(url) = set("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| set("AWS_ENDPOINT_URL")) {
            builder = builder.endpoint_url(url);
        }
    }
    if let Some(use_fips) = flag("AWS_USE_FIPS_ENDPOINT") {
        builder = builder.use_fips(use_fips);
    }
    if let Some(use_dual_stack) = flag("AWS_USE_DUALSTACK_ENDPOINT") {
        builder = builder.use_dual_stack(use_dual_stack);
    }
    if let Some(app_name) = set("AWS_SDK_UA_APP_ID").and_then(|name| AppName::new(name).ok()) {
        builder = builder.app_name(app_name);
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(variables: &[(&str, &str)]) -> SdkConfig {
        let variables: HashMap<String, String> = variables
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        sdk_config_from(|name| variables.get(name).cloned())
    }

    #[test]
    fn region_and_endpoint_from_the_environment() {
        let local = config(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:8000"),
        ]);
        assert_eq!(local.region().map(Region::as_ref), Some("eu-west-1"));
        assert_eq!(local.endpoint_url(), Some("http://127.0.0.1:8000"));
        assert!(local.credentials_provider().is_some());
        assert_eq!(local.behavior_version(), Some(BehaviorVersion::latest()));

        let lambda = config(&[("AWS_DEFAULT_REGION", "us-east-1")]);
        assert_eq!(lambda.region().map(Region::as_ref), Some("us-east-1"));
        assert_eq!(lambda.endpoint_url(), None);
        assert_eq!(lambda.use_fips(), None);
    }

    #[test]
    fn endpoint_of_the_service_first_and_the_switches() {
        let both = config(&[
            ("AWS_ENDPOINT_URL", "http://global:1"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://dynamodb:2"),
            ("AWS_USE_FIPS_ENDPOINT", "TRUE"),
            ("AWS_USE_DUALSTACK_ENDPOINT", "false"),
        ]);
        assert_eq!(both.endpoint_url(), Some("http://dynamodb:2"));
        assert_eq!(both.use_fips(), Some(true));
        assert_eq!(both.use_dual_stack(), Some(false));
        let ignored = config(&[
            ("AWS_ENDPOINT_URL", "http://global:1"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]);
        assert_eq!(ignored.endpoint_url(), None);
        assert_eq!(config(&[("AWS_ENDPOINT_URL", " ")]).endpoint_url(), None);
    }

    #[test]
    fn another_services_endpoint_is_its_own_not_dynamodbs() {
        let variables = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| value.to_string())
            }
        };
        let local = variables(&[
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://dynamodb:2"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://moto:3"),
        ]);
        assert_eq!(
            endpoint_from("SECRETS_MANAGER", local).as_deref(),
            Some("http://moto:3")
        );
        let only_dynamodb = variables(&[("AWS_ENDPOINT_URL_DYNAMODB", "http://dynamodb:2")]);
        assert_eq!(endpoint_from("SECRETS_MANAGER", only_dynamodb), None);
        let global = variables(&[("AWS_ENDPOINT_URL", "http://global:1")]);
        assert_eq!(
            endpoint_from("SECRETS_MANAGER", global).as_deref(),
            Some("http://global:1")
        );
        let ignored = variables(&[
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://moto:3"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]);
        assert_eq!(endpoint_from("SECRETS_MANAGER", ignored), None);
    }
}
