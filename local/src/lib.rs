//! The local test bed: DynamoDB Local as a child process, tables created from
//! template.yaml, and the tables' real streams read as Lambda events.

pub mod conventions;
pub mod dynamodb_local;
pub mod error;
pub mod event_source;
pub mod functions;
pub mod gateway;
pub mod invoke;
pub mod moto;
pub mod runtime_api;
pub mod stack;
pub mod step_functions;
mod stop;
pub mod streams;
pub mod template;

pub use dynamodb_local::{DynamoDbLocal, LocalError, StartOptions};
pub use error::{BedError, InvokeError};
pub use runtime_api::{Answer, RuntimeApi};
pub use streams::StreamReader;
pub use template::{SamTemplate, TableSet};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

/// The workspace root (where template.yaml lives), fixed at build time.
pub fn workspace_root() -> std::path::PathBuf {
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| crate_dir.join(".."))
}

/// SDK configuration for DynamoDB Local: its endpoint, a fixed region and fake keys.
pub async fn local_sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "local",
            "local",
            None,
            None,
            "dynamodb-local",
        ))
        .load()
        .await
}
