//! The loyalty offers table's item, owned here and nowhere else: its
//! attribute names, its key, how it is read (serde, one reader for every
//! adapter) and the conditions and update expressions of every write to it.
//! The adapters that write it (`dispatch`, `support`, `activity`,
//! `challenges`) and read it (`offers`, `always_on`, `rejected`) build their
//! requests from these, never from literals of their own.

use super::errors::classify;
use super::items::text;
use super::DynamoStore;
use crate::domain::assignment::MAX_ABS_RANK;
use crate::domain::challenge::REWARD_GRANTED_AT;
use crate::domain::dates::format_timestamp;
use crate::domain::redemption::{redemption_limit, MAX_REDEMPTION_RECORDS};
use crate::domain::CampaignId;
use crate::domain::PersonalizedOfferId;
use crate::domain::{AuditEntry, OfferEvent, PersonalizedOffer, Redemption};
use crate::error::StoreError;
use crate::ports::{GoalMet, ListPosition};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

// The item's attributes: `PersonalizedOffer`'s serde names (a test checks
// each against a serialized offer), and the index keys written beside them.

/// Partition key.
pub const USER_ID: &str = "userId";
/// Sort key.
pub const PERSONALIZED_OFFER_ID: &str = "personalizedOfferId";
pub const OFFER_ID: &str = "offerId";
pub const CAMPAIGN_ID: &str = "campaignId";
pub const START_DATE: &str = "startDate";
pub const EXPIRY_DATE: &str = "expiryDate";
pub const RULES: &str = "rules";
pub const SOURCE: &str = "source";
pub const CREATED_AT: &str = "createdAt";
pub const REVOKED_AT: &str = "revokedAt";
pub const REVOKED_BY: &str = "revokedBy";
pub const AUDIT: &str = "audit";
pub const REDEMPTION_COUNT: &str = "redemptionCount";
/// The redemption records, by order id.
pub const REDEMPTIONS: &str = "redemptions";
/// When the offer was first viewed and clicked (section 10's events).
pub const VIEWED_AT: &str = "viewedAt";
pub const CLICKED_AT: &str = "clickedAt";
/// A redemption record's order total, discount and time (section 7).
pub const TOTAL_COST: &str = "totalCost";
pub const DISCOUNT: &str = "discount";
pub const REDEEMED_AT: &str = "redeemedAt";
pub const CHALLENGE: &str = "challenge";
pub const SELECTION: &str = "selection";
/// The assignment that made the offer (kept for support and audit); the
/// pending row carries the same attribute (contract section 2).
pub const ASSIGNMENT_ID: &str = "assignmentId";
/// Sort key of [`RANK_INDEX`].
pub const RANK_KEY: &str = "rankKey";
/// Sort key of [`CREATED_INDEX`].
pub const CREATED_KEY: &str = "createdKey";

// Inside `rules`, a redemption record, and `challenge`.
const REDEMPTION_LIMIT: &str = "redemptionLimit";
const MINIMUM_SPEND: &str = "minimumSpend";
const SERVICE_MODES: &str = "serviceModes";
pub const VOIDED_AT: &str = "voidedAt";
const RECORD_BUDGET: &str = "budget";
const GOALS: &str = "goals";
const MET_AT: &str = "metAt";
const TRANSACTION_ID: &str = "transactionId";
const COUNTED_TRANSACTIONS: &str = "countedTransactions";
const COMPLETED_AT: &str = "completedAt";
const REWARD: &str = "reward";

/// Local secondary index of the loyalty offers table: a user's offers in display order.
pub const RANK_INDEX: &str = "byRank";
/// Local secondary index of the loyalty offers table: a user's offers by creation time.
pub const CREATED_INDEX: &str = "byCreatedAt";

/// The item's key: the user's partition, the offer's id.
pub fn key(
    user_id: &str,
    personalized_offer_id: PersonalizedOfferId,
) -> HashMap<String, AttributeValue> {
    key_of(text(user_id), text(personalized_offer_id.to_string()))
}

/// The key of values as they were read (a rejected row's, which may not be
/// an offer's id at all).
pub fn key_of(
    user_id: AttributeValue,
    personalized_offer_id: AttributeValue,
) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (USER_ID.to_owned(), user_id),
        (PERSONALIZED_OFFER_ID.to_owned(), personalized_offer_id),
    ])
}

/// The condition that the offer is not there yet.
pub fn absent() -> String {
    format!("attribute_not_exists({PERSONALIZED_OFFER_ID})")
}

/// The condition that the offer is there.
pub fn exists() -> String {
    format!("attribute_exists({PERSONALIZED_OFFER_ID})")
}

/// The condition that the offer is there and not revoked.
fn live() -> String {
    format!("{} AND attribute_not_exists({REVOKED_AT})", exists())
}

/// The filter of a user's current offers: not revoked, expiring after `:cutoff`.
pub fn current_filter() -> String {
    format!("attribute_not_exists({REVOKED_AT}) AND {EXPIRY_DATE} > :cutoff")
}

/// The filter of a user's challenge offers.
pub fn challenge_filter() -> String {
    format!("attribute_exists({CHALLENGE})")
}

/// The key condition of a user's partition (`:user`).
pub fn partition_condition() -> String {
    format!("{USER_ID} = :user")
}

/// The offer as an item, with the sort keys of its indexes.
pub fn offer_to_item(
    offer: &PersonalizedOffer,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(offer)
        .map_err(|err| StoreError::Refused(format!("offer not serializable: {err}")))?;
    item.insert(RANK_KEY.into(), AttributeValue::S(rank_key(offer)));
    item.insert(CREATED_KEY.into(), AttributeValue::S(created_key(offer)));
    Ok(item)
}

pub fn offer_from_item(
    item: HashMap<String, AttributeValue>,
) -> Result<PersonalizedOffer, StoreError> {
    serde_dynamo::from_item(item).map_err(|err| StoreError::Corrupt(format!("offer item: {err}")))
}

/// The offer of an item that must be `user_id`'s `id`.
pub fn owned_offer(
    item: HashMap<String, AttributeValue>,
    user_id: &str,
    personalized_offer_id: PersonalizedOfferId,
) -> Result<PersonalizedOffer, StoreError> {
    let offer = offer_from_item(item)?;
    if offer.user_id != user_id || offer.personalized_offer_id != personalized_offer_id {
        return Err(StoreError::Corrupt(format!(
            "item under key {personalized_offer_id} holds another offer"
        )));
    }
    Ok(offer)
}

/// Sorts as text by rank, then start date, then id. Ranks are offset so that
/// negative ones sort first, and zero-padded so that text order is number order.
pub fn rank_key(offer: &PersonalizedOffer) -> String {
    format!(
        "{:010}#{}#{}",
        offer.rank.saturating_add(MAX_ABS_RANK),
        sortable_timestamp(offer.start_date),
        offer.personalized_offer_id
    )
}

pub fn created_key(offer: &PersonalizedOffer) -> String {
    format!(
        "{}#{}",
        sortable_timestamp(offer.created_at),
        offer.personalized_offer_id
    )
}

/// Fixed-width UTC text (nanoseconds always written), so that text order is
/// time order: `…37Z` and `…37.25Z` would sort the wrong way round.
fn sortable_timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

/// The primary key plus the index's sort key (`index_key_name`): where a
/// Query on that index resumes. The user is the caller, never taken from
/// the position.
pub fn start_key(
    user_id: &str,
    index_key_name: &str,
    position: &ListPosition,
) -> HashMap<String, AttributeValue> {
    let mut start = key(user_id, position.personalized_offer_id);
    start.insert(index_key_name.to_owned(), text(position.index_key.clone()));
    start
}

/// The put of a new offer: it fails when the offer is there (of an
/// assignment, the id is the assignment's: a second row of it fails too,
/// under replay and concurrency alike).
pub fn new_offer_put(
    table: &str,
    item: HashMap<String, AttributeValue>,
) -> Result<Put, StoreError> {
    Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(absent())
        .build()
        .map_err(|err| StoreError::Refused(format!("offer put: {err}")))
}

/// A transaction's check that the offer of `key` is (`there`) or is not there.
pub fn presence_check(
    table: &str,
    key: HashMap<String, AttributeValue>,
    there: bool,
) -> Result<ConditionCheck, StoreError> {
    ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(key))
        .condition_expression(if there { exists() } else { absent() })
        .build()
        .map_err(|err| StoreError::Refused(err.to_string()))
}

impl DynamoStore {
    /// One GetItem on the user's own key.
    pub(super) async fn read_offer(
        &self,
        user_id: &str,
        personalized_offer_id: PersonalizedOfferId,
        consistent: bool,
    ) -> Result<Option<PersonalizedOffer>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(self.tables.loyalty_offers()?)
            .set_key(Some(key(user_id, personalized_offer_id)))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|err| classify(&err))?;
        output
            .item
            .map(|item| owned_offer(item, user_id, personalized_offer_id))
            .transpose()
    }
}

/// The expression parts an UpdateItem and a transaction's Update share.
pub trait UpdateParts: Sized {
    fn condition(self, expression: String) -> Self;
    fn update(self, expression: &str) -> Self;
    fn name(self, placeholder: impl Into<String>, name: impl Into<String>) -> Self;
    fn value(self, placeholder: impl Into<String>, value: AttributeValue) -> Self;
}

macro_rules! update_parts {
    ($builder:ty) => {
        impl UpdateParts for $builder {
            fn condition(self, expression: String) -> Self {
                self.condition_expression(expression)
            }
            fn update(self, expression: &str) -> Self {
                self.update_expression(expression)
            }
            fn name(self, placeholder: impl Into<String>, name: impl Into<String>) -> Self {
                self.expression_attribute_names(placeholder, name)
            }
            fn value(self, placeholder: impl Into<String>, value: AttributeValue) -> Self {
                self.expression_attribute_values(placeholder, value)
            }
        }
    };
}

update_parts!(UpdateItemFluentBuilder);
update_parts!(UpdateBuilder);

/// An Update of the offer item in a transaction, on its key.
pub fn offer_update(
    table: &str,
    user_id: &str,
    personalized_offer_id: PersonalizedOfferId,
) -> UpdateBuilder {
    aws_sdk_dynamodb::types::Update::builder()
        .table_name(table)
        .set_key(Some(key(user_id, personalized_offer_id)))
}

pub(super) fn number(value: impl ToString) -> AttributeValue {
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

/// The condition and update of a redemption (see [`crate::ports::ActivityStore::redeem`]).
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
///
/// Its condition also keeps the offer out of `kept_out` campaigns (those
/// with a redemption budget).
pub fn redemption_parts<U: UpdateParts>(
    update: U,
    known: Option<&PersonalizedOffer>,
    redemption: &Redemption,
    record: AttributeValue,
    kept_out: &[CampaignId],
) -> U {
    let mut condition = live();
    let first = known.is_none_or(|offer| offer.redemptions.is_empty());
    let update = if first {
        // Absent, or (never written so, but harmless) an empty map.
        condition.push_str(&format!(
            " AND (attribute_not_exists({REDEMPTIONS}) OR size({REDEMPTIONS}) = :zero)"
        ));
        update
            .update(&format!(
                "SET {REDEMPTIONS} = :records, \
                 {REDEMPTION_COUNT} = if_not_exists({REDEMPTION_COUNT}, :zero) + :one"
            ))
            .value(
                ":records",
                AttributeValue::M(HashMap::from([(redemption.order_id.clone(), record)])),
            )
    } else {
        condition.push_str(&format!(
            " AND attribute_not_exists({REDEMPTIONS}.#order) \
             AND size({REDEMPTIONS}) < :maxRecords"
        ));
        update
            .update(&format!(
                "SET {REDEMPTIONS}.#order = :record, \
                 {REDEMPTION_COUNT} = if_not_exists({REDEMPTION_COUNT}, :zero) + :one"
            ))
            .name("#order", redemption.order_id.clone())
            .value(":record", record)
            .value(":maxRecords", number(MAX_REDEMPTION_RECORDS))
    };
    let update = match known {
        Some(offer) => match redemption_limit(&offer.rules) {
            Some(limit) => {
                condition.push_str(&format!(
                    " AND (attribute_not_exists({REDEMPTION_COUNT}) \
                     OR {REDEMPTION_COUNT} < :limit)"
                ));
                update.value(":limit", number(limit))
            }
            None => update,
        },
        None => {
            condition.push_str(&format!(
                " AND {START_DATE} <= :startBound AND {EXPIRY_DATE} > :expiryBound \
                 AND (attribute_not_exists(#rules.{REDEMPTION_LIMIT}) \
                      OR (attribute_not_exists({REDEMPTION_COUNT}) \
                          AND #rules.{REDEMPTION_LIMIT} > :zero) \
                      OR {REDEMPTION_COUNT} < #rules.{REDEMPTION_LIMIT}) \
                 AND (attribute_not_exists(#rules.{MINIMUM_SPEND}) \
                      OR #rules.{MINIMUM_SPEND} <= :cost) \
                 AND (attribute_not_exists(#rules.{SERVICE_MODES}) \
                      OR (attribute_type(#rules.{SERVICE_MODES}, :list) \
                          AND contains(#rules.{SERVICE_MODES}, :mode)))"
            ));
            update
                .value(
                    ":startBound",
                    text(second_bound(redemption.redeemed_at, -1)),
                )
                .value(
                    ":expiryBound",
                    text(second_bound(redemption.redeemed_at, 1)),
                )
                .value(":cost", number(&redemption.total_cost))
                .value(":mode", text(redemption.service_mode.clone()))
                .value(":list", text("L"))
                // A reserved word in expressions.
                .name("#rules", RULES)
        }
    };
    let mut update = update;
    if !kept_out.is_empty() {
        let names: Vec<String> = (0..kept_out.len())
            .map(|n| format!(":keptOut{n}"))
            .collect();
        condition.push_str(&format!(
            " AND (attribute_not_exists({CAMPAIGN_ID}) OR NOT ({CAMPAIGN_ID} IN ({})))",
            names.join(", ")
        ));
        for (name, campaign) in names.into_iter().zip(kept_out) {
            update = update.value(name, text(campaign.clone()));
        }
    }
    update
        .condition(condition)
        .value(":zero", number(0))
        .value(":one", number(1))
}

/// The condition of a void: the order's record is there and not voided;
/// with `untouched_budget`, the record took nothing from a budget.
pub fn void_condition(untouched_budget: bool) -> String {
    let mut condition = format!(
        "attribute_exists({REDEMPTIONS}.#order) \
         AND attribute_not_exists({REDEMPTIONS}.#order.{VOIDED_AT})"
    );
    if untouched_budget {
        condition.push_str(&format!(
            " AND attribute_not_exists({REDEMPTIONS}.#order.{RECORD_BUDGET})"
        ));
    }
    condition
}

/// A void's update: the record's `voidedAt`, and the use given back.
pub fn void_parts<U: UpdateParts>(update: U, order_id: &str, at: DateTime<Utc>) -> U {
    update
        .update(&format!(
            "SET {REDEMPTIONS}.#order.{VOIDED_AT} = :at, \
             {REDEMPTION_COUNT} = if_not_exists({REDEMPTION_COUNT}, :one) - :one"
        ))
        .name("#order", order_id)
        .value(":at", text(format_timestamp(at)))
        .value(":one", number(1))
}

/// A revocation: the first one stands (a second changes nothing); its
/// audit entry is appended.
pub fn revocation_parts<U: UpdateParts>(update: U, entry: &AuditEntry) -> Result<U, StoreError> {
    let audit = serde_dynamo::to_attribute_value(entry)
        .map_err(|err| StoreError::Refused(format!("audit entry not serializable: {err}")))?;
    Ok(update
        .condition(live())
        .update(&format!(
            "SET {REVOKED_AT} = :at, {REVOKED_BY} = :by, \
             {AUDIT} = list_append(if_not_exists({AUDIT}, :none), :entry)"
        ))
        .value(":at", text(format_timestamp(entry.at)))
        .value(":by", text(entry.by.clone()))
        .value(":none", AttributeValue::L(Vec::new()))
        .value(":entry", AttributeValue::L(vec![audit])))
}

/// An offer event's counters: its first time kept, its count added to.
pub fn event_counter_parts<U: UpdateParts>(update: U, event: &OfferEvent) -> U {
    update
        .condition(exists())
        .update("SET #first = if_not_exists(#first, :at) ADD #count :one")
        .name("#first", event.event_type.first_at_attribute())
        .name("#count", event.event_type.count_attribute())
        .value(":at", text(format_timestamp(event.received_at)))
        .value(":one", number(1))
}

/// The update, its condition, and their names and values.
pub type Expressions = (
    String,
    String,
    HashMap<String, String>,
    HashMap<String, AttributeValue>,
);

/// A challenge goal met: the update and its condition: the goal still
/// unmet, the transaction not yet counted (the counted map as it was read),
/// the offer not revoked; and when it completes the challenge, every other
/// goal met and the challenge not completed. Goal names are at most 255
/// bytes and goals at most 100, so the expressions stay within DynamoDB's 4 KB.
pub fn goal_expressions(write: &GoalMet) -> Expressions {
    let mut names: HashMap<String, String> = [
        ("#id", PERSONALIZED_OFFER_ID),
        ("#rv", REVOKED_AT),
        ("#c", CHALLENGE),
        ("#g", GOALS),
        ("#m", MET_AT),
        ("#t", TRANSACTION_ID),
        ("#ct", COUNTED_TRANSACTIONS),
    ]
    .into_iter()
    .map(|(placeholder, name)| (placeholder.to_owned(), name.to_owned()))
    .collect();
    names.insert("#goal".into(), write.goal.clone());
    let met_at = format_timestamp(write.met_at);
    let mut values: HashMap<String, AttributeValue> = HashMap::from([
        (":at".to_owned(), text(met_at)),
        (":tx".to_owned(), text(write.transaction_id.clone())),
    ]);
    let mut sets = vec![
        "#c.#g.#goal.#m = :at".to_owned(),
        "#c.#g.#goal.#t = :tx".to_owned(),
    ];
    let mut conditions = vec![
        "attribute_exists(#id)".to_owned(),
        "attribute_not_exists(#rv)".to_owned(),
        "attribute_exists(#c.#g.#goal)".to_owned(),
        "attribute_not_exists(#c.#g.#goal.#m)".to_owned(),
    ];
    // DynamoDB refuses a placeholder the expressions do not use.
    if write.counted_map_exists {
        names.insert("#k".into(), write.counted_key.clone());
        sets.push("#c.#ct.#k = :goal".into());
        values.insert(":goal".into(), text(write.goal.clone()));
        conditions.push("attribute_exists(#c.#ct)".into());
        conditions.push("attribute_not_exists(#c.#ct.#k)".into());
    } else {
        sets.push("#c.#ct = :counted".into());
        values.insert(
            ":counted".into(),
            AttributeValue::M(HashMap::from([(
                write.counted_key.clone(),
                text(write.goal.clone()),
            )])),
        );
        conditions.push("attribute_not_exists(#c.#ct)".into());
    }
    if let Some(completion) = &write.completion {
        names.insert("#done".into(), COMPLETED_AT.into());
        names.insert("#r".into(), REWARD.into());
        names.insert("#ga".into(), REWARD_GRANTED_AT.into());
        values.insert(
            ":granted".into(),
            text(format_timestamp(completion.granted_at)),
        );
        sets.push("#c.#done = :at".into());
        sets.push("#c.#r.#ga = :granted".into());
        conditions.push("attribute_not_exists(#c.#done)".into());
        for (index, other) in completion.other_goals.iter().enumerate() {
            let placeholder = format!("#o{index}");
            conditions.push(format!("attribute_exists(#c.#g.{placeholder}.#m)"));
            names.insert(placeholder, other.clone());
        }
    }
    (
        format!("SET {}", sets.join(", ")),
        conditions.join(" AND "),
        names,
        values,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::dates::parse_timestamp;

    #[test]
    fn index_keys_sort_as_text_in_time_order() {
        let times = [
            "2024-01-01T00:00:37Z",
            "2024-01-01T00:00:37.25Z",
            "2024-01-01T00:00:37.3Z",
            "2024-01-01T00:00:38Z",
        ];
        let keys: Vec<String> = times
            .iter()
            .filter_map(|t| parse_timestamp(t))
            .map(sortable_timestamp)
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(keys[1], "2024-01-01T00:00:37.250000000Z");
    }

    #[test]
    fn the_attribute_names_are_those_the_offer_is_stored_under() {
        let mut offer: PersonalizedOffer = serde_json::from_value(serde_json::json!({
            "personalizedOfferId": uuid::Uuid::nil(), "userId": "u", "offerId": "co-1",
            "templateId": "tpl-1", "campaignId": "c-1", "rules": {"minimumSpend": "5"},
            "startDate": "2026-01-01T00:00:00Z", "expiryDate": "2026-02-01T00:00:00Z",
            "rank": 1, "source": "support", "createdAt": "2026-01-01T00:00:00Z", "ttl": 0,
            "revokedAt": "2026-01-02T00:00:00Z", "revokedBy": "agent", "redemptionCount": 1
        }))
        .expect("offer");
        offer.audit.push(AuditEntry {
            action: "revoked".into(),
            by: "agent".into(),
            at: offer.created_at,
            reason: None,
        });
        let item = offer_to_item(&offer).expect("item");
        for name in [
            USER_ID,
            PERSONALIZED_OFFER_ID,
            OFFER_ID,
            CAMPAIGN_ID,
            START_DATE,
            EXPIRY_DATE,
            RULES,
            SOURCE,
            CREATED_AT,
            REVOKED_AT,
            REVOKED_BY,
            AUDIT,
            REDEMPTION_COUNT,
            RANK_KEY,
            CREATED_KEY,
        ] {
            assert!(
                item.contains_key(name),
                "{name} is not an attribute of the item"
            );
        }
        assert_eq!(key(&offer.user_id, offer.personalized_offer_id).len(), 2);
        assert!(offer_from_item(item).is_ok());
    }
}
