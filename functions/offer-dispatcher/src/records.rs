//! The edge: the Lambda event for the pending rows' stream, read record by
//! record into the dispatcher's typed input (the reader lives beside that
//! input: `offers_shared::dispatch`).

pub use offers_shared::dispatch::{read_record, StreamBatch};
pub use offers_shared::stream::EventError;
