//! The edge: the Lambda event for a DynamoDB stream, read into the
//! dispatcher's typed input. Each record is read on its own (into
//! `aws_lambda_events`' record type, its image with `serde_dynamo`): one bad
//! record never fails the batch.

use aws_lambda_events::event::dynamodb::EventRecord;
use offers_shared::dispatch::{IgnoredReason, InsertRecord, StreamInput};
use offers_shared::stream::{normalise_record, stream_records};
use serde::Deserialize;
use serde_json::Value;

/// The records of one stream event, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamBatch(pub Vec<StreamInput>);

pub use offers_shared::stream::EventError;

impl TryFrom<Value> for StreamBatch {
    type Error = EventError;

    fn try_from(event: Value) -> Result<Self, Self::Error> {
        Ok(StreamBatch(
            stream_records(event)?
                .into_iter()
                .map(read_record)
                .collect(),
        ))
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
            reason: IgnoredReason::of_event_name(&event_name),
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

    normalise_record(&mut raw);
    let has_creation_time = raw["dynamodb"].get("ApproximateCreationDateTime").is_some();
    // Read from a reference: the raw record stays at hand for the error path.
    match EventRecord::deserialize(&raw) {
        Ok(record) => {
            let change = record.change;
            let created_at = has_creation_time.then_some(change.approximate_creation_date_time);
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
                return unusable("record has no userId/sortKey key".into());
            };
            StreamInput::Insert(Box::new(InsertRecord::from_image(
                event_id_text,
                sequence_text,
                (user_id, sort_key),
                image,
                created_at,
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
                    StreamInput::Insert(Box::new(InsertRecord::unreadable(
                        event_id_text,
                        sequence_text,
                        (user_id, sort_key),
                        raw_image.to_string(),
                        err.to_string(),
                    )))
                }
                _ => unusable(format!("record cannot be read: {err}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offers_shared::ports::RowCopy;
    use serde_json::json;

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

    fn read_insert(raw: Value) -> InsertRecord {
        match read_record(raw) {
            StreamInput::Insert(record) => *record,
            other => panic!("expected an insert: {other:?}"),
        }
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
                matches!(read_record(record), StreamInput::Ignored { reason: ref r, .. } if *r == reason),
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

    #[test]
    fn an_event_is_a_list_of_records_or_refused_whole() {
        let batch = StreamBatch::try_from(json!({"Records": [insert(json!({})), "junk"]}));
        assert_eq!(batch.map(|batch| batch.0.len()), Ok(2));
        assert_eq!(
            StreamBatch::try_from(json!({})),
            Ok(StreamBatch(Vec::new()))
        );
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
