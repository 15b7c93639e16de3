//! The built function binaries, run the way Lambda runs them: through the
//! Runtime API, with the environment template.yaml declares, on DynamoDB Local.

use offers_integration_tests::*;
use offers_local::streams::lambda_event;
use offers_local::{Answer, RuntimeApi};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dispatcher_binary_dispatches_a_stream_batch() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    bed.put(PENDING, fries_row("user-bin", "camp-1+co-fries"))
        .await;
    bed.put(PENDING, seed_challenge_row(&future_date(20))).await;
    bed.put(PENDING, seed_challenge_row("2025-09-20T17:37:37+0000"))
        .await; // overwrites: MODIFY
    let records = bed.stream().await.read_new().await.expect("stream");

    let runtime = RuntimeApi::start().await.expect("runtime api");
    let mut function = spawn_function(
        &function_binary("offer-dispatcher"),
        &bed.environment(DISPATCHER, &[]),
        &shared_dynamodb().endpoint(),
        &runtime,
    );
    let answer = runtime
        .invoke(lambda_event(&records), Duration::from_secs(30))
        .await;
    let _ = function.kill();
    let _ = function.wait();

    assert_eq!(
        answer,
        Ok(Answer::Response(json!({"batchItemFailures": []})))
    );
    assert!(runtime.first_poll().is_some());
    let offers = bed.scan(OFFERS).await;
    assert_eq!(offers.len(), 2, "the fries row and the challenge INSERT");
    // The MODIFY is ignored and its newer row is kept, not deleted by the INSERT.
    assert_eq!(bed.scan(PENDING).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_variable_stops_the_function_at_init() {
    let bed = TestBed::new().await;
    let runtime = RuntimeApi::start().await.expect("runtime api");
    let mut environment = bed.environment(DISPATCHER, &[]);
    environment.remove("REJECTED_TABLE_NAME");
    let (status, stderr) = exit_at_init(
        &function_binary("offer-dispatcher"),
        &environment,
        &shared_dynamodb().endpoint(),
        &runtime,
    )
    .await;
    assert!(!status.success());
    assert!(stderr.contains("REJECTED_TABLE_NAME"), "{stderr}");
    assert!(runtime.first_poll().is_none(), "it never asked for work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_challenge_progress_binary_completes_a_challenge() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    let mut stream = bed.stream().await;
    let ids = bed
        .dispatch_rows(&mut stream, &[seed_challenge_row(&future_date(20))])
        .await;
    let id = ids.values().next().cloned().unwrap_or_default();
    let mut transactions = bed.transactions_stream().await;
    bed.put(
        TRANSACTIONS,
        transaction("bin-1", SEED_USER, 12.5, "2026-05-02T10:00:00Z"),
    )
    .await;
    bed.put(
        TRANSACTIONS,
        transaction("bin-2", SEED_USER, 4.2, "2026-05-03T10:00:00Z"),
    )
    .await;
    let mut invalid = transaction("bin-bad", SEED_USER, 1.0, "2026-05-03T10:00:00Z");
    invalid["occurredAt"] = json!("not a date");
    bed.put(TRANSACTIONS, invalid).await;
    let records = transactions.read_new().await.expect("stream");

    let runtime = RuntimeApi::start().await.expect("runtime api");
    let mut function = spawn_function(
        &function_binary("challenge-progress"),
        &bed.environment(PROGRESS, &[]),
        &shared_dynamodb().endpoint(),
        &runtime,
    );
    let answer = runtime
        .invoke(lambda_event(&records), Duration::from_secs(30))
        .await;
    let _ = function.kill();
    let _ = function.wait();

    assert_eq!(
        answer,
        Ok(Answer::Response(json!({"batchItemFailures": []})))
    );
    let offer = bed
        .scan(OFFERS)
        .await
        .into_iter()
        .find(|offer| offer["personalizedOfferId"] == id.as_str())
        .expect("the offer");
    assert_eq!(
        offer["challenge"]["goals"]["visit2"]["transactionId"],
        "bin-2"
    );
    assert!(offer["challenge"]["completedAt"].is_string());
    let rejected = bed.scan(REJECTED).await;
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["reasonCode"], "invalid_transaction");
}
