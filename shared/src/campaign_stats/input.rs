//! The statistics function's typed input: one record of the loyalty offers
//! table's stream, read from the wire by the function's edge
//! (`functions/campaign-stats/src/records.rs`). Images stay in DynamoDB's wire
//! JSON (`{"N": "12.10"}`), so that amounts keep their exact text.

use crate::dispatch::IgnoredReason;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// One record of a stream batch.
#[derive(Debug, Clone, PartialEq)]
pub enum StatsInput {
    /// An INSERT (no old image) or a MODIFY.
    Change(Box<ChangeRecord>),
    /// REMOVE (an offer's TTL, never counted down), unknown event names.
    Ignored {
        event_id: Option<String>,
        sequence_number: Option<String>,
        reason: IgnoredReason,
    },
    /// An INSERT or MODIFY without what is needed to act on it (event id,
    /// sequence number, a new image).
    Unusable {
        event_id: Option<String>,
        sequence_number: Option<String>,
        error: String,
    },
}

/// An INSERT or MODIFY of an offer item.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    pub event_id: String,
    pub sequence_number: String,
    /// When the record was written to the stream, if the record says.
    pub created_at: Option<DateTime<Utc>>,
    /// `None` for an INSERT.
    pub old_image: Option<Map<String, Value>>,
    pub new_image: Map<String, Value>,
}
