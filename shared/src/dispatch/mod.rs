//! The stream side: pending rows dispatched into offers, exactly once.
//!
//! `input` reads the wire (the Lambda event) into [`StreamInput`]s;
//! [`Dispatcher::apply_batch`] plans each INSERT (`plan`), has the shared
//! runner (`crate::stream::runner`) apply the plans through the
//! [`crate::ports::DispatchStore`] port (`service`), and reports typed
//! outcomes (`report`). `memory` holds in-memory fakes of the ports for
//! unit tests.

mod input;
pub mod memory;
mod plan;
mod report;
mod service;
#[cfg(test)]
mod tests;

pub use crate::stream::runner::Failure;
pub use input::{read_record, InsertRecord, StreamBatch, StreamInput};
pub use report::{
    DispatchKind, DispatchOutcome, DispatchReport, DispatchSummary, Earlier, Outcome, RecordReport,
};
pub use service::{DispatchSettings, Dispatcher, REJECTIONS_MARK_MARGIN};
