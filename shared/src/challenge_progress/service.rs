//! The challenge progress service: each transaction meets at most one goal
//! of each of its user's active challenges, exactly once, with conditional
//! writes decided again on the current state when another write got there
//! first. Records of different users run concurrently; records of one user
//! run in stream order.

use super::report::{ProgressFailure, ProgressOutcome, ProgressReport, RecordProgress};
use super::{TransactionInput, TransactionRecord};
use crate::deadline::{within_deadline, Deadline};
use crate::error::StoreError;
use crate::ports::{
    ChallengeStore, Completion, GoalMet, ProgressWrite, RejectedTransaction, WriteOutcome,
};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use offers_domain::progress::{active_at, counted_key, next_step, Step};
use offers_domain::{PersonalizedOffer, ReasonCode, Rejection, Transaction};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressSettings {
    /// How many users' records run at once.
    pub concurrency: usize,
    /// Time kept in hand before the invocation deadline.
    pub deadline_margin: Duration,
}

pub struct ChallengeProgress<S> {
    store: S,
    settings: ProgressSettings,
}

struct Run {
    now: DateTime<Utc>,
    deadline: Option<Deadline>,
    store_down: AtomicBool,
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

    /// Handles the records of one stream batch; every record ends in exactly
    /// one outcome. After a failure, the user's later records fail too (they
    /// are retried in order); once the store is found down, no new record starts.
    pub async fn process_batch(
        &self,
        records: Vec<TransactionInput>,
        deadline: Option<Instant>,
    ) -> ProgressReport {
        let started = Instant::now();
        let run = Run {
            now: Utc::now(),
            deadline: deadline.map(|at| Deadline::new(at, self.settings.deadline_margin)),
            store_down: AtomicBool::new(false),
        };
        let mut reports: Vec<Option<RecordProgress>> = vec![None; records.len()];
        let mut groups: Vec<Vec<(usize, &TransactionRecord)>> = Vec::new();
        let mut group_of_user: HashMap<&str, usize> = HashMap::new();
        for (index, input) in records.iter().enumerate() {
            match input {
                TransactionInput::Insert(record) => {
                    let next = groups.len();
                    let group = *group_of_user.entry(record.user_key()).or_insert(next);
                    if group == next {
                        groups.push(Vec::new());
                    }
                    if let Some(members) = groups.get_mut(group) {
                        members.push((index, record));
                    }
                }
                TransactionInput::Ignored {
                    event_id,
                    sequence_number,
                    reason,
                } => {
                    reports[index] = Some(RecordProgress {
                        event_id: event_id.clone(),
                        sequence_number: sequence_number.clone(),
                        user_id: None,
                        transaction_id: None,
                        outcome: ProgressOutcome::Ignored(reason.clone()),
                    });
                }
            }
        }
        let results: Vec<Vec<(usize, RecordProgress)>> = stream::iter(groups)
            .map(|group| self.run_group(group, &run))
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        for (index, report) in results.into_iter().flatten() {
            reports[index] = Some(report);
        }
        let report = ProgressReport {
            records: reports.into_iter().flatten().collect(),
            store_down: run.store_down.load(Ordering::Relaxed),
        };
        report.log(started.elapsed().as_millis().try_into().unwrap_or(u64::MAX));
        report
    }

    async fn run_group(
        &self,
        group: Vec<(usize, &TransactionRecord)>,
        run: &Run,
    ) -> Vec<(usize, RecordProgress)> {
        let mut reports = Vec::with_capacity(group.len());
        let mut earlier_failure = false;
        for (index, record) in group {
            let outcome = if earlier_failure {
                ProgressOutcome::Failed(ProgressFailure::EarlierRecordOfUser)
            } else if run.store_down.load(Ordering::Relaxed) {
                ProgressOutcome::Failed(ProgressFailure::StoreDown)
            } else if run.deadline.is_some_and(|deadline| deadline.is_near()) {
                ProgressOutcome::Failed(ProgressFailure::DeadlineNear)
            } else {
                self.apply(record, run).await
            };
            earlier_failure |= matches!(outcome, ProgressOutcome::Failed(_));
            reports.push((
                index,
                RecordProgress {
                    event_id: Some(record.event_id.clone()),
                    sequence_number: Some(record.sequence_number.clone()),
                    user_id: Some(record.user_key().to_owned()),
                    transaction_id: record.transaction_id.clone(),
                    outcome,
                },
            ));
        }
        reports
    }

    async fn apply(&self, record: &TransactionRecord, run: &Run) -> ProgressOutcome {
        let transaction = match &record.transaction {
            Ok(transaction) => transaction,
            Err(rejection) => return self.reject(record, rejection.clone(), run).await,
        };
        match self.count(transaction, run).await {
            Ok(outcome) => outcome,
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
            Err(error) => failed(error, run),
        }
    }

    /// Applies the transaction to each of its user's challenges active at
    /// its `occurredAt`.
    async fn count(
        &self,
        transaction: &Transaction,
        run: &Run,
    ) -> Result<ProgressOutcome, StoreError> {
        let offers = within_deadline(
            run.deadline,
            self.store.challenge_offers(&transaction.user_id),
        )
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
            match within_deadline(run.deadline, self.store.record_goal(&write)).await? {
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
    ) -> ProgressOutcome {
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
        match within_deadline(run.deadline, self.store.reject_transaction(&rejected)).await {
            Ok(WriteOutcome::AlreadyWritten) | Ok(WriteOutcome::OtherOutcomeWritten) => {
                ProgressOutcome::DuplicateRejection { rejection_id: id }
            }
            Ok(_) => ProgressOutcome::Rejected {
                code: rejected.code,
                rejection_id: id,
            },
            Err(error) => failed(error, run),
        }
    }
}

fn failed(error: StoreError, run: &Run) -> ProgressOutcome {
    if error.is_outage() {
        run.store_down.store(true, Ordering::Relaxed);
    }
    ProgressOutcome::Failed(ProgressFailure::Store(error))
}
