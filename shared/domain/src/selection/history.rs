//! What earlier offers of the pool achieved: per offer, overall and per
//! attribute value of `selection.context`, how many were assigned, clicked
//! and redeemed. And what the engine believes about an offer's reward rate
//! in a context: the posterior Beta of [`History::posterior`].

#[cfg(doc)]
use super::DEFAULT_PRIOR_WEIGHT;
use super::{EngineConfig, Prior, SelectionError, FALLBACK_PRIOR_RATE};
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
}

/// Counts discounted by age: each day's counts weigh 2^(-age / half-life),
/// so they are fractional.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Weighted {
    pub assigned: f64,
    pub clicked: f64,
    pub redeemed: f64,
    /// Assignments weighted by the square of their weight: the variance of
    /// a discounted count of successes is rate x (1 - rate) x this, not x
    /// `assigned` (the interaction test needs it; equal without discount).
    pub assigned_squared: f64,
    /// Assignments at full weight, whatever their age: whether an offer was
    /// ever shown enough not to be cold.
    pub undiscounted: f64,
}

impl Weighted {
    /// Successes, never more than the assignments (see [`Counts::rewarded`]).
    pub fn rewarded(&self, reward: Reward) -> f64 {
        let successes = match reward {
            Reward::Redeemed => self.redeemed,
            Reward::Clicked => self.clicked,
        };
        successes.min(self.assigned)
    }

    /// `self + factor x other`, field by field (the squared weights by
    /// factor², the undiscounted count by the factor's sign).
    fn plus_scaled(&self, other: &Weighted, factor: f64) -> Weighted {
        Weighted {
            assigned: self.assigned + factor * other.assigned,
            clicked: self.clicked + factor * other.clicked,
            redeemed: self.redeemed + factor * other.redeemed,
            assigned_squared: self.assigned_squared + factor * factor * other.assigned_squared,
            undiscounted: self.undiscounted + factor.signum() * other.undiscounted,
        }
    }

    fn add(&mut self, counts: &Counts, weight: f64) {
        // Capped per bucket, as a whole counter would be.
        self.assigned += counts.assigned as f64 * weight;
        self.assigned_squared += counts.assigned as f64 * weight * weight;
        self.undiscounted += counts.assigned as f64;
        self.clicked += counts.clicked.min(counts.assigned) as f64 * weight;
        self.redeemed += counts.redeemed.min(counts.assigned) as f64 * weight;
    }
}

/// The weight of counts `age` whole UTC days old under a half-life in days:
/// 2^(-age / half_life); counts of today (or dated in the future) weigh 1.
pub fn age_weight(age_days: u32, half_life_days: f64) -> f64 {
    if !(half_life_days.is_finite() && half_life_days > 0.0) {
        return 1.0;
    }
    (-f64::from(age_days) / half_life_days).exp2()
}

/// The UTC day (days since 1970-01-01) of a Unix time in seconds.
pub fn utc_day(unix_seconds: i64) -> u32 {
    u32::try_from(unix_seconds.div_euclid(86_400)).unwrap_or(0)
}

/// Undated counters (the all-time counters a deployment kept before they
/// were dated) read as one bucket of the day before the offer's oldest
/// dated counter: at least that old, so they fade like any old day instead
/// of weighing as much as today. An offer with no dated counter keeps its
/// undated ones at today's weight (nothing dated yet: nothing is lost).
///
/// An offer made before the statistics function dated its counters and
/// clicked or redeemed after it counts its outcome on its own day's dated
/// counter, whose assignment was counted undated: a dated counter with more
/// successes than assignments. That excess is handed to the undated counter
/// of the same offer and scope (when there is one), where its assignment
/// is, instead of being capped away.
pub fn date_undated(counters: &mut [LearningCounter]) {
    let mut oldest: HashMap<String, u32> = HashMap::new();
    // Per (offer, scope): the excess clicks and redemptions of dated counters.
    let mut excess: HashMap<(String, Scope), (u64, u64)> = HashMap::new();
    for counter in counters.iter_mut() {
        if let Some(day) = counter.day {
            let entry = oldest.entry(counter.offer_id.clone()).or_insert(day);
            *entry = (*entry).min(day);
            let counts = &mut counter.counts;
            let clicked = counts.clicked.saturating_sub(counts.assigned);
            let redeemed = counts.redeemed.saturating_sub(counts.assigned);
            if clicked > 0 || redeemed > 0 {
                counts.clicked -= clicked;
                counts.redeemed -= redeemed;
                let slot = excess
                    .entry((counter.offer_id.clone(), counter.scope.clone()))
                    .or_default();
                slot.0 = slot.0.saturating_add(clicked);
                slot.1 = slot.1.saturating_add(redeemed);
            }
        }
    }
    for counter in counters.iter_mut() {
        if counter.day.is_none() {
            if let Some((clicked, redeemed)) =
                excess.remove(&(counter.offer_id.clone(), counter.scope.clone()))
            {
                counter.counts.clicked = counter.counts.clicked.saturating_add(clicked);
                counter.counts.redeemed = counter.counts.redeemed.saturating_add(redeemed);
            }
            if let Some(oldest) = oldest.get(&counter.offer_id) {
                counter.day = Some(oldest.saturating_sub(1));
            }
        }
    }
}

impl History {
    /// The history of `pool` from the stored counters, as planned and
    /// always-on choices both read it: undated counters placed by
    /// [`date_undated`], each day's counts weighed by their age on `today`
    /// (a UTC day) under `half_life` days.
    pub fn discounted(
        pool: Vec<String>,
        counters: &[LearningCounter],
        today: u32,
        half_life: f64,
    ) -> Result<Self, SelectionError> {
        let mut history = History::new(pool)?;
        let mut counters = counters.to_vec();
        date_undated(&mut counters);
        for counter in &counters {
            history.add_dated(counter, today, half_life);
        }
        Ok(history)
    }
}

/// Which counter of an offer: overall, or for one attribute value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
    /// The UTC day (days since 1970-01-01) whose outcomes these are; `None`:
    /// undated (all-time counters kept before counters were dated, see
    /// [`date_undated`]).
    pub day: Option<u32>,
    pub counts: Counts,
}

/// An attribute value known to the history, by id.
pub type ValueId = u32;

/// The counters of a pool's offers, indexed for the engine.
#[derive(Debug, Clone)]
pub struct History {
    pool: Vec<String>,
    index: HashMap<String, usize>,
    overall: Vec<Weighted>,
    /// Attribute name -> value -> id.
    values: HashMap<String, HashMap<String, ValueId>>,
    /// Id -> (name, value), for a context's stable key.
    names: Vec<(String, String)>,
    by_value: HashMap<(usize, ValueId), Weighted>,
    /// Per (offer, value) cell, the counts of its days younger than
    /// [`CHANGE_SCAN_DAYS`], each as (age in days, discounted counts): where
    /// change detection ([`History::forget_changes`]) may split its history.
    /// Only dated counters go here (undated ones have no age).
    recent: HashMap<(usize, ValueId), Vec<(u32, Weighted)>>,
}

/// How far back (in days) change detection looks for the day a cell's rate
/// changed: two weeks, the default half-life. A change older than that has
/// mostly been discounted away, and a split with only a few old days on
/// its far side tests little.
pub const CHANGE_SCAN_DAYS: u32 = 14;
/// The least discounted assignments on each side of a split for it to be
/// tested: below that, a rate differs from another by chance alone (a
/// 5% offer has 2.5 redemptions in 50).
pub const CHANGE_MIN_ASSIGNED: f64 = 50.0;

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
            overall: vec![Weighted::default(); pool.len()],
            pool,
            index,
            values: HashMap::new(),
            names: Vec::new(),
            by_value: HashMap::new(),
            recent: HashMap::new(),
        })
    }

    pub fn pool(&self) -> &[String] {
        &self.pool
    }

    pub fn offer_index(&self, offer_id: &str) -> Option<usize> {
        self.index.get(offer_id).copied()
    }

    /// Adds a counter at full weight; counters of offers outside the pool
    /// are ignored. Returns whether it was used.
    pub fn add(&mut self, counter: &LearningCounter) -> bool {
        self.add_weighted(counter, 1.0, None)
    }

    /// Adds a counter discounted by its age on `today` (a UTC day) under
    /// `half_life` days ([`age_weight`]); undated counters weigh 1.
    pub fn add_dated(&mut self, counter: &LearningCounter, today: u32, half_life: f64) -> bool {
        let age = counter.day.map(|day| today.saturating_sub(day));
        self.add_weighted(counter, age_weight(age.unwrap_or(0), half_life), age)
    }

    fn add_weighted(&mut self, counter: &LearningCounter, weight: f64, age: Option<u32>) -> bool {
        let Some(offer) = self.offer_index(&counter.offer_id) else {
            return false;
        };
        match &counter.scope {
            Scope::Overall => self.overall[offer].add(&counter.counts, weight),
            Scope::Attribute { name, value } => {
                let id = self.intern(name, value);
                self.by_value
                    .entry((offer, id))
                    .or_default()
                    .add(&counter.counts, weight);
                if let Some(age) = age.filter(|&age| age < CHANGE_SCAN_DAYS) {
                    let mut counts = Weighted::default();
                    counts.add(&counter.counts, weight);
                    self.recent
                        .entry((offer, id))
                        .or_default()
                        .push((age, counts));
                }
            }
        }
        true
    }

    /// Change detection: drops a cell's old counts when its latest days'
    /// rate differs significantly from them (tastes changed), so that the
    /// engine follows the change at once instead of waiting for the
    /// half-life to discount the old rate away.
    ///
    /// Each (offer, value) cell of an attribute that ranks offers
    /// (`use_of[value] > 0`) with counts younger than [`CHANGE_SCAN_DAYS`]
    /// is split, at each such day, into the days up to that age and the
    /// older ones (both with at least [`CHANGE_MIN_ASSIGNED`] discounted
    /// assignments); the split whose two rates differ most (a two-sample z
    /// score of the discounted counts, the pooled rate's variance with each
    /// side's Σ weight² x assignments) is taken. When its |z| reaches
    /// `config.change_z`, the cell keeps only the counts after the split:
    /// its estimate restarts from the recent days (backed off to the
    /// offer's overall rate as any little-seen cell is). Deterministic: a
    /// function of the counters alone, tested afresh at every plan.
    /// Offers' overall counts are not tested: they mix the values in
    /// proportions the engine itself changes as it learns. Returns how many
    /// cells were cut.
    pub fn forget_changes(&mut self, config: &EngineConfig, use_of: &[f64]) -> usize {
        if !(config.change_z.is_finite() && config.change_z > 0.0) {
            return 0;
        }
        let mut cut: Vec<((usize, ValueId), Weighted)> = Vec::new();
        for (&(offer, value), days) in &self.recent {
            if !use_of.get(value as usize).is_some_and(|use_| *use_ > 0.0) {
                continue;
            }
            let total = self.for_value(offer, value);
            if let Some(newer) = significant_change(total, days, config) {
                cut.push(((offer, value), newer));
            }
        }
        for (cell, newer) in &cut {
            self.by_value.insert(*cell, *newer);
        }
        cut.len()
    }

    /// One more assignment of `offer` to a user with `attributes`, and its
    /// outcome: what the statistics function counts, for the simulation.
    pub fn observe(&mut self, offer: usize, attributes: &[(&str, &str)], outcome: Counts) {
        if offer >= self.pool.len() {
            return;
        }
        self.overall[offer].add(&outcome, 1.0);
        for (name, value) in attributes {
            let id = self.intern(name, value);
            self.by_value
                .entry((offer, id))
                .or_default()
                .add(&outcome, 1.0);
        }
    }

    /// The history as counters of one `day` (whole counts: a history built
    /// from [`History::observe`] or undiscounted counters), in a stable order.
    pub fn counters(&self, day: Option<u32>) -> Vec<LearningCounter> {
        let whole = |weighted: &Weighted| Counts {
            assigned: weighted.assigned.round() as u64,
            clicked: weighted.clicked.round() as u64,
            redeemed: weighted.redeemed.round() as u64,
        };
        let mut counters: Vec<LearningCounter> = self
            .overall
            .iter()
            .enumerate()
            .filter(|(_, counts)| counts.assigned > 0.0)
            .map(|(offer, counts)| LearningCounter {
                offer_id: self.pool[offer].clone(),
                scope: Scope::Overall,
                day,
                counts: whole(counts),
            })
            .collect();
        let mut cells: Vec<(&(usize, ValueId), &Weighted)> = self.by_value.iter().collect();
        cells.sort_unstable_by_key(|(key, _)| **key);
        counters.extend(cells.into_iter().filter_map(|(&(offer, value), counts)| {
            let (name, value) = self.value_name(value)?;
            Some(LearningCounter {
                offer_id: self.pool[offer].clone(),
                scope: Scope::Attribute {
                    name: name.to_owned(),
                    value: value.to_owned(),
                },
                day,
                counts: whole(counts),
            })
        }));
        counters
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
        self.overall.iter().all(|counts| counts.assigned <= 0.0)
    }

    /// The offer's overall counts, discounted by age.
    pub fn overall(&self, offer: usize) -> Weighted {
        self.overall.get(offer).copied().unwrap_or_default()
    }

    pub fn for_value(&self, offer: usize, value: ValueId) -> Weighted {
        self.by_value
            .get(&(offer, value))
            .copied()
            .unwrap_or_default()
    }

    /// The pool's rate: all rewards over all assignments, if any.
    pub fn pool_rate(&self, reward: Reward) -> Option<f64> {
        let (assigned, rewarded) = self.overall.iter().fold((0.0, 0.0), |(a, r), counts| {
            (a + counts.assigned, r + counts.rewarded(reward))
        });
        (assigned > 0.0).then(|| rewarded / assigned)
    }

    /// The prior the plan gives, else the pool's rate (kept inside
    /// [0.001, 0.5] so that a pool with no reward yet still explores) with
    /// the configured weight ([`DEFAULT_PRIOR_WEIGHT`] by default).
    pub fn prior(&self, config: &EngineConfig) -> Prior {
        config.prior.unwrap_or_else(|| Prior {
            rate: self
                .pool_rate(config.reward)
                .unwrap_or(FALLBACK_PRIOR_RATE)
                .clamp(0.001, 0.5),
            weight: config.prior_weight,
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
    ///
    /// `use_of[value]` (1 where missing) is how much of its deviation a
    /// value moves the log-odds by, and how far the strength goes from the
    /// overall one to the value's: an attribute's soft weight, rising with
    /// the evidence that it ranks offers ([`attribute_use`]).
    pub fn posterior(
        &self,
        offer: usize,
        context: &[ValueId],
        use_of: &[f64],
        config: &EngineConfig,
        prior: Prior,
    ) -> (f64, f64) {
        let overall = self.overall(offer);
        let successes = overall.rewarded(config.reward);
        let failures = overall.assigned - successes;
        let alpha0 = prior.rate * prior.weight + successes;
        let beta0 = (1.0 - prior.rate) * prior.weight + failures;
        let strength0 = alpha0 + beta0;
        let mean0 = alpha0 / strength0;
        let shrink = config.attribute_weight.min(strength0);
        let mut log_odds = logit(mean0);
        let mut strength = 0.0f64;
        let mut used = 0.0f64;
        for &value in context {
            let counts = self.for_value(offer, value);
            let weight = use_of.get(value as usize).copied().unwrap_or(1.0);
            if counts.assigned <= 0.0 || weight <= 0.0 {
                continue;
            }
            let n = counts.assigned;
            let mean = (mean0 * shrink + counts.rewarded(config.reward)) / (shrink + n);
            log_odds += weight * (logit(mean) - logit(mean0));
            strength = strength.max(shrink + n);
            used = used.max(weight);
        }
        if strength == 0.0 {
            return (alpha0, beta0);
        }
        let mean = sigmoid(log_odds);
        // The attribute values' evidence, sharpened by `confidence`, as far
        // as the attributes are used.
        let strength = (1.0 - used) * strength0 + used * strength * config.confidence;
        (mean * strength, (1.0 - mean) * strength)
    }

    /// The offers' overall posterior means.
    fn overall_means(&self, config: &EngineConfig, prior: Prior) -> Vec<f64> {
        self.overall
            .iter()
            .map(|counts| {
                let successes = counts.rewarded(config.reward);
                (prior.rate * prior.weight + successes) / (prior.weight + counts.assigned)
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
                *observed += counts.rewarded(config.reward);
                *expected += counts.assigned * mean;
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
    /// rewards against the offer's overall mean times the value's effect
    /// (a cell's variance that of its discounted count), as a z score against its degrees of freedom (the cells, less the
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
        let mut by_name: BTreeMap<&str, Sums> = BTreeMap::new();
        for cell in self.interaction_cells(config, prior, effects) {
            let sums = by_name.entry(cell.name).or_default();
            sums.x2 += cell.x2;
            sums.cells += 1;
            sums.values.insert(cell.value);
            sums.offers.insert(cell.offer);
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

    /// Per (offer, attribute name), the interaction test of
    /// [`History::interaction_z`] on the offer's own cells alone: X² of its
    /// values' rewards against its overall mean times each value's effect,
    /// as a z score against its degrees of freedom (its values less one).
    /// An attribute that changes few offers' ranks (4 of 48 offers with
    /// segments of their own) is diluted in the attribute's test by the
    /// offers it does not change; an offer's own test sees it sooner.
    pub fn offer_interaction_z(
        &self,
        config: &EngineConfig,
        prior: Prior,
        effects: &[f64],
    ) -> HashMap<(usize, String), f64> {
        let mut sums: HashMap<(usize, &str), (f64, u64)> = HashMap::new();
        for cell in self.interaction_cells(config, prior, effects) {
            let entry = sums.entry((cell.offer, cell.name)).or_default();
            entry.0 += cell.x2;
            entry.1 += 1;
        }
        sums.into_iter()
            .map(|((offer, name), (x2, cells))| {
                let df = (cells as f64 - 1.0).max(1.0);
                ((offer, name.to_owned()), (x2 - df) / (2.0 * df).sqrt())
            })
            .collect()
    }

    /// Every (offer, value) cell with assignments and its term of Pearson's
    /// X²: its rewards against the offer's overall mean times the value's
    /// effect, the cell's variance that of its discounted count. Both
    /// interaction tests sum these terms, by attribute or by offer.
    fn interaction_cells<'a>(
        &'a self,
        config: &'a EngineConfig,
        prior: Prior,
        effects: &'a [f64],
    ) -> impl Iterator<Item = InteractionCell<'a>> + 'a {
        let means = self.overall_means(config, prior);
        self.by_value
            .iter()
            .filter_map(move |(&(offer, value), counts)| {
                let (name, _) = self.value_name(value)?;
                let mean = *means.get(offer)?;
                if counts.assigned <= 0.0 {
                    return None;
                }
                let effect = effects.get(value as usize).copied().unwrap_or(1.0);
                let rate = (mean * effect).clamp(1e-9, 1.0 - 1e-9);
                let expected = counts.assigned * rate;
                let observed = counts.rewarded(config.reward);
                let variance = counts.assigned_squared * rate * (1.0 - rate);
                Some(InteractionCell {
                    offer,
                    value,
                    name,
                    x2: (observed - expected).powi(2) / variance,
                })
            })
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

/// One (offer, value) cell's part in an interaction test.
struct InteractionCell<'a> {
    offer: usize,
    value: ValueId,
    name: &'a str,
    x2: f64,
}

/// The counts after a cell's most significant split, when its |z| reaches
/// `config.change_z` (see [`History::forget_changes`]); `days` are the
/// cell's recent (age, counts), `total` all its counts.
fn significant_change(
    total: Weighted,
    days: &[(u32, Weighted)],
    config: &EngineConfig,
) -> Option<Weighted> {
    let mut by_age: BTreeMap<u32, Weighted> = BTreeMap::new();
    for (age, counts) in days {
        let day = by_age.entry(*age).or_default();
        *day = day.plus_scaled(counts, 1.0);
    }
    let pooled = (total.rewarded(config.reward) + 1.0) / (total.assigned + 2.0);
    let mut newer = Weighted::default();
    let mut best: Option<(f64, Weighted)> = None;
    for counts in by_age.values() {
        newer = newer.plus_scaled(counts, 1.0);
        let older = total.plus_scaled(&newer, -1.0);
        if newer.assigned < CHANGE_MIN_ASSIGNED || older.assigned < CHANGE_MIN_ASSIGNED {
            continue;
        }
        let gap = newer.rewarded(config.reward) / newer.assigned
            - older.rewarded(config.reward) / older.assigned;
        let variance = pooled
            * (1.0 - pooled)
            * (newer.assigned_squared / newer.assigned.powi(2)
                + older.assigned_squared / older.assigned.powi(2));
        let z = gap.abs() / variance.sqrt();
        if z.is_finite() && best.is_none_or(|(most, _)| z > most) {
            best = Some((z, newer));
        }
    }
    let (z, mut newer) = best?;
    if z < config.change_z {
        return None;
    }
    // Still an offer that was shown: cold or not by all its assignments.
    newer.undiscounted = total.undiscounted;
    Some(newer)
}

/// How much an attribute with interaction score `z` takes part in ranking:
/// 0 below `from`, 1 from `from + ramp` on, linear between. A soft weight
/// instead of a cut, so that a score wandering around a threshold from one
/// plan to the next moves the choice a little instead of switching the
/// attribute on and off.
pub fn attribute_use(z: f64, from: f64, ramp: f64) -> f64 {
    if !z.is_finite() {
        return 0.0;
    }
    if ramp <= 0.0 {
        return f64::from(u8::from(z >= from));
    }
    ((z - from) / ramp).clamp(0.0, 1.0)
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
    if !finite_in(config.prior_weight, 0.01, 1e6) {
        return Err(SelectionError::Setting(format!(
            "prior weight must be in [0.01, 1000000]; got {}",
            config.prior_weight
        )));
    }
    if config.half_life.is_nan() || config.half_life < 0.1 {
        return Err(SelectionError::Setting(format!(
            "halfLife must be at least 0.1 days (infinite: never forget); got {}",
            config.half_life
        )));
    }
    if !finite_in(config.offer_interaction_z, 0.0, 1e6) {
        return Err(SelectionError::Setting(format!(
            "offer interaction z must be in [0, 1000000] (0: the attribute's test only); got {}",
            config.offer_interaction_z
        )));
    }
    if !finite_in(config.change_z, 0.0, 1e6) {
        return Err(SelectionError::Setting(format!(
            "change z must be in [0, 1000000] (0: no change detection); got {}",
            config.change_z
        )));
    }
    if !finite_in(config.interaction_ramp, 0.0, 1e6) {
        return Err(SelectionError::Setting(format!(
            "interaction ramp must be in [0, 1000000]; got {}",
            config.interaction_ramp
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
            day: None,
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

    fn dated(counter: LearningCounter, day: u32) -> LearningCounter {
        LearningCounter {
            day: Some(day),
            ..counter
        }
    }

    #[test]
    fn undated_counters_are_one_bucket_before_the_oldest_dated_day() {
        let counters = [
            counter("a", Scope::Overall, 1_000, 50),
            dated(counter("a", Scope::Overall, 100, 10), 100),
            dated(counter("a", Scope::Overall, 100, 10), 110),
            counter("b", Scope::Overall, 1_000, 50),
        ];
        let history = History::discounted(vec!["a".into(), "b".into()], &counters, 114, 14.0)
            .expect("history");
        // a: the old bucket on day 99 (15 days old), day 100 (14), day 110 (4).
        let expected = 1_000.0 * age_weight(15, 14.0)
            + 100.0 * age_weight(14, 14.0)
            + 100.0 * age_weight(4, 14.0);
        assert!((history.overall(0).assigned - expected).abs() < 1e-9);
        assert_eq!(history.overall(0).undiscounted, 1_200.0);
        // b has nothing dated: its all-time counts at full weight.
        assert_eq!(history.overall(1).assigned, 1_000.0);
    }

    #[test]
    fn outcomes_of_offers_made_before_dating_go_to_the_old_bucket() {
        // Made (and counted as assigned) before the counters were dated,
        // redeemed after: day 100's counter has redemptions, no assignment.
        let mut counters = vec![
            counter("a", Scope::Overall, 1_000, 20),
            dated(counter("a", Scope::Overall, 0, 30), 100),
            dated(counter("a", Scope::Overall, 200, 10), 101),
            dated(counter("a", attr("tier", "gold"), 0, 5), 100),
            // b has no undated counter: its excess is capped away.
            dated(counter("b", Scope::Overall, 10, 15), 100),
        ];
        date_undated(&mut counters);
        assert_eq!(counters[0].counts.redeemed, 50);
        assert_eq!(counters[0].day, Some(99));
        assert_eq!(counters[1].counts.redeemed, 0);
        assert_eq!(counters[2].counts.redeemed, 10, "within its assignments");
        assert_eq!(counters[3].counts.redeemed, 0);
        assert_eq!(counters[4].counts.redeemed, 10);
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
        let (a, b) = history.posterior(0, &[], &[], &config, prior);
        assert!((a - 0.4).abs() < 1e-9 && (b - 19.6).abs() < 1e-9);
        // Overall counts only.
        history.add(&counter("a", Scope::Overall, 1_000, 50));
        let (a, b) = history.posterior(0, &[], &[], &config, prior);
        assert!((a / (a + b) - 50.4 / 1020.0).abs() < 1e-9);
        // A value with much data pulls towards its own rate.
        history.add(&counter("a", attr("segment", "s1"), 900, 90));
        history.add(&counter("a", attr("segment", "s2"), 100, 0));
        let s1 = history.value_id("segment", "s1").expect("known");
        let s2 = history.value_id("segment", "s2").expect("known");
        let (a, b) = history.posterior(0, &[s1], &[], &config, prior);
        let mean = a / (a + b);
        assert!(mean > 0.09 && mean < 0.1, "{mean}");
        // Strength: the confidence (2) times K (100) + n (900).
        assert!((a + b - 2.0 * 1_000.0).abs() < 1e-9, "{}", a + b);
        let (a, b) = history.posterior(0, &[s2], &[], &config, prior);
        // No redemption in 100: half the overall 4.9% (K = 100 of it).
        assert!(a / (a + b) < 0.03, "{}", a / (a + b));
        // An offer without data for the value: its overall posterior.
        assert_eq!(
            history.posterior(1, &[s1], &[], &config, prior),
            (0.4, 19.6)
        );
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

    /// One offer's counters in s0 over days 0..today, 1,000 a day at 5%,
    /// then at `after` (per thousand) from day `shift` on.
    fn one_cell(shift: u32, after: u64, today: u32) -> History {
        let counters: Vec<LearningCounter> = (0..today)
            .map(|day| {
                let redeemed = if day < shift { 50 } else { after };
                dated(counter("a", attr("segment", "s0"), 1_000, redeemed), day)
            })
            .collect();
        History::discounted(vec!["a".into(), "b".into()], &counters, today, 14.0).expect("history")
    }

    #[test]
    fn a_cell_whose_rate_changed_keeps_only_its_days_since() {
        let config = EngineConfig::new(1, 1);
        let mut history = one_cell(20, 20, 23);
        let s0 = history.value_id("segment", "s0").expect("s0");
        let before = history.for_value(0, s0);
        assert_eq!(history.forget_changes(&config, &[1.0]), 1);
        let after = history.for_value(0, s0);
        // Days 20-22 (ages 1-3) at 2%: 60 redemptions, discounted.
        let expected: f64 = (1..=3).map(|age| 1_000.0 * age_weight(age, 14.0)).sum();
        assert!((after.assigned - expected).abs() < 1e-6, "{after:?}");
        assert!((after.redeemed / after.assigned - 0.02).abs() < 1e-9);
        // Still not a cold offer: it was shown.
        assert_eq!(after.undiscounted, before.undiscounted);
    }

    #[test]
    fn a_stable_cell_or_one_of_an_attribute_left_out_keeps_everything() {
        let config = EngineConfig::new(1, 1);
        let mut stable = one_cell(20, 50, 23);
        let s0 = stable.value_id("segment", "s0").expect("s0");
        let before = stable.for_value(0, s0);
        assert_eq!(stable.forget_changes(&config, &[1.0]), 0);
        assert_eq!(stable.for_value(0, s0), before);
        // A change, but the segment ranks no offer (weight 0): not tested.
        let mut ignored = one_cell(20, 20, 23);
        assert_eq!(ignored.forget_changes(&config, &[0.0]), 0);
        // A change, with detection off.
        let off = EngineConfig {
            change_z: 0.0,
            ..EngineConfig::new(1, 1)
        };
        assert_eq!(one_cell(20, 20, 23).forget_changes(&off, &[1.0]), 0);
    }

    #[test]
    fn a_change_older_than_the_scan_keeps_the_scanned_days() {
        // 25 days since the change: the split is at most 13 days back, and
        // those days are all at the new rate.
        let mut history = one_cell(20, 20, 45);
        assert_eq!(history.forget_changes(&EngineConfig::new(1, 1), &[1.0]), 1);
        let s0 = history.value_id("segment", "s0").expect("s0");
        let after = history.for_value(0, s0);
        assert!((after.redeemed / after.assigned - 0.02).abs() < 1e-9);
        let ages = 1..CHANGE_SCAN_DAYS;
        let expected: f64 = ages.map(|age| 1_000.0 * age_weight(age, 14.0)).sum();
        assert!((after.assigned - expected).abs() < 1e-6, "{after:?}");
    }
}
