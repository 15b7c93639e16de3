//! The campaign webhook end to end on DynamoDB Local and moto's Secrets
//! Manager: the function wired as its main.rs wires it (the signing secret
//! read with GetSecretValue), signed deliveries become pending rows, the
//! pending table's real stream goes to the dispatcher, offers come out.

use offers_integration_tests::*;
use serde_json::{json, Map, Value};

fn body(assignments: &[Value]) -> Vec<u8> {
    json!({ "assignments": assignments })
        .to_string()
        .into_bytes()
}

fn offers_of(offers: &[Map<String, Value>], sort_key: &str) -> usize {
    offers
        .iter()
        .filter(|offer| offer["sortKey"] == sort_key)
        .count()
}

/// The INSERT records of a stream read (the dispatcher's own deletes are REMOVEs).
fn insert_count(records: &[Value]) -> usize {
    records
        .iter()
        .filter(|record| record["eventName"] == "INSERT")
        .count()
}

/// The delivery records of the deliveries table (not the used signatures).
async fn delivery_records(bed: &TestBed) -> Vec<Map<String, Value>> {
    bed.scan(DELIVERIES)
        .await
        .into_iter()
        .filter(|item| item.contains_key("state"))
        .collect()
}

/// The used signatures of the deliveries table: MAC hex to delivery id.
async fn used_signatures(bed: &TestBed) -> Vec<(String, String)> {
    bed.scan(DELIVERIES)
        .await
        .into_iter()
        .filter_map(|item| {
            let key = item["deliveryId"].as_str()?.strip_prefix("signature ")?;
            Some((key.to_owned(), item["signatureOf"].as_str()?.to_owned()))
        })
        .collect()
}

/// Hands what the stream shows to the dispatcher; asserts nothing failed;
/// returns how many INSERTs it saw.
async fn dispatch(bed: &TestBed, stream: &mut offers_local::StreamReader) -> usize {
    let records = stream.read_new().await.expect("stream");
    let dispatcher = bed.dispatcher(&[]);
    deliver_until_none_fail(&records, |batch| invoke(&dispatcher, batch)).await;
    insert_count(&records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_delivery_becomes_offers_and_invalid_assignments_are_reported_by_code() {
    let bed = TestBed::with_sample_catalog().await;
    let webhook = bed.webhook(&[]).await;
    let mut stream = bed.stream().await;
    let mut unknown = fries_row("wh-user", "camp-1+co-nope");
    unknown["offerId"] = json!("co-nope");
    let mut backwards = fries_row("wh-user", "camp-1+backwards");
    backwards["expiryDate"] = json!("2023-01-01T00:00:00Z");
    let mut wrong_rule = fries_row("wh-user", "camp-1+wrong-rule");
    wrong_rule["rules"] = json!({"minimumSpend": "a lot"});
    let assignments = vec![
        fries_row("wh-user", "camp-1+co-fries"),
        unknown,
        seed_challenge_row(&future_date(30)),
        backwards,
        json!(["not", "a", "row"]),
        wrong_rule,
        fries_row("wh-user", "camp-1+co-fries"),
    ];
    let answer = call_webhook(
        &webhook,
        &signed_webhook_event(&body(&assignments), "dlv-1"),
    )
    .await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    assert_eq!(answer.body["accepted"], 2);
    let rejected: Vec<(u64, &str)> = answer.body["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap_or(99),
                r["code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        vec![
            (1, "unknown_offer"),
            (3, "invalid_dates"),
            (4, "invalid_row"),
            (5, "invalid_rule_value"),
            (6, "invalid_row"),
        ]
    );
    let pending = bed.scan(PENDING).await;
    assert_eq!(pending.len(), 2, "the valid rows only");
    assert!(pending.iter().all(|row| row["sortKey"] != "camp-1+co-nope"));

    assert_eq!(dispatch(&bed, &mut stream).await, 2);
    let offers = bed.scan(OFFERS).await;
    assert_eq!(offers.len(), 2);
    assert_eq!(offers_of(&offers, "camp-1+co-fries"), 1);
    let fries = offers
        .iter()
        .find(|o| o["sortKey"] == "camp-1+co-fries")
        .expect("offer");
    assert_eq!(fries["rules"]["minimumSpend"], 7.5);
    assert_eq!(fries["campaignId"], "camp-1");
    assert!(
        bed.scan(REJECTED).await.is_empty(),
        "nothing for the dispatcher to reject"
    );
    let deliveries = delivery_records(&bed).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0]["state"], "done");
    assert_eq!(used_signatures(&bed).await.len(), 1);
    assert!(deliveries[0]["ttl"].as_i64().unwrap_or_default() > future_epoch(6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_status_and_code_and_writes_nothing() {
    let bed = TestBed::with_sample_catalog().await;
    let webhook = bed.webhook(&[]).await;
    let now = chrono::Utc::now().timestamp();
    let good = body(&[fries_row("wh-refused", "camp-1+co-fries")]);
    let too_big = {
        let mut row = fries_row("wh-refused", "big");
        row["padding"] = json!("x".repeat(1024 * 1024));
        body(&[row])
    };
    let too_many = body(
        &(0..501)
            .map(|i| fries_row("wh-refused", &format!("many-{i}")))
            .collect::<Vec<_>>(),
    );
    let wrong_secret =
        offers_shared::domain::webhook::signature_header(b"not the secret", now, &good);
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "size",
            signed_webhook_event(&too_big, "r-1"),
            413,
            "body_too_large",
        ),
        (
            "missing",
            webhook_event(&good, None, Some("r-2")),
            401,
            "missing_signature",
        ),
        (
            "wrong",
            webhook_event(&good, Some(wrong_secret), Some("r-3")),
            401,
            "invalid_signature",
        ),
        (
            "tampered",
            webhook_event(
                &body(&[fries_row("someone-else", "x")]),
                Some(sign_now(&good, now)),
                Some("r-4"),
            ),
            401,
            "invalid_signature",
        ),
        (
            "stale",
            webhook_event(&good, Some(sign_now(&good, now - 301)), Some("r-5")),
            401,
            "stale_signature",
        ),
        (
            "future",
            // 301 s and the time this test takes: still over 300 s when checked.
            webhook_event(&good, Some(sign_now(&good, now + 330)), Some("r-6")),
            401,
            "stale_signature",
        ),
        (
            "malformed",
            webhook_event(&good, Some("t=now".into()), Some("r-7")),
            401,
            "malformed_signature",
        ),
        (
            "json",
            signed_webhook_event(b"{\"assignments\": [", "r-8"),
            400,
            "malformed_json",
        ),
        (
            "shape",
            signed_webhook_event(b"[]", "r-9"),
            400,
            "invalid_body",
        ),
        (
            "delivery",
            webhook_event(&good, Some(sign_now(&good, now)), None),
            400,
            "missing_delivery_id",
        ),
        (
            "501",
            signed_webhook_event(&too_many, "r-10"),
            413,
            "too_many_assignments",
        ),
    ];
    for (name, event, status, code) in cases {
        let answer = call_webhook(&webhook, &event).await;
        assert_eq!(
            (answer.status, answer.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{name}: {:?}",
            answer.body
        );
    }
    assert!(bed.scan(PENDING).await.is_empty(), "no row written");
    assert!(bed.scan(DELIVERIES).await.is_empty(), "no delivery claimed");

    // 409: the delivery id of an accepted delivery with another body.
    assert_eq!(
        call_webhook(&webhook, &signed_webhook_event(&good, "r-11"))
            .await
            .status,
        202
    );
    let other = body(&[fries_row("wh-refused", "camp-2+co-fries")]);
    let conflict = call_webhook(&webhook, &signed_webhook_event(&other, "r-11")).await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.body["error"]["code"], "delivery_conflict");
    let pending = bed.scan(PENDING).await;
    assert_eq!(pending.len(), 1, "only the first body's row");
    assert_eq!(pending[0]["sortKey"], "camp-1+co-fries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_delivery_twice_at_once_and_after_dispatch_makes_one_offer_per_row() {
    let bed = TestBed::with_sample_catalog().await;
    let webhook = bed.webhook(&[]).await;
    let mut stream = bed.stream().await;
    let assignments: Vec<Value> = (0..60)
        .map(|i| {
            fries_row(
                &format!("wh-once-{}", i % 7),
                &format!("camp-1+co-fries-{i}"),
            )
        })
        .chain([json!({"userId": "x"})])
        .collect();
    let delivery = body(&assignments);

    // Twice in sequence: the same answer, the second replayed.
    let first = call_webhook(&webhook, &signed_webhook_event(&delivery, "dlv-once")).await;
    assert_eq!(first.status, 202);
    assert_eq!(first.body["accepted"], 60);
    let second = call_webhook(&webhook, &signed_webhook_event(&delivery, "dlv-once")).await;
    assert_eq!((second.status, &second.body), (202, &first.body));
    assert_eq!(second.idempotent_replayed.as_deref(), Some("true"));
    assert_eq!(
        dispatch(&bed, &mut stream).await,
        60,
        "one INSERT per row, none twice"
    );
    assert_eq!(bed.scan(OFFERS).await.len(), 60);
    assert!(bed.scan(PENDING).await.is_empty(), "all dispatched");

    // Again after dispatch, re-signed later (a sender's retry): no row, no offer.
    let late = call_webhook(&webhook, &signed_webhook_event(&delivery, "dlv-once")).await;
    assert_eq!((late.status, &late.body), (202, &first.body));
    assert!(bed.scan(PENDING).await.is_empty(), "nothing put back");
    let after = stream.read_new().await.expect("stream");
    assert_eq!(insert_count(&after), 0, "no new INSERT");

    // Five at once, by five processes' worth of handlers: one writes.
    let concurrent: Vec<Value> = (0..40)
        .map(|i| fries_row("wh-race", &format!("camp-2+co-fries-{i}")))
        .collect();
    let concurrent_body = body(&concurrent);
    let handlers = futures::future::join_all((0..5).map(|_| bed.webhook(&[]))).await;
    let answers = futures::future::join_all(handlers.iter().map(|webhook| {
        let event = signed_webhook_event(&concurrent_body, "dlv-race");
        async move { call_webhook(webhook, &event).await }
    }))
    .await;
    for answer in &answers {
        assert_eq!(answer.status, 202, "{:?}", answer.body);
        assert_eq!(answer.body["accepted"], 40);
    }
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.idempotent_replayed.is_none())
            .count(),
        1,
        "one request wrote, four were answered with its answer"
    );
    assert_eq!(dispatch(&bed, &mut stream).await, 40);
    let offers = bed.scan(OFFERS).await;
    assert_eq!(offers.len(), 100);
    for i in 0..40 {
        assert_eq!(offers_of(&offers, &format!("camp-2+co-fries-{i}")), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_delivery_is_finished_by_the_retry_without_a_second_offer() {
    let bed = TestBed::with_sample_catalog().await;
    // A lease that passes at once stands for a request that crashed.
    let webhook = bed.webhook(&[("WEBHOOK_LEASE_SECONDS", "10")]).await;
    let mut stream = bed.stream().await;
    let assignments: Vec<Value> = (0..3)
        .map(|i| fries_row("wh-crash", &format!("camp-1+co-fries-{i}")))
        .collect();
    let delivery = body(&assignments);
    // What a request that died after writing row 0 left: its claim, released
    // with row 0 recorded (as the service records a failed write).
    bed.put(
        DELIVERIES,
        json!({
            "deliveryId": "dlv-crash",
            "fingerprint": offers_shared::domain::webhook::body_fingerprint(&delivery),
            "state": "inProgress",
            "claimToken": uuid::Uuid::new_v4().to_string(),
            "leaseUntil": 0,
            "claimedAt": "2026-01-01T00:00:00Z",
            "receipt": json!({"accepted": 3, "rejected": []}).to_string(),
            "writtenRows": [0],
            "ttl": future_epoch(7)
        }),
    )
    .await;
    // Numbers in a JSON list are a list (L), not a number set: make it one.
    bed.client
        .update_item()
        .table_name(bed.table(DELIVERIES))
        .key(
            "deliveryId",
            aws_sdk_dynamodb::types::AttributeValue::S("dlv-crash".into()),
        )
        .update_expression("SET writtenRows = :rows")
        .expression_attribute_values(
            ":rows",
            aws_sdk_dynamodb::types::AttributeValue::Ns(vec!["0".into()]),
        )
        .send()
        .await
        .expect("number set");
    bed.put(PENDING, assignments[0].clone()).await;
    assert_eq!(
        dispatch(&bed, &mut stream).await,
        1,
        "row 0 was dispatched before the retry"
    );

    let retry = call_webhook(&webhook, &signed_webhook_event(&delivery, "dlv-crash")).await;
    assert_eq!(retry.status, 202, "{:?}", retry.body);
    assert_eq!(retry.body["accepted"], 3);
    assert_eq!(dispatch(&bed, &mut stream).await, 2, "rows 1 and 2 only");
    let offers = bed.scan(OFFERS).await;
    assert_eq!(offers.len(), 3);
    for i in 0..3 {
        assert_eq!(offers_of(&offers, &format!("camp-1+co-fries-{i}")), 1);
    }
    assert_eq!(delivery_records(&bed).await[0]["state"], "done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_request_is_signed_with_the_local_secret_and_works_when_signed_now() {
    let bed = TestBed::with_sample_catalog().await;
    let webhook = bed.webhook(&[]).await;
    let mut event = read_json("events/webhook-assign.json");
    let body = event["body"].as_str().expect("body").to_owned();
    let file =
        std::fs::read_to_string(offers_local::workspace_root().join("events/webhook-body.json"))
            .expect("body file");
    assert_eq!(
        body, file,
        "the event carries events/webhook-body.json exactly"
    );
    let signature = event["headers"]["x-offers-signature"]
        .as_str()
        .expect("signature")
        .to_owned();
    let t: i64 = signature
        .trim_start_matches("t=")
        .split(',')
        .next()
        .and_then(|t| t.parse().ok())
        .expect("t");
    assert_eq!(
        offers_shared::domain::webhook::verify_signature(
            Some(&signature),
            offers_local::moto::LOCAL_SIGNING_SECRET.as_bytes(),
            body.as_bytes(),
            t,
        )
        .map(|_| ()),
        Ok(()),
        "signed with the local secret"
    );
    // As it stands, its signature is old.
    let stale = call_webhook(&webhook, &event).await;
    assert_eq!(
        (stale.status, stale.body["error"]["code"].as_str()),
        (401, Some("stale_signature"))
    );
    // Signed now, as `offers webhook sign` does.
    event["headers"]["x-offers-signature"] =
        json!(sign_now(body.as_bytes(), chrono::Utc::now().timestamp()));
    let answer = call_webhook(&webhook, &event).await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    assert_eq!(answer.body["accepted"], 2);
    assert_eq!(answer.body["rejected"][0]["index"], 2);
    assert_eq!(answer.body["rejected"][0]["code"], "unknown_offer");
}

/// `body` under `delivery` with the given `X-Offers-Signature`.
fn event_signed_with(body: &[u8], signature: &str, delivery: &str) -> Value {
    webhook_event(body, Some(signature.to_owned()), Some(delivery))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_is_good_for_one_delivery_and_a_replay_under_another_id_is_409() {
    let bed = TestBed::with_sample_catalog().await;
    let webhook = bed.webhook(&[]).await;
    let mut stream = bed.stream().await;
    let now = chrono::Utc::now().timestamp();
    let assignments: Vec<Value> = (0..3)
        .map(|i| fries_row("wh-sig", &format!("camp-1+co-fries-{i}")))
        .collect();
    let delivery = body(&assignments);
    let first_signature = sign_now(&delivery, now - 5);
    let first = call_webhook(
        &webhook,
        &event_signed_with(&delivery, &first_signature, "sig-1"),
    )
    .await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    assert_eq!(first.body["accepted"], 3);
    // Each row names its assignment: the delivery id and its index.
    let pending = bed.scan(PENDING).await;
    for i in 0..3 {
        let row = pending
            .iter()
            .find(|row| row["sortKey"] == format!("camp-1+co-fries-{i}").as_str())
            .expect("row");
        assert_eq!(
            row["assignmentId"],
            offers_shared::domain::webhook::webhook_assignment_id("sig-1", i)
        );
    }

    // A captured request replayed as a new delivery: 409, nothing written.
    let replayed = call_webhook(
        &webhook,
        &event_signed_with(&delivery, &first_signature, "sig-2"),
    )
    .await;
    assert_eq!(
        (replayed.status, replayed.body["error"]["code"].as_str()),
        (409, Some("signature_reused")),
        "{:?}",
        replayed.body
    );
    // The same delivery again, with its first signature or a new one: its answer.
    let new_signature = sign_now(&delivery, now);
    for signature in [&first_signature, &new_signature] {
        let again = call_webhook(&webhook, &event_signed_with(&delivery, signature, "sig-1")).await;
        assert_eq!((again.status, &again.body), (202, &first.body));
        assert_eq!(again.idempotent_replayed.as_deref(), Some("true"));
    }
    // The new signature got a 202: it is used up too.
    let reused = call_webhook(
        &webhook,
        &event_signed_with(&delivery, &new_signature, "sig-3"),
    )
    .await;
    assert_eq!(reused.body["error"]["code"], "signature_reused");
    assert_eq!(dispatch(&bed, &mut stream).await, 3, "written once");
    assert_eq!(bed.scan(OFFERS).await.len(), 3);
    let records = delivery_records(&bed).await;
    assert_eq!(records.len(), 1, "no record of sig-2 or sig-3");
    let signatures = used_signatures(&bed).await;
    assert_eq!(signatures.len(), 2);
    assert!(signatures.iter().all(|(_, owner)| owner == "sig-1"));
    // Kept a little over the 300 s window, not for the delivery's 7 days.
    for item in bed.scan(DELIVERIES).await {
        if item.contains_key("signatureOf") {
            let ttl = item["ttl"].as_i64().unwrap_or_default();
            assert!(ttl > now + 300 && ttl < now + 900, "{ttl}");
        }
    }

    // A request refused by the earlier checks uses nothing.
    let other = body(&[fries_row("wh-sig-2", "camp-1+co-fries")]);
    let other_signature = sign_now(&other, now);
    let no_id = call_webhook(
        &webhook,
        &webhook_event(&other, Some(other_signature.clone()), None),
    )
    .await;
    assert_eq!(no_id.status, 400);
    let accepted = call_webhook(
        &webhook,
        &event_signed_with(&other, &other_signature, "sig-4"),
    )
    .await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_signature_under_five_delivery_ids_at_once_is_accepted_once() {
    let bed = TestBed::with_sample_catalog().await;
    let mut stream = bed.stream().await;
    let assignments: Vec<Value> = (0..40)
        .map(|i| fries_row("wh-sig-race", &format!("camp-1+co-fries-{i}")))
        .collect();
    let delivery = body(&assignments);
    let signature = sign_now(&delivery, chrono::Utc::now().timestamp());
    let handlers = futures::future::join_all((0..5).map(|_| bed.webhook(&[]))).await;
    let answers = futures::future::join_all(handlers.iter().enumerate().map(|(i, webhook)| {
        let event = event_signed_with(&delivery, &signature, &format!("race-{i}"));
        async move { call_webhook(webhook, &event).await }
    }))
    .await;
    let statuses: Vec<(u16, Option<&str>)> = answers
        .iter()
        .map(|a| (a.status, a.body["error"]["code"].as_str()))
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| s.0 == 202).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == (409, Some("signature_reused")))
            .count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(delivery_records(&bed).await.len(), 1);
    assert_eq!(
        dispatch(&bed, &mut stream).await,
        40,
        "each row written once"
    );
    assert_eq!(bed.scan(OFFERS).await.len(), 40);
}

/// Contract section 11, last bullet: the function's process is SIGKILLed
/// midway through a 500-row delivery's writes (no error seen, no release),
/// what it wrote is dispatched, and the platform sends the delivery again to
/// a new process: the first signature while its holder's lease runs (503,
/// retry later), a new one after. The delivery then yields exactly its 500
/// offers: rows rewritten after their dispatch carry the same assignmentId
/// and make no second offer; the rows never written are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_killed_midway_and_sent_again_yields_each_offer_exactly_once() {
    use offers_local::RuntimeApi;
    use std::time::Duration;
    let bed = TestBed::with_sample_catalog().await;
    let mut stream = bed.stream().await;
    let assignments: Vec<Value> = (0..500)
        .map(|i| {
            fries_row(
                &format!("wh-kill-{}", i % 50),
                &format!("camp-1+co-fries-{i}"),
            )
        })
        .collect();
    let delivery = body(&assignments);
    let first_signature = sign_now(&delivery, chrono::Utc::now().timestamp());
    let settings = [
        ("WEBHOOK_LEASE_SECONDS", "10"),
        ("WEBHOOK_WAIT_FOR_HOLDER_MS", "0"),
    ];
    let webhook = function_binary("campaign-webhook");

    // The first process: its first 4 BatchWriteItem calls (at most 100 rows)
    // reach DynamoDB, the later ones are held, waiting (no timeout, so no
    // failure it could see and record) until it is killed.
    let gate = OperationGate::start(&shared_dynamodb().endpoint(), "BatchWriteItem", 4).await;
    let mut environment = bed.webhook_environment(&settings).await;
    environment.insert("DYNAMODB_OPERATION_TIMEOUT_MS".into(), "60000".into());
    environment.insert("DYNAMODB_ATTEMPT_TIMEOUT_MS".into(), "60000".into());
    let runtime = RuntimeApi::start().await.expect("runtime api");
    let mut first = spawn_function(&webhook, &environment, &gate.endpoint(), &runtime);
    let midway = async {
        while gate.held() == 0 || bed.scan(PENDING).await.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        answer = runtime.invoke(
            event_signed_with(&delivery, &first_signature, "dlv-killed"),
            Duration::from_secs(120),
        ) => panic!("the first process answered instead of being stopped midway: {answer:?}"),
        () = midway => {}
    }
    // Child::kill is SIGKILL: the process ends where it is.
    first.kill().expect("SIGKILL");
    let _ = first.wait();
    drop(runtime);
    drop(gate);

    let written = bed.scan(PENDING).await.len();
    assert!(
        (1..=100).contains(&written),
        "killed midway: {written} of 500 rows written"
    );
    let records = delivery_records(&bed).await;
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0]["state"], "inProgress",
        "left as the process died"
    );
    assert!(
        records[0].get("writtenRows").is_none(),
        "it recorded nothing"
    );
    // The dispatcher makes offers of what was written meanwhile.
    let dispatched_before = dispatch(&bed, &mut stream).await;
    assert!(dispatched_before >= 1);

    // The platform sends the delivery again; a new process answers.
    let runtime = RuntimeApi::start().await.expect("runtime api");
    let environment = bed.webhook_environment(&settings).await;
    let mut second = spawn_function(
        &webhook,
        &environment,
        &shared_dynamodb().endpoint(),
        &runtime,
    );
    let mut signature = first_signature.clone();
    let mut refusals = Vec::new();
    let accepted = loop {
        let event = event_signed_with(&delivery, &signature, "dlv-killed");
        let (status, headers, answer) =
            http_answer(runtime.invoke(event, Duration::from_secs(60)).await);
        if status == 202 {
            break answer;
        }
        // Within the dead holder's lease: in progress, retry later.
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (503, Some("delivery_in_progress")),
            "{answer}"
        );
        assert!(headers["retry-after"].is_string(), "{headers}");
        refusals.push(status);
        assert!(refusals.len() < 5, "still in progress after its lease");
        let lease_until = delivery_records(&bed).await[0]["leaseUntil"]
            .as_i64()
            .unwrap_or_default();
        let wait = lease_until - chrono::Utc::now().timestamp_millis() + 200;
        tokio::time::sleep(Duration::from_millis(wait.max(0).unsigned_abs())).await;
        // The platform's retry, signed anew.
        signature = sign_now(&delivery, chrono::Utc::now().timestamp());
    };
    assert_eq!(accepted, json!({"accepted": 500, "rejected": []}));
    // Sent once more, signed anew: the same delivery, its answer, nothing written.
    let again = runtime
        .invoke(
            signed_webhook_event(&delivery, "dlv-killed"),
            Duration::from_secs(60),
        )
        .await;
    let _ = second.kill();
    let _ = second.wait();
    let (status, headers, answer) = http_answer(again);
    assert_eq!((status, &answer), (202, &accepted));
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(delivery_records(&bed).await[0]["state"], "done");

    // The rest is dispatched: one offer per assignment, none missing.
    dispatch(&bed, &mut stream).await;
    assert!(bed.scan(PENDING).await.is_empty(), "every row consumed");
    let offers = bed.scan(OFFERS).await;
    let missing_or_doubled: Vec<(usize, usize)> = (0..500)
        .map(|i| (i, offers_of(&offers, &format!("camp-1+co-fries-{i}"))))
        .filter(|(_, count)| *count != 1)
        .collect();
    assert_eq!(
        missing_or_doubled,
        vec![],
        "(assignment, offers) not exactly one"
    );
    assert_eq!(offers.len(), 500);
}
