use super::{classify, offer_to_item, DynamoStore};
use crate::domain::dates::format_timestamp;
use crate::domain::PersonalizedOffer;
use crate::error::StoreError;
use crate::ports::{DispatchStore, PendingRef, RejectedRow, RowCopy, WriteOutcome};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use std::collections::HashMap;

/// Pending-row attributes compared before the delete, so that a record never
/// deletes a newer write of the same key (contract section 2 lists them).
const COMPARED_ATTRIBUTES: [&str; 11] = [
    "offerId",
    "campaignId",
    "templateId",
    "startDate",
    "expiryDate",
    "rank",
    "ttl",
    "challengeType",
    "challengeStatus",
    "frequency",
    "taskId",
];

const CONDITIONAL_CHECK_FAILED: &str = "ConditionalCheckFailed";

impl DispatchStore for DynamoStore {
    async fn dispatch_offer(
        &self,
        offer: &PersonalizedOffer,
        pending: &PendingRef,
    ) -> Result<WriteOutcome, StoreError> {
        let put = Put::builder()
            .table_name(&self.tables.loyalty_offers)
            .set_item(Some(offer_to_item(offer)?))
            .condition_expression("attribute_not_exists(personalizedOfferId)")
            .build()
            .map_err(|err| StoreError::Refused(err.to_string()))?;
        self.put_and_delete_pending(put, pending).await
    }

    async fn reject_row(
        &self,
        rejection: &RejectedRow,
        pending: &PendingRef,
    ) -> Result<WriteOutcome, StoreError> {
        let put = Put::builder()
            .table_name(&self.tables.rejected)
            .set_item(Some(rejected_item(rejection, pending)))
            .condition_expression("attribute_not_exists(rejectionId)")
            .build()
            .map_err(|err| StoreError::Refused(err.to_string()))?;
        self.put_and_delete_pending(put, pending).await
    }
}

impl DynamoStore {
    /// Writes `put` and deletes the pending row in one transaction. The put's
    /// condition makes a second delivery a no-op; the delete's condition keeps
    /// a newer pending row of the same key.
    async fn put_and_delete_pending(
        &self,
        put: Put,
        pending: &PendingRef,
    ) -> Result<WriteOutcome, StoreError> {
        let delete = pending_delete(&self.tables.pending, pending)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put.clone()).build())
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(WriteOutcome::Written),
            Err(err) => err,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            err.as_service_error()
        else {
            return Err(classify(&err));
        };
        let reasons = cancellation_codes(cancelled);
        match (
            reasons.first().map(String::as_str),
            reasons.get(1).map(String::as_str),
        ) {
            (Some(CONDITIONAL_CHECK_FAILED), _) => Ok(WriteOutcome::AlreadyWritten),
            (Some("None"), Some(CONDITIONAL_CHECK_FAILED)) => self.put_alone(put).await,
            _ if reasons
                .iter()
                .any(|code| code.contains("Throttl") || code.contains("ThroughputExceeded")) =>
            {
                Err(StoreError::Throttled(format!(
                    "transaction cancelled: {reasons:?}"
                )))
            }
            _ if reasons.iter().any(|code| code == "TransactionConflict") => Err(
                StoreError::Conflict(format!("transaction cancelled: {reasons:?}")),
            ),
            _ => Err(StoreError::Unavailable(format!(
                "transaction cancelled: {reasons:?}"
            ))),
        }
    }

    /// The pending row was replaced by a newer write: record this one's result
    /// without touching the newer row.
    async fn put_alone(&self, put: Put) -> Result<WriteOutcome, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(put.table_name())
            .set_item(Some(put.item().clone()))
            .set_condition_expression(put.condition_expression().map(str::to_owned))
            .send()
            .await;
        match result {
            Ok(_) => Ok(WriteOutcome::WrittenPendingRowKept),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(WriteOutcome::AlreadyWritten)
            }
            Err(err) => Err(classify(&err)),
        }
    }
}

/// Cancellation reason codes in item order. DynamoDB also spells them in the
/// message (`[ConditionalCheckFailed, None]`), used when the list is absent.
pub fn cancellation_codes(
    cancelled: &aws_sdk_dynamodb::types::error::TransactionCanceledException,
) -> Vec<String> {
    let listed: Vec<String> = cancelled
        .cancellation_reasons()
        .iter()
        .map(|reason| reason.code().unwrap_or("None").to_owned())
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    let message = cancelled.message().unwrap_or_default();
    match (message.rfind('['), message.rfind(']')) {
        (Some(open), Some(close)) if open < close => message[open + 1..close]
            .split(',')
            .map(|code| code.trim().to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

fn pending_key(pending: &PendingRef) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "userId".to_owned(),
            AttributeValue::S(pending.user_id.clone()),
        ),
        (
            "sortKey".to_owned(),
            AttributeValue::S(pending.sort_key.clone()),
        ),
    ])
}

/// Deletes the pending row unless a newer write of the same key replaced it.
/// A row already gone (deleted by an operator, or by its TTL) does not stop
/// the dispatch: every INSERT is an assignment (contract section 4).
pub fn pending_delete(table: &str, pending: &PendingRef) -> Result<Delete, StoreError> {
    let mut delete = Delete::builder()
        .table_name(table)
        .set_key(Some(pending_key(pending)));
    if let RowCopy::Image(image) = &pending.row {
        let mut clauses = Vec::new();
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        for (index, attribute) in COMPARED_ATTRIBUTES.iter().enumerate() {
            let name = format!("#a{index}");
            match image.get(*attribute).cloned().map(AttributeValue::from) {
                Some(
                    value @ (AttributeValue::S(_) | AttributeValue::N(_) | AttributeValue::Bool(_)),
                ) => {
                    let placeholder = format!(":a{index}");
                    clauses.push(format!("{name} = {placeholder}"));
                    values.insert(placeholder, value);
                }
                Some(_) => continue,
                None => clauses.push(format!("attribute_not_exists({name})")),
            }
            names.insert(name, (*attribute).to_owned());
        }
        names.insert("#user".to_owned(), "userId".to_owned());
        delete = delete
            .condition_expression(format!(
                "attribute_not_exists(#user) OR ({})",
                clauses.join(" AND ")
            ))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values));
    }
    delete
        .build()
        .map_err(|err| StoreError::Refused(err.to_string()))
}

/// What a rejected item holds besides the row's own attributes, in the
/// order `rejected_item` writes them (the CLI reads and strips the same).
pub const REJECTION_ATTRIBUTES: [&str; 6] = [
    "rejectionId",
    "reasonCode",
    "reasonMessage",
    "rejectedAt",
    "sourceEventId",
    "sourceSequenceNumber",
];
/// Holds the raw stream image of a row that could not be read as attributes.
pub const UNREADABLE_ROW: &str = "unreadableRow";

/// The rejected row: its attributes as they were, plus why and when.
fn rejected_item(rejection: &RejectedRow, pending: &PendingRef) -> HashMap<String, AttributeValue> {
    let mut item: HashMap<String, AttributeValue> = match &pending.row {
        RowCopy::Image(image) => image.clone().into(),
        RowCopy::Unreadable(text) => {
            HashMap::from([(UNREADABLE_ROW.to_owned(), AttributeValue::S(text.clone()))])
        }
    };
    item.extend(pending_key(pending));
    let values = [
        rejection.rejection_id.to_string(),
        rejection.code.as_str().to_owned(),
        rejection.message.clone(),
        format_timestamp(rejection.rejected_at),
        rejection.event_id.clone(),
        rejection.sequence_number.clone(),
    ];
    item.extend(
        REJECTION_ATTRIBUTES
            .iter()
            .zip(values)
            .map(|(name, value)| ((*name).to_owned(), AttributeValue::S(value))),
    );
    item
}
