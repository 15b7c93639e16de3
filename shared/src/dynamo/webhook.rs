//! The campaign webhook's writes: its idempotency records
//! (`WebhookDeliveriesTable`, key `deliveryId`) and the pending rows it
//! puts with BatchWriteItem (the batch writer `offers assign` uses).
//!
//! A record: `deliveryId`, `fingerprint`, `state` (`inProgress` | `done`),
//! `claimToken`, `leaseUntil` (epoch ms), `claimedAt`, `receipt` (the answer's
//! JSON text), `writtenRows` (NS, positions written by an interrupted
//! attempt), `completedAt`, `ttl` (epoch s).
//!
//! A used signature is an item of the same table: `deliveryId` is
//! `signature <MAC hex>` (a space: never a delivery id, which is printable
//! ASCII without spaces), `signatureOf` the delivery it is tied to, `ttl` a
//! little after the signature's `t` leaves the 300 s window. It is put in one
//! transaction with the delivery's claim, conditioned on being new or tied
//! to the same delivery.

use super::batch_write::{write_chunk, Backoff, Chunks, LineItem};
use super::transactions::{cancellation_error, cancelled, condition_failed};
use super::{classify, DynamoStore, PendingTable, PENDING_KEY};
use crate::domain::dates::format_timestamp;
use crate::domain::webhook::WebhookReceipt;
use crate::error::StoreError;
use crate::ports::{
    ClaimOutcome, DeliveryClaim, DeliveryRecord, DeliveryState, RowsWritten, SignatureClaim,
    SignatureUse, WebhookStore,
};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use uuid::Uuid;

/// Chunks of 25 rows in flight at once: a 500-row delivery is 20 chunks.
pub const ROW_WRITE_CONCURRENCY: usize = 10;

const IN_PROGRESS: &str = "inProgress";
const DONE: &str = "done";

type Item = HashMap<String, AttributeValue>;

fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn n(number: impl ToString) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

/// The key of a used signature's item (see the module's notes).
fn signature_key(mac_hex: &str) -> String {
    format!("signature {mac_hex}")
}

/// New, or tied to the same delivery already.
const SIGNATURE_FREE: &str = "attribute_not_exists(deliveryId) OR signatureOf = :delivery";

fn signature_put(table: &str, claim: &SignatureClaim) -> Result<Put, StoreError> {
    Put::builder()
        .table_name(table)
        .item("deliveryId", s(signature_key(&claim.mac_hex)))
        .item("signatureOf", s(&claim.delivery_id))
        .item("ttl", n(claim.expires_at.timestamp()))
        .condition_expression(SIGNATURE_FREE)
        .expression_attribute_values(":delivery", s(&claim.delivery_id))
        .build()
        .map_err(|err| StoreError::Refused(err.to_string()))
}

/// Claims raced by other requests' transactions on the same items
/// (`TransactionConflict`) are tried again: a few times, shortly.
fn claim_backoff() -> Backoff {
    Backoff {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(400),
        max_attempts: 6,
    }
}

/// The backoff of the rows' batch writes: short, since a sender is waiting.
fn row_backoff() -> Backoff {
    Backoff {
        base: Duration::from_millis(25),
        cap: Duration::from_millis(500),
        max_attempts: 6,
    }
}

fn record_from_item(item: &Item) -> Result<DeliveryRecord, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("webhook delivery record: {what}"));
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(text)) => Ok(text.as_str()),
        _ => Err(corrupt(name)),
    };
    let number = |name: &str| match item.get(name) {
        Some(AttributeValue::N(number)) => number.parse::<i64>().map_err(|_| corrupt(name)),
        _ => Err(corrupt(name)),
    };
    let receipt: WebhookReceipt =
        serde_json::from_str(text("receipt")?).map_err(|_| corrupt("receipt"))?;
    let state = match text("state")? {
        DONE => DeliveryState::Done,
        IN_PROGRESS => DeliveryState::InProgress {
            token: Uuid::parse_str(text("claimToken")?).map_err(|_| corrupt("claimToken"))?,
            lease_until: DateTime::<Utc>::from_timestamp_millis(number("leaseUntil")?)
                .ok_or_else(|| corrupt("leaseUntil"))?,
        },
        _ => return Err(corrupt("state")),
    };
    let written = match item.get("writtenRows") {
        Some(AttributeValue::Ns(numbers)) => numbers
            .iter()
            .map(|number| number.parse::<usize>().map_err(|_| corrupt("writtenRows")))
            .collect::<Result<BTreeSet<usize>, _>>()?,
        _ => BTreeSet::new(),
    };
    Ok(DeliveryRecord {
        delivery_id: text("deliveryId")?.to_owned(),
        fingerprint: text("fingerprint")?.to_owned(),
        state,
        receipt,
        written,
    })
}

fn receipt_text(receipt: &WebhookReceipt) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(receipt)
        .map(s)
        .map_err(|err| StoreError::Refused(err.to_string()))
}

impl DynamoStore {
    fn deliveries(&self) -> Result<&str, StoreError> {
        self.tables.webhook_deliveries()
    }

    /// The record after a failed condition: from the failure, else read.
    async fn held(
        &self,
        item: Option<&Item>,
        delivery_id: &str,
    ) -> Result<ClaimOutcome, StoreError> {
        let record = match item {
            Some(item) if !item.is_empty() => Some(record_from_item(item)?),
            _ => self.find_delivery(delivery_id).await?,
        };
        match record {
            Some(record) => Ok(ClaimOutcome::Held(Box::new(record))),
            None => Err(StoreError::Conflict(format!(
                "delivery {delivery_id} was there and is gone; retry"
            ))),
        }
    }

    /// A conditional update of the holder's record.
    async fn update_held(
        &self,
        delivery_id: &str,
        token: Uuid,
        update: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<(), StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(self.deliveries()?)
            .key("deliveryId", s(delivery_id))
            .update_expression(update)
            .condition_expression("claimToken = :token AND #state = :inProgress")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":token", s(token.to_string()))
            .expression_attribute_values(":inProgress", s(IN_PROGRESS));
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Err(StoreError::Conflict(format!(
                    "delivery {delivery_id} is no longer held by this request"
                )))
            }
            Err(err) => Err(classify(&err)),
        }
    }
}

/// What became of one chunk's rows, by position.
struct ChunkWritten {
    written: Vec<usize>,
    refused: Vec<(usize, String)>,
    /// Why some rows were left unwritten (transient).
    failed: Option<String>,
}

/// One chunk through the shared batch writer. If DynamoDB refuses the
/// chunk, each row is written alone, so that a refusal concerns the row
/// that causes it only (a rejection, never a retry).
async fn write_rows_chunk(
    table: &PendingTable,
    chunk: Vec<LineItem>,
    backoff: &Backoff,
) -> ChunkWritten {
    let position = |line: u64| usize::try_from(line).unwrap_or(usize::MAX);
    let lines: Vec<u64> = chunk.iter().map(|entry| entry.line).collect();
    let report = write_chunk(table, chunk.clone(), &PENDING_KEY, backoff).await;
    let mut written = ChunkWritten {
        written: Vec::new(),
        refused: Vec::new(),
        failed: None,
    };
    if !report.refused {
        let failed: BTreeSet<u64> = report.failed.iter().map(|(line, _)| *line).collect();
        written.written = lines
            .into_iter()
            .filter(|line| !failed.contains(line))
            .map(position)
            .collect();
        written.failed = report.stopped;
        return written;
    }
    for entry in chunk {
        let line = entry.line;
        let alone = write_chunk(table, vec![entry], &PENDING_KEY, backoff).await;
        match (alone.written, alone.refused) {
            (1, _) => written.written.push(position(line)),
            (_, true) => written
                .refused
                .push((position(line), alone.stopped.unwrap_or_default())),
            _ => written.failed = alone.stopped.or(written.failed),
        }
    }
    written
}

impl WebhookStore for DynamoStore {
    async fn claim_delivery(&self, claim: &DeliveryClaim) -> Result<ClaimOutcome, StoreError> {
        let table = self.deliveries()?;
        let item: Item = HashMap::from([
            ("deliveryId".to_owned(), s(&claim.delivery_id)),
            ("fingerprint".to_owned(), s(&claim.fingerprint)),
            ("state".to_owned(), s(IN_PROGRESS)),
            ("claimToken".to_owned(), s(claim.token.to_string())),
            (
                "leaseUntil".to_owned(),
                n(claim.lease_until.timestamp_millis()),
            ),
            (
                "claimedAt".to_owned(),
                s(format_timestamp(claim.claimed_at)),
            ),
            ("receipt".to_owned(), receipt_text(&claim.receipt)?),
            ("ttl".to_owned(), n(claim.expires_at.timestamp())),
        ]);
        let delivery = Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(deliveryId)")
            .build()
            .map_err(|err| StoreError::Refused(err.to_string()))?;
        let signature = signature_put(table, &claim.signature)?;
        let backoff = claim_backoff();
        let mut rng = fastrand::Rng::new();
        let mut retry = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(delivery.clone()).build())
                .transact_items(TransactWriteItem::builder().put(signature.clone()).build())
                .send()
                .await;
            let Some(reasons) = cancelled(result, classify)? else {
                return Ok(ClaimOutcome::Claimed);
            };
            // A used signature first: the request is refused whatever the delivery.
            if condition_failed(&reasons, 1) {
                return Ok(ClaimOutcome::SignatureReused);
            }
            if condition_failed(&reasons, 0) {
                return self.held(None, &claim.delivery_id).await;
            }
            let error = cancellation_error(&reasons);
            retry += 1;
            match backoff.pause(retry, &mut rng) {
                Some(pause) if error.is_transient() => tokio::time::sleep(pause).await,
                _ => return Err(error),
            }
        }
    }

    async fn claim_signature(&self, claim: &SignatureClaim) -> Result<SignatureUse, StoreError> {
        let put = signature_put(self.deliveries()?, claim)?;
        let result = self
            .client
            .put_item()
            .table_name(put.table_name())
            .set_item(Some(put.item().clone()))
            .condition_expression(SIGNATURE_FREE)
            .expression_attribute_values(":delivery", s(&claim.delivery_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(SignatureUse::Claimed),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(SignatureUse::Reused),
                _ => Err(classify(&err)),
            },
        }
    }

    async fn take_over(
        &self,
        claim: &DeliveryClaim,
        previous: Uuid,
    ) -> Result<ClaimOutcome, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(self.deliveries()?)
            .key("deliveryId", s(&claim.delivery_id))
            .update_expression("SET claimToken = :token, leaseUntil = :lease, claimedAt = :at")
            .condition_expression(
                "claimToken = :previous AND #state = :inProgress AND leaseUntil <= :now",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":token", s(claim.token.to_string()))
            .expression_attribute_values(":lease", n(claim.lease_until.timestamp_millis()))
            .expression_attribute_values(":at", s(format_timestamp(claim.claimed_at)))
            .expression_attribute_values(":previous", s(previous.to_string()))
            .expression_attribute_values(":inProgress", s(IN_PROGRESS))
            .expression_attribute_values(":now", n(claim.claimed_at.timestamp_millis()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(ClaimOutcome::Claimed),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    self.held(failed.item.as_ref(), &claim.delivery_id).await
                }
                _ => Err(classify(&err)),
            },
        }
    }

    async fn find_delivery(&self, delivery_id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(self.deliveries()?)
            .key("deliveryId", s(delivery_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| classify(&err))?;
        output.item.as_ref().map(record_from_item).transpose()
    }

    async fn write_rows(&self, rows: Vec<(usize, Map<String, Value>)>) -> RowsWritten {
        let table = match self.tables.pending() {
            Ok(name) => PendingTable::new(self.client.clone(), name),
            Err(error) => {
                return RowsWritten {
                    failed: Some(error),
                    ..RowsWritten::default()
                }
            }
        };
        let mut outcome = RowsWritten::default();
        let mut items = Vec::with_capacity(rows.len());
        for (index, row) in rows {
            match serde_dynamo::to_item(&row) {
                Ok(item) => items.push(LineItem {
                    line: index as u64,
                    item,
                }),
                Err(err) => outcome.refused.push((index, err.to_string())),
            }
        }
        let backoff = row_backoff();
        let chunks: Vec<ChunkWritten> = futures::stream::iter(Chunks::new(items.into_iter()))
            .map(|chunk| write_rows_chunk(&table, chunk, &backoff))
            .buffer_unordered(ROW_WRITE_CONCURRENCY)
            .collect()
            .await;
        for chunk in chunks {
            outcome.refused.extend(chunk.refused);
            if let Some(why) = chunk.failed {
                outcome.failed.get_or_insert(StoreError::Unavailable(why));
            }
            outcome.written.extend(chunk.written);
        }
        outcome.refused.sort();
        outcome
    }

    async fn complete_delivery(
        &self,
        delivery_id: &str,
        token: Uuid,
        receipt: &WebhookReceipt,
    ) -> Result<(), StoreError> {
        self.update_held(
            delivery_id,
            token,
            "SET #state = :done, receipt = :receipt, completedAt = :at",
            vec![
                (":done", s(DONE)),
                (":receipt", receipt_text(receipt)?),
                (":at", s(format_timestamp(Utc::now()))),
            ],
        )
        .await
    }

    async fn release_delivery(
        &self,
        delivery_id: &str,
        token: Uuid,
        written: &BTreeSet<usize>,
    ) -> Result<(), StoreError> {
        let (update, mut values) = ("SET leaseUntil = :zero", vec![(":zero", n(0))]);
        let update = if written.is_empty() {
            update.to_owned()
        } else {
            values.push((
                ":written",
                AttributeValue::Ns(written.iter().map(ToString::to_string).collect()),
            ));
            format!("{update} ADD writtenRows :written")
        };
        self.update_held(delivery_id, token, &update, values).await
    }
}
