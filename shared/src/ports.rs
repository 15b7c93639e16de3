//! What the application needs from storage: traits over domain types, with
//! no AWS SDK type in them. One exception, on purpose: a pending row's copy
//! is kept as `serde_dynamo`'s own attribute values (not the SDK's), so that
//! a rejected row is stored exactly as it was, types and sets included.

use crate::domain::campaign::{Budget, BudgetUse};
use crate::domain::webhook::WebhookReceipt;
use crate::domain::PersonalizedOfferId;
use crate::domain::{
    BudgetTaken, CampaignId, CatalogEntry, OfferEvent, OrderId, PersonalizedOffer, ReasonCode,
    Redemption, UserId,
};
use crate::error::StoreError;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use uuid::Uuid;

/// The pending row a stream record is about, as the stream showed it.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingRef {
    pub user_id: String,
    pub sort_key: String,
    pub row: RowCopy,
    /// The stream record's id: the id of its offer and of its rejection
    /// unless the row names an assignment.
    pub record_id: Uuid,
    /// The row's `assignmentId` (contract section 2), when it has a valid one.
    pub assignment_id: Option<String>,
}

impl PendingRef {
    /// The id of the offer this row makes (see [`offer_id_of`]), and of its
    /// rejection: an assignment has at most one of each.
    pub fn offer_id(&self) -> PersonalizedOfferId {
        offer_id_of(&self.user_id, self.assignment_id.as_deref(), self.record_id)
    }

    /// Where this record's own rejection would be filed.
    pub fn rejection_key(&self) -> RejectionKey<'_> {
        RejectionKey {
            user_id: &self.user_id,
            rejection_id: *self.offer_id().as_uuid(),
            record_id: self.record_id,
        }
    }
}

/// A record's rejection as the dispatcher looks it up: filed under the user
/// and the rejection id (the assignment's, else the record's own), and
/// stored with the id of the record it rejected. The rows of one
/// assignment share one rejection: the first record rejected keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RejectionKey<'a> {
    pub user_id: &'a str,
    pub rejection_id: Uuid,
    pub record_id: Uuid,
}

/// The `personalizedOfferId` of a pending row's offer: derived from the
/// user and the row's `assignmentId` when it has one (one offer per
/// assignment, whichever rows and records carry it), else from the stream
/// record (one offer per INSERT).
pub fn offer_id_of(
    user_id: &str,
    assignment_id: Option<&str>,
    record_id: Uuid,
) -> PersonalizedOfferId {
    match assignment_id {
        Some(assignment_id) => crate::domain::assignment_offer_id(user_id, assignment_id),
        None => PersonalizedOfferId::from_uuid(record_id),
    }
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
    /// The row's offer id (see [`PendingRef::offer_id`]).
    pub rejection_id: Uuid,
    /// The stream record rejected: a later record of the same assignment
    /// finds the rejection another record's, not its own.
    pub record_id: Uuid,
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
    /// Of an assignment: the assignment's offer (or, for a rejection, its
    /// rejection) exists, made by this record or another row of it, and the
    /// pending row was deleted (as the stream saw it), since its
    /// assignment is done.
    AlreadyWritten,
    /// An earlier delivery of the same record ended the other way (an offer
    /// where this one would reject, or the reverse): nothing done, since a
    /// record has exactly one outcome. For a rejection of an assignment:
    /// the assignment's offer exists, and the pending row was deleted as
    /// for `AlreadyWritten`.
    OtherOutcomeWritten,
}

/// What the dispatcher knows, before it writes a record's offer, of the
/// record's rejection (its other outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriorRejection {
    /// A strongly consistent read earlier in this invocation found none, or
    /// the record was created after the rejections mark: the
    /// offer is tried first with the plain two-item transaction (put the
    /// offer, delete the pending row only if it is still there exactly as the
    /// stream saw it); anything else falls back to the checked transaction.
    NotFound,
    /// Not read, or found: only the checked transaction (with the check that
    /// no rejection of the record exists) is used.
    Unknown,
}

/// The dispatcher's writes: each one atomic with the delete of its pending row.
pub trait DispatchStore: Send + Sync {
    /// The record ids of `records` whose own rejection a strongly
    /// consistent read finds absent (none under their key, or another
    /// record's). A record left out (found, or not processed) is
    /// [`PriorRejection::Unknown`].
    fn rejections_absent(
        &self,
        records: &[RejectionKey<'_>],
    ) -> impl Future<Output = Result<HashSet<Uuid>, StoreError>> + Send;

    /// The rejections mark, read strongly consistent: no record created
    /// after it (its stream `ApproximateCreationDateTime`) has a rejection,
    /// because every rejection raises it first (docs/design.md, "The common
    /// path"). `None` while it is not set: every record may have one. The
    /// default (a store without a mark) is `None`.
    fn rejections_mark(
        &self,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send {
        async { Ok(None) }
    }

    /// Raises the rejections mark to at least `at_least`, or, while it is not
    /// set, sets it to `when_unset`. A mark already higher is left as it is.
    /// The default (a store without a mark) does nothing: its mark stays unset.
    fn raise_rejections_mark(
        &self,
        at_least: DateTime<Utc>,
        when_unset: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (at_least, when_unset);
        async { Ok(()) }
    }

    fn dispatch_offer(
        &self,
        offer: &PersonalizedOffer,
        pending: &PendingRef,
        prior: PriorRejection,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;

    fn reject_row(
        &self,
        rejection: &RejectedRow,
        pending: &PendingRef,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;

    /// As [`DispatchStore::dispatch_offer`], with one more item in the same
    /// transaction: the offer counted in `campaign_id`'s `usedOffers`, on
    /// condition that the `offers` limit the campaign's item holds has room.
    /// An offer already there wins over the budget (a replay after success
    /// is `Done(AlreadyWritten)`, never a refusal), so an offer is counted
    /// once whatever the deliveries.
    fn dispatch_budgeted_offer(
        &self,
        offer: &PersonalizedOffer,
        pending: &PendingRef,
        prior: PriorRejection,
        campaign_id: &CampaignId,
    ) -> impl Future<Output = Result<BudgetedWrite, StoreError>> + Send;
}

/// The result of an offer's write with its campaign's offers budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetedWrite {
    /// As the write without a budget would have ended (written: counted).
    Done(WriteOutcome),
    /// The budget refused it (used up, its limit lowered or removed, or the
    /// campaign deleted): nothing was written.
    BudgetRefused,
}

/// A campaign's `offers` limit and what it used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffersBudgetUse {
    pub limit: u64,
    pub used: u64,
}

impl OffersBudgetUse {
    /// Used over limit, in percent (a limit of 0 is used up: 100).
    pub fn percent(&self) -> u64 {
        match self.limit {
            0 => 100,
            limit => self.used.saturating_mul(100) / limit,
        }
    }

    pub fn exhausted(&self) -> bool {
        self.used >= self.limit
    }
}

/// Campaigns by id, each with its `offers` limit and use (`None`: no such
/// limit, or, for a campaign read on its own, no definition).
pub type CampaignOffersBudgets = HashMap<CampaignId, Option<OffersBudgetUse>>;

/// Campaigns' offers budgets as the dispatcher reads them.
pub trait OffersBudgets: Send + Sync {
    /// Every campaign with a definition, with its `offers` limit and use
    /// when read; a cache may answer it up to its time to live old (and
    /// with the campaigns read on their own since). Only chooses the write:
    /// the limit is enforced by the condition on the counter.
    fn offers_budgets(
        &self,
    ) -> impl Future<Output = Result<Arc<CampaignOffersBudgets>, StoreError>> + Send;

    /// One campaign's `offers` limit and use, read now (consistently);
    /// `None` without a definition or without that limit.
    fn offers_budget_now(
        &self,
        campaign_id: &CampaignId,
    ) -> impl Future<Output = Result<Option<OffersBudgetUse>, StoreError>> + Send;
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
    pub personalized_offer_id: PersonalizedOfferId,
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
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
    ) -> impl Future<Output = Result<Option<PersonalizedOffer>, StoreError>> + Send;

    /// The user's offers that are neither expired nor revoked at `page.now`,
    /// by rank, then start date, then id.
    fn list_offers(
        &self,
        user_id: &UserId,
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
    /// The campaign's `offers` budget refused it (used up, or the limit on
    /// the campaign's item changed): nothing was written.
    BudgetRefused,
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

    /// Writes `offer` unless its id is taken and counts it in its
    /// campaign's `usedOffers`, in one transaction, on condition that the
    /// campaign's item (its `offers` limit read from the item itself) has
    /// room. A taken id cancels the whole transaction: nothing counted.
    fn create_budgeted_offer(
        &self,
        offer: &PersonalizedOffer,
        campaign_id: &CampaignId,
    ) -> impl Future<Output = Result<CreateOutcome, StoreError>> + Send;

    /// The campaign's `offers` limit (section 14), read now; `None` without
    /// a definition or without that limit.
    fn offers_limit(
        &self,
        campaign_id: &CampaignId,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;

    /// The campaign's budget and what it used (section 14), read now;
    /// `None` without a definition or a budget.
    fn campaign_budget(
        &self,
        campaign_id: &CampaignId,
    ) -> impl Future<Output = Result<Option<(Budget, BudgetUse)>, StoreError>> + Send;

    /// The user's offer with this id, read strongly consistently.
    fn find_offer(
        &self,
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
    ) -> impl Future<Output = Result<Option<PersonalizedOffer>, StoreError>> + Send;

    /// Marks the user's offer revoked and adds the revocation to its audit
    /// trail. An offer already revoked is left as it is: the first
    /// revocation stands.
    fn revoke_offer(
        &self,
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
        revocation: &Revocation,
    ) -> impl Future<Output = Result<RevokeOutcome, StoreError>> + Send;

    /// The user's offers of any status, newest first (by `createdAt`, then id).
    fn list_all_offers(
        &self,
        user_id: &UserId,
        page: &PageRequest,
    ) -> impl Future<Output = Result<OfferPage, StoreError>> + Send;
}

/// One record's share of the statistics, written atomically with its marker:
/// the marker (`applied#<eventID>`, one per part when a record touches more
/// counters than one transaction holds) exists once the deltas are counted.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsUnit {
    pub marker: String,
    pub deltas: crate::domain::campaign_stats::Deltas,
}

/// The result of one statistics transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Every unit's marker written and its deltas added.
    Applied,
    /// Nothing written: these units (indexes into the units given) were
    /// counted before (their markers exist).
    AlreadyApplied(Vec<usize>),
}

/// The campaign statistics table.
pub trait CampaignStatsStore: Send + Sync {
    /// One transaction: each unit's marker, on the condition that it does not
    /// exist, and `deltas` (the sum of the units' deltas, one entry per
    /// counter) added to the counters. At most 100 items in all.
    fn apply_units(
        &self,
        units: &[&StatsUnit],
        deltas: &crate::domain::campaign_stats::Deltas,
    ) -> impl Future<Output = Result<ApplyOutcome, StoreError>> + Send;

    /// Every counter of a campaign (offers by arm, and days).
    fn campaign_counters(
        &self,
        campaign_id: &CampaignId,
    ) -> impl Future<
        Output = Result<
            Vec<(
                crate::domain::campaign_stats::CounterKey,
                crate::domain::campaign_stats::Counts,
            )>,
            StoreError,
        >,
    > + Send;
}

/// A campaign's budget and what it used, as its item holds them.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignBudgetUse {
    pub campaign_id: CampaignId,
    pub budget: Budget,
    pub used: BudgetUse,
}

/// Campaigns' budgets as the statistics function reads them, for the
/// budget alarm's metric.
pub trait CampaignBudgetsReader: Send + Sync {
    /// The budgets of those of `campaign_ids` whose definition carries one,
    /// read now (consistently); the others (no definition, no budget) are
    /// left out.
    fn budgets_used(
        &self,
        campaign_ids: &[CampaignId],
    ) -> impl Future<Output = Result<Vec<CampaignBudgetUse>, StoreError>> + Send;
}

/// The result of a conditional write of one use (or its voiding) on an offer.
#[derive(Debug, Clone, PartialEq)]
pub enum ActivityWrite {
    /// Written: the offer as it is now.
    Written(Box<PersonalizedOffer>),
    /// The write's condition did not hold, so nothing changed: the offer as
    /// it was then, for the caller to decide again; `None` when the user has
    /// no such offer.
    NotWritten(Option<Box<PersonalizedOffer>>),
    /// The offer's side held, but the campaign's budget refused the use (a
    /// limit reached, changed since it was read, or the campaign deleted):
    /// nothing changed, and the caller reads the campaign again to decide.
    BudgetRefused,
}

/// A campaign's redemption limits (contract section 14), as its definition
/// carries them; `discountValue` in ten-thousandths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedemptionLimits {
    pub redemptions: Option<u64>,
    pub discount_value: Option<u64>,
}

/// What a redemption's write does about budgets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RedeemBudget<'a> {
    /// No budget: the offer's single conditional write, whose condition
    /// also holds the offer outside these campaigns (those with a budget,
    /// as last seen; at most [`MAX_GUARDED_CAMPAIGNS`]). A refusal for that
    /// reason is `NotWritten` with the offer, its `campaignId` telling why.
    NoneOf(&'a [CampaignId]),
    /// The offer's write and its campaign's use of `limits` (1 redemption,
    /// the discount), in one transaction, conditional on the limits as the
    /// campaign's item holds them: `BudgetRefused` when the item does not
    /// allow it.
    Use {
        campaign_id: &'a str,
        limits: &'a RedemptionLimits,
    },
}

/// The most campaigns a redemption's first write keeps out in its
/// condition (DynamoDB's `IN` takes 100 operands); with more, the offer is
/// read first.
pub const MAX_GUARDED_CAMPAIGNS: usize = 99;

/// What a void does about the budget its redemption took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VoidBudget<'a> {
    /// Only a redemption that took nothing from a budget (else `NotWritten`
    /// with the offer, whose record shows what it took).
    Untouched,
    /// The void and the give-back of what the record took, in one
    /// transaction, on condition that the campaign still exists
    /// (`BudgetRefused` when it does not).
    GiveBack {
        campaign_id: &'a str,
        taken: &'a BudgetTaken,
        /// The record's discount (what `discountValue` took).
        discount: &'a serde_json::Number,
    },
    /// The void alone, whatever the record took: its campaign is gone.
    Forfeit,
}

/// Campaigns' redemption budgets as the activity reads them.
pub trait RedemptionBudgets: Send + Sync {
    /// Every campaign with a `redemptions` or `discountValue` limit, by id;
    /// a cache may answer it up to its time to live old.
    fn budgeted(
        &self,
    ) -> impl Future<Output = Result<Arc<HashMap<CampaignId, RedemptionLimits>>, StoreError>> + Send;

    /// One campaign's limits, read now (consistently); `None` without a
    /// definition or without such a limit.
    fn current(
        &self,
        campaign_id: &CampaignId,
    ) -> impl Future<Output = Result<Option<RedemptionLimits>, StoreError>> + Send;
}

/// The result of recording an offer event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventWrite {
    /// Recorded now: the offer's first-seen date and count updated with it.
    Recorded,
    /// This event id was recorded before: nothing changed.
    Duplicate,
    /// The user has no such offer: nothing recorded.
    NoSuchOffer,
}

/// The app's writes at checkout and on display: each one conditional, on
/// the caller's own offer item, so that a retry or a race changes it once.
pub trait ActivityStore: OfferReader {
    /// Adds `redemption` to the user's offer and counts the use, on
    /// condition that the offer still exists, is not revoked, has not seen
    /// this order, has a use left under its `redemptionLimit` and keeps fewer
    /// than `MAX_REDEMPTION_RECORDS` records. `known` is the offer as last
    /// seen: with it, its time window and rules were decided on it (they
    /// cannot race); without it (the first attempt, no read), the condition
    /// also holds the offer active at `redemption.redeemedAt` (conservatively,
    /// to the second) and the order within its `minimumSpend` and
    /// `serviceModes`, so that a write happens only where
    /// `decide_redemption` would allow it.
    fn redeem(
        &self,
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
        known: Option<&PersonalizedOffer>,
        redemption: &Redemption,
        budget: RedeemBudget<'_>,
    ) -> impl Future<Output = Result<ActivityWrite, StoreError>> + Send;

    /// Marks the order's redemption voided and gives its use back, on
    /// condition that it exists and is not voided yet.
    fn void_redemption(
        &self,
        user_id: &UserId,
        personalized_offer_id: PersonalizedOfferId,
        order_id: &OrderId,
        at: DateTime<Utc>,
        budget: VoidBudget<'_>,
    ) -> impl Future<Output = Result<ActivityWrite, StoreError>> + Send;

    /// Records the event once (by its id) together with the offer's
    /// first-seen date and count; kept for deduplication until `ttl` (epoch
    /// seconds).
    fn record_event(
        &self,
        user_id: &UserId,
        event: &OfferEvent,
        ttl: i64,
    ) -> impl Future<Output = Result<EventWrite, StoreError>> + Send;
}

/// One goal of a challenge met by one transaction, as the progress write
/// sets it on the offer item. The write is conditional on the state the
/// step was decided on: the goal still unmet, the transaction not yet
/// counted, the offer not revoked, and (when it completes the challenge)
/// every other goal met and the challenge not completed.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalMet {
    pub user_id: String,
    pub personalized_offer_id: PersonalizedOfferId,
    pub goal: String,
    pub transaction_id: String,
    /// The transaction's key in the challenge's counted transactions.
    pub counted_key: String,
    /// The transaction's `occurredAt`.
    pub met_at: DateTime<Utc>,
    /// Whether the offer read had a counted-transactions map: the write adds
    /// to it, or creates it (conditioned on its absence).
    pub counted_map_exists: bool,
    /// When this is the last goal: the challenge's other goals (each must be
    /// met) and when the reward is granted.
    pub completion: Option<Completion>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub other_goals: Vec<String>,
    pub granted_at: DateTime<Utc>,
}

/// The result of a progress write.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgressWrite {
    Written,
    /// The offer changed since it was read (another transaction met a goal,
    /// this one was counted by another delivery, it was revoked): the offer
    /// as it is now, to decide again; `None` when it is gone.
    Stale(Option<Box<PersonalizedOffer>>),
}

/// A transaction that can never count, kept with its reason.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedTransaction {
    pub rejection_id: Uuid,
    /// The partition it is filed under: the transaction's user when usable.
    pub user_id: String,
    /// The transaction's id, when it has a usable one.
    pub transaction_id: Option<String>,
    pub code: ReasonCode,
    pub message: String,
    pub rejected_at: DateTime<Utc>,
    pub event_id: String,
    pub sequence_number: String,
    /// The stream image as it was (JSON text; the store keeps a bounded prefix).
    pub image: String,
}

/// The challenge progress function's reads and writes.
pub trait ChallengeStore: Send + Sync {
    /// The user's offers that carry a challenge (any status), read strongly
    /// consistently.
    fn challenge_offers(
        &self,
        user_id: &UserId,
    ) -> impl Future<Output = Result<Vec<PersonalizedOffer>, StoreError>> + Send;

    /// Meets one goal, on the conditions [`GoalMet`] describes.
    fn record_goal(
        &self,
        goal: &GoalMet,
    ) -> impl Future<Output = Result<ProgressWrite, StoreError>> + Send;

    /// Stores a rejected transaction unless its id is stored already
    /// (`Written` or `AlreadyWritten`).
    fn reject_transaction(
        &self,
        rejection: &RejectedTransaction,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;
}

/// The idempotency record of one campaign webhook delivery (by the sender's
/// `X-Offers-Delivery`): which body it was, the answer, and whether its rows
/// are all written.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub delivery_id: String,
    /// SHA-256 of the raw body (`domain::webhook::body_fingerprint`).
    pub fingerprint: String,
    pub state: DeliveryState,
    /// The answer decided when the delivery was first claimed.
    pub receipt: WebhookReceipt,
    /// Positions of rows an interrupted attempt is known to have written.
    pub written: BTreeSet<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// A request holds it until `lease_until` (its rows are being written),
    /// or held it and was interrupted.
    InProgress {
        token: Uuid,
        lease_until: DateTime<Utc>,
    },
    /// Every accepted row was written: the receipt is final.
    Done,
}

/// A delivery's use of the signature it came with (contract section 11: a
/// signature is good for one delivery). Named by the MAC, tied to the
/// delivery id: the same delivery may come again with it, no other may.
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureClaim {
    /// The matched `v1`, lower-case hex.
    pub mac_hex: String,
    pub delivery_id: String,
    /// When the claim may be forgotten: a little after the signature's `t`
    /// is out of the tolerance, when it is refused as stale anyway.
    pub expires_at: DateTime<Utc>,
}

/// Whether a signature could be claimed for a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureUse {
    /// Unused before, or used by this same delivery.
    Claimed,
    /// Used by another delivery: nothing was written.
    Reused,
}

/// A request's claim on a delivery id: first come, first served.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryClaim {
    pub delivery_id: String,
    pub fingerprint: String,
    /// Identifies this request's hold; the completion is conditioned on it.
    pub token: Uuid,
    pub receipt: WebhookReceipt,
    pub claimed_at: DateTime<Utc>,
    /// After this, another request of the same delivery may take over.
    pub lease_until: DateTime<Utc>,
    /// When the record may be forgotten (the table's TTL).
    pub expires_at: DateTime<Utc>,
    /// The request's signature, claimed with the delivery (one write).
    pub signature: SignatureClaim,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClaimOutcome {
    /// This request holds the delivery now (and its signature is used).
    Claimed,
    /// Someone else's record, as stored: nothing was written.
    Held(Box<DeliveryRecord>),
    /// The signature was used by another delivery: nothing was written.
    SignatureReused,
}

/// What a batch write of pending rows did, by the rows' positions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowsWritten {
    pub written: BTreeSet<usize>,
    /// Rows DynamoDB refused on their own (permanently): never retried.
    pub refused: Vec<(usize, String)>,
    /// Why the other rows were not written (transient): they may be retried.
    pub failed: Option<StoreError>,
}

/// The campaign webhook's writes: a delivery is claimed with a conditional
/// put before any row is written, so that one delivery writes its rows once.
pub trait WebhookStore: Send + Sync {
    /// Puts the claim and uses its signature, both or neither: unless a
    /// record of the delivery id exists (then returns it) or the signature
    /// was used by another delivery.
    fn claim_delivery(
        &self,
        claim: &DeliveryClaim,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send;

    /// Uses the signature for its delivery (a request of a delivery already
    /// recorded), unless another delivery used it.
    fn claim_signature(
        &self,
        claim: &SignatureClaim,
    ) -> impl Future<Output = Result<SignatureUse, StoreError>> + Send;

    /// Takes over a delivery whose holder `previous` was interrupted: only
    /// if it is still held by `previous`, in progress, and its lease has
    /// passed at `claim.claimed_at`. Keeps the stored receipt.
    fn take_over(
        &self,
        claim: &DeliveryClaim,
        previous: Uuid,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send;

    /// The record, read strongly consistently.
    fn find_delivery(
        &self,
        delivery_id: &str,
    ) -> impl Future<Output = Result<Option<DeliveryRecord>, StoreError>> + Send;

    /// Puts pending rows (position, attributes as plain JSON), in batches.
    fn write_rows(
        &self,
        rows: Vec<(usize, Map<String, Value>)>,
    ) -> impl Future<Output = RowsWritten> + Send;

    /// Marks the delivery done with its final receipt, if `token` still holds it.
    fn complete_delivery(
        &self,
        delivery_id: &str,
        token: Uuid,
        receipt: &WebhookReceipt,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives the delivery up after a failure, recording the rows written so
    /// far, so that a retry may take over at once and skip them.
    fn release_delivery(
        &self,
        delivery_id: &str,
        token: Uuid,
        written: &BTreeSet<usize>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
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

/// A user's behaviour profile as stored, with the version its next write
/// is conditioned on.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredProfile {
    pub user_id: String,
    /// Bumped by every write; 0 is "no profile yet".
    pub version: u64,
    pub profile: crate::domain::profile::Profile,
}

/// One visit counted into a profile: the profile after it, written only if
/// the stored one is still at `expected_version` and the transaction was
/// never counted.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileWrite {
    pub user_id: String,
    pub transaction_id: String,
    /// The version read (0: there was no profile).
    pub expected_version: u64,
    pub profile: crate::domain::profile::Profile,
    /// When it is counted: the transaction's mark is kept from then for
    /// the replay horizon.
    pub counted_at: DateTime<Utc>,
}

/// What became of a [`ProfileWrite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileWriteOutcome {
    Written,
    /// The transaction was counted before (a redelivery): nothing written.
    AlreadyCounted,
    /// Another write changed the profile since it was read: read it again.
    Stale,
}

/// `UserProfilesTable`: one item per user, and each counted transaction's mark.
pub trait ProfileStore: Send + Sync {
    /// The user's profile (strongly consistent), `None` before their first visit.
    fn profile(
        &self,
        user_id: &UserId,
    ) -> impl Future<Output = Result<Option<StoredProfile>, StoreError>> + Send;

    /// Writes the profile and marks the transaction counted, both or neither.
    fn count_visit(
        &self,
        write: &ProfileWrite,
    ) -> impl Future<Output = Result<ProfileWriteOutcome, StoreError>> + Send;
}
