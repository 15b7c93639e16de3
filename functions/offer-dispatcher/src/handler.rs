//! The Lambda handler: raw stream event in, partial batch response out.

use crate::records::StreamBatch;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use chrono::Utc;
use lambda_runtime::{Error, LambdaEvent};
use offers_shared::deadline::invocation_deadline;
use offers_shared::dispatch::Dispatcher;
use offers_shared::metrics::{dispatch_metrics, MetricsSink};
use offers_shared::ports::{CatalogReader, DispatchStore, OffersBudgets};
use offers_shared::stream::runner::partial_batch_response;
use offers_shared::stream::Batch;
use serde_json::Value;

/// Handles one DynamoDB stream event.
///
/// The event is taken as raw JSON and each record read on its own, so that
/// one bad record never fails the batch. Transient failures are reported by
/// sequence number in `batchItemFailures`; the handler itself only errors on
/// an event that is not a stream event at all.
pub async fn handle<S: DispatchStore, C: CatalogReader, B: OffersBudgets>(
    dispatcher: &Dispatcher<S, C, B>,
    metrics: &dyn MetricsSink,
    event: LambdaEvent<Value>,
) -> Result<DynamoDbEventResponse, Error> {
    let (payload, context) = event.into_parts();
    let Batch(records) = StreamBatch::try_from(payload)?;
    let report = dispatcher
        .apply_batch(records, invocation_deadline(context.deadline))
        .await;
    // Before the response: the set must be out before Lambda may freeze the process.
    metrics.emit(&dispatch_metrics(&report, Utc::now()));
    Ok(partial_batch_response(&report))
}
