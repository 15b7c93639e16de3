//! An in-memory statistics table, with the transaction semantics of the
//! DynamoDB adapter (markers conditional, all or nothing), and faults to
//! inject: conflicts, refusals, outages; and the campaigns' budgets, as
//! the campaigns table would hold them.

use crate::domain::campaign::{Budget, BudgetUse};
use crate::domain::CampaignId;
use crate::error::StoreError;
use crate::ports::{
    ApplyOutcome, CampaignBudgetUse, CampaignBudgetsReader, CampaignStatsStore, StatsUnit,
};
use offers_domain::campaign_stats::{CounterKey, Counts, Deltas};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct MemoryStatsStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    markers: HashSet<String>,
    counters: BTreeMap<CounterKey, Counts>,
    /// Errors the next calls return, in order, before anything is written.
    faults: VecDeque<StoreError>,
    /// Every transaction tried: how many units and counters it held.
    calls: Vec<(usize, usize)>,
    /// The campaigns' budgets and uses, by campaign id.
    budgets: HashMap<CampaignId, (Budget, BudgetUse)>,
    /// Errors the next budget reads return, in order.
    budget_faults: VecDeque<StoreError>,
    /// The campaign ids of every budget read asked for.
    budget_reads: Vec<Vec<CampaignId>>,
}

impl MemoryStatsStore {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn counters(&self) -> BTreeMap<CounterKey, Counts> {
        self.state().counters.clone()
    }

    pub fn markers(&self) -> usize {
        self.state().markers.len()
    }

    /// The next calls fail with these errors, in order.
    pub fn fail_next(&self, errors: impl IntoIterator<Item = StoreError>) {
        self.state().faults.extend(errors);
    }

    /// (units, counters) of every transaction tried.
    pub fn calls(&self) -> Vec<(usize, usize)> {
        self.state().calls.clone()
    }

    /// The campaign's budget and use, as its item would hold them.
    pub fn set_budget(&self, campaign_id: &CampaignId, budget: Budget, used: BudgetUse) {
        self.state()
            .budgets
            .insert(campaign_id.clone(), (budget, used));
    }

    /// The campaign's definition deleted (its budget with it).
    pub fn delete_budget(&self, campaign_id: &CampaignId) {
        self.state().budgets.remove(campaign_id);
    }

    /// The next budget reads fail with these errors, in order.
    pub fn fail_budget_reads(&self, errors: impl IntoIterator<Item = StoreError>) {
        self.state().budget_faults.extend(errors);
    }

    /// The campaign ids each budget read asked for.
    pub fn budget_reads(&self) -> Vec<Vec<CampaignId>> {
        self.state().budget_reads.clone()
    }
}

impl CampaignBudgetsReader for MemoryStatsStore {
    async fn budgets_used(
        &self,
        campaign_ids: &[CampaignId],
    ) -> Result<Vec<CampaignBudgetUse>, StoreError> {
        let mut state = self.state();
        state.budget_reads.push(campaign_ids.to_vec());
        if let Some(fault) = state.budget_faults.pop_front() {
            return Err(fault);
        }
        Ok(campaign_ids
            .iter()
            .filter_map(|id| {
                let (budget, used) = state.budgets.get(id)?;
                Some(CampaignBudgetUse {
                    campaign_id: id.clone(),
                    budget: budget.clone(),
                    used: used.clone(),
                })
            })
            .collect())
    }
}

impl CampaignStatsStore for MemoryStatsStore {
    async fn apply_units(
        &self,
        units: &[&StatsUnit],
        deltas: &Deltas,
    ) -> Result<ApplyOutcome, StoreError> {
        let mut state = self.state();
        state.calls.push((units.len(), deltas.len()));
        if units.len() + deltas.len() > super::MAX_TRANSACTION_ITEMS {
            return Err(StoreError::Refused("more than 100 items".into()));
        }
        if let Some(fault) = state.faults.pop_front() {
            return Err(fault);
        }
        let found: Vec<usize> = units
            .iter()
            .enumerate()
            .filter(|(_, unit)| state.markers.contains(&unit.marker))
            .map(|(index, _)| index)
            .collect();
        if !found.is_empty() {
            return Ok(ApplyOutcome::AlreadyApplied(found));
        }
        // All or nothing: every new value first, then the writes.
        let mut updated = Vec::with_capacity(deltas.len());
        for (key, counts) in deltas {
            let current = state.counters.get(key).copied().unwrap_or_default();
            let sum = current
                .checked_add(counts)
                .ok_or_else(|| StoreError::Refused("number overflow".into()))?;
            updated.push((key.clone(), sum));
        }
        for unit in units {
            state.markers.insert(unit.marker.clone());
        }
        state.counters.extend(updated);
        Ok(ApplyOutcome::Applied)
    }

    async fn campaign_counters(
        &self,
        campaign_id: &CampaignId,
    ) -> Result<Vec<(CounterKey, Counts)>, StoreError> {
        Ok(self
            .state()
            .counters
            .iter()
            .filter(|(key, _)| match key {
                CounterKey::Campaign { campaign_id: c, .. }
                | CounterKey::Day { campaign_id: c, .. }
                | CounterKey::ArmDay { campaign_id: c, .. } => c == campaign_id,
                CounterKey::Learning { .. } => false,
            })
            .map(|(key, counts)| (key.clone(), *counts))
            .collect())
    }
}
