//! Faults DynamoDB Local cannot produce (throttling, conflicts, timeouts),
//! injected with aws-smithy-mocks: each must end as a retry, never a loss.

use super::*;
use crate::catalog_cache::CachedCatalog;
use crate::config::TableNames;
use crate::dispatch::{
    DispatchOutcome, DispatchSettings, Dispatcher, Failure, InsertRecord, Outcome, StreamInput,
};
use crate::error::StoreError;
use aws_sdk_dynamodb::error::{ErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemError, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
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
    TableNames::all("pending", "offers", "catalog", "rejected")
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

/// A pending row's plain attributes.
fn record(sequence: &str, sort_key: &str) -> (String, serde_json::Value) {
    (
        sequence.to_owned(),
        json!({
            "userId": "u1", "sortKey": sort_key, "offerId": "co-1",
            "startDate": "2024-01-01T00:00:00Z", "expiryDate": "2099-01-01T00:00:00Z"
        }),
    )
}

/// The INSERTs of the rows, as the handler reads them from a stream event.
fn inserts(rows: Vec<(String, serde_json::Value)>) -> Vec<StreamInput> {
    rows.into_iter()
        .map(|(sequence, row)| {
            let sort_key = row["sortKey"].as_str().unwrap_or_default().to_owned();
            let image: serde_dynamo::Item = serde_dynamo::to_item(row).unwrap_or_default();
            crate::stream::Input::Change(Box::new(InsertRecord::from_image(
                format!("e-{sequence}"),
                sequence,
                ("u1".into(), sort_key),
                image,
                None,
            )))
        })
        .collect()
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

pub(super) fn client(rules: &[&Rule]) -> Client {
    // The rejections mark's raise (a conditional PutItem before a batch's
    // first rejection) succeeds unless a test says otherwise: these tests are
    // about the transactions' faults.
    let mark = mock!(Client::put_item).then_output(|| PutItemOutput::builder().build());
    let rules: Vec<&Rule> = rules.iter().copied().chain([&mark]).collect();
    // No SDK retries: each mocked answer is seen by the code under test.
    mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &rules, |config| {
        config.retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
    })
}

fn service_error(code: &str) -> TransactWriteItemsError {
    TransactWriteItemsError::generic(
        ErrorMetadata::builder()
            .code(code)
            .message("injected")
            .build(),
    )
}

pub(super) fn cancelled(reasons: &[&str]) -> TransactWriteItemsError {
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
        .apply_batch(
            inserts(vec![record("1", "a"), record("2", "b"), record("3", "a")]),
            None,
        )
        .await;
    assert_eq!(report.failed_sequence_numbers(), vec!["1", "2", "3"]);
    assert!(matches!(
        &report.records[0].outcome,
        Outcome::Failed(Failure::Store(StoreError::Throttled(_)))
    ));
    assert!(
        matches!(
            &report.records[2].outcome,
            Outcome::Failed(Failure::EarlierRecordOfKey)
        ),
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
        .apply_batch(inserts(vec![record("1", "a"), record("2", "b")]), None)
        .await;
    assert_eq!(report.failed_sequence_numbers(), vec!["1"]);
    assert!(matches!(
        &report.records[0].outcome,
        Outcome::Failed(Failure::Store(StoreError::Conflict(_)))
    ));
    assert!(
        matches!(
            report.records[1].outcome,
            Outcome::Done(DispatchOutcome::Duplicate {
                earlier: crate::dispatch::Earlier::Dispatched,
                ..
            })
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
    let records: Vec<(String, serde_json::Value)> = (1..=20)
        .map(|n| record(&n.to_string(), &format!("key-{n}")))
        .collect();
    let report = dispatcher.apply_batch(inserts(records), None).await;
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
        .filter(|record| matches!(&record.outcome, Outcome::Failed(Failure::StoreDown)))
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
    expired.1["startDate"] = json!("2019-01-01T00:00:00Z");
    expired.1["expiryDate"] = json!("2020-01-01T00:00:00Z");
    let report = dispatcher
        .apply_batch(inserts(vec![record("1", "a"), expired]), None)
        .await;
    assert_eq!(report.failed_sequence_numbers(), vec!["1"]);
    assert!(matches!(
        report.records[1].outcome,
        Outcome::Done(DispatchOutcome::Rejected {
            code: crate::domain::ReasonCode::Expired,
            ..
        })
    ));
    assert_eq!(
        writes.num_calls(),
        1,
        "only the expired row, which needs no catalog, is written (rejected)"
    );
}

/// The table a transaction's first item (the put) writes to.
fn put_table(
    request: &aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput,
) -> String {
    request.transact_items()[0]
        .put()
        .map(|put| put.table_name().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn an_offer_dynamodb_refuses_is_a_rejection_not_a_retry_nor_an_outage() {
    let catalog = mock!(Client::batch_get_item).then_output(catalog_output);
    // Refused for record 1 (a ValidationException), refused inside the
    // transaction for record 2 (cancellation reason ValidationError).
    let refused_whole = mock!(Client::transact_write_items)
        .match_requests(|request| {
            put_table(request) == "offers"
                && request.transact_items()[0]
                    .put()
                    .is_some_and(|put| put.item()["sortKey"] == AttributeValue::S("a".into()))
        })
        .then_error(|| service_error("ValidationException"));
    let refused_item = mock!(Client::transact_write_items)
        .match_requests(|request| put_table(request) == "offers")
        .then_error(|| cancelled(&["ValidationError", "None", "None"]));
    let rejections = mock!(Client::transact_write_items)
        .match_requests(|request| put_table(request) == "rejected")
        .then_output(|| TransactWriteItemsOutput::builder().build());
    let dispatcher = dispatcher(client(&[
        &catalog,
        &refused_whole,
        &refused_item,
        &rejections,
    ]));
    let records: Vec<(String, serde_json::Value)> = [("1", "a"), ("2", "b"), ("3", "c")]
        .iter()
        .map(|(sequence, key)| record(sequence, key))
        .collect();
    let report = dispatcher.apply_batch(inserts(records), None).await;
    assert!(report.failed_sequence_numbers().is_empty(), "{report:?}");
    for record in &report.records {
        assert!(
            matches!(
                record.outcome,
                Outcome::Done(DispatchOutcome::Rejected {
                    code: crate::domain::ReasonCode::InvalidRow,
                    ..
                })
            ),
            "{:?}",
            record.outcome
        );
    }
    assert_eq!(rejections.num_calls(), 3, "each record rejected once");
    assert_eq!(
        refused_whole.num_calls() + refused_item.num_calls(),
        3,
        "a refusal is no outage: every record was tried"
    );
}

#[tokio::test]
async fn a_rejection_dynamodb_refuses_is_stored_again_as_a_summary() {
    let catalog = mock!(Client::batch_get_item).then_output(catalog_output);
    let full = mock!(Client::transact_write_items)
        .match_requests(|request| {
            request.transact_items()[0]
                .put()
                .is_some_and(|put| !put.item().contains_key(UNREADABLE_ROW))
        })
        .then_error(|| cancelled(&["ValidationError", "None", "None"]));
    let summary = mock!(Client::transact_write_items)
        .match_requests(|request| {
            request.transact_items()[0].put().is_some_and(|put| {
                put.item().contains_key(UNREADABLE_ROW) && !put.item().contains_key("offerId")
            })
        })
        .then_output(|| TransactWriteItemsOutput::builder().build());
    let dispatcher = dispatcher(client(&[&catalog, &full, &summary]));
    let mut unknown = record("1", "a");
    unknown.1["offerId"] = json!("co-unknown");
    let report = dispatcher.apply_batch(inserts(vec![unknown]), None).await;
    assert!(
        matches!(
            report.records[0].outcome,
            Outcome::Done(DispatchOutcome::Rejected {
                code: crate::domain::ReasonCode::UnknownOffer,
                ..
            })
        ),
        "{:?}",
        report.records[0].outcome
    );
    assert_eq!((full.num_calls(), summary.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_refused_catalog_read_is_retried_id_by_id_and_rejects_only_its_rows() {
    // DynamoDB refuses any read that asks for co-bad; co-1 and tpl-1 read fine.
    let asks_for_bad =
        |request: &aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemInput| {
            request.request_items().is_some_and(|items| {
                items.values().any(|keys| {
                    keys.keys()
                        .iter()
                        .any(|key| key.get("id") == Some(&AttributeValue::S("co-bad".into())))
                })
            })
        };
    let refused = mock!(Client::batch_get_item)
        .match_requests(asks_for_bad)
        .then_error(|| {
            BatchGetItemError::generic(
                ErrorMetadata::builder()
                    .code("ValidationException")
                    .message("refused")
                    .build(),
            )
        });
    let catalog = mock!(Client::batch_get_item).then_output(catalog_output);
    let writes = mock!(Client::transact_write_items)
        .then_output(|| TransactWriteItemsOutput::builder().build());
    let dispatcher = dispatcher(client(&[&refused, &catalog, &writes]));
    let mut bad = record("2", "b");
    bad.1["offerId"] = json!("co-bad");
    let report = dispatcher
        .apply_batch(inserts(vec![record("1", "a"), bad]), None)
        .await;
    assert!(report.failed_sequence_numbers().is_empty(), "{report:?}");
    assert!(matches!(
        report.records[0].outcome,
        Outcome::Done(DispatchOutcome::Dispatched { .. })
    ));
    assert!(matches!(
        report.records[1].outcome,
        Outcome::Done(DispatchOutcome::Rejected {
            code: crate::domain::ReasonCode::UnknownOffer,
            ..
        })
    ));
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
    for code in ["InternalServerError", "InternalFailure"] {
        let internal: SdkError<TransactWriteItemsError, ()> =
            SdkError::service_error(service_error(code), ());
        assert!(
            classify(&internal).is_transient() && classify(&internal).is_outage(),
            "{code}: retried, never a rejection"
        );
    }
    let conflict: SdkError<TransactWriteItemsError, ()> =
        SdkError::service_error(service_error("TransactionConflictException"), ());
    let error = classify(&conflict);
    assert!(matches!(error, StoreError::Conflict(_)) && error.is_transient() && !error.is_outage());
    assert!(
        !classify(&throttled).is_outage(),
        "a hot key is not an outage"
    );
}
