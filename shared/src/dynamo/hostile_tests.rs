//! Hostile pending rows, end to end through the pure pipeline and the item
//! builders: whatever a careless or hostile campaign tool writes, reading,
//! validating and merging never panic, and every row yields either a reason
//! code whose rejection item DynamoDB can store, or an offer item DynamoDB
//! can store. What "can store" means is checked here on the DynamoDB items
//! themselves (sizes, nesting, numbers, keys), independently of the domain's
//! own bounds. A longer run:
//! `PROPTEST_CASES=20000 cargo test -p offers-shared --lib hostile`.

use super::dispatch::rejected_item;
use super::items::attribute_size;
use super::offer_item::offer_to_item;
use crate::domain::limits::{MAX_ITEM_BYTES, MAX_MESSAGE_CHARS};
use crate::domain::PersonalizedOfferId;
use crate::domain::{
    build_offer, parse_pending_row, resolve_catalog, CatalogEntry, ReasonCode, Rejection,
};
use crate::ports::{PendingRef, RejectedRow, RowCopy};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use uuid::Uuid;

type Item = HashMap<String, AttributeValue>;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
        .map(|at| at.with_timezone(&Utc))
        .unwrap_or_default()
}

fn catalog() -> HashMap<String, CatalogEntry> {
    let entries = [
        json!({"id": "co-1", "kind": "configOffer", "name": "Fries", "templateId": "tpl-1",
               "rules": {"redemptionLimit": 1, "serviceModes": ["pickup"]}}),
        json!({"id": "tpl-1", "kind": "offerTemplate", "configOfferId": "co-1",
               "rules": [{"name": "minimumSpend", "type": "number"},
                         {"name": "label", "type": "string"},
                         {"name": "modes", "type": "stringList"},
                         {"name": "until", "type": "timestamp"}]}),
        json!({"id": "co-2", "kind": "configOffer", "name": "Visits", "templateId": "tpl-2", "rules": {}}),
        json!({"id": "tpl-2", "kind": "offerTemplate", "configOfferId": "co-2", "rules": []}),
    ];
    entries
        .into_iter()
        .filter_map(|entry| match entry {
            Value::Object(map) => {
                let id = map.get("id")?.as_str()?.to_owned();
                Some((id.clone(), CatalogEntry::from_json(&id, map)))
            }
            _ => None,
        })
        .collect()
}

/// Text a hostile tool might write: empty, control characters, near-dates,
/// dates far out, and long runs up to past the item limit.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[\\x00-\\x1f\\x7f]{1,8}",
        ".{0,24}",
        Just("co-1".to_owned()),
        Just("co-2".to_owned()),
        Just("+10000-01-01T00:00:00Z".to_owned()),
        Just("+275759-09-13T00:00:00+0000".to_owned()),
        Just("-0001-01-01T00:00:00Z".to_owned()),
        Just("9999-12-31T23:59:59Z".to_owned()),
        Just("0001-01-01T00:00:00+0000".to_owned()),
        (1usize..6, 0usize..450_000).prop_map(|(width, len)| "é😀ab\u{0}"
            .chars()
            .nth(width - 1)
            .map(|c| c.to_string().repeat(len / width))
            .unwrap_or_default()),
    ]
}

/// Numbers as DynamoDB text, including ones it would refuse.
fn hostile_number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        Just("1e300".to_owned()),
        Just("-1e-300".to_owned()),
        Just("1E+126".to_owned()),
        Just("123456789012345678901234567890123456789012".to_owned()),
        Just("0.5".to_owned()),
        Just("7".to_owned()),
    ]
}

fn hostile_value() -> impl Strategy<Value = AttributeValue> {
    let leaf = prop_oneof![
        hostile_text().prop_map(AttributeValue::S),
        hostile_number().prop_map(AttributeValue::N),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null(true)),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(|b| AttributeValue::B(Blob::new(b))),
        prop::collection::vec(".{0,6}", 1..4).prop_map(AttributeValue::Ss),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(AttributeValue::L),
            prop::collection::hash_map(".{0,8}", inner, 0..4).prop_map(AttributeValue::M),
        ]
    })
}

/// A list nested `levels` deep around `leaf`.
fn nested(levels: usize, leaf: AttributeValue) -> AttributeValue {
    (0..levels).fold(leaf, |inner, _| AttributeValue::L(vec![inner]))
}

/// `challengeStatus` texts: valid ones, deep ones, and ones with numbers
/// DynamoDB cannot store in their conditions or reward.
fn hostile_challenge_status() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#"{"reward": {"value": "100"}, "goals": {"visit1": {"condition": {"total_cost": "1"}}}}"#.to_owned()),
        (0usize..120).prop_map(|depth| format!(
            r#"{{"reward": {{"value": "1"}}, "goals": {{"v": {{"condition": {{"x": {}1{}}}}}}}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )),
        Just(r#"{"reward": {"value": 1e300}, "goals": {"v": {"condition": {}}}}"#.to_owned()),
        Just(r#"{"reward": {"value": "1"}, "goals": {"v": {"condition": {"total_cost": -1e-300}}}}"#.to_owned()),
        Just(r#"{"reward": {"value": "1", "": 2}, "goals": {"v": {"condition": {}}}}"#.to_owned()),
        hostile_text(),
    ]
}

const FIELDS: [&str; 13] = [
    "offerId",
    "campaignId",
    "templateId",
    "taskId",
    "startDate",
    "expiryDate",
    "rank",
    "ttl",
    "challengeType",
    "challengeStatus",
    "frequency",
    "rules",
    "extra",
];

/// A pending row's image: a valid row (plain, or with a challenge whose
/// status may be hostile), then a few fields replaced by hostile values, so
/// that both the rejections and the offers of odd input are explored.
fn hostile_image() -> impl Strategy<Value = Item> {
    let field = (0..FIELDS.len(), hostile_value());
    (
        any::<bool>(),
        hostile_challenge_status(),
        prop::collection::vec(field, 0..4),
        prop::collection::hash_map("[a-zA-Z]{1,12}", hostile_value(), 0..3),
        0usize..45,
    )
        .prop_map(|(with_challenge, status, fields, rules, depth)| {
            let text = |value: &str| AttributeValue::S(value.to_owned());
            let mut image: Item = HashMap::from([
                ("userId".to_owned(), text("user-1")),
                ("sortKey".to_owned(), text("camp+co-1")),
                ("startDate".to_owned(), text("2026-01-01T00:00:00Z")),
                ("expiryDate".to_owned(), text("2027-01-01T00:00:00+0000")),
            ]);
            if with_challenge {
                image.insert("offerId".into(), text("co-2"));
                image.insert("frequency".into(), text("co-2"));
                image.insert("challengeType".into(), text("frequency"));
                image.insert("challengeStatus".into(), AttributeValue::S(status));
            } else {
                image.insert("offerId".into(), text("co-1"));
                let valid_rules = [
                    ("minimumSpend", AttributeValue::N("5".into())),
                    ("label", text("x")),
                    ("modes", AttributeValue::L(vec![text("a")])),
                    ("until", text("2026-07-01T00:00:00Z")),
                ];
                image.insert(
                    "rules".into(),
                    AttributeValue::M(
                        valid_rules
                            .into_iter()
                            .map(|(name, value)| (name.to_owned(), value))
                            .collect(),
                    ),
                );
            }
            for (index, value) in fields {
                let name = FIELDS[index];
                let value = match name {
                    "rules" => AttributeValue::M(rules.clone()),
                    "extra" => nested(depth, value),
                    _ => value,
                };
                image.insert(name.to_owned(), value);
            }
            image
        })
}

/// The outcome the dispatcher would decide for the image.
fn decide(image: &Item) -> Result<Item, Rejection> {
    let row: Map<String, Value> = serde_dynamo::from_item(image.clone()).map_err(|err| {
        Rejection::new(
            ReasonCode::InvalidRow,
            format!("row attributes cannot be read: {err}"),
        )
    })?;
    let assignment = parse_pending_row(&row, now())?;
    let catalog = catalog();
    let (config, template) = resolve_catalog(&assignment, |id| catalog.get(id))?;
    let offer = build_offer(
        &assignment,
        config,
        template,
        PersonalizedOfferId::from_uuid(Uuid::nil()),
        now(),
        Duration::days(90),
    )?;
    offer_to_item(&offer).map_err(|err| Rejection::new(ReasonCode::InvalidRow, err.to_string()))
}

fn item_bytes(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + attribute_size(value))
        .sum()
}

/// What DynamoDB would refuse in a value, checked on the item itself.
fn refusal(value: &AttributeValue, depth: usize) -> Option<String> {
    let number_ok = |text: &str| {
        let digits = text
            .split(['e', 'E'])
            .next()
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>();
        let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
        text.parse::<f64>()
            .is_ok_and(|n| n == 0.0 || (n.is_finite() && (1e-130..1e126).contains(&n.abs())))
            && significant <= 38
    };
    match value {
        AttributeValue::N(text) if !number_ok(text) => Some(format!("number {text}")),
        AttributeValue::Ns(texts) => texts
            .iter()
            .find(|text| !number_ok(text))
            .map(|text| format!("number {text}")),
        AttributeValue::L(_) | AttributeValue::M(_) if depth >= 32 => {
            Some("nested deeper than 32".into())
        }
        AttributeValue::L(items) => items.iter().find_map(|item| refusal(item, depth + 1)),
        AttributeValue::M(members) => members.iter().find_map(|(name, member)| {
            if name.is_empty() {
                Some("an empty member name".into())
            } else {
                refusal(member, depth + 1)
            }
        }),
        _ => None,
    }
}

fn key_text<'a>(item: &'a Item, name: &str) -> &'a str {
    match item.get(name) {
        Some(AttributeValue::S(text)) => text,
        _ => "",
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_hostile_row_is_a_storable_rejection_or_a_storable_offer(image in hostile_image()) {
        match decide(&image) {
            Ok(offer) => {
                prop_assert!(item_bytes(&offer) <= MAX_ITEM_BYTES, "offer of {} bytes", item_bytes(&offer));
                for (name, value) in &offer {
                    prop_assert_eq!(refusal(value, 1), None, "attribute {}", name);
                }
                prop_assert!(!key_text(&offer, "userId").is_empty());
                prop_assert!(key_text(&offer, "userId").len() <= 2_048);
                for sort_key in ["personalizedOfferId", "rankKey", "createdKey"] {
                    let text = key_text(&offer, sort_key);
                    prop_assert!(!text.is_empty() && text.len() <= 1_024, "{}", sort_key);
                }
            }
            Err(rejection) => {
                prop_assert!(rejection.message.chars().count() <= MAX_MESSAGE_CHARS + 1);
                let pending = PendingRef {
                    user_id: key_text(&image, "userId").to_owned(),
                    sort_key: key_text(&image, "sortKey").to_owned(),
                    row: RowCopy::Image(image.clone().into()),
                    record_id: Uuid::nil(),
                    assignment_id: None,
                };
                let rejected = RejectedRow {
                    rejection_id: Uuid::nil(),
                    record_id: Uuid::nil(),
                    code: rejection.code,
                    message: rejection.message.clone(),
                    rejected_at: now(),
                    event_id: "e".repeat(80),
                    sequence_number: "9".repeat(40),
                };
                let item = rejected_item(&rejected, &pending);
                prop_assert!(item_bytes(&item) <= MAX_ITEM_BYTES, "rejection of {} bytes", item_bytes(&item));
            }
        }
    }
}

#[test]
fn the_cases_the_review_found_are_rejected_with_their_codes() {
    let base = || -> Item {
        HashMap::from([
            ("userId".to_owned(), AttributeValue::S("user-1".into())),
            ("sortKey".to_owned(), AttributeValue::S("k".into())),
            ("offerId".to_owned(), AttributeValue::S("co-2".into())),
            (
                "startDate".to_owned(),
                AttributeValue::S("2026-01-01T00:00:00Z".into()),
            ),
            (
                "expiryDate".to_owned(),
                AttributeValue::S("2027-01-01T00:00:00Z".into()),
            ),
        ])
    };
    let with = |name: &str, value: AttributeValue| {
        let mut image = base();
        image.insert(name.to_owned(), value);
        image
    };
    let challenge = |status: String| {
        let mut image = with("challengeStatus", AttributeValue::S(status));
        image.insert(
            "challengeType".into(),
            AttributeValue::S("frequency".into()),
        );
        image.insert("frequency".into(), AttributeValue::S("co-2".into()));
        image
    };
    let deep = format!(
        r#"{{"reward": {{"value": "1"}}, "goals": {{"v": {{"condition": {{"x": {}1{}}}}}}}}}"#,
        "[".repeat(40),
        "]".repeat(40)
    );
    let cases = [
        (
            with("offerId", AttributeValue::S("o".repeat(2_049))),
            ReasonCode::InvalidRow,
        ),
        (
            with("templateId", AttributeValue::S("t".repeat(1_025))),
            ReasonCode::InvalidRow,
        ),
        (
            with(
                "expiryDate",
                AttributeValue::S("+10000-01-01T00:00:00Z".into()),
            ),
            ReasonCode::InvalidDates,
        ),
        (
            with(
                "expiryDate",
                AttributeValue::S("+275759-09-13T00:00:00+0000".into()),
            ),
            ReasonCode::InvalidDates,
        ),
        (challenge(deep), ReasonCode::InvalidChallenge),
        (
            challenge(
                r#"{"reward": {"value": "1"}, "goals": {"v": {"condition": {"total_cost": 1e300}}}}"#
                    .into(),
            ),
            ReasonCode::InvalidChallenge,
        ),
        (
            with("blob", AttributeValue::B(Blob::new(vec![1, 2]))),
            ReasonCode::InvalidRow,
        ),
        (
            with(
                "rules",
                AttributeValue::M(
                    (0..3_000)
                        .map(|n| (format!("{n:0>90}"), AttributeValue::N("1".into())))
                        .collect(),
                ),
            ),
            ReasonCode::UnknownRule,
        ),
    ];
    for (index, (image, code)) in cases.into_iter().enumerate() {
        let rejection = decide(&image).expect_err("rejected");
        assert_eq!(rejection.code, code, "case {index}: {}", rejection.message);
        assert!(
            rejection.message.len() < 2_000,
            "case {index}: {} bytes",
            rejection.message.len()
        );
    }
    // The last year that can be stored is accepted, and its ttl computed.
    let offer = decide(&with(
        "expiryDate",
        AttributeValue::S("9999-12-31T23:59:59Z".into()),
    ))
    .expect("an offer");
    assert!(
        matches!(offer.get("ttl"), Some(AttributeValue::N(ttl)) if ttl.parse::<i64>().is_ok_and(|t| t > 253_402_300_799))
    );
}
