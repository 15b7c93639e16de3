//! Where the tables are: the DynamoDB client (local stack or the standard AWS
//! configuration) and the table names.

use crate::cli::ConnectionArgs;
use crate::error::CliError;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{Credentials, ProvideCredentials};
use aws_sdk_dynamodb::Client;
use offers_shared::dynamo::error_chain;
use offers_shared::local_conventions::{LOCAL_DYNAMODB_ENDPOINT, LOCAL_TABLE_PREFIX};
use std::time::Duration;

/// The tables of template.yaml, as the functions know them (one list).
pub use offers_shared::config::Table;

/// Physical table names, as far as they are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    names: [Option<String>; Table::ALL.len()],
}

impl TableNames {
    /// The local stack's names: `offers-local-<LogicalId>`.
    pub fn local() -> Self {
        Self {
            names: Table::ALL
                .map(|table| Some(format!("{LOCAL_TABLE_PREFIX}{}", table.logical_id()))),
        }
    }

    /// A `*_TABLE_NAME` variable wins; else `<prefix><LogicalId>`; else unknown.
    pub fn resolve(prefix: Option<&str>, variable: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            names: Table::ALL.map(|table| {
                variable(table.variable())
                    .filter(|name| !name.trim().is_empty())
                    .or_else(|| prefix.map(|prefix| format!("{prefix}{}", table.logical_id())))
            }),
        }
    }

    /// The table's name, or a usage error naming the variable to set.
    pub fn name(&self, table: Table) -> Result<&str, CliError> {
        // `Table::ALL` is in declaration order, so the discriminant is the index.
        self.names[table as usize].as_deref().ok_or_else(|| {
            CliError::Usage(format!(
                "the name of {} is unknown: set {} (stack output {}Name), or pass --table-prefix, or --local",
                table.logical_id(),
                table.variable(),
                table.logical_id()
            ))
        })
    }
}

/// How the CLI reaches DynamoDB, from the global options.
#[derive(Debug, Clone)]
pub struct Connection {
    args: ConnectionArgs,
}

impl Connection {
    pub fn new(args: ConnectionArgs) -> Self {
        Self { args }
    }

    pub fn is_local(&self) -> bool {
        self.args.local
    }

    pub fn table_names(&self) -> TableNames {
        if self.args.local {
            TableNames::local()
        } else {
            TableNames::resolve(self.args.table_prefix.as_deref(), |name| {
                std::env::var(name).ok()
            })
        }
    }

    /// The AWS configuration: the local stack's (fixed region, fake keys)
    /// with --local, else the standard chain (--region, --profile), with
    /// its region and credentials checked once, up front.
    pub async fn sdk_config(&self) -> Result<aws_config::SdkConfig, CliError> {
        let args = &self.args;
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if args.local {
            loader = loader
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("local", "local", None, None, "local"));
        } else {
            if let Some(region) = &args.region {
                loader = loader.region(Region::new(region.clone()));
            }
            if let Some(profile) = &args.profile {
                loader = loader.profile_name(profile);
            }
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(CliError::Usage(
                "no AWS region: pass --region, set AWS_REGION, or use a profile with a region"
                    .to_owned(),
            ));
        }
        // Once, up front: without credentials every call would fail, each after retries.
        if let Some(provider) = sdk.credentials_provider() {
            provider.provide_credentials().await.map_err(|err| {
                CliError::Usage(format!(
                    "no AWS credentials: {} (set AWS_PROFILE or --profile, run `aws sso login`, or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
                    error_chain(&err)
                ))
            })?;
        }
        Ok(sdk)
    }

    /// A DynamoDB client. Loading the AWS configuration reads no table, so a
    /// command still fails on a missing table name before any call.
    pub async fn client(&self) -> Result<Client, CliError> {
        let args = &self.args;
        let endpoint = match (args.local, &args.endpoint_url) {
            (_, Some(url)) => Some(url.clone()),
            (true, None) => Some(LOCAL_DYNAMODB_ENDPOINT.to_owned()),
            (false, None) => None,
        };
        let sdk = self.sdk_config().await?;
        let mut config = aws_sdk_dynamodb::config::Builder::from(&sdk)
            // Longer than the functions' limits: a Scan page of a big table may take a while.
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(20))
                    .operation_timeout(Duration::from_secs(60))
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(3));
        // Set on the service too, so that it also wins over AWS_ENDPOINT_URL_DYNAMODB.
        if let Some(endpoint) = endpoint {
            config = config.endpoint_url(endpoint);
        }
        Ok(Client::from_conf(config.build()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offers_shared::config;

    #[test]
    fn variables_win_over_the_prefix() {
        let names = TableNames::resolve(Some("dev-"), |name| {
            (name == config::REJECTED_TABLE_VARIABLE).then(|| "my-rejections".to_owned())
        });
        assert_eq!(
            names.name(Table::Pending).expect("known"),
            "dev-PendingPersonalizedOffersTable"
        );
        assert_eq!(names.name(Table::Rejected).expect("known"), "my-rejections");
    }

    #[test]
    fn an_unknown_name_is_a_usage_error_naming_the_variable() {
        let names = TableNames::resolve(None, |name| {
            (name == config::PENDING_TABLE_VARIABLE).then(|| "pending".to_owned())
        });
        assert_eq!(names.name(Table::Pending).expect("known"), "pending");
        let err = names.name(Table::Catalog).expect_err("unknown");
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string().contains(config::CATALOG_TABLE_VARIABLE),
            "{err}"
        );
    }

    #[test]
    fn the_local_stack_has_fixed_names() {
        assert_eq!(
            TableNames::local().name(Table::Catalog).expect("known"),
            "offers-local-OfferCatalogTable"
        );
    }
}
