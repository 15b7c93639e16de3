//! The challenge progress service: each transaction meets at most one goal
//! of each of its user's active challenges, exactly once, with conditional
//! writes decided again on the current state when another write got there
//! first. Records of different users run concurrently; records of one user
//! run in stream order.

use super::report::{log_batch, ProgressOutcome, ProgressReport};
use super::{TransactionInput, TransactionRecord};
use crate::error::StoreError;
use crate::ports::{
    ChallengeStore, Completion, GoalMet, ProgressWrite, RejectedTransaction, WriteOutcome,
};
use crate::stream::runner::{run_batch, Failure, RecordHandler, Run, RunnerSettings};
use chrono::Utc;
use offers_domain::progress::{active_at, counted_key, next_step, Step};
use offers_domain::{PersonalizedOffer, ReasonCode, Rejection, Transaction};
use tokio::time::Instant;
use uuid::Uuid;

/// How many users' records run at once, and the time kept in hand before
/// the invocation deadline.
pub type ProgressSettings = RunnerSettings;

pub struct ChallengeProgress<S> {
    store: S,
    settings: ProgressSettings,
}

/// What one transaction did to one challenge.
enum Applied {
    Met { goal: String, completed: bool },
    AlreadyCounted,
    Nothing,
}

impl<S: ChallengeStore> ChallengeProgress<S> {
    pub fn new(store: S, settings: ProgressSettings) -> Self {
        Self { store, settings }
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
    ) -> ProgressReport {
        let run = Run::new(Utc::now(), deadline, self.settings.deadline_margin);
        let report = run_batch(self, &records, &run, self.settings.concurrency).await;
        log_batch(&report, &records, run.elapsed_ms());
        report
    }

    /// Applies the transaction to each of its user's challenges active at
    /// its `occurredAt`.
    async fn count(
        &self,
        transaction: &Transaction,
        run: &Run,
    ) -> Result<ProgressOutcome, StoreError> {
        let offers = run
            .call(self.store.challenge_offers(&transaction.user_id))
            .await?;
        let mut met = Vec::new();
        let mut completed = Vec::new();
        let mut already_counted = 0;
        for offer in offers {
            let id = offer.personalized_offer_id;
            match self.apply_to_offer(offer, transaction, run).await? {
                Applied::Met {
                    goal,
                    completed: done,
                } => {
                    met.push((id, goal));
                    if done {
                        completed.push(id);
                    }
                }
                Applied::AlreadyCounted => already_counted += 1,
                Applied::Nothing => {}
            }
        }
        Ok(ProgressOutcome::Applied {
            met,
            completed,
            already_counted,
        })
    }

    /// One challenge: decide the step on the offer as read, write it on the
    /// condition that this state still holds, and on a stale state decide
    /// again on the offer as it is now. Every stale answer means another
    /// write met a goal, counted this transaction, created the counted map
    /// or revoked the offer, so goals + 2 attempts always suffice; more is a
    /// store misbehaving, reported as a conflict (retried).
    async fn apply_to_offer(
        &self,
        mut offer: PersonalizedOffer,
        transaction: &Transaction,
        run: &Run,
    ) -> Result<Applied, StoreError> {
        let attempts = offer
            .challenge
            .as_ref()
            .map_or(0, |challenge| challenge.goals.len())
            .saturating_add(2);
        for _ in 0..attempts {
            if !active_at(&offer, transaction.occurred_at) {
                return Ok(Applied::Nothing);
            }
            let Some(challenge) = offer.challenge.as_ref() else {
                return Ok(Applied::Nothing);
            };
            let (goal, completes) = match next_step(challenge, transaction) {
                Step::Meet { goal, completes } => (goal, completes),
                Step::AlreadyCounted { .. } => return Ok(Applied::AlreadyCounted),
                Step::AlreadyCompleted | Step::NoGoalMet => return Ok(Applied::Nothing),
            };
            let write = GoalMet {
                user_id: offer.user_id.clone(),
                personalized_offer_id: offer.personalized_offer_id,
                goal: goal.clone(),
                transaction_id: transaction.transaction_id.clone(),
                counted_key: counted_key(&transaction.transaction_id),
                met_at: transaction.occurred_at,
                counted_map_exists: !challenge.counted_transactions.is_empty(),
                completion: completes.then(|| Completion {
                    other_goals: challenge
                        .goals
                        .keys()
                        .filter(|name| **name != goal)
                        .cloned()
                        .collect(),
                    granted_at: run.now,
                }),
            };
            match run.call(self.store.record_goal(&write)).await? {
                ProgressWrite::Written => {
                    return Ok(Applied::Met {
                        goal,
                        completed: completes,
                    })
                }
                ProgressWrite::Stale(Some(now)) => offer = *now,
                ProgressWrite::Stale(None) => return Ok(Applied::Nothing),
            }
        }
        Err(StoreError::Conflict(format!(
            "offer {} kept changing under {attempts} progress writes",
            offer.personalized_offer_id
        )))
    }

    async fn reject(
        &self,
        record: &TransactionRecord,
        rejection: Rejection,
        run: &Run,
    ) -> Result<ProgressOutcome, Failure> {
        let rejected = RejectedTransaction {
            rejection_id: record.record_id,
            user_id: record.partition.clone(),
            transaction_id: record.transaction_id.clone(),
            code: rejection.code,
            message: rejection.message,
            rejected_at: run.now,
            event_id: record.event_id.clone(),
            sequence_number: record.sequence_number.clone(),
            image: record.image.clone(),
        };
        let id: Uuid = rejected.rejection_id;
        Ok(
            match run.call(self.store.reject_transaction(&rejected)).await? {
                WriteOutcome::AlreadyWritten | WriteOutcome::OtherOutcomeWritten => {
                    ProgressOutcome::DuplicateRejection { rejection_id: id }
                }
                _ => ProgressOutcome::Rejected {
                    code: rejected.code,
                    rejection_id: id,
                },
            },
        )
    }
}

impl<S: ChallengeStore> RecordHandler<TransactionRecord> for ChallengeProgress<S> {
    type Outcome = ProgressOutcome;

    async fn apply(
        &self,
        record: &TransactionRecord,
        run: &Run,
    ) -> Result<ProgressOutcome, Failure> {
        let transaction = match &record.transaction {
            Ok(transaction) => transaction,
            Err(rejection) => return self.reject(record, rejection.clone(), run).await,
        };
        match self.count(transaction, run).await {
            Ok(outcome) => Ok(outcome),
            // DynamoDB will never take this progress: the transaction is kept
            // with its words, not retried (the challenges it did advance keep
            // their progress; a redelivery finds them counted).
            Err(StoreError::Refused(detail)) => {
                let rejection = Rejection::new(
                    ReasonCode::InvalidTransaction,
                    format!("DynamoDB refused the progress: {detail}"),
                );
                self.reject(record, rejection, run).await
            }
            Err(error) => Err(error.into()),
        }
    }
}
