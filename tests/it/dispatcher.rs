//! offerDispatcher end to end on DynamoDB Local: rows put with the SDK as a
//! campaign tool would, the pending table's real stream handed to the handler.

use offers_integration_tests::*;
use serde_json::{json, Map, Value};
use std::collections::HashSet;

fn by_sort_key<'a>(items: &'a [Map<String, Value>], sort_key: &str) -> Vec<&'a Map<String, Value>> {
    items
        .iter()
        .filter(|item| item["sortKey"] == sort_key)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_rows_become_offers_or_rejections_and_leave_the_pending_table() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    let expiry = future_date(60);
    let challenge_row = seed_challenge_row(&expiry);
    let mut plain_row = fries_row("user-a", "camp-1+co-fries");
    plain_row["startDate"] = json!("2024-01-01T00:00:00Z");
    let mut expired_row = seed_challenge_row("2025-09-20T17:37:37+0000");
    expired_row["sortKey"] = json!("expired-seed");
    for row in [&challenge_row, &plain_row, &expired_row] {
        bed.put(PENDING, row.clone()).await;
    }

    let dispatcher = bed.dispatcher(&[]);
    let records = bed.stream().await.read_new().await.expect("stream");
    assert_eq!(inserts(&records).len(), 3);
    deliver(&dispatcher, &records).await;

    assert!(
        bed.scan(PENDING).await.is_empty(),
        "every pending row deleted"
    );
    let offers = bed.scan(OFFERS).await;
    assert_eq!(offers.len(), 2);

    let challenge_offer = by_sort_key(
        &offers,
        challenge_row["sortKey"].as_str().unwrap_or_default(),
    )[0];
    uuid::Uuid::parse_str(
        challenge_offer["personalizedOfferId"]
            .as_str()
            .unwrap_or_default(),
    )
    .expect("UUID id");
    assert_eq!(challenge_offer["userId"], SEED_USER);
    assert_eq!(challenge_offer["offerId"], SEED_OFFER);
    assert_eq!(challenge_offer["templateId"], "tpl-visits");
    assert_eq!(
        challenge_offer["startDate"], "2023-10-20T17:37:37Z",
        "RFC 3339 UTC"
    );
    assert_eq!(challenge_offer["rank"], 12);
    let challenge = &challenge_offer["challenge"];
    assert_eq!(challenge["type"], "frequency");
    assert_eq!(challenge["reward"]["value"], "100");
    assert_eq!(challenge["goals"]["visit2"]["condition"]["total_cost"], "1");
    assert_eq!(challenge["taskId"], "e2dd4cb3-9b0f-479c-8e1b-e42234f27314");
    assert!(
        challenge_offer["ttl"].as_i64().unwrap_or_default() > future_epoch(60),
        "ttl after expiry"
    );
    assert!(challenge_offer.contains_key("createdAt"));

    let plain_offer = by_sort_key(&offers, "camp-1+co-fries")[0];
    assert_eq!(plain_offer["campaignId"], "camp-1");
    assert_eq!(plain_offer["templateId"], "tpl-fries");
    assert_eq!(
        plain_offer["rules"]["minimumSpend"], 7.5,
        "template rule overrides config"
    );
    assert_eq!(
        plain_offer["rules"]["redemptionLimit"], 1,
        "config rule kept"
    );
    assert!(plain_offer.get("challenge").is_none());

    let rejected = bed.scan(REJECTED).await;
    assert_eq!(rejected.len(), 1);
    let rejection = &rejected[0];
    assert_eq!(rejection["reasonCode"], "expired");
    assert!(rejection["reasonMessage"]
        .as_str()
        .unwrap_or_default()
        .contains("2025-09-20"));
    for (name, value) in expired_row.as_object().expect("row") {
        assert_eq!(
            &rejection[name], value,
            "rejected row keeps {name} as it was"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reason_code_is_stored_with_its_row() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    bed.put(CATALOG, json!({"id": "co-strict", "kind": "configOffer", "name": "Strict", "templateId": "tpl-strict", "rules": {}}))
        .await;
    bed.put(
        CATALOG,
        json!({"id": "tpl-strict", "kind": "offerTemplate", "configOfferId": "co-strict",
               "rules": [{"name": "limit", "type": "integer"}]}),
    )
    .await;

    let base = |sort_key: &str| fries_row("user-codes", sort_key);
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut row = base("invalid_row");
    row.as_object_mut().map(|r| r.remove("offerId"));
    cases.push(("invalid_row", row));
    let mut row = base("invalid_dates");
    row["expiryDate"] = json!("2023-12-31T00:00:00+00:00");
    cases.push(("invalid_dates", row));
    let mut row = base("expired");
    row["expiryDate"] = json!("2025-01-01T00:00:00Z");
    cases.push(("expired", row));
    let mut row = base("unknown_offer");
    row["offerId"] = json!("co-nope");
    cases.push(("unknown_offer", row));
    let mut row = base("missing_template");
    row["offerId"] = json!("co-untemplated");
    row.as_object_mut().map(|r| r.remove("rules"));
    cases.push(("missing_template", row));
    let mut row = base("unknown_template");
    row["templateId"] = json!("tpl-nope");
    cases.push(("unknown_template", row));
    let mut row = base("template_mismatch");
    row["templateId"] = json!("tpl-coffee");
    cases.push(("template_mismatch", row));
    let mut row = base("missing_rule");
    row.as_object_mut().map(|r| r.remove("rules"));
    cases.push(("missing_rule", row));
    let mut row = base("unknown_rule");
    row["rules"] = json!({"minimumSpend": 3, "colour": "red"});
    cases.push(("unknown_rule", row));
    let mut row = base("invalid_rule_value");
    row["offerId"] = json!("co-strict");
    row["rules"] = json!({"limit": 2.5});
    cases.push(("invalid_rule_value", row));
    let mut row = seed_challenge_row(&future_date(10));
    row["userId"] = json!("user-codes");
    row["sortKey"] = json!("invalid_challenge");
    row["challengeStatus"] = json!("{\"goals\": {}}");
    cases.push(("invalid_challenge", row));
    let mut row = seed_challenge_row(&future_date(10));
    row["userId"] = json!("user-codes");
    row["sortKey"] = json!("frequency_mismatch");
    row["frequency"] = json!("something-else");
    cases.push(("frequency_mismatch", row));

    for (_, row) in &cases {
        bed.put(PENDING, row.clone()).await;
    }
    let records = bed.stream().await.read_new().await.expect("stream");
    deliver(&bed.dispatcher(&[]), &records).await;

    assert!(bed.scan(OFFERS).await.is_empty());
    assert!(bed.scan(PENDING).await.is_empty());
    let rejected = bed.scan(REJECTED).await;
    assert_eq!(rejected.len(), cases.len());
    for (code, row) in &cases {
        let stored = by_sort_key(&rejected, code);
        assert_eq!(stored.len(), 1, "{code}");
        assert_eq!(
            stored[0]["reasonCode"], *code,
            "{}",
            stored[0]["reasonMessage"]
        );
        for (name, value) in row.as_object().expect("row") {
            assert_eq!(&stored[0][name], value, "{code}: {name} kept as it was");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_batch_yields_no_second_offer_and_reads_the_catalog_once() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    for index in 0..40 {
        let mut row = fries_row(&format!("user-{}", index % 7), &format!("camp-1+{index}"));
        if index % 2 == 0 {
            row["offerId"] = json!("co-coffee");
            row.as_object_mut().map(|r| r.remove("rules"));
        }
        bed.put(PENDING, row).await;
    }
    let records = bed.stream().await.read_new().await.expect("stream");
    let dispatcher = bed.dispatcher(&[]);
    deliver(&dispatcher, &records).await;
    let first: HashSet<Value> = bed
        .scan(OFFERS)
        .await
        .into_iter()
        .map(|o| o["personalizedOfferId"].clone())
        .collect();
    assert_eq!(first.len(), 40);
    // co-fries, tpl-fries, co-coffee, tpl-coffee: each read once.
    assert_eq!(dispatcher.store().catalog_items_read(), 4);

    // The replay, delivered until none fails.
    deliver(&dispatcher, &records).await;
    let second: HashSet<Value> = bed
        .scan(OFFERS)
        .await
        .into_iter()
        .map(|o| o["personalizedOfferId"].clone())
        .collect();
    assert_eq!(first, second, "same offers, none added");
    assert_eq!(
        dispatcher.store().catalog_items_read(),
        4,
        "catalog served from the warm cache"
    );

    // A fresh process (cold cache) replaying the batch adds nothing either.
    deliver(&bed.dispatcher(&[]), &records).await;
    assert_eq!(bed.scan(OFFERS).await.len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_invocations_of_one_batch_yield_one_offer_per_row() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    for index in 0..30 {
        bed.put(
            PENDING,
            fries_row(&format!("user-{}", index % 5), &format!("c+{index}")),
        )
        .await;
    }
    let mut bad = fries_row("user-bad", "bad");
    bad["offerId"] = json!("co-nope");
    bed.put(PENDING, bad).await;
    let records = bed.stream().await.read_new().await.expect("stream");
    let dispatchers: Vec<_> = (0..10).map(|_| bed.dispatcher(&[])).collect();
    // Each invocation's failed records delivered again, as Lambda does.
    futures::future::join_all(
        dispatchers
            .iter()
            .map(|dispatcher| deliver_until_none_fail(&records, |batch| invoke(dispatcher, batch))),
    )
    .await;
    let offers = bed.scan(OFFERS).await;
    assert_eq!(offers.len(), 30);
    let keys: HashSet<Value> = offers.iter().map(|o| o["sortKey"].clone()).collect();
    assert_eq!(keys.len(), 30, "one offer per row");
    assert_eq!(bed.scan(REJECTED).await.len(), 1, "one rejection");
    assert!(bed.scan(PENDING).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_replay_never_consumes_a_newer_row_of_the_same_key() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    let row = fries_row("user-r", "camp-1+co-fries");
    bed.put(PENDING, row.clone()).await;
    let mut stream = bed.stream().await;
    let first_batch = stream.read_new().await.expect("stream");
    let dispatcher = bed.dispatcher(&[]);
    deliver(&dispatcher, &first_batch).await;
    assert_eq!(bed.scan(OFFERS).await.len(), 1);

    // The same row inserted again after dispatch: a new assignment.
    bed.put(PENDING, row.clone()).await;
    // The stale replay, delivered until none fails.
    deliver(&dispatcher, &first_batch).await;
    assert_eq!(
        bed.scan(PENDING).await.len(),
        1,
        "the newer row is still pending"
    );
    assert_eq!(bed.scan(OFFERS).await.len(), 1, "the replay made no offer");

    let second_batch = stream.read_new().await.expect("stream");
    assert_eq!(
        inserts(&second_batch).len(),
        1,
        "our own delete is a REMOVE, plus the new INSERT"
    );
    deliver(&dispatcher, &second_batch).await;
    assert!(bed.scan(PENDING).await.is_empty());
    let offers = bed.scan(OFFERS).await;
    assert_eq!(offers.len(), 2, "the re-insert is a second offer");
    assert_ne!(
        offers[0]["personalizedOfferId"],
        offers[1]["personalizedOfferId"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_replaced_before_its_insert_is_handled_keeps_the_newer_row() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    let row = fries_row("user-m", "camp-1+co-fries");
    bed.put(PENDING, row.clone()).await;
    let mut newer = row.clone();
    newer["rank"] = json!(99);
    bed.put(PENDING, newer).await; // a MODIFY: filtered out on AWS
    let records = bed.stream().await.read_new().await.expect("stream");
    deliver(&bed.dispatcher(&[]), &records).await;
    assert_eq!(
        bed.scan(OFFERS).await.len(),
        1,
        "the INSERT was a real assignment"
    );
    let pending = bed.scan(PENDING).await;
    assert_eq!(pending.len(), 1, "the newer write is not deleted");
    assert_eq!(pending[0]["rank"], 99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removes_modifies_and_unreadable_records_never_fail_the_batch() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    bed.put(PENDING, fries_row("user-x", "good-1")).await;
    bed.put(PENDING, fries_row("user-x", "gone")).await;
    bed.delete_pending("user-x", "gone").await;
    let mut records = bed.stream().await.read_new().await.expect("stream");
    assert!(records.iter().any(|r| r["eventName"] == "REMOVE"));

    // A record whose image is broken but whose keys are readable: rejected.
    let mut broken = records[0].clone();
    broken["eventID"] = json!("broken-1");
    broken["dynamodb"]["SequenceNumber"] = json!("999999000001");
    broken["dynamodb"]["Keys"] = json!({"userId": {"S": "user-x"}, "sortKey": {"S": "broken"}});
    broken["dynamodb"]["NewImage"] =
        json!({"userId": {"S": "user-x"}, "sortKey": {"S": "broken"}, "offerId": {"WAT": 1}});
    // A record without keys: reported as failed, by its sequence number.
    let mut keyless = records[0].clone();
    keyless["eventID"] = json!("keyless-1");
    keyless["dynamodb"]["SequenceNumber"] = json!("999999000002");
    keyless["dynamodb"]["Keys"] = json!({});
    keyless["dynamodb"]["NewImage"] = json!({"offerId": {"S": "co-fries"}});
    // A TTL deletion as DynamoDB Local writes it.
    let mut ttl_removal = records[0].clone();
    ttl_removal["eventName"] = json!("UNKNOWN_TO_SDK_VERSION");
    records.extend([broken, keyless, ttl_removal, json!("not a record")]);

    let failures = invoke(&bed.dispatcher(&[]), &records).await;
    assert_eq!(failures, vec!["999999000002".to_string()]);
    let offers = bed.scan(OFFERS).await;
    let dispatched: HashSet<&str> = offers
        .iter()
        .filter_map(|o| o["sortKey"].as_str())
        .collect();
    // An INSERT is an assignment even when its row was deleted before dispatch.
    assert_eq!(dispatched, HashSet::from(["good-1", "gone"]));
    let rejected = bed.scan(REJECTED).await;
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["reasonCode"], "invalid_row");
    assert!(rejected[0]["unreadableRow"]
        .as_str()
        .unwrap_or_default()
        .contains("WAT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_left_without_time_are_reported_failed_and_nothing_is_written() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    for index in 0..5 {
        bed.put(PENDING, fries_row("user-d", &format!("d{index}")))
            .await;
    }
    let records = bed.stream().await.read_new().await.expect("stream");
    let mut context = lambda_runtime::Context::default();
    // The deadline has passed: nothing may start.
    context.deadline = (chrono::Utc::now().timestamp_millis() - 1_000) as u64;
    let failures = invoke_with(&bed.dispatcher(&[]), &records, context).await;
    assert_eq!(failures.len(), 5);
    assert!(bed.scan(OFFERS).await.is_empty());
    assert_eq!(bed.scan(PENDING).await.len(), 5);

    // Lambda's default 3 s timeout, shorter than the template's 3 s margin:
    // the margin shrinks to a fifth of the time given and the work is done.
    // A busy machine may not finish in 3 s: what is left is delivered again,
    // each time with 3 s, as Lambda would.
    let dispatcher = bed.dispatcher(&[]);
    deliver_until_none_fail(&records, |batch| {
        let mut context = lambda_runtime::Context::default();
        context.deadline = (chrono::Utc::now().timestamp_millis() + 3_000) as u64;
        invoke_with(&dispatcher, batch, context)
    })
    .await;
    assert_eq!(bed.scan(OFFERS).await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_events_dispatch_as_documented() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    let event = read_json("events/dispatcher-mixed-batch.json");
    let records = event["Records"].as_array().cloned().unwrap_or_default();
    deliver(&bed.dispatcher(&[]), &records).await;
    let offers = bed.scan(OFFERS).await;
    let offered: HashSet<&str> = offers
        .iter()
        .filter_map(|o| o["offerId"].as_str())
        .collect();
    assert_eq!(offered, HashSet::from(["co-fries", SEED_OFFER]));
    let mut codes: Vec<String> = bed
        .scan(REJECTED)
        .await
        .iter()
        .map(|r| r["reasonCode"].to_string())
        .collect();
    codes.sort();
    assert_eq!(codes, vec!["\"expired\"", "\"invalid_row\""]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selection_stays_on_the_offer_and_a_bad_one_is_an_invalid_row() {
    let bed = TestBed::new().await;
    bed.load_sample_catalog().await;
    let selection = json!({"policy": "thompson-backoff/1", "propensity": 0.375,
        "holdout": false, "context": {"tier": "gold", "region": "north"}});
    let mut chosen = fries_row("user-sel", "camp-sel+co-fries");
    chosen["selection"] = selection.clone();
    let mut bad = fries_row("user-sel", "camp-sel+bad");
    bad["selection"] = json!({"policy": "thompson-backoff/1", "propensity": 0,
        "holdout": false, "context": {}});
    let mut unbounded = fries_row("user-sel", "camp-sel+long");
    unbounded["selection"] = json!({"policy": "p", "propensity": 0.5, "holdout": true,
        "context": {"tier": "x".repeat(600)}});
    for row in [&chosen, &bad, &unbounded] {
        bed.put(PENDING, row.clone()).await;
    }
    let records = bed.stream().await.read_new().await.expect("stream");
    // Delivered twice, the second time by two invocations at once.
    let dispatcher = bed.dispatcher(&[]);
    deliver(&dispatcher, &records).await;
    let (one, two) = (bed.dispatcher(&[]), bed.dispatcher(&[]));
    tokio::join!(
        deliver_until_none_fail(&records, |batch| invoke(&one, batch)),
        deliver_until_none_fail(&records, |batch| invoke(&two, batch))
    );

    let offers = bed.scan(OFFERS).await;
    assert_eq!(offers.len(), 1, "one offer however often delivered");
    assert_eq!(offers[0]["selection"], selection, "kept as the row gave it");
    let rejected = bed.scan(REJECTED).await;
    assert_eq!(rejected.len(), 2);
    for stored in &rejected {
        assert_eq!(stored["reasonCode"], "invalid_row");
        assert!(
            stored["reasonMessage"]
                .as_str()
                .unwrap_or_default()
                .contains("selection"),
            "{}",
            stored["reasonMessage"]
        );
    }
    assert!(bed.scan(PENDING).await.is_empty());
}

/// The case the common path's read of the rejections exists for: a record
/// rejected (its row deleted), the same row inserted again, the offer
/// published, then the old record delivered again. The row is back exactly
/// as the old record's image shows it, so only the stored rejection tells
/// the two apart: the old record stays rejected and leaves the newer row to
/// its own INSERT, which makes the one offer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_replay_of_a_rejected_record_after_an_identical_reinsert_stays_rejected() {
    let bed = TestBed::with_sample_catalog().await;
    let mut row = fries_row("user-i", "camp-1+co-later");
    row["offerId"] = json!("co-later");
    row.as_object_mut().map(|row| row.remove("rules"));
    bed.put(PENDING, row.clone()).await;
    let mut stream = bed.stream().await;
    let first_batch = stream.read_new().await.expect("stream");
    assert!(invoke(&bed.dispatcher(&[]), &first_batch).await.is_empty());
    assert_eq!(bed.scan(REJECTED).await.len(), 1, "unknown_offer");
    assert!(bed.scan(PENDING).await.is_empty());

    // Published, and the same row written again (what an operator does
    // after fixing the catalog); then the old record comes back.
    for item in [
        json!({"id": "co-later", "kind": "configOffer", "name": "Later", "templateId": "tpl-later", "rules": {}}),
        json!({"id": "tpl-later", "kind": "offerTemplate", "configOfferId": "co-later", "rules": []}),
    ] {
        bed.put(CATALOG, item).await;
    }
    bed.put(PENDING, row.clone()).await;
    assert!(
        invoke(&bed.dispatcher(&[]), &first_batch).await.is_empty(),
        "stale replay, to a fresh process"
    );
    assert!(
        bed.scan(OFFERS).await.is_empty(),
        "the replay made no offer"
    );
    assert_eq!(bed.scan(REJECTED).await.len(), 1, "the rejection stays");
    assert_eq!(bed.scan(PENDING).await.len(), 1, "the newer row is kept");

    let second_batch = stream.read_new().await.expect("stream");
    assert_eq!(inserts(&second_batch).len(), 1, "the re-insert");
    assert!(invoke(&bed.dispatcher(&[]), &second_batch).await.is_empty());
    assert_eq!(bed.scan(OFFERS).await.len(), 1, "its own offer");
    assert!(bed.scan(PENDING).await.is_empty());
}

/// A dispatcher deployed a while ago: its rejections mark long past (no
/// rejection since), so that the records of a test take the common path
/// without reading their rejections, as on a running system.
async fn mark_long_past(bed: &TestBed) {
    use offers_shared::ports::DispatchStore;
    let epoch = chrono::DateTime::UNIX_EPOCH;
    let store = bed.dispatcher(&[]);
    store
        .store()
        .raise_rejections_mark(epoch, epoch)
        .await
        .expect("mark set");
    assert_eq!(
        store.store().rejections_mark().await.expect("mark read"),
        Some(epoch)
    );
}

/// The rejections mark as stored, and the latest creation time of `records`.
async fn mark_and_latest(
    bed: &TestBed,
    records: &[&Value],
) -> (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
    use offers_shared::ports::DispatchStore;
    let mark = bed
        .dispatcher(&[])
        .store()
        .rejections_mark()
        .await
        .expect("mark read")
        .expect("mark set");
    let latest = records
        .iter()
        .filter_map(|record| record["dynamodb"]["ApproximateCreationDateTime"].as_f64())
        .map(|seconds| {
            chrono::DateTime::from_timestamp_millis((seconds * 1_000.0) as i64)
                .expect("a creation time")
        })
        .max()
        .expect("records with a creation time");
    (mark, latest)
}

/// The stale replay above on a running system (the mark long past): the
/// rejection raised the mark to its record's creation time first, so the
/// replay reads its rejection; the offer of the same batch took the common
/// path and its replay is a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_mark_set_a_stale_replay_of_a_rejected_record_after_an_identical_reinsert_stays_rejected(
) {
    let bed = TestBed::with_sample_catalog().await;
    mark_long_past(&bed).await;
    let mut row = fries_row("user-m", "camp-1+co-later");
    row["offerId"] = json!("co-later");
    row.as_object_mut().map(|row| row.remove("rules"));
    bed.put(PENDING, row.clone()).await;
    bed.put(PENDING, fries_row("user-n", "camp-1+fries")).await;
    let mut stream = bed.stream().await;
    let first_batch = stream.read_new().await.expect("stream");
    assert!(invoke(&bed.dispatcher(&[]), &first_batch).await.is_empty());
    assert_eq!(bed.scan(REJECTED).await.len(), 1, "unknown_offer");
    assert_eq!(bed.scan(OFFERS).await.len(), 1, "co-fries");
    assert!(bed.scan(PENDING).await.is_empty());
    let rejected: Vec<&Value> = first_batch
        .iter()
        .filter(|record| record["dynamodb"]["Keys"]["userId"]["S"] == "user-m")
        .collect();
    let (mark, created) = mark_and_latest(&bed, &rejected).await;
    assert!(mark >= created, "raised to {created} first: {mark}");

    for item in [
        json!({"id": "co-later", "kind": "configOffer", "name": "Later", "templateId": "tpl-later", "rules": {}}),
        json!({"id": "tpl-later", "kind": "offerTemplate", "configOfferId": "co-later", "rules": []}),
    ] {
        bed.put(CATALOG, item).await;
    }
    bed.put(PENDING, row.clone()).await;
    assert!(
        invoke(&bed.dispatcher(&[]), &first_batch).await.is_empty(),
        "stale replay, to a fresh process"
    );
    assert_eq!(bed.scan(OFFERS).await.len(), 1, "the replay made no offer");
    assert_eq!(bed.scan(REJECTED).await.len(), 1, "the rejection stays");
    assert_eq!(bed.scan(PENDING).await.len(), 1, "the newer row is kept");

    let second_batch = stream.read_new().await.expect("stream");
    assert_eq!(inserts(&second_batch).len(), 1, "the re-insert");
    assert!(invoke(&bed.dispatcher(&[]), &second_batch).await.is_empty());
    assert_eq!(bed.scan(OFFERS).await.len(), 2, "its own offer");
    assert!(bed.scan(PENDING).await.is_empty());
}

/// On a running system (the mark long past), one batch of offers and
/// rejections delivered by eight fresh processes at once, then once more:
/// one outcome per record, and the mark raised past every rejected record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_mark_set_a_batch_delivered_eight_times_at_once_then_again_has_one_outcome_per_record(
) {
    let bed = TestBed::with_sample_catalog().await;
    mark_long_past(&bed).await;
    for index in 0..24 {
        let mut row = fries_row(&format!("user-{}", index % 6), &format!("m+{index}"));
        if index % 6 == 5 {
            row["offerId"] = json!("co-nope");
        }
        bed.put(PENDING, row).await;
    }
    let records = bed.stream().await.read_new().await.expect("stream");
    let dispatchers: Vec<_> = (0..8).map(|_| bed.dispatcher(&[])).collect();
    futures::future::join_all(
        dispatchers
            .iter()
            .map(|dispatcher| deliver_until_none_fail(&records, |batch| invoke(dispatcher, batch))),
    )
    .await;
    deliver(&bed.dispatcher(&[]), &records).await;

    let offers = bed.scan(OFFERS).await;
    let rejections = bed.scan(REJECTED).await;
    assert_eq!(offers.len(), 20);
    assert_eq!(rejections.len(), 4);
    let offered: HashSet<Value> = offers.iter().map(|o| o["sortKey"].clone()).collect();
    let rejected: HashSet<Value> = rejections.iter().map(|r| r["sortKey"].clone()).collect();
    assert_eq!(offered.len() + rejected.len(), 24, "one outcome per row");
    assert!(offered.is_disjoint(&rejected));
    let offer_ids: HashSet<Value> = offers
        .iter()
        .map(|o| o["personalizedOfferId"].clone())
        .collect();
    assert!(rejections
        .iter()
        .all(|r| !offer_ids.contains(&r["rejectionId"])));
    assert!(bed.scan(PENDING).await.is_empty());
    let rejected_records: Vec<&Value> = records
        .iter()
        .filter(|record| record["dynamodb"]["NewImage"]["offerId"]["S"] == "co-nope")
        .collect();
    assert_eq!(rejected_records.len(), 4);
    let (mark, latest) = mark_and_latest(&bed, &rejected_records).await;
    assert!(mark >= latest, "{mark} covers {latest}");
}
