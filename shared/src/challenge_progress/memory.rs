//! An in-memory fake of the [`ChallengeStore`] port, for unit tests of the
//! service: the same conditions as the DynamoDB adapter's progress write,
//! with faults that can be scripted.

use crate::domain::PersonalizedOfferId;
use crate::error::StoreError;
use crate::ports::{ChallengeStore, GoalMet, ProgressWrite, RejectedTransaction, WriteOutcome};
use offers_domain::challenge::REWARD_GRANTED_AT;
use offers_domain::dates::format_timestamp;
use offers_domain::PersonalizedOffer;
use offers_domain::UserId;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Default)]
pub struct ChallengeMemoryState {
    pub offers: HashMap<PersonalizedOfferId, PersonalizedOffer>,
    pub rejections: HashMap<Uuid, RejectedTransaction>,
    /// Progress writes attempted, and how many of them failed their condition.
    pub goal_writes: usize,
    pub stale_writes: usize,
    /// Every call fails with this error (an outage).
    pub down: Option<StoreError>,
    /// Calls for these users fail with the error.
    pub failing_users: HashMap<String, StoreError>,
    /// Progress writes for these users are refused, as DynamoDB refuses an item it cannot store.
    pub refused_users: std::collections::HashSet<String>,
    /// Each call waits this long (lets concurrent deliveries interleave).
    pub delay: Duration,
}

#[derive(Debug, Default)]
pub struct ChallengeMemoryStore {
    state: Mutex<ChallengeMemoryState>,
}

impl ChallengeMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn state(&self) -> MutexGuard<'_, ChallengeMemoryState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn offer(&self, id: PersonalizedOfferId) -> Option<PersonalizedOffer> {
        self.state().offers.get(&id).cloned()
    }

    async fn enter(&self, user_id: &str) -> Result<(), StoreError> {
        let delay = {
            let state = self.state();
            if let Some(error) = state
                .down
                .clone()
                .or_else(|| state.failing_users.get(user_id).cloned())
            {
                return Err(error);
            }
            state.delay
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(())
    }
}

/// Whether the stored offer is still in the state the write was decided on.
fn holds(offer: &PersonalizedOffer, write: &GoalMet) -> bool {
    let Some(challenge) = &offer.challenge else {
        return false;
    };
    let goal_unmet = challenge
        .goals
        .get(&write.goal)
        .is_some_and(|goal| !goal.is_met());
    let map_as_read = write.counted_map_exists != challenge.counted_transactions.is_empty();
    let not_counted = !challenge
        .counted_transactions
        .contains_key(&write.counted_key);
    let completion_holds = write.completion.as_ref().is_none_or(|completion| {
        challenge.completed_at.is_none()
            && completion
                .other_goals
                .iter()
                .all(|name| challenge.goals.get(name).is_some_and(|goal| goal.is_met()))
    });
    offer.revoked_at.is_none() && goal_unmet && map_as_read && not_counted && completion_holds
}

impl ChallengeStore for ChallengeMemoryStore {
    async fn challenge_offers(
        &self,
        user_id: &UserId,
    ) -> Result<Vec<PersonalizedOffer>, StoreError> {
        let user_id = user_id.as_str();
        self.enter(user_id).await?;
        let mut offers: Vec<PersonalizedOffer> = self
            .state()
            .offers
            .values()
            .filter(|offer| offer.user_id == user_id && offer.challenge.is_some())
            .cloned()
            .collect();
        offers.sort_by_key(|offer| offer.personalized_offer_id);
        Ok(offers)
    }

    async fn record_goal(&self, write: &GoalMet) -> Result<ProgressWrite, StoreError> {
        self.enter(&write.user_id).await?;
        let mut state = self.state();
        state.goal_writes += 1;
        if state.refused_users.contains(&write.user_id) {
            return Err(StoreError::Refused("ValidationException".into()));
        }
        let Some(offer) = state.offers.get_mut(&write.personalized_offer_id) else {
            state.stale_writes += 1;
            return Ok(ProgressWrite::Stale(None));
        };
        if offer.user_id != write.user_id || !holds(offer, write) {
            let now = offer.clone();
            state.stale_writes += 1;
            return Ok(ProgressWrite::Stale(Some(Box::new(now))));
        }
        if let Some(challenge) = offer.challenge.as_mut() {
            if let Some(goal) = challenge.goals.get_mut(&write.goal) {
                goal.met_at = Some(write.met_at);
                goal.transaction_id = Some(write.transaction_id.clone());
            }
            challenge
                .counted_transactions
                .insert(write.counted_key.clone(), write.goal.clone());
            if let Some(completion) = &write.completion {
                challenge.completed_at = Some(write.met_at);
                challenge.reward.insert(
                    REWARD_GRANTED_AT.into(),
                    Value::String(format_timestamp(completion.granted_at)),
                );
            }
        }
        Ok(ProgressWrite::Written)
    }

    async fn reject_transaction(
        &self,
        rejection: &RejectedTransaction,
    ) -> Result<WriteOutcome, StoreError> {
        self.enter(&rejection.user_id).await?;
        let mut state = self.state();
        if state.rejections.contains_key(&rejection.rejection_id) {
            return Ok(WriteOutcome::AlreadyWritten);
        }
        state
            .rejections
            .insert(rejection.rejection_id, rejection.clone());
        Ok(WriteOutcome::Written)
    }
}
