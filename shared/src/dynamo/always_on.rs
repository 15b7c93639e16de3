//! The always-on chooser's tables (contract section 13): the always-on
//! definitions of `CampaignsTable` (Scan, through [`CampaignsTable::list`]),
//! a user's offers of a campaign in `LoyaltyOffersTable` (Query of the
//! user's partition, filtered by `campaignId`) and pending rows in the
//! pending table (the same), and the pending row's conditional put.

use super::campaigns::CampaignsTable;
use super::classify;
use super::items::{text_of, Item};
use super::offer_item::offer_from_item;
use super::pending::put_if_absent;
use super::table::{paged, DynamoTable};
use crate::always_on::{AlwaysOnStore, PendingPut};
use crate::domain::always_on::{AlwaysOnCampaign, HeldOffer};
use crate::domain::campaign::{parse_definition, CampaignMode};
use crate::domain::dates::parse_timestamp;
use crate::domain::CampaignId;
use crate::domain::OfferStatus;
use crate::error::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use offers_domain::UserId;
use serde_json::{Map, Value};

/// The tables, each by the name the template gives. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AlwaysOnTables {
    campaigns: CampaignsTable,
    offers: DynamoTable,
    pending: DynamoTable,
}

impl AlwaysOnTables {
    pub fn new(
        client: Client,
        campaigns: impl Into<String>,
        offers: impl Into<String>,
        pending: impl Into<String>,
    ) -> Self {
        Self {
            campaigns: CampaignsTable::new(client.clone(), campaigns),
            offers: DynamoTable::new(client.clone(), offers),
            pending: DynamoTable::new(client, pending),
        }
    }

    /// Every item of the user's partition of `table` whose `campaignId` is
    /// the campaign's (Query, every page).
    async fn campaign_items(
        &self,
        table: &DynamoTable,
        user_id: &str,
        campaign_id: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = table
            .client()
            .query()
            .table_name(table.name())
            .key_condition_expression("userId = :user")
            .filter_expression("campaignId = :campaign")
            .expression_attribute_values(":user", AttributeValue::S(user_id.to_owned()))
            .expression_attribute_values(":campaign", AttributeValue::S(campaign_id.to_owned()))
            .into_paginator()
            .items()
            .send();
        let mut items = paged(
            move |cx| items.poll_next(cx),
            format!(
                "querying {} for a user's offers of {campaign_id}",
                table.name()
            ),
        );
        let mut found = Vec::new();
        while let Some(item) = items.next().await {
            found.push(item.map_err(|err| err.error)?);
        }
        Ok(found)
    }
}

impl AlwaysOnStore for AlwaysOnTables {
    async fn always_on_campaigns(&self) -> Result<Vec<AlwaysOnCampaign>, StoreError> {
        let (stored, unreadable) = self.campaigns.list().await.map_err(|err| err.error)?;
        if unreadable > 0 {
            tracing::warn!(
                event = "campaigns_unreadable",
                count = unreadable,
                "campaign items that cannot be read were left out"
            );
        }
        let mut campaigns = Vec::new();
        for campaign in stored
            .into_iter()
            .filter(|campaign| campaign.mode == CampaignMode::AlwaysOn)
        {
            let text = Value::Object(campaign.definition).to_string();
            match parse_definition(&text) {
                Ok(definition) => campaigns.extend(
                    AlwaysOnCampaign::of(definition, campaign.version, campaign.paused)
                        .map(|always_on| always_on.with_offers_used(campaign.used.offers)),
                ),
                Err(problems) => tracing::warn!(
                    event = "campaign_unreadable",
                    campaign_id = %campaign.campaign_id,
                    problems = problems.len(),
                    "a stored always-on definition no longer passes its checks: left out"
                ),
            }
        }
        Ok(campaigns)
    }

    async fn held_offers(
        &self,
        user_id: &UserId,
        campaign_id: &CampaignId,
        now: DateTime<Utc>,
    ) -> Result<Vec<HeldOffer>, StoreError> {
        let user_id = user_id.as_str();
        let mut held = Vec::new();
        for item in self
            .campaign_items(&self.offers, user_id, campaign_id)
            .await?
        {
            // An offer item that cannot be read is left out (logged), not
            // a failure of every visit of its user.
            let offer = match offer_from_item(item) {
                Ok(offer) => offer,
                Err(err) => {
                    tracing::warn!(
                        event = "offer_unreadable",
                        campaign_id = %campaign_id,
                        error = %err,
                        "an offer item of the campaign cannot be read: left out"
                    );
                    continue;
                }
            };
            let live = matches!(
                offer.status(now),
                OfferStatus::Active | OfferStatus::Scheduled
            );
            held.push(HeldOffer {
                offer_id: offer.offer_id,
                assigned_at: offer.start_date,
                live,
            });
        }
        for item in self
            .campaign_items(&self.pending, user_id, campaign_id)
            .await?
        {
            // A pending row counts as live whatever it holds; one without a
            // readable start (the dispatcher will reject it) is in no window.
            held.push(HeldOffer {
                offer_id: text_of(&item, "offerId").unwrap_or_default().to_owned(),
                assigned_at: text_of(&item, "startDate")
                    .and_then(parse_timestamp)
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
                live: true,
            });
        }
        Ok(held)
    }

    async fn put_pending(&self, row: &Map<String, Value>) -> Result<PendingPut, StoreError> {
        let item: Item = serde_dynamo::to_item(row)
            .map_err(|err| StoreError::Refused(format!("the pending row is no item: {err}")))?;
        match put_if_absent(self.pending.client(), self.pending.name(), item).await {
            Ok(true) => Ok(PendingPut::Written),
            Ok(false) => Ok(PendingPut::Exists),
            Err(err) => Err(classify(&err)),
        }
    }
}
