//! Config offers and templates kept in the warm process for a short time.

use crate::domain::CatalogEntry;
use crate::error::StoreError;
use crate::ports::CatalogReader;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A read-through cache in front of a [`CatalogReader`]. Only entries that
/// exist are cached: an id published in the CMS a moment ago is found on the
/// next batch, not after the time to live.
pub struct CachedCatalog<C> {
    inner: C,
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, CatalogEntry)>>,
}

impl<C: CatalogReader> CachedCatalog<C> {
    pub fn new(inner: C, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn inner(&self) -> &C {
        &self.inner
    }

    fn cached(&self, ids: &[String], now: Instant) -> (HashMap<String, CatalogEntry>, Vec<String>) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.retain(|_, (fetched_at, _)| now.duration_since(*fetched_at) < self.ttl);
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for id in ids {
            match entries.get(id) {
                Some((_, entry)) => {
                    found.insert(id.clone(), entry.clone());
                }
                None => missing.push(id.clone()),
            }
        }
        (found, missing)
    }
}

impl<C: CatalogReader> CatalogReader for CachedCatalog<C> {
    async fn fetch_entries(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, CatalogEntry>, StoreError> {
        let mut unique: Vec<String> = ids.to_vec();
        unique.sort();
        unique.dedup();
        let (mut found, missing) = self.cached(&unique, Instant::now());
        if missing.is_empty() {
            return Ok(found);
        }
        let fetched = self.inner.fetch_entries(&missing).await?;
        if !self.ttl.is_zero() {
            let now = Instant::now();
            let mut entries = self
                .entries
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for (id, entry) in &fetched {
                entries.insert(id.clone(), (now, entry.clone()));
            }
        }
        found.extend(fetched);
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct CountingCatalog {
        known: Vec<&'static str>,
        ids_requested: AtomicUsize,
    }

    impl CatalogReader for CountingCatalog {
        async fn fetch_entries(
            &self,
            ids: &[String],
        ) -> Result<HashMap<String, CatalogEntry>, StoreError> {
            self.ids_requested.fetch_add(ids.len(), Ordering::SeqCst);
            Ok(ids
                .iter()
                .filter(|id| self.known.contains(&id.as_str()))
                .map(|id| {
                    (
                        id.clone(),
                        CatalogEntry::Malformed {
                            id: id.clone(),
                            problem: "test".into(),
                        },
                    )
                })
                .collect())
        }
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|id| id.to_string()).collect()
    }

    #[tokio::test]
    async fn fetches_each_distinct_id_once_and_caches_hits_only() {
        let cache = CachedCatalog::new(
            CountingCatalog {
                known: vec!["a", "b"],
                ids_requested: AtomicUsize::new(0),
            },
            Duration::from_secs(60),
        );
        let first = cache
            .fetch_entries(&ids(&["a", "b", "a", "x"]))
            .await
            .expect("ok");
        assert_eq!(first.len(), 2);
        assert_eq!(
            cache.inner().ids_requested.load(Ordering::SeqCst),
            3,
            "a, b, x once each"
        );
        let second = cache
            .fetch_entries(&ids(&["a", "b", "x"]))
            .await
            .expect("ok");
        assert_eq!(second.len(), 2);
        assert_eq!(
            cache.inner().ids_requested.load(Ordering::SeqCst),
            4,
            "only the missing x again"
        );
    }

    #[tokio::test]
    async fn zero_ttl_disables_caching() {
        let cache = CachedCatalog::new(
            CountingCatalog {
                known: vec!["a"],
                ids_requested: AtomicUsize::new(0),
            },
            Duration::ZERO,
        );
        cache.fetch_entries(&ids(&["a"])).await.expect("ok");
        cache.fetch_entries(&ids(&["a"])).await.expect("ok");
        assert_eq!(cache.inner().ids_requested.load(Ordering::SeqCst), 2);
    }
}
