//! Cancelled transactions, read in one place: which condition failed, and
//! what a cancellation that is not a condition means (retry or give up).

use crate::error::StoreError;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::error::TransactionCanceledException;

/// The cancellation reason of an item whose condition was not met.
pub(super) const CONDITIONAL_CHECK_FAILED: &str = "ConditionalCheckFailed";
/// A cancellation reason: DynamoDB refused the item itself (too large, a
/// value it cannot store). Permanent: never retried.
const VALIDATION_ERROR: &str = "ValidationError";

/// `Ok(None)` when the transaction went through, `Ok(Some(reasons))` when
/// it was cancelled, any other error as `classify` makes it.
pub(super) fn cancelled<T, R, E>(
    result: Result<T, SdkError<TransactWriteItemsError, R>>,
    classify: impl FnOnce(&SdkError<TransactWriteItemsError, R>) -> E,
) -> Result<Option<Vec<String>>, E> {
    let err = match result {
        Ok(_) => return Ok(None),
        Err(err) => err,
    };
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            Ok(Some(cancellation_codes(cancelled)))
        }
        _ => Err(classify(&err)),
    }
}

/// Whether the condition of the transaction's item at `index` failed.
pub(super) fn condition_failed(reasons: &[String], index: usize) -> bool {
    reasons.get(index).map(String::as_str) == Some(CONDITIONAL_CHECK_FAILED)
}

/// What a cancellation that is not a condition means: a refusal of an item
/// (permanent), throttling or a conflict on one item, or trouble of the service.
pub fn cancellation_error(reasons: &[String]) -> StoreError {
    let detail = format!("transaction cancelled: {reasons:?}");
    if reasons.iter().any(|code| code == VALIDATION_ERROR) {
        StoreError::Refused(detail)
    } else if reasons
        .iter()
        .any(|code| code.contains("Throttl") || code.contains("ThroughputExceeded"))
    {
        StoreError::Throttled(detail)
    } else if reasons.iter().any(|code| code == "TransactionConflict") {
        StoreError::Conflict(detail)
    } else {
        StoreError::Unavailable(detail)
    }
}

/// Cancellation reason codes in item order. DynamoDB also spells them in the
/// message (`[ConditionalCheckFailed, None]`), used when the list is absent.
pub fn cancellation_codes(cancelled: &TransactionCanceledException) -> Vec<String> {
    let listed: Vec<String> = cancelled
        .cancellation_reasons()
        .iter()
        .map(|reason| reason.code().unwrap_or("None").to_owned())
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    let message = cancelled.message().unwrap_or_default();
    match (message.rfind('['), message.rfind(']')) {
        (Some(open), Some(close)) if open < close => message[open + 1..close]
            .split(',')
            .map(|code| code.trim().to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(list: &[&str]) -> Vec<String> {
        list.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn refusals_of_an_item_are_permanent_and_the_rest_transient() {
        assert!(matches!(
            cancellation_error(&codes(&["ValidationError", "None", "None"])),
            StoreError::Refused(_)
        ));
        assert!(matches!(
            cancellation_error(&codes(&["None", "ThrottlingError", "None"])),
            StoreError::Throttled(_)
        ));
        assert!(matches!(
            cancellation_error(&codes(&["TransactionConflict", "None", "None"])),
            StoreError::Conflict(_)
        ));
        assert!(cancellation_error(&codes(&["InternalServerError"])).is_outage());
    }

    #[test]
    fn reasons_are_read_from_the_message_when_not_listed() {
        let cancelled = TransactionCanceledException::builder()
            .message("Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]")
            .build();
        let reasons = cancellation_codes(&cancelled);
        assert_eq!(reasons, codes(&["None", "ConditionalCheckFailed"]));
        assert!(condition_failed(&reasons, 1));
        assert!(!condition_failed(&reasons, 0));
        assert!(!condition_failed(&reasons, 2), "no such item");
    }
}
