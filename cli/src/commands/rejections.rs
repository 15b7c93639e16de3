//! `offers rejections list|retry`: the rejected table as the dispatcher
//! writes it (the pending row's attributes as they were, plus why and when).
//! The table's reads and the retry's transaction are the adapter's
//! (`offers_shared::dynamo::RejectedTable`); this is the command's output.

use crate::aws::{Connection, Table};
use crate::cli::{RejectionFilterArgs, RejectionsListArgs, RejectionsRetryArgs};
use crate::error::CliError;
use crate::output::say;
use crate::writer::{Backoff, Item};
use chrono::Utc;
use futures::TryStreamExt;
use offers_shared::dynamo::{
    text_of, LoyaltyOffersTable, PendingTable, RejectedTable, RejectionFilter, RetryOutcome,
    DROPPED_ATTRIBUTES, REJECTION_SOURCE, TRANSACTION_SOURCE, UNREADABLE_ROW,
};
use serde_json::Value;

/// Why a rejection is not retried.
pub use offers_shared::dynamo::RetrySkip as Skip;

pub async fn list(args: RejectionsListArgs, connection: &Connection) -> Result<(), CliError> {
    let table = connection.table_names().name(Table::Rejected)?.to_owned();
    let rejected = RejectedTable::new(connection.client().await?, table);
    let mut pages = rejected.pages(&rejection_filter(&args.filter, Vec::new()));
    let mut shown = 0u64;
    'pages: while let Some(page) = pages.try_next().await? {
        for rejection in page {
            if args.limit.is_some_and(|limit| shown >= limit) {
                break 'pages;
            }
            if args.json {
                say(item_json(rejection.into_item())?)?;
            } else {
                say(describe(rejection.item()))?;
            }
            shown += 1;
        }
    }
    if !args.json {
        say(format!("{shown} rejections"))?;
    }
    Ok(())
}

fn rejection_filter(args: &RejectionFilterArgs, ids: Vec<String>) -> RejectionFilter {
    RejectionFilter {
        reason: args.reason,
        user_id: args.user_id.clone(),
        ids: ids.into_iter().collect(),
    }
}

/// One line per rejection: when, why, whose, which row (or transaction).
pub fn describe(item: &Item) -> String {
    let field = |name: &str| text_of(item, name).unwrap_or("-");
    if text_of(item, REJECTION_SOURCE) == Some(TRANSACTION_SOURCE) {
        return format!(
            "{}  {}  userId={} transactionId={} rejectionId={}: {}",
            field("rejectedAt"),
            field("reasonCode"),
            field("userId"),
            field("transactionId"),
            field("rejectionId"),
            field("reasonMessage")
        );
    }
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
    let id = text_of(&item, "rejectionId").unwrap_or("-").to_owned();
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
    let pending = names.name(Table::Pending)?.to_owned();
    let rejected = names.name(Table::Rejected)?.to_owned();
    let offers = names.name(Table::LoyaltyOffers)?.to_owned();
    let client = connection.client().await?;
    let pending = PendingTable::new(client.clone(), pending);
    let rejected = RejectedTable::new(client.clone(), rejected);
    let offers = LoyaltyOffersTable::new(client, offers);
    let now = Utc::now();
    let backoff = Backoff::default();
    let mut rng = fastrand::Rng::new();
    let mut tally = Tally::default();
    let mut pages = rejected.pages(&rejection_filter(&args.filter, args.ids.clone()));
    while let Some(page) = pages.try_next().await? {
        for rejection in page {
            let outcome = match rejection.retryable(now) {
                Err(skip) => Outcome::Skipped(skip),
                Ok(_) if args.dry_run => Outcome::WouldRetry,
                Ok(retryable) => {
                    let pause = |retry| backoff.pause(retry, &mut rng);
                    match rejected.retry(&retryable, &pending, &offers, pause).await {
                        Ok(RetryOutcome::Retried) => Outcome::Retried,
                        Ok(RetryOutcome::Skipped(skip)) => Outcome::Skipped(skip),
                        Err(err) => Outcome::Failed(err.error.to_string()),
                    }
                }
            };
            say(outcome.line(rejection.item()))?;
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

/// How a skip is counted in the summary.
fn label(skip: &Skip) -> &'static str {
    match skip {
        Skip::Unreadable => "unreadable",
        Skip::StillInvalid(_) => "still invalid",
        Skip::PendingRowExists => "pending row exists",
        Skip::RejectionGone => "already gone",
        Skip::AlreadyDispatched => "already dispatched",
        Skip::Incomplete => "incomplete",
        Skip::NotAPendingRow => "a transaction",
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
        let field = |name: &str| text_of(item, name).unwrap_or("-");
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
            Outcome::Skipped(Skip::NotAPendingRow) => format!(
                "skipped      {row}: a rejected transaction (transactionId={}), not a pending row; fix it in the transactions table",
                field("transactionId")
            ),
            Outcome::Failed(error) => format!("failed       {row}: {error}"),
        }
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
            Outcome::Skipped(skip) => self.skipped.push(label(skip)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A rejection as the dispatcher stores it.
    fn rejection() -> Item {
        serde_dynamo::to_item(json!({
            "userId": "u1", "sortKey": "c+co-new", "offerId": "co-new", "rank": 2,
            "rejectionId": "r-1", "reasonCode": "unknown_offer",
            "reasonMessage": "co-new is not in the catalog", "rejectedAt": "2024-06-01T00:00:00Z",
            "sourceEventId": "e-1", "sourceSequenceNumber": "100"
        }))
        .expect("item")
    }

    #[test]
    fn a_rejection_is_described_on_one_line() {
        assert_eq!(
            describe(&rejection()),
            "2024-06-01T00:00:00Z  unknown_offer  userId=u1 sortKey=c+co-new offerId=co-new rejectionId=r-1: co-new is not in the catalog"
        );
    }

    #[test]
    fn a_rejected_transaction_is_described_by_its_transaction() {
        let item: Item = serde_dynamo::to_item(json!({
            "userId": "u1", "rejectionId": "r-2", "reasonCode": "invalid_transaction",
            "reasonMessage": "totalCost must be a number >= 0, not \"-1\"",
            "rejectedAt": "2024-06-01T00:00:00Z", "source": "transaction", "transactionId": "order-9"
        }))
        .expect("item");
        assert_eq!(
            describe(&item),
            "2024-06-01T00:00:00Z  invalid_transaction  userId=u1 transactionId=order-9 rejectionId=r-2: totalCost must be a number >= 0, not \"-1\""
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
