//! The Lambda handler: raw stream event in, partial batch response out.

use crate::records::StatsBatch;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use chrono::Utc;
use lambda_runtime::{Error, LambdaEvent};
use offers_shared::campaign_stats::StatsService;
use offers_shared::deadline::invocation_deadline;
use offers_shared::metrics::{stats_metrics, MetricsSink};
use offers_shared::ports::{CampaignBudgetsReader, CampaignStatsStore};
use offers_shared::stream::runner::partial_batch_response;
use offers_shared::stream::Batch;
use serde_json::Value;

/// Handles one stream event of the loyalty offers table. Each record is read
/// on its own (one bad record never fails the batch); transient failures are
/// reported by sequence number in `batchItemFailures`.
pub async fn handle<S: CampaignStatsStore + CampaignBudgetsReader>(
    stats: &StatsService<S>,
    metrics: &dyn MetricsSink,
    event: LambdaEvent<Value>,
) -> Result<DynamoDbEventResponse, Error> {
    let (payload, context) = event.into_parts();
    let Batch(records) = StatsBatch::try_from(payload)?;
    let report = stats
        .apply_batch(records, invocation_deadline(context.deadline))
        .await;
    // Before the response: the set must be out before Lambda may freeze the process.
    metrics.emit(&stats_metrics(&report, Utc::now()));
    Ok(partial_batch_response(&report))
}
