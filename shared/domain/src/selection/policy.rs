//! The Thompson-sampling policy of one context, made exact.
//!
//! Thompson sampling ranks offers by one draw from each offer's posterior.
//! The probability of a ranking has no closed form, so instead of estimating
//! it afterwards the policy *is* a finite mixture: `draws` rankings are
//! drawn once per context (seeded by the plan's seed and the context), and
//! each user takes one of them uniformly at random. The propensity of a
//! pick, the probability of that offer at that rank given the offers above
//! it, is then an exact ratio of counts among those rankings: rankings
//! sharing the prefix up to and including the pick, over those sharing the
//! prefix above it. A user's choice costs a binary search.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::{Beta, Distribution};

/// An offer's posterior: sampled from Beta(α, β), or fixed at its mean when
/// the parameters are outside what the sampler accepts.
enum Posterior {
    Beta(Beta<f64>),
    Fixed(f64),
}

impl Posterior {
    fn new(alpha: f64, beta: f64) -> Self {
        match Beta::new(alpha, beta) {
            Ok(dist) if alpha.is_finite() && beta.is_finite() => Posterior::Beta(dist),
            _ => Posterior::Fixed(if alpha + beta > 0.0 {
                alpha / (alpha + beta)
            } else {
                0.0
            }),
        }
    }

    fn sample(&self, rng: &mut Xoshiro256PlusPlus) -> f64 {
        match self {
            Posterior::Beta(dist) => dist.sample(rng),
            Posterior::Fixed(mean) => *mean,
        }
    }
}

/// What a context's policy is built from.
pub struct PolicyInputs<'a> {
    /// (α, β) of each offer of the pool, in pool order.
    pub posteriors: &'a [(f64, f64)],
    /// Offers that are cold (few assignments): candidates for exploration.
    pub cold: &'a [usize],
    pub slots: usize,
    pub draws: u32,
    /// Share of rankings whose first offer is a cold one, chosen uniformly.
    pub exploration: f64,
    pub seed: u64,
}

/// The distinct rankings of the mixture, sorted, with their counts.
#[derive(Debug, Clone)]
pub struct ContextPolicy {
    slots: usize,
    draws: u32,
    /// Distinct rankings, `slots` offer indices each, in lexicographic order.
    rankings: Vec<u16>,
    /// For ranking d and rank j: how many of the `draws` rankings share its
    /// first j + 1 offers.
    prefix_counts: Vec<u32>,
    /// For ranking d: how many of the `draws` rankings are it or sort before it.
    cumulative: Vec<u32>,
}

impl ContextPolicy {
    pub fn build(inputs: &PolicyInputs<'_>) -> Self {
        let offers = inputs.posteriors.len();
        let slots = inputs.slots.clamp(1, offers.max(1));
        let draws = inputs.draws.max(1);
        let posteriors: Vec<Posterior> = inputs
            .posteriors
            .iter()
            .map(|&(alpha, beta)| Posterior::new(alpha, beta))
            .collect();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(inputs.seed);
        let mut all: Vec<u16> = Vec::with_capacity(draws as usize * slots);
        let mut theta = vec![0.0f64; offers];
        let mut top: Vec<(f64, u16)> = Vec::with_capacity(slots + 1);
        for _ in 0..draws {
            for (value, posterior) in theta.iter_mut().zip(&posteriors) {
                *value = posterior.sample(&mut rng);
            }
            if !inputs.cold.is_empty()
                && inputs.exploration > 0.0
                && rng.random::<f64>() < inputs.exploration
            {
                let cold = inputs.cold[rng.random_range(0..inputs.cold.len())];
                if let Some(value) = theta.get_mut(cold) {
                    *value = f64::INFINITY;
                }
            }
            top_k(&theta, slots, &mut top);
            all.extend(top.iter().map(|&(_, offer)| offer));
        }
        Self::from_rankings(&all, slots, draws)
    }

    /// The mixture of the given rankings (`slots` offers each), counted.
    pub fn from_rankings(all: &[u16], slots: usize, draws: u32) -> Self {
        let mut order: Vec<&[u16]> = all.chunks_exact(slots).collect();
        order.sort_unstable();
        let mut rankings: Vec<u16> = Vec::new();
        let mut counts: Vec<u32> = Vec::new();
        for ranking in order {
            let last = counts.len();
            if last > 0 && &rankings[(last - 1) * slots..] == ranking {
                counts[last - 1] += 1;
            } else {
                rankings.extend_from_slice(ranking);
                counts.push(1);
            }
        }
        let distinct = counts.len();
        let mut prefix_counts = vec![0u32; distinct * slots];
        for rank in 0..slots {
            let prefix = |d: usize| &rankings[d * slots..d * slots + rank + 1];
            let mut start = 0;
            while start < distinct {
                let mut end = start + 1;
                while end < distinct && prefix(end) == prefix(start) {
                    end += 1;
                }
                let sum: u32 = counts[start..end].iter().sum();
                for d in start..end {
                    prefix_counts[d * slots + rank] = sum;
                }
                start = end;
            }
        }
        let mut cumulative = Vec::with_capacity(distinct);
        let mut total = 0u32;
        for count in counts {
            total += count;
            cumulative.push(total);
        }
        Self {
            slots,
            draws,
            rankings,
            prefix_counts,
            cumulative,
        }
    }

    pub fn slots(&self) -> usize {
        self.slots
    }

    pub fn draws(&self) -> u32 {
        self.draws
    }

    /// How many distinct rankings the mixture has.
    pub fn distinct(&self) -> usize {
        self.cumulative.len()
    }

    /// The ranking a user whose draw is `u` (any u64) takes, with each
    /// pick's propensity: (offer index, P(offer at rank | offers above)).
    pub fn pick(&self, u: u64) -> impl Iterator<Item = (usize, f64)> + '_ {
        let position = ((u128::from(u) * u128::from(self.draws)) >> 64) as u32;
        let d = self
            .cumulative
            .partition_point(|&end| end <= position)
            .min(self.cumulative.len().saturating_sub(1));
        let base = d * self.slots;
        (0..self.slots).map(move |rank| {
            let above = if rank == 0 {
                self.draws
            } else {
                self.prefix_counts[base + rank - 1]
            };
            (
                usize::from(self.rankings[base + rank]),
                f64::from(self.prefix_counts[base + rank]) / f64::from(above),
            )
        })
    }

    /// P(offer at rank `rank`, 0-based), whatever is above it.
    pub fn marginal(&self, rank: usize, offer: usize) -> f64 {
        if rank >= self.slots {
            return 0.0;
        }
        let mut previous = 0u32;
        let mut hits = 0u64;
        for (d, &end) in self.cumulative.iter().enumerate() {
            if usize::from(self.rankings[d * self.slots + rank]) == offer {
                hits += u64::from(end - previous);
            }
            previous = end;
        }
        hits as f64 / f64::from(self.draws)
    }

    /// The probability of a whole ranking (product of its propensities).
    pub fn probability(&self, ranking: &[usize]) -> f64 {
        let matching: u32 = (0..self.distinct())
            .filter(|&d| {
                self.rankings[d * self.slots..(d + 1) * self.slots]
                    .iter()
                    .map(|&offer| usize::from(offer))
                    .eq(ranking.iter().copied())
            })
            .map(|d| self.cumulative[d] - if d == 0 { 0 } else { self.cumulative[d - 1] })
            .sum();
        f64::from(matching) / f64::from(self.draws)
    }

    /// One offer outside `excluded` (offers the user holds, or that cannot
    /// be given): the first such offer of the ranking a user whose draw is
    /// `u` takes; when that ranking holds none, one of the `eligible`
    /// offers uniformly by `fallback` (any u64). Returns the offer and the
    /// exact probability of that offer under this rule: rankings whose
    /// first offer outside `excluded` is it, plus its share of the rankings
    /// without one. `None` when no eligible offer is left.
    pub fn first_outside(
        &self,
        u: u64,
        fallback: u64,
        excluded: &[usize],
        eligible: &[usize],
    ) -> Option<(usize, f64)> {
        if eligible.is_empty() {
            return None;
        }
        let first_of = |d: usize| {
            self.rankings[d * self.slots..(d + 1) * self.slots]
                .iter()
                .map(|&offer| usize::from(offer))
                .find(|offer| !excluded.contains(offer))
        };
        let position = ((u128::from(u) * u128::from(self.draws)) >> 64) as u32;
        let mine = self
            .cumulative
            .partition_point(|&end| end <= position)
            .min(self.distinct().saturating_sub(1));
        let spill = ((u128::from(fallback) * eligible.len() as u128) >> 64) as usize;
        let offer = first_of(mine).unwrap_or(eligible[spill.min(eligible.len() - 1)]);
        let (mut hits, mut none, mut previous) = (0u64, 0u64, 0u32);
        for (d, &end) in self.cumulative.iter().enumerate() {
            let count = u64::from(end - previous);
            previous = end;
            match first_of(d) {
                Some(first) if first == offer => hits += count,
                Some(_) => {}
                None => none += count,
            }
        }
        let draws = f64::from(self.draws);
        let propensity = (hits as f64 + none as f64 / eligible.len() as f64) / draws;
        Some((offer, propensity))
    }
}

/// The `k` largest values' indices, largest first; ties to the lower index.
fn top_k(values: &[f64], k: usize, top: &mut Vec<(f64, u16)>) {
    top.clear();
    for (index, &value) in values.iter().enumerate() {
        if top.len() == k && value <= top[k - 1].0 {
            continue;
        }
        let at = top.partition_point(|&(other, _)| other >= value);
        top.insert(at, (value, index as u16));
        top.truncate(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_the_largest_in_order() {
        let mut top = Vec::new();
        top_k(&[0.1, 0.5, 0.3, 0.5, 0.9], 3, &mut top);
        let offers: Vec<u16> = top.iter().map(|&(_, offer)| offer).collect();
        assert_eq!(offers, vec![4, 1, 3]);
    }

    #[test]
    fn propensities_are_exact_count_ratios() {
        // Rankings: [0,1] x3, [0,2] x1, [1,0] x4 out of 8.
        let all = [0, 1, 0, 1, 0, 1, 0, 2, 1, 0, 1, 0, 1, 0, 1, 0];
        let policy = ContextPolicy::from_rankings(&all, 2, 8);
        assert_eq!(policy.distinct(), 3);
        // u spread over [0, 8): positions 0..3 are [0,1], 3 is [0,2], 4..8 [1,0].
        let at =
            |position: u64| -> Vec<(usize, f64)> { policy.pick((position << 61) + 1).collect() };
        assert_eq!(at(0), vec![(0, 0.5), (1, 0.75)]);
        assert_eq!(at(3), vec![(0, 0.5), (2, 0.25)]);
        assert_eq!(at(5), vec![(1, 0.5), (0, 1.0)]);
        assert_eq!(policy.marginal(0, 0), 0.5);
        assert_eq!(policy.marginal(1, 0), 0.5);
        assert_eq!(policy.probability(&[0, 1]), 0.375);
    }

    #[test]
    fn the_first_offer_outside_the_excluded_has_its_exact_probability() {
        // Rankings: [0,1] x3, [0,2] x1, [1,0] x4 out of 8.
        let all = [0, 1, 0, 1, 0, 1, 0, 2, 1, 0, 1, 0, 1, 0, 1, 0];
        let policy = ContextPolicy::from_rankings(&all, 2, 8);
        let at = |position: u64| (position << 61) + 1;
        // Without 0: [0,1] and [1,0] give 1 (7 of 8), [0,2] gives 2.
        assert_eq!(
            policy.first_outside(at(0), 0, &[0], &[1, 2]),
            Some((1, 0.875))
        );
        assert_eq!(
            policy.first_outside(at(3), 0, &[0], &[1, 2]),
            Some((2, 0.125))
        );
        // Without 0 and 1: only [0,2] has an offer left; the rest fall back
        // uniformly on what is eligible, here 2 alone.
        assert_eq!(
            policy.first_outside(at(5), 0, &[0, 1], &[2]),
            Some((2, 1.0))
        );
        // Without 0 and 2, eligible 1 and 3 (3 in no ranking): [0,2] x1 falls
        // back, half of it to each.
        let (offer, p) = policy
            .first_outside(at(3), u64::MAX, &[0, 2], &[1, 3])
            .expect("one");
        assert_eq!((offer, p), (3, 0.0625));
        assert_eq!(policy.first_outside(at(0), 0, &[0, 1, 2], &[]), None);
        // Nothing excluded: the first pick and its propensity.
        let first = policy.pick(at(5)).next().expect("a pick");
        assert_eq!(policy.first_outside(at(5), 0, &[], &[0, 1, 2]), Some(first));
    }

    #[test]
    fn thompson_sampling_favours_the_better_offer_and_is_seeded() {
        let posteriors = [(2.0, 98.0), (50.0, 950.0), (10.0, 990.0)];
        let inputs = PolicyInputs {
            posteriors: &posteriors,
            cold: &[],
            slots: 1,
            draws: 10_000,
            exploration: 0.0,
            seed: 42,
        };
        let policy = ContextPolicy::build(&inputs);
        assert!(policy.marginal(0, 1) > 0.9, "{}", policy.marginal(0, 1));
        let again = ContextPolicy::build(&inputs);
        assert_eq!(policy.rankings, again.rankings);
        assert_eq!(policy.cumulative, again.cumulative);
    }

    #[test]
    fn cold_offers_get_at_least_the_exploration_share() {
        let posteriors = [(500.0, 500.0), (1.0, 999.0), (0.2, 9.8)];
        let policy = ContextPolicy::build(&PolicyInputs {
            posteriors: &posteriors,
            cold: &[2],
            slots: 2,
            draws: 20_000,
            exploration: 0.1,
            seed: 1,
        });
        let first = policy.marginal(0, 2);
        assert!(first >= 0.09, "{first}");
    }
}
