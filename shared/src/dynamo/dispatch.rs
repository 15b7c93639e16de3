use super::items::attribute_size;
use super::offer_item::{key, new_offer_put, presence_check, ASSIGNMENT_ID};
use super::rejected::{raise_rejections_mark, rejections_absent, rejections_mark};
use super::transactions::{cancellation_error, cancelled, CONDITIONAL_CHECK_FAILED};
use super::{classify, offer_to_item, DynamoStore};
use crate::domain::dates::format_timestamp;
use crate::domain::limits::{quote, MAX_ITEM_BYTES, MAX_ROW_ATTRIBUTES};
use crate::domain::CampaignId;
use crate::domain::PersonalizedOffer;
use crate::error::StoreError;
use crate::ports::{
    BudgetedWrite, DispatchStore, PendingRef, PriorRejection, RejectedRow, RejectionKey, RowCopy,
    WriteOutcome,
};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// The attributes of a pending row (contract section 2) whose absence the
/// delete checks too: a newer row that adds one of them is a different row.
const CONTRACT_ATTRIBUTES: [&str; 14] = [
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
    "rules",
    "selection",
    ASSIGNMENT_ID,
];

impl DispatchStore for DynamoStore {
    async fn rejections_mark(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        rejections_mark(&self.client, self.tables.rejected()?).await
    }

    async fn raise_rejections_mark(
        &self,
        at_least: DateTime<Utc>,
        when_unset: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        raise_rejections_mark(&self.client, self.tables.rejected()?, at_least, when_unset).await
    }

    async fn rejections_absent(
        &self,
        records: &[RejectionKey<'_>],
    ) -> Result<HashSet<Uuid>, StoreError> {
        rejections_absent(&self.client, self.tables.rejected()?, records).await
    }

    async fn dispatch_offer(
        &self,
        offer: &PersonalizedOffer,
        pending: &PendingRef,
        prior: PriorRejection,
    ) -> Result<WriteOutcome, StoreError> {
        let put = || self.offer_put(offer, pending);
        // The common path, two items: no rejection of the record was found
        // a moment ago, and the pending row is still there as the stream saw
        // it. Whatever cancels it (the offer there, the row gone or changed)
        // is decided by the checked transaction below (docs/design.md,
        // "The common path").
        if prior == PriorRejection::NotFound {
            if let Some(delete) = pending_delete_if_present(self.tables.pending()?, pending)? {
                match OutcomeTransaction::new(put()?)
                    .with(Role::PendingDelete, delete)
                    .send(&self.client)
                    .await?
                {
                    None => return Ok(WriteOutcome::Written),
                    // A duplicate delivery: the record's offer exists, so its
                    // rejection does not (every path keeps one outcome per
                    // record), which is what the checked transaction would
                    // answer. Of an assignment the offer may be another row's:
                    // the checked transaction decides, and consumes the row.
                    Some(cancelled)
                        if cancelled.failed(Role::Outcome) && pending.assignment_id.is_none() =>
                    {
                        return Ok(WriteOutcome::AlreadyWritten)
                    }
                    Some(_) => {}
                }
            }
        }
        let put = put()?;
        // One outcome per record: no rejection of the same record may exist
        // (under the assignment's key, another record's rejection may).
        let other = no_own_rejection(self.tables.rejected()?, pending)?;
        let outcome = self.put_and_delete_pending(put, other, pending).await?;
        self.consume_if_assigned(outcome, WriteOutcome::AlreadyWritten, pending)
            .await
    }

    async fn dispatch_budgeted_offer(
        &self,
        offer: &PersonalizedOffer,
        pending: &PendingRef,
        prior: PriorRejection,
        campaign_id: &CampaignId,
    ) -> Result<BudgetedWrite, StoreError> {
        let written = self
            .budgeted_offer_write(offer, pending, prior, campaign_id)
            .await?;
        Ok(match written {
            BudgetedWrite::Done(outcome) => BudgetedWrite::Done(
                self.consume_if_assigned(outcome, WriteOutcome::AlreadyWritten, pending)
                    .await?,
            ),
            refused => refused,
        })
    }

    async fn reject_row(
        &self,
        rejection: &RejectedRow,
        pending: &PendingRef,
    ) -> Result<WriteOutcome, StoreError> {
        // One outcome per record: no offer of the same record may exist; of
        // an assignment, no offer of the assignment (a row whose assignment
        // became an offer is a duplicate, never a rejection).
        let other = presence_check(
            self.tables.loyalty_offers()?,
            key(&pending.user_id, pending.offer_id()),
            false,
        )?;
        let put = |item| {
            Put::builder()
                .table_name(self.tables.rejected()?)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(rejectionId)")
                .build()
                .map_err(|err| StoreError::Refused(err.to_string()))
        };
        let full = put(rejected_item(rejection, pending))?;
        let outcome = match self
            .put_and_delete_pending(full, other.clone(), pending)
            .await
        {
            // Should DynamoDB still refuse the row as it was, keep its text
            // instead: a rejection must always be stored, never retried.
            Err(StoreError::Refused(detail)) => {
                let summary = put(summary_item(rejection, pending, &detail))?;
                self.put_and_delete_pending(summary, other, pending).await
            }
            outcome => outcome,
        }?;
        match outcome {
            // The assignment's rejection is there (this record's, or another
            // row's of the assignment): the row is consumed as a duplicate.
            WriteOutcome::AlreadyWritten if pending.assignment_id.is_some() => {
                let rejection = rejection_exists(self.tables.rejected()?, pending)?;
                self.consume(outcome, rejection, pending).await
            }
            outcome => {
                self.consume_if_assigned(outcome, WriteOutcome::OtherOutcomeWritten, pending)
                    .await
            }
        }
    }
}

impl DynamoStore {
    /// The offer's put, conditional on its absence.
    fn offer_put(
        &self,
        offer: &PersonalizedOffer,
        pending: &PendingRef,
    ) -> Result<Put, StoreError> {
        let mut item = offer_to_item(offer)?;
        if let Some(assignment_id) = &pending.assignment_id {
            // Kept for support and audit: which assignment made the offer.
            item.insert(
                ASSIGNMENT_ID.to_owned(),
                AttributeValue::S(assignment_id.clone()),
            );
        }
        new_offer_put(self.tables.loyalty_offers()?, item)
    }

    /// The offer's transactions of `dispatch_offer` with the budget's use as
    /// one more item. Whatever else failed is read first: an offer already
    /// there (a replay after success) or the record's rejection is the
    /// record's outcome, never a budget refusal; the budget alone refuses.
    async fn budgeted_offer_write(
        &self,
        offer: &PersonalizedOffer,
        pending: &PendingRef,
        prior: PriorRejection,
        campaign_id: &str,
    ) -> Result<BudgetedWrite, StoreError> {
        let budget = self.offers_budget_use(campaign_id)?;
        // The common path, three items (see dispatch_offer).
        if prior == PriorRejection::NotFound {
            if let Some(delete) = pending_delete_if_present(self.tables.pending()?, pending)? {
                match OutcomeTransaction::new(self.offer_put(offer, pending)?)
                    .with(Role::PendingDelete, delete)
                    .with(Role::Budget, budget.clone())
                    .send(&self.client)
                    .await?
                {
                    None => return Ok(BudgetedWrite::Done(WriteOutcome::Written)),
                    Some(cancelled) if cancelled.failed(Role::Outcome) => {
                        if pending.assignment_id.is_none() {
                            return Ok(BudgetedWrite::Done(WriteOutcome::AlreadyWritten));
                        }
                    }
                    // No rejection a moment ago, no offer now: the budget's refusal.
                    Some(cancelled) if cancelled.failed(Role::Budget) => {
                        return Ok(BudgetedWrite::BudgetRefused)
                    }
                    Some(_) => {}
                }
            }
        }
        let other = no_own_rejection(self.tables.rejected()?, pending)?;
        let delete = pending_delete(self.tables.pending()?, pending)?;
        let with_delete = OutcomeTransaction::new(self.offer_put(offer, pending)?)
            .with(Role::PendingDelete, delete)
            .with(Role::OtherOutcomeAbsent, other.clone())
            .with(Role::Budget, budget.clone())
            .send(&self.client)
            .await?;
        let Some(cancelled) = with_delete else {
            return Ok(BudgetedWrite::Done(WriteOutcome::Written));
        };
        if let Some(decided) = budgeted_decision(&cancelled) {
            return Ok(decided);
        }
        // The pending row was replaced by a newer write: this record's
        // offer without touching the newer row.
        let alone = OutcomeTransaction::new(self.offer_put(offer, pending)?)
            .with(Role::OtherOutcomeAbsent, other)
            .with(Role::Budget, budget)
            .send(&self.client)
            .await?;
        Ok(match alone {
            None => BudgetedWrite::Done(WriteOutcome::WrittenPendingRowKept),
            Some(cancelled) => budgeted_decision(&cancelled)
                .unwrap_or(BudgetedWrite::Done(WriteOutcome::AlreadyWritten)),
        })
    }
}

/// What a cancelled budgeted transaction means, in order: the other outcome,
/// the offer already there, the budget; `None` when only the pending row's
/// delete failed.
fn budgeted_decision(cancelled: &Cancelled) -> Option<BudgetedWrite> {
    if cancelled.failed(Role::OtherOutcomeAbsent) {
        Some(BudgetedWrite::Done(WriteOutcome::OtherOutcomeWritten))
    } else if cancelled.failed(Role::Outcome) {
        Some(BudgetedWrite::Done(WriteOutcome::AlreadyWritten))
    } else if cancelled.failed(Role::Budget) {
        Some(BudgetedWrite::BudgetRefused)
    } else {
        None
    }
}

/// What each item of an outcome's transaction is for. Cancellation reasons
/// are read by role, not by position, so that an item added later (a
/// campaign's budget, say) changes no other item's reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The offer or rejection, put if absent.
    Outcome,
    /// The pending row, deleted only as the stream saw it.
    PendingDelete,
    /// The record's other outcome, checked to be absent.
    OtherOutcomeAbsent,
    /// The campaign's `usedOffers`, added to on condition of its limit.
    Budget,
}

/// One `TransactWriteItems` of an outcome: its put, and what goes with it.
struct OutcomeTransaction {
    items: Vec<(Role, TransactWriteItem)>,
}

/// A cancelled transaction's reasons, by role.
struct Cancelled(Vec<(Role, String)>);

impl Cancelled {
    /// Whether the condition of the item of `role` failed.
    fn failed(&self, role: Role) -> bool {
        self.0
            .iter()
            .any(|(of, reason)| *of == role && reason == CONDITIONAL_CHECK_FAILED)
    }

    /// A cancellation by something other than conditions (a refusal,
    /// throttling, a conflict) as the error it means.
    fn error(&self) -> StoreError {
        let reasons: Vec<String> = self.0.iter().map(|(_, reason)| reason.clone()).collect();
        cancellation_error(&reasons)
    }

    fn any_condition_failed(&self) -> bool {
        self.0
            .iter()
            .any(|(_, reason)| reason == CONDITIONAL_CHECK_FAILED)
    }
}

impl OutcomeTransaction {
    fn new(put: Put) -> Self {
        Self {
            items: vec![(Role::Outcome, TransactWriteItem::builder().put(put).build())],
        }
    }

    fn with(mut self, role: Role, item: impl Into<TransactItem>) -> Self {
        let item = match item.into() {
            TransactItem::Delete(delete) => TransactWriteItem::builder().delete(delete).build(),
            TransactItem::Check(check) => {
                TransactWriteItem::builder().condition_check(check).build()
            }
            TransactItem::Update(update) => TransactWriteItem::builder().update(update).build(),
        };
        self.items.push((role, item));
        self
    }

    /// `None` when it went through; the reasons when a condition cancelled
    /// it; any other cancellation or failure as its error.
    async fn send(self, client: &Client) -> Result<Option<Cancelled>, StoreError> {
        let (roles, items): (Vec<Role>, Vec<TransactWriteItem>) = self.items.into_iter().unzip();
        let result = client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let Some(reasons) = cancelled(result, classify)? else {
            return Ok(None);
        };
        let cancelled = Cancelled(roles.into_iter().zip(reasons).collect());
        match cancelled.any_condition_failed() {
            true => Ok(Some(cancelled)),
            false => Err(cancelled.error()),
        }
    }
}

/// The items an outcome's transaction may hold besides its put.
enum TransactItem {
    Delete(Delete),
    Check(ConditionCheck),
    Update(Update),
}

impl From<Update> for TransactItem {
    fn from(update: Update) -> Self {
        Self::Update(update)
    }
}

impl From<Delete> for TransactItem {
    fn from(delete: Delete) -> Self {
        Self::Delete(delete)
    }
}

impl From<ConditionCheck> for TransactItem {
    fn from(check: ConditionCheck) -> Self {
        Self::Check(check)
    }
}

impl DynamoStore {
    /// Writes `put` and deletes the pending row in one transaction, on the
    /// condition `other` (the record's other outcome is not stored). The
    /// put's condition makes a second delivery a no-op; the delete's
    /// condition keeps a newer pending row of the same key.
    async fn put_and_delete_pending(
        &self,
        put: Put,
        other: ConditionCheck,
        pending: &PendingRef,
    ) -> Result<WriteOutcome, StoreError> {
        let delete = pending_delete(self.tables.pending()?, pending)?;
        let cancelled = OutcomeTransaction::new(put.clone())
            .with(Role::PendingDelete, delete)
            .with(Role::OtherOutcomeAbsent, other.clone())
            .send(&self.client)
            .await?;
        match cancelled {
            None => Ok(WriteOutcome::Written),
            // The other outcome first: a record rejected earlier whose
            // assignment another row has since dispatched fails both
            // conditions, and its own outcome is the rejection.
            Some(reasons) if reasons.failed(Role::OtherOutcomeAbsent) => {
                Ok(WriteOutcome::OtherOutcomeWritten)
            }
            Some(reasons) if reasons.failed(Role::Outcome) => Ok(WriteOutcome::AlreadyWritten),
            Some(_) => self.put_alone(put, other).await,
        }
    }

    /// The pending row was replaced by a newer write: record this one's result
    /// without touching the newer row (still only if the other outcome is absent).
    async fn put_alone(&self, put: Put, other: ConditionCheck) -> Result<WriteOutcome, StoreError> {
        let cancelled = OutcomeTransaction::new(put)
            .with(Role::OtherOutcomeAbsent, other)
            .send(&self.client)
            .await?;
        match cancelled {
            None => Ok(WriteOutcome::WrittenPendingRowKept),
            Some(reasons) if reasons.failed(Role::OtherOutcomeAbsent) => {
                Ok(WriteOutcome::OtherOutcomeWritten)
            }
            Some(_) => Ok(WriteOutcome::AlreadyWritten),
        }
    }

    /// When `outcome` says that the offer of the row's assignment exists
    /// (`found`), the row is consumed: its assignment is done. The pending
    /// row is deleted as the stream saw it (a newer write of the key is
    /// kept: its own INSERT decides), on the condition that the offer
    /// still exists. Rows without an assignment are left as they are.
    async fn consume_if_assigned(
        &self,
        outcome: WriteOutcome,
        found: WriteOutcome,
        pending: &PendingRef,
    ) -> Result<WriteOutcome, StoreError> {
        if outcome != found || pending.assignment_id.is_none() {
            return Ok(outcome);
        }
        let offer_exists = presence_check(
            self.tables.loyalty_offers()?,
            key(&pending.user_id, pending.offer_id()),
            true,
        )?;
        self.consume(outcome, offer_exists, pending).await
    }

    /// Deletes the pending row as the stream saw it (a newer write of the key
    /// is kept: its own INSERT decides), on the condition that the
    /// assignment's outcome (`exists`) still exists.
    async fn consume(
        &self,
        outcome: WriteOutcome,
        exists: ConditionCheck,
        pending: &PendingRef,
    ) -> Result<WriteOutcome, StoreError> {
        let delete = pending_delete(self.tables.pending()?, pending)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().condition_check(exists).build())
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .send()
            .await;
        match cancelled(result, classify)? {
            None => Ok(outcome),
            Some(reasons) => match reasons.as_slice() {
                // Its ttl removed the offer (or an operator the rejection)
                // meanwhile: the row may end otherwise now, so the record is
                // retried.
                [check, ..] if check == CONDITIONAL_CHECK_FAILED => Err(StoreError::Conflict(
                    "the assignment's outcome was removed while its row was consumed".into(),
                )),
                [_, delete, ..] if delete == CONDITIONAL_CHECK_FAILED => Ok(outcome),
                _ => Err(cancellation_error(&reasons)),
            },
        }
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

/// The rejected table's key of a rejection.
fn rejection_key(user_id: &str, rejection_id: Uuid) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("userId".to_owned(), AttributeValue::S(user_id.to_owned())),
        (
            "rejectionId".to_owned(),
            AttributeValue::S(rejection_id.to_string()),
        ),
    ])
}

/// The rejection of the row's assignment exists.
fn rejection_exists(table: &str, pending: &PendingRef) -> Result<ConditionCheck, StoreError> {
    ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(rejection_key(
            &pending.user_id,
            *pending.offer_id().as_uuid(),
        )))
        .condition_expression("attribute_exists(rejectionId)")
        .build()
        .map_err(|err| StoreError::Refused(err.to_string()))
}

/// No rejection of this record: none under its key, or another record's
/// (of its assignment). A rejection without a record id is taken as its own.
fn no_own_rejection(table: &str, pending: &PendingRef) -> Result<ConditionCheck, StoreError> {
    ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(rejection_key(
            &pending.user_id,
            *pending.offer_id().as_uuid(),
        )))
        .condition_expression("attribute_not_exists(rejectionId) OR #record <> :record")
        .expression_attribute_names("#record", SOURCE_RECORD_ID)
        .expression_attribute_values(":record", AttributeValue::S(pending.record_id.to_string()))
        .build()
        .map_err(|err| StoreError::Refused(err.to_string()))
}

/// Deletes the pending row unless a newer write of the same key replaced it:
/// every attribute of the image must still be there with the same value
/// (maps and lists compared whole), and no attribute of the contract that the
/// image lacks may have appeared. A row already gone (deleted by an operator,
/// or by its TTL) does not stop the dispatch: every INSERT is an assignment
/// (contract section 4).
pub fn pending_delete(table: &str, pending: &PendingRef) -> Result<Delete, StoreError> {
    let delete = Delete::builder()
        .table_name(table)
        .set_key(Some(pending_key(pending)));
    let delete = match &pending.row {
        RowCopy::Image(image) => {
            let condition = ImageCondition::of(image);
            let expression = match condition.clauses.is_empty() {
                true => "attribute_not_exists(#user) OR attribute_exists(#user)".to_owned(),
                false => format!(
                    "attribute_not_exists(#user) OR ({})",
                    condition.clauses.join(" AND ")
                ),
            };
            condition.apply(delete, expression)
        }
        RowCopy::Unreadable(_) => delete,
    };
    delete
        .build()
        .map_err(|err| StoreError::Refused(err.to_string()))
}

/// The delete of the common path: only the pending row still there exactly
/// as the stream saw it (the same comparison as [`pending_delete`], without
/// its allowance for a row already gone). `None` for a row whose image could
/// not be read: it has nothing to compare.
pub fn pending_delete_if_present(
    table: &str,
    pending: &PendingRef,
) -> Result<Option<Delete>, StoreError> {
    let RowCopy::Image(image) = &pending.row else {
        return Ok(None);
    };
    let condition = ImageCondition::of(image);
    // An equality already fails on a missing row; `#user` only when there is none.
    let expression = match condition
        .clauses
        .iter()
        .any(|clause| clause.contains(" = "))
    {
        true => condition.clauses.join(" AND "),
        false => {
            let mut clauses = condition.clauses.clone();
            clauses.insert(0, "attribute_exists(#user)".to_owned());
            clauses.join(" AND ")
        }
    };
    let delete = Delete::builder()
        .table_name(table)
        .set_key(Some(pending_key(pending)));
    condition
        .apply(delete, expression)
        .build()
        .map(Some)
        .map_err(|err| StoreError::Refused(err.to_string()))
}

/// "The row is as the image shows it": each attribute of the image equal,
/// each attribute of the contract that the image lacks absent.
struct ImageCondition {
    clauses: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl ImageCondition {
    fn of(image: &serde_dynamo::Item) -> Self {
        let mut clauses = Vec::new();
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut compared: Vec<&String> = image
            .keys()
            .filter(|name| *name != "userId" && *name != "sortKey")
            .collect();
        // A row over the attribute bound is rejected; its condition stays
        // within the expression's size limit all the same.
        compared.sort();
        compared.truncate(MAX_ROW_ATTRIBUTES);
        let absent = CONTRACT_ATTRIBUTES
            .iter()
            .filter(|name| !image.contains_key(**name));
        for (index, name) in compared.iter().map(|name| name.as_str()).enumerate() {
            let (placeholder, value) = (format!(":v{index}"), format!("#v{index}"));
            clauses.push(format!("{value} = {placeholder}"));
            names.insert(value, name.to_owned());
            if let Some(attribute) = image.get(name) {
                values.insert(placeholder, AttributeValue::from(attribute.clone()));
            }
        }
        for (index, name) in absent.enumerate() {
            let placeholder = format!("#n{index}");
            clauses.push(format!("attribute_not_exists({placeholder})"));
            names.insert(placeholder, (*name).to_owned());
        }
        names.insert("#user".to_owned(), "userId".to_owned());
        Self {
            clauses,
            names,
            values,
        }
    }

    fn apply(
        self,
        delete: aws_sdk_dynamodb::types::builders::DeleteBuilder,
        expression: String,
    ) -> aws_sdk_dynamodb::types::builders::DeleteBuilder {
        let mut names = self.names;
        if !expression.contains("#user") {
            names.remove("#user");
        }
        delete
            .condition_expression(expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values((!self.values.is_empty()).then_some(self.values))
    }
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
/// A pending row's rejection names the stream record it rejected: the rows
/// of one assignment share a rejection, and a record finds its own by it.
pub const SOURCE_RECORD_ID: &str = "sourceRecordId";
/// Holds the raw stream image of a row that could not be read as attributes
/// (or, should DynamoDB refuse the row as it was, the start of its text).
pub const UNREADABLE_ROW: &str = "unreadableRow";
/// Names the row's attributes left out so that the rejection fits DynamoDB's
/// item limit (a row near 400 KB plus the reason would not).
pub const DROPPED_ATTRIBUTES: &str = "droppedAttributes";
/// How much of a row's text a summary keeps.
const SUMMARY_ROW_BYTES: usize = 64 * 1_024;
/// Room kept under the item limit for the list of dropped attributes.
const DROPPED_LIST_ROOM: usize = 8 * 1_024;

/// The rejected row: its attributes as they were, plus why and when. A row
/// so large that the whole would not fit loses its largest attributes,
/// named in [`DROPPED_ATTRIBUTES`].
pub(super) fn rejected_item(
    rejection: &RejectedRow,
    pending: &PendingRef,
) -> HashMap<String, AttributeValue> {
    let mut item: HashMap<String, AttributeValue> = match &pending.row {
        RowCopy::Image(image) => image.clone().into(),
        RowCopy::Unreadable(text) => HashMap::from([(
            UNREADABLE_ROW.to_owned(),
            AttributeValue::S(prefix(text, SUMMARY_ROW_BYTES).to_owned()),
        )]),
    };
    item.extend(pending_key(pending));
    item.extend(rejection_attributes(rejection, &rejection.message));
    fit_item(&mut item);
    item
}

/// The fallback when DynamoDB refused the row as it was: the keys, the
/// reason, and the start of the row's text.
fn summary_item(
    rejection: &RejectedRow,
    pending: &PendingRef,
    refusal: &str,
) -> HashMap<String, AttributeValue> {
    let text = match &pending.row {
        RowCopy::Image(image) => serde_json::to_string(image).unwrap_or_default(),
        RowCopy::Unreadable(text) => text.clone(),
    };
    let message = crate::domain::limits::bounded_message(format!(
        "{}; DynamoDB refused the row as it was ({}), its text is kept in {UNREADABLE_ROW}",
        rejection.message,
        quote(refusal)
    ));
    let mut item = pending_key(pending);
    item.extend(rejection_attributes(rejection, &message));
    item.insert(
        UNREADABLE_ROW.to_owned(),
        AttributeValue::S(prefix(&text, SUMMARY_ROW_BYTES).to_owned()),
    );
    item
}

fn rejection_attributes(
    rejection: &RejectedRow,
    message: &str,
) -> impl Iterator<Item = (String, AttributeValue)> {
    let values = [
        rejection.rejection_id.to_string(),
        rejection.code.as_str().to_owned(),
        message.to_owned(),
        format_timestamp(rejection.rejected_at),
        rejection.event_id.clone(),
        rejection.sequence_number.clone(),
    ];
    REJECTION_ATTRIBUTES
        .iter()
        .zip(values)
        .chain([(&SOURCE_RECORD_ID, rejection.record_id.to_string())])
        .map(|(name, value)| ((*name).to_owned(), AttributeValue::S(value)))
}

/// Drops the largest of the row's own attributes until the item fits.
fn fit_item(item: &mut HashMap<String, AttributeValue>) {
    let size =
        |name: &str, value: &AttributeValue| name.len().saturating_add(attribute_size(value));
    let mut total = item.iter().fold(0usize, |total, (name, value)| {
        total.saturating_add(size(name, value))
    });
    if total <= MAX_ITEM_BYTES - DROPPED_LIST_ROOM {
        return;
    }
    let mut droppable: Vec<(usize, String)> = item
        .iter()
        .filter(|(name, _)| {
            !matches!(name.as_str(), "userId" | "sortKey" | SOURCE_RECORD_ID)
                && !REJECTION_ATTRIBUTES.contains(&name.as_str())
        })
        .map(|(name, value)| (size(name, value), name.clone()))
        .collect();
    droppable.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut dropped = Vec::new();
    for (bytes, name) in droppable {
        if total <= MAX_ITEM_BYTES - DROPPED_LIST_ROOM {
            break;
        }
        item.remove(&name);
        total = total.saturating_sub(bytes);
        dropped.push(AttributeValue::S(quote(&name)));
    }
    item.insert(DROPPED_ATTRIBUTES.to_owned(), AttributeValue::L(dropped));
}

/// The longest start of `text` within `max_bytes`, cut at a character boundary.
pub(super) fn prefix(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut cut = max_bytes;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ReasonCode;
    use chrono::Utc;
    use uuid::Uuid;

    fn rejection() -> RejectedRow {
        RejectedRow {
            rejection_id: Uuid::nil(),
            record_id: Uuid::nil(),
            code: ReasonCode::InvalidRow,
            message: "m".repeat(1_000),
            rejected_at: Utc::now(),
            event_id: "e".into(),
            sequence_number: "1".into(),
        }
    }

    fn pending(attributes: Vec<(&str, AttributeValue)>) -> PendingRef {
        let mut image: HashMap<String, AttributeValue> = attributes
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        image.insert("userId".into(), AttributeValue::S("u".into()));
        image.insert("sortKey".into(), AttributeValue::S("k".into()));
        PendingRef {
            user_id: "u".into(),
            sort_key: "k".into(),
            row: RowCopy::Image(image.into()),
            record_id: Uuid::nil(),
            assignment_id: None,
        }
    }

    fn size(item: &HashMap<String, AttributeValue>) -> usize {
        item.iter()
            .map(|(name, value)| name.len() + attribute_size(value))
            .sum()
    }

    #[test]
    fn a_row_near_the_item_limit_is_kept_without_its_largest_attribute() {
        let big = "x".repeat(MAX_ITEM_BYTES - 200);
        let row = pending(vec![
            ("offerId", AttributeValue::S("co-1".into())),
            ("note", AttributeValue::S(big)),
        ]);
        let item = rejected_item(&rejection(), &row);
        assert!(size(&item) <= MAX_ITEM_BYTES, "{}", size(&item));
        assert!(!item.contains_key("note"));
        assert_eq!(item["offerId"], AttributeValue::S("co-1".into()));
        assert_eq!(
            item[DROPPED_ATTRIBUTES],
            AttributeValue::L(vec![AttributeValue::S("\"note\"".into())])
        );
    }

    #[test]
    fn a_row_that_fits_is_kept_whole() {
        let row = pending(vec![("offerId", AttributeValue::S("co-1".into()))]);
        let item = rejected_item(&rejection(), &row);
        assert!(!item.contains_key(DROPPED_ATTRIBUTES));
        assert_eq!(item["reasonCode"], AttributeValue::S("invalid_row".into()));
        let summary = summary_item(&rejection(), &row, "Item size has exceeded");
        let AttributeValue::S(text) = &summary[UNREADABLE_ROW] else {
            panic!("text")
        };
        assert!(text.contains("co-1"));
        assert!(size(&summary) < 8 * 1_024);
    }

    #[test]
    fn the_delete_compares_every_attribute_and_the_contracts_absent_ones() {
        let row = pending(vec![
            ("offerId", AttributeValue::S("co-1".into())),
            (
                "rules",
                AttributeValue::M(HashMap::from([("a".into(), AttributeValue::N("1".into()))])),
            ),
        ]);
        let delete = pending_delete("pending", &row).expect("delete");
        let condition = delete.condition_expression().unwrap_or_default();
        let names = delete
            .expression_attribute_names()
            .cloned()
            .unwrap_or_default();
        let values = delete
            .expression_attribute_values()
            .cloned()
            .unwrap_or_default();
        assert_eq!(values.len(), 2, "offerId and rules compared: {condition}");
        assert!(values.values().any(|v| matches!(v, AttributeValue::M(_))));
        for absent in ["campaignId", "templateId", "challengeStatus", "selection"] {
            assert!(names.values().any(|name| name == absent), "{absent}");
        }
        assert!(condition.starts_with("attribute_not_exists(#user) OR ("));
    }

    #[test]
    fn the_common_paths_delete_requires_the_row_as_the_image_shows_it() {
        let row = pending(vec![("offerId", AttributeValue::S("co-1".into()))]);
        let full = pending_delete("pending", &row).expect("delete");
        let present = pending_delete_if_present("pending", &row)
            .expect("delete")
            .expect("an image");
        let condition = present.condition_expression().unwrap_or_default();
        assert!(
            !condition.contains("OR"),
            "no allowance for a gone row: {condition}"
        );
        assert!(condition.contains("#v0 = :v0"), "{condition}");
        assert_eq!(
            full.condition_expression()
                .unwrap_or_default()
                .strip_prefix("attribute_not_exists(#user) OR (")
                .and_then(|rest| rest.strip_suffix(')')),
            Some(condition),
            "the same comparison as the checked path's"
        );
        let names = present
            .expression_attribute_names()
            .cloned()
            .unwrap_or_default();
        assert!(!names.contains_key("#user"), "unused names are refused");

        let mut unreadable = row.clone();
        unreadable.row = RowCopy::Unreadable("{".into());
        assert!(pending_delete_if_present("pending", &unreadable)
            .expect("no delete")
            .is_none());
    }
}
