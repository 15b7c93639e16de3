//! The Lambda handler: raw stream event in, partial batch response out.

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use chrono::Utc;
use lambda_runtime::{Error, LambdaEvent};
use offers_shared::deadline::invocation_deadline;
use offers_shared::metrics::MetricsSink;
use offers_shared::ports::ProfileStore;
use offers_shared::profiles::{visit_metrics, UserVisits};
use offers_shared::stream::runner::partial_batch_response;
use offers_shared::stream::transactions::TransactionBatch;
use serde_json::Value;

/// Handles one DynamoDB stream event of the transactions table. Each record
/// is read on its own, so one bad record never fails the batch; transient
/// failures are reported by sequence number in `batchItemFailures`.
pub async fn handle<S: ProfileStore>(
    visits: &UserVisits<S>,
    metrics: &dyn MetricsSink,
    event: LambdaEvent<Value>,
) -> Result<DynamoDbEventResponse, Error> {
    let (payload, context) = event.into_parts();
    let TransactionBatch(records) = TransactionBatch::try_from(payload)?;
    let report = visits
        .process_batch(records, invocation_deadline(context.deadline))
        .await;
    // Before the response: the set must be out before Lambda may freeze the process.
    metrics.emit(&visit_metrics(&report, Utc::now()));
    Ok(partial_batch_response(report.failed_sequence_numbers()))
}
