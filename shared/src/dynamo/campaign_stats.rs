//! The campaign statistics table (`CampaignStatsTable`, HASH `pk`, RANGE
//! `sk`): the statistics function's transactions, and the reads of the
//! support API and `offers report` (one Query per campaign).
//!
//! - campaign counters: `pk = campaign#<campaignId>`, `sk = offer#<offerId>#<arm>`;
//! - redemptions by day: `pk = campaign#<campaignId>`, `sk = day#<yyyy-mm-dd>#<offerId>`;
//! - each arm's offers made on a day (selection only): `pk = campaign#<campaignId>`,
//!   `sk = cohort#<yyyy-mm-dd>#<arm>`;
//! - learning counters: `pk = offer#<offerId>`, `sk = day#<yyyy-mm-dd>#overall`
//!   or `day#<yyyy-mm-dd>#attr#<attribute>#<value>` (the offers made that UTC
//!   day); `overall` / `attr#...` undated, the all-time counters kept before
//!   counters were dated (docs/selection.md, "Forgetting");
//! - markers: `pk = applied#<eventID>[#part]`, `sk = applied`, with a `ttl`.

use super::errors::CallError;
use super::items::Item;
use super::selection_stats::learning_partition;
use super::transactions::{cancellation_error, cancelled, condition_failed};
use super::{classify, DynamoStore};
use crate::domain::campaign_stats::{
    campaign_report, parse_amount, Arm, CampaignReport, CounterKey, Counts, Deltas, COUNT_NAMES,
    DISCOUNT_VALUE, ORDER_VALUE,
};
use crate::domain::CampaignId;
use crate::error::StoreError;
use crate::ports::{ApplyOutcome, CampaignStatsStore, StatsUnit};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;

/// How long a marker is kept: longer than a stream keeps records (24 h) and
/// than the mapping retries them (`MaximumRecordAgeInSeconds`).
pub const MARKER_RETENTION_SECONDS: i64 = 7 * 24 * 3_600;
/// The sort key of every marker.
const MARKER_SORT_KEY: &str = "applied";

fn text(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// The partition of a campaign's counters.
pub fn campaign_partition(campaign_id: &str) -> String {
    format!("campaign#{campaign_id}")
}

/// The key of a counter item, and its descriptive attributes.
fn counter_item(key: &CounterKey) -> (String, String, Vec<(&'static str, String)>) {
    match key {
        CounterKey::Campaign {
            campaign_id,
            offer_id,
            arm,
        } => (
            campaign_partition(campaign_id),
            format!("offer#{offer_id}#{}", arm.as_str()),
            vec![
                ("campaignId", campaign_id.clone()),
                ("offerId", offer_id.clone()),
                ("arm", arm.as_str().to_owned()),
            ],
        ),
        CounterKey::Day {
            campaign_id,
            offer_id,
            day,
        } => (
            campaign_partition(campaign_id),
            format!("day#{day}#{offer_id}"),
            vec![
                ("campaignId", campaign_id.clone()),
                ("offerId", offer_id.clone()),
                ("day", day.clone()),
            ],
        ),
        CounterKey::ArmDay {
            campaign_id,
            day,
            arm,
        } => (
            campaign_partition(campaign_id),
            format!("cohort#{day}#{}", arm.as_str()),
            vec![
                ("campaignId", campaign_id.clone()),
                ("day", day.clone()),
                ("arm", arm.as_str().to_owned()),
            ],
        ),
        CounterKey::Learning {
            offer_id,
            day,
            attribute,
        } => {
            let mut described = vec![("offerId", offer_id.clone())];
            let scope = match attribute {
                None => "overall".to_owned(),
                Some((name, value)) => {
                    described.push(("attribute", name.clone()));
                    described.push(("value", value.clone()));
                    format!("attr#{name}#{value}")
                }
            };
            let sort_key = match day {
                None => scope,
                Some(day) => {
                    described.push(("day", day.clone()));
                    format!("day#{day}#{scope}")
                }
            };
            (learning_partition(offer_id), sort_key, described)
        }
    }
}

/// The update adding `counts` to a counter: `ADD` of each count that is not
/// zero, `SET` of the counter's descriptive attributes (the same each time).
pub fn counter_update(
    table: &str,
    key: &CounterKey,
    counts: &Counts,
) -> Result<Update, StoreError> {
    let (pk, sk, described) = counter_item(key);
    let mut update = Update::builder()
        .table_name(table)
        .key("pk", text(pk))
        .key("sk", text(sk));
    let mut adds = Vec::new();
    let mut sets = Vec::new();
    for (index, (name, value)) in COUNT_NAMES.iter().zip(counts.numbers()).enumerate() {
        if value != 0 {
            adds.push(format!("#c{index} :c{index}"));
            update = update
                .expression_attribute_names(format!("#c{index}"), *name)
                .expression_attribute_values(
                    format!(":c{index}"),
                    AttributeValue::N(value.to_string()),
                );
        }
    }
    for (alias, name, value) in [
        ("ov", ORDER_VALUE, counts.order_value),
        ("dv", DISCOUNT_VALUE, counts.discount_value),
    ] {
        if !value.is_zero() {
            adds.push(format!("#{alias} :{alias}"));
            update = update
                .expression_attribute_names(format!("#{alias}"), name)
                .expression_attribute_values(
                    format!(":{alias}"),
                    AttributeValue::N(value.normalize().to_string()),
                );
        }
    }
    for (index, (name, value)) in described.into_iter().enumerate() {
        sets.push(format!("#d{index} = :d{index}"));
        update = update
            .expression_attribute_names(format!("#d{index}"), name)
            .expression_attribute_values(format!(":d{index}"), text(value));
    }
    let mut expression = format!("SET {}", sets.join(", "));
    if !adds.is_empty() {
        expression.push_str(&format!(" ADD {}", adds.join(", ")));
    }
    update
        .update_expression(expression)
        .build()
        .map_err(|err| StoreError::Refused(err.to_string()))
}

fn marker_put(table: &str, marker: &str, now: i64) -> Result<Put, StoreError> {
    Put::builder()
        .table_name(table)
        .item("pk", text(marker))
        .item("sk", text(MARKER_SORT_KEY))
        .item(
            "ttl",
            AttributeValue::N(now.saturating_add(MARKER_RETENTION_SECONDS).to_string()),
        )
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(|err| StoreError::Refused(err.to_string()))
}

/// A stored counter of a campaign's partition, read back.
fn counter_of(item: &Item) -> Result<Option<(CounterKey, Counts)>, StoreError> {
    let text_of = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let corrupt = |what: &str| StoreError::Corrupt(format!("statistics item: {what}"));
    let Some(campaign_id) = text_of("campaignId") else {
        return Ok(None);
    };
    let arm = match text_of("arm") {
        Some(arm) => Some(Arm::parse(&arm).ok_or_else(|| corrupt("unknown arm"))?),
        None => None,
    };
    let key = match (text_of("offerId"), arm, text_of("day")) {
        (Some(offer_id), Some(arm), _) => CounterKey::Campaign {
            campaign_id,
            offer_id,
            arm,
        },
        (Some(offer_id), None, Some(day)) => CounterKey::Day {
            campaign_id,
            offer_id,
            day,
        },
        (None, Some(arm), Some(day)) => CounterKey::ArmDay {
            campaign_id,
            day,
            arm,
        },
        _ => return Ok(None),
    };
    let mut counts = Counts::default();
    for name in COUNT_NAMES {
        if let Some(value) = item.get(name) {
            let number = value
                .as_n()
                .ok()
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| corrupt(name))?;
            counts.set(name, number);
        }
    }
    for (name, slot) in [
        (ORDER_VALUE, &mut counts.order_value),
        (DISCOUNT_VALUE, &mut counts.discount_value),
    ] {
        if let Some(value) = item.get(name) {
            *slot = value
                .as_n()
                .ok()
                .and_then(|n| parse_amount(n))
                .ok_or_else(|| corrupt(name))?;
        }
    }
    Ok(Some((key, counts)))
}

/// Every item of a campaign's partition (every page).
async fn query_campaign(
    client: &Client,
    table: &str,
    campaign_id: &str,
) -> Result<
    Vec<Item>,
    aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::query::QueryError,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
> {
    client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", text(campaign_partition(campaign_id)))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
}

fn counters_of(items: &[Item]) -> Result<Vec<(CounterKey, Counts)>, StoreError> {
    items
        .iter()
        .filter_map(|item| counter_of(item).transpose())
        .collect()
}

impl CampaignStatsStore for DynamoStore {
    async fn apply_units(
        &self,
        units: &[&StatsUnit],
        deltas: &Deltas,
    ) -> Result<ApplyOutcome, StoreError> {
        let table = self.tables.campaign_stats()?;
        let now = chrono::Utc::now().timestamp();
        let mut request = self.client.transact_write_items();
        for unit in units {
            request = request.transact_items(
                TransactWriteItem::builder()
                    .put(marker_put(table, &unit.marker, now)?)
                    .build(),
            );
        }
        for (key, counts) in deltas {
            request = request.transact_items(
                TransactWriteItem::builder()
                    .update(counter_update(table, key, counts)?)
                    .build(),
            );
        }
        match cancelled(request.send().await, classify)? {
            None => Ok(ApplyOutcome::Applied),
            Some(reasons) => {
                let found: Vec<usize> = (0..units.len())
                    .filter(|index| condition_failed(&reasons, *index))
                    .collect();
                let only_markers = reasons
                    .iter()
                    .skip(units.len())
                    .all(|code| code == "None" || code.is_empty());
                if !found.is_empty() && only_markers {
                    Ok(ApplyOutcome::AlreadyApplied(found))
                } else {
                    Err(cancellation_error(&reasons))
                }
            }
        }
    }

    async fn campaign_counters(
        &self,
        campaign_id: &CampaignId,
    ) -> Result<Vec<(CounterKey, Counts)>, StoreError> {
        let items = query_campaign(&self.client, self.tables.campaign_stats()?, campaign_id)
            .await
            .map_err(|err| classify(&err))?;
        counters_of(&items)
    }
}

/// The statistics table for the command line (`offers report`): the same
/// Query and the same report as the support API's.
#[derive(Debug, Clone)]
pub struct CampaignStatsTable {
    client: Client,
    name: String,
}

impl CampaignStatsTable {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    pub async fn report(&self, campaign_id: &str) -> Result<CampaignReport, CallError> {
        let items = query_campaign(&self.client, &self.name, campaign_id)
            .await
            .map_err(|err| {
                CallError::new(
                    format!(
                        "reading the statistics of campaign {campaign_id} in {}",
                        self.name
                    ),
                    &err,
                )
            })?;
        let doing = || format!("reading the statistics of campaign {campaign_id}");
        let counters = counters_of(&items).map_err(|err| CallError::of(doing(), err))?;
        campaign_report(campaign_id, counters)
            .map_err(|problem| CallError::of(doing(), StoreError::Corrupt(problem.to_string())))
    }
}
