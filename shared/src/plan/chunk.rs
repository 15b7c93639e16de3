//! The plan-chunk function's service: one batch of a Distributed Map over
//! the audience (Step Functions' ItemBatcher: `{"Items": [...],
//! "BatchInput": {...}}`), chosen for and written with the CLI's engine and
//! row writer. The statistics come in `BatchInput`, read once per execution
//! by the state machine's first state, so a chunk reads nothing. Each item
//! is `{"index": <0-based line>, "user": <the line's JSON>}` (the map's
//! ItemSelector); an item that is not a valid user is reported by its line
//! and writes nothing, the others are written. Rows are plain puts of the
//! same items whatever the run: a chunk run again (a retry, a rerun of the
//! execution) writes the same rows, which the dispatcher turns into the same
//! offers (their assignmentId is of campaign, user and rank).

use super::audience::read_user;
use super::rows::{Chooser, PlanRows, Tally};
use super::{history_of, Plan};
use crate::domain::campaign::Snapshot;
use crate::domain::selection::history::utc_day;
use crate::domain::selection::Engine;
use crate::dynamo::batch_write::{write_all, Backoff, BatchPut, Chunks};
use crate::dynamo::PENDING_KEY;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Users a chunk takes at most (the template's ItemBatcher gives fewer):
/// a larger batch is refused whole, as hostile input.
pub const MAX_CHUNK_USERS: usize = 10_000;

/// Malformed lines listed one by one in a chunk's report; the rest counted.
pub const LISTED_MALFORMED: usize = 100;

/// Step Functions' limit on a state's input and output and on a child
/// execution's input: 256 KiB of UTF-8 JSON.
pub const STEP_FUNCTIONS_PAYLOAD_BYTES: usize = 256 * 1_024;

/// The users' share of a chunk's input: the template's ItemBatcher
/// `MaxInputBytesPerBatch` (Step Functions makes a batch smaller rather
/// than larger than this).
pub const MAX_CHUNK_ITEMS_BYTES: usize = 64 * 1_024;

/// Room for the batch's own envelope (`{"Items": [...], "BatchInput": ...}`,
/// the processor's `$` wrapping it in the Lambda payload).
const CHUNK_ENVELOPE_BYTES: usize = 4 * 1_024;

/// The map state's input (the execution's input with the snapshot read by
/// the first state) at most: it holds everything of a chunk's BatchInput,
/// which with a full batch of users and the envelope must stay within
/// [`STEP_FUNCTIONS_PAYLOAD_BYTES`].
pub const MAX_MAP_INPUT_BYTES: usize =
    STEP_FUNCTIONS_PAYLOAD_BYTES - MAX_CHUNK_ITEMS_BYTES - CHUNK_ENVELOPE_BYTES;

/// What the state machine's map state gets: the execution's input
/// (`campaignId`, `plan`, `ttl`, `audience`) with `run` (the snapshot as
/// the campaigns table holds it, and the map's settings) as its first
/// state adds it. The chunks' BatchInput is part of it.
pub fn map_input(execution_input: &Value, snapshot: &Snapshot) -> Value {
    let mut input = execution_input.clone();
    if let Value::Object(fields) = &mut input {
        fields.insert(
            "run".into(),
            serde_json::json!({
                "snapshot": snapshot.encode(),
                "snapshotAt": snapshot.taken_at_text(),
                "maxConcurrency": 0,
                "chunkUsers": MAX_CHUNK_USERS,
            }),
        );
    }
    input
}

/// Why a plan cannot be handed to its chunks, if it cannot: the map
/// state's input (see [`map_input`]) over [`MAX_MAP_INPUT_BYTES`] would
/// make Step Functions fail the execution (States.DataLimitExceeded) after
/// the definition is stored; refused before anything is written instead.
pub fn map_input_problem(map_input: &Value) -> Option<String> {
    let bytes = map_input.to_string().len();
    (bytes > MAX_MAP_INPUT_BYTES).then(|| {
        format!(
            "the plan with its statistics snapshot is {} KiB as every chunk is handed it; Step Functions carries at most {} KiB a chunk, {} KiB of it kept for the chunk's users: plan this audience from a file (--audience FILE) or with fewer attribute values in the statistics",
            bytes.div_ceil(1_024),
            STEP_FUNCTIONS_PAYLOAD_BYTES / 1_024,
            (MAX_CHUNK_ITEMS_BYTES + CHUNK_ENVELOPE_BYTES) / 1_024
        )
    })
}

/// One batch of the Distributed Map.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChunkEvent {
    pub items: Vec<Value>,
    pub batch_input: BatchInput,
}

/// What every chunk of one execution is given (the map's ItemBatcher BatchInput).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchInput {
    /// The plan as stored with the campaign's definition.
    pub plan: Map<String, Value>,
    /// The rows' expiry (epoch seconds), as the CLI checked it against the catalog.
    pub ttl: i64,
    /// The statistics snapshot the plan chooses from (`Snapshot::encode`).
    pub snapshot: String,
    pub snapshot_at: String,
}

/// A line of the audience that wrote nothing, and why.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Malformed {
    pub line: u64,
    pub message: String,
}

/// A chunk's outcome, the map's result for its batch.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkReport {
    pub users: u64,
    pub holdout: u64,
    /// Rows chosen (and written).
    pub rows: u64,
    pub written: u64,
    /// By pool index: users whose first offer it is.
    pub first: Vec<u64>,
    pub malformed_count: u64,
    /// The first [`LISTED_MALFORMED`] malformed lines.
    pub malformed: Vec<Malformed>,
}

impl ChunkReport {
    pub fn tally(&self) -> Tally {
        Tally {
            users: self.users,
            holdout: self.holdout,
            rows: self.rows,
            first: self.first.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    /// The batch cannot be planned (a plan or snapshot that does not read,
    /// too many items): running it again cannot help.
    #[error("the batch is not valid: {0}")]
    InvalidBatch(String),
    /// Writing stopped (throttling beyond the retries, an outage, a refusal):
    /// the map retries the chunk, which writes the same rows.
    #[error("writing the chunk's rows stopped after {written} rows: {why}")]
    Writing { written: u64, why: String },
}

/// The engine and row writer of an execution, from its batch input.
pub struct ChunkPlanner {
    pub plan: Plan,
    rows: PlanRows,
    engine: Engine,
}

impl ChunkPlanner {
    pub fn new(input: &BatchInput) -> Result<Self, ChunkError> {
        let invalid = ChunkError::InvalidBatch;
        let plan = Plan::parse(&Value::Object(input.plan.clone()).to_string())
            .map_err(|problems| invalid(problems.join("; ")))?;
        let snapshot = Snapshot::decode(&input.snapshot, &input.snapshot_at)
            .ok_or_else(|| invalid("the statistics snapshot does not read".into()))?;
        // Ages count from the snapshot's day, as in the CLI's plan.
        let today = utc_day(snapshot.taken_at.timestamp());
        let history =
            history_of(&plan, &snapshot.counters, today).map_err(|err| invalid(err.to_string()))?;
        let engine =
            Engine::new(history, plan.config.clone()).map_err(|err| invalid(err.to_string()))?;
        Ok(Self {
            rows: PlanRows::new(&plan, input.ttl),
            plan,
            engine,
        })
    }
}

/// Plans one batch: chooses for each valid user and writes the rows
/// (`concurrency` BatchWriteItem calls at once).
pub async fn plan_chunk<W: BatchPut>(
    pending: &W,
    event: ChunkEvent,
    backoff: &Backoff,
    concurrency: usize,
) -> Result<ChunkReport, ChunkError> {
    if event.items.len() > MAX_CHUNK_USERS {
        return Err(ChunkError::InvalidBatch(format!(
            "{} items; a chunk takes at most {MAX_CHUNK_USERS}",
            event.items.len()
        )));
    }
    let planner = ChunkPlanner::new(&event.batch_input)?;
    let mut chooser = Chooser::new(planner.engine);
    let mut report = ChunkReport::default();
    let mut malformed = |line: u64, message: String| {
        report.malformed_count += 1;
        if report.malformed.len() < LISTED_MALFORMED {
            report.malformed.push(Malformed { line, message });
        }
    };
    let mut first_line_of: HashMap<&str, u64> = HashMap::new();
    let mut items = Vec::with_capacity(event.items.len() * planner.plan.config.slots);
    for (position, item) in event.items.iter().enumerate() {
        let line = match item.get("index").and_then(Value::as_u64) {
            Some(index) => index.saturating_add(1),
            None => {
                malformed(
                    0,
                    format!("item {position} of the batch has no index: not from the plan's map"),
                );
                continue;
            }
        };
        let Some(Value::Object(row)) = item.get("user") else {
            malformed(line, "not a JSON object".into());
            continue;
        };
        let user = match read_user(row) {
            Ok(user) => user,
            Err(message) => {
                malformed(line, message);
                continue;
            }
        };
        if let Some(first) = first_line_of.insert(user.user_id, line) {
            first_line_of.insert(user.user_id, first);
            malformed(
                line,
                format!("user {} is also on line {first}", user.user_id),
            );
            continue;
        }
        items.extend(chooser.items(&planner.rows, &user, line));
    }
    let written = write_all(
        pending,
        Chunks::new(items.into_iter()),
        &PENDING_KEY,
        backoff,
        concurrency,
        |_| {},
    )
    .await;
    if let Some(why) = written.stopped {
        return Err(ChunkError::Writing {
            written: written.written,
            why,
        });
    }
    let tally = chooser.tally;
    Ok(ChunkReport {
        users: tally.users,
        holdout: tally.holdout,
        rows: tally.rows,
        written: written.written,
        first: tally.first,
        ..report
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::selection::{Counts, LearningCounter, Scope};
    use crate::dynamo::Item;
    use crate::fakes::MemoryPending;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn batch_input() -> BatchInput {
        let Value::Object(plan) =
            serde_json::from_str(include_str!("../../../events/sample-plan.json")).expect("plan")
        else {
            panic!("the sample plan is an object");
        };
        let counter = |offer: &str, scope: Scope, assigned: u64, redeemed: u64| LearningCounter {
            offer_id: offer.into(),
            scope,
            day: None,
            counts: Counts {
                assigned,
                clicked: redeemed,
                redeemed,
            },
        };
        let gold = || Scope::Attribute {
            name: "tier".into(),
            value: "gold".into(),
        };
        let snapshot = Snapshot {
            counters: vec![
                counter("co-fries", Scope::Overall, 4_000, 400),
                counter("co-coffee", Scope::Overall, 4_000, 100),
                counter("co-fries", gold(), 1_000, 20),
                counter("co-coffee", gold(), 1_000, 200),
            ],
            taken_at: chrono::Utc::now(),
        };
        BatchInput {
            plan,
            ttl: 1_924_991_999,
            snapshot: snapshot.encode(),
            snapshot_at: snapshot.taken_at_text(),
        }
    }

    /// A snapshot of `values` counters of one attribute, each value 250 bytes.
    fn wide_snapshot(values: usize) -> Snapshot {
        Snapshot {
            counters: (0..values)
                .map(|n| LearningCounter {
                    offer_id: "co-coffee".into(),
                    scope: Scope::Attribute {
                        name: "note".into(),
                        value: format!("{n:0>250}"),
                    },
                    day: None,
                    counts: Counts {
                        assigned: 10,
                        clicked: 0,
                        redeemed: 1,
                    },
                })
                .collect(),
            taken_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_map_input_over_the_chunks_share_of_step_functions_limit_is_refused() {
        let input = json!({"campaignId": "camp", "plan": batch_input().plan, "ttl": 1,
            "audience": {"bucket": "b", "key": "audiences/a.jsonl"}});
        let small = map_input(&input, &wide_snapshot(10));
        assert_eq!(map_input_problem(&small), None);
        assert_eq!(
            small["run"]["snapshot"].as_str().map(str::len),
            Some(wide_snapshot(10).encode().len())
        );
        // Within the snapshot's own bound (192 KiB), over what a chunk can carry.
        let wide = wide_snapshot(680);
        assert!(wide.encode().len() <= crate::domain::campaign::MAX_SNAPSHOT_BYTES);
        let problem = map_input_problem(&map_input(&input, &wide)).expect("refused");
        assert!(problem.contains("at most 256 KiB a chunk"), "{problem}");
        assert!(problem.contains("--audience FILE"), "{problem}");
        // The bound leaves room for a full batch of users and its envelope.
        assert_eq!(
            MAX_MAP_INPUT_BYTES + MAX_CHUNK_ITEMS_BYTES + 4 * 1_024,
            STEP_FUNCTIONS_PAYLOAD_BYTES
        );
    }

    fn audience(users: u64) -> Vec<Value> {
        (0..users)
            .map(|index| {
                let tier = ["gold", "silver", "bronze"][(index % 3) as usize];
                json!({"index": index, "user": {"userId": format!("user-{index}"), "tier": tier}})
            })
            .collect()
    }

    /// Every row written, by (userId, sortKey).
    async fn run(chunks: Vec<Vec<Value>>) -> (BTreeMap<(String, String), Item>, Tally) {
        let pending = MemoryPending::default();
        let input = batch_input();
        let mut tally = Tally::default();
        for items in chunks {
            let event = ChunkEvent {
                items,
                batch_input: input.clone(),
            };
            let report = plan_chunk(&pending, event, &Backoff::default(), 2)
                .await
                .expect("planned");
            assert_eq!(report.written, report.rows);
            tally.merge(&report.tally());
        }
        let items = pending.items.into_inner().expect("items");
        let text = |item: &Item, name: &str| match item.get(name) {
            Some(AttributeValue::S(text)) => text.clone(),
            other => panic!("{name}: {other:?}"),
        };
        let rows: BTreeMap<_, _> = items
            .iter()
            .map(|item| ((text(item, "userId"), text(item, "sortKey")), item.clone()))
            .collect();
        assert_eq!(rows.len(), items.len(), "no row written twice");
        (rows, tally)
    }

    use aws_sdk_dynamodb::types::AttributeValue;

    #[tokio::test]
    async fn a_plan_writes_the_same_rows_in_any_chunking_and_order() {
        let users = audience(600);
        let (whole, whole_tally) = run(vec![users.clone()]).await;
        assert_eq!(whole.len(), 600 * 2, "k = 2 rows a user");
        assert!(
            whole_tally.holdout > 60 && whole_tally.holdout < 200,
            "{whole_tally:?}"
        );
        // Uneven chunks, taken last first, each chunk's users reversed.
        let mut chunks: Vec<Vec<Value>> = users.chunks(37).map(<[Value]>::to_vec).collect();
        chunks.reverse();
        for chunk in &mut chunks {
            chunk.reverse();
        }
        let (chunked, chunked_tally) = run(chunks).await;
        assert_eq!(chunked, whole);
        assert_eq!(chunked_tally, whole_tally);
    }

    #[tokio::test]
    async fn malformed_lines_are_reported_by_line_and_the_rest_written() {
        let mut items = audience(5);
        items[1]["user"] = json!({"tier": "gold"});
        items[3]["user"] = json!("not an object");
        items.push(json!({"index": 5, "user": {"userId": "user-0"}}));
        let pending = MemoryPending::default();
        let report = plan_chunk(
            &pending,
            ChunkEvent {
                items,
                batch_input: batch_input(),
            },
            &Backoff::default(),
            1,
        )
        .await
        .expect("planned");
        assert_eq!(report.users, 3);
        assert_eq!(report.written, 6);
        assert_eq!(report.malformed_count, 3);
        let lines: Vec<u64> = report.malformed.iter().map(|m| m.line).collect();
        assert_eq!(lines, vec![2, 4, 6]);
        assert!(report.malformed[2].message.contains("line 1"), "{report:?}");
        assert_eq!(pending.items.into_inner().expect("items").len(), 6);
    }

    #[tokio::test]
    async fn a_batch_that_cannot_be_planned_writes_nothing() {
        let pending = MemoryPending::default();
        let mut input = batch_input();
        input.snapshot = "not a snapshot".into();
        let event = ChunkEvent {
            items: audience(3),
            batch_input: input,
        };
        let err = plan_chunk(&pending, event, &Backoff::default(), 1)
            .await
            .expect_err("invalid");
        assert!(matches!(err, ChunkError::InvalidBatch(_)), "{err}");
        let event = ChunkEvent {
            items: audience(MAX_CHUNK_USERS as u64 + 1),
            batch_input: batch_input(),
        };
        assert!(plan_chunk(&pending, event, &Backoff::default(), 1)
            .await
            .is_err());
        assert!(pending.items.into_inner().expect("items").is_empty());
    }
}
