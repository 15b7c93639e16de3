//! The always-on chooser's decisions (contract section 13), pure: whether a
//! transaction is a visit, whether a campaign may assign on it (active,
//! slots, cadence window), the holdout arm, the choice itself with the
//! selection engine, and the pending row it writes. The service that reads
//! and writes the tables is `offers_shared::always_on`.

use crate::assignment_ids::for_always_on_window;
use crate::campaign::{AlwaysOn, CampaignDefinition, CampaignMode, CampaignStatus, PoolOffer};
use crate::dates::format_timestamp;
use crate::ids::CampaignId;
use crate::selection::hash::{combine, fnv1a, unit};
use crate::selection::record::{context_problem, MAX_CONTEXT_ATTRIBUTES};
use crate::selection::{
    Engine, EngineConfig, History, LearningCounter, Reward, SelectionError, HOLDOUT_POLICY, POLICY,
};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Rankings per context of an always-on engine (a plan's: 40,000). A
/// context's mixture is built on its first visit after each statistics
/// refresh: 4,000 Thompson draws of a small pool take about 2 ms of CPU
/// (release), 40,000 about 50 ms, which at 144 profile contexts per
/// refresh would cost seconds per instance. A choice and its propensity
/// come from the same mixture, so the propensity stays exact for the rule
/// applied; fewer rankings only coarsen it (steps of 1/4,000).
pub const ALWAYS_ON_DRAWS: u32 = 4_000;

/// A transaction older than this is counted in the profile but assigns nothing.
pub const MAX_VISIT_AGE: Duration = Duration::hours(24);
/// A transaction further ahead of now than this (clock skew) assigns nothing.
pub const MAX_VISIT_AHEAD: Duration = Duration::minutes(5);

/// Whether a valid transaction at `occurred_at` is a visit at `now`: at
/// most 24 hours old and at most 5 minutes ahead.
pub fn is_visit(occurred_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    occurred_at >= now - MAX_VISIT_AGE && occurred_at <= now + MAX_VISIT_AHEAD
}

/// An always-on campaign as the chooser reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlwaysOnCampaign {
    pub campaign_id: CampaignId,
    pub version: u64,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    pub paused: bool,
    pub settings: AlwaysOn,
    /// The `offers` limit of its budget (section 14), if it has one.
    pub offers_limit: Option<u64>,
    /// Its offers counted against that limit, as last read.
    pub offers_used: u64,
}

impl AlwaysOnCampaign {
    /// The campaign of a checked definition; `None` for other modes.
    pub fn of(definition: CampaignDefinition, version: u64, paused: bool) -> Option<Self> {
        if definition.mode != CampaignMode::AlwaysOn {
            return None;
        }
        Some(Self {
            campaign_id: definition.campaign_id,
            version,
            start: definition.start?,
            end: definition.end,
            paused,
            settings: definition.always_on?,
            offers_limit: definition.budget.and_then(|budget| budget.offers),
            offers_used: 0,
        })
    }

    /// With its offers counted so far (the campaign item's `usedOffers`).
    pub fn with_offers_used(mut self, used: u64) -> Self {
        self.offers_used = used;
        self
    }

    /// Whether its offers budget is used up (as last read): it stops
    /// choosing; the dispatcher's condition on the counter stays the limit.
    pub fn offers_budget_exhausted(&self) -> bool {
        self.offers_limit
            .is_some_and(|limit| self.offers_used >= limit)
    }

    /// Whether it assigns on a visit at `at`: started, not ended, not paused.
    pub fn active_at(&self, at: DateTime<Utc>) -> bool {
        CampaignStatus::at(Some(self.start), self.end, self.paused, at) == CampaignStatus::Active
    }

    /// The cadence window that contains `at`, counted from startDate
    /// (0 is the first); `None` before the start.
    pub fn window_of(&self, at: DateTime<Utc>) -> Option<u64> {
        let elapsed = (at - self.start).num_seconds();
        let elapsed = u64::try_from(elapsed).ok()?;
        Some(elapsed / self.settings.cadence_seconds.max(1))
    }

    pub fn pool_ids(&self) -> Vec<String> {
        self.settings
            .pool
            .iter()
            .map(|offer| offer.offer_id.to_string())
            .collect()
    }

    /// The engine of this campaign's pool, from the learning counters read,
    /// each day's discounted by its age on `today` (a UTC day, days since
    /// 1970) under the campaign's `halfLife`, as a plan's are: no counters
    /// at all chooses from the prior (cold start). The holdout is drawn
    /// here per (user, campaign) ([`in_holdout`]), not by the engine.
    pub fn engine(
        &self,
        counters: &[LearningCounter],
        today: u32,
    ) -> Result<Engine, SelectionError> {
        self.engine_with(counters, today, |_| {})
    }

    /// The same, with settings changed after the campaign's own are set
    /// (the behaviour world's fewer rankings per context and its variants).
    pub fn engine_with(
        &self,
        counters: &[LearningCounter],
        today: u32,
        adjust: impl FnOnce(&mut EngineConfig),
    ) -> Result<Engine, SelectionError> {
        let history =
            History::discounted(self.pool_ids(), counters, today, self.settings.half_life)?;
        let pool = self.settings.pool.len();
        let slots = usize::try_from(self.settings.slots)
            .unwrap_or(1)
            .clamp(1, pool.max(1));
        let mut config = EngineConfig::new(slots, fnv1a(self.campaign_id.as_bytes()));
        config.holdout = 0.0;
        config.reward = Reward::parse(&self.settings.reward).unwrap_or_default();
        config.draws = ALWAYS_ON_DRAWS;
        config.half_life = self.settings.half_life;
        adjust(&mut config);
        Engine::new(history, config)
    }
}

/// One offer of the campaign the user has or is about to have: an offer
/// record, or a pending row not yet dispatched.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldOffer {
    pub offer_id: String,
    /// When it was assigned: the offer's startDate (always-on offers start
    /// at the visit that chose them).
    pub assigned_at: DateTime<Utc>,
    /// Not expired, not redeemed, not revoked (a pending row is live).
    pub live: bool,
}

/// Why a campaign assigns nothing on a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Not started, ended or paused at the visit.
    NotActive,
    /// The user holds `slots` live offers of it.
    SlotsFull,
    /// The user got one of its offers in this cadence window.
    WindowUsed,
    /// Every offer of the pool is held or gone from the catalog.
    NothingEligible,
    /// Its offers budget is used up.
    BudgetExhausted,
}

impl Skip {
    pub fn name(self) -> &'static str {
        match self {
            Skip::NotActive => "not_active",
            Skip::SlotsFull => "slots_full",
            Skip::WindowUsed => "window_used",
            Skip::NothingEligible => "nothing_eligible",
            Skip::BudgetExhausted => "budget_exhausted",
        }
    }
}

/// What the campaign may do on a visit at `occurred_at`: the window and
/// the pool indices the user holds live, or why it does nothing.
pub fn eligibility(
    campaign: &AlwaysOnCampaign,
    held: &[HeldOffer],
    occurred_at: DateTime<Utc>,
) -> Result<(u64, Vec<usize>), Skip> {
    if !campaign.active_at(occurred_at) {
        return Err(Skip::NotActive);
    }
    if campaign.offers_budget_exhausted() {
        return Err(Skip::BudgetExhausted);
    }
    let window = campaign.window_of(occurred_at).ok_or(Skip::NotActive)?;
    let live = held.iter().filter(|offer| offer.live).count();
    if u64::try_from(live).unwrap_or(u64::MAX) >= campaign.settings.slots {
        return Err(Skip::SlotsFull);
    }
    if held
        .iter()
        .any(|offer| campaign.window_of(offer.assigned_at) == Some(window))
    {
        return Err(Skip::WindowUsed);
    }
    let mut excluded: Vec<usize> = campaign
        .settings
        .pool
        .iter()
        .enumerate()
        .filter(|(_, pool)| {
            held.iter()
                .any(|offer| offer.live && offer.offer_id == pool.offer_id)
        })
        .map(|(index, _)| index)
        .collect();
    excluded.sort_unstable();
    Ok((window, excluded))
}

/// The user's arm in the campaign: a hash of both ids, so the same user in
/// the same campaign is always in the same arm.
pub fn in_holdout(campaign_id: &str, user_id: &str, share: f64) -> bool {
    let hash = combine(fnv1a(campaign_id.as_bytes()), fnv1a(user_id.as_bytes()));
    unit(combine(hash, 1)) < share
}

/// The offer chosen on a visit.
#[derive(Debug, Clone, PartialEq)]
pub struct AlwaysOnChoice {
    /// Index into the pool.
    pub offer: usize,
    pub propensity: f64,
    pub holdout: bool,
}

/// Chooses one offer outside `excluded` (held live, or gone from the
/// catalog). Holdout users: uniformly among the eligible offers. Others:
/// the engine's policy for the context, the first offer of the user's
/// ranking that is not excluded, with its exact probability. The draws
/// hash the campaign, the user and the window: a replay chooses the same
/// offer from the same statistics, and each window draws anew.
pub fn choose(
    engine: &mut Engine,
    campaign: &AlwaysOnCampaign,
    user_id: &str,
    window: u64,
    context: &BTreeMap<String, String>,
    excluded: &[usize],
) -> Option<AlwaysOnChoice> {
    let pool = campaign.settings.pool.len();
    let eligible: Vec<usize> = (0..pool).filter(|at| !excluded.contains(at)).collect();
    if eligible.is_empty() {
        return None;
    }
    let draw = combine(
        combine(
            fnv1a(campaign.campaign_id.as_bytes()),
            fnv1a(user_id.as_bytes()),
        ),
        window,
    );
    if in_holdout(&campaign.campaign_id, user_id, campaign.settings.holdout) {
        let at = ((u128::from(combine(draw, 3)) * eligible.len() as u128) >> 64) as usize;
        return Some(AlwaysOnChoice {
            offer: eligible[at.min(eligible.len() - 1)],
            propensity: 1.0 / eligible.len() as f64,
            holdout: true,
        });
    }
    let ids = engine.context_of(
        context
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    let policy = engine.policy(&ids);
    let (offer, propensity) =
        policy.first_outside(combine(draw, 4), combine(draw, 5), excluded, &eligible)?;
    Some(AlwaysOnChoice {
        offer,
        propensity,
        holdout: false,
    })
}

/// The context as `selection.context` may carry it: attributes the
/// dispatcher would refuse (too long, too many) are left out.
pub fn bounded_context(context: BTreeMap<String, String>) -> BTreeMap<String, String> {
    context
        .into_iter()
        .filter(|(name, value)| context_problem(name, &Value::String(value.clone())).is_none())
        .take(MAX_CONTEXT_ATTRIBUTES)
        .collect()
}

/// The pending row (contract section 2) of a choice: `sortKey`
/// campaignId+offerId, the pool entry's template and rules, startDate the
/// visit, expiryDate `validDays` later, rank 1, the window's assignmentId,
/// `selection` (section 12) and `ttl` at the expiry.
pub fn pending_row(
    campaign: &AlwaysOnCampaign,
    offer: &PoolOffer,
    user_id: &str,
    occurred_at: DateTime<Utc>,
    window: u64,
    choice: &AlwaysOnChoice,
    context: &BTreeMap<String, String>,
) -> Map<String, Value> {
    let days = i64::try_from(campaign.settings.valid_days).unwrap_or(1);
    let expiry = occurred_at
        .checked_add_signed(Duration::days(days))
        .unwrap_or(occurred_at);
    let policy = if choice.holdout {
        HOLDOUT_POLICY
    } else {
        POLICY
    };
    let mut row = Map::new();
    row.insert("userId".into(), json!(user_id));
    row.insert(
        "sortKey".into(),
        json!(format!("{}+{}", campaign.campaign_id, offer.offer_id)),
    );
    row.insert("offerId".into(), json!(offer.offer_id));
    row.insert("campaignId".into(), json!(campaign.campaign_id));
    row.insert("startDate".into(), json!(format_timestamp(occurred_at)));
    row.insert("expiryDate".into(), json!(format_timestamp(expiry)));
    row.insert("rank".into(), json!(1));
    row.insert("ttl".into(), json!(expiry.timestamp()));
    row.insert(
        "assignmentId".into(),
        json!(for_always_on_window(&campaign.campaign_id, user_id, window)),
    );
    if let Some(template_id) = &offer.template_id {
        row.insert("templateId".into(), json!(template_id));
    }
    if let Some(rules) = &offer.rules {
        row.insert("rules".into(), Value::Object(rules.clone()));
    }
    row.insert(
        "selection".into(),
        json!({
            "policy": policy,
            "propensity": choice.propensity,
            "holdout": choice.holdout,
            "context": context,
        }),
    );
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::parse_definition;
    use crate::selection::{Counts, Scope};
    use chrono::TimeZone;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, day, hour, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn campaign(slots: u64, holdout: f64) -> AlwaysOnCampaign {
        let text = json!({
            "campaignId": "always", "mode": "alwaysOn",
            "pool": [{"offerId": "a"}, {"offerId": "b"}, {"offerId": "c"}],
            "startDate": "2030-01-01T00:00:00Z", "endDate": "2030-02-01T00:00:00Z",
            "validDays": 7, "cadence": "P1D", "slots": slots, "holdout": holdout,
            "reward": "redeemed"
        })
        .to_string();
        let definition = parse_definition(&text).expect("valid");
        AlwaysOnCampaign::of(definition, 1, false).expect("always-on")
    }

    fn held(offer_id: &str, assigned_at: DateTime<Utc>, live: bool) -> HeldOffer {
        HeldOffer {
            offer_id: offer_id.into(),
            assigned_at,
            live,
        }
    }

    #[test]
    fn visits_are_at_most_a_day_old_and_five_minutes_ahead() {
        let now = at(10, 12);
        assert!(is_visit(now, now));
        assert!(is_visit(now - Duration::hours(24), now));
        assert!(!is_visit(
            now - Duration::hours(24) - Duration::seconds(1),
            now
        ));
        assert!(is_visit(now + Duration::minutes(5), now));
        assert!(!is_visit(
            now + Duration::minutes(5) + Duration::seconds(1),
            now
        ));
    }

    #[test]
    fn windows_count_from_the_start_and_slots_and_windows_are_kept() {
        let campaign = campaign(2, 0.0);
        assert_eq!(campaign.window_of(at(1, 0)), Some(0));
        assert_eq!(campaign.window_of(at(1, 23)), Some(0));
        assert_eq!(campaign.window_of(at(3, 5)), Some(2));
        assert_eq!(eligibility(&campaign, &[], at(3, 5)), Ok((2, Vec::new())));
        // One live offer from yesterday: another may come, not offer a again.
        let yesterday = [held("a", at(2, 9), true)];
        assert_eq!(
            eligibility(&campaign, &yesterday, at(3, 5)),
            Ok((2, vec![0]))
        );
        // One from today's window, even redeemed: nothing more today.
        let today = [held("b", at(3, 1), false)];
        assert_eq!(
            eligibility(&campaign, &today, at(3, 5)),
            Err(Skip::WindowUsed)
        );
        let full = [held("a", at(1, 9), true), held("c", at(2, 9), true)];
        assert_eq!(
            eligibility(&campaign, &full, at(3, 5)),
            Err(Skip::SlotsFull)
        );
        // Expired or redeemed offers of other windows leave the slot free.
        let spent = [held("a", at(1, 9), false), held("c", at(2, 9), true)];
        assert_eq!(eligibility(&campaign, &spent, at(3, 5)), Ok((2, vec![2])));
    }

    #[test]
    fn before_the_start_after_the_end_or_paused_nothing() {
        let mut campaign = campaign(1, 0.0);
        let before = Utc
            .with_ymd_and_hms(2029, 12, 31, 23, 0, 0)
            .single()
            .unwrap_or_default();
        assert_eq!(eligibility(&campaign, &[], before), Err(Skip::NotActive));
        let after = Utc
            .with_ymd_and_hms(2030, 2, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        assert_eq!(eligibility(&campaign, &[], after), Err(Skip::NotActive));
        campaign.paused = true;
        assert_eq!(eligibility(&campaign, &[], at(3, 5)), Err(Skip::NotActive));
    }

    #[test]
    fn an_offers_budget_used_up_stops_the_choice_and_room_left_does_not() {
        let mut campaign = campaign(1, 0.0);
        assert!(!campaign.offers_budget_exhausted(), "no budget, no limit");
        campaign.offers_limit = Some(5);
        let campaign = campaign.with_offers_used(4);
        assert!(eligibility(&campaign, &[], at(3, 5)).is_ok());
        // A limit lowered below what was used stops it too.
        let campaign = campaign.with_offers_used(7);
        assert_eq!(
            eligibility(&campaign, &[], at(3, 5)),
            Err(Skip::BudgetExhausted)
        );
    }

    #[test]
    fn the_holdout_arm_is_fixed_per_user_and_campaign_and_near_its_share() {
        let users: Vec<String> = (0..10_000).map(|i| format!("u{i}")).collect();
        let held_out = users
            .iter()
            .filter(|user| in_holdout("always", user, 0.2))
            .count();
        assert!((1_800..2_200).contains(&held_out), "{held_out}");
        assert!(users
            .iter()
            .all(|user| in_holdout("always", user, 0.2) == in_holdout("always", user, 0.2)));
        let differs = users
            .iter()
            .filter(|user| in_holdout("always", user, 0.5) != in_holdout("other", user, 0.5))
            .count();
        assert!(differs > 3_000, "arms are drawn per campaign: {differs}");
    }

    #[test]
    fn cold_pools_choose_from_the_prior_and_never_a_held_offer() {
        let campaign = campaign(2, 0.0);
        let mut engine = campaign.engine(&[], 0).expect("engine");
        let context = BTreeMap::from([("mode".to_owned(), "pickup".to_owned())]);
        let mut seen = [0u32; 3];
        for user in 0..600 {
            let user = format!("u{user}");
            let choice =
                choose(&mut engine, &campaign, &user, 4, &context, &[1]).expect("a choice");
            assert_ne!(choice.offer, 1);
            assert!(!choice.holdout);
            assert!(choice.propensity > 0.0 && choice.propensity <= 1.0);
            seen[choice.offer] += 1;
            // The same visit again: the same offer.
            let again = choose(&mut engine, &campaign, &user, 4, &context, &[1]);
            assert_eq!(again, Some(choice));
        }
        assert!(seen[0] > 150 && seen[2] > 150, "{seen:?}");
        assert_eq!(
            choose(&mut engine, &campaign, "u", 4, &context, &[0, 1, 2]),
            None
        );
    }

    #[test]
    fn learned_statistics_steer_the_choice_by_profile_value() {
        let campaign = campaign(1, 0.0);
        let counter = |offer: &str, scope: Scope, assigned: u64, redeemed: u64| LearningCounter {
            offer_id: offer.into(),
            scope,
            day: None,
            counts: Counts {
                assigned,
                clicked: 0,
                redeemed,
            },
        };
        let mode = |value: &str| Scope::Attribute {
            name: "mode".into(),
            value: value.into(),
        };
        let mut counters = Vec::new();
        for (offer, pickup, delivery) in [("a", 300, 10), ("b", 10, 300), ("c", 20, 20)] {
            counters.push(counter(offer, Scope::Overall, 4_000, pickup + delivery));
            counters.push(counter(offer, mode("pickup"), 2_000, pickup));
            counters.push(counter(offer, mode("delivery"), 2_000, delivery));
        }
        let mut engine = campaign.engine(&counters, 0).expect("engine");
        let pickup = BTreeMap::from([("mode".to_owned(), "pickup".to_owned())]);
        let delivery = BTreeMap::from([("mode".to_owned(), "delivery".to_owned())]);
        let mut wins = (0, 0);
        for user in 0..200 {
            let user = format!("u{user}");
            let chosen = |engine: &mut Engine, context| {
                choose(engine, &campaign, &user, 0, context, &[]).map(|choice| choice.offer)
            };
            wins.0 += usize::from(chosen(&mut engine, &pickup) == Some(0));
            wins.1 += usize::from(chosen(&mut engine, &delivery) == Some(1));
        }
        assert!(wins.0 > 180 && wins.1 > 180, "{wins:?}");
    }

    #[test]
    fn old_outcomes_fade_under_the_campaigns_half_life() {
        // Two months ago offer a won; the last days offer b wins.
        let counter = |offer: &str, day: u32, assigned: u64, redeemed: u64| LearningCounter {
            offer_id: offer.into(),
            scope: Scope::Overall,
            day: Some(day),
            counts: Counts {
                assigned,
                clicked: 0,
                redeemed,
            },
        };
        let counters = [
            counter("a", 1_000, 20_000, 2_000),
            counter("b", 1_000, 20_000, 200),
            counter("a", 1_058, 1_000, 20),
            counter("b", 1_058, 1_000, 60),
            counter("c", 1_058, 1_000, 10),
        ];
        let b_wins = |half_life: f64| {
            let mut campaign = campaign(1, 0.0);
            campaign.settings.half_life = half_life;
            let mut engine = campaign.engine(&counters, 1_060).expect("engine");
            (0..200)
                .filter(|user| {
                    choose(
                        &mut engine,
                        &campaign,
                        &format!("u{user}"),
                        0,
                        &BTreeMap::new(),
                        &[],
                    )
                    .is_some_and(|choice| choice.offer == 1)
                })
                .count()
        };
        assert!(b_wins(7.0) > 180, "{}", b_wins(7.0));
        // Ten years' half-life: the old winner's weight of evidence holds.
        assert!(b_wins(3_650.0) < 20, "{}", b_wins(3_650.0));
    }

    #[test]
    fn holdout_users_draw_uniformly_among_what_they_may_get() {
        let campaign = campaign(1, 0.999_999);
        let mut engine = campaign.engine(&[], 0).expect("engine");
        let mut seen = [0u32; 3];
        for user in 0..3_000 {
            let choice = choose(
                &mut engine,
                &campaign,
                &format!("u{user}"),
                0,
                &BTreeMap::new(),
                &[2],
            )
            .expect("a choice");
            assert!(choice.holdout);
            assert_eq!(choice.propensity, 0.5);
            seen[choice.offer] += 1;
        }
        assert_eq!(seen[2], 0);
        assert!((1_350..1_650).contains(&seen[0]), "{seen:?}");
    }

    #[test]
    fn the_pending_row_is_the_contracts() {
        let campaign = campaign(1, 0.0);
        let choice = AlwaysOnChoice {
            offer: 1,
            propensity: 0.25,
            holdout: false,
        };
        let context = BTreeMap::from([("daypart".to_owned(), "morning".to_owned())]);
        let row = pending_row(
            &campaign,
            &campaign.settings.pool[1],
            "user-1",
            at(3, 9),
            2,
            &choice,
            &context,
        );
        assert_eq!(row["sortKey"], "always+b");
        assert_eq!(row["offerId"], "b");
        assert_eq!(row["campaignId"], "always");
        assert_eq!(row["startDate"], "2030-01-03T09:00:00Z");
        assert_eq!(row["expiryDate"], "2030-01-10T09:00:00Z");
        assert_eq!(row["rank"], 1);
        assert_eq!(
            row["assignmentId"],
            for_always_on_window("always", "user-1", 2)
        );
        assert_eq!(
            row["selection"],
            json!({"policy": POLICY, "propensity": 0.25, "holdout": false,
                   "context": {"daypart": "morning"}})
        );
        let long = BTreeMap::from([
            ("mode".to_owned(), "x".repeat(600)),
            ("spend".to_owned(), "<10".to_owned()),
        ]);
        assert_eq!(bounded_context(long).len(), 1);
    }
}
