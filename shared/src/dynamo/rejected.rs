//! The rejected table as operators handle it: rejections listed by reason,
//! user or ids a page at a time, one put back into the pending table
//! (retry), counts by reason. The dispatcher writes its items
//! (`dispatch.rs`: [`REJECTION_ATTRIBUTES`] and the rest of its layout).

use super::errors::CallError;
use super::items::{text_of, Item};
use super::offer_item;
use super::offers::LoyaltyOffersTable;
use super::pending::PendingTable;
use super::table::{paged, with_retries, DynamoTable};
use super::transactions::{cancellation_error, cancelled, condition_failed};
use super::{
    classify, DROPPED_ATTRIBUTES, REJECTION_ATTRIBUTES, REJECTION_SOURCE, SOURCE_RECORD_ID,
    TRANSACTION_SOURCE, UNREADABLE_ROW,
};
pub use crate::domain::retry::RetrySkip;
use crate::domain::retry::{check_retry, RejectedItem};
use crate::domain::ReasonCode;
use crate::error::StoreError;
use crate::ports::RejectionKey;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt};
use futures::TryStreamExt;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;
use uuid::Uuid;

/// Which rejections: all filters that are set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RejectionFilter {
    /// Filtered by DynamoDB.
    pub reason: Option<ReasonCode>,
    /// The user's partition is queried instead of the table scanned.
    pub user_id: Option<String>,
    /// Any of these rejection ids (none: any id).
    pub ids: HashSet<String>,
}

/// A rejected table item: the pending row's attributes as they were, plus
/// why and when.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRejection(Item);

impl StoredRejection {
    pub fn new(item: Item) -> Self {
        Self(item)
    }

    pub fn item(&self) -> &Item {
        &self.0
    }

    pub fn into_item(self) -> Item {
        self.0
    }

    /// An attribute's text (S), if it has one.
    pub fn text(&self, name: &str) -> Option<&str> {
        text_of(&self.0, name)
    }

    /// A rejected transaction (challenge progress), not a pending row.
    pub fn is_transaction(&self) -> bool {
        self.text(REJECTION_SOURCE) == Some(TRANSACTION_SOURCE)
    }

    /// Stored as raw text (the stream image could not be read): no row.
    pub fn is_unreadable(&self) -> bool {
        self.0.contains_key(UNREADABLE_ROW)
    }

    /// The pending row as it was, if it can be put back (the rule is the
    /// domain's, `offers_domain::retry`): the item without what the
    /// dispatcher added.
    pub fn retryable(&self, now: DateTime<Utc>) -> Result<Retryable, RetrySkip> {
        let item = if self.is_transaction() {
            RejectedItem::Transaction
        } else if self.is_unreadable() {
            RejectedItem::Unreadable
        } else if self.0.contains_key(DROPPED_ATTRIBUTES) {
            RejectedItem::Incomplete
        } else {
            RejectedItem::PendingRow
        };
        let mut row = self.0.clone();
        for attribute in REJECTION_ATTRIBUTES.into_iter().chain([SOURCE_RECORD_ID]) {
            row.remove(attribute);
        }
        let json = || serde_dynamo::from_item(row.clone()).map_err(|err| err.to_string());
        check_retry(item, json, now)?;
        // The table's keys: a stored item has both.
        let key = |name: &str| {
            self.0
                .get(name)
                .cloned()
                .unwrap_or(AttributeValue::Null(true))
        };
        Ok(Retryable {
            user_id: key("userId"),
            rejection_id: key("rejectionId"),
            row,
        })
    }
}

/// A rejection whose row can be put back, and that row (types as stored).
#[derive(Debug, Clone, PartialEq)]
pub struct Retryable {
    user_id: AttributeValue,
    rejection_id: AttributeValue,
    row: Item,
}

impl Retryable {
    pub fn row(&self) -> &Item {
        &self.row
    }
}

/// What a retry made of one rejection.
#[derive(Debug, Clone, PartialEq)]
pub enum RetryOutcome {
    /// The row is pending again and the rejection gone.
    Retried,
    Skipped(RetrySkip),
}

/// How many rejections, by reason code (`unknown` for an item without one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedCounts {
    pub total: u64,
    pub by_reason: BTreeMap<String, u64>,
}

/// The rejected table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RejectedTable {
    table: DynamoTable,
}

impl RejectedTable {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            table: DynamoTable::new(client, name),
        }
    }

    pub fn name(&self) -> &str {
        self.table.name()
    }

    /// The rejections matching `filter`, a page at a time: a Query of the
    /// user's partition when the filter names one, else a Scan. Pages are
    /// read as they are asked for; a page may be empty.
    pub fn pages(
        &self,
        filter: &RejectionFilter,
    ) -> BoxStream<'static, Result<Vec<StoredRejection>, CallError>> {
        let reason = filter
            .reason
            .map(|code| AttributeValue::S(code.as_str().to_owned()));
        let client = self.table.client();
        let pages = match &filter.user_id {
            Some(user_id) => {
                let mut query = client
                    .query()
                    .table_name(self.name())
                    .key_condition_expression("#user = :user")
                    .expression_attribute_names("#user", "userId")
                    .expression_attribute_values(":user", AttributeValue::S(user_id.clone()));
                if let Some(reason) = reason {
                    query = query
                        .filter_expression("#reason = :reason")
                        .expression_attribute_names("#reason", "reasonCode")
                        .expression_attribute_values(":reason", reason);
                }
                let mut pages = query.into_paginator().send();
                paged(
                    move |cx| pages.poll_next(cx),
                    format!("querying {}", self.name()),
                )
                .map(|page| page.map(|page| page.items.unwrap_or_default()))
                .boxed()
            }
            None => {
                let mut scan = client.scan().table_name(self.name());
                if let Some(reason) = reason {
                    scan = scan
                        .filter_expression("#reason = :reason")
                        .expression_attribute_names("#reason", "reasonCode")
                        .expression_attribute_values(":reason", reason);
                }
                let mut pages = scan.into_paginator().send();
                paged(
                    move |cx| pages.poll_next(cx),
                    format!("scanning {}", self.name()),
                )
                .map(|page| page.map(|page| page.items.unwrap_or_default()))
                .boxed()
            }
        };
        let ids = filter.ids.clone();
        pages
            .map(move |page| {
                page.map(|items| {
                    items
                        .into_iter()
                        .filter(|item| !is_rejections_mark(item))
                        .filter(|item| {
                            ids.is_empty()
                                || text_of(item, "rejectionId").is_some_and(|id| ids.contains(id))
                        })
                        .map(StoredRejection)
                        .collect()
                })
            })
            .boxed()
    }

    /// How many rejections, by reason (Scan of `reasonCode`, every page).
    pub async fn counts(&self) -> Result<RejectedCounts, CallError> {
        let mut counts = RejectedCounts::default();
        let mut items = self.table.scan(&["reasonCode", "rejectionId"]);
        while let Some(item) = items.try_next().await? {
            if is_rejections_mark(&item) {
                continue;
            }
            counts.total += 1;
            let reason = text_of(&item, "reasonCode").unwrap_or("unknown").to_owned();
            *counts.by_reason.entry(reason).or_default() += 1;
        }
        Ok(counts)
    }

    /// Puts the row back into `pending` unless a row of its key is there,
    /// and deletes the rejection if it still exists, in one transaction, on
    /// the condition that `offers` has no offer with the rejection's id (the
    /// dispatcher gives a record's offer and rejection the same id): a record
    /// has one outcome, and a retry may not add one. Transient failures
    /// (conflicts, throttling, DynamoDB unavailable) are retried while
    /// `pause` gives a wait.
    pub async fn retry(
        &self,
        rejection: &Retryable,
        pending: &PendingTable,
        offers: &LoyaltyOffersTable,
        pause: impl FnMut(u32) -> Option<Duration>,
    ) -> Result<RetryOutcome, CallError> {
        let doing = format!(
            "retrying rejection {}",
            rejection.rejection_id.as_s().map_or("-", String::as_str)
        );
        let refused = |err: aws_sdk_dynamodb::error::BuildError| {
            CallError::of(doing.clone(), StoreError::Refused(err.to_string()))
        };
        let put = Put::builder()
            .table_name(pending.name())
            .set_item(Some(rejection.row.clone()))
            .condition_expression("attribute_not_exists(userId)")
            .build()
            .map_err(&refused)?;
        let delete = Delete::builder()
            .table_name(self.name())
            .key("userId", rejection.user_id.clone())
            .key("rejectionId", rejection.rejection_id.clone())
            .condition_expression("attribute_exists(rejectionId)")
            .build()
            .map_err(&refused)?;
        // A retried row must not make a second outcome of its record.
        let no_offer = offer_item::presence_check(
            offers.name(),
            offer_item::key_of(rejection.user_id.clone(), rejection.rejection_id.clone()),
            false,
        )
        .map_err(|err| CallError::of(doing.clone(), err))?;
        let attempt = || async {
            let result = self
                .table
                .client()
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
            let reasons = match cancelled(result, |err| CallError::new(doing.clone(), err))? {
                None => return Ok(RetryOutcome::Retried),
                Some(reasons) => reasons,
            };
            // In the order of the items: the put, the delete, the check.
            let skip = if condition_failed(&reasons, 1) {
                RetrySkip::RejectionGone
            } else if condition_failed(&reasons, 2) {
                RetrySkip::AlreadyDispatched
            } else if condition_failed(&reasons, 0) {
                RetrySkip::PendingRowExists
            } else {
                return Err(CallError::of(doing.clone(), cancellation_error(&reasons)));
            };
            Ok(RetryOutcome::Skipped(skip))
        };
        with_retries(pause, attempt).await
    }
}

/// The dispatcher's rejections mark is an item of the rejected table under a
/// key no rejection has (rejection ids are UUIDs); the readers of the table
/// skip it (docs/design.md, "The common path").
pub const REJECTIONS_MARK_USER: &str = "#dispatcher";
pub const REJECTIONS_MARK_ID: &str = "#rejections-mark";
/// The mark: epoch milliseconds; no record created after it has a rejection.
const MARK_MILLIS: &str = "recordsCreatedUntil";

/// Whether a rejected table item is the dispatcher's rejections mark.
pub fn is_rejections_mark(item: &HashMap<String, AttributeValue>) -> bool {
    text_of(item, "rejectionId") == Some(REJECTIONS_MARK_ID)
}

fn rejections_mark_key() -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "userId".to_owned(),
            AttributeValue::S(REJECTIONS_MARK_USER.to_owned()),
        ),
        (
            "rejectionId".to_owned(),
            AttributeValue::S(REJECTIONS_MARK_ID.to_owned()),
        ),
    ])
}

fn mark_item(mark: DateTime<Utc>) -> HashMap<String, AttributeValue> {
    let mut item = rejections_mark_key();
    item.insert(
        MARK_MILLIS.to_owned(),
        AttributeValue::N(mark.timestamp_millis().to_string()),
    );
    item
}

/// The rejections mark, read strongly consistent (a BatchGetItem of its one
/// key: the action the dispatcher already has on the table). A mark that is
/// not a number of milliseconds is an error: the dispatcher then reads
/// every record's rejection.
pub(super) async fn rejections_mark(
    client: &Client,
    table: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let request = KeysAndAttributes::builder()
        .keys(rejections_mark_key())
        .consistent_read(true)
        .projection_expression("#mark")
        .expression_attribute_names("#mark", MARK_MILLIS)
        .build()
        .map_err(|err| StoreError::Refused(err.to_string()))?;
    let output = client
        .batch_get_item()
        .request_items(table, request)
        .send()
        .await
        .map_err(|err| classify(&err))?;
    if output
        .unprocessed_keys
        .as_ref()
        .is_some_and(|keys| keys.contains_key(table))
    {
        return Err(StoreError::Throttled(
            "the rejections mark was left unprocessed".into(),
        ));
    }
    let Some(item) = output
        .responses
        .unwrap_or_default()
        .remove(table)
        .and_then(|items| items.into_iter().next())
    else {
        return Ok(None);
    };
    match item.get(MARK_MILLIS) {
        Some(AttributeValue::N(millis)) => millis
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .map(Some)
            .ok_or_else(|| StoreError::Refused(format!("rejections mark {millis:?} unreadable"))),
        _ => Err(StoreError::Refused(format!(
            "rejections mark without {MARK_MILLIS}"
        ))),
    }
}

/// Raises the rejections mark to at least `at_least` (a conditional put: a
/// higher mark stays); where there is none, sets it to the later of the two
/// (a put if absent). Two tries each way against a mark deleted or created
/// meanwhile, then a conflict (the record is retried).
pub(super) async fn raise_rejections_mark(
    client: &Client,
    table: &str,
    at_least: DateTime<Utc>,
    when_unset: DateTime<Utc>,
) -> Result<(), StoreError> {
    for _ in 0..2 {
        let raised = client
            .put_item()
            .table_name(table)
            .set_item(Some(mark_item(at_least)))
            .condition_expression("#mark < :mark")
            .expression_attribute_names("#mark", MARK_MILLIS)
            .expression_attribute_values(
                ":mark",
                AttributeValue::N(at_least.timestamp_millis().to_string()),
            )
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match raised {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        let Some(PutItemError::ConditionalCheckFailedException(failed)) = err.as_service_error()
        else {
            return Err(classify(&err));
        };
        if failed.item().is_some() {
            // Already at or past `at_least`.
            return Ok(());
        }
        let set = client
            .put_item()
            .table_name(table)
            .set_item(Some(mark_item(at_least.max(when_unset))))
            .condition_expression("attribute_not_exists(rejectionId)")
            .send()
            .await;
        match set {
            Ok(_) => return Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(PutItemError::is_conditional_check_failed_exception) => {}
            Err(err) => return Err(classify(&err)),
        }
    }
    Err(StoreError::Conflict(
        "the rejections mark was deleted and set again meanwhile".into(),
    ))
}

/// BatchGetItem takes at most 100 keys.
const BATCH_GET_LIMIT: usize = 100;

/// The record ids of `records` whose own rejection a strongly consistent
/// read finds absent: no rejection under their key, or the rejection of
/// another record of their assignment (its `sourceRecordId`; a rejection
/// without one is taken as the record's own). The dispatcher's hint for its
/// common path. Keys DynamoDB leaves unprocessed are not asked again: they
/// are simply not in the answer (the checked path decides those records).
pub(super) async fn rejections_absent(
    client: &Client,
    table: &str,
    records: &[RejectionKey<'_>],
) -> Result<HashSet<Uuid>, StoreError> {
    // BatchGetItem refuses a request that names one key twice (two records
    // of one assignment in a batch).
    let mut asked: HashSet<(&str, Uuid)> = HashSet::with_capacity(records.len());
    let distinct: Vec<(&str, Uuid)> = records
        .iter()
        .map(|key| (key.user_id, key.rejection_id))
        .filter(|key| asked.insert(*key))
        .collect();
    let mut found: HashMap<String, Option<String>> = HashMap::new();
    let mut unprocessed: HashSet<String> = HashSet::new();
    for chunk in distinct.chunks(BATCH_GET_LIMIT) {
        let keys = chunk
            .iter()
            .map(|(user_id, id)| {
                HashMap::from([
                    (
                        "userId".to_owned(),
                        AttributeValue::S((*user_id).to_owned()),
                    ),
                    ("rejectionId".to_owned(), AttributeValue::S(id.to_string())),
                ])
            })
            .collect();
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .projection_expression("rejectionId, #record")
            .expression_attribute_names("#record", SOURCE_RECORD_ID)
            .build()
            .map_err(|err| StoreError::Refused(err.to_string()))?;
        let output = client
            .batch_get_item()
            .request_items(table, request)
            .send()
            .await
            .map_err(|err| classify(&err))?;
        for item in output
            .responses
            .unwrap_or_default()
            .remove(table)
            .unwrap_or_default()
        {
            if let Some(AttributeValue::S(id)) = item.get("rejectionId") {
                let record = match item.get(SOURCE_RECORD_ID) {
                    Some(AttributeValue::S(record)) => Some(record.clone()),
                    _ => None,
                };
                found.insert(id.clone(), record);
            }
        }
        unprocessed.extend(rejection_ids(
            output
                .unprocessed_keys
                .and_then(|mut keys| keys.remove(table))
                .map(|rest| rest.keys)
                .unwrap_or_default()
                .iter(),
        ));
    }
    Ok(records
        .iter()
        .filter(|key| {
            let id = key.rejection_id.to_string();
            if unprocessed.contains(&id) {
                return false;
            }
            match found.get(&id) {
                None => true,
                Some(Some(record)) => *record != key.record_id.to_string(),
                Some(None) => false,
            }
        })
        .map(|key| key.record_id)
        .collect())
}

/// The `rejectionId`s of items or keys.
fn rejection_ids<'a>(
    items: impl Iterator<Item = &'a HashMap<String, AttributeValue>>,
) -> HashSet<String> {
    items
        .filter_map(|item| match item.get("rejectionId") {
            Some(AttributeValue::S(id)) => Some(id.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn rejection(row: Value) -> StoredRejection {
        let mut value = row;
        value["rejectionId"] = json!("r-1");
        value["reasonCode"] = json!("unknown_offer");
        value["reasonMessage"] = json!("co-new is not in the catalog");
        value["rejectedAt"] = json!("2024-06-01T00:00:00Z");
        value["sourceEventId"] = json!("e-1");
        value["sourceSequenceNumber"] = json!("100");
        StoredRejection::new(serde_dynamo::to_item(value).expect("item"))
    }

    fn row() -> Value {
        json!({"userId": "u1", "sortKey": "c+co-new", "offerId": "co-new", "rank": 2,
               "startDate": "2024-01-01T00:00:00Z", "expiryDate": "2099-01-01T00:00:00Z",
               "rules": {"minimumSpend": 3}})
    }

    #[test]
    fn the_original_row_is_the_item_without_the_rejection_attributes() {
        let retryable = rejection(row()).retryable(Utc::now()).expect("retryable");
        let expected: Item = serde_dynamo::to_item(row()).expect("item");
        assert_eq!(retryable.row(), &expected);
        assert_eq!(
            retryable.row()["rank"],
            AttributeValue::N("2".into()),
            "types kept"
        );
    }

    #[test]
    fn unreadable_incomplete_and_still_invalid_rows_are_skipped() {
        let mut unreadable = rejection(json!({"userId": "u1", "sortKey": "k"})).into_item();
        unreadable.insert(UNREADABLE_ROW.into(), AttributeValue::S("{\"M\"".into()));
        let unreadable = StoredRejection::new(unreadable);
        assert!(unreadable.is_unreadable());
        assert_eq!(unreadable.retryable(Utc::now()), Err(RetrySkip::Unreadable));

        let mut transaction =
            rejection(json!({"userId": "u1", "transactionId": "t-1"})).into_item();
        transaction.insert(
            REJECTION_SOURCE.into(),
            AttributeValue::S(TRANSACTION_SOURCE.into()),
        );
        assert_eq!(
            StoredRejection::new(transaction).retryable(Utc::now()),
            Err(RetrySkip::NotAPendingRow)
        );

        let mut incomplete = rejection(row()).into_item();
        incomplete.insert(DROPPED_ATTRIBUTES.into(), AttributeValue::L(Vec::new()));
        assert_eq!(
            StoredRejection::new(incomplete).retryable(Utc::now()),
            Err(RetrySkip::Incomplete)
        );

        let mut expired = row();
        expired["expiryDate"] = json!("2020-01-01T00:00:00Z");
        expired["startDate"] = json!("2019-01-01T00:00:00Z");
        match rejection(expired).retryable(Utc::now()) {
            Err(RetrySkip::StillInvalid(rejection)) => {
                assert_eq!(rejection.code, ReasonCode::Expired)
            }
            other => panic!("expected still invalid, got {other:?}"),
        }
    }
}
