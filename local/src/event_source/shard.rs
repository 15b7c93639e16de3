//! One shard as the mapping follows it, with AWS's `ParallelizationFactor`:
//! its records spread over that many slots by a hash of their partition key
//! (so one key's records are always in the same slot, in shard order), a
//! slot delivering one batch at a time while the others deliver theirs, and
//! the shard's position advancing only past records that are done.

use super::delivery::sequence_number;
use serde_json::Value;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A batch cut from one slot, to be delivered while the slot waits.
#[derive(Debug)]
pub(super) struct SlotBatch {
    pub slot: usize,
    /// The records' read positions, to mark them done once delivered.
    pub positions: Vec<u64>,
    pub records: Vec<Value>,
}

#[derive(Debug, Default)]
struct Slot {
    /// Records read and filtered, not yet in a batch, with their read position.
    buffer: VecDeque<(u64, Value)>,
    /// When the oldest buffered record was read (the batching window runs from it).
    buffered_since: Option<Instant>,
    /// A batch of this slot is being delivered: the next waits for it.
    busy: bool,
}

/// One shard being followed.
#[derive(Debug)]
pub(super) struct ShardCursor {
    pub iterator: Option<String>,
    slots: Vec<Slot>,
    /// The sequence number of every record read and not yet behind the
    /// position, in shard order, and whether it is done (delivered, given up
    /// on, or filtered out). Its front has read position `front_position`.
    progress: VecDeque<(Option<String>, bool)>,
    front_position: u64,
    /// The last sequence number read: where to reopen an expired iterator.
    last_read: Option<String>,
}

impl ShardCursor {
    pub fn new(iterator: Option<String>, parallelization_factor: usize) -> Self {
        Self {
            iterator,
            slots: (0..parallelization_factor.max(1))
                .map(|_| Slot::default())
                .collect(),
            progress: VecDeque::new(),
            front_position: 0,
            last_read: None,
        }
    }

    /// Records read and waiting for a batch, over all slots.
    pub fn buffered(&self) -> usize {
        self.slots.iter().map(|slot| slot.buffer.len()).sum()
    }

    pub fn last_read(&self) -> Option<&String> {
        self.last_read.as_ref()
    }

    /// Takes the next record read from the shard: into the slot of its
    /// partition key when it passes the filter, else done at once. Returns
    /// the shard's new position when it advanced.
    pub fn push(&mut self, record: Value, passes: bool, partition_key: &str) -> Option<String> {
        let sequence = sequence_number(&record).map(str::to_owned);
        if let Some(sequence) = &sequence {
            self.last_read = Some(sequence.clone());
        }
        let position = self.front_position + self.progress.len() as u64;
        self.progress.push_back((sequence, !passes));
        if !passes {
            return self.advance();
        }
        let index = slot_of(&record, partition_key, self.slots.len());
        let slot = &mut self.slots[index];
        slot.buffered_since.get_or_insert_with(Instant::now);
        slot.buffer.push_back((position, record));
        None
    }

    /// The batches due now, one per idle slot whose buffer holds a full batch
    /// or whose batching window has passed; their slots are busy until
    /// [`Self::finished`].
    pub fn due_batches(&mut self, batch_size: usize, window: Duration) -> Vec<SlotBatch> {
        let mut due = Vec::new();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let window_passed = slot
                .buffered_since
                .is_some_and(|since| since.elapsed() >= window);
            if slot.busy
                || slot.buffer.is_empty()
                || (slot.buffer.len() < batch_size && !window_passed)
            {
                continue;
            }
            let take = slot.buffer.len().min(batch_size.max(1));
            let (positions, records) = slot.buffer.drain(..take).unzip();
            slot.buffered_since = (!slot.buffer.is_empty()).then(Instant::now);
            slot.busy = true;
            due.push(SlotBatch {
                slot: index,
                positions,
                records,
            });
        }
        due
    }

    /// A slot's batch is done with (delivered, or what failed sent to the
    /// on-failure destination): the slot takes its next batch, and the
    /// position advances past every record done before the first that is
    /// not. Returns the new position when it advanced.
    pub fn finished(&mut self, slot: usize, positions: &[u64]) -> Option<String> {
        if let Some(slot) = self.slots.get_mut(slot) {
            slot.busy = false;
        }
        for position in positions {
            let index = position.checked_sub(self.front_position);
            if let Some(entry) = index.and_then(|i| self.progress.get_mut(i as usize)) {
                entry.1 = true;
            }
        }
        self.advance()
    }

    /// Drops the done records at the front; the last one's sequence number
    /// is the new position.
    fn advance(&mut self) -> Option<String> {
        let mut position = None;
        while let Some((sequence, true)) = self.progress.front() {
            if sequence.is_some() {
                position = sequence.clone();
            }
            self.progress.pop_front();
            self.front_position += 1;
        }
        position
    }
}

/// The slot of a record: a hash of its partition key's value (FNV-1a, so
/// that it is the same in every run), modulo the number of slots. A record
/// without the key (never from DynamoDB) goes to the first slot.
fn slot_of(record: &Value, partition_key: &str, slots: usize) -> usize {
    let key = &record["dynamodb"]["Keys"][partition_key];
    if key.is_null() || slots <= 1 {
        return 0;
    }
    let hash = key
        .to_string()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    (hash % slots as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(sequence: u32, user: &str) -> Value {
        json!({"eventName": "INSERT", "dynamodb": {
            "SequenceNumber": format!("{sequence:021}"),
            "Keys": {"userId": {"S": user}, "sortKey": {"S": format!("s{sequence}")}}}})
    }

    /// Two users known to hash to different slots of two.
    fn two_users() -> (&'static str, &'static str) {
        let users = ["u-0", "u-1", "u-2", "u-3", "u-4", "u-5"];
        let slot = |user: &str| slot_of(&record(1, user), "userId", 2);
        let first = users[0];
        let other = users
            .iter()
            .copied()
            .find(|user| slot(user) != slot(first))
            .expect("some user in the other slot");
        (first, other)
    }

    fn sequences(batch: &SlotBatch) -> Vec<u64> {
        batch
            .records
            .iter()
            .filter_map(sequence_number)
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    #[test]
    fn one_keys_records_always_go_to_the_same_slot() {
        for slots in 1..=10 {
            let slot = slot_of(&record(1, "user-7"), "userId", slots);
            assert!(slot < slots);
            assert_eq!(slot_of(&record(99, "user-7"), "userId", slots), slot);
        }
        let spread: std::collections::BTreeSet<usize> = (0..100)
            .map(|n| slot_of(&record(1, &format!("user-{n}")), "userId", 10))
            .collect();
        assert_eq!(spread.len(), 10, "100 users use every slot of 10");
    }

    #[test]
    fn slots_deliver_at_once_but_each_one_batch_at_a_time_in_order() {
        let (a, b) = two_users();
        let mut shard = ShardCursor::new(None, 2);
        for (sequence, user) in [(1, a), (2, b), (3, a), (4, b), (5, a)] {
            assert_eq!(shard.push(record(sequence, user), true, "userId"), None);
        }
        let due = shard.due_batches(2, Duration::from_secs(60));
        let mut batches: Vec<Vec<u64>> = due.iter().map(sequences).collect();
        batches.sort();
        assert_eq!(batches, vec![vec![1, 3], vec![2, 4]], "both slots at once");
        // A's third record waits for its slot's batch, whatever the window.
        assert!(shard.due_batches(2, Duration::ZERO).is_empty());
        let first_a = due.iter().find(|d| sequences(d) == [1, 3]).expect("a");
        let first_b = due.iter().find(|d| sequences(d) == [2, 4]).expect("b");
        // B finishes first: record 1 is not done, the position stays.
        assert_eq!(shard.finished(first_b.slot, &first_b.positions), None);
        assert!(
            shard.due_batches(2, Duration::ZERO).is_empty(),
            "B is empty"
        );
        // A finishes: 1 to 4 are done.
        let position = shard.finished(first_a.slot, &first_a.positions);
        assert_eq!(position, Some(format!("{:021}", 4)));
        let next = shard.due_batches(2, Duration::ZERO);
        assert_eq!(next.iter().map(sequences).collect::<Vec<_>>(), [vec![5]]);
        assert_eq!(
            shard.finished(next[0].slot, &next[0].positions),
            Some(format!("{:021}", 5))
        );
        assert_eq!(shard.buffered(), 0);
        assert_eq!(shard.last_read(), Some(&format!("{:021}", 5)));
    }

    #[test]
    fn a_filtered_record_moves_the_position_only_once_what_precedes_it_is_done() {
        let mut shard = ShardCursor::new(None, 3);
        assert_eq!(shard.push(record(1, "u"), true, "userId"), None);
        assert_eq!(shard.push(record(2, "v"), false, "userId"), None);
        let due = shard.due_batches(10, Duration::ZERO);
        assert_eq!(due.len(), 1);
        assert_eq!(
            shard.finished(due[0].slot, &due[0].positions),
            Some(format!("{:021}", 2))
        );
        assert_eq!(
            shard.push(record(3, "w"), false, "userId"),
            Some(format!("{:021}", 3))
        );
    }

    #[test]
    fn a_slot_waits_for_a_full_batch_until_its_window_passes() {
        let mut shard = ShardCursor::new(None, 1);
        shard.push(record(1, "u"), true, "userId");
        assert!(shard.due_batches(2, Duration::from_secs(60)).is_empty());
        shard.push(record(2, "u"), true, "userId");
        shard.push(record(3, "u"), true, "userId");
        let due = shard.due_batches(2, Duration::from_secs(60));
        assert_eq!(due.iter().map(sequences).collect::<Vec<_>>(), [vec![1, 2]]);
    }
}
