//! The webhook service on in-memory fakes: validation codes, once per
//! delivery (replay, conflict, concurrency), interrupted deliveries.

use super::memory::MemoryWebhookStore;
use super::*;
use crate::fakes::MemoryCatalog;
use crate::ports::DeliveryState;
use chrono::Utc;
use serde_json::json;
use std::collections::BTreeSet;

fn catalog() -> MemoryCatalog {
    MemoryCatalog::of([
        json!({"id": "co-fries", "kind": "configOffer", "name": "Fries", "templateId": "tpl-fries",
               "rules": {"minimumSpend": 5}}),
        json!({"id": "tpl-fries", "kind": "offerTemplate", "configOfferId": "co-fries",
               "rules": [{"name": "minimumSpend", "type": "number"}]}),
    ])
}

fn settings() -> WebhookSettings {
    WebhookSettings {
        wait_for_holder: Duration::from_millis(300),
        poll_interval: Duration::from_millis(10),
        ..WebhookSettings::default()
    }
}

fn service(store: &MemoryWebhookStore) -> WebhookService<&MemoryWebhookStore, MemoryCatalog> {
    WebhookService::new(store, catalog(), settings())
}

fn row(user: &str, sort_key: &str) -> Value {
    json!({"userId": user, "sortKey": sort_key, "offerId": "co-fries",
           "startDate": "2024-01-01T00:00:00Z", "expiryDate": "2999-01-01T00:00:00+0000",
           "rules": {"minimumSpend": 3}})
}

fn body_of(assignments: &[Value]) -> Vec<u8> {
    json!({ "assignments": assignments })
        .to_string()
        .into_bytes()
}

async fn receive(
    service: &WebhookService<&MemoryWebhookStore, MemoryCatalog>,
    id: &str,
    assignments: &[Value],
) -> Result<Received, WebhookError> {
    let body = body_of(assignments);
    receive_signed(service, id, assignments, &signature_of(&body, 0)).await
}

/// The signature a sender makes of `body` at `t` (seconds from now).
fn signature_of(body: &[u8], t: i64) -> VerifiedSignature {
    let timestamp = Utc::now().timestamp() + t;
    VerifiedSignature {
        timestamp,
        mac_hex: crate::domain::webhook::signature_hex(b"secret", timestamp, body),
    }
}

/// The record a request left that claimed `d-1` with `body` and holds it
/// (or died holding it) until `lease_until`.
fn held_record(
    body: &[u8],
    lease_until: DateTime<Utc>,
    receipt: WebhookReceipt,
    written: BTreeSet<usize>,
) -> DeliveryRecord {
    DeliveryRecord {
        delivery_id: "d-1".into(),
        fingerprint: body_fingerprint(body),
        state: DeliveryState::InProgress {
            token: Uuid::new_v4(),
            lease_until,
        },
        receipt,
        written,
    }
}

/// The `assignmentId` of each row put, in order.
fn assignment_ids_put(store: &MemoryWebhookStore) -> Vec<Value> {
    store
        .state()
        .puts
        .iter()
        .map(|row| row["assignmentId"].clone())
        .collect()
}

async fn receive_signed(
    service: &WebhookService<&MemoryWebhookStore, MemoryCatalog>,
    id: &str,
    assignments: &[Value],
    signature: &VerifiedSignature,
) -> Result<Received, WebhookError> {
    let body = body_of(assignments);
    service
        .receive(
            Delivery {
                delivery_id: id,
                body: &body,
                assignments,
                signature,
            },
            Utc::now(),
        )
        .await
}

#[tokio::test]
async fn valid_assignments_become_rows_and_invalid_ones_are_reported_by_index() {
    let store = MemoryWebhookStore::default();
    let mut unknown = row("u1", "b");
    unknown["offerId"] = json!("co-nope");
    let mut missing_rule = row("u1", "c");
    missing_rule["rules"] = json!({});
    let mut past = row("u1", "d");
    past["startDate"] = json!("2019-01-01T00:00:00Z");
    past["expiryDate"] = json!("2020-01-01T00:00:00Z");
    let assignments = vec![
        row("u1", "a"),
        unknown,
        missing_rule,
        past,
        json!("not a row"),
        row("u1", "a"),
        row("u2", "a"),
    ];
    let received = receive(&service(&store), "d-1", &assignments)
        .await
        .expect("answered");
    assert!(!received.replayed);
    assert_eq!(received.receipt.accepted, 2);
    let codes: Vec<(usize, &str)> = received
        .receipt
        .rejected
        .iter()
        .map(|r| (r.index, r.code.as_str()))
        .collect();
    assert_eq!(
        codes,
        vec![
            (1, "unknown_offer"),
            (2, "missing_rule"),
            (3, "expired"),
            (4, "invalid_row"),
            (5, "invalid_row")
        ]
    );
    assert!(received.receipt.rejected[4]
        .message
        .contains("assignment 0"));
    let state = store.state();
    assert_eq!(state.puts.len(), 2);
    assert_eq!(state.deliveries["d-1"].state, DeliveryState::Done);
}

#[tokio::test]
async fn the_same_delivery_again_is_answered_alike_and_writes_nothing() {
    let store = MemoryWebhookStore::default();
    let service = service(&store);
    let assignments = vec![row("u1", "a"), json!(1)];
    let first = receive(&service, "d-1", &assignments).await.expect("first");
    let again = receive(&service, "d-1", &assignments).await.expect("again");
    assert!(again.replayed);
    assert_eq!(again.receipt, first.receipt);
    assert_eq!(store.state().puts.len(), 1);
    // Another body under the same id: a conflict, nothing written.
    assert_eq!(
        receive(&service, "d-1", &[row("u9", "z")]).await,
        Err(WebhookError::Conflict)
    );
    assert_eq!(store.state().puts.len(), 1);
}

#[tokio::test]
async fn concurrent_requests_of_one_delivery_write_once_and_share_the_answer() {
    let store = MemoryWebhookStore::default();
    let service = service(&store);
    let assignments: Vec<Value> = (0..30).map(|i| row("u1", &format!("s{i}"))).collect();
    let answers =
        futures::future::join_all((0..5).map(|_| receive(&service, "d-1", &assignments))).await;
    for answer in &answers {
        assert_eq!(answer.as_ref().map(|a| a.receipt.accepted), Ok(30));
    }
    assert_eq!(
        answers
            .iter()
            .filter(|a| matches!(a, Ok(r) if !r.replayed))
            .count(),
        1
    );
    assert_eq!(store.state().puts.len(), 30);
}

#[tokio::test]
async fn a_failed_write_is_released_and_the_retry_writes_only_the_rest() {
    let store = MemoryWebhookStore::default();
    let service = service(&store);
    let assignments: Vec<Value> = (0..4).map(|i| row("u1", &format!("s{i}"))).collect();
    store.state().failing_rows.insert(2);
    assert!(matches!(
        receive(&service, "d-1", &assignments).await,
        Err(WebhookError::Store(StoreError::Throttled(_)))
    ));
    assert_eq!(store.state().puts.len(), 3);
    store.state().failing_rows.clear();
    let retried = receive(&service, "d-1", &assignments).await.expect("retry");
    assert_eq!(retried.receipt.accepted, 4);
    let puts: Vec<Value> = store
        .state()
        .puts
        .iter()
        .map(|row| row["sortKey"].clone())
        .collect();
    assert_eq!(
        puts,
        vec![json!("s0"), json!("s1"), json!("s3"), json!("s2")]
    );
}

#[tokio::test]
async fn a_holder_still_within_its_lease_is_waited_for_then_answered_503() {
    let store = MemoryWebhookStore::default();
    let assignments = vec![row("u1", "a")];
    let body = body_of(&assignments);
    // A request that claimed the delivery and is still writing.
    store.state().deliveries.insert(
        "d-1".into(),
        held_record(
            &body,
            Utc::now() + chrono::Duration::seconds(60),
            WebhookReceipt {
                accepted: 1,
                rejected: vec![],
            },
            BTreeSet::new(),
        ),
    );
    assert_eq!(
        receive(&service(&store), "d-1", &assignments).await,
        Err(WebhookError::InProgress)
    );
    assert!(store.state().puts.is_empty());
}

#[tokio::test]
async fn an_interrupted_holder_is_taken_over_after_its_lease_with_the_first_answer() {
    let store = MemoryWebhookStore::default();
    let assignments = vec![row("u1", "a"), row("u1", "b"), row("u1", "c")];
    let body = body_of(&assignments);
    let first_answer = WebhookReceipt {
        accepted: 2,
        rejected: vec![RejectedAssignment {
            index: 1,
            code: "unknown_offer".into(),
            message: "as it was then".into(),
        }],
    };
    store.state().deliveries.insert(
        "d-1".into(),
        held_record(
            &body,
            Utc::now() - chrono::Duration::seconds(1),
            first_answer.clone(),
            BTreeSet::from([0]),
        ),
    );
    let received = receive(&service(&store), "d-1", &assignments)
        .await
        .expect("taken over");
    assert_eq!(received.receipt, first_answer);
    let state = store.state();
    let puts: Vec<&Value> = state.puts.iter().map(|row| &row["sortKey"]).collect();
    assert_eq!(
        puts,
        vec![&json!("c")],
        "neither the written row nor the rejected one"
    );
    assert_eq!(state.deliveries["d-1"].state, DeliveryState::Done);
}

#[tokio::test]
async fn a_row_dynamodb_refuses_is_a_rejection_and_the_delivery_is_done() {
    let store = MemoryWebhookStore::default();
    store.state().refused_rows.insert(1);
    let assignments = vec![row("u1", "a"), row("u1", "b")];
    let received = receive(&service(&store), "d-1", &assignments)
        .await
        .expect("answered");
    assert_eq!(received.receipt.accepted, 1);
    assert_eq!(received.receipt.rejected[0].index, 1);
    assert_eq!(received.receipt.rejected[0].code, "invalid_row");
    let again = receive(&service(&store), "d-1", &assignments)
        .await
        .expect("again");
    assert_eq!(
        again.receipt, received.receipt,
        "the final answer is stored"
    );
}

#[tokio::test]
async fn a_catalog_outage_is_transient_and_claims_nothing() {
    struct Down;
    impl CatalogReader for Down {
        async fn fetch_entries(
            &self,
            _ids: &[String],
        ) -> Result<HashMap<String, crate::domain::CatalogEntry>, StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
    }
    let store = MemoryWebhookStore::default();
    let service = WebhookService::new(&store, Down, settings());
    let assignments = vec![row("u1", "a")];
    let body = body_of(&assignments);
    let result = service
        .receive(
            Delivery {
                delivery_id: "d-1",
                body: &body,
                assignments: &assignments,
                signature: &signature_of(&body, 0),
            },
            Utc::now(),
        )
        .await;
    assert!(matches!(
        result,
        Err(WebhookError::Store(StoreError::Unavailable(_)))
    ));
    assert!(store.state().deliveries.is_empty());
}

#[tokio::test]
async fn a_signature_is_good_for_one_delivery_and_its_resends() {
    let store = MemoryWebhookStore::default();
    let service = service(&store);
    let assignments = vec![row("u1", "a"), row("u1", "b")];
    let body = body_of(&assignments);
    let first_signature = signature_of(&body, -10);
    let first = receive_signed(&service, "d-1", &assignments, &first_signature)
        .await
        .expect("accepted");
    assert!(!first.replayed);
    // The same delivery again, with its first signature or a new one: its answer.
    let new_signature = signature_of(&body, 0);
    for signature in [&first_signature, &new_signature] {
        let again = receive_signed(&service, "d-1", &assignments, signature)
            .await
            .expect("the same delivery");
        assert!(again.replayed);
        assert_eq!(again.receipt, first.receipt);
    }
    // Either signature under another delivery id: refused, nothing written.
    for signature in [&first_signature, &new_signature] {
        assert_eq!(
            receive_signed(&service, "d-2", &assignments, signature).await,
            Err(WebhookError::SignatureReused)
        );
    }
    let state = store.state();
    assert_eq!(state.puts.len(), 2);
    assert!(!state.deliveries.contains_key("d-2"), "nothing claimed");
    assert_eq!(state.signatures.len(), 2);
    assert!(state.signatures.values().all(|owner| owner == "d-1"));
}

#[tokio::test]
async fn a_refused_request_uses_no_signature() {
    let store = MemoryWebhookStore::default();
    let service = service(&store);
    receive(&service, "d-1", &[row("u1", "a")])
        .await
        .expect("accepted");
    // Another body under a used delivery id: 409, its signature stays unused.
    let other = vec![row("u2", "a")];
    let signature = signature_of(&body_of(&other), 0);
    assert_eq!(
        receive_signed(&service, "d-1", &other, &signature).await,
        Err(WebhookError::Conflict)
    );
    let accepted = receive_signed(&service, "d-2", &other, &signature)
        .await
        .expect("the signature was not used up by the 409");
    assert!(!accepted.replayed);
    assert_eq!(store.state().puts.len(), 2);
}

#[tokio::test]
async fn one_signature_under_five_delivery_ids_at_once_is_accepted_once() {
    let store = MemoryWebhookStore::default();
    let service = service(&store);
    let assignments: Vec<Value> = (0..20).map(|i| row("u1", &format!("s{i}"))).collect();
    let signature = signature_of(&body_of(&assignments), 0);
    let ids: Vec<String> = (0..5).map(|i| format!("d-{i}")).collect();
    let answers = futures::future::join_all(
        ids.iter()
            .map(|id| receive_signed(&service, id, &assignments, &signature)),
    )
    .await;
    assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 1);
    assert_eq!(
        answers
            .iter()
            .filter(|a| **a == Err(WebhookError::SignatureReused))
            .count(),
        4
    );
    let state = store.state();
    assert_eq!(state.puts.len(), 20, "rows written once");
    assert_eq!(state.deliveries.len(), 1);
}

#[tokio::test]
async fn each_row_carries_the_assignment_id_of_its_delivery_and_index() {
    let store = MemoryWebhookStore::default();
    let mut given = row("u1", "b");
    given["assignmentId"] = json!("the sender's own");
    let assignments = vec![row("u1", "a"), json!("not a row"), given];
    receive(&service(&store), "d-1", &assignments)
        .await
        .expect("accepted");
    assert_eq!(
        assignment_ids_put(&store),
        vec![
            json!(webhook_assignment_id("d-1", 0)),
            json!(webhook_assignment_id("d-1", 2))
        ],
        "set by the webhook, by position in the body"
    );
}

#[tokio::test]
async fn a_takeover_writes_the_same_assignment_ids() {
    let store = MemoryWebhookStore::default();
    let assignments = vec![row("u1", "a"), row("u1", "b")];
    let body = body_of(&assignments);
    // A holder that died without a word: nothing known written.
    store.state().deliveries.insert(
        "d-1".into(),
        held_record(
            &body,
            Utc::now() - chrono::Duration::seconds(1),
            WebhookReceipt {
                accepted: 2,
                rejected: vec![],
            },
            BTreeSet::new(),
        ),
    );
    receive(&service(&store), "d-1", &assignments)
        .await
        .expect("taken over");
    assert_eq!(
        assignment_ids_put(&store),
        vec![
            json!(webhook_assignment_id("d-1", 0)),
            json!(webhook_assignment_id("d-1", 1))
        ]
    );
}
