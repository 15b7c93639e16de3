//! An in-memory sink: what a handler emitted, for tests.

use super::{MetricSet, MetricsSink};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct MemoryMetrics {
    sets: Mutex<Vec<MetricSet>>,
}

impl MemoryMetrics {
    /// The sets emitted so far, in order.
    pub fn sets(&self) -> Vec<MetricSet> {
        self.sets
            .lock()
            .map(|sets| sets.clone())
            .unwrap_or_default()
    }
}

impl MetricsSink for MemoryMetrics {
    fn emit(&self, set: &MetricSet) {
        if let Ok(mut sets) = self.sets.lock() {
            sets.push(set.clone());
        }
    }
}
