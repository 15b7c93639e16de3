//! An in-memory fake of the [`AlwaysOnStore`] port, for unit tests of the
//! chooser: campaigns, the users' offers, and pending rows put under the
//! same condition as the DynamoDB adapter's (never over a row of the key).

use super::{AlwaysOnStore, PendingPut};
use crate::domain::CampaignId;
use crate::error::StoreError;
use chrono::{DateTime, Utc};
use offers_domain::always_on::{AlwaysOnCampaign, HeldOffer};
use offers_domain::dates::parse_timestamp;
use offers_domain::UserId;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
pub struct AlwaysOnMemoryState {
    pub campaigns: Vec<AlwaysOnCampaign>,
    /// Offer records by (user, campaign): offerId, startDate, live.
    pub offers: Vec<(String, String, HeldOffer)>,
    /// Pending rows by (userId, sortKey).
    pub pending: BTreeMap<(String, String), Map<String, Value>>,
    /// Every call fails with this error (an outage).
    pub down: Option<StoreError>,
    /// Calls of `always_on_campaigns` (to see the cache work).
    pub campaign_reads: usize,
}

#[derive(Debug, Default)]
pub struct AlwaysOnMemoryStore {
    state: Mutex<AlwaysOnMemoryState>,
}

impl AlwaysOnMemoryStore {
    pub fn new(campaigns: Vec<AlwaysOnCampaign>) -> Self {
        let store = Self::default();
        store.state().campaigns = campaigns;
        store
    }

    pub fn state(&self) -> MutexGuard<'_, AlwaysOnMemoryState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What the dispatcher does: each pending row becomes a live offer.
    pub fn dispatch_all(&self) {
        let mut state = self.state();
        let rows = std::mem::take(&mut state.pending);
        for ((user_id, _), row) in rows {
            let text = |name: &str| row.get(name).and_then(Value::as_str).unwrap_or_default();
            let held = HeldOffer {
                offer_id: text("offerId").to_owned(),
                assigned_at: parse_timestamp(text("startDate")).unwrap_or_default(),
                live: true,
            };
            let campaign_id = text("campaignId").to_owned();
            state.offers.push((user_id, campaign_id, held));
        }
    }

    fn check(&self) -> Result<MutexGuard<'_, AlwaysOnMemoryState>, StoreError> {
        let state = self.state();
        match &state.down {
            Some(error) => Err(error.clone()),
            None => Ok(state),
        }
    }
}

impl AlwaysOnStore for AlwaysOnMemoryStore {
    async fn always_on_campaigns(&self) -> Result<Vec<AlwaysOnCampaign>, StoreError> {
        let mut state = self.check()?;
        state.campaign_reads += 1;
        Ok(state.campaigns.clone())
    }

    async fn held_offers(
        &self,
        user_id: &UserId,
        campaign_id: &CampaignId,
        _now: DateTime<Utc>,
    ) -> Result<Vec<HeldOffer>, StoreError> {
        let user_id = user_id.as_str();
        let state = self.check()?;
        let mut held: Vec<HeldOffer> = state
            .offers
            .iter()
            .filter(|(user, campaign, _)| user == user_id && campaign == campaign_id)
            .map(|(_, _, held)| held.clone())
            .collect();
        for ((user, _), row) in &state.pending {
            if user == user_id && row.get("campaignId").and_then(Value::as_str) == Some(campaign_id)
            {
                let text = |name: &str| row.get(name).and_then(Value::as_str).unwrap_or_default();
                held.push(HeldOffer {
                    offer_id: text("offerId").to_owned(),
                    assigned_at: parse_timestamp(text("startDate")).unwrap_or_default(),
                    live: true,
                });
            }
        }
        Ok(held)
    }

    async fn put_pending(&self, row: &Map<String, Value>) -> Result<PendingPut, StoreError> {
        let mut state = self.check()?;
        let text = |name: &str| {
            row.get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let key = (text("userId"), text("sortKey"));
        if state.pending.contains_key(&key) {
            return Ok(PendingPut::Exists);
        }
        state.pending.insert(key, row.clone());
        Ok(PendingPut::Written)
    }
}
