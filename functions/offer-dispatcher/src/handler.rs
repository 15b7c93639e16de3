//! The Lambda handler: raw stream event in, partial batch response out.

use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::Utc;
use lambda_runtime::{Error, LambdaEvent};
use offers_shared::dispatch::Dispatcher;
use offers_shared::metrics::dispatch_metrics;
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
    // Metrics as an EMF line of its own on stdout: CloudWatch and Datadog read it from the logs.
    let metrics = dispatch_metrics(&report, &context.env_config.function_name, Utc::now());
    println!("{metrics}");

    let mut response = DynamoDbEventResponse::default();
    for sequence_number in report.failed_sequence_numbers() {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence_number);
        response.batch_item_failures.push(failure);
    }
    Ok(response)
}

/// Lambda's longest timeout: no real invocation's deadline is further past.
const MAX_FUNCTION_TIMEOUT: Duration = Duration::from_secs(900);

/// The invocation deadline (epoch milliseconds) as an `Instant`; none when
/// the context has none (a direct call with `Context::default()`), or when
/// it is further in the past than any Lambda invocation can be: emulators
/// such as `cargo lambda watch` send a relative value (600000) where Lambda
/// sends epoch milliseconds, and every record would fail as out of time.
fn invocation_deadline(deadline_ms: u64) -> Option<Instant> {
    if deadline_ms == 0 {
        return None;
    }
    let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let now = SystemTime::now();
    if now
        .duration_since(deadline)
        .is_ok_and(|past| past > MAX_FUNCTION_TIMEOUT)
    {
        tracing::warn!(
            deadline_ms,
            "the invocation deadline is not a Lambda deadline; running without a deadline guard"
        );
        return None;
    }
    let left = deadline.duration_since(now).unwrap_or(Duration::ZERO);
    Some(Instant::now() + left)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch_ms(at: SystemTime) -> u64 {
        at.duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default()
    }

    #[test]
    fn deadlines_as_lambda_gives_them_and_values_it_never_gives() {
        assert_eq!(invocation_deadline(0), None);
        // cargo lambda watch's constant: 600 s after the epoch.
        assert_eq!(invocation_deadline(600_000), None);
        let in_a_minute =
            invocation_deadline(epoch_ms(SystemTime::now() + Duration::from_secs(60)))
                .expect("a deadline");
        let left = in_a_minute.saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(58) && left <= Duration::from_secs(60),
            "{left:?}"
        );
        // Just past: a real deadline with no time left.
        let past = invocation_deadline(epoch_ms(SystemTime::now() - Duration::from_secs(1)))
            .expect("a deadline");
        assert!(past <= Instant::now());
    }
}
