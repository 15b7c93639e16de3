//! The catalog table: batch reads of entries (the dispatcher's, and the
//! links `offers catalog load` checks), batch writes of items (the CLI's).

use super::items::Item;
use super::table::DynamoTable;
use super::{classify, DynamoStore};
use crate::domain::CatalogEntry;
use crate::error::StoreError;
use crate::ports::CatalogReader;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_dynamodb::Client;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The catalog table's key.
pub const CATALOG_KEY: [&str; 1] = ["id"];
/// BatchGetItem takes at most 100 keys.
pub(super) const BATCH_GET_LIMIT: usize = 100;
/// Rounds of UnprocessedKeys before giving up (the record is then retried by Lambda).
const MAX_UNPROCESSED_ROUNDS: u32 = 5;

impl CatalogReader for DynamoStore {
    async fn fetch_entries(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, CatalogEntry>, StoreError> {
        read_entries(
            &self.client,
            self.tables.catalog()?,
            ids,
            Some(&self.catalog_items_read),
        )
        .await
    }
}

impl CatalogReader for CatalogTable {
    async fn fetch_entries(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, CatalogEntry>, StoreError> {
        self.read_entries(ids).await
    }
}

/// The catalog table, for the operators' tool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CatalogTable {
    table: DynamoTable,
}

impl CatalogTable {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            table: DynamoTable::new(client, name),
        }
    }

    pub fn name(&self) -> &str {
        self.table.name()
    }

    /// The entries of `ids` that exist, read as the dispatcher reads them.
    pub async fn read_entries(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, CatalogEntry>, StoreError> {
        read_entries(self.table.client(), self.name(), ids, None).await
    }

    /// One BatchWriteItem of items (at most 25 of distinct ids); the items
    /// DynamoDB did not process come back.
    pub async fn put_batch(&self, items: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        self.table.put_batch(items).await
    }
}

/// BatchGetItem of `ids` in chunks, UnprocessedKeys asked again a bounded
/// number of rounds; `items_read` counts the ids asked for.
async fn read_entries(
    client: &Client,
    table: &str,
    ids: &[String],
    items_read: Option<&AtomicU64>,
) -> Result<HashMap<String, CatalogEntry>, StoreError> {
    let mut entries = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(BATCH_GET_LIMIT) {
        if let Some(items_read) = items_read {
            items_read.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        let keys = chunk
            .iter()
            .map(|id| HashMap::from([("id".to_owned(), AttributeValue::S(id.clone()))]))
            .collect();
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .build()
            .map_err(|err| StoreError::Refused(err.to_string()))?;
        batch_get(client, table, request, "catalog", |item| {
            let Some(AttributeValue::S(id)) = item.get("id").cloned() else {
                return;
            };
            // One item the CMS got wrong concerns only the rows that need it.
            let entry = match serde_dynamo::from_item::<_, Map<String, Value>>(item) {
                Ok(json) => CatalogEntry::from_json(&id, json),
                Err(err) => CatalogEntry::unreadable(&id, err),
            };
            entries.insert(id, entry);
        })
        .await?;
    }
    Ok(entries)
}

/// One BatchGetItem of `request` (at most [`BATCH_GET_LIMIT`] keys) on
/// `table`, its UnprocessedKeys asked again a bounded number of rounds
/// (then `Throttled`, naming `what`); each item found goes to `found`.
pub(super) async fn batch_get(
    client: &Client,
    table: &str,
    mut request: KeysAndAttributes,
    what: &str,
    mut found: impl FnMut(Item),
) -> Result<(), StoreError> {
    let mut round = 0;
    loop {
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
            found(item);
        }
        match output
            .unprocessed_keys
            .and_then(|mut keys| keys.remove(table))
        {
            Some(rest) if !rest.keys.is_empty() => {
                round += 1;
                if round >= MAX_UNPROCESSED_ROUNDS {
                    return Err(StoreError::Throttled(format!(
                        "{what} keys left unprocessed"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(25 << round)).await;
                request = rest;
            }
            _ => return Ok(()),
        }
    }
}
