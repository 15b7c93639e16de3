//! The dispatcher's own logic, on in-memory fakes of its ports: grouping
//! and order, failures, the store-down short-circuit, the deadline guard,
//! one outcome per record. (SDK error classification is tested with SDK
//! mocks in `dynamo::fault_tests`; the real thing on DynamoDB Local in tests/.)

use super::memory::MemoryStore;
use super::*;
use crate::error::StoreError;
use crate::ports::{PriorRejection, RejectedRow};
use crate::stream::{IgnoredReason, Input};
use chrono::Utc;
use offers_domain::{CampaignId, CatalogEntry, ReasonCode};
use serde_json::{json, Map, Value};
use std::time::Duration;
use tokio::time::Instant;

fn settings(concurrency: usize) -> DispatchSettings {
    DispatchSettings {
        concurrency,
        deadline_margin: Duration::from_millis(400),
        retention: chrono::Duration::days(1),
    }
}

fn store() -> MemoryStore {
    let store = MemoryStore::new();
    for item in [
        json!({"id": "co-1", "kind": "configOffer", "name": "Coffee", "templateId": "tpl-1", "rules": {}}),
        json!({"id": "tpl-1", "kind": "offerTemplate", "configOfferId": "co-1", "rules": []}),
    ] {
        if let Value::Object(map) = item {
            let id = map["id"].as_str().unwrap_or_default().to_owned();
            let entry = CatalogEntry::from_json(&id, map);
            store.state().catalog.insert(id, entry);
        }
    }
    store
}

fn row(sort_key: &str, offer_id: &str) -> Map<String, Value> {
    let value = json!({
        "userId": "u1", "sortKey": sort_key, "offerId": offer_id,
        "startDate": "2024-01-01T00:00:00Z", "expiryDate": "2099-01-01T00:00:00Z"
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// An INSERT of `row` with sequence number `sequence`, its row also stored
/// as pending (as the table holds it).
fn insert(store: &MemoryStore, sequence: &str, row: Map<String, Value>) -> StreamInput {
    let sort_key = row["sortKey"].as_str().unwrap_or_default().to_owned();
    let image: serde_dynamo::Item = serde_dynamo::to_item(&row).unwrap_or_default();
    let record = InsertRecord::from_image(
        format!("e-{sequence}"),
        sequence.to_owned(),
        ("u1".into(), sort_key.clone()),
        image,
        Some(Utc::now()),
    );
    store
        .state()
        .pending
        .insert(("u1".into(), sort_key), record.row.clone());
    Input::Change(Box::new(record))
}

fn outcomes(report: &DispatchReport) -> Vec<(String, &'static str)> {
    report
        .records
        .iter()
        .map(|record| {
            (
                record.sequence_number.clone().unwrap_or_default(),
                record.outcome.name(),
            )
        })
        .collect()
}

#[tokio::test]
async fn records_of_one_key_run_in_stream_order_and_every_record_is_reported_in_place() {
    let store = store();
    let records = vec![
        insert(&store, "1", row("a", "co-1")),
        insert(&store, "2", row("b", "co-1")),
        insert(&store, "3", row("a", "co-nope")),
        Input::Ignored {
            event_id: None,
            sequence_number: Some("4".into()),
            reason: IgnoredReason::Remove,
        },
    ];
    let dispatcher = Dispatcher::new(&store, &store, settings(4));
    let report = dispatcher.apply_batch(records, None).await;
    assert_eq!(
        outcomes(&report),
        vec![
            ("1".into(), "dispatched"),
            ("2".into(), "dispatched"),
            ("3".into(), "rejected"),
            ("4".into(), "ignored"),
        ]
    );
    let writes = store.state().writes.clone();
    let of_a: Vec<&'static str> = writes
        .iter()
        .filter(|(key, _)| key == "a")
        .map(|(_, kind)| *kind)
        .collect();
    assert_eq!(of_a, vec!["offer", "rejection"], "key a in stream order");
    assert_eq!(
        store.state().catalog_reads.len(),
        3,
        "co-1, co-nope, tpl-1 once each"
    );
    assert!(store.state().pending.is_empty());
}

#[tokio::test]
async fn a_failure_fails_the_later_records_of_its_key_only() {
    let store = store();
    store
        .state()
        .failing_keys
        .insert("a".into(), StoreError::Throttled("hot key".into()));
    let records = vec![
        insert(&store, "1", row("a", "co-1")),
        insert(&store, "2", row("b", "co-1")),
        insert(&store, "3", row("a", "co-1")),
    ];
    let report = Dispatcher::new(&store, &store, settings(4))
        .apply_batch(records, None)
        .await;
    assert_eq!(report.failed_sequence_numbers(), vec!["1", "3"]);
    assert!(matches!(
        &report.records[0].outcome,
        Outcome::Failed(Failure::Store(StoreError::Throttled(_)))
    ));
    assert_eq!(
        report.records[2].outcome,
        Outcome::Failed(Failure::EarlierRecordOfKey),
        "not attempted after the first failed"
    );
    assert_eq!(report.records[1].outcome.kind(), DispatchKind::Dispatched);
    assert_eq!(
        store
            .state()
            .writes
            .iter()
            .filter(|(key, _)| key == "a")
            .count(),
        1
    );
    assert!(!report.store_down, "a hot key is no outage");
}

#[tokio::test]
async fn once_the_store_is_found_down_no_new_write_starts() {
    let store = store();
    store.state().down = Some(StoreError::Unavailable("down".into()));
    let records: Vec<StreamInput> = (1..=6)
        .map(|n| insert(&store, &n.to_string(), row(&format!("k{n}"), "co-1")))
        .collect();
    let report = Dispatcher::new(&store, &store, settings(1))
        .apply_batch(records, None)
        .await;
    assert_eq!(report.failed_sequence_numbers().len(), 6);
    assert_eq!(store.state().writes.len(), 1, "one write found it down");
    assert!(report.store_down);
    let not_started = report
        .records
        .iter()
        .filter(|record| record.outcome == Outcome::Failed(Failure::StoreDown))
        .count();
    assert_eq!(not_started, 5);
}

#[tokio::test]
async fn no_record_starts_near_the_deadline_and_a_slow_write_is_abandoned() {
    let store = store();
    let records = vec![insert(&store, "1", row("a", "co-1"))];
    let report = Dispatcher::new(&store, &store, settings(4))
        .apply_batch(records, Some(Instant::now()))
        .await;
    assert_eq!(
        report.records[0].outcome,
        Outcome::Failed(Failure::DeadlineNear)
    );
    assert!(store.state().writes.is_empty(), "nothing started");

    store.state().write_delay = Duration::from_secs(30);
    let records = vec![insert(&store, "2", row("b", "co-1"))];
    let started = Instant::now();
    let report = Dispatcher::new(&store, &store, settings(4))
        .apply_batch(records, Some(Instant::now() + Duration::from_secs(2)))
        .await;
    assert!(
        matches!(
            &report.records[0].outcome,
            Outcome::Failed(Failure::Store(StoreError::Timeout(_)))
        ),
        "{:?}",
        report.records[0].outcome
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "abandoned before the deadline"
    );
}

#[tokio::test]
async fn a_record_whose_other_outcome_is_stored_is_a_duplicate_naming_it() {
    let store = store();
    let Input::Change(record) = insert(&store, "1", row("a", "co-1")) else {
        panic!("an insert")
    };
    // An earlier delivery rejected it (the catalog then lacked co-1).
    store.state().rejections.insert(
        record.record_id,
        RejectedRow {
            rejection_id: record.record_id,
            record_id: record.record_id,
            code: ReasonCode::UnknownOffer,
            message: "no config offer".into(),
            rejected_at: Utc::now(),
            event_id: record.event_id.clone(),
            sequence_number: record.sequence_number.clone(),
        },
    );
    let report = Dispatcher::new(&store, &store, settings(4))
        .apply_batch(vec![Input::Change(record.clone())], None)
        .await;
    assert_eq!(
        report.records[0].outcome,
        Outcome::Done(DispatchOutcome::Duplicate {
            id: record.record_id,
            earlier: Earlier::Rejected
        })
    );
    assert!(
        store.state().offers.is_empty(),
        "no offer beside the rejection"
    );
    assert_eq!(
        store.state().priors,
        vec![("a".to_owned(), PriorRejection::Unknown)],
        "a record whose rejection was read takes the checked path"
    );
}

#[tokio::test]
async fn the_rejections_of_a_batchs_valid_rows_are_read_once_before_the_writes() {
    let store = store();
    let records = vec![
        insert(&store, "1", row("a", "co-1")),
        insert(&store, "2", row("b", "co-unknown")),
        insert(&store, "3", row("c", "co-1")),
    ];
    let ids: Vec<_> = records
        .iter()
        .filter_map(|record| match record {
            Input::Change(insert) => Some(insert.record_id),
            _ => None,
        })
        .collect();
    Dispatcher::new(&store, &store, settings(4))
        .apply_batch(records, None)
        .await;
    let state = store.state();
    assert_eq!(
        state.rejection_reads, ids,
        "one read, of the valid rows (beside the catalog's)"
    );
    let mut priors = state.priors.clone();
    priors.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        priors,
        vec![
            ("a".to_owned(), PriorRejection::NotFound),
            ("c".to_owned(), PriorRejection::NotFound)
        ]
    );
    assert_eq!(state.offers.len(), 2);
    assert_eq!(state.rejections.len(), 1);
}

#[tokio::test]
async fn offers_take_the_checked_path_when_the_rejections_cannot_be_read() {
    let store = store();
    let record = insert(&store, "1", row("a", "co-1"));
    store.state().failing_reads = true;
    let report = Dispatcher::new(&store, &store, settings(4))
        .apply_batch(vec![record], None)
        .await;
    assert_eq!(outcomes(&report), vec![("1".to_owned(), "dispatched")]);
    assert_eq!(
        store.state().priors,
        vec![("a".to_owned(), PriorRejection::Unknown)]
    );
}

#[tokio::test]
async fn a_refused_offer_is_rejected_and_a_catalog_outage_fails_only_what_needs_it() {
    let store = store();
    store.state().refused_offers.insert("a".into());
    let records = vec![insert(&store, "1", row("a", "co-1"))];
    let report = Dispatcher::new(&store, &store, settings(4))
        .apply_batch(records, None)
        .await;
    assert!(matches!(
        report.records[0].outcome,
        Outcome::Done(DispatchOutcome::Rejected {
            code: ReasonCode::InvalidRow,
            ..
        })
    ));
    let message = store
        .state()
        .rejections
        .values()
        .map(|r| r.message.clone())
        .collect::<Vec<_>>();
    assert!(
        message[0].starts_with("DynamoDB refused the offer"),
        "{message:?}"
    );
    assert!(!report.store_down, "a refusal is no outage");

    // Refused whatever is written (the rejection too): the record stays
    // failed, never lost, and it is not an outage either.
    let store = self::store();
    store.state().failing_keys.insert(
        "a".into(),
        StoreError::Refused("ValidationException".into()),
    );
    let records = vec![insert(&store, "1", row("a", "co-1"))];
    let report = Dispatcher::new(&store, &store, settings(4))
        .apply_batch(records, None)
        .await;
    assert!(matches!(
        report.records[0].outcome,
        Outcome::Failed(Failure::Store(StoreError::Refused(_)))
    ));
    assert!(!report.store_down);

    let store = self::store();
    store.state().catalog_down = Some(StoreError::Unavailable("catalog down".into()));
    let mut expired = row("b", "co-1");
    expired.insert("expiryDate".into(), json!("2020-01-01T00:00:00Z"));
    expired.insert("startDate".into(), json!("2019-01-01T00:00:00Z"));
    let records = vec![
        insert(&store, "1", row("a", "co-1")),
        insert(&store, "2", expired),
    ];
    let report = Dispatcher::new(&store, &store, settings(4))
        .apply_batch(records, None)
        .await;
    assert!(matches!(
        report.records[0].outcome,
        Outcome::Failed(Failure::Catalog(_))
    ));
    assert!(matches!(
        report.records[1].outcome,
        Outcome::Done(DispatchOutcome::Rejected {
            code: ReasonCode::Expired,
            ..
        })
    ));
}

#[tokio::test]
async fn a_row_replaced_before_its_insert_keeps_the_newer_row() {
    let store = store();
    let record = insert(&store, "1", row("a", "co-1"));
    let mut newer = row("a", "co-1");
    newer.insert("rank".into(), json!(5));
    let newer_item: serde_dynamo::Item = serde_dynamo::to_item(&newer).unwrap_or_default();
    store.state().pending.insert(
        ("u1".into(), "a".into()),
        crate::ports::RowCopy::Image(newer_item),
    );
    let report = Dispatcher::new(&store, &store, settings(4))
        .apply_batch(vec![record], None)
        .await;
    assert!(matches!(
        report.records[0].outcome,
        Outcome::Done(DispatchOutcome::Dispatched {
            pending_row_kept: true,
            ..
        })
    ));
    assert_eq!(store.state().pending.len(), 1);
}

fn assigned(sort_key: &str, offer_id: &str, assignment_id: &str) -> Map<String, Value> {
    let mut row = row(sort_key, offer_id);
    row.insert("assignmentId".into(), json!(assignment_id));
    row
}

fn names(report: &DispatchReport) -> Vec<&'static str> {
    report.records.iter().map(|r| r.outcome.name()).collect()
}

#[tokio::test]
async fn rows_of_one_assignment_make_one_offer_and_are_all_consumed() {
    let store = store();
    let dispatcher = Dispatcher::new(&store, &store, settings(4));
    let records = vec![
        insert(&store, "1", assigned("a", "co-1", "plan-1")),
        insert(&store, "2", assigned("b", "co-1", "plan-1")),
        insert(&store, "3", assigned("c", "co-1", "plan-2")),
    ];
    let report = dispatcher.apply_batch(records, None).await;
    let mut seen = names(&report);
    seen.sort_unstable();
    assert_eq!(seen, vec!["dispatched", "dispatched", "duplicate"]);
    let state = store.state();
    assert_eq!(state.offers.len(), 2, "one offer per assignment");
    let id = offers_domain::assignment_offer_id("u1", "plan-1");
    assert_eq!(
        state.assignment_ids.get(&id).map(String::as_str),
        Some("plan-1")
    );
    assert!(state.rejections.is_empty());
    assert!(state.pending.is_empty(), "the duplicate's row is consumed");
}

#[tokio::test]
async fn a_row_rewritten_after_its_assignment_was_dispatched_is_a_duplicate_never_a_rejection() {
    let store = store();
    let dispatcher = Dispatcher::new(&store, &store, settings(4));
    let first = dispatcher
        .apply_batch(vec![insert(&store, "1", assigned("a", "co-1", "x"))], None)
        .await;
    assert_eq!(names(&first), vec!["dispatched"]);
    // The same key written again (a rerun), and another key that would now
    // be rejected (its config offer is unknown): both consumed.
    let again = vec![
        insert(&store, "2", assigned("a", "co-1", "x")),
        insert(&store, "3", assigned("b", "co-nope", "x")),
    ];
    let report = dispatcher.apply_batch(again, None).await;
    assert_eq!(names(&report), vec!["duplicate", "duplicate"]);
    let state = store.state();
    assert_eq!(state.offers.len(), 1);
    assert!(state.rejections.is_empty());
    assert!(state.pending.is_empty());
}

#[tokio::test]
async fn a_rejected_row_leaves_its_assignment_open_and_rows_without_one_keep_todays_rule() {
    let store = store();
    let dispatcher = Dispatcher::new(&store, &store, settings(4));
    let records = vec![insert(&store, "1", assigned("a", "co-nope", "x"))];
    let rejected = dispatcher.apply_batch(records, None).await;
    assert_eq!(names(&rejected), vec!["rejected"]);
    let fixed = vec![insert(&store, "2", assigned("a", "co-1", "x"))];
    let report = dispatcher.apply_batch(fixed, None).await;
    assert_eq!(names(&report), vec!["dispatched"]);
    // The rejected record delivered again stays a rejection (its outcome).
    // Without an assignmentId, a key inserted again is a new assignment.
    let plain = vec![insert(&store, "3", row("p", "co-1"))];
    dispatcher.apply_batch(plain, None).await;
    let plain = vec![insert(&store, "4", row("p", "co-1"))];
    assert_eq!(
        names(&dispatcher.apply_batch(plain, None).await),
        vec!["dispatched"]
    );
    assert_eq!(store.state().offers.len(), 3);
    assert_eq!(store.state().rejections.len(), 1);
}

#[tokio::test]
async fn rows_of_one_assignment_rejected_again_keep_one_rejection_and_are_consumed() {
    let store = store();
    let dispatcher = Dispatcher::new(&store, &store, settings(4));
    let first = insert(&store, "1", assigned("a", "co-nope", "x"));
    let Input::Change(first_record) = &first else {
        panic!("an insert")
    };
    let first_record = first_record.clone();
    let rejected = dispatcher.apply_batch(vec![first], None).await;
    assert_eq!(names(&rejected), vec!["rejected"]);
    // The same row written again (a writer's retry, a rerun), and another
    // key of the assignment, both invalid too: consumed as duplicates of the
    // assignment's rejection, in one batch as in two.
    let again = vec![
        insert(&store, "2", assigned("a", "co-nope", "x")),
        insert(&store, "3", assigned("b", "co-nope", "x")),
    ];
    let report = dispatcher.apply_batch(again, None).await;
    assert_eq!(names(&report), vec!["duplicate", "duplicate"]);
    {
        let state = store.state();
        assert_eq!(state.rejections.len(), 1, "one rejection per assignment");
        let id = offers_domain::assignment_offer_id("u1", "x");
        let kept = state.rejections.get(id.as_uuid()).map(|r| r.record_id);
        assert_eq!(kept, Some(first_record.record_id), "the first record's");
        assert!(state.pending.is_empty(), "the rewritten rows are consumed");
    }
    // The first record delivered again after the catalog gained its offer:
    // still its rejection, no offer.
    let report = dispatcher
        .apply_batch(vec![Input::Change(first_record.clone())], None)
        .await;
    assert_eq!(names(&report), vec!["duplicate"]);
    assert!(store.state().offers.is_empty());
}

#[tokio::test]
async fn an_assignment_id_of_0_or_129_characters_is_invalid_row() {
    let store = store();
    let dispatcher = Dispatcher::new(&store, &store, settings(4));
    let records = vec![
        insert(&store, "1", assigned("a", "co-1", "")),
        insert(&store, "2", assigned("b", "co-1", &"x".repeat(129))),
    ];
    let report = dispatcher.apply_batch(records, None).await;
    assert_eq!(names(&report), vec!["rejected", "rejected"]);
    let state = store.state();
    assert!(state.offers.is_empty());
    assert!(state
        .rejections
        .values()
        .all(|rejection| rejection.code == ReasonCode::InvalidRow
            && rejection.message.contains("assignmentId")));
}

mod offers_budgets {
    use super::*;

    /// A row of campaign `camp-b`.
    fn campaign_row(sort_key: &str) -> Map<String, Value> {
        let mut row = row(sort_key, "co-1");
        row.insert("campaignId".into(), json!("camp-b"));
        row
    }

    fn budgeted(store: &MemoryStore, limit: Option<u64>) {
        store
            .state()
            .offers_budgets
            .insert(CampaignId::literal("camp-b"), (limit, 0));
    }

    fn used(store: &MemoryStore) -> u64 {
        store.state().offers_budgets["camp-b"].1
    }

    fn inserts(store: &MemoryStore, count: usize) -> Vec<StreamInput> {
        (0..count)
            .map(|n| {
                insert(
                    store,
                    &format!("{:03}", n + 1),
                    campaign_row(&format!("k{n}")),
                )
            })
            .collect()
    }

    fn kinds(report: &DispatchReport) -> Vec<&'static str> {
        outcomes(report).into_iter().map(|(_, kind)| kind).collect()
    }

    #[tokio::test]
    async fn rows_past_the_limit_are_rejected_and_replays_use_nothing() {
        let store = store();
        budgeted(&store, Some(2));
        let records = inserts(&store, 3);
        let dispatcher = Dispatcher::with_budgets(&store, &store, &store, settings(4));
        let report = dispatcher.apply_batch(records.clone(), None).await;
        let mut got = kinds(&report);
        got.sort();
        assert_eq!(got, vec!["dispatched", "dispatched", "rejected"]);
        assert_eq!(used(&store), 2);
        let rejected: Vec<ReasonCode> = store.state().rejections.values().map(|r| r.code).collect();
        assert_eq!(rejected, vec![ReasonCode::BudgetExhausted]);
        assert_eq!(
            report.summary.budgets,
            vec![(
                CampaignId::literal("camp-b"),
                crate::ports::OffersBudgetUse { limit: 2, used: 2 }
            )],
            "the budget as it stands, for the metric"
        );

        // Replayed with room made meanwhile: each record keeps its outcome.
        store
            .state()
            .offers_budgets
            .insert(CampaignId::literal("camp-b"), (Some(10), 2));
        for _ in 0..2 {
            let again = dispatcher.apply_batch(records.clone(), None).await;
            assert_eq!(kinds(&again), vec!["duplicate"; 3]);
            assert!(again.summary.budgets.is_empty(), "nothing used");
        }
        assert_eq!(used(&store), 2);
        assert_eq!(store.state().offers.len(), 2);
    }

    #[tokio::test]
    async fn rows_without_a_budget_keep_the_plain_write() {
        let store = store();
        let records = vec![
            insert(&store, "001", campaign_row("k1")),
            insert(&store, "002", row("k2", "co-1")),
        ];
        let dispatcher = Dispatcher::with_budgets(&store, &store, &store, settings(2));
        let report = dispatcher.apply_batch(records, None).await;
        assert_eq!(kinds(&report), vec!["dispatched"; 2]);
        let writes: Vec<&str> = store.state().writes.iter().map(|(_, kind)| *kind).collect();
        assert_eq!(writes, vec!["offer"; 2]);
    }

    #[tokio::test]
    async fn a_limit_removed_since_the_list_was_read_is_no_budget() {
        let store = store();
        budgeted(&store, None);
        store.state().listed_offers_budgets =
            Some([(CampaignId::literal("camp-b"), Some(5))].into());
        let dispatcher = Dispatcher::with_budgets(&store, &store, &store, settings(1));
        let report = dispatcher.apply_batch(inserts(&store, 1), None).await;
        assert_eq!(kinds(&report), vec!["dispatched"]);
        let writes: Vec<&str> = store.state().writes.iter().map(|(_, kind)| *kind).collect();
        assert_eq!(writes, vec!["budgeted offer", "offer"]);
        assert_eq!(store.state().budget_reads, vec!["camp-b"]);
        assert_eq!(used(&store), 0);
    }

    #[tokio::test]
    async fn a_campaign_put_after_the_list_was_read_has_its_budget_at_once() {
        let store = store();
        budgeted(&store, Some(1));
        // The list (cached earlier) does not know the campaign: read on its own.
        store.state().listed_offers_budgets = Some(std::collections::HashMap::new());
        let dispatcher = Dispatcher::with_budgets(&store, &store, &store, settings(1));
        let report = dispatcher.apply_batch(inserts(&store, 2), None).await;
        assert_eq!(kinds(&report), vec!["dispatched", "rejected"]);
        assert_eq!(used(&store), 1);
        assert_eq!(
            store.state().budget_reads.first().map(String::as_str),
            Some("camp-b")
        );
        // A campaign without a definition is read too, and is no budget.
        let plain = vec![insert(&store, "010", {
            let mut row = row("k9", "co-1");
            row.insert("campaignId".into(), json!("camp-none"));
            row
        })];
        let report = dispatcher.apply_batch(plain, None).await;
        assert_eq!(kinds(&report), vec!["dispatched"]);
        assert!(store.state().budget_reads.contains(&"camp-none".to_owned()));
    }

    #[tokio::test]
    async fn unreadable_budgets_fail_only_the_rows_of_campaigns() {
        let store = store();
        budgeted(&store, Some(5));
        store.state().budgets_down = true;
        let records = vec![
            insert(&store, "001", campaign_row("k1")),
            insert(&store, "002", row("k2", "co-1")),
        ];
        let dispatcher = Dispatcher::with_budgets(&store, &store, &store, settings(2));
        let report = dispatcher.apply_batch(records, None).await;
        assert_eq!(kinds(&report), vec!["failed", "dispatched"]);
        assert_eq!(report.failed_sequence_numbers(), vec!["001".to_owned()]);
        assert_eq!(used(&store), 0);
    }
}

/// An INSERT as `insert` makes it, created at `created_at`.
fn insert_created(
    store: &MemoryStore,
    sequence: &str,
    row: Map<String, Value>,
    created_at: chrono::DateTime<Utc>,
) -> StreamInput {
    match insert(store, sequence, row) {
        Input::Change(mut record) => {
            record.created_at = Some(created_at);
            Input::Change(record)
        }
        other => other,
    }
}

#[tokio::test]
async fn without_a_mark_every_rejection_is_read_and_the_mark_is_set_past_now() {
    let store = store();
    let records = vec![
        insert(&store, "1", row("a", "co-1")),
        insert(&store, "2", row("b", "co-1")),
    ];
    let before = Utc::now();
    Dispatcher::new(&store, &store, settings(4))
        .apply_batch(records, None)
        .await;
    let state = store.state();
    assert_eq!(state.rejection_reads.len(), 2, "both read");
    let mark = state.rejections_mark.expect("the mark is set");
    assert!(
        mark >= before + chrono::Duration::from_std(REJECTIONS_MARK_MARGIN).unwrap_or_default(),
        "past every record created until now: {mark}"
    );
}

#[tokio::test]
async fn offers_created_after_the_mark_take_the_common_path_without_a_read() {
    let store = store();
    let mark = Utc::now() - chrono::Duration::hours(1);
    store.state().rejections_mark = Some(mark);
    let records = vec![
        insert_created(
            &store,
            "1",
            row("a", "co-1"),
            mark + chrono::Duration::seconds(1),
        ),
        // Created at the mark itself: it may have a rejection, so it is read.
        insert_created(&store, "2", row("b", "co-1"), mark),
        insert_created(
            &store,
            "3",
            row("c", "co-1"),
            mark - chrono::Duration::seconds(1),
        ),
    ];
    let Some(Input::Change(b)) = records.get(1).cloned() else {
        panic!("an insert")
    };
    let Some(Input::Change(c)) = records.get(2).cloned() else {
        panic!("an insert")
    };
    let report = Dispatcher::new(&store, &store, settings(4))
        .apply_batch(records, None)
        .await;
    assert_eq!(
        outcomes(&report),
        vec![
            ("1".to_owned(), "dispatched"),
            ("2".to_owned(), "dispatched"),
            ("3".to_owned(), "dispatched")
        ]
    );
    let state = store.state();
    assert_eq!(state.mark_reads, 1, "one read of the mark");
    assert_eq!(
        state.rejection_reads,
        vec![b.record_id, c.record_id],
        "only the records not created after the mark"
    );
    let mut priors = state.priors.clone();
    priors.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(priors
        .iter()
        .all(|(_, prior)| *prior == PriorRejection::NotFound));
    assert_eq!(state.rejections_mark, Some(mark), "offers leave the mark");
}

#[tokio::test]
async fn a_rejection_raises_the_mark_first_and_its_replay_reads_it_after_a_catalog_change() {
    let store = store();
    let mark = Utc::now() - chrono::Duration::hours(1);
    store.state().rejections_mark = Some(mark);
    let created = |seconds| mark + chrono::Duration::seconds(seconds);
    let records = vec![
        insert_created(&store, "1", row("a", "co-later"), created(10)),
        insert_created(&store, "2", row("b", "co-1"), created(20)),
        insert_created(&store, "3", row("c", "co-later"), created(30)),
        insert_created(&store, "4", row("d", "co-1"), created(40)),
    ];
    let dispatcher = Dispatcher::new(&store, &store, settings(4));
    let report = dispatcher.apply_batch(records.clone(), None).await;
    assert_eq!(
        outcomes(&report),
        vec![
            ("1".to_owned(), "rejected"),
            ("2".to_owned(), "dispatched"),
            ("3".to_owned(), "rejected"),
            ("4".to_owned(), "dispatched")
        ]
    );
    {
        let state = store.state();
        assert_eq!(
            state.mark_raises.len(),
            1,
            "one raise for the batch's rejections"
        );
        let first_rejection = state
            .writes
            .iter()
            .position(|(_, kind)| *kind == "rejection")
            .expect("rejections written");
        assert!(
            state.mark_raises[0] <= first_rejection,
            "raised before any rejection is written: {:?}, {:?}",
            state.mark_raises,
            state.writes
        );
        assert_eq!(
            state.rejections_mark,
            Some(created(30)),
            "up to the latest rejected record"
        );
    }

    // The offer published; the batch delivered again: the rejected records
    // were created at or before the mark, so their rejections are read.
    for item in [
        json!({"id": "co-later", "kind": "configOffer", "name": "Later", "templateId": "tpl-later", "rules": {}}),
        json!({"id": "tpl-later", "kind": "offerTemplate", "configOfferId": "co-later", "rules": []}),
    ] {
        if let Value::Object(map) = item {
            let id = map["id"].as_str().unwrap_or_default().to_owned();
            let entry = CatalogEntry::from_json(&id, map);
            store.state().catalog.insert(id, entry);
        }
    }
    store.state().rejection_reads.clear();
    let again = Dispatcher::new(&store, &store, settings(4))
        .apply_batch(records, None)
        .await;
    assert_eq!(
        outcomes(&again),
        vec![
            ("1".to_owned(), "duplicate"),
            ("2".to_owned(), "duplicate"),
            ("3".to_owned(), "duplicate"),
            ("4".to_owned(), "duplicate")
        ]
    );
    for record in [&again.records[0], &again.records[2]] {
        assert!(
            matches!(
                record.outcome,
                Outcome::Done(DispatchOutcome::Duplicate {
                    earlier: Earlier::Rejected,
                    ..
                })
            ),
            "{:?}",
            record.outcome
        );
    }
    let state = store.state();
    assert_eq!(state.offers.len(), 2, "no offer of a rejected record");
    assert_eq!(state.rejections.len(), 2);
    assert_eq!(
        state.rejection_reads.len(),
        3,
        "the two rejected records and b (created before c, the mark), not d"
    );
}

#[tokio::test]
async fn a_mark_that_cannot_be_raised_fails_the_rejection_and_writes_nothing_of_it() {
    let store = store();
    store.state().rejections_mark = Some(Utc::now() - chrono::Duration::hours(1));
    store.state().mark_down = true;
    let records = vec![
        insert(&store, "1", row("a", "co-nope")),
        insert(&store, "2", row("b", "co-1")),
    ];
    let report = Dispatcher::new(&store, &store, settings(4))
        .apply_batch(records, None)
        .await;
    assert_eq!(report.failed_sequence_numbers(), vec!["1"]);
    assert_eq!(outcomes(&report)[1], ("2".to_owned(), "dispatched"));
    let state = store.state();
    assert!(state.rejections.is_empty(), "no rejection without the mark");
    assert_eq!(state.pending.len(), 1, "its row left for the retry");
}
