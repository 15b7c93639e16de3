//! The stream functions' common parts: what every edge does to a raw
//! DynamoDB stream record before reading it (smooth over shapes that are
//! harmless but that the event types refuse), the transactions stream's
//! typed records (`transactions`) and the batch runner (`runner`).

pub mod runner;
pub mod transactions;

use serde_json::{json, Value};

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
pub fn stream_records(event: Value) -> Result<Vec<Value>, EventError> {
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
}
