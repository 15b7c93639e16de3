//! The DynamoDB adapter: items, conditional transactions, error classification.

mod catalog;
mod client;
mod dispatch;
mod errors;
mod items;
mod offers;
mod support;

pub use client::{dynamodb_client, environment_sdk_config};
pub use dispatch::{
    cancellation_codes, cancellation_error, pending_delete, DROPPED_ATTRIBUTES,
    REJECTION_ATTRIBUTES, UNREADABLE_ROW,
};
pub use errors::classify;
pub use items::{attribute_size, offer_from_item, offer_to_item, CREATED_INDEX, RANK_INDEX};

use crate::config::TableNames;
use aws_sdk_dynamodb::Client;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
mod fault_tests;
#[cfg(test)]
mod hostile_tests;
