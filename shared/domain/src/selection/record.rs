//! `selection` on a pending row and on the offer it becomes (contract
//! section 12): which policy chose the offer, with what probability, whether
//! the user was in the holdout, and the user's attributes.

use crate::limits::{quote, MAX_NAME_BYTES};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The longest policy name and version.
pub const MAX_POLICY_BYTES: usize = 128;
/// The most attributes a context may have.
pub const MAX_CONTEXT_ATTRIBUTES: usize = 32;
/// The longest attribute value: the statistics table's sort key
/// `attr#<name>#<value>` must stay within DynamoDB's 1,024 bytes.
pub const MAX_CONTEXT_VALUE_BYTES: usize = 512;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelectionRecord {
    pub policy: String,
    /// P(this offer at this rank | the offers above it), in (0, 1].
    pub propensity: f64,
    pub holdout: bool,
    /// The user's attributes from the audience, name to value.
    pub context: BTreeMap<String, String>,
}

const FIELDS: [&str; 4] = ["policy", "propensity", "holdout", "context"];

impl SelectionRecord {
    /// Reads and bounds a row's `selection` (plain JSON); the message says
    /// what is wrong.
    pub fn parse(value: &Value) -> Result<Self, String> {
        let Value::Object(map) = value else {
            return Err("selection must be a map of policy, propensity, holdout, context".into());
        };
        if let Some(unknown) = map.keys().find(|name| !FIELDS.contains(&name.as_str())) {
            return Err(format!(
                "selection has an unknown field {}; accepted: {}",
                quote(unknown),
                FIELDS.join(", ")
            ));
        }
        let policy = match map.get("policy") {
            Some(Value::String(policy))
                if !policy.trim().is_empty() && policy.len() <= MAX_POLICY_BYTES =>
            {
                policy.clone()
            }
            _ => {
                return Err(format!(
                "selection.policy must be a non-empty string of at most {MAX_POLICY_BYTES} bytes"
            ))
            }
        };
        let propensity = match map.get("propensity").and_then(Value::as_f64) {
            Some(p) if (1e-12..=1.0).contains(&p) => p,
            _ => {
                return Err(
                    "selection.propensity must be a number in (0, 1] (at least 1e-12)".into(),
                )
            }
        };
        let holdout = match map.get("holdout") {
            Some(Value::Bool(holdout)) => *holdout,
            _ => return Err("selection.holdout must be true or false".into()),
        };
        let context = match map.get("context") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(context)) => parse_context(context)?,
            Some(_) => return Err("selection.context must be a map of attribute to value".into()),
        };
        Ok(Self {
            policy,
            propensity,
            holdout,
            context,
        })
    }
}

fn parse_context(context: &Map<String, Value>) -> Result<BTreeMap<String, String>, String> {
    if context.len() > MAX_CONTEXT_ATTRIBUTES {
        return Err(format!(
            "selection.context has {} attributes; at most {MAX_CONTEXT_ATTRIBUTES}",
            context.len()
        ));
    }
    context
        .iter()
        .map(|(name, value)| {
            context_problem(name, value).map_or_else(
                || Ok((name.clone(), value.as_str().unwrap_or_default().to_owned())),
                |problem| Err(format!("selection.context: {problem}")),
            )
        })
        .collect()
}

/// What is wrong with one attribute of a context, if anything: names are
/// non-empty, at most [`MAX_NAME_BYTES`] and without `#` (the statistics
/// keys use it as a separator); values are non-empty strings of at most
/// [`MAX_CONTEXT_VALUE_BYTES`].
pub fn context_problem(name: &str, value: &Value) -> Option<String> {
    if name.trim().is_empty() || name.len() > MAX_NAME_BYTES || name.contains('#') {
        return Some(format!(
            "attribute name {} must be non-empty, without '#', and at most {MAX_NAME_BYTES} bytes",
            quote(name)
        ));
    }
    match value {
        Value::String(text) if !text.trim().is_empty() && text.len() <= MAX_CONTEXT_VALUE_BYTES => {
            None
        }
        Value::String(_) => Some(format!(
            "attribute {} must be a non-empty string of at most {MAX_CONTEXT_VALUE_BYTES} bytes",
            quote(name)
        )),
        _ => Some(format!("attribute {} must be a string", quote(name))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_valid_selection_is_read() {
        let record = SelectionRecord::parse(&json!({
            "policy": "thompson-backoff/1", "propensity": 0.25, "holdout": false,
            "context": {"tier": "gold", "region": "north"}
        }))
        .expect("valid");
        assert_eq!(record.context["tier"], "gold");
        assert_eq!(record.propensity, 0.25);
    }

    #[test]
    fn bad_selections_are_refused() {
        let cases = [
            json!("thompson"),
            json!({"policy": "p", "propensity": 0, "holdout": false}),
            json!({"policy": "p", "propensity": 1.5, "holdout": false}),
            json!({"policy": "p", "propensity": "0.5", "holdout": false}),
            json!({"policy": "", "propensity": 0.5, "holdout": false}),
            json!({"policy": "p", "propensity": 0.5}),
            json!({"policy": "p", "propensity": 0.5, "holdout": false, "extra": 1}),
            json!({"policy": "p", "propensity": 0.5, "holdout": false, "context": {"tier": 3}}),
            json!({"policy": "p", "propensity": 0.5, "holdout": false, "context": {"a#b": "x"}}),
            json!({"policy": "p", "propensity": 0.5, "holdout": false,
                   "context": {"tier": "x".repeat(MAX_CONTEXT_VALUE_BYTES + 1)}}),
            json!({"policy": "x".repeat(MAX_POLICY_BYTES + 1), "propensity": 0.5, "holdout": false}),
        ];
        for (index, case) in cases.iter().enumerate() {
            assert!(SelectionRecord::parse(case).is_err(), "case {index}");
        }
        let many: Map<String, Value> = (0..=MAX_CONTEXT_ATTRIBUTES)
            .map(|i| (format!("a{i}"), json!("v")))
            .collect();
        assert!(SelectionRecord::parse(
            &json!({"policy": "p", "propensity": 0.5, "holdout": true, "context": many})
        )
        .is_err());
    }
}
