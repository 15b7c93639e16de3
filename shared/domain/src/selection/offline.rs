//! Offline evaluation on a logged bandit feedback (the Open Bandit Dataset):
//! replay a policy round by round on a log gathered by another policy,
//! learning only from the rounds before each decision, and estimate its
//! click rate by inverse propensity weighting.
//!
//! For round t with context x, logged item a at position p, click r and
//! logging propensity π₀: the weight is w = π(a at p | x) / π₀, where π is
//! the evaluated policy's probability of putting a at p (for the engine,
//! the share of its context's rankings with a at p; for a deterministic
//! policy 0 or 1). IPW = mean(w·r); self-normalised IPW = Σ w·r / Σ w.
//! The 95% interval is the 2.5th and 97.5th percentiles of IPW over
//! bootstrap resamples of the rounds (seeded).

use super::hash::{combine, SplitMix};
use super::simulate::most_popular;
use super::{Counts, Engine, EngineConfig, History, Reward};

/// One logged round.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRound {
    /// Index of the item (0-based, below the number of items).
    pub item: usize,
    /// 0-based position (rank).
    pub position: usize,
    pub click: bool,
    pub propensity: f64,
    /// (attribute name, value) of the user.
    pub context: Vec<(String, String)>,
}

/// The policies replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflinePolicy {
    Engine,
    Uniform,
    MostPopular,
}

impl OfflinePolicy {
    pub const ALL: [OfflinePolicy; 3] = [
        OfflinePolicy::Engine,
        OfflinePolicy::Uniform,
        OfflinePolicy::MostPopular,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OfflinePolicy::Engine => "engine",
            OfflinePolicy::Uniform => "uniform random",
            OfflinePolicy::MostPopular => "most-popular",
        }
    }
}

/// Replay settings.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineConfig {
    pub items: usize,
    pub slots: usize,
    /// Rounds between two learning steps.
    pub batch: usize,
    pub draws: u32,
    pub bootstrap: u32,
    pub seed: u64,
}

/// An estimate of a policy's click rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub policy: OfflinePolicy,
    pub ipw: f64,
    pub snipw: f64,
    pub ci95: (f64, f64),
    /// Rounds where the policy could have chosen the logged item there.
    pub matched: u64,
}

/// The weight of each round for `policy` (rounds in time order).
pub fn weights(rounds: &[LoggedRound], config: &OfflineConfig, policy: OfflinePolicy) -> Vec<f64> {
    let items = config.items.max(1);
    let slots = config.slots.clamp(1, items);
    let pool: Vec<String> = (0..items).map(|i| format!("item-{i}")).collect();
    let Ok(mut history) = History::new(pool) else {
        return vec![0.0; rounds.len()];
    };
    let mut weights = Vec::with_capacity(rounds.len());
    let batch = config.batch.max(1);
    for (index, chunk) in rounds.chunks(batch).enumerate() {
        let mut engine_config = EngineConfig::new(slots, combine(config.seed, index as u64));
        engine_config.reward = Reward::Clicked;
        engine_config.holdout = 0.0;
        engine_config.draws = config.draws.max(1);
        let mut engine = match policy {
            OfflinePolicy::Engine => Engine::new(history.clone(), engine_config).ok(),
            _ => None,
        };
        let popular = most_popular(&history, slots, Reward::Clicked);
        for round in chunk {
            let logging = round.propensity;
            let chosen = match (&mut engine, policy) {
                (Some(engine), _) => {
                    let context = engine.context_of(
                        round
                            .context
                            .iter()
                            .map(|(name, value)| (name.as_str(), value.as_str())),
                    );
                    engine.policy(&context).marginal(round.position, round.item)
                }
                (None, OfflinePolicy::MostPopular) => {
                    f64::from(u8::from(popular.get(round.position) == Some(&round.item)))
                }
                _ => {
                    if round.position < slots {
                        1.0 / items as f64
                    } else {
                        0.0
                    }
                }
            };
            weights.push(if logging > 0.0 { chosen / logging } else { 0.0 });
        }
        // Learning between batches: the rounds of this one, as counters.
        for round in chunk {
            let attributes: Vec<(&str, &str)> = round
                .context
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            history.observe(
                round.item,
                &attributes,
                Counts {
                    assigned: 1,
                    clicked: u64::from(round.click),
                    redeemed: 0,
                },
            );
        }
    }
    weights
}

/// IPW, self-normalised IPW and the bootstrap interval of IPW.
pub fn estimate(
    rounds: &[LoggedRound],
    weights: &[f64],
    policy: OfflinePolicy,
    bootstrap: u32,
    seed: u64,
) -> Estimate {
    let n = rounds.len().min(weights.len());
    let (ipw, snipw) = ipw_snipw((0..n).map(|i| (weights[i], rounds[i].click)));
    let mut rng = SplitMix::new(combine(seed, 0xb007));
    let mut samples: Vec<f64> = (0..bootstrap)
        .map(|_| {
            ipw_snipw((0..n).map(|_| {
                let i = rng.below(n as u64) as usize;
                (weights[i], rounds[i].click)
            }))
            .0
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if samples.is_empty() {
            return ipw;
        }
        let index = ((samples.len() - 1) as f64 * q).round() as usize;
        samples[index.min(samples.len() - 1)]
    };
    Estimate {
        policy,
        ipw,
        snipw,
        ci95: (at(0.025), at(0.975)),
        matched: weights.iter().filter(|w| **w > 0.0).count() as u64,
    }
}

fn ipw_snipw(pairs: impl Iterator<Item = (f64, bool)>) -> (f64, f64) {
    let (mut n, mut sum_wr, mut sum_w) = (0u64, 0.0f64, 0.0f64);
    for (weight, click) in pairs {
        n += 1;
        sum_w += weight;
        if click {
            sum_wr += weight;
        }
    }
    let ipw = if n > 0 { sum_wr / n as f64 } else { 0.0 };
    let snipw = if sum_w > 0.0 { sum_wr / sum_w } else { 0.0 };
    (ipw, snipw)
}

/// A log's own click rate.
pub fn click_rate(rounds: &[LoggedRound]) -> f64 {
    if rounds.is_empty() {
        return 0.0;
    }
    rounds.iter().filter(|round| round.click).count() as f64 / rounds.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A uniformly random log of 10 items and 2 positions where item 3
    /// gets clicked often and others rarely.
    fn log(n: usize) -> Vec<LoggedRound> {
        let mut rng = SplitMix::new(9);
        (0..n)
            .map(|_| {
                let item = rng.below(10) as usize;
                let rate = if item == 3 { 0.3 } else { 0.02 };
                LoggedRound {
                    item,
                    position: rng.below(2) as usize,
                    click: rng.unit() < rate,
                    propensity: 0.1,
                    context: vec![("f".into(), "x".into())],
                }
            })
            .collect()
    }

    fn config() -> OfflineConfig {
        OfflineConfig {
            items: 10,
            slots: 2,
            batch: 200,
            draws: 500,
            bootstrap: 200,
            seed: 1,
        }
    }

    #[test]
    fn uniform_on_a_uniform_log_is_the_logged_rate() {
        let rounds = log(4_000);
        let w = weights(&rounds, &config(), OfflinePolicy::Uniform);
        let estimate = estimate(&rounds, &w, OfflinePolicy::Uniform, 200, 1);
        assert!((estimate.ipw - click_rate(&rounds)).abs() < 1e-12);
        assert!((estimate.snipw - click_rate(&rounds)).abs() < 1e-12);
        assert!(estimate.ci95.0 <= estimate.ipw && estimate.ipw <= estimate.ci95.1);
    }

    #[test]
    fn a_learning_policy_is_estimated_above_uniform() {
        let rounds = log(4_000);
        let uniform = click_rate(&rounds);
        for policy in [OfflinePolicy::Engine, OfflinePolicy::MostPopular] {
            let w = weights(&rounds, &config(), policy);
            let estimate = estimate(&rounds, &w, policy, 100, 1);
            assert!(
                estimate.snipw > 2.0 * uniform,
                "{policy:?}: {estimate:?} vs {uniform}"
            );
        }
    }
}
