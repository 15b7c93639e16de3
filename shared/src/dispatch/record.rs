//! One stream record, read on its own: a bad record never fails the batch.

use crate::ports::RowCopy;
use aws_lambda_events::event::dynamodb::EventRecord;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// An INSERT of a pending row.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertRecord {
    pub event_id: String,
    pub sequence_number: String,
    pub user_id: String,
    pub sort_key: String,
    pub row: RowCopy,
    /// Why the record's image could not be read, when it could not.
    pub unreadable: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StreamInput {
    Insert(InsertRecord),
    /// REMOVE (TTL or our own delete), MODIFY, or an event name we do not know.
    Ignored {
        event_id: Option<String>,
        sequence_number: Option<String>,
        event_name: String,
    },
    /// An INSERT without the keys or sequence number needed to act on it.
    Unusable {
        event_id: Option<String>,
        sequence_number: Option<String>,
        error: String,
    },
}

impl StreamInput {
    pub fn sequence_number(&self) -> Option<&str> {
        match self {
            StreamInput::Insert(insert) => Some(&insert.sequence_number),
            StreamInput::Ignored {
                sequence_number, ..
            }
            | StreamInput::Unusable {
                sequence_number, ..
            } => sequence_number.as_deref(),
        }
    }
}

/// Reads one record of the Lambda event for a DynamoDB stream.
pub fn read_record(mut raw: Value) -> StreamInput {
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let event_id = text(&raw["eventID"]);
    let sequence_number = text(&raw["dynamodb"]["SequenceNumber"]);
    let event_name = text(&raw["eventName"]).unwrap_or_default();
    if event_name != "INSERT" {
        return StreamInput::Ignored {
            event_id,
            sequence_number,
            event_name,
        };
    }
    let unusable = |error: String| StreamInput::Unusable {
        event_id: event_id.clone(),
        sequence_number: sequence_number.clone(),
        error,
    };
    let (Some(event_id_text), Some(sequence_text)) = (event_id.clone(), sequence_number.clone())
    else {
        return unusable("record has no eventID or dynamodb.SequenceNumber".into());
    };

    normalise(&mut raw);
    let raw_image = raw["dynamodb"]
        .get("NewImage")
        .cloned()
        .unwrap_or(Value::Null);
    match serde_json::from_value::<EventRecord>(raw.clone()) {
        Ok(record) => {
            let image = if record.change.new_image.is_empty() {
                record.change.keys.clone()
            } else {
                record.change.new_image
            };
            let key = |name: &str| match record.change.keys.get(name).or_else(|| image.get(name)) {
                Some(serde_dynamo::AttributeValue::S(value)) => Some(value.clone()),
                _ => None,
            };
            let (Some(user_id), Some(sort_key)) = (key("userId"), key("sortKey")) else {
                return unusable("record has no userId/sortKey key".into());
            };
            let created_at = raw["dynamodb"]
                .get("ApproximateCreationDateTime")
                .map(|_| record.change.approximate_creation_date_time);
            StreamInput::Insert(InsertRecord {
                event_id: event_id_text,
                sequence_number: sequence_text,
                user_id,
                sort_key,
                row: RowCopy::Image(image),
                unreadable: None,
                created_at,
            })
        }
        Err(err) => {
            // The image is broken but the keys may still be readable: then the
            // row is rejected (kept with its reason) rather than retried forever.
            let key = |name: &str| {
                raw["dynamodb"]["Keys"][name]["S"]
                    .as_str()
                    .or_else(|| raw_image[name]["S"].as_str())
                    .map(str::to_owned)
            };
            match (key("userId"), key("sortKey")) {
                (Some(user_id), Some(sort_key)) => StreamInput::Insert(InsertRecord {
                    event_id: event_id_text,
                    sequence_number: sequence_text,
                    user_id,
                    sort_key,
                    row: RowCopy::Unreadable(raw_image.to_string()),
                    unreadable: Some(err.to_string()),
                    created_at: None,
                }),
                _ => unusable(format!("record cannot be read: {err}")),
            }
        }
    }
}

/// Smooths over shapes that are harmless but that the event type refuses:
/// DynamoDB Local's bare `{}` for an empty map, and fields a hand-made event may omit.
fn normalise(raw: &mut Value) {
    if let Some(change) = raw.get_mut("dynamodb").and_then(Value::as_object_mut) {
        change.entry("SizeBytes").or_insert(json!(0));
        for image in ["Keys", "NewImage", "OldImage"] {
            if let Some(Value::Object(attributes)) = change.get_mut(image) {
                attributes.values_mut().for_each(normalise_attribute);
            }
        }
    }
    if let Some(record) = raw.as_object_mut() {
        record.entry("awsRegion").or_insert(json!(""));
    }
}

fn normalise_attribute(value: &mut Value) {
    let Value::Object(typed) = value else { return };
    if typed.is_empty() {
        *value = json!({"M": {}});
        return;
    }
    if let Some(Value::Object(members)) = typed.get_mut("M") {
        members.values_mut().for_each(normalise_attribute);
    }
    if let Some(Value::Array(items)) = typed.get_mut("L") {
        items.iter_mut().for_each(normalise_attribute);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(image: Value) -> Value {
        json!({
            "eventID": "e1",
            "eventName": "INSERT",
            "eventSource": "aws:dynamodb",
            "awsRegion": "ddblocal",
            "dynamodb": {
                "ApproximateCreationDateTime": 1_700_000_000,
                "Keys": {"userId": {"S": "u1"}, "sortKey": {"S": "k1"}},
                "NewImage": image,
                "SequenceNumber": "100",
                "SizeBytes": 10,
                "StreamViewType": "NEW_IMAGE"
            }
        })
    }

    #[test]
    fn reads_an_insert_and_its_image() {
        let input = read_record(insert(
            json!({"userId": {"S": "u1"}, "sortKey": {"S": "k1"}, "rank": {"N": "2"}}),
        ));
        let StreamInput::Insert(record) = input else {
            panic!("expected insert: {input:?}")
        };
        assert_eq!(
            (record.user_id.as_str(), record.sort_key.as_str()),
            ("u1", "k1")
        );
        assert_eq!(record.sequence_number, "100");
        assert!(matches!(record.row, RowCopy::Image(ref image) if image.contains_key("rank")));
        assert!(record.created_at.is_some());
    }

    #[test]
    fn accepts_dynamodb_local_bare_empty_maps() {
        let input = read_record(insert(
            json!({"userId": {"S": "u1"}, "sortKey": {"S": "k1"}, "rules": {}}),
        ));
        let StreamInput::Insert(record) = input else {
            panic!("expected insert")
        };
        assert!(record.unreadable.is_none());
    }

    #[test]
    fn broken_image_with_readable_keys_is_an_unreadable_insert() {
        let input = read_record(insert(
            json!({"userId": {"S": "u1"}, "offerId": {"Q": "?"}}),
        ));
        let StreamInput::Insert(record) = input else {
            panic!("expected insert")
        };
        assert!(record.unreadable.is_some());
        assert!(matches!(record.row, RowCopy::Unreadable(ref text) if text.contains("offerId")));
    }

    #[test]
    fn other_event_names_are_ignored() {
        for name in ["REMOVE", "MODIFY", "UNKNOWN_TO_SDK_VERSION", ""] {
            let mut record = insert(json!({}));
            record["eventName"] = json!(name);
            assert!(
                matches!(read_record(record), StreamInput::Ignored { .. }),
                "{name}"
            );
        }
    }

    #[test]
    fn insert_without_keys_or_sequence_is_unusable() {
        let mut no_keys = insert(json!({"offerId": {"S": "x"}}));
        no_keys["dynamodb"]["Keys"] = json!({});
        assert!(matches!(read_record(no_keys), StreamInput::Unusable { .. }));
        let mut no_sequence = insert(json!({}));
        no_sequence["dynamodb"]
            .as_object_mut()
            .map(|change| change.remove("SequenceNumber"));
        assert!(matches!(
            read_record(no_sequence),
            StreamInput::Unusable {
                sequence_number: None,
                ..
            }
        ));
        assert!(matches!(
            read_record(json!("not an object")),
            StreamInput::Ignored { .. }
        ));
    }
}
