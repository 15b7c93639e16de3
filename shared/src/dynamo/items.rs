use crate::domain::assignment::MAX_ABS_RANK;
use crate::domain::dates::format_timestamp;
use crate::domain::PersonalizedOffer;
use crate::error::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// Local secondary index of the loyalty offers table: a user's offers in display order.
pub const RANK_INDEX: &str = "byRank";
/// Local secondary index of the loyalty offers table: a user's offers by creation time.
pub const CREATED_INDEX: &str = "byCreatedAt";

/// The offer as a loyalty-table item, with the sort keys of its indexes.
pub fn offer_to_item(
    offer: &PersonalizedOffer,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(offer)
        .map_err(|err| StoreError::Refused(format!("offer not serializable: {err}")))?;
    item.insert("rankKey".into(), AttributeValue::S(rank_key(offer)));
    item.insert("createdKey".into(), AttributeValue::S(created_key(offer)));
    Ok(item)
}

pub fn offer_from_item(
    item: HashMap<String, AttributeValue>,
) -> Result<PersonalizedOffer, StoreError> {
    serde_dynamo::from_item(item).map_err(|err| StoreError::Corrupt(format!("offer item: {err}")))
}

/// Sorts as text by rank, then start date, then id. Ranks are offset so that
/// negative ones sort first, and zero-padded so that text order is number order.
pub fn rank_key(offer: &PersonalizedOffer) -> String {
    format!(
        "{:010}#{}#{}",
        offer.rank + MAX_ABS_RANK,
        format_timestamp(offer.start_date),
        offer.personalized_offer_id
    )
}

pub fn created_key(offer: &PersonalizedOffer) -> String {
    format!(
        "{}#{}",
        format_timestamp(offer.created_at),
        offer.personalized_offer_id
    )
}
