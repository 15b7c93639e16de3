//! In-memory fakes of ports that several services share, for unit tests.
//! (The dispatcher's own store fake is `dispatch::memory`.)

use crate::error::StoreError;
use crate::ports::{CatalogReader, LearningCounters, SelectionStatsReader};
use offers_domain::selection::LearningCounter;
use offers_domain::CatalogEntry;
use serde_json::Value;
use std::collections::HashMap;

/// A catalog of fixed items, given as the JSON the CMS writes.
#[derive(Debug, Clone, Default)]
pub struct MemoryCatalog {
    entries: HashMap<String, CatalogEntry>,
}

impl MemoryCatalog {
    /// The items (objects with an `id`); anything else is left out.
    pub fn of(items: impl IntoIterator<Item = Value>) -> Self {
        let entries = items
            .into_iter()
            .filter_map(|item| match item {
                Value::Object(item) => Some(item),
                _ => None,
            })
            .filter_map(|item| {
                let id = item.get("id").and_then(Value::as_str)?.to_owned();
                Some((id.clone(), CatalogEntry::from_json(&id, item)))
            })
            .collect();
        Self { entries }
    }
}

impl CatalogReader for MemoryCatalog {
    async fn fetch_entries(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, CatalogEntry>, StoreError> {
        Ok(ids
            .iter()
            .filter_map(|id| Some((id.clone(), self.entries.get(id)?.clone())))
            .collect())
    }
}

/// Learning counters held in memory, or a store that fails.
#[derive(Debug, Clone, Default)]
pub struct MemorySelectionStats {
    pub counters: Vec<LearningCounter>,
    pub failure: Option<StoreError>,
}

impl SelectionStatsReader for MemorySelectionStats {
    async fn learning_counters(
        &self,
        offer_ids: &[String],
    ) -> Result<LearningCounters, StoreError> {
        if let Some(err) = &self.failure {
            return Err(err.clone());
        }
        Ok(LearningCounters {
            counters: self
                .counters
                .iter()
                .filter(|counter| offer_ids.contains(&counter.offer_id))
                .cloned()
                .collect(),
            unreadable: 0,
        })
    }
}

/// A pending table in memory for the batch writer: every item put, in order.
#[derive(Debug, Default)]
pub struct MemoryPending {
    pub items: std::sync::Mutex<Vec<crate::dynamo::Item>>,
}

impl crate::dynamo::batch_write::BatchPut for MemoryPending {
    async fn put_batch(
        &self,
        items: Vec<crate::dynamo::Item>,
    ) -> Result<Vec<crate::dynamo::Item>, StoreError> {
        if let Ok(mut kept) = self.items.lock() {
            kept.extend(items);
        }
        Ok(Vec::new())
    }
}
