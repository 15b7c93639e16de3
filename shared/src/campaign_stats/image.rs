//! The offer item as the offers table's stream shows it (DynamoDB's wire
//! JSON: `{"S": ..}`, `{"N": ..}`), read for campaign statistics into the
//! domain's [`OfferFacts`]. This is the stream's edge: the domain crate
//! knows the facts, not the wire format. It reads the attribute names the
//! offers item's owner declares ([`crate::dynamo::offer_item`]), and reads
//! `N` attributes from their text so that amounts keep their exact decimal
//! value (`serde_dynamo` would read them through a binary float). It reads
//! in part on purpose: an image whose counters cannot be named is an error,
//! anything else that cannot be read is left out and listed in
//! `OfferFacts::unread`, and the rest is counted.

use crate::domain::campaign_stats::{
    parse_amount, OfferFacts, RedemptionFacts, StatsProblem, MAX_CONTEXT_ATTRIBUTES,
    MAX_CONTEXT_NAME_BYTES, MAX_CONTEXT_VALUE_BYTES, MAX_COUNTED_AMOUNT, MAX_REDEMPTIONS,
    MAX_REDEMPTION_COUNT, MAX_STATS_ID_BYTES,
};
use crate::domain::dates::parse_timestamp;
use crate::dynamo::offer_item::{
    CAMPAIGN_ID, CLICKED_AT, CREATED_AT, DISCOUNT, OFFER_ID, PERSONALIZED_OFFER_ID, REDEEMED_AT,
    REDEMPTIONS, REDEMPTION_COUNT, REVOKED_AT, SELECTION, TOTAL_COST, VIEWED_AT, VOIDED_AT,
};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

/// `selection`'s fields (the domain's `SelectionRecord`, as serde writes it).
const HOLDOUT: &str = "holdout";
const CONTEXT: &str = "context";

fn typed<'a>(value: Option<&'a Value>, kind: &str) -> Option<&'a Value> {
    value.and_then(|value| value.get(kind))
}

fn wire_text(value: Option<&Value>) -> Option<&str> {
    typed(value, "S").and_then(Value::as_str)
}

/// Present and not a NULL attribute.
fn present(image: &Map<String, Value>, name: &str) -> bool {
    image
        .get(name)
        .is_some_and(|value| typed(Some(value), "NULL").is_none())
}

fn wire_map(value: Option<&Value>) -> Option<&Map<String, Value>> {
    typed(value, "M").and_then(Value::as_object)
}

/// The first 64 characters of a text, for a report.
fn clipped(text: &str) -> String {
    text.chars().take(64).collect()
}

/// An amount of a redemption that statistics count: an exact decimal,
/// >= 0, below [`MAX_COUNTED_AMOUNT`]. `None` when absent.
fn counted_amount(
    fields: &Map<String, Value>,
    name: &'static str,
) -> Option<Result<Decimal, StatsProblem>> {
    let value = fields.get(name)?;
    let Some(text) = typed(Some(value), "N").and_then(Value::as_str) else {
        return Some(Err(StatsProblem::BadNumber(name, "not a number".into())));
    };
    Some(match parse_amount(text) {
        None => Err(StatsProblem::BadNumber(name, clipped(text))),
        Some(amount)
            if (amount.is_sign_negative() && !amount.is_zero())
                || amount >= Decimal::from(MAX_COUNTED_AMOUNT) =>
        {
            Err(StatsProblem::OutOfRange(name, clipped(text)))
        }
        Some(amount) => Ok(amount),
    })
}

/// The redemptions of an image, each read as far as it can be: an amount
/// that cannot be read counts as zero and is reported; an entry that is
/// not a map is left out and reported.
fn read_redemptions(
    members: &Map<String, Value>,
    unread: &mut Vec<StatsProblem>,
) -> Vec<RedemptionFacts> {
    // By order id: the same reading (and report) of every image, whatever
    // order the stream gives.
    let mut entries: Vec<(&String, &Value)> = members.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    if entries.len() > MAX_REDEMPTIONS {
        unread.push(StatsProblem::OutOfRange(
            "redemptions",
            format!(
                "{} entries, the first {MAX_REDEMPTIONS} counted",
                entries.len()
            ),
        ));
        entries.truncate(MAX_REDEMPTIONS);
    }
    let mut redemptions = Vec::with_capacity(entries.len());
    for (order_id, redemption) in entries {
        let Some(fields) = wire_map(Some(redemption)) else {
            unread.push(StatsProblem::BadRedemption(clipped(order_id)));
            continue;
        };
        let mut amount = |name: &'static str, required: bool| match counted_amount(fields, name) {
            Some(Ok(amount)) => amount,
            Some(Err(problem)) => {
                unread.push(problem);
                Decimal::ZERO
            }
            None => {
                if required {
                    unread.push(StatsProblem::Missing(name));
                }
                Decimal::ZERO
            }
        };
        let total_cost = amount(TOTAL_COST, true);
        let discount = amount(DISCOUNT, false);
        redemptions.push(RedemptionFacts {
            total_cost,
            discount,
            day: wire_text(fields.get(REDEEMED_AT))
                .and_then(parse_timestamp)
                .map(|at| at.format("%Y-%m-%d").to_string()),
            voided: present(fields, VOIDED_AT),
        });
    }
    redemptions
}

/// The image's `campaignId`, when it is a string attribute.
pub(super) fn image_campaign_id(image: &Map<String, Value>) -> Option<&str> {
    wire_text(image.get(CAMPAIGN_ID))
}

/// Reads an offer item's image (DynamoDB wire JSON). Only an image whose
/// counters cannot be named (no `offerId`, ids too long for a key) is an
/// error; anything else that cannot be read is left out, listed in
/// `unread`, and the rest is counted.
pub fn read_offer_image(image: &Map<String, Value>) -> Result<OfferFacts, StatsProblem> {
    let offer_id = wire_text(image.get(OFFER_ID))
        .filter(|id| !id.is_empty())
        .ok_or(StatsProblem::NoOfferId)?;
    if offer_id.len() > MAX_STATS_ID_BYTES {
        return Err(StatsProblem::IdTooLong("offerId"));
    }
    let campaign_id = wire_text(image.get(CAMPAIGN_ID)).filter(|id| !id.is_empty());
    if campaign_id.is_some_and(|id| id.len() > MAX_STATS_ID_BYTES) {
        return Err(StatsProblem::IdTooLong("campaignId"));
    }
    let mut unread = Vec::new();
    let redemptions = match wire_map(image.get(REDEMPTIONS)) {
        Some(members) => read_redemptions(members, &mut unread),
        None => Vec::new(),
    };
    let stored_count = match typed(image.get(REDEMPTION_COUNT), "N").and_then(Value::as_str) {
        None => Ok(0),
        Some(text) => match text.parse::<i64>() {
            Ok(count) if (0..=MAX_REDEMPTION_COUNT).contains(&count) => Ok(count),
            Ok(_) => Err(StatsProblem::OutOfRange("redemptionCount", clipped(text))),
            Err(_) => Err(StatsProblem::BadNumber("redemptionCount", clipped(text))),
        },
    };
    // The uses not voided, when the stored count cannot be read: the API
    // changes both in the same write.
    let redemption_count = stored_count.unwrap_or_else(|problem| {
        unread.push(problem);
        redemptions
            .iter()
            .filter(|redemption| !redemption.voided)
            .count()
            .try_into()
            .unwrap_or(MAX_REDEMPTION_COUNT)
    });
    let selection = wire_map(image.get(SELECTION));
    let holdout = selection.map(|selection| {
        typed(selection.get(HOLDOUT), "BOOL")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    });
    let mut context: Vec<(String, String)> = selection
        .and_then(|selection| wire_map(selection.get(CONTEXT)))
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| Some((name, wire_text(Some(value))?)))
        .filter(|(name, value)| {
            !name.is_empty()
                && name.len() <= MAX_CONTEXT_NAME_BYTES
                && value.len() <= MAX_CONTEXT_VALUE_BYTES
        })
        .map(|(name, value)| (name.clone(), value.to_owned()))
        .collect();
    context.sort();
    context.truncate(MAX_CONTEXT_ATTRIBUTES);
    Ok(OfferFacts {
        offer_id: offer_id.to_owned(),
        personalized_offer_id: wire_text(image.get(PERSONALIZED_OFFER_ID)).map(clipped),
        campaign_id: campaign_id.map(str::to_owned),
        viewed: present(image, VIEWED_AT),
        clicked: present(image, CLICKED_AT),
        revoked: present(image, REVOKED_AT),
        redemption_count,
        redemptions,
        holdout,
        context,
        made_on: wire_text(image.get(CREATED_AT))
            .and_then(parse_timestamp)
            .map(|at| at.format("%Y-%m-%d").to_string()),
        unread,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign_stats::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn image(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn facts(value: Value) -> OfferFacts {
        read_offer_image(&image(value)).expect("readable")
    }

    fn assigned(campaign: &str) -> Value {
        json!({"userId": {"S": "u1"}, "personalizedOfferId": {"S": "p1"},
               "offerId": {"S": "co-fries"}, "campaignId": {"S": campaign}})
    }

    fn dec(text: &str) -> Decimal {
        parse_amount(text).expect("amount")
    }

    fn key(arm: Arm) -> CounterKey {
        CounterKey::Campaign {
            campaign_id: "c1".into(),
            offer_id: "co-fries".into(),
            arm,
        }
    }

    #[test]
    fn an_insert_counts_one_assignment_and_the_offer_for_learning() {
        let deltas = record_deltas(None, Some(&facts(assigned("c1")))).expect("deltas");
        assert_eq!(deltas.len(), 2, "{deltas:?}");
        assert_eq!(
            deltas[&key(Arm::All)],
            Counts {
                assigned: 1,
                ..Counts::default()
            }
        );
        let overall = CounterKey::Learning {
            offer_id: "co-fries".into(),
            day: None,
            attribute: None,
        };
        assert_eq!(deltas[&overall].assigned, 1);
    }

    #[test]
    fn events_redemptions_voids_and_revocation_are_differences_of_images() {
        let old = assigned("c1");
        let mut new = old.clone();
        new["viewedAt"] = json!({"S": "2026-01-01T00:00:00Z"});
        new["clickedAt"] = json!({"S": "2026-01-01T00:00:01Z"});
        new["redemptionCount"] = json!({"N": "1"});
        new["redemptions"] = json!({"M": {
            "o1": {"M": {"totalCost": {"N": "12.10"}, "redeemedAt": {"S": "2026-01-02T10:00:00Z"}}},
            "o2": {"M": {"totalCost": {"N": "3.3"}, "redeemedAt": {"S": "2026-01-02T11:00:00Z"},
                          "voidedAt": {"S": "2026-01-02T12:00:00Z"}}}
        }});
        let deltas =
            record_deltas(Some(&facts(old.clone())), Some(&facts(new.clone()))).expect("deltas");
        let all = deltas[&key(Arm::All)];
        assert_eq!(
            (
                all.assigned,
                all.viewed,
                all.clicked,
                all.redeemed,
                all.redemptions
            ),
            (0, 1, 1, 1, 1)
        );
        assert_eq!(all.order_value, dec("12.10"));
        let day = CounterKey::Day {
            campaign_id: "c1".into(),
            offer_id: "co-fries".into(),
            day: "2026-01-02".into(),
        };
        assert_eq!(deltas[&day].redemptions, 1);
        // Voiding the last use takes everything back; revoking counts once.
        let mut voided = new.clone();
        voided["redemptionCount"] = json!({"N": "0"});
        voided["redemptions"]["M"]["o1"]["M"]["voidedAt"] = json!({"S": "2026-01-03T00:00:00Z"});
        voided["revokedAt"] = json!({"S": "2026-01-03T00:00:00Z"});
        let back = record_deltas(Some(&facts(new)), Some(&facts(voided))).expect("deltas");
        let all = back[&key(Arm::All)];
        assert_eq!((all.redeemed, all.redemptions, all.revoked), (-1, -1, 1));
        assert_eq!(all.order_value, -dec("12.10"));
        assert_eq!(back[&day].redemptions, -1);
        // Nothing changed that counts: no delta at all.
        let mut touched = old.clone();
        touched["rank"] = json!({"N": "4"});
        assert!(record_deltas(Some(&facts(old)), Some(&facts(touched)))
            .expect("deltas")
            .is_empty());
    }

    #[test]
    fn selection_splits_arms_and_counts_context_values() {
        let mut selected = assigned("c1");
        selected["selection"] = json!({"M": {"policy": {"S": "ts-1"}, "holdout": {"BOOL": false},
            "propensity": {"N": "0.5"},
            "context": {"M": {"tier": {"S": "gold"}, "age": {"N": "3"}}}}});
        let deltas = record_deltas(None, Some(&facts(selected.clone()))).expect("deltas");
        assert_eq!(deltas[&key(Arm::Selected)].assigned, 1);
        assert!(!deltas.contains_key(&key(Arm::Holdout)));
        let tier = CounterKey::Learning {
            offer_id: "co-fries".into(),
            day: None,
            attribute: Some(("tier".into(), "gold".into())),
        };
        assert_eq!(deltas[&tier].assigned, 1);
        assert_eq!(deltas.len(), 4, "all, selected, overall, tier: {deltas:?}");
        let mut holdout = selected;
        holdout["selection"]["M"]["holdout"] = json!({"BOOL": true});
        let deltas = record_deltas(None, Some(&facts(holdout))).expect("deltas");
        assert_eq!(deltas[&key(Arm::Holdout)].assigned, 1);
    }

    #[test]
    fn learning_counters_are_dated_by_the_day_the_offer_was_made() {
        let mut made = assigned("c1");
        made["createdAt"] = json!({"S": "2026-03-04T23:59:00Z"});
        made["selection"] = json!({"M": {"holdout": {"BOOL": false},
            "context": {"M": {"tier": {"S": "gold"}}}}});
        let learning = |attribute: Option<(&str, &str)>| CounterKey::Learning {
            offer_id: "co-fries".into(),
            day: Some("2026-03-04".into()),
            attribute: attribute.map(|(name, value)| (name.into(), value.into())),
        };
        let deltas = record_deltas(None, Some(&facts(made.clone()))).expect("deltas");
        assert_eq!(deltas[&learning(None)].assigned, 1);
        assert_eq!(deltas[&learning(Some(("tier", "gold")))].assigned, 1);
        // No undated learning counter is written for a dated offer.
        assert!(!deltas
            .keys()
            .any(|key| matches!(key, CounterKey::Learning { day: None, .. })));
        // Clicked and redeemed days later: on the day it was made, beside
        // its assignment, so that a day's rate is its own offers' rate.
        let mut redeemed = made.clone();
        redeemed["clickedAt"] = json!({"S": "2026-03-06T10:00:00Z"});
        redeemed["redemptionCount"] = json!({"N": "1"});
        let deltas = record_deltas(Some(&facts(made)), Some(&facts(redeemed))).expect("deltas");
        for attribute in [None, Some(("tier", "gold"))] {
            let counts = deltas[&learning(attribute)];
            assert_eq!(
                (counts.assigned, counts.clicked, counts.redeemed),
                (0, 1, 1)
            );
        }
        assert_eq!(
            deltas
                .keys()
                .filter(|key| matches!(key, CounterKey::Learning { .. }))
                .count(),
            2
        );
    }

    #[test]
    fn selected_offers_count_in_their_arm_on_the_day_they_were_made() {
        let mut made = assigned("c1");
        made["createdAt"] = json!({"S": "2026-03-04T23:59:00Z"});
        made["selection"] = json!({"M": {"holdout": {"BOOL": true}}});
        let cohort = CounterKey::ArmDay {
            campaign_id: "c1".into(),
            day: "2026-03-04".into(),
            arm: Arm::Holdout,
        };
        let deltas = record_deltas(None, Some(&facts(made.clone()))).expect("deltas");
        assert_eq!(deltas[&cohort].assigned, 1);
        // Redeemed two days later: on the day it was made, as a redemption
        // of that day's cohort.
        let mut redeemed = made.clone();
        redeemed["redemptionCount"] = json!({"N": "1"});
        redeemed["redemptions"] = json!({"M": {"o1": {"M": {"totalCost": {"N": "12.5"},
            "redeemedAt": {"S": "2026-03-06T10:00:00Z"}}}}});
        let deltas =
            record_deltas(Some(&facts(made.clone())), Some(&facts(redeemed))).expect("deltas");
        assert_eq!(deltas[&cohort].redeemed, 1);
        assert_eq!(deltas[&cohort].assigned, 0);
        // Without selection, or without a readable createdAt: no cohort.
        let plain = assigned("c1");
        let deltas = record_deltas(None, Some(&facts(plain))).expect("deltas");
        assert!(!deltas
            .keys()
            .any(|k| matches!(k, CounterKey::ArmDay { .. })));
        made["createdAt"] = json!({"S": "yesterday"});
        let deltas = record_deltas(None, Some(&facts(made))).expect("deltas");
        assert!(!deltas
            .keys()
            .any(|k| matches!(k, CounterKey::ArmDay { .. })));
    }

    #[test]
    fn the_report_has_each_days_arms_and_their_lift() {
        let cohort = |day: &str, arm| CounterKey::ArmDay {
            campaign_id: "c1".into(),
            day: day.into(),
            arm,
        };
        let rate = |assigned, redeemed| Counts {
            assigned,
            redeemed,
            ..Counts::default()
        };
        let report = campaign_report(
            "c1",
            vec![
                (cohort("2026-03-05", Arm::Selected), rate(90, 18)),
                (cohort("2026-03-04", Arm::Selected), rate(80, 20)),
                (cohort("2026-03-04", Arm::Holdout), rate(20, 1)),
                (
                    CounterKey::ArmDay {
                        campaign_id: "other".into(),
                        day: "2026-03-04".into(),
                        arm: Arm::Holdout,
                    },
                    rate(5, 5),
                ),
            ],
        )
        .expect("report");
        let days: Vec<&str> = report.arm_days.iter().map(|d| d.day.as_str()).collect();
        assert_eq!(days, ["2026-03-04", "2026-03-05"]);
        assert_eq!(report.arm_days[0].holdout, rate(20, 1));
        let lift = report.arm_days[0].lift().expect("both arms");
        assert!((lift.difference - 0.2).abs() < 1e-9, "{lift:?}");
        assert!(lift.to_string().starts_with("+20.0 pp (95% CI"), "{lift}");
        assert_eq!(report.arm_days[1].lift(), None);
    }

    #[test]
    fn offers_outside_campaigns_count_nowhere() {
        let mut support = assigned("c1");
        support
            .as_object_mut()
            .map(|item| item.remove("campaignId"));
        assert!(record_deltas(None, Some(&facts(support)))
            .expect("deltas")
            .is_empty());
    }

    #[test]
    fn unreadable_images_are_problems_not_guesses() {
        assert_eq!(
            read_offer_image(&image(json!({"userId": {"S": "u"}}))),
            Err(StatsProblem::NoOfferId)
        );
        let mut long = assigned("c1");
        long["offerId"] = json!({"S": "x".repeat(MAX_STATS_ID_BYTES + 1)});
        assert_eq!(
            read_offer_image(&image(long)),
            Err(StatsProblem::IdTooLong("offerId"))
        );
        // Anything else is read as far as it can be (below).
        // The largest order values overflow rather than wrap or round.
        let huge = Counts {
            order_value: Decimal::MAX,
            ..Counts::default()
        };
        assert_eq!(huge.checked_add(&huge), None);
    }

    #[test]
    fn what_cannot_be_read_is_left_out_and_the_rest_counted() {
        let mut item = assigned("c1");
        item["viewedAt"] = json!({"S": "2026-01-01T00:00:00Z"});
        item["redemptionCount"] = json!({"N": "4"});
        item["redemptions"] = json!({"M": {
            "huge": {"M": {"totalCost": {"N": "1e30"}, "discount": {"N": "1"},
                           "redeemedAt": {"S": "2026-01-02T10:00:00Z"}}},
            "tiny": {"M": {"totalCost": {"N": "1e-100"}, "redeemedAt": {"S": "2026-01-02T10:00:00Z"}}},
            "text": {"M": {"totalCost": {"S": "12"}, "discount": {"N": "-1"}}},
            "fine": {"M": {"totalCost": {"N": "999999999.9999"}, "discount": {"N": "0.0001"},
                           "redeemedAt": {"S": "2026-01-02T10:00:00Z"}}},
            "odd": {"S": "not a redemption"}
        }});
        let read = facts(item.clone());
        assert_eq!(read.redemption_count, 4);
        assert_eq!(
            read.redemptions.len(),
            4,
            "the entry that is no map is left out"
        );
        assert_eq!(
            read.unread,
            vec![
                StatsProblem::BadNumber("totalCost", "1e30".into()),
                StatsProblem::BadRedemption("odd".into()),
                StatsProblem::BadNumber("totalCost", "not a number".into()),
                StatsProblem::OutOfRange("discount", "-1".into()),
                StatsProblem::BadNumber("totalCost", "1e-100".into()),
            ]
        );
        let deltas = record_deltas(None, Some(&read)).expect("deltas");
        let all = deltas[&key(Arm::All)];
        assert_eq!((all.assigned, all.viewed, all.redemptions), (1, 1, 4));
        assert_eq!(all.order_value, dec("999999999.9999"));
        assert_eq!(all.discount_value, dec("1.0001"));
        // A click on that offer counts, and nothing else moves.
        let mut clicked = item;
        clicked["clickedAt"] = json!({"S": "2026-01-03T00:00:00Z"});
        let deltas = record_deltas(Some(&read), Some(&facts(clicked))).expect("deltas");
        assert_eq!(
            deltas[&key(Arm::All)],
            Counts {
                clicked: 1,
                ..Counts::default()
            }
        );
        // A count that cannot be read: the uses not voided.
        let mut negative = assigned("c1");
        negative["redemptionCount"] = json!({"N": "-1"});
        negative["redemptions"] = json!({"M": {"o": {"M": {"totalCost": {"N": "2"}}}}});
        let read = facts(negative);
        assert_eq!(read.redemption_count, 1);
        assert_eq!(
            read.unread,
            vec![StatsProblem::OutOfRange("redemptionCount", "-1".into())]
        );
    }

    #[test]
    fn discounts_are_summed_and_a_void_takes_them_back() {
        let mut used = assigned("c1");
        used["redemptionCount"] = json!({"N": "2"});
        used["redemptions"] = json!({"M": {
            "o1": {"M": {"totalCost": {"N": "10"}, "discount": {"N": "2.5"},
                         "redeemedAt": {"S": "2026-01-02T10:00:00Z"}}},
            "o2": {"M": {"totalCost": {"N": "4"}, "redeemedAt": {"S": "2026-01-02T11:00:00Z"}}}
        }});
        let deltas = record_deltas(None, Some(&facts(used.clone()))).expect("deltas");
        assert_eq!(deltas[&key(Arm::All)].discount_value, dec("2.5"));
        let day = CounterKey::Day {
            campaign_id: "c1".into(),
            offer_id: "co-fries".into(),
            day: "2026-01-02".into(),
        };
        assert_eq!(deltas[&day].discount_value, dec("2.5"));
        let mut voided = used.clone();
        voided["redemptionCount"] = json!({"N": "1"});
        voided["redemptions"]["M"]["o1"]["M"]["voidedAt"] = json!({"S": "2026-01-03T00:00:00Z"});
        let back = record_deltas(Some(&facts(used)), Some(&facts(voided))).expect("deltas");
        let all = back[&key(Arm::All)];
        assert_eq!(
            (all.redemptions, all.order_value, all.discount_value),
            (-1, -dec("10"), -dec("2.5"))
        );
        assert_eq!(
            serde_json::to_value(all).expect("json")["discountValue"],
            json!(-2.5)
        );
    }

    #[test]
    fn amounts_are_exact() {
        let sum = dec("0.1").checked_add(dec("0.2")).expect("sum");
        assert_eq!(sum, dec("0.3"));
        assert_eq!(dec("12.10").to_string(), "12.10");
        assert_eq!(parse_amount("1E+2"), Some(Decimal::from(100)));
        assert_eq!(parse_amount("abc"), None);
    }

    #[test]
    fn the_report_sums_offers_and_shows_arms_only_with_selection() {
        let counts = |assigned| Counts {
            assigned,
            order_value: dec("1.5"),
            ..Counts::default()
        };
        let rows = vec![
            (key(Arm::All), counts(3)),
            (
                CounterKey::Campaign {
                    campaign_id: "c1".into(),
                    offer_id: "co-a".into(),
                    arm: Arm::All,
                },
                counts(2),
            ),
            (
                CounterKey::Campaign {
                    campaign_id: "other".into(),
                    offer_id: "co-a".into(),
                    arm: Arm::All,
                },
                counts(7),
            ),
        ];
        let report = campaign_report("c1", rows).expect("report");
        let json = report.to_json();
        assert_eq!(json["totals"]["assigned"], 5);
        assert_eq!(json["totals"]["orderValue"], 3.0);
        assert_eq!(json["offers"][0]["offerId"], "co-a");
        assert!(json["totals"].get("selected").is_none());
        let empty = campaign_report("none", Vec::new())
            .expect("report")
            .to_json();
        assert_eq!(empty["offers"], json!([]));
        assert_eq!(empty["totals"]["redemptions"], 0);
        let with_arm = campaign_report("c1", vec![(key(Arm::Holdout), counts(1))])
            .expect("report")
            .to_json();
        assert_eq!(with_arm["totals"]["holdout"]["assigned"], 1);
        assert_eq!(with_arm["offers"][0]["selected"]["assigned"], 0);
    }

    fn any_image() -> impl Strategy<Value = Value> {
        (
            prop::option::of(prop::sample::select(vec!["c1", "c2"])),
            any::<[bool; 3]>(),
            prop::collection::vec(
                (0u32..100_000, 0u8..3, any::<bool>()),
                0..4,
            ),
            prop::option::of((any::<bool>(), prop::sample::select(vec!["gold", "blue"]))),
        )
            .prop_map(|(campaign, [viewed, clicked, revoked], redemptions, selection)| {
                let mut item = json!({"offerId": {"S": "co-x"}});
                if let Some(campaign) = campaign {
                    item["campaignId"] = json!({"S": campaign});
                }
                for (on, name) in [(viewed, "viewedAt"), (clicked, "clickedAt"), (revoked, "revokedAt")] {
                    if on {
                        item[name] = json!({"S": "2026-01-01T00:00:00Z"});
                    }
                }
                let mut map = Map::new();
                let mut used = 0;
                for (index, (cents, day, voided)) in redemptions.iter().enumerate() {
                    let mut fields = json!({"totalCost": {"N": format!("{}.{:02}", cents / 100, cents % 100)},
                        "redeemedAt": {"S": format!("2026-01-0{}T00:00:00Z", day + 1)}});
                    if *voided {
                        fields["voidedAt"] = json!({"S": "2026-01-05T00:00:00Z"});
                    } else {
                        used += 1;
                    }
                    map.insert(format!("o{index}"), json!({"M": fields}));
                }
                item["redemptions"] = json!({"M": map});
                item["redemptionCount"] = json!({"N": used.to_string()});
                if let Some((holdout, tier)) = selection {
                    item["selection"] = json!({"M": {"holdout": {"BOOL": holdout},
                        "context": {"M": {"tier": {"S": tier}}}}});
                }
                item
            })
    }

    proptest! {
        /// Aggregating a batch's deltas equals applying each record's deltas
        /// one by one; and a chain of images sums to the last image's
        /// contribution (the counters always describe the current offers).
        #[test]
        fn aggregation_equals_per_record_application(
            chain in prop::collection::vec(any_image(), 1..6),
        ) {
            let images: Vec<OfferFacts> = chain.iter()
                .map(|value| read_offer_image(&image(value.clone())).expect("readable"))
                .collect();
            let mut records = vec![record_deltas(None, images.first()).expect("insert")];
            for pair in images.windows(2) {
                records.push(record_deltas(Some(&pair[0]), Some(&pair[1])).expect("modify"));
            }
            let mut applied = Deltas::new();
            for record in &records {
                for (key, counts) in record {
                    let slot = applied.entry(key.clone()).or_default();
                    *slot = slot.checked_add(counts).expect("no overflow");
                }
            }
            applied.retain(|_, counts| !counts.is_zero());
            let aggregated = aggregate(&records).expect("aggregate");
            prop_assert_eq!(&aggregated, &applied);
            let last = contribution(images.last().expect("one")).expect("contribution");
            let last: Deltas = last.into_iter().filter(|(_, c)| !c.is_zero()).collect();
            prop_assert_eq!(aggregated, last);
        }
    }
}
