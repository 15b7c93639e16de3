//! Pass 1 of `assign`: every row checked with the domain's own parser, and
//! keys that occur twice in the file found (they would overwrite each other).
//!
//! Catalog checks (offer, template, rules) are the dispatcher's: the CLI
//! checks what a row says on its own.

use crate::duplicates::{key_hash, KeyHash};
use crate::input::{InputRow, ReadError, RowResult};
use chrono::{DateTime, Utc};
use offers_shared::domain::{parse_pending_row, ReasonCode};
use serde_json::Value;
use std::fmt;

/// DynamoDB's item size limit. A row's size in the file is close to its
/// item's size, so bigger rows are refused before they are even parsed
/// (the domain's parser then counts the item's size exactly).
use offers_shared::domain::limits::MAX_ITEM_BYTES;

/// Why a row is refused: a reason code of the contract, or a key already
/// used by an earlier row of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemCode {
    Reason(ReasonCode),
    DuplicateKey,
}

impl fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProblemCode::Reason(code) => f.write_str(code.as_str()),
            ProblemCode::DuplicateKey => f.write_str("duplicate_key"),
        }
    }
}

/// An invalid row: `line 17: invalid_dates: expiryDate must be after startDate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    pub line: u64,
    pub code: ProblemCode,
    pub message: String,
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.code, self.message)
    }
}

impl RowProblem {
    fn invalid_row(line: u64, message: impl Into<String>) -> Self {
        Self {
            line,
            code: ProblemCode::Reason(ReasonCode::InvalidRow),
            message: message.into(),
        }
    }
}

/// Checks one row on its own: size, then the domain's parser (shape, dates,
/// `expired`, challenge). Returns the hash of its key.
pub fn check_row(row: &InputRow, now: DateTime<Utc>) -> Result<KeyHash, RowProblem> {
    if row.bytes > MAX_ITEM_BYTES {
        return Err(RowProblem::invalid_row(
            row.line,
            format!(
                "the row takes {} bytes, more than DynamoDB's item limit of 400 KB",
                row.bytes
            ),
        ));
    }
    parse_pending_row(&row.row, now).map_err(|rejection| RowProblem {
        line: row.line,
        code: ProblemCode::Reason(rejection.code),
        message: rejection.message,
    })?;
    // The parser has checked that both are non-empty strings.
    let text = |name: &str| {
        row.row
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    Ok(key_hash(text("userId"), text("sortKey")))
}

/// A row read from the file, checked: its key's hash if valid.
pub fn check(result: RowResult, now: DateTime<Utc>) -> Result<Checked, std::io::Error> {
    match result {
        Ok(row) => Ok(match check_row(&row, now) {
            Ok(key) => Checked::Valid { row, key },
            Err(problem) => Checked::Invalid(problem),
        }),
        Err(ReadError::Row { line, message }) => {
            Ok(Checked::Invalid(RowProblem::invalid_row(line, message)))
        }
        Err(ReadError::Io(err)) => Err(err),
    }
}

#[derive(Debug)]
pub enum Checked {
    Valid { row: InputRow, key: KeyHash },
    Invalid(RowProblem),
}

/// A row whose key an earlier valid row of the file already has.
pub fn duplicate_problem(line: u64, first_line: u64) -> RowProblem {
    RowProblem {
        line,
        code: ProblemCode::DuplicateKey,
        message: format!(
            "the same userId and sortKey as line {first_line} (one would overwrite the other)"
        ),
    }
}

/// Invalid rows: the first `cap` kept to be shown, all of them counted.
#[derive(Debug)]
pub struct Problems {
    shown: Vec<RowProblem>,
    cap: usize,
    count: u64,
}

impl Problems {
    pub fn new(cap: usize) -> Self {
        Self {
            shown: Vec::new(),
            cap,
            count: 0,
        }
    }

    pub fn add(&mut self, problem: RowProblem) {
        self.count += 1;
        // Keep the earliest lines: duplicates are found after the other problems.
        let position = self
            .shown
            .partition_point(|shown| shown.line <= problem.line);
        if position < self.cap {
            self.shown.insert(position, problem);
            self.shown.truncate(self.cap);
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The report: problems by line, then how many more there are.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.shown.iter().map(ToString::to_string).collect();
        let more = self.count - self.shown.len() as u64;
        if more > 0 {
            lines.push(format!("... and {more} more invalid rows"));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    fn now() -> DateTime<Utc> {
        offers_shared::domain::dates::parse_timestamp("2024-06-01T00:00:00Z").expect("valid")
    }

    fn input(line: u64, value: Value) -> InputRow {
        let row: Map<String, Value> = match value {
            Value::Object(row) => row,
            _ => Map::new(),
        };
        InputRow {
            line,
            bytes: 200,
            row,
        }
    }

    fn valid_row(user: &str, sort_key: &str) -> Value {
        json!({"userId": user, "sortKey": sort_key, "offerId": "co-1",
               "startDate": "2024-05-01T00:00:00Z", "expiryDate": "2025-05-01T00:00:00+0000"})
    }

    #[test]
    fn rows_are_checked_by_the_domain_parser_with_their_line() {
        assert_eq!(
            check_row(&input(3, valid_row("u1", "s1")), now()),
            Ok(key_hash("u1", "s1"))
        );
        let mut backwards = valid_row("u1", "s1");
        backwards["expiryDate"] = json!("2024-04-01T00:00:00Z");
        let problem = check_row(&input(17, backwards), now()).expect_err("invalid");
        assert_eq!(
            problem.to_string(),
            "line 17: invalid_dates: expiryDate must be after startDate"
        );
        let mut huge = input(4, valid_row("u1", "s1"));
        huge.bytes = MAX_ITEM_BYTES + 1;
        assert_eq!(
            check_row(&huge, now()).expect_err("too big").code,
            ProblemCode::Reason(ReasonCode::InvalidRow)
        );
    }

    #[test]
    fn rows_dynamodb_would_refuse_are_problems_with_their_line_and_a_short_message() {
        let cases = [
            (
                "offerId",
                json!("o".repeat(3_000)),
                "invalid_row",
                "3000 bytes",
            ),
            (
                "expiryDate",
                json!("+10000-01-01T00:00:00Z"),
                "invalid_dates",
                "0001 to 9999",
            ),
            (
                "rules",
                json!({"minimumSpend": 1e300}),
                "invalid_row",
                "1e+300",
            ),
            (
                "campaignId",
                json!("c".repeat(1_025)),
                "invalid_row",
                "1025 bytes",
            ),
        ];
        for (index, (name, value, code, detail)) in cases.into_iter().enumerate() {
            let line = 10 + index as u64;
            let mut row = valid_row("u1", "s1");
            row[name] = value;
            let problem = check_row(&input(line, row), now()).expect_err(name);
            let text = problem.to_string();
            assert!(
                text.starts_with(&format!("line {line}: {code}: ")) && text.contains(detail),
                "{text}"
            );
            assert!(
                text.len() < 300,
                "{name}: the value is quoted, not repeated"
            );
        }
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!([deep]);
        }
        let mut row = valid_row("u1", "s1");
        row["extra"] = deep;
        let problem = check_row(&input(2, row), now()).expect_err("too deep");
        assert!(
            problem.to_string().contains("nested too deeply"),
            "{problem}"
        );
    }

    #[test]
    fn a_duplicate_names_the_line_of_the_first_row() {
        assert_eq!(
            duplicate_problem(4, 2).to_string(),
            "line 4: duplicate_key: the same userId and sortKey as line 2 (one would overwrite the other)"
        );
    }

    #[test]
    fn problems_are_capped_by_line_and_all_counted() {
        let mut problems = Problems::new(2);
        for line in [5, 9, 7, 3] {
            problems.add(RowProblem::invalid_row(line, "bad"));
        }
        assert_eq!(problems.count(), 4);
        assert_eq!(
            problems.lines(),
            vec![
                "line 3: invalid_row: bad".to_owned(),
                "line 5: invalid_row: bad".to_owned(),
                "... and 2 more invalid rows".to_owned()
            ]
        );
    }
}
