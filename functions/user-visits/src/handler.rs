//! The Lambda handler: raw stream event in, partial batch response out.

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use chrono::Utc;
use lambda_runtime::{Error, LambdaEvent};
use offers_shared::always_on::{AlwaysOnChooser, AlwaysOnStore};
use offers_shared::deadline::invocation_deadline;
use offers_shared::metrics::MetricsSink;
use offers_shared::ports::{CatalogReader, ProfileStore, SelectionStatsReader};
use offers_shared::profiles::{visit_metrics, UserVisits};
use offers_shared::stream::runner::partial_batch_response;
use offers_shared::stream::transactions::TransactionBatch;
use offers_shared::stream::Batch;
use serde_json::Value;

/// Handles one DynamoDB stream event of the transactions table. Each record
/// is read on its own, so one bad record never fails the batch; transient
/// failures are reported by sequence number in `batchItemFailures`.
pub async fn handle<S, A, T, C>(
    visits: &UserVisits<S, AlwaysOnChooser<A, T, C>>,
    metrics: &dyn MetricsSink,
    event: LambdaEvent<Value>,
) -> Result<DynamoDbEventResponse, Error>
where
    S: ProfileStore,
    A: AlwaysOnStore,
    T: SelectionStatsReader,
    C: CatalogReader,
{
    let (payload, context) = event.into_parts();
    let Batch(records) = TransactionBatch::try_from(payload)?;
    let report = visits
        .apply_batch(records, invocation_deadline(context.deadline))
        .await;
    // Before the response: the set must be out before Lambda may freeze the process.
    let now = Utc::now();
    metrics.emit(&visit_metrics(&report, now));
    metrics.emit(&visits.after().take_metrics(now));
    Ok(partial_batch_response(&report))
}
