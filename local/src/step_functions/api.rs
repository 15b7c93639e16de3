//! The Step Functions API calls the CLI makes, on loopback, in Step
//! Functions' own protocol (AWS JSON 1.0, `X-Amz-Target:
//! AWSStepFunctions.<Operation>`), so that `offers campaign plan --audience
//! s3://...` runs the same code against the stand-in as against AWS:
//! StartExecution, DescribeExecution, ListMapRuns, DescribeMapRun.

use super::asl::StateMachineDefinition;
use super::runner::{run_execution, Execution, Lambdas, MapRunCounts, Services};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The stand-in: state machines by ARN, and every execution started.
pub struct StepFunctions<L> {
    machines: HashMap<String, StateMachineDefinition>,
    services: Arc<Services<L>>,
    executions: Mutex<HashMap<String, Arc<Mutex<Execution>>>>,
}

/// An API error: its `__type` and message (answered with status 400).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}: {1}")]
pub struct ApiError(pub &'static str, pub String);

impl<L: Lambdas + 'static> StepFunctions<L> {
    /// `machines`: each state machine's definition by its (local) ARN.
    pub fn new(machines: HashMap<String, StateMachineDefinition>, services: Services<L>) -> Self {
        Self {
            machines,
            services: Arc::new(services),
            executions: Mutex::new(HashMap::new()),
        }
    }

    /// Starts an execution of the machine `arn`; returns the execution's ARN.
    pub fn start_execution(self: &Arc<Self>, arn: &str, input: Value) -> Result<String, ApiError> {
        self.start(arn, input, None)
    }

    /// The execution as it is now.
    pub fn execution(&self, arn: &str) -> Option<Execution> {
        let executions = self.executions.lock().ok()?;
        let execution = executions.get(arn)?.lock().ok()?;
        Some(execution.clone())
    }

    fn start(
        self: &Arc<Self>,
        arn: &str,
        input: Value,
        name: Option<String>,
    ) -> Result<String, ApiError> {
        let machine = self.machines.get(arn).ok_or_else(|| {
            ApiError(
                "StateMachineDoesNotExist",
                format!("State Machine Does Not Exist: '{arn}'"),
            )
        })?;
        let name = name.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let execution_arn = format!(
            "{}:{name}",
            arn.replacen(":stateMachine:", ":execution:", 1)
        );
        let execution = Arc::new(Mutex::new(Execution::new(
            execution_arn.clone(),
            arn.to_owned(),
            input,
        )));
        {
            let mut executions = self
                .executions
                .lock()
                .map_err(|_| ApiError("InternalFailure", "poisoned".into()))?;
            if executions.contains_key(&execution_arn) {
                return Err(ApiError(
                    "ExecutionAlreadyExists",
                    format!("Execution Already Exists: '{execution_arn}'"),
                ));
            }
            executions.insert(execution_arn.clone(), execution.clone());
        }
        let definition = machine.definition.clone();
        let services = self.services.clone();
        tokio::spawn(async move {
            run_execution(&definition, &services, &execution).await;
        });
        Ok(execution_arn)
    }

    /// Serves the API on `address` (loopback only) until `stop`.
    pub async fn serve(
        self: Arc<Self>,
        address: SocketAddr,
        mut stop: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        if !address.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the Step Functions stand-in serves on loopback only",
            ));
        }
        let listener = TcpListener::bind(address).await?;
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(_) => continue,
                },
                _ = stop.changed() => return Ok(()),
            };
            let api = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let api = api.clone();
                    async move { Ok::<_, Infallible>(api.answer(request).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    async fn answer(self: &Arc<Self>, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let target = request
            .headers()
            .get("x-amz-target")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = match request.into_body().collect().await {
            Ok(body) => body.to_bytes(),
            Err(err) => return error(ApiError("SerializationException", err.to_string())),
        };
        let body: Value = match serde_json::from_slice(&body) {
            Ok(body) => body,
            Err(err) => return error(ApiError("SerializationException", err.to_string())),
        };
        let operation = target.strip_prefix("AWSStepFunctions.").unwrap_or(&target);
        let answer = match operation {
            "StartExecution" => self.start_execution_call(&body),
            "DescribeExecution" => self.with_execution(&body, describe_execution),
            "ListMapRuns" => self.with_execution(&body, list_map_runs),
            "DescribeMapRun" => self.describe_map_run(&body),
            other => Err(ApiError(
                "UnknownOperationException",
                format!("{other} is not served by the local Step Functions stand-in"),
            )),
        };
        match answer {
            Ok(value) => respond(StatusCode::OK, &value),
            Err(err) => error(err),
        }
    }

    fn start_execution_call(self: &Arc<Self>, body: &Value) -> Result<Value, ApiError> {
        let arn = field(body, "stateMachineArn")?;
        let input = match body.get("input").and_then(Value::as_str) {
            Some(text) => serde_json::from_str(text)
                .map_err(|err| ApiError("InvalidExecutionInput", err.to_string()))?,
            None => json!({}),
        };
        let name = body.get("name").and_then(Value::as_str).map(str::to_owned);
        let execution_arn = self.start(&arn, input, name)?;
        Ok(json!({"executionArn": execution_arn, "startDate": epoch(Utc::now())}))
    }

    fn with_execution(
        &self,
        body: &Value,
        answer: fn(&Execution) -> Value,
    ) -> Result<Value, ApiError> {
        let arn = field(body, "executionArn")?;
        let execution = self.execution(&arn).ok_or_else(|| {
            ApiError(
                "ExecutionDoesNotExist",
                format!("Execution Does Not Exist: '{arn}'"),
            )
        })?;
        Ok(answer(&execution))
    }

    fn describe_map_run(&self, body: &Value) -> Result<Value, ApiError> {
        let arn = field(body, "mapRunArn")?;
        let executions: Vec<Arc<Mutex<Execution>>> = self
            .executions
            .lock()
            .map(|e| e.values().cloned().collect())
            .unwrap_or_default();
        for execution in executions {
            let Ok(execution) = execution.lock() else {
                continue;
            };
            if let Some(run) = execution.map_runs.iter().find(|run| run.arn == arn) {
                let mut answer = json!({
                    "mapRunArn": run.arn,
                    "executionArn": execution.arn,
                    "status": run.status.as_str(),
                    "startDate": epoch(run.started),
                    "maxConcurrency": run.max_concurrency,
                    "toleratedFailurePercentage": run.tolerated_failure_percentage,
                    "toleratedFailureCount": 0,
                    "itemCounts": counts(&run.items),
                    "executionCounts": counts(&run.executions),
                });
                if let Some(stopped) = run.stopped {
                    answer["stopDate"] = epoch(stopped);
                }
                return Ok(answer);
            }
        }
        Err(ApiError(
            "ResourceNotFound",
            format!("Map Run Does Not Exist: '{arn}'"),
        ))
    }
}

fn describe_execution(execution: &Execution) -> Value {
    let mut answer = json!({
        "executionArn": execution.arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.arn.rsplit(':').next().unwrap_or_default(),
        "status": execution.status.as_str(),
        "startDate": epoch(execution.started),
        "input": execution.input.to_string(),
    });
    if let Some(stopped) = execution.stopped {
        answer["stopDate"] = epoch(stopped);
    }
    if let Some(output) = &execution.output {
        answer["output"] = json!(output.to_string());
    }
    if let Some((error, cause)) = &execution.failure {
        answer["error"] = json!(error);
        answer["cause"] = json!(cause);
    }
    answer
}

fn list_map_runs(execution: &Execution) -> Value {
    let runs: Vec<Value> = execution
        .map_runs
        .iter()
        .map(|run| {
            let mut entry = json!({
                "executionArn": execution.arn,
                "mapRunArn": run.arn,
                "stateMachineArn": execution.state_machine_arn,
                "startDate": epoch(run.started),
            });
            if let Some(stopped) = run.stopped {
                entry["stopDate"] = epoch(stopped);
            }
            entry
        })
        .collect();
    json!({"mapRuns": runs})
}

fn counts(counts: &MapRunCounts) -> Value {
    json!({
        "pending": counts.pending,
        "running": counts.running,
        "succeeded": counts.succeeded,
        "failed": counts.failed,
        "timedOut": 0,
        "aborted": 0,
        "total": counts.total,
        "resultsWritten": counts.results_written,
        "failuresNotRedrivable": 0,
        "pendingRedrive": 0,
    })
}

/// A timestamp as AWS JSON 1.0 sends one: epoch seconds.
fn epoch(at: DateTime<Utc>) -> Value {
    json!(at.timestamp_millis() as f64 / 1_000.0)
}

fn field(body: &Value, name: &str) -> Result<String, ApiError> {
    body.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ApiError("ValidationException", format!("{name} is required")))
}

fn respond(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    response
}

fn error(ApiError(kind, message): ApiError) -> Response<Full<Bytes>> {
    respond(
        StatusCode::BAD_REQUEST,
        &json!({"__type": kind, "message": message}),
    )
}
