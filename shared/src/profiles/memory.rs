//! An in-memory fake of the [`ProfileStore`] port, for unit tests of the
//! service: the same conditions as the DynamoDB adapter's transaction (the
//! version read, the transaction never counted), with scriptable faults.

use crate::error::StoreError;
use crate::ports::{ProfileStore, ProfileWrite, ProfileWriteOutcome, StoredProfile};
use offers_domain::UserId;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct ProfileMemoryState {
    pub profiles: HashMap<String, StoredProfile>,
    /// The transactions counted.
    pub counted: HashSet<String>,
    /// Writes attempted, and how many found the profile changed.
    pub writes: usize,
    pub stale_writes: usize,
    /// Every call fails with this error (an outage).
    pub down: Option<StoreError>,
    /// Writes for these users are refused, as DynamoDB refuses an item it cannot store.
    pub refused_users: HashSet<String>,
    /// Each call waits this long (lets concurrent deliveries interleave).
    pub delay: Duration,
}

#[derive(Debug, Default)]
pub struct ProfileMemoryStore {
    state: Mutex<ProfileMemoryState>,
}

impl ProfileMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn state(&self) -> MutexGuard<'_, ProfileMemoryState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn enter(&self) -> Result<(), StoreError> {
        let (down, delay) = {
            let state = self.state();
            (state.down.clone(), state.delay)
        };
        if let Some(error) = down {
            return Err(error);
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(())
    }
}

impl ProfileStore for ProfileMemoryStore {
    async fn profile(&self, user_id: &UserId) -> Result<Option<StoredProfile>, StoreError> {
        let user_id = user_id.as_str();
        self.enter().await?;
        Ok(self.state().profiles.get(user_id).cloned())
    }

    async fn count_visit(&self, write: &ProfileWrite) -> Result<ProfileWriteOutcome, StoreError> {
        self.enter().await?;
        let mut state = self.state();
        state.writes += 1;
        if state.refused_users.contains(&write.user_id) {
            return Err(StoreError::Refused("ValidationException".into()));
        }
        if state.counted.contains(&write.transaction_id) {
            return Ok(ProfileWriteOutcome::AlreadyCounted);
        }
        let version = state
            .profiles
            .get(&write.user_id)
            .map_or(0, |stored| stored.version);
        if version != write.expected_version {
            state.stale_writes += 1;
            return Ok(ProfileWriteOutcome::Stale);
        }
        state.counted.insert(write.transaction_id.clone());
        state.profiles.insert(
            write.user_id.clone(),
            StoredProfile {
                user_id: write.user_id.clone(),
                version: version + 1,
                profile: write.profile.clone(),
            },
        );
        Ok(ProfileWriteOutcome::Written)
    }
}
