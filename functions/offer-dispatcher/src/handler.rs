//! The Lambda handler: raw stream event in, partial batch response out.

use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::{Error, LambdaEvent};
use offers_shared::dispatch::Dispatcher;
use offers_shared::ports::{CatalogReader, DispatchStore};
use serde_json::Value;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// Handles one DynamoDB stream event.
///
/// The event is taken as raw JSON and each record read on its own, so that
/// one bad record never fails the batch. Transient failures are reported by
/// sequence number in `batchItemFailures`; the handler itself only errors on
/// an event that is not a stream event at all.
pub async fn handle<S: DispatchStore, C: CatalogReader>(
    dispatcher: &Dispatcher<S, C>,
    event: LambdaEvent<Value>,
) -> Result<DynamoDbEventResponse, Error> {
    let (payload, context) = event.into_parts();
    let records = match payload {
        Value::Object(mut event) => match event.remove("Records") {
            Some(Value::Array(records)) => records,
            Some(Value::Null) | None => Vec::new(),
            Some(_) => return Err("event.Records is not a list".into()),
        },
        _ => return Err("event is not a JSON object".into()),
    };
    let report = dispatcher
        .dispatch_batch(records, invocation_deadline(context.deadline))
        .await;

    let mut response = DynamoDbEventResponse::default();
    for sequence_number in report.failed_sequence_numbers() {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence_number);
        response.batch_item_failures.push(failure);
    }
    Ok(response)
}

/// The invocation deadline (epoch milliseconds) as an `Instant`; none when
/// the context has none (a direct call with `Context::default()`).
fn invocation_deadline(deadline_ms: u64) -> Option<Instant> {
    if deadline_ms == 0 {
        return None;
    }
    let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let left = deadline
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Some(Instant::now() + left)
}
