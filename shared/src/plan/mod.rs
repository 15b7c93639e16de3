//! Planning a campaign (contract section 12): the plan file, the audience's
//! users, and the one engine and row writer that both the CLI's in-process
//! plan (`offers campaign plan --audience FILE`) and the plan-chunk function
//! of the distributed plan (Step Functions Distributed Map) run, so that a
//! plan writes the same rows however it is run and however it is chunked:
//! each user's draws and holdout are seeded by (plan seed, userId) alone.

pub mod audience;
pub mod chunk;
mod file;
pub mod rows;

pub use file::*;

use crate::domain::selection::{History, LearningCounter, SelectionError};

/// The history the engine chooses from: the counters of the pool's offers,
/// each day's discounted by its age on `today` (a UTC day) under the plan's
/// half-life; undated (all-time) counters, kept before counters were dated,
/// as one bucket of the day before the offer's oldest dated one.
pub fn history_of(
    plan: &Plan,
    counters: &[LearningCounter],
    today: u32,
) -> Result<History, SelectionError> {
    History::discounted(plan.offer_ids(), counters, today, plan.config.half_life)
}
