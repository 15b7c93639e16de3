//! The service on the in-memory fake: the rules of contract section 8.

use super::memory::ChallengeMemoryStore;
use super::report::ProgressKind;
use super::*;
use crate::domain::PersonalizedOfferId;
use crate::error::StoreError;
use crate::stream::runner::{Failure, Outcome};
use chrono::{DateTime, Utc};
use futures::future::join_all;
use offers_domain::challenge::{parse_challenge_status, ChallengeType};
use offers_domain::dates::parse_timestamp;
use offers_domain::{Challenge, PersonalizedOffer, ReasonCode};
use serde_json::{json, Value};
use std::time::Duration;

const USER: &str = "us-east-1:user-1";

fn at(text: &str) -> DateTime<Utc> {
    parse_timestamp(text).unwrap_or_default()
}

fn challenge_offer(user: &str, goals: usize) -> PersonalizedOffer {
    let goals: serde_json::Map<String, Value> = (1..=goals)
        .map(|n| {
            (
                format!("visit{n}"),
                json!({"condition": {"total_cost": "1"}}),
            )
        })
        .collect();
    let status = json!({"reward": {"value": "100"}, "goals": goals}).to_string();
    let parsed = parse_challenge_status(&status).expect("valid challenge");
    PersonalizedOffer::builder()
        .user(user)
        .valid(at("2024-01-01T00:00:00Z"), at("2099-01-01T00:00:00Z"))
        .rank(0)
        .challenge(Challenge::new(ChallengeType::Frequency, None, parsed))
        .created_at(at("2024-01-01T00:00:00Z"))
        .build()
}

fn record(sequence: u32, image: Value) -> TransactionInput {
    let attributes = image.as_object().cloned().unwrap_or_default();
    TransactionInput::Change(Box::new(TransactionRecord::from_attributes(
        format!("event-{sequence}"),
        format!("{sequence:021}"),
        &attributes,
    )))
}

fn transaction(sequence: u32, id: &str, cost: f64, occurred_at: &str) -> TransactionInput {
    record(
        sequence,
        json!({"transactionId": id, "userId": USER, "totalCost": cost, "occurredAt": occurred_at}),
    )
}

fn service(store: ChallengeMemoryStore) -> ChallengeProgress<ChallengeMemoryStore> {
    ChallengeProgress::new(
        store,
        ProgressSettings {
            concurrency: 4,
            deadline_margin: Duration::from_millis(0),
        },
    )
}

fn with_offers(offers: &[&PersonalizedOffer]) -> ChallengeProgress<ChallengeMemoryStore> {
    let store = ChallengeMemoryStore::new();
    for offer in offers {
        store
            .state()
            .offers
            .insert(offer.personalized_offer_id, (*offer).clone());
    }
    service(store)
}

fn stored_challenge(
    progress: &ChallengeProgress<ChallengeMemoryStore>,
    id: PersonalizedOfferId,
) -> Challenge {
    progress
        .store()
        .offer(id)
        .and_then(|offer| offer.challenge)
        .expect("challenge")
}

fn kinds(report: &ProgressReport) -> Vec<ProgressKind> {
    report.records.iter().map(|r| r.outcome.kind()).collect()
}

#[tokio::test]
async fn two_visits_complete_the_challenge_and_a_third_changes_nothing() {
    let offer = challenge_offer(USER, 2);
    let progress = with_offers(&[&offer]);
    let report = progress
        .apply_batch(
            vec![
                transaction(1, "t-1", 5.0, "2024-06-01T10:00:00+02:00"),
                transaction(2, "t-2", 1.0, "2024-06-02T10:00:00Z"),
                transaction(3, "t-3", 9.0, "2024-06-03T10:00:00Z"),
            ],
            None,
        )
        .await;
    assert_eq!(
        kinds(&report),
        [
            ProgressKind::Counted,
            ProgressKind::Counted,
            ProgressKind::Unchanged
        ]
    );
    assert_eq!(goals_and_completions(&report), (2, 1));
    let challenge = stored_challenge(&progress, offer.personalized_offer_id);
    assert_eq!(
        challenge.goals["visit1"].transaction_id.as_deref(),
        Some("t-1")
    );
    assert_eq!(
        challenge.goals["visit1"].met_at,
        Some(at("2024-06-01T08:00:00Z"))
    );
    assert_eq!(
        challenge.goals["visit2"].transaction_id.as_deref(),
        Some("t-2")
    );
    assert_eq!(challenge.completed_at, Some(at("2024-06-02T10:00:00Z")));
    assert!(challenge.reward_granted_at().is_some());
    assert!(report.failed_sequence_numbers().is_empty());
}

#[tokio::test]
async fn a_replayed_transaction_counts_once() {
    let offer = challenge_offer(USER, 3);
    let progress = with_offers(&[&offer]);
    let first = progress
        .apply_batch(
            vec![transaction(1, "t-1", 5.0, "2024-06-01T10:00:00Z")],
            None,
        )
        .await;
    assert_eq!(kinds(&first), [ProgressKind::Counted]);
    // The same transaction again: as a redelivery of the record, and as a
    // second record of the same transaction id (the backend wrote it twice).
    let again = progress
        .apply_batch(
            vec![
                transaction(1, "t-1", 5.0, "2024-06-01T10:00:00Z"),
                transaction(7, "t-1", 5.0, "2024-06-01T10:00:00Z"),
            ],
            None,
        )
        .await;
    assert_eq!(
        kinds(&again),
        [ProgressKind::Duplicate, ProgressKind::Duplicate]
    );
    assert_eq!(
        stored_challenge(&progress, offer.personalized_offer_id).met_count(),
        1
    );
}

#[tokio::test]
async fn the_same_transaction_delivered_at_once_counts_once() {
    let offer = challenge_offer(USER, 3);
    let progress = with_offers(&[&offer]);
    progress.store().state().delay = Duration::from_millis(5);
    let deliveries = (0..8).map(|_| {
        progress.apply_batch(
            vec![transaction(1, "t-1", 5.0, "2024-06-01T10:00:00Z")],
            None,
        )
    });
    let reports = join_all(deliveries).await;
    let counted = reports
        .iter()
        .filter(|report| report.count(ProgressKind::Counted) == 1)
        .count();
    assert_eq!(
        counted, 1,
        "one delivery counts, the others find it counted"
    );
    assert_eq!(
        stored_challenge(&progress, offer.personalized_offer_id).met_count(),
        1
    );
    assert!(
        progress.store().state().stale_writes >= 1,
        "the race was real"
    );
}

#[tokio::test]
async fn two_transactions_of_one_user_at_once_both_count() {
    let offer = challenge_offer(USER, 2);
    let progress = with_offers(&[&offer]);
    progress.store().state().delay = Duration::from_millis(5);
    let (one, two) = tokio::join!(
        progress.apply_batch(
            vec![transaction(1, "t-1", 5.0, "2024-06-01T10:00:00Z")],
            None
        ),
        progress.apply_batch(
            vec![transaction(2, "t-2", 5.0, "2024-06-01T11:00:00Z")],
            None
        ),
    );
    assert_eq!(kinds(&one), [ProgressKind::Counted]);
    assert_eq!(kinds(&two), [ProgressKind::Counted]);
    let challenge = stored_challenge(&progress, offer.personalized_offer_id);
    assert_eq!(challenge.met_count(), 2);
    assert!(
        challenge.completed_at.is_some(),
        "the second write completed it"
    );
    assert!(
        progress.store().state().stale_writes >= 1,
        "they raced for visit1"
    );
}

#[tokio::test]
async fn only_challenges_active_at_the_transaction_move() {
    let active = challenge_offer(USER, 2);
    let mut revoked = challenge_offer(USER, 2);
    revoked.revoked_at = Some(at("2024-02-01T00:00:00Z"));
    let mut later = challenge_offer(USER, 2);
    later.start_date = at("2024-07-01T00:00:00Z");
    let mut expired = challenge_offer(USER, 2);
    expired.expiry_date = at("2024-05-01T00:00:00Z");
    let mut other_user = challenge_offer("someone-else", 2);
    other_user.offer_id = "co-2".into();
    let progress = with_offers(&[&active, &revoked, &later, &expired, &other_user]);
    let report = progress
        .apply_batch(
            vec![transaction(1, "t-1", 5.0, "2024-06-01T10:00:00Z")],
            None,
        )
        .await;
    assert_eq!(goals_and_completions(&report), (1, 0));
    for (offer, moved) in [
        (&active, 1),
        (&revoked, 0),
        (&later, 0),
        (&expired, 0),
        (&other_user, 0),
    ] {
        assert_eq!(
            stored_challenge(&progress, offer.personalized_offer_id).met_count(),
            moved
        );
    }
}

#[tokio::test]
async fn below_the_condition_or_without_a_challenge_nothing_counts() {
    let offer = challenge_offer(USER, 2);
    let progress = with_offers(&[&offer]);
    let report = progress
        .apply_batch(
            vec![
                transaction(1, "t-1", 0.5, "2024-06-01T10:00:00Z"),
                record(
                    2,
                    json!({"transactionId": "t-2", "userId": "nobody", "totalCost": 3,
                                  "occurredAt": "2024-06-01T10:00:00Z"}),
                ),
            ],
            None,
        )
        .await;
    assert_eq!(
        kinds(&report),
        [ProgressKind::Unchanged, ProgressKind::Unchanged]
    );
    assert_eq!(
        stored_challenge(&progress, offer.personalized_offer_id).met_count(),
        0
    );
}

#[tokio::test]
async fn invalid_transactions_are_rejected_once_between_valid_neighbours() {
    let offer = challenge_offer(USER, 2);
    let progress = with_offers(&[&offer]);
    let batch = || {
        vec![
            transaction(1, "t-1", 5.0, "2024-06-01T10:00:00Z"),
            record(
                2,
                json!({"transactionId": "bad-1", "userId": USER, "totalCost": -4,
                              "occurredAt": "2024-06-01T10:00:00Z"}),
            ),
            record(3, json!({"transactionId": "bad-2", "totalCost": 4})),
            transaction(4, "t-2", 5.0, "2024-06-01T12:00:00Z"),
        ]
    };
    let report = progress.apply_batch(batch(), None).await;
    assert_eq!(
        kinds(&report),
        [
            ProgressKind::Counted,
            ProgressKind::Rejected,
            ProgressKind::Rejected,
            ProgressKind::Counted
        ]
    );
    {
        let state = progress.store().state();
        assert_eq!(state.rejections.len(), 2);
        let partitions: Vec<&str> = state
            .rejections
            .values()
            .map(|r| r.user_id.as_str())
            .collect();
        assert!(partitions.contains(&USER));
        assert!(partitions.contains(&NO_USER_PARTITION));
        assert!(state
            .rejections
            .values()
            .all(|r| r.code == ReasonCode::InvalidTransaction && !r.image.is_empty()));
    }
    let again = progress.apply_batch(batch(), None).await;
    assert_eq!(
        kinds(&again),
        [
            ProgressKind::Duplicate,
            ProgressKind::Duplicate,
            ProgressKind::Duplicate,
            ProgressKind::Duplicate
        ]
    );
    assert_eq!(progress.store().state().rejections.len(), 2);
    assert!(again.failed_sequence_numbers().is_empty());
}

#[tokio::test]
async fn an_outage_fails_the_records_and_a_refusal_is_a_rejection() {
    let offer = challenge_offer(USER, 2);
    let progress = with_offers(&[&offer]);
    progress.store().state().down = Some(StoreError::Unavailable("down".into()));
    let report = progress
        .apply_batch(
            vec![
                transaction(1, "t-1", 5.0, "2024-06-01T10:00:00Z"),
                transaction(2, "t-2", 5.0, "2024-06-01T11:00:00Z"),
                record(3, json!({"transactionId": "x"})),
            ],
            None,
        )
        .await;
    assert_eq!(report.count(ProgressKind::Failed), 3);
    assert_eq!(report.failed_sequence_numbers().len(), 3);
    assert!(report.store_down);
    assert_eq!(
        stored_challenge(&progress, offer.personalized_offer_id).met_count(),
        0
    );

    progress.store().state().down = None;
    progress.store().state().refused_users.insert(USER.into());
    let refused = progress
        .apply_batch(
            vec![transaction(1, "t-1", 5.0, "2024-06-01T10:00:00Z")],
            None,
        )
        .await;
    assert_eq!(kinds(&refused), [ProgressKind::Rejected]);
    assert!(refused.failed_sequence_numbers().is_empty());
}

#[tokio::test]
async fn after_a_failure_the_users_later_records_fail_in_order() {
    let offer = challenge_offer(USER, 3);
    let progress = with_offers(&[&offer]);
    progress
        .store()
        .state()
        .failing_users
        .insert(USER.into(), StoreError::Throttled("hot".into()));
    let report = progress
        .apply_batch(
            vec![
                transaction(1, "t-1", 5.0, "2024-06-01T10:00:00Z"),
                transaction(2, "t-2", 5.0, "2024-06-01T11:00:00Z"),
                record(
                    3,
                    json!({"transactionId": "t-3", "userId": "other", "totalCost": 1,
                                  "occurredAt": "2024-06-01T10:00:00Z"}),
                ),
            ],
            None,
        )
        .await;
    assert_eq!(
        kinds(&report),
        [
            ProgressKind::Failed,
            ProgressKind::Failed,
            ProgressKind::Unchanged
        ]
    );
    assert!(matches!(
        report.records[1].outcome,
        Outcome::Failed(Failure::EarlierRecordOfKey)
    ));
}
