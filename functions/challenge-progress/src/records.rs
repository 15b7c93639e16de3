//! The edge: the Lambda event for the transactions table's stream, read
//! record by record into the service's typed input (shared with every
//! function on that stream: `offers_shared::stream::transactions`).

pub use offers_shared::stream::transactions::{read_record, TransactionBatch};
pub use offers_shared::stream::EventError;
