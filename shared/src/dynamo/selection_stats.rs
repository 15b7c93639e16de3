//! The statistics table's learning counters, as offer selection reads them:
//! one Query per offer of the pool (`pk = offer#<offerId>`), every page.
//! The counters are written by the statistics function (not here).

use super::items::{text_of, Item};
use super::table::{paged, DynamoTable};
use crate::domain::selection::{Counts, LearningCounter, Scope};
use crate::error::StoreError;
use crate::ports::{LearningCounters, SelectionStatsReader};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use futures::StreamExt;

/// The statistics table (CampaignStatsTable). Cheap to clone.
#[derive(Debug, Clone)]
pub struct SelectionStatsTable {
    table: DynamoTable,
}

impl SelectionStatsTable {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            table: DynamoTable::new(client, name),
        }
    }

    pub fn name(&self) -> &str {
        self.table.name()
    }

    /// Whether the table exists.
    pub async fn exists(&self) -> Result<bool, super::CallError> {
        self.table.exists().await
    }
}

/// The partition of an offer's learning counters.
pub fn learning_partition(offer_id: &str) -> String {
    format!("offer#{offer_id}")
}

impl SelectionStatsReader for SelectionStatsTable {
    async fn learning_counters(
        &self,
        offer_ids: &[String],
    ) -> Result<LearningCounters, StoreError> {
        let mut read = LearningCounters::default();
        for offer_id in offer_ids {
            let mut items = self
                .table
                .client()
                .query()
                .table_name(self.table.name())
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(learning_partition(offer_id)))
                .into_paginator()
                .items()
                .send();
            let mut items = paged(
                move |cx| items.poll_next(cx),
                format!("reading the learning counters of {offer_id}"),
            );
            while let Some(item) = items.next().await {
                let item = item.map_err(|err| err.error)?;
                match counter_of(offer_id, &item) {
                    Some(counter) => read.counters.push(counter),
                    None => read.unreadable += 1,
                }
            }
        }
        Ok(read)
    }
}

/// One item as a counter: `sk` `overall` or `attr#<name>#<value>` (the
/// all-time counters, undated), or either after `day#<yyyy-mm-dd>#` (the
/// outcomes of offers assigned on that UTC day); numbers `assigned`,
/// `clicked`, `redeemed` (absent means 0). Anything else: `None`. The
/// engine discounts dated counters by age and reads undated ones as one old
/// bucket (`selection::history::date_undated`), so a deployment that kept
/// all-time counters moves to daily ones without losing its history.
pub fn counter_of(offer_id: &str, item: &Item) -> Option<LearningCounter> {
    let sort_key = text_of(item, "sk")?;
    let (day, sort_key) = match sort_key.strip_prefix("day#") {
        Some(dated) => {
            let (date, rest) = dated.split_once('#')?;
            let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
            let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
            let day = u32::try_from((date - epoch).num_days()).ok()?;
            (Some(day), rest)
        }
        None => (None, sort_key),
    };
    let scope = if sort_key == "overall" {
        Scope::Overall
    } else {
        let (name, value) = sort_key.strip_prefix("attr#")?.split_once('#')?;
        if name.is_empty() || value.is_empty() {
            return None;
        }
        Scope::Attribute {
            name: name.to_owned(),
            value: value.to_owned(),
        }
    };
    let number = |name: &str| -> Option<u64> {
        match item.get(name) {
            None => Some(0),
            Some(AttributeValue::N(text)) => text.parse::<u64>().ok(),
            Some(_) => None,
        }
    };
    Some(LearningCounter {
        offer_id: offer_id.to_owned(),
        scope,
        day,
        counts: Counts {
            assigned: number("assigned")?,
            clicked: number("clicked")?,
            redeemed: number("redeemed")?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn item(sort_key: &str, numbers: &[(&str, &str)]) -> Item {
        let mut item: Item = HashMap::from([
            ("pk".into(), AttributeValue::S("offer#co-1".into())),
            ("sk".into(), AttributeValue::S(sort_key.into())),
        ]);
        for (name, value) in numbers {
            item.insert((*name).into(), AttributeValue::N((*value).into()));
        }
        item
    }

    #[test]
    fn items_are_read_as_counters() {
        let overall = counter_of(
            "co-1",
            &item("overall", &[("assigned", "10"), ("redeemed", "2")]),
        )
        .expect("counter");
        assert_eq!(overall.scope, Scope::Overall);
        assert_eq!(overall.counts.assigned, 10);
        assert_eq!(overall.counts.clicked, 0);
        let attr = counter_of("co-1", &item("attr#tier#gold#plus", &[("assigned", "3")]))
            .expect("counter");
        assert_eq!(
            attr.scope,
            Scope::Attribute {
                name: "tier".into(),
                value: "gold#plus".into()
            }
        );
    }

    #[test]
    fn dated_items_are_counters_of_their_day() {
        let overall = counter_of(
            "co-1",
            &item("day#2026-12-06#overall", &[("assigned", "4")]),
        )
        .expect("counter");
        assert_eq!(overall.scope, Scope::Overall);
        assert_eq!(overall.day, Some(20_793));
        let attr = counter_of(
            "co-1",
            &item("day#1970-01-02#attr#tier#gold", &[("assigned", "3")]),
        )
        .expect("counter");
        assert_eq!(attr.day, Some(1));
        assert!(matches!(attr.scope, Scope::Attribute { .. }));
        assert_eq!(
            counter_of("co-1", &item("overall", &[]))
                .expect("undated")
                .day,
            None
        );
        assert!(counter_of("co-1", &item("day#2026-13-01#overall", &[])).is_none());
        assert!(counter_of("co-1", &item("day#1969-12-31#overall", &[])).is_none());
        assert!(counter_of("co-1", &item("day#2026-12-06", &[])).is_none());
    }

    #[test]
    fn other_items_are_not_counters() {
        assert!(counter_of("co-1", &item("campaign#x", &[])).is_none());
        assert!(counter_of("co-1", &item("attr#tier", &[])).is_none());
        assert!(counter_of("co-1", &item("overall", &[("assigned", "-1")])).is_none());
        assert!(counter_of("co-1", &item("overall", &[("assigned", "1.5")])).is_none());
    }
}
