//! User visits: each valid transaction of the transactions stream counts
//! once in its user's behaviour profile (contract section 13), by its
//! `occurredAt`, whatever its age.
//!
//! The stream's edge (`crate::stream::transactions`) reads the event; the
//! shared runner (`crate::stream::runner`) runs the batch; [`UserVisits`]
//! counts one transaction: read the profile and its version, count the visit
//! with the pure `offers_domain::profile`, write it on the condition that
//! the version is still the one read and the transaction was never counted
//! (both in one DynamoDB transaction), read again when another write got
//! there first. Invalid transactions are not counted; challenge progress,
//! on the same stream, keeps them in the rejected table. `memory` is the
//! in-memory fake of the [`ProfileStore`] port. Design: docs/design.md,
//! "Behaviour profiles".

pub mod memory;
mod report;
#[cfg(test)]
mod tests;

pub use report::{visit_metrics, ProfileView, VisitKind, VisitOutcome, VisitReport};

use crate::error::StoreError;
use crate::ports::{ProfileStore, ProfileWrite, ProfileWriteOutcome, StoredProfile};
use crate::stream::runner::{run_batch, Failure, RecordHandler, Run, RunnerSettings};
use crate::stream::transactions::{TransactionInput, TransactionRecord};
use chrono::Utc;
use offers_domain::profile::{reserved_user_id, Profile, ProfileContext, Visit};
use offers_domain::{Transaction, UserId};
use std::future::Future;
use tokio::time::Instant;

/// Reads and conditional writes of one transaction before it is given up
/// for this delivery (a conflict: retried by Lambda). Within a batch one
/// user's records run one after another, so only other invocations (other
/// shards) race for a profile; each lost race means one of theirs counted.
pub const MAX_WRITE_ATTEMPTS: usize = 10;

/// What runs on each visit once it is counted in the profile: the
/// always-on chooser (`crate::always_on`), or nothing (`()`). It runs again
/// when a redelivery finds the visit counted, so that a record that failed
/// after its profile write still gets its turn; it must be idempotent.
pub trait AfterVisit: Send + Sync {
    /// `context`: the visit's profile context, this visit counted.
    fn after_visit(
        &self,
        transaction: &Transaction,
        context: &ProfileContext,
        run: &Run,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl AfterVisit for () {
    async fn after_visit(
        &self,
        _transaction: &Transaction,
        _context: &ProfileContext,
        _run: &Run,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The user visits service: behaviour profiles, then whatever runs on a
/// visit (`V`: the always-on chooser in the function).
pub struct UserVisits<S, V = ()> {
    store: S,
    after: V,
    settings: RunnerSettings,
}

impl<S: ProfileStore> UserVisits<S> {
    pub fn new(store: S, settings: RunnerSettings) -> Self {
        Self::with_after(store, (), settings)
    }
}

impl<S: ProfileStore, V: AfterVisit> UserVisits<S, V> {
    pub fn with_after(store: S, after: V, settings: RunnerSettings) -> Self {
        Self {
            store,
            after,
            settings,
        }
    }

    pub fn after(&self) -> &V {
        &self.after
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Handles the records of one stream batch; every record ends in
    /// exactly one outcome (see `crate::stream::runner`).
    pub async fn apply_batch(
        &self,
        records: Vec<TransactionInput>,
        deadline: Option<Instant>,
    ) -> VisitReport {
        let run = Run::new(Utc::now(), deadline, self.settings.deadline_margin);
        let report = run_batch(self, &records, &run, self.settings.concurrency).await;
        report::log_batch(&report, run.elapsed_ms());
        report
    }

    /// A user's profile as the support API shows it; `None` for a user
    /// without counted visits.
    pub async fn profile_view(&self, user_id: &UserId) -> Result<Option<ProfileView>, StoreError> {
        profile_view(&self.store, user_id).await
    }

    /// Counts the transaction once in its user's profile.
    async fn count(
        &self,
        transaction: &Transaction,
        run: &Run,
    ) -> Result<VisitOutcome, StoreError> {
        if reserved_user_id(transaction.user_id.as_str()) {
            return Ok(VisitOutcome::Refused {
                detail: "user ids starting with # are reserved for the table's own items".into(),
            });
        }
        let visit = Visit::from(transaction);
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let stored = run.call(self.store.profile(&transaction.user_id)).await?;
            let (expected_version, before) = stored.map_or((0, Profile::default()), |stored| {
                (stored.version, stored.profile)
            });
            let profile = before.counted(&visit);
            let write = ProfileWrite {
                user_id: transaction.user_id.as_str().to_owned(),
                transaction_id: transaction.transaction_id.clone(),
                expected_version,
                profile,
                counted_at: run.now,
            };
            match run.call(self.store.count_visit(&write)).await {
                Ok(ProfileWriteOutcome::Written) => {
                    let context = write.profile.context_of(&visit);
                    self.after.after_visit(transaction, &context, run).await?;
                    return Ok(VisitOutcome::Counted {
                        profile: Box::new(StoredProfile {
                            user_id: write.user_id,
                            version: expected_version.saturating_add(1),
                            profile: write.profile,
                        }),
                        context,
                    });
                }
                Ok(ProfileWriteOutcome::AlreadyCounted) => {
                    // The profile read holds this visit (unless it was
                    // counted between the read and the write: then the
                    // context misses it, which only shifts visits30).
                    let context = before.context_of(&visit);
                    self.after.after_visit(transaction, &context, run).await?;
                    return Ok(VisitOutcome::AlreadyCounted);
                }
                Ok(ProfileWriteOutcome::Stale) => continue,
                // DynamoDB will never take this write: not retried.
                Err(StoreError::Refused(detail)) => return Ok(VisitOutcome::Refused { detail }),
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::Conflict(format!(
            "the profile kept changing under {MAX_WRITE_ATTEMPTS} writes"
        )))
    }
}

/// A user's profile as the support API shows it; `None` for a user without
/// counted visits (and for the table's own `#` keys).
pub async fn profile_view<S: ProfileStore>(
    store: &S,
    user_id: &UserId,
) -> Result<Option<ProfileView>, StoreError> {
    if reserved_user_id(user_id.as_str()) {
        return Ok(None);
    }
    Ok(store
        .profile(user_id)
        .await?
        .and_then(|stored| ProfileView::of(&stored)))
}

impl<S: ProfileStore, V: AfterVisit> RecordHandler<TransactionRecord> for UserVisits<S, V> {
    type Outcome = VisitOutcome;

    async fn apply(&self, record: &TransactionRecord, run: &Run) -> Result<VisitOutcome, Failure> {
        match &record.transaction {
            Ok(transaction) => Ok(self.count(transaction, run).await?),
            Err(rejection) => Ok(VisitOutcome::Invalid {
                code: rejection.code,
            }),
        }
    }
}
