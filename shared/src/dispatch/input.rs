//! The dispatcher's typed input: one record of the pending rows' stream,
//! read from the wire (into `aws_lambda_events`' record type, its image with
//! `serde_dynamo`). The row's image is converted to plain JSON once, here,
//! and the record's id derived once.

use crate::domain::PersonalizedOfferId;
use crate::ports::{PendingRef, RejectionKey, RowCopy};
use crate::stream::runner::{stream_record, KeyedRecord};
use crate::stream::{normalise_record, Batch, Envelope, Input, ReadRecord};
use aws_lambda_events::event::dynamodb::EventRecord;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

/// Namespace of the ids derived from stream records (offer and rejection ids).
const RECORD_NAMESPACE: Uuid = Uuid::from_u128(0x6f1d_2c4e_8b3a_4f0e_9d57_1a2b_3c4d_5e6f);

/// One record of a stream batch: an INSERT of a pending row; REMOVE (TTL
/// or our own delete), MODIFY or an event name we do not know are ignored;
/// an INSERT without the keys or sequence number needed to act on it is
/// unusable.
pub type StreamInput = Input<InsertRecord>;

/// The records of one stream event, typed.
pub type StreamBatch = Batch<InsertRecord>;

/// An INSERT of a pending row.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertRecord {
    pub event_id: String,
    pub sequence_number: String,
    pub user_id: String,
    pub sort_key: String,
    /// When the record was written to the stream, if the record says.
    pub created_at: Option<DateTime<Utc>>,
    /// The row as it was, for the rejected table and the pending delete.
    pub row: RowCopy,
    /// The row's attributes as plain JSON (S a string, N a number, M an
    /// object...), or why they cannot be read.
    pub attributes: Result<Map<String, Value>, String>,
    /// The id of this record's offer, or of its rejection: the same for every
    /// delivery of the record, different for every insert (even of one key).
    pub record_id: Uuid,
    /// The row's `assignmentId`, when it has a valid one (an invalid one
    /// makes the row `invalid_row`, an outcome of its record alone).
    pub assignment_id: Option<String>,
}

impl InsertRecord {
    /// An INSERT whose new image was read as DynamoDB attributes.
    pub fn from_image(
        event_id: String,
        sequence_number: String,
        keys: (String, String),
        image: serde_dynamo::Item,
        created_at: Option<DateTime<Utc>>,
    ) -> Self {
        let attributes = serde_dynamo::from_item::<_, Map<String, Value>>(image.clone())
            .map_err(|err| format!("row attributes cannot be read: {err}"));
        Self::new(
            event_id,
            sequence_number,
            keys,
            RowCopy::Image(image),
            attributes,
            created_at,
        )
    }

    /// An INSERT whose image could not be read as attributes (its keys could):
    /// it is rejected with its raw text, rather than retried forever.
    pub fn unreadable(
        event_id: String,
        sequence_number: String,
        keys: (String, String),
        raw_image: String,
        problem: String,
    ) -> Self {
        Self::new(
            event_id,
            sequence_number,
            keys,
            RowCopy::Unreadable(raw_image),
            Err(format!("stream record image is unreadable: {problem}")),
            None,
        )
    }

    fn new(
        event_id: String,
        sequence_number: String,
        (user_id, sort_key): (String, String),
        row: RowCopy,
        attributes: Result<Map<String, Value>, String>,
        created_at: Option<DateTime<Utc>>,
    ) -> Self {
        let record_id = record_id(&event_id, &sequence_number, &user_id, &sort_key, &row);
        let assignment_id = attributes
            .as_ref()
            .ok()
            .and_then(|attributes| offers_domain::read_assignment_id(attributes).ok().flatten())
            .map(str::to_owned);
        Self {
            event_id,
            sequence_number,
            user_id,
            sort_key,
            created_at,
            row,
            attributes,
            record_id,
            assignment_id,
        }
    }

    /// The id of the offer this record makes, and of its rejection: its
    /// assignment's, else its own.
    pub fn offer_id(&self) -> PersonalizedOfferId {
        crate::ports::offer_id_of(&self.user_id, self.assignment_id.as_deref(), self.record_id)
    }

    /// Where this record's own rejection would be filed.
    pub fn rejection_key(&self) -> RejectionKey<'_> {
        RejectionKey {
            user_id: &self.user_id,
            rejection_id: *self.offer_id().as_uuid(),
            record_id: self.record_id,
        }
    }

    /// The pending row this record is about.
    pub fn pending(&self) -> PendingRef {
        PendingRef {
            user_id: self.user_id.clone(),
            sort_key: self.sort_key.clone(),
            row: self.row.clone(),
            record_id: self.record_id,
            assignment_id: self.assignment_id.clone(),
        }
    }
}

stream_record!(InsertRecord, created_at);

impl KeyedRecord for InsertRecord {
    /// Rows of one user are independent: the pending row's whole key.
    fn key(&self) -> (&str, &str) {
        (&self.user_id, &self.sort_key)
    }
}

impl ReadRecord for InsertRecord {
    fn read_record(mut raw: Value) -> StreamInput {
        let envelope = match Envelope::read(&raw, &["INSERT"]) {
            Ok(envelope) => envelope,
            Err(other) => return other,
        };
        let event_id = match envelope.require_event_id() {
            Ok(event_id) => event_id,
            Err(unusable) => return unusable,
        };
        let sequence_number = envelope.sequence_number.clone();
        normalise_record(&mut raw);
        // Read from a reference: the raw record stays at hand for the error path.
        match EventRecord::deserialize(&raw) {
            Ok(record) => {
                let change = record.change;
                let image = if change.new_image.is_empty() {
                    change.keys.clone()
                } else {
                    change.new_image
                };
                let key = |name: &str| match change.keys.get(name).or_else(|| image.get(name)) {
                    Some(serde_dynamo::AttributeValue::S(value)) => Some(value.clone()),
                    _ => None,
                };
                let (Some(user_id), Some(sort_key)) = (key("userId"), key("sortKey")) else {
                    return envelope.unusable("record has no userId/sortKey key");
                };
                Input::Change(Box::new(InsertRecord::from_image(
                    event_id,
                    sequence_number,
                    (user_id, sort_key),
                    image,
                    envelope.created_at,
                )))
            }
            Err(err) => {
                // The image is broken but the keys may still be readable: then the
                // row is rejected (kept with its reason) rather than retried forever.
                let raw_image = &raw["dynamodb"]["NewImage"];
                let key = |name: &str| {
                    raw["dynamodb"]["Keys"][name]["S"]
                        .as_str()
                        .or_else(|| raw_image[name]["S"].as_str())
                        .map(str::to_owned)
                };
                match (key("userId"), key("sortKey")) {
                    (Some(user_id), Some(sort_key)) => {
                        Input::Change(Box::new(InsertRecord::unreadable(
                            event_id,
                            sequence_number,
                            (user_id, sort_key),
                            raw_image.to_string(),
                            err.to_string(),
                        )))
                    }
                    _ => envelope.unusable(format!("record cannot be read: {err}")),
                }
            }
        }
    }
}

/// Reads one record of the Lambda event for the pending rows' stream.
pub fn read_record(raw: Value) -> StreamInput {
    InsertRecord::read_record(raw)
}

/// A UUID v5 of the record's event id, sequence number, keys and image.
/// Offers and rejections already stored carry ids made this way: the
/// derivation must never change, or a replay after a deploy would make a
/// second offer.
fn record_id(
    event_id: &str,
    sequence_number: &str,
    user_id: &str,
    sort_key: &str,
    row: &RowCopy,
) -> Uuid {
    let mut name = String::new();
    for part in [event_id, sequence_number, user_id, sort_key] {
        name.push_str(part);
        name.push('\u{1f}');
    }
    match row {
        RowCopy::Image(image) => {
            let json = serde_json::to_value(image).unwrap_or(Value::Null);
            offers_domain::canonical::write_canonical(&json, &mut name);
        }
        RowCopy::Unreadable(text) => name.push_str(text),
    }
    Uuid::new_v5(&RECORD_NAMESPACE, name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::test_events::{insert_event, the_change, without_sequence_number};
    use crate::stream::{EventError, IgnoredReason};

    fn insert(image: Value) -> Value {
        insert_event(
            json!({"userId": {"S": "u1"}, "sortKey": {"S": "k1"}}),
            image,
        )
    }

    fn read_insert(raw: Value) -> InsertRecord {
        the_change(read_record(raw))
    }

    use aws_sdk_dynamodb::types::AttributeValue;
    use serde_json::json;
    use std::collections::HashMap;

    fn image() -> serde_dynamo::Item {
        HashMap::from([
            ("userId".to_owned(), AttributeValue::S("u1".into())),
            ("sortKey".to_owned(), AttributeValue::S("k1".into())),
            ("rank".to_owned(), AttributeValue::N("2".into())),
        ])
        .into()
    }

    /// The id the dispatcher has always derived for this record (computed
    /// by the derivation before it moved here): a change would make replays
    /// of records in flight during a deploy into second offers.
    const PINNED_RECORD_ID: &str = "904047cf-a864-541e-b1ca-cfa16d693f48";

    fn keys() -> (String, String) {
        ("u1".into(), "k1".into())
    }

    #[test]
    fn the_image_is_read_once_and_the_id_is_stable() {
        let record = InsertRecord::from_image("e1".into(), "100".into(), keys(), image(), None);
        let attributes = record.attributes.as_ref().expect("readable");
        assert_eq!(attributes["rank"], 2);
        // The derivation stored ids depend on: pinned.
        assert_eq!(record.record_id.to_string(), PINNED_RECORD_ID);
        let again = InsertRecord::from_image("e1".into(), "100".into(), keys(), image(), None);
        assert_eq!(record.record_id, again.record_id);
        let other = InsertRecord::from_image("e2".into(), "101".into(), keys(), image(), None);
        assert_ne!(record.record_id, other.record_id);
    }

    #[test]
    fn reads_an_insert_and_its_image_once() {
        let record = read_insert(insert(
            json!({"userId": {"S": "u1"}, "sortKey": {"S": "k1"}, "rank": {"N": "2"}}),
        ));
        assert_eq!(
            (record.user_id.as_str(), record.sort_key.as_str()),
            ("u1", "k1")
        );
        assert_eq!(record.sequence_number, "100");
        assert!(matches!(record.row, RowCopy::Image(ref image) if image.contains_key("rank")));
        assert_eq!(
            record.attributes.as_ref().map(|a| a["rank"].clone()),
            Ok(json!(2))
        );
        assert_eq!(
            record.created_at.map(|at| at.timestamp()),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn accepts_dynamodb_local_bare_empty_maps() {
        let record = read_insert(insert(
            json!({"userId": {"S": "u1"}, "sortKey": {"S": "k1"}, "rules": {}}),
        ));
        assert!(record.attributes.is_ok());
    }

    #[test]
    fn broken_image_with_readable_keys_is_an_unreadable_insert() {
        let record = read_insert(insert(json!({
            "userId": {"S": "u1"}, "sortKey": {"S": "k1"}, "offerId": {"Q": "?"}
        })));
        assert!(record.attributes.is_err());
        assert!(matches!(record.row, RowCopy::Unreadable(ref text) if text.contains("offerId")));
    }

    #[test]
    fn other_event_names_are_ignored() {
        for (name, reason) in [
            ("REMOVE", IgnoredReason::Remove),
            ("MODIFY", IgnoredReason::Modify),
            ("UNKNOWN_TO_SDK_VERSION", IgnoredReason::TtlRemove),
            ("", IgnoredReason::NoEventName),
        ] {
            let mut record = insert(json!({}));
            record["eventName"] = json!(name);
            assert!(
                matches!(read_record(record), Input::Ignored { reason: ref r, .. } if *r == reason),
                "{name}"
            );
        }
    }

    #[test]
    fn insert_without_keys_or_sequence_is_unusable() {
        let mut no_keys = insert(json!({"offerId": {"S": "x"}}));
        no_keys["dynamodb"]["Keys"] = json!({});
        assert!(matches!(read_record(no_keys), Input::Unusable { .. }));
        let no_sequence = without_sequence_number(insert(json!({})));
        assert!(matches!(
            read_record(no_sequence),
            Input::Unusable {
                sequence_number: None,
                ..
            }
        ));
        assert!(matches!(
            read_record(json!("not an object")),
            Input::Ignored { .. }
        ));
    }

    #[test]
    fn an_event_is_a_list_of_records_or_refused_whole() {
        let batch = StreamBatch::try_from(json!({"Records": [insert(json!({})), "junk"]}));
        assert_eq!(batch.map(|batch| batch.0.len()), Ok(2));
        assert_eq!(StreamBatch::try_from(json!({})), Ok(Batch(Vec::new())));
        assert_eq!(
            StreamBatch::try_from(json!([])),
            Err(EventError::NotAnObject)
        );
        assert_eq!(
            StreamBatch::try_from(json!({"Records": 3})),
            Err(EventError::RecordsNotAList)
        );
    }
}
