//! Input files, streamed: pending rows from JSON Lines or CSV, each as
//! (line number, the row as plain JSON), and catalog files.
//!
//! A row's JSON is what `offers_shared::domain::parse_pending_row` reads: S
//! attributes are strings, N numbers, M objects. Absent attributes are left
//! out (a JSON `null` and an empty CSV cell both mean absent).

use crate::error::CliError;
use serde_json::{Map, Number, Value};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The attributes that are numbers (N) in a CSV file; `rules` holds JSON;
/// every other cell is text (S).
const CSV_NUMBER_COLUMNS: [&str; 2] = ["rank", "ttl"];
const CSV_JSON_COLUMN: &str = "rules";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RowFormat {
    /// One JSON object per line
    Jsonl,
    /// A header row naming the attributes, then one row per line
    Csv,
}

impl RowFormat {
    /// The format given, else the one the file's extension names.
    pub fn for_file(path: &Path, given: Option<RowFormat>) -> Result<RowFormat, CliError> {
        if let Some(format) = given {
            return Ok(format);
        }
        let extension = path
            .extension()
            .and_then(|extension| extension.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("jsonl" | "ndjson" | "json") => Ok(RowFormat::Jsonl),
            Some("csv") => Ok(RowFormat::Csv),
            _ => Err(CliError::Invalid(format!(
                "cannot tell the format of {} from its extension: pass --format jsonl or --format csv",
                path.display()
            ))),
        }
    }
}

/// One row of the file, read as JSON but not validated.
#[derive(Debug, Clone, PartialEq)]
pub struct InputRow {
    /// 1-based line where the row starts.
    pub line: u64,
    /// Bytes the row takes in the file, a bound on its item size.
    pub bytes: usize,
    pub row: Map<String, Value>,
}

/// A row that could not be read (bad JSON, wrong cell count, ...): the
/// reader goes on with the next one. An I/O error ends the reading.
#[derive(Debug)]
pub enum ReadError {
    Row { line: u64, message: String },
    Io(std::io::Error),
}

pub type RowResult = Result<InputRow, ReadError>;

/// Opens `path` as a stream of rows.
pub fn open_rows(path: &Path, format: RowFormat) -> Result<RowReader, CliError> {
    let file = File::open(path).map_err(|source| read_error(path, source))?;
    match format {
        RowFormat::Jsonl => Ok(RowReader::Jsonl(JsonlRows::new(BufReader::with_capacity(
            64 * 1024,
            file,
        )))),
        RowFormat::Csv => CsvRows::new(file)
            .map(RowReader::Csv)
            .map_err(|err| match err {
                ReadError::Io(source) => read_error(path, source),
                ReadError::Row { line, message } => {
                    CliError::Invalid(format!("{}: line {line}: {message}", path.display()))
                }
            }),
    }
}

pub fn read_error(path: &Path, source: std::io::Error) -> CliError {
    CliError::Read {
        path: PathBuf::from(path),
        source,
    }
}

pub enum RowReader {
    Jsonl(JsonlRows<BufReader<File>>),
    Csv(CsvRows<File>),
}

impl Iterator for RowReader {
    type Item = RowResult;

    fn next(&mut self) -> Option<RowResult> {
        match self {
            RowReader::Jsonl(rows) => rows.next(),
            RowReader::Csv(rows) => rows.next(),
        }
    }
}

/// JSON Lines: one object per line; blank lines are skipped.
pub struct JsonlRows<R> {
    reader: R,
    buffer: Vec<u8>,
    line: u64,
    done: bool,
}

impl<R: BufRead> JsonlRows<R> {
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            buffer: Vec::with_capacity(4096),
            line: 0,
            done: false,
        }
    }

    fn parse(&self, bytes: &[u8]) -> Result<Map<String, Value>, String> {
        let text = std::str::from_utf8(bytes).map_err(|err| format!("not valid UTF-8: {err}"))?;
        let text = if self.line == 1 {
            text.trim_start_matches('\u{feff}')
        } else {
            text
        };
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(row)) => Ok(without_nulls(row)),
            Ok(Value::Array(_)) => Err(
                "a line must hold one JSON object, not an array (JSON Lines: one row per line)"
                    .to_owned(),
            ),
            Ok(_) => Err("a line must hold one JSON object".to_owned()),
            Err(err) => Err(format!("not valid JSON: {err}")),
        }
    }
}

impl<R: BufRead> Iterator for JsonlRows<R> {
    type Item = RowResult;

    fn next(&mut self) -> Option<RowResult> {
        while !self.done {
            self.buffer.clear();
            match self.reader.read_until(b'\n', &mut self.buffer) {
                Ok(0) => self.done = true,
                Ok(bytes) => {
                    self.line += 1;
                    let content = self.buffer.trim_ascii();
                    if content.is_empty() {
                        continue;
                    }
                    let line = self.line;
                    return Some(
                        self.parse(content)
                            .map(|row| InputRow { line, bytes, row })
                            .map_err(|message| ReadError::Row { line, message }),
                    );
                }
                Err(err) => {
                    self.done = true;
                    return Some(Err(ReadError::Io(err)));
                }
            }
        }
        None
    }
}

/// CSV with a header row naming the attributes.
pub struct CsvRows<R> {
    reader: csv::Reader<R>,
    header: Vec<String>,
    record: csv::ByteRecord,
    done: bool,
}

impl<R: Read> CsvRows<R> {
    /// Reads the header: every column must be named, once.
    pub fn new(input: R) -> Result<Self, ReadError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            // Cell counts are checked per row, so that one short row is one error.
            .flexible(true)
            .from_reader(input);
        let header_record = reader.byte_headers().map_err(csv_error)?.clone();
        let mut header = Vec::with_capacity(header_record.len());
        for (index, cell) in header_record.iter().enumerate() {
            let name = std::str::from_utf8(cell)
                .map_err(|_| header_problem(format!("column {} is not UTF-8", index + 1)))?
                .trim()
                .trim_start_matches('\u{feff}')
                .to_owned();
            if name.is_empty() {
                return Err(header_problem(format!("column {} has no name", index + 1)));
            }
            if header.contains(&name) {
                return Err(header_problem(format!("column {name:?} appears twice")));
            }
            header.push(name);
        }
        Ok(Self {
            reader,
            header,
            record: csv::ByteRecord::new(),
            done: false,
        })
    }

    fn row(&self, line: u64) -> Result<Map<String, Value>, String> {
        if self.record.len() != self.header.len() {
            return Err(format!(
                "{} cells, but the header has {}",
                self.record.len(),
                self.header.len()
            ));
        }
        let mut row = Map::new();
        for (name, cell) in self.header.iter().zip(self.record.iter()) {
            let cell = std::str::from_utf8(cell)
                .map_err(|_| format!("{name} is not valid UTF-8 (line {line})"))?;
            if cell.trim().is_empty() {
                continue;
            }
            row.insert(name.clone(), csv_cell(name, cell)?);
        }
        Ok(row)
    }
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = RowResult;

    fn next(&mut self) -> Option<RowResult> {
        if self.done {
            return None;
        }
        let mut record = std::mem::take(&mut self.record);
        let read = self.reader.read_byte_record(&mut record);
        self.record = record;
        match read {
            Ok(false) => {
                self.done = true;
                None
            }
            Ok(true) => {
                let line = self.record.position().map_or(0, |position| position.line());
                let bytes = self.record.as_slice().len();
                Some(
                    self.row(line)
                        .map(|row| InputRow { line, bytes, row })
                        .map_err(|message| ReadError::Row { line, message }),
                )
            }
            Err(err) => {
                let err = csv_error(err);
                if matches!(err, ReadError::Io(_)) {
                    self.done = true;
                }
                Some(Err(err))
            }
        }
    }
}

/// A CSV cell as the attribute's value: numbers for `rank` and `ttl`, the
/// JSON object of `rules`, text for everything else.
fn csv_cell(name: &str, cell: &str) -> Result<Value, String> {
    if CSV_NUMBER_COLUMNS.contains(&name) {
        return cell
            .trim()
            .parse::<Number>()
            .map(Value::Number)
            .map_err(|_| format!("{name} must be a number, got {cell:?}"));
    }
    if name == CSV_JSON_COLUMN {
        return match serde_json::from_str::<Value>(cell) {
            Ok(rules @ Value::Object(_)) => Ok(rules),
            Ok(_) => Err(format!("{name} must hold a JSON object")),
            Err(err) => Err(format!("{name} is not valid JSON: {err}")),
        };
    }
    Ok(Value::String(cell.to_owned()))
}

fn csv_error(err: csv::Error) -> ReadError {
    let line = err.position().map_or(0, |position| position.line());
    let message = err.to_string();
    match err.into_kind() {
        csv::ErrorKind::Io(err) => ReadError::Io(err),
        _ => ReadError::Row { line, message },
    }
}

fn header_problem(message: String) -> ReadError {
    ReadError::Row {
        line: 1,
        message: format!("header: {message}"),
    }
}

fn without_nulls(mut row: Map<String, Value>) -> Map<String, Value> {
    row.retain(|_, value| !value.is_null());
    row
}

/// Where a catalog item is in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Position {
    /// The n-th element of a JSON array.
    Item(usize),
    /// A line of a JSON Lines file.
    Line(u64),
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Position::Item(index) => write!(f, "item {index}"),
            Position::Line(line) => write!(f, "line {line}"),
        }
    }
}

/// One element of a catalog file: a JSON value, not yet checked.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogInput {
    pub position: Position,
    pub value: Result<Value, String>,
}

/// Reads a catalog file whole (catalogs are small): a JSON array, or JSON
/// Lines. A line that is not JSON is reported with the others, later.
pub fn read_catalog_file(path: &Path) -> Result<Vec<CatalogInput>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| read_error(path, source))?;
    parse_catalog_text(&text)
        .map_err(|message| CliError::Invalid(format!("{}: {message}", path.display())))
}

pub fn parse_catalog_text(text: &str) -> Result<Vec<CatalogInput>, String> {
    let text = text.trim_start_matches('\u{feff}');
    if text.trim_start().starts_with('[') {
        let items: Vec<Value> =
            serde_json::from_str(text).map_err(|err| format!("not a valid JSON array: {err}"))?;
        return Ok(items
            .into_iter()
            .enumerate()
            .map(|(index, value)| CatalogInput {
                position: Position::Item(index + 1),
                value: Ok(value),
            })
            .collect());
    }
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| CatalogInput {
            position: Position::Line(index as u64 + 1),
            value: serde_json::from_str(line).map_err(|err| format!("not valid JSON: {err}")),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jsonl(text: &str) -> Vec<RowResult> {
        JsonlRows::new(text.as_bytes()).collect()
    }

    fn csv(text: &str) -> Vec<RowResult> {
        match CsvRows::new(text.as_bytes()) {
            Ok(rows) => rows.collect(),
            Err(err) => vec![Err(err)],
        }
    }

    fn ok(result: &RowResult) -> &InputRow {
        match result {
            Ok(row) => row,
            Err(err) => panic!("expected a row, got {err:?}"),
        }
    }

    fn row_error(result: &RowResult) -> (u64, &str) {
        match result {
            Err(ReadError::Row { line, message }) => (*line, message),
            other => panic!("expected a row error, got {other:?}"),
        }
    }

    #[test]
    fn jsonl_rows_carry_their_line_numbers_and_skip_blank_lines() {
        let rows = jsonl(
            "{\"userId\":\"u1\",\"rank\":2}\n\n  \r\n{\"userId\":\"u2\",\"campaignId\":null}\r\n{bad\n[1]\n",
        );
        assert_eq!(rows.len(), 4);
        assert_eq!(ok(&rows[0]).line, 1);
        assert_eq!(ok(&rows[0]).row["rank"], json!(2));
        assert_eq!(ok(&rows[1]).line, 4);
        assert!(
            !ok(&rows[1]).row.contains_key("campaignId"),
            "null means absent"
        );
        let (line, message) = row_error(&rows[2]);
        assert_eq!(line, 5);
        assert!(message.starts_with("not valid JSON"), "{message}");
        let (line, message) = row_error(&rows[3]);
        assert_eq!(line, 6);
        assert!(message.contains("JSON object"), "{message}");
    }

    #[test]
    fn jsonl_reports_invalid_utf8_and_goes_on() {
        let mut bytes = b"{\"a\":\"\xff\"}\n".to_vec();
        bytes.extend_from_slice(b"{\"a\":\"b\"}");
        let rows: Vec<RowResult> = JsonlRows::new(bytes.as_slice()).collect();
        assert!(row_error(&rows[0]).1.contains("UTF-8"));
        assert_eq!(ok(&rows[1]).line, 2, "a last line without newline is read");
    }

    #[test]
    fn csv_cells_become_typed_attributes_and_empty_cells_are_absent() {
        let rows = csv(concat!(
            "userId,sortKey,offerId,campaignId,rank,ttl,rules,challengeStatus\n",
            "u1,c+o,co-1,,3,1900000000,\"{\"\"minimumSpend\"\": 7.5}\",\"{\"\"reward\"\": {}}\"\n",
        ));
        let row = &ok(&rows[0]).row;
        assert_eq!(ok(&rows[0]).line, 2, "the header is line 1");
        assert_eq!(row["rank"], json!(3));
        assert_eq!(row["ttl"], json!(1_900_000_000));
        assert_eq!(row["rules"], json!({"minimumSpend": 7.5}));
        assert_eq!(
            row["challengeStatus"],
            json!("{\"reward\": {}}"),
            "challengeStatus stays text"
        );
        assert_eq!(row["offerId"], json!("co-1"));
        assert!(!row.contains_key("campaignId"));
    }

    #[test]
    fn csv_bad_cells_are_row_errors_with_the_line_and_reading_goes_on() {
        let rows = csv(concat!(
            "userId,rank,rules\n",
            "u1,first,\n",
            "u2,1,{not json}\n",
            "u3,1,[1]\n",
            "u4,1\n",
            "\"u5\nstill u5\",2,\n",
            "u6,2,\n",
        ));
        assert!(row_error(&rows[0]).1.contains("rank must be a number"));
        assert_eq!(row_error(&rows[0]).0, 2);
        let (line, message) = row_error(&rows[1]);
        assert_eq!(line, 3);
        assert!(message.starts_with("rules is not valid JSON"), "{message}");
        assert!(row_error(&rows[2]).1.contains("JSON object"));
        assert!(row_error(&rows[3])
            .1
            .contains("2 cells, but the header has 3"));
        assert_eq!(ok(&rows[4]).line, 6, "a row starts where its record starts");
        assert_eq!(ok(&rows[4]).row["userId"], json!("u5\nstill u5"));
        assert_eq!(ok(&rows[5]).line, 8);
    }

    #[test]
    fn a_csv_header_must_name_every_column_once() {
        assert!(row_error(&csv("userId,,rank\n")[0])
            .1
            .contains("column 2 has no name"));
        assert!(row_error(&csv("userId,rank,userId\n")[0])
            .1
            .contains("appears twice"));
    }

    #[test]
    fn the_format_comes_from_the_extension_unless_given() {
        assert_eq!(
            RowFormat::for_file(Path::new("rows.CSV"), None).expect("known"),
            RowFormat::Csv
        );
        assert_eq!(
            RowFormat::for_file(Path::new("rows.jsonl"), None).expect("known"),
            RowFormat::Jsonl
        );
        assert_eq!(
            RowFormat::for_file(Path::new("rows.txt"), Some(RowFormat::Csv)).expect("given"),
            RowFormat::Csv
        );
        let err = RowFormat::for_file(Path::new("rows.txt"), None).expect_err("unknown");
        assert_eq!(err.exit_code(), 1);
    }

    #[test]
    fn catalog_files_are_arrays_or_json_lines() {
        let array = parse_catalog_text("[{\"id\": \"a\"}, 3]").expect("array");
        assert_eq!(array[1].position, Position::Item(2));
        assert_eq!(array[1].value, Ok(json!(3)));
        let lines = parse_catalog_text("{\"id\": \"a\"}\n\n{oops\n").expect("lines");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].position, Position::Line(3));
        assert!(lines[1].value.is_err());
        assert!(parse_catalog_text("[{\"id\": 1},").is_err());
    }
}
