//! Which campaigns have redemption budgets, kept in the warm process for a
//! short time (contract section 14: a limit set or changed by `campaign
//! put` applies within the time to live). The cached copy only chooses the
//! write: every limit is enforced by the condition on the campaign's item.

use crate::error::StoreError;
use crate::ports::{RedemptionBudgets, RedemptionLimits};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Budgeted = Arc<HashMap<String, RedemptionLimits>>;

pub struct CachedBudgets<S> {
    inner: S,
    ttl: Duration,
    cached: Mutex<Option<(Instant, Budgeted)>>,
}

impl<S: RedemptionBudgets> CachedBudgets<S> {
    pub fn new(inner: S, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            cached: Mutex::new(None),
        }
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Budgeted)>> {
        self.cached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<S: RedemptionBudgets> RedemptionBudgets for CachedBudgets<S> {
    async fn budgeted(&self) -> Result<Budgeted, StoreError> {
        if let Some((fetched_at, budgeted)) = &*self.cached() {
            if fetched_at.elapsed() < self.ttl {
                return Ok(budgeted.clone());
            }
        }
        let budgeted = self.inner.budgeted().await?;
        if !self.ttl.is_zero() {
            *self.cached() = Some((Instant::now(), budgeted.clone()));
        }
        Ok(budgeted)
    }

    /// Read through, and the cached list corrected with what was read.
    async fn current(&self, campaign_id: &str) -> Result<Option<RedemptionLimits>, StoreError> {
        let current = self.inner.current(campaign_id).await?;
        if let Some((_, budgeted)) = &mut *self.cached() {
            if budgeted.get(campaign_id) != current.as_ref() {
                let map = Arc::make_mut(budgeted);
                match &current {
                    Some(limits) => map.insert(campaign_id.to_owned(), limits.clone()),
                    None => map.remove(campaign_id),
                };
            }
        }
        Ok(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::memory::MemoryBudgets;

    fn limits(redemptions: u64) -> RedemptionLimits {
        RedemptionLimits {
            redemptions: Some(redemptions),
            discount_value: None,
        }
    }

    #[tokio::test]
    async fn the_list_is_kept_for_its_time_and_a_fresh_read_corrects_it() {
        let source = MemoryBudgets::default();
        source.put("c-1", limits(5));
        let cache = CachedBudgets::new(source.clone(), Duration::from_secs(60));
        assert_eq!(cache.budgeted().await.expect("read")["c-1"], limits(5));
        source.put("c-1", limits(2));
        source.put("c-2", limits(1));
        let cached = cache.budgeted().await.expect("cached");
        assert_eq!(
            cached.len(),
            1,
            "within its time, the list is the cached one"
        );
        assert_eq!(cached["c-1"], limits(5));
        assert_eq!(cache.current("c-1").await.expect("read"), Some(limits(2)));
        assert_eq!(cache.budgeted().await.expect("cached")["c-1"], limits(2));
        let uncached = CachedBudgets::new(source, Duration::ZERO);
        assert_eq!(uncached.budgeted().await.expect("read").len(), 2);
    }
}
