//! A user's behaviour profile (contract section 13): what their counted
//! visits (valid transactions, any age) show, kept as one bounded item, and
//! the context attribute values a choice reads from it: `visits30`, `mode`,
//! `spend` and `daypart`.
//!
//! The profile keeps only what the buckets need, so it stays the same size
//! whatever the number of visits: a count and a spend total, the
//! `occurredAt` of the [`RECENT_VISITS_KEPT`] latest visits (`visits30`
//! tops out at `10+`), and per service mode a count and its latest use
//! (at most [`MODES_KEPT`] modes). Counting a visit is [`Profile::counted`],
//! pure; exactly-once is the store's (docs/design.md, "Behaviour profiles").

use crate::transaction::Transaction;
use chrono::{DateTime, Duration, Timelike, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many of the latest visits are kept: `visits30`'s top bucket is `10+`,
/// so the ten latest visits decide it exactly as of the latest one.
pub const RECENT_VISITS_KEPT: usize = 10;
/// How many service modes are counted. Ordering backends have a handful
/// (pickup, delivery, dine-in, drive-thru); beyond this many distinct ones the
/// least used is forgotten, so that a hostile stream cannot grow the item.
pub const MODES_KEPT: usize = 8;
/// The window of `visits30`: the visits in the 30 days up to a visit.
pub const VISITS_WINDOW_DAYS: i64 = 30;
/// The largest spend total kept: DynamoDB stores no number above 9.99...e125.
pub const MAX_SPEND_TOTAL: f64 = 9.0e125;
/// `mode` of a user none of whose visits named a service mode.
pub const NO_MODE: &str = "none";
/// Binary floating point sums of money land a hair below a bucket's bound
/// (0.1 + 0.2); an average within this fraction of a bound is on it.
const BOUND_TOLERANCE: f64 = 1e-9;

/// The context attributes a profile gives a choice, by name.
pub const VISITS30: &str = "visits30";
pub const MODE: &str = "mode";
pub const SPEND: &str = "spend";
pub const DAYPART: &str = "daypart";

/// Whether a user id is one no profile can have: `#` starts no Cognito
/// identity id, and the profiles table keeps its own items under such keys.
pub fn reserved_user_id(user_id: &str) -> bool {
    user_id.starts_with('#')
}

/// What one visit brings to the profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    pub occurred_at: DateTime<Utc>,
    pub total_cost: f64,
    pub service_mode: Option<String>,
}

impl From<&Transaction> for Visit {
    fn from(transaction: &Transaction) -> Self {
        Self {
            occurred_at: transaction.occurred_at,
            total_cost: transaction.total_cost,
            service_mode: transaction.service_mode.clone(),
        }
    }
}

/// How often one service mode was used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModeUse {
    pub count: u64,
    /// The latest `occurredAt` among its visits (breaks ties between modes).
    pub last_at: DateTime<Utc>,
}

/// A user's profile: every counted visit is in it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Counted visits, all time.
    pub visits: u64,
    /// The sum of their `totalCost` (at most [`MAX_SPEND_TOTAL`]).
    pub spend_total: f64,
    /// The latest `occurredAt` counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_visit_at: Option<DateTime<Utc>>,
    /// The `occurredAt` of the latest visits, newest first, at most
    /// [`RECENT_VISITS_KEPT`].
    #[serde(default)]
    pub recent_visits: Vec<DateTime<Utc>>,
    /// Each service mode used, at most [`MODES_KEPT`].
    #[serde(default)]
    pub modes: BTreeMap<String, ModeUse>,
}

/// `visits30`: a user's visits in the 30 days up to a visit, that one included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Visits30 {
    #[serde(rename = "1")]
    One,
    #[serde(rename = "2-3")]
    TwoToThree,
    #[serde(rename = "4-9")]
    FourToNine,
    #[serde(rename = "10+")]
    TenOrMore,
}

impl Visits30 {
    pub fn of_count(visits: usize) -> Self {
        match visits {
            0 | 1 => Visits30::One,
            2..=3 => Visits30::TwoToThree,
            4..=9 => Visits30::FourToNine,
            _ => Visits30::TenOrMore,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Visits30::One => "1",
            Visits30::TwoToThree => "2-3",
            Visits30::FourToNine => "4-9",
            Visits30::TenOrMore => "10+",
        }
    }
}

/// `spend`: the average `totalCost` over all counted visits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Spend {
    #[serde(rename = "<10")]
    Below10,
    #[serde(rename = "10-25")]
    From10To25,
    #[serde(rename = "25+")]
    From25,
}

impl Spend {
    /// The bucket of `total / visits` (`<10` for no visit), decided without
    /// dividing: `total >= bound * visits`, within [`BOUND_TOLERANCE`].
    pub fn of_average(total: f64, visits: u64) -> Self {
        let visits = visits as f64;
        let reaches = |bound: f64| total >= bound * visits * (1.0 - BOUND_TOLERANCE);
        if visits > 0.0 && reaches(25.0) {
            Spend::From25
        } else if visits > 0.0 && reaches(10.0) {
            Spend::From10To25
        } else {
            Spend::Below10
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Spend::Below10 => "<10",
            Spend::From10To25 => "10-25",
            Spend::From25 => "25+",
        }
    }
}

/// `daypart` of a visit, by its UTC hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Daypart {
    /// [5, 11)
    Morning,
    /// [11, 15)
    Midday,
    /// [15, 21)
    Evening,
    /// [21, 5)
    Night,
}

impl Daypart {
    pub fn of(at: DateTime<Utc>) -> Self {
        match at.hour() {
            5..=10 => Daypart::Morning,
            11..=14 => Daypart::Midday,
            15..=20 => Daypart::Evening,
            _ => Daypart::Night,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Daypart::Morning => "morning",
            Daypart::Midday => "midday",
            Daypart::Evening => "evening",
            Daypart::Night => "night",
        }
    }
}

/// The context attribute values of a visit, after it is counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileContext {
    pub visits30: Visits30,
    /// A service mode, or [`NO_MODE`].
    pub mode: String,
    pub spend: Spend,
    pub daypart: Daypart,
}

impl ProfileContext {
    /// As selection's context attributes: name to value.
    pub fn attributes(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (VISITS30.to_owned(), self.visits30.as_str().to_owned()),
            (MODE.to_owned(), self.mode.clone()),
            (SPEND.to_owned(), self.spend.as_str().to_owned()),
            (DAYPART.to_owned(), self.daypart.as_str().to_owned()),
        ])
    }
}

impl Profile {
    /// The profile with `visit` counted (the caller makes sure it is counted
    /// once). Out of order is fine: every part is independent of the order
    /// in which visits are counted.
    pub fn counted(&self, visit: &Visit) -> Profile {
        let mut next = self.clone();
        next.visits = next.visits.saturating_add(1);
        // Costs are finite and >= 0 (parse_transaction); the sum is capped
        // where DynamoDB could no longer store it.
        next.spend_total = (next.spend_total + visit.total_cost).min(MAX_SPEND_TOTAL);
        next.last_visit_at = Some(
            next.last_visit_at
                .map_or(visit.occurred_at, |last| last.max(visit.occurred_at)),
        );
        let at = next
            .recent_visits
            .partition_point(|kept| *kept >= visit.occurred_at);
        next.recent_visits.insert(at, visit.occurred_at);
        next.recent_visits.truncate(RECENT_VISITS_KEPT);
        if let Some(mode) = &visit.service_mode {
            let used = next.modes.entry(mode.clone()).or_insert(ModeUse {
                count: 0,
                last_at: visit.occurred_at,
            });
            used.count = used.count.saturating_add(1);
            used.last_at = used.last_at.max(visit.occurred_at);
            if next.modes.len() > MODES_KEPT {
                let least = next
                    .modes
                    .iter()
                    .min_by(|(a_name, a), (b_name, b)| {
                        (a.count, a.last_at)
                            .cmp(&(b.count, b.last_at))
                            .then_with(|| b_name.cmp(a_name))
                    })
                    .map(|(name, _)| name.clone());
                if let Some(least) = least {
                    next.modes.remove(&least);
                }
            }
        }
        next
    }

    /// The visits among the kept ones in the 30 days up to `at`, `at` included.
    pub fn visits_within_30_days(&self, at: DateTime<Utc>) -> usize {
        let after = at.checked_sub_signed(Duration::days(VISITS_WINDOW_DAYS));
        self.recent_visits
            .iter()
            .filter(|kept| **kept <= at && after.is_none_or(|after| **kept > after))
            .count()
    }

    /// `visits30` as of `at`, for a profile that counts a visit at `at`.
    /// Exact as of the latest visit; for a visit older than the
    /// [`RECENT_VISITS_KEPT`] latest, a lower bound (at least `1`).
    pub fn visits30_at(&self, at: DateTime<Utc>) -> Visits30 {
        Visits30::of_count(self.visits_within_30_days(at).max(1))
    }

    /// The service mode used most (ties: the one used most recently, then
    /// the first by name), or `None` when no visit named one.
    pub fn mode(&self) -> Option<&str> {
        self.modes
            .iter()
            .max_by(|(a_name, a), (b_name, b)| {
                (a.count, a.last_at)
                    .cmp(&(b.count, b.last_at))
                    .then_with(|| b_name.cmp(a_name))
            })
            .map(|(name, _)| name.as_str())
    }

    pub fn spend(&self) -> Spend {
        Spend::of_average(self.spend_total, self.visits)
    }

    /// The context of `visit`, for a profile that counts it already.
    pub fn context_of(&self, visit: &Visit) -> ProfileContext {
        ProfileContext {
            visits30: self.visits30_at(visit.occurred_at),
            mode: self.mode().unwrap_or(NO_MODE).to_owned(),
            spend: self.spend(),
            daypart: Daypart::of(visit.occurred_at),
        }
    }
}

/// The context of `visit` after it is counted in `before` (the profile
/// without it; `None` for a user never seen): what the always-on chooser
/// reads.
pub fn context_after(before: Option<&Profile>, visit: &Visit) -> ProfileContext {
    before
        .cloned()
        .unwrap_or_default()
        .counted(visit)
        .context_of(visit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, day, hour, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn visit(day: u32, hour: u32, cost: f64, mode: Option<&str>) -> Visit {
        Visit {
            occurred_at: at(day, hour),
            total_cost: cost,
            service_mode: mode.map(str::to_owned),
        }
    }

    fn profile_of(visits: &[Visit]) -> Profile {
        visits
            .iter()
            .fold(Profile::default(), |profile, visit| profile.counted(visit))
    }

    #[test]
    fn buckets_at_their_bounds() {
        let counts: Vec<&str> = [1, 2, 3, 4, 9, 10, 5000]
            .map(|n| Visits30::of_count(n).as_str())
            .to_vec();
        assert_eq!(counts, ["1", "2-3", "2-3", "4-9", "4-9", "10+", "10+"]);
        assert_eq!(Spend::of_average(9.99, 1), Spend::Below10);
        assert_eq!(Spend::of_average(10.0, 1), Spend::From10To25);
        assert_eq!(Spend::of_average(49.99, 2), Spend::From10To25);
        assert_eq!(Spend::of_average(50.0, 2), Spend::From25);
        assert_eq!(Spend::of_average(0.0, 0), Spend::Below10);
        // 0.1 + 0.2 is 0.30000000000000004, 3.3 * 3 is 9.899999999999999.
        assert_eq!(Spend::of_average(3.3 + 3.3 + 3.4, 1), Spend::From10To25);
        let hours: Vec<&str> = [0, 4, 5, 10, 11, 14, 15, 20, 21, 23]
            .map(|hour| Daypart::of(at(1, hour)).as_str())
            .to_vec();
        assert_eq!(
            hours,
            [
                "night", "night", "morning", "morning", "midday", "midday", "evening", "evening",
                "night", "night"
            ]
        );
    }

    #[test]
    fn a_first_visit_and_a_profile_of_several() {
        let first = context_after(None, &visit(3, 9, 12.0, None));
        assert_eq!(
            first.attributes(),
            BTreeMap::from([
                ("daypart".to_owned(), "morning".to_owned()),
                ("mode".to_owned(), "none".to_owned()),
                ("spend".to_owned(), "10-25".to_owned()),
                ("visits30".to_owned(), "1".to_owned()),
            ])
        );
        let profile = profile_of(&[
            visit(1, 12, 30.0, Some("pickup")),
            visit(2, 12, 30.0, Some("delivery")),
            visit(3, 12, 30.0, Some("delivery")),
            visit(4, 22, 0.0, Some("pickup")),
        ]);
        assert_eq!(profile.visits, 4);
        assert_eq!(profile.last_visit_at, Some(at(4, 22)));
        // Two each: pickup was used last.
        assert_eq!(profile.mode(), Some("pickup"));
        assert_eq!(profile.spend(), Spend::From10To25);
        let context = profile.context_of(&visit(4, 22, 0.0, Some("pickup")));
        assert_eq!(context.visits30, Visits30::FourToNine);
        assert_eq!(context.daypart, Daypart::Night);
    }

    #[test]
    fn the_window_is_the_30_days_up_to_the_visit() {
        let profile = profile_of(&[
            visit(1, 10, 1.0, None),
            visit(2, 10, 1.0, None),
            visit(31, 10, 1.0, None),
        ]);
        // May 1st 10:00 is exactly 30 days before May 31st 10:00: outside.
        assert_eq!(profile.visits_within_30_days(at(31, 10)), 2);
        assert_eq!(profile.visits30_at(at(31, 10)), Visits30::TwoToThree);
        // As of May 2nd, the later visit does not count.
        assert_eq!(profile.visits_within_30_days(at(2, 10)), 2);
    }

    #[test]
    fn many_modes_and_many_visits_stay_bounded() {
        let mut profile = Profile::default();
        for n in 0..2_000u32 {
            let mode = format!("mode-{}", n % 50);
            profile = profile.counted(&visit(1 + n % 28, n % 24, 5.0, Some(&mode)));
        }
        assert_eq!(profile.visits, 2_000);
        assert_eq!(profile.recent_visits.len(), RECENT_VISITS_KEPT);
        assert!(profile.modes.len() <= MODES_KEPT);
        assert_eq!(profile.spend_total, 10_000.0);
        let huge = Visit {
            total_cost: 9.0e125,
            ..visit(1, 1, 0.0, None)
        };
        let profile = profile.counted(&huge).counted(&huge);
        assert_eq!(profile.spend_total, MAX_SPEND_TOTAL);
    }

    fn visits() -> impl Strategy<Value = Vec<Visit>> {
        let one = (0i64..120 * 24, 0u32..10_000, proptest::option::of(0u8..3)).prop_map(
            |(hours, cents, mode)| Visit {
                occurred_at: at(1, 0) + Duration::hours(hours),
                total_cost: f64::from(cents) / 100.0,
                service_mode: mode
                    .map(|m| ["pickup", "delivery", "dine-in"][usize::from(m)].into()),
            },
        );
        proptest::collection::vec(one, 1..40)
    }

    proptest! {
        /// The profile is the same whatever the order its visits are
        /// counted in, and its buckets are those computed from all visits.
        #[test]
        fn any_order_gives_the_profile_of_all_visits(
            visits in visits(),
            seed in any::<u64>(),
        ) {
            let forward = profile_of(&visits);
            let mut shuffled = visits.clone();
            // A deterministic shuffle by the seed.
            let len = shuffled.len();
            for i in (1..len).rev() {
                let j = (seed.wrapping_mul(i as u64 + 7) % (i as u64 + 1)) as usize;
                shuffled.swap(i, j);
            }
            let other = profile_of(&shuffled);
            prop_assert_eq!(forward.visits, other.visits);
            prop_assert_eq!(&forward.recent_visits, &other.recent_visits);
            prop_assert_eq!(&forward.modes, &other.modes);
            prop_assert_eq!(forward.last_visit_at, other.last_visit_at);
            prop_assert_eq!(forward.spend(), other.spend());

            let last = visits.iter().map(|v| v.occurred_at).max().unwrap_or_default();
            let in_window = visits
                .iter()
                .filter(|v| v.occurred_at <= last && v.occurred_at > last - Duration::days(30))
                .count();
            prop_assert_eq!(forward.visits30_at(last), Visits30::of_count(in_window));
            let total: f64 = visits.iter().map(|v| v.total_cost).sum();
            prop_assert_eq!(forward.spend(), Spend::of_average(total, visits.len() as u64));
            let mut uses: BTreeMap<&str, (u64, DateTime<Utc>)> = BTreeMap::new();
            for v in &visits {
                if let Some(mode) = &v.service_mode {
                    let entry = uses.entry(mode).or_insert((0, v.occurred_at));
                    entry.0 += 1;
                    entry.1 = entry.1.max(v.occurred_at);
                }
            }
            let best = uses
                .iter()
                .max_by(|(an, a), (bn, b)| a.cmp(b).then_with(|| bn.cmp(an)))
                .map(|(name, _)| *name);
            prop_assert_eq!(forward.mode(), best);
            prop_assert!(forward.recent_visits.len() <= RECENT_VISITS_KEPT);
        }
    }
}
