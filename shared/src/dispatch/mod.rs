//! The stream side: reading records and dispatching pending rows.

pub mod record;
pub mod service;

pub use record::{read_record, InsertRecord, StreamInput};
pub use service::{BatchReport, DispatchSettings, Dispatcher, Earlier, Outcome, RecordReport};
