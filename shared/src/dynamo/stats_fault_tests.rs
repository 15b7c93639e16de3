//! The statistics transactions' faults DynamoDB Local cannot produce
//! (conflicts with another invocation, throttling), injected with
//! aws-smithy-mocks: retried, then reported failed; never counted twice.

use super::fault_tests::cancelled;
use super::*;
use crate::campaign_stats::{ChangeRecord, StatsInput, StatsKind, StatsService, StatsSettings};
use crate::config::TableNames;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput;
use aws_sdk_dynamodb::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use serde_json::{json, Value};
use std::time::Duration;

fn service(rules: &[&Rule]) -> StatsService<DynamoStore> {
    let client: Client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, rules, |config| {
        config.retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
    });
    let tables = TableNames {
        campaign_stats: Some("stats".into()),
        ..TableNames::default()
    };
    StatsService::new(
        DynamoStore::new(client, tables),
        StatsSettings {
            conflict_attempts: 3,
            backoff: Duration::from_millis(1),
            deadline_margin: Duration::from_secs(1),
        },
    )
}

fn insert(event: &str, user: &str) -> StatsInput {
    let image = json!({"userId": {"S": user}, "personalizedOfferId": {"S": "p"},
                       "offerId": {"S": "co-a"}, "campaignId": {"S": "c1"}});
    crate::stream::Input::Change(Box::new(ChangeRecord {
        event_id: event.into(),
        sequence_number: event.into(),
        created_at: None,
        old_image: None,
        new_image: match image {
            Value::Object(map) => map,
            _ => Default::default(),
        },
    }))
}

fn ok() -> TransactWriteItemsOutput {
    TransactWriteItemsOutput::builder().build()
}

#[tokio::test]
async fn a_conflict_is_retried_and_counts_once() {
    let conflict = mock!(Client::transact_write_items)
        .then_error(|| cancelled(&["None", "None", "None", "TransactionConflict"]));
    let written = mock!(Client::transact_write_items).then_output(ok);
    let service = service(&[&conflict, &written]);
    let report = service
        .apply_batch(vec![insert("1", "u1"), insert("2", "u2")], None)
        .await;
    assert_eq!(report.count(StatsKind::Applied), 2);
    assert_eq!(report.summary.conflicts, 1);
    assert_eq!((conflict.num_calls(), written.num_calls()), (1, 1));
}

#[tokio::test]
async fn markers_found_drop_their_records_and_the_rest_is_written_alone() {
    // Two markers, then the two counters: the first record was counted before.
    let replay = mock!(Client::transact_write_items)
        .then_error(|| cancelled(&["ConditionalCheckFailed", "None", "None", "None"]));
    let rest = mock!(Client::transact_write_items)
        .match_requests(|request| {
            // One marker (the second record's) and its two counters.
            request.transact_items().len() == 3
                && request.transact_items()[0].put().is_some_and(|put| {
                    put.item()["pk"]
                        == aws_sdk_dynamodb::types::AttributeValue::S("applied#2".into())
                })
        })
        .then_output(ok);
    let service = service(&[&replay, &rest]);
    let report = service
        .apply_batch(vec![insert("1", "u1"), insert("2", "u2")], None)
        .await;
    let outcomes: Vec<&str> = report.records.iter().map(|r| r.outcome.name()).collect();
    assert_eq!(outcomes, ["duplicate", "applied"]);
    assert_eq!(rest.num_calls(), 1);
}

#[tokio::test]
async fn a_failed_marker_beside_a_conflict_is_no_duplicate_and_throttling_ends_failed() {
    // A marker condition failing together with a conflict is not trusted as
    // a replay: the whole transaction is retried.
    let mixed = mock!(Client::transact_write_items)
        .then_error(|| cancelled(&["ConditionalCheckFailed", "TransactionConflict", "None"]));
    let throttled = mock!(Client::transact_write_items)
        .then_error(|| cancelled(&["None", "ThrottlingError", "None"]));
    let again = mock!(Client::transact_write_items)
        .then_error(|| cancelled(&["None", "ThrottlingError", "None"]));
    let service = service(&[&mixed, &throttled, &again]);
    let report = service.apply_batch(vec![insert("1", "u1")], None).await;
    assert_eq!(report.failed_sequence_numbers(), ["1"]);
    assert_eq!(report.summary.conflicts, 3, "three tries, then given up");
}
