//! The edge: the Lambda event for the loyalty offers table's stream, read
//! record by record into the statistics service's typed input. Images stay
//! in DynamoDB's wire JSON (exact numbers); DynamoDB Local's bare `{}` for an
//! empty map is read as the empty map it is.

use chrono::{DateTime, TimeZone, Utc};
use offers_shared::campaign_stats::{ChangeRecord, StatsInput};
use offers_shared::dispatch::IgnoredReason;
use serde_json::Value;

/// The records of one stream event, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsBatch(pub Vec<StatsInput>);

/// Why an event is not a stream event at all (the only way the whole
/// invocation fails).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("event is not a JSON object")]
    NotAnObject,
    #[error("event.Records is not a list")]
    RecordsNotAList,
}

impl TryFrom<Value> for StatsBatch {
    type Error = EventError;

    fn try_from(event: Value) -> Result<Self, Self::Error> {
        let Value::Object(mut event) = event else {
            return Err(EventError::NotAnObject);
        };
        match event.remove("Records") {
            Some(Value::Array(records)) => {
                Ok(StatsBatch(records.into_iter().map(read_record).collect()))
            }
            Some(Value::Null) | None => Ok(StatsBatch(Vec::new())),
            Some(_) => Err(EventError::RecordsNotAList),
        }
    }
}

/// Reads one record: INSERT and MODIFY are changes; REMOVE (the offer's
/// TTL, or a delete) and anything else are ignored: an offer leaving the
/// table is not an event of its campaign.
pub fn read_record(mut raw: Value) -> StatsInput {
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let event_id = text(&raw["eventID"]);
    let sequence_number = text(&raw["dynamodb"]["SequenceNumber"]);
    let event_name = text(&raw["eventName"]).unwrap_or_default();
    if event_name != "INSERT" && event_name != "MODIFY" {
        return StatsInput::Ignored {
            event_id,
            sequence_number,
            reason: IgnoredReason::of_event_name(&event_name),
        };
    }
    let unusable = |error: &str| StatsInput::Unusable {
        event_id: event_id.clone(),
        sequence_number: sequence_number.clone(),
        error: error.to_owned(),
    };
    let (Some(event_id_text), Some(sequence_text)) = (event_id.clone(), sequence_number.clone())
    else {
        return unusable("record has no eventID or dynamodb.SequenceNumber");
    };
    let change = raw["dynamodb"].take();
    let image = |name: &str| match change.get(name) {
        Some(Value::Object(image)) => Some(image.clone()),
        _ => None,
    };
    let Some(new_image) = image("NewImage") else {
        return unusable("record has no NewImage (is the stream NEW_AND_OLD_IMAGES?)");
    };
    let old_image = if event_name == "MODIFY" {
        match image("OldImage") {
            Some(old) => Some(old),
            None => return unusable("MODIFY without OldImage (is the stream NEW_AND_OLD_IMAGES?)"),
        }
    } else {
        None
    };
    let created_at = change["ApproximateCreationDateTime"]
        .as_f64()
        .and_then(epoch_seconds);
    StatsInput::Change(Box::new(ChangeRecord {
        event_id: event_id_text,
        sequence_number: sequence_text,
        created_at,
        old_image,
        new_image,
    }))
}

fn epoch_seconds(seconds: f64) -> Option<DateTime<Utc>> {
    if !seconds.is_finite() || !(0.0..1e11).contains(&seconds) {
        return None;
    }
    Utc.timestamp_millis_opt((seconds * 1000.0) as i64).single()
}

#[cfg(test)]
mod tests {
    use super::*;
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
            StatsInput::Change(change) => {
                assert!(change.old_image.is_some());
                assert_eq!(
                    change.created_at.map(|at| at.timestamp()),
                    Some(1_700_000_000)
                );
            }
            other => panic!("{other:?}"),
        }
        match read_record(record("INSERT", None, Some(image))) {
            StatsInput::Change(change) => assert!(change.old_image.is_none()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn removes_and_ttl_deletions_are_ignored_and_broken_records_unusable() {
        for name in ["REMOVE", "UNKNOWN_TO_SDK_VERSION", ""] {
            assert!(matches!(
                read_record(record(name, Some(json!({})), None)),
                StatsInput::Ignored { .. }
            ));
        }
        assert!(matches!(
            read_record(record("MODIFY", None, Some(json!({})))),
            StatsInput::Unusable { .. }
        ));
        assert!(matches!(
            read_record(record("INSERT", None, None)),
            StatsInput::Unusable { .. }
        ));
        let mut no_sequence = record("INSERT", None, Some(json!({})));
        no_sequence["dynamodb"]
            .as_object_mut()
            .map(|change| change.remove("SequenceNumber"));
        assert!(matches!(
            read_record(no_sequence),
            StatsInput::Unusable {
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
