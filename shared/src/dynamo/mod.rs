//! The DynamoDB adapter: items, conditional transactions, error
//! classification. One module per table for what the functions and the
//! `offers` CLI do to it (`pending`, `rejected`, `catalog`, `offers`,
//! `loyalty_transactions`); the functions' writes are `dispatch`, `support`,
//! `activity` and `challenges`. The loyalty offers item, which several of
//! them write, has one owner: `offer_item` (its attribute names, key,
//! reader and every condition and update expression on it).

mod activity;
mod always_on;
pub mod batch_write;
mod campaign_stats;
mod campaigns;
mod catalog;
mod challenges;
mod client;
mod dispatch;
mod errors;
mod items;
mod loyalty_transactions;
pub mod offer_item;
mod offers;
mod pending;
mod profiles;
mod rejected;
mod selection_stats;
mod support;
mod table;
mod transactions;
mod webhook;
pub use webhook::ROW_WRITE_CONCURRENCY as WEBHOOK_ROW_WRITE_CONCURRENCY;

pub use activity::{budgeted_redemption_updates, redemption_update};
pub use always_on::AlwaysOnTables;
pub use campaign_stats::{
    campaign_partition, counter_update, CampaignStatsTable, MARKER_RETENTION_SECONDS,
};
pub use campaigns::{CampaignsError, CampaignsTable, PlanWrite, PutOutcome, StoredCampaign};
pub use catalog::{CatalogTable, CATALOG_KEY};
pub use challenges::{REJECTION_SOURCE, TRANSACTION_IMAGE, TRANSACTION_SOURCE};
pub use client::{dynamodb_client, environment_endpoint, environment_sdk_config};
pub use dispatch::{
    pending_delete, DROPPED_ATTRIBUTES, REJECTION_ATTRIBUTES, SOURCE_RECORD_ID, UNREADABLE_ROW,
};
pub use errors::{classify, error_chain, CallError, Fault};
pub use items::{attribute_size, text_of, Item};
pub use loyalty_transactions::{LoyaltyTransactionsTable, PutTransaction};
pub use offer_item::{offer_from_item, offer_to_item, CREATED_INDEX, RANK_INDEX};
pub use offers::{LoyaltyOffersTable, OfferCounts};
pub use pending::{PendingKey, PendingTable, RedriveError, Redriven, PENDING_KEY};
pub use profiles::{mark_key, UserProfilesTable, MARK_RETENTION_SECONDS};
pub use rejected::{
    is_rejections_mark, RejectedCounts, RejectedTable, RejectionFilter, RetryOutcome, RetrySkip,
    Retryable, StoredRejection, REJECTIONS_MARK_ID, REJECTIONS_MARK_USER,
};
pub use selection_stats::{counter_of, learning_partition, SelectionStatsTable};
pub use table::DynamoTable;
pub use transactions::{cancellation_codes, cancellation_error};

use crate::config::{Table, TableNames};
use aws_sdk_dynamodb::Client;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a function builds on a [`DynamoStore`]: each port's adapter, with
/// the tables it reaches. A function's config asks
/// [`crate::config::Env::tables_for`] for exactly the tables of the adapters
/// it builds, so a table one of them needs is missing at init or never: the
/// `Unconfigured` refusal of [`TableNames`]' accessors is then unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    /// `OfferReader`: the user's offers, by key and by index.
    OfferReader,
    /// `CatalogReader`: config offers and templates.
    Catalog,
    /// `SupportStore`: assign (with the campaign's offers budget), list, revoke.
    Support,
    /// `ActivityStore`: events (deduplicated), redemptions against their budgets.
    Activity,
    /// `ChallengeStore`: challenge offers' progress and its rejections.
    Challenges,
    /// `OffersBudgets`: the campaigns' offers budgets (the dispatcher).
    OffersBudgets,
    /// `RedemptionBudgets`: the campaigns' redemption limits.
    RedemptionBudgets,
    /// `WebhookStore`: deliveries and the pending rows they write.
    Webhook,
    /// `DispatchStore`: pending rows into offers or rejections.
    Dispatch,
    /// `CampaignStatsStore`: the statistics' counters.
    CampaignStats,
    /// `CampaignBudgetsReader`: the budgets of the campaigns a statistics
    /// batch changed, read for their use metric.
    CampaignBudgets,
}

impl Adapter {
    /// The tables the adapter reaches, in the order a function reads them.
    pub const fn tables(self) -> &'static [Table] {
        match self {
            Adapter::OfferReader => &[Table::LoyaltyOffers],
            Adapter::Catalog => &[Table::Catalog],
            Adapter::Support => &[Table::LoyaltyOffers, Table::Campaigns],
            Adapter::Activity => &[Table::OfferEvents, Table::Campaigns, Table::LoyaltyOffers],
            Adapter::Challenges => &[Table::LoyaltyOffers, Table::Rejected],
            Adapter::OffersBudgets | Adapter::RedemptionBudgets | Adapter::CampaignBudgets => {
                &[Table::Campaigns]
            }
            Adapter::Webhook => &[Table::Pending, Table::WebhookDeliveries],
            Adapter::Dispatch => &[Table::Pending, Table::LoyaltyOffers, Table::Rejected],
            Adapter::CampaignStats => &[Table::CampaignStats],
        }
    }
}

/// All tables behind one client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    tables: Arc<TableNames>,
    catalog_items_read: Arc<AtomicU64>,
}

impl DynamoStore {
    pub fn new(client: Client, tables: TableNames) -> Self {
        Self {
            client,
            tables: Arc::new(tables),
            catalog_items_read: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn tables(&self) -> &TableNames {
        &self.tables
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// How many catalog items this store has asked DynamoDB for (for benches and tests).
    pub fn catalog_items_read(&self) -> u64 {
        self.catalog_items_read.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod activity_fault_tests;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod stats_fault_tests;
#[cfg(test)]
mod table_fault_tests;
