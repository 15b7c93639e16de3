//! Redemptions: an offer used at checkout, for one order, and given back
//! when that order is cancelled (contract section 7).
//!
//! Everything here is pure: the request parser, the redemption record as it
//! is kept on the offer, the offer's rules checked against an order, and the
//! decision whether an offer as stored can take a new use. The adapter makes
//! the same decision hold at write time with a condition (the count and the
//! revocation can race; time and rules cannot).

use crate::amount::{Amount, AMOUNT_DECIMALS, AMOUNT_LIMIT};
use crate::dates::rfc3339;
use crate::ids::PersonalizedOfferId;
use crate::limits::{quote, quote_names};
use crate::rules::Rules;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};
use uuid::Uuid;

/// The longest `orderId`, in characters (the contract's bound).
pub const MAX_ORDER_ID_CHARS: usize = 128;
/// The longest `serviceMode`, in bytes (`pickup`, `delivery`, `drive-thru`, ...).
pub const MAX_SERVICE_MODE_BYTES: usize = 64;
/// The longest `storeId`, in bytes.
pub const MAX_STORE_ID_BYTES: usize = 128;
/// The most redemption records (voided ones included) one offer item keeps.
/// With every value at its bound a record takes about 1.4 KB, so 200 of them
/// and an offer at its largest (`MAX_OFFER_BYTES`, 100 KB) stay under
/// DynamoDB's 400 KB item limit with room for the offer's counters and
/// challenge progress (`the_records_bound_keeps_the_item_under_400_kb`).
pub const MAX_REDEMPTION_RECORDS: usize = 200;

/// The rule that caps an offer's uses; without it, uses are unlimited.
pub const REDEMPTION_LIMIT_RULE: &str = "redemptionLimit";
/// The rule with the smallest order total (`totalCost`) the offer accepts.
pub const MINIMUM_SPEND_RULE: &str = "minimumSpend";
/// The rule with the service modes the offer accepts.
pub const SERVICE_MODES_RULE: &str = "serviceModes";

/// Namespace of redemption ids: one per offer and order.
const REDEMPTION_NAMESPACE: Uuid = Uuid::from_u128(0x5f1c_7a2e_93b4_4d6f_8a0e_b2c4_d6e8_f013);

/// What is wrong with a request body: the field, and what it must be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BodyProblem {
    pub message: String,
}

impl BodyProblem {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// A checkout's request to use an offer for one order.
#[derive(Debug, Clone, PartialEq)]
pub struct RedemptionRequest {
    pub order_id: String,
    /// The order's total, an amount (`crate::amount`) as a JSON number.
    pub total_cost: Number,
    /// What the point of sale took off the order, an amount; 0 when absent.
    pub discount: Number,
    pub service_mode: String,
    pub store_id: Option<String>,
}

/// One use of an offer, as the offer item keeps it (in `redemptions`, by
/// order id). The owner is the item's `userId`: only the owner's key reaches
/// the item, so the caller who redeemed or voided is always the owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Redemption {
    pub redemption_id: Uuid,
    pub order_id: String,
    pub total_cost: Number,
    /// Absent from redemptions written before discounts were kept: 0.
    #[serde(default = "zero")]
    pub discount: Number,
    pub service_mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    #[serde(with = "rfc3339")]
    pub redeemed_at: DateTime<Utc>,
    /// When the order was cancelled and the use given back.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rfc3339::option"
    )]
    pub voided_at: Option<DateTime<Utc>>,
    /// What the redemption took from its campaign's budget (section 14), so
    /// that a void gives back exactly that; absent when it took nothing.
    #[serde(default, rename = "budget", skip_serializing_if = "Option::is_none")]
    pub budget_use: Option<BudgetTaken>,
}

/// A redemption's use of its offer's campaign's budget: one of
/// `usedRedemptions`, and its `discount` in `usedDiscountValue`, each only
/// when that limit was set when it was written. (The campaign is the
/// offer's; two flags keep the record small: see the records bound.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetTaken {
    /// One of `usedRedemptions` (stored as `count`).
    #[serde(default, rename = "count")]
    pub redemptions: bool,
    /// The record's discount in `usedDiscountValue` (stored as `discount`).
    #[serde(default, rename = "discount")]
    pub discount_value: bool,
}

impl Redemption {
    /// The record of `request` on offer `personalized_offer_id`, at `now`.
    pub fn of(
        personalized_offer_id: PersonalizedOfferId,
        request: &RedemptionRequest,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            redemption_id: redemption_id(personalized_offer_id, &request.order_id),
            order_id: request.order_id.clone(),
            total_cost: request.total_cost.clone(),
            discount: request.discount.clone(),
            service_mode: request.service_mode.clone(),
            store_id: request.store_id.clone(),
            redeemed_at: now,
            voided_at: None,
            budget_use: None,
        }
    }
}

fn zero() -> Number {
    Number::from(0)
}

/// The redemption id of an order on an offer: the same for every retry.
pub fn redemption_id(personalized_offer_id: PersonalizedOfferId, order_id: &str) -> Uuid {
    let name = format!("{personalized_offer_id}\u{1f}{order_id}");
    Uuid::new_v5(&REDEMPTION_NAMESPACE, name.as_bytes())
}

/// An order id: 1 to 128 characters, no control characters, not blank
/// (also the order id of a DELETE path).
pub fn parse_order_id(text: &str) -> Result<String, BodyProblem> {
    match crate::ids::order_id_problem(text) {
        Some(problem) => Err(BodyProblem::new(problem)),
        None => Ok(text.to_owned()),
    }
}

fn bounded_text(
    body: &Map<String, Value>,
    name: &str,
    max_bytes: usize,
) -> Result<Option<String>, BodyProblem> {
    let problem = || {
        BodyProblem::new(format!(
            "{name} must be a non-blank string of at most {max_bytes} bytes without control characters"
        ))
    };
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text))
            if !text.trim().is_empty()
                && text.len() <= max_bytes
                && !text.chars().any(char::is_control) =>
        {
            Ok(Some(text.clone()))
        }
        Some(_) => Err(problem()),
    }
}

/// The raw text of a body's amounts, as the client wrote them.
#[derive(Deserialize)]
struct AmountTexts<'a> {
    #[serde(rename = "totalCost", borrow, default)]
    total_cost: Option<&'a RawValue>,
    #[serde(borrow, default)]
    discount: Option<&'a RawValue>,
}

/// An amount field of the body: `None` when absent or null, a problem
/// naming the field when it is not an amount.
fn amount_field(name: &str, raw: Option<&RawValue>) -> Result<Option<Amount>, BodyProblem> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    Amount::parse(raw.get()).map(Some).ok_or_else(|| {
        BodyProblem::new(format!(
            "{name} must be an amount: a number >= 0, below {AMOUNT_LIMIT}, \
             with at most {AMOUNT_DECIMALS} decimal places"
        ))
    })
}

/// Reads a redemption request body (a JSON object). Fields other than the
/// contract's are ignored; a field given twice is refused (which of the two
/// would count is anyone's guess).
pub fn parse_redemption_request(body: &[u8]) -> Result<RedemptionRequest, BodyProblem> {
    let Ok(fields) = serde_json::from_slice::<Map<String, Value>>(body) else {
        return Err(BodyProblem::new("the body must be a JSON object"));
    };
    let amounts: AmountTexts = serde_json::from_slice(body)
        .map_err(|_| BodyProblem::new("totalCost and discount must each be given at most once"))?;
    let order_id = match fields.get("orderId") {
        Some(Value::String(text)) => parse_order_id(text)?,
        _ => {
            return Err(BodyProblem::new(format!(
                "orderId is required: a string of 1 to {MAX_ORDER_ID_CHARS} characters"
            )))
        }
    };
    let total_cost = amount_field("totalCost", amounts.total_cost)?.ok_or_else(|| {
        BodyProblem::new(format!(
            "totalCost is required: a number >= 0, below {AMOUNT_LIMIT}, \
             with at most {AMOUNT_DECIMALS} decimal places"
        ))
    })?;
    let discount = amount_field("discount", amounts.discount)?.unwrap_or(Amount::ZERO);
    let service_mode = bounded_text(&fields, "serviceMode", MAX_SERVICE_MODE_BYTES)?
        .ok_or_else(|| {
            BodyProblem::new(format!(
                "serviceMode is required: a non-blank string of at most {MAX_SERVICE_MODE_BYTES} bytes"
            ))
        })?;
    let store_id = bounded_text(&fields, "storeId", MAX_STORE_ID_BYTES)?;
    Ok(RedemptionRequest {
        order_id,
        total_cost: total_cost.to_number(),
        discount: discount.to_number(),
        service_mode,
        store_id,
    })
}

/// The offer's cap on uses: `None` when unlimited (no such rule). A
/// fractional limit is rounded up and anything but a number >= 0 allows no
/// use (fail closed: a malformed cap must not become an unlimited offer):
/// exactly what DynamoDB's `redemptionCount < rules.redemptionLimit` allows,
/// which guards the write.
pub fn redemption_limit(rules: &Rules) -> Option<u64> {
    let rule = rules.get(REDEMPTION_LIMIT_RULE)?;
    let limit = match rule {
        Value::Number(number) => match (number.as_u64(), number.as_f64()) {
            (Some(whole), _) => whole,
            (None, Some(float)) if float.is_finite() && float >= 0.0 => {
                // Saturating cast: any limit beyond u64 is unlimited in practice.
                float.ceil() as u64
            }
            _ => 0,
        },
        _ => 0,
    };
    Some(limit)
}

/// The offer's checkout rules against the order: `minimumSpend` and
/// `serviceModes`; other rules are the point of sale's business. A rule the
/// order cannot be checked against (a `minimumSpend` that is not a number,
/// `serviceModes` that is not a list) is not met: a broken rule must not make
/// the offer free for all. The message names the rule. The same checks, in
/// DynamoDB's terms, guard the write (`shared::dynamo::redemption_update`).
pub fn check_rules(rules: &Rules, request: &RedemptionRequest) -> Result<(), String> {
    if let Some(rule) = rules.get(MINIMUM_SPEND_RULE) {
        let minimum = rule.as_f64().filter(|minimum| minimum.is_finite());
        let cost = request.total_cost.as_f64().unwrap_or(0.0);
        match minimum {
            None => {
                return Err(format!(
                    "the offer's {MINIMUM_SPEND_RULE} rule is not a number; it cannot be met"
                ))
            }
            Some(minimum) if cost < minimum => {
                return Err(format!(
                    "{MINIMUM_SPEND_RULE} not met: totalCost {} is below the offer's \
                     {MINIMUM_SPEND_RULE} of {rule}",
                    request.total_cost
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(rule) = rules.get(SERVICE_MODES_RULE) {
        let modes: Option<Vec<&str>> = rule
            .as_array()
            .and_then(|modes| modes.iter().map(Value::as_str).collect());
        match modes {
            None => {
                return Err(format!(
                "the offer's {SERVICE_MODES_RULE} rule is not a list of strings; it cannot be met"
            ))
            }
            Some(modes) if !modes.contains(&request.service_mode.as_str()) => {
                return Err(format!(
                    "{SERVICE_MODES_RULE} not met: serviceMode {} is not one of the offer's \
                     {SERVICE_MODES_RULE} ({})",
                    quote(&request.service_mode),
                    quote_names(modes)
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dates::parse_timestamp;
    use crate::limits::{item_size, MAX_ITEM_BYTES, MAX_OFFER_BYTES};
    use serde_json::json;
    use std::collections::BTreeMap;

    fn at(text: &str) -> DateTime<Utc> {
        parse_timestamp(text).expect("timestamp")
    }

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("object")
    }

    fn parse(body: &Map<String, Value>) -> Result<RedemptionRequest, BodyProblem> {
        parse_redemption_request(&serde_json::to_vec(body).expect("json"))
    }

    fn request(order: &str, cost: Value, mode: &str) -> RedemptionRequest {
        parse(&body(
            json!({"orderId": order, "totalCost": cost, "serviceMode": mode}),
        ))
        .expect("valid")
    }

    #[test]
    fn a_valid_request_and_each_field_out_of_bounds() {
        let parsed = parse(&body(json!({
            "orderId": "order-1", "totalCost": 12.5, "serviceMode": "pickup", "storeId": "s-9",
            "unexpected": true
        })))
        .expect("valid");
        assert_eq!(parsed.order_id, "order-1");
        assert_eq!(parsed.total_cost.as_f64(), Some(12.5));
        assert_eq!(parsed.store_id.as_deref(), Some("s-9"));
        let whole = parse(&body(
            json!({"orderId": "o", "totalCost": 10.0, "serviceMode": "pickup"}),
        ))
        .expect("valid");
        assert_eq!(
            whole.total_cost,
            Number::from(10),
            "as DynamoDB gives it back"
        );
        let good = json!({"orderId": "o", "totalCost": 0, "serviceMode": "pickup"});
        assert!(parse(&body(good.clone())).is_ok());
        for (field, bad) in [
            ("orderId", json!("")),
            ("orderId", json!("   ")),
            ("orderId", json!("x".repeat(129))),
            ("orderId", json!("a\nb")),
            ("orderId", json!(7)),
            ("orderId", Value::Null),
            ("totalCost", json!(-0.01)),
            ("totalCost", json!("12")),
            ("totalCost", json!(1e300)),
            ("totalCost", json!(1e9)),
            ("totalCost", json!(0.00001)),
            ("totalCost", Value::Null),
            ("discount", json!(-1)),
            ("discount", json!("1")),
            ("discount", json!(1e9)),
            ("discount", json!(1.23456)),
            ("serviceMode", json!("")),
            ("serviceMode", json!("m".repeat(65))),
            ("serviceMode", json!(["pickup"])),
            ("storeId", json!("")),
            ("storeId", json!("s".repeat(129))),
            ("storeId", json!(12)),
        ] {
            let mut candidate = body(good.clone());
            candidate.insert(field.into(), bad.clone());
            let problem = parse(&candidate).expect_err(field);
            assert!(problem.message.contains(field), "{field} {bad}: {problem}");
        }
        // 128 characters of four bytes each are within the bound.
        assert!(parse_order_id(&"😀".repeat(128)).is_ok());
        assert!(parse_order_id(&"😀".repeat(129)).is_err());
    }

    #[test]
    fn amounts_are_read_from_the_bodys_own_text() {
        let text = |body: &str| parse_redemption_request(body.as_bytes());
        let read = text(
            r#"{"orderId": "o", "totalCost": 999999999.9999, "discount": 1.50000, "serviceMode": "m"}"#,
        )
        .expect("valid");
        assert_eq!(read.total_cost.to_string(), "999999999.9999");
        assert_eq!(read.discount.to_string(), "1.5");
        let absent =
            text(r#"{"orderId": "o", "totalCost": 1e-4, "serviceMode": "m"}"#).expect("valid");
        assert_eq!(absent.total_cost.to_string(), "0.0001");
        assert_eq!(absent.discount, Number::from(0));
        for bad in [
            // The nearest double is 0.1: the text has 20 decimal places.
            r#"{"orderId": "o", "totalCost": 0.10000000000000000001, "serviceMode": "m"}"#,
            r#"{"orderId": "o", "totalCost": 1e-5, "serviceMode": "m"}"#,
            r#"{"orderId": "o", "totalCost": "NaN", "serviceMode": "m"}"#,
            r#"{"orderId": "o", "totalCost": 1, "discount": 1e9, "serviceMode": "m"}"#,
            r#"{"orderId": "o", "totalCost": 1, "totalCost": 2, "serviceMode": "m"}"#,
            r#"[1]"#,
        ] {
            assert!(text(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redemption_ids_are_one_per_offer_and_order() {
        let (a, b) = (PersonalizedOfferId::random(), PersonalizedOfferId::random());
        assert_eq!(redemption_id(a, "o-1"), redemption_id(a, "o-1"));
        assert_ne!(redemption_id(a, "o-1"), redemption_id(a, "o-2"));
        assert_ne!(redemption_id(a, "o-1"), redemption_id(b, "o-1"));
    }

    #[test]
    fn limits_round_up_and_a_malformed_one_allows_no_use() {
        let limit =
            |rule: Value| redemption_limit(&BTreeMap::from([(REDEMPTION_LIMIT_RULE.into(), rule)]));
        assert_eq!(redemption_limit(&BTreeMap::new()), None);
        assert_eq!(limit(json!(3)), Some(3));
        assert_eq!(limit(json!(2.7)), Some(3), "count < 2.7 allows three uses");
        assert_eq!(limit(json!(0)), Some(0));
        assert_eq!(limit(json!(-1)), Some(0));
        assert_eq!(limit(json!("3")), Some(0));
    }

    #[test]
    fn rules_name_the_rule_not_met() {
        let rules: Rules = serde_json::from_value(
            json!({"minimumSpend": 7.5, "serviceModes": ["pickup", "drive-thru"], "other": 1}),
        )
        .expect("rules");
        assert_eq!(
            check_rules(&rules, &request("o", json!(7.5), "pickup")),
            Ok(())
        );
        let low = check_rules(&rules, &request("o", json!(7.49), "pickup")).expect_err("low");
        assert!(
            low.contains("minimumSpend") && low.contains("7.49"),
            "{low}"
        );
        let mode = check_rules(&rules, &request("o", json!(9), "delivery")).expect_err("mode");
        assert!(
            mode.contains("serviceModes") && mode.contains("delivery"),
            "{mode}"
        );
        let broken: Rules = serde_json::from_value(json!({"minimumSpend": "5"})).expect("rules");
        assert!(check_rules(&broken, &request("o", json!(9), "pickup"))
            .expect_err("fail closed")
            .contains("minimumSpend"));
        let broken: Rules =
            serde_json::from_value(json!({"serviceModes": "pickup"})).expect("rules");
        assert!(check_rules(&broken, &request("o", json!(9), "pickup")).is_err());
    }

    #[test]
    fn the_records_bound_keeps_the_item_under_400_kb() {
        // A record with every value at its bound, as DynamoDB sizes it: the
        // map key (the order id) and the record.
        let order_id = "😀".repeat(MAX_ORDER_ID_CHARS);
        let record = Redemption {
            redemption_id: Uuid::new_v4(),
            order_id: order_id.clone(),
            total_cost: Number::from_f64(-1.234_567_890_123_456_7e-100).expect("number"),
            discount: Number::from_f64(-1.234_567_890_123_456_7e-100).expect("number"),
            service_mode: "m".repeat(MAX_SERVICE_MODE_BYTES),
            store_id: Some("s".repeat(MAX_STORE_ID_BYTES)),
            redeemed_at: at("9999-12-31T23:59:59.999999999Z"),
            voided_at: Some(at("9999-12-31T23:59:59.999999999Z")),
            budget_use: Some(BudgetTaken {
                redemptions: true,
                discount_value: true,
            }),
        };
        let entry = json!({ order_id: record });
        let per_record = item_size(entry.as_object().expect("map"));
        // Counters, first-seen dates and challenge progress.
        const ROOM_FOR_THE_REST: usize = 16 * 1_024;
        let worst = MAX_OFFER_BYTES + MAX_REDEMPTION_RECORDS * per_record + ROOM_FOR_THE_REST;
        assert!(
            worst < MAX_ITEM_BYTES,
            "{per_record} bytes a record, {worst} in all"
        );
    }
}
