//! One stream batch, run the same way by every stream function: records of
//! different keys concurrently, records of one key in stream order; after a
//! failure the key's later records fail too (Lambda retries them in order);
//! once the store is found down, or the invocation deadline is near, no new
//! record starts. Every record ends in exactly one [`Outcome`]; the failed
//! ones make the partial batch response. A service supplies only what one
//! record does ([`RecordHandler`]).

use crate::deadline::{within_deadline, Deadline};
use crate::dispatch::IgnoredReason;
use crate::error::StoreError;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// A record as the runner needs to see it.
pub trait KeyedRecord: Sync {
    /// What the service is handed of a record it applies.
    type Applied: Sync;
    fn event_id(&self) -> Option<&str>;
    fn sequence_number(&self) -> Option<&str>;
    /// The key whose records run in stream order (a user) and what to
    /// apply, or why the record is not applied at all.
    fn entry(&self) -> Result<(&str, &Self::Applied), &IgnoredReason>;
}

/// What a service does with one record.
pub trait RecordHandler<R>: Sync {
    type Outcome;

    /// Applies the record. An error is a failure of the record (reported
    /// for retry); a permanent refusal must be turned into an outcome here.
    /// Store calls go through [`Run::call`].
    fn apply(
        &self,
        record: &R,
        run: &Run,
    ) -> impl Future<Output = Result<Self::Outcome, StoreError>>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerSettings {
    /// How many keys' records run at once.
    pub concurrency: usize,
    /// Time kept in hand before the invocation deadline.
    pub deadline_margin: Duration,
}

/// One batch's run: its clock, its deadline, whether the store was found down.
#[derive(Debug)]
pub struct Run {
    pub now: DateTime<Utc>,
    deadline: Option<Deadline>,
    store_down: AtomicBool,
}

impl Run {
    pub fn new(now: DateTime<Utc>, deadline: Option<Instant>, margin: Duration) -> Self {
        Self {
            now,
            deadline: deadline.map(|at| Deadline::new(at, margin)),
            store_down: AtomicBool::new(false),
        }
    }

    /// A store call, abandoned at the deadline; an outage stops the batch
    /// from starting new records.
    pub async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let result = within_deadline(self.deadline, call).await;
        if let Err(error) = &result {
            self.note(error);
        }
        result
    }

    pub fn store_down(&self) -> bool {
        self.store_down.load(Ordering::Relaxed)
    }

    fn note(&self, error: &StoreError) {
        if error.is_outage() {
            self.store_down.store(true, Ordering::Relaxed);
        }
    }

    /// Why a record may not start now, if it may not.
    fn refusal(&self) -> Option<Failure> {
        if self.store_down() {
            Some(Failure::StoreDown)
        } else if self.deadline.is_some_and(|deadline| deadline.is_near()) {
            Some(Failure::DeadlineNear)
        } else {
            None
        }
    }
}

/// Why a record is reported failed (to be retried by Lambda).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    #[error("{0} ({kind})", kind = .0.kind())]
    Store(StoreError),
    /// A record of the same key before it failed: retried in order.
    #[error("an earlier record of the same key failed")]
    EarlierRecordOfKey,
    #[error("not started: the store was found down earlier in this batch")]
    StoreDown,
    #[error("not started: too close to the invocation deadline")]
    DeadlineNear,
}

impl Failure {
    /// A stable, short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Store(error) => error.kind(),
            Failure::EarlierRecordOfKey => "earlier_record_of_key",
            Failure::StoreDown => "store_down",
            Failure::DeadlineNear => "deadline",
        }
    }
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<O> {
    /// The service's own outcome.
    Done(O),
    /// Transient: reported in `batchItemFailures`.
    Failed(Failure),
    Ignored(IgnoredReason),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordReport<O> {
    pub event_id: Option<String>,
    pub sequence_number: Option<String>,
    /// The key it ran under (none when ignored).
    pub key: Option<String>,
    pub outcome: Outcome<O>,
}

/// Every record of a batch, in the batch's order, with its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchReport<O> {
    pub records: Vec<RecordReport<O>>,
    /// Whether a call found the store down (the rest was not started).
    pub store_down: bool,
}

impl<O> BatchReport<O> {
    /// Sequence numbers to report in `batchItemFailures`.
    pub fn failed_sequence_numbers(&self) -> Vec<String> {
        self.records
            .iter()
            .filter(|record| matches!(record.outcome, Outcome::Failed(_)))
            .filter_map(|record| record.sequence_number.clone())
            .collect()
    }

    pub fn failed(&self) -> usize {
        self.count(|outcome| matches!(outcome, Outcome::Failed(_)))
    }

    pub fn ignored(&self) -> usize {
        self.count(|outcome| matches!(outcome, Outcome::Ignored(_)))
    }

    /// The records whose own outcome `matches`.
    pub fn done(&self, matches: impl Fn(&O) -> bool) -> usize {
        self.count(|outcome| matches!(outcome, Outcome::Done(done) if matches(done)))
    }

    fn count(&self, matches: impl Fn(&Outcome<O>) -> bool) -> usize {
        self.records
            .iter()
            .filter(|record| matches(&record.outcome))
            .count()
    }
}

/// The partial batch response: the failed records' sequence numbers in
/// `batchItemFailures` (Lambda retries from the lowest).
pub fn partial_batch_response(failed_sequence_numbers: Vec<String>) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for sequence_number in failed_sequence_numbers {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence_number);
        response.batch_item_failures.push(failure);
    }
    response
}

/// One key's records in stream order: position in the batch, the record,
/// what is applied of it.
type Group<'a, R> = Vec<(usize, &'a R, &'a <R as KeyedRecord>::Applied)>;

/// Runs one batch through `handler`: see the module's documentation.
pub async fn run_batch<R, H>(
    handler: &H,
    records: &[R],
    run: &Run,
    concurrency: usize,
) -> BatchReport<H::Outcome>
where
    R: KeyedRecord,
    H: RecordHandler<R::Applied>,
{
    let report = |record: &R, key: Option<&str>, outcome| RecordReport {
        event_id: record.event_id().map(str::to_owned),
        sequence_number: record.sequence_number().map(str::to_owned),
        key: key.map(str::to_owned),
        outcome,
    };
    let mut reports: Vec<Option<RecordReport<H::Outcome>>> = records.iter().map(|_| None).collect();
    let mut groups: Vec<(&str, Group<'_, R>)> = Vec::new();
    let mut group_of_key: HashMap<&str, usize> = HashMap::new();
    for (index, record) in records.iter().enumerate() {
        match record.entry() {
            Ok((key, applied)) => {
                let next = groups.len();
                let group = *group_of_key.entry(key).or_insert(next);
                if group == next {
                    groups.push((key, Vec::new()));
                }
                if let Some((_, members)) = groups.get_mut(group) {
                    members.push((index, record, applied));
                }
            }
            Err(reason) => {
                reports[index] = Some(report(record, None, Outcome::Ignored(reason.clone())));
            }
        }
    }
    let results: Vec<Vec<(usize, RecordReport<H::Outcome>)>> = stream::iter(groups)
        .map(|(key, group)| async move {
            let mut done = Vec::with_capacity(group.len());
            let mut earlier_failure = false;
            for (index, record, applied) in group {
                let outcome = if earlier_failure {
                    Outcome::Failed(Failure::EarlierRecordOfKey)
                } else if let Some(refusal) = run.refusal() {
                    Outcome::Failed(refusal)
                } else {
                    match handler.apply(applied, run).await {
                        Ok(outcome) => Outcome::Done(outcome),
                        Err(error) => {
                            run.note(&error);
                            Outcome::Failed(Failure::Store(error))
                        }
                    }
                };
                earlier_failure |= matches!(outcome, Outcome::Failed(_));
                done.push((index, report(record, Some(key), outcome)));
            }
            done
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for (index, record) in results.into_iter().flatten() {
        reports[index] = Some(record);
    }
    BatchReport {
        records: reports.into_iter().flatten().collect(),
        store_down: run.store_down(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A record: its key (or ignored) and its sequence number.
    struct Record(Option<&'static str>, &'static str);

    const IGNORED: IgnoredReason = IgnoredReason::Remove;

    impl KeyedRecord for Record {
        type Applied = Self;
        fn event_id(&self) -> Option<&str> {
            None
        }
        fn sequence_number(&self) -> Option<&str> {
            Some(self.1)
        }
        fn entry(&self) -> Result<(&str, &Self), &IgnoredReason> {
            self.0.map(|key| (key, self)).ok_or(&IGNORED)
        }
    }

    /// Fails the sequence numbers it is given with the error; records the
    /// order it applied the others in.
    struct Handler {
        failing: HashMap<&'static str, StoreError>,
        applied: Mutex<Vec<&'static str>>,
    }

    impl RecordHandler<Record> for Handler {
        type Outcome = &'static str;

        async fn apply(&self, record: &Record, run: &Run) -> Result<&'static str, StoreError> {
            let failing = self.failing.get(record.1).cloned();
            run.call(async move { failing.map_or(Ok(()), Err) }).await?;
            if let Ok(mut applied) = self.applied.lock() {
                applied.push(record.1);
            }
            Ok(record.1)
        }
    }

    fn run() -> Run {
        Run::new(Utc::now(), None, Duration::ZERO)
    }

    #[tokio::test]
    async fn a_failure_fails_the_keys_later_records_and_an_outage_stops_the_batch() {
        let records = [
            Record(Some("a"), "1"),
            Record(Some("b"), "2"),
            Record(Some("a"), "3"),
            Record(None, "4"),
            Record(Some("b"), "5"),
        ];
        let handler = Handler {
            failing: HashMap::from([("1", StoreError::Conflict("busy".into()))]),
            applied: Mutex::new(Vec::new()),
        };
        let report = run_batch(&handler, &records, &run(), 1).await;
        assert_eq!(report.failed_sequence_numbers(), ["1", "3"]);
        assert_eq!(
            report.records[2].outcome,
            Outcome::Failed(Failure::EarlierRecordOfKey)
        );
        assert_eq!(report.ignored(), 1);
        assert_eq!(report.done(|_| true), 2);
        assert!(!report.store_down);
        let applied = handler
            .applied
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default();
        assert_eq!(applied, ["2", "5"], "b's records in order");

        let handler = Handler {
            failing: HashMap::from([("1", StoreError::Unavailable("down".into()))]),
            applied: Mutex::new(Vec::new()),
        };
        let report = run_batch(&handler, &records, &run(), 1).await;
        assert!(report.store_down);
        assert_eq!(report.failed_sequence_numbers(), ["1", "2", "3", "5"]);
        assert_eq!(
            report.records[1].outcome,
            Outcome::Failed(Failure::StoreDown)
        );
    }

    #[tokio::test]
    async fn nothing_starts_past_the_deadline() {
        let records = [Record(Some("a"), "1")];
        let handler = Handler {
            failing: HashMap::new(),
            applied: Mutex::new(Vec::new()),
        };
        let past = Run::new(Utc::now(), Some(Instant::now()), Duration::from_secs(1));
        let report = run_batch(&handler, &records, &past, 4).await;
        assert_eq!(
            report.records[0].outcome,
            Outcome::Failed(Failure::DeadlineNear)
        );
        assert_eq!(report.records[0].key.as_deref(), Some("a"));
    }
}
