//! Rows of one file with the same key (userId, sortKey) would overwrite each
//! other in the pending table: `assign` refuses all but the first.
//!
//! Pass 1 keeps only a 64-bit hash of each valid row's key, in sorted runs
//! of at most `RUN_LEN` hashes (1 MiB): a full run is written to an
//! unlinked temporary file (8 bytes a row on disk), so memory stays flat
//! whatever the file's size. Merging the runs finds the hashes seen twice;
//! only when there are some is the file read again to learn which lines
//! share them (`DuplicateKeys`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// A 64-bit hash of a row's key. Two different keys share one with a chance
/// of about n²/2⁶⁵: 3·10⁻⁸ for a million rows.
pub type KeyHash = u64;

/// Hashes kept in memory before a run is sorted and written out.
pub const RUN_LEN: usize = 128 * 1024;
/// Hashes read at a time from each spilled run while merging.
const READ_BLOCK: usize = 1024;

pub fn key_hash(user_id: &str, sort_key: &str) -> KeyHash {
    // SipHash with fixed keys: a key hashes alike in every pass.
    let mut hasher = DefaultHasher::new();
    (user_id, sort_key).hash(&mut hasher);
    hasher.finish()
}

/// The key hashes of the valid rows, in sorted runs.
#[derive(Debug)]
pub struct KeyHashes {
    run: Vec<KeyHash>,
    run_len: usize,
    spill: Option<Spill>,
}

impl Default for KeyHashes {
    fn default() -> Self {
        Self::with_run_len(RUN_LEN)
    }
}

impl KeyHashes {
    pub fn with_run_len(run_len: usize) -> Self {
        Self {
            run: Vec::new(),
            run_len: run_len.max(1),
            spill: None,
        }
    }

    pub fn push(&mut self, key: KeyHash) -> std::io::Result<()> {
        self.run.push(key);
        if self.run.len() >= self.run_len {
            self.run.sort_unstable();
            let spill = match &mut self.spill {
                Some(spill) => spill,
                None => self.spill.insert(Spill::create()?),
            };
            spill.append(&self.run)?;
            self.run.clear();
        }
        Ok(())
    }

    /// How many runs went to disk (for tests).
    pub fn spilled_runs(&self) -> usize {
        self.spill.as_ref().map_or(0, |spill| spill.runs.len())
    }

    /// The hashes seen more than once; usually none.
    pub fn duplicated(mut self) -> std::io::Result<HashSet<KeyHash>> {
        self.run.sort_unstable();
        let mut sources = vec![RunSource::Memory {
            values: std::mem::take(&mut self.run),
            next: 0,
        }];
        if let Some(spill) = &self.spill {
            sources.extend(spill.runs.iter().map(|&(start, len)| RunSource::File {
                file: &spill.file,
                offset: start,
                end: start + len * 8,
                block: Vec::with_capacity(READ_BLOCK),
                next: 0,
            }));
        }
        // A k-way merge of sorted runs: equal neighbours are duplicates.
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (index, source) in sources.iter_mut().enumerate() {
            if let Some(value) = source.next()? {
                heap.push(Reverse((value, index)));
            }
        }
        let mut duplicated = HashSet::new();
        let mut previous = None;
        while let Some(Reverse((value, index))) = heap.pop() {
            if previous == Some(value) {
                duplicated.insert(value);
            }
            previous = Some(value);
            if let Some(next) = sources[index].next()? {
                heap.push(Reverse((next, index)));
            }
        }
        Ok(duplicated)
    }
}

/// Sorted runs of hashes, one after the other in a temporary file that is
/// unlinked as soon as it is open (nothing is left behind, even on a crash).
#[derive(Debug)]
struct Spill {
    file: File,
    /// (offset in bytes, number of hashes) of each run.
    runs: Vec<(u64, u64)>,
    end: u64,
    /// Set only if unlinking failed: removed on drop instead.
    path: Option<PathBuf>,
}

impl Spill {
    fn create() -> std::io::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("offers-key-hashes-{}-{nanos}", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        let path = std::fs::remove_file(&path).err().map(|_| path);
        Ok(Self {
            file,
            runs: Vec::new(),
            end: 0,
            path,
        })
    }

    fn append(&mut self, run: &[KeyHash]) -> std::io::Result<()> {
        let start = self.end;
        let mut bytes = Vec::with_capacity(READ_BLOCK * 8);
        for block in run.chunks(READ_BLOCK) {
            bytes.clear();
            bytes.extend(block.iter().flat_map(|value| value.to_le_bytes()));
            self.file.write_all_at(&bytes, self.end)?;
            self.end += bytes.len() as u64;
        }
        self.runs.push((start, run.len() as u64));
        Ok(())
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// One sorted run being merged.
enum RunSource<'a> {
    Memory {
        values: Vec<KeyHash>,
        next: usize,
    },
    File {
        file: &'a File,
        offset: u64,
        end: u64,
        block: Vec<KeyHash>,
        next: usize,
    },
}

impl RunSource<'_> {
    fn next(&mut self) -> std::io::Result<Option<KeyHash>> {
        match self {
            RunSource::Memory { values, next } => {
                let value = values.get(*next).copied();
                *next += 1;
                Ok(value)
            }
            RunSource::File {
                file,
                offset,
                end,
                block,
                next,
            } => {
                if *next == block.len() {
                    if *offset >= *end {
                        return Ok(None);
                    }
                    let length = (*end - *offset).min(READ_BLOCK as u64 * 8) as usize;
                    let mut bytes = vec![0u8; length];
                    file.read_exact_at(&mut bytes, *offset)?;
                    *offset += length as u64;
                    block.clear();
                    block.extend(bytes.chunks_exact(8).map(|chunk| {
                        let mut word = [0u8; 8];
                        word.copy_from_slice(chunk);
                        u64::from_le_bytes(word)
                    }));
                    *next = 0;
                }
                let value = block.get(*next).copied();
                *next += 1;
                Ok(value)
            }
        }
    }
}

/// Which row owns each duplicated key: the first valid row that has it.
/// Filled by a second reading of the file, only when there are duplicates.
#[derive(Debug, Default)]
pub struct DuplicateKeys {
    duplicated: HashSet<KeyHash>,
    first_lines: HashMap<KeyHash, u64>,
}

impl DuplicateKeys {
    pub fn new(duplicated: HashSet<KeyHash>) -> Self {
        Self {
            duplicated,
            first_lines: HashMap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.duplicated.is_empty()
    }

    /// Valid rows, in file order: `Some(first line)` when an earlier row has the key.
    pub fn observe(&mut self, key: KeyHash, line: u64) -> Option<u64> {
        if !self.duplicated.contains(&key) {
            return None;
        }
        let first = *self.first_lines.entry(key).or_insert(line);
        (first != line).then_some(first)
    }

    /// Whether the row at `line` is the one to write for its key.
    pub fn owns(&self, key: KeyHash, line: u64) -> bool {
        self.first_lines
            .get(&key)
            .is_none_or(|first| *first == line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hash_by_both_parts() {
        assert_ne!(key_hash("ab", "c"), key_hash("a", "bc"));
        assert_eq!(key_hash("u", "s"), key_hash("u", "s"));
    }

    #[test]
    fn duplicates_are_found_across_spilled_runs() {
        // Runs of 4: 23 hashes make 5 runs on disk and 3 in memory.
        let mut hashes = KeyHashes::with_run_len(4);
        let mut expected = HashSet::new();
        for index in 0..20u64 {
            hashes
                .push(key_hash("u", &index.to_string()))
                .expect("push");
        }
        for repeated in [3u64, 17, 3] {
            hashes
                .push(key_hash("u", &repeated.to_string()))
                .expect("push");
            expected.insert(key_hash("u", &repeated.to_string()));
        }
        assert_eq!(hashes.spilled_runs(), 5);
        assert_eq!(hashes.duplicated().expect("merge"), expected);
    }

    #[test]
    fn the_merge_matches_an_in_memory_count_on_many_keys() {
        let mut rng = fastrand::Rng::with_seed(11);
        let mut hashes = KeyHashes::with_run_len(5_000);
        let mut seen = HashSet::new();
        let mut expected = HashSet::new();
        for _ in 0..60_000 {
            // 2^17 possible values: many collide on purpose.
            let value = rng.u64(0..1 << 17);
            if !seen.insert(value) {
                expected.insert(value);
            }
            hashes.push(value).expect("push");
        }
        assert!(hashes.spilled_runs() >= 11);
        assert!(!expected.is_empty());
        assert_eq!(hashes.duplicated().expect("merge"), expected);
    }

    #[test]
    fn no_duplicates_means_an_empty_set() {
        let mut hashes = KeyHashes::default();
        for index in 0..1000 {
            hashes
                .push(key_hash("u", &index.to_string()))
                .expect("push");
        }
        assert!(DuplicateKeys::new(hashes.duplicated().expect("merge")).is_empty());
    }

    #[test]
    fn the_first_valid_row_owns_a_duplicated_key() {
        let key = key_hash("u1", "a");
        let other = key_hash("u2", "a");
        let mut duplicates = DuplicateKeys::new(HashSet::from([key]));
        assert_eq!(duplicates.observe(key, 2), None, "first valid row");
        assert_eq!(duplicates.observe(other, 3), None);
        assert_eq!(duplicates.observe(key, 4), Some(2));
        assert_eq!(duplicates.observe(key, 9), Some(2));
        assert!(duplicates.owns(key, 2));
        assert!(!duplicates.owns(key, 4));
        assert!(duplicates.owns(other, 3));
    }
}
