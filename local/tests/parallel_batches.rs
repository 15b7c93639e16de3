//! The local event source mapping with `ParallelizationFactor` 10, over the
//! real stream of the pending table on DynamoDB Local: batches of different
//! users are delivered at once, one user's records never are (they are in
//! one slot) and arrive in the order they were written (a partial batch
//! failure retried in its slot included), and a mapping started again from
//! the checkpoints delivers only what is new.

use offers_local::event_source::{Checkpoints, FailedBatch, Invoke, OnFailure, StreamMapping};
use offers_local::{
    local_sdk_config, BedError, DynamoDbLocal, InvokeError, SamTemplate, StartOptions,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

const USERS: usize = 20;
/// The row whose first delivery fails (a partial batch response naming it
/// and the rest of its batch, as the dispatcher names a key's later records).
const FAILS_ONCE: (&str, u64) = ("user-3", 4);
const ROWS_PER_USER: usize = 10;
/// A bound on waits for what the mapping does in the background (a loaded
/// machine is slow), not a timed assertion.
const SETTLE: Duration = Duration::from_secs(300);
/// How long the first invocation waits for a second to start: the mapping
/// cuts every slot's batch in the same pass, so a second starts at once
/// unless batches are delivered one at a time.
const SECOND_BATCH_WAIT: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Log {
    /// Each invocation's records it processed, as (user, row number), in
    /// the order the invocations started.
    invocations: Vec<Vec<(String, u64)>>,
    /// Whether [`FAILS_ONCE`] has failed (its first delivery).
    failed_once: bool,
    /// Users whose records are in a batch being delivered, and how many batches.
    users_in_flight: HashMap<String, usize>,
    /// Users seen in two batches in flight at once.
    overlaps: Vec<String>,
    most_in_flight: usize,
}

/// The function: records what it is given and when, succeeds. Its first
/// invocation waits (boundedly) for a second one to start, so that a
/// mapping delivering one batch at a time shows as `most_in_flight` 1.
struct RecorderState {
    log: Mutex<Log>,
    in_flight: watch::Sender<usize>,
}

#[derive(Clone)]
struct Recorder(Arc<RecorderState>);

fn rows_of(event: &Value) -> Vec<(String, u64)> {
    event["Records"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|record| {
            let image = &record["dynamodb"]["NewImage"];
            (
                image["userId"]["S"].as_str().unwrap_or_default().to_owned(),
                image["n"]["N"]
                    .as_str()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(u64::MAX),
            )
        })
        .collect()
}

impl Invoke for Recorder {
    async fn invoke(&self, event: Value) -> Result<Value, InvokeError> {
        self.0.invoke(event).await
    }
}

impl RecorderState {
    async fn invoke(&self, event: Value) -> Result<Value, InvokeError> {
        let rows = rows_of(&event);
        let users: Vec<String> = {
            let mut users: Vec<String> = rows.iter().map(|(user, _)| user.clone()).collect();
            users.sort();
            users.dedup();
            users
        };
        let sequences: Vec<String> = event["Records"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|record| {
                record["dynamodb"]["SequenceNumber"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        let (first, failed) = {
            let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            let failing = rows
                .iter()
                .position(|(user, n)| (user.as_str(), *n) == FAILS_ONCE)
                .filter(|_| !log.failed_once);
            let processed = failing.unwrap_or(rows.len());
            log.failed_once |= failing.is_some();
            log.invocations.push(rows[..processed].to_vec());
            for user in &users {
                let batches = log.users_in_flight.entry(user.clone()).or_default();
                *batches += 1;
                if *batches > 1 {
                    log.overlaps.push(user.clone());
                }
            }
            self.in_flight.send_modify(|n| *n += 1);
            log.most_in_flight = log.most_in_flight.max(*self.in_flight.borrow());
            (log.invocations.len() == 1, sequences[processed..].to_vec())
        };
        if first {
            let mut watching = self.in_flight.subscribe();
            let _ = tokio::time::timeout(SECOND_BATCH_WAIT, watching.wait_for(|n| *n >= 2)).await;
        } else {
            // Some work, so that batches overlap as a real function's do.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        for user in &users {
            if let Some(batches) = log.users_in_flight.get_mut(user) {
                *batches -= 1;
            }
        }
        self.in_flight.send_modify(|n| *n -= 1);
        let failures: Vec<Value> = failed
            .iter()
            .map(|sequence| json!({"itemIdentifier": sequence}))
            .collect();
        Ok(json!({"batchItemFailures": failures}))
    }
}

/// Records sent to the on-failure destination.
#[derive(Clone, Default)]
struct Failures(Arc<Mutex<usize>>);

impl OnFailure for Failures {
    async fn send(&self, failed: &FailedBatch, _message: Value) -> Result<(), BedError> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += failed.records.len();
        Ok(())
    }
}

fn delivered(recorder: &Recorder) -> usize {
    let log = recorder.0.log.lock().unwrap_or_else(|e| e.into_inner());
    log.invocations.iter().map(Vec::len).sum()
}

async fn wait_until_delivered(recorder: &Recorder, rows: usize) {
    let started = Instant::now();
    while delivered(recorder) < rows {
        assert!(
            started.elapsed() < SETTLE,
            "{} of {rows} rows delivered",
            delivered(recorder)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_of_different_users_run_at_once_and_one_users_rows_in_order() {
    let dynamodb = DynamoDbLocal::start(StartOptions::default()).expect("DynamoDB Local");
    let endpoint = dynamodb.endpoint();
    let sdk = local_sdk_config(&endpoint).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let template = SamTemplate::project().expect("template.yaml");
    let tables = template
        .create_tables(&client, "parallel-")
        .await
        .expect("tables");
    let mut settings = template
        .stream_mapping("OfferDispatcherFunction")
        .expect("the dispatcher's mapping");
    assert_eq!(
        settings.parallelization_factor, 10,
        "the template's default"
    );
    // Small batches without a window: several batches a slot, at once.
    settings.batch_size = 3;
    settings.batching_window = Duration::ZERO;
    let pending = tables.name(&settings.table).to_owned();
    let stream_arn = client
        .describe_table()
        .table_name(&pending)
        .send()
        .await
        .expect("describe")
        .table()
        .and_then(|t| t.latest_stream_arn())
        .expect("a stream")
        .to_owned();
    let write = |user: usize, n: usize| {
        client
            .put_item()
            .table_name(&pending)
            .item(
                "userId",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("user-{user}")),
            )
            .item(
                "sortKey",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("row-{n}")),
            )
            .item(
                "n",
                aws_sdk_dynamodb::types::AttributeValue::N(n.to_string()),
            )
            .send()
    };
    // The users' rows interleaved in the stream.
    for n in 0..ROWS_PER_USER {
        for user in 0..USERS {
            write(user, n).await.expect("put");
        }
    }

    let checkpoints = std::env::temp_dir().join(format!(
        "offers-parallel-batches-{}.json",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&checkpoints);
    let recorder = Recorder(Arc::new(RecorderState {
        log: Mutex::default(),
        in_flight: watch::Sender::new(0),
    }));
    let failures = Failures::default();
    let mapping = |settings| StreamMapping {
        settings,
        function_name: "OfferDispatcherFunction".to_owned(),
        invoker: recorder.clone(),
        on_failure: failures.clone(),
        streams: aws_sdk_dynamodbstreams::Client::new(&sdk),
        endpoint: endpoint.clone(),
        stream_arn: stream_arn.clone(),
        checkpoints: Checkpoints::file(checkpoints.clone()),
        idle_pause: Duration::from_millis(50),
    };
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(mapping(settings.clone()).run(stopped));
    wait_until_delivered(&recorder, USERS * ROWS_PER_USER).await;
    let _ = stop.send(true);
    running.await.expect("the mapping stops");

    // Started again from its checkpoints, it delivers only the new rows.
    for user in 0..2 {
        write(user, ROWS_PER_USER).await.expect("put");
    }
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(mapping(settings).run(stopped));
    wait_until_delivered(&recorder, USERS * ROWS_PER_USER + 2).await;
    // A moment for anything delivered twice to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop.send(true);
    running.await.expect("the mapping stops");
    let _ = std::fs::remove_file(&checkpoints);

    let log = recorder.0.log.lock().unwrap_or_else(|e| e.into_inner());
    assert!(log.failed_once, "the partial batch failure happened");
    assert!(
        log.most_in_flight >= 2,
        "batches were delivered one at a time"
    );
    assert_eq!(
        log.overlaps,
        Vec::<String>::new(),
        "a user in two batches at once"
    );
    assert!(
        log.invocations.iter().all(|batch| batch.len() <= 3),
        "the batch size holds"
    );
    let mut by_user: HashMap<String, Vec<u64>> = HashMap::new();
    for (user, n) in log.invocations.iter().flatten() {
        by_user.entry(user.clone()).or_default().push(*n);
    }
    assert_eq!(by_user.len(), USERS);
    for (user, rows) in &by_user {
        let written = if ["user-0", "user-1"].contains(&user.as_str()) {
            ROWS_PER_USER + 1
        } else {
            ROWS_PER_USER
        };
        assert_eq!(
            rows,
            &(0..written as u64).collect::<Vec<_>>(),
            "{user}: each row processed once, in order"
        );
    }
    assert_eq!(*failures.0.lock().unwrap_or_else(|e| e.into_inner()), 0);
}
