//! One stream batch, run the same way by every stream function. Every
//! record ends in exactly one [`Outcome`]: the runner reports the records
//! that are not changes (ignored, unusable) and the cut-offs; a service
//! supplies only what one record does ([`RecordHandler`], run by
//! [`run_batch`]) or, when its writes span records, what the batch's
//! changes do together ([`BatchHandler`], run by [`run_whole_batch`]).
//!
//! Per record: records of different keys run concurrently, records of one
//! key in stream order; after a failure the key's later records fail too
//! (Lambda retries them in order). Once the store is found down, or the
//! invocation deadline is near, no new record (or write) starts: Lambda
//! retries from the lowest failed sequence number anyway, so this loses
//! nothing, and an outage costs one timeout per concurrent write instead of
//! one per record. The failed records make the partial batch response.

use super::{IgnoredReason, Input};
use crate::deadline::{within_deadline, Deadline};
use crate::error::StoreError;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// A change as the runner needs to see it.
pub trait StreamRecord: Sync {
    fn event_id(&self) -> &str;
    fn sequence_number(&self) -> &str;
    /// When the record was written to the stream, if the record says.
    fn created_at(&self) -> Option<DateTime<Utc>> {
        None
    }
}

/// Implements [`StreamRecord`] for a record type whose fields say it all:
/// `event_id` and `sequence_number` (Strings), and `created_at` when named.
macro_rules! stream_record {
    ($record:ty) => {
        $crate::stream::runner::stream_record!(@impl $record, {});
    };
    ($record:ty, created_at) => {
        $crate::stream::runner::stream_record!(@impl $record, {
            fn created_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
                self.created_at
            }
        });
    };
    (@impl $record:ty, { $($created_at:tt)* }) => {
        impl $crate::stream::runner::StreamRecord for $record {
            fn event_id(&self) -> &str {
                &self.event_id
            }

            fn sequence_number(&self) -> &str {
                &self.sequence_number
            }

            $($created_at)*
        }
    };
}
pub(crate) use stream_record;

/// A change whose records run in stream order per key.
pub trait KeyedRecord: StreamRecord {
    /// The records of one key run in stream order: a user (and the row's
    /// sort key where rows of one user are independent, else `""`). The
    /// first part is reported as the record's key.
    fn key(&self) -> (&str, &str);
}

/// What a service does with one record.
pub trait RecordHandler<R>: Sync {
    type Outcome;

    /// Applies the record. An error is a failure of the record (reported
    /// for retry); a permanent refusal must be turned into an outcome here.
    /// Store calls go through [`Run::call`].
    fn apply(&self, record: &R, run: &Run) -> impl Future<Output = Result<Self::Outcome, Failure>>;
}

/// What a service does with a batch's changes together (statistics sum
/// them into shared counters): one result per change, in the order given.
/// It checks [`Run::cut_off`] before each write it starts.
pub trait BatchHandler<R>: Sync {
    type Outcome;
    /// What the batch as a whole reports beside its records.
    type Summary: Default;

    fn apply_all(
        &self,
        records: &[&R],
        run: &Run,
    ) -> impl Future<Output = (Vec<Result<Self::Outcome, Failure>>, Self::Summary)>;
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
    started: Instant,
}

impl Run {
    pub fn new(now: DateTime<Utc>, deadline: Option<Instant>, margin: Duration) -> Self {
        Self {
            now,
            deadline: deadline.map(|at| Deadline::new(at, margin)),
            store_down: AtomicBool::new(false),
            started: Instant::now(),
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

    /// A store call abandoned at the deadline whose failure does not stop
    /// the batch (the caller has a way on without it).
    pub async fn call_aside<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        within_deadline(self.deadline, call).await
    }

    pub fn store_down(&self) -> bool {
        self.store_down.load(Ordering::Relaxed)
    }

    /// Whether the invocation deadline is within the margin.
    pub fn deadline_near(&self) -> bool {
        self.deadline.is_some_and(|deadline| deadline.is_near())
    }

    /// How long the batch has run, for its log line.
    pub fn elapsed_ms(&self) -> u64 {
        self.started
            .elapsed()
            .as_millis()
            .try_into()
            .unwrap_or(u64::MAX)
    }

    fn note(&self, error: &StoreError) {
        if error.is_outage() {
            self.store_down.store(true, Ordering::Relaxed);
        }
    }

    /// Why no new record or write may start now, if it may not.
    pub fn cut_off(&self) -> Option<Failure> {
        if self.store_down() {
            Some(Failure::StoreDown)
        } else if self.deadline_near() {
            Some(Failure::DeadlineNear)
        } else {
            None
        }
    }
}

/// Why a record is reported failed (to be retried by Lambda).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    /// A store call failed for a reason retrying can help with.
    #[error("{0} ({kind})", kind = .0.kind())]
    Store(StoreError),
    /// The catalog could not be read for the batch (the dispatcher).
    #[error("catalog read failed: {0}")]
    Catalog(StoreError),
    /// Still conflicting with other invocations' writes after this many tries.
    #[error("still conflicting after {0} tries")]
    ConflictsExhausted(u32),
    /// A record of the same key before it failed: retried in order.
    #[error("an earlier record of the same key failed")]
    EarlierRecordOfKey,
    #[error("not started: the store was found down earlier in this batch")]
    StoreDown,
    #[error("not started: too close to the invocation deadline")]
    DeadlineNear,
    /// The row has a campaign, and which campaigns have an offers budget
    /// could not be read for the batch (the dispatcher).
    #[error("campaigns' offers budgets not read")]
    Budgets,
    /// A change without what is needed to act on it: nothing can be
    /// written; retrying lets it reach the on-failure destination.
    #[error("{0}")]
    Unusable(String),
}

impl Failure {
    /// A stable, short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Store(error) => error.kind(),
            Failure::Catalog(_) => "catalog",
            Failure::ConflictsExhausted(_) => "conflicts_exhausted",
            Failure::EarlierRecordOfKey => "earlier_record_of_key",
            Failure::StoreDown => "store_down",
            Failure::DeadlineNear => "deadline",
            Failure::Budgets => "budgets",
            Failure::Unusable(_) => "unusable",
        }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::Store(error)
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

/// A service's kinds of outcome (for counts, metrics and logs): its own,
/// and the two every service has.
pub trait OutcomeKind: Copy + Eq + 'static {
    const FAILED: Self;
    const IGNORED: Self;
    /// A stable, short name for logs and metrics.
    fn name(self) -> &'static str;
}

/// A service's own outcome, classified.
pub trait Classified {
    type Kind: OutcomeKind;
    fn kind(&self) -> Self::Kind;
}

impl<O: Classified> Outcome<O> {
    pub fn kind(&self) -> O::Kind {
        match self {
            Outcome::Done(done) => done.kind(),
            Outcome::Failed(_) => O::Kind::FAILED,
            Outcome::Ignored(_) => O::Kind::IGNORED,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordReport<O> {
    pub event_id: Option<String>,
    pub sequence_number: Option<String>,
    /// The key it ran under (none when ignored, or run with the whole batch).
    pub key: Option<String>,
    /// When the record was written to the stream (changes only).
    pub created_at: Option<DateTime<Utc>>,
    pub outcome: Outcome<O>,
}

impl<O> RecordReport<O> {
    /// The report of a record known only by its outcome (tests, metrics).
    pub fn of_outcome(outcome: Outcome<O>) -> Self {
        Self {
            event_id: None,
            sequence_number: None,
            key: None,
            created_at: None,
            outcome,
        }
    }
}

/// Every record of a batch, in the batch's order, with its outcome; and
/// what the batch as a whole reports (`S`: statistics' transactions...).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchReport<O, S = ()> {
    pub records: Vec<RecordReport<O>>,
    /// Whether a call found the store down (the rest was not started).
    pub store_down: bool,
    pub summary: S,
}

impl<O, S: Default> Default for BatchReport<O, S> {
    fn default() -> Self {
        Self {
            records: Vec::new(),
            store_down: false,
            summary: S::default(),
        }
    }
}

impl<O, S> BatchReport<O, S> {
    /// The same records with what the batch as a whole reports.
    pub fn with_summary<T>(self, summary: T) -> BatchReport<O, T> {
        BatchReport {
            records: self.records,
            store_down: self.store_down,
            summary,
        }
    }

    /// Sequence numbers to report in `batchItemFailures`.
    pub fn failed_sequence_numbers(&self) -> Vec<String> {
        self.records
            .iter()
            .filter(|record| matches!(record.outcome, Outcome::Failed(_)))
            .filter_map(|record| record.sequence_number.clone())
            .collect()
    }

    pub fn failed(&self) -> usize {
        self.count_where(|outcome| matches!(outcome, Outcome::Failed(_)))
    }

    pub fn ignored(&self) -> usize {
        self.count_where(|outcome| matches!(outcome, Outcome::Ignored(_)))
    }

    /// The records whose own outcome `matches`.
    pub fn done(&self, matches: impl Fn(&O) -> bool) -> usize {
        self.count_where(|outcome| matches!(outcome, Outcome::Done(done) if matches(done)))
    }

    fn count_where(&self, matches: impl Fn(&Outcome<O>) -> bool) -> usize {
        self.records
            .iter()
            .filter(|record| matches(&record.outcome))
            .count()
    }
}

impl<O: Classified, S> BatchReport<O, S> {
    /// How many records ended with an outcome of `kind`.
    pub fn count(&self, kind: O::Kind) -> usize {
        self.count_where(|outcome| outcome.kind() == kind)
    }
}

/// The report of a change with its outcome.
fn report_of<R: StreamRecord, O>(
    record: &R,
    key: Option<&str>,
    outcome: Outcome<O>,
) -> RecordReport<O> {
    RecordReport {
        event_id: Some(record.event_id().to_owned()),
        sequence_number: Some(record.sequence_number().to_owned()),
        key: key.map(str::to_owned),
        created_at: record.created_at(),
        outcome,
    }
}

/// Each record's report, once known (in the batch's order).
type Reports<O> = Vec<Option<RecordReport<O>>>;

/// The batch's changes by position, the other records reported already.
fn sort_out<R, O>(records: &[Input<R>]) -> (Reports<O>, Vec<(usize, &R)>) {
    let mut reports = Vec::with_capacity(records.len());
    let mut changes = Vec::with_capacity(records.len());
    for (index, input) in records.iter().enumerate() {
        let other = |event_id: &Option<String>, sequence_number: &Option<String>, outcome| {
            Some(RecordReport {
                event_id: event_id.clone(),
                sequence_number: sequence_number.clone(),
                key: None,
                created_at: None,
                outcome,
            })
        };
        reports.push(match input {
            Input::Change(record) => {
                changes.push((index, &**record));
                None
            }
            Input::Ignored {
                event_id,
                sequence_number,
                reason,
            } => other(event_id, sequence_number, Outcome::Ignored(reason.clone())),
            // Without a sequence number it cannot even be reported.
            Input::Unusable {
                event_id,
                sequence_number,
                error,
            } => other(
                event_id,
                sequence_number,
                match sequence_number {
                    Some(_) => Outcome::Failed(Failure::Unusable(error.clone())),
                    None => Outcome::Ignored(IgnoredReason::UnreadableWithoutSequenceNumber(
                        error.clone(),
                    )),
                },
            ),
        });
    }
    (reports, changes)
}

/// One key's records in stream order: position in the batch and the record.
type Group<'a, R> = Vec<(usize, &'a R)>;

/// Runs one batch through `handler`, record by record: see the module's
/// documentation.
pub async fn run_batch<R, H>(
    handler: &H,
    records: &[Input<R>],
    run: &Run,
    concurrency: usize,
) -> BatchReport<H::Outcome>
where
    R: KeyedRecord,
    H: RecordHandler<R>,
{
    let (mut reports, changes) = sort_out(records);
    let mut groups: Vec<Group<'_, R>> = Vec::new();
    let mut group_of_key: HashMap<(&str, &str), usize> = HashMap::new();
    for (index, record) in changes {
        let next = groups.len();
        let group = *group_of_key.entry(record.key()).or_insert(next);
        if group == next {
            groups.push(Vec::new());
        }
        if let Some(members) = groups.get_mut(group) {
            members.push((index, record));
        }
    }
    let results: Vec<Vec<(usize, RecordReport<H::Outcome>)>> = stream::iter(groups)
        .map(|group| async move {
            let mut done = Vec::with_capacity(group.len());
            let mut earlier_failure = false;
            for (index, record) in group {
                let outcome = if earlier_failure {
                    Outcome::Failed(Failure::EarlierRecordOfKey)
                } else if let Some(cut_off) = run.cut_off() {
                    Outcome::Failed(cut_off)
                } else {
                    match handler.apply(record, run).await {
                        Ok(outcome) => Outcome::Done(outcome),
                        Err(failure) => {
                            if let Failure::Store(error) = &failure {
                                run.note(error);
                            }
                            Outcome::Failed(failure)
                        }
                    }
                };
                earlier_failure |= matches!(outcome, Outcome::Failed(_));
                done.push((index, report_of(record, Some(record.key().0), outcome)));
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
        summary: (),
    }
}

/// Runs one batch through `handler`, its changes together: see the
/// module's documentation.
pub async fn run_whole_batch<R, H>(
    handler: &H,
    records: &[Input<R>],
    run: &Run,
) -> BatchReport<H::Outcome, H::Summary>
where
    R: StreamRecord,
    H: BatchHandler<R>,
{
    let (mut reports, changes) = sort_out(records);
    let given: Vec<&R> = changes.iter().map(|(_, record)| *record).collect();
    // Boxed: nested in the invocation's future, the handler's future is
    // deeper than the compiler's layout limit allows.
    let (results, summary) = Box::pin(handler.apply_all(&given, run)).await;
    let mut results = results.into_iter();
    for (index, record) in changes {
        // A result missing is a bug of the handler: the record is retried.
        let outcome = match results.next() {
            Some(Ok(outcome)) => Outcome::Done(outcome),
            Some(Err(failure)) => Outcome::Failed(failure),
            None => Outcome::Failed(Failure::Store(StoreError::Unavailable(
                "not written".into(),
            ))),
        };
        reports[index] = Some(report_of(record, None, outcome));
    }
    BatchReport {
        records: reports.into_iter().flatten().collect(),
        store_down: run.store_down(),
        summary,
    }
}

/// The partial batch response: the failed records' sequence numbers in
/// `batchItemFailures` (Lambda retries from the lowest).
pub fn partial_batch_response<O, S>(report: &BatchReport<O, S>) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for sequence_number in report.failed_sequence_numbers() {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence_number);
        response.batch_item_failures.push(failure);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A record: its key and its sequence number.
    struct Record(&'static str, &'static str);

    impl StreamRecord for Record {
        fn event_id(&self) -> &str {
            ""
        }
        fn sequence_number(&self) -> &str {
            self.1
        }
    }

    impl KeyedRecord for Record {
        fn key(&self) -> (&str, &str) {
            (self.0, "")
        }
    }

    /// A change of `key` with sequence number `sequence`, or (no key) an ignored record.
    fn record(key: Option<&'static str>, sequence: &'static str) -> Input<Record> {
        match key {
            Some(key) => Input::Change(Box::new(Record(key, sequence))),
            None => Input::Ignored {
                event_id: None,
                sequence_number: Some(sequence.into()),
                reason: IgnoredReason::Remove,
            },
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

        async fn apply(&self, record: &Record, run: &Run) -> Result<&'static str, Failure> {
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
            record(Some("a"), "1"),
            record(Some("b"), "2"),
            record(Some("a"), "3"),
            record(None, "4"),
            record(Some("b"), "5"),
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
        let records = [record(Some("a"), "1")];
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
