//! Faults DynamoDB Local cannot produce (throttling, conflicts, timeouts),
//! injected with aws-smithy-mocks: each must end as a retry, never a loss.

use super::*;
use crate::catalog_cache::CachedCatalog;
use crate::config::TableNames;
use crate::dispatch::{DispatchSettings, Dispatcher, Outcome};
use crate::error::StoreError;
use aws_sdk_dynamodb::error::{ErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemError, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsError, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::types::error::TransactionCanceledException;
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason};
use aws_sdk_dynamodb::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

fn tables() -> TableNames {
    TableNames {
        pending: "pending".into(),
        loyalty_offers: "offers".into(),
        catalog: "catalog".into(),
        rejected: "rejected".into(),
    }
}

fn catalog_output() -> BatchGetItemOutput {
    let item = |value: serde_json::Value| -> HashMap<String, AttributeValue> {
        serde_dynamo::to_item(value).unwrap_or_default()
    };
    BatchGetItemOutput::builder()
        .responses(
            "catalog",
            vec![
                item(json!({"id": "co-1", "kind": "configOffer", "name": "Coffee", "templateId": "tpl-1", "rules": {}})),
                item(json!({"id": "tpl-1", "kind": "offerTemplate", "configOfferId": "co-1", "rules": []})),
            ],
        )
        .build()
}

fn record(sequence: &str, sort_key: &str) -> serde_json::Value {
    json!({
        "eventID": format!("e-{sequence}"),
        "eventName": "INSERT",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": {"userId": {"S": "u1"}, "sortKey": {"S": sort_key}},
            "NewImage": {
                "userId": {"S": "u1"}, "sortKey": {"S": sort_key}, "offerId": {"S": "co-1"},
                "startDate": {"S": "2024-01-01T00:00:00Z"}, "expiryDate": {"S": "2099-01-01T00:00:00Z"}
            },
            "SequenceNumber": sequence,
            "SizeBytes": 100,
            "StreamViewType": "NEW_IMAGE"
        }
    })
}

fn dispatcher(client: Client) -> Dispatcher<DynamoStore, CachedCatalog<DynamoStore>> {
    let store = DynamoStore::new(client, tables());
    let catalog = CachedCatalog::new(store.clone(), Duration::from_secs(60));
    Dispatcher::new(
        store,
        catalog,
        DispatchSettings {
            concurrency: 4,
            deadline_margin: Duration::from_secs(1),
            retention: chrono::Duration::days(1),
        },
    )
}

fn client(rules: &[&Rule]) -> Client {
    // No SDK retries: each mocked answer is seen by the code under test.
    mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, rules, |config| config
        .retry_config(
            aws_sdk_dynamodb::config::retry::RetryConfig::disabled()
        ))
}

fn service_error(code: &str) -> TransactWriteItemsError {
    TransactWriteItemsError::generic(
        ErrorMetadata::builder()
            .code(code)
            .message("injected")
            .build(),
    )
}

fn cancelled(reasons: &[&str]) -> TransactWriteItemsError {
    TransactWriteItemsError::TransactionCanceledException(
        TransactionCanceledException::builder()
            .message("Transaction cancelled")
            .set_cancellation_reasons(Some(
                reasons
                    .iter()
                    .map(|code| CancellationReason::builder().code(*code).build())
                    .collect(),
            ))
            .build(),
    )
}

#[tokio::test]
async fn throttled_transactions_are_reported_failed_in_stream_order() {
    let catalog = mock!(Client::batch_get_item).then_output(catalog_output);
    let throttled =
        mock!(Client::transact_write_items).then_error(|| service_error("ThrottlingException"));
    let dispatcher = dispatcher(client(&[&catalog, &throttled]));
    let report = dispatcher
        .dispatch_batch(
            vec![record("1", "a"), record("2", "b"), record("3", "a")],
            None,
        )
        .await;
    assert_eq!(report.failed_sequence_numbers(), vec!["1", "2", "3"]);
    assert!(
        matches!(&report.records[0].outcome, Outcome::Failed { error } if error.contains("throttled"))
    );
    assert!(
        matches!(&report.records[2].outcome, Outcome::Failed { error } if error.contains("earlier record of the same key")),
        "the second record of key a is not attempted after the first failed"
    );
    assert_eq!(throttled.num_calls(), 2, "one attempt per key");
}

#[tokio::test]
async fn conflicts_are_transient_and_a_failed_condition_on_the_offer_is_a_duplicate() {
    let catalog = mock!(Client::batch_get_item).then_output(catalog_output);
    let conflict = mock!(Client::transact_write_items)
        .match_requests(|request| {
            request.transact_items()[0]
                .put()
                .is_some_and(|put| put.item()["sortKey"] == AttributeValue::S("a".into()))
        })
        .then_error(|| cancelled(&["None", "TransactionConflict"]));
    let duplicate = mock!(Client::transact_write_items)
        .match_requests(|request| {
            request.transact_items()[0]
                .put()
                .is_some_and(|put| put.item()["sortKey"] == AttributeValue::S("b".into()))
        })
        .then_error(|| cancelled(&["ConditionalCheckFailed", "None"]));
    let dispatcher = dispatcher(client(&[&catalog, &conflict, &duplicate]));
    let report = dispatcher
        .dispatch_batch(vec![record("1", "a"), record("2", "b")], None)
        .await;
    assert_eq!(report.failed_sequence_numbers(), vec!["1"]);
    assert!(
        matches!(&report.records[0].outcome, Outcome::Failed { error } if error.contains("(conflict)"))
    );
    assert!(
        matches!(
            report.records[1].outcome,
            Outcome::Duplicate {
                earlier: crate::dispatch::Earlier::Dispatched,
                ..
            }
        ),
        "a conflict on one item does not stop the others"
    );
}

#[tokio::test]
async fn once_the_store_is_found_down_no_new_write_starts_and_every_record_is_retried() {
    let catalog = mock!(Client::batch_get_item).then_output(catalog_output);
    let down =
        mock!(Client::transact_write_items).then_error(|| service_error("InternalServerError"));
    let dispatcher = dispatcher(client(&[&catalog, &down]));
    let records: Vec<serde_json::Value> = (1..=20)
        .map(|n| record(&n.to_string(), &format!("key-{n}")))
        .collect();
    let report = dispatcher.dispatch_batch(records, None).await;
    assert_eq!(
        report.failed_sequence_numbers().len(),
        20,
        "every record is retried"
    );
    assert!(
        down.num_calls() <= 4,
        "at most the writes already under way (concurrency 4) reach the store, not {}",
        down.num_calls()
    );
    let not_started = report
        .records
        .iter()
        .filter(|record| {
            matches!(&record.outcome, Outcome::Failed { error } if error.contains("found down"))
        })
        .count();
    assert_eq!(not_started, 20 - down.num_calls());
}

#[tokio::test]
async fn a_catalog_outage_fails_the_records_that_need_it_and_writes_nothing() {
    let catalog = mock!(Client::batch_get_item).then_error(|| {
        BatchGetItemError::generic(ErrorMetadata::builder().code("InternalServerError").build())
    });
    let writes = mock!(Client::transact_write_items)
        .then_output(|| TransactWriteItemsOutput::builder().build());
    let dispatcher = dispatcher(client(&[&catalog, &writes]));
    let mut expired = record("2", "b");
    expired["dynamodb"]["NewImage"]["startDate"] = json!({"S": "2019-01-01T00:00:00Z"});
    expired["dynamodb"]["NewImage"]["expiryDate"] = json!({"S": "2020-01-01T00:00:00Z"});
    let report = dispatcher
        .dispatch_batch(vec![record("1", "a"), expired], None)
        .await;
    assert_eq!(report.failed_sequence_numbers(), vec!["1"]);
    assert!(matches!(
        report.records[1].outcome,
        Outcome::Rejected {
            code: crate::domain::ReasonCode::Expired,
            ..
        }
    ));
    assert_eq!(
        writes.num_calls(),
        1,
        "only the expired row, which needs no catalog, is written (rejected)"
    );
}

#[test]
fn sdk_errors_are_classified_for_retry() {
    let timeout: SdkError<TransactWriteItemsError, ()> =
        SdkError::timeout_error("attempt timed out");
    assert!(matches!(classify(&timeout), StoreError::Timeout(_)));
    let throttled: SdkError<TransactWriteItemsError, ()> =
        SdkError::service_error(service_error("ProvisionedThroughputExceededException"), ());
    assert!(matches!(classify(&throttled), StoreError::Throttled(_)));
    let validation: SdkError<TransactWriteItemsError, ()> =
        SdkError::service_error(service_error("ValidationException"), ());
    let error = classify(&validation);
    assert!(matches!(error, StoreError::Refused(_)) && !error.is_transient());
    let internal: SdkError<TransactWriteItemsError, ()> =
        SdkError::service_error(service_error("InternalServerError"), ());
    assert!(classify(&internal).is_transient() && classify(&internal).is_outage());
    let conflict: SdkError<TransactWriteItemsError, ()> =
        SdkError::service_error(service_error("TransactionConflictException"), ());
    let error = classify(&conflict);
    assert!(matches!(error, StoreError::Conflict(_)) && error.is_transient() && !error.is_outage());
    assert!(
        !classify(&throttled).is_outage(),
        "a hot key is not an outage"
    );
}
