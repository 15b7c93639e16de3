//! The stream functions' common parts: the Lambda event read record by
//! record into typed [`Input`]s (the envelope every stream record shares:
//! event name, ids, creation time; a service's reader reads its image), what
//! every edge does to a raw DynamoDB stream record before reading it (smooth
//! over shapes that are harmless but that the event types refuse), the
//! transactions stream's typed records (`transactions`) and the batch runner
//! (`runner`).

pub mod runner;
#[cfg(test)]
pub(crate) mod test_events;
pub mod transactions;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};

/// One record of a stream batch, as a service's reader left it.
#[derive(Debug, Clone, PartialEq)]
pub enum Input<T> {
    /// A change the service applies (an INSERT, or a MODIFY where wanted).
    Change(Box<T>),
    /// REMOVE (TTL or a delete), MODIFY where not wanted, or an event name
    /// not known: no work.
    Ignored {
        event_id: Option<String>,
        sequence_number: Option<String>,
        reason: IgnoredReason,
    },
    /// A change without what is needed to act on it (its ids, its keys, an
    /// image): reported failed so that it reaches the on-failure destination
    /// instead of vanishing; ignored when it has no sequence number to be
    /// reported by.
    Unusable {
        event_id: Option<String>,
        sequence_number: Option<String>,
        error: String,
    },
}

impl<T> Input<T> {
    /// The same record with its change turned into something else.
    pub fn map<U>(self, change: impl FnOnce(T) -> U) -> Input<U> {
        match self {
            Input::Change(record) => Input::Change(Box::new(change(*record))),
            Input::Ignored {
                event_id,
                sequence_number,
                reason,
            } => Input::Ignored {
                event_id,
                sequence_number,
                reason,
            },
            Input::Unusable {
                event_id,
                sequence_number,
                error,
            } => Input::Unusable {
                event_id,
                sequence_number,
                error,
            },
        }
    }

    /// The change, if the record is one.
    pub fn change(&self) -> Option<&T> {
        match self {
            Input::Change(record) => Some(record),
            _ => None,
        }
    }
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

/// What every stream record carries around its images.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// `eventID` (Lambda always sends one; a service decides whether it
    /// can do without).
    pub event_id: Option<String>,
    pub sequence_number: String,
    /// `INSERT` or `MODIFY`: one of the names the reader asked for.
    pub event_name: String,
    /// When the record was written to the stream, if the record says.
    pub created_at: Option<DateTime<Utc>>,
}

impl Envelope {
    /// The record's envelope, or what the record is when it is not one of
    /// the `changes` (event names) a service applies, or has no sequence
    /// number to be reported by.
    pub fn read<T>(raw: &Value, changes: &[&str]) -> Result<Self, Input<T>> {
        let text = |value: &Value| value.as_str().map(str::to_owned);
        let event_id = text(&raw["eventID"]);
        let sequence_number = text(&raw["dynamodb"]["SequenceNumber"]);
        let event_name = text(&raw["eventName"]).unwrap_or_default();
        if !changes.contains(&event_name.as_str()) {
            return Err(Input::Ignored {
                event_id,
                sequence_number,
                reason: IgnoredReason::of_event_name(&event_name),
            });
        }
        let Some(sequence_number) = sequence_number else {
            return Err(Input::Unusable {
                event_id,
                sequence_number: None,
                error: NO_IDS.into(),
            });
        };
        let created_at = raw["dynamodb"]["ApproximateCreationDateTime"]
            .as_f64()
            .and_then(epoch_seconds);
        Ok(Self {
            event_id,
            sequence_number,
            event_name,
            created_at,
        })
    }

    /// The record as unusable, with why.
    pub fn unusable<T>(&self, error: impl Into<String>) -> Input<T> {
        Input::Unusable {
            event_id: self.event_id.clone(),
            sequence_number: Some(self.sequence_number.clone()),
            error: error.into(),
        }
    }

    /// The event id, or the record as unusable when it has none.
    pub fn require_event_id<T>(&self) -> Result<String, Input<T>> {
        self.event_id.clone().ok_or_else(|| self.unusable(NO_IDS))
    }
}

const NO_IDS: &str = "record has no eventID or dynamodb.SequenceNumber";

/// Seconds since the epoch as stream records give them, within reason.
fn epoch_seconds(seconds: f64) -> Option<DateTime<Utc>> {
    if !seconds.is_finite() || !(0.0..1e11).contains(&seconds) {
        return None;
    }
    Utc.timestamp_millis_opt((seconds * 1000.0) as i64).single()
}

/// How a service reads one raw record of its stream (one bad record never
/// fails the batch: it becomes an outcome of its own).
pub trait ReadRecord: Sized {
    fn read_record(raw: Value) -> Input<Self>;
}

/// The records of one stream event, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch<T>(pub Vec<Input<T>>);

impl<T: ReadRecord> TryFrom<Value> for Batch<T> {
    type Error = EventError;

    fn try_from(event: Value) -> Result<Self, Self::Error> {
        Ok(Batch(
            stream_records(event)?
                .into_iter()
                .map(T::read_record)
                .collect(),
        ))
    }
}

/// Why an event is not a stream event at all (the only way a stream
/// function's whole invocation fails).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("event is not a JSON object")]
    NotAnObject,
    #[error("event.Records is not a list")]
    RecordsNotAList,
}

/// The raw records of a stream event (none when `Records` is absent or null).
fn stream_records(event: Value) -> Result<Vec<Value>, EventError> {
    let Value::Object(mut event) = event else {
        return Err(EventError::NotAnObject);
    };
    match event.remove("Records") {
        Some(Value::Array(records)) => Ok(records),
        Some(Value::Null) | None => Ok(Vec::new()),
        Some(_) => Err(EventError::RecordsNotAList),
    }
}

/// DynamoDB Local's bare `{}` for an empty map becomes `{"M": {}}`, and the
/// fields a hand-made event may omit (`SizeBytes`, `awsRegion`) get defaults.
pub fn normalise_record(raw: &mut Value) {
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

    #[test]
    fn bare_empty_maps_become_typed_maps_at_any_depth() {
        let mut raw = json!({"dynamodb": {"NewImage": {
            "a": {}, "b": {"M": {"c": {}}}, "d": {"L": [{}]}
        }}});
        normalise_record(&mut raw);
        let image = &raw["dynamodb"]["NewImage"];
        assert_eq!(image["a"], json!({"M": {}}));
        assert_eq!(image["b"]["M"]["c"], json!({"M": {}}));
        assert_eq!(image["d"]["L"][0], json!({"M": {}}));
        assert_eq!(raw["dynamodb"]["SizeBytes"], 0);
        assert_eq!(raw["awsRegion"], "");
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
