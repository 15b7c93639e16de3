//! The built function binaries, run the way Lambda runs them: through the
//! Runtime API, with the environment template.yaml declares, on DynamoDB Local.

use offers_integration_tests::*;
use offers_local::streams::lambda_event;
use offers_local::{Answer, InvokeError, RuntimeApi};
use serde_json::json;
use std::collections::HashMap;
use std::net::UdpSocket;
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

/// A batch of three records, as the stream gives it: an INSERT that is
/// dispatched (its row overwritten meanwhile, so a warning is logged), an
/// INSERT of an unknown offer (rejected) and the overwrite (a MODIFY, ignored).
async fn three_records(bed: &TestBed) -> Vec<serde_json::Value> {
    bed.load_sample_catalog().await;
    bed.put(PENDING, fries_row("user-dd", "camp-1+co-fries"))
        .await;
    let mut unknown = fries_row("user-dd", "camp-1+co-nope");
    unknown["offerId"] = json!("co-nope");
    bed.put(PENDING, unknown).await;
    let mut overwrite = fries_row("user-dd", "camp-1+co-fries");
    overwrite["rank"] = json!(7);
    bed.put(PENDING, overwrite).await;
    bed.stream().await.read_new().await.expect("stream")
}

/// Runs the dispatcher binary on `records` with `overrides`: its answer and stdout.
async fn run_dispatcher(
    bed: &TestBed,
    records: &[serde_json::Value],
    overrides: &[(&str, &str)],
) -> (Result<Answer, InvokeError>, String) {
    invoke_binary_once(
        "offer-dispatcher",
        &bed.environment(DISPATCHER, overrides),
        &shared_dynamodb().endpoint(),
        lambda_event(records),
    )
    .await
}

/// A UDP listener on a free port, as the Datadog extension listens.
fn dogstatsd_listener() -> (UdpSocket, String) {
    let listener = UdpSocket::bind(("127.0.0.1", 0)).expect("a UDP port");
    listener
        .set_read_timeout(Some(Duration::from_millis(1_500)))
        .expect("read timeout");
    let port = listener.local_addr().expect("address").port().to_string();
    (listener, port)
}

/// The lines received until nothing comes for the read timeout.
fn received_lines(listener: &UdpSocket) -> Vec<String> {
    let mut lines = Vec::new();
    let mut buffer = vec![0_u8; 65_536];
    while let Ok(read) = listener.recv(&mut buffer) {
        lines.extend(
            String::from_utf8_lossy(&buffer[..read])
                .lines()
                .map(str::to_owned),
        );
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_datadog_the_dispatcher_sends_its_metrics_to_dogstatsd() {
    let bed = TestBed::new().await;
    let records = three_records(&bed).await;
    let (listener, port) = dogstatsd_listener();
    let (answer, stdout) = run_dispatcher(
        &bed,
        &records,
        &[
            ("OBSERVABILITY", "datadog"),
            ("DD_DOGSTATSD_PORT", &port),
            ("DD_SERVICE", "personalized-offers"),
            ("DD_ENV", "dev"),
            ("DD_VERSION", "abc123"),
        ],
    )
    .await;
    assert_eq!(
        answer,
        Ok(Answer::Response(json!({"batchItemFailures": []})))
    );
    let mut lines = received_lines(&listener);
    let lag = lines
        .iter()
        .position(|line| line.starts_with("personalized_offers.dispatch.lag:"))
        .map(|at| lines.remove(at))
        .expect("the lag line");
    let tags = "|d|#function:offer-dispatcher";
    let mut expected = vec![
        format!("personalized_offers.dispatch.records:1{tags},outcome:dispatched"),
        format!(
            "personalized_offers.dispatch.records:1{tags},outcome:rejected,reason_code:unknown_offer"
        ),
        format!("personalized_offers.dispatch.records:0{tags},outcome:duplicate"),
        format!("personalized_offers.dispatch.records:0{tags},outcome:failed"),
        format!("personalized_offers.dispatch.records:1{tags},outcome:ignored"),
    ];
    lines.sort();
    expected.sort();
    assert_eq!(lines, expected);
    // Per record: one lag value for each INSERT, in ms, under the time the test took.
    let values = lag
        .strip_prefix("personalized_offers.dispatch.lag:")
        .and_then(|rest| rest.strip_suffix(tags))
        .expect("a lag distribution tagged with the function");
    let lags: Vec<u64> = values
        .split(':')
        .map(|value| value.parse().expect("a whole number of ms"))
        .collect();
    assert_eq!(lags.len(), 2, "{lag}");
    assert!(lags.iter().all(|ms| *ms < 120_000), "{lag}");
    // No EMF: the metrics went to Datadog only.
    assert!(!stdout.contains("\"_aws\""), "{stdout}");
    // The warning of the overwritten row carries what Datadog correlates on.
    let warning: serde_json::Value = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["level"] == "WARN")
        .expect("a warning line");
    assert_eq!(warning["service"], "personalized-offers");
    assert_eq!(warning["env"], "dev");
    assert_eq!(warning["version"], "abc123");
    assert!(
        warning["request_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("local-")),
        "{warning}"
    );
    assert_eq!(warning["outcome"], "dispatched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_cloudwatch_the_dispatcher_prints_emf_and_sends_nothing() {
    let bed = TestBed::new().await;
    let records = three_records(&bed).await;
    let (listener, port) = dogstatsd_listener();
    // The template's default (cloudwatch); the port set all the same, so
    // that anything sent would arrive here.
    let environment = bed.environment(DISPATCHER, &[]);
    assert_eq!(environment["OBSERVABILITY"], "cloudwatch");
    let (answer, stdout) = run_dispatcher(&bed, &records, &[("DD_DOGSTATSD_PORT", &port)]).await;
    assert_eq!(
        answer,
        Ok(Answer::Response(json!({"batchItemFailures": []})))
    );
    assert_eq!(received_lines(&listener), Vec::<String>::new());
    let emf: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line.get("_aws").is_some())
        .collect();
    let [line] = &emf[..] else {
        panic!("one EMF line: {stdout}");
    };
    assert_eq!(
        line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "PersonalizedOffers"
    );
    assert_eq!(line["FunctionName"], "offer-dispatcher");
    assert_eq!(
        (
            &line["Dispatched"],
            &line["Rejected"],
            &line["Ignored"],
            &line["Failed"]
        ),
        (&json!(1), &json!(1), &json!(1), &json!(0))
    );
    assert_eq!(line["DispatchLag"].as_array().map(Vec::len), Some(2));
    // Without DD_* variables the logs are as before.
    assert!(!stdout.contains("\"service\""), "{stdout}");
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

/// `event` with its body base64-encoded, as API Gateway sends a binary body.
fn base64_body(mut event: serde_json::Value) -> serde_json::Value {
    use base64::Engine;
    let body = event["body"].as_str().unwrap_or_default().to_owned();
    event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
    event["isBase64Encoded"] = json!(true);
    event
}

/// `event` with a body marked base64 that is not base64.
fn undecodable_body(mut event: serde_json::Value) -> serde_json::Value {
    event["body"] = json!("%%%not base64");
    event["isBase64Encoded"] = json!(true);
    event
}

/// Each API function's binary answers a body marked base64 that is not
/// base64 with a 400 in the error shape (lambda_http alone panics: an
/// invocation error), keeps running, and decodes a valid base64 body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_binary_answers_an_undecodable_base64_body_with_a_400() {
    let bed = TestBed::with_sample_catalog().await;
    // The sample offer the lookup and activity events name.
    let batch = read_json("events/dispatcher-mixed-batch.json");
    let records = batch["Records"].as_array().cloned().unwrap_or_default();
    assert!(invoke(&bed.dispatcher(&[]), &records).await.is_empty());
    let webhook_body = br#"{"assignments":[]}"#;
    // Each binary, its environment, a request it answers with that status.
    let functions: Vec<(&str, HashMap<String, String>, serde_json::Value, u64)> = vec![
        (
            "offer-lookup",
            bed.environment(LOOKUP, &[]),
            read_json("events/lookup-list.json"),
            200,
        ),
        (
            "offer-activity",
            bed.environment(ACTIVITY, &[]),
            read_json("events/activity-redeem.json"),
            201,
        ),
        (
            "support-assignment",
            bed.environment(SUPPORT, &[]),
            read_json("events/support-assign.json"),
            201,
        ),
        (
            "campaign-webhook",
            bed.webhook_environment(&[]).await,
            signed_webhook_event(webhook_body, "b64-delivery"),
            202,
        ),
    ];
    for (name, environment, valid, valid_status) in functions {
        let runtime = RuntimeApi::start().await.expect("runtime api");
        let mut function = spawn_function_with(
            &function_binary(name),
            &environment,
            &shared_dynamodb().endpoint(),
            &runtime,
            std::process::Stdio::piped(),
        );
        let timeout = Duration::from_secs(30);
        let refused = runtime
            .invoke(undecodable_body(valid.clone()), timeout)
            .await;
        let decoded = runtime.invoke(base64_body(valid), timeout).await;
        let _ = function.kill();
        let stdout = tokio::task::spawn_blocking(move || {
            let _ = function.wait();
            let mut text = String::new();
            if let Some(mut pipe) = function.stdout.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
            }
            text
        })
        .await
        .expect("stdout");
        // Both requests went through the metrics port (CloudWatch EMF, the
        // template's default): one line each, counted, timed, no server error.
        let emf: Vec<serde_json::Value> = stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|line| line.get("_aws").is_some())
            .collect();
        assert_eq!(emf.len(), 2, "{name}: {stdout}");
        for line in &emf {
            assert_eq!(line["FunctionName"], name, "{name}: {line}");
            assert_eq!(line["ApiRequests"], json!(1), "{name}: {line}");
            assert_eq!(line["ApiServerErrors"], json!(0), "{name}: {line}");
            assert_eq!(
                line["ApiLatency"].as_array().map(Vec::len),
                Some(1),
                "{name}: {line}"
            );
        }

        let (status, headers, body) = http_answer(refused);
        assert_eq!(status, 400, "{name}: {body}");
        assert_eq!(headers["content-type"], "application/json", "{name}");
        assert_eq!(body["error"]["code"], "invalid_body_encoding", "{name}");
        assert!(body["error"]["message"].is_string(), "{name}");
        // The same process answered the next request: it did not die.
        let (status, _, body) = http_answer(decoded);
        assert_eq!(status, valid_status, "{name}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_visits_binary_counts_visits_in_the_profile() {
    let bed = TestBed::new().await;
    let mut transactions = bed.transactions_stream().await;
    bed.put(
        TRANSACTIONS,
        transaction("bin-1", SEED_USER, 12.5, "2026-05-02T10:00:00Z"),
    )
    .await;
    let mut invalid = transaction("bin-bad", SEED_USER, 1.0, "2026-05-03T10:00:00Z");
    invalid["occurredAt"] = json!("not a date");
    bed.put(TRANSACTIONS, invalid).await;
    let records = transactions.read_new().await.expect("stream");

    let runtime = RuntimeApi::start().await.expect("runtime api");
    let mut function = spawn_function(
        &function_binary("user-visits"),
        &bed.environment(VISITS, &[]),
        &shared_dynamodb().endpoint(),
        &runtime,
    );
    // Twice: the second delivery counts nothing more.
    for _delivery in 0..2 {
        let answer = runtime
            .invoke(lambda_event(&records), Duration::from_secs(30))
            .await;
        assert_eq!(
            answer,
            Ok(Answer::Response(json!({"batchItemFailures": []})))
        );
    }
    let _ = function.kill();
    let _ = function.wait();
    let profile = bed
        .scan(PROFILES)
        .await
        .into_iter()
        .find(|item| item["userId"] == SEED_USER)
        .expect("the profile");
    assert_eq!(profile["visits"], 1);
    assert_eq!(profile["spendTotal"], 12.5);
    assert_eq!(profile["lastVisitAt"], "2026-05-02T10:00:00Z");
}
