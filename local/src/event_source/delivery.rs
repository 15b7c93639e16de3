//! The delivery of one batch to the function, with AWS's semantics: partial
//! batch responses, bounded retries, bisect on function error, maximum record
//! age; and the message for the on-failure destination of what exhausts them.

use crate::error::BedError;
use crate::invoke::Invoke;
use crate::streams::lambda_event;
use crate::template::StreamMappingSettings;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why a batch went to the on-failure destination (AWS's `condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCondition {
    RetryAttemptsExhausted,
    RecordAgeExceeded,
}

impl FailureCondition {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCondition::RetryAttemptsExhausted => "RetryAttemptsExhausted",
            FailureCondition::RecordAgeExceeded => "RecordAgeExceeded",
        }
    }
}

/// Records given up on, for the on-failure destination.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedBatch {
    pub records: Vec<Value>,
    pub condition: FailureCondition,
    /// Invocations made with (part of) this batch.
    pub invocations: u32,
    /// The last function error, if the last invocation errored.
    pub function_error: Option<String>,
}

/// What the delivery of one batch came to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivery {
    pub invocations: u32,
    pub failed: Vec<FailedBatch>,
}

/// The pause before retry `attempt` (1, 2, ...): doubling from 100 ms, at most 2 s.
pub fn retry_pause(attempt: u32) -> Duration {
    let doublings = attempt.clamp(1, 6) - 1;
    Duration::from_millis(100 << doublings).min(Duration::from_secs(2))
}

/// Whether a record passes the mapping's filter.
pub fn passes_filter(settings: &StreamMappingSettings, record: &Value) -> bool {
    match &settings.event_names {
        None => true,
        Some(names) => record["eventName"]
            .as_str()
            .is_some_and(|name| names.iter().any(|allowed| allowed == name)),
    }
}

/// Delivers one batch (records already filtered, in shard order) until it
/// succeeds or is given up on, as AWS does:
///
/// - a response with `batchItemFailures` retries from the lowest failed
///   sequence number (what came before it is done); an identifier that is
///   not in the batch fails the whole batch;
/// - a function error splits the batch in two when bisecting is on (the
///   halves run in order, and a split does not count as a retry), else
///   retries it whole;
/// - after `maximum_retry_attempts` retries, or once records are older than
///   `maximum_record_age`, the rest goes to the on-failure destination.
pub async fn deliver<I: Invoke>(
    settings: &StreamMappingSettings,
    invoker: &I,
    records: Vec<Value>,
    pause: impl Fn(u32) -> Duration,
) -> Delivery {
    let mut delivery = Delivery::default();
    // Each piece keeps its own retry count and invocation count.
    let mut pieces: VecDeque<(Vec<Value>, u32, u32)> = VecDeque::from([(records, 0, 0)]);
    while let Some((mut batch, mut retries, mut invocations)) = pieces.pop_front() {
        loop {
            let (too_old, fresh): (Vec<Value>, Vec<Value>) = batch
                .into_iter()
                .partition(|record| record_age(record) > settings.maximum_record_age);
            if !too_old.is_empty() {
                delivery.failed.push(FailedBatch {
                    records: too_old,
                    condition: FailureCondition::RecordAgeExceeded,
                    invocations,
                    function_error: None,
                });
            }
            batch = fresh;
            if batch.is_empty() {
                break;
            }
            invocations += 1;
            delivery.invocations += 1;
            let error = match invoker.invoke(lambda_event(&batch)).await {
                Ok(response) => match retry_from(settings, &batch, &response) {
                    None => break,
                    Some(position) => {
                        batch.drain(..position);
                        None
                    }
                },
                Err(error) => {
                    if settings.bisect_batch_on_function_error && batch.len() > 1 {
                        let second = batch.split_off(batch.len() / 2);
                        pieces.push_front((second, retries, invocations));
                        pieces.push_front((batch, retries, invocations));
                        break;
                    }
                    Some(error.to_string())
                }
            };
            retries += 1;
            if retries > settings.maximum_retry_attempts {
                delivery.failed.push(FailedBatch {
                    records: batch,
                    condition: FailureCondition::RetryAttemptsExhausted,
                    invocations,
                    function_error: error,
                });
                break;
            }
            tokio::time::sleep(pause(retries)).await;
        }
    }
    delivery
}

/// Where a partial batch response says to resume: `None` when everything
/// succeeded, else the index of the lowest failed record (0 when the
/// response cannot be read or names a record not in the batch).
fn retry_from(
    settings: &StreamMappingSettings,
    batch: &[Value],
    response: &Value,
) -> Option<usize> {
    if !settings.report_batch_item_failures {
        return None;
    }
    let failures = match response.get("batchItemFailures") {
        None | Some(Value::Null) => return None,
        Some(Value::Array(failures)) if failures.is_empty() => return None,
        Some(Value::Array(failures)) => failures,
        Some(_) => return Some(0),
    };
    let mut lowest: Option<usize> = None;
    for failure in failures {
        let position = failure["itemIdentifier"].as_str().and_then(|id| {
            batch
                .iter()
                .position(|record| sequence_number(record) == Some(id))
        });
        match position {
            Some(position) => lowest = Some(lowest.map_or(position, |low| low.min(position))),
            None => return Some(0),
        }
    }
    lowest
}

pub(super) fn sequence_number(record: &Value) -> Option<&str> {
    record["dynamodb"]["SequenceNumber"].as_str()
}

fn created_at_seconds(record: &Value) -> Option<f64> {
    record["dynamodb"]["ApproximateCreationDateTime"].as_f64()
}

fn record_age(record: &Value) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    created_at_seconds(record)
        .map(|created| Duration::from_secs_f64((now - created).max(0.0)))
        .unwrap_or_default()
}

/// The message Lambda sends to an on-failure destination for a stream batch.
pub fn on_failure_message(
    failed: &FailedBatch,
    function_name: &str,
    shard_id: &str,
    stream_arn: &str,
) -> Value {
    let timestamp = |seconds: Option<f64>| {
        seconds
            .and_then(|s| chrono::DateTime::from_timestamp(s as i64, 0))
            .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    let first = failed.records.first();
    let last = failed.records.last();
    json!({
        "requestContext": {
            "requestId": uuid::Uuid::new_v4().to_string(),
            "functionArn": format!("arn:aws:lambda:ddblocal:000000000000:function:{function_name}"),
            "condition": failed.condition.as_str(),
            "approximateInvokeCount": failed.invocations,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": failed.function_error.as_ref().map(|_| "Unhandled"),
        },
        "version": "1.0",
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": first.and_then(sequence_number),
            "endSequenceNumber": last.and_then(sequence_number),
            "approximateArrivalOfFirstRecord": timestamp(first.and_then(created_at_seconds)),
            "approximateArrivalOfLastRecord": timestamp(last.and_then(created_at_seconds)),
            "batchSize": failed.records.len(),
            "streamArn": stream_arn,
        }
    })
}

/// Where failed batches go.
pub trait OnFailure: Send + Sync {
    fn send(
        &self,
        failed: &FailedBatch,
        message: Value,
    ) -> impl Future<Output = Result<(), BedError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::InvokeError;
    use std::sync::Mutex;

    fn settings() -> StreamMappingSettings {
        StreamMappingSettings {
            table: "T".into(),
            batch_size: 100,
            batching_window: Duration::ZERO,
            maximum_retry_attempts: 2,
            maximum_record_age: Duration::from_secs(3_600),
            bisect_batch_on_function_error: true,
            report_batch_item_failures: true,
            event_names: Some(vec!["INSERT".into()]),
            parallelization_factor: 1,
            partition_key: "userId".into(),
        }
    }

    fn record(sequence: u32) -> Value {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        json!({"eventName": "INSERT", "dynamodb": {
            "SequenceNumber": format!("{sequence:021}"), "ApproximateCreationDateTime": now}})
    }

    fn sequences(records: &[Value]) -> Vec<u32> {
        records
            .iter()
            .filter_map(sequence_number)
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    /// The failed sequence numbers of a batch, or a function error.
    type Script = Box<dyn Fn(&[u32]) -> Result<Vec<u32>, String> + Send + Sync>;

    /// Answers each invocation from a script and records the batches it saw.
    struct Scripted {
        answer: Script,
        seen: Mutex<Vec<Vec<u32>>>,
    }

    impl Invoke for Scripted {
        async fn invoke(&self, event: Value) -> Result<Value, InvokeError> {
            let batch = sequences(
                event["Records"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[]),
            );
            self.seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(batch.clone());
            // A scripted error is the function's.
            let failures =
                (self.answer)(&batch).map_err(|err| InvokeError::Function(err.into()))?;
            Ok(json!({"batchItemFailures": failures.iter()
                .map(|s| json!({"itemIdentifier": format!("{s:021}")})).collect::<Vec<_>>()}))
        }
    }

    fn scripted(
        answer: impl Fn(&[u32]) -> Result<Vec<u32>, String> + Send + Sync + 'static,
    ) -> Scripted {
        Scripted {
            answer: Box::new(answer),
            seen: Mutex::new(Vec::new()),
        }
    }

    fn seen(invoker: &Scripted) -> Vec<Vec<u32>> {
        invoker
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn run(invoker: &Scripted, settings: &StreamMappingSettings, count: u32) -> Delivery {
        deliver(settings, invoker, (1..=count).map(record).collect(), |_| {
            Duration::ZERO
        })
        .await
    }

    #[tokio::test]
    async fn a_partial_failure_retries_from_the_lowest_failed_record() {
        let calls = Mutex::new(0);
        let invoker = scripted(move |_| {
            let mut calls = calls.lock().unwrap_or_else(|e| e.into_inner());
            *calls += 1;
            Ok(if *calls == 1 { vec![4, 3] } else { vec![] })
        });
        let delivery = run(&invoker, &settings(), 5).await;
        assert_eq!(seen(&invoker), vec![vec![1, 2, 3, 4, 5], vec![3, 4, 5]]);
        assert!(delivery.failed.is_empty());
    }

    #[tokio::test]
    async fn a_record_that_always_fails_ends_in_the_on_failure_destination() {
        let invoker = scripted(|batch| Ok(batch.iter().copied().filter(|s| *s == 2).collect()));
        let delivery = run(&invoker, &settings(), 3).await;
        // The first try and two retries, each from record 2.
        assert_eq!(seen(&invoker), vec![vec![1, 2, 3], vec![2, 3], vec![2, 3]]);
        assert_eq!(delivery.failed.len(), 1);
        assert_eq!(sequences(&delivery.failed[0].records), vec![2, 3]);
        assert_eq!(
            delivery.failed[0].condition,
            FailureCondition::RetryAttemptsExhausted
        );
        assert_eq!(delivery.failed[0].invocations, 3);
    }

    #[tokio::test]
    async fn a_function_error_bisects_the_batch_down_to_the_bad_record() {
        let invoker = scripted(|batch| {
            if batch.contains(&3) {
                Err("crash".into())
            } else {
                Ok(vec![])
            }
        });
        let delivery = run(&invoker, &settings(), 4).await;
        assert_eq!(
            seen(&invoker),
            vec![
                vec![1, 2, 3, 4],
                vec![1, 2],
                vec![3, 4],
                vec![3],
                vec![3],
                vec![3],
                vec![4]
            ]
        );
        assert_eq!(delivery.failed.len(), 1);
        assert_eq!(sequences(&delivery.failed[0].records), vec![3]);
        assert_eq!(delivery.failed[0].function_error.as_deref(), Some("crash"));
        let message = on_failure_message(&delivery.failed[0], "F", "shard-1", "arn:stream");
        assert_eq!(message["DDBStreamBatchInfo"]["batchSize"], 1);
        assert_eq!(
            message["requestContext"]["condition"],
            "RetryAttemptsExhausted"
        );
        assert_eq!(message["responseContext"]["functionError"], "Unhandled");
    }

    #[tokio::test]
    async fn without_bisect_an_error_retries_the_whole_batch() {
        let invoker = scripted(|_| Err("down".into()));
        let mut settings = settings();
        settings.bisect_batch_on_function_error = false;
        let delivery = run(&invoker, &settings, 2).await;
        assert_eq!(seen(&invoker), vec![vec![1, 2]; 3]);
        assert_eq!(sequences(&delivery.failed[0].records), vec![1, 2]);
    }

    #[tokio::test]
    async fn an_unknown_item_identifier_fails_the_whole_batch() {
        let calls = Mutex::new(0);
        let invoker = scripted(move |_| {
            let mut calls = calls.lock().unwrap_or_else(|e| e.into_inner());
            *calls += 1;
            Ok(if *calls == 1 { vec![99] } else { vec![] })
        });
        run(&invoker, &settings(), 2).await;
        assert_eq!(seen(&invoker), vec![vec![1, 2], vec![1, 2]]);
    }

    #[tokio::test]
    async fn records_past_their_maximum_age_are_not_delivered() {
        let invoker = scripted(|_| Ok(vec![]));
        let mut old = record(1);
        old["dynamodb"]["ApproximateCreationDateTime"] = json!(1_000);
        let delivery = deliver(&settings(), &invoker, vec![old, record(2)], |_| {
            Duration::ZERO
        })
        .await;
        assert_eq!(seen(&invoker), vec![vec![2]]);
        assert_eq!(
            delivery.failed[0].condition,
            FailureCondition::RecordAgeExceeded
        );
    }

    #[test]
    fn the_filter_and_the_pauses() {
        let settings = settings();
        assert!(passes_filter(&settings, &record(1)));
        assert!(!passes_filter(&settings, &json!({"eventName": "MODIFY"})));
        assert!(!passes_filter(&settings, &json!({})));
        assert_eq!(retry_pause(1), Duration::from_millis(100));
        assert_eq!(retry_pause(2), Duration::from_millis(200));
        assert_eq!(retry_pause(5), Duration::from_millis(1600));
        assert_eq!(retry_pause(30), Duration::from_secs(2));
    }
}
