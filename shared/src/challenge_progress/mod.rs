//! The transactions stream: each transaction advances its user's active
//! challenges, exactly once per (transaction, challenge) (contract section 8).
//!
//! The stream's edge (`crate::stream::transactions`) reads the Lambda event
//! into [`TransactionInput`]s; the shared runner (`crate::stream::runner`)
//! runs the batch; [`ChallengeProgress`] decides
//! each step with the pure `offers_domain::progress` and applies it through
//! the [`crate::ports::ChallengeStore`] port; `memory` is the in-memory fake
//! of that port for unit tests. Design: docs/design.md, "Frequency challenges".

pub mod memory;
mod report;
mod service;
#[cfg(test)]
mod tests;

pub use crate::stream::transactions::{TransactionInput, TransactionRecord, NO_USER_PARTITION};
pub use report::{goals_and_completions, ProgressKind, ProgressOutcome, ProgressReport};
pub use service::{ChallengeProgress, ProgressSettings};
