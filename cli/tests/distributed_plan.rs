//! `offers campaign plan PLAN --audience s3://...` end to end on DynamoDB
//! Local and moto's S3: the state machine of template.yaml run by the local
//! Step Functions stand-in over the real plan-chunk binary (run as Lambda
//! runs it), compared with the CLI's in-process plan of the same audience.

mod support;

use offers_integration_tests::*;
use offers_shared::local_conventions::LOCAL_PLAN_BUCKET;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::{audience, campaign_plan, path_str, put_learning_counters, run, write_file};

fn plan_text(campaign_id: &str) -> String {
    campaign_plan(json!({"campaignId": campaign_id})).to_string()
}

/// What identifies a row's choice, by (userId, sortKey).
type Rows = BTreeMap<(String, String), (String, u64, String, bool)>;

fn choice(row: &Value) -> ((String, String), (String, u64, String, bool)) {
    let text = |name: &str| row[name].as_str().unwrap_or_default().to_owned();
    (
        (text("userId"), text("sortKey")),
        (
            text("assignmentId"),
            row["rank"]
                .as_u64()
                .or_else(|| row["rank"].as_f64().map(|r| r as u64))
                .unwrap_or(0),
            row["selection"]["policy"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            row["selection"]["holdout"].as_bool().unwrap_or_default(),
        ),
    )
}

/// The CLI's in-process plan of the same audience (`--out`, nothing stored).
fn in_process_rows(harness: &PlanStack, bed: &TestBed, plan: &Path, audience: &str) -> Rows {
    let local = write_file(&format!("{}-audience.jsonl", bed.table(PENDING)), audience);
    let out = write_file(&format!("{}-rows.jsonl", bed.table(PENDING)), "");
    let (code, _, stderr) = run(harness.offers(
        env!("CARGO_BIN_EXE_offers"),
        bed,
        &[
            "campaign",
            "plan",
            path_str(plan),
            "--audience",
            path_str(&local),
            "--out",
            path_str(&out),
        ],
    ));
    assert_eq!(code, 0, "{stderr}");
    std::fs::read_to_string(&out)
        .expect("rows")
        .lines()
        .map(|line| choice(&serde_json::from_str(line).expect("a JSON row")))
        .collect()
}

async fn pending_rows(bed: &TestBed) -> Rows {
    bed.scan(PENDING)
        .await
        .into_iter()
        .map(|row| choice(&Value::Object(row)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_audience_is_planned_chunk_by_chunk_into_the_cli_rows() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    put_learning_counters(&bed).await;
    let endpoint = shared_dynamodb().endpoint();
    let harness = PlanStack::start(
        &bed,
        &[("PlanChunkUsers", "7"), ("PlanMaxConcurrency", "3")],
        &endpoint,
        "8",
    )
    .await;
    let plan = write_file(
        &format!("{}-plan.json", bed.table(PENDING)),
        &plan_text("camp-dist"),
    );
    let users = audience(60);
    let expected = in_process_rows(&harness, &bed, &plan, &users);
    assert_eq!(expected.len(), 120);

    // A missing object: refused before anything is written.
    let missing = format!("s3://{LOCAL_PLAN_BUCKET}/audiences/missing.jsonl");
    let (code, _, stderr) = run(harness.offers(
        env!("CARGO_BIN_EXE_offers"),
        &bed,
        &["campaign", "plan", path_str(&plan), "--audience", &missing],
    ));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("does not exist") && stderr.contains("nothing written"),
        "{stderr}"
    );
    assert!(bed.scan(CAMPAIGNS).await.is_empty(), "no definition stored");
    assert!(bed.scan(PENDING).await.is_empty(), "no row written");

    let url = harness.put_audience("audiences/sixty.jsonl", &users).await;
    let (code, _, stderr) = run(harness.offers(
        env!("CARGO_BIN_EXE_offers"),
        &bed,
        &["campaign", "plan", path_str(&plan), "--audience", &url],
    ));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("60 users in 9 chunks, 120 rows written"),
        "{stderr}"
    );
    assert_eq!(
        pending_rows(&bed).await,
        expected,
        "the same rows as the CLI's own plan"
    );

    // The template's states, run with its batching: 7 users a chunk (the
    // last 4), each with the lines of its users and the snapshot read once,
    // at most 3 at once.
    let batches = harness.recording.batches.lock().expect("batches").clone();
    let mut lines: Vec<Vec<u64>> = batches.iter().map(|(lines, _)| lines.clone()).collect();
    lines.sort();
    let sizes: Vec<usize> = lines.iter().map(Vec::len).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 60);
    assert_eq!(
        sizes.iter().filter(|size| **size == 7).count(),
        8,
        "{sizes:?}"
    );
    assert!(sizes.contains(&4), "{sizes:?}");
    assert_eq!(
        lines.concat(),
        (1..=60).collect::<Vec<u64>>(),
        "every line once, in batches of consecutive lines"
    );
    let stored = bed.scan(CAMPAIGNS).await;
    let snapshot = stored[0]["snapshot"].clone();
    for (_, batch_input) in &batches {
        assert_eq!(
            batch_input["snapshot"], snapshot,
            "the stored snapshot, in every batch"
        );
        assert_eq!(batch_input["plan"]["campaignId"], "camp-dist");
    }
    let most = harness.recording.most_in_flight.load(Ordering::SeqCst);
    assert!(
        (1..=3).contains(&most),
        "MaxConcurrency 3: {most} chunks at once"
    );

    // Malformed lines: reported by number, the other users planned.
    let bad_plan = write_file(
        &format!("{}-bad-plan.json", bed.table(PENDING)),
        &plan_text("camp-dist-bad"),
    );
    let mut lines: Vec<String> = audience(10).lines().map(str::to_owned).collect();
    lines[1] = r#"{"tier":"gold"}"#.to_owned();
    lines[4] = r#"["user-4"]"#.to_owned();
    let url = harness
        .put_audience("audiences/bad.jsonl", &(lines.join("\n") + "\n"))
        .await;
    let (code, _, stderr) = run(harness.offers(
        env!("CARGO_BIN_EXE_offers"),
        &bed,
        &["campaign", "plan", path_str(&bad_plan), "--audience", &url],
    ));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("line 2: userId is required"), "{stderr}");
    assert!(stderr.contains("line 5: not a JSON object"), "{stderr}");
    assert!(stderr.contains("2 lines of the audience"), "{stderr}");
    let bad_rows = bed
        .scan(PENDING)
        .await
        .into_iter()
        .filter(|row| row["campaignId"] == "camp-dist-bad")
        .count();
    assert_eq!(bad_rows, 8 * 2, "every other user's rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_killed_midway_and_run_again_converges_on_the_same_rows() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    put_learning_counters(&bed).await;
    let endpoint = shared_dynamodb().endpoint();
    // The first run's function: its fourth BatchWriteItem call is held, one call at a time.
    let gate = OperationGate::start(&endpoint, "BatchWriteItem", 3).await;
    let parameters = [("PlanChunkUsers", "100"), ("PlanMaxConcurrency", "1")];
    let first = PlanStack::start(&bed, &parameters, &gate.endpoint(), "1").await;
    let plan = write_file(
        &format!("{}-plan.json", bed.table(PENDING)),
        &plan_text("camp-dist-kill"),
    );
    let users = audience(200);
    let expected = in_process_rows(&first, &bed, &plan, &users);
    let url = first
        .put_audience("audiences/two-hundred.jsonl", &users)
        .await;
    let mut running = first
        .offers(
            env!("CARGO_BIN_EXE_offers"),
            &bed,
            &["campaign", "plan", path_str(&plan), "--audience", &url],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("offers starts");
    while gate.held() == 0 {
        // A run that ended before its writes were held cannot be killed midway.
        if let Some(status) = running.try_wait().expect("offers") {
            panic!("the first run ended ({status}) before its fourth write");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Midway through the first chunk: 3 calls of 25 rows written, the 4th held.
    for pid in first.recording.function.pids() {
        // SAFETY: kill(2) of a plan-chunk process this test started.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    let _ = running.kill();
    let _ = running.wait();
    let written = pending_rows(&bed).await;
    assert_eq!(written.len(), 75, "the first chunk stopped midway");
    assert!(written
        .iter()
        .all(|(key, choice)| expected.get(key) == Some(choice)));

    // The same command again (a new execution, the stored snapshot): every row, once.
    let again = PlanStack::start(&bed, &parameters, &endpoint, "8").await;
    again
        .put_audience("audiences/two-hundred.jsonl", &users)
        .await;
    let (code, _, stderr) = run(again.offers(
        env!("CARGO_BIN_EXE_offers"),
        &bed,
        &["campaign", "plan", path_str(&plan), "--audience", &url],
    ));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("planned before"),
        "a rerun of the stored plan: {stderr}"
    );
    assert_eq!(pending_rows(&bed).await, expected);
}

/// An S3 endpoint that refuses every request as S3 does an identity
/// without permission (403 Forbidden): a fault moto does not make.
fn forbidding_s3() -> String {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("a port");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match std::io::Read::read(&mut stream, &mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            let _ = std::io::Write::write_all(
                &mut stream,
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audiences_and_plans_step_functions_cannot_take_are_refused_before_anything_is_written() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    let endpoint = shared_dynamodb().endpoint();
    let harness = PlanStack::start(&bed, &[("PlanChunkUsers", "10")], &endpoint, "8").await;
    let plan = write_file(
        &format!("{}-refused-plan.json", bed.table(PENDING)),
        &plan_text("camp-dist-refused"),
    );
    let nothing_written = |stderr: &str| {
        assert!(stderr.contains("nothing written"), "{stderr}");
    };
    let plan_from = |url: &str| {
        harness.offers(
            env!("CARGO_BIN_EXE_offers"),
            &bed,
            &[
                "campaign",
                "plan",
                path_str(&plan),
                "--audience",
                url,
                "--allow-cold",
            ],
        )
    };

    // An identity that may not read the audience.
    let url = harness
        .put_audience("audiences/ten.jsonl", &audience(10))
        .await;
    let mut forbidden = plan_from(&url);
    forbidden.env("AWS_ENDPOINT_URL_S3", forbidding_s3());
    let (code, _, stderr) = run(forbidden);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("403 Forbidden"), "{stderr}");
    nothing_written(&stderr);

    // An empty object (what `curl --data-binary` without a Content-Type leaves in moto).
    let empty = harness.put_audience("audiences/empty.jsonl", "").await;
    let (code, _, stderr) = run(plan_from(&empty));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is empty (0 bytes)"), "{stderr}");
    nothing_written(&stderr);

    // Statistics within the snapshot's own bound (192 KiB) but more than a
    // chunk's input can carry besides its users: 680 values of an attribute.
    for n in 0..680 {
        let value = format!("{n:0>250}");
        bed.put(
            STATS,
            json!({"pk": "offer#co-coffee", "sk": format!("attr#note#{value}"), "offerId": "co-coffee",
            "attribute": "note", "value": value, "assigned": 10, "clicked": 0, "redeemed": 1}),
        )
        .await;
    }
    let (code, _, stderr) = run(plan_from(&url));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("Step Functions carries at most 256 KiB a chunk"),
        "{stderr}"
    );
    nothing_written(&stderr);

    assert!(bed.scan(CAMPAIGNS).await.is_empty(), "no definition stored");
    assert!(bed.scan(PENDING).await.is_empty(), "no row written");
    assert!(
        harness
            .recording
            .batches
            .lock()
            .expect("batches")
            .is_empty(),
        "no chunk ran"
    );
}
