use crate::error::StoreError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;

/// Service error codes that mean "try again later".
const THROTTLING_CODES: [&str; 3] = [
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
];
/// `InternalFailure` is the AWS-wide code of an HTTP 500 (DynamoDB Local
/// answers it under load): a failure of the service, never of the request.
const TRANSIENT_CODES: [&str; 3] = [
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
];
/// Service error codes that mean "this item is busy, try again".
const CONFLICT_CODES: [&str; 2] = [
    "TransactionConflictException",
    "TransactionInProgressException",
];

/// Maps an SDK error to retry (throttled, timeout, unavailable, conflict) or give up (refused).
/// The detail is the SDK's full rendering, for logs.
pub fn classify<E, R>(err: &SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    classify_with(err, DisplayErrorContext(err).to_string())
}

/// [`classify`] with a short detail ([`error_summary`]): for an operator's
/// terminal, where the SDK's full rendering (the raw response) is noise.
pub fn classify_briefly<E, R>(err: &SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    classify_with(err, error_summary(err))
}

fn classify_with<E, R>(err: &SdkError<E, R>, detail: String) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::TimeoutError(_) => StoreError::Timeout(detail),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => StoreError::Timeout(detail),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(detail)
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            if THROTTLING_CODES.contains(&code) {
                StoreError::Throttled(detail)
            } else if CONFLICT_CODES.contains(&code) {
                StoreError::Conflict(detail)
            } else if TRANSIENT_CODES.contains(&code) || code.is_empty() {
                StoreError::Unavailable(detail)
            } else {
                StoreError::Refused(detail)
            }
        }
        SdkError::ConstructionFailure(_) => StoreError::Refused(detail),
        _ => StoreError::Unavailable(detail),
    }
}

/// A service error as its code and message; other errors with their causes.
pub fn error_summary<E, R>(err: &SdkError<E, R>) -> String
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

/// What an operator can check when a call failed, beyond its classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The table does not exist where the client looked (region, endpoint, name).
    TableMissing,
    /// The request never reached DynamoDB (connection refused, unknown host).
    Unreachable,
    /// Anything else: the classification's detail says it.
    Other,
}

/// A failed call of an operation that the command line runs: what it was
/// doing (`scanning T`), the classification with a short detail, and the fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{doing}: {error}")]
pub struct CallError {
    pub doing: String,
    pub error: StoreError,
    pub fault: Fault,
}

impl CallError {
    pub fn new<E, R>(doing: impl Into<String>, err: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let code = err.as_service_error().and_then(|service| service.code());
        let fault = match err {
            _ if code == Some("ResourceNotFoundException") => Fault::TableMissing,
            SdkError::DispatchFailure(failure) if failure.is_io() => Fault::Unreachable,
            _ => Fault::Other,
        };
        Self {
            doing: doing.into(),
            error: classify_briefly(err),
            fault,
        }
    }

    /// An error that is not an SDK error of its own (a cancelled transaction's reasons).
    pub fn of(doing: impl Into<String>, error: StoreError) -> Self {
        Self {
            doing: doing.into(),
            error,
            fault: Fault::Other,
        }
    }
}
