//! Property tests (fuzzing on stable Rust): the parsers of untrusted input
//! never panic, whatever they are given, and what they accept keeps its
//! invariants. CI runs proptest's default number of cases; a longer run:
//! `PROPTEST_CASES=200000 cargo test -p offers-shared --lib properties`.
//! A failing case is saved under `proptest-regressions/` and replayed first
//! from then on: commit it, and it stays a regression test.

use super::assignment::{parse_pending_row, parse_support_request, MAX_ABS_RANK};
use super::challenge::{parse_challenge_status, MAX_GOALS};
use super::dates::{format_timestamp, parse_timestamp};
use super::offer_event::parse_offer_event;
use super::redemption::{parse_redemption_request, MAX_ORDER_ID_CHARS};
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn now() -> DateTime<Utc> {
    parse_timestamp("2026-06-01T00:00:00Z").unwrap_or_default()
}

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
        timestamp_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Text that is often nearly a timestamp: the shapes the parser must tell apart.
fn timestamp_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:?[0-9]{2})?",
        "20[2-9][0-9]-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](Z|\\+0000|\\+00:00)",
        ".{0,30}",
    ]
}

const ROW_FIELDS: [&str; 16] = [
    "userId",
    "sortKey",
    "offerId",
    "campaignId",
    "ttl",
    "startDate",
    "expiryDate",
    "rank",
    "challengeType",
    "challengeStatus",
    "frequency",
    "taskId",
    "templateId",
    "rules",
    "reason",
    "unexpected",
];

/// A map of row attributes: each field absent, plausible, or anything at all.
fn any_row() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((0..ROW_FIELDS.len(), any_json(), any::<bool>()), 0..16).prop_map(
        |fields| {
            let mut row = Map::new();
            for (index, value, plausible) in fields {
                let name = ROW_FIELDS[index];
                let value = match (name, plausible) {
                    ("challengeType", true) => json!("frequency"),
                    ("rank" | "ttl", true) => json!(7),
                    (_, true) if value.is_string() => value,
                    (_, true) => json!(format!("{name}-value")),
                    _ => value,
                };
                row.insert(name.to_owned(), value);
            }
            row
        },
    )
}

proptest! {
    #[test]
    fn timestamps_never_panic_and_round_trip(text in timestamp_text()) {
        if let Some(at) = parse_timestamp(&text) {
            let formatted = format_timestamp(at);
            prop_assert_eq!(parse_timestamp(&formatted), Some(at));
            prop_assert!(formatted.ends_with('Z'));
        }
    }

    #[test]
    fn challenge_status_never_panics_and_keeps_its_limits(
        text in prop_oneof![".{0,200}", any_json().prop_map(|v| v.to_string())],
        goals in prop::collection::btree_map("[a-z0-9]{1,8}", any_json(), 0..4),
        reward in any_json(),
    ) {
        let structured = json!({"reward": reward, "goals": goals}).to_string();
        for status in [text, structured] {
            if let Ok(parsed) = parse_challenge_status(&status) {
                prop_assert!(parsed.goals.len() <= MAX_GOALS);
                prop_assert!(parsed.reward.contains_key("value"));
            }
        }
    }

    #[test]
    fn pending_rows_never_panic_and_what_passes_is_valid(row in any_row()) {
        if let Ok(assignment) = parse_pending_row(&row, now()) {
            prop_assert!(assignment.expiry_date > assignment.start_date);
            prop_assert!(assignment.expiry_date > now());
            prop_assert!(assignment.rank.abs() <= MAX_ABS_RANK);
            prop_assert!(!assignment.user_id.trim().is_empty());
            prop_assert!(!assignment.offer_id.trim().is_empty());
        }
    }

    #[test]
    fn support_requests_never_panic_and_what_passes_is_valid(body in any_row()) {
        if let Ok(assignment) = parse_support_request("user-1", &body, "agent-1", now()) {
            prop_assert!(assignment.expiry_date > assignment.start_date.min(now()));
            prop_assert!(assignment.expiry_date > now());
            prop_assert!(!body.contains_key("userId"), "the body may not name the user");
        }
    }

    #[test]
    fn redemption_requests_never_panic_and_what_passes_is_bounded(
        fields in prop::collection::vec((0..6usize, any_json(), any::<bool>()), 0..7),
    ) {
        const NAMES: [&str; 6] = ["orderId", "totalCost", "serviceMode", "storeId", "discount", "other"];
        let mut body = Map::new();
        for (index, value, plausible) in fields {
            let value = match (NAMES[index], plausible) {
                ("totalCost", true) => json!(12.5),
                ("discount", true) => json!(1.25),
                (_, true) if value.is_string() => value,
                (name, true) => json!(format!("{name}-value")),
                _ => value,
            };
            body.insert(NAMES[index].to_owned(), value);
        }
        if let Ok(request) = parse_redemption_request(&serde_json::to_vec(&body).expect("json")) {
            prop_assert!(request.order_id.chars().count() <= MAX_ORDER_ID_CHARS);
            prop_assert!(!request.order_id.trim().is_empty());
            prop_assert!(request.total_cost.as_f64().is_some_and(|cost| (0.0..1e9).contains(&cost)));
            prop_assert!(request.discount.as_f64().is_some_and(|discount| (0.0..1e9).contains(&discount)));
            prop_assert!(!request.service_mode.trim().is_empty());
        }
        let _ = parse_offer_event(&body);
    }

    #[test]
    fn offer_events_never_panic(body in any_json(), id in "[0-9a-fA-F-]{30,40}", kind in ".{0,10}") {
        if let Value::Object(body) = body {
            let _ = parse_offer_event(&body);
        }
        let mut body = Map::new();
        body.insert("eventId".into(), json!(id));
        body.insert("type".into(), json!(kind));
        if let Ok(event) = parse_offer_event(&body) {
            prop_assert_eq!(event.event_id.to_string(), id.to_lowercase());
        }
    }
}

const TRANSACTION_FIELDS: [&str; 7] = [
    "transactionId",
    "userId",
    "totalCost",
    "occurredAt",
    "storeId",
    "serviceMode",
    "unexpected",
];

proptest! {
    /// Any transaction image: parsed into bounded values or refused with
    /// `invalid_transaction`, never a panic.
    #[test]
    fn transactions_never_panic_and_what_passes_is_bounded(
        fields in prop::collection::vec((0..TRANSACTION_FIELDS.len(), any_json(), any::<bool>()), 0..10),
    ) {
        let mut row = Map::new();
        for (index, value, plausible) in fields {
            let name = TRANSACTION_FIELDS[index];
            let value = match (name, plausible) {
                ("totalCost", true) => json!(12.5),
                (_, true) if value.is_string() => value,
                (_, true) => json!(format!("{name}-value")),
                _ => value,
            };
            row.insert(name.to_owned(), value);
        }
        match super::transaction::parse_transaction(&row) {
            Ok(transaction) => {
                prop_assert!(transaction.total_cost >= 0.0 && transaction.total_cost.is_finite());
                prop_assert!(!transaction.user_id.as_str().trim().is_empty());
                let text = format_timestamp(transaction.occurred_at);
                prop_assert_eq!(parse_timestamp(&text), Some(transaction.occurred_at));
            }
            Err(rejection) => prop_assert_eq!(rejection.code, super::ReasonCode::InvalidTransaction),
        }
    }
}
