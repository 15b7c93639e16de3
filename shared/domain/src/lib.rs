//! Domain types and pure functions: parse, validate, merge. No AWS here.

pub mod always_on;
pub mod amount;
pub mod assignment;
pub mod assignment_ids;
pub mod behaviour_world;
pub mod campaign;
pub mod campaign_stats;
pub mod canonical;
pub mod catalog;
pub mod challenge;
pub mod dates;
pub mod ids;
pub mod limits;
pub mod offer;
pub mod offer_event;
pub mod profile;
pub mod progress;
#[cfg(test)]
mod properties;
pub mod redeem;
pub mod redemption;
pub mod rejection;
pub mod retry;
pub mod rules;
pub mod selection;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod transaction;
pub mod webhook;

pub use assignment::{
    assignment_offer_id, parse_pending_row, parse_support_request, read_assignment_id, Assignment,
    AssignmentSource, SupportRequest,
};
pub use catalog::{CatalogEntry, ConfigOffer, OfferTemplate, RuleDeclaration, RuleType};
pub use challenge::Challenge;
pub use ids::{CampaignId, InvalidId, OfferId, OrderId, PersonalizedOfferId, UserId};
pub use offer::{
    build_offer, resolve_catalog, AuditEntry, IdempotencyStamp, OfferSource, OfferStatus,
    PersonalizedOffer,
};
pub use offer_event::{parse_offer_event, OfferEvent, OfferEventRequest, OfferEventType};
pub use redeem::{decide_redemption, RedeemDecision, RedeemRefusal};
pub use redemption::{parse_redemption_request, BudgetTaken, Redemption, RedemptionRequest};
pub use rejection::{ReasonCode, Rejection};
pub use rules::Rules;
pub use transaction::{parse_transaction, Transaction};
