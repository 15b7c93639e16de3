//! Flat memory of `offers assign`: the built binary validates (`--dry-run`)
//! files of 100,000 and 1,000,000 valid JSON Lines rows; each run's peak
//! RSS (the child's `ru_maxrss` from wait4) and rows per second are printed,
//! and the ratio of the two peaks (target at most 1.5).
//!
//! Run: `cargo bench -p offers-cli --bench assign_memory`. The files (about
//! 27 MB and 270 MB) are written to a temporary folder, removed at the end.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SIZES: [u64; 2] = [100_000, 1_000_000];
const TARGET_RATIO: f64 = 1.5;

struct Measure {
    rows: u64,
    peak_rss_kib: i64,
    elapsed: Duration,
    summary: String,
}

fn main() {
    let dir = std::env::temp_dir().join(format!("offers-assign-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let measures: Vec<Measure> = SIZES
        .iter()
        .map(|&rows| {
            let file = generate(&dir, rows);
            let measure = run_dry(&file, rows);
            std::fs::remove_file(&file).expect("remove the rows file");
            measure
        })
        .collect();
    let _ = std::fs::remove_dir(&dir);

    println!("offers assign --dry-run (JSON Lines, every row valid, release build)");
    for measure in &measures {
        println!(
            "  {:>9} rows: peak RSS {:>6.1} MiB, {:>6.1} s, {:>8.0} rows/s",
            measure.rows,
            measure.peak_rss_kib as f64 / 1024.0,
            measure.elapsed.as_secs_f64(),
            measure.rows as f64 / measure.elapsed.as_secs_f64()
        );
        println!("      the binary said: {}", measure.summary);
    }
    let ratio = measures[1].peak_rss_kib as f64 / measures[0].peak_rss_kib as f64;
    println!(
        "  peak ratio 1,000,000 / 100,000 rows: {ratio:.2} (target <= {TARGET_RATIO}: {})",
        if ratio <= TARGET_RATIO {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "  per-row memory: none but the key hashes, in sorted runs of at most 131,072 (1 MiB);\n  \
         beyond that they spill to an unlinked temporary file (8 bytes a row on disk)"
    );
}

/// `rows` valid pending rows, each of its own key.
fn generate(dir: &Path, rows: u64) -> PathBuf {
    let path = dir.join(format!("rows-{rows}.jsonl"));
    let mut out = BufWriter::new(std::fs::File::create(&path).expect("create rows file"));
    for index in 0..rows {
        writeln!(
            out,
            concat!(
                r#"{{"userId":"us-east-1:{:08}-0000-4000-8000-000000000000","sortKey":"camp-{}+co-fries-{}","#,
                r#""offerId":"co-fries","campaignId":"camp-{}","ttl":4000000000,"#,
                r#""startDate":"2024-01-01T00:00:00+0000","expiryDate":"2099-01-01T00:00:00Z","#,
                r#""rank":{},"rules":{{"minimumSpend":7.5}}}}"#
            ),
            index,
            index % 100,
            index,
            index % 100,
            index % 50
        )
        .expect("write row");
    }
    out.flush().expect("flush rows file");
    path
}

/// Runs the binary on `file` and reaps it with wait4, for its own peak RSS
/// (getrusage's RUSAGE_CHILDREN would give the peak of all children so far).
// wait4 reaps the child, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_dry(file: &Path, rows: u64) -> Measure {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_offers"))
        .args(["assign", "--dry-run"])
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn offers");
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is a child of ours that nobody else reaps.
    let reaped = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let elapsed = started.elapsed();
    assert_eq!(reaped, child.id() as libc::pid_t, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "offers assign --dry-run failed: status {status}"
    );
    let mut stdout = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        pipe.read_to_string(&mut stdout).expect("read stdout");
    }
    let summary = stdout.lines().last().unwrap_or_default().to_owned();
    assert!(
        summary.starts_with(&format!("rows read {rows}, valid {rows}, invalid 0")),
        "unexpected summary: {summary}"
    );
    Measure {
        rows,
        // Linux reports ru_maxrss in KiB.
        peak_rss_kib: usage.ru_maxrss,
        elapsed,
        summary,
    }
}
