//! A local event source mapping for a DynamoDB stream, with the semantics
//! AWS's has for the settings template.yaml gives: batch size and batching
//! window, the event filter, partial batch responses (retry from the lowest
//! failed sequence number), bounded retries, bisect on function error,
//! maximum record age, and an on-failure destination for what exhausts them.
//!
//! Here the mapping follows the shards and cuts batches; `delivery` delivers
//! one batch, `checkpoints` keeps the position in each shard.

mod checkpoints;
mod delivery;

pub use crate::invoke::Invoke;
pub use checkpoints::Checkpoints;
pub use delivery::{
    deliver, on_failure_message, passes_filter, retry_pause, Delivery, FailedBatch,
    FailureCondition, OnFailure,
};

use crate::stop::stopping;
use crate::streams::{get_records, lambda_record_from_wire, shard_ids};
use crate::template::StreamMappingSettings;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use aws_smithy_types::error::display::DisplayErrorContext;
use delivery::sequence_number;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One shard being followed.
struct ShardCursor {
    iterator: Option<String>,
    /// Records read and filtered, not yet delivered.
    buffer: Vec<Value>,
    /// When the oldest buffered record was read (the batching window runs from it).
    buffered_since: Option<Instant>,
}

/// The mapping: follows every shard of a table's stream and delivers batches.
pub struct StreamMapping<I, F> {
    pub settings: StreamMappingSettings,
    pub function_name: String,
    pub invoker: I,
    pub on_failure: F,
    pub streams: aws_sdk_dynamodbstreams::Client,
    /// DynamoDB Local's endpoint, for the JSON GetRecords.
    pub endpoint: String,
    pub stream_arn: String,
    pub checkpoints: Checkpoints,
    /// How long to wait when the stream has nothing new.
    pub idle_pause: Duration,
}

impl<I: Invoke, F: OnFailure> StreamMapping<I, F> {
    /// Runs until `stop` turns true; the batch in hand is finished first.
    pub async fn run(mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut shards: BTreeMap<String, ShardCursor> = BTreeMap::new();
        while !stopping(&stop) {
            let progressed = match self.poll(&mut shards).await {
                Ok(progressed) => progressed,
                Err(error) => {
                    tracing::warn!(error = %error, "stream poll failed; retrying");
                    false
                }
            };
            if !progressed {
                tokio::select! {
                    _ = tokio::time::sleep(self.idle_pause) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// Reads new records of every shard and delivers the batches that are
    /// due. True when anything was read or delivered.
    async fn poll(&mut self, shards: &mut BTreeMap<String, ShardCursor>) -> Result<bool, String> {
        for shard_id in shard_ids(&self.streams, &self.stream_arn).await? {
            if let std::collections::btree_map::Entry::Vacant(slot) = shards.entry(shard_id.clone())
            {
                let iterator = self.open_shard(&shard_id).await?;
                slot.insert(ShardCursor {
                    iterator,
                    buffer: Vec::new(),
                    buffered_since: None,
                });
            }
        }
        let mut progressed = false;
        for (shard_id, cursor) in shards.iter_mut() {
            if cursor.buffer.len() < self.settings.batch_size {
                if let Some(current) = cursor.iterator.clone() {
                    let page = match get_records(&self.endpoint, &current, 1000).await {
                        Ok(page) => page,
                        Err(err) => {
                            // An expired iterator, or (DynamoDB Local) a
                            // TRIM_HORIZON one taken while the shard was
                            // empty: open the shard again from the checkpoint.
                            tracing::debug!(error = %err, shard_id, "reopening shard");
                            cursor.iterator = self.open_shard(shard_id).await?;
                            cursor.buffer.clear();
                            cursor.buffered_since = None;
                            continue;
                        }
                    };
                    cursor.iterator = page.next_iterator;
                    for record in page.records {
                        progressed = true;
                        let record = lambda_record_from_wire(record, &self.stream_arn);
                        if passes_filter(&self.settings, &record) {
                            cursor.buffered_since.get_or_insert_with(Instant::now);
                            cursor.buffer.push(record);
                        } else if let Some(sequence) = sequence_number(&record) {
                            // Filtered out: done with, as far as the mapping goes.
                            if cursor.buffer.is_empty() {
                                self.checkpoints.set(shard_id, sequence);
                            }
                        }
                    }
                }
            }
            let window_passed = cursor
                .buffered_since
                .is_some_and(|since| since.elapsed() >= self.settings.batching_window);
            if cursor.buffer.len() >= self.settings.batch_size
                || (window_passed && !cursor.buffer.is_empty())
            {
                let take = cursor.buffer.len().min(self.settings.batch_size);
                let batch: Vec<Value> = cursor.buffer.drain(..take).collect();
                cursor.buffered_since = (!cursor.buffer.is_empty()).then(Instant::now);
                let last = batch.last().and_then(sequence_number).map(str::to_owned);
                self.deliver_batch(shard_id, batch).await;
                if let Some(last) = last {
                    self.checkpoints.set(shard_id, &last);
                }
                progressed = true;
            }
        }
        Ok(progressed)
    }

    async fn open_shard(&self, shard_id: &str) -> Result<Option<String>, String> {
        let request = |kind: ShardIteratorType, after: Option<&String>| {
            self.streams
                .get_shard_iterator()
                .stream_arn(&self.stream_arn)
                .shard_id(shard_id)
                .shard_iterator_type(kind)
                .set_sequence_number(after.cloned())
                .send()
        };
        if let Some(after) = self.checkpoints.get(shard_id) {
            match request(ShardIteratorType::AfterSequenceNumber, Some(after)).await {
                Ok(output) => return Ok(output.shard_iterator().map(str::to_owned)),
                // Trimmed or gone (a fresh database): start from the beginning.
                Err(err) => {
                    tracing::warn!(error = %DisplayErrorContext(err), shard_id, "checkpoint not usable")
                }
            }
        }
        request(ShardIteratorType::TrimHorizon, None)
            .await
            .map(|output| output.shard_iterator().map(str::to_owned))
            .map_err(|err| DisplayErrorContext(err).to_string())
    }

    async fn deliver_batch(&self, shard_id: &str, batch: Vec<Value>) {
        let size = batch.len();
        let delivery = deliver(&self.settings, &self.invoker, batch, retry_pause).await;
        for failed in &delivery.failed {
            let message =
                on_failure_message(failed, &self.function_name, shard_id, &self.stream_arn);
            tracing::warn!(
                function = self.function_name.as_str(),
                condition = failed.condition.as_str(),
                records = failed.records.len(),
                "batch sent to the on-failure destination"
            );
            if let Err(err) = self.on_failure.send(failed, message).await {
                tracing::error!(error = %err, "on-failure destination not written");
            }
        }
        tracing::info!(
            function = self.function_name.as_str(),
            records = size,
            invocations = delivery.invocations,
            failed_records = delivery
                .failed
                .iter()
                .map(|f| f.records.len())
                .sum::<usize>(),
            "batch delivered"
        );
    }
}
