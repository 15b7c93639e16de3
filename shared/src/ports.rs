//! What the application needs from storage: traits over domain types, with
//! no AWS SDK type in them. One exception, on purpose: a pending row's copy
//! is kept as `serde_dynamo`'s own attribute values (not the SDK's), so that
//! a rejected row is stored exactly as it was, types and sets included.

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
    /// An earlier delivery of the same record ended the other way (an offer
    /// where this one would reject, or the reverse): nothing done, since a
    /// record has exactly one outcome.
    OtherOutcomeWritten,
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

/// A place in one user's list of offers, in the order of the index being
/// read: the index's sort key and the offer's id. It carries no user id: the
/// user always comes from the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPosition {
    pub index_key: String,
    pub personalized_offer_id: Uuid,
}

/// One page of a user's list of offers.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    /// At most this many offers (at least 1).
    pub limit: usize,
    /// Start after this position (from the previous page's `next`).
    pub after: Option<ListPosition>,
    /// The time that decides which offers have expired.
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OfferPage {
    pub offers: Vec<PersonalizedOffer>,
    /// Where the next page starts; `None` when no more offers remain.
    pub next: Option<ListPosition>,
}

/// The app's reads of a user's own offers. Every read is scoped to
/// `user_id` by key: another user's offer is never read at all.
pub trait OfferReader: Send + Sync {
    /// The user's offer with this id, whatever its status; `None` when the
    /// user has no such offer.
    fn get_offer(
        &self,
        user_id: &str,
        personalized_offer_id: Uuid,
    ) -> impl Future<Output = Result<Option<PersonalizedOffer>, StoreError>> + Send;

    /// The user's offers that are neither expired nor revoked at `page.now`,
    /// by rank, then start date, then id.
    fn list_offers(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> impl Future<Output = Result<OfferPage, StoreError>> + Send;
}

/// The result of creating an offer under an id that may already be taken.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    Created,
    /// An offer with this id is already stored (a retry of an idempotent
    /// request): that offer, as stored. Nothing was written.
    AlreadyExists(Box<PersonalizedOffer>),
}

/// Who revoked an offer, when, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Revocation {
    pub by: String,
    pub at: DateTime<Utc>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RevokeOutcome {
    Revoked(Box<PersonalizedOffer>),
    /// It had been revoked before: nothing changed.
    AlreadyRevoked(Box<PersonalizedOffer>),
    /// The user has no offer with this id.
    NotFound,
}

/// The support tool's reads and writes: any status, always within one user.
pub trait SupportStore: Send + Sync {
    /// Writes `offer` unless its id is taken.
    fn create_offer(
        &self,
        offer: &PersonalizedOffer,
    ) -> impl Future<Output = Result<CreateOutcome, StoreError>> + Send;

    /// The user's offer with this id, read strongly consistently.
    fn find_offer(
        &self,
        user_id: &str,
        personalized_offer_id: Uuid,
    ) -> impl Future<Output = Result<Option<PersonalizedOffer>, StoreError>> + Send;

    /// Marks the user's offer revoked and adds the revocation to its audit
    /// trail. An offer already revoked is left as it is: the first
    /// revocation stands.
    fn revoke_offer(
        &self,
        user_id: &str,
        personalized_offer_id: Uuid,
        revocation: &Revocation,
    ) -> impl Future<Output = Result<RevokeOutcome, StoreError>> + Send;

    /// The user's offers of any status, newest first (by `createdAt`, then id).
    fn list_all_offers(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> impl Future<Output = Result<OfferPage, StoreError>> + Send;
}

/// The learning counters of a pool, as read for one plan.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LearningCounters {
    pub counters: Vec<crate::domain::selection::LearningCounter>,
    /// Items of the statistics table that could not be read as counters
    /// (left out; a plan reports how many).
    pub unreadable: u64,
}

/// What offer selection learns from: the statistics table's learning
/// counters (`pk = offer#<offerId>`, `sk = overall | attr#<name>#<value>`).
pub trait SelectionStatsReader: Send + Sync {
    /// Every counter of these offers; offers without any have none.
    fn learning_counters(
        &self,
        offer_ids: &[String],
    ) -> impl Future<Output = Result<LearningCounters, StoreError>> + Send;
}
