//! The edge: the Lambda event for the loyalty offers table's stream, read
//! record by record into the statistics service's typed input (the reader
//! lives beside that input: `offers_shared::campaign_stats`).

pub use offers_shared::campaign_stats::{read_record, StatsBatch};
pub use offers_shared::stream::EventError;
