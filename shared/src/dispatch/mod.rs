//! The stream side: pending rows dispatched into offers, exactly once.
//!
//! The function's handler reads the wire (the Lambda event) into
//! [`StreamInput`]s; [`Dispatcher::dispatch_batch`] plans each INSERT
//! (`plan`), applies the plans through the [`crate::ports::DispatchStore`]
//! port (`service`), and reports typed outcomes (`report`). `memory` holds
//! in-memory fakes of the ports for unit tests.

mod input;
pub mod memory;
mod plan;
mod report;
mod service;
#[cfg(test)]
mod tests;

pub use input::{IgnoredReason, InsertRecord, StreamInput};
pub use report::{BatchReport, Earlier, Failure, Outcome, OutcomeKind, RecordReport};
pub use service::{DispatchSettings, Dispatcher};
