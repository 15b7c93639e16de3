//! Whether an order may use an offer: the decision on the offer as read
//! (its status, its uses left, the order's earlier redemption, its rules).
//! Apart from `redemption` (the redemption record and request, which the
//! offer item holds), so that the offer and its redemptions do not import
//! each other.

use crate::offer::{OfferStatus, PersonalizedOffer};
use crate::redemption::{
    check_rules, redemption_limit, Redemption, RedemptionRequest, MAX_REDEMPTION_RECORDS,
};
use chrono::{DateTime, Utc};

/// Why an order cannot use an offer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedeemRefusal {
    /// Scheduled, expired or revoked (409 `offer_not_active`).
    #[error("the offer is {}, not active", status_name(*.0))]
    NotActive(OfferStatus),
    /// No use left (409 `redemption_limit_reached`).
    #[error("the offer has no use left: its redemptionLimit of {limit} is reached")]
    LimitReached { limit: u64 },
    /// The offer keeps as many redemption records as one offer may
    /// (409 `redemption_limit_reached`).
    #[error("the offer has been redeemed and voided as often as one offer may ({MAX_REDEMPTION_RECORDS} orders)")]
    RecordsFull,
    /// The offer's campaign has no redemption or discount left in its
    /// budget (409 `budget_exhausted`, section 14).
    #[error("the campaign's budget is used up: {0}")]
    BudgetExhausted(String),
    /// The order does not meet one of the offer's rules (422 `rule_not_met`).
    #[error("{0}")]
    RuleNotMet(String),
}

impl RedeemRefusal {
    /// The error code of the contract.
    pub fn code(&self) -> &'static str {
        match self {
            RedeemRefusal::NotActive(_) => "offer_not_active",
            RedeemRefusal::LimitReached { .. } | RedeemRefusal::RecordsFull => {
                "redemption_limit_reached"
            }
            RedeemRefusal::RuleNotMet(_) => "rule_not_met",
            RedeemRefusal::BudgetExhausted(_) => "budget_exhausted",
        }
    }
}

/// The status's name as the offer JSON spells it.
pub fn status_name(status: OfferStatus) -> &'static str {
    match status {
        OfferStatus::Scheduled => "scheduled",
        OfferStatus::Active => "active",
        OfferStatus::Redeemed => "redeemed",
        OfferStatus::Expired => "expired",
        OfferStatus::Revoked => "revoked",
    }
}

/// What an order on an offer as stored comes to.
#[derive(Debug, Clone, PartialEq)]
pub enum RedeemDecision {
    /// The order used this offer before (voided or not): that redemption,
    /// and no second use.
    Replay(Redemption),
    /// A new use may be written.
    Redeem,
    Refused(RedeemRefusal),
}

/// Decides an order on `offer` at `now`: a known order replays its first
/// redemption whatever the offer's state since; otherwise the offer must be
/// active with a use left, and the order must meet its rules.
pub fn decide_redemption(
    offer: &PersonalizedOffer,
    request: &RedemptionRequest,
    now: DateTime<Utc>,
) -> RedeemDecision {
    if let Some(earlier) = offer.redemptions.get(&request.order_id) {
        return RedeemDecision::Replay(earlier.clone());
    }
    match offer.status(now) {
        OfferStatus::Active => {}
        OfferStatus::Redeemed => {
            return RedeemDecision::Refused(RedeemRefusal::LimitReached {
                limit: redemption_limit(&offer.rules).unwrap_or_default(),
            })
        }
        status => return RedeemDecision::Refused(RedeemRefusal::NotActive(status)),
    }
    if offer.redemptions.len() >= MAX_REDEMPTION_RECORDS {
        return RedeemDecision::Refused(RedeemRefusal::RecordsFull);
    }
    match check_rules(&offer.rules, request) {
        Ok(()) => RedeemDecision::Redeem,
        Err(message) => RedeemDecision::Refused(RedeemRefusal::RuleNotMet(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dates::parse_timestamp;
    use crate::ids::PersonalizedOfferId;
    use crate::redemption::parse_redemption_request;
    use serde_json::{json, Value};
    use uuid::Uuid;

    fn at(text: &str) -> DateTime<Utc> {
        parse_timestamp(text).expect("timestamp")
    }

    fn request(order: &str, cost: Value, mode: &str) -> RedemptionRequest {
        let body = json!({"orderId": order, "totalCost": cost, "serviceMode": mode});
        parse_redemption_request(&serde_json::to_vec(&body).expect("json")).expect("valid")
    }

    fn offer(rules: Value) -> PersonalizedOffer {
        PersonalizedOffer::builder()
            .id(Uuid::nil())
            .rules(rules)
            .build()
    }

    #[test]
    fn decisions_follow_status_count_and_known_orders() {
        let now = at("2026-06-01T00:00:00Z");
        let mut offer = offer(json!({"redemptionLimit": 1, "minimumSpend": 5}));
        let order = request("o-1", json!(10), "pickup");
        assert_eq!(
            decide_redemption(&offer, &order, now),
            RedeemDecision::Redeem
        );
        assert_eq!(
            decide_redemption(&offer, &request("o-1", json!(1), "pickup"), now),
            RedeemDecision::Refused(RedeemRefusal::RuleNotMet(
                "minimumSpend not met: totalCost 1 is below the offer's minimumSpend of 5".into()
            ))
        );
        let record = Redemption::of(offer.personalized_offer_id, &order, now);
        offer.redemptions.insert("o-1".into(), record.clone());
        offer.redemption_count = 1;
        assert_eq!(offer.status(now), OfferStatus::Redeemed);
        assert_eq!(offer.remaining_redemptions(), Some(0));
        assert_eq!(
            decide_redemption(&offer, &order, now),
            RedeemDecision::Replay(record.clone())
        );
        let refused = decide_redemption(&offer, &request("o-2", json!(10), "pickup"), now);
        assert_eq!(
            refused,
            RedeemDecision::Refused(RedeemRefusal::LimitReached { limit: 1 })
        );
        // Voided: the use is back, and the order still replays.
        offer.redemption_count = 0;
        assert_eq!(offer.status(now), OfferStatus::Active);
        assert_eq!(
            decide_redemption(&offer, &request("o-2", json!(10), "pickup"), now),
            RedeemDecision::Redeem
        );
        for (status, moment) in [
            (OfferStatus::Scheduled, "2025-12-31T00:00:00Z"),
            (OfferStatus::Expired, "2027-01-01T00:00:00Z"),
        ] {
            let refused =
                decide_redemption(&offer, &request("o-3", json!(10), "pickup"), at(moment));
            assert_eq!(
                refused,
                RedeemDecision::Refused(RedeemRefusal::NotActive(status))
            );
        }
        offer.revoked_at = Some(now);
        let refused = decide_redemption(&offer, &request("o-3", json!(10), "pickup"), now);
        assert_eq!(
            refused.clone(),
            RedeemDecision::Refused(RedeemRefusal::NotActive(OfferStatus::Revoked))
        );
        let RedeemDecision::Refused(refusal) = refused else {
            unreachable!()
        };
        assert_eq!(refusal.code(), "offer_not_active");
        assert!(refusal.to_string().contains("revoked"));
        assert_eq!(
            decide_redemption(&offer, &order, now),
            RedeemDecision::Replay(record),
            "a known order replays even once the offer is revoked"
        );
    }

    #[test]
    fn an_unlimited_offer_stops_at_the_records_bound() {
        let now = at("2026-06-01T00:00:00Z");
        let mut offer = offer(json!({}));
        assert_eq!(offer.remaining_redemptions(), None);
        for n in 0..MAX_REDEMPTION_RECORDS {
            let order = request(&format!("o-{n}"), json!(1), "pickup");
            offer.redemptions.insert(
                order.order_id.clone(),
                Redemption::of(PersonalizedOfferId::from_uuid(Uuid::nil()), &order, now),
            );
        }
        let refused = decide_redemption(&offer, &request("one-more", json!(1), "pickup"), now);
        assert_eq!(refused, RedeemDecision::Refused(RedeemRefusal::RecordsFull));
    }
}
