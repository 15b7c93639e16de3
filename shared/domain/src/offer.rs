//! The personalized offer: one user's own copy of a config offer.

use crate::assignment::{Assignment, AssignmentSource};
use crate::catalog::{CatalogEntry, ConfigOffer, OfferTemplate};
use crate::challenge::Challenge;
use crate::dates::rfc3339;
use crate::ids::CampaignId;
use crate::ids::PersonalizedOfferId;
use crate::limits::{item_size, map_problem, quote, MAX_DYNAMO_DEPTH, MAX_OFFER_BYTES};
use crate::redemption::{redemption_limit, Redemption};
use crate::rejection::{ReasonCode, Rejection};
use crate::rules::{merge_rules, Rules};
use crate::selection::SelectionRecord;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OfferSource {
    Campaign,
    Support,
}

/// Computed at read time, never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OfferStatus {
    Scheduled,
    Active,
    /// No use left: its `redemptionLimit` is reached.
    Redeemed,
    Expired,
    Revoked,
}

/// One entry of an offer's audit trail: who did what, when and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub action: String,
    pub by: String,
    #[serde(with = "rfc3339")]
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The `Idempotency-Key` a support request came with, and the fingerprint
/// of that request: a retry with the same key and body gets this offer back,
/// the same key with another body is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdempotencyStamp {
    pub key: String,
    pub fingerprint: String,
}

/// The stored personalized offer record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonalizedOffer {
    pub personalized_offer_id: PersonalizedOfferId,
    pub user_id: String,
    /// The config offer's id.
    pub offer_id: String,
    pub template_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<CampaignId>,
    pub rules: Rules,
    #[serde(with = "rfc3339")]
    pub start_date: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub expiry_date: DateTime<Utc>,
    pub rank: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<Challenge>,
    pub source: OfferSource,
    /// The pending row's sort key, for offers that came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    /// Epoch seconds after which DynamoDB may delete the record.
    pub ttl: i64,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rfc3339::option"
    )]
    pub revoked_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit: Vec<AuditEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency: Option<IdempotencyStamp>,
    /// Uses not voided (absent on an offer never redeemed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redemption_count: u64,
    /// Every redemption, voided ones included, by order id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub redemptions: BTreeMap<String, Redemption>,
    /// When the app first showed the offer (its first `viewed` event).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rfc3339::option"
    )]
    pub viewed_at: Option<DateTime<Utc>>,
    /// When the user first opened the offer (its first `clicked` event).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rfc3339::option"
    )]
    pub clicked_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub view_count: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub click_count: u64,
    /// How a selection plan chose this offer (the pending row's `selection`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<SelectionRecord>,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

impl PersonalizedOffer {
    /// Revoked, then redeemed (a use is a fact, expiry a clock), then
    /// expired, scheduled, active.
    pub fn status(&self, now: DateTime<Utc>) -> OfferStatus {
        if self.revoked_at.is_some() {
            OfferStatus::Revoked
        } else if self.remaining_redemptions() == Some(0) {
            OfferStatus::Redeemed
        } else if now >= self.expiry_date {
            OfferStatus::Expired
        } else if now < self.start_date {
            OfferStatus::Scheduled
        } else {
            OfferStatus::Active
        }
    }

    /// Uses left: `None` when unlimited (no `redemptionLimit` rule).
    pub fn remaining_redemptions(&self) -> Option<u64> {
        redemption_limit(&self.rules).map(|limit| limit.saturating_sub(self.redemption_count))
    }

    /// The app's path to this offer.
    pub fn url(&self) -> String {
        format!("/rewards/offers/{}", self.personalized_offer_id)
    }
}

/// The config offer and template an assignment uses, checked against each other.
pub fn resolve_catalog<'a>(
    assignment: &Assignment,
    lookup: impl Fn(&str) -> Option<&'a CatalogEntry>,
) -> Result<(&'a ConfigOffer, &'a OfferTemplate), Rejection> {
    let config = match lookup(&assignment.offer_id) {
        Some(CatalogEntry::ConfigOffer(config)) => config,
        Some(CatalogEntry::OfferTemplate(_)) => {
            return Err(Rejection::new(
                ReasonCode::UnknownOffer,
                format!(
                    "{} is an offer template, not a config offer",
                    quote(&assignment.offer_id)
                ),
            ))
        }
        Some(CatalogEntry::Malformed { problem, .. }) => {
            return Err(Rejection::new(
                ReasonCode::UnknownOffer,
                format!("{}: {problem}", quote(&assignment.offer_id)),
            ))
        }
        None => {
            return Err(Rejection::new(
                ReasonCode::UnknownOffer,
                format!(
                    "no config offer {} in the catalog",
                    quote(&assignment.offer_id)
                ),
            ))
        }
    };
    let template_id = assignment
        .template_id
        .as_deref()
        .or(config.template_id.as_deref())
        .ok_or_else(|| {
            Rejection::new(
                ReasonCode::MissingTemplate,
                format!(
                    "neither the assignment nor config offer {} names a template",
                    quote(&config.id)
                ),
            )
        })?;
    let template = match lookup(template_id) {
        Some(CatalogEntry::OfferTemplate(template)) => template,
        Some(CatalogEntry::ConfigOffer(_)) => {
            return Err(Rejection::new(
                ReasonCode::UnknownTemplate,
                format!(
                    "{} is a config offer, not an offer template",
                    quote(template_id)
                ),
            ))
        }
        Some(CatalogEntry::Malformed { problem, .. }) => {
            return Err(Rejection::new(
                ReasonCode::UnknownTemplate,
                format!("{}: {problem}", quote(template_id)),
            ))
        }
        None => {
            return Err(Rejection::new(
                ReasonCode::UnknownTemplate,
                format!("no offer template {} in the catalog", quote(template_id)),
            ))
        }
    };
    if template.config_offer_id != config.id {
        return Err(Rejection::new(
            ReasonCode::TemplateMismatch,
            format!(
                "template {} is linked to config offer {}, not {}",
                quote(&template.id),
                quote(&template.config_offer_id),
                quote(&config.id)
            ),
        ));
    }
    Ok((config, template))
}

/// Builds the offer record of a valid assignment: the one code path for the
/// dispatcher and the support tool.
pub fn build_offer(
    assignment: &Assignment,
    config: &ConfigOffer,
    template: &OfferTemplate,
    personalized_offer_id: PersonalizedOfferId,
    now: DateTime<Utc>,
    retention: Duration,
) -> Result<PersonalizedOffer, Rejection> {
    let rules = merge_rules(config, template, &assignment.rules)?;
    let (source, sort_key, task_id, assigned_by, reason, audit) = match &assignment.source {
        AssignmentSource::Campaign { sort_key, task_id } => (
            OfferSource::Campaign,
            Some(sort_key.clone()),
            task_id.clone(),
            None,
            None,
            Vec::new(),
        ),
        AssignmentSource::Support { agent, reason } => (
            OfferSource::Support,
            None,
            None,
            Some(agent.clone()),
            Some(reason.clone()),
            vec![AuditEntry {
                action: "assigned".into(),
                by: agent.clone(),
                at: now,
                reason: Some(reason.clone()),
            }],
        ),
    };
    // Dates are within years 0001-9999 (parse_timestamp), so this cannot
    // overflow; checked all the same, as everything computed from input.
    let ttl = assignment
        .expiry_date
        .checked_add_signed(retention)
        .map(|at| at.timestamp())
        .ok_or_else(|| {
            Rejection::new(
                ReasonCode::InvalidDates,
                "expiryDate plus the retention period is past the last date that can be stored",
            )
        })?;
    let offer = PersonalizedOffer {
        personalized_offer_id,
        user_id: assignment.user_id.to_string(),
        offer_id: config.id.clone(),
        template_id: template.id.clone(),
        campaign_id: assignment.campaign_id.clone(),
        rules,
        start_date: assignment.start_date,
        expiry_date: assignment.expiry_date,
        rank: assignment.rank,
        challenge: assignment.challenge.clone(),
        source,
        sort_key,
        task_id,
        assigned_by,
        reason,
        created_at: now,
        ttl,
        revoked_at: None,
        revoked_by: None,
        audit,
        idempotency: None,
        redemption_count: 0,
        redemptions: BTreeMap::new(),
        viewed_at: None,
        clicked_at: None,
        view_count: 0,
        click_count: 0,
        selection: assignment.selection.clone(),
    };
    check_offer_fits(&offer)?;
    Ok(offer)
}

/// The offer as DynamoDB will store it must fit: the merged rules (the CMS's
/// defaults with the assignment's values) and the challenge together within
/// [`MAX_OFFER_BYTES`] and DynamoDB's nesting depth.
fn check_offer_fits(offer: &PersonalizedOffer) -> Result<(), Rejection> {
    let too_large = |detail: String| {
        Rejection::new(
            ReasonCode::InvalidRow,
            format!("the offer cannot be stored: {detail}"),
        )
    };
    let json = match serde_json::to_value(offer) {
        Ok(Value::Object(json)) => json,
        Ok(_) | Err(_) => return Err(too_large("it cannot be serialized".into())),
    };
    // The index keys the adapter adds are short and bounded (rank, a date, an id).
    let size = item_size(&json).saturating_add(INDEX_KEYS_BYTES);
    if size > MAX_OFFER_BYTES {
        return Err(too_large(format!(
            "it would be {size} bytes; an offer may have at most {MAX_OFFER_BYTES} \
             (its rules, challenge and texts together)"
        )));
    }
    if let Some(problem) = map_problem(&json, MAX_DYNAMO_DEPTH - 1) {
        return Err(too_large(format!("the offer {problem}")));
    }
    Ok(())
}

/// Room for the index sort keys the DynamoDB adapter adds to an offer item.
const INDEX_KEYS_BYTES: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{RuleDeclaration, RuleType};
    use crate::dates::parse_timestamp;
    use serde_json::json;
    use std::collections::{BTreeMap, HashMap};

    fn at(text: &str) -> DateTime<Utc> {
        parse_timestamp(text).expect("valid")
    }

    fn catalog() -> HashMap<String, CatalogEntry> {
        let entries = [
            CatalogEntry::ConfigOffer(ConfigOffer {
                id: "co-1".into(),
                name: "Free fries".into(),
                description: Some("Any size".into()),
                image_url: None,
                template_id: Some("tpl-1".into()),
                rules: BTreeMap::from([
                    ("minimumSpend".into(), json!(5)),
                    ("redemptionLimit".into(), json!(1)),
                ]),
            }),
            CatalogEntry::ConfigOffer(ConfigOffer {
                id: "co-2".into(),
                name: "No template".into(),
                description: None,
                image_url: None,
                template_id: None,
                rules: BTreeMap::new(),
            }),
            CatalogEntry::OfferTemplate(OfferTemplate {
                id: "tpl-1".into(),
                config_offer_id: "co-1".into(),
                name: None,
                rules: vec![RuleDeclaration {
                    name: "minimumSpend".into(),
                    rule_type: RuleType::Number,
                }],
            }),
            CatalogEntry::OfferTemplate(OfferTemplate {
                id: "tpl-other".into(),
                config_offer_id: "co-9".into(),
                name: None,
                rules: vec![],
            }),
        ];
        entries
            .into_iter()
            .map(|entry| (entry.id().to_owned(), entry))
            .collect()
    }

    fn assignment(offer_id: &str, template_id: Option<&str>) -> Assignment {
        Assignment {
            user_id: crate::ids::UserId::literal("user-1"),
            offer_id: crate::ids::OfferId::literal(offer_id),
            template_id: template_id.map(Into::into),
            campaign_id: Some(CampaignId::literal("camp-1")),
            start_date: at("2024-01-01T00:00:00Z"),
            expiry_date: at("2024-12-31T00:00:00Z"),
            rank: 2,
            rules: BTreeMap::from([("minimumSpend".into(), json!(9))]),
            challenge: None,
            source: AssignmentSource::Campaign {
                sort_key: "camp-1+co-1".into(),
                task_id: None,
            },
            selection: None,
        }
    }

    fn resolve_code(assignment: &Assignment) -> ReasonCode {
        let catalog = catalog();
        resolve_catalog(assignment, |id| catalog.get(id))
            .expect_err("rejected")
            .code
    }

    #[test]
    fn builds_offer_with_both_ids_and_merged_rules() {
        let catalog = catalog();
        let assignment = assignment("co-1", None);
        let (config, template) =
            resolve_catalog(&assignment, |id| catalog.get(id)).expect("resolves");
        let id = PersonalizedOfferId::random();
        let now = at("2024-02-01T00:00:00Z");
        let offer =
            build_offer(&assignment, config, template, id, now, Duration::days(30)).expect("valid");
        assert_eq!(offer.personalized_offer_id, id);
        assert_eq!(
            (offer.offer_id.as_str(), offer.template_id.as_str()),
            ("co-1", "tpl-1")
        );
        assert_eq!(offer.rules["minimumSpend"], json!(9));
        assert_eq!(offer.rules["redemptionLimit"], json!(1));
        assert_eq!(offer.ttl, at("2025-01-30T00:00:00Z").timestamp());
        assert_eq!(offer.url(), format!("/rewards/offers/{id}"));
        assert_eq!(offer.status(now), OfferStatus::Active);
    }

    #[test]
    fn row_template_wins_over_config_template() {
        let catalog = catalog();
        let err = resolve_catalog(&assignment("co-1", Some("tpl-other")), |id| catalog.get(id))
            .unwrap_err();
        assert_eq!(err.code, ReasonCode::TemplateMismatch);
    }

    #[test]
    fn catalog_problems_have_their_codes() {
        assert_eq!(
            resolve_code(&assignment("co-404", None)),
            ReasonCode::UnknownOffer
        );
        assert_eq!(
            resolve_code(&assignment("tpl-1", None)),
            ReasonCode::UnknownOffer
        );
        assert_eq!(
            resolve_code(&assignment("co-2", None)),
            ReasonCode::MissingTemplate
        );
        assert_eq!(
            resolve_code(&assignment("co-1", Some("tpl-404"))),
            ReasonCode::UnknownTemplate
        );
        assert_eq!(
            resolve_code(&assignment("co-1", Some("co-2"))),
            ReasonCode::UnknownTemplate
        );
        assert_eq!(
            resolve_code(&assignment("co-1", Some("tpl-other"))),
            ReasonCode::TemplateMismatch
        );
    }

    #[test]
    fn status_follows_dates_and_revocation() {
        let catalog = catalog();
        let assignment = assignment("co-1", None);
        let (config, template) =
            resolve_catalog(&assignment, |id| catalog.get(id)).expect("resolves");
        let mut offer = build_offer(
            &assignment,
            config,
            template,
            PersonalizedOfferId::random(),
            at("2023-12-01T00:00:00Z"),
            Duration::days(1),
        )
        .expect("valid");
        assert_eq!(
            offer.status(at("2023-12-31T23:59:59Z")),
            OfferStatus::Scheduled
        );
        assert_eq!(
            offer.status(at("2024-01-01T00:00:00Z")),
            OfferStatus::Active
        );
        assert_eq!(
            offer.status(at("2024-12-31T00:00:00Z")),
            OfferStatus::Expired
        );
        offer.revoked_at = Some(at("2024-03-01T00:00:00Z"));
        assert_eq!(
            offer.status(at("2024-03-02T00:00:00Z")),
            OfferStatus::Revoked
        );
    }

    #[test]
    fn offer_round_trips_through_json_with_utc_dates() {
        let catalog = catalog();
        let assignment = assignment("co-1", None);
        let (config, template) =
            resolve_catalog(&assignment, |id| catalog.get(id)).expect("resolves");
        let offer = build_offer(
            &assignment,
            config,
            template,
            PersonalizedOfferId::random(),
            at("2024-02-01T00:00:00Z"),
            Duration::days(1),
        )
        .expect("valid");
        let json = serde_json::to_value(&offer).expect("serializes");
        assert_eq!(json["startDate"], "2024-01-01T00:00:00Z");
        assert_eq!(
            json["personalizedOfferId"],
            offer.personalized_offer_id.to_string()
        );
        let back: PersonalizedOffer = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, offer);
    }
}
