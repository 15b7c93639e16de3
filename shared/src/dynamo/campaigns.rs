//! `CampaignsTable` (contract sections 13 and 14): one item per campaign,
//! keyed by `campaignId`, holding
//!
//! - the current definition (`definition`, a map: the validated JSON),
//!   its `mode`, `version` (1, 2, ...), `startDate`/`endDate` (for the
//!   status) and `paused`;
//! - `history`: the earlier versions, newest first, at most
//!   `KEPT_VERSIONS` (each `{version, definition (JSON text), replacedAt}`);
//! - for a planned campaign, the statistics `snapshot` its plan chose from
//!   and the `audienceFingerprint`, fixed at its first write;
//! - the budget's counters `usedOffers`, `usedRedemptions`,
//!   `usedDiscountValue`: top-level numbers that the budget's users will
//!   `ADD` to in their own transactions. A `put` never names them, so a new
//!   version keeps what was used.
//!
//! Every write is conditional: a new definition on the version it replaces
//! (concurrent puts each get their own version, none lost), a plan's first
//! write on the item's absence, a pause on the item's existence.

use super::catalog::{batch_get, BATCH_GET_LIMIT};
use super::errors::CallError;
use super::table::DynamoTable;
use super::DynamoStore;
use crate::domain::campaign::{
    parse_budget, Budget, BudgetUse, CampaignDefinition, CampaignMode, Snapshot, KEPT_VERSIONS,
};
use crate::domain::dates::{format_timestamp, parse_timestamp};
use crate::domain::CampaignId;
use crate::error::StoreError;
use crate::ports::{
    CampaignBudgetUse, CampaignBudgetsReader, CampaignOffersBudgets, OffersBudgetUse,
    OffersBudgets, RedemptionBudgets, RedemptionLimits,
};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

type Item = HashMap<String, AttributeValue>;

/// How often a put reads again after another put took the version it read.
const PUT_ATTEMPTS: u32 = 8;

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCampaign {
    pub campaign_id: String,
    pub mode: CampaignMode,
    pub version: u64,
    pub definition: Map<String, Value>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub paused: bool,
    pub budget: Option<Budget>,
    pub used: BudgetUse,
    /// Earlier versions kept: `(version, definition JSON)`, newest first.
    pub history: Vec<(u64, String)>,
    pub snapshot: Option<Snapshot>,
    pub audience_fingerprint: Option<String>,
}

/// What a put did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutOutcome {
    pub version: u64,
    pub replaced: bool,
}

/// What a plan's first write found.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanWrite {
    /// Stored now, as version 1 with this snapshot.
    Created,
    /// The campaign was stored already (an earlier run of this plan, or
    /// another campaign of the same id): as it is.
    Existing(Box<StoredCampaign>),
}

#[derive(Debug, thiserror::Error)]
pub enum CampaignsError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("campaign {0} is a planned campaign: its definition is its plan's (`offers campaign plan`), and reruns rely on it")]
    Planned(String),
    #[error("campaign {0} was changed by {PUT_ATTEMPTS} other writers meanwhile; try again")]
    Contended(String),
    #[error("campaign {0} is stored unreadable: {1}")]
    Corrupt(String, String),
}

/// The campaigns table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CampaignsTable {
    table: DynamoTable,
}

impl CampaignsTable {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            table: DynamoTable::new(client, name),
        }
    }

    pub fn name(&self) -> &str {
        self.table.name()
    }

    /// The campaign, read consistently (a put's next version follows it).
    pub async fn get(&self, campaign_id: &str) -> Result<Option<StoredCampaign>, CampaignsError> {
        let output = self
            .table
            .client()
            .get_item()
            .table_name(self.name())
            .key("campaignId", AttributeValue::S(campaign_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| {
                CallError::new(
                    format!("reading campaign {campaign_id} of {}", self.name()),
                    &err,
                )
            })?;
        output
            .item
            .map(|item| {
                campaign_of(&item)
                    .map_err(|why| CampaignsError::Corrupt(campaign_id.to_owned(), why))
            })
            .transpose()
    }

    /// Every campaign (Scan), and how many items could not be read.
    pub async fn list(&self) -> Result<(Vec<StoredCampaign>, u64), CallError> {
        let mut items = self.table.scan(&[]);
        let (mut campaigns, mut unreadable) = (Vec::new(), 0);
        while let Some(item) = items.next().await {
            match campaign_of(&item?) {
                Ok(campaign) => campaigns.push(campaign),
                Err(_) => unreadable += 1,
            }
        }
        campaigns.sort_by(|a, b| a.campaign_id.cmp(&b.campaign_id));
        Ok((campaigns, unreadable))
    }

    /// Stores `definition` as the campaign's next version (1 when new): a
    /// conditional write on the version read, read again when another put
    /// took it. Leaves the budget's counters and the pause as they are.
    pub async fn put_definition(
        &self,
        definition: &CampaignDefinition,
        now: DateTime<Utc>,
    ) -> Result<PutOutcome, CampaignsError> {
        let id = &definition.campaign_id;
        for _ in 0..PUT_ATTEMPTS {
            let current = self.get(id).await?;
            let written = match &current {
                None => self.create(definition, None, now).await?,
                // A plan changes its own definition (its budget) only.
                Some(current)
                    if current.mode == CampaignMode::Planned
                        && definition.mode != CampaignMode::Planned =>
                {
                    return Err(CampaignsError::Planned(id.to_string()))
                }
                Some(current) => self.replace(definition, current, now).await?,
            };
            if written {
                return Ok(PutOutcome {
                    version: current.as_ref().map_or(1, |current| current.version + 1),
                    replaced: current.is_some(),
                });
            }
        }
        Err(CampaignsError::Contended(id.to_string()))
    }

    /// A plan's first write: its definition with the snapshot it chooses
    /// from, unless the campaign is stored already (then what is stored).
    pub async fn create_plan(
        &self,
        definition: &CampaignDefinition,
        snapshot: &Snapshot,
        audience_fingerprint: &str,
        now: DateTime<Utc>,
    ) -> Result<PlanWrite, CampaignsError> {
        let planned = Planned {
            snapshot,
            audience_fingerprint,
        };
        if self.create(definition, Some(planned), now).await? {
            return Ok(PlanWrite::Created);
        }
        match self.get(&definition.campaign_id).await? {
            Some(stored) => Ok(PlanWrite::Existing(Box::new(stored))),
            // Deleted between the two calls: nothing to compare with.
            None => Err(CampaignsError::Contended(
                definition.campaign_id.to_string(),
            )),
        }
    }

    /// Pauses or resumes; `false` when there is no such campaign.
    pub async fn set_paused(
        &self,
        campaign_id: &str,
        paused: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, CallError> {
        let result = self
            .table
            .client()
            .update_item()
            .table_name(self.name())
            .key("campaignId", AttributeValue::S(campaign_id.to_owned()))
            .update_expression("SET paused = :paused, updatedAt = :now")
            .condition_expression("attribute_exists(campaignId)")
            .expression_attribute_values(":paused", AttributeValue::Bool(paused))
            .expression_attribute_values(":now", AttributeValue::S(format_timestamp(now)))
            .send()
            .await;
        conditional(
            result,
            UpdateItemError::is_conditional_check_failed_exception,
            || {
                format!(
                    "pausing or resuming campaign {campaign_id} in {}",
                    self.name()
                )
            },
        )
    }

    /// Version 1, if no item of this id exists; `false` if one does.
    async fn create(
        &self,
        definition: &CampaignDefinition,
        planned: Option<Planned<'_>>,
        now: DateTime<Utc>,
    ) -> Result<bool, CampaignsError> {
        let mut item = definition_attributes(definition)?;
        item.insert(
            "campaignId".into(),
            AttributeValue::S(definition.campaign_id.to_string()),
        );
        item.insert("version".into(), AttributeValue::N("1".into()));
        item.insert("paused".into(), AttributeValue::Bool(false));
        item.insert("createdAt".into(), AttributeValue::S(format_timestamp(now)));
        item.insert("updatedAt".into(), AttributeValue::S(format_timestamp(now)));
        if let Some(planned) = planned {
            item.insert(
                "snapshot".into(),
                AttributeValue::S(planned.snapshot.encode()),
            );
            item.insert(
                "snapshotAt".into(),
                AttributeValue::S(planned.snapshot.taken_at_text()),
            );
            item.insert(
                "audienceFingerprint".into(),
                AttributeValue::S(planned.audience_fingerprint.to_owned()),
            );
        }
        let result = self
            .table
            .client()
            .put_item()
            .table_name(self.name())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(campaignId)")
            .send()
            .await;
        Ok(conditional(
            result,
            PutItemError::is_conditional_check_failed_exception,
            || {
                format!(
                    "storing campaign {} in {}",
                    definition.campaign_id,
                    self.name()
                )
            },
        )?)
    }

    /// The next version over `current`, if `current` is still the stored
    /// version; `false` if another put came first.
    async fn replace(
        &self,
        definition: &CampaignDefinition,
        current: &StoredCampaign,
        now: DateTime<Utc>,
    ) -> Result<bool, CampaignsError> {
        let attributes = definition_attributes(definition)?;
        let mut history = vec![AttributeValue::M(HashMap::from([
            (
                "version".to_owned(),
                AttributeValue::N(current.version.to_string()),
            ),
            (
                "definition".to_owned(),
                AttributeValue::S(Value::Object(current.definition.clone()).to_string()),
            ),
            (
                "replacedAt".to_owned(),
                AttributeValue::S(format_timestamp(now)),
            ),
        ]))];
        history.extend(current.history.iter().take(KEPT_VERSIONS - 1).map(
            |(version, definition)| {
                AttributeValue::M(HashMap::from([
                    ("version".to_owned(), AttributeValue::N(version.to_string())),
                    (
                        "definition".to_owned(),
                        AttributeValue::S(definition.clone()),
                    ),
                ]))
            },
        ));
        let mut sets = vec![
            "#mode = :mode",
            "#definition = :definition",
            "#version = :next",
            "#history = :history",
            "updatedAt = :now",
        ];
        let mut removes = Vec::new();
        let mut request = self
            .table
            .client()
            .update_item()
            .table_name(self.name())
            .key(
                "campaignId",
                AttributeValue::S(definition.campaign_id.to_string()),
            )
            .condition_expression("#version = :current")
            // Placeholders: some of these names are reserved words.
            .expression_attribute_names("#mode", "mode")
            .expression_attribute_names("#definition", "definition")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#history", "history")
            .expression_attribute_values(":current", AttributeValue::N(current.version.to_string()))
            .expression_attribute_values(
                ":next",
                AttributeValue::N((current.version + 1).to_string()),
            )
            .expression_attribute_values(":history", AttributeValue::L(history))
            .expression_attribute_values(":now", AttributeValue::S(format_timestamp(now)));
        for (name, value) in
            ["mode", "definition", "startDate", "endDate"].map(|name| (name, attributes.get(name)))
        {
            match value {
                Some(value) => {
                    match name {
                        "startDate" => sets.push("startDate = :startDate"),
                        "endDate" => sets.push("endDate = :endDate"),
                        _ => {}
                    }
                    request =
                        request.expression_attribute_values(format!(":{name}"), value.clone());
                }
                None => removes.push(name),
            }
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let result = request.update_expression(expression).send().await;
        Ok(conditional(
            result,
            UpdateItemError::is_conditional_check_failed_exception,
            || {
                format!(
                    "storing version {} of campaign {} in {}",
                    current.version + 1,
                    definition.campaign_id,
                    self.name()
                )
            },
        )?)
    }
}

/// A conditional write's outcome: written, or its condition did not hold.
fn conditional<O, E, R>(
    result: Result<O, SdkError<E, R>>,
    condition_failed: impl Fn(&E) -> bool,
    doing: impl FnOnce() -> String,
) -> Result<bool, CallError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(err) if err.as_service_error().is_some_and(&condition_failed) => Ok(false),
        Err(err) => Err(CallError::new(doing(), &err)),
    }
}

/// What a plan's first write adds.
#[derive(Clone, Copy)]
struct Planned<'a> {
    snapshot: &'a Snapshot,
    audience_fingerprint: &'a str,
}

/// `mode`, `definition`, `startDate`, `endDate` of a definition.
fn definition_attributes(definition: &CampaignDefinition) -> Result<Item, CampaignsError> {
    let document = serde_dynamo::to_attribute_value(&definition.document).map_err(|err| {
        CallError::of(
            format!("storing campaign {}", definition.campaign_id),
            StoreError::Refused(format!("the definition is not a DynamoDB item: {err}")),
        )
    })?;
    let mut item = HashMap::from([
        (
            "mode".to_owned(),
            AttributeValue::S(definition.mode.as_str().to_owned()),
        ),
        ("definition".to_owned(), document),
    ]);
    if let Some(start) = definition.start {
        item.insert(
            "startDate".into(),
            AttributeValue::S(format_timestamp(start)),
        );
    }
    if let Some(end) = definition.end {
        item.insert("endDate".into(), AttributeValue::S(format_timestamp(end)));
    }
    Ok(item)
}

fn number(item: &Item, name: &str) -> Option<String> {
    item.get(name)
        .and_then(|value| value.as_n().ok())
        .map(String::from)
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .map(String::as_str)
}

/// The item as a campaign; why not, when it cannot be read.
fn campaign_of(item: &Item) -> Result<StoredCampaign, String> {
    let campaign_id = text(item, "campaignId").ok_or("no campaignId")?.to_owned();
    let mode = text(item, "mode")
        .and_then(CampaignMode::parse)
        .ok_or("no known mode")?;
    let version = number(item, "version")
        .and_then(|n| n.parse().ok())
        .ok_or("no version")?;
    let definition: Map<String, Value> = match item.get("definition") {
        Some(value) => {
            serde_dynamo::from_attribute_value(value.clone()).map_err(|err| err.to_string())?
        }
        None => return Err("no definition".into()),
    };
    let date = |name| text(item, name).and_then(parse_timestamp);
    let budget = definition
        .get("budget")
        .and_then(|budget| parse_budget(budget, &mut Vec::new()));
    let used = used_of(item);
    let history = item
        .get("history")
        .and_then(|value| value.as_l().ok())
        .map(|entries| {
            entries
                .iter()
                .filter_map(|entry| {
                    let entry = entry.as_m().ok()?;
                    let version = number(entry, "version")?.parse().ok()?;
                    Some((version, text(entry, "definition")?.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    let snapshot = match (text(item, "snapshot"), text(item, "snapshotAt")) {
        (Some(snapshot), Some(at)) => {
            Some(Snapshot::decode(snapshot, at).ok_or("an unreadable snapshot")?)
        }
        _ => None,
    };
    Ok(StoredCampaign {
        campaign_id,
        mode,
        version,
        definition,
        start: date("startDate"),
        end: date("endDate"),
        paused: item
            .get("paused")
            .and_then(|value| value.as_bool().ok())
            .copied()
            .unwrap_or(false),
        budget,
        used,
        history,
        snapshot,
        audience_fingerprint: text(item, "audienceFingerprint").map(str::to_owned),
    })
}

/// A definition's redemption limits, if it has any.
fn redemption_limits_of(item: &Item) -> Option<RedemptionLimits> {
    redemption_limits(budget_of(item)?)
}

fn redemption_limits(budget: Budget) -> Option<RedemptionLimits> {
    let limits = RedemptionLimits {
        redemptions: budget.redemptions,
        discount_value: budget.discount_ten_thousandths(),
    };
    (limits.redemptions.is_some() || limits.discount_value.is_some()).then_some(limits)
}

impl DynamoStore {
    /// The campaign's budget as its item holds it now (consistent read of
    /// the definition); `None` without a definition or a budget.
    pub(super) async fn campaign_budget(
        &self,
        campaign_id: &str,
    ) -> Result<Option<Budget>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.tables().campaigns()?)
            .key("campaignId", AttributeValue::S(campaign_id.to_owned()))
            .projection_expression("#definition")
            .expression_attribute_names("#definition", "definition")
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| super::classify(&err))?;
        Ok(output.item.as_ref().and_then(budget_of))
    }

    /// The campaign's budget and what it used, read now; `None` without a
    /// definition or a budget.
    pub(super) async fn campaign_budget_use(
        &self,
        campaign_id: &str,
    ) -> Result<Option<(Budget, BudgetUse)>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.tables().campaigns()?)
            .key("campaignId", AttributeValue::S(campaign_id.to_owned()))
            .projection_expression("#definition, usedOffers, usedRedemptions, usedDiscountValue")
            .expression_attribute_names("#definition", "definition")
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| super::classify(&err))?;
        Ok(output
            .item
            .and_then(|item| Some((budget_of(&item)?, used_of(&item)))))
    }

    /// One offer counted in the campaign's `usedOffers`, on condition that
    /// the `offers` limit on the item itself has room (so a lowered limit
    /// applies at once, and a campaign deleted meanwhile refuses).
    pub(super) fn offers_budget_use(&self, campaign_id: &str) -> Result<Update, StoreError> {
        Update::builder()
            .table_name(self.tables().campaigns()?)
            .key("campaignId", AttributeValue::S(campaign_id.to_owned()))
            .condition_expression(
                "usedOffers < #definition.#budget.offers \
                 OR (attribute_not_exists(usedOffers) AND #definition.#budget.offers > :zero)",
            )
            .update_expression("ADD usedOffers :one")
            .expression_attribute_names("#definition", "definition")
            .expression_attribute_names("#budget", "budget")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .build()
            .map_err(|err| StoreError::Refused(format!("offers budget update: {err}")))
    }
}

/// The budget's counters (0 until first used).
fn used_of(item: &Item) -> BudgetUse {
    BudgetUse {
        offers: number(item, "usedOffers")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        redemptions: number(item, "usedRedemptions")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        discount_value: number(item, "usedDiscountValue")
            .and_then(|n| n.parse().ok())
            .unwrap_or_default(),
    }
}

/// The definition's budget, if it has one.
fn budget_of(item: &Item) -> Option<Budget> {
    let definition: Map<String, Value> =
        serde_dynamo::from_attribute_value(item.get("definition")?.clone()).ok()?;
    parse_budget(definition.get("budget")?, &mut Vec::new())
}

impl DynamoStore {
    /// Every campaign (a Scan of its id, definition and counters) for which
    /// `of` finds something, by id.
    async fn campaigns_with<T>(
        &self,
        of: impl Fn(&Item) -> Option<T>,
    ) -> Result<HashMap<CampaignId, T>, StoreError> {
        let table = DynamoTable::new(self.client().clone(), self.tables().campaigns()?);
        let mut items = table.scan(&["campaignId", "definition", "usedOffers"]);
        let mut found = HashMap::new();
        while let Some(item) = items.next().await {
            let item = item.map_err(|err| err.error)?;
            let Some(id) = text(&item, "campaignId") else {
                continue;
            };
            // Only `campaign put` and `campaign plan` write here, through
            // the id's type; an item written around them is not a campaign.
            let Ok(id) = CampaignId::try_from(id) else {
                tracing::warn!(
                    event = "campaign_id_invalid",
                    "a campaign item's id is not a campaign id: left out"
                );
                continue;
            };
            if let Some(value) = of(&item) {
                found.insert(id, value);
            }
        }
        Ok(found)
    }
}

/// A definition's `offers` limit with what the item counted, if it has one.
fn offers_budget_of(item: &Item) -> Option<OffersBudgetUse> {
    Some(OffersBudgetUse {
        limit: budget_of(item)?.offers?,
        used: used_of(item).offers,
    })
}

/// The dispatcher's view of the campaigns: which have an offers limit, and
/// how much of it was used.
impl OffersBudgets for DynamoStore {
    async fn offers_budgets(&self) -> Result<Arc<CampaignOffersBudgets>, StoreError> {
        Ok(Arc::new(
            self.campaigns_with(|item| Some(offers_budget_of(item)))
                .await?,
        ))
    }

    async fn offers_budget_now(
        &self,
        campaign_id: &CampaignId,
    ) -> Result<Option<OffersBudgetUse>, StoreError> {
        Ok(self
            .campaign_budget_use(campaign_id)
            .await?
            .and_then(|(budget, used)| {
                Some(OffersBudgetUse {
                    limit: budget.offers?,
                    used: used.offers,
                })
            }))
    }
}

/// The activity's view of the campaigns: which have redemption limits.
impl RedemptionBudgets for DynamoStore {
    async fn budgeted(&self) -> Result<Arc<HashMap<CampaignId, RedemptionLimits>>, StoreError> {
        Ok(Arc::new(self.campaigns_with(redemption_limits_of).await?))
    }

    async fn current(
        &self,
        campaign_id: &CampaignId,
    ) -> Result<Option<RedemptionLimits>, StoreError> {
        Ok(self
            .campaign_budget(campaign_id)
            .await?
            .and_then(redemption_limits))
    }
}

/// The statistics function's view of the campaigns: the budgets of those a
/// batch touched.
impl CampaignBudgetsReader for DynamoStore {
    /// BatchGetItem (consistent, projected on the budget and its counters)
    /// in chunks of 100 keys; unprocessed keys are asked again a bounded
    /// number of rounds, then the read fails as throttled.
    async fn budgets_used(
        &self,
        campaign_ids: &[CampaignId],
    ) -> Result<Vec<CampaignBudgetUse>, StoreError> {
        let table = self.tables().campaigns()?;
        let mut budgets = Vec::new();
        for chunk in campaign_ids.chunks(BATCH_GET_LIMIT) {
            let keys = chunk
                .iter()
                .map(|id| {
                    HashMap::from([("campaignId".to_owned(), AttributeValue::S(id.to_string()))])
                })
                .collect();
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .projection_expression(
                    "campaignId, #definition.#budget, usedOffers, usedRedemptions, usedDiscountValue",
                )
                .expression_attribute_names("#definition", "definition")
                .expression_attribute_names("#budget", "budget")
                .build()
                .map_err(|err| StoreError::Refused(err.to_string()))?;
            batch_get(self.client(), table, request, "campaign", |item| {
                budgets.extend(budget_in(&item));
            })
            .await?;
        }
        Ok(budgets)
    }
}

/// The budget and use an item holds, if its definition has a budget.
fn budget_in(item: &Item) -> Option<CampaignBudgetUse> {
    Some(CampaignBudgetUse {
        campaign_id: CampaignId::try_from(text(item, "campaignId")?).ok()?,
        budget: budget_of(item)?,
        used: used_of(item),
    })
}
