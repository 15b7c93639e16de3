use crate::error::StoreError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;

/// Service error codes that mean "try again later".
const THROTTLING_CODES: [&str; 3] = [
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
];
const TRANSIENT_CODES: [&str; 2] = ["InternalServerError", "ServiceUnavailable"];
/// Service error codes that mean "this item is busy, try again".
const CONFLICT_CODES: [&str; 2] = [
    "TransactionConflictException",
    "TransactionInProgressException",
];

/// Maps an SDK error to retry (throttled, timeout, unavailable, conflict) or give up (refused).
pub fn classify<E, R>(err: &SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let detail = DisplayErrorContext(err).to_string();
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
