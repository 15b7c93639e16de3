//! Campaign statistics, pure: what one offer item contributes to the
//! counters, the delta a stream record makes (new image minus old image),
//! the sum of a batch's deltas, the report built from the stored counters,
//! and the lift of `selected` over `holdout` with its 95% interval.
//!
//! The offer item is the source of truth: a counter is always the sum, over
//! the offers, of what each offer's current image contributes. A MODIFY adds
//! `contribution(new) - contribution(old)`, an INSERT `contribution(new)`, so
//! replaying the images in any order ends at the same counts (the adapter
//! makes each record count once). An image is read into [`OfferFacts`] at
//! the stream's edge (`offers_shared::campaign_stats`, which knows the wire
//! format); this module counts facts and knows no DynamoDB.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::str::FromStr;

/// Ids longer than this are not counted: `offer#<offerId>#holdout` and
/// `day#<yyyy-mm-dd>#<offerId>` must stay within DynamoDB's 1,024-byte sort key.
pub const MAX_STATS_ID_BYTES: usize = 1_000;
/// At most this many attributes of `selection.context` are counted (the first
/// by name): each is one more counter item written per outcome.
pub const MAX_CONTEXT_ATTRIBUTES: usize = 16;
/// Context attribute names and values beyond these are not counted.
pub const MAX_CONTEXT_NAME_BYTES: usize = 64;
pub const MAX_CONTEXT_VALUE_BYTES: usize = 256;
/// A `redemptionCount` above this is not a count of uses.
pub const MAX_REDEMPTION_COUNT: i64 = 1_000_000_000;
/// At most this many redemptions are read from one offer's `redemptions` map
/// (the API keeps at most 200).
pub const MAX_REDEMPTIONS: usize = 10_000;
/// Amounts from this up are not counted: the API accepts amounts below 10^9
/// (contract section 7); the margin keeps amounts written before that bound
/// counted, and with [`MAX_REDEMPTIONS`] a sum per offer stays below 10^19,
/// far from what a `Decimal` holds.
pub const MAX_COUNTED_AMOUNT: i64 = 1_000_000_000_000_000;

/// Which users a count is about: everyone, or one side of a selection plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arm {
    All,
    Selected,
    Holdout,
}

impl Arm {
    pub const ALL: [Arm; 3] = [Arm::All, Arm::Selected, Arm::Holdout];

    pub fn as_str(self) -> &'static str {
        match self {
            Arm::All => "all",
            Arm::Selected => "selected",
            Arm::Holdout => "holdout",
        }
    }

    pub fn parse(text: &str) -> Option<Arm> {
        Arm::ALL.into_iter().find(|arm| arm.as_str() == text)
    }
}

/// The counts of one counter item. Campaign counters use every field,
/// day counters `redemptions`, `order_value` and `discount_value`, learning counters
/// `assigned`, `clicked` and `redeemed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub assigned: i64,
    pub viewed: i64,
    pub clicked: i64,
    pub redeemed: i64,
    pub redemptions: i64,
    pub revoked: i64,
    /// Sum of the counted redemptions' `totalCost`, exact.
    pub order_value: Decimal,
    /// Sum of the counted redemptions' `discount`, exact.
    pub discount_value: Decimal,
}

/// The stored attribute names of the whole-number counts, in output order.
pub const COUNT_NAMES: [&str; 6] = [
    "assigned",
    "viewed",
    "clicked",
    "redeemed",
    "redemptions",
    "revoked",
];
/// The stored attribute name of the order value.
pub const ORDER_VALUE: &str = "orderValue";
/// The stored attribute name of the discount value.
pub const DISCOUNT_VALUE: &str = "discountValue";

impl Counts {
    /// The whole-number counts, in the order of [`COUNT_NAMES`].
    pub fn numbers(&self) -> [i64; 6] {
        [
            self.assigned,
            self.viewed,
            self.clicked,
            self.redeemed,
            self.redemptions,
            self.revoked,
        ]
    }

    fn number_mut(&mut self, index: usize) -> Option<&mut i64> {
        match index {
            0 => Some(&mut self.assigned),
            1 => Some(&mut self.viewed),
            2 => Some(&mut self.clicked),
            3 => Some(&mut self.redeemed),
            4 => Some(&mut self.redemptions),
            5 => Some(&mut self.revoked),
            _ => None,
        }
    }

    /// Sets a count by its stored name; false for an unknown name.
    pub fn set(&mut self, name: &str, value: i64) -> bool {
        match COUNT_NAMES.iter().position(|known| *known == name) {
            Some(index) => self.number_mut(index).map(|slot| *slot = value).is_some(),
            None => false,
        }
    }

    pub fn is_zero(&self) -> bool {
        self.numbers().iter().all(|n| *n == 0)
            && self.order_value.is_zero()
            && self.discount_value.is_zero()
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(&self, other: &Counts) -> Option<Counts> {
        self.combine(other, i64::checked_add, Decimal::checked_add)
    }

    /// `self - other`, or `None` on overflow.
    pub fn checked_sub(&self, other: &Counts) -> Option<Counts> {
        self.combine(other, i64::checked_sub, Decimal::checked_sub)
    }

    fn combine(
        &self,
        other: &Counts,
        numbers: fn(i64, i64) -> Option<i64>,
        decimals: fn(Decimal, Decimal) -> Option<Decimal>,
    ) -> Option<Counts> {
        let mut result = Counts {
            order_value: decimals(self.order_value, other.order_value)?,
            discount_value: decimals(self.discount_value, other.discount_value)?,
            ..Counts::default()
        };
        let (mine, theirs) = (self.numbers(), other.numbers());
        for index in 0..COUNT_NAMES.len() {
            *result.number_mut(index)? = numbers(mine[index], theirs[index])?;
        }
        Some(result)
    }
}

/// `orderValue` (or `discountValue`) as a JSON number: exact in storage and
/// arithmetic, a binary double on the wire, as every JSON client reads
/// numbers anyway.
fn order_value_number(value: Decimal) -> Value {
    value
        .to_f64()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

impl Serialize for Counts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(COUNT_NAMES.len() + 2))?;
        for (name, value) in COUNT_NAMES.iter().zip(self.numbers()) {
            map.serialize_entry(name, &value)?;
        }
        map.serialize_entry(ORDER_VALUE, &order_value_number(self.order_value))?;
        map.serialize_entry(DISCOUNT_VALUE, &order_value_number(self.discount_value))?;
        map.end()
    }
}

/// One counter item of the statistics table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CounterKey {
    /// A campaign's counts for one offer and arm.
    Campaign {
        campaign_id: String,
        offer_id: String,
        arm: Arm,
    },
    /// A campaign's redemptions of one offer on one day (UTC, `yyyy-mm-dd`).
    Day {
        campaign_id: String,
        offer_id: String,
        day: String,
    },
    /// A campaign's counts of one arm (selected or holdout) for the offers
    /// made on one day (UTC, `yyyy-mm-dd` of `createdAt`): each day's
    /// cohort, whose later views and redemptions count on it, so that the
    /// arms of a day compare offers of the same age.
    ArmDay {
        campaign_id: String,
        day: String,
        arm: Arm,
    },
    /// What selection learns from, across campaigns: one offer overall, or
    /// the offers shown to users with one value of a context attribute, for
    /// the offers made on one UTC day (`yyyy-mm-dd` of `createdAt`: its later
    /// clicks and redemptions count on that day, so the engine can discount
    /// outcomes by their age). `day: None` is the all-time counter kept
    /// before counters were dated; only an offer without a readable
    /// `createdAt` still counts there.
    Learning {
        offer_id: String,
        day: Option<String>,
        attribute: Option<(String, String)>,
    },
}

/// Deltas by counter: what a record (or a batch) adds to each counter.
pub type Deltas = BTreeMap<CounterKey, Counts>;

/// Why an image, or a part of it, cannot be counted: never expected of the
/// offers our own code writes. An image without a usable `offerId` or
/// `campaignId` is not counted at all; any other part that cannot be read
/// is left out and the rest counted (`OfferFacts::unread`). Either is
/// reported (log, metric), never retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatsProblem {
    #[error("the image has no offerId")]
    NoOfferId,
    #[error("{0} is longer than {MAX_STATS_ID_BYTES} bytes")]
    IdTooLong(&'static str),
    #[error("{0} is not a number DynamoDB wrote: {1}")]
    BadNumber(&'static str, String),
    #[error("{0} is out of range: {1}")]
    OutOfRange(&'static str, String),
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("a redemption is not a map: order {0}")]
    BadRedemption(String),
    #[error("the counts overflow")]
    Overflow,
}

/// One redemption of an offer, as far as statistics need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedemptionFacts {
    /// Zero when it cannot be read (reported in `OfferFacts::unread`).
    pub total_cost: Decimal,
    /// Zero when absent or when it cannot be read.
    pub discount: Decimal,
    /// The UTC day it was redeemed on, when `redeemedAt` is a timestamp.
    pub day: Option<String>,
    pub voided: bool,
}

/// What statistics read from an offer item's image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OfferFacts {
    pub offer_id: String,
    /// For the report of what could not be read.
    pub personalized_offer_id: Option<String>,
    pub campaign_id: Option<String>,
    pub viewed: bool,
    pub clicked: bool,
    pub revoked: bool,
    pub redemption_count: i64,
    pub redemptions: Vec<RedemptionFacts>,
    /// `Some(holdout)` when the offer carries `selection`.
    pub holdout: Option<bool>,
    /// The counted attributes of `selection.context`, by name.
    pub context: Vec<(String, String)>,
    /// The UTC day (`yyyy-mm-dd`) the offer was made on (`createdAt`).
    pub made_on: Option<String>,
    /// What could not be read and is not counted; everything else is.
    pub unread: Vec<StatsProblem>,
}

/// An exact decimal of an `N` attribute's text.
pub fn parse_amount(text: &str) -> Option<Decimal> {
    Decimal::from_str_exact(text)
        .ok()
        .or_else(|| Decimal::from_scientific(text).ok())
        .or_else(|| {
            Decimal::from_str(text)
                .ok()
                .filter(|d| d.to_string() == text)
        })
}

fn add_into(deltas: &mut Deltas, key: CounterKey, counts: &Counts) -> Result<(), StatsProblem> {
    let slot = deltas.entry(key).or_default();
    *slot = slot.checked_add(counts).ok_or(StatsProblem::Overflow)?;
    Ok(())
}

/// What one offer image contributes to every counter it touches.
pub fn contribution(offer: &OfferFacts) -> Result<Deltas, StatsProblem> {
    let flag = |on: bool| i64::from(on);
    let counted: Vec<&RedemptionFacts> = offer.redemptions.iter().filter(|r| !r.voided).collect();
    let mut order_value = Decimal::ZERO;
    let mut discount_value = Decimal::ZERO;
    for redemption in &counted {
        order_value = order_value
            .checked_add(redemption.total_cost)
            .ok_or(StatsProblem::Overflow)?;
        discount_value = discount_value
            .checked_add(redemption.discount)
            .ok_or(StatsProblem::Overflow)?;
    }
    let redeemed = flag(offer.redemption_count > 0);
    let mut deltas = Deltas::new();
    // Offers outside campaigns (support goodwill, challenges) count nowhere:
    // neither in a campaign nor in what selection learns from campaigns.
    let Some(campaign_id) = &offer.campaign_id else {
        return Ok(deltas);
    };
    {
        let counts = Counts {
            assigned: 1,
            viewed: flag(offer.viewed),
            clicked: flag(offer.clicked),
            redeemed,
            redemptions: offer.redemption_count,
            revoked: flag(offer.revoked),
            order_value,
            discount_value,
        };
        let campaign = |arm| CounterKey::Campaign {
            campaign_id: campaign_id.clone(),
            offer_id: offer.offer_id.clone(),
            arm,
        };
        add_into(&mut deltas, campaign(Arm::All), &counts)?;
        let arm = offer
            .holdout
            .map(|holdout| if holdout { Arm::Holdout } else { Arm::Selected });
        if let Some(arm) = arm {
            add_into(&mut deltas, campaign(arm), &counts)?;
            if let Some(day) = &offer.made_on {
                let cohort = CounterKey::ArmDay {
                    campaign_id: campaign_id.clone(),
                    day: day.clone(),
                    arm,
                };
                add_into(&mut deltas, cohort, &counts)?;
            }
        }
        for redemption in counted.iter().filter(|r| r.day.is_some()) {
            let day = CounterKey::Day {
                campaign_id: campaign_id.clone(),
                offer_id: offer.offer_id.clone(),
                day: redemption.day.clone().unwrap_or_default(),
            };
            let one = Counts {
                redemptions: 1,
                order_value: redemption.total_cost,
                discount_value: redemption.discount,
                ..Counts::default()
            };
            add_into(&mut deltas, day, &one)?;
        }
    }
    // What selection learns from: every campaign's offers.
    let learning = Counts {
        assigned: 1,
        clicked: flag(offer.clicked),
        redeemed,
        ..Counts::default()
    };
    // A day the reader takes (days since 1970); otherwise undated.
    let day = offer
        .made_on
        .clone()
        .filter(|day| day.len() == 10 && day.as_str() >= "1970-01-01");
    let learning_key = |attribute| CounterKey::Learning {
        offer_id: offer.offer_id.clone(),
        day: day.clone(),
        attribute,
    };
    add_into(&mut deltas, learning_key(None), &learning)?;
    for (name, value) in &offer.context {
        add_into(
            &mut deltas,
            learning_key(Some((name.clone(), value.clone()))),
            &learning,
        )?;
    }
    Ok(deltas)
}

/// What a stream record adds: `contribution(new) - contribution(old)`, zero
/// deltas left out. INSERT has no old image; a REMOVE is never counted (the
/// offer's TTL ends its record, not its history).
pub fn record_deltas(
    old: Option<&OfferFacts>,
    new: Option<&OfferFacts>,
) -> Result<Deltas, StatsProblem> {
    let mut deltas = match new {
        Some(new) => contribution(new)?,
        None => Deltas::new(),
    };
    if let Some(old) = old {
        for (key, counts) in contribution(old)? {
            let slot = deltas.entry(key).or_default();
            *slot = slot.checked_sub(&counts).ok_or(StatsProblem::Overflow)?;
        }
    }
    deltas.retain(|_, counts| !counts.is_zero());
    Ok(deltas)
}

/// The sum of many deltas per counter, zero sums left out.
pub fn aggregate<'a>(all: impl IntoIterator<Item = &'a Deltas>) -> Result<Deltas, StatsProblem> {
    let mut sum = Deltas::new();
    for deltas in all {
        for (key, counts) in deltas {
            add_into(&mut sum, key.clone(), counts)?;
        }
    }
    sum.retain(|_, counts| !counts.is_zero());
    Ok(sum)
}

/// One offer of a campaign report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OfferStats {
    pub offer_id: String,
    pub all: Counts,
    pub selected: Counts,
    pub holdout: Counts,
}

/// A campaign's redemptions of one offer on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DayStats {
    pub day: String,
    pub offer_id: String,
    pub redemptions: i64,
    #[serde(serialize_with = "serialize_amount")]
    pub order_value: Decimal,
    #[serde(serialize_with = "serialize_amount")]
    pub discount_value: Decimal,
}

fn serialize_amount<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
    order_value_number(*value).serialize(serializer)
}

/// A campaign's arms on one day: the offers made that day, by arm.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArmDayStats {
    pub day: String,
    pub selected: Counts,
    pub holdout: Counts,
}

impl ArmDayStats {
    /// The lift of the day's cohort; `None` when an arm has no offer.
    pub fn lift(&self) -> Option<Lift> {
        redemption_lift(&self.selected, &self.holdout)
    }
}

/// A campaign's statistics, as the API and the CLI show them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CampaignReport {
    pub campaign_id: String,
    /// By offer id.
    pub offers: Vec<OfferStats>,
    pub totals: OfferStats,
    /// Whether any of its offers was chosen by a selection plan.
    pub uses_selection: bool,
    /// By day, then offer.
    pub days: Vec<DayStats>,
    /// With selection: by day the offers were made, each arm's counts.
    pub arm_days: Vec<ArmDayStats>,
}

/// Builds the report from a campaign's stored counters (any order). Counters
/// of other campaigns and learning counters are ignored.
pub fn campaign_report(
    campaign_id: &str,
    counters: impl IntoIterator<Item = (CounterKey, Counts)>,
) -> Result<CampaignReport, StatsProblem> {
    let mut offers: BTreeMap<String, OfferStats> = BTreeMap::new();
    let mut days: BTreeMap<(String, String), Counts> = BTreeMap::new();
    let mut arm_days: BTreeMap<String, ArmDayStats> = BTreeMap::new();
    let mut uses_selection = false;
    for (key, counts) in counters {
        match key {
            CounterKey::Campaign {
                campaign_id: of,
                offer_id,
                arm,
            } if of == campaign_id => {
                let entry = offers
                    .entry(offer_id.clone())
                    .or_insert_with(|| OfferStats {
                        offer_id,
                        ..OfferStats::default()
                    });
                let slot = match arm {
                    Arm::All => &mut entry.all,
                    Arm::Selected => &mut entry.selected,
                    Arm::Holdout => &mut entry.holdout,
                };
                *slot = slot.checked_add(&counts).ok_or(StatsProblem::Overflow)?;
                uses_selection |= arm != Arm::All && !counts.is_zero();
            }
            CounterKey::Day {
                campaign_id: of,
                offer_id,
                day,
            } if of == campaign_id => {
                let slot = days.entry((day, offer_id)).or_default();
                *slot = slot.checked_add(&counts).ok_or(StatsProblem::Overflow)?;
            }
            CounterKey::ArmDay {
                campaign_id: of,
                day,
                arm,
            } if of == campaign_id => {
                let entry = arm_days.entry(day.clone()).or_insert_with(|| ArmDayStats {
                    day,
                    ..ArmDayStats::default()
                });
                let slot = match arm {
                    Arm::Holdout => &mut entry.holdout,
                    Arm::Selected | Arm::All => &mut entry.selected,
                };
                *slot = slot.checked_add(&counts).ok_or(StatsProblem::Overflow)?;
            }
            _ => {}
        }
    }
    let mut totals = OfferStats::default();
    for offer in offers.values() {
        totals.all = totals
            .all
            .checked_add(&offer.all)
            .ok_or(StatsProblem::Overflow)?;
        totals.selected = totals
            .selected
            .checked_add(&offer.selected)
            .ok_or(StatsProblem::Overflow)?;
        totals.holdout = totals
            .holdout
            .checked_add(&offer.holdout)
            .ok_or(StatsProblem::Overflow)?;
    }
    Ok(CampaignReport {
        campaign_id: campaign_id.to_owned(),
        offers: offers.into_values().collect(),
        totals,
        uses_selection,
        days: days
            .into_iter()
            .filter(|(_, counts)| !counts.is_zero())
            .map(|((day, offer_id), counts)| DayStats {
                day,
                offer_id,
                redemptions: counts.redemptions,
                order_value: counts.order_value,
                discount_value: counts.discount_value,
            })
            .collect(),
        arm_days: arm_days
            .into_values()
            .filter(|day| !day.selected.is_zero() || !day.holdout.is_zero())
            .collect(),
    })
}

impl CampaignReport {
    /// The API's body (contract section 10): `{ campaignId, offers, totals }`,
    /// with `selected` and `holdout` on every entry when selection was used.
    pub fn to_json(&self) -> Value {
        let entry = |stats: &OfferStats, offer_id: Option<&str>| {
            let mut object = Map::new();
            if let Some(offer_id) = offer_id {
                object.insert("offerId".into(), Value::String(offer_id.to_owned()));
            }
            if let Ok(Value::Object(counts)) = serde_json::to_value(stats.all) {
                object.extend(counts);
            }
            if self.uses_selection {
                for (name, counts) in [("selected", stats.selected), ("holdout", stats.holdout)] {
                    object.insert(
                        name.into(),
                        serde_json::to_value(counts).unwrap_or(Value::Null),
                    );
                }
            }
            Value::Object(object)
        };
        serde_json::json!({
            "campaignId": self.campaign_id,
            "offers": self.offers.iter()
                .map(|offer| entry(offer, Some(&offer.offer_id)))
                .collect::<Vec<_>>(),
            "totals": entry(&self.totals, None),
        })
    }
}

/// The lift of the redemption rate (redeemed / assigned) of `selected` over
/// `holdout`: the difference of the two rates with Newcombe's hybrid score
/// interval (his method 10, from each rate's Wilson interval), which keeps
/// its coverage for small groups and rates near 0 where the Wald interval
/// does not.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lift {
    pub selected_rate: f64,
    pub holdout_rate: f64,
    /// `selected_rate - holdout_rate`.
    pub difference: f64,
    /// 95% interval of the difference.
    pub ci95: [f64; 2],
    /// `selected_rate / holdout_rate - 1`, when the holdout rate is not 0.
    pub relative: Option<f64>,
}

/// `+4.2 pp (95% CI -1.0 to +9.4 pp), relative +35%`.
impl std::fmt::Display for Lift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pp = |value: f64| format!("{:+.1} pp", value * 100.0);
        write!(
            f,
            "{} (95% CI {} to {})",
            pp(self.difference),
            pp(self.ci95[0]),
            pp(self.ci95[1])
        )?;
        if let Some(relative) = self.relative {
            write!(f, ", relative {:+.0}%", relative * 100.0)?;
        }
        Ok(())
    }
}

/// z for a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// Wilson's score interval of `successes` out of `trials` (trials > 0).
pub fn wilson_interval(successes: i64, trials: i64) -> (f64, f64) {
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The lift of `selected` over `holdout`; `None` when either has no offer
/// assigned (or counts that are not rates).
pub fn redemption_lift(selected: &Counts, holdout: &Counts) -> Option<Lift> {
    let valid = |c: &Counts| c.assigned > 0 && (0..=c.assigned).contains(&c.redeemed);
    if !valid(selected) || !valid(holdout) {
        return None;
    }
    let p1 = selected.redeemed as f64 / selected.assigned as f64;
    let p2 = holdout.redeemed as f64 / holdout.assigned as f64;
    let (l1, u1) = wilson_interval(selected.redeemed, selected.assigned);
    let (l2, u2) = wilson_interval(holdout.redeemed, holdout.assigned);
    let difference = p1 - p2;
    let low = difference - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt();
    let high = difference + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt();
    Some(Lift {
        selected_rate: p1,
        holdout_rate: p2,
        difference,
        ci95: [low, high],
        relative: (p2 > 0.0).then(|| p1 / p2 - 1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lift_intervals_match_newcombes_worked_example() {
        // Newcombe (1998), table II, example (a): 56/70 vs 48/80 gives
        // 0.2000 with method 10's interval 0.0524 to 0.3339.
        let rate = |redeemed, assigned| Counts {
            assigned,
            redeemed,
            ..Counts::default()
        };
        let lift = redemption_lift(&rate(56, 70), &rate(48, 80)).expect("lift");
        assert!((lift.difference - 0.2).abs() < 1e-9);
        assert!((lift.ci95[0] - 0.0524).abs() < 5e-4, "{lift:?}");
        assert!((lift.ci95[1] - 0.3339).abs() < 5e-4, "{lift:?}");
        assert!(redemption_lift(&rate(0, 0), &rate(1, 2)).is_none());
        let none = redemption_lift(&rate(0, 10), &rate(0, 10)).expect("lift");
        assert_eq!(none.relative, None);
        assert!(none.ci95[0] < 0.0 && none.ci95[1] > 0.0);
    }
}
