//! `offers failures list`: the local stack's record of the stream batches the
//! dispatcher gave up on. In AWS they are messages of an SQS queue instead.

use crate::aws::Connection;
use crate::cli::FailuresListArgs;
use crate::commands::status::FAILURE_QUEUE;
use crate::error::CliError;
use crate::output::say;
use crate::writer::Item;
use futures::TryStreamExt;
use offers_shared::dynamo::{text_of as text, DynamoTable};
use offers_shared::local_conventions::LOCAL_ON_FAILURE_TABLE;
use serde_json::Value;

pub async fn list(args: FailuresListArgs, connection: &Connection) -> Result<(), CliError> {
    if !connection.is_local() {
        return Err(CliError::Invalid(format!(
            "against AWS the dispatcher's failed batches are messages of the SQS queue {FAILURE_QUEUE} \
             (stack output OfferDispatcherFailureQueueUrl): read them with \
             `aws sqs receive-message --queue-url <url>`. `offers failures list` reads the local stack's table (--local)."
        )));
    }
    let failures = DynamoTable::new(connection.client().await?, LOCAL_ON_FAILURE_TABLE);
    if !failures.exists().await? {
        if !args.json {
            say(format!(
                "no failures recorded: table {LOCAL_ON_FAILURE_TABLE} does not exist (the local stack creates it)"
            ))?;
        }
        return Ok(());
    }
    let mut records: Vec<Item> = failures.scan(&[]).try_collect().await?;
    records.sort_by(|a, b| text(a, "timestamp").cmp(&text(b, "timestamp")));
    for record in &records {
        if args.json {
            let json = serde_dynamo::from_item::<_, Value>(record.clone())
                .map_err(|err| CliError::Service(format!("failure record as JSON: {err}")))?;
            say(json)?;
        } else {
            for line in describe(record) {
                say(line)?;
            }
        }
    }
    if !args.json {
        say(format!("{} failed batches", records.len()))?;
    }
    Ok(())
}

/// A failed batch: one line, then one per record of the batch.
pub fn describe(record: &Item) -> Vec<String> {
    let field = |name: &str| text(record, name).unwrap_or("-");
    let size = record
        .get("batchSize")
        .and_then(|size| size.as_n().ok())
        .map_or("-", String::as_str);
    let mut lines = vec![format!(
        "{}  {}  batchSize={size}  id={}",
        field("timestamp"),
        field("condition"),
        field("id")
    )];
    // `records` is JSON text: [{sequenceNumber, userId, sortKey}, ...].
    let listed: Vec<Value> = text(record, "records")
        .and_then(|records| serde_json::from_str(records).ok())
        .unwrap_or_default();
    for entry in listed {
        let part = |name: &str| {
            entry
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_owned()
        };
        lines.push(format!(
            "    sequenceNumber={} userId={} sortKey={}",
            part("sequenceNumber"),
            part("userId"),
            part("sortKey")
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_failed_batch_is_described_with_its_records() {
        let record: Item = serde_dynamo::to_item(json!({
            "id": "f-1", "timestamp": "2024-06-01T00:00:00Z", "condition": "RetryAttemptsExhausted",
            "batchSize": 2, "message": "{}",
            "records": "[{\"sequenceNumber\":\"100\",\"userId\":\"u1\",\"sortKey\":\"a\"},{\"sequenceNumber\":\"101\",\"userId\":\"u2\",\"sortKey\":\"b\"}]"
        }))
        .expect("item");
        assert_eq!(
            describe(&record),
            vec![
                "2024-06-01T00:00:00Z  RetryAttemptsExhausted  batchSize=2  id=f-1",
                "    sequenceNumber=100 userId=u1 sortKey=a",
                "    sequenceNumber=101 userId=u2 sortKey=b",
            ]
        );
    }
}
