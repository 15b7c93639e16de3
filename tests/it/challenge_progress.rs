//! ChallengeProgressFunction end to end on DynamoDB Local: challenge offers
//! made by the dispatcher from pending rows, transactions put with the SDK as
//! the ordering backend would, the transactions table's real stream handed to
//! the handler, the result read back from the tables and through the app's API.

use futures::future::join_all;
use offers_integration_tests::*;
use offers_local::StreamReader;
use serde_json::{json, Map, Value};

/// A two-visit challenge (each visit `total_cost` >= `minimum`) for `user`,
/// dispatched into an offer: its `personalizedOfferId`.
async fn challenge_offer(bed: &TestBed, user: &str, minimum: &str) -> String {
    let mut row = seed_challenge_row(&future_date(60));
    row["userId"] = json!(user);
    row["sortKey"] = json!(format!("task-1+{user}"));
    row["challengeStatus"] = json!(json!({
        "reward": {"value": "100"},
        "goals": {"visit1": {"condition": {"total_cost": minimum}},
                  "visit2": {"condition": {"total_cost": minimum}}}
    })
    .to_string());
    let sort_key = row["sortKey"].as_str().unwrap_or_default().to_owned();
    let mut stream = bed.stream().await;
    bed.dispatch_rows(&mut stream, &[row])
        .await
        .remove(&sort_key)
        .expect("the challenge offer")
}

/// Puts transactions as the ordering backend does; the stream records they made.
async fn put_transactions(
    bed: &TestBed,
    stream: &mut StreamReader,
    transactions: &[Value],
) -> Vec<Value> {
    for item in transactions {
        bed.put(TRANSACTIONS, item.clone()).await;
    }
    let records = stream.read_new().await.expect("transactions stream");
    assert_eq!(inserts(&records).len(), transactions.len());
    records
}

async fn offer_item(bed: &TestBed, id: &str) -> Map<String, Value> {
    bed.scan(OFFERS)
        .await
        .into_iter()
        .find(|offer| offer["personalizedOfferId"] == id)
        .expect("the offer")
}

fn goal<'a>(offer: &'a Map<String, Value>, name: &str) -> &'a Value {
    &offer["challenge"]["goals"][name]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_visits_complete_the_challenge_once_and_a_third_changes_nothing() {
    let bed = TestBed::with_sample_catalog().await;
    let user = "us-east-1:visits-user";
    let id = challenge_offer(&bed, user, "1").await;
    let progress = bed.progress(&[]);
    let mut stream = bed.transactions_stream().await;

    let first = put_transactions(
        &bed,
        &mut stream,
        &[
            transaction("order-1", user, 12.5, "2026-05-02T14:30:00+02:00"),
            transaction("order-2", user, 3.0, "2026-05-03T09:00:00Z"),
        ],
    )
    .await;
    deliver_progress(&progress, &first).await;
    let offer = offer_item(&bed, &id).await;
    assert_eq!(goal(&offer, "visit1")["transactionId"], "order-1");
    assert_eq!(goal(&offer, "visit1")["metAt"], "2026-05-02T12:30:00Z");
    assert_eq!(goal(&offer, "visit2")["transactionId"], "order-2");
    let challenge = &offer["challenge"];
    assert_eq!(challenge["completedAt"], "2026-05-03T09:00:00Z");
    let granted = challenge["reward"]["grantedAt"].clone();
    assert!(granted.is_string(), "reward granted: {challenge}");
    assert_eq!(challenge["reward"]["value"], "100");

    // A third visit, and the first two delivered again: nothing changes,
    // the reward is not granted a second time.
    let third = put_transactions(
        &bed,
        &mut stream,
        &[transaction("order-3", user, 40.0, "2026-05-04T09:00:00Z")],
    )
    .await;
    deliver_progress(&progress, &third).await;
    deliver_progress(&progress, &first).await;
    assert_eq!(offer_item(&bed, &id).await, offer, "unchanged");

    // The app sees the progress.
    let lookup = bed.lookup(&[]);
    let shown = call_lookup(
        &lookup,
        &api_event(
            "GET",
            &format!("/rewards/offers/{id}"),
            "",
            Identity::Jwt(user),
        ),
    )
    .await;
    assert_eq!(shown.status, 200);
    let challenge = &shown.body["challenge"];
    assert_eq!(challenge["progress"], json!({"met": 2, "total": 2}));
    assert_eq!(challenge["completedAt"], "2026-05-03T09:00:00Z");
    assert_eq!(challenge["reward"]["grantedAt"], granted);
    assert_eq!(challenge["goals"]["visit2"]["transactionId"], "order-2");
    assert!(challenge.get("countedTransactions").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_transaction_counts_once() {
    let bed = TestBed::with_sample_catalog().await;
    let user = "us-east-1:replay-user";
    let id = challenge_offer(&bed, user, "1").await;
    let progress = bed.progress(&[]);
    let mut stream = bed.transactions_stream().await;
    let records = put_transactions(
        &bed,
        &mut stream,
        &[transaction("order-1", user, 5.0, "2026-05-02T10:00:00Z")],
    )
    .await;
    for _ in 0..3 {
        deliver_progress(&progress, &records).await;
    }
    // And to a fresh process (nothing cached anywhere).
    deliver_progress(&bed.progress(&[]), &records).await;
    let offer = offer_item(&bed, &id).await;
    assert_eq!(goal(&offer, "visit1")["transactionId"], "order-1");
    assert!(goal(&offer, "visit2").get("metAt").is_none(), "{offer:?}");
    assert!(offer["challenge"].get("completedAt").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_transaction_delivered_at_once_counts_once() {
    let bed = TestBed::with_sample_catalog().await;
    let user = "us-east-1:concurrent-same";
    let id = challenge_offer(&bed, user, "1").await;
    let mut stream = bed.transactions_stream().await;
    let records = put_transactions(
        &bed,
        &mut stream,
        &[transaction("order-1", user, 5.0, "2026-05-02T10:00:00Z")],
    )
    .await;
    let processes: Vec<_> = (0..10).map(|_| bed.progress(&[])).collect();
    join_all(processes.iter().map(|progress| {
        deliver_until_none_fail(&records, |batch| invoke_progress(progress, batch))
    }))
    .await;
    let offer = offer_item(&bed, &id).await;
    assert_eq!(goal(&offer, "visit1")["transactionId"], "order-1");
    assert!(
        goal(&offer, "visit2").get("metAt").is_none(),
        "counted once: {offer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_transactions_of_one_user_delivered_at_once_both_count() {
    let bed = TestBed::with_sample_catalog().await;
    // Several users, so that the two deliveries really race for visit1.
    let mut stream = bed.transactions_stream().await;
    for round in 0..5 {
        let user = format!("us-east-1:concurrent-two-{round}");
        let id = challenge_offer(&bed, &user, "1").await;
        let records = put_transactions(
            &bed,
            &mut stream,
            &[
                transaction(&format!("a-{round}"), &user, 5.0, "2026-05-02T10:00:00Z"),
                transaction(&format!("b-{round}"), &user, 5.0, "2026-05-02T10:05:00Z"),
            ],
        )
        .await;
        let (one, two) = (bed.progress(&[]), bed.progress(&[]));
        tokio::join!(
            deliver_until_none_fail(&records[..1], |batch| invoke_progress(&one, batch)),
            deliver_until_none_fail(&records[1..], |batch| invoke_progress(&two, batch)),
        );
        let offer = offer_item(&bed, &id).await;
        let mut counted: Vec<String> = ["visit1", "visit2"]
            .iter()
            .filter_map(|name| goal(&offer, name)["transactionId"].as_str())
            .map(str::to_owned)
            .collect();
        counted.sort();
        assert_eq!(counted, [format!("a-{round}"), format!("b-{round}")]);
        assert!(offer["challenge"]["completedAt"].is_string());
        assert!(offer["challenge"]["reward"]["grantedAt"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_transactions_within_the_offer_and_its_conditions_count() {
    let bed = TestBed::with_sample_catalog().await;
    let user = "us-east-1:conditions-user";
    let id = challenge_offer(&bed, user, "10").await;
    let progress = bed.progress(&[]);
    let mut stream = bed.transactions_stream().await;
    // The seed row starts 2023-10-20T17:37:37Z.
    let records = put_transactions(
        &bed,
        &mut stream,
        &[
            transaction("before-start", user, 50.0, "2023-10-20T17:37:36Z"),
            transaction("too-small", user, 9.99, "2026-05-02T10:00:00Z"),
            transaction(
                "other-user",
                "us-east-1:no-challenge",
                50.0,
                "2026-05-02T10:00:00Z",
            ),
        ],
    )
    .await;
    deliver_progress(&progress, &records).await;
    let offer = offer_item(&bed, &id).await;
    assert!(goal(&offer, "visit1").get("metAt").is_none(), "{offer:?}");
    assert!(offer["challenge"].get("countedTransactions").is_none());
    assert!(
        bed.scan(REJECTED).await.is_empty(),
        "none of them is an error"
    );

    let enough = put_transactions(
        &bed,
        &mut stream,
        &[transaction("enough", user, 10.0, "2023-10-20T17:37:37Z")],
    )
    .await;
    deliver_progress(&progress, &enough).await;
    let offer = offer_item(&bed, &id).await;
    assert_eq!(goal(&offer, "visit1")["transactionId"], "enough");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_transactions_are_kept_between_valid_neighbours_once() {
    let bed = TestBed::with_sample_catalog().await;
    let user = "us-east-1:hostile-user";
    let id = challenge_offer(&bed, user, "1").await;
    let progress = bed.progress(&[]);
    let mut stream = bed.transactions_stream().await;
    let records = put_transactions(
        &bed,
        &mut stream,
        &[
            vec![transaction("valid-1", user, 5.0, "2026-05-02T10:00:00Z")],
            invalid_transactions(user),
            vec![transaction("valid-2", user, 5.0, "2026-05-02T11:00:00Z")],
        ]
        .concat(),
    )
    .await;
    deliver_progress(&progress, &records).await;
    let offer = offer_item(&bed, &id).await;
    assert!(offer["challenge"]["completedAt"].is_string(), "{offer:?}");

    let rejections = bed.scan(REJECTED).await;
    assert_eq!(rejections.len(), 4);
    for rejection in &rejections {
        assert_eq!(rejection["reasonCode"], "invalid_transaction");
        assert_eq!(rejection["source"], "transaction");
        assert!(rejection["transaction"].as_str().is_some_and(
            |image| image.contains(rejection["transactionId"].as_str().unwrap_or("?"))
        ));
        let expected_user = if rejection["transactionId"] == "no-user" {
            "#transactions-without-user"
        } else {
            user
        };
        assert_eq!(rejection["userId"], expected_user, "{rejection:?}");
    }
    let message = |transaction: &str| {
        rejections
            .iter()
            .find(|r| r["transactionId"] == transaction)
            .and_then(|r| r["reasonMessage"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(message("negative").contains("totalCost"));
    assert!(message("no-user").contains("userId"));
    assert!(message("bad-date").contains("occurredAt"));

    // Delivered again: kept once.
    deliver_progress(&progress, &records).await;
    assert_eq!(bed.scan(REJECTED).await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_built_unreadable_record_is_kept_and_never_fails_the_batch() {
    let bed = TestBed::with_sample_catalog().await;
    let progress = bed.progress(&[]);
    let mut event = read_json("events/challenge-progress-transactions.json");
    let record = event["Records"][0].clone();
    let mut broken = record.clone();
    broken["eventID"] = json!("broken-1");
    broken["dynamodb"]["SequenceNumber"] = json!("999000000000000000001");
    broken["dynamodb"]["NewImage"]["totalCost"] = json!({"Q": "12"});
    event["Records"] = json!([record, broken]);
    let records: Vec<Value> = event["Records"].as_array().cloned().unwrap_or_default();
    deliver_progress(&progress, &records).await;
    let rejections = bed.scan(REJECTED).await;
    assert_eq!(rejections.len(), 1);
    assert!(rejections[0]["reasonMessage"]
        .as_str()
        .is_some_and(|m| m.contains("unreadable")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_events_complete_the_seed_challenge() {
    let bed = TestBed::with_sample_catalog().await;
    let dispatched = read_json("events/dispatcher-mixed-batch.json");
    let rows: Vec<Value> = dispatched["Records"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    deliver(&bed.dispatcher(&[]), &rows).await;
    let sample = read_json("events/challenge-progress-transactions.json");
    let records: Vec<Value> = sample["Records"].as_array().cloned().unwrap_or_default();
    let progress = bed.progress(&[]);
    for _delivery in 0..2 {
        deliver_progress(&progress, &records).await;
    }
    let offers = bed.scan(OFFERS).await;
    let seed = offers
        .iter()
        .find(|offer| offer["userId"] == SEED_USER && offer.contains_key("challenge"))
        .expect("the seed challenge offer");
    assert_eq!(goal(seed, "visit1")["transactionId"], "order-1001");
    assert_eq!(goal(seed, "visit2")["transactionId"], "order-1002");
    assert_eq!(seed["challenge"]["completedAt"], "2026-05-03T09:00:00Z");
    let invalid: Vec<_> = bed
        .scan(REJECTED)
        .await
        .into_iter()
        .filter(|rejection| rejection["reasonCode"] == "invalid_transaction")
        .collect();
    assert_eq!(invalid.len(), 1);
    assert_eq!(invalid[0]["transactionId"], "order-1003");
}
