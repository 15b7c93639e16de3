//! The app's activity writes: a redemption or its voiding is one conditional
//! UpdateItem on the caller's offer item; an offer event is one transaction
//! of its id in the offer events table and the offer's counters.

use super::offers::{owned_offer, text};
use super::transactions::{cancelled, condition_failed};
use super::{cancellation_error, classify, DynamoStore};
use crate::domain::dates::format_timestamp;
use crate::domain::redemption::{redemption_limit, MAX_REDEMPTION_RECORDS};
use crate::domain::{OfferEvent, PersonalizedOffer, Redemption};
use crate::error::StoreError;
use crate::ports::{ActivityStore, ActivityWrite, EventWrite};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use uuid::Uuid;

fn number(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Whole-second UTC text, `offset` seconds from `at`'s second: a bound that
/// stored dates (RFC 3339 UTC, fractions or not) compare with as text.
fn second_bound(at: DateTime<Utc>, offset: i64) -> String {
    let second = at.timestamp().saturating_add(offset);
    DateTime::<Utc>::from_timestamp(second, 0)
        .unwrap_or(at)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The condition and update of a redemption (see [`ActivityStore::redeem`]).
///
/// Always: the offer exists, is not revoked, has not seen the order, keeps
/// fewer than `MAX_REDEMPTION_RECORDS` records and has a use left.
///
/// Without `known` (no read): the `redemptions` map is created (DynamoDB
/// cannot set a member of a map that does not exist, and most offers are
/// used once), the limit is the stored rule's, and the offer must be active
/// and the order within its rules, in DynamoDB's terms: `startDate` at
/// least a second before `at`'s second, `expiryDate` at least two after
/// (text comparison of RFC 3339 UTC is time order only to the second, so
/// the bounds are a second wide on the safe side; an order at the edge is
/// decided on the returned item), `minimumSpend <= totalCost`,
/// `serviceModes` a list containing the mode. A rule of another type
/// compares false: not met, as `check_rules` has it.
///
/// With `known` (its time window and rules already decided): the map is
/// created or the record set beside the others as `known` shows, and the
/// limit is `known`'s rule. A stale `known` fails the condition either way.
pub fn redemption_update(
    update: UpdateItemFluentBuilder,
    known: Option<&PersonalizedOffer>,
    redemption: &Redemption,
    record: AttributeValue,
) -> UpdateItemFluentBuilder {
    let mut condition =
        String::from("attribute_exists(personalizedOfferId) AND attribute_not_exists(revokedAt)");
    let first = known.is_none_or(|offer| offer.redemptions.is_empty());
    let update = if first {
        // Absent, or (never written so, but harmless) an empty map.
        condition.push_str(" AND (attribute_not_exists(redemptions) OR size(redemptions) = :zero)");
        update
            .update_expression(
                "SET redemptions = :records, \
                 redemptionCount = if_not_exists(redemptionCount, :zero) + :one",
            )
            .expression_attribute_values(
                ":records",
                AttributeValue::M(HashMap::from([(redemption.order_id.clone(), record)])),
            )
    } else {
        condition.push_str(
            " AND attribute_not_exists(redemptions.#order) AND size(redemptions) < :maxRecords",
        );
        update
            .update_expression(
                "SET redemptions.#order = :record, \
                 redemptionCount = if_not_exists(redemptionCount, :zero) + :one",
            )
            .expression_attribute_names("#order", redemption.order_id.clone())
            .expression_attribute_values(":record", record)
            .expression_attribute_values(":maxRecords", number(MAX_REDEMPTION_RECORDS))
    };
    let update = match known {
        Some(offer) => match redemption_limit(&offer.rules) {
            Some(limit) => {
                condition.push_str(
                    " AND (attribute_not_exists(redemptionCount) OR redemptionCount < :limit)",
                );
                update.expression_attribute_values(":limit", number(limit))
            }
            None => update,
        },
        None => {
            condition.push_str(
                " AND startDate <= :startBound AND expiryDate > :expiryBound \
                 AND (attribute_not_exists(#rules.redemptionLimit) \
                      OR (attribute_not_exists(redemptionCount) AND #rules.redemptionLimit > :zero) \
                      OR redemptionCount < #rules.redemptionLimit) \
                 AND (attribute_not_exists(#rules.minimumSpend) OR #rules.minimumSpend <= :cost) \
                 AND (attribute_not_exists(#rules.serviceModes) \
                      OR (attribute_type(#rules.serviceModes, :list) \
                          AND contains(#rules.serviceModes, :mode)))",
            );
            update
                .expression_attribute_values(
                    ":startBound",
                    text(second_bound(redemption.redeemed_at, -1)),
                )
                .expression_attribute_values(
                    ":expiryBound",
                    text(second_bound(redemption.redeemed_at, 1)),
                )
                .expression_attribute_values(":cost", number(&redemption.total_cost))
                .expression_attribute_values(":mode", text(redemption.service_mode.clone()))
                .expression_attribute_values(":list", text("L"))
                // A reserved word in expressions.
                .expression_attribute_names("#rules", "rules")
        }
    };
    update
        .condition_expression(condition)
        .expression_attribute_values(":zero", number(0))
        .expression_attribute_values(":one", number(1))
}

impl DynamoStore {
    fn offer_update(&self, user_id: &str, id: Uuid) -> Result<UpdateItemFluentBuilder, StoreError> {
        Ok(self
            .client
            .update_item()
            .table_name(self.tables.loyalty_offers()?)
            .key("userId", text(user_id))
            .key("personalizedOfferId", text(id.to_string()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld))
    }

    /// The answer of a conditional update of the offer: the offer after it,
    /// or, when the condition failed, the offer as it was (read again when
    /// DynamoDB did not return it).
    async fn offer_update_answer(
        &self,
        user_id: &str,
        id: Uuid,
        builder: UpdateItemFluentBuilder,
    ) -> Result<ActivityWrite, StoreError> {
        let err = match builder.send().await {
            Ok(output) => {
                let item = output.attributes.unwrap_or_default();
                return Ok(ActivityWrite::Written(Box::new(owned_offer(
                    item, user_id, id,
                )?)));
            }
            Err(err) => err,
        };
        let Some(UpdateItemError::ConditionalCheckFailedException(failed)) = err.as_service_error()
        else {
            return Err(classify(&err));
        };
        let current = match failed.item() {
            Some(item) => Some(owned_offer(item.clone(), user_id, id)?),
            None => self.read_offer(user_id, id, true).await?,
        };
        Ok(ActivityWrite::NotWritten(current.map(Box::new)))
    }
}

impl ActivityStore for DynamoStore {
    async fn redeem(
        &self,
        user_id: &str,
        personalized_offer_id: Uuid,
        known: Option<&PersonalizedOffer>,
        redemption: &Redemption,
    ) -> Result<ActivityWrite, StoreError> {
        let record = serde_dynamo::to_attribute_value(redemption)
            .map_err(|err| StoreError::Refused(format!("redemption not serializable: {err}")))?;
        let builder = redemption_update(
            self.offer_update(user_id, personalized_offer_id)?,
            known,
            redemption,
            record,
        );
        self.offer_update_answer(user_id, personalized_offer_id, builder)
            .await
    }

    async fn void_redemption(
        &self,
        user_id: &str,
        personalized_offer_id: Uuid,
        order_id: &str,
        at: DateTime<Utc>,
    ) -> Result<ActivityWrite, StoreError> {
        let builder = self
            .offer_update(user_id, personalized_offer_id)?
            .condition_expression(
                "attribute_exists(redemptions.#order) \
                 AND attribute_not_exists(redemptions.#order.voidedAt)",
            )
            .update_expression(
                "SET redemptions.#order.voidedAt = :at, \
                 redemptionCount = if_not_exists(redemptionCount, :one) - :one",
            )
            .expression_attribute_names("#order", order_id)
            .expression_attribute_values(":at", text(format_timestamp(at)))
            .expression_attribute_values(":one", number(1));
        self.offer_update_answer(user_id, personalized_offer_id, builder)
            .await
    }

    async fn record_event(
        &self,
        user_id: &str,
        event: &OfferEvent,
        ttl: i64,
    ) -> Result<EventWrite, StoreError> {
        let refused = |err: aws_sdk_dynamodb::error::BuildError| {
            StoreError::Refused(format!("event transaction: {err}"))
        };
        let id = event.personalized_offer_id.to_string();
        let put = Put::builder()
            .table_name(self.tables.offer_events()?)
            .item("personalizedOfferId", text(id.clone()))
            .item("eventId", text(event.event_id.to_string()))
            .item("userId", text(user_id))
            .item("type", text(event.event_type.as_str()))
            .item("receivedAt", text(format_timestamp(event.received_at)))
            .item("ttl", number(ttl))
            .condition_expression("attribute_not_exists(eventId)")
            .build()
            .map_err(refused)?;
        let update = Update::builder()
            .table_name(self.tables.loyalty_offers()?)
            .key("userId", text(user_id))
            .key("personalizedOfferId", text(id))
            .condition_expression("attribute_exists(personalizedOfferId)")
            .update_expression("SET #first = if_not_exists(#first, :at) ADD #count :one")
            .expression_attribute_names("#first", event.event_type.first_at_attribute())
            .expression_attribute_names("#count", event.event_type.count_attribute())
            .expression_attribute_values(":at", text(format_timestamp(event.received_at)))
            .expression_attribute_values(":one", number(1))
            .build()
            .map_err(refused)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .send()
            .await;
        match cancelled(result, classify)? {
            None => Ok(EventWrite::Recorded),
            // Not the caller's offer first: someone else's offer is a 404
            // whatever its events.
            Some(reasons) if condition_failed(&reasons, 1) => Ok(EventWrite::NoSuchOffer),
            Some(reasons) if condition_failed(&reasons, 0) => Ok(EventWrite::Duplicate),
            Some(reasons) => Err(cancellation_error(&reasons)),
        }
    }
}
