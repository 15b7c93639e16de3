//! The behaviour world (`offers campaign simulate --world behaviour`): an
//! always-on campaign (contract section 13) played visit by visit through
//! the chooser the user-visits function runs, to show what the profile
//! buckets are worth.
//!
//! Users visit over simulated weeks, a few visits each. Each user has a
//! service mode, a spend level and a time of day (and a tier, which scales
//! every rate alike and changes no ranking); each visit is a transaction of
//! that behaviour, with some noise (another mode now and then, another hour
//! now and then, a cost around the user's level). Which offer a user would
//! redeem depends on that behaviour only: each mode, each spend level and
//! each daypart has a favourite offer, good for it and poor for the rest;
//! the other offers are mediocre for everyone.
//!
//! Every visit is counted in the user's profile ([`Profile::counted`]) and
//! its context read from it ([`Profile::context_of`]), then the campaign
//! decides as the function does: [`eligibility`] (cadence, slots, held
//! offers), [`choose`] with the engine of [`AlwaysOnCampaign::engine_with`]
//! built from the learning counters as the statistics table holds them.
//! The counters take an assignment at once and a redemption when it happens
//! (minutes to two days later); the engine is rebuilt from them once per
//! simulated minute that has a visit, so a choice reads statistics at most a
//! minute old, as the function's cache gives them. Whether user u would
//! redeem offer o in a window is one hash draw, the same for every policy.

use crate::always_on::{choose, eligibility, AlwaysOnCampaign, HeldOffer};
use crate::campaign::{AlwaysOn, PoolOffer};
use crate::ids::{CampaignId, OfferId};
use crate::profile::{Daypart, Profile, Visit};
use crate::selection::hash::{combine, unit, SplitMix};
use crate::selection::history::utc_day;
use crate::selection::simulate::{Tuning, TIERS};
use crate::selection::{Counts, LearningCounter, Scope, DEFAULT_HALF_LIFE};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

/// The service modes users have.
pub const MODES: [&str; 3] = ["pickup", "delivery", "dine-in"];
/// Each spend level's average `totalCost`: in `<10`, `10-25` and `25+`
/// whatever the noise (±30%).
pub const SPEND_LEVELS: [f64; 3] = [7.0, 17.0, 38.0];
/// Each daypart's hours (UTC), in section 13's order: morning, midday,
/// evening, night (21:00 to 05:00).
pub const DAYPART_HOURS: [(u32, u32); 4] = [(5, 11), (11, 15), (15, 21), (21, 29)];
/// Offers in the pool.
pub const OFFERS: usize = 12;
/// A favourite offer's rate for its own mode, spend level or daypart.
const FAVOURITE_RATE: f64 = 0.06;
/// A favourite offer's rate for everyone else.
const OTHERS_RATE: f64 = 0.006;
/// A visit in the user's own mode, and at the user's own time of day.
const HABIT: f64 = 0.85;

/// The run's size.
#[derive(Debug, Clone, PartialEq)]
pub struct BehaviourConfig {
    pub users: u64,
    /// The span the visits fall in.
    pub days: u64,
    pub seed: u64,
    /// Rankings per context (the function's default is larger, for its
    /// propensities; the choice's distribution is the same).
    pub draws: u32,
    pub tuning: Tuning,
}

impl Default for BehaviourConfig {
    fn default() -> Self {
        Self {
            users: 20_000,
            days: 28,
            seed: 1,
            draws: 500,
            tuning: Tuning::default(),
        }
    }
}

/// The policies compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BehaviourPolicy {
    /// The chooser with the profile buckets (and the tier) as the context.
    EngineWithProfiles,
    /// The chooser with the tier only: the attributes a user is given.
    EngineWithoutProfiles,
    /// The chooser with no attribute: context-free Thompson sampling.
    ContextFreeThompson,
    /// The holdout's draw for everyone: uniform among the eligible offers.
    Uniform,
    /// The eligible offer with the best true rate for the visit.
    Oracle,
}

impl BehaviourPolicy {
    pub const ALL: [BehaviourPolicy; 5] = [
        BehaviourPolicy::EngineWithProfiles,
        BehaviourPolicy::EngineWithoutProfiles,
        BehaviourPolicy::ContextFreeThompson,
        BehaviourPolicy::Uniform,
        BehaviourPolicy::Oracle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BehaviourPolicy::EngineWithProfiles => "engine with profiles",
            BehaviourPolicy::EngineWithoutProfiles => "engine without profiles",
            BehaviourPolicy::ContextFreeThompson => "context-free thompson",
            BehaviourPolicy::Uniform => "uniform random",
            BehaviourPolicy::Oracle => "oracle",
        }
    }
}

/// One user's behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behaviour {
    pub mode: usize,
    pub spend: usize,
    pub daypart: usize,
    pub tier: usize,
}

/// One visit: who, when, and the context the chooser gets (the profile
/// after this visit is counted).
#[derive(Debug, Clone)]
struct PlannedVisit {
    user: u64,
    at: DateTime<Utc>,
    /// The visit's daypart (index into [`DAYPART_HOURS`]).
    daypart: usize,
    profile: BTreeMap<String, String>,
}

/// The world: its users' behaviour, their visits in time order and each
/// offer's role.
#[derive(Debug, Clone)]
pub struct BehaviourWorld {
    pub config: BehaviourConfig,
    pub start: DateTime<Utc>,
    /// The mediocre rate of each offer.
    pub base: Vec<f64>,
    /// The favourite offer of each mode, spend level and daypart.
    pub by_mode: [usize; 3],
    pub by_spend: [usize; 3],
    pub by_daypart: [usize; 4],
    users: Vec<Behaviour>,
    user_ids: Vec<String>,
    visits: Vec<PlannedVisit>,
}

/// One policy's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct BehaviourResult {
    pub policy: BehaviourPolicy,
    pub visits: u64,
    pub assigned: u64,
    /// Offers the users would redeem.
    pub reward: u64,
    /// Reward by week of assignment.
    pub weekly: Vec<u64>,
    /// Times the statistics were read again (simulated minutes with visits).
    pub refreshes: u64,
}

impl BehaviourWorld {
    pub fn new(config: BehaviourConfig) -> Self {
        let start = Utc
            .with_ymd_and_hms(2030, 1, 7, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let mut rng = SplitMix::new(combine(config.seed, 0xbe4a));
        let mut order: Vec<usize> = (0..OFFERS).collect();
        for i in (1..OFFERS).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        let base = (0..OFFERS).map(|_| 0.01 + 0.01 * rng.unit()).collect();
        let by_mode = [order[0], order[1], order[2]];
        let by_spend = [order[3], order[4], order[5]];
        let by_daypart = [order[6], order[7], order[8], order[9]];
        let days = config.days.max(1);
        let mut users = Vec::new();
        let mut visits = Vec::new();
        for user in 0..config.users {
            let mut rng = SplitMix::new(combine(config.seed ^ 0x0005_e125, user));
            let behaviour = Behaviour {
                mode: rng.below(MODES.len() as u64) as usize,
                spend: rng.below(SPEND_LEVELS.len() as u64) as usize,
                daypart: rng.below(DAYPART_HOURS.len() as u64) as usize,
                tier: rng.below(TIERS.len() as u64) as usize,
            };
            let count = 2 + rng.below(5);
            let mut own: Vec<(DateTime<Utc>, Option<String>, f64)> = (0..count)
                .map(|_| {
                    let (from, to) = if rng.unit() < HABIT {
                        DAYPART_HOURS[behaviour.daypart]
                    } else {
                        (0, 24)
                    };
                    let hour = u64::from(from) + rng.below(u64::from(to - from));
                    let seconds = rng.below(days) * 86_400 + hour * 3_600 + rng.below(3_600);
                    let mode = if rng.unit() < HABIT {
                        behaviour.mode
                    } else {
                        rng.below(MODES.len() as u64) as usize
                    };
                    let cost = SPEND_LEVELS[behaviour.spend] * (0.7 + 0.6 * rng.unit());
                    let at = start + Duration::seconds(seconds as i64);
                    (
                        at,
                        Some(MODES[mode].to_owned()),
                        (cost * 100.0).round() / 100.0,
                    )
                })
                .collect();
            own.sort_by_key(|(at, _, _)| *at);
            // The profile as the function keeps it: each visit counted, in
            // the order they happen, its context read after it.
            let mut profile = Profile::default();
            for (at, service_mode, total_cost) in own {
                let visit = Visit {
                    occurred_at: at,
                    total_cost,
                    service_mode,
                };
                profile = profile.counted(&visit);
                let context = profile.context_of(&visit);
                let daypart = match context.daypart {
                    Daypart::Morning => 0,
                    Daypart::Midday => 1,
                    Daypart::Evening => 2,
                    Daypart::Night => 3,
                };
                visits.push(PlannedVisit {
                    user,
                    at,
                    daypart,
                    profile: context.attributes(),
                });
            }
            users.push(behaviour);
        }
        visits.sort_by_key(|visit| (visit.at, visit.user));
        let user_ids = (0..config.users)
            .map(|user| format!("sim-{user}"))
            .collect();
        Self {
            config,
            start,
            base,
            by_mode,
            by_spend,
            by_daypart,
            users,
            user_ids,
            visits,
        }
    }

    pub fn visits(&self) -> usize {
        self.visits.len()
    }

    pub fn behaviour(&self, user: u64) -> Option<Behaviour> {
        self.users.get(user as usize).copied()
    }

    /// The campaign: the pool, a window of a day, two slots, offers valid a
    /// week, no holdout (the uniform policy is the holdout's draw).
    pub fn campaign(&self, holdout: f64) -> AlwaysOnCampaign {
        AlwaysOnCampaign {
            campaign_id: CampaignId::literal("behaviour"),
            version: 1,
            start: self.start,
            end: Some(self.start + Duration::days(self.config.days.max(1) as i64 + 1)),
            paused: false,
            settings: AlwaysOn {
                pool: (0..OFFERS)
                    .map(|offer| PoolOffer {
                        offer_id: OfferId::literal(format!("offer-{offer}")),
                        template_id: None,
                        rules: None,
                    })
                    .collect(),
                valid_days: 7,
                cadence_seconds: 86_400,
                slots: 2,
                holdout,
                reward: "redeemed".to_owned(),
                half_life: DEFAULT_HALF_LIFE,
            },
            // No budget: the world measures choosing, not spending.
            offers_limit: None,
            offers_used: 0,
        }
    }

    /// The true rate of `offer` for a user of `behaviour` visiting in
    /// `daypart`: a favourite of the mode, the spend level or the daypart
    /// is good, a favourite of another poor, the rest mediocre; the tier
    /// scales it.
    pub fn rate(&self, behaviour: Behaviour, daypart: usize, offer: usize) -> f64 {
        let favourite = self.by_mode[behaviour.mode] == offer
            || self.by_spend[behaviour.spend] == offer
            || self.by_daypart[daypart] == offer;
        let anyones = self.by_mode.contains(&offer)
            || self.by_spend.contains(&offer)
            || self.by_daypart.contains(&offer);
        let rate = if favourite {
            FAVOURITE_RATE
        } else if anyones {
            OTHERS_RATE
        } else {
            self.base[offer]
        };
        rate * TIERS[behaviour.tier].1
    }

    /// Whether the user would redeem the offer given in `window`: the same
    /// draw for every policy.
    fn rewarded(&self, user: u64, offer: usize, window: u64, rate: f64) -> bool {
        let draw = combine(
            combine(self.config.seed, 0x4ede),
            combine(user, combine(offer as u64, window)),
        );
        unit(draw) < rate
    }
}

/// The learning counters as the statistics function keeps them: per offer,
/// overall and per attribute value of the choice's context.
#[derive(Debug, Default)]
struct Statistics {
    counts: HashMap<(usize, Option<(String, String)>), Counts>,
}

impl Statistics {
    fn count(&mut self, offer: usize, context: &BTreeMap<String, String>, outcome: Counts) {
        let scopes = std::iter::once(None).chain(
            context
                .iter()
                .map(|(name, value)| Some((name.clone(), value.clone()))),
        );
        for scope in scopes {
            let slot = self.counts.entry((offer, scope)).or_default();
            slot.assigned += outcome.assigned;
            slot.clicked += outcome.clicked;
            slot.redeemed += outcome.redeemed;
        }
    }

    fn counters(&self, pool: &[String]) -> Vec<LearningCounter> {
        self.counts
            .iter()
            .filter_map(|((offer, scope), counts)| {
                Some(LearningCounter {
                    offer_id: pool.get(*offer)?.clone(),
                    scope: match scope {
                        None => Scope::Overall,
                        Some((name, value)) => Scope::Attribute {
                            name: name.clone(),
                            value: value.clone(),
                        },
                    },
                    day: None,
                    counts: *counts,
                })
            })
            .collect()
    }
}

/// An offer a user holds: assigned at, and when it stops being live
/// (redeemed, or expired).
#[derive(Debug, Clone, Copy)]
struct Holding {
    offer: usize,
    assigned_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
}

/// A redemption to count when its time comes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    at: DateTime<Utc>,
    visit: usize,
    offer: usize,
}

/// Runs every policy over the same visits.
pub fn simulate_behaviour(world: &BehaviourWorld) -> Vec<BehaviourResult> {
    BehaviourPolicy::ALL
        .iter()
        .map(|&policy| run_policy(world, policy))
        .collect()
}

/// The context a policy gives the chooser for a visit.
fn context_of(
    world: &BehaviourWorld,
    policy: BehaviourPolicy,
    visit: &PlannedVisit,
) -> BTreeMap<String, String> {
    let tier = || {
        let tier = world.behaviour(visit.user).map_or(0, |b| b.tier);
        ("tier".to_owned(), TIERS[tier].0.to_owned())
    };
    match policy {
        BehaviourPolicy::EngineWithProfiles => {
            let mut context = visit.profile.clone();
            context.extend([tier()]);
            context
        }
        BehaviourPolicy::EngineWithoutProfiles => BTreeMap::from([tier()]),
        _ => BTreeMap::new(),
    }
}

fn run_policy(world: &BehaviourWorld, policy: BehaviourPolicy) -> BehaviourResult {
    let holdout = if policy == BehaviourPolicy::Uniform {
        1.0
    } else {
        0.0
    };
    let campaign = world.campaign(holdout);
    let pool = campaign.pool_ids();
    let config = &world.config;
    let adjust = |engine: &mut crate::selection::EngineConfig| {
        engine.draws = config.draws;
        config.tuning.apply(engine);
    };
    let weeks = config.days.max(1).div_ceil(7) as usize;
    let mut result = BehaviourResult {
        policy,
        visits: 0,
        assigned: 0,
        reward: 0,
        weekly: vec![0; weeks],
        refreshes: 0,
    };
    let Ok(mut engine) = campaign.engine_with(&[], utc_day(world.start.timestamp()), adjust) else {
        return result;
    };
    let mut statistics = Statistics::default();
    let mut redemptions: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
    let mut holdings: Vec<Vec<Holding>> = vec![Vec::new(); world.users.len()];
    let mut contexts: Vec<BTreeMap<String, String>> = Vec::with_capacity(world.visits.len());
    let mut read_minute = None;
    let valid = Duration::days(campaign.settings.valid_days as i64);
    for (index, visit) in world.visits.iter().enumerate() {
        contexts.push(context_of(world, policy, visit));
        let at = visit.at;
        while redemptions.peek().is_some_and(|next| next.0.at <= at) {
            if let Some(Reverse(done)) = redemptions.pop() {
                let redeemed = Counts {
                    assigned: 0,
                    clicked: 1,
                    redeemed: 1,
                };
                statistics.count(done.offer, &contexts[done.visit], redeemed);
            }
        }
        // The statistics of at most a minute ago: read again on the first
        // visit of each simulated minute.
        let minute = at.timestamp().div_euclid(60);
        if read_minute != Some(minute) {
            read_minute = Some(minute);
            result.refreshes += 1;
            if let Ok(fresh) =
                campaign.engine_with(&statistics.counters(&pool), utc_day(at.timestamp()), adjust)
            {
                engine = fresh;
            }
        }
        result.visits += 1;
        let Some(held_by) = holdings.get_mut(visit.user as usize) else {
            continue;
        };
        held_by.retain(|held| held.ends_at > at || at - held.assigned_at < Duration::days(1));
        let held: Vec<HeldOffer> = held_by
            .iter()
            .map(|held| HeldOffer {
                offer_id: pool[held.offer].clone(),
                assigned_at: held.assigned_at,
                live: held.ends_at > at,
            })
            .collect();
        let Ok((window, excluded)) = eligibility(&campaign, &held, at) else {
            continue;
        };
        let behaviour = world.behaviour(visit.user).unwrap_or(Behaviour {
            mode: 0,
            spend: 0,
            daypart: 0,
            tier: 0,
        });
        let offer = if policy == BehaviourPolicy::Oracle {
            (0..OFFERS)
                .filter(|offer| !excluded.contains(offer))
                .max_by(|&a, &b| {
                    world
                        .rate(behaviour, visit.daypart, a)
                        .total_cmp(&world.rate(behaviour, visit.daypart, b))
                        .then(b.cmp(&a))
                })
        } else {
            let user_id = &world.user_ids[visit.user as usize];
            choose(
                &mut engine,
                &campaign,
                user_id,
                window,
                &contexts[index],
                &excluded,
            )
            .map(|choice| choice.offer)
        };
        let Some(offer) = offer else {
            continue;
        };
        result.assigned += 1;
        let assigned = Counts {
            assigned: 1,
            clicked: 0,
            redeemed: 0,
        };
        statistics.count(offer, &contexts[index], assigned);
        let rate = world.rate(behaviour, visit.daypart, offer);
        let mut ends_at = at + valid;
        if world.rewarded(visit.user, offer, window, rate) {
            result.reward += 1;
            let week = ((at - world.start).num_days() / 7).clamp(0, weeks as i64 - 1);
            result.weekly[week as usize] += 1;
            // Redeemed ten minutes to two days later.
            let delay = 600 + combine(visit.user, window) % (2 * 86_400);
            ends_at = at + Duration::seconds(delay as i64);
            redemptions.push(Reverse(Pending {
                at: ends_at,
                visit: index,
                offer,
            }));
        }
        held_by.push(Holding {
            offer,
            assigned_at: at,
            ends_at,
        });
    }
    result
}

/// The run as one JSON object: the world, then per policy its visits,
/// assignments, reward, reward per 1,000 offers, ratio to the oracle's
/// (whole run and last week) and reward per week.
pub fn behaviour_summary(world: &BehaviourWorld, results: &[BehaviourResult]) -> serde_json::Value {
    let oracle = oracle_of(results);
    let policies: Vec<_> = results
        .iter()
        .map(|result| {
            json!({"name": result.policy.name(), "visits": result.visits,
                   "assigned": result.assigned, "reward": result.reward,
                   "per1000": per_thousand(result),
                   "vsOracle": result.reward as f64 / oracle.reward.max(1) as f64,
                   "lastWeekVsOracle": last_week_ratio(result, &oracle),
                   "weekly": result.weekly, "refreshes": result.refreshes})
        })
        .collect();
    let config = &world.config;
    json!({
        "world": {"kind": "behaviour", "offers": OFFERS, "users": config.users,
                  "days": config.days, "visits": world.visits(), "seed": config.seed,
                  "draws": config.draws, "slots": 2, "cadence": "P1D", "validDays": 7},
        "policies": policies
    })
}

/// Redemptions per 1,000 offers assigned.
pub fn per_thousand(result: &BehaviourResult) -> f64 {
    1000.0 * result.reward as f64 / result.assigned.max(1) as f64
}

/// The oracle's result (zeros when it did not run).
pub fn oracle_of(results: &[BehaviourResult]) -> BehaviourResult {
    results
        .iter()
        .find(|result| result.policy == BehaviourPolicy::Oracle)
        .cloned()
        .unwrap_or(BehaviourResult {
            policy: BehaviourPolicy::Oracle,
            visits: 0,
            assigned: 0,
            reward: 0,
            weekly: Vec::new(),
            refreshes: 0,
        })
}

/// The last week's reward over the oracle's.
pub fn last_week_ratio(result: &BehaviourResult, oracle: &BehaviourResult) -> f64 {
    let last = |result: &BehaviourResult| result.weekly.last().copied().unwrap_or(0);
    last(result) as f64 / last(oracle).max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(debug_assertions, allow(dead_code))]
    fn reward(results: &[BehaviourResult], policy: BehaviourPolicy) -> u64 {
        results
            .iter()
            .find(|result| result.policy == policy)
            .map_or(0, |result| result.reward)
    }

    #[test]
    fn a_small_world_runs_every_policy_over_the_same_visits() {
        let world = BehaviourWorld::new(BehaviourConfig {
            users: 300,
            days: 14,
            draws: 100,
            ..BehaviourConfig::default()
        });
        assert!(
            (600..=1_800).contains(&world.visits()),
            "{}",
            world.visits()
        );
        let results = simulate_behaviour(&world);
        assert_eq!(results.len(), BehaviourPolicy::ALL.len());
        for result in &results {
            assert_eq!(result.visits, world.visits() as u64, "{result:?}");
            // A window of a day and two slots: most visits assign.
            assert!(result.assigned * 2 > result.visits, "{result:?}");
            assert_eq!(result.weekly.len(), 2);
            assert_eq!(result.weekly.iter().sum::<u64>(), result.reward);
            assert!(result.refreshes > 0 && result.refreshes <= result.visits);
        }
        let summary = behaviour_summary(&world, &results);
        assert_eq!(summary["world"]["kind"], "behaviour");
        assert_eq!(summary["policies"][0]["name"], "engine with profiles");
        assert!(summary["policies"][4]["vsOracle"].as_f64() == Some(1.0));
    }

    #[test]
    fn the_profile_context_is_the_visits_behaviour() {
        let world = BehaviourWorld::new(BehaviourConfig {
            users: 200,
            ..BehaviourConfig::default()
        });
        // A user's last visit: spend and, mostly, mode are the user's own.
        let mut last: HashMap<u64, &PlannedVisit> = HashMap::new();
        for visit in &world.visits {
            last.insert(visit.user, visit);
        }
        let mut modes_right = 0;
        for (user, visit) in &last {
            let behaviour = world.behaviour(*user).expect("user");
            let spend = ["<10", "10-25", "25+"][behaviour.spend];
            assert_eq!(visit.profile["spend"], spend, "{visit:?}");
            modes_right += usize::from(visit.profile["mode"] == MODES[behaviour.mode]);
        }
        assert!(modes_right * 10 > last.len() * 8, "{modes_right}");
    }

    #[test]
    fn favourites_are_distinct_and_good_only_for_their_own() {
        let world = BehaviourWorld::new(BehaviourConfig::default());
        let mut all: Vec<usize> = world
            .by_mode
            .iter()
            .chain(&world.by_spend)
            .chain(&world.by_daypart)
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 10);
        let user = Behaviour {
            mode: 1,
            spend: 2,
            daypart: 0,
            tier: 1,
        };
        assert_eq!(world.rate(user, 0, world.by_mode[1]), FAVOURITE_RATE);
        assert_eq!(world.rate(user, 0, world.by_mode[0]), OTHERS_RATE);
    }

    /// The ordering, in release only: 3,000 users over two weeks is the
    /// smallest world where it holds with room on every seed tried (1,000
    /// users do not separate the policies), and a debug build takes minutes
    /// over it (`cargo test -p offers-domain --release behaviour_world --
    /// --nocapture`; the default world's figures are in docs/selection.md).
    #[cfg(not(debug_assertions))]
    #[test]
    fn profiles_beat_no_profiles_and_context_free_in_release() {
        for seed in 1..=5 {
            let world = BehaviourWorld::new(BehaviourConfig {
                seed,
                users: 3_000,
                days: 14,
                ..BehaviourConfig::default()
            });
            let results = simulate_behaviour(&world);
            println!("seed {seed}: {}", behaviour_summary(&world, &results));
            let with = reward(&results, BehaviourPolicy::EngineWithProfiles);
            assert!(with > reward(&results, BehaviourPolicy::EngineWithoutProfiles));
            assert!(with > reward(&results, BehaviourPolicy::ContextFreeThompson));
            assert!(with > reward(&results, BehaviourPolicy::Uniform));
        }
    }
}
