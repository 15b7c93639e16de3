//! The statistics function's typed input: one record of the loyalty offers
//! table's stream, read from the wire. Images stay in DynamoDB's wire JSON
//! (`{"N": "12.10"}`), so that amounts keep their exact text; DynamoDB
//! Local's bare `{}` for an empty map is read as the empty map it is.

use crate::stream::runner::stream_record;
use crate::stream::{Batch, Envelope, Input, ReadRecord};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// One record of a stream batch: an INSERT (no old image) or a MODIFY;
/// REMOVE (an offer's TTL, never counted down) and unknown event names are
/// ignored.
pub type StatsInput = Input<ChangeRecord>;

/// The records of one stream event, typed.
pub type StatsBatch = Batch<ChangeRecord>;

/// An INSERT or MODIFY of an offer item.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    pub event_id: String,
    pub sequence_number: String,
    /// When the record was written to the stream, if the record says.
    pub created_at: Option<DateTime<Utc>>,
    /// `None` for an INSERT.
    pub old_image: Option<Map<String, Value>>,
    pub new_image: Map<String, Value>,
}

stream_record!(ChangeRecord, created_at);

impl ReadRecord for ChangeRecord {
    /// INSERT and MODIFY are changes; REMOVE (the offer's TTL, or a delete)
    /// and anything else are ignored: an offer leaving the table is not an
    /// event of its campaign.
    fn read_record(mut raw: Value) -> StatsInput {
        let envelope = match Envelope::read(&raw, &["INSERT", "MODIFY"]) {
            Ok(envelope) => envelope,
            Err(other) => return other,
        };
        let event_id = match envelope.require_event_id() {
            Ok(event_id) => event_id,
            Err(unusable) => return unusable,
        };
        let change = raw["dynamodb"].take();
        let image = |name: &str| match change.get(name) {
            Some(Value::Object(image)) => Some(image.clone()),
            _ => None,
        };
        let Some(new_image) = image("NewImage") else {
            return envelope.unusable("record has no NewImage (is the stream NEW_AND_OLD_IMAGES?)");
        };
        let old_image = if envelope.event_name == "MODIFY" {
            match image("OldImage") {
                Some(old) => Some(old),
                None => {
                    return envelope
                        .unusable("MODIFY without OldImage (is the stream NEW_AND_OLD_IMAGES?)")
                }
            }
        } else {
            None
        };
        Input::Change(Box::new(ChangeRecord {
            event_id,
            sequence_number: envelope.sequence_number,
            created_at: envelope.created_at,
            old_image,
            new_image,
        }))
    }
}

/// Reads one record of the offers table's stream.
pub fn read_record(raw: Value) -> StatsInput {
    ChangeRecord::read_record(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::test_events::without_sequence_number;
    use crate::stream::EventError;
    use serde_json::json;

    fn record(name: &str, old: Option<Value>, new: Option<Value>) -> Value {
        let mut change = json!({"ApproximateCreationDateTime": 1_700_000_000,
            "Keys": {"userId": {"S": "u"}, "personalizedOfferId": {"S": "p"}},
            "SequenceNumber": "100", "StreamViewType": "NEW_AND_OLD_IMAGES"});
        if let Some(old) = old {
            change["OldImage"] = old;
        }
        if let Some(new) = new {
            change["NewImage"] = new;
        }
        json!({"eventID": "e1", "eventName": name, "dynamodb": change})
    }

    #[test]
    fn inserts_and_modifies_are_changes_with_their_images() {
        let image = json!({"offerId": {"S": "co"}});
        match read_record(record("MODIFY", Some(image.clone()), Some(image.clone()))) {
            Input::Change(change) => {
                assert!(change.old_image.is_some());
                assert_eq!(
                    change.created_at.map(|at| at.timestamp()),
                    Some(1_700_000_000)
                );
            }
            other => panic!("{other:?}"),
        }
        match read_record(record("INSERT", None, Some(image))) {
            Input::Change(change) => assert!(change.old_image.is_none()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn removes_and_ttl_deletions_are_ignored_and_broken_records_unusable() {
        for name in ["REMOVE", "UNKNOWN_TO_SDK_VERSION", ""] {
            assert!(matches!(
                read_record(record(name, Some(json!({})), None)),
                Input::Ignored { .. }
            ));
        }
        assert!(matches!(
            read_record(record("MODIFY", None, Some(json!({})))),
            Input::Unusable { .. }
        ));
        assert!(matches!(
            read_record(record("INSERT", None, None)),
            Input::Unusable { .. }
        ));
        let no_sequence = without_sequence_number(record("INSERT", None, Some(json!({}))));
        assert!(matches!(
            read_record(no_sequence),
            Input::Unusable {
                sequence_number: None,
                ..
            }
        ));
        assert_eq!(
            StatsBatch::try_from(json!([])),
            Err(EventError::NotAnObject)
        );
        assert_eq!(
            StatsBatch::try_from(json!({"Records": 1})),
            Err(EventError::RecordsNotAList)
        );
    }
}
