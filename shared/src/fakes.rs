//! In-memory fakes of ports that several services share, for unit tests.
//! (The dispatcher's own store fake is `dispatch::memory`.)

use crate::error::StoreError;
use crate::ports::CatalogReader;
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
