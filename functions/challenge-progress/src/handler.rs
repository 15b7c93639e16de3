//! The Lambda handler: raw stream event in, partial batch response out.

use crate::records::TransactionBatch;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use chrono::Utc;
use lambda_runtime::{Error, LambdaEvent};
use offers_shared::challenge_progress::ChallengeProgress;
use offers_shared::deadline::invocation_deadline;
use offers_shared::metrics::{challenge_metrics, MetricsSink};
use offers_shared::ports::ChallengeStore;
use offers_shared::stream::runner::partial_batch_response;
use offers_shared::stream::Batch;
use serde_json::Value;

/// Handles one DynamoDB stream event of the transactions table. Each record
/// is read on its own, so one bad record never fails the batch; transient
/// failures are reported by sequence number in `batchItemFailures`.
pub async fn handle<S: ChallengeStore>(
    progress: &ChallengeProgress<S>,
    metrics: &dyn MetricsSink,
    event: LambdaEvent<Value>,
) -> Result<DynamoDbEventResponse, Error> {
    let (payload, context) = event.into_parts();
    let Batch(records) = TransactionBatch::try_from(payload)?;
    let report = progress
        .apply_batch(records, invocation_deadline(context.deadline))
        .await;
    // Before the response: the set must be out before Lambda may freeze the process.
    metrics.emit(&challenge_metrics(&report, Utc::now()));

    Ok(partial_batch_response(&report))
}
