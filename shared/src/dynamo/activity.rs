//! The app's activity writes: a redemption or its voiding is one conditional
//! UpdateItem on the caller's offer item; an offer event is one transaction
//! of its id in the offer events table and the offer's counters.

use super::items::text;
use super::offer_item::{
    event_counter_parts, key, number, offer_update, owned_offer, redemption_parts, void_condition,
    void_parts, UpdateParts,
};
use super::transactions::{cancelled, condition_failed};
use super::{cancellation_error, classify, DynamoStore};
use crate::activity::discount_of;
use crate::domain::amount::{decimal_text, Amount};
use crate::domain::dates::format_timestamp;
use crate::domain::PersonalizedOfferId;
use crate::domain::{BudgetTaken, OfferEvent, OrderId, PersonalizedOffer, Redemption, UserId};
use crate::error::StoreError;
use crate::ports::{
    ActivityStore, ActivityWrite, EventWrite, RedeemBudget, RedemptionLimits, VoidBudget,
};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use chrono::{DateTime, Utc};

/// The two writes of a budgeted redemption's transaction: the offer's
/// conditional Update (as without a budget, keeping nothing out) and the
/// campaign's use of its limits (`tables`: offers, campaigns; `offer`: the
/// user and the offer's id; `budget`: the campaign and its limits).
pub fn budgeted_redemption_updates(
    tables: (&str, &str),
    offer: (&str, PersonalizedOfferId),
    known: Option<&PersonalizedOffer>,
    redemption: &Redemption,
    record: AttributeValue,
    budget: (&str, &RedemptionLimits),
) -> Result<(Update, Update), StoreError> {
    let refused = |err: aws_sdk_dynamodb::error::BuildError| {
        StoreError::Refused(format!("redemption transaction: {err}"))
    };
    let taken = redemption.budget_use.clone().unwrap_or(BudgetTaken {
        redemptions: false,
        discount_value: false,
    });
    let offer_update = redemption_parts(
        offer_update(tables.0, offer.0, offer.1),
        known,
        redemption,
        record,
        &[],
    )
    .build()
    .map_err(refused)?;
    let campaign = budget_use(
        Update::builder()
            .table_name(tables.1)
            .key("campaignId", text(budget.0)),
        budget.1,
        &taken,
        discount_of(redemption),
    )
    .build()
    .map_err(refused)?;
    Ok((offer_update, campaign))
}

/// The condition and update of a redemption without a budget
/// ([`redemption_parts`], nothing kept out).
pub fn redemption_update(
    update: UpdateItemFluentBuilder,
    known: Option<&PersonalizedOffer>,
    redemption: &Redemption,
    record: AttributeValue,
) -> UpdateItemFluentBuilder {
    redemption_parts(update, known, redemption, record, &[])
}

/// The campaign's side of a budgeted redemption: its counters take what
/// the record says, on condition that the item still holds the limits the
/// decision used and each counter has room (the `redemptions` limit read
/// from the item itself; `discountValue` compared as `used <= limit - d`
/// with the limit checked equal, since a condition cannot add).
fn budget_use(
    update: UpdateBuilder,
    limits: &RedemptionLimits,
    taken: &BudgetTaken,
    discount: u64,
) -> UpdateBuilder {
    let mut condition = String::from("attribute_exists(campaignId)");
    let mut adds = Vec::new();
    let mut update = update
        .name("#definition", "definition")
        .name("#budget", "budget");
    if limits.redemptions.is_some() && taken.redemptions {
        condition.push_str(
            " AND (usedRedemptions < #definition.#budget.redemptions \
               OR (attribute_not_exists(usedRedemptions) \
                   AND #definition.#budget.redemptions > :zero))",
        );
        adds.push("usedRedemptions :one");
        update = update.value(":zero", number(0)).value(":one", number(1));
    }
    if let (Some(limit), true) = (limits.discount_value, taken.discount_value) {
        condition.push_str(
            " AND #definition.#budget.discountValue = :discountLimit \
             AND (attribute_not_exists(usedDiscountValue) OR usedDiscountValue <= :discountRoom)",
        );
        adds.push("usedDiscountValue :discount");
        update = update
            .value(":discountLimit", number(decimal_text(limit)))
            .value(
                ":discountRoom",
                number(decimal_text(limit.saturating_sub(discount))),
            )
            .value(":discount", number(decimal_text(discount)));
    }
    if adds.is_empty() {
        // Never so (the record takes what the limits count); a no-op keeps
        // the expression valid.
        adds.push("usedRedemptions :none");
        update = update.value(":none", number(0));
    }
    update
        .condition(condition)
        .update(&format!("ADD {}", adds.join(", ")))
}

impl DynamoStore {
    fn offer_update(
        &self,
        user_id: &str,
        id: PersonalizedOfferId,
    ) -> Result<UpdateItemFluentBuilder, StoreError> {
        Ok(self
            .client
            .update_item()
            .table_name(self.tables.loyalty_offers()?)
            .set_key(Some(key(user_id, id)))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld))
    }

    /// The answer of a conditional update of the offer: the offer after it,
    /// or, when the condition failed, the offer as it was (read again when
    /// DynamoDB did not return it).
    async fn offer_update_answer(
        &self,
        user_id: &str,
        id: PersonalizedOfferId,
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
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
        known: Option<&PersonalizedOffer>,
        redemption: &Redemption,
        budget: RedeemBudget<'_>,
    ) -> Result<ActivityWrite, StoreError> {
        let user_id = user_id.as_str();
        let record = serde_dynamo::to_attribute_value(redemption)
            .map_err(|err| StoreError::Refused(format!("redemption not serializable: {err}")))?;
        let (campaign_id, limits) = match budget {
            RedeemBudget::NoneOf(kept_out) => {
                let builder = redemption_parts(
                    self.offer_update(user_id, personalized_offer_id)?,
                    known,
                    redemption,
                    record,
                    kept_out,
                );
                return self
                    .offer_update_answer(user_id, personalized_offer_id, builder)
                    .await;
            }
            RedeemBudget::Use {
                campaign_id,
                limits,
            } => (campaign_id, limits),
        };
        let (offer, campaign) = budgeted_redemption_updates(
            (self.tables.loyalty_offers()?, self.tables.campaigns()?),
            (user_id, personalized_offer_id),
            known,
            redemption,
            record,
            (campaign_id, limits),
        )?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(offer).build())
            .transact_items(TransactWriteItem::builder().update(campaign).build())
            .send()
            .await;
        match cancelled(result, classify)? {
            // A transaction returns nothing: the offer as the condition
            // held it, with the use added.
            None => {
                let mut offer = match known {
                    Some(known) => known.clone(),
                    None => self
                        .read_offer(user_id, personalized_offer_id, true)
                        .await?
                        .ok_or_else(|| {
                            StoreError::Unavailable("the redeemed offer is gone".into())
                        })?,
                };
                if known.is_some() {
                    offer
                        .redemptions
                        .insert(redemption.order_id.clone(), redemption.clone());
                    offer.redemption_count = offer.redemption_count.saturating_add(1);
                }
                Ok(ActivityWrite::Written(Box::new(offer)))
            }
            // The offer's side first: a known order replays, whatever the budget.
            Some(reasons) if condition_failed(&reasons, 0) => Ok(ActivityWrite::NotWritten(
                self.read_offer(user_id, personalized_offer_id, true)
                    .await?
                    .map(Box::new),
            )),
            Some(reasons) if condition_failed(&reasons, 1) => Ok(ActivityWrite::BudgetRefused),
            Some(reasons) => Err(cancellation_error(&reasons)),
        }
    }

    async fn void_redemption(
        &self,
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
        order_id: &OrderId,
        at: DateTime<Utc>,
        budget: VoidBudget<'_>,
    ) -> Result<ActivityWrite, StoreError> {
        let user_id = user_id.as_str();
        let order_id = order_id.as_str();
        let condition = void_condition(false);
        let (campaign_id, taken, discount) = match budget {
            VoidBudget::Untouched => {
                let builder = void_parts(
                    self.offer_update(user_id, personalized_offer_id)?,
                    order_id,
                    at,
                )
                .condition(void_condition(true));
                return self
                    .offer_update_answer(user_id, personalized_offer_id, builder)
                    .await;
            }
            VoidBudget::Forfeit => {
                let builder = void_parts(
                    self.offer_update(user_id, personalized_offer_id)?,
                    order_id,
                    at,
                )
                .condition(condition);
                return self
                    .offer_update_answer(user_id, personalized_offer_id, builder)
                    .await;
            }
            VoidBudget::GiveBack {
                campaign_id,
                taken,
                discount,
            } => (campaign_id, taken, discount),
        };
        let refused = |err: aws_sdk_dynamodb::error::BuildError| {
            StoreError::Refused(format!("void transaction: {err}"))
        };
        let offer = void_parts(
            offer_update(
                self.tables.loyalty_offers()?,
                user_id,
                personalized_offer_id,
            ),
            order_id,
            at,
        )
        .condition(condition)
        .build()
        .map_err(refused)?;
        let mut gives = Vec::new();
        let mut campaign = Update::builder()
            .table_name(self.tables.campaigns()?)
            .key("campaignId", text(campaign_id))
            .condition_expression("attribute_exists(campaignId)");
        if taken.redemptions {
            gives.push("usedRedemptions :minusOne");
            campaign = campaign.value(":minusOne", number(-1));
        }
        if taken.discount_value {
            gives.push("usedDiscountValue :minusDiscount");
            let amount = Amount::parse(&discount.to_string()).unwrap_or(Amount::ZERO);
            campaign = campaign.value(":minusDiscount", number(format!("-{}", amount.to_text())));
        }
        if gives.is_empty() {
            gives.push("usedRedemptions :none");
            campaign = campaign.value(":none", number(0));
        }
        let campaign = campaign
            .update(&format!("ADD {}", gives.join(", ")))
            .build()
            .map_err(refused)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(offer).build())
            .transact_items(TransactWriteItem::builder().update(campaign).build())
            .send()
            .await;
        let written = match cancelled(result, classify)? {
            None => true,
            Some(reasons) if condition_failed(&reasons, 0) => false,
            Some(reasons) if condition_failed(&reasons, 1) => {
                return Ok(ActivityWrite::BudgetRefused)
            }
            Some(reasons) => return Err(cancellation_error(&reasons)),
        };
        let offer = self
            .read_offer(user_id, personalized_offer_id, true)
            .await?
            .map(Box::new);
        Ok(match (written, offer) {
            (true, Some(offer)) => ActivityWrite::Written(offer),
            (_, offer) => ActivityWrite::NotWritten(offer),
        })
    }

    async fn record_event(
        &self,
        user_id: &UserId,
        event: &OfferEvent,
        ttl: i64,
    ) -> Result<EventWrite, StoreError> {
        let user_id = user_id.as_str();
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
        let update = event_counter_parts(
            offer_update(
                self.tables.loyalty_offers()?,
                user_id,
                event.personalized_offer_id,
            ),
            event,
        )
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
