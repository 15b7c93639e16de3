//! The per-user choice: holdout or the learned policy, and the ranking.

use super::hash::{combine, fnv1a, unit, SplitMix};
use super::history::{attribute_use, check_config, History, ValueId};
use super::policy::{ContextPolicy, PolicyInputs};
use super::{EngineConfig, Prior, SelectionError};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Contexts whose policies are kept; when more are met the cache starts
/// again (policies are rebuilt identically, from the seed and the context),
/// so memory stays bounded whatever the audience.
pub const MAX_CACHED_CONTEXTS: usize = 256;

/// One offer of a user's ranking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    /// Index into the pool.
    pub offer: usize,
    /// 1-based.
    pub rank: usize,
    /// P(this offer at this rank | the offers above it).
    pub propensity: f64,
}

/// A user's offers, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub holdout: bool,
    pub picks: Vec<Pick>,
}

pub struct Engine {
    history: History,
    config: EngineConfig,
    prior: Prior,
    cold: Vec<usize>,
    /// Every attribute name of the history with its interaction z score;
    /// those above `interaction_z` rank offers with a weight rising over
    /// `interaction_ramp` ([`attribute_use`]), the others' values are left
    /// out of every context.
    interaction: BTreeMap<String, f64>,
    /// By value id: how much its attribute takes part in ranking, in [0, 1].
    use_of: Vec<f64>,
    /// Per offer, by value id: the larger of `use_of` and the use its own
    /// interaction test gives the value's attribute for it
    /// ([`History::offer_interaction_z`]); empty when that test is off.
    offer_use_of: Vec<Vec<f64>>,
    /// How many (offer, value) cells change detection cut to their latest
    /// days ([`History::forget_changes`]).
    changed_cells: usize,
    cache: HashMap<Vec<ValueId>, Arc<ContextPolicy>>,
    context: Vec<ValueId>,
}

impl Engine {
    pub fn new(mut history: History, config: EngineConfig) -> Result<Self, SelectionError> {
        check_config(&config, history.pool().len())?;
        let prior = history.prior(&config);
        let cold = (0..history.pool().len())
            .filter(|&offer| history.overall(offer).undiscounted < config.cold_below as f64)
            .collect();
        let effects = history.value_effects(&config, prior);
        let interaction = history.interaction_z(&config, prior, &effects);
        let mut use_of = Vec::new();
        while let Some((name, _)) = history.value_name(use_of.len() as ValueId) {
            use_of.push(interaction.get(name).map_or(0.0, |z| {
                attribute_use(*z, config.interaction_z, config.interaction_ramp)
            }));
        }
        // After the interaction test: which attributes rank offers is judged
        // on all the evidence, and only their cells are tested for a change.
        let changed_cells = history.forget_changes(&config, &use_of);
        let offer_use_of = if config.offer_interaction_z > 0.0 {
            let by_offer = history.offer_interaction_z(&config, prior, &effects);
            (0..history.pool().len())
                .map(|offer| {
                    let own = |value: usize| {
                        history
                            .value_name(value as ValueId)
                            .and_then(|(name, _)| by_offer.get(&(offer, name.to_owned())))
                            .map_or(0.0, |z| {
                                attribute_use(
                                    *z,
                                    config.offer_interaction_z,
                                    config.interaction_ramp,
                                )
                            })
                    };
                    use_of
                        .iter()
                        .enumerate()
                        .map(|(value, attribute)| attribute.max(own(value)))
                        .collect()
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Self {
            history,
            config,
            prior,
            cold,
            interaction,
            use_of,
            offer_use_of,
            changed_cells,
            cache: HashMap::new(),
            context: Vec::new(),
        })
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn prior(&self) -> Prior {
        self.prior
    }

    /// Every attribute name of the history with its interaction z score
    /// (see [`History::interaction_z`]).
    pub fn interaction(&self) -> &BTreeMap<String, f64> {
        &self.interaction
    }

    /// How much an attribute with this z score takes part in ranking, in
    /// [0, 1] (0: left out).
    pub fn attribute_use(&self, z: f64) -> f64 {
        attribute_use(z, self.config.interaction_z, self.config.interaction_ramp)
    }

    /// The attributes whose values rank offers, with their z scores.
    pub fn ranking_attributes(&self) -> BTreeMap<&str, f64> {
        self.interaction
            .iter()
            .filter(|(_, z)| self.attribute_use(**z) > 0.0)
            .map(|(name, z)| (name.as_str(), *z))
            .collect()
    }

    /// How many (offer, value) cells kept only their latest days because
    /// their rate changed ([`History::forget_changes`]).
    pub fn changed_cells(&self) -> usize {
        self.changed_cells
    }

    fn ranks(&self, value: ValueId) -> bool {
        // In the context when its attribute ranks offers, or ranks one.
        self.use_of.get(value as usize).is_some_and(|w| *w > 0.0)
            || self
                .offer_use_of
                .iter()
                .any(|row| row.get(value as usize).is_some_and(|w| *w > 0.0))
    }

    /// Offers with fewer than `cold_below` assignments.
    pub fn cold(&self) -> &[usize] {
        &self.cold
    }

    fn user_hash(&self, user_id: &str) -> u64 {
        combine(self.config.seed, fnv1a(user_id.as_bytes()))
    }

    /// Whether the user is in the holdout: a hash of the seed and the user
    /// id, so the same user is in it in every run of the same plan.
    pub fn is_holdout(&self, user_id: &str) -> bool {
        unit(combine(self.user_hash(user_id), 1)) < self.config.holdout
    }

    /// The user's ranking. `attributes` are the audience's (name, value)
    /// pairs; values the history has no counts for play no part.
    pub fn choose(&mut self, user_id: &str, attributes: &[(&str, &str)]) -> Choice {
        let mut picks = Vec::with_capacity(self.config.slots);
        let holdout = self.choose_into(user_id, attributes.iter().copied(), &mut picks);
        Choice { holdout, picks }
    }

    /// [`Engine::choose`] into a reused buffer; returns whether the user is
    /// in the holdout.
    pub fn choose_into<'a>(
        &mut self,
        user_id: &str,
        attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
        picks: &mut Vec<Pick>,
    ) -> bool {
        picks.clear();
        let hash = self.user_hash(user_id);
        let mut rng = SplitMix::new(combine(hash, 2));
        if unit(combine(hash, 1)) < self.config.holdout {
            self.uniform_into(&mut rng, picks);
            return true;
        }
        let mut context = std::mem::take(&mut self.context);
        context.clear();
        context.extend(
            attributes
                .into_iter()
                .filter_map(|(name, value)| self.history.value_id(name, value))
                .filter(|&value| self.ranks(value)),
        );
        context.sort_unstable();
        context.dedup();
        let policy = self.policy(&context);
        self.context = context;
        let u = rng.next_u64();
        picks.extend(
            policy
                .pick(u)
                .enumerate()
                .map(|(rank, (offer, propensity))| Pick {
                    offer,
                    rank: rank + 1,
                    propensity,
                }),
        );
        false
    }

    /// k distinct offers uniformly at random: the holdout's choice.
    fn uniform_into(&self, rng: &mut SplitMix, picks: &mut Vec<Pick>) {
        let pool = self.history.pool().len();
        for rank in 0..self.config.slots {
            let left = pool - rank;
            // The j-th offer not yet taken, in pool order.
            let mut offer = rng.below(left as u64) as usize;
            let mut taken: Vec<usize> = picks.iter().map(|pick| pick.offer).collect();
            taken.sort_unstable();
            for earlier in taken {
                if earlier <= offer {
                    offer += 1;
                }
            }
            picks.push(Pick {
                offer,
                rank: rank + 1,
                propensity: 1.0 / left as f64,
            });
        }
    }

    /// The policy of a context (value ids sorted), built on first use.
    pub fn policy(&mut self, context: &[ValueId]) -> Arc<ContextPolicy> {
        if let Some(policy) = self.cache.get(context) {
            return Arc::clone(policy);
        }
        if self.cache.len() >= MAX_CACHED_CONTEXTS {
            self.cache.clear();
        }
        let posteriors: Vec<(f64, f64)> = (0..self.history.pool().len())
            .map(|offer| {
                self.history.posterior(
                    offer,
                    context,
                    self.offer_use_of.get(offer).unwrap_or(&self.use_of),
                    &self.config,
                    self.prior,
                )
            })
            .collect();
        // Seeded by the context's names and values, not by its ids (which
        // depend on the order the counters were read in).
        let mut described = 0u64;
        for (name, value) in self.history.describe(context) {
            described = combine(described, fnv1a(name.as_bytes()));
            described = combine(described, fnv1a(value.as_bytes()));
        }
        let policy = Arc::new(ContextPolicy::build(&PolicyInputs {
            posteriors: &posteriors,
            cold: &self.cold,
            slots: self.config.slots,
            draws: self.config.draws,
            exploration: self.config.exploration,
            seed: combine(self.config.seed, described),
        }));
        self.cache.insert(context.to_vec(), Arc::clone(&policy));
        policy
    }

    /// The context (value ids) of a user's attributes.
    pub fn context_of<'a>(
        &self,
        attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Vec<ValueId> {
        let mut context = self.history.context_of(attributes);
        context.retain(|&value| self.ranks(value));
        context
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selection::{Counts, LearningCounter, Scope, DEFAULT_CHANGE_Z};

    fn pool(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("offer-{i}")).collect()
    }

    fn learned() -> History {
        let mut history = History::new(pool(10)).expect("pool");
        for offer in 0..10 {
            history.add(&LearningCounter {
                offer_id: format!("offer-{offer}"),
                scope: Scope::Overall,
                day: None,
                counts: Counts {
                    assigned: 2_000,
                    clicked: 0,
                    redeemed: 20 + offer as u64,
                },
            });
        }
        // Gold users love offer-3.
        history.add(&LearningCounter {
            offer_id: "offer-3".into(),
            scope: Scope::Attribute {
                name: "tier".into(),
                value: "gold".into(),
            },
            day: None,
            counts: Counts {
                assigned: 500,
                clicked: 0,
                redeemed: 100,
            },
        });
        history
    }

    fn config() -> EngineConfig {
        let mut config = EngineConfig::new(3, 7);
        config.draws = 4_000;
        config
    }

    #[test]
    fn choices_are_distinct_deterministic_and_independent_of_order() {
        let mut engine = Engine::new(learned(), config()).expect("engine");
        let users: Vec<String> = (0..300).map(|i| format!("user-{i}")).collect();
        let forward: Vec<Choice> = users
            .iter()
            .map(|user| engine.choose(user, &[("tier", "gold")]))
            .collect();
        let mut fresh = Engine::new(learned(), config()).expect("engine");
        for (user, expected) in users.iter().zip(&forward).rev() {
            assert_eq!(&fresh.choose(user, &[("tier", "gold")]), expected);
        }
        for choice in &forward {
            let mut offers: Vec<usize> = choice.picks.iter().map(|pick| pick.offer).collect();
            assert_eq!(offers.len(), 3);
            offers.sort_unstable();
            offers.dedup();
            assert_eq!(offers.len(), 3, "distinct");
            for pick in &choice.picks {
                assert!(pick.propensity > 0.0 && pick.propensity <= 1.0);
            }
        }
    }

    #[test]
    fn the_attribute_value_steers_the_choice() {
        let mut engine = Engine::new(learned(), config()).expect("engine");
        let gold = engine.context_of([("tier", "gold")]);
        assert_eq!(gold.len(), 1);
        let policy = engine.policy(&gold);
        assert!(policy.marginal(0, 3) > 0.9, "{}", policy.marginal(0, 3));
        // Unknown values and no attributes: the overall statistics.
        let none = engine.context_of([("tier", "bronze"), ("region", "north")]);
        assert!(none.is_empty());
        let policy = engine.policy(&none);
        assert!(policy.marginal(0, 3) < 0.2);
    }

    fn counter(offer: usize, scope: Scope, assigned: u64, redeemed: u64) -> LearningCounter {
        LearningCounter {
            offer_id: format!("offer-{offer}"),
            scope,
            day: None,
            counts: Counts {
                assigned,
                clicked: 0,
                redeemed,
            },
        }
    }

    fn value(name: &str, value: &str) -> Scope {
        Scope::Attribute {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn an_attribute_that_scales_every_offer_alike_ranks_nothing() {
        // The tier doubles every offer's rate for gold users (with a little
        // noise); the segment gives offer 0 to s0 and offer 1 to s1.
        let mut history =
            History::new((0..10).map(|i| format!("offer-{i}")).collect()).expect("pool");
        for offer in 0..10usize {
            let noise = (offer as u64 * 7) % 5;
            history.add(&counter(offer, value("tier", "gold"), 3_000, 120 + noise));
            history.add(&counter(offer, value("tier", "bronze"), 3_000, 60 + noise));
            let (s0, s1) = match offer {
                0 => (150, 30),
                1 => (30, 150),
                _ => (90 + noise, 90 + noise),
            };
            history.add(&counter(offer, value("segment", "s0"), 3_000, s0));
            history.add(&counter(offer, value("segment", "s1"), 3_000, s1));
            history.add(&counter(offer, Scope::Overall, 6_000, s0 + s1));
        }
        let engine = Engine::new(history, config()).expect("engine");
        let ranking: Vec<&str> = engine.ranking_attributes().into_keys().collect();
        assert_eq!(ranking, ["segment"], "{:?}", engine.interaction());
        assert_eq!(engine.interaction().len(), 2);
        let context = engine.context_of([("tier", "gold"), ("segment", "s1")]);
        assert_eq!(
            engine.history().describe(&context),
            [("segment".to_owned(), "s1".to_owned())].into()
        );
        assert!(engine.context_of([("tier", "gold")]).is_empty());
    }

    #[test]
    fn the_holdout_is_the_planned_share_and_uniform() {
        let mut config = config();
        config.holdout = 0.25;
        let mut engine = Engine::new(learned(), config).expect("engine");
        let mut holdout = 0;
        let mut first = [0u32; 10];
        for i in 0..20_000 {
            let choice = engine.choose(&format!("u{i}"), &[]);
            if choice.holdout {
                holdout += 1;
                first[choice.picks[0].offer] += 1;
                let expected = [0.1, 1.0 / 9.0, 0.125];
                for (pick, p) in choice.picks.iter().zip(expected) {
                    assert!((pick.propensity - p).abs() < 1e-12);
                }
            }
        }
        assert!((4_700..5_300).contains(&holdout), "{holdout}");
        assert!(first.iter().all(|&n| (400..600).contains(&n)), "{first:?}");
    }

    #[test]
    fn propensities_match_the_frequencies_users_see() {
        let mut engine = Engine::new(learned(), config()).expect("engine");
        let mut counts: HashMap<usize, u32> = HashMap::new();
        let mut logged: HashMap<usize, f64> = HashMap::new();
        let users = 40_000;
        for i in 0..users {
            let choice = engine.choose(&format!("u{i}"), &[]);
            if choice.holdout {
                continue;
            }
            let first = choice.picks[0];
            *counts.entry(first.offer).or_default() += 1;
            logged.insert(first.offer, first.propensity);
        }
        let selected: u32 = counts.values().sum();
        for (offer, count) in counts {
            let observed = f64::from(count) / f64::from(selected);
            let expected = logged[&offer];
            if expected > 0.05 {
                assert!(
                    (observed - expected).abs() / expected < 0.1,
                    "offer {offer}: seen {observed}, logged {expected}"
                );
            }
        }
    }

    /// Two offers and two segments, a counter per offer, segment and day
    /// (plus the offer's overall one) from day 0 to `today - 1`: in s1,
    /// offer-1 at 6% and offer-0 at 2% throughout; in s0 the reverse until
    /// `shift`, then as in s1. Each segment's first favourite is shown
    /// 1,000 times a day there, the other offer 100 (a little exploration),
    /// before and after the shift alike (the allocation has not caught up).
    fn shifting(shift: u32, today: u32) -> Vec<LearningCounter> {
        let mut counters = Vec::new();
        for day in 0..today {
            for offer in 0..2u64 {
                let mut overall = Counts::default();
                for segment in 0..2u64 {
                    // Shown as the engine believed before the shift.
                    let shown = if segment == 0 { 0 } else { 1 };
                    let favourite = if segment == 0 && day < shift { 0 } else { 1 };
                    let assigned = if offer == shown { 1_000 } else { 100 };
                    let percent = if offer == favourite { 6 } else { 2 };
                    let counts = Counts {
                        assigned,
                        clicked: 0,
                        redeemed: assigned * percent / 100,
                    };
                    overall.assigned += counts.assigned;
                    overall.redeemed += counts.redeemed;
                    counters.push(LearningCounter {
                        offer_id: format!("offer-{offer}"),
                        scope: Scope::Attribute {
                            name: "segment".into(),
                            value: format!("s{segment}"),
                        },
                        day: Some(day),
                        counts,
                    });
                }
                counters.push(LearningCounter {
                    offer_id: format!("offer-{offer}"),
                    scope: Scope::Overall,
                    day: Some(day),
                    counts: overall,
                });
            }
        }
        counters
    }

    /// P(offer-1 first) for a user of s0, `days` after the shift on day 20.
    fn newcomer_first(days: u32, change_z: f64) -> f64 {
        let today = 20 + days;
        let history =
            History::discounted(pool(2), &shifting(20, today), today, 14.0).expect("history");
        let mut config = EngineConfig::new(1, 7);
        config.draws = 4_000;
        config.change_z = change_z;
        let mut engine = Engine::new(history, config).expect("engine");
        let context = engine.context_of([("segment", "s0")]);
        assert!(!context.is_empty(), "the segment ranks offers");
        engine.policy(&context).marginal(0, 1)
    }

    #[test]
    fn the_ranking_follows_a_change_of_favourite_within_days() {
        // Before the shift, offer-0 leads in s0 either way.
        assert!(newcomer_first(0, DEFAULT_CHANGE_Z) < 0.01);
        // Two days of the new tastes: change detection drops the old counts
        // of both cells, and offer-1 leads.
        let detected = newcomer_first(2, DEFAULT_CHANGE_Z);
        assert!(detected > 0.9, "{detected}");
        // Without it, twenty days of discounted evidence still favour the
        // old favourite.
        let discounted = newcomer_first(2, 0.0);
        assert!(discounted < 0.1, "{discounted}");
    }

    /// 30 offers and 4 segments, 1,000 assignments per offer and segment:
    /// every offer at 2% in every segment but offer-0, at 5% in s0 and
    /// 0.5% elsewhere (below the others overall).
    fn one_offer_of_its_own() -> History {
        let mut history = History::new(pool(30)).expect("pool");
        for offer in 0..30 {
            let mut overall = Counts::default();
            for segment in 0..4 {
                let redeemed = match (offer, segment) {
                    (0, 0) => 50,
                    (0, _) => 5,
                    _ => 20,
                };
                let counts = Counts {
                    assigned: 1_000,
                    clicked: 0,
                    redeemed,
                };
                overall.assigned += counts.assigned;
                overall.redeemed += counts.redeemed;
                history.add(&LearningCounter {
                    offer_id: format!("offer-{offer}"),
                    scope: Scope::Attribute {
                        name: "segment".into(),
                        value: format!("s{segment}"),
                    },
                    day: None,
                    counts,
                });
            }
            history.add(&LearningCounter {
                offer_id: format!("offer-{offer}"),
                scope: Scope::Overall,
                day: None,
                counts: overall,
            });
        }
        history
    }

    #[test]
    fn an_attribute_that_ranks_one_offer_ranks_it_for_that_offer() {
        let first_in_s0 = |offer_interaction_z: f64| {
            let mut config = config();
            config.slots = 1;
            config.offer_interaction_z = offer_interaction_z;
            let mut engine = Engine::new(one_offer_of_its_own(), config).expect("engine");
            // Diluted by the 29 offers it does not change, the segment's
            // own test leaves it out.
            assert!(
                engine.ranking_attributes().is_empty(),
                "{:?}",
                engine.interaction()
            );
            let context = engine.context_of([("segment", "s0")]);
            engine.policy(&context).marginal(0, 0)
        };
        let own = first_in_s0(4.0);
        assert!(own > 0.9, "{own}");
        // Without the offer's own test, offer-0 is below the others overall.
        let attribute_only = first_in_s0(0.0);
        assert!(attribute_only < 0.1, "{attribute_only}");
    }
}
