//! UserVisitsFunction end to end on DynamoDB Local: transactions put with the
//! SDK as the ordering backend would, the transactions table's real stream
//! handed to the handler, the profiles read back from the table and through
//! the support API's `GET /support/users/{userId}/profile`.

use futures::future::join_all;
use offers_integration_tests::*;
use offers_local::streams::lambda_event;
use offers_local::StreamReader;
use offers_shared::profiles::{VisitOutcome, VisitReport};
use offers_shared::stream::runner::Outcome;
use offers_shared::stream::transactions::TransactionBatch;
use serde_json::{json, Map, Value};

/// Puts transactions as the ordering backend does; the stream records they made.
async fn put_transactions(
    bed: &TestBed,
    stream: &mut StreamReader,
    transactions: &[Value],
) -> Vec<Value> {
    for chunk in transactions.chunks(50) {
        join_all(chunk.iter().map(|item| bed.put(TRANSACTIONS, item.clone()))).await;
    }
    let mut records = Vec::new();
    while records.len() < transactions.len() {
        let new = stream.read_new().await.expect("transactions stream");
        assert!(!new.is_empty(), "the stream shows every transaction");
        records.extend(inserts(&new));
    }
    assert_eq!(records.len(), transactions.len());
    records
}

fn with_mode(mut transaction: Value, mode: Option<&str>) -> Value {
    match mode {
        Some(mode) => transaction["serviceMode"] = json!(mode),
        None => {
            transaction
                .as_object_mut()
                .map(|item| item.remove("serviceMode"));
        }
    }
    transaction
}

async fn profile_item(bed: &TestBed, user: &str) -> Option<Map<String, Value>> {
    bed.scan(PROFILES)
        .await
        .into_iter()
        .find(|item| item["userId"] == user)
}

async fn get_profile(bed: &TestBed, user: &str, agent: Agent<'_>) -> ApiResponse {
    let support = bed.support(&[]);
    let path = format!("/support/users/{}/profile", user.replace(':', "%3A"));
    call_support(&support, &support_event("GET", &path, "", agent)).await
}

/// Runs the records through the service as the handler does, for its report.
async fn process(visits: &user_visits::DynamoUserVisits, records: &[Value]) -> VisitReport {
    let offers_shared::stream::Batch(inputs) =
        TransactionBatch::try_from(lambda_event(records)).expect("a stream event");
    visits.apply_batch(inputs, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visits_make_the_profile_with_the_contracts_buckets() {
    let bed = TestBed::new().await;
    let user = "us-east-1:profile-user";
    let visits = bed.visits(&[]);
    let mut stream = bed.transactions_stream().await;
    // One after the other, as one user's orders happen: the contexts below
    // are those of this stream order (concurrent puts may reach the stream
    // in any order).
    let mut records = Vec::new();
    for transaction in [
        with_mode(
            transaction("p-1", user, 30.0, "2026-04-01T08:00:00Z"),
            Some("pickup"),
        ),
        with_mode(
            transaction("p-2", user, 12.0, "2026-04-20T12:30:00+02:00"),
            Some("delivery"),
        ),
        with_mode(
            transaction("p-3", user, 6.0, "2026-05-02T16:00:00Z"),
            Some("delivery"),
        ),
    ] {
        records.extend(put_transactions(&bed, &mut stream, &[transaction]).await);
    }
    let report = process(&visits, &records).await;
    let contexts: Vec<_> = report
        .records
        .iter()
        .map(|record| match &record.outcome {
            Outcome::Done(VisitOutcome::Counted { context, .. }) => context.attributes(),
            other => panic!("not counted: {other:?}"),
        })
        .collect();
    let values = |index: usize| -> Vec<String> {
        ["visits30", "mode", "spend", "daypart"]
            .iter()
            .map(|name| contexts[index].get(*name).cloned().unwrap_or_default())
            .collect()
    };
    assert_eq!(values(0), ["1", "pickup", "25+", "morning"]);
    // 10:30 UTC; one visit each, delivery the latest; (30 + 12) / 2 = 21.
    assert_eq!(values(1), ["2-3", "delivery", "10-25", "morning"]);
    // April 1st is more than 30 days before May 2nd; 48 / 3 = 16.
    assert_eq!(values(2), ["2-3", "delivery", "10-25", "evening"]);

    let shown = get_profile(&bed, user, Agent::Support("agent-1")).await;
    assert_eq!(shown.status, 200, "{:?}", shown.body);
    assert_eq!(
        shown.body,
        json!({"userId": user, "visits30": "2-3", "mode": "delivery", "spend": "10-25",
               "lastVisitAt": "2026-05-02T16:00:00Z", "visits": 3})
    );

    // An old visit arriving late counts by its occurredAt: the latest visit
    // stays the latest, pickup catches up (two each, used last on April 1st
    // < May 2nd: still delivery), and a night visit without a mode.
    let late = put_transactions(
        &bed,
        &mut stream,
        &[
            with_mode(
                transaction("p-0", user, 2.0, "2026-03-01T23:00:00Z"),
                Some("pickup"),
            ),
            with_mode(transaction("p-4", user, 0.5, "2026-05-01T02:00:00Z"), None),
        ],
    )
    .await;
    assert!(invoke_visits(&visits, &late).await.is_empty());
    let shown = get_profile(&bed, user, Agent::Support("agent-1")).await;
    assert_eq!(
        shown.body,
        json!({"userId": user, "visits30": "2-3", "mode": "delivery", "spend": "10-25",
               "lastVisitAt": "2026-05-02T16:00:00Z", "visits": 5})
    );
    let item = profile_item(&bed, user).await.expect("the profile item");
    assert_eq!(item["version"], 5);
    assert_eq!(item["spendTotal"], 50.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_delivered_twice_and_eight_times_at_once_counts_once() {
    let bed = TestBed::new().await;
    let users = ["us-east-1:replay-a", "us-east-1:replay-b"];
    let mut stream = bed.transactions_stream().await;
    let records = put_transactions(
        &bed,
        &mut stream,
        &[
            transaction("r-1", users[0], 10.0, "2026-05-02T10:00:00Z"),
            transaction("r-2", users[0], 20.0, "2026-05-03T10:00:00Z"),
            transaction("r-3", users[1], 5.0, "2026-05-03T10:00:00Z"),
        ],
    )
    .await;
    let visits = bed.visits(&[]);
    assert!(invoke_visits(&visits, &records).await.is_empty());
    assert!(invoke_visits(&visits, &records).await.is_empty());
    // Eight fresh processes at once (nothing cached anywhere).
    let processes: Vec<_> = (0..8).map(|_| bed.visits(&[])).collect();
    // As the event source mapping would: a transient failure (a transaction
    // conflict on a busy DynamoDB Local) is delivered again.
    join_all(
        processes
            .iter()
            .map(|p| deliver_until_none_fail(&records, |batch| invoke_visits(p, batch))),
    )
    .await;
    let a = profile_item(&bed, users[0]).await.expect("a's profile");
    assert_eq!(a["visits"], 2);
    assert_eq!(a["version"], 2, "written twice, once per transaction");
    assert_eq!(a["spendTotal"], 30.0);
    let b = profile_item(&bed, users[1]).await.expect("b's profile");
    assert_eq!(b["visits"], 1);
    // One mark per transaction, expiring.
    let marks: Vec<_> = bed
        .scan(PROFILES)
        .await
        .into_iter()
        .filter(|item| {
            item["userId"]
                .as_str()
                .is_some_and(|id| id.starts_with('#'))
        })
        .collect();
    assert_eq!(marks.len(), 3);
    assert!(marks.iter().all(|mark| mark["ttl"].is_number()));

    // Eight at once of a batch never seen: still once.
    let fresh = put_transactions(
        &bed,
        &mut stream,
        &[transaction("r-4", users[1], 5.0, "2026-05-04T10:00:00Z")],
    )
    .await;
    // As the event source mapping would: a transient failure (a transaction
    // conflict on a busy DynamoDB Local) is delivered again.
    join_all(
        processes
            .iter()
            .map(|p| deliver_until_none_fail(&fresh, |batch| invoke_visits(p, batch))),
    )
    .await;
    let b = profile_item(&bed, users[1]).await.expect("b's profile");
    assert_eq!(b["visits"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_transactions_of_one_user_processed_at_once_both_count() {
    let bed = TestBed::new().await;
    let user = "us-east-1:race-user";
    let mut stream = bed.transactions_stream().await;
    for round in 0..4 {
        let records = put_transactions(
            &bed,
            &mut stream,
            &[
                transaction(&format!("a-{round}"), user, 5.0, "2026-05-02T10:00:00Z"),
                transaction(&format!("b-{round}"), user, 5.0, "2026-05-02T10:05:00Z"),
            ],
        )
        .await;
        let (one, two) = (bed.visits(&[]), bed.visits(&[]));
        tokio::join!(
            deliver_until_none_fail(&records[..1], |batch| invoke_visits(&one, batch)),
            deliver_until_none_fail(&records[1..], |batch| invoke_visits(&two, batch)),
        );
        let item = profile_item(&bed, user).await.expect("the profile");
        assert_eq!(item["visits"], 2 * (round + 1), "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_transactions_never_count_and_never_fail_the_batch() {
    let bed = TestBed::new().await;
    let user = "us-east-1:hostile-visits";
    let mut stream = bed.transactions_stream().await;
    let reserved = transaction("reserved", "#counted#x", 1.0, "2026-05-02T10:00:00Z");
    let records = put_transactions(
        &bed,
        &mut stream,
        &[
            vec![transaction("valid-1", user, 5.0, "2026-05-02T10:00:00Z")],
            invalid_transactions(user),
            vec![
                reserved,
                transaction("valid-2", user, 5.0, "2026-05-02T11:00:00Z"),
            ],
        ]
        .concat(),
    )
    .await;
    let visits = bed.visits(&[]);
    for _delivery in 0..2 {
        assert!(invoke_visits(&visits, &records).await.is_empty());
    }
    let item = profile_item(&bed, user).await.expect("the profile");
    assert_eq!(item["visits"], 2);
    assert_eq!(item["spendTotal"], 10.0);
    let profiles: Vec<_> = bed
        .scan(PROFILES)
        .await
        .into_iter()
        .filter(|item| item.contains_key("version"))
        .collect();
    assert_eq!(
        profiles.len(),
        1,
        "no profile for the reserved id: {profiles:?}"
    );
    assert!(
        bed.scan(REJECTED).await.is_empty(),
        "challenge progress keeps them"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_with_two_thousand_visits_keeps_one_small_item() {
    let bed = TestBed::new().await;
    let user = "us-east-1:regular";
    let mut stream = bed.transactions_stream().await;
    let modes = ["pickup", "delivery", "dine-in", "drive-thru"];
    let transactions: Vec<Value> = (0..2_000u32)
        .map(|n| {
            let at = format!(
                "2026-{:02}-{:02}T{:02}:00:00Z",
                1 + n % 12,
                1 + n % 28,
                n % 24
            );
            // Beyond a few real ones, hostile modes: the map stays bounded.
            let mode = if n % 10 == 0 {
                format!("mode-{n}")
            } else {
                modes[(n % 4) as usize].to_owned()
            };
            with_mode(transaction(&format!("v-{n}"), user, 12.0, &at), Some(&mode))
        })
        .collect();
    let records = put_transactions(&bed, &mut stream, &transactions).await;
    let visits = bed.visits(&[]);
    for batch in records.chunks(100) {
        assert!(invoke_visits(&visits, batch).await.is_empty());
    }
    let item = profile_item(&bed, user).await.expect("the profile");
    assert_eq!(item["visits"], 2_000);
    let size = offers_shared::domain::limits::item_size(&item);
    assert!(size < 2_048, "one small item: {size} bytes");
    let shown = get_profile(&bed, user, Agent::Support("agent-1")).await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body["visits"], 2_000);
    assert_eq!(shown.body["spend"], "10-25");
    assert_eq!(shown.body["lastVisitAt"], "2026-12-28T23:00:00Z");
    assert_eq!(shown.body["visits30"], "10+");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profile_route_is_for_support_agents_and_knows_users_without_visits() {
    let bed = TestBed::new().await;
    let user = "us-east-1:route-user";
    let mut stream = bed.transactions_stream().await;
    let records = put_transactions(
        &bed,
        &mut stream,
        &[transaction("g-1", user, 9.0, "2026-05-02T03:00:00Z")],
    )
    .await;
    assert!(invoke_visits(&bed.visits(&[]), &records).await.is_empty());

    let shown = get_profile(&bed, user, Agent::Support("agent-1")).await;
    assert_eq!(shown.status, 200);
    assert_eq!(
        shown.body,
        json!({"userId": user, "visits30": "1", "mode": "pickup", "spend": "<10",
               "lastVisitAt": "2026-05-02T03:00:00Z", "visits": 1})
    );
    let customer = get_profile(&bed, user, Agent::WithGroups("someone", "[customers]")).await;
    assert_eq!(customer.status, 403);
    assert_eq!(get_profile(&bed, user, Agent::Nobody).await.status, 401);
    let unknown = get_profile(&bed, "us-east-1:never-visited", Agent::Support("agent-1")).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.body["error"]["code"], "not_found",
        "{:?}",
        unknown.body
    );
    // A mark's key is not a user.
    let mark = offers_shared::dynamo::mark_key("g-1");
    let support = bed.support(&[]);
    let path = format!("/support/users/{}/profile", mark.replace('#', "%23"));
    let marked = call_support(
        &support,
        &support_event("GET", &path, "", Agent::Support("a")),
    )
    .await;
    assert_eq!(marked.status, 404);
}
