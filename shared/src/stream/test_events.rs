//! Stream records as Lambda delivers them, for the readers' unit tests.

use super::Input;
use serde_json::{json, Value};
use std::fmt::Debug;

/// An INSERT with `keys` and `image`, sequence number 100, event id e1.
pub fn insert_event(keys: Value, image: Value) -> Value {
    json!({
        "eventID": "e1",
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "awsRegion": "ddblocal",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_700_000_000,
            "Keys": keys,
            "NewImage": image,
            "SequenceNumber": "100",
            "SizeBytes": 10,
            "StreamViewType": "NEW_IMAGE"
        }
    })
}

/// The same record without its sequence number.
pub fn without_sequence_number(mut raw: Value) -> Value {
    raw["dynamodb"]
        .as_object_mut()
        .map(|change| change.remove("SequenceNumber"));
    raw
}

/// The change a record was read into (a test failure if it is none).
pub fn the_change<T: Debug>(input: Input<T>) -> T {
    match input {
        Input::Change(record) => *record,
        other => panic!("expected a change: {other:?}"),
    }
}
