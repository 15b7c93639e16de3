//! Choosing offers: for each user of an audience, a ranking of `k` distinct
//! offers of a pool, with the propensity of each pick (docs/selection.md).
//!
//! Pure: the learning counters come in as [`History`], the plan's settings as
//! [`EngineConfig`]; nothing here reads a table. The engine is deterministic
//! for the same history, settings and seed, whatever the order of the users.
//!
//! - [`history`]: outcome counts per offer, overall and per attribute value,
//!   and the posterior of an offer's reward rate for a context (back-off from
//!   attribute value to overall to the prior).
//! - [`policy`]: the Thompson-sampling policy of one context, as an exact
//!   mixture of `draws` precomputed rankings.
//! - [`engine`]: holdout, contexts, the per-user choice.
//! - [`hash`]: the stable hashes and the small generator users' draws use.

pub mod engine;
pub mod hash;
pub mod history;
pub mod offline;
pub mod policy;
pub mod record;
pub mod simulate;

pub use engine::{Choice, Engine, Pick};
pub use history::{Counts, History, LearningCounter, Reward, Scope, Weighted};
pub use record::SelectionRecord;

/// The name and version of the learned policy, as `selection.policy` says it.
pub const POLICY: &str = "thompson-backoff/4";
/// The name and version of the holdout's policy: k offers uniformly at random.
pub const HOLDOUT_POLICY: &str = "uniform/1";

/// The largest pool a plan may have: indices fit in a `u16`, and a plan is
/// something a marketer reads.
pub const MAX_POOL: usize = 1_000;
/// The most offers one user may get from one plan.
pub const MAX_SLOTS: usize = 20;
/// Rankings per context. The mixture of them *is* the policy, so the logged
/// propensities are exact; 40,000 draws also keep the mixture within 5%
/// (relative) of Thompson sampling's own probabilities for picks above 1%
/// (standard error sqrt((1-p)/(p·M)) = 5.0% at p = 0.01).
pub const DEFAULT_DRAWS: u32 = 40_000;

/// A plan-settable prior: the expected reward rate of an offer nobody has
/// data on, and how many assignments' worth of belief it carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prior {
    pub rate: f64,
    pub weight: f64,
}

/// The engine's settings; [`EngineConfig::new`] gives the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    pub reward: Reward,
    /// Offers per user (k).
    pub slots: usize,
    /// Share of users in the holdout, in [0, 1).
    pub holdout: f64,
    pub seed: u64,
    /// `None`: the pool's overall rate with `prior_weight`.
    pub prior: Option<Prior>,
    /// The prior's weight when the plan gives no prior.
    pub prior_weight: f64,
    /// The z score (of Pearson's X² against its degrees of freedom) an
    /// attribute's offer x value interaction must reach for the attribute
    /// to rank offers: below it, its values change every offer's rate alike
    /// as far as the counters show, and their per-offer deviations are
    /// noise ([`History::interaction_z`]).
    pub interaction_z: f64,
    /// Above `interaction_z`, the z score over which an attribute's use
    /// rises from 0 to 1 (0: all or nothing at `interaction_z`).
    pub interaction_ramp: f64,
    /// Days after which outcomes weigh half as much (ages in whole UTC
    /// days); infinite: never forget.
    pub half_life: f64,
    /// How many assignments' worth of the offer's overall rate an attribute
    /// value's estimate starts from (shrinkage towards overall).
    pub attribute_weight: f64,
    /// Multiplies the strength (pseudo-counts) of the combined belief of a
    /// context with attribute values: above 1, less exploration there.
    /// The overall belief (no attribute counts) is left as it is.
    pub confidence: f64,
    /// Share of rankings whose first offer is a cold one (fewer than
    /// `cold_below` assignments), when the pool has cold offers.
    pub exploration: f64,
    pub cold_below: u64,
    /// Rankings precomputed per context.
    pub draws: u32,
    /// Change detection: the z score at which an (offer, value) cell's
    /// latest days are taken to differ from its older ones, which it then
    /// forgets ([`History::forget_changes`]); 0: never.
    pub change_z: f64,
    /// The z score of an offer's own interaction test
    /// ([`History::offer_interaction_z`]) from which an attribute ranks that
    /// offer even when the attribute's test leaves it out (its use rising
    /// over `interaction_ramp` as the attribute's does); 0 (the default):
    /// never. Not on by default: from 4 it lifted the long pool at 100,000
    /// users above context-free Thompson sampling but cost the behaviour
    /// world up to 4.5 points (docs/selection.md, "Variants tried").
    pub offer_interaction_z: f64,
}

/// The half-life of outcomes, in days, when the plan gives none: 14. A
/// month-old outcome weighs a quarter, so a change of tastes over a season
/// is followed within weeks, while a stable pool keeps about 20 days' worth
/// of outcomes (14 / ln 2) and loses little (docs/selection.md: 7 days
/// follows the shift world faster, at a larger cost in stable worlds).
pub const DEFAULT_HALF_LIFE: f64 = 14.0;
/// The z scores over which an attribute's use rises from 0 to 1 above
/// `interaction_z`: a soft weight, so that a score wandering around the
/// threshold from one plan to the next does not switch the attribute on
/// and off.
pub const DEFAULT_INTERACTION_RAMP: f64 = 3.0;

/// The z score of a change in an (offer, value) cell's rate at which its
/// older counts are dropped: 2.5. A cell's split is tested at each of its
/// last 14 days, so a stable cell crosses it more often than once in 80
/// (the nominal two-sided 1.2%); a false alarm costs that cell its old
/// counts, which it learns again within days (the stable worlds lost no
/// measurable reward, docs/selection.md), while 3 and 4 followed the
/// shift world less well.
pub const DEFAULT_CHANGE_Z: f64 = 2.5;

/// The prior's weight when the plan gives none.
pub const DEFAULT_PRIOR_WEIGHT: f64 = 20.0;
/// The rate assumed when neither the plan nor the pool's history gives one.
pub const FALLBACK_PRIOR_RATE: f64 = 0.02;

impl EngineConfig {
    pub fn new(slots: usize, seed: u64) -> Self {
        Self {
            reward: Reward::Redeemed,
            slots,
            holdout: 0.1,
            seed,
            prior: None,
            prior_weight: DEFAULT_PRIOR_WEIGHT,
            interaction_z: 1.5,
            interaction_ramp: DEFAULT_INTERACTION_RAMP,
            half_life: DEFAULT_HALF_LIFE,
            attribute_weight: 5.0,
            confidence: 4.0,
            exploration: 0.05,
            cold_below: 100,
            draws: DEFAULT_DRAWS,
            change_z: DEFAULT_CHANGE_Z,
            offer_interaction_z: 0.0,
        }
    }
}

/// Why the engine cannot run with these settings.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SelectionError {
    #[error("the pool is empty")]
    EmptyPool,
    #[error("the pool has {0} offers; at most {MAX_POOL}")]
    PoolTooLarge(usize),
    #[error("offer {0:?} is in the pool twice")]
    DuplicateOffer(String),
    #[error(
        "slots must be between 1 and {max}, and at most the pool's size ({pool}); got {slots}"
    )]
    Slots {
        slots: usize,
        pool: usize,
        max: usize,
    },
    #[error("holdout must be a fraction in [0, 1); got {0}")]
    Holdout(f64),
    #[error("{0}")]
    Setting(String),
}
