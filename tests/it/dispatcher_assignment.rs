//! `assignmentId` end to end on DynamoDB Local (contract section 2): the rows
//! of one user with one assignment make one offer, in one batch, in two, and
//! in concurrent invocations; a row whose assignment became an offer is
//! consumed as a duplicate, never a rejection; the rows of an assignment
//! rejected again keep its one rejection; bounds are `invalid_row`.

use offer_dispatcher::records;
use offers_integration_tests::*;
use offers_local::StreamReader;
use offers_shared::dispatch::{DispatchOutcome, Earlier, Outcome};
use serde_json::{json, Map, Value};

fn assigned(user_id: &str, sort_key: &str, assignment_id: &str) -> Value {
    let mut row = fries_row(user_id, sort_key);
    row["assignmentId"] = json!(assignment_id);
    row
}

fn of_user<'a>(items: &'a [Map<String, Value>], user_id: &str) -> Vec<&'a Map<String, Value>> {
    items
        .iter()
        .filter(|item| item["userId"] == user_id)
        .collect()
}

/// Puts `rows` and delivers what the stream shows until no record fails.
async fn dispatch(bed: &TestBed, stream: &mut StreamReader, rows: &[Value]) -> Vec<Value> {
    for row in rows {
        bed.put(PENDING, row.clone()).await;
    }
    let records = stream.read_new().await.expect("stream");
    deliver_fresh(bed, &records).await;
    records
}

/// Delivers `records` to a fresh process until no record fails.
async fn deliver_fresh(bed: &TestBed, records: &[Value]) {
    let dispatcher = bed.dispatcher(&[]);
    deliver_until_none_fail(records, |batch| invoke(&dispatcher, batch)).await;
}

/// Delivers `records` by 8 concurrent invocations until none fails, then
/// once more whole. Half the invocations see the batch from its second half
/// on first, so that the rows of one assignment really race.
async fn deliver_racing(bed: &TestBed, records: &[Value]) {
    let dispatchers: Vec<_> = (0..8).map(|_| bed.dispatcher(&[])).collect();
    futures::future::join_all(dispatchers.iter().enumerate().map(|(index, dispatcher)| {
        let batch = match index % 2 {
            0 => records,
            _ => &records[records.len() / 2..],
        };
        deliver_until_none_fail(batch, |batch| invoke(dispatcher, batch))
    }))
    .await;
    deliver_until_none_fail(records, |batch| invoke(&dispatchers[1], batch)).await;
}

/// One offer, of `assignment_id`, with the id derived from it; no
/// rejection and no pending row left.
async fn assert_one_offer(bed: &TestBed, user_id: &str, assignment_id: &str) {
    let offers = bed.scan(OFFERS).await;
    let offers = of_user(&offers, user_id);
    assert_eq!(offers.len(), 1, "one offer for {user_id}: {offers:?}");
    let expected = offers_shared::domain::assignment_offer_id(user_id, assignment_id);
    assert_eq!(offers[0]["personalizedOfferId"], expected.to_string());
    assert_eq!(offers[0]["assignmentId"], assignment_id, "kept for audit");
    assert!(of_user(&bed.scan(REJECTED).await, user_id).is_empty());
    assert!(of_user(&bed.scan(PENDING).await, user_id).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rows_of_one_assignment_in_one_batch_make_one_offer() {
    let bed = TestBed::with_sample_catalog().await;
    let mut stream = bed.stream().await;
    let rows = [
        assigned("user-a", "run-1+0", "plan:camp-1:user-a:0"),
        assigned("user-a", "run-2+0", "plan:camp-1:user-a:0"),
    ];
    let records = dispatch(&bed, &mut stream, &rows).await;
    assert_eq!(inserts(&records).len(), 2);
    assert_one_offer(&bed, "user-a", "plan:camp-1:user-a:0").await;

    // The batch again, to a fresh process: nothing changes.
    deliver_fresh(&bed, &records).await;
    assert_one_offer(&bed, "user-a", "plan:camp-1:user-a:0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_of_a_dispatched_assignment_are_consumed_as_duplicates_never_rejections() {
    let bed = TestBed::with_sample_catalog().await;
    let mut stream = bed.stream().await;
    let id = "dlv-1:0";
    dispatch(&bed, &mut stream, &[assigned("user-b", "k1", id)]).await;
    assert_one_offer(&bed, "user-b", id).await;

    // A second batch: another key of the assignment, the same key written
    // again (a rerun), and a row of it that would now be rejected.
    let mut unknown = assigned("user-b", "k3", id);
    unknown["offerId"] = json!("co-nope");
    let mut expired = assigned("user-b", "k4", id);
    expired["expiryDate"] = json!("2024-02-01T00:00:00Z");
    let rows = [
        assigned("user-b", "k2", id),
        assigned("user-b", "k1", id),
        unknown,
        expired,
    ];
    dispatch(&bed, &mut stream, &rows).await;
    assert_one_offer(&bed, "user-b", id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_invocations_make_one_offer_per_assignment() {
    let bed = TestBed::with_sample_catalog().await;
    let mut stream = bed.stream().await;
    for user in 0..6 {
        for copy in 0..2 {
            let row = assigned(&format!("user-c{user}"), &format!("run-{copy}"), "slot-0");
            bed.put(PENDING, row).await;
        }
    }
    let records = stream.read_new().await.expect("stream");
    assert_eq!(inserts(&records).len(), 12);
    deliver_racing(&bed, &records).await;
    assert_eq!(bed.scan(OFFERS).await.len(), 6, "one offer per user");
    for user in 0..6 {
        assert_one_offer(&bed, &format!("user-c{user}"), "slot-0").await;
    }
}

/// A row of `assignment_id` whose config offer is not in the catalog.
fn unknown_offer(user_id: &str, sort_key: &str, assignment_id: &str) -> Value {
    let mut row = assigned(user_id, sort_key, assignment_id);
    row["offerId"] = json!("co-nope");
    row
}

/// The assignment's one rejection, filed under its offer id; no offer and no
/// pending row left.
async fn assert_one_rejection(bed: &TestBed, user_id: &str, assignment_id: &str) -> String {
    let rejected = bed.scan(REJECTED).await;
    let rejected = of_user(&rejected, user_id);
    assert_eq!(
        rejected.len(),
        1,
        "one rejection for {user_id}: {rejected:?}"
    );
    let expected = offers_shared::domain::assignment_offer_id(user_id, assignment_id);
    assert_eq!(rejected[0]["rejectionId"], expected.to_string());
    assert_eq!(rejected[0]["reasonCode"], "unknown_offer");
    assert!(of_user(&bed.scan(OFFERS).await, user_id).is_empty());
    assert!(of_user(&bed.scan(PENDING).await, user_id).is_empty());
    rejected[0]["sourceRecordId"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_of_a_rejected_assignment_written_again_keep_its_one_rejection() {
    let bed = TestBed::with_sample_catalog().await;
    let mut stream = bed.stream().await;
    // Twice: the row, and the same row written again once it was rejected
    // (a writer's retry of a call DynamoDB had applied, or a rerun).
    let first = dispatch(&bed, &mut stream, &[unknown_offer("user-g", "k", "a")]).await;
    let source = assert_one_rejection(&bed, "user-g", "a").await;
    assert!(!source.is_empty(), "the rejected record is named");
    dispatch(&bed, &mut stream, &[unknown_offer("user-g", "k", "a")]).await;
    deliver_fresh(&bed, &first).await;
    let kept = assert_one_rejection(&bed, "user-g", "a").await;
    assert_eq!(kept, source, "the first record keeps the rejection");

    // N at once: three rows of each of six assignments, eight concurrent
    // invocations.
    for user in 0..6 {
        for copy in 0..3 {
            let row = unknown_offer(&format!("user-h{user}"), &format!("run-{copy}"), "slot-0");
            bed.put(PENDING, row).await;
        }
    }
    let records = stream.read_new().await.expect("stream");
    assert_eq!(inserts(&records).len(), 18);
    deliver_racing(&bed, &records).await;
    for user in 0..6 {
        assert_one_rejection(&bed, &format!("user-h{user}"), "slot-0").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignment_id_of_0_or_129_characters_is_invalid_row_and_128_is_accepted() {
    let bed = TestBed::with_sample_catalog().await;
    let mut stream = bed.stream().await;
    let rows = [
        assigned("user-d", "empty", ""),
        assigned("user-d", "long", &"x".repeat(129)),
        assigned("user-d2", "longest", &"é".repeat(128)),
    ];
    dispatch(&bed, &mut stream, &rows).await;
    let rejected = bed.scan(REJECTED).await;
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    for item in &rejected {
        assert_eq!(item["reasonCode"], "invalid_row");
        let message = item["reasonMessage"].as_str().unwrap_or_default();
        assert!(message.contains("assignmentId"), "{message}");
    }
    assert!(of_user(&bed.scan(OFFERS).await, "user-d").is_empty());
    assert!(of_user(&bed.scan(PENDING).await, "user-d").is_empty());
    assert_one_offer(&bed, "user-d2", &"é".repeat(128)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_replay_never_consumes_a_newer_row_of_another_assignment() {
    let bed = TestBed::with_sample_catalog().await;
    let mut stream = bed.stream().await;
    let first = dispatch(&bed, &mut stream, &[assigned("user-e", "k", "a-1")]).await;
    // The key rewritten for another assignment, then the old batch replayed.
    bed.put(PENDING, assigned("user-e", "k", "a-2")).await;
    deliver_fresh(&bed, &first).await;
    assert_eq!(bed.scan(PENDING).await.len(), 1, "the newer row is kept");
    assert_eq!(bed.scan(OFFERS).await.len(), 1);
    let second = stream.read_new().await.expect("stream");
    deliver_fresh(&bed, &second).await;
    assert!(bed.scan(PENDING).await.is_empty());
    assert_eq!(
        bed.scan(OFFERS).await.len(),
        2,
        "a new assignment, a new offer"
    );
    assert!(bed.scan(REJECTED).await.is_empty());
}

/// What the dispatcher decides for each record of `records`, delivered
/// until none fails (a fresh process each time).
async fn outcomes(bed: &TestBed, records: &[Value]) -> Vec<Outcome> {
    for _ in 0..MAX_DELIVERIES {
        let inputs = records.iter().cloned().map(records::read_record).collect();
        let report = bed.dispatcher(&[]).apply_batch(inputs, None).await;
        let outcomes: Vec<Outcome> = report.records.into_iter().map(|r| r.outcome).collect();
        if !outcomes.iter().any(|o| matches!(o, Outcome::Failed(_))) {
            return outcomes;
        }
    }
    panic!("records still failed after {MAX_DELIVERIES} deliveries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_rejected_before_its_assignment_became_an_offer_stays_rejected() {
    let bed = TestBed::with_sample_catalog().await;
    let mut stream = bed.stream().await;
    // Rejected: its config offer is not published yet.
    let mut early = assigned("user-f", "k1", "a");
    early["offerId"] = json!("co-later");
    early.as_object_mut().map(|row| row.remove("rules"));
    bed.put(PENDING, early).await;
    let first = stream.read_new().await.expect("stream");
    let decided = outcomes(&bed, &first).await;
    assert!(
        matches!(
            decided[..],
            [Outcome::Done(DispatchOutcome::Rejected { .. })]
        ),
        "{decided:?}"
    );
    // Another row of the assignment makes its offer; then the offer is
    // published, and the rejected record delivered again would dispatch.
    dispatch(&bed, &mut stream, &[assigned("user-f", "k2", "a")]).await;
    for item in [
        json!({"id": "co-later", "kind": "configOffer", "name": "Later", "templateId": "tpl-later", "rules": {}}),
        json!({"id": "tpl-later", "kind": "offerTemplate", "configOfferId": "co-later", "rules": []}),
    ] {
        bed.put(CATALOG, item).await;
    }
    let again = outcomes(&bed, &first).await;
    assert!(
        matches!(
            again[..],
            [Outcome::Done(DispatchOutcome::Duplicate {
                earlier: Earlier::Rejected,
                ..
            })]
        ),
        "its own outcome is the rejection: {again:?}"
    );
    let offers = bed.scan(OFFERS).await;
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0]["sortKey"], "k2");
    assert_eq!(bed.scan(REJECTED).await.len(), 1, "the rejection stays");
    assert!(bed.scan(PENDING).await.is_empty());
}
