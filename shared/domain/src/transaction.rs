//! A completed order as the ordering backend writes it to the transactions
//! table (contract section 8): `{ transactionId, userId, totalCost: N,
//! occurredAt, storeId?, serviceMode? }`, read into a typed [`Transaction`]
//! or refused with `invalid_transaction`.

use crate::dates::{parse_timestamp, rfc3339};
use crate::ids::UserId;
use crate::limits::{quote, storable_number, MAX_ID_BYTES, MAX_PARTITION_KEY_BYTES};
use crate::rejection::{ReasonCode, Rejection};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A transaction that can count towards challenges. Every value is bounded:
/// ids fit DynamoDB keys, the cost is a finite number DynamoDB can store, the
/// time is in years 0001 to 9999.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    pub transaction_id: String,
    pub user_id: UserId,
    pub total_cost: f64,
    #[serde(with = "rfc3339")]
    pub occurred_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_mode: Option<String>,
}

/// Reads a transaction from its item's attributes (plain JSON: S a string,
/// N a number). Attributes beyond the contract's are ignored.
pub fn parse_transaction(attributes: &Map<String, Value>) -> Result<Transaction, Rejection> {
    let invalid = |message: String| Rejection::new(ReasonCode::InvalidTransaction, message);
    let transaction_id =
        required_text(attributes, "transactionId", MAX_PARTITION_KEY_BYTES).map_err(invalid)?;
    let user_id = required_text(attributes, "userId", MAX_PARTITION_KEY_BYTES)
        .and_then(|text| UserId::try_from(text).map_err(|problem| problem.0))
        .map_err(invalid)?;
    let total_cost = match attributes.get("totalCost") {
        Some(Value::Number(number)) if !storable_number(number) => {
            return Err(invalid(format!(
                "totalCost {} is outside what DynamoDB can store",
                quote(&number.to_string())
            )))
        }
        Some(Value::Number(number)) => match number.as_f64() {
            Some(cost) if cost.is_finite() && cost >= 0.0 => cost,
            _ => {
                return Err(invalid(format!(
                    "totalCost must be a number >= 0, not {}",
                    quote(&number.to_string())
                )))
            }
        },
        Some(other) => {
            return Err(invalid(format!(
                "totalCost must be a number (N), not {}",
                kind(other)
            )))
        }
        None => return Err(invalid("totalCost is required".into())),
    };
    let occurred_text = required_text(attributes, "occurredAt", 64).map_err(invalid)?;
    let occurred_at = parse_timestamp(&occurred_text).ok_or_else(|| {
        invalid(format!(
            "occurredAt {} is not an ISO-8601 timestamp with an offset in years 0001 to 9999",
            quote(&occurred_text)
        ))
    })?;
    let store_id = optional_text(attributes, "storeId", MAX_ID_BYTES).map_err(invalid)?;
    let service_mode = optional_text(attributes, "serviceMode", MAX_ID_BYTES).map_err(invalid)?;
    Ok(Transaction {
        transaction_id,
        user_id,
        total_cost,
        occurred_at,
        store_id,
        service_mode,
    })
}

/// The user a transaction's attributes name, if it is usable as a key
/// (a non-empty string within the partition key limit), even when the rest
/// of the transaction is not: its rejection is then filed under that user.
pub fn usable_user_id(attributes: &Map<String, Value>) -> Option<&str> {
    match attributes.get("userId") {
        Some(Value::String(user))
            if !user.trim().is_empty() && user.len() <= MAX_PARTITION_KEY_BYTES =>
        {
            Some(user)
        }
        _ => None,
    }
}

fn required_text(
    attributes: &Map<String, Value>,
    name: &str,
    max_bytes: usize,
) -> Result<String, String> {
    optional_text(attributes, name, max_bytes)?.ok_or_else(|| format!("{name} is required"))
}

fn optional_text(
    attributes: &Map<String, Value>,
    name: &str,
    max_bytes: usize,
) -> Result<Option<String>, String> {
    match attributes.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Err(format!("{name} is empty")),
        Some(Value::String(text)) if text.len() > max_bytes => Err(format!(
            "{name} is {} bytes; at most {max_bytes}",
            text.len()
        )),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(format!("{name} must be a string (S), not {}", kind(other))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attributes(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn valid() -> Value {
        json!({"transactionId": "t-1", "userId": "us-east-1:u", "totalCost": 12.5,
               "occurredAt": "2024-05-01T12:00:00+0200", "storeId": "s-9", "serviceMode": "pickup"})
    }

    #[test]
    fn reads_a_transaction_in_utc() {
        let transaction = parse_transaction(&attributes(valid())).expect("valid");
        assert_eq!(transaction.transaction_id, "t-1");
        assert_eq!(transaction.total_cost, 12.5);
        assert_eq!(
            crate::dates::format_timestamp(transaction.occurred_at),
            "2024-05-01T10:00:00Z"
        );
        assert_eq!(transaction.store_id.as_deref(), Some("s-9"));
        let mut minimal = valid();
        minimal.as_object_mut().map(|m| m.remove("storeId"));
        minimal["totalCost"] = json!(0);
        assert!(
            parse_transaction(&attributes(minimal)).is_ok(),
            "zero is a cost"
        );
    }

    #[test]
    fn every_broken_field_is_invalid_transaction() {
        let cases: Vec<(&str, Value)> = vec![
            ("transactionId", Value::Null),
            ("transactionId", json!("")),
            (
                "transactionId",
                json!("x".repeat(MAX_PARTITION_KEY_BYTES + 1)),
            ),
            ("userId", Value::Null),
            ("userId", json!(7)),
            ("userId", json!(" ")),
            ("totalCost", Value::Null),
            ("totalCost", json!(-1)),
            ("totalCost", json!(-0.01)),
            ("totalCost", json!("12")),
            ("totalCost", json!(1e300)),
            ("occurredAt", json!("2024-05-01T12:00:00")),
            ("occurredAt", json!("yesterday")),
            ("occurredAt", json!("+10000-01-01T00:00:00Z")),
            ("occurredAt", json!(1_700_000_000)),
            ("storeId", json!(["s"])),
            ("serviceMode", json!("m".repeat(MAX_ID_BYTES + 1))),
        ];
        for (name, value) in cases {
            let mut row = valid();
            if value.is_null() {
                row.as_object_mut().map(|m| m.remove(name));
            } else {
                row[name] = value.clone();
            }
            let err = parse_transaction(&attributes(row)).expect_err(name);
            assert_eq!(err.code, ReasonCode::InvalidTransaction, "{name}: {value}");
            assert!(err.message.contains(name), "{name}: {}", err.message);
            assert!(err.message.len() <= crate::limits::MAX_MESSAGE_CHARS);
        }
    }

    #[test]
    fn the_user_is_kept_when_usable_even_if_the_rest_is_not() {
        let mut row = valid();
        row["totalCost"] = json!(-3);
        assert_eq!(usable_user_id(&attributes(row)), Some("us-east-1:u"));
        for user in [
            json!(""),
            json!(3),
            json!("u".repeat(MAX_PARTITION_KEY_BYTES + 1)),
        ] {
            let mut row = valid();
            row["userId"] = user;
            assert_eq!(usable_user_id(&attributes(row)), None);
        }
    }
}
