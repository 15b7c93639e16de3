//! Domain types and pure functions: parse, validate, merge. No AWS here.

pub mod assignment;
pub mod canonical;
pub mod catalog;
pub mod challenge;
pub mod dates;
pub mod limits;
pub mod offer;
#[cfg(test)]
mod properties;
pub mod rejection;
pub mod rules;
pub mod selection;

pub use assignment::{parse_pending_row, parse_support_request, Assignment, AssignmentSource};
pub use catalog::{CatalogEntry, ConfigOffer, OfferTemplate, RuleDeclaration, RuleType};
pub use challenge::Challenge;
pub use offer::{
    build_offer, resolve_catalog, AuditEntry, IdempotencyStamp, OfferSource, OfferStatus,
    PersonalizedOffer,
};
pub use rejection::{ReasonCode, Rejection};
pub use rules::Rules;
