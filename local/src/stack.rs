//! The whole system on one machine: DynamoDB Local with every table of
//! template.yaml, the built function binaries run as Lambda runs them, the
//! stream functions (the dispatcher on the pending table, challenge progress
//! on the transactions table) fed by their table's real stream through a
//! local event source mapping each, and the HTTP APIs on localhost. A function given a
//! secret's ARN (a variable ending in `_SECRET_ARN`, from a `...SecretArn`
//! parameter) reads it from moto's Secrets Manager server, started here,
//! where the secret is created with the local-only value
//! [`crate::moto::LOCAL_SIGNING_SECRET`].

use crate::conventions::{local_on_failure_table, LOCAL_TABLE_PREFIX};
use crate::error::{BedError, InvokeError};
use crate::event_source::{Checkpoints, FailedBatch, OnFailure, StreamMapping};
use crate::functions::{FunctionSpec, LocalFunction};
use crate::gateway::Gateway;
use crate::invoke::Invoke;
use crate::moto::{MotoServer, LOCAL_SIGNING_SECRET, SECRETS_MANAGER_ENDPOINT_VARIABLE};
use crate::step_functions::api::StepFunctions;
use crate::step_functions::runner::Lambdas;
use crate::step_functions::{Services, StateMachineDefinition};
use crate::{local_sdk_config, workspace_root, DynamoDbLocal, SamTemplate, StartOptions, TableSet};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_smithy_types::error::display::DisplayErrorContext;
use offers_shared::local_conventions::{
    local_function_arn, local_state_machine_arn, LOCAL_PLAN_BUCKET,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct StackOptions {
    pub dynamodb_port: u16,
    pub http_port: u16,
    /// DynamoDB Local's data, the stream checkpoints and the function logs.
    pub data_dir: PathBuf,
    /// Start from empty tables.
    pub fresh: bool,
    /// Where the function binaries are (`target/<profile>`).
    pub bin_dir: PathBuf,
    /// Processes per API function (invocations served at once).
    pub api_instances: usize,
    /// Template parameter values (`sam deploy --parameter-overrides`), e.g.
    /// `DispatcherParallelizationFactor`; the others take their default.
    pub parameters: Vec<(String, String)>,
    /// moto's port: S3 (the plan bucket) and Secrets Manager.
    pub s3_port: u16,
    /// The Step Functions stand-in's port.
    pub step_functions_port: u16,
    /// Processes per function a state machine's map invokes (chunks that
    /// run at once, at most; Lambda would scale out).
    pub map_instances: usize,
}

/// A running stack. `stop` ends every process it started.
pub struct RunningStack {
    dynamodb: DynamoDbLocal,
    /// moto's server: S3 (the plan bucket) and Secrets Manager.
    moto: Option<MotoServer>,
    /// The Step Functions stand-in's address.
    pub step_functions_address: SocketAddr,
    /// Each state machine of the template: logical id and local ARN.
    pub state_machines: Vec<(String, String)>,
    pub tables: TableSet,
    pub http_address: SocketAddr,
    pub functions: Vec<Arc<LocalFunction>>,
    /// Each stream function and its mapping's batches per shard at once.
    pub parallelization: Vec<(String, usize)>,
    pub catalog_items_loaded: usize,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningStack {
    pub fn dynamodb_endpoint(&self) -> String {
        self.dynamodb.endpoint()
    }

    /// moto's endpoint (S3 for the plan bucket).
    pub fn s3_endpoint(&self) -> Option<String> {
        self.moto.as_ref().map(MotoServer::endpoint)
    }

    pub fn logs_dir(data_dir: &std::path::Path) -> PathBuf {
        data_dir.join("logs")
    }

    /// Every process of the stack: DynamoDB Local and the function instances.
    pub fn pids(&self) -> Vec<u32> {
        self.dynamodb
            .pid()
            .into_iter()
            .chain(self.moto.as_ref().and_then(MotoServer::pid))
            .chain(self.functions.iter().flat_map(|f| f.pids()))
            .collect()
    }

    /// Stops the mapping (after the batch in hand), the gateway, the
    /// functions, then DynamoDB Local (gracefully, so its data is kept).
    pub async fn stop(mut self) -> Result<(), BedError> {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        for function in &self.functions {
            function.stopped().await;
        }
        Ok(self.dynamodb.stop()?)
    }
}

/// Starts everything and returns once every function has finished its init.
pub async fn start(options: &StackOptions) -> Result<RunningStack, BedError> {
    let fail = |what: &str, err: &dyn std::fmt::Display| BedError::setup(what, err);
    if options.fresh {
        let _ = std::fs::remove_dir_all(&options.data_dir);
    }
    let logs = RunningStack::logs_dir(&options.data_dir);
    std::fs::create_dir_all(&logs).map_err(|err| fail("data folder", &err))?;
    let dynamodb = DynamoDbLocal::start(StartOptions {
        port: Some(options.dynamodb_port),
        db_path: Some(options.data_dir.join("dynamodb")),
    })
    .map_err(|err| fail("DynamoDB Local", &err))?;
    let endpoint = dynamodb.endpoint();
    let sdk = local_sdk_config(&endpoint).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let parameters: Vec<(&str, &str)> = options
        .parameters
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let template = SamTemplate::project()
        .map_err(|err| fail("template.yaml", &err))?
        .with_parameters(&parameters);
    let tables = template
        .create_tables(&client, LOCAL_TABLE_PREFIX)
        .await
        .map_err(|err| fail("tables", &err))?;
    let catalog_items_loaded =
        load_sample_catalog_if_empty(&client, tables.name("OfferCatalogTable")).await?;

    let (stop, stopped) = watch::channel(false);
    let mut functions: HashMap<String, Arc<LocalFunction>> = HashMap::new();
    let mapped: Vec<String> = template
        .function_ids()
        .map_err(|err| fail("template.yaml", &err))?;
    // moto: S3 for the distributed plan's bucket, Secrets Manager for secrets.
    let moto_server =
        MotoServer::start_on(Some(options.s3_port)).map_err(|err| fail("moto", &err))?;
    moto_server
        .create_bucket(LOCAL_PLAN_BUCKET)
        .await
        .map_err(|err| fail("moto", &err))?;
    let s3 = moto_server.s3_client().await;
    let mut moto = Some(moto_server);
    let state_machines = local_state_machines(&template, &tables)?;
    for logical_id in &mapped {
        let binary = template
            .function_binary(logical_id)
            .map_err(|err| fail("template.yaml", &err))?;
        let mapping = template
            .stream_mapping_if_any(logical_id)
            .map_err(|err| fail("template.yaml", &err))?;
        let mut variables = template
            .function_environment(logical_id, &tables)
            .map_err(|err| fail("template.yaml", &err))?;
        with_local_secrets(&mut variables, logical_id, &mut moto).await?;
        with_local_sdk_timeouts(&mut variables);
        let spec = FunctionSpec {
            logical_id: logical_id.clone(),
            binary: options.bin_dir.join(&binary),
            variables,
            endpoint: endpoint.clone(),
            timeout: template
                .function_timeout(logical_id)
                .map_err(|err| fail("template.yaml", &err))?,
            // A process per batch a shard delivers at once (the
            // mapping's ParallelizationFactor); per chunk a map runs at once.
            instances: match mapping {
                Some(mapping) => mapping.parallelization_factor,
                None if invoked_by_a_map(&state_machines, logical_id) => options.map_instances,
                None => options.api_instances,
            },
            log_file: Some(logs.join(format!("{binary}.log"))),
        };
        let function = LocalFunction::start(spec, stopped.clone())
            .await
            .map_err(|err| fail(logical_id, &err))?;
        functions.insert(logical_id.clone(), Arc::new(function));
    }
    for function in functions.values() {
        if !function.ready(Duration::from_secs(30)).await {
            let _ = stop.send(true);
            return Err(BedError::setup(
                function.logical_id.as_str(),
                format!("did not start: see its log in {}", logs.display()),
            ));
        }
    }

    let mut tasks = Vec::new();
    let mut parallelization = Vec::new();
    for logical_id in &mapped {
        let Some(settings) = template
            .stream_mapping_if_any(logical_id)
            .map_err(|err| fail("template.yaml", &err))?
        else {
            continue;
        };
        parallelization.push((logical_id.clone(), settings.parallelization_factor));
        let table = tables.name(&settings.table).to_owned();
        let stream_arn = client
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .map_err(|err| fail("stream", &DisplayErrorContext(err)))?
            .table()
            .and_then(|t| t.latest_stream_arn())
            .map(str::to_owned)
            .ok_or_else(|| fail(&table, &"it has no stream"))?;
        let Some(function) = functions.get(logical_id).cloned() else {
            continue;
        };
        let failure_table = local_on_failure_table(logical_id);
        create_on_failure_table(&client, &failure_table).await?;
        let mapping = StreamMapping {
            settings,
            function_name: logical_id.clone(),
            invoker: SharedFunction(function),
            on_failure: FailureTable {
                client: client.clone(),
                table: failure_table,
            },
            streams: aws_sdk_dynamodbstreams::Client::new(&sdk),
            endpoint: endpoint.clone(),
            stream_arn,
            checkpoints: Checkpoints::file(
                options
                    .data_dir
                    .join(format!("{logical_id}.checkpoints.json")),
            ),
            idle_pause: Duration::from_millis(200),
        };
        tasks.push(tokio::spawn(mapping.run(stopped.clone())));
    }

    let step_functions = Arc::new(StepFunctions::new(
        state_machines
            .iter()
            .map(|machine| {
                (
                    local_state_machine_arn(&machine.logical_id),
                    machine.clone(),
                )
            })
            .collect(),
        Services {
            dynamodb: client.clone(),
            s3,
            lambdas: FunctionsByArn(
                functions
                    .iter()
                    .map(|(id, function)| (local_function_arn(id), function.clone()))
                    .collect(),
            ),
        },
    ));
    let step_functions_address = SocketAddr::from(([127, 0, 0, 1], options.step_functions_port));
    let probe = std::net::TcpListener::bind(step_functions_address)
        .map_err(|err| fail("Step Functions port", &err))?;
    drop(probe);
    let step_functions_stop = stopped.clone();
    tasks.push(tokio::spawn(async move {
        if let Err(err) = step_functions
            .serve(step_functions_address, step_functions_stop)
            .await
        {
            tracing::error!(error = %err, "the Step Functions stand-in stopped");
        }
    }));

    let routes = template
        .http_routes()
        .map_err(|err| fail("template.yaml", &err))?;
    let gateway_functions = functions
        .iter()
        .map(|(id, function)| (id.clone(), Arc::new(SharedFunction(function.clone()))))
        .collect();
    let gateway = Arc::new(Gateway::new(routes, gateway_functions)?);
    let http_address = SocketAddr::from(([127, 0, 0, 1], options.http_port));
    // Bind now, so that a port in use is an error at start, not later.
    let probe = std::net::TcpListener::bind(http_address).map_err(|err| fail("HTTP port", &err))?;
    drop(probe);
    let gateway_stop = stopped.clone();
    tasks.push(tokio::spawn(async move {
        if let Err(err) = gateway.serve(http_address, gateway_stop).await {
            tracing::error!(error = %err, "the HTTP gateway stopped");
        }
    }));

    Ok(RunningStack {
        dynamodb,
        moto,
        step_functions_address,
        state_machines: state_machines
            .iter()
            .map(|machine| {
                (
                    machine.logical_id.clone(),
                    local_state_machine_arn(&machine.logical_id),
                )
            })
            .collect(),
        tables,
        http_address,
        functions: functions.into_values().collect(),
        parallelization,
        catalog_items_loaded,
        stop,
        tasks,
    })
}

/// Points each `*_SECRET_ARN` variable of a function at a secret created in
/// moto's Secrets Manager (started on first need) with the local-only value,
/// and the function's Secrets Manager client at moto.
async fn with_local_secrets(
    variables: &mut HashMap<String, String>,
    logical_id: &str,
    moto: &mut Option<MotoServer>,
) -> Result<(), BedError> {
    let secret_variables: Vec<String> = variables
        .keys()
        .filter(|name| name.ends_with("_SECRET_ARN"))
        .cloned()
        .collect();
    for variable in secret_variables {
        if moto.is_none() {
            *moto = Some(MotoServer::start()?);
        }
        let Some(server) = moto.as_ref() else {
            continue;
        };
        let arn = server
            .create_secret(
                &format!("offers-local/{logical_id}/{variable}"),
                LOCAL_SIGNING_SECRET,
            )
            .await?;
        variables.insert(variable, arn);
        variables.insert(
            SECRETS_MANAGER_ENDPOINT_VARIABLE.to_owned(),
            server.endpoint(),
        );
    }
    Ok(())
}

/// Every state machine of the template, its definition resolved locally.
fn local_state_machines(
    template: &SamTemplate,
    tables: &TableSet,
) -> Result<Vec<StateMachineDefinition>, BedError> {
    let fail = |err: crate::template::TemplateError| BedError::setup("template.yaml", err);
    template
        .state_machine_ids()
        .map_err(fail)?
        .iter()
        .map(|id| template.state_machine_definition(id, tables).map_err(fail))
        .collect()
}

/// Whether a state machine invokes the function (its local ARN is in the definition).
fn invoked_by_a_map(machines: &[StateMachineDefinition], function_id: &str) -> bool {
    let arn = Value::String(local_function_arn(function_id));
    fn contains(value: &Value, wanted: &Value) -> bool {
        value == wanted
            || match value {
                Value::Array(items) => items.iter().any(|item| contains(item, wanted)),
                Value::Object(fields) => fields.values().any(|item| contains(item, wanted)),
                _ => false,
            }
    }
    machines
        .iter()
        .any(|machine| contains(&machine.definition, &arn))
}

/// The local functions by the ARN a definition names them by.
struct FunctionsByArn(HashMap<String, Arc<LocalFunction>>);

impl Lambdas for FunctionsByArn {
    async fn invoke(&self, function_arn: &str, payload: Value) -> Result<Value, InvokeError> {
        match self.0.get(function_arn) {
            Some(function) => function.invoke(payload).await,
            None => Err(InvokeError::NoSuchFunction(function_arn.to_owned())),
        }
    }
}

/// A function shared by the mapping and the gateway.
struct SharedFunction(Arc<LocalFunction>);

impl crate::invoke::Invoke for SharedFunction {
    async fn invoke(&self, event: Value) -> Result<Value, InvokeError> {
        self.0.invoke(event).await
    }
}

/// The SDK timeouts the local stack gives its functions in place of
/// template.yaml's (1-3 s per attempt, tuned to DynamoDB's latency on AWS):
/// DynamoDB Local on a laptop or a busy 2-core machine can take seconds to
/// answer, and a batch whose attempts all time out goes, after the mapping's
/// retries, to the on-failure table instead of becoming offers. The test
/// beds use them too (`LOADED_MACHINE_SDK` in tests/support/bed.rs); only
/// variables the template sets are replaced.
pub const LOCAL_SDK_TIMEOUTS: &[(&str, &str)] = &[
    ("DYNAMODB_ATTEMPT_TIMEOUT_MS", "10000"),
    ("DYNAMODB_OPERATION_TIMEOUT_MS", "30000"),
    ("DYNAMODB_CONNECT_TIMEOUT_MS", "5000"),
];

fn with_local_sdk_timeouts(variables: &mut HashMap<String, String>) {
    for (name, value) in LOCAL_SDK_TIMEOUTS {
        if let Some(current) = variables.get_mut(*name) {
            *current = (*value).to_owned();
        }
    }
}

/// The local stand-in for a mapping's on-failure SQS queue (see
/// `local_on_failure_table`).
struct FailureTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl OnFailure for FailureTable {
    async fn send(&self, failed: &FailedBatch, message: Value) -> Result<(), BedError> {
        let records: Vec<Value> = failed
            .records
            .iter()
            .map(|record| {
                json!({
                    "sequenceNumber": record["dynamodb"]["SequenceNumber"],
                    "userId": record["dynamodb"]["Keys"]["userId"]["S"],
                    "sortKey": record["dynamodb"]["Keys"]["sortKey"]["S"],
                    "keys": record["dynamodb"]["Keys"],
                })
            })
            .collect();
        let text = |value: String| AttributeValue::S(value);
        self.client
            .put_item()
            .table_name(&self.table)
            .item("id", text(uuid::Uuid::new_v4().to_string()))
            .item(
                "timestamp",
                text(message["timestamp"].as_str().unwrap_or_default().to_owned()),
            )
            .item("condition", text(failed.condition.as_str().to_owned()))
            .item(
                "batchSize",
                AttributeValue::N(failed.records.len().to_string()),
            )
            .item("message", text(message.to_string()))
            .item("records", text(Value::from(records).to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(BedError::aws)
    }
}

async fn create_on_failure_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<(), BedError> {
    let on_failure_table =
        |err: &dyn std::fmt::Display| BedError::setup(format!("on-failure table {table}"), err);
    let definition = AttributeDefinition::builder()
        .attribute_name("id")
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|err| on_failure_table(&err))?;
    let key = KeySchemaElement::builder()
        .attribute_name("id")
        .key_type(KeyType::Hash)
        .build()
        .map_err(|err| on_failure_table(&err))?;
    match client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(definition)
        .key_schema(key)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            Ok(())
        }
        Err(err) => Err(on_failure_table(&DisplayErrorContext(err))),
    }
}

/// Loads events/sample-catalog.json into an empty catalog; a catalog that
/// has items (the operator's) is left alone. Returns the items loaded.
async fn load_sample_catalog_if_empty(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<usize, BedError> {
    let scanned = client
        .scan()
        .table_name(table)
        .limit(1)
        .send()
        .await
        .map_err(BedError::aws)?;
    if scanned.count() > 0 {
        return Ok(0);
    }
    let path = workspace_root().join("events").join("sample-catalog.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|err| BedError::setup(path.display().to_string(), err))?;
    let items: Vec<Value> = serde_json::from_str(&text)
        .map_err(|err| BedError::setup(path.display().to_string(), err))?;
    for item in &items {
        let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(item)
            .map_err(|err| BedError::setup("sample catalog item", err))?;
        client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(BedError::aws)?;
    }
    Ok(items.len())
}

#[cfg(test)]
mod sdk_timeout_tests {
    use super::*;

    #[test]
    fn the_local_timeouts_replace_only_what_the_template_sets() {
        let mut variables: HashMap<String, String> = [
            ("DYNAMODB_ATTEMPT_TIMEOUT_MS", "2000"),
            ("DYNAMODB_OPERATION_TIMEOUT_MS", "5000"),
            ("PENDING_TABLE_NAME", "p"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
        with_local_sdk_timeouts(&mut variables);
        assert_eq!(variables["DYNAMODB_ATTEMPT_TIMEOUT_MS"], "10000");
        assert_eq!(variables["DYNAMODB_OPERATION_TIMEOUT_MS"], "30000");
        assert_eq!(variables["PENDING_TABLE_NAME"], "p");
        assert!(!variables.contains_key("DYNAMODB_CONNECT_TIMEOUT_MS"));
    }
}
