//! A synthetic world with known reward rates, to compare policies on the
//! same users and the same random draws (`offers campaign simulate`).
//!
//! Offers have a base rate of 1-3.5% with a per-segment variation; each
//! segment has its own best offer (5%) and second best (4%), different
//! from every other segment's. A user's tier scales every rate alike (it
//! changes no ranking: a policy must not be misled by it). Users arrive in
//! daily batches; each policy learns from its own outcomes between days, as
//! production learns between plans. Whether user u would redeem offer i is
//! drawn once (a hash of the seed, u and i) and is the same for every policy.

use super::hash::{combine, unit, SplitMix};
use super::{Counts, Engine, EngineConfig, History, Pick, Reward};

/// The world's shape and the run's size.
#[derive(Debug, Clone, PartialEq)]
pub struct WorldConfig {
    pub offers: usize,
    pub segments: usize,
    pub users: u64,
    pub days: u64,
    pub slots: usize,
    pub seed: u64,
    /// Rankings per context for the Thompson-sampling policies (the
    /// mixture's size; the plan's default is larger, for its propensities).
    pub draws: u32,
}

impl Default for WorldConfig {
    fn default() -> Self {
        Self {
            offers: 50,
            segments: 8,
            users: 200_000,
            days: 20,
            slots: 3,
            seed: 1,
            draws: 2_000,
        }
    }
}

const TIERS: [(&str, f64); 3] = [("gold", 1.25), ("silver", 1.0), ("bronze", 0.8)];

/// The true rates: `rate[segment][offer]` for a silver user.
#[derive(Debug, Clone)]
pub struct World {
    pub config: WorldConfig,
    pub rates: Vec<Vec<f64>>,
    segment_names: Vec<String>,
}

impl World {
    pub fn new(config: WorldConfig) -> Self {
        let mut rng = SplitMix::new(combine(config.seed, 0x5157));
        let offers = config.offers.max(2);
        let base: Vec<f64> = (0..offers).map(|_| 0.01 + 0.02 * rng.unit()).collect();
        // A random order of the offers: segment s's best is order[s], its
        // second best order[s + segments] (when the pool is large enough).
        let mut order: Vec<usize> = (0..offers).collect();
        for i in (1..offers).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        let rates = (0..config.segments)
            .map(|segment| {
                let mut rates: Vec<f64> = base
                    .iter()
                    .map(|rate| (rate * (0.7 + 0.6 * rng.unit())).min(0.035))
                    .collect();
                rates[order[segment % offers]] = 0.05;
                let second = order[(segment + config.segments) % offers];
                if rates[second] < 0.04 {
                    rates[second] = 0.04;
                }
                rates
            })
            .collect();
        let segment_names = (0..config.segments).map(|s| format!("s{s}")).collect();
        Self {
            config,
            rates,
            segment_names,
        }
    }

    fn offers(&self) -> usize {
        self.rates.first().map_or(0, Vec::len)
    }

    /// The user's segment and tier.
    fn user(&self, user: u64) -> (usize, usize) {
        let hash = combine(self.config.seed ^ 0x00a1_1ce5, user);
        let segment = (hash % self.config.segments.max(1) as u64) as usize;
        let tier = ((hash >> 32) % TIERS.len() as u64) as usize;
        (segment, tier)
    }

    fn rate(&self, segment: usize, tier: usize, offer: usize) -> f64 {
        self.rates[segment][offer] * TIERS[tier].1
    }

    /// Whether the user would redeem the offer: the same for every policy.
    fn rewarded(&self, user: u64, offer: usize, segment: usize, tier: usize) -> bool {
        let draw = unit(combine(
            combine(self.config.seed, 0xd1ce),
            combine(user, offer as u64),
        ));
        draw < self.rate(segment, tier, offer)
    }
}

/// The policies compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimPolicy {
    /// The engine, with the users' segment and tier.
    Engine,
    /// The same Thompson sampling without attributes.
    ContextFreeThompson,
    /// The k offers with the best observed rate so far (uniform on day one).
    MostPopular,
    Uniform,
    /// The k offers with the best true rates for the user.
    Oracle,
}

impl SimPolicy {
    pub const ALL: [SimPolicy; 5] = [
        SimPolicy::Engine,
        SimPolicy::ContextFreeThompson,
        SimPolicy::MostPopular,
        SimPolicy::Uniform,
        SimPolicy::Oracle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SimPolicy::Engine => "engine",
            SimPolicy::ContextFreeThompson => "context-free thompson",
            SimPolicy::MostPopular => "most-popular",
            SimPolicy::Uniform => "uniform random",
            SimPolicy::Oracle => "oracle",
        }
    }
}

/// One policy's cumulative reward.
#[derive(Debug, Clone, PartialEq)]
pub struct SimResult {
    pub policy: SimPolicy,
    pub reward: u64,
    pub assigned: u64,
    /// Reward of each day's users: the learning curve.
    pub daily: Vec<u64>,
}

/// Runs every policy over the same users, day by day.
pub fn simulate(world: &World) -> Vec<SimResult> {
    SimPolicy::ALL
        .iter()
        .map(|&policy| run_policy(world, policy))
        .collect()
}

fn run_policy(world: &World, policy: SimPolicy) -> SimResult {
    let config = &world.config;
    let offers = world.offers();
    let slots = config.slots.clamp(1, offers);
    let pool: Vec<String> = (0..offers).map(|i| format!("offer-{i}")).collect();
    let mut history = match History::new(pool) {
        Ok(history) => history,
        Err(_) => {
            return SimResult {
                policy,
                reward: 0,
                assigned: 0,
                daily: Vec::new(),
            }
        }
    };
    let days = config.days.max(1);
    let per_day = config.users.div_ceil(days);
    let mut result = SimResult {
        policy,
        reward: 0,
        assigned: 0,
        daily: Vec::with_capacity(days as usize),
    };
    let mut picks: Vec<Pick> = Vec::with_capacity(slots);
    let mut outcomes: Vec<(usize, usize, usize, bool)> = Vec::new();
    for day in 0..days {
        let mut engine_config = EngineConfig::new(slots, combine(config.seed, day));
        engine_config.holdout = 0.0;
        engine_config.draws = config.draws;
        let mut engine = match policy {
            SimPolicy::Engine | SimPolicy::ContextFreeThompson => {
                Engine::new(history.clone(), engine_config).ok()
            }
            _ => None,
        };
        let popular = most_popular(&history, slots, Reward::Redeemed);
        outcomes.clear();
        let reward_before = result.reward;
        let first = day * per_day;
        let last = (first + per_day).min(config.users);
        for user in first..last {
            let (segment, tier) = world.user(user);
            picks.clear();
            match (&mut engine, policy) {
                (Some(engine), SimPolicy::Engine) => {
                    let attributes = [
                        ("segment", world.segment_names[segment].as_str()),
                        ("tier", TIERS[tier].0),
                    ];
                    engine.choose_into(&format!("sim-{user}"), attributes, &mut picks);
                }
                (Some(engine), _) => {
                    engine.choose_into(&format!("sim-{user}"), [], &mut picks);
                }
                (None, SimPolicy::MostPopular) if day > 0 => {
                    picks.extend(popular.iter().map(|&offer| pick(offer)));
                }
                (None, SimPolicy::Oracle) => {
                    let mut best: Vec<usize> = (0..offers).collect();
                    best.sort_by(|&a, &b| {
                        world
                            .rate(segment, tier, b)
                            .total_cmp(&world.rate(segment, tier, a))
                            .then(a.cmp(&b))
                    });
                    picks.extend(best.iter().take(slots).map(|&offer| pick(offer)));
                }
                _ => {
                    let mut rng = SplitMix::new(combine(config.seed ^ 0x0f0f, user));
                    while picks.len() < slots {
                        let offer = rng.below(offers as u64) as usize;
                        if !picks.iter().any(|p| p.offer == offer) {
                            picks.push(pick(offer));
                        }
                    }
                }
            }
            for p in &picks {
                let rewarded = world.rewarded(user, p.offer, segment, tier);
                result.assigned += 1;
                result.reward += u64::from(rewarded);
                outcomes.push((p.offer, segment, tier, rewarded));
            }
        }
        result.daily.push(result.reward - reward_before);
        // Learning between days: what the statistics function would count.
        for &(offer, segment, tier, rewarded) in &outcomes {
            let outcome = Counts {
                assigned: 1,
                clicked: u64::from(rewarded),
                redeemed: u64::from(rewarded),
            };
            let attributes = [
                ("segment", world.segment_names[segment].as_str()),
                ("tier", TIERS[tier].0),
            ];
            history.observe(offer, &attributes, outcome);
        }
    }
    result
}

/// The engine's reward of each day over the oracle's, as text (`0.53`).
pub fn learning_curve(results: &[SimResult]) -> Vec<String> {
    let daily = |policy: SimPolicy| {
        results
            .iter()
            .find(|result| result.policy == policy)
            .map(|result| result.daily.clone())
            .unwrap_or_default()
    };
    daily(SimPolicy::Engine)
        .iter()
        .zip(daily(SimPolicy::Oracle))
        .map(|(engine, oracle)| format!("{:.2}", *engine as f64 / oracle.max(1) as f64))
        .collect()
}

fn pick(offer: usize) -> Pick {
    Pick {
        offer,
        rank: 0,
        propensity: 1.0,
    }
}

/// The offers with the best observed rate overall (smoothed towards the
/// pool's rate by one assignment), best first.
pub fn most_popular(history: &History, slots: usize, reward: Reward) -> Vec<usize> {
    let offers = history.pool().len();
    let pool_rate = history.pool_rate(reward).unwrap_or_default();
    let score = |offer: usize| {
        let counts = history.overall(offer);
        (counts.rewarded(reward) as f64 + pool_rate) / (counts.assigned as f64 + 1.0)
    };
    let mut order: Vec<usize> = (0..offers).collect();
    order.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)));
    order.truncate(slots);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_beats_the_baselines_in_a_small_world() {
        let world = World::new(WorldConfig {
            offers: 20,
            segments: 4,
            users: 40_000,
            days: 10,
            slots: 2,
            seed: 3,
            draws: 500,
        });
        let results = simulate(&world);
        let reward = |policy: SimPolicy| {
            results
                .iter()
                .find(|result| result.policy == policy)
                .map_or(0, |result| result.reward)
        };
        let engine = reward(SimPolicy::Engine);
        assert!(
            engine > reward(SimPolicy::ContextFreeThompson),
            "{results:?}"
        );
        assert!(engine > reward(SimPolicy::MostPopular), "{results:?}");
        assert!(engine > reward(SimPolicy::Uniform), "{results:?}");
        assert!(reward(SimPolicy::Oracle) >= engine, "{results:?}");
        // Every policy saw the same users.
        assert!(results.iter().all(|result| result.assigned == 80_000));
    }

    /// The quality figures on the default world (200,000 users):
    /// release builds only (`cargo test -p offers-domain --release
    /// selection::simulate -- --nocapture`).
    #[cfg(not(debug_assertions))]
    #[test]
    fn the_default_world_in_release() {
        for seed in [1, 2] {
            let world = World::new(WorldConfig {
                seed,
                ..WorldConfig::default()
            });
            let results = simulate(&world);
            let reward = |policy: SimPolicy| {
                results
                    .iter()
                    .find(|result| result.policy == policy)
                    .map_or(0, |result| result.reward) as f64
            };
            let oracle = reward(SimPolicy::Oracle);
            for result in &results {
                println!(
                    "seed {seed} {:<24} {:>7} {:.3}",
                    result.policy.name(),
                    result.reward,
                    result.reward as f64 / oracle
                );
            }
            println!(
                "seed {seed} engine / oracle per day: {}",
                learning_curve(&results).join(" ")
            );
            let engine = reward(SimPolicy::Engine);
            assert!(engine > reward(SimPolicy::ContextFreeThompson));
            assert!(engine > reward(SimPolicy::MostPopular));
        }
    }

    /// The default world (50 offers, 8 segments, 20 days) at a fifth of its
    /// users and a quarter of its rankings per context, so that a debug
    /// build runs it in seconds: the same ordering as at full size.
    #[test]
    fn the_default_world_shows_the_ordering_at_a_smaller_size() {
        let world = World::new(WorldConfig {
            users: 40_000,
            draws: 500,
            ..WorldConfig::default()
        });
        let results = simulate(&world);
        let reward = |policy: SimPolicy| {
            results
                .iter()
                .find(|result| result.policy == policy)
                .map_or(0, |result| result.reward)
        };
        let engine = reward(SimPolicy::Engine);
        assert!(
            engine > reward(SimPolicy::ContextFreeThompson),
            "{results:?}"
        );
        assert!(engine > reward(SimPolicy::MostPopular), "{results:?}");
        assert!(engine > reward(SimPolicy::Uniform), "{results:?}");
        assert!(reward(SimPolicy::Oracle) > engine, "{results:?}");
    }

    #[test]
    fn each_segment_has_its_own_best_offer() {
        let world = World::new(WorldConfig::default());
        let best: Vec<usize> = world
            .rates
            .iter()
            .map(|rates| {
                (0..rates.len())
                    .max_by(|&a, &b| rates[a].total_cmp(&rates[b]))
                    .unwrap_or_default()
            })
            .collect();
        let mut distinct = best.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), best.len(), "{best:?}");
    }
}
