//! The offer as the APIs show it: the stored record, the current config
//! offer's name, description and image, and the status at read time.

use chrono::{DateTime, Utc};
use offers_domain::challenge::{ChallengeType, Goal};
use offers_domain::dates::rfc3339;
use offers_domain::PersonalizedOfferId;
use offers_domain::{
    CampaignId, CatalogEntry, Challenge, ConfigOffer, OfferStatus, PersonalizedOffer, Redemption,
    Rules,
};
use offers_shared::error::StoreError;
use offers_shared::ports::CatalogReader;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// The offer JSON of the contract. Every field is always present; `name`,
/// `description` and `imageUrl` are `null` when the config offer is no longer
/// in the catalog, `campaignId` and `challenge` when the offer has none.
///
/// Views with more fields (the support tool's `assignedBy`, `reason`, ...)
/// embed this one with `#[serde(flatten)]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferView {
    pub personalized_offer_id: PersonalizedOfferId,
    pub offer_id: String,
    pub template_id: String,
    pub campaign_id: Option<CampaignId>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub image_url: Option<String>,
    pub rules: Rules,
    #[serde(with = "rfc3339")]
    pub start_date: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub expiry_date: DateTime<Utc>,
    pub rank: i64,
    pub status: OfferStatus,
    pub challenge: Option<ChallengeView>,
    pub url: String,
    /// Uses not voided.
    pub redemption_count: u64,
    /// Uses left; `null` when unlimited.
    pub remaining_redemptions: Option<u64>,
}

/// A challenge as the APIs show it (contract section 8): its goals (each
/// with its `condition`, and `metAt` and `transactionId` once met), `progress`,
/// `completedAt` (`null` until completed) and the `reward` (with `grantedAt`
/// once completed). The counted transactions' keys stay inside.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeView {
    #[serde(rename = "type")]
    pub challenge_type: ChallengeType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    pub reward: Map<String, Value>,
    pub goals: BTreeMap<String, Goal>,
    pub progress: Progress,
    #[serde(with = "rfc3339::option")]
    pub completed_at: Option<DateTime<Utc>>,
}

/// How many goals are met, of how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub met: usize,
    pub total: usize,
}

impl ChallengeView {
    pub fn new(challenge: &Challenge) -> Self {
        Self {
            challenge_type: challenge.challenge_type,
            task_id: challenge.task_id.clone(),
            reward: challenge.reward.clone(),
            goals: challenge.goals.clone(),
            progress: Progress {
                met: challenge.met_count(),
                total: challenge.goals.len(),
            },
            completed_at: challenge.completed_at,
        }
    }
}

impl OfferView {
    pub fn new(
        offer: &PersonalizedOffer,
        config: Option<&ConfigOffer>,
        now: DateTime<Utc>,
    ) -> Self {
        OfferView {
            personalized_offer_id: offer.personalized_offer_id,
            offer_id: offer.offer_id.clone(),
            template_id: offer.template_id.clone(),
            campaign_id: offer.campaign_id.clone(),
            name: config.map(|config| config.name.clone()),
            description: config.and_then(|config| config.description.clone()),
            image_url: config.and_then(|config| config.image_url.clone()),
            rules: offer.rules.clone(),
            start_date: offer.start_date,
            expiry_date: offer.expiry_date,
            rank: offer.rank,
            status: offer.status(now),
            challenge: offer.challenge.as_ref().map(ChallengeView::new),
            url: offer.url(),
            redemption_count: offer.redemption_count,
            remaining_redemptions: offer.remaining_redemptions(),
        }
    }
}

/// The fields of the app's offer JSON (contract sections 5 and 7), in order.
pub const OFFER_VIEW_FIELDS: [&str; 16] = [
    "personalizedOfferId",
    "offerId",
    "templateId",
    "campaignId",
    "name",
    "description",
    "imageUrl",
    "rules",
    "startDate",
    "expiryDate",
    "rank",
    "status",
    "challenge",
    "url",
    "redemptionCount",
    "remainingRedemptions",
];

/// A redemption as the APIs show it: the record and the offer it used.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedemptionView {
    pub personalized_offer_id: PersonalizedOfferId,
    #[serde(flatten)]
    pub redemption: Redemption,
}

impl RedemptionView {
    pub fn new(personalized_offer_id: PersonalizedOfferId, redemption: &Redemption) -> Self {
        Self {
            personalized_offer_id,
            redemption: redemption.clone(),
        }
    }

    /// Every redemption of the offer, voided ones included, oldest first.
    pub fn all_of(offer: &PersonalizedOffer) -> Vec<Self> {
        let mut views: Vec<Self> = offer
            .redemptions
            .values()
            .map(|redemption| Self::new(offer.personalized_offer_id, redemption))
            .collect();
        views.sort_by(|a, b| {
            (a.redemption.redeemed_at, &a.redemption.order_id)
                .cmp(&(b.redemption.redeemed_at, &b.redemption.order_id))
        });
        views
    }
}

/// The config offer of `id`, if the catalog still has it as a config offer.
pub fn config_offer<'a>(
    entries: &'a HashMap<String, CatalogEntry>,
    id: &str,
) -> Option<&'a ConfigOffer> {
    match entries.get(id) {
        Some(CatalogEntry::ConfigOffer(config)) => Some(config),
        _ => None,
    }
}

/// Views of `offers`, in their order, with one catalog read for all their
/// config offers (through the caller's cache).
pub async fn offer_views<C: CatalogReader>(
    catalog: &C,
    offers: &[PersonalizedOffer],
    now: DateTime<Utc>,
) -> Result<Vec<OfferView>, StoreError> {
    if offers.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = offers.iter().map(|offer| offer.offer_id.clone()).collect();
    let entries = catalog.fetch_entries(&ids).await?;
    Ok(offers
        .iter()
        .map(|offer| OfferView::new(offer, config_offer(&entries, &offer.offer_id), now))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use offers_domain::dates::parse_timestamp;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn at(text: &str) -> DateTime<Utc> {
        parse_timestamp(text).expect("timestamp")
    }

    fn offer() -> PersonalizedOffer {
        PersonalizedOffer::builder()
            .rules(json!({"minimumSpend": 5}))
            .valid(at("2024-01-01T00:00:00Z"), at("2024-12-31T00:00:00Z"))
            .rank(3)
            .sort_key("camp+co-1")
            .created_at(at("2023-12-01T00:00:00Z"))
            .build()
    }

    fn config() -> ConfigOffer {
        ConfigOffer {
            id: "co-1".into(),
            name: "Free fries".into(),
            description: Some("Any size".into()),
            image_url: Some("https://images.example/fries.png".into()),
            template_id: Some("tpl-1".into()),
            rules: BTreeMap::new(),
        }
    }

    #[test]
    fn has_exactly_the_contract_fields() {
        let offer = offer();
        let json = serde_json::to_value(OfferView::new(
            &offer,
            Some(&config()),
            at("2024-06-01T00:00:00Z"),
        ))
        .expect("json");
        let mut keys: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        let mut expected = OFFER_VIEW_FIELDS.to_vec();
        expected.sort();
        assert_eq!(keys, expected);
        assert_eq!(json["status"], "active");
        assert_eq!(json["redemptionCount"], 0);
        assert_eq!(
            json["remainingRedemptions"],
            serde_json::Value::Null,
            "unlimited"
        );
        assert_eq!(json["name"], "Free fries");
        assert_eq!(json["imageUrl"], "https://images.example/fries.png");
        assert_eq!(json["startDate"], "2024-01-01T00:00:00Z");
        assert_eq!(
            json["url"],
            format!("/rewards/offers/{}", offer.personalized_offer_id)
        );
        assert!(json.get("userId").is_none());
    }

    #[test]
    fn a_challenge_shows_its_progress_and_hides_its_counted_keys() {
        let status = "{\"reward\": {\"value\": \"100\"}, \"goals\": {\"visit1\": {\"condition\": {\"total_cost\": \"1\"}}, \"visit2\": {\"condition\": {\"total_cost\": \"1\"}}}}";
        let parsed = offers_domain::challenge::parse_challenge_status(status).expect("valid");
        let mut challenge = Challenge::new(ChallengeType::Frequency, None, parsed);
        let mut offer = offer();
        offer.challenge = Some(challenge.clone());
        let json = serde_json::to_value(OfferView::new(&offer, None, at("2024-06-01T00:00:00Z")))
            .expect("json");
        assert_eq!(json["challenge"]["progress"], json!({"met": 0, "total": 2}));
        assert_eq!(json["challenge"]["completedAt"], Value::Null);
        assert!(json["challenge"]["goals"]["visit1"].get("metAt").is_none());

        for (name, transaction) in [("visit1", "t-1"), ("visit2", "t-2")] {
            if let Some(goal) = challenge.goals.get_mut(name) {
                goal.met_at = Some(at("2024-06-01T10:00:00Z"));
                goal.transaction_id = Some(transaction.into());
            }
            challenge
                .counted_transactions
                .insert(format!("key-{transaction}"), name.into());
        }
        challenge.completed_at = Some(at("2024-06-01T10:00:00Z"));
        challenge
            .reward
            .insert("grantedAt".into(), json!("2024-06-01T10:00:01Z"));
        offer.challenge = Some(challenge);
        let json = serde_json::to_value(OfferView::new(&offer, None, at("2024-06-01T00:00:00Z")))
            .expect("json");
        let shown = &json["challenge"];
        assert_eq!(shown["progress"], json!({"met": 2, "total": 2}));
        assert_eq!(shown["completedAt"], "2024-06-01T10:00:00Z");
        assert_eq!(
            shown["reward"],
            json!({"value": "100", "grantedAt": "2024-06-01T10:00:01Z"})
        );
        assert_eq!(shown["goals"]["visit2"]["transactionId"], "t-2");
        assert_eq!(shown["goals"]["visit2"]["metAt"], "2024-06-01T10:00:00Z");
        assert!(shown.get("countedTransactions").is_none());
    }

    #[test]
    fn catalog_fields_are_null_without_the_config_offer() {
        let json = serde_json::to_value(OfferView::new(&offer(), None, at("2023-06-01T00:00:00Z")))
            .expect("json");
        assert_eq!(json["name"], serde_json::Value::Null);
        assert_eq!(json["description"], serde_json::Value::Null);
        assert_eq!(json["campaignId"], serde_json::Value::Null);
        assert_eq!(json["status"], "scheduled");
    }

    #[test]
    fn extends_by_flattening() {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct SupportView {
            #[serde(flatten)]
            offer: OfferView,
            assigned_by: Option<String>,
        }
        let json = serde_json::to_value(SupportView {
            offer: OfferView::new(&offer(), None, at("2025-06-01T00:00:00Z")),
            assigned_by: Some("agent-1".into()),
        })
        .expect("json");
        assert_eq!(json["assignedBy"], "agent-1");
        assert_eq!(json["status"], "expired");
        assert_eq!(
            json.as_object().map(|o| o.len()),
            Some(OFFER_VIEW_FIELDS.len() + 1)
        );
    }
}
