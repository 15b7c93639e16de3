//! The dispatcher's typed input: one stream record, already read from the
//! wire by the function's handler (`functions/offer-dispatcher/src/records.rs`).
//! The row's image is converted to plain JSON once, here, and the record's
//! id derived once.

use crate::ports::{PendingRef, RowCopy};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Namespace of the ids derived from stream records (offer and rejection ids).
const RECORD_NAMESPACE: Uuid = Uuid::from_u128(0x6f1d_2c4e_8b3a_4f0e_9d57_1a2b_3c4d_5e6f);

/// One record of a stream batch.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamInput {
    Insert(Box<InsertRecord>),
    /// REMOVE (TTL or our own delete), MODIFY, or an event name we do not know.
    Ignored {
        event_id: Option<String>,
        sequence_number: Option<String>,
        reason: IgnoredReason,
    },
    /// An INSERT without the keys or sequence number needed to act on it.
    Unusable {
        event_id: Option<String>,
        sequence_number: Option<String>,
        error: String,
    },
}

/// Why a record needs no work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoredReason {
    Remove,
    Modify,
    /// DynamoDB Local names TTL deletions so (`UNKNOWN_TO_SDK_VERSION`).
    TtlRemove,
    NoEventName,
    UnknownEventName(String),
    /// A record that cannot be read and has no sequence number to report
    /// it by: nothing can be done with it (it never fails the batch).
    UnreadableWithoutSequenceNumber(String),
}

impl IgnoredReason {
    pub fn of_event_name(event_name: &str) -> Self {
        match event_name {
            "REMOVE" => IgnoredReason::Remove,
            "MODIFY" => IgnoredReason::Modify,
            "UNKNOWN_TO_SDK_VERSION" => IgnoredReason::TtlRemove,
            "" => IgnoredReason::NoEventName,
            other => IgnoredReason::UnknownEventName(other.chars().take(64).collect()),
        }
    }
}

impl std::fmt::Display for IgnoredReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IgnoredReason::Remove => f.write_str("remove"),
            IgnoredReason::Modify => f.write_str("modify"),
            IgnoredReason::TtlRemove => f.write_str("ttl_remove"),
            IgnoredReason::NoEventName => f.write_str("no_event_name"),
            IgnoredReason::UnknownEventName(name) => write!(f, "unknown_event_name:{name}"),
            IgnoredReason::UnreadableWithoutSequenceNumber(error) => {
                write!(f, "unreadable record without sequence number: {error}")
            }
        }
    }
}

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

    /// The id of the offer this record makes: its assignment's, else its own.
    pub fn offer_id(&self) -> Uuid {
        crate::ports::offer_id_of(&self.user_id, self.assignment_id.as_deref(), self.record_id)
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
    use aws_sdk_dynamodb::types::AttributeValue;
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
    fn ignored_reasons_have_stable_names() {
        assert_eq!(IgnoredReason::of_event_name("REMOVE").to_string(), "remove");
        assert_eq!(
            IgnoredReason::of_event_name("UNKNOWN_TO_SDK_VERSION").to_string(),
            "ttl_remove"
        );
        assert_eq!(
            IgnoredReason::of_event_name("X").to_string(),
            "unknown_event_name:X"
        );
    }
}
