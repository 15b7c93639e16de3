//! Campaign statistics, pure: what one offer item contributes to the
//! counters, the delta a stream record makes (new image minus old image),
//! the sum of a batch's deltas, the report built from the stored counters,
//! and the lift of `selected` over `holdout` with its 95% interval.
//!
//! The offer item is the source of truth: a counter is always the sum, over
//! the offers, of what each offer's current image contributes. A MODIFY adds
//! `contribution(new) - contribution(old)`, an INSERT `contribution(new)`, so
//! replaying the images in any order ends at the same counts (the adapter
//! makes each record count once). Images are read in DynamoDB's wire JSON
//! (`{"S": ..}`, `{"N": ..}`) so that amounts keep their exact decimal text.

use crate::dates::parse_timestamp;
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
        let total_cost = amount("totalCost", true);
        let discount = amount("discount", false);
        redemptions.push(RedemptionFacts {
            total_cost,
            discount,
            day: wire_text(fields.get("redeemedAt"))
                .and_then(parse_timestamp)
                .map(|at| at.format("%Y-%m-%d").to_string()),
            voided: present(fields, "voidedAt"),
        });
    }
    redemptions
}

/// Reads an offer item's image (DynamoDB wire JSON). Only an image whose
/// counters cannot be named (no `offerId`, ids too long for a key) is an
/// error; anything else that cannot be read is left out, listed in
/// `unread`, and the rest is counted.
pub fn read_offer_image(image: &Map<String, Value>) -> Result<OfferFacts, StatsProblem> {
    let offer_id = wire_text(image.get("offerId"))
        .filter(|id| !id.is_empty())
        .ok_or(StatsProblem::NoOfferId)?;
    if offer_id.len() > MAX_STATS_ID_BYTES {
        return Err(StatsProblem::IdTooLong("offerId"));
    }
    let campaign_id = wire_text(image.get("campaignId")).filter(|id| !id.is_empty());
    if campaign_id.is_some_and(|id| id.len() > MAX_STATS_ID_BYTES) {
        return Err(StatsProblem::IdTooLong("campaignId"));
    }
    let mut unread = Vec::new();
    let redemptions = match wire_map(image.get("redemptions")) {
        Some(members) => read_redemptions(members, &mut unread),
        None => Vec::new(),
    };
    let stored_count = match typed(image.get("redemptionCount"), "N").and_then(Value::as_str) {
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
    let selection = wire_map(image.get("selection"));
    let holdout = selection.map(|selection| {
        typed(selection.get("holdout"), "BOOL")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    });
    let mut context: Vec<(String, String)> = selection
        .and_then(|selection| wire_map(selection.get("context")))
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
        personalized_offer_id: wire_text(image.get("personalizedOfferId")).map(clipped),
        campaign_id: campaign_id.map(str::to_owned),
        viewed: present(image, "viewedAt"),
        clicked: present(image, "clickedAt"),
        revoked: present(image, "revokedAt"),
        redemption_count,
        redemptions,
        holdout,
        context,
        made_on: wire_text(image.get("createdAt"))
            .and_then(parse_timestamp)
            .map(|at| at.format("%Y-%m-%d").to_string()),
        unread,
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
