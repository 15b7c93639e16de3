//! A selection plan (contract section 12): read, bounded, and checked
//! against the catalog with the dispatcher's own code (`parse_pending_row`,
//! `resolve_catalog`, `build_offer`) before anything is chosen or written.

pub use crate::domain::campaign::PoolOffer;
use crate::domain::limits::{quote, MAX_SORT_KEY_BYTES};
use crate::domain::selection::{EngineConfig, Prior, Reward, MAX_POOL};
use crate::domain::PersonalizedOfferId;
use crate::domain::{
    build_offer, parse_pending_row, resolve_catalog, CampaignId, CatalogEntry, InvalidId, OfferId,
};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// The plan file as written.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PlanFile {
    campaign_id: String,
    pool: Vec<PoolFile>,
    slots: u64,
    start_date: String,
    expiry_date: String,
    #[serde(default)]
    holdout: Option<f64>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    reward: Option<String>,
    #[serde(default)]
    prior: Option<PriorFile>,
    /// Days after which an outcome weighs half as much.
    #[serde(default)]
    half_life: Option<f64>,
    /// Section 14: read from the plan's `document` and checked as a campaign
    /// definition's budget (exit code 1); here only so that it is known.
    #[serde(default)]
    #[allow(dead_code)]
    budget: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PoolFile {
    offer_id: String,
    #[serde(default)]
    template_id: Option<String>,
    #[serde(default)]
    rules: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriorFile {
    rate: f64,
    #[serde(default)]
    weight: Option<f64>,
}

/// A plan that passed its own checks (not yet the catalog's).
#[derive(Debug, Clone)]
pub struct Plan {
    pub campaign_id: CampaignId,
    pub pool: Vec<PoolOffer>,
    pub start_date: String,
    pub expiry_date: String,
    pub config: EngineConfig,
    /// The plan as given: its campaign definition (`mode: "planned"`).
    pub document: Map<String, Value>,
}

/// The seed when the plan gives none: a plan is reproducible by default.
pub const DEFAULT_SEED: u64 = 0;

impl Plan {
    /// Reads a plan; every problem found is listed.
    pub fn parse(text: &str) -> Result<Plan, Vec<String>> {
        let file: PlanFile = serde_json::from_str(text)
            .map_err(|err| vec![format!("the plan is not valid: {err}")])?;
        let document: Map<String, Value> = serde_json::from_str(text)
            .map_err(|err| vec![format!("the plan is not valid: {err}")])?;
        let mut problems = Vec::new();
        let campaign_id = CampaignId::try_from(file.campaign_id.as_str())
            .map_err(|InvalidId(problem)| problems.push(problem))
            .ok();
        if file.pool.is_empty() {
            problems.push("pool is empty".to_owned());
        }
        if file.pool.len() > MAX_POOL {
            problems.push(format!(
                "pool has {} offers; at most {MAX_POOL}",
                file.pool.len()
            ));
        }
        let mut seen = HashSet::new();
        let mut offer_ids = Vec::with_capacity(file.pool.len());
        for (index, offer) in file.pool.iter().enumerate() {
            match OfferId::try_from(offer.offer_id.as_str()) {
                Ok(id) => offer_ids.push(id),
                Err(InvalidId(problem)) => problems.push(format!("pool[{index}]: {problem}")),
            }
            if !seen.insert(offer.offer_id.as_str()) {
                problems.push(format!(
                    "pool[{index}]: offer {} is in the pool twice",
                    quote(&offer.offer_id)
                ));
            }
            let sort_key = format!("{}+{}", file.campaign_id, offer.offer_id);
            if sort_key.len() > MAX_SORT_KEY_BYTES {
                problems.push(format!(
                    "pool[{index}]: campaignId+offerId is {} bytes; a sortKey may have at most {MAX_SORT_KEY_BYTES}",
                    sort_key.len()
                ));
            }
        }
        let slots = usize::try_from(file.slots).unwrap_or(usize::MAX);
        if slots == 0 || slots > file.pool.len() {
            problems.push(format!(
                "slots (k) must be between 1 and the pool's size ({}); got {}",
                file.pool.len(),
                file.slots
            ));
        }
        let holdout = file.holdout.unwrap_or(0.1);
        if !(0.0..1.0).contains(&holdout) {
            problems.push(format!(
                "holdout must be a fraction in [0, 1); got {holdout}"
            ));
        }
        let reward = match file.reward.as_deref() {
            None => Reward::Redeemed,
            Some(text) => Reward::parse(text).unwrap_or_else(|| {
                problems.push(format!(
                    "reward must be \"redeemed\" or \"clicked\"; got {}",
                    quote(text)
                ));
                Reward::Redeemed
            }),
        };
        let prior = file.prior.map(|prior| Prior {
            rate: prior.rate,
            weight: prior
                .weight
                .unwrap_or(crate::domain::selection::DEFAULT_PRIOR_WEIGHT),
        });
        let mut config = EngineConfig::new(slots, file.seed.unwrap_or(DEFAULT_SEED));
        config.holdout = holdout;
        config.reward = reward;
        config.prior = prior;
        if let Some(half_life) = file.half_life {
            config.half_life = half_life;
        }
        if problems.is_empty() {
            if let Err(err) =
                crate::domain::selection::history::check_config(&config, file.pool.len())
            {
                problems.push(err.to_string());
            }
        }
        let Some(campaign_id) = campaign_id.filter(|_| problems.is_empty()) else {
            return Err(problems);
        };
        Ok(Plan {
            campaign_id,
            pool: file
                .pool
                .into_iter()
                .zip(offer_ids)
                .map(|(offer, offer_id)| PoolOffer {
                    offer_id,
                    template_id: offer.template_id,
                    rules: offer.rules,
                })
                .collect(),
            start_date: file.start_date,
            expiry_date: file.expiry_date,
            config,
            document,
        })
    }

    pub fn offer_ids(&self) -> Vec<String> {
        self.pool
            .iter()
            .map(|offer| offer.offer_id.to_string())
            .collect()
    }

    /// Every id the pool names in the catalog: offers and templates.
    pub fn catalog_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.offer_ids();
        ids.extend(
            self.pool
                .iter()
                .filter_map(|offer| offer.template_id.clone()),
        );
        ids.sort();
        ids.dedup();
        ids
    }

    pub fn sort_key(&self, offer: &PoolOffer) -> String {
        format!("{}+{}", self.campaign_id, offer.offer_id)
    }

    /// The row of `offer` for a user, without rank and selection.
    pub fn sample_row(&self, offer: &PoolOffer, user_id: &str) -> Map<String, Value> {
        pool_row(
            &self.campaign_id,
            offer,
            user_id,
            (&self.start_date, &self.expiry_date),
        )
    }

    /// Each offer of the pool as the dispatcher will see its rows (see
    /// [`check_pool`]). Returns the expiry (epoch seconds) or the problems.
    pub fn check_against_catalog(
        &self,
        catalog: &HashMap<String, CatalogEntry>,
        now: DateTime<Utc>,
    ) -> Result<i64, Vec<String>> {
        check_pool(
            &self.campaign_id,
            &self.pool,
            (&self.start_date, &self.expiry_date),
            catalog,
            now,
        )
    }
}

/// The row of `offer` of a campaign for a user, without rank and selection.
pub fn pool_row(
    campaign_id: &str,
    offer: &PoolOffer,
    user_id: &str,
    (start_date, expiry_date): (&str, &str),
) -> Map<String, Value> {
    let mut row = Map::new();
    row.insert("userId".into(), json!(user_id));
    row.insert(
        "sortKey".into(),
        json!(format!("{campaign_id}+{}", offer.offer_id)),
    );
    row.insert("offerId".into(), json!(offer.offer_id));
    row.insert("campaignId".into(), json!(campaign_id));
    row.insert("startDate".into(), json!(start_date));
    row.insert("expiryDate".into(), json!(expiry_date));
    if let Some(template_id) = &offer.template_id {
        row.insert("templateId".into(), json!(template_id));
    }
    if let Some(rules) = &offer.rules {
        row.insert("rules".into(), Value::Object(rules.clone()));
    }
    row
}

/// Each offer of a pool as the dispatcher will see its rows: the row's own
/// checks (shape, dates, `expired`), then the catalog's (offer, template,
/// rules), with the dispatcher's code. Returns the rows' expiry (epoch
/// seconds) or the problems, one per offer.
pub fn check_pool(
    campaign_id: &str,
    pool: &[PoolOffer],
    dates: (&str, &str),
    catalog: &HashMap<String, CatalogEntry>,
    now: DateTime<Utc>,
) -> Result<i64, Vec<String>> {
    let mut problems = Vec::new();
    let mut expiry = 0;
    for (index, offer) in pool.iter().enumerate() {
        let row = pool_row(campaign_id, offer, "plan-check", dates);
        let outcome = parse_pending_row(&row, now).and_then(|assignment| {
            let (config, template) = resolve_catalog(&assignment, |id| catalog.get(id))?;
            build_offer(
                &assignment,
                config,
                template,
                PersonalizedOfferId::from_uuid(Uuid::nil()),
                now,
                Duration::zero(),
            )?;
            Ok(assignment.expiry_date.timestamp())
        });
        match outcome {
            Ok(at) => expiry = at,
            Err(rejection) => problems.push(format!(
                "pool[{index}] ({}): {}: {}",
                offer.offer_id,
                rejection.code.as_str(),
                rejection.message
            )),
        }
    }
    if problems.is_empty() {
        Ok(expiry)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::dates::parse_timestamp;

    fn plan(extra: Value) -> Result<Plan, Vec<String>> {
        let mut value = json!({
            "campaignId": "camp-1",
            "pool": [{"offerId": "co-fries", "rules": {"minimumSpend": 3}}, {"offerId": "co-coffee"}],
            "slots": 1, "startDate": "2024-01-01T00:00:00Z", "expiryDate": "2030-01-01T00:00:00Z"
        });
        if let (Value::Object(base), Value::Object(extra)) = (&mut value, extra) {
            base.extend(extra);
        }
        Plan::parse(&value.to_string())
    }

    #[test]
    fn a_plan_is_read_with_its_defaults() {
        let plan = plan(json!({})).expect("valid");
        assert_eq!(plan.config.holdout, 0.1);
        assert_eq!(plan.config.slots, 1);
        assert_eq!(plan.config.reward, Reward::Redeemed);
        assert_eq!(plan.sort_key(&plan.pool[0]), "camp-1+co-fries");
        let plan = self::plan(json!({"reward": "clicked", "seed": 9, "holdout": 0,
            "prior": {"rate": 0.03}}))
        .expect("valid");
        assert_eq!(plan.config.reward, Reward::Clicked);
        assert_eq!(plan.config.seed, 9);
        assert_eq!(plan.config.prior.map(|p| p.rate), Some(0.03));
        let plan = self::plan(json!({"halfLife": 3.5})).expect("valid");
        assert_eq!(plan.config.half_life, 3.5);
        assert!(self::plan(json!({"halfLife": 0})).is_err());
        assert!(self::plan(json!({"halfLife": -2})).is_err());
    }

    #[test]
    fn the_sample_plan_is_valid() {
        let text = include_str!("../../../events/sample-plan.json");
        let plan = Plan::parse(text).expect("valid");
        assert_eq!(plan.pool.len(), 3);
        assert_eq!(plan.config.seed, 7);
    }

    #[test]
    fn bad_plans_list_every_problem() {
        let problems =
            plan(json!({"slots": 3, "holdout": 1.0, "reward": "liked"})).expect_err("bad");
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(plan(json!({"pool": []})).is_err());
        assert!(plan(json!({"pool": [{"offerId": "a"}, {"offerId": "a"}]})).is_err());
        assert!(plan(json!({"colour": "red"})).is_err(), "unknown field");
        assert!(plan(json!({"holdout": -0.1})).is_err());
        assert!(plan(json!({"prior": {"rate": 2}})).is_err());
        // Ids are parsed into their types with the rest, each problem listed.
        let problems =
            plan(json!({"campaignId": "", "pool": [{"offerId": ""}, {"offerId": "ok"}]}))
                .expect_err("bad ids");
        assert_eq!(
            problems,
            vec![
                "campaignId is empty".to_owned(),
                "pool[0]: offerId is empty".to_owned()
            ]
        );
    }

    #[test]
    fn the_pool_is_checked_as_the_dispatcher_would() {
        let catalog: HashMap<String, CatalogEntry> = [
            json!({"id": "co-fries", "kind": "configOffer", "name": "Fries", "templateId": "tpl-fries", "rules": {}}),
            json!({"id": "tpl-fries", "kind": "offerTemplate", "configOfferId": "co-fries",
                   "rules": [{"name": "minimumSpend", "type": "number"}]}),
            json!({"id": "co-coffee", "kind": "configOffer", "name": "Coffee", "rules": {}}),
        ]
        .into_iter()
        .map(|item| {
            let Value::Object(item) = item else { unreachable!() };
            let id = item["id"].as_str().unwrap_or_default().to_owned();
            (id.clone(), CatalogEntry::from_json(&id, item))
        })
        .collect();
        let now = parse_timestamp("2025-01-01T00:00:00Z").expect("date");
        let problems = plan(json!({}))
            .expect("valid")
            .check_against_catalog(&catalog, now)
            .expect_err("coffee");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("missing_template"), "{problems:?}");
        let plan = self::plan(json!({"pool": [{"offerId": "co-fries"}, {"offerId": "co-nope"}]}))
            .expect("valid");
        let problems = plan.check_against_catalog(&catalog, now).expect_err("bad");
        assert!(problems[0].contains("missing_rule"), "{problems:?}");
        assert!(problems[1].contains("unknown_offer"), "{problems:?}");
    }
}
