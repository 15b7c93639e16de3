use super::{classify, DynamoStore};
use crate::domain::CatalogEntry;
use crate::error::StoreError;
use crate::ports::CatalogReader;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// BatchGetItem takes at most 100 keys.
const BATCH_GET_LIMIT: usize = 100;
/// Rounds of UnprocessedKeys before giving up (the record is then retried by Lambda).
const MAX_UNPROCESSED_ROUNDS: u32 = 5;

impl CatalogReader for DynamoStore {
    async fn fetch_entries(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, CatalogEntry>, StoreError> {
        let table = self.tables.catalog()?;
        let mut entries = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH_GET_LIMIT) {
            self.catalog_items_read
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            let keys = chunk
                .iter()
                .map(|id| HashMap::from([("id".to_owned(), AttributeValue::S(id.clone()))]))
                .collect();
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .build()
                .map_err(|err| StoreError::Refused(err.to_string()))?;
            let mut round = 0;
            loop {
                let output = self
                    .client
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
                    let Some(AttributeValue::S(id)) = item.get("id").cloned() else {
                        continue;
                    };
                    // One item the CMS got wrong concerns only the rows that need it.
                    let entry = match serde_dynamo::from_item::<_, Map<String, Value>>(item) {
                        Ok(json) => CatalogEntry::from_json(&id, json),
                        Err(err) => CatalogEntry::unreadable(&id, err),
                    };
                    entries.insert(id, entry);
                }
                match output
                    .unprocessed_keys
                    .and_then(|mut keys| keys.remove(table))
                {
                    Some(rest) if !rest.keys.is_empty() => {
                        round += 1;
                        if round >= MAX_UNPROCESSED_ROUNDS {
                            return Err(StoreError::Throttled(
                                "catalog keys left unprocessed".into(),
                            ));
                        }
                        tokio::time::sleep(Duration::from_millis(25 << round)).await;
                        request = rest;
                    }
                    _ => break,
                }
            }
        }
        Ok(entries)
    }
}
