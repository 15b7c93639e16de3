//! Where the stream mapping is in each shard, kept on disk.

use std::collections::BTreeMap;

/// The mapping's position in each shard, kept in a file so that a restarted
/// stack resumes where it stopped instead of replaying the stream.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    path: std::path::PathBuf,
    after: BTreeMap<String, String>,
}

impl Checkpoints {
    /// Checkpoints read from (and saved to) `path`; none when it does not exist.
    pub fn file(path: std::path::PathBuf) -> Self {
        let after = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        Self { path, after }
    }

    pub(super) fn get(&self, shard_id: &str) -> Option<&String> {
        self.after.get(shard_id)
    }

    pub(super) fn set(&mut self, shard_id: &str, sequence_number: &str) {
        self.after
            .insert(shard_id.to_owned(), sequence_number.to_owned());
        let text = serde_json::to_string(&self.after).unwrap_or_default();
        if let Err(err) = std::fs::write(&self.path, text) {
            tracing::warn!(error = %err, "checkpoint not saved");
        }
    }
}
