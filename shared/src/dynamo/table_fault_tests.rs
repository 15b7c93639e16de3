//! Faults of the operators' table operations that DynamoDB Local cannot
//! produce (throttling, conflicts, refusals, a put failing after its delete),
//! injected with aws-smithy-mocks; and pages followed, or not, as read. The
//! round trips themselves are tested on DynamoDB Local by `cli/tests/cli.rs`.

use super::fault_tests::{cancelled, client};
use super::*;
use crate::domain::ReasonCode;
use crate::error::StoreError;
use aws_sdk_dynamodb::error::ErrorMetadata;
use aws_sdk_dynamodb::operation::delete_item::{DeleteItemError, DeleteItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
use aws_sdk_dynamodb::operation::scan::{ScanError, ScanOutput};
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsError, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use aws_smithy_mocks::{mock, Rule};
use chrono::Utc;
use futures::TryStreamExt;
use serde_json::json;
use std::time::Duration;

/// Retries at once, at most `retries` times.
fn pause(retries: u32) -> impl FnMut(u32) -> Option<Duration> {
    move |retry| (retry <= retries).then_some(Duration::ZERO)
}

fn item(value: serde_json::Value) -> Item {
    serde_dynamo::to_item(value).unwrap_or_default()
}

fn service_error<E>(code: &str, make: impl Fn(ErrorMetadata) -> E) -> E {
    make(
        ErrorMetadata::builder()
            .code(code)
            .message("injected")
            .build(),
    )
}

fn retryable() -> Retryable {
    let rejection = StoredRejection::new(item(json!({
        "userId": "u1", "sortKey": "c+co-1", "offerId": "co-1",
        "startDate": "2024-01-01T00:00:00Z", "expiryDate": "2099-01-01T00:00:00Z",
        "rejectionId": "r-1", "reasonCode": "unknown_offer", "reasonMessage": "m",
        "rejectedAt": "2024-06-01T00:00:00Z", "sourceEventId": "e-1", "sourceSequenceNumber": "1"
    })));
    rejection.retryable(Utc::now()).expect("retryable")
}

async fn retry_with(rules: &[&Rule], retries: u32) -> Result<RetryOutcome, CallError> {
    let client = client(rules);
    let rejected = RejectedTable::new(client.clone(), "rejected");
    let pending = PendingTable::new(client.clone(), "pending");
    let offers = LoyaltyOffersTable::new(client, "offers");
    rejected
        .retry(&retryable(), &pending, &offers, pause(retries))
        .await
}

#[tokio::test]
async fn a_retry_is_one_transaction_of_put_delete_and_the_offer_check() {
    let transaction = mock!(Client::transact_write_items)
        .match_requests(|request| {
            let items = request.transact_items();
            let put = items.first().and_then(|item| item.put());
            let delete = items.get(1).and_then(|item| item.delete());
            let check = items.get(2).and_then(|item| item.condition_check());
            put.is_some_and(|put| {
                put.table_name() == "pending"
                    && !put.item().contains_key("rejectionId")
                    && put.condition_expression() == Some("attribute_not_exists(userId)")
            }) && delete.is_some_and(|delete| {
                delete.table_name() == "rejected"
                    && delete.key().get("rejectionId") == Some(&AttributeValue::S("r-1".into()))
            }) && check.is_some_and(|check| {
                check.table_name() == "offers"
                    && check.key().get("personalizedOfferId")
                        == Some(&AttributeValue::S("r-1".into()))
            })
        })
        .then_output(|| TransactWriteItemsOutput::builder().build());
    let outcome = retry_with(&[&transaction], 0).await;
    assert_eq!(outcome, Ok(RetryOutcome::Retried));
    assert_eq!(transaction.num_calls(), 1);
}

#[tokio::test]
async fn a_throttled_or_conflicting_retry_is_tried_again_and_a_refused_one_is_not() {
    let busy = mock!(Client::transact_write_items)
        .sequence()
        .error(|| cancelled(&["None", "ThrottlingError", "None"]))
        .error(|| cancelled(&["TransactionConflict", "None", "None"]))
        .output(|| TransactWriteItemsOutput::builder().build())
        .build();
    assert_eq!(retry_with(&[&busy], 5).await, Ok(RetryOutcome::Retried));
    assert_eq!(busy.num_calls(), 3);

    let refused = mock!(Client::transact_write_items)
        .then_error(|| cancelled(&["ValidationError", "None", "None"]));
    let err = retry_with(&[&refused], 5).await.expect_err("refused");
    assert!(matches!(err.error, StoreError::Refused(_)), "{err}");
    assert_eq!(refused.num_calls(), 1, "a refusal is not retried");

    let throttled = mock!(Client::transact_write_items)
        .then_error(|| service_error("ThrottlingException", TransactWriteItemsError::generic));
    let err = retry_with(&[&throttled], 2).await.expect_err("gave up");
    assert!(matches!(err.error, StoreError::Throttled(_)), "{err}");
    assert_eq!(throttled.num_calls(), 3, "the first call and two retries");
    assert!(err.doing.contains("r-1"), "{err}");
}

#[tokio::test]
async fn failed_conditions_are_skips_the_gone_rejection_first() {
    let cases = [
        (
            ["None", "None", "ConditionalCheckFailed"],
            RetrySkip::AlreadyDispatched,
        ),
        (
            ["ConditionalCheckFailed", "None", "None"],
            RetrySkip::PendingRowExists,
        ),
        (
            [
                "ConditionalCheckFailed",
                "ConditionalCheckFailed",
                "ConditionalCheckFailed",
            ],
            RetrySkip::RejectionGone,
        ),
        (
            ["ConditionalCheckFailed", "None", "ConditionalCheckFailed"],
            RetrySkip::AlreadyDispatched,
        ),
    ];
    for (reasons, skip) in cases {
        let rule = mock!(Client::transact_write_items).then_error(move || cancelled(&reasons));
        assert_eq!(
            retry_with(&[&rule], 5).await,
            Ok(RetryOutcome::Skipped(skip.clone())),
            "{reasons:?}"
        );
        assert_eq!(rule.num_calls(), 1, "a skip is not retried");
    }
}

fn row() -> Item {
    item(json!({"userId": "u1", "sortKey": "k1", "offerId": "co-1"}))
}

fn deleted() -> Rule {
    mock!(Client::delete_item).then_output(|| {
        DeleteItemOutput::builder()
            .set_attributes(Some(row()))
            .build()
    })
}

fn key() -> PendingKey {
    PendingKey {
        user_id: "u1".into(),
        sort_key: "k1".into(),
    }
}

#[tokio::test]
async fn a_redriven_row_is_put_back_through_throttling_or_left_to_a_newer_row() {
    let delete = deleted();
    let put = mock!(Client::put_item)
        .sequence()
        .error(|| service_error("ThrottlingException", PutItemError::generic))
        .times(2)
        .output(|| PutItemOutput::builder().build())
        .build();
    let pending = PendingTable::new(client(&[&delete, &put]), "pending");
    assert_eq!(pending.redrive(&key(), pause(5)).await, Ok(Redriven::Again));
    assert_eq!((delete.num_calls(), put.num_calls()), (1, 3));

    let delete = deleted();
    let newer = mock!(Client::put_item).then_error(|| {
        PutItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder().build(),
        )
    });
    let pending = PendingTable::new(client(&[&delete, &newer]), "pending");
    assert_eq!(
        pending.redrive(&key(), pause(5)).await,
        Ok(Redriven::Replaced)
    );
    assert_eq!(newer.num_calls(), 1);

    let gone = mock!(Client::delete_item).then_output(|| DeleteItemOutput::builder().build());
    let pending = PendingTable::new(client(&[&gone]), "pending");
    assert_eq!(pending.redrive(&key(), pause(5)).await, Ok(Redriven::Gone));
}

#[tokio::test]
async fn a_row_deleted_and_not_put_back_comes_back_in_the_error() {
    let delete = deleted();
    let refused = mock!(Client::put_item)
        .then_error(|| service_error("ValidationException", PutItemError::generic));
    let pending = PendingTable::new(client(&[&delete, &refused]), "pending");
    match pending.redrive(&key(), pause(5)).await {
        Err(RedriveError::NotPutBack { row: kept, error }) => {
            assert_eq!(kept, row());
            assert!(matches!(error.error, StoreError::Refused(_)), "{error}");
            assert_eq!(error.doing, "putting u1/k1 back");
        }
        other => panic!("expected the row back, got {other:?}"),
    }
    assert_eq!(refused.num_calls(), 1, "a refusal is not retried");

    let unavailable = mock!(Client::delete_item)
        .then_error(|| service_error("InternalServerError", DeleteItemError::generic));
    let pending = PendingTable::new(client(&[&unavailable]), "pending");
    match pending.redrive(&key(), pause(5)).await {
        Err(RedriveError::NotTaken(error)) => {
            assert!(error.error.is_transient(), "{error}");
            assert_eq!(error.doing, "deleting u1/k1");
        }
        other => panic!("expected the delete's error, got {other:?}"),
    }
}

fn rejection_item(id: &str) -> Item {
    item(json!({"userId": "u1", "rejectionId": id, "reasonCode": "expired"}))
}

fn scan_pages() -> Rule {
    mock!(Client::scan)
        .sequence()
        .output(|| {
            ScanOutput::builder()
                .items(rejection_item("r-1"))
                .items(rejection_item("r-2"))
                .last_evaluated_key("rejectionId", AttributeValue::S("r-2".into()))
                .build()
        })
        .output(|| ScanOutput::builder().items(rejection_item("r-3")).build())
        .build()
}

#[tokio::test]
async fn rejection_pages_are_followed_to_the_end_and_filtered_by_id() {
    let scan = scan_pages();
    let rejected = RejectedTable::new(client(&[&scan]), "rejected");
    let filter = RejectionFilter {
        reason: Some(ReasonCode::Expired),
        ids: ["r-1", "r-3"].map(str::to_owned).into(),
        ..RejectionFilter::default()
    };
    let pages: Vec<Vec<StoredRejection>> =
        rejected.pages(&filter).try_collect().await.expect("pages");
    let ids: Vec<Vec<&str>> = pages
        .iter()
        .map(|page| page.iter().filter_map(|r| r.text("rejectionId")).collect())
        .collect();
    assert_eq!(ids, vec![vec!["r-1"], vec!["r-3"]]);
    assert_eq!(scan.num_calls(), 2);

    // A reader that stops after the first page asks for no other.
    let scan = scan_pages();
    let rejected = RejectedTable::new(client(&[&scan]), "rejected");
    let mut pages = rejected.pages(&RejectionFilter::default());
    assert_eq!(
        pages.try_next().await.expect("page").map(|p| p.len()),
        Some(2)
    );
    drop(pages);
    assert_eq!(scan.num_calls(), 1);
}

#[tokio::test]
async fn counts_follow_every_page_and_errors_say_what_was_done() {
    let scan = scan_pages();
    let rejected = RejectedTable::new(client(&[&scan]), "rejected");
    let counts = rejected.counts().await.expect("counts");
    assert_eq!(counts.total, 3);
    assert_eq!(counts.by_reason, [("expired".to_owned(), 3)].into());

    let missing = mock!(Client::scan)
        .then_error(|| service_error("ResourceNotFoundException", ScanError::generic));
    let rejected = RejectedTable::new(client(&[&missing]), "rejected");
    let err = rejected.counts().await.expect_err("missing");
    assert_eq!(err.fault, Fault::TableMissing);
    assert_eq!(err.doing, "scanning rejected");
    assert_eq!(
        err.error.detail(),
        "ResourceNotFoundException: injected",
        "the code and message, not the SDK's debug rendering"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_its_own_fault() {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "k", "s", None, None, "test",
        ))
        // Port 1 on the loopback: nothing listens, the connection is refused.
        .endpoint_url("http://127.0.0.1:1")
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    let pending = PendingTable::new(Client::from_conf(config), "pending");
    let err = pending.count().await.expect_err("unreachable");
    assert_eq!(err.fault, Fault::Unreachable, "{err}");
    assert_eq!(err.doing, "counting the items of pending");
}
