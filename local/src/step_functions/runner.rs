//! Runs a state machine's definition state by state: `Pass`, `Task` (the
//! optimized integrations `dynamodb:getItem` and `lambda:invoke`, with
//! `Retry`), `Map` in `DISTRIBUTED` mode (an S3 `ItemReader` of JSON Lines,
//! `ItemSelector`, `ItemBatcher`, `MaxConcurrency`, `ToleratedFailurePercentage`,
//! a `ResultWriter` to S3 laid out as Step Functions lays it out), `Succeed`
//! and `Fail`. Functions are invoked as Step Functions invokes them: the
//! payload is the batch, the function's response the task's `Payload`.

use super::paths::{apply_template, filter, place_result, select};
use crate::InvokeError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the stand-in reaches the functions a definition invokes, by ARN.
pub trait Lambdas: Send + Sync {
    fn invoke(
        &self,
        function_arn: &str,
        payload: Value,
    ) -> impl Future<Output = Result<Value, InvokeError>> + Send;
}

/// Shared, e.g. with a test that looks at what was invoked.
impl<L: Lambdas> Lambdas for Arc<L> {
    fn invoke(
        &self,
        function_arn: &str,
        payload: Value,
    ) -> impl Future<Output = Result<Value, InvokeError>> + Send {
        L::invoke(self, function_arn, payload)
    }
}

/// What a definition's states call.
pub struct Services<L> {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub lambdas: L,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
        }
    }
}

/// A map run's counts, of items and of child executions (batches).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapRunCounts {
    pub total: u64,
    pub pending: u64,
    pub running: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub results_written: u64,
}

#[derive(Debug, Clone)]
pub struct MapRun {
    pub arn: String,
    pub started: DateTime<Utc>,
    pub stopped: Option<DateTime<Utc>>,
    pub status: ExecutionStatus,
    pub max_concurrency: u64,
    pub tolerated_failure_percentage: f64,
    pub items: MapRunCounts,
    pub executions: MapRunCounts,
}

/// An execution as DescribeExecution and the map run calls tell it.
#[derive(Debug, Clone)]
pub struct Execution {
    pub arn: String,
    pub state_machine_arn: String,
    pub input: Value,
    pub started: DateTime<Utc>,
    pub stopped: Option<DateTime<Utc>>,
    pub status: ExecutionStatus,
    pub output: Option<Value>,
    /// Error and cause of a failed execution.
    pub failure: Option<(String, String)>,
    pub map_runs: Vec<MapRun>,
}

impl Execution {
    pub fn new(arn: String, state_machine_arn: String, input: Value) -> Self {
        Self {
            arn,
            state_machine_arn,
            input,
            started: Utc::now(),
            stopped: None,
            status: ExecutionStatus::Running,
            output: None,
            failure: None,
            map_runs: Vec::new(),
        }
    }
}

/// A state's failure: Step Functions' error name and its cause.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub error: String,
    pub cause: String,
}

fn failure(error: &str, cause: impl Into<String>) -> Failure {
    Failure {
        error: error.to_owned(),
        cause: cause.into(),
    }
}

fn runtime(cause: impl std::fmt::Display) -> Failure {
    failure("States.Runtime", cause.to_string())
}

type Step<'a> = Pin<Box<dyn Future<Output = Result<Value, Failure>> + Send + 'a>>;

/// Runs an execution to its end, recording it in `execution`.
pub async fn run_execution<L: Lambdas>(
    definition: &Value,
    services: &Services<L>,
    execution: &Arc<Mutex<Execution>>,
) {
    let input = execution
        .lock()
        .map(|e| e.input.clone())
        .unwrap_or(Value::Null);
    let result = run_states(definition, input, services, execution).await;
    if let Ok(mut execution) = execution.lock() {
        execution.stopped = Some(Utc::now());
        match result {
            Ok(output) => {
                execution.status = ExecutionStatus::Succeeded;
                execution.output = Some(output);
            }
            Err(Failure { error, cause }) => {
                execution.status = ExecutionStatus::Failed;
                execution.failure = Some((error, cause));
            }
        }
    }
}

/// Runs `machine`'s states (`StartAt`, `States`) from its start to an end.
fn run_states<'a, L: Lambdas>(
    machine: &'a Value,
    input: Value,
    services: &'a Services<L>,
    execution: &'a Arc<Mutex<Execution>>,
) -> Step<'a> {
    Box::pin(async move {
        let states = machine
            .get("States")
            .and_then(Value::as_object)
            .ok_or_else(|| runtime("a definition without States"))?;
        let mut name = machine
            .get("StartAt")
            .and_then(Value::as_str)
            .ok_or_else(|| runtime("a definition without StartAt"))?
            .to_owned();
        let mut input = input;
        loop {
            let state = states
                .get(&name)
                .ok_or_else(|| runtime(format!("no state {name}")))?;
            let output = run_state(&name, state, input, services, execution).await?;
            match state.get("Type").and_then(Value::as_str) {
                Some("Succeed") | Some("Fail") => return Ok(output),
                _ => {}
            }
            if state.get("End").and_then(Value::as_bool) == Some(true) {
                return Ok(output);
            }
            name = state
                .get("Next")
                .and_then(Value::as_str)
                .ok_or_else(|| runtime(format!("state {name} has neither Next nor End")))?
                .to_owned();
            input = output;
        }
    })
}

async fn run_state<L: Lambdas>(
    name: &str,
    state: &Value,
    input: Value,
    services: &Services<L>,
    execution: &Arc<Mutex<Execution>>,
) -> Result<Value, Failure> {
    let context = json!({});
    let input = filter(state.get("InputPath"), input, &context).map_err(runtime)?;
    let result = match state.get("Type").and_then(Value::as_str) {
        Some("Pass") => match (state.get("Parameters"), state.get("Result")) {
            (Some(parameters), _) => {
                apply_template(parameters, &input, &context).map_err(runtime)?
            }
            (None, Some(result)) => result.clone(),
            (None, None) => input.clone(),
        },
        Some("Task") => run_task_with_retries(name, state, &input, services).await?,
        Some("Map") => run_distributed_map(name, state, &input, services, execution).await?,
        Some("Succeed") => return Ok(input),
        Some("Fail") => {
            return Err(failure(
                state
                    .get("Error")
                    .and_then(Value::as_str)
                    .unwrap_or("States.Fail"),
                state
                    .get("Cause")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            ))
        }
        other => {
            return Err(runtime(format!(
                "state {name}: type {other:?} is not run by the local stand-in"
            )))
        }
    };
    let result = match state.get("ResultSelector") {
        Some(selector) => apply_template(selector, &result, &context).map_err(runtime)?,
        None => result,
    };
    let output = place_result(input, state.get("ResultPath"), result).map_err(runtime)?;
    filter(state.get("OutputPath"), output, &context).map_err(runtime)
}

/// A Task, run again as its `Retry` says (interval × rate^attempt; the
/// stand-in waits the whole interval, without jitter).
async fn run_task_with_retries<L: Lambdas>(
    name: &str,
    state: &Value,
    input: &Value,
    services: &Services<L>,
) -> Result<Value, Failure> {
    let retriers: Vec<&Value> = state
        .get("Retry")
        .and_then(Value::as_array)
        .map(|r| r.iter().collect())
        .unwrap_or_default();
    let mut attempts: Vec<u64> = vec![0; retriers.len()];
    loop {
        let failed = match run_task(name, state, input, services).await {
            Ok(result) => return Ok(result),
            Err(failed) => failed,
        };
        let matched = retriers.iter().position(|retrier| {
            retrier
                .get("ErrorEquals")
                .and_then(Value::as_array)
                .is_some_and(|errors| {
                    errors.iter().filter_map(Value::as_str).any(|error| {
                        error == failed.error
                            || error == "States.ALL"
                            || (error == "States.TaskFailed" && failed.error != "States.Timeout")
                    })
                })
        });
        let Some(index) = matched else {
            return Err(failed);
        };
        let retrier = retriers[index];
        let max_attempts = retrier
            .get("MaxAttempts")
            .and_then(Value::as_u64)
            .unwrap_or(3);
        if attempts[index] >= max_attempts {
            return Err(failed);
        }
        let interval = retrier
            .get("IntervalSeconds")
            .and_then(Value::as_f64)
            .unwrap_or(1.0);
        let rate = retrier
            .get("BackoffRate")
            .and_then(Value::as_f64)
            .unwrap_or(2.0);
        let wait = interval * rate.powi(attempts[index].min(30) as i32);
        attempts[index] += 1;
        tracing::warn!(
            state = name,
            error = failed.error.as_str(),
            attempt = attempts[index],
            "task retried"
        );
        tokio::time::sleep(Duration::from_secs_f64(wait.clamp(0.0, 3_600.0))).await;
    }
}

async fn run_task<L: Lambdas>(
    name: &str,
    state: &Value,
    input: &Value,
    services: &Services<L>,
) -> Result<Value, Failure> {
    let context = json!({});
    let parameters = match state.get("Parameters") {
        Some(parameters) => apply_template(parameters, input, &context).map_err(runtime)?,
        None => input.clone(),
    };
    let text = |field: &str| {
        parameters
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| runtime(format!("state {name}: Parameters.{field} is required")))
    };
    match state.get("Resource").and_then(Value::as_str) {
        Some("arn:aws:states:::dynamodb:getItem") => {
            let key: HashMap<String, serde_dynamo::AttributeValue> =
                serde_json::from_value(parameters.get("Key").cloned().unwrap_or(Value::Null))
                    .map_err(|err| runtime(format!("state {name}: Key: {err}")))?;
            let key: HashMap<String, AttributeValue> =
                key.into_iter().map(|(k, v)| (k, v.into())).collect();
            let answer = services
                .dynamodb
                .get_item()
                .table_name(text("TableName")?)
                .set_key(Some(key))
                .set_projection_expression(
                    parameters
                        .get("ProjectionExpression")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                )
                .set_consistent_read(parameters.get("ConsistentRead").and_then(Value::as_bool))
                .set_expression_attribute_names(
                    parameters
                        .get("ExpressionAttributeNames")
                        .and_then(Value::as_object)
                        .map(|names| {
                            names
                                .iter()
                                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                                .collect()
                        }),
                )
                .send()
                .await
                .map_err(|err| {
                    failure(
                        "DynamoDB.AmazonDynamoDBException",
                        DisplayErrorContext(err).to_string(),
                    )
                })?;
            let mut result = Map::new();
            if let Some(item) = answer.item {
                let item: HashMap<String, serde_dynamo::AttributeValue> =
                    item.into_iter().map(|(k, v)| (k, v.into())).collect();
                result.insert("Item".into(), serde_json::to_value(item).map_err(runtime)?);
            }
            Ok(Value::Object(result))
        }
        Some("arn:aws:states:::lambda:invoke") => {
            let function = text("FunctionName")?;
            let payload = parameters.get("Payload").cloned().unwrap_or(Value::Null);
            match services.lambdas.invoke(&function, payload).await {
                Ok(response) => Ok(json!({"Payload": response, "StatusCode": 200})),
                Err(error) => Err(function_error(&error)),
            }
        }
        other => Err(runtime(format!(
            "state {name}: resource {other:?} is not run by the local stand-in"
        ))),
    }
}

/// A function error as Step Functions names it: its `errorType`, with the
/// error as the cause; an invocation that got no answer is `Lambda.Unknown`.
fn function_error(error: &InvokeError) -> Failure {
    let error_type = match error {
        InvokeError::Function(payload) => payload
            .get("errorType")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    };
    failure(
        error_type.as_deref().unwrap_or("Lambda.Unknown"),
        error.to_string(),
    )
}

/// The `$$.Map.Item` context of each item: index and value.
fn item_context(index: usize, value: &Value) -> Value {
    json!({"Map": {"Item": {"Index": index, "Value": value}}})
}

fn number_or_path(config: &Value, field: &str, input: &Value) -> Result<Option<u64>, Failure> {
    if let Some(number) = config.get(field) {
        return number
            .as_u64()
            .map(Some)
            .ok_or_else(|| runtime(format!("{field} is not a whole number")));
    }
    match config.get(format!("{field}Path")).and_then(Value::as_str) {
        Some(path) => select(path, input, &json!({}))
            .map_err(runtime)?
            .as_u64()
            .map(Some)
            .ok_or_else(|| runtime(format!("{field}Path {path} is not a whole number"))),
        None => Ok(None),
    }
}

/// The map's batches, in order: at most `items` items and, as Step
/// Functions' `MaxInputBytesPerBatch` has it, at most `bytes` bytes of
/// items as JSON (an item larger on its own is a batch of one).
fn batch_ranges(selected: &[Value], items: usize, bytes: usize) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut size) = (0, 2);
    for (index, item) in selected.iter().enumerate() {
        let item_bytes = item.to_string().len() + 1;
        let full = index - start >= items || size + item_bytes > bytes;
        if index > start && full {
            ranges.push(start..index);
            (start, size) = (index, 2);
        }
        size += item_bytes;
    }
    if start < selected.len() {
        ranges.push(start..selected.len());
    }
    ranges
}

async fn run_distributed_map<L: Lambdas>(
    name: &str,
    state: &Value,
    input: &Value,
    services: &Services<L>,
    execution: &Arc<Mutex<Execution>>,
) -> Result<Value, Failure> {
    let processor = state
        .get("ItemProcessor")
        .ok_or_else(|| runtime(format!("map {name}: no ItemProcessor")))?;
    let mode = processor
        .pointer("/ProcessorConfig/Mode")
        .and_then(Value::as_str);
    if mode != Some("DISTRIBUTED") {
        return Err(runtime(format!(
            "map {name}: only a DISTRIBUTED map is run by the local stand-in"
        )));
    }
    let items = read_items(name, state, input, services).await?;
    let no_context = json!({});
    let selected: Vec<Value> = match state.get("ItemSelector") {
        Some(selector) => items
            .iter()
            .enumerate()
            .map(|(index, item)| apply_template(selector, input, &item_context(index, item)))
            .collect::<Result<_, _>>()
            .map_err(runtime)?,
        None => items,
    };
    let batcher = state.get("ItemBatcher");
    let batch_size = match batcher {
        Some(batcher) => number_or_path(batcher, "MaxItemsPerBatch", input)?.unwrap_or(u64::MAX),
        None => 1,
    }
    .max(1);
    let batch_input = match batcher.and_then(|b| b.get("BatchInput")) {
        Some(template) => Some(apply_template(template, input, &no_context).map_err(runtime)?),
        None => None,
    };
    let max_concurrency = number_or_path(state, "MaxConcurrency", input)?.unwrap_or(0);
    let tolerated = state
        .get("ToleratedFailurePercentage")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let batch_bytes = match batcher {
        Some(batcher) => number_or_path(batcher, "MaxInputBytesPerBatch", input)?,
        None => None,
    };
    let total = selected.len() as u64;
    let chunk = usize::try_from(batch_size).unwrap_or(usize::MAX);
    let batch_bytes = batch_bytes.map_or(usize::MAX, |bytes| {
        usize::try_from(bytes).unwrap_or(usize::MAX)
    });
    let batches: Vec<(u64, Value)> = if batcher.is_some() {
        batch_ranges(&selected, chunk, batch_bytes)
            .into_iter()
            .map(|range| &selected[range])
            .map(|items| {
                let mut batch = Map::new();
                batch.insert("Items".into(), Value::Array(items.to_vec()));
                if let Some(batch_input) = &batch_input {
                    batch.insert("BatchInput".into(), batch_input.clone());
                }
                (items.len() as u64, Value::Object(batch))
            })
            .collect()
    } else {
        selected.into_iter().map(|item| (1, item)).collect()
    };
    let map_run_arn = {
        let mut execution = execution
            .lock()
            .map_err(|_| runtime("the execution's record is poisoned"))?;
        let arn = format!(
            "{}:{name}:{}",
            execution.arn.replacen(":execution:", ":mapRun:", 1),
            execution.map_runs.len()
        );
        execution.map_runs.push(MapRun {
            arn: arn.clone(),
            started: Utc::now(),
            stopped: None,
            status: ExecutionStatus::Running,
            max_concurrency,
            tolerated_failure_percentage: tolerated,
            items: MapRunCounts {
                total,
                pending: total,
                ..Default::default()
            },
            executions: MapRunCounts {
                total: batches.len() as u64,
                pending: batches.len() as u64,
                ..Default::default()
            },
        });
        arn
    };
    let count = |update: &dyn Fn(&mut MapRun)| {
        if let Ok(mut execution) = execution.lock() {
            if let Some(run) = execution.map_runs.iter_mut().find(|r| r.arn == map_run_arn) {
                update(run);
            }
        }
    };
    // MaxConcurrency 0 is "as many as Step Functions allows" (10,000 child executions).
    let concurrency = if max_concurrency == 0 {
        10_000
    } else {
        max_concurrency as usize
    };
    let mut results: Vec<ChildResult> = futures::stream::iter(batches.into_iter().enumerate())
        .map(|(index, (size, batch))| {
            let count = &count;
            async move {
                count(&|run| {
                    run.items.pending -= size;
                    run.items.running += size;
                    run.executions.pending -= 1;
                    run.executions.running += 1;
                });
                let started = Utc::now();
                let result = run_states(processor, batch, services, execution).await;
                let ok = result.is_ok();
                count(&|run| {
                    run.items.running -= size;
                    run.executions.running -= 1;
                    if ok {
                        run.items.succeeded += size;
                        run.executions.succeeded += 1;
                    } else {
                        run.items.failed += size;
                        run.executions.failed += 1;
                    }
                });
                (index, size, started, result)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.sort_by_key(|(index, ..)| *index);
    let failed_items: u64 = results
        .iter()
        .filter(|(.., result)| result.is_err())
        .map(|(_, size, ..)| *size)
        .sum();
    let output = match state.get("ResultWriter") {
        Some(writer) => {
            let written =
                write_results(name, writer, input, &map_run_arn, &results, services).await?;
            count(&|run| {
                run.items.results_written = total;
                run.executions.results_written = run.executions.total;
            });
            written
        }
        None => Value::Array(
            results
                .iter()
                .map(|(.., result)| result.clone().unwrap_or(Value::Null))
                .collect(),
        ),
    };
    let exceeded = total > 0 && (failed_items as f64) * 100.0 / (total as f64) > tolerated;
    count(&|run| {
        run.stopped = Some(Utc::now());
        run.status = if exceeded {
            ExecutionStatus::Failed
        } else {
            ExecutionStatus::Succeeded
        };
    });
    if exceeded {
        let cause = results
            .iter()
            .find_map(|(.., result)| result.as_ref().err())
            .map(|failed| format!("{}: {}", failed.error, failed.cause))
            .unwrap_or_default();
        return Err(failure(
            "States.ExceedToleratedFailureThreshold",
            format!("map {name}: {failed_items} of {total} items failed; first: {cause}"),
        ));
    }
    Ok(output)
}

/// The items of an S3 `ItemReader` over a JSON Lines object: every
/// non-blank line parsed. A missing object or a line that is not JSON fails
/// the map before any item runs (`States.ItemReaderFailed`).
async fn read_items<L: Lambdas>(
    name: &str,
    state: &Value,
    input: &Value,
    services: &Services<L>,
) -> Result<Vec<Value>, Failure> {
    let reader = state.get("ItemReader").ok_or_else(|| {
        runtime(format!(
            "map {name}: the local stand-in needs an ItemReader"
        ))
    })?;
    if reader.get("Resource").and_then(Value::as_str) != Some("arn:aws:states:::s3:getObject") {
        return Err(runtime(format!(
            "map {name}: only an s3:getObject ItemReader is run locally"
        )));
    }
    let input_type = reader
        .pointer("/ReaderConfig/InputType")
        .and_then(Value::as_str);
    if input_type != Some("JSONL") {
        return Err(runtime(format!(
            "map {name}: ItemReader InputType {input_type:?}: the local stand-in reads JSONL"
        )));
    }
    let parameters = apply_template(
        reader.get("Parameters").unwrap_or(&Value::Null),
        input,
        &json!({}),
    )
    .map_err(runtime)?;
    let field = |f: &str| {
        parameters
            .get(f)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| runtime(format!("map {name}: ItemReader.Parameters.{f} is required")))
    };
    let (bucket, key) = (field("Bucket")?, field("Key")?);
    let reader_failed = |cause: String| failure("States.ItemReaderFailed", cause);
    let object = services
        .s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .map_err(|err| {
            reader_failed(format!("s3://{bucket}/{key}: {}", DisplayErrorContext(err)))
        })?;
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|err| reader_failed(format!("s3://{bucket}/{key}: {err}")))?
        .into_bytes();
    let text = std::str::from_utf8(&bytes)
        .map_err(|err| reader_failed(format!("s3://{bucket}/{key} is not UTF-8: {err}")))?;
    let mut items = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let item = serde_json::from_str(line).map_err(|err| {
            reader_failed(format!(
                "s3://{bucket}/{key} line {}: not JSON: {err}",
                index + 1
            ))
        })?;
        items.push(item);
    }
    Ok(items)
}

/// One child execution of a map: its batch's index, its item count, when it
/// started, and what it returned.
type ChildResult = (usize, u64, DateTime<Utc>, Result<Value, Failure>);

/// Writes the map run's results as Step Functions does: the child
/// executions' results in `SUCCEEDED_0.json` and `FAILED_0.json` under
/// `<Prefix>/<map run id>/`, and `manifest.json` listing them. Returns the
/// map's output: the map run's ARN and where the manifest is.
async fn write_results<L: Lambdas>(
    name: &str,
    writer: &Value,
    input: &Value,
    map_run_arn: &str,
    results: &[ChildResult],
    services: &Services<L>,
) -> Result<Value, Failure> {
    if writer.get("Resource").and_then(Value::as_str) != Some("arn:aws:states:::s3:putObject") {
        return Err(runtime(format!(
            "map {name}: only an s3:putObject ResultWriter is run locally"
        )));
    }
    let parameters = apply_template(
        writer.get("Parameters").unwrap_or(&Value::Null),
        input,
        &json!({}),
    )
    .map_err(runtime)?;
    let bucket = parameters
        .get("Bucket")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            runtime(format!(
                "map {name}: ResultWriter.Parameters.Bucket is required"
            ))
        })?
        .to_owned();
    let prefix = parameters
        .get("Prefix")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let run_id = map_run_arn.rsplit(':').next().unwrap_or("run");
    let run_id = format!(
        "{}-{run_id}",
        map_run_arn.rsplit(':').nth(2).unwrap_or("execution")
    );
    let base = if prefix.is_empty() {
        run_id
    } else {
        format!("{}/{run_id}", prefix.trim_end_matches('/'))
    };
    let entry = |index: &usize, started: &DateTime<Utc>, result: &Result<Value, Failure>| {
        let mut entry = json!({
            "ExecutionArn": format!("{map_run_arn}:{index}"),
            "Name": index.to_string(),
            "StartDate": started.to_rfc3339(),
            "StopDate": Utc::now().to_rfc3339(),
            "StateMachineArn": map_run_arn,
        });
        match result {
            Ok(output) => {
                entry["Status"] = json!("SUCCEEDED");
                entry["Output"] = json!(output.to_string());
            }
            Err(failed) => {
                entry["Status"] = json!("FAILED");
                entry["Error"] = json!(failed.error);
                entry["Cause"] = json!(failed.cause);
            }
        }
        entry
    };
    let mut files = Map::new();
    for (status, ok) in [("SUCCEEDED", true), ("FAILED", false)] {
        let entries: Vec<Value> = results
            .iter()
            .filter(|(.., result)| result.is_ok() == ok)
            .map(|(index, _, started, result)| entry(index, started, result))
            .collect();
        let mut listed = Vec::new();
        if !entries.is_empty() {
            let key = format!("{base}/{status}_0.json");
            let body = Value::Array(entries).to_string();
            listed.push(json!({"Key": key, "Size": body.len()}));
            put_object(services, &bucket, &key, body).await?;
        }
        files.insert(status.to_owned(), Value::Array(listed));
    }
    files.insert("PENDING".into(), json!([]));
    let manifest_key = format!("{base}/manifest.json");
    let manifest = json!({
        "DestinationBucket": bucket,
        "MapRunArn": map_run_arn,
        "ResultFiles": files,
    });
    put_object(services, &bucket, &manifest_key, manifest.to_string()).await?;
    Ok(json!({
        "MapRunArn": map_run_arn,
        "ResultWriterDetails": {"Bucket": bucket, "Key": manifest_key},
    }))
}

async fn put_object<L: Lambdas>(
    services: &Services<L>,
    bucket: &str,
    key: &str,
    body: String,
) -> Result<(), Failure> {
    services
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/json")
        .body(body.into_bytes().into())
        .send()
        .await
        .map(|_| ())
        .map_err(|err| {
            failure(
                "States.ResultWriterFailed",
                format!("s3://{bucket}/{key}: {}", DisplayErrorContext(err)),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_at_most_the_items_and_the_bytes_given() {
        let items: Vec<Value> = (0..10).map(|n| json!({"index": n})).collect();
        // Each item is 11 bytes as JSON, 12 with its comma.
        assert_eq!(batch_ranges(&items, 4, usize::MAX), [0..4, 4..8, 8..10]);
        assert_eq!(
            batch_ranges(&items, 100, 2 + 3 * 12),
            [0..3, 3..6, 6..9, 9..10]
        );
        assert_eq!(
            batch_ranges(&items, 2, 2 + 3 * 12),
            [0..2, 2..4, 4..6, 6..8, 8..10]
        );
        // An item over the bytes on its own: a batch of one, as Step Functions makes it.
        assert_eq!(batch_ranges(&items[..2], 100, 5), [0..1, 1..2]);
        assert!(batch_ranges(&[], 4, 100).is_empty());
    }
}
