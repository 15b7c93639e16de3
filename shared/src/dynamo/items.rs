use crate::domain::assignment::MAX_ABS_RANK;
use crate::domain::limits::number_size;
use crate::domain::PersonalizedOffer;
use crate::error::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// An item as the SDK reads and writes it.
pub type Item = HashMap<String, AttributeValue>;

/// An attribute's text (S), if it has one.
pub fn text_of<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .map(String::as_str)
}

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

/// The size DynamoDB counts for one attribute value (see
/// `domain::limits::value_size`, the same rules for JSON documents).
pub fn attribute_size(value: &AttributeValue) -> usize {
    let sum = |sizes: &mut dyn Iterator<Item = usize>| sizes.fold(0usize, usize::saturating_add);
    match value {
        AttributeValue::S(text) => text.len(),
        AttributeValue::N(number) => number_size(number),
        AttributeValue::B(bytes) => bytes.as_ref().len(),
        AttributeValue::Ss(texts) => sum(&mut texts.iter().map(String::len)),
        AttributeValue::Ns(numbers) => sum(&mut numbers.iter().map(|n| number_size(n))),
        AttributeValue::Bs(blobs) => sum(&mut blobs.iter().map(|b| b.as_ref().len())),
        AttributeValue::L(items) => sum(&mut items.iter().map(|item| 1 + attribute_size(item))) + 3,
        AttributeValue::M(members) => {
            sum(&mut members
                .iter()
                .map(|(name, member)| 1 + name.len() + attribute_size(member)))
                + 3
        }
        _ => 1,
    }
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
fn sortable_timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
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
}
