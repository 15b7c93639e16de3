//! The offer as the APIs show it: the stored record, the current config
//! offer's name, description and image, and the status at read time.

use chrono::{DateTime, Utc};
use offers_domain::dates::rfc3339;
use offers_domain::{CatalogEntry, Challenge, ConfigOffer, OfferStatus, PersonalizedOffer, Rules};
use offers_shared::error::StoreError;
use offers_shared::ports::CatalogReader;
use serde::Serialize;
use std::collections::HashMap;
use uuid::Uuid;

/// The offer JSON of the contract. Every field is always present; `name`,
/// `description` and `imageUrl` are `null` when the config offer is no longer
/// in the catalog, `campaignId` and `challenge` when the offer has none.
///
/// Views with more fields (the support tool's `assignedBy`, `reason`, ...)
/// embed this one with `#[serde(flatten)]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferView {
    pub personalized_offer_id: Uuid,
    pub offer_id: String,
    pub template_id: String,
    pub campaign_id: Option<String>,
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
    pub challenge: Option<Challenge>,
    pub url: String,
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
            challenge: offer.challenge.clone(),
            url: offer.url(),
        }
    }
}

/// The fields of the app's offer JSON (contract section 5), in order.
pub const OFFER_VIEW_FIELDS: [&str; 14] = [
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
];

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
    use offers_domain::OfferSource;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn at(text: &str) -> DateTime<Utc> {
        parse_timestamp(text).expect("timestamp")
    }

    fn offer() -> PersonalizedOffer {
        PersonalizedOffer {
            personalized_offer_id: Uuid::new_v4(),
            user_id: "user-1".into(),
            offer_id: "co-1".into(),
            template_id: "tpl-1".into(),
            campaign_id: None,
            rules: BTreeMap::from([("minimumSpend".into(), json!(5))]),
            start_date: at("2024-01-01T00:00:00Z"),
            expiry_date: at("2024-12-31T00:00:00Z"),
            rank: 3,
            challenge: None,
            source: OfferSource::Campaign,
            sort_key: Some("camp+co-1".into()),
            task_id: None,
            assigned_by: None,
            reason: None,
            created_at: at("2023-12-01T00:00:00Z"),
            ttl: 0,
            revoked_at: None,
            revoked_by: None,
            audit: Vec::new(),
            idempotency: None,
            selection: None,
        }
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
