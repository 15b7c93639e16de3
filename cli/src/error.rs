//! What can go wrong, and the exit code each kind of failure ends with.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use std::path::PathBuf;

/// Exit codes (docs/cli.md): 0 ok, 1 invalid input, 2 command-line usage
/// (clap's, and a table whose name is unknown), 3 AWS or service failure.
pub mod exit_code {
    pub const OK: u8 = 0;
    pub const INVALID_INPUT: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const SERVICE: u8 = 3;
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Rows, catalog items or filters that cannot be accepted.
    #[error("{0}")]
    Invalid(String),
    /// The input file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Something clap cannot check is missing from the command line (a table name).
    #[error("{0}")]
    Usage(String),
    /// DynamoDB refused or failed, or rows were left unwritten.
    #[error("{0}")]
    Service(String),
    /// The temporary file of the duplicate-key check (in TMPDIR) failed.
    #[error("the duplicate-key check's temporary file failed (TMPDIR): {0}")]
    Scratch(#[source] std::io::Error),
    /// Standard output was closed or could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Invalid(_)
            | CliError::Read { .. }
            | CliError::Scratch(_)
            | CliError::Output(_) => exit_code::INVALID_INPUT,
            CliError::Usage(_) => exit_code::USAGE,
            CliError::Service(_) => exit_code::SERVICE,
        }
    }

    /// A reader of our output that went away (`offers ... | head`) is not worth a message.
    pub fn is_closed_output(&self) -> bool {
        matches!(self, CliError::Output(err) if err.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// A DynamoDB call that failed, with what we were doing (`scanning table X`).
    pub fn service<E, R>(doing: impl std::fmt::Display, err: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let detail = match (err, err.as_service_error().and_then(|e| e.code())) {
            (_, Some("ResourceNotFoundException")) => {
                "the table does not exist here (check the region, endpoint and table names)"
                    .to_owned()
            }
            (SdkError::DispatchFailure(failure), _) if failure.is_io() => format!(
                "cannot reach DynamoDB (is the endpoint right? with --local, is the local stack running?): {}",
                error_chain(err)
            ),
            _ => sdk_error_summary(err),
        };
        CliError::Service(format!("{doing}: {detail}"))
    }
}

/// A service error as its code and message (the SDK's full rendering
/// carries the raw response); other errors with their causes.
pub fn sdk_error_summary<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match err.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("service error"),
            service.message().unwrap_or_default()
        ),
        None => error_chain(err),
    }
}

/// An error and its causes, as `a: b: c` (without the SDK's debug dump).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors repeat their cause in their own message.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `classify` (retry or give up) with the short summary as its detail.
pub fn store_error<E, R>(err: &SdkError<E, R>) -> offers_shared::error::StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    use offers_shared::error::StoreError;
    let detail = sdk_error_summary(err);
    match offers_shared::dynamo::classify(err) {
        StoreError::Throttled(_) => StoreError::Throttled(detail),
        StoreError::Timeout(_) => StoreError::Timeout(detail),
        StoreError::Unavailable(_) => StoreError::Unavailable(detail),
        StoreError::Conflict(_) => StoreError::Conflict(detail),
        StoreError::Refused(_) => StoreError::Refused(detail),
        StoreError::Corrupt(_) => StoreError::Corrupt(detail),
        unconfigured @ StoreError::Unconfigured(_) => unconfigured,
    }
}
