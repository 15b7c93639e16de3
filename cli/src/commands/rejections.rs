//! `offers rejections list|retry`: the rejected table as the dispatcher
//! writes it (the pending row's attributes as they were, plus why and when).

use crate::aws::{Connection, Table};
use crate::cli::{RejectionFilterArgs, RejectionsListArgs, RejectionsRetryArgs};
use crate::error::{store_error, CliError};
use crate::output::say;
use crate::scan::text;
use crate::writer::{Backoff, Item};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use offers_shared::domain::{parse_pending_row, Rejection};
pub use offers_shared::dynamo::{DROPPED_ATTRIBUTES, REJECTION_ATTRIBUTES, UNREADABLE_ROW};
use serde_json::{Map, Value};
use std::collections::HashSet;

pub async fn list(args: RejectionsListArgs, connection: &Connection) -> Result<(), CliError> {
    let table = connection.table_names().name(Table::Rejected)?.to_owned();
    let client = connection.client().await?;
    let mut pages = RejectionPages::new(&client, &table, &args.filter, Vec::new());
    let mut shown = 0u64;
    'pages: while let Some(items) = pages.next().await? {
        for item in items {
            if args.limit.is_some_and(|limit| shown >= limit) {
                break 'pages;
            }
            if args.json {
                say(item_json(item)?)?;
            } else {
                say(describe(&item))?;
            }
            shown += 1;
        }
    }
    if !args.json {
        say(format!("{shown} rejections"))?;
    }
    Ok(())
}

/// One line per rejection: when, why, whose, which row.
pub fn describe(item: &Item) -> String {
    let field = |name: &str| text(item, name).unwrap_or("-");
    let offer = if item.contains_key(UNREADABLE_ROW) {
        "(unreadable row)"
    } else {
        field("offerId")
    };
    format!(
        "{}  {}  userId={} sortKey={} offerId={} rejectionId={}: {}",
        field("rejectedAt"),
        field("reasonCode"),
        field("userId"),
        field("sortKey"),
        offer,
        field("rejectionId"),
        field("reasonMessage")
    )
}

fn item_json(item: Item) -> Result<String, CliError> {
    let id = text(&item, "rejectionId").unwrap_or("-").to_owned();
    serde_dynamo::from_item::<_, Value>(item)
        .map(|value| value.to_string())
        .map_err(|err| CliError::Service(format!("rejection {id} cannot be shown as JSON: {err}")))
}

pub async fn retry(args: RejectionsRetryArgs, connection: &Connection) -> Result<(), CliError> {
    let filtered =
        args.filter.reason.is_some() || args.filter.user_id.is_some() || !args.ids.is_empty();
    if !filtered && !args.all {
        return Err(CliError::Invalid(
            "retry needs a filter (--reason, --user, --id) or --all to retry every rejection"
                .to_owned(),
        ));
    }
    let names = connection.table_names();
    let tables = RetryTables {
        pending: names.name(Table::Pending)?.to_owned(),
        rejected: names.name(Table::Rejected)?.to_owned(),
        offers: names.name(Table::LoyaltyOffers)?.to_owned(),
    };
    let rejected_table = tables.rejected.clone();
    let client = connection.client().await?;
    let now = Utc::now();
    let mut tally = Tally::default();
    let mut pages = RejectionPages::new(&client, &rejected_table, &args.filter, args.ids.clone());
    while let Some(items) = pages.next().await? {
        for item in items {
            let outcome = match original_row(&item, now) {
                Err(skip) => Outcome::Skipped(skip),
                Ok(_) if args.dry_run => Outcome::WouldRetry,
                Ok(row) => reinsert(&client, &tables, row, &item).await,
            };
            say(outcome.line(&item))?;
            tally.add(&outcome);
        }
    }
    say(tally.summary())?;
    if tally.failed > 0 {
        return Err(CliError::Service(format!(
            "{} rejections could not be retried (listed above)",
            tally.failed
        )));
    }
    Ok(())
}

/// Why a rejection is not retried.
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    /// Stored as raw text: there is no row to put back.
    Unreadable,
    /// Fails on its own (e.g. `expired`): it would only be rejected again.
    StillInvalid(Rejection),
    /// A newer pending row has the key: never clobbered.
    PendingRowExists,
    /// Someone retried or removed it meanwhile.
    RejectionGone,
    /// The same stream record also made an offer (a rejection stored before
    /// the dispatcher kept one outcome per record): retrying would make a
    /// second offer.
    AlreadyDispatched,
    /// Stored without some of its attributes (it was too large to keep whole).
    Incomplete,
}

impl Skip {
    fn label(&self) -> &'static str {
        match self {
            Skip::Unreadable => "unreadable",
            Skip::StillInvalid(_) => "still invalid",
            Skip::PendingRowExists => "pending row exists",
            Skip::RejectionGone => "already gone",
            Skip::AlreadyDispatched => "already dispatched",
            Skip::Incomplete => "incomplete",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Retried,
    WouldRetry,
    Skipped(Skip),
    Failed(String),
}

impl Outcome {
    fn line(&self, item: &Item) -> String {
        let field = |name: &str| text(item, name).unwrap_or("-");
        let row = format!(
            "userId={} sortKey={} rejectionId={}",
            field("userId"),
            field("sortKey"),
            field("rejectionId")
        );
        match self {
            Outcome::Retried => format!("retried      {row}"),
            Outcome::WouldRetry => format!("would retry  {row}"),
            Outcome::Skipped(Skip::Unreadable) => format!(
                "skipped      {row}: stored unreadable (raw text in {UNREADABLE_ROW}); re-insert it by hand"
            ),
            Outcome::Skipped(Skip::StillInvalid(rejection)) => {
                format!("skipped      {row}: still invalid: {rejection}")
            }
            Outcome::Skipped(Skip::PendingRowExists) => format!(
                "skipped      {row}: a pending row with this key exists; not overwritten"
            ),
            Outcome::Skipped(Skip::RejectionGone) => {
                format!("skipped      {row}: the rejection is gone (retried or removed meanwhile)")
            }
            Outcome::Skipped(Skip::AlreadyDispatched) => format!(
                "skipped      {row}: its stream record also made an offer (id {}); not retried",
                field("rejectionId")
            ),
            Outcome::Skipped(Skip::Incomplete) => format!(
                "skipped      {row}: stored without {DROPPED_ATTRIBUTES} (too large to keep whole); re-insert it by hand"
            ),
            Outcome::Failed(error) => format!("failed       {row}: {error}"),
        }
    }
}

/// The pending row as it was: the rejection's item without what the
/// dispatcher added, if it is readable and valid on its own. Catalog checks
/// are left to the dispatcher, which sees the row again.
pub fn original_row(item: &Item, now: DateTime<Utc>) -> Result<Item, Skip> {
    if item.contains_key(UNREADABLE_ROW) {
        return Err(Skip::Unreadable);
    }
    if item.contains_key(DROPPED_ATTRIBUTES) {
        return Err(Skip::Incomplete);
    }
    let mut row = item.clone();
    for attribute in REJECTION_ATTRIBUTES {
        row.remove(attribute);
    }
    let json: Map<String, Value> = serde_dynamo::from_item(row.clone()).map_err(|err| {
        Skip::StillInvalid(Rejection::new(
            offers_shared::domain::ReasonCode::InvalidRow,
            format!("the stored row cannot be read: {err}"),
        ))
    })?;
    parse_pending_row(&json, now).map_err(Skip::StillInvalid)?;
    Ok(row)
}

const CONDITIONAL_CHECK_FAILED: &str = "ConditionalCheckFailed";

/// The tables a retry touches.
struct RetryTables {
    pending: String,
    rejected: String,
    offers: String,
}

/// Puts the row back into the pending table unless a row of its key is
/// there, and deletes the rejection, in one transaction, on the condition
/// that the rejection's stream record made no offer (the dispatcher gives
/// both the same id): a record has one outcome, and a retry may not add one.
async fn reinsert(client: &Client, tables: &RetryTables, row: Item, rejection: &Item) -> Outcome {
    let key = |name: &str| {
        rejection
            .get(name)
            .cloned()
            .unwrap_or(AttributeValue::Null(true))
    };
    let put = Put::builder()
        .table_name(&tables.pending)
        .set_item(Some(row))
        .condition_expression("attribute_not_exists(userId)")
        .build();
    let delete = Delete::builder()
        .table_name(&tables.rejected)
        .key("userId", key("userId"))
        .key("rejectionId", key("rejectionId"))
        .condition_expression("attribute_exists(rejectionId)")
        .build();
    let no_offer = ConditionCheck::builder()
        .table_name(&tables.offers)
        .key("userId", key("userId"))
        .key("personalizedOfferId", key("rejectionId"))
        .condition_expression("attribute_not_exists(personalizedOfferId)")
        .build();
    let (put, delete, no_offer) = match (put, delete, no_offer) {
        (Ok(put), Ok(delete), Ok(no_offer)) => (put, delete, no_offer),
        (Err(err), _, _) | (_, Err(err), _) | (_, _, Err(err)) => {
            return Outcome::Failed(err.to_string())
        }
    };
    let backoff = Backoff::default();
    let mut rng = fastrand::Rng::new();
    let mut last_error = String::new();
    for attempt in 1..=backoff.max_attempts {
        if attempt > 1 {
            tokio::time::sleep(backoff.delay(attempt - 1, &mut rng)).await;
        }
        let result = client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put.clone()).build())
            .transact_items(TransactWriteItem::builder().delete(delete.clone()).build())
            .transact_items(
                TransactWriteItem::builder()
                    .condition_check(no_offer.clone())
                    .build(),
            )
            .send()
            .await;
        let err = match result {
            Ok(_) => return Outcome::Retried,
            Err(err) => err,
        };
        let codes = cancellation_codes(&err);
        let failed_condition =
            |index: usize| codes.get(index).map(String::as_str) == Some(CONDITIONAL_CHECK_FAILED);
        if failed_condition(1) {
            return Outcome::Skipped(Skip::RejectionGone);
        }
        if failed_condition(2) {
            return Outcome::Skipped(Skip::AlreadyDispatched);
        }
        if failed_condition(0) {
            return Outcome::Skipped(Skip::PendingRowExists);
        }
        let error = store_error(&err);
        // A cancelled transaction is `Refused` to `classify`; its reasons tell
        // whether it was only a conflict or throttling.
        let transient = error.is_transient()
            || codes.iter().any(|code| {
                code.contains("Conflict") || code.contains("Throttl") || code.contains("Throughput")
            });
        last_error = error.to_string();
        if !transient {
            break;
        }
    }
    Outcome::Failed(last_error)
}

/// The cancellation reasons of a cancelled transaction, in item order.
fn cancellation_codes<R>(err: &SdkError<TransactWriteItemsError, R>) -> Vec<String> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            offers_shared::dynamo::cancellation_codes(cancelled)
        }
        _ => Vec::new(),
    }
}

#[derive(Debug, Default)]
struct Tally {
    retried: u64,
    would_retry: u64,
    skipped: Vec<&'static str>,
    failed: u64,
}

impl Tally {
    fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Retried => self.retried += 1,
            Outcome::WouldRetry => self.would_retry += 1,
            Outcome::Skipped(skip) => self.skipped.push(skip.label()),
            Outcome::Failed(_) => self.failed += 1,
        }
    }

    fn summary(&self) -> String {
        let mut reasons: Vec<String> = Vec::new();
        let mut labels = self.skipped.clone();
        labels.sort_unstable();
        labels.dedup();
        for label in labels {
            let count = self.skipped.iter().filter(|skip| **skip == label).count();
            reasons.push(format!("{label} {count}"));
        }
        let skipped = if reasons.is_empty() {
            format!("skipped {}", self.skipped.len())
        } else {
            format!("skipped {} ({})", self.skipped.len(), reasons.join(", "))
        };
        let done = match self.would_retry {
            0 => format!("retried {}", self.retried),
            would => format!("would retry {would} (dry run: nothing written)"),
        };
        format!("{done}, {skipped}, failed {}", self.failed)
    }
}

/// The rejections matching a filter, a page at a time: a Query of the
/// user's partition with `--user`, else a Scan; the reason is filtered by
/// DynamoDB, the ids here.
struct RejectionPages<'a> {
    client: &'a Client,
    table: &'a str,
    filter: &'a RejectionFilterArgs,
    ids: HashSet<String>,
    start: Option<Item>,
    done: bool,
}

impl<'a> RejectionPages<'a> {
    fn new(
        client: &'a Client,
        table: &'a str,
        filter: &'a RejectionFilterArgs,
        ids: Vec<String>,
    ) -> Self {
        Self {
            client,
            table,
            filter,
            ids: ids.into_iter().collect(),
            start: None,
            done: false,
        }
    }

    async fn next(&mut self) -> Result<Option<Vec<Item>>, CliError> {
        if self.done {
            return Ok(None);
        }
        let reason = self
            .filter
            .reason
            .map(|code| AttributeValue::S(code.as_str().to_owned()));
        let (items, last_key) = match &self.filter.user_id {
            Some(user_id) => {
                let mut query = self
                    .client
                    .query()
                    .table_name(self.table)
                    .key_condition_expression("#user = :user")
                    .expression_attribute_names("#user", "userId")
                    .expression_attribute_values(":user", AttributeValue::S(user_id.clone()));
                if let Some(reason) = reason {
                    query = query
                        .filter_expression("#reason = :reason")
                        .expression_attribute_names("#reason", "reasonCode")
                        .expression_attribute_values(":reason", reason);
                }
                let page = query
                    .set_exclusive_start_key(self.start.take())
                    .send()
                    .await
                    .map_err(|err| CliError::service(format!("querying {}", self.table), &err))?;
                (page.items.unwrap_or_default(), page.last_evaluated_key)
            }
            None => {
                let mut scan = self.client.scan().table_name(self.table);
                if let Some(reason) = reason {
                    scan = scan
                        .filter_expression("#reason = :reason")
                        .expression_attribute_names("#reason", "reasonCode")
                        .expression_attribute_values(":reason", reason);
                }
                let page = scan
                    .set_exclusive_start_key(self.start.take())
                    .send()
                    .await
                    .map_err(|err| CliError::service(format!("scanning {}", self.table), &err))?;
                (page.items.unwrap_or_default(), page.last_evaluated_key)
            }
        };
        self.done = last_key.is_none();
        self.start = last_key;
        Ok(Some(
            items
                .into_iter()
                .filter(|item| {
                    self.ids.is_empty()
                        || text(item, "rejectionId").is_some_and(|id| self.ids.contains(id))
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offers_shared::domain::ReasonCode;
    use serde_json::json;

    fn rejection(row: Value) -> Item {
        let mut value = row;
        value["rejectionId"] = json!("r-1");
        value["reasonCode"] = json!("unknown_offer");
        value["reasonMessage"] = json!("co-new is not in the catalog");
        value["rejectedAt"] = json!("2024-06-01T00:00:00Z");
        value["sourceEventId"] = json!("e-1");
        value["sourceSequenceNumber"] = json!("100");
        serde_dynamo::to_item(value).expect("item")
    }

    fn row() -> Value {
        json!({"userId": "u1", "sortKey": "c+co-new", "offerId": "co-new", "rank": 2,
               "startDate": "2024-01-01T00:00:00Z", "expiryDate": "2099-01-01T00:00:00Z",
               "rules": {"minimumSpend": 3}})
    }

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    #[test]
    fn the_original_row_is_the_item_without_the_rejection_attributes() {
        let original = original_row(&rejection(row()), now()).expect("retryable");
        let expected: Item = serde_dynamo::to_item(row()).expect("item");
        assert_eq!(original, expected);
        assert_eq!(
            original["rank"],
            AttributeValue::N("2".into()),
            "types kept"
        );
    }

    #[test]
    fn unreadable_and_still_invalid_rows_are_skipped() {
        let mut unreadable = rejection(json!({"userId": "u1", "sortKey": "k"}));
        unreadable.insert(UNREADABLE_ROW.into(), AttributeValue::S("{\"M\"".into()));
        assert_eq!(original_row(&unreadable, now()), Err(Skip::Unreadable));

        let mut expired = row();
        expired["expiryDate"] = json!("2020-01-01T00:00:00Z");
        expired["startDate"] = json!("2019-01-01T00:00:00Z");
        match original_row(&rejection(expired), now()) {
            Err(Skip::StillInvalid(rejection)) => assert_eq!(rejection.code, ReasonCode::Expired),
            other => panic!("expected still invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_rejection_is_described_on_one_line() {
        assert_eq!(
            describe(&rejection(row())),
            "2024-06-01T00:00:00Z  unknown_offer  userId=u1 sortKey=c+co-new offerId=co-new rejectionId=r-1: co-new is not in the catalog"
        );
    }

    #[test]
    fn the_summary_counts_skips_by_reason() {
        let mut tally = Tally::default();
        tally.add(&Outcome::Retried);
        tally.add(&Outcome::Skipped(Skip::Unreadable));
        tally.add(&Outcome::Skipped(Skip::PendingRowExists));
        tally.add(&Outcome::Skipped(Skip::Unreadable));
        assert_eq!(
            tally.summary(),
            "retried 1, skipped 3 (pending row exists 1, unreadable 2), failed 0"
        );
    }
}
