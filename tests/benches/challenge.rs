//! Challenge progress on DynamoDB Local against a floor measured in the same run.
//!
//! 400 users, each with a five-visit challenge offer; 2,000 transactions
//! (five per user, so every challenge completes), as 20 stream batches of
//! 100, go through the handler. The floor is the same DynamoDB work issued
//! bare at the same concurrency, records of one user in order: per
//! transaction the consistent Query of the user's partition and the
//! conditional UpdateItem that meets the goal (completing the challenge on
//! the fifth), with the same conditions. Each side gets a fresh DynamoDB
//! Local and an uncounted warm-up round (300 transactions of 60 other
//! users). The function binary (target/<profile>: release under
//! `scripts/bench.sh`) is also run through a local Runtime API for its
//! CPU time per transaction and its peak RSS.
//! Run: `bash scripts/bench.sh`.

use aws_sdk_dynamodb::types::AttributeValue;
use futures::stream::{self, StreamExt};
use offers_integration_tests::*;
use offers_local::streams::lambda_event;
use offers_local::{Answer, DynamoDbLocal, InvokeError, RuntimeApi, StartOptions};
use offers_shared::domain::PersonalizedOffer;
use offers_shared::dynamo::offer_to_item;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const USERS: usize = 400;
const VISITS: usize = 5;
const TRANSACTION_COUNT: usize = USERS * VISITS;
const WARM_UP_USERS: usize = 60;
const BATCH: usize = 100;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let handler = measure_handler(&fresh_dynamodb()).await;
    let floor = measure_floor(&fresh_dynamodb(), handler.concurrency).await;
    let binary = measure_binary(&fresh_dynamodb()).await;
    let per_second = |time: Duration| TRANSACTION_COUNT as f64 / time.as_secs_f64();
    println!(
        "challenge bench: {TRANSACTION_COUNT} transactions of {USERS} users ({VISITS}-visit challenges, all completed), {} batches of {BATCH}, concurrency {}",
        TRANSACTION_COUNT / BATCH,
        handler.concurrency
    );
    println!(
        "  handler (in process):  {:>6.0} txn/s  ({:.2} s)",
        per_second(handler.time),
        handler.time.as_secs_f64()
    );
    println!(
        "  function binary:       {:>6.0} txn/s  ({:.2} s, target/<profile>/challenge-progress through a local Runtime API)",
        per_second(binary.time),
        binary.time.as_secs_f64()
    );
    println!(
        "  floor:                 {:>6.0} txn/s  ({:.2} s, bare Query + conditional UpdateItem per transaction; CPU {:.3} ms/txn of the bench process)",
        per_second(floor.time),
        floor.time.as_secs_f64(),
        floor.cpu.per_item_ms(TRANSACTION_COUNT)
    );
    println!(
        "  ratio handler/floor:   {:>6.3}  (target <= 1.15)",
        handler.time.as_secs_f64() / floor.time.as_secs_f64()
    );
    println!(
        "  ratio binary/floor:    {:>6.3}",
        binary.time.as_secs_f64() / floor.time.as_secs_f64()
    );
    println!(
        "  CPU of the binary:     {:>6.3} ms/txn (user {:.3} + system {:.3}, over the {TRANSACTION_COUNT} measured transactions)",
        binary.cpu.per_item_ms(TRANSACTION_COUNT),
        binary.cpu.user_per_item_ms(TRANSACTION_COUNT),
        binary.cpu.system_per_item_ms(TRANSACTION_COUNT)
    );
    println!(
        "  peak RSS of the binary: {:>5.1} MiB (VmHWM after {TRANSACTION_COUNT} transactions)",
        binary.peak_rss_kib as f64 / 1024.0
    );
}

struct Run {
    time: Duration,
    concurrency: usize,
}

struct FloorRun {
    time: Duration,
    cpu: CpuTime,
}

struct BinaryRun {
    time: Duration,
    cpu: CpuTime,
    peak_rss_kib: u64,
}

fn fresh_dynamodb() -> DynamoDbLocal {
    DynamoDbLocal::start(StartOptions::default()).unwrap_or_else(|err| panic!("{err}"))
}

/// The users of a round: `prefix-0` .. `prefix-(count-1)`.
fn users(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|n| format!("{prefix}-{n}")).collect()
}

/// A bed with one five-visit challenge offer per user (written as the
/// dispatcher writes offers: a model offer it made, copied per user).
async fn bed_with_challenges(local: &DynamoDbLocal, rounds: &[&[String]]) -> TestBed {
    let bed = TestBed::on(&local.endpoint()).await;
    bed.load_sample_catalog().await;
    let goals: serde_json::Map<String, Value> = (1..=VISITS)
        .map(|n| {
            (
                format!("visit{n}"),
                json!({"condition": {"total_cost": "1"}}),
            )
        })
        .collect();
    let mut row = seed_challenge_row(&future_date(60));
    row["userId"] = json!("model-user");
    row["challengeStatus"] = json!(json!({"reward": {"value": "100"}, "goals": goals}).to_string());
    let mut stream = bed.stream().await;
    bed.dispatch_rows(&mut stream, &[row]).await;
    let model = bed.scan(OFFERS).await.remove(0);
    let model: PersonalizedOffer = serde_json::from_value(Value::Object(model)).expect("model");
    let offers: Vec<PersonalizedOffer> = rounds
        .iter()
        .flat_map(|users| users.iter())
        .map(|user| {
            let mut offer = model.clone();
            offer.personalized_offer_id = offers_shared::domain::PersonalizedOfferId::random();
            offer.user_id = user.clone();
            offer
        })
        .collect();
    stream::iter(offers)
        .for_each_concurrent(16, |offer| {
            let bed = &bed;
            async move {
                bed.client
                    .put_item()
                    .table_name(bed.table(OFFERS))
                    .set_item(Some(offer_to_item(&offer).expect("item")))
                    .send()
                    .await
                    .expect("put offer");
            }
        })
        .await;
    bed
}

/// Five transactions per user, visit by visit across all users.
fn transactions(users: &[String]) -> Vec<Value> {
    (0..VISITS)
        .flat_map(|visit| {
            users.iter().map(move |user| {
                transaction(
                    &format!("{user}-t{visit}"),
                    user,
                    5.0,
                    &format!("2026-05-0{}T10:00:00Z", visit + 1),
                )
            })
        })
        .collect()
}

/// Puts transactions; the INSERT records of the stream, in stream order.
async fn put_and_read(
    bed: &TestBed,
    stream: &mut offers_local::StreamReader,
    items: &[Value],
) -> Vec<Value> {
    for chunk in items.chunks(BATCH) {
        stream::iter(chunk)
            .for_each_concurrent(16, |item| {
                bed.put(offers_integration_tests::TRANSACTIONS, item.clone())
            })
            .await;
    }
    let records = inserts(&stream.read_new().await.expect("stream"));
    assert_eq!(records.len(), items.len());
    records
}

async fn assert_all_completed(bed: &TestBed, expected: usize) {
    let completed = bed
        .scan(OFFERS)
        .await
        .iter()
        .filter(|offer| offer["challenge"]["completedAt"].is_string())
        .count();
    assert_eq!(completed, expected, "every challenge completed once");
}

async fn measure_handler(local: &DynamoDbLocal) -> Run {
    let (warm_users, run_users) = (users("warm", WARM_UP_USERS), users("user", USERS));
    let bed = bed_with_challenges(local, &[&warm_users, &run_users]).await;
    let progress = bed.progress(&[]);
    let concurrency = bed.progress_config(&[]).concurrency;
    let mut stream = bed.transactions_stream().await;
    let warm_up = put_and_read(&bed, &mut stream, &transactions(&warm_users)).await;
    for batch in warm_up.chunks(BATCH) {
        assert!(invoke_progress(&progress, batch).await.is_empty());
    }
    let records = put_and_read(&bed, &mut stream, &transactions(&run_users)).await;
    let started = Instant::now();
    for batch in records.chunks(BATCH) {
        let failures = invoke_progress(&progress, batch).await;
        assert!(failures.is_empty(), "{failures:?}");
    }
    let time = started.elapsed();
    assert_all_completed(&bed, WARM_UP_USERS + USERS).await;
    Run { time, concurrency }
}

async fn measure_binary(local: &DynamoDbLocal) -> BinaryRun {
    let (warm_users, run_users) = (users("warm", WARM_UP_USERS), users("user", USERS));
    let bed = bed_with_challenges(local, &[&warm_users, &run_users]).await;
    let mut stream = bed.transactions_stream().await;
    let warm_up = put_and_read(&bed, &mut stream, &transactions(&warm_users)).await;
    let records = put_and_read(&bed, &mut stream, &transactions(&run_users)).await;
    let runtime = RuntimeApi::start().await.expect("runtime api");
    let mut function = spawn_function(
        &function_binary("challenge-progress"),
        &bed.environment(PROGRESS, &[]),
        &local.endpoint(),
        &runtime,
    );
    let no_failures = |answer: Result<Answer, InvokeError>| {
        assert_eq!(
            answer,
            Ok(Answer::Response(json!({"batchItemFailures": []})))
        )
    };
    for batch in warm_up.chunks(BATCH) {
        no_failures(
            runtime
                .invoke(lambda_event(batch), Duration::from_secs(60))
                .await,
        );
    }
    let cpu_before = CpuTime::of_process(function.id());
    let started = Instant::now();
    for batch in records.chunks(BATCH) {
        no_failures(
            runtime
                .invoke(lambda_event(batch), Duration::from_secs(60))
                .await,
        );
    }
    let time = started.elapsed();
    let cpu = CpuTime::of_process(function.id()).since(cpu_before);
    let peak_rss_kib = peak_rss_kib(function.id());
    let _ = function.kill();
    let _ = function.wait();
    assert_all_completed(&bed, WARM_UP_USERS + USERS).await;
    BinaryRun {
        time,
        cpu,
        peak_rss_kib,
    }
}

async fn measure_floor(local: &DynamoDbLocal, concurrency: usize) -> FloorRun {
    let (warm_users, run_users) = (users("warm", WARM_UP_USERS), users("user", USERS));
    let bed = bed_with_challenges(local, &[&warm_users, &run_users]).await;
    bare_progress(&bed, &transactions(&warm_users), concurrency).await;
    let items = transactions(&run_users);
    let cpu_before = CpuTime::of_self();
    let started = Instant::now();
    bare_progress(&bed, &items, concurrency).await;
    let time = started.elapsed();
    let cpu = CpuTime::of_self().since(cpu_before);
    assert_all_completed(&bed, WARM_UP_USERS + USERS).await;
    FloorRun { time, cpu }
}

/// The function's DynamoDB work, bare: batch by batch, the batch's users at
/// `concurrency`, each user's transactions in order; per transaction the
/// Query of the user's challenge offers and the goal's conditional UpdateItem.
async fn bare_progress(bed: &TestBed, items: &[Value], concurrency: usize) {
    for batch in items.chunks(BATCH) {
        let mut by_user: Vec<(String, Vec<&Value>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for item in batch {
            let user = item["userId"].as_str().unwrap_or_default().to_owned();
            let at = *index.entry(user.clone()).or_insert_with(|| {
                by_user.push((user.clone(), Vec::new()));
                by_user.len() - 1
            });
            by_user[at].1.push(item);
        }
        stream::iter(by_user)
            .for_each_concurrent(concurrency, |(user, items)| async move {
                for item in items {
                    bare_transaction(bed, &user, item).await;
                }
            })
            .await;
    }
}

async fn bare_transaction(bed: &TestBed, user: &str, item: &Value) {
    let text = |value: &str| AttributeValue::S(value.to_owned());
    let offers = bed
        .client
        .query()
        .table_name(bed.table(OFFERS))
        .key_condition_expression("userId = :user")
        .filter_expression("attribute_exists(challenge)")
        .expression_attribute_values(":user", text(user))
        .consistent_read(true)
        .send()
        .await
        .expect("query");
    let offer = offers.items().first().expect("the user's challenge");
    let id = offer["personalizedOfferId"].clone();
    let transaction_id = item["transactionId"].as_str().unwrap_or_default();
    // `<user>-t<visit>`: the visit this transaction meets.
    let visit: usize = transaction_id
        .rsplit("-t")
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let goal = format!("visit{}", visit + 1);
    let key = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, transaction_id.as_bytes()).to_string();
    let mut update = bed
        .client
        .update_item()
        .table_name(bed.table(OFFERS))
        .key("userId", text(user))
        .key("personalizedOfferId", id)
        .expression_attribute_names("#id", "personalizedOfferId")
        .expression_attribute_names("#rv", "revokedAt")
        .expression_attribute_names("#c", "challenge")
        .expression_attribute_names("#g", "goals")
        .expression_attribute_names("#m", "metAt")
        .expression_attribute_names("#t", "transactionId")
        .expression_attribute_names("#ct", "countedTransactions")
        .expression_attribute_names("#goal", goal.clone())
        .expression_attribute_values(":at", text("2026-05-02T10:00:00Z"))
        .expression_attribute_values(":tx", text(transaction_id));
    let mut sets = vec!["#c.#g.#goal.#m = :at", "#c.#g.#goal.#t = :tx"];
    let mut conditions = vec![
        "attribute_exists(#id)",
        "attribute_not_exists(#rv)",
        "attribute_exists(#c.#g.#goal)",
        "attribute_not_exists(#c.#g.#goal.#m)",
    ];
    if visit == 0 {
        sets.push("#c.#ct = :counted");
        conditions.push("attribute_not_exists(#c.#ct)");
        update = update.expression_attribute_values(
            ":counted",
            AttributeValue::M(HashMap::from([(key, text(&goal))])),
        );
    } else {
        sets.push("#c.#ct.#k = :goal");
        conditions.push("attribute_exists(#c.#ct)");
        conditions.push("attribute_not_exists(#c.#ct.#k)");
        update = update
            .expression_attribute_names("#k", key)
            .expression_attribute_values(":goal", text(&goal));
    }
    let mut completion = String::new();
    if visit + 1 == VISITS {
        sets.push("#c.#done = :at");
        sets.push("#c.#r.#ga = :at");
        update = update
            .expression_attribute_names("#done", "completedAt")
            .expression_attribute_names("#r", "reward")
            .expression_attribute_names("#ga", "grantedAt");
        completion.push_str(" AND attribute_not_exists(#c.#done)");
        for other in 1..VISITS {
            completion.push_str(&format!(" AND attribute_exists(#c.#g.#o{other}.#m)"));
            update =
                update.expression_attribute_names(format!("#o{other}"), format!("visit{other}"));
        }
    }
    update
        .update_expression(format!("SET {}", sets.join(", ")))
        .condition_expression(format!("{}{completion}", conditions.join(" AND ")))
        .send()
        .await
        .expect("bare update");
}
