//! `offers transactions add`: completed orders written to the transactions
//! table as the ordering backend writes them, so that a challenge can be
//! seen progressing (the local stack's walk-through, tests, backfills). Each
//! transaction is checked as the challenge progress function reads it
//! (`offers_domain::parse_transaction`); the write is the adapter's
//! (`offers_shared::dynamo::LoyaltyTransactionsTable`).

use crate::aws::{Connection, Table};
use crate::cli::TransactionsAddArgs;
use crate::error::CliError;
use crate::output::say;
use chrono::Utc;
use offers_shared::domain::dates::format_timestamp;
use offers_shared::domain::{parse_transaction, Transaction};
use offers_shared::dynamo::{LoyaltyTransactionsTable, PutTransaction};
use serde_json::{json, Map, Value};
use std::io::BufRead;

/// The most lines a file may have: this is a demo and backfill tool, not a bulk loader.
const MAX_LINES: usize = 10_000;

pub async fn add(args: TransactionsAddArgs, connection: &Connection) -> Result<(), CliError> {
    let transactions = match &args.file {
        Some(path) => read_file(path)?,
        None => vec![from_options(&args)?],
    };
    let table = connection
        .table_names()
        .name(Table::Transactions)?
        .to_owned();
    let table = LoyaltyTransactionsTable::new(connection.client().await?, table);
    let (mut written, mut existing) = (0, 0);
    for transaction in &transactions {
        let line = format!(
            "transactionId={} userId={} totalCost={} occurredAt={}",
            transaction.transaction_id,
            transaction.user_id,
            transaction.total_cost,
            format_timestamp(transaction.occurred_at)
        );
        match table.put(transaction).await? {
            PutTransaction::Written => {
                written += 1;
                say(format!("written  {line}"))?;
            }
            PutTransaction::AlreadyExists => {
                existing += 1;
                say(format!(
                    "exists   {line}: a transaction with this id is stored already; left as it is"
                ))?;
            }
        }
    }
    say(format!(
        "{written} transactions written, {existing} already there"
    ))
}

/// One transaction from the command's options.
fn from_options(args: &TransactionsAddArgs) -> Result<Transaction, CliError> {
    let mut attributes = Map::new();
    let transaction_id = args
        .transaction_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    attributes.insert("transactionId".into(), json!(transaction_id));
    attributes.insert("userId".into(), json!(args.user_id));
    if let Some(cost) = args.total_cost {
        let number = serde_json::Number::from_f64(cost)
            .ok_or_else(|| CliError::Invalid(format!("--total-cost {cost} is not a number")))?;
        attributes.insert("totalCost".into(), Value::Number(number));
    }
    let occurred_at = args
        .occurred_at
        .clone()
        .unwrap_or_else(|| format_timestamp(Utc::now()));
    attributes.insert("occurredAt".into(), json!(occurred_at));
    if let Some(store) = &args.store_id {
        attributes.insert("storeId".into(), json!(store));
    }
    if let Some(mode) = &args.service_mode {
        attributes.insert("serviceMode".into(), json!(mode));
    }
    parse_transaction(&attributes).map_err(|rejection| CliError::Invalid(rejection.message))
}

/// Every line of a JSON Lines file, checked; all problems listed at once.
fn read_file(path: &std::path::Path) -> Result<Vec<Transaction>, CliError> {
    let read_error = |source| CliError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut transactions = Vec::new();
    let mut problems = Vec::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(read_error)?;
        if line.trim().is_empty() {
            continue;
        }
        if index >= MAX_LINES {
            return Err(CliError::Invalid(format!(
                "{}: more than {MAX_LINES} lines",
                path.display()
            )));
        }
        let parsed = serde_json::from_str::<Map<String, Value>>(&line)
            .map_err(|err| format!("not a JSON object: {err}"))
            .and_then(|attributes| {
                parse_transaction(&attributes).map_err(|rejection| rejection.message)
            });
        match parsed {
            Ok(transaction) => transactions.push(transaction),
            Err(problem) => problems.push(format!("line {}: {problem}", index + 1)),
        }
    }
    if !problems.is_empty() {
        return Err(CliError::Invalid(format!(
            "{} invalid transactions, nothing written:\n{}",
            problems.len(),
            problems.join("\n")
        )));
    }
    Ok(transactions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn args() -> TransactionsAddArgs {
        TransactionsAddArgs {
            file: None,
            user_id: Some("u1".into()),
            total_cost: Some(12.5),
            occurred_at: Some("2026-05-02T14:30:00+0200".into()),
            store_id: Some("s-1".into()),
            service_mode: None,
            transaction_id: Some("order-1".into()),
        }
    }

    #[test]
    fn options_make_a_checked_transaction() {
        let transaction = from_options(&args()).expect("valid");
        assert_eq!(transaction.transaction_id, "order-1");
        assert_eq!(
            format_timestamp(transaction.occurred_at),
            "2026-05-02T12:30:00Z"
        );
        let negative = TransactionsAddArgs {
            total_cost: Some(-1.0),
            ..args()
        };
        assert!(
            matches!(from_options(&negative), Err(CliError::Invalid(m)) if m.contains("totalCost"))
        );
        let undated = TransactionsAddArgs {
            occurred_at: None,
            transaction_id: None,
            ..args()
        };
        let transaction = from_options(&undated).expect("now, a new id");
        assert!(uuid::Uuid::parse_str(&transaction.transaction_id).is_ok());
    }

    #[test]
    fn a_file_is_checked_whole_before_anything_is_written() {
        let path = std::env::temp_dir().join(format!(
            "offers-transactions-{}.jsonl",
            uuid::Uuid::new_v4()
        ));
        let mut file = std::fs::File::create(&path).expect("temp file");
        writeln!(file, r#"{{"transactionId":"a","userId":"u","totalCost":3,"occurredAt":"2026-05-02T10:00:00Z"}}"#).expect("write");
        writeln!(file).expect("write");
        writeln!(file, r#"{{"transactionId":"b","userId":"u","totalCost":-3,"occurredAt":"2026-05-02T10:00:00Z"}}"#).expect("write");
        writeln!(file, "not json").expect("write");
        drop(file);
        let result = read_file(&path);
        let _ = std::fs::remove_file(&path);
        let text = result.expect_err("invalid lines").to_string();
        assert!(text.contains("line 3") && text.contains("line 4"), "{text}");
    }
}
