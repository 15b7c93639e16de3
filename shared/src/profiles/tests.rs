use super::memory::ProfileMemoryStore;
use super::*;
use crate::stream::runner::{Failure, Outcome};
use crate::stream::transactions::TransactionRecord;
use offers_domain::profile::{Spend, Visits30};
use offers_domain::UserId;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

fn user(id: &str) -> UserId {
    UserId::try_from(id).expect("user id")
}

fn settings() -> RunnerSettings {
    RunnerSettings {
        concurrency: 4,
        deadline_margin: Duration::from_millis(500),
    }
}

fn input(sequence: u32, image: Value) -> TransactionInput {
    let attributes: Map<String, Value> = image.as_object().cloned().unwrap_or_default();
    TransactionInput::Change(Box::new(TransactionRecord::from_attributes(
        format!("e{sequence}"),
        sequence.to_string(),
        &attributes,
    )))
}

fn transaction(
    sequence: u32,
    id: &str,
    user: &str,
    cost: f64,
    at: &str,
    mode: &str,
) -> TransactionInput {
    input(
        sequence,
        json!({"transactionId": id, "userId": user, "totalCost": cost, "occurredAt": at,
               "serviceMode": mode}),
    )
}

fn batch() -> Vec<TransactionInput> {
    vec![
        transaction(1, "t1", "u1", 30.0, "2026-05-01T08:00:00Z", "pickup"),
        transaction(2, "t2", "u1", 10.0, "2026-05-02T12:00:00Z", "delivery"),
        transaction(3, "t3", "u2", 5.0, "2026-05-02T22:00:00Z", "pickup"),
        input(
            4,
            json!({"transactionId": "bad", "userId": "u1", "totalCost": -1,
                        "occurredAt": "2026-05-02T12:00:00Z"}),
        ),
    ]
}

#[tokio::test]
async fn each_transaction_counts_once_and_invalid_ones_never() {
    let visits = UserVisits::new(ProfileMemoryStore::new(), settings());
    let report = visits.apply_batch(batch(), None).await;
    assert_eq!(report.count(VisitKind::Counted), 3);
    assert_eq!(report.count(VisitKind::Invalid), 1);
    assert!(report.failed_sequence_numbers().is_empty());
    let again = visits.apply_batch(batch(), None).await;
    assert_eq!(again.count(VisitKind::Duplicate), 3);
    let view = visits
        .profile_view(&user("u1"))
        .await
        .ok()
        .flatten()
        .expect("u1's profile");
    assert_eq!(view.visits, 2);
    assert_eq!(view.visits30, Visits30::TwoToThree);
    assert_eq!(view.mode, "delivery", "one each: the latest");
    assert_eq!(view.spend, Spend::From10To25);
    assert_eq!(visits.profile_view(&user("nobody")).await, Ok(None));
    assert_eq!(visits.profile_view(&user("#counted#x")).await, Ok(None));
}

#[tokio::test]
async fn concurrent_deliveries_count_once_and_different_transactions_all_count() {
    let store = ProfileMemoryStore::new();
    store.state().delay = Duration::from_millis(2);
    let visits = Arc::new(UserVisits::new(store, settings()));
    let deliveries = (0..8).map(|_| {
        let visits = Arc::clone(&visits);
        async move { visits.apply_batch(batch(), None).await }
    });
    let reports = futures::future::join_all(deliveries).await;
    for report in &reports {
        assert!(report.failed_sequence_numbers().is_empty(), "{report:?}");
    }
    let counted: usize = reports.iter().map(|r| r.count(VisitKind::Counted)).sum();
    assert_eq!(counted, 3);
    let others = (0..8u32).map(|n| {
        let visits = Arc::clone(&visits);
        async move {
            let id = format!("other-{n}");
            let record = transaction(n, &id, "u3", 1.0, "2026-05-03T10:00:00Z", "pickup");
            visits.apply_batch(vec![record], None).await
        }
    });
    for report in futures::future::join_all(others).await {
        assert!(report.failed_sequence_numbers().is_empty(), "{report:?}");
    }
    let state = visits.store().state();
    assert_eq!(state.profiles.get("u3").map(|p| p.profile.visits), Some(8));
    assert!(state.stale_writes > 0, "the races happened");
}

#[tokio::test]
async fn an_outage_fails_the_rest_and_a_refusal_is_not_retried() {
    let store = ProfileMemoryStore::new();
    store.state().down = Some(StoreError::Unavailable("down".into()));
    let visits = UserVisits::new(store, settings());
    let report = visits.apply_batch(batch(), None).await;
    assert!(report.store_down);
    // The invalid one follows u1's failed records: retried in order with them.
    assert_eq!(report.failed_sequence_numbers(), ["1", "2", "3", "4"]);
    assert!(report.records.iter().any(|record| matches!(
        record.outcome,
        Outcome::Failed(Failure::StoreDown) | Outcome::Failed(Failure::EarlierRecordOfKey)
    )));

    let store = ProfileMemoryStore::new();
    store.state().refused_users.insert("u2".into());
    let visits = UserVisits::new(store, settings());
    let report = visits
        .apply_batch(
            vec![
                transaction(1, "t1", "u2", 1.0, "2026-05-01T08:00:00Z", "pickup"),
                transaction(2, "t2", "#reserved", 1.0, "2026-05-01T08:00:00Z", "pickup"),
            ],
            None,
        )
        .await;
    assert_eq!(report.count(VisitKind::Refused), 2);
    assert!(report.failed_sequence_numbers().is_empty());
    let metrics = visit_metrics(&report, chrono::Utc::now());
    assert!(format!("{metrics:?}").contains("Refused"));
}
