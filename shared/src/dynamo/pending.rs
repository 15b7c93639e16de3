//! The pending table as operators handle it: rows put in batches, the keys
//! of a user's rows or of all of them, a row made a new INSERT again
//! (redrive), the count of its rows. The dispatcher's delete of a pending
//! row is `pending_delete` (it is part of the dispatch transaction).

use super::errors::CallError;
use super::items::{text_of, Item};
use super::table::{paged, with_retries, DynamoTable};
use crate::error::StoreError;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use futures::stream::{BoxStream, StreamExt};
use std::collections::HashMap;
use std::time::Duration;

/// The pending table's key.
pub const PENDING_KEY: [&str; 2] = ["userId", "sortKey"];

/// A pending row's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PendingKey {
    pub user_id: String,
    pub sort_key: String,
}

impl PendingKey {
    /// The key of an item that has one (text `userId` and `sortKey`).
    fn of(item: &Item) -> Option<Self> {
        Some(Self {
            user_id: text_of(item, "userId")?.to_owned(),
            sort_key: text_of(item, "sortKey")?.to_owned(),
        })
    }

    fn item(&self) -> Item {
        HashMap::from([
            ("userId".to_owned(), AttributeValue::S(self.user_id.clone())),
            (
                "sortKey".to_owned(),
                AttributeValue::S(self.sort_key.clone()),
            ),
        ])
    }
}

/// What a redrive made of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redriven {
    /// Deleted and put back: a new INSERT.
    Again,
    /// Gone before we got to it (dispatched meanwhile): nothing to do.
    Gone,
    /// Deleted, but a newer row of the key arrived before the put: that row
    /// has its own INSERT, ours was not put back over it.
    Replaced,
}

/// A redrive that failed, and whether the row is still where it was.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RedriveError {
    /// The delete failed: the row is as it was.
    #[error(transparent)]
    NotTaken(CallError),
    /// The row was deleted and could not be put back: here it is, so that
    /// it can be put back by hand.
    #[error("{error}")]
    NotPutBack { row: Item, error: CallError },
}

/// The pending table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PendingTable {
    table: DynamoTable,
}

impl PendingTable {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            table: DynamoTable::new(client, name),
        }
    }

    pub fn name(&self) -> &str {
        self.table.name()
    }

    /// One BatchWriteItem of rows (at most 25 of distinct keys); the rows
    /// DynamoDB did not process come back.
    pub async fn put_batch(&self, rows: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        self.table.put_batch(rows).await
    }

    /// How many rows are pending (Scan, Select COUNT).
    pub async fn count(&self) -> Result<u64, CallError> {
        self.table.count().await
    }

    /// The keys of `user_id`'s rows (Query of the partition, every page).
    pub fn keys_of_user(&self, user_id: &str) -> BoxStream<'static, Result<PendingKey, CallError>> {
        let mut items = self
            .table
            .client()
            .query()
            .table_name(self.name())
            .key_condition_expression("userId = :user")
            .expression_attribute_values(":user", AttributeValue::S(user_id.to_owned()))
            .projection_expression("userId, sortKey")
            .into_paginator()
            .items()
            .send();
        keys(paged(
            move |cx| items.poll_next(cx),
            format!("querying {}", self.name()),
        ))
    }

    /// The keys of every row (Scan of the key attributes, every page).
    pub fn all_keys(&self) -> BoxStream<'static, Result<PendingKey, CallError>> {
        keys(self.table.scan(&PENDING_KEY))
    }

    /// Deletes the row (keeping what was deleted) and puts exactly that
    /// back, unless a newer row of the key arrived in between: a new INSERT.
    /// Transient failures of the put are retried while `pause` gives a wait;
    /// if it still fails, the row comes back in the error, so it is not lost.
    pub async fn redrive(
        &self,
        key: &PendingKey,
        pause: impl FnMut(u32) -> Option<Duration>,
    ) -> Result<Redriven, RedriveError> {
        let client = self.table.client();
        let deleted = client
            .delete_item()
            .table_name(self.name())
            .set_key(Some(key.item()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|err| {
                let doing = format!("deleting {}/{}", key.user_id, key.sort_key);
                RedriveError::NotTaken(CallError::new(doing, &err))
            })?;
        let Some(row) = deleted.attributes.filter(|row| !row.is_empty()) else {
            return Ok(Redriven::Gone);
        };
        let doing = format!("putting {}/{} back", key.user_id, key.sort_key);
        let put_back = || async {
            match put_if_absent(client, self.name(), row.clone()).await {
                Ok(true) => Ok(Redriven::Again),
                Ok(false) => Ok(Redriven::Replaced),
                Err(err) => Err(CallError::new(doing.clone(), &err)),
            }
        };
        let outcome = with_retries(pause, put_back).await;
        outcome.map_err(|error| RedriveError::NotPutBack { row, error })
    }
}

/// Puts a pending row unless a row of its key is pending: `false` when
/// one is (the put's condition failed), nothing written.
pub(super) async fn put_if_absent(
    client: &Client,
    table: &str,
    row: Item,
) -> Result<bool, SdkError<PutItemError, HttpResponse>> {
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(row))
        .condition_expression("attribute_not_exists(userId)")
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(err)
            if matches!(
                err.as_service_error(),
                Some(PutItemError::ConditionalCheckFailedException(_))
            ) =>
        {
            Ok(false)
        }
        Err(err) => Err(err),
    }
}

/// The keys of the items that have one.
fn keys(
    items: BoxStream<'static, Result<Item, CallError>>,
) -> BoxStream<'static, Result<PendingKey, CallError>> {
    items
        .filter_map(|item| async move {
            match item {
                Ok(item) => PendingKey::of(&item).map(Ok),
                Err(err) => Some(Err(err)),
            }
        })
        .boxed()
}
