//! Which campaigns have redemption budgets (the activity) and offers
//! budgets (the dispatcher, always-on), kept in the warm process for a
//! short time (contract section 14: a limit set or changed by `campaign
//! put` applies within the time to live). The cached copy only chooses the
//! write: every limit is enforced by the condition on the campaign's item.

use crate::domain::CampaignId;
use crate::error::StoreError;
use crate::ports::{
    CampaignOffersBudgets, OffersBudgetUse, OffersBudgets, RedemptionBudgets, RedemptionLimits,
};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Budgeted = Arc<HashMap<CampaignId, RedemptionLimits>>;
type OffersBudgeted = Arc<CampaignOffersBudgets>;

/// One list, kept for its time to live.
struct Kept<T> {
    ttl: Duration,
    cached: Mutex<Option<(Instant, Arc<T>)>>,
}

impl<T> Kept<T> {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            cached: Mutex::new(None),
        }
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Arc<T>)>> {
        self.cached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The kept list while it is young enough, else `fetch`'s (kept).
    async fn get(
        &self,
        fetch: impl Future<Output = Result<Arc<T>, StoreError>>,
    ) -> Result<Arc<T>, StoreError> {
        if let Some((fetched_at, kept)) = &*self.cached() {
            if fetched_at.elapsed() < self.ttl {
                return Ok(kept.clone());
            }
        }
        let fetched = fetch.await?;
        if !self.ttl.is_zero() {
            *self.cached() = Some((Instant::now(), fetched.clone()));
        }
        Ok(fetched)
    }
}

impl<V: Clone + PartialEq> Kept<HashMap<CampaignId, V>> {
    /// The kept list corrected with one campaign read now.
    fn correct(&self, campaign_id: &CampaignId, current: Option<&V>) {
        if let Some((_, kept)) = &mut *self.cached() {
            if kept.get(campaign_id) != current {
                let map = Arc::make_mut(kept);
                match current {
                    Some(value) => map.insert(campaign_id.clone(), value.clone()),
                    None => map.remove(campaign_id),
                };
            }
        }
    }
}

pub struct CachedBudgets<S> {
    inner: S,
    redemptions: Kept<HashMap<CampaignId, RedemptionLimits>>,
    offers: Kept<CampaignOffersBudgets>,
}

impl<S> CachedBudgets<S> {
    pub fn new(inner: S, ttl: Duration) -> Self {
        Self {
            inner,
            redemptions: Kept::new(ttl),
            offers: Kept::new(ttl),
        }
    }
}

impl<S: RedemptionBudgets> RedemptionBudgets for CachedBudgets<S> {
    async fn budgeted(&self) -> Result<Budgeted, StoreError> {
        self.redemptions.get(self.inner.budgeted()).await
    }

    /// Read through, and the cached list corrected with what was read.
    async fn current(
        &self,
        campaign_id: &CampaignId,
    ) -> Result<Option<RedemptionLimits>, StoreError> {
        let current = self.inner.current(campaign_id).await?;
        self.redemptions.correct(campaign_id, current.as_ref());
        Ok(current)
    }
}

impl<S: OffersBudgets> OffersBudgets for CachedBudgets<S> {
    async fn offers_budgets(&self) -> Result<OffersBudgeted, StoreError> {
        self.offers.get(self.inner.offers_budgets()).await
    }

    /// Read through, and the cached list corrected with what was read (a
    /// campaign without an offers limit kept as such: not read again
    /// within the list's time).
    async fn offers_budget_now(
        &self,
        campaign_id: &CampaignId,
    ) -> Result<Option<OffersBudgetUse>, StoreError> {
        let current = self.inner.offers_budget_now(campaign_id).await?;
        self.offers.correct(campaign_id, Some(&current));
        Ok(current)
    }
}

/// Without budgets, no campaign has an offers limit.
impl OffersBudgets for crate::activity::NoBudgets {
    async fn offers_budgets(&self) -> Result<OffersBudgeted, StoreError> {
        Ok(Arc::default())
    }

    async fn offers_budget_now(
        &self,
        _campaign_id: &CampaignId,
    ) -> Result<Option<OffersBudgetUse>, StoreError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::memory::MemoryBudgets;

    fn id(text: &'static str) -> CampaignId {
        CampaignId::literal(text)
    }

    fn limits(redemptions: u64) -> RedemptionLimits {
        RedemptionLimits {
            redemptions: Some(redemptions),
            discount_value: None,
        }
    }

    #[tokio::test]
    async fn the_list_is_kept_for_its_time_and_a_fresh_read_corrects_it() {
        let source = MemoryBudgets::default();
        source.put(&id("c-1"), limits(5));
        let cache = CachedBudgets::new(source.clone(), Duration::from_secs(60));
        assert_eq!(cache.budgeted().await.expect("read")["c-1"], limits(5));
        source.put(&id("c-1"), limits(2));
        source.put(&id("c-2"), limits(1));
        let cached = cache.budgeted().await.expect("cached");
        assert_eq!(
            cached.len(),
            1,
            "within its time, the list is the cached one"
        );
        assert_eq!(cached["c-1"], limits(5));
        assert_eq!(
            cache.current(&id("c-1")).await.expect("read"),
            Some(limits(2))
        );
        assert_eq!(cache.budgeted().await.expect("cached")["c-1"], limits(2));
        let uncached = CachedBudgets::new(source, Duration::ZERO);
        assert_eq!(uncached.budgeted().await.expect("read").len(), 2);
    }
}
