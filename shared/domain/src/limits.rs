//! Bounds on untrusted input, checked before anything reaches DynamoDB.
//!
//! DynamoDB refuses, permanently, keys over its size limits, items over
//! 400 KB, documents nested deeper than 32 levels and numbers outside its
//! range. A value that would be refused must be rejected here, with a reason
//! code, instead of being written and refused (or worse, retried). The
//! figures and why each was chosen: docs/design.md, "Bounds on input".

use serde_json::{Number, Value};
use std::fmt::Write;

/// DynamoDB's limit on a partition key value, in bytes.
pub const MAX_PARTITION_KEY_BYTES: usize = 2_048;
/// DynamoDB's limit on a sort key value, in bytes.
pub const MAX_SORT_KEY_BYTES: usize = 1_024;
/// Every id a row or catalog item names (offer, template, campaign, task):
/// each is, or may become, a key; the sort-key limit suits either kind.
pub const MAX_ID_BYTES: usize = MAX_SORT_KEY_BYTES;
/// DynamoDB's limit on one item, in bytes (names and values).
pub const MAX_ITEM_BYTES: usize = 400 * 1_024;
/// An offer at creation stays well under the item limit, leaving room for
/// what its life adds (audit entries, counters).
pub const MAX_OFFER_BYTES: usize = 100 * 1_024;
/// DynamoDB nests documents at most 32 levels deep.
pub const MAX_DYNAMO_DEPTH: usize = 32;
/// Authored documents (rule values, a challenge's reward and conditions) are
/// flat in practice; this leaves the offer far inside DynamoDB's depth.
pub const MAX_DOCUMENT_DEPTH: usize = 8;
/// The longest `challengeStatus` text, in bytes.
pub const MAX_CHALLENGE_STATUS_BYTES: usize = 32 * 1_024;
/// The most top-level attributes a pending row may have: the dispatcher's
/// delete compares every one of them, and an expression has a size limit.
pub const MAX_ROW_ATTRIBUTES: usize = 64;
/// The longest name of a map member (a rule, a goal, a condition).
pub const MAX_NAME_BYTES: usize = 255;
/// How much of an input value a message quotes.
pub const QUOTE_CHARS: usize = 64;
/// The longest reason message: a rejection must always fit its item.
pub const MAX_MESSAGE_CHARS: usize = 1_000;

/// Whether DynamoDB can store this number: at most 38 significant digits
/// (an `f64` has 17 at most, an integer 20) and a magnitude between 1e-130
/// and 1e126, or zero.
pub fn storable_number(number: &Number) -> bool {
    if number.is_i64() || number.is_u64() {
        return true;
    }
    number.as_f64().is_some_and(|value| {
        value == 0.0 || (value.is_finite() && (1e-130..1e126).contains(&value.abs()))
    })
}

/// What is wrong with a document DynamoDB would refuse, or `None`.
///
/// `depth_left` counts the levels still allowed below this value; names must
/// be non-empty and at most [`MAX_NAME_BYTES`].
pub fn document_problem(value: &Value, depth_left: usize) -> Option<String> {
    match value {
        Value::Number(number) if !storable_number(number) => Some(format!(
            "number {} is outside what DynamoDB can store (1e-130 to 1e126, 38 digits)",
            quote(&number.to_string())
        )),
        Value::Array(_) | Value::Object(_) if depth_left == 0 => {
            Some("is nested too deeply".to_owned())
        }
        Value::Array(items) => items
            .iter()
            .find_map(|item| document_problem(item, depth_left - 1)),
        Value::Object(members) => map_problem(members, depth_left - 1),
        _ => None,
    }
}

/// [`document_problem`] for the members of a map, `depth_left` levels allowed below them.
pub fn map_problem(members: &serde_json::Map<String, Value>, depth_left: usize) -> Option<String> {
    members.iter().find_map(|(name, member)| {
        if name.is_empty() {
            Some("has a member with an empty name".to_owned())
        } else if name.len() > MAX_NAME_BYTES {
            Some(format!(
                "has a member name longer than {MAX_NAME_BYTES} bytes ({})",
                quote(name)
            ))
        } else {
            document_problem(member, depth_left)
        }
    })
}

/// What DynamoDB would refuse in an item given as JSON (names, values,
/// size), or `None`.
pub fn item_problem(attributes: &serde_json::Map<String, Value>) -> Option<String> {
    for (name, value) in attributes {
        if let Some(problem) = key_problem("an attribute name", name, MAX_NAME_BYTES) {
            return Some(problem);
        }
        if let Some(problem) = document_problem(value, MAX_DYNAMO_DEPTH - 1) {
            return Some(format!("{} {problem}", quote(name)));
        }
    }
    let size = item_size(attributes);
    (size > MAX_ITEM_BYTES)
        .then(|| format!("it is {size} bytes; DynamoDB stores at most {MAX_ITEM_BYTES}"))
}

/// How many levels deep a document goes: a scalar is 0, `[1]` is 1.
pub fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(members) => 1 + members.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The size DynamoDB counts for an item given as JSON (an object of
/// attributes), following its sizing rules: names and strings by their UTF-8
/// length, numbers by their significant digits, one byte per boolean or null,
/// three bytes of overhead per map or list plus one per element.
pub fn item_size(attributes: &serde_json::Map<String, Value>) -> usize {
    attributes.iter().fold(0usize, |total, (name, value)| {
        total
            .saturating_add(name.len())
            .saturating_add(value_size(value))
    })
}

/// The size DynamoDB counts for one attribute value given as JSON.
pub fn value_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 1,
        Value::String(text) => text.len(),
        Value::Number(number) => number_size(&number.to_string()),
        Value::Array(items) => items.iter().fold(3usize, |total, item| {
            total.saturating_add(1).saturating_add(value_size(item))
        }),
        Value::Object(members) => members.iter().fold(3usize, |total, (name, member)| {
            total
                .saturating_add(1)
                .saturating_add(name.len())
                .saturating_add(value_size(member))
        }),
    }
}

/// DynamoDB: about one byte per two significant digits, plus one.
pub fn number_size(text: &str) -> usize {
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    let digits = mantissa
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.div_ceil(2) + 1
}

/// A short, printable quotation of untrusted text for a message: at most
/// [`QUOTE_CHARS`] characters, control characters escaped, and how long the
/// whole was when it was cut.
pub fn quote(text: &str) -> String {
    let mut quoted = String::from("\"");
    for (count, character) in text.chars().enumerate() {
        if count == QUOTE_CHARS {
            let _ = write!(quoted, "…\" ({} bytes)", text.len());
            return quoted;
        }
        quoted.extend(character.escape_debug());
    }
    quoted.push('"');
    quoted
}

/// Names of a list, quoted, at most a few, with how many more there were.
pub fn quote_names<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    const SHOWN: usize = 5;
    let mut listed = Vec::new();
    let mut more = 0usize;
    for name in names {
        if listed.len() < SHOWN {
            listed.push(quote(name));
        } else {
            more = more.saturating_add(1);
        }
    }
    let mut text = listed.join(", ");
    if more > 0 {
        let _ = write!(text, " and {more} more");
    }
    text
}

/// `message` cut to [`MAX_MESSAGE_CHARS`] characters.
pub fn bounded_message(message: String) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => {
            let mut bounded = message[..cut].to_owned();
            bounded.push('…');
            bounded
        }
        None => message,
    }
}

/// Whether `text` can be a key value of at most `max_bytes`.
pub fn key_problem(name: &str, text: &str, max_bytes: usize) -> Option<String> {
    if text.is_empty() {
        Some(format!("{name} is empty"))
    } else if text.len() > max_bytes {
        Some(format!(
            "{name} is {} bytes; at most {max_bytes} ({})",
            text.len(),
            quote(text)
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_outside_dynamodbs_range_are_refused() {
        for (value, storable) in [
            (json!(0), true),
            (json!(0.0), true),
            (json!(-7), true),
            (json!(u64::MAX), true),
            (json!(1.5e125), true),
            (json!(1e-130), true),
            (json!(1e126), false),
            (json!(-1e300), false),
            (json!(1e-131), false),
            (json!(5e-324), false),
        ] {
            let Value::Number(number) = &value else {
                unreachable!("numbers only")
            };
            assert_eq!(storable_number(number), storable, "{value}");
        }
    }

    #[test]
    fn documents_are_checked_for_depth_names_and_numbers() {
        assert_eq!(document_problem(&json!({"a": [1, {"b": 2}]}), 3), None);
        assert!(document_problem(&json!({"a": [1, {"b": 2}]}), 2).is_some());
        assert!(document_problem(&json!({"": 1}), 3).is_some());
        let problem = document_problem(&json!({"a": 1e300}), 3);
        assert!(
            problem.as_deref().is_some_and(|p| p.contains("1e+300")),
            "{problem:?}"
        );
        let long_name = "n".repeat(MAX_NAME_BYTES + 1);
        assert!(document_problem(&json!({ long_name: 1 }), 3).is_some());
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!({"a": [[1]]})), 3);
    }

    #[test]
    fn sizes_follow_dynamodbs_rules() {
        assert_eq!(number_size("12345"), 4);
        assert_eq!(number_size("1000"), 2);
        assert_eq!(number_size("-0.00125"), 3);
        assert_eq!(number_size("1.5e125"), 2);
        let item = json!({"id": "abc", "n": 12, "m": {"k": true}, "l": ["x", "yz"]});
        let Value::Object(item) = item else {
            unreachable!("an object")
        };
        // id 2+3, n 1+2, m 1+(3+1+1+1), l 1+(3+1+1+1+2)
        assert_eq!(item_size(&item), 5 + 3 + 7 + 9);
    }

    #[test]
    fn quotes_are_short_and_printable() {
        assert_eq!(quote("ab"), "\"ab\"");
        assert_eq!(quote("a\u{7}b"), "\"a\\u{7}b\"");
        let long = "x".repeat(5_000);
        let quoted = quote(&long);
        assert!(quoted.chars().count() < QUOTE_CHARS + 20, "{quoted}");
        assert!(quoted.ends_with("(5000 bytes)"));
        let names = ["a", "b", "c", "d", "e", "f", "g"];
        assert_eq!(
            quote_names(names),
            "\"a\", \"b\", \"c\", \"d\", \"e\" and 2 more"
        );
        let message = bounded_message("é".repeat(MAX_MESSAGE_CHARS * 2));
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn keys_are_non_empty_and_within_their_limit() {
        assert!(key_problem("offerId", "", MAX_ID_BYTES).is_some());
        assert!(key_problem("offerId", &"x".repeat(MAX_ID_BYTES), MAX_ID_BYTES).is_none());
        let problem = key_problem("offerId", &"x".repeat(3_000), MAX_ID_BYTES).unwrap_or_default();
        assert!(
            problem.contains("3000 bytes") && problem.len() < 200,
            "{problem}"
        );
    }
}
