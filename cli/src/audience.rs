//! The audience of a plan: JSON Lines or CSV rows of `userId` and string
//! attributes, streamed (`input::open_rows`). Pass 1 checks every line and
//! finds users listed twice with bounded memory: only a 64-bit hash of each
//! user id is kept, in sorted runs that spill to a temporary file
//! (`duplicates::KeyHashes`, 8 bytes a user on disk, 1 MiB in memory);
//! the file is read again only when some hash occurs twice, to name the lines.

use crate::duplicates::{key_hash, DuplicateKeys, KeyHash, KeyHashes};
use crate::error::CliError;
use crate::input::{open_rows, read_error, ReadError, RowFormat};
use crate::progress::Progress;
use crate::validate::{ProblemCode, Problems, RowProblem};
use offers_shared::domain::limits::{key_problem, MAX_PARTITION_KEY_BYTES};
use offers_shared::domain::selection::record::{context_problem, MAX_CONTEXT_ATTRIBUTES};
use offers_shared::domain::ReasonCode;
use serde_json::{Map, Value};
use std::path::Path;

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

pub fn user_hash(user_id: &str) -> KeyHash {
    key_hash(user_id, "")
}

/// Pass 1's findings.
pub struct AudienceCheck {
    pub users: u64,
    pub problems: Problems,
}

/// Every line checked, and users listed twice found.
pub fn check_audience(
    path: &Path,
    format: RowFormat,
    shown: usize,
) -> Result<AudienceCheck, CliError> {
    let mut progress = Progress::new("checking the audience", None);
    let mut problems = Problems::new(shown);
    let mut hashes = KeyHashes::default();
    let mut users = 0u64;
    for result in open_rows(path, format)? {
        match result {
            Ok(row) => match read_user(&row.row) {
                Ok(user) => {
                    hashes
                        .push(user_hash(user.user_id))
                        .map_err(CliError::Scratch)?;
                    users += 1;
                }
                Err(message) => problems.add(invalid(row.line, message)),
            },
            Err(ReadError::Row { line, message }) => problems.add(invalid(line, message)),
            Err(ReadError::Io(err)) => return Err(read_error(path, err)),
        }
        progress.advance(1);
    }
    progress.finish();
    let mut duplicates = DuplicateKeys::new(hashes.duplicated().map_err(CliError::Scratch)?);
    if !duplicates.is_empty() {
        for result in open_rows(path, format)? {
            let Ok(row) = result else { continue };
            if let Ok(user) = read_user(&row.row) {
                if let Some(first) = duplicates.observe(user_hash(user.user_id), row.line) {
                    problems.add(RowProblem {
                        line: row.line,
                        code: ProblemCode::DuplicateKey,
                        message: format!("user {} is also on line {first}", user.user_id),
                    });
                }
            }
        }
    }
    Ok(AudienceCheck { users, problems })
}

fn invalid(line: u64, message: String) -> RowProblem {
    RowProblem {
        line,
        code: ProblemCode::Reason(ReasonCode::InvalidRow),
        message,
    }
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
