//! The Lambda handler: one batch of the map (`{"Items": [...], "BatchInput":
//! {...}}`) in, the chunk's report out. A batch that cannot be planned, or
//! whose writing stopped, is a function error: the map's Retry runs the
//! chunk again, which writes the same rows.

use crate::config::PlanChunkConfig;
use lambda_runtime::{Error, LambdaEvent};
use offers_shared::dynamo::batch_write::{Backoff, BatchPut};
use offers_shared::plan::chunk::{plan_chunk, ChunkError, ChunkEvent, ChunkReport};
use serde_json::Value;

pub async fn handle<W: BatchPut>(
    pending: &W,
    config: &PlanChunkConfig,
    event: LambdaEvent<Value>,
) -> Result<ChunkReport, Error> {
    let (payload, _context) = event.into_parts();
    let event: ChunkEvent = serde_json::from_value(payload)
        .map_err(|err| ChunkError::InvalidBatch(format!("not a batch of the plan's map: {err}")))?;
    let items = event.items.len();
    match plan_chunk(
        pending,
        event,
        &Backoff::default(),
        config.write_concurrency,
    )
    .await
    {
        Ok(report) => {
            tracing::info!(
                items,
                users = report.users,
                rows_written = report.written,
                malformed = report.malformed_count,
                "chunk planned"
            );
            Ok(report)
        }
        Err(err) => {
            tracing::error!(items, error = %err, "chunk not planned");
            Err(err.into())
        }
    }
}
