//! What the application needs from storage, free of any AWS type.

use crate::domain::{CatalogEntry, PersonalizedOffer, ReasonCode};
use crate::error::StoreError;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::future::Future;
use uuid::Uuid;

/// The pending row a stream record is about, as the stream showed it.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingRef {
    pub user_id: String,
    pub sort_key: String,
    pub row: RowCopy,
}

/// The row as it was, verbatim.
#[derive(Debug, Clone, PartialEq)]
pub enum RowCopy {
    /// The stream record's new image.
    Image(serde_dynamo::Item),
    /// The image could not be read as DynamoDB attributes: its JSON text.
    Unreadable(String),
}

/// What a rejected row is stored with.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRow {
    pub rejection_id: Uuid,
    pub code: ReasonCode,
    pub message: String,
    pub rejected_at: DateTime<Utc>,
    pub event_id: String,
    pub sequence_number: String,
}

/// The result of a conditional, idempotent write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Written now, and the pending row deleted with it.
    Written,
    /// Written now, but the pending row had been replaced by a newer write of
    /// the same key since this record, so it was left alone.
    WrittenPendingRowKept,
    /// An earlier delivery of the same record already wrote it: nothing done.
    AlreadyWritten,
}

/// The dispatcher's writes: each one atomic with the delete of its pending row.
pub trait DispatchStore: Send + Sync {
    fn dispatch_offer(
        &self,
        offer: &PersonalizedOffer,
        pending: &PendingRef,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;

    fn reject_row(
        &self,
        rejection: &RejectedRow,
        pending: &PendingRef,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;
}

/// Reads config offers and templates. Ids not in the result do not exist.
pub trait CatalogReader: Send + Sync {
    fn fetch_entries(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, CatalogEntry>, StoreError>> + Send;
}
