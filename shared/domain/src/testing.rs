//! What tests build domain values from (the `testing` feature, for other
//! crates' tests): a [`PersonalizedOffer`] set up field by field from
//! defaults, instead of its whole literal in every test module.

use crate::challenge::Challenge;
use crate::ids::CampaignId;
use crate::ids::PersonalizedOfferId;
use crate::offer::{OfferSource, PersonalizedOffer};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use std::collections::BTreeMap;

/// Builds a [`PersonalizedOffer`]: by default a campaign offer of config
/// offer `co-1` (template `tpl-1`) for `user-1`, rank 1, without rules,
/// campaign or challenge, valid through 2026 and created on its first day,
/// never shown, used or revoked, under a new id.
#[derive(Debug, Clone)]
pub struct OfferBuilder(PersonalizedOffer);

fn day(year: i32, month: u32, day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

impl Default for OfferBuilder {
    fn default() -> Self {
        OfferBuilder(PersonalizedOffer {
            personalized_offer_id: PersonalizedOfferId::random(),
            user_id: "user-1".into(),
            offer_id: "co-1".into(),
            template_id: "tpl-1".into(),
            campaign_id: None,
            rules: BTreeMap::new(),
            start_date: day(2026, 1, 1),
            expiry_date: day(2026, 12, 31),
            rank: 1,
            challenge: None,
            source: OfferSource::Campaign,
            sort_key: None,
            task_id: None,
            assigned_by: None,
            reason: None,
            created_at: day(2026, 1, 1),
            ttl: 0,
            revoked_at: None,
            revoked_by: None,
            audit: Vec::new(),
            idempotency: None,
            redemption_count: 0,
            redemptions: BTreeMap::new(),
            viewed_at: None,
            clicked_at: None,
            view_count: 0,
            click_count: 0,
            selection: None,
        })
    }
}

impl OfferBuilder {
    pub fn id(mut self, id: impl Into<PersonalizedOfferId>) -> Self {
        self.0.personalized_offer_id = id.into();
        self
    }

    pub fn user(mut self, user_id: &str) -> Self {
        self.0.user_id = user_id.into();
        self
    }

    pub fn campaign(mut self, campaign_id: &str) -> Self {
        self.0.campaign_id = Some(CampaignId::try_from(campaign_id).expect("a test's campaign id"));
        self
    }

    /// The rules, from a JSON object (panics on anything else: test input).
    pub fn rules(mut self, rules: Value) -> Self {
        self.0.rules = serde_json::from_value(rules).expect("rules are a JSON object");
        self
    }

    /// Valid from `start` to `expiry`.
    pub fn valid(mut self, start: DateTime<Utc>, expiry: DateTime<Utc>) -> Self {
        self.0.start_date = start;
        self.0.expiry_date = expiry;
        self
    }

    pub fn created_at(mut self, at: DateTime<Utc>) -> Self {
        self.0.created_at = at;
        self
    }

    pub fn rank(mut self, rank: i64) -> Self {
        self.0.rank = rank;
        self
    }

    pub fn challenge(mut self, challenge: Challenge) -> Self {
        self.0.challenge = Some(challenge);
        self
    }

    /// The pending row's sort key it came from.
    pub fn sort_key(mut self, sort_key: &str) -> Self {
        self.0.sort_key = Some(sort_key.into());
        self
    }

    pub fn build(self) -> PersonalizedOffer {
        self.0
    }
}

impl PersonalizedOffer {
    /// A builder for tests; see [`OfferBuilder`] for its defaults.
    pub fn builder() -> OfferBuilder {
        OfferBuilder::default()
    }
}
