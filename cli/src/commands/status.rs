//! `offers status`: what is where, by scanning each table (Select COUNT, or
//! a projection of the one field that is counted). The counts are the
//! adapter's (each table's `count`/`counts`); this is the command's output.

use crate::aws::{Connection, Table};
use crate::cli::StatusArgs;
use crate::error::CliError;
use crate::output::say;
use aws_sdk_dynamodb::Client;
use futures::TryStreamExt;
use offers_shared::dynamo::{DynamoTable, LoyaltyOffersTable, PendingTable, RejectedTable};
use offers_shared::local_conventions::LOCAL_ON_FAILURE_TABLE;
use serde::Serialize;
use std::collections::BTreeMap;

pub use offers_shared::dynamo::{OfferCounts, RejectedCounts};

/// Where the dispatcher sends the stream batches it gave up on, in AWS.
pub const FAILURE_QUEUE: &str = "OfferDispatcherFailureQueue";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub pending_rows: u64,
    pub offers: OfferCounts,
    pub rejected_rows: RejectedCounts,
    pub failures: Failures,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "where", rename_all = "camelCase")]
pub enum Failures {
    /// The local stack's on-failure table.
    #[serde(rename_all = "camelCase")]
    LocalTable {
        table: String,
        batches: u64,
        records: u64,
    },
    /// The local stack has not created it (no failure recorded).
    #[serde(rename_all = "camelCase")]
    LocalTableMissing { table: String },
    /// In AWS: the SQS queue, not counted here.
    #[serde(rename_all = "camelCase")]
    SqsQueue { queue: String },
}

pub async fn run(args: StatusArgs, connection: &Connection) -> Result<(), CliError> {
    let names = connection.table_names();
    // Every name first: a missing one fails before any scan.
    let [pending, offers, rejected] = [Table::Pending, Table::LoyaltyOffers, Table::Rejected]
        .map(|table| names.name(table).map(str::to_owned));
    let (pending, offers, rejected) = (pending?, offers?, rejected?);
    let client = connection.client().await?;

    let status = Status {
        pending_rows: PendingTable::new(client.clone(), pending).count().await?,
        offers: LoyaltyOffersTable::new(client.clone(), offers)
            .counts()
            .await?,
        rejected_rows: RejectedTable::new(client.clone(), rejected)
            .counts()
            .await?,
        failures: if connection.is_local() {
            count_local_failures(client).await?
        } else {
            Failures::SqsQueue {
                queue: FAILURE_QUEUE.to_owned(),
            }
        },
    };
    if args.json {
        let json = serde_json::to_string(&status)
            .map_err(|err| CliError::Service(format!("status as JSON: {err}")))?;
        say(json)
    } else {
        for line in render(&status) {
            say(line)?;
        }
        Ok(())
    }
}

/// The local stack's on-failure table (the local stack writes it; no
/// function does): its batches and the sum of their `batchSize`.
async fn count_local_failures(client: Client) -> Result<Failures, CliError> {
    let failures = DynamoTable::new(client, LOCAL_ON_FAILURE_TABLE);
    let table = LOCAL_ON_FAILURE_TABLE.to_owned();
    if !failures.exists().await? {
        return Ok(Failures::LocalTableMissing { table });
    }
    let (mut batches, mut records) = (0u64, 0u64);
    let mut items = failures.scan(&["batchSize"]);
    while let Some(item) = items.try_next().await? {
        batches += 1;
        records += item
            .get("batchSize")
            .and_then(|size| size.as_n().ok())
            .and_then(|size| size.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(Failures::LocalTable {
        table,
        batches,
        records,
    })
}

/// The status as text, one line per kind of thing.
pub fn render(status: &Status) -> Vec<String> {
    let breakdown = |counts: &BTreeMap<String, u64>| {
        counts
            .iter()
            .map(|(name, count)| format!("{name} {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let with_breakdown = |total: u64, counts: &BTreeMap<String, u64>| {
        if counts.is_empty() {
            total.to_string()
        } else {
            format!("{total} ({})", breakdown(counts))
        }
    };
    let failures = match &status.failures {
        Failures::LocalTable {
            table,
            batches,
            records,
        } => format!("{batches} batches, {records} records (local table {table})"),
        Failures::LocalTableMissing { table } => {
            format!("none recorded (local table {table} does not exist)")
        }
        Failures::SqsQueue { queue } => format!(
            "in the SQS queue {queue} (stack output OfferDispatcherFailureQueueUrl); not counted here"
        ),
    };
    vec![
        format!("pending rows    {}", status.pending_rows),
        format!(
            "offers          {}, revoked {}",
            with_breakdown(status.offers.total, &status.offers.by_source),
            status.offers.revoked
        ),
        format!(
            "rejected rows   {}",
            with_breakdown(status.rejected_rows.total, &status.rejected_rows.by_reason)
        ),
        format!("failed batches  {failures}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status() -> Status {
        Status {
            pending_rows: 3,
            offers: OfferCounts {
                total: 5,
                by_source: BTreeMap::from([("campaign".into(), 4), ("support".into(), 1)]),
                revoked: 1,
            },
            rejected_rows: RejectedCounts {
                total: 2,
                by_reason: BTreeMap::from([("expired".into(), 2)]),
            },
            failures: Failures::LocalTable {
                table: "offers-local-DispatcherOnFailure".into(),
                batches: 1,
                records: 4,
            },
        }
    }

    #[test]
    fn status_renders_as_text_and_json() {
        assert_eq!(
            render(&status()),
            vec![
                "pending rows    3",
                "offers          5 (campaign 4, support 1), revoked 1",
                "rejected rows   2 (expired 2)",
                "failed batches  1 batches, 4 records (local table offers-local-DispatcherOnFailure)",
            ]
        );
        assert_eq!(
            serde_json::to_value(status()).expect("json"),
            json!({"pendingRows": 3,
                   "offers": {"total": 5, "bySource": {"campaign": 4, "support": 1}, "revoked": 1},
                   "rejectedRows": {"total": 2, "byReason": {"expired": 2}},
                   "failures": {"where": "localTable", "table": "offers-local-DispatcherOnFailure",
                                "batches": 1, "records": 4}})
        );
        let aws = Status {
            failures: Failures::SqsQueue {
                queue: FAILURE_QUEUE.into(),
            },
            ..status()
        };
        assert!(render(&aws)[3].contains("OfferDispatcherFailureQueue"));
    }
}
