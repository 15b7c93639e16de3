//! `offers assign FILE`: validate every row (pass 1), then write the valid
//! ones with BatchWriteItem (pass 2). Both passes stream the file.

use crate::aws::{Connection, Table};
use crate::cli::AssignArgs;
use crate::duplicates::{DuplicateKeys, KeyHashes};
use crate::error::CliError;
use crate::input::{open_rows, read_error, RowFormat, RowReader};
use crate::output::say;
use crate::progress::Progress;
use crate::validate::{check, duplicate_problem, Checked, Problems};
use crate::writer::{write_all, Backoff, Chunks, LineItem, WriteReport};
use chrono::{DateTime, Utc};
use offers_shared::domain::assignment_ids::for_assigned_row;
use offers_shared::dynamo::{PendingTable, PENDING_KEY};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Invalid (or unwritten) rows listed one by one; the rest are counted.
const SHOWN_PROBLEMS: usize = 100;

pub async fn run(args: AssignArgs, connection: &Connection) -> Result<(), CliError> {
    let started = Instant::now();
    let format = RowFormat::for_file(&args.file, args.format)?;
    // Fail before reading a million rows when the table, the region or the
    // credentials are missing.
    let target = if args.dry_run {
        None
    } else {
        let table = connection.table_names().name(Table::Pending)?.to_owned();
        Some(PendingTable::new(connection.client().await?, table))
    };
    // One `now` for both passes, so that a row valid in pass 1 is valid in pass 2.
    let now = Utc::now();

    let checked = validate_file(&args.file, format, now)?;
    for line in checked.problems.lines() {
        say(line)?;
    }
    let mut summary = Summary {
        rows: checked.rows,
        valid: checked.valid,
        invalid: checked.problems.count(),
        ..Summary::default()
    };
    if summary.invalid > 0 && !args.skip_invalid {
        say(summary.line(started, "nothing written"))?;
        return Err(CliError::Invalid(format!(
            "{} invalid rows in {}: nothing written (--skip-invalid writes the valid rows)",
            summary.invalid,
            args.file.display()
        )));
    }
    let Some(api) = target else {
        say(summary.line(started, "dry run: nothing written"))?;
        return Ok(());
    };

    let written = write_valid_rows(&api, &args, format, now, &checked).await?;
    report_unwritten(&written.report)?;
    summary.written = written.report.written;
    summary.retried = written.report.retried;
    summary.failed = written.report.failed.len() as u64;
    let stopped_early = written.report.stopped.is_some() || written.read_failure.is_some();
    if !stopped_early && written.taken != checked.valid {
        say(format!(
            "warning: {} rows were valid in pass 1 but {} in pass 2: was the file changed meanwhile?",
            checked.valid, written.taken
        ))?;
    }
    say(summary.line(started, "done"))?;
    if let Some(err) = written.read_failure {
        return Err(read_error(&args.file, err));
    }
    if let Some(why) = written.report.stopped {
        return Err(CliError::Service(format!(
            "writing stopped, {} rows not written (listed above by line): {why}",
            summary.failed
        )));
    }
    Ok(())
}

/// Pass 2's outcome.
struct Written {
    report: WriteReport,
    /// Valid rows taken from the file (written, failed, or not a DynamoDB item).
    taken: u64,
    read_failure: Option<std::io::Error>,
}

/// Pass 2: the valid rows, read again, written in chunks of 25.
async fn write_valid_rows(
    api: &PendingTable,
    args: &AssignArgs,
    format: RowFormat,
    now: DateTime<Utc>,
    checked: &FileCheck,
) -> Result<Written, CliError> {
    let mut items = ValidItems {
        rows: open_rows(&args.file, format)?,
        now,
        duplicates: &checked.duplicates,
        read_failure: None,
        unconvertible: Vec::new(),
        yielded: 0,
    };
    let mut progress = Progress::new("writing", Some(checked.valid));
    let mut report = write_all(
        api,
        Chunks::new(items.by_ref()),
        &PENDING_KEY,
        &Backoff::default(),
        usize::from(args.concurrency),
        |chunk| progress.advance(chunk.written + chunk.failed.len() as u64),
    )
    .await;
    progress.finish();
    let taken = items.yielded + items.unconvertible.len() as u64;
    report.failed.append(&mut items.unconvertible);
    Ok(Written {
        report,
        taken,
        read_failure: items.read_failure,
    })
}

/// Pass 1's findings.
struct FileCheck {
    rows: u64,
    valid: u64,
    problems: Problems,
    duplicates: DuplicateKeys,
}

/// Pass 1: every row through the domain's parser; keys used twice found.
fn validate_file(
    path: &Path,
    format: RowFormat,
    now: DateTime<Utc>,
) -> Result<FileCheck, CliError> {
    let mut progress = Progress::new("validating", None);
    let mut problems = Problems::new(SHOWN_PROBLEMS);
    let mut keys = KeyHashes::default();
    let (mut rows, mut valid) = (0u64, 0u64);
    for result in open_rows(path, format)? {
        match check(result, now).map_err(|err| read_error(path, err))? {
            Checked::Valid { key, .. } => {
                keys.push(key).map_err(CliError::Scratch)?;
                valid += 1;
            }
            Checked::Invalid(problem) => problems.add(problem),
        }
        rows += 1;
        progress.advance(1);
    }
    progress.finish();

    let mut duplicates = DuplicateKeys::new(keys.duplicated().map_err(CliError::Scratch)?);
    if !duplicates.is_empty() {
        // Only hashes were kept: read again to find which lines share a key.
        for result in open_rows(path, format)? {
            if let Checked::Valid { row, key } =
                check(result, now).map_err(|err| read_error(path, err))?
            {
                if let Some(first_line) = duplicates.observe(key, row.line) {
                    problems.add(duplicate_problem(row.line, first_line));
                    valid -= 1;
                }
            }
        }
    }
    Ok(FileCheck {
        rows,
        valid,
        problems,
        duplicates,
    })
}

/// Pass 2's rows: the valid ones (checked again, with the same `now`), each
/// key's first row only, as DynamoDB items.
struct ValidItems<'a> {
    rows: RowReader,
    now: DateTime<Utc>,
    duplicates: &'a DuplicateKeys,
    read_failure: Option<std::io::Error>,
    unconvertible: Vec<(u64, String)>,
    yielded: u64,
}

impl Iterator for ValidItems<'_> {
    type Item = LineItem;

    fn next(&mut self) -> Option<LineItem> {
        for result in self.rows.by_ref() {
            let (mut row, key) = match check(result, self.now) {
                Ok(Checked::Valid { row, key }) => (row, key),
                Ok(Checked::Invalid(_)) => continue,
                Err(err) => {
                    self.read_failure = Some(err);
                    return None;
                }
            };
            if !self.duplicates.owns(key, row.line) {
                continue;
            }
            with_assignment_id(&mut row.row);
            match serde_dynamo::to_item(&row.row) {
                Ok(item) => {
                    self.yielded += 1;
                    return Some(LineItem {
                        line: row.line,
                        item,
                    });
                }
                Err(err) => self
                    .unconvertible
                    .push((row.line, format!("not a DynamoDB item: {err}"))),
            }
        }
        None
    }
}

/// Section 2: a row without an `assignmentId` gets one of its userId,
/// sortKey, startDate and expiryDate (as written in the file), so that a
/// rerun of a file after a failure makes no second offer of a row already
/// dispatched.
pub fn with_assignment_id(row: &mut Map<String, Value>) {
    if row.contains_key("assignmentId") {
        return;
    }
    let text = |name: &str| row.get(name).and_then(Value::as_str).unwrap_or_default();
    let id = for_assigned_row(
        text("userId"),
        text("sortKey"),
        text("startDate"),
        text("expiryDate"),
    );
    row.insert("assignmentId".into(), Value::String(id));
}

/// Lists the rows left unwritten by line, grouped by why, and where the
/// where the writing stopped.
fn report_unwritten(report: &WriteReport) -> Result<(), CliError> {
    let mut by_reason: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (line, reason) in &report.failed {
        by_reason.entry(reason).or_default().push(*line);
    }
    for (reason, mut lines) in by_reason {
        lines.sort_unstable();
        say(format!(
            "not written ({} rows): {reason}\n  lines {}",
            lines.len(),
            line_ranges(&lines, SHOWN_PROBLEMS)
        ))?;
    }
    if report.stopped.is_some() {
        let after = report.last_line_taken.map_or("any row".to_owned(), |line| {
            format!("the valid rows after line {line}")
        });
        say(format!("writing stopped: {after} not attempted"))?;
    }
    Ok(())
}

/// `1-25, 27, 30-31`, at most `cap` ranges, then how many lines more.
pub fn line_ranges(sorted_lines: &[u64], cap: usize) -> String {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for &line in sorted_lines {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == line => *end = line,
            _ => ranges.push((line, line)),
        }
    }
    let mut text: Vec<String> = ranges
        .iter()
        .take(cap)
        .map(|&(start, end)| {
            if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            }
        })
        .collect();
    if ranges.len() > cap {
        let shown: u64 = ranges[..cap]
            .iter()
            .map(|(start, end)| end - start + 1)
            .sum();
        text.push(format!(
            "... and {} lines more",
            sorted_lines.len() as u64 - shown
        ));
    }
    text.join(", ")
}

#[derive(Debug, Default)]
struct Summary {
    rows: u64,
    valid: u64,
    invalid: u64,
    written: u64,
    retried: u64,
    failed: u64,
}

impl Summary {
    fn line(&self, started: Instant, outcome: &str) -> String {
        let seconds = started.elapsed().as_secs_f64();
        let rate = self.rows as f64 / seconds.max(0.001);
        let failed = match self.failed {
            0 => String::new(),
            failed => format!(", failed {failed}"),
        };
        format!(
            "rows read {}, valid {}, invalid {}, written {}, retried {}{failed}; {seconds:.1} s, {rate:.0} rows/s; {outcome}",
            self.rows, self.valid, self.invalid, self.written, self.retried
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritten_lines_are_shown_as_ranges() {
        assert_eq!(line_ranges(&[1, 2, 3, 5, 7, 8], 10), "1-3, 5, 7-8");
        assert_eq!(
            line_ranges(&[1, 2, 3, 5, 7, 8, 10], 2),
            "1-3, 5, ... and 3 lines more"
        );
        assert_eq!(line_ranges(&[], 2), "");
    }
}
