//! Campaign statistics from the loyalty offers table's stream, exactly once.
//!
//! The stream's edge (`input`) reads each stream record into a [`StatsInput`]
//! (its old and new images); the shared runner (`crate::stream::runner`)
//! reports the records that are not changes; [`StatsService::apply_batch`] turns each INSERT or
//! MODIFY into its deltas (`offers_domain::campaign_stats`), sums the batch's
//! deltas per counter and writes them with one conditional marker per record
//! in as few transactions as fit ([`crate::ports::CampaignStatsStore`]).
//! A replayed record finds its marker and is dropped from the transaction,
//! which is retried without it; a concurrent invocation's conflict is retried
//! with backoff, a bounded number of times. `memory` is an in-memory fake of
//! the port; [`StatsService::campaign_report`] reads a campaign's counters
//! for the API and the CLI. After each batch the budgets of the campaigns
//! it changed are read once ([`crate::ports::CampaignBudgetsReader`]) for
//! the `BudgetUsedPercent` metric of every kind of limit.

mod image;
mod input;
pub mod memory;
mod service;
#[cfg(test)]
mod tests;

pub use image::read_offer_image;
pub use input::{read_record, ChangeRecord, StatsBatch, StatsInput};
pub use service::{
    BudgetPercent, PartlyRead, StatsBatchReport, StatsKind, StatsOutcome, StatsService,
    StatsSettings, StatsSummary, MARKER_PREFIX, MAX_TRANSACTION_ITEMS, MAX_UNIT_COUNTERS,
};
