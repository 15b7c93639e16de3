//! BatchWriteItem in chunks of 25, a bounded number in flight, with
//! UnprocessedItems and transient errors retried (exponential backoff, full
//! jitter). Each item carries the line (or position) it came from, so that
//! what is left unwritten is reported by line. The call itself is the
//! table's `put_batch`. One writer for `offers assign`, `offers catalog
//! load` and the campaign webhook.

use super::{CatalogTable, PendingTable};
use crate::error::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::StreamExt;
use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

pub use super::Item;

/// BatchWriteItem takes at most 25 items.
pub const BATCH_SIZE: usize = 25;

/// One BatchWriteItem call of puts into one table. The items DynamoDB did
/// not process come back, to be sent again.
pub trait BatchPut {
    fn put_batch(&self, items: Vec<Item>) -> impl Future<Output = Result<Vec<Item>, StoreError>>;
}

impl BatchPut for PendingTable {
    async fn put_batch(&self, items: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        PendingTable::put_batch(self, items).await
    }
}

impl BatchPut for CatalogTable {
    async fn put_batch(&self, items: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        CatalogTable::put_batch(self, items).await
    }
}

/// Exponential backoff with full jitter: attempt n (from 1) waits a random
/// time in [0, min(cap, base·2ⁿ⁻¹)], so that writers that were throttled
/// together do not come back together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// Calls per chunk, the first included.
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(50),
            cap: Duration::from_secs(5),
            max_attempts: 10,
        }
    }
}

impl Backoff {
    /// The longest wait before retry number `retry` (1 for the first retry).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    pub fn delay(&self, retry: u32, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = self.ceiling(retry).as_micros() as u64;
        Duration::from_micros(rng.u64(0..=ceiling))
    }

    /// The wait before retry `retry` (from 1), or `None` once `max_attempts`
    /// calls were made: the pause the adapter's retrying operations take.
    pub fn pause(&self, retry: u32, rng: &mut fastrand::Rng) -> Option<Duration> {
        (retry < self.max_attempts).then(|| self.delay(retry, rng))
    }
}

/// An item to write and the line (or position) of the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LineItem {
    pub line: u64,
    pub item: Item,
}

/// What happened to the items of one or more chunks.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WriteReport {
    pub written: u64,
    /// Items sent again (UnprocessedItems, or the whole chunk after a transient error).
    pub retried: u64,
    /// Items given up on, by line, with why.
    pub failed: Vec<(u64, String)>,
    /// Why the writing stopped: a chunk was given up on (DynamoDB refused
    /// the call, as for a missing table or no access, or it still failed
    /// after every attempt). Other chunks would most likely fail alike, so
    /// no more are started.
    pub stopped: Option<String>,
    /// The chunk given up on was refused by DynamoDB (a permanent error),
    /// not left unwritten by throttling or an outage.
    pub refused: bool,
    /// The last line of the last chunk taken from the input: the valid
    /// rows after it were not attempted when the writing stopped.
    pub last_line_taken: Option<u64>,
}

impl WriteReport {
    pub fn merge(&mut self, other: WriteReport) {
        self.written += other.written;
        self.retried += other.retried;
        self.failed.extend(other.failed);
        if self.stopped.is_none() {
            self.stopped = other.stopped;
        }
        self.refused |= other.refused;
    }
}

/// Writes one chunk (at most 25 items of distinct keys), retrying what is
/// left. `key_attributes` name the table's key, to tell which items came back.
pub async fn write_chunk<W: BatchPut>(
    api: &W,
    chunk: Vec<LineItem>,
    key_attributes: &[&str],
    backoff: &Backoff,
) -> WriteReport {
    let mut report = WriteReport::default();
    let mut left = chunk;
    let mut rng = fastrand::Rng::new();
    let mut last_error = String::new();
    for attempt in 1..=backoff.max_attempts.max(1) {
        if attempt > 1 {
            tokio::time::sleep(backoff.delay(attempt - 1, &mut rng)).await;
            report.retried += left.len() as u64;
        }
        let items = left.iter().map(|entry| entry.item.clone()).collect();
        match api.put_batch(items).await {
            Ok(unprocessed) => {
                let unprocessed_keys: Vec<Vec<&AttributeValue>> = unprocessed
                    .iter()
                    .map(|item| key_of(item, key_attributes))
                    .collect();
                let before = left.len();
                left.retain(|entry| {
                    unprocessed_keys.contains(&key_of(&entry.item, key_attributes))
                });
                report.written += (before - left.len()) as u64;
                if left.is_empty() {
                    return report;
                }
                last_error = format!("still unprocessed (throttled) after {attempt} attempts");
            }
            Err(err) if err.is_transient() => {
                last_error = format!("{err} (after {attempt} attempts)");
            }
            Err(err) => {
                last_error = err.to_string();
                report.refused = true;
                break;
            }
        }
    }
    report.stopped = Some(last_error.clone());
    report.failed = left
        .into_iter()
        .map(|entry| (entry.line, last_error.clone()))
        .collect();
    report
}

fn key_of<'a>(item: &'a Item, key_attributes: &[&str]) -> Vec<&'a AttributeValue> {
    key_attributes
        .iter()
        .filter_map(|name| item.get(*name))
        .collect()
}

/// Writes every chunk, at most `concurrency` at a time, calling `progress`
/// as each one ends. Chunks are pulled from `chunks` only as slots free up,
/// so at most `concurrency` chunks are in memory. A chunk given up on stops
/// the pulling: the chunks in flight end, the rest is not attempted.
pub async fn write_all<W, I>(
    api: &W,
    mut chunks: I,
    key_attributes: &[&str],
    backoff: &Backoff,
    concurrency: usize,
    mut progress: impl FnMut(&WriteReport),
) -> WriteReport
where
    W: BatchPut,
    I: Iterator<Item = Vec<LineItem>>,
{
    let stopped = Cell::new(false);
    let last_line_taken = Cell::new(None);
    // The iterator reads the file: a blocking read of a buffered file is short
    // enough to run on the runtime's thread.
    let taken = std::iter::from_fn(|| {
        if stopped.get() {
            return None;
        }
        let chunk = chunks.next()?;
        last_line_taken.set(chunk.last().map(|entry| entry.line));
        Some(chunk)
    });
    let mut results = futures::stream::iter(taken)
        .map(|chunk| write_chunk(api, chunk, key_attributes, backoff))
        .buffer_unordered(concurrency.max(1));
    let mut total = WriteReport::default();
    while let Some(report) = results.next().await {
        if report.stopped.is_some() {
            stopped.set(true);
        }
        progress(&report);
        total.merge(report);
    }
    drop(results);
    total.last_line_taken = last_line_taken.get();
    total
}

/// Groups items into chunks of `BATCH_SIZE`.
pub struct Chunks<I> {
    items: I,
}

impl<I> Chunks<I> {
    pub fn new(items: I) -> Self {
        Self { items }
    }
}

impl<I: Iterator<Item = LineItem>> Iterator for Chunks<I> {
    type Item = Vec<LineItem>;

    fn next(&mut self) -> Option<Vec<LineItem>> {
        let chunk: Vec<LineItem> = self.items.by_ref().take(BATCH_SIZE).collect();
        (!chunk.is_empty()).then_some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::batch_write_item::{
        BatchWriteItemError, BatchWriteItemOutput,
    };
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use std::cell::RefCell;
    use std::collections::HashMap;

    fn item(user: &str, sort_key: &str) -> Item {
        HashMap::from([
            ("userId".to_owned(), AttributeValue::S(user.to_owned())),
            ("sortKey".to_owned(), AttributeValue::S(sort_key.to_owned())),
            ("offerId".to_owned(), AttributeValue::S("co-1".to_owned())),
        ])
    }

    fn chunk(count: u64) -> Vec<LineItem> {
        (1..=count)
            .map(|line| LineItem {
                line,
                item: item("u", &format!("s{line}")),
            })
            .collect()
    }

    const KEY: [&str; 2] = ["userId", "sortKey"];

    fn fast() -> Backoff {
        Backoff {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(4),
            max_attempts: 4,
        }
    }

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap_and_jitter_stays_below() {
        let backoff = Backoff::default();
        assert_eq!(backoff.ceiling(1), Duration::from_millis(50));
        assert_eq!(backoff.ceiling(2), Duration::from_millis(100));
        assert_eq!(backoff.ceiling(5), Duration::from_millis(800));
        assert_eq!(backoff.ceiling(8), Duration::from_secs(5));
        assert_eq!(backoff.ceiling(40), Duration::from_secs(5), "no overflow");
        let mut rng = fastrand::Rng::with_seed(7);
        let mut below_half = 0;
        for retry in 1..=12 {
            for _ in 0..200 {
                let delay = backoff.delay(retry, &mut rng);
                assert!(delay <= backoff.ceiling(retry));
                if delay < backoff.ceiling(retry) / 2 {
                    below_half += 1;
                }
            }
        }
        assert!(below_half > 600, "full jitter spreads over the whole range");
    }

    #[tokio::test]
    async fn unprocessed_items_are_sent_again_until_written_once() {
        // The first call leaves two items unprocessed; the second writes them.
        let first = mock!(Client::batch_write_item)
            .match_requests(|request| {
                request
                    .request_items()
                    .and_then(|items| items.get("pending"))
                    .map(Vec::len)
                    == Some(5)
            })
            .then_output(|| {
                BatchWriteItemOutput::builder()
                    .unprocessed_items(
                        "pending",
                        ["s2", "s4"]
                            .iter()
                            .map(|sort_key| {
                                WriteRequest::builder()
                                    .put_request(
                                        PutRequest::builder()
                                            .set_item(Some(item("u", sort_key)))
                                            .build()
                                            .expect("put"),
                                    )
                                    .build()
                            })
                            .collect(),
                    )
                    .build()
            });
        let second = mock!(Client::batch_write_item)
            .match_requests(|request| {
                let sort_keys: Vec<AttributeValue> = request
                    .request_items()
                    .and_then(|items| items.get("pending"))
                    .into_iter()
                    .flatten()
                    .filter_map(|write| write.put_request())
                    .filter_map(|put| put.item().get("sortKey").cloned())
                    .collect();
                sort_keys
                    == vec![
                        AttributeValue::S("s2".into()),
                        AttributeValue::S("s4".into()),
                    ]
            })
            .then_output(|| BatchWriteItemOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&first, &second]);
        let api = PendingTable::new(client, "pending");

        let report = write_chunk(&api, chunk(5), &KEY, &fast()).await;

        assert_eq!(report.written, 5);
        assert_eq!(report.retried, 2);
        assert!(report.failed.is_empty());
        assert_eq!(first.num_calls(), 1);
        assert_eq!(second.num_calls(), 1, "only the unprocessed items again");
    }

    #[tokio::test]
    async fn throttling_errors_are_retried_and_validation_errors_are_not() {
        let throttled = mock!(Client::batch_write_item)
            .sequence()
            .error(|| {
                BatchWriteItemError::generic(
                    ErrorMetadata::builder()
                        .code("ProvisionedThroughputExceededException")
                        .build(),
                )
            })
            .output(|| BatchWriteItemOutput::builder().build())
            .build();
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&throttled], |c| c
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled()));
        let report = write_chunk(&PendingTable::new(client, "t"), chunk(3), &KEY, &fast()).await;
        assert_eq!((report.written, report.retried), (3, 3));
        assert_eq!(throttled.num_calls(), 2);

        let refused = mock!(Client::batch_write_item).then_error(|| {
            BatchWriteItemError::generic(
                ErrorMetadata::builder().code("ValidationException").build(),
            )
        });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&refused]);
        let report = write_chunk(&PendingTable::new(client, "t"), chunk(3), &KEY, &fast()).await;
        assert_eq!(report.written, 0);
        assert_eq!(
            report
                .failed
                .iter()
                .map(|(line, _)| *line)
                .collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(refused.num_calls(), 1, "a refusal is not retried");
        assert!(report.stopped.is_some());
    }

    /// Never processes the item of sort key `s2`.
    struct Stubborn {
        calls: RefCell<u32>,
    }

    impl BatchPut for Stubborn {
        async fn put_batch(&self, items: Vec<Item>) -> Result<Vec<Item>, StoreError> {
            *self.calls.borrow_mut() += 1;
            Ok(items
                .into_iter()
                .filter(|item| item.get("sortKey") == Some(&AttributeValue::S("s2".into())))
                .collect())
        }
    }

    #[tokio::test]
    async fn what_stays_unprocessed_fails_by_line_after_bounded_attempts() {
        let api = Stubborn {
            calls: RefCell::new(0),
        };
        let report = write_all(
            &api,
            Chunks::new(chunk(30).into_iter()),
            &KEY,
            &fast(),
            2,
            |_| {},
        )
        .await;
        assert_eq!(report.written, 29);
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].0, 2);
        assert!(
            report.failed[0].1.contains("unprocessed"),
            "{:?}",
            report.failed
        );
        assert_eq!(
            *api.calls.borrow(),
            1 + 4,
            "the 5-item chunk once, the first chunk 4 times"
        );
        assert!(
            report.stopped.is_some(),
            "a chunk given up on stops the writing"
        );
        assert_eq!(
            report.last_line_taken,
            Some(30),
            "both chunks were in flight"
        );
    }

    /// Refuses every call, like a table that does not exist.
    struct Refusing {
        calls: RefCell<u32>,
    }

    impl BatchPut for Refusing {
        async fn put_batch(&self, _items: Vec<Item>) -> Result<Vec<Item>, StoreError> {
            *self.calls.borrow_mut() += 1;
            Err(StoreError::Refused("ResourceNotFoundException".into()))
        }
    }

    #[tokio::test]
    async fn a_refusal_stops_the_writing_and_says_where() {
        let api = Refusing {
            calls: RefCell::new(0),
        };
        let report = write_all(
            &api,
            Chunks::new(chunk(200).into_iter()),
            &KEY,
            &fast(),
            2,
            |_| {},
        )
        .await;
        assert_eq!(report.written, 0);
        assert!(report
            .stopped
            .as_deref()
            .is_some_and(|why| why.contains("ResourceNotFound")));
        assert_eq!(*api.calls.borrow(), 2, "the two chunks in flight, no more");
        assert_eq!(report.failed.len(), 50);
        assert_eq!(report.last_line_taken, Some(50));
    }

    #[test]
    fn chunks_hold_at_most_25_items() {
        let sizes: Vec<usize> = Chunks::new(chunk(60).into_iter())
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, vec![25, 25, 10]);
    }
}
