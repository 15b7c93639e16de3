//! One user of a plan's audience: a JSON object of `userId` and string
//! attributes, bounded as the pending row and its selection context will be.

use crate::domain::limits::{key_problem, MAX_PARTITION_KEY_BYTES};
use crate::domain::selection::record::{context_problem, MAX_CONTEXT_ATTRIBUTES};
use serde_json::{Map, Value};

/// A user of the audience: the id and the attributes, sorted by name.
#[derive(Debug, Clone, PartialEq)]
pub struct AudienceUser<'a> {
    pub user_id: &'a str,
    pub attributes: Vec<(&'a str, &'a str)>,
}

/// Reads one audience row; the message says what is wrong.
pub fn read_user(row: &Map<String, Value>) -> Result<AudienceUser<'_>, String> {
    let user_id = match row.get("userId") {
        Some(Value::String(user_id)) => user_id.as_str(),
        Some(_) => return Err("userId must be a string".into()),
        None => return Err("userId is required".into()),
    };
    if let Some(problem) = key_problem("userId", user_id, MAX_PARTITION_KEY_BYTES) {
        return Err(problem);
    }
    if row.len() - 1 > MAX_CONTEXT_ATTRIBUTES {
        return Err(format!(
            "{} attributes; a user may have at most {MAX_CONTEXT_ATTRIBUTES}",
            row.len() - 1
        ));
    }
    let mut attributes = Vec::with_capacity(row.len() - 1);
    for (name, value) in row {
        if name == "userId" {
            continue;
        }
        if let Some(problem) = context_problem(name, value) {
            return Err(problem);
        }
        attributes.push((name.as_str(), value.as_str().unwrap_or_default()));
    }
    attributes.sort_unstable_by_key(|(name, _)| *name);
    Ok(AudienceUser {
        user_id,
        attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn users_are_read_with_sorted_attributes() {
        let row = map(json!({"userId": "u1", "tier": "gold", "region": "north"}));
        let user = read_user(&row).expect("valid");
        assert_eq!(user.user_id, "u1");
        assert_eq!(user.attributes, vec![("region", "north"), ("tier", "gold")]);
    }

    #[test]
    fn bad_users_are_refused() {
        for row in [
            json!({"tier": "gold"}),
            json!({"userId": 7}),
            json!({"userId": ""}),
            json!({"userId": "u", "tier": 3}),
            json!({"userId": "u", "tier": ""}),
            json!({"userId": "u", "a#b": "x"}),
            json!({"userId": "x".repeat(MAX_PARTITION_KEY_BYTES + 1)}),
        ] {
            assert!(read_user(&map(row.clone())).is_err(), "{row}");
        }
    }
}
