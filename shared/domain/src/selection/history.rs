//! What earlier offers of the pool achieved: per offer, overall and per
//! attribute value of `selection.context`, how many were assigned, clicked
//! and redeemed. And what the engine believes about an offer's reward rate
//! in a context: the posterior Beta of [`History::posterior`].

use super::{EngineConfig, Prior, SelectionError, DEFAULT_PRIOR_WEIGHT, FALLBACK_PRIOR_RATE};
use super::{MAX_POOL, MAX_SLOTS};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What counts as a success: a redemption (default) or a click.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reward {
    #[default]
    Redeemed,
    Clicked,
}

impl Reward {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "redeemed" => Some(Reward::Redeemed),
            "clicked" => Some(Reward::Clicked),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reward::Redeemed => "redeemed",
            Reward::Clicked => "clicked",
        }
    }
}

/// Offers assigned, and of them those clicked and those redeemed (at least once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub assigned: u64,
    pub clicked: u64,
    pub redeemed: u64,
}

impl Counts {
    /// Successes, never more than the assignments (counters updated by
    /// separate stream records may be briefly out of step).
    pub fn rewarded(&self, reward: Reward) -> u64 {
        let successes = match reward {
            Reward::Redeemed => self.redeemed,
            Reward::Clicked => self.clicked,
        };
        successes.min(self.assigned)
    }

    fn add(&mut self, other: &Counts) {
        self.assigned = self.assigned.saturating_add(other.assigned);
        self.clicked = self.clicked.saturating_add(other.clicked);
        self.redeemed = self.redeemed.saturating_add(other.redeemed);
    }
}

/// Which counter of an offer: overall, or for one attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Overall,
    Attribute { name: String, value: String },
}

/// One learning counter as the statistics table keeps it
/// (`pk = offer#<offerId>`, `sk = overall | attr#<name>#<value>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearningCounter {
    pub offer_id: String,
    pub scope: Scope,
    pub counts: Counts,
}

/// An attribute value known to the history, by id.
pub type ValueId = u32;

/// The counters of a pool's offers, indexed for the engine.
#[derive(Debug, Clone)]
pub struct History {
    pool: Vec<String>,
    index: HashMap<String, usize>,
    overall: Vec<Counts>,
    /// Attribute name -> value -> id.
    values: HashMap<String, HashMap<String, ValueId>>,
    /// Id -> (name, value), for a context's stable key.
    names: Vec<(String, String)>,
    by_value: HashMap<(usize, ValueId), Counts>,
}

impl History {
    /// An empty history of `pool` (offer ids, in the plan's order).
    pub fn new(pool: Vec<String>) -> Result<Self, SelectionError> {
        if pool.is_empty() {
            return Err(SelectionError::EmptyPool);
        }
        if pool.len() > MAX_POOL {
            return Err(SelectionError::PoolTooLarge(pool.len()));
        }
        let mut index = HashMap::with_capacity(pool.len());
        for (position, offer) in pool.iter().enumerate() {
            if index.insert(offer.clone(), position).is_some() {
                return Err(SelectionError::DuplicateOffer(offer.clone()));
            }
        }
        Ok(Self {
            overall: vec![Counts::default(); pool.len()],
            pool,
            index,
            values: HashMap::new(),
            names: Vec::new(),
            by_value: HashMap::new(),
        })
    }

    pub fn pool(&self) -> &[String] {
        &self.pool
    }

    pub fn offer_index(&self, offer_id: &str) -> Option<usize> {
        self.index.get(offer_id).copied()
    }

    /// Adds a counter; counters of offers outside the pool are ignored.
    /// Returns whether it was used.
    pub fn add(&mut self, counter: &LearningCounter) -> bool {
        let Some(offer) = self.offer_index(&counter.offer_id) else {
            return false;
        };
        match &counter.scope {
            Scope::Overall => self.overall[offer].add(&counter.counts),
            Scope::Attribute { name, value } => {
                let id = self.intern(name, value);
                self.by_value
                    .entry((offer, id))
                    .or_default()
                    .add(&counter.counts);
            }
        }
        true
    }

    /// One more assignment of `offer` to a user with `attributes`, and its
    /// outcome: what the statistics function counts, for the simulation.
    pub fn observe(&mut self, offer: usize, attributes: &[(&str, &str)], outcome: Counts) {
        if offer >= self.pool.len() {
            return;
        }
        self.overall[offer].add(&outcome);
        for (name, value) in attributes {
            let id = self.intern(name, value);
            self.by_value.entry((offer, id)).or_default().add(&outcome);
        }
    }

    fn intern(&mut self, name: &str, value: &str) -> ValueId {
        if let Some(id) = self.value_id(name, value) {
            return id;
        }
        let id = self.names.len() as ValueId;
        self.names.push((name.to_owned(), value.to_owned()));
        self.values
            .entry(name.to_owned())
            .or_default()
            .insert(value.to_owned(), id);
        id
    }

    /// The id of an attribute value some offer of the pool has counts for.
    pub fn value_id(&self, name: &str, value: &str) -> Option<ValueId> {
        self.values.get(name)?.get(value).copied()
    }

    pub fn value_name(&self, id: ValueId) -> Option<(&str, &str)> {
        self.names
            .get(id as usize)
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// Whether no offer of the pool has any assignment counted.
    pub fn is_empty(&self) -> bool {
        self.overall.iter().all(|counts| counts.assigned == 0)
    }

    pub fn overall(&self, offer: usize) -> Counts {
        self.overall.get(offer).copied().unwrap_or_default()
    }

    pub fn for_value(&self, offer: usize, value: ValueId) -> Counts {
        self.by_value
            .get(&(offer, value))
            .copied()
            .unwrap_or_default()
    }

    /// The pool's rate: all rewards over all assignments, if any.
    pub fn pool_rate(&self, reward: Reward) -> Option<f64> {
        let (assigned, rewarded) = self.overall.iter().fold((0u64, 0u64), |(a, r), counts| {
            (
                a.saturating_add(counts.assigned),
                r.saturating_add(counts.rewarded(reward)),
            )
        });
        (assigned > 0).then(|| rewarded as f64 / assigned as f64)
    }

    /// The prior the plan gives, else the pool's rate (kept inside
    /// [0.001, 0.5] so that a pool with no reward yet still explores) with
    /// [`DEFAULT_PRIOR_WEIGHT`].
    pub fn prior(&self, config: &EngineConfig) -> Prior {
        config.prior.unwrap_or_else(|| Prior {
            rate: self
                .pool_rate(config.reward)
                .unwrap_or(FALLBACK_PRIOR_RATE)
                .clamp(0.001, 0.5),
            weight: DEFAULT_PRIOR_WEIGHT,
        })
    }

    /// The Beta(α, β) the engine samples an offer's rate from, for a user
    /// with the attribute values `context` (ids, as [`History::value_id`]).
    ///
    /// Back-off: the offer's overall posterior is the prior updated with its
    /// overall counts. Each attribute value's estimate starts from that
    /// overall mean, worth `attribute_weight` assignments (at most as many
    /// as the overall posterior holds), and adds the value's own counts. The
    /// values combine additively in log-odds (each value moves the overall
    /// log-odds by its own deviation); the result is worth as many
    /// assignments as the best-informed value. With no counts for any of the
    /// user's values, the overall posterior as it is.
    pub fn posterior(
        &self,
        offer: usize,
        context: &[ValueId],
        config: &EngineConfig,
        prior: Prior,
    ) -> (f64, f64) {
        let overall = self.overall(offer);
        let successes = overall.rewarded(config.reward) as f64;
        let failures = (overall.assigned as f64) - successes;
        let alpha0 = prior.rate * prior.weight + successes;
        let beta0 = (1.0 - prior.rate) * prior.weight + failures;
        let strength0 = alpha0 + beta0;
        let mean0 = alpha0 / strength0;
        let shrink = config.attribute_weight.min(strength0);
        let mut log_odds = logit(mean0);
        let mut strength = 0.0f64;
        for &value in context {
            let counts = self.for_value(offer, value);
            if counts.assigned == 0 {
                continue;
            }
            let n = counts.assigned as f64;
            let mean = (mean0 * shrink + counts.rewarded(config.reward) as f64) / (shrink + n);
            log_odds += logit(mean) - logit(mean0);
            strength = strength.max(shrink + n);
        }
        if strength == 0.0 {
            return (alpha0, beta0);
        }
        let mean = sigmoid(log_odds);
        // The attribute values' evidence, sharpened by `confidence`.
        let strength = strength * config.confidence;
        (mean * strength, (1.0 - mean) * strength)
    }

    /// The offers' overall posterior means.
    fn overall_means(&self, config: &EngineConfig, prior: Prior) -> Vec<f64> {
        self.overall
            .iter()
            .map(|counts| {
                let successes = counts.rewarded(config.reward) as f64;
                (prior.rate * prior.weight + successes) / (prior.weight + counts.assigned as f64)
            })
            .collect()
    }

    /// Each attribute value's effect on the rate of every offer alike (as a
    /// gold tier may have on all of them), by value id: the value's rewards
    /// over those the offers' overall means predict for its assignments,
    /// with ten rewards' worth of "no effect" so that a value seen little
    /// stays near 1.
    pub fn value_effects(&self, config: &EngineConfig, prior: Prior) -> Vec<f64> {
        let means = self.overall_means(config, prior);
        let mut observed = vec![0.0f64; self.names.len()];
        let mut expected = vec![0.0f64; self.names.len()];
        for (&(offer, value), counts) in &self.by_value {
            let index = value as usize;
            if let (Some(observed), Some(expected), Some(mean)) = (
                observed.get_mut(index),
                expected.get_mut(index),
                means.get(offer),
            ) {
                *observed += counts.rewarded(config.reward) as f64;
                *expected += counts.assigned as f64 * mean;
            }
        }
        observed
            .iter()
            .zip(&expected)
            .map(|(observed, expected)| (observed + 10.0) / (expected + 10.0))
            .collect()
    }

    /// Per attribute name, how strongly its values change offers' rates
    /// *differently* (an offer x value interaction, the only thing that can
    /// change a ranking): Pearson's X² of every (offer, value) cell's
    /// rewards against the offer's overall mean times the value's effect,
    /// as a z score against its degrees of freedom (the cells, less the
    /// values and the offers, plus one). An attribute that changes every
    /// offer alike scores about 0; one where offers have their own best
    /// values grows with the data.
    pub fn interaction_z(
        &self,
        config: &EngineConfig,
        prior: Prior,
        effects: &[f64],
    ) -> BTreeMap<String, f64> {
        #[derive(Default)]
        struct Sums {
            x2: f64,
            cells: u64,
            values: BTreeSet<ValueId>,
            offers: BTreeSet<usize>,
        }
        let means = self.overall_means(config, prior);
        let mut by_name: BTreeMap<&str, Sums> = BTreeMap::new();
        for (&(offer, value), counts) in &self.by_value {
            let (Some((name, _)), Some(mean)) = (self.value_name(value), means.get(offer)) else {
                continue;
            };
            if counts.assigned == 0 {
                continue;
            }
            let effect = effects.get(value as usize).copied().unwrap_or(1.0);
            let rate = (mean * effect).clamp(1e-9, 1.0 - 1e-9);
            let expected = counts.assigned as f64 * rate;
            let observed = counts.rewarded(config.reward) as f64;
            let sums = by_name.entry(name).or_default();
            sums.x2 += (observed - expected).powi(2) / (expected * (1.0 - rate));
            sums.cells += 1;
            sums.values.insert(value);
            sums.offers.insert(offer);
        }
        by_name
            .into_iter()
            .map(|(name, sums)| {
                let df =
                    (sums.cells as f64 + 1.0 - sums.values.len() as f64 - sums.offers.len() as f64)
                        .max(1.0);
                (name.to_owned(), (sums.x2 - df) / (2.0 * df).sqrt())
            })
            .collect()
    }

    /// The context's key: its value ids, sorted, without duplicates.
    pub fn context_of<'a>(
        &self,
        attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Vec<ValueId> {
        let mut ids: Vec<ValueId> = attributes
            .into_iter()
            .filter_map(|(name, value)| self.value_id(name, value))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The context as attribute name -> value.
    pub fn describe(&self, context: &[ValueId]) -> BTreeMap<String, String> {
        context
            .iter()
            .filter_map(|id| self.value_name(*id))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    }
}

/// Checks a plan's settings against its pool.
pub fn check_config(config: &EngineConfig, pool: usize) -> Result<(), SelectionError> {
    if config.slots == 0 || config.slots > pool || config.slots > MAX_SLOTS {
        return Err(SelectionError::Slots {
            slots: config.slots,
            pool,
            max: MAX_SLOTS,
        });
    }
    if !(0.0..1.0).contains(&config.holdout) {
        return Err(SelectionError::Holdout(config.holdout));
    }
    if let Some(prior) = config.prior {
        if !(prior.rate > 0.0 && prior.rate < 1.0) {
            return Err(SelectionError::Setting(format!(
                "prior.rate must be in (0, 1); got {}",
                prior.rate
            )));
        }
        if !(prior.weight > 0.0 && prior.weight <= 1e6) {
            return Err(SelectionError::Setting(format!(
                "prior.weight must be in (0, 1000000]; got {}",
                prior.weight
            )));
        }
    }
    let finite_in =
        |value: f64, low: f64, high: f64| value.is_finite() && value >= low && value <= high;
    if !finite_in(config.exploration, 0.0, 1.0) {
        return Err(SelectionError::Setting(format!(
            "exploration must be in [0, 1]; got {}",
            config.exploration
        )));
    }
    if !finite_in(config.attribute_weight, 0.0, 1e6) {
        return Err(SelectionError::Setting(format!(
            "attribute weight must be in [0, 1000000]; got {}",
            config.attribute_weight
        )));
    }
    if !finite_in(config.interaction_z, -1e6, 1e6) {
        return Err(SelectionError::Setting(format!(
            "interaction z must be a finite score; got {}",
            config.interaction_z
        )));
    }
    if !(finite_in(config.confidence, 0.01, 100.0)) {
        return Err(SelectionError::Setting(format!(
            "confidence must be in [0.01, 100]; got {}",
            config.confidence
        )));
    }
    if config.draws == 0 || config.draws > 1_000_000 {
        return Err(SelectionError::Setting(format!(
            "draws must be in 1..=1000000; got {}",
            config.draws
        )));
    }
    Ok(())
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-9, 1.0 - 1e-9);
    (p / (1.0 - p)).ln()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history() -> History {
        History::new(vec!["a".into(), "b".into()]).expect("pool")
    }

    fn counter(offer: &str, scope: Scope, assigned: u64, redeemed: u64) -> LearningCounter {
        LearningCounter {
            offer_id: offer.into(),
            scope,
            counts: Counts {
                assigned,
                clicked: 0,
                redeemed,
            },
        }
    }

    fn attr(name: &str, value: &str) -> Scope {
        Scope::Attribute {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn a_pool_is_checked() {
        assert_eq!(History::new(vec![]).unwrap_err(), SelectionError::EmptyPool);
        assert!(matches!(
            History::new(vec!["a".into(), "a".into()]),
            Err(SelectionError::DuplicateOffer(_))
        ));
    }

    #[test]
    fn the_prior_comes_from_the_pool_unless_the_plan_gives_one() {
        let mut history = history();
        let config = EngineConfig::new(1, 1);
        assert_eq!(history.prior(&config).rate, FALLBACK_PRIOR_RATE);
        history.add(&counter("a", Scope::Overall, 100, 3));
        history.add(&counter("b", Scope::Overall, 100, 1));
        assert!(!history.add(&counter("zzz", Scope::Overall, 100, 100)));
        assert!((history.prior(&config).rate - 0.02).abs() < 1e-12);
        let mut config = config;
        config.prior = Some(Prior {
            rate: 0.1,
            weight: 5.0,
        });
        assert_eq!(history.prior(&config).rate, 0.1);
    }

    #[test]
    fn the_posterior_backs_off_from_value_to_overall_to_prior() {
        let mut history = history();
        let config = EngineConfig {
            attribute_weight: 100.0,
            confidence: 2.0,
            ..EngineConfig::new(1, 1)
        };
        let prior = Prior {
            rate: 0.02,
            weight: 20.0,
        };
        // Nothing known: the prior.
        let (a, b) = history.posterior(0, &[], &config, prior);
        assert!((a - 0.4).abs() < 1e-9 && (b - 19.6).abs() < 1e-9);
        // Overall counts only.
        history.add(&counter("a", Scope::Overall, 1_000, 50));
        let (a, b) = history.posterior(0, &[], &config, prior);
        assert!((a / (a + b) - 50.4 / 1020.0).abs() < 1e-9);
        // A value with much data pulls towards its own rate.
        history.add(&counter("a", attr("segment", "s1"), 900, 90));
        history.add(&counter("a", attr("segment", "s2"), 100, 0));
        let s1 = history.value_id("segment", "s1").expect("known");
        let s2 = history.value_id("segment", "s2").expect("known");
        let (a, b) = history.posterior(0, &[s1], &config, prior);
        let mean = a / (a + b);
        assert!(mean > 0.09 && mean < 0.1, "{mean}");
        // Strength: the confidence (2) times K (100) + n (900).
        assert!((a + b - 2.0 * 1_000.0).abs() < 1e-9, "{}", a + b);
        let (a, b) = history.posterior(0, &[s2], &config, prior);
        // No redemption in 100: half the overall 4.9% (K = 100 of it).
        assert!(a / (a + b) < 0.03, "{}", a / (a + b));
        // An offer without data for the value: its overall posterior.
        assert_eq!(history.posterior(1, &[s1], &config, prior), (0.4, 19.6));
    }

    #[test]
    fn rewards_never_exceed_assignments() {
        let counts = Counts {
            assigned: 2,
            clicked: 5,
            redeemed: 1,
        };
        assert_eq!(counts.rewarded(Reward::Clicked), 2);
        assert_eq!(counts.rewarded(Reward::Redeemed), 1);
    }

    #[test]
    fn settings_are_bounded() {
        let mut config = EngineConfig::new(3, 1);
        assert!(check_config(&config, 3).is_ok());
        assert!(matches!(
            check_config(&config, 2),
            Err(SelectionError::Slots { .. })
        ));
        config.holdout = 1.0;
        assert_eq!(check_config(&config, 5), Err(SelectionError::Holdout(1.0)));
        config.holdout = f64::NAN;
        assert!(check_config(&config, 5).is_err());
        config.holdout = 0.0;
        config.confidence = 0.0;
        assert!(check_config(&config, 5).is_err());
        config.confidence = 2.0;
        config.prior = Some(Prior {
            rate: 0.0,
            weight: 1.0,
        });
        assert!(check_config(&config, 5).is_err());
    }

    /// Two attributes over 10 offers: `tier` scales every offer alike,
    /// `segment` has a best offer of its own in each value.
    fn two_attributes() -> History {
        let pool: Vec<String> = (0..10).map(|i| format!("o{i}")).collect();
        let mut history = History::new(pool.clone()).expect("pool");
        for (offer, id) in pool.iter().enumerate() {
            let base = 20 + offer as u64;
            let (mut assigned, mut redeemed) = (0, 0);
            for (tier, factor) in [("gold", 3), ("bronze", 1)] {
                history.add(&counter(id, attr("tier", tier), 2_000, base * factor));
                assigned += 2_000;
                redeemed += base * factor;
            }
            for segment in 0..2u64 {
                // Offer 0 is segment 0's best, offer 1 segment 1's.
                let special = offer as u64 == segment;
                let rewarded = if special { redeemed - 10 } else { 10 };
                let rewarded = if offer < 2 { rewarded } else { redeemed / 2 };
                history.add(&counter(
                    id,
                    attr("segment", &format!("s{segment}")),
                    2_000,
                    rewarded,
                ));
            }
            history.add(&counter(id, Scope::Overall, assigned, redeemed));
        }
        history
    }

    #[test]
    fn a_value_that_scales_every_offer_alike_has_an_effect_but_no_interaction() {
        let history = two_attributes();
        let config = EngineConfig::new(3, 1);
        let prior = history.prior(&config);
        let effects = history.value_effects(&config, prior);
        let gold = history.value_id("tier", "gold").expect("gold") as usize;
        let bronze = history.value_id("tier", "bronze").expect("bronze") as usize;
        assert!(effects[gold] > 1.3 && effects[gold] < 1.6, "{effects:?}");
        assert!(
            effects[bronze] > 0.4 && effects[bronze] < 0.7,
            "{effects:?}"
        );
        let z = history.interaction_z(&config, prior, &effects);
        assert!(z["tier"] < 1.0, "{z:?}");
        assert!(z["segment"] > 10.0, "{z:?}");
        // Without the effects, the tier's scaling would look like an interaction.
        let ignored = history.interaction_z(&config, prior, &[]);
        assert!(ignored["tier"] > z["tier"] + 5.0, "{ignored:?}");
    }
}
