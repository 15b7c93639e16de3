//! The challenge progress function's reads and writes: a user's challenge
//! offers (a Query of their partition), one goal met by one conditional
//! UpdateItem of the offer item, and rejected transactions (a conditional
//! PutItem in the rejected table). Design: docs/design.md, "Frequency challenges".

use super::dispatch::{prefix, REJECTION_ATTRIBUTES};
use super::items::text;
use super::offer_item::{
    challenge_filter, goal_expressions, key, offer_from_item, owned_offer, partition_condition,
};
use super::{classify, DynamoStore};
use crate::domain::dates::format_timestamp;
use crate::domain::limits::{bounded_message, quote};
use crate::domain::PersonalizedOffer;
use crate::error::StoreError;
use crate::ports::{ChallengeStore, GoalMet, ProgressWrite, RejectedTransaction, WriteOutcome};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use offers_domain::UserId;
use std::collections::HashMap;

/// The rejected item's attribute that says where it came from; a pending
/// row's rejection has none. `offers rejections retry` skips these: there is
/// no pending row to put back.
pub const REJECTION_SOURCE: &str = "source";
/// [`REJECTION_SOURCE`] of a rejected transaction.
pub const TRANSACTION_SOURCE: &str = "transaction";
/// The rejected transaction's image, as JSON text (its first 64 KB).
pub const TRANSACTION_IMAGE: &str = "transaction";
/// How much of a transaction's image a rejection keeps.
const IMAGE_BYTES: usize = 64 * 1_024;

impl ChallengeStore for DynamoStore {
    async fn challenge_offers(
        &self,
        user_id: &UserId,
    ) -> Result<Vec<PersonalizedOffer>, StoreError> {
        let user_id = user_id.as_str();
        let table = self.tables.loyalty_offers()?;
        let mut offers = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(table)
                .key_condition_expression(partition_condition())
                .filter_expression(challenge_filter())
                .expression_attribute_values(":user", text(user_id))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|err| classify(&err))?;
            for item in output.items.unwrap_or_default() {
                match offer_from_item(item) {
                    Ok(offer) if offer.user_id == user_id => offers.push(offer),
                    Ok(_) => {}
                    // One broken item must not stop the user's other
                    // challenges: it is logged and left out.
                    Err(error) => tracing::warn!(
                        user_id,
                        error = %error,
                        "offer item unreadable; skipped by challenge progress"
                    ),
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(offers)
    }

    async fn record_goal(&self, write: &GoalMet) -> Result<ProgressWrite, StoreError> {
        let id = write.personalized_offer_id;
        let (update, condition, names, values) = goal_expressions(write);
        let result = self
            .client
            .update_item()
            .table_name(self.tables.loyalty_offers()?)
            .set_key(Some(key(&write.user_id, id)))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(ProgressWrite::Written),
            Err(err) => err,
        };
        let Some(UpdateItemError::ConditionalCheckFailedException(failed)) = err.as_service_error()
        else {
            return Err(classify(&err));
        };
        // DynamoDB returns the item as it is whenever it exists
        // (`ALL_OLD`): no item means no offer any more (its TTL deleted it).
        match failed.item() {
            Some(item) => Ok(ProgressWrite::Stale(Some(Box::new(owned_offer(
                item.clone(),
                &write.user_id,
                id,
            )?)))),
            None => Ok(ProgressWrite::Stale(None)),
        }
    }

    async fn reject_transaction(
        &self,
        rejection: &RejectedTransaction,
    ) -> Result<WriteOutcome, StoreError> {
        match self.put_rejection(rejected_item(rejection, true)).await {
            // Should DynamoDB still refuse it, keep the reason without the image.
            Err(StoreError::Refused(detail)) => {
                let mut item = rejected_item(rejection, false);
                item.insert(
                    "reasonMessage".into(),
                    text(bounded_message(format!(
                        "{}; DynamoDB refused the rejection with its image ({})",
                        rejection.message,
                        quote(&detail)
                    ))),
                );
                self.put_rejection(item).await
            }
            outcome => outcome,
        }
    }
}

impl DynamoStore {
    async fn put_rejection(
        &self,
        item: HashMap<String, AttributeValue>,
    ) -> Result<WriteOutcome, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(self.tables.rejected()?)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(rejectionId)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(WriteOutcome::Written),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => {
                    Ok(WriteOutcome::AlreadyWritten)
                }
                _ => Err(classify(&err)),
            },
        }
    }
}

/// The rejected transaction: its reason, where it came from, and (when
/// `with_image`) the start of its image's text.
fn rejected_item(
    rejection: &RejectedTransaction,
    with_image: bool,
) -> HashMap<String, AttributeValue> {
    let values = [
        rejection.rejection_id.to_string(),
        rejection.code.as_str().to_owned(),
        rejection.message.clone(),
        format_timestamp(rejection.rejected_at),
        rejection.event_id.clone(),
        rejection.sequence_number.clone(),
    ];
    let mut item: HashMap<String, AttributeValue> = REJECTION_ATTRIBUTES
        .iter()
        .zip(values)
        .map(|(name, value)| ((*name).to_owned(), text(value)))
        .collect();
    item.insert("userId".into(), text(rejection.user_id.clone()));
    item.insert(REJECTION_SOURCE.into(), text(TRANSACTION_SOURCE));
    if let Some(id) = &rejection.transaction_id {
        item.insert("transactionId".into(), text(id.clone()));
    }
    if with_image {
        item.insert(
            TRANSACTION_IMAGE.into(),
            text(prefix(&rejection.image, IMAGE_BYTES)),
        );
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::dates::parse_timestamp;
    use crate::ports::Completion;
    use uuid::Uuid;

    fn write(goals: usize, completes: bool, map: bool) -> GoalMet {
        let at = parse_timestamp("2024-06-01T10:00:00Z").unwrap_or_default();
        GoalMet {
            user_id: "u".into(),
            personalized_offer_id: crate::domain::PersonalizedOfferId::from_uuid(uuid::Uuid::nil()),
            goal: "visit1".into(),
            transaction_id: "t-1".into(),
            counted_key: "k".into(),
            met_at: at,
            counted_map_exists: map,
            completion: completes.then(|| Completion {
                other_goals: (2..=goals)
                    .map(|n| format!("{}{n}", "v".repeat(250)))
                    .collect(),
                granted_at: at,
            }),
        }
    }

    #[test]
    fn the_condition_guards_what_the_step_was_decided_on() {
        let (update, condition, names, values) = goal_expressions(&write(2, false, false));
        assert!(update.contains("#c.#ct = :counted"), "{update}");
        assert!(condition.contains("attribute_not_exists(#c.#ct)"));
        assert!(condition.contains("attribute_not_exists(#c.#g.#goal.#m)"));
        assert!(condition.contains("attribute_not_exists(#rv)"));
        assert!(!condition.contains("#done"));
        assert_eq!(names["#goal"], "visit1");
        assert!(matches!(values[":counted"], AttributeValue::M(_)));

        let (update, condition, ..) = goal_expressions(&write(2, true, true));
        assert!(update.contains("#c.#ct.#k = :goal") && update.contains("#c.#r.#ga = :granted"));
        assert!(condition.contains("attribute_not_exists(#c.#ct.#k)"));
        assert!(condition.contains("attribute_not_exists(#c.#done)"));
        assert!(condition.contains("attribute_exists(#c.#g.#o0.#m)"));
    }

    #[test]
    fn every_placeholder_is_used() {
        for (goals, completes, map) in [
            (2, false, false),
            (2, false, true),
            (3, true, true),
            (1, true, false),
        ] {
            let (update, condition, names, values) =
                goal_expressions(&write(goals, completes, map));
            let text = format!("{update} {condition}");
            for placeholder in names.keys().chain(values.keys()) {
                let used = text.match_indices(placeholder.as_str()).any(|(at, _)| {
                    !text[at + placeholder.len()..].starts_with(|c: char| c.is_ascii_alphanumeric())
                });
                assert!(used, "{placeholder} unused in {text}");
            }
        }
    }

    #[test]
    fn the_largest_challenge_fits_the_expression_limit() {
        let (update, condition, names, _) =
            goal_expressions(&write(crate::domain::challenge::MAX_GOALS, true, true));
        assert!(
            condition.len() + update.len() <= 4_096,
            "{}",
            condition.len()
        );
        assert!(names.values().all(|name| name.len() <= 255));
    }

    #[test]
    fn a_rejection_keeps_its_source_and_a_bounded_image() {
        let rejection = RejectedTransaction {
            rejection_id: Uuid::nil(),
            user_id: "u".into(),
            transaction_id: Some("t".into()),
            code: crate::domain::ReasonCode::InvalidTransaction,
            message: "totalCost must be a number >= 0".into(),
            rejected_at: chrono::Utc::now(),
            event_id: "e".into(),
            sequence_number: "1".into(),
            image: "x".repeat(IMAGE_BYTES * 2),
        };
        let item = rejected_item(&rejection, true);
        assert_eq!(item[REJECTION_SOURCE], text(TRANSACTION_SOURCE));
        assert_eq!(item["reasonCode"], text("invalid_transaction"));
        assert!(matches!(&item[TRANSACTION_IMAGE], AttributeValue::S(s) if s.len() == IMAGE_BYTES));
        assert!(!rejected_item(&rejection, false).contains_key(TRANSACTION_IMAGE));
    }
}
