//! Dispatch throughput on DynamoDB Local against floors measured in the same run.
//!
//! 2,000 pending rows, as 20 stream batches of 100, go through the handler
//! and through the release binary (a local Runtime API; its CPU time per row
//! from `/proc/<pid>/stat`, its peak RSS). Floors, bare transactions of
//! the same rows with the dispatcher's own conditions, each written by a
//! process of its own (this bench run again) as the binary is: on a 2-core
//! machine whose DynamoDB Local JVM takes 1.5 cores, a second process
//! waits for the CPU where a task of the bench's own runtime does not, and
//! an in-process floor measured that, not the dispatcher:
//!
//! - **plain**: put the offer if absent + delete the pending row only as the
//!   stream saw it (two items): what any exactly-once dispatcher must ask of
//!   DynamoDB, and what a plain implementation does. Swept over concurrency
//!   first; the rounds use its best;
//! - **plain + read**: the plain floor preceded, batch by batch, by one
//!   strongly consistent BatchGetItem of the batch's rejection keys (the
//!   read the dispatcher made before its common path until issue 26): what
//!   that read costs in time and in DynamoDB Local's CPU;
//! - **three-item**: the same plus the check that no rejection of the record
//!   exists (the dispatcher's transaction before the common path).
//!
//! The binary's side runs as the handler's does: the warm-up's rows alone in
//! the pending table and its stream records read before the measured rows
//! go in (until 2026-12-07 the binary's warm-up ran with all 2,300 rows in
//! the table and its deletes unread, which cost it about 30% of its rate).
//!
//! The dispatcher's sides start as on a system deployed a while ago: the
//! rejections mark long past (docs/design.md, "The common path"), so that
//! first deliveries take the two-item path without a read of their own.
//! `DISPATCH_BENCH_BEFORE`, the path of another build of the dispatcher
//! (an earlier commit's), adds it as one more side of the rounds.
//!
//! Every side gets a fresh DynamoDB Local and an uncounted warm-up of 300
//! rows (its JVM settles on the first workload it serves); DynamoDB Local's
//! own CPU (user + system of the java process) is measured over the 2,000
//! rows. The sides alternate, round after round, so that other load on the
//! machine weighs on each alike. Run: `bash scripts/bench.sh`
//! (`DISPATCH_BENCH_ROUNDS`, default 2; `DISPATCH_BENCH_SWEEP`, the
//! concurrencies swept, default `8,16,32,64`).

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem};
use futures::stream::{self, StreamExt};
use offers_integration_tests::*;
use offers_local::streams::lambda_event;
use offers_local::{Answer, DynamoDbLocal, InvokeError, RuntimeApi, StartOptions};
use offers_shared::domain::PersonalizedOffer;
use offers_shared::dynamo::{offer_to_item, pending_delete};
use offers_shared::ports::{PendingRef, RowCopy};
use serde_json::Value;
use std::time::{Duration, Instant};

const ROWS: usize = 2_000;
const BATCH: usize = 100;
const WARM_UP_ROWS: usize = 300;

/// One measured side: its time for the 2,000 rows and DynamoDB Local's CPU.
#[derive(Debug, Clone, Copy)]
struct Side {
    time: Duration,
    local_cpu: CpuTime,
    /// The dispatcher's (binary) or the bench process's (floors) CPU.
    own_cpu: Option<CpuTime>,
}

impl Side {
    fn rows_per_second(&self) -> f64 {
        ROWS as f64 / self.time.as_secs_f64()
    }

    fn line(&self, name: &str) -> String {
        let own = self.own_cpu.map_or(String::new(), |cpu| {
            format!(
                ", own CPU {:.3} ms/row ({:.2} s)",
                cpu.per_item_ms(ROWS),
                (cpu.user + cpu.system).as_secs_f64()
            )
        });
        format!(
            "  {name:<34} {:>6.0} rows/s ({:.2} s); DynamoDB Local CPU {:.2} s for {ROWS} rows ({:.3} ms/row){own}",
            self.rows_per_second(),
            self.time.as_secs_f64(),
            (self.local_cpu.user + self.local_cpu.system).as_secs_f64(),
            self.local_cpu.per_item_ms(ROWS),
        )
    }
}

/// What the floor's transactions hold.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Floor {
    /// Put + conditional delete.
    Plain,
    /// Put + conditional delete, after one consistent read of the batch's
    /// rejection keys.
    PlainWithRead,
    /// Put + conditional delete + check that the record's rejection is absent.
    ThreeItem,
    /// What the delete's condition costs: put + delete without a condition.
    UnconditionalDelete,
    /// What one item costs: the put alone (the pending row left).
    PutOnly,
    /// The plain floor's two items from the Node.js dispatcher of issue 26
    /// (`tests/benches/node-dispatcher/dispatch.js`, the AWS SDK v3).
    NodeJs,
}

fn item_size(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + offers_shared::dynamo::attribute_size(value))
        .sum()
}

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Some(spec) = std::env::var_os(FLOOR_PROCESS) {
        return floor_process(std::path::Path::new(&spec)).await;
    }
    let rounds = env_list("DISPATCH_BENCH_ROUNDS", "2")
        .first()
        .copied()
        .unwrap_or(2);
    let sweep = env_list("DISPATCH_BENCH_SWEEP", "8,16,32,64");
    let after_binary = function_binary("offer-dispatcher");
    let before_binary = std::env::var_os("DISPATCH_BENCH_BEFORE").map(std::path::PathBuf::from);
    let concurrency = {
        let local = fresh_dynamodb();
        let bed = TestBed::on(&local.endpoint()).await;
        bed.load_sample_catalog().await;
        // Item sizes as DynamoDB counts them (what a write is billed by).
        let offer = offer_to_item(&sample_offer(&bed).await).expect("item");
        let rows = bench_rows("size", 3);
        let row_sizes: Vec<usize> = rows
            .iter()
            .map(|row| item_size(&serde_dynamo::to_item(row).expect("row")))
            .collect();
        println!(
            "item sizes: offer {} bytes (a co-fries offer), pending rows {row_sizes:?} bytes (co-coffee, co-fries, co-fries)",
            item_size(&offer)
        );
        bed.dispatcher_config(&[]).concurrency
    };
    println!(
        "dispatch bench: {ROWS} rows in {} batches of {BATCH}; the template's concurrency {concurrency}; load average {}",
        ROWS / BATCH,
        load_average()
    );

    // The sweep: plain floor and binary alternating at each concurrency.
    let mut best_plain = (0, f64::MAX);
    for &width in &sweep {
        let plain = measure_floor(Floor::Plain, width).await;
        println!("{}", plain.line(&format!("sweep: plain floor at {width}")));
        if plain.time.as_secs_f64() < best_plain.1 {
            best_plain = (width, plain.time.as_secs_f64());
        }
        let (binary, _) = measure_binary(&fresh_dynamodb(), &after_binary, width).await;
        println!("{}", binary.line(&format!("sweep: binary at {width}")));
    }
    let best = best_plain.0;
    println!(
        "  plain floor's best concurrency in the sweep: {best}; load average {}",
        load_average()
    );
    // Where DynamoDB Local's work per row goes: the delete's condition, the second item.
    for (floor, name) in [
        (Floor::UnconditionalDelete, "put + unconditional delete"),
        (Floor::PutOnly, "put alone (1 item)"),
    ] {
        let side = measure_floor(floor, best).await;
        println!("{}", side.line(&format!("profile: {name} at {best}")));
    }

    let mut ratios = Vec::new();
    let mut names = vec!["binary", "handler", "plain", "read", "three", "node"];
    if before_binary.is_some() {
        names.insert(1, "before");
    }
    for round in 1..=rounds {
        // Alternating order: the first side of one round is the last of the next.
        let mut order = names.clone();
        if round % 2 == 0 {
            order.reverse();
        }
        let mut sides: Vec<(&str, Side)> = Vec::new();
        let (mut binary_rss, mut before_rss) = (0, 0);
        let mut handler = None;
        for which in order {
            let side = match which {
                "binary" => {
                    let (side, rss) =
                        measure_binary(&fresh_dynamodb(), &after_binary, concurrency).await;
                    binary_rss = rss;
                    side
                }
                "before" => {
                    let path = before_binary.as_deref().expect("a before binary");
                    let (side, rss) = measure_binary(&fresh_dynamodb(), path, concurrency).await;
                    before_rss = rss;
                    side
                }
                "plain" => measure_floor(Floor::Plain, best).await,
                "three" => measure_floor(Floor::ThreeItem, best).await,
                "read" => measure_floor(Floor::PlainWithRead, best).await,
                "node" => measure_floor(Floor::NodeJs, best).await,
                _ => {
                    let run = measure_handler(&fresh_dynamodb()).await;
                    handler = Some(run.cold_reads);
                    run.side
                }
            };
            sides.push((which, side));
        }
        let side = |name: &str| sides.iter().find(|(n, _)| *n == name).map(|(_, s)| *s);
        let (Some(binary), Some(plain), Some(three), Some(read), Some(handler_side)) = (
            side("binary"),
            side("plain"),
            side("three"),
            side("read"),
            side("handler"),
        ) else {
            panic!("every side measured");
        };
        println!("round {round} (load average {}):", load_average());
        println!(
            "{}",
            binary.line(&format!("release binary at {concurrency}"))
        );
        if let Some(before) = side("before") {
            println!(
                "{}",
                before.line(&format!("before binary at {concurrency}"))
            );
        }
        println!(
            "{}",
            handler_side.line(&format!("handler in process at {concurrency}"))
        );
        println!(
            "{}",
            plain.line(&format!("plain floor (2 items) at {best}"))
        );
        println!("{}", read.line(&format!("plain + batch's read at {best}")));
        println!("{}", three.line(&format!("three-item floor at {best}")));
        let node = side("node").expect("the Node.js side");
        println!("{}", node.line(&format!("Node.js dispatcher at {best}")));
        let time = |a: Side, b: Side| a.time.as_secs_f64() / b.time.as_secs_f64();
        let local = |a: Side, b: Side| {
            (a.local_cpu.user + a.local_cpu.system).as_secs_f64()
                / (b.local_cpu.user + b.local_cpu.system)
                    .as_secs_f64()
                    .max(1e-9)
        };
        println!(
            "  binary/plain: time {:.3} (target <= 1.05), DynamoDB Local CPU {:.3} (target <= 1.1); binary/three-item: time {:.3}, DynamoDB Local CPU {:.3}; handler/plain time {:.3}",
            time(binary, plain),
            local(binary, plain),
            time(binary, three),
            local(binary, three),
            time(handler_side, plain),
        );
        if let Some(before) = side("before") {
            println!(
                "  before/plain: time {:.3}, DynamoDB Local CPU {:.3}; peak RSS of the before binary {:.1} MiB",
                time(before, plain),
                local(before, plain),
                before_rss as f64 / 1024.0,
            );
        }
        println!(
            "  (plain + read)/plain: time {:.3}, DynamoDB Local CPU {:.3}; three-item/plain: time {:.3}, DynamoDB Local CPU {:.3}",
            time(read, plain),
            local(read, plain),
            time(three, plain),
            local(three, plain),
        );
        println!(
            "  peak RSS of the binary {:.1} MiB; catalog items read by the handler's cold batch {}",
            binary_rss as f64 / 1024.0,
            handler.unwrap_or(0)
        );
        println!(
            "  binary/Node.js: time {:.3} (target < 1), DynamoDB Local CPU {:.3}; Node.js/plain: time {:.3}",
            time(binary, node),
            local(binary, node),
            time(node, plain),
        );
        ratios.push((time(binary, plain), local(binary, plain)));
    }
    println!("binary/plain per round (time, DynamoDB Local CPU): {ratios:.3?}");
}

/// As on a dispatcher deployed a while ago: the rejections mark long past
/// (no rejection since).
async fn mark_long_past(bed: &TestBed) {
    use offers_shared::ports::DispatchStore;
    let epoch = chrono::DateTime::UNIX_EPOCH;
    bed.dispatcher(&[])
        .store()
        .raise_rejections_mark(epoch, epoch)
        .await
        .expect("mark set");
}

struct HandlerRun {
    side: Side,
    cold_reads: u64,
}

/// Rows for one batch-sized run, spread over users and two config offers.
/// The pending rows of a run: two in three for `co-fries`, the rest
/// `co-coffee`. Built once, so the floor deletes exactly the rows it put.
fn bench_rows(prefix: &str, count: usize) -> Vec<Value> {
    (0..count)
        .map(|index| {
            let mut row = fries_row(
                &format!("user-{}", index % 97),
                &format!("{prefix}+{index}"),
            );
            if index.is_multiple_of(3) {
                row["offerId"] = Value::from("co-coffee");
                row.as_object_mut().map(|row| row.remove("rules"));
            }
            row
        })
        .collect()
}

async fn put_rows(bed: &TestBed, rows: &[Value]) {
    stream::iter(rows)
        .for_each_concurrent(16, |row| bed.put(PENDING, row.clone()))
        .await;
}

fn local_cpu(local: &DynamoDbLocal) -> CpuTime {
    CpuTime::of_process(local.pid().expect("DynamoDB Local runs"))
}

/// The handler in process, as main.rs wires it (the template's settings).
async fn measure_handler(local: &DynamoDbLocal) -> HandlerRun {
    let bed = TestBed::on(&local.endpoint()).await;
    bed.load_sample_catalog().await;
    mark_long_past(&bed).await;
    let dispatcher = bed.dispatcher(&[]);
    let mut stream = bed.stream().await;

    put_rows(&bed, &bench_rows("warm", WARM_UP_ROWS)).await;
    let warm_up = stream.read_new().await.expect("stream");
    let mut cold_reads = 0;
    for (index, batch) in warm_up.chunks(BATCH).enumerate() {
        assert!(invoke(&dispatcher, batch).await.is_empty());
        if index == 0 {
            cold_reads = dispatcher.store().catalog_items_read();
        }
    }
    stream.read_new().await.expect("stream"); // our own deletes (REMOVE), not counted

    put_rows(&bed, &bench_rows("run", ROWS)).await;
    let records: Vec<Value> = inserts(&stream.read_new().await.expect("stream"));
    assert_eq!(records.len(), ROWS);
    let local_before = local_cpu(local);
    let started = Instant::now();
    for batch in records.chunks(BATCH) {
        let failures = invoke(&dispatcher, batch).await;
        assert!(failures.is_empty(), "{failures:?}");
    }
    let time = started.elapsed();
    let local_cpu = local_cpu(local).since(local_before);
    assert_eq!(
        bed.scan(OFFERS).await.len(),
        ROWS + WARM_UP_ROWS,
        "every row dispatched once"
    );
    HandlerRun {
        side: Side {
            time,
            local_cpu,
            own_cpu: None,
        },
        cold_reads,
    }
}

/// Each side gets a DynamoDB Local of its own: its JVM settles on the first
/// workload it serves, and a later one would measure the order, not the code.
fn fresh_dynamodb() -> DynamoDbLocal {
    DynamoDbLocal::start(StartOptions::default()).unwrap_or_else(|err| panic!("{err}"))
}

/// The release binary at `concurrency`, through a local Runtime API, after
/// its own warm-up; its peak RSS (KiB) beside.
async fn measure_binary(
    local: &DynamoDbLocal,
    binary: &std::path::Path,
    concurrency: usize,
) -> (Side, u64) {
    let bed = TestBed::on(&local.endpoint()).await;
    bed.load_sample_catalog().await;
    mark_long_past(&bed).await;
    let mut stream = bed.stream().await;
    let runtime = RuntimeApi::start().await.expect("runtime api");
    let width = concurrency.to_string();
    let mut function = spawn_function(
        binary,
        &bed.environment(
            "OfferDispatcherFunction",
            &[("DISPATCH_CONCURRENCY", width.as_str())],
        ),
        &local.endpoint(),
        &runtime,
    );
    // As the handler's side: the warm-up's rows alone in the table, its
    // deletes read off the stream before the measured rows go in.
    put_rows(&bed, &bench_rows("warm", WARM_UP_ROWS)).await;
    let warm_up = stream.read_new().await.expect("stream");
    for batch in warm_up.chunks(BATCH) {
        assert_no_failures(
            runtime
                .invoke(lambda_event(batch), Duration::from_secs(60))
                .await,
        );
    }
    stream.read_new().await.expect("stream"); // the warm-up's deletes (REMOVE), not counted
    put_rows(&bed, &bench_rows("bin", ROWS)).await;
    let records: Vec<Value> = inserts(&stream.read_new().await.expect("stream"));
    assert_eq!(records.len(), ROWS);
    let cpu_before = CpuTime::of_process(function.id());
    let local_before = local_cpu(local);
    let started = Instant::now();
    for batch in records.chunks(BATCH) {
        assert_no_failures(
            runtime
                .invoke(lambda_event(batch), Duration::from_secs(60))
                .await,
        );
    }
    let time = started.elapsed();
    let local_cpu = local_cpu(local).since(local_before);
    let cpu = CpuTime::of_process(function.id()).since(cpu_before);
    let peak_rss_kib = peak_rss_kib(function.id());
    let _ = function.kill();
    let _ = function.wait();
    assert_eq!(bed.scan(OFFERS).await.len(), ROWS + WARM_UP_ROWS);
    (
        Side {
            time,
            local_cpu,
            own_cpu: Some(cpu),
        },
        peak_rss_kib,
    )
}

fn assert_no_failures(answer: Result<Answer, InvokeError>) {
    assert_eq!(
        answer,
        Ok(Answer::Response(
            serde_json::json!({"batchItemFailures": []})
        ))
    );
}

/// Bare transactions of the rows, batch after batch, `concurrency` at once,
/// on a fresh DynamoDB Local after a warm-up, from a process of their own
/// (this bench run again, [`floor_process`]): the release binary is a
/// separate process competing with DynamoDB Local's JVM for the same two
/// cores, and so is the plain implementation it is measured against (as the
/// issue's Node.js dispatcher was).
async fn measure_floor(floor: Floor, concurrency: usize) -> Side {
    use std::io::{BufRead, Write};
    let local = fresh_dynamodb();
    let bed = TestBed::on(&local.endpoint()).await;
    bed.load_sample_catalog().await;
    let warm_up = bench_rows("warm", WARM_UP_ROWS);
    let rows = bench_rows("run", ROWS);
    let model = sample_offer(&bed).await;
    let spec = serde_json::json!({
        "endpoint": local.endpoint(),
        "offers": bed.table(OFFERS),
        "pending": bed.table(PENDING),
        "rejected": bed.table(REJECTED),
        "floor": format!("{floor:?}"),
        "concurrency": concurrency,
        "model": model,
        "warmUp": warm_up,
        "rows": rows,
        // The same in DynamoDB's wire JSON, for the Node.js dispatcher.
        "modelItem": wire_item(offer_to_item(&model).expect("model item")),
        "warmUpItems": warm_up.iter().map(row_item).collect::<Vec<_>>(),
        "rowItems": rows.iter().map(row_item).collect::<Vec<_>>(),
    });
    let spec_file = std::env::temp_dir().join(format!(
        "dispatch-floor-{}-{}.json",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::write(&spec_file, spec.to_string()).expect("spec written");
    put_rows(&bed, &warm_up).await;
    let mut command = match floor {
        Floor::NodeJs => {
            let mut node = std::process::Command::new("node");
            node.arg(repo_root().join("tests/benches/node-dispatcher/dispatch.js"))
                .env("NODE_PATH", node_dispatcher_modules());
            node
        }
        _ => std::process::Command::new(std::env::current_exe().expect("this bench")),
    };
    let mut child = command
        .env(FLOOR_PROCESS, &spec_file)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("floor process");
    let mut to_child = child.stdin.take().expect("stdin");
    let mut from_child = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut expect_line = |want: &str| {
        let line = tokio::task::block_in_place(|| from_child.next());
        let line = line.expect("the floor process answers").expect("a line");
        assert_eq!(line, want, "the floor process");
    };
    expect_line("warm");
    put_rows(&bed, &rows).await;
    let cpu_before = CpuTime::of_process(child.id());
    let local_before = local_cpu(&local);
    let started = Instant::now();
    writeln!(to_child, "go").expect("go");
    to_child.flush().expect("go sent");
    expect_line("done");
    let time = started.elapsed();
    let local_cpu = local_cpu(&local).since(local_before);
    let cpu = CpuTime::of_process(child.id()).since(cpu_before);
    let peak_rss = peak_rss_kib(child.id());
    drop(to_child);
    assert!(child.wait().expect("floor process ends").success());
    let _ = std::fs::remove_file(&spec_file);
    if floor == Floor::NodeJs {
        println!(
            "  (Node.js dispatcher: peak RSS {:.1} MiB)",
            peak_rss as f64 / 1024.0
        );
    }
    if floor != Floor::PutOnly {
        assert!(
            bed.scan(PENDING).await.is_empty(),
            "the floor consumed every row"
        );
    }
    Side {
        time,
        local_cpu,
        own_cpu: Some(cpu),
    }
}

/// A pending row's item in DynamoDB's wire JSON.
fn row_item(row: &Value) -> Value {
    let item: serde_dynamo::Item = serde_dynamo::to_item(row).expect("row item");
    serde_json::to_value(item).expect("wire JSON")
}

fn wire_item(item: std::collections::HashMap<String, AttributeValue>) -> Value {
    let item: std::collections::HashMap<String, serde_dynamo::AttributeValue> = item
        .into_iter()
        .map(|(name, value)| (name, value.into()))
        .collect();
    serde_json::to_value(item).expect("wire JSON")
}

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf()
}

/// The Node.js dispatcher's `node_modules` (git-ignored `.local/`), the
/// dependencies of its package.json installed by npm on first use.
fn node_dispatcher_modules() -> std::path::PathBuf {
    let prefix = repo_root().join(".local/node-dispatcher");
    let modules = prefix.join("node_modules");
    if !modules.join("@aws-sdk/client-dynamodb").is_dir() {
        let package = repo_root().join("tests/benches/node-dispatcher/package.json");
        let package: Value =
            serde_json::from_str(&std::fs::read_to_string(package).expect("package.json"))
                .expect("package.json is JSON");
        let dependencies: Vec<String> = package["dependencies"]
            .as_object()
            .expect("its dependencies")
            .iter()
            .map(|(name, version)| format!("{name}@{}", version.as_str().unwrap_or("latest")))
            .collect();
        let status = std::process::Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--loglevel=error",
            ])
            .arg("--prefix")
            .arg(&prefix)
            .args(&dependencies)
            .status()
            .expect("npm runs (Node.js is a prerequisite of DynamoDB Local's package)");
        assert!(
            status.success(),
            "npm install of the Node.js dispatcher's SDK"
        );
    }
    modules
}

/// The variable that makes this bench a floor process, naming its spec file.
const FLOOR_PROCESS: &str = "DISPATCH_BENCH_FLOOR_PROCESS";

/// The floor as a process of its own: its client (built as the test beds
/// build theirs), the warm-up's rows, then `warm` on stdout; at `go` on
/// stdin the measured rows, then `done`.
async fn floor_process(spec: &std::path::Path) {
    use std::io::BufRead;
    let text = std::fs::read_to_string(spec).expect("spec file");
    let spec: Value = serde_json::from_str(&text).expect("spec");
    let text = |name: &str| spec[name].as_str().expect(name).to_owned();
    let floor = [
        Floor::Plain,
        Floor::PlainWithRead,
        Floor::ThreeItem,
        Floor::UnconditionalDelete,
        Floor::PutOnly,
    ]
    .into_iter()
    .find(|floor| format!("{floor:?}") == text("floor"))
    .expect("a floor");
    let concurrency = spec["concurrency"].as_u64().expect("concurrency") as usize;
    let model: PersonalizedOffer = serde_json::from_value(spec["model"].clone()).expect("model");
    let rows = |name: &str| spec[name].as_array().expect(name).clone();
    let client =
        aws_sdk_dynamodb::Client::new(&offers_local::local_sdk_config(&text("endpoint")).await);
    let target = FloorTables {
        client,
        offers: text("offers"),
        pending: text("pending"),
        rejected: text("rejected"),
    };
    bare_transactions(&target, floor, &model, &rows("warmUp"), concurrency).await;
    println!("warm");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).expect("go");
    assert_eq!(line.trim(), "go");
    bare_transactions(&target, floor, &model, &rows("rows"), concurrency).await;
    println!("done");
}

/// The client and tables a floor writes with.
struct FloorTables {
    client: aws_sdk_dynamodb::Client,
    offers: String,
    pending: String,
    rejected: String,
}

/// One real offer, made by the dispatcher, as the model for the floor's items.
async fn sample_offer(bed: &TestBed) -> PersonalizedOffer {
    bed.put(PENDING, fries_row("model-user", "model")).await;
    let records = bed.stream().await.read_new().await.expect("stream");
    assert!(invoke(&bed.dispatcher(&[]), &records).await.is_empty());
    let item = bed
        .client
        .scan()
        .table_name(bed.table(OFFERS))
        .send()
        .await
        .expect("scan")
        .items()
        .first()
        .cloned()
        .expect("the model offer");
    offers_shared::dynamo::offer_from_item(item).expect("offer")
}

async fn bare_transactions(
    bed: &FloorTables,
    floor: Floor,
    model: &PersonalizedOffer,
    rows: &[Value],
    concurrency: usize,
) {
    for batch in rows.chunks(BATCH) {
        let ids: Vec<uuid::Uuid> = batch.iter().map(|_| uuid::Uuid::new_v4()).collect();
        if floor == Floor::PlainWithRead {
            read_rejections(bed, batch, &ids).await;
        }
        stream::iter(batch.iter().zip(&ids))
            .for_each_concurrent(concurrency, |(row, id)| async move {
                let text = |name: &str| row[name].as_str().unwrap_or_default().to_owned();
                let mut offer = model.clone();
                offer.personalized_offer_id = (*id).into();
                offer.user_id = text("userId");
                offer.sort_key = Some(text("sortKey"));
                let put = Put::builder()
                    .table_name(&bed.offers)
                    .set_item(Some(offer_to_item(&offer).expect("item")))
                    .condition_expression("attribute_not_exists(personalizedOfferId)")
                    .build()
                    .expect("put");
                // The dispatcher's own delete: only the row as the stream saw it.
                let pending = PendingRef {
                    user_id: text("userId"),
                    sort_key: text("sortKey"),
                    row: RowCopy::Image(serde_dynamo::to_item(row).expect("row image")),
                    record_id: *id,
                    assignment_id: None,
                };
                let delete = match floor {
                    Floor::UnconditionalDelete => Delete::builder()
                        .table_name(&bed.pending)
                        .key("userId", AttributeValue::S(text("userId")))
                        .key("sortKey", AttributeValue::S(text("sortKey")))
                        .build()
                        .expect("delete"),
                    _ => pending_delete(&bed.pending, &pending).expect("delete"),
                };
                let mut transaction = bed
                    .client
                    .transact_write_items()
                    .transact_items(TransactWriteItem::builder().put(put).build());
                if floor != Floor::PutOnly {
                    transaction = transaction
                        .transact_items(TransactWriteItem::builder().delete(delete).build());
                }
                if floor == Floor::ThreeItem {
                    let check = ConditionCheck::builder()
                        .table_name(&bed.rejected)
                        .key("userId", AttributeValue::S(text("userId")))
                        .key(
                            "rejectionId",
                            AttributeValue::S(offer.personalized_offer_id.to_string()),
                        )
                        .condition_expression("attribute_not_exists(rejectionId)")
                        .build()
                        .expect("check");
                    transaction = transaction.transact_items(
                        TransactWriteItem::builder().condition_check(check).build(),
                    );
                }
                transaction.send().await.expect("bare transaction");
            })
            .await;
    }
}

/// The read of the dispatcher before its common path (until issue 26): one
/// strongly consistent BatchGetItem of the batch's rejection keys, only
/// `rejectionId` projected.
async fn read_rejections(bed: &FloorTables, batch: &[Value], ids: &[uuid::Uuid]) {
    let keys = batch
        .iter()
        .zip(ids)
        .map(|(row, id)| {
            std::collections::HashMap::from([
                (
                    "userId".to_owned(),
                    AttributeValue::S(row["userId"].as_str().unwrap_or_default().to_owned()),
                ),
                ("rejectionId".to_owned(), AttributeValue::S(id.to_string())),
            ])
        })
        .collect();
    let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
        .set_keys(Some(keys))
        .consistent_read(true)
        .projection_expression("rejectionId")
        .build()
        .expect("keys");
    let output = bed
        .client
        .batch_get_item()
        .request_items(&bed.rejected, request)
        .send()
        .await
        .expect("batch read");
    assert!(
        output.unprocessed_keys().is_none_or(|keys| keys.is_empty()),
        "every key read"
    );
}
