//! The edge: the Lambda event for the transactions table's stream, read
//! record by record into the service's typed input. A record whose image
//! cannot be read becomes a rejection with its raw text; nothing in a record
//! fails the batch.

use offers_shared::challenge_progress::{TransactionInput, TransactionRecord};
use offers_shared::dispatch::IgnoredReason;
use offers_shared::stream::{normalise_record, stream_records};
use serde::Deserialize;
use serde_json::{Map, Value};

pub use offers_shared::stream::EventError;

/// The records of one stream event, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionBatch(pub Vec<TransactionInput>);

impl TryFrom<Value> for TransactionBatch {
    type Error = EventError;

    fn try_from(event: Value) -> Result<Self, Self::Error> {
        Ok(TransactionBatch(
            stream_records(event)?
                .into_iter()
                .map(read_record)
                .collect(),
        ))
    }
}

/// Reads one record of the Lambda event for a DynamoDB stream.
pub fn read_record(mut raw: Value) -> TransactionInput {
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let event_id = text(&raw["eventID"]);
    let sequence_number = text(&raw["dynamodb"]["SequenceNumber"]);
    let event_name = text(&raw["eventName"]).unwrap_or_default();
    if event_name != "INSERT" {
        return TransactionInput::Ignored {
            event_id,
            sequence_number,
            reason: IgnoredReason::of_event_name(&event_name),
        };
    }
    // Without a sequence number a record can be neither reported nor told
    // apart from another; Lambda always sends one.
    let Some(sequence_number) = sequence_number else {
        return TransactionInput::Ignored {
            event_id,
            sequence_number: None,
            reason: IgnoredReason::UnreadableWithoutSequenceNumber(
                "record has no dynamodb.SequenceNumber".into(),
            ),
        };
    };
    let event_id = event_id.unwrap_or_default();
    normalise_record(&mut raw);
    let image = &raw["dynamodb"]["NewImage"];
    let attributes = serde_dynamo::Item::deserialize(image)
        .map_err(|err| err.to_string())
        .and_then(|item| {
            serde_dynamo::from_item::<_, Map<String, Value>>(item).map_err(|err| err.to_string())
        });
    let record = match attributes {
        Ok(attributes) => {
            TransactionRecord::from_attributes(event_id, sequence_number, &attributes)
        }
        Err(problem) => {
            TransactionRecord::unreadable(event_id, sequence_number, image.to_string(), &problem)
        }
    };
    TransactionInput::Insert(Box::new(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use offers_shared::domain::ReasonCode;
    use serde_json::json;

    fn insert(image: Value) -> Value {
        json!({
            "eventID": "e1",
            "eventName": "INSERT",
            "eventSource": "aws:dynamodb",
            "awsRegion": "ddblocal",
            "dynamodb": {
                "ApproximateCreationDateTime": 1_700_000_000,
                "Keys": {"transactionId": {"S": "t-1"}},
                "NewImage": image,
                "SequenceNumber": "100",
                "SizeBytes": 10,
                "StreamViewType": "NEW_IMAGE"
            }
        })
    }

    fn read_insert(raw: Value) -> TransactionRecord {
        match read_record(raw) {
            TransactionInput::Insert(record) => *record,
            other => panic!("expected an insert: {other:?}"),
        }
    }

    #[test]
    fn reads_a_transaction() {
        let record = read_insert(insert(json!({
            "transactionId": {"S": "t-1"}, "userId": {"S": "u1"}, "totalCost": {"N": "12.50"},
            "occurredAt": {"S": "2024-06-01T10:00:00+0000"}, "extra": {}
        })));
        let transaction = record.transaction.expect("valid");
        assert_eq!(transaction.total_cost, 12.5);
        assert_eq!(record.sequence_number, "100");
        assert_eq!(record.partition, "u1");
    }

    #[test]
    fn an_unreadable_image_is_a_rejection_with_its_text() {
        let record = read_insert(insert(json!({"transactionId": {"Q": "?"}})));
        let rejection = record.transaction.expect_err("unreadable");
        assert_eq!(rejection.code, ReasonCode::InvalidTransaction);
        assert!(record.image.contains("\"Q\""));
        let record = read_insert(insert(Value::Null));
        assert!(record.transaction.is_err());
    }

    #[test]
    fn other_events_are_ignored_and_a_list_is_required() {
        let mut remove = insert(json!({}));
        remove["eventName"] = json!("REMOVE");
        assert!(matches!(
            read_record(remove),
            TransactionInput::Ignored {
                reason: IgnoredReason::Remove,
                ..
            }
        ));
        let mut no_sequence = insert(json!({}));
        no_sequence["dynamodb"]
            .as_object_mut()
            .map(|change| change.remove("SequenceNumber"));
        assert!(matches!(
            read_record(no_sequence),
            TransactionInput::Ignored { .. }
        ));
        let batch = TransactionBatch::try_from(json!({"Records": [insert(json!({})), "junk"]}));
        assert_eq!(batch.map(|batch| batch.0.len()), Ok(2));
        assert_eq!(
            TransactionBatch::try_from(json!({"Records": 3})),
            Err(EventError::RecordsNotAList)
        );
    }
}
