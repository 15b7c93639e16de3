//! Campaign definitions (contract sections 13 and 14): what `offers campaign
//! put` accepts, what `offers campaign plan` stores, a campaign's status at a
//! moment, its budget, and the statistics snapshot a plan chooses from. No
//! AWS here: the `CampaignsTable` adapter stores what this module validates.

use crate::dates::{format_timestamp, parse_timestamp};
use crate::ids::{CampaignId, OfferId};
use crate::limits::{
    item_problem, key_problem, quote, value_size, MAX_ID_BYTES, MAX_SORT_KEY_BYTES,
};
use crate::selection::{Counts, LearningCounter, Scope, DEFAULT_HALF_LIFE, MAX_POOL};
use chrono::{DateTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Map, Number, Value};
use std::collections::HashSet;
use std::fmt;

/// A definition's JSON, as stored, at most this many bytes (32 KiB): the
/// campaign's item keeps it and a few earlier versions within DynamoDB's
/// 400 KB.
pub const MAX_DEFINITION_BYTES: usize = 32 * 1_024;
/// Earlier versions kept on the campaign's item, newest first.
pub const KEPT_VERSIONS: usize = 4;
/// A plan's statistics snapshot, at most this many bytes (192 KiB).
pub const MAX_SNAPSHOT_BYTES: usize = 192 * 1_024;
/// Budget limits: counts and amounts at most this (10^12).
pub const MAX_BUDGET_LIMIT: u64 = 1_000_000_000_000;
/// Decimal places a `discountValue` limit may have (as amounts, section 7).
pub const BUDGET_DECIMALS: usize = 4;
pub const MIN_CADENCE_SECONDS: u64 = 60;
/// A cadence longer than a year is a typo, not a campaign.
pub const MAX_CADENCE_SECONDS: u64 = 366 * 86_400;
pub const MAX_VALID_DAYS: u64 = 365;
pub const MAX_ALWAYS_ON_SLOTS: u64 = 5;
pub const DEFAULT_HOLDOUT: f64 = 0.1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignMode {
    AlwaysOn,
    Planned,
    Manual,
}

impl CampaignMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignMode::AlwaysOn => "alwaysOn",
            CampaignMode::Planned => "planned",
            CampaignMode::Manual => "manual",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "alwaysOn" => Some(CampaignMode::AlwaysOn),
            "planned" => Some(CampaignMode::Planned),
            "manual" => Some(CampaignMode::Manual),
            _ => None,
        }
    }
}

/// A campaign's status at a moment, computed from its dates and pause flag
/// when read (never stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignStatus {
    Scheduled,
    Active,
    Paused,
    Ended,
}

impl CampaignStatus {
    /// Ended wins over paused (nothing resumes an ended campaign), paused
    /// over scheduled (a paused campaign does not start on its startDate).
    pub fn at(
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
        paused: bool,
        now: DateTime<Utc>,
    ) -> Self {
        if end.is_some_and(|end| now >= end) {
            CampaignStatus::Ended
        } else if paused {
            CampaignStatus::Paused
        } else if start.is_some_and(|start| now < start) {
            CampaignStatus::Scheduled
        } else {
            CampaignStatus::Active
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Scheduled => "scheduled",
            CampaignStatus::Active => "active",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Ended => "ended",
        }
    }
}

/// The budget's limits (section 14); each optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Budget {
    pub offers: Option<u64>,
    pub redemptions: Option<u64>,
    /// Kept as its JSON number (at most 4 decimals, below 10^12).
    pub discount_value: Option<Number>,
}

/// What a budget's limits have used so far (counter attributes of the
/// campaign's item; 0 until the budget enforcement counts them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetUse {
    pub offers: u64,
    pub redemptions: u64,
    /// Money: the exact sum of the discounts counted (never a binary float).
    pub discount_value: Decimal,
}

/// A money amount as a JSON number: a whole amount as an integer (`40`,
/// never `40.0`), else its decimal digits as the nearest double, which
/// prints them back exactly (at most 4 decimals, below 10^12: within a
/// double's 15 significant digits but for the largest budgets).
pub fn money_number(value: Decimal) -> Value {
    let value = value.normalize();
    if value.fract().is_zero() {
        if let Some(whole) = value.to_u64() {
            return json!(whole);
        }
    }
    value
        .to_f64()
        .and_then(Number::from_f64)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// The percentage of `limit` that `used` is (a limit of 0: 100), rounded down.
pub fn percent_used(used: Decimal, limit: Decimal) -> u64 {
    if limit <= Decimal::ZERO {
        return 100;
    }
    (used * Decimal::ONE_HUNDRED / limit)
        .floor()
        .to_u64()
        .unwrap_or(0)
}

/// A budget's kinds of limit (contract section 14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BudgetLimit {
    Offers,
    Redemptions,
    DiscountValue,
}

impl BudgetLimit {
    /// The name metrics carry (the Datadog tag `budget`, lower case since
    /// Datadog lowercases tags).
    pub fn metric_name(self) -> &'static str {
        match self {
            BudgetLimit::Offers => "offers",
            BudgetLimit::Redemptions => "redemptions",
            BudgetLimit::DiscountValue => "discount_value",
        }
    }
}

impl Budget {
    /// The `discountValue` limit in ten-thousandths (as validated: at most
    /// 4 decimal places, at most 10^12).
    pub fn discount_ten_thousandths(&self) -> Option<u64> {
        let text = self.discount_value.as_ref()?.to_string();
        let (whole, decimals) = text.split_once('.').unwrap_or((&text, ""));
        if decimals.len() > BUDGET_DECIMALS {
            return None;
        }
        let fraction: u64 = format!("{decimals:0<4}").parse().ok()?;
        whole
            .parse::<u64>()
            .ok()?
            .checked_mul(10_000)?
            .checked_add(fraction)
    }

    /// Each limit that is set, with the percentage of it used (rounded
    /// down; a limit of 0 is 100): counts and money compared as exact
    /// decimals, never through a binary float.
    pub fn percents_used(&self, used: &BudgetUse) -> Vec<(BudgetLimit, u64)> {
        let mut percents = Vec::new();
        if let Some(limit) = self.offers {
            let percent = percent_used(Decimal::from(used.offers), Decimal::from(limit));
            percents.push((BudgetLimit::Offers, percent));
        }
        if let Some(limit) = self.redemptions {
            let percent = percent_used(Decimal::from(used.redemptions), Decimal::from(limit));
            percents.push((BudgetLimit::Redemptions, percent));
        }
        if let Some(limit) = self.discount_ten_thousandths() {
            // At most 10^16 ten-thousandths: well within an i64.
            if let Ok(limit) = i64::try_from(limit) {
                let percent = percent_used(used.discount_value, Decimal::new(limit, 4));
                percents.push((BudgetLimit::DiscountValue, percent));
            }
        }
        percents
    }

    /// `{ offers: { limit, used }, ... }` for the limits that are set.
    pub fn view(&self, used: &BudgetUse) -> Value {
        let mut view = Map::new();
        if let Some(limit) = self.offers {
            view.insert(
                "offers".into(),
                json!({"limit": limit, "used": used.offers}),
            );
        }
        if let Some(limit) = self.redemptions {
            view.insert(
                "redemptions".into(),
                json!({"limit": limit, "used": used.redemptions}),
            );
        }
        if let Some(limit) = &self.discount_value {
            view.insert(
                "discountValue".into(),
                json!({"limit": limit, "used": money_number(used.discount_value)}),
            );
        }
        Value::Object(view)
    }
}

/// One offer of a pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolOffer {
    pub offer_id: OfferId,
    pub template_id: Option<String>,
    pub rules: Option<Map<String, Value>>,
}

/// What an always-on campaign adds to the common fields.
#[derive(Debug, Clone, PartialEq)]
pub struct AlwaysOn {
    pub pool: Vec<PoolOffer>,
    pub valid_days: u64,
    pub cadence_seconds: u64,
    pub slots: u64,
    pub holdout: f64,
    pub reward: String,
    /// Days after which an outcome weighs half as much in its choices
    /// (`halfLife`, default [`DEFAULT_HALF_LIFE`]).
    pub half_life: f64,
}

/// The smallest and largest `halfLife` of an always-on campaign, in days:
/// below a tenth of a day nothing is remembered; ten years is never
/// forgetting in a programme's life.
pub const MIN_HALF_LIFE_DAYS: f64 = 0.1;
pub const MAX_HALF_LIFE_DAYS: f64 = 3_650.0;

/// A definition that passed its own checks (not yet the catalog's).
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignDefinition {
    pub campaign_id: CampaignId,
    pub mode: CampaignMode,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub budget: Option<Budget>,
    pub always_on: Option<AlwaysOn>,
    /// The definition as stored: the input with defaults filled in.
    pub document: Map<String, Value>,
}

/// An invalid definition: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field: field.into(),
        message: message.into(),
    }
}

const ALWAYS_ON_FIELDS: [&str; 13] = [
    "campaignId",
    "mode",
    "pool",
    "startDate",
    "endDate",
    "validDays",
    "cadence",
    "slots",
    "holdout",
    "reward",
    "halfLife",
    "budget",
    "description",
];
const MANUAL_FIELDS: [&str; 6] = [
    "campaignId",
    "mode",
    "startDate",
    "endDate",
    "budget",
    "description",
];

/// Reads the definition `offers campaign put` is given: `alwaysOn` or
/// `manual` (planned ones are stored by `offers campaign plan`). Every
/// problem found is listed, each naming its field.
pub fn parse_definition(text: &str) -> Result<CampaignDefinition, Vec<FieldProblem>> {
    if text.len() > MAX_DEFINITION_BYTES {
        return Err(vec![problem(
            "definition",
            format!("it is {} bytes; at most {MAX_DEFINITION_BYTES}", text.len()),
        )]);
    }
    let document = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(document)) => document,
        Ok(_) => return Err(vec![problem("definition", "must be a JSON object")]),
        Err(err) => return Err(vec![problem("definition", format!("not JSON: {err}"))]),
    };
    let mut problems = Vec::new();
    let campaign_id = required_campaign_id(&document, &mut problems);
    let mode = match document.get("mode") {
        Some(Value::String(mode)) => match CampaignMode::parse(mode) {
            Some(CampaignMode::Planned) => {
                problems.push(problem(
                    "mode",
                    "planned definitions are stored by `offers campaign plan`",
                ));
                None
            }
            Some(mode) => Some(mode),
            None => {
                problems.push(problem(
                    "mode",
                    format!("must be \"alwaysOn\" or \"manual\"; got {}", quote(mode)),
                ));
                None
            }
        },
        _ => {
            problems.push(problem("mode", "is required: \"alwaysOn\" or \"manual\""));
            None
        }
    };
    let Some(mode) = mode else {
        return Err(problems);
    };
    let allowed: &[&str] = match mode {
        CampaignMode::AlwaysOn => &ALWAYS_ON_FIELDS,
        _ => &MANUAL_FIELDS,
    };
    for name in document.keys() {
        if !allowed.contains(&name.as_str()) {
            problems.push(problem(
                quote(name),
                format!("is not a field of a {} definition", mode.as_str()),
            ));
        }
    }
    if let Some(value) = document.get("description") {
        if !matches!(value, Value::String(text) if text.len() <= 1_024) {
            problems.push(problem(
                "description",
                "must be a string of at most 1024 bytes",
            ));
        }
    }
    let dated = mode == CampaignMode::AlwaysOn;
    let start = date(&document, "startDate", dated, &mut problems);
    let end = date(&document, "endDate", dated, &mut problems);
    if let (Some(start), Some(end)) = (start, end) {
        if end <= start {
            problems.push(problem("endDate", "must be after startDate"));
        }
    }
    let budget = document
        .get("budget")
        .and_then(|value| parse_budget(value, &mut problems));
    let mut document = document;
    let always_on = match mode {
        CampaignMode::AlwaysOn => {
            parse_always_on(&mut document, campaign_id.as_deref(), &mut problems)
        }
        _ => None,
    };
    if let Some(message) = item_problem(&document) {
        problems.push(problem("definition", message));
    }
    match campaign_id {
        Some(campaign_id) if problems.is_empty() => Ok(CampaignDefinition {
            campaign_id,
            mode,
            start,
            end,
            budget,
            always_on,
            document,
        }),
        _ => Err(problems),
    }
}

/// The definition's `campaignId`, parsed into its id type.
fn required_campaign_id(
    document: &Map<String, Value>,
    problems: &mut Vec<FieldProblem>,
) -> Option<CampaignId> {
    const FIELD: &str = "campaignId";
    match document.get(FIELD) {
        Some(Value::String(id)) => match CampaignId::try_from(id.as_str()) {
            Ok(id) => Some(id),
            Err(invalid) => {
                problems.push(problem(FIELD, invalid.0));
                None
            }
        },
        _ => {
            problems.push(problem(FIELD, "is required: a non-empty string"));
            None
        }
    }
}

fn date(
    document: &Map<String, Value>,
    field: &str,
    required: bool,
    problems: &mut Vec<FieldProblem>,
) -> Option<DateTime<Utc>> {
    match document.get(field) {
        None if !required => None,
        Some(Value::String(text)) if text.len() <= 64 => match parse_timestamp(text) {
            Some(at) => Some(at),
            None => {
                problems.push(problem(
                    field,
                    format!("must be ISO-8601 with an offset; got {}", quote(text)),
                ));
                None
            }
        },
        _ => {
            problems.push(problem(
                field,
                "is required: an ISO-8601 date with an offset",
            ));
            None
        }
    }
}

/// `budget`: an object of non-negative limits, each named when wrong.
pub fn parse_budget(value: &Value, problems: &mut Vec<FieldProblem>) -> Option<Budget> {
    let Value::Object(fields) = value else {
        problems.push(problem(
            "budget",
            "must be an object {offers?, redemptions?, discountValue?}",
        ));
        return None;
    };
    let before = problems.len();
    let mut budget = Budget::default();
    for (name, value) in fields {
        let field = format!("budget.{name}");
        match name.as_str() {
            "offers" | "redemptions" => match value.as_u64() {
                Some(limit) if limit <= MAX_BUDGET_LIMIT => {
                    if name == "offers" {
                        budget.offers = Some(limit);
                    } else {
                        budget.redemptions = Some(limit);
                    }
                }
                _ => problems.push(problem(
                    field,
                    format!("must be an integer from 0 to {MAX_BUDGET_LIMIT}; got {value}"),
                )),
            },
            "discountValue" => match value {
                Value::Number(number) if amount_ok(number) => {
                    budget.discount_value = Some(number.clone())
                }
                _ => problems.push(problem(
                    field,
                    format!(
                        "must be a number from 0 to {MAX_BUDGET_LIMIT} with at most {BUDGET_DECIMALS} decimal places; got {value}"
                    ),
                )),
            },
            _ => problems.push(problem(
                quote(&field),
                "is not a budget limit (offers, redemptions, discountValue)",
            )),
        }
    }
    (problems.len() == before).then_some(budget)
}

/// A non-negative amount below the limit with at most 4 decimal places, read
/// from its text (no float rounding decides).
fn amount_ok(number: &Number) -> bool {
    let text = number.to_string();
    if text.contains(['e', 'E', '-']) {
        return false;
    }
    let (whole, decimals) = text.split_once('.').unwrap_or((&text, ""));
    decimals.len() <= BUDGET_DECIMALS
        && whole.len() <= 13
        && whole.parse::<u64>().is_ok_and(|whole| {
            whole < MAX_BUDGET_LIMIT
                || (whole == MAX_BUDGET_LIMIT && decimals.trim_end_matches('0').is_empty())
        })
}

fn parse_always_on(
    document: &mut Map<String, Value>,
    campaign_id: Option<&str>,
    problems: &mut Vec<FieldProblem>,
) -> Option<AlwaysOn> {
    let before = problems.len();
    let pool = parse_pool(document.get("pool"), campaign_id, problems);
    let valid_days = bounded_integer(document, "validDays", 1, MAX_VALID_DAYS, problems);
    let slots = bounded_integer(document, "slots", 1, MAX_ALWAYS_ON_SLOTS, problems);
    if let (Some(slots), Some(pool)) = (slots, &pool) {
        if slots > pool.len() as u64 {
            problems.push(problem(
                "slots",
                format!("must be at most the pool's size ({})", pool.len()),
            ));
        }
    }
    let cadence_seconds = match document.get("cadence") {
        Some(Value::String(text)) => match parse_duration(text) {
            Ok(seconds) if seconds < MIN_CADENCE_SECONDS => {
                problems.push(problem("cadence", "must be at least PT1M"));
                None
            }
            Ok(seconds) if seconds > MAX_CADENCE_SECONDS => {
                problems.push(problem("cadence", "must be at most P366D"));
                None
            }
            Ok(seconds) => Some(seconds),
            Err(message) => {
                problems.push(problem("cadence", message));
                None
            }
        },
        _ => {
            problems.push(problem(
                "cadence",
                "is required: an ISO-8601 duration such as P1D or PT30M",
            ));
            None
        }
    };
    let holdout = match document.get("holdout") {
        None => {
            document.insert("holdout".into(), json!(DEFAULT_HOLDOUT));
            Some(DEFAULT_HOLDOUT)
        }
        Some(value) => match value.as_f64() {
            Some(holdout) if (0.0..1.0).contains(&holdout) => Some(holdout),
            _ => {
                problems.push(problem(
                    "holdout",
                    format!("must be a fraction in [0, 1); got {value}"),
                ));
                None
            }
        },
    };
    let reward = match document.get("reward") {
        Some(Value::String(reward)) if reward == "redeemed" || reward == "clicked" => {
            Some(reward.clone())
        }
        _ => {
            problems.push(problem(
                "reward",
                "is required: \"redeemed\" or \"clicked\"",
            ));
            None
        }
    };
    let half_life = match document.get("halfLife") {
        None => Some(DEFAULT_HALF_LIFE),
        Some(value) => match value.as_f64() {
            Some(days) if (MIN_HALF_LIFE_DAYS..=MAX_HALF_LIFE_DAYS).contains(&days) => Some(days),
            _ => {
                problems.push(problem(
                    "halfLife",
                    format!(
                        "must be a number of days in [{MIN_HALF_LIFE_DAYS}, {MAX_HALF_LIFE_DAYS}]; got {value}"
                    ),
                ));
                None
            }
        },
    };
    if problems.len() != before {
        return None;
    }
    Some(AlwaysOn {
        pool: pool?,
        valid_days: valid_days?,
        cadence_seconds: cadence_seconds?,
        slots: slots?,
        holdout: holdout?,
        reward: reward?,
        half_life: half_life?,
    })
}

fn bounded_integer(
    document: &Map<String, Value>,
    field: &str,
    low: u64,
    high: u64,
    problems: &mut Vec<FieldProblem>,
) -> Option<u64> {
    match document.get(field).and_then(Value::as_u64) {
        Some(number) if (low..=high).contains(&number) => Some(number),
        _ => {
            problems.push(problem(
                field,
                format!("is required: an integer from {low} to {high}"),
            ));
            None
        }
    }
}

/// A pool: 1 to 1,000 offers, each `{offerId, templateId?, rules?}`, none twice.
pub fn parse_pool(
    value: Option<&Value>,
    campaign_id: Option<&str>,
    problems: &mut Vec<FieldProblem>,
) -> Option<Vec<PoolOffer>> {
    let Some(Value::Array(entries)) = value else {
        problems.push(problem(
            "pool",
            "is required: an array of {offerId, templateId?, rules?}",
        ));
        return None;
    };
    if entries.is_empty() || entries.len() > MAX_POOL {
        problems.push(problem(
            "pool",
            format!(
                "must hold 1 to {MAX_POOL} offers; it holds {}",
                entries.len()
            ),
        ));
        return None;
    }
    let before = problems.len();
    let mut pool = Vec::with_capacity(entries.len());
    let mut seen = HashSet::new();
    for (index, entry) in entries.iter().enumerate() {
        let field = |name: &str| format!("pool[{index}].{name}");
        let Value::Object(entry) = entry else {
            problems.push(problem(format!("pool[{index}]"), "must be an object"));
            continue;
        };
        for name in entry.keys() {
            if !["offerId", "templateId", "rules"].contains(&name.as_str()) {
                problems.push(problem(
                    field(&quote(name)),
                    "is not a field of a pool offer",
                ));
            }
        }
        let offer_id = match entry.get("offerId") {
            Some(Value::String(id)) => match OfferId::try_from(id.as_str()) {
                Ok(id) => id,
                Err(invalid) => {
                    problems.push(problem(field("offerId"), invalid.0));
                    continue;
                }
            },
            _ => {
                problems.push(problem(field("offerId"), "is required: a non-empty string"));
                continue;
            }
        };
        if !seen.insert(offer_id.clone()) {
            problems.push(problem(
                field("offerId"),
                format!("{} is in the pool twice", quote(&offer_id)),
            ));
        }
        if let Some(campaign_id) = campaign_id {
            // The rows' sortKey is campaignId+offerId.
            let bytes = campaign_id.len() + 1 + offer_id.len();
            if bytes > MAX_SORT_KEY_BYTES {
                problems.push(problem(
                    field("offerId"),
                    format!("campaignId+offerId is {bytes} bytes; a sortKey may have at most {MAX_SORT_KEY_BYTES}"),
                ));
            }
        }
        let template_id = match entry.get("templateId") {
            None => None,
            Some(Value::String(id)) if key_problem("templateId", id, MAX_ID_BYTES).is_none() => {
                Some(id.clone())
            }
            Some(_) => {
                problems.push(problem(field("templateId"), "must be a non-empty string"));
                None
            }
        };
        let rules = match entry.get("rules") {
            None => None,
            Some(Value::Object(rules)) => Some(rules.clone()),
            Some(_) => {
                problems.push(problem(field("rules"), "must be an object of rule values"));
                None
            }
        };
        pool.push(PoolOffer {
            offer_id,
            template_id,
            rules,
        });
    }
    (problems.len() == before).then_some(pool)
}

/// An ISO-8601 duration of fixed length in seconds: `PnW` or
/// `PnDTnHnMnS` (each part optional, whole numbers). Years and months have
/// no fixed length and are refused.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let refuse = || {
        format!(
            "must be an ISO-8601 duration of weeks, days, hours, minutes or seconds (P1D, PT30M, P1DT12H); got {}",
            quote(text)
        )
    };
    let rest = text.strip_prefix('P').ok_or_else(refuse)?;
    if rest.is_empty() || text.len() > 32 {
        return Err(refuse());
    }
    let (date_part, time_part) = match rest.split_once('T') {
        Some((_, "")) => return Err(refuse()),
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    let mut total: u64 = 0;
    let mut add = |part: &str, units: &[(char, u64)]| -> Result<(), String> {
        let mut number = String::new();
        let mut next_unit = 0;
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let position = units[next_unit..]
                .iter()
                .position(|(unit, _)| *unit == c)
                .ok_or_else(refuse)?;
            let (_, seconds) = units[next_unit + position];
            next_unit += position + 1;
            let count: u64 = number.parse().map_err(|_| refuse())?;
            number.clear();
            total = count
                .checked_mul(seconds)
                .and_then(|part| total.checked_add(part))
                .ok_or_else(refuse)?;
        }
        if number.is_empty() {
            Ok(())
        } else {
            Err(refuse())
        }
    };
    if date_part.contains(['Y', 'M']) {
        return Err(format!(
            "years and months have no fixed length: use days (P30D); got {}",
            quote(text)
        ));
    }
    add(date_part, &[('W', 7 * 86_400), ('D', 86_400)])?;
    if let Some(time) = time_part {
        add(time, &[('H', 3_600), ('M', 60), ('S', 1)])?;
    }
    Ok(total)
}

/// A planned campaign's definition: the PLAN as given (section 12), with
/// `mode: "planned"`; its dates give the status (`expiryDate` ends it).
pub fn planned_definition(
    campaign_id: &CampaignId,
    plan: &Map<String, Value>,
) -> Result<CampaignDefinition, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let mut document = plan.clone();
    document.insert("mode".into(), json!(CampaignMode::Planned.as_str()));
    let start = date(&document, "startDate", true, &mut problems);
    let end = date(&document, "expiryDate", true, &mut problems);
    let budget = document
        .get("budget")
        .and_then(|value| parse_budget(value, &mut problems));
    let size = value_size(&Value::Object(document.clone()));
    if size > MAX_DEFINITION_BYTES {
        problems.push(problem(
            "plan",
            format!("it is {size} bytes; at most {MAX_DEFINITION_BYTES}"),
        ));
    }
    if let Some(message) = item_problem(&document) {
        problems.push(problem("plan", message));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(CampaignDefinition {
        campaign_id: campaign_id.clone(),
        mode: CampaignMode::Planned,
        start,
        end,
        budget,
        always_on: None,
        document,
    })
}

/// What a plan chose from: the learning counters as read at its first write.
/// Stored with its definition, so that a rerun chooses the same rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub counters: Vec<LearningCounter>,
    pub taken_at: DateTime<Utc>,
}

impl Snapshot {
    /// The counters, bounded: overall counters first, then attribute
    /// counters by how many offers they saw, as many as fit in
    /// `MAX_SNAPSHOT_BYTES`. Returns the snapshot and how many were left out.
    pub fn bounded(mut counters: Vec<LearningCounter>, taken_at: DateTime<Utc>) -> (Self, usize) {
        counters.sort_by(|a, b| {
            let overall = |c: &LearningCounter| !matches!(c.scope, Scope::Overall);
            overall(a)
                .cmp(&overall(b))
                .then(b.counts.assigned.cmp(&a.counts.assigned))
                .then_with(|| a.offer_id.cmp(&b.offer_id))
                .then_with(|| scope_key(&a.scope).cmp(&scope_key(&b.scope)))
        });
        let mut size = 2;
        let mut kept = 0;
        for counter in &counters {
            let entry = counter_json(counter).to_string().len() + 1;
            if size + entry > MAX_SNAPSHOT_BYTES {
                break;
            }
            size += entry;
            kept += 1;
        }
        let dropped = counters.len() - kept;
        counters.truncate(kept);
        (Self { counters, taken_at }, dropped)
    }

    /// `[[offerId, name|null, value|null, assigned, clicked, redeemed], ...]`.
    pub fn encode(&self) -> String {
        Value::Array(self.counters.iter().map(counter_json).collect()).to_string()
    }

    pub fn decode(text: &str, taken_at: &str) -> Option<Self> {
        let Value::Array(entries) = serde_json::from_str(text).ok()? else {
            return None;
        };
        let counters = entries
            .iter()
            .map(|entry| {
                let (fields, day) = match entry.as_array()?.as_slice() {
                    [fields @ .., day] if fields.len() == 6 => {
                        (fields, Some(u32::try_from(day.as_u64()?).ok()?))
                    }
                    fields => (fields, None),
                };
                let [offer, name, value, assigned, clicked, redeemed] = fields else {
                    return None;
                };
                let scope = match (name, value) {
                    (Value::Null, Value::Null) => Scope::Overall,
                    (Value::String(name), Value::String(value)) => Scope::Attribute {
                        name: name.clone(),
                        value: value.clone(),
                    },
                    _ => return None,
                };
                Some(LearningCounter {
                    offer_id: offer.as_str()?.to_owned(),
                    scope,
                    day,
                    counts: Counts {
                        assigned: assigned.as_u64()?,
                        clicked: clicked.as_u64()?,
                        redeemed: redeemed.as_u64()?,
                    },
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            counters,
            taken_at: parse_timestamp(taken_at)?,
        })
    }

    pub fn taken_at_text(&self) -> String {
        format_timestamp(self.taken_at)
    }
}

fn scope_key(scope: &Scope) -> (&str, &str) {
    match scope {
        Scope::Overall => ("", ""),
        Scope::Attribute { name, value } => (name, value),
    }
}

fn counter_json(counter: &LearningCounter) -> Value {
    let (name, value) = match &counter.scope {
        Scope::Overall => (Value::Null, Value::Null),
        Scope::Attribute { name, value } => (json!(name), json!(value)),
    };
    let mut entry = json!([
        counter.offer_id,
        name,
        value,
        counter.counts.assigned,
        counter.counts.clicked,
        counter.counts.redeemed
    ]);
    // A dated counter's UTC day, seventh (snapshots before: six, undated).
    if let (Some(day), Value::Array(entry)) = (counter.day, &mut entry) {
        entry.push(json!(day));
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    fn always_on(extra: Value) -> Value {
        let mut value = json!({
            "campaignId": "camp-ao", "mode": "alwaysOn",
            "pool": [{"offerId": "co-fries", "rules": {"minimumSpend": 3}}, {"offerId": "co-coffee"}],
            "startDate": "2030-01-01T00:00:00Z", "endDate": "2030-02-01T00:00:00Z",
            "validDays": 7, "cadence": "P1D", "slots": 2, "reward": "redeemed"
        });
        if let (Value::Object(base), Value::Object(extra)) = (&mut value, extra) {
            base.extend(extra);
        }
        value
    }

    fn fields(result: Result<CampaignDefinition, Vec<FieldProblem>>) -> Vec<String> {
        result
            .expect_err("invalid")
            .into_iter()
            .map(|problem| problem.field)
            .collect()
    }

    #[test]
    fn an_always_on_definition_is_read_with_its_defaults() {
        let definition = parse_definition(&always_on(json!({})).to_string()).expect("valid");
        assert_eq!(definition.mode, CampaignMode::AlwaysOn);
        let always_on = definition.always_on.expect("always-on part");
        assert_eq!(always_on.cadence_seconds, 86_400);
        assert_eq!(always_on.holdout, DEFAULT_HOLDOUT);
        assert_eq!(definition.document["holdout"], json!(0.1));
        assert_eq!(always_on.pool.len(), 2);
        assert_eq!(always_on.half_life, DEFAULT_HALF_LIFE);
        assert!(definition.budget.is_none());
        let definition = parse_definition(&self::always_on(json!({"halfLife": 3.5})).to_string())
            .expect("valid");
        assert_eq!(definition.always_on.expect("always-on").half_life, 3.5);
        assert_eq!(definition.document["halfLife"], json!(3.5));
    }

    #[test]
    fn each_invalid_field_is_named() {
        let cases = [
            (json!({"validDays": 0}), "validDays"),
            (json!({"validDays": 366}), "validDays"),
            (json!({"slots": 6}), "slots"),
            (json!({"slots": 3}), "slots"),
            (json!({"cadence": "PT59S"}), "cadence"),
            (json!({"cadence": "P1M"}), "cadence"),
            (json!({"cadence": "1 day"}), "cadence"),
            (json!({"holdout": 1}), "holdout"),
            (json!({"reward": "liked"}), "reward"),
            (json!({"halfLife": 0}), "halfLife"),
            (json!({"halfLife": -7}), "halfLife"),
            (json!({"halfLife": 4_000}), "halfLife"),
            (json!({"halfLife": "14"}), "halfLife"),
            (json!({"endDate": "2029-01-01T00:00:00Z"}), "endDate"),
            (json!({"startDate": "tomorrow"}), "startDate"),
            (json!({"pool": []}), "pool"),
            (
                json!({"pool": [{"offerId": "a"}, {"offerId": "a"}]}),
                "pool[1].offerId",
            ),
            (
                json!({"pool": [{"offerId": "a", "colour": 1}]}),
                "pool[0].\"colour\"",
            ),
            (json!({"campaignId": ""}), "campaignId"),
            (json!({"campaignId": "c".repeat(1_025)}), "campaignId"),
            (json!({"budget": {"offers": -1}}), "budget.offers"),
            (
                json!({"budget": {"redemptions": "10"}}),
                "budget.redemptions",
            ),
            (
                json!({"budget": {"discountValue": 1.23456}}),
                "budget.discountValue",
            ),
            (
                json!({"budget": {"discountValue": -5}}),
                "budget.discountValue",
            ),
            (json!({"budget": {"offers": 1.5}}), "budget.offers"),
            (json!({"budget": 3}), "budget"),
            (json!({"colour": "red"}), "\"colour\""),
        ];
        for (extra, field) in cases {
            let named = fields(parse_definition(&always_on(extra.clone()).to_string()));
            assert!(named.iter().any(|f| f == field), "{extra}: {named:?}");
        }
        assert_eq!(fields(parse_definition("[]")), ["definition"]);
        assert_eq!(
            fields(parse_definition("{\"campaignId\": \"c\"}")),
            ["mode"]
        );
        assert_eq!(
            fields(parse_definition(
                "{\"campaignId\": \"c\", \"mode\": \"planned\"}"
            )),
            ["mode"]
        );
        let huge = always_on(json!({"description": "d".repeat(40_000)})).to_string();
        assert_eq!(fields(parse_definition(&huge)), ["definition"]);
    }

    #[test]
    fn a_manual_definition_only_carries_dates_and_a_budget() {
        let definition = parse_definition(
            &json!({"campaignId": "m", "mode": "manual",
                "budget": {"offers": 20, "discountValue": 50.25}})
            .to_string(),
        )
        .expect("valid");
        let budget = definition.budget.expect("budget");
        assert_eq!(budget.offers, Some(20));
        assert_eq!(
            budget.view(&BudgetUse::default()),
            json!({"offers": {"limit": 20, "used": 0}, "discountValue": {"limit": 50.25, "used": 0}})
        );
        let used = BudgetUse {
            offers: 3,
            redemptions: 0,
            discount_value: "40.0000".parse().expect("decimal"),
        };
        assert_eq!(
            budget.view(&used)["discountValue"]["used"].to_string(),
            "40",
            "money is shown as the amount, not a float"
        );
        let used = BudgetUse {
            discount_value: "0.1".parse::<Decimal>().expect("decimal")
                + "0.2".parse::<Decimal>().expect("decimal"),
            ..used
        };
        assert_eq!(
            budget.view(&used)["discountValue"]["used"].to_string(),
            "0.3"
        );
        let dec = |text: &str| text.parse::<Decimal>().expect("decimal");
        assert_eq!(percent_used(dec("45.5"), dec("50.25")), 90);
        assert_eq!(percent_used(dec("1"), Decimal::ZERO), 100);
        let budget = Budget {
            offers: Some(0),
            redemptions: Some(3),
            discount_value: Some(Number::from_f64(50.25).expect("number")),
        };
        let used = BudgetUse {
            offers: 0,
            redemptions: 2,
            discount_value: dec("45.2249"),
        };
        assert_eq!(
            budget.percents_used(&used),
            [
                (BudgetLimit::Offers, 100),
                (BudgetLimit::Redemptions, 66),
                (BudgetLimit::DiscountValue, 89),
            ],
            "rounded down, from the exact amounts (45.2249 / 50.25 = 89.99...)"
        );
        assert_eq!(Budget::default().percents_used(&used), []);
        assert!(definition.start.is_none());
        let named = fields(parse_definition(
            &json!({"campaignId": "m", "mode": "manual", "pool": []}).to_string(),
        ));
        assert_eq!(named, ["\"pool\""]);
    }

    #[test]
    fn durations_have_fixed_lengths() {
        assert_eq!(parse_duration("PT1M"), Ok(60));
        assert_eq!(parse_duration("P1W"), Ok(604_800));
        assert_eq!(parse_duration("P1DT12H30M5S"), Ok(131_405));
        for bad in [
            "P",
            "PT",
            "P1H",
            "PT1D",
            "P1D2W",
            "P99999999999999999999D",
            "P1.5D",
            "1D",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn status_is_computed_from_dates_and_the_pause() {
        let at = |text: &str| parse_timestamp(text).expect("date");
        let (start, end) = (
            Some(at("2030-01-01T00:00:00Z")),
            Some(at("2030-02-01T00:00:00Z")),
        );
        let status = |now: &str, paused| CampaignStatus::at(start, end, paused, at(now));
        assert_eq!(
            status("2029-12-31T00:00:00Z", false),
            CampaignStatus::Scheduled
        );
        assert_eq!(
            status("2030-01-01T00:00:00Z", false),
            CampaignStatus::Active
        );
        assert_eq!(status("2030-01-10T00:00:00Z", true), CampaignStatus::Paused);
        assert_eq!(status("2029-12-31T00:00:00Z", true), CampaignStatus::Paused);
        assert_eq!(status("2030-02-01T00:00:00Z", true), CampaignStatus::Ended);
        assert_eq!(
            CampaignStatus::at(None, None, false, at("2030-01-01T00:00:00Z")),
            CampaignStatus::Active
        );
    }

    #[test]
    fn a_snapshot_round_trips_and_is_bounded() {
        // Overall counters dated, attribute ones not: both round-trip.
        let counter = |offer: &str, scope: Scope, assigned| LearningCounter {
            offer_id: offer.into(),
            day: matches!(scope, Scope::Overall).then_some(20_454),
            scope,
            counts: Counts {
                assigned,
                clicked: 1,
                redeemed: 2,
            },
        };
        let taken_at = parse_timestamp("2030-01-01T00:00:00Z").expect("date");
        let (snapshot, dropped) = Snapshot::bounded(
            vec![
                counter(
                    "b",
                    Scope::Attribute {
                        name: "tier".into(),
                        value: "gold".into(),
                    },
                    5,
                ),
                counter("a", Scope::Overall, 10),
            ],
            taken_at,
        );
        assert_eq!(dropped, 0);
        assert_eq!(snapshot.counters[0].offer_id, "a", "overall first");
        let decoded =
            Snapshot::decode(&snapshot.encode(), &snapshot.taken_at_text()).expect("decoded");
        assert_eq!(decoded, snapshot);
        assert_eq!(decoded.counters[0].day, Some(20_454));
        assert_eq!(decoded.counters[1].day, None);
        let many: Vec<LearningCounter> = (0..20_000)
            .map(|i| {
                counter(
                    "offer",
                    Scope::Attribute {
                        name: "segment".into(),
                        value: format!("value-{i}"),
                    },
                    i,
                )
            })
            .collect();
        let (snapshot, dropped) = Snapshot::bounded(many, taken_at);
        assert!(dropped > 0);
        assert!(snapshot.encode().len() <= MAX_SNAPSHOT_BYTES);
        assert_eq!(
            snapshot.counters[0].counts.assigned, 19_999,
            "the best known kept"
        );
        assert!(Snapshot::decode("[[1]]", "2030-01-01T00:00:00Z").is_none());
    }
}
