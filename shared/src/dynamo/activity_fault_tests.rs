//! The activity adapter's faults DynamoDB Local cannot produce, injected
//! with aws-smithy-mocks: throttling and conflicts are transient (a 503 the
//! app retries, the write being idempotent), cancellation reasons are read
//! in the order that keeps someone else's offer a 404, and a failed
//! condition without the old item falls back to a consistent read.

use super::fault_tests::cancelled;
use super::*;
use crate::config::TableNames;
use crate::domain::dates::parse_timestamp;
use crate::domain::{OfferEvent, OfferEventType, PersonalizedOffer, Redemption, UserId};
use crate::error::StoreError;
use crate::ports::{ActivityStore, ActivityWrite, EventWrite, RedeemBudget};
use aws_sdk_dynamodb::error::ErrorMetadata;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_sdk_dynamodb::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use serde_json::json;
use uuid::Uuid;

fn store(rules: &[&Rule]) -> DynamoStore {
    let client: Client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, rules, |config| {
        config.retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
    });
    DynamoStore::new(
        client,
        TableNames {
            loyalty_offers: Some("offers".into()),
            offer_events: Some("events".into()),
            ..TableNames::default()
        },
    )
}

fn offer() -> PersonalizedOffer {
    let at = |text| parse_timestamp(text).unwrap_or_default();
    PersonalizedOffer::builder()
        .user("u1")
        .rules(json!({"redemptionLimit": 1}))
        .valid(at("2024-01-01T00:00:00Z"), at("2099-01-01T00:00:00Z"))
        .created_at(at("2024-01-01T00:00:00Z"))
        .build()
}

fn event(offer: &PersonalizedOffer) -> OfferEvent {
    OfferEvent {
        personalized_offer_id: offer.personalized_offer_id,
        event_id: Uuid::new_v4(),
        event_type: OfferEventType::Viewed,
        received_at: parse_timestamp("2026-06-01T00:00:00Z").unwrap_or_default(),
    }
}

fn redemption(offer: &PersonalizedOffer) -> Redemption {
    let body = json!({"orderId": "o-1", "totalCost": 5, "serviceMode": "pickup"});
    let request =
        crate::domain::parse_redemption_request(body.to_string().as_bytes()).expect("valid");
    Redemption::of(offer.personalized_offer_id, &request, chrono::Utc::now())
}

#[tokio::test]
async fn event_cancellations_name_the_outcome_and_the_offer_first() {
    let offer = offer();
    for (reasons, expected) in [
        (
            &["ConditionalCheckFailed", "None"][..],
            Ok(EventWrite::Duplicate),
        ),
        (
            &["None", "ConditionalCheckFailed"],
            Ok(EventWrite::NoSuchOffer),
        ),
        // A known event id on someone else's offer: still the 404.
        (
            &["ConditionalCheckFailed", "ConditionalCheckFailed"],
            Ok(EventWrite::NoSuchOffer),
        ),
    ] {
        let rule = mock!(Client::transact_write_items).then_error(move || cancelled(reasons));
        let got = store(&[&rule])
            .record_event(&UserId::try_from("u1").expect("user id"), &event(&offer), 0)
            .await;
        assert_eq!(got, expected, "{reasons:?}");
    }
    for (reasons, transient) in [
        (&["ThrottlingError", "None"][..], true),
        (&["None", "TransactionConflict"], true),
        (&["ValidationError", "None"], false),
    ] {
        let rule = mock!(Client::transact_write_items).then_error(move || cancelled(reasons));
        let got = store(&[&rule])
            .record_event(&UserId::try_from("u1").expect("user id"), &event(&offer), 0)
            .await;
        let err = got.expect_err("an error");
        assert_eq!(err.is_transient(), transient, "{reasons:?}: {err:?}");
        if !transient {
            assert!(matches!(err, StoreError::Refused(_)), "never retried");
        }
    }
}

#[tokio::test]
async fn a_throttled_redemption_is_transient_and_a_refused_one_is_not() {
    let offer = offer();
    for (code, transient) in [
        ("ThrottlingException", true),
        ("ProvisionedThroughputExceededException", true),
        ("ValidationException", false),
    ] {
        let rule = mock!(Client::update_item).then_error(move || {
            UpdateItemError::generic(
                ErrorMetadata::builder()
                    .code(code)
                    .message("injected")
                    .build(),
            )
        });
        let got = store(&[&rule])
            .redeem(
                &UserId::try_from("u1").expect("user id"),
                offer.personalized_offer_id,
                None,
                &redemption(&offer),
                RedeemBudget::NoneOf(&[]),
            )
            .await
            .expect_err("an error");
        assert_eq!(got.is_transient(), transient, "{code}");
    }
}

#[tokio::test]
async fn a_failed_condition_without_the_old_item_reads_the_offer_again() {
    let mut current = offer();
    let record = redemption(&current);
    current
        .redemptions
        .insert(record.order_id.clone(), record.clone());
    current.redemption_count = 1;
    let item = offer_to_item(&current).expect("item");
    let update = mock!(Client::update_item).then_error(|| {
        UpdateItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder()
                .message("The conditional request failed")
                .build(),
        )
    });
    let get = mock!(Client::get_item)
        .match_requests(|request| request.consistent_read() == Some(true))
        .then_output(move || {
            GetItemOutput::builder()
                .set_item(Some(item.clone()))
                .build()
        });
    let store = store(&[&update, &get]);
    let known = offer_with_id(&current);
    let got = store
        .redeem(
            &UserId::try_from("u1").expect("user id"),
            current.personalized_offer_id,
            Some(&known),
            &record,
            RedeemBudget::NoneOf(&[]),
        )
        .await
        .expect("an answer");
    assert_eq!(got, ActivityWrite::NotWritten(Some(Box::new(current))));
    assert_eq!((update.num_calls(), get.num_calls()), (1, 1));
}

/// The offer as a caller read it before `current`'s redemption.
fn offer_with_id(current: &PersonalizedOffer) -> PersonalizedOffer {
    let mut read = current.clone();
    read.redemptions.clear();
    read.redemption_count = 0;
    read
}
