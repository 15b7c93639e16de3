//! `LoyaltyTransactionsTable` (contract section 8): completed orders, written
//! by the ordering backend. The system only reads its stream (the challenge
//! progress function); this module writes transactions for the `offers
//! transactions add` command (demos, tests, backfills), the way the backend
//! would: one item per `transactionId`, never overwritten.

use super::errors::CallError;
use super::table::DynamoTable;
use crate::domain::dates::format_timestamp;
use crate::domain::Transaction;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

/// What a put made of one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutTransaction {
    Written,
    /// A transaction with this id is stored already: left as it was (a new
    /// INSERT would be a second order).
    AlreadyExists,
}

/// The transactions table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LoyaltyTransactionsTable {
    table: DynamoTable,
}

impl LoyaltyTransactionsTable {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            table: DynamoTable::new(client, name),
        }
    }

    pub fn name(&self) -> &str {
        self.table.name()
    }

    /// Writes the transaction unless its id is taken.
    pub async fn put(&self, transaction: &Transaction) -> Result<PutTransaction, CallError> {
        let doing = format!(
            "writing transaction {} to {}",
            transaction.transaction_id,
            self.name()
        );
        let result = self
            .table
            .client()
            .put_item()
            .table_name(self.name())
            .set_item(Some(transaction_item(transaction)))
            .condition_expression("attribute_not_exists(transactionId)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(PutTransaction::Written),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => {
                    Ok(PutTransaction::AlreadyExists)
                }
                _ => Err(CallError::new(doing, &err)),
            },
        }
    }
}

/// The item as the ordering backend writes it: `totalCost` a number,
/// `occurredAt` RFC 3339 UTC.
pub fn transaction_item(transaction: &Transaction) -> HashMap<String, AttributeValue> {
    let text = |value: &str| AttributeValue::S(value.to_owned());
    let mut item = HashMap::from([
        (
            "transactionId".to_owned(),
            text(&transaction.transaction_id),
        ),
        ("userId".to_owned(), text(transaction.user_id.as_str())),
        (
            "totalCost".to_owned(),
            AttributeValue::N(transaction.total_cost.to_string()),
        ),
        (
            "occurredAt".to_owned(),
            text(&format_timestamp(transaction.occurred_at)),
        ),
    ]);
    if let Some(store) = &transaction.store_id {
        item.insert("storeId".into(), text(store));
    }
    if let Some(mode) = &transaction.service_mode {
        item.insert("serviceMode".into(), text(mode));
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::dates::parse_timestamp;

    #[test]
    fn the_item_reads_back_as_the_same_transaction() {
        let transaction = Transaction {
            transaction_id: "t-1".into(),
            user_id: offers_domain::UserId::try_from("u").expect("a user id"),
            total_cost: 12.5,
            occurred_at: parse_timestamp("2024-06-01T10:00:00+02:00").unwrap_or_default(),
            store_id: Some("s-1".into()),
            service_mode: None,
        };
        let item = transaction_item(&transaction);
        assert_eq!(item["totalCost"], AttributeValue::N("12.5".into()));
        let json: serde_json::Map<String, serde_json::Value> =
            serde_dynamo::from_item(item).expect("json");
        assert_eq!(crate::domain::parse_transaction(&json), Ok(transaction));
    }
}
