//! A local event source mapping for a DynamoDB stream, with the semantics
//! AWS's has for the settings template.yaml gives: batch size and batching
//! window, the event filter, partial batch responses (retry from the lowest
//! failed sequence number), bounded retries, bisect on function error,
//! maximum record age, and an on-failure destination for what exhausts them.
//!
//! With `ParallelizationFactor` above 1, each shard has that many slots
//! delivering a batch at once; one partition key's records are always in the
//! same slot, in order (`shard`).
//!
//! Here the mapping follows the shards and delivers the batches that are due;
//! `shard` cuts them and keeps track of what is done, `delivery` delivers one
//! batch, `checkpoints` keeps the position in each shard.

mod checkpoints;
mod delivery;
mod shard;

pub use crate::invoke::Invoke;
pub use checkpoints::Checkpoints;
pub use delivery::{
    deliver, on_failure_message, passes_filter, retry_pause, Delivery, FailedBatch,
    FailureCondition, OnFailure,
};

use crate::error::BedError;
use crate::stop::stopping;
use crate::streams::{get_records, lambda_record_from_wire, shard_ids};
use crate::template::StreamMappingSettings;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use aws_smithy_types::error::display::DisplayErrorContext;
use serde_json::Value;
use shard::{ShardCursor, SlotBatch};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::{Id, JoinSet};

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

/// What a batch's delivery needs, shared by the batches in flight.
struct Deliverer<I, F> {
    settings: StreamMappingSettings,
    function_name: String,
    stream_arn: String,
    invoker: I,
    on_failure: F,
}

/// The part of the mapping that reads the shards and keeps the positions.
struct Follower {
    settings: StreamMappingSettings,
    streams: aws_sdk_dynamodbstreams::Client,
    endpoint: String,
    stream_arn: String,
    checkpoints: Checkpoints,
    shards: BTreeMap<String, ShardCursor>,
    /// The shard and slot of each batch in flight, and its records' positions.
    in_flight: HashMap<Id, (String, usize, Vec<u64>)>,
}

impl<I: Invoke + 'static, F: OnFailure + 'static> StreamMapping<I, F> {
    /// Runs until `stop` turns true; the batches in hand are finished first.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let idle_pause = self.idle_pause;
        let deliverer = Arc::new(Deliverer {
            settings: self.settings.clone(),
            function_name: self.function_name,
            stream_arn: self.stream_arn.clone(),
            invoker: self.invoker,
            on_failure: self.on_failure,
        });
        let mut follower = Follower {
            settings: self.settings,
            streams: self.streams,
            endpoint: self.endpoint,
            stream_arn: self.stream_arn,
            checkpoints: self.checkpoints,
            shards: BTreeMap::new(),
            in_flight: HashMap::new(),
        };
        let mut deliveries: JoinSet<()> = JoinSet::new();
        while !stopping(&stop) {
            let mut progressed = match follower.poll().await {
                Ok(progressed) => progressed,
                Err(error) => {
                    tracing::warn!(error = %error, "stream poll failed; retrying");
                    false
                }
            };
            while let Some(done) = deliveries.try_join_next_with_id() {
                follower.finished(done);
                progressed = true;
            }
            for (shard_id, batch) in follower.due_batches() {
                let SlotBatch {
                    slot,
                    positions,
                    records,
                } = batch;
                let deliverer = deliverer.clone();
                let shard = shard_id.clone();
                let task = deliveries.spawn(async move {
                    deliverer.deliver_batch(&shard, records).await;
                });
                follower
                    .in_flight
                    .insert(task.id(), (shard_id, slot, positions));
                progressed = true;
            }
            if !progressed {
                tokio::select! {
                    _ = tokio::time::sleep(idle_pause) => {}
                    _ = stop.changed() => {}
                    Some(done) = deliveries.join_next_with_id() => follower.finished(done),
                }
            }
        }
        while let Some(done) = deliveries.join_next_with_id().await {
            follower.finished(done);
        }
    }
}

impl Follower {
    /// Reads new records of every shard into their slots. True when
    /// anything was read.
    async fn poll(&mut self) -> Result<bool, BedError> {
        for shard_id in shard_ids(&self.streams, &self.stream_arn).await? {
            if !self.shards.contains_key(&shard_id) {
                let after = self.checkpoints.get(&shard_id).cloned();
                let iterator = self.open_shard(&shard_id, after).await?;
                let cursor = ShardCursor::new(iterator, self.settings.parallelization_factor);
                self.shards.insert(shard_id, cursor);
            }
        }
        // Enough read ahead for a full batch in every slot.
        let read_ahead = self.settings.batch_size * self.settings.parallelization_factor;
        let mut progressed = false;
        let shard_ids: Vec<String> = self.shards.keys().cloned().collect();
        for shard_id in shard_ids {
            let Some(cursor) = self.shards.get(&shard_id) else {
                continue;
            };
            if cursor.buffered() >= read_ahead {
                continue;
            }
            let Some(current) = cursor.iterator.clone() else {
                continue;
            };
            let reopen_after = cursor
                .last_read()
                .or(self.checkpoints.get(&shard_id))
                .cloned();
            let page = match get_records(&self.endpoint, &current, 1000).await {
                Ok(page) => page,
                Err(err) => {
                    // An expired iterator, or (DynamoDB Local) a TRIM_HORIZON
                    // one taken while the shard was empty: open the shard
                    // again after the last record read (the records in
                    // slots and in flight are kept, not read twice).
                    tracing::debug!(error = %err, shard_id, "reopening shard");
                    let iterator = self.open_shard(&shard_id, reopen_after).await?;
                    if let Some(cursor) = self.shards.get_mut(&shard_id) {
                        cursor.iterator = iterator;
                    }
                    continue;
                }
            };
            let Some(cursor) = self.shards.get_mut(&shard_id) else {
                continue;
            };
            cursor.iterator = page.next_iterator;
            for record in page.records {
                progressed = true;
                let record = lambda_record_from_wire(record, &self.stream_arn);
                let passes = passes_filter(&self.settings, &record);
                if let Some(position) = cursor.push(record, passes, &self.settings.partition_key) {
                    self.checkpoints.set(&shard_id, &position);
                }
            }
        }
        Ok(progressed)
    }

    /// The batches due in every shard, their slots marked busy.
    fn due_batches(&mut self) -> Vec<(String, SlotBatch)> {
        let (batch_size, window) = (self.settings.batch_size, self.settings.batching_window);
        self.shards
            .iter_mut()
            .flat_map(|(shard_id, cursor)| {
                cursor
                    .due_batches(batch_size, window)
                    .into_iter()
                    .map(|batch| (shard_id.clone(), batch))
            })
            .collect()
    }

    /// A batch's delivery ended: its slot is free and the shard's position
    /// advances past what is done. A delivery that panicked (a bug) counts
    /// as done, so that its slot's keys do not stall for good.
    fn finished(&mut self, done: Result<(Id, ()), tokio::task::JoinError>) {
        let id = match done {
            Ok((id, ())) => id,
            Err(err) => {
                tracing::error!(error = %err, "a batch delivery panicked");
                err.id()
            }
        };
        let Some((shard_id, slot, positions)) = self.in_flight.remove(&id) else {
            return;
        };
        let Some(cursor) = self.shards.get_mut(&shard_id) else {
            return;
        };
        if let Some(position) = cursor.finished(slot, &positions) {
            self.checkpoints.set(&shard_id, &position);
        }
    }

    /// An iterator on the shard after `after`, or from its start.
    async fn open_shard(
        &self,
        shard_id: &str,
        after: Option<String>,
    ) -> Result<Option<String>, BedError> {
        let request = |kind: ShardIteratorType, after: Option<&String>| {
            self.streams
                .get_shard_iterator()
                .stream_arn(&self.stream_arn)
                .shard_id(shard_id)
                .shard_iterator_type(kind)
                .set_sequence_number(after.cloned())
                .send()
        };
        if let Some(after) = after.as_ref() {
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
            .map_err(BedError::aws)
    }
}

impl<I: Invoke, F: OnFailure> Deliverer<I, F> {
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
