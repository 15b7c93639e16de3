//! The whole system on this machine (`bash scripts/local.sh` builds and runs
//! it): DynamoDB Local, the tables of template.yaml, the sample catalog, the
//! functions run as Lambda runs them, the dispatcher on the pending table's
//! stream and challenge progress on the transactions table's, the HTTP APIs
//! on localhost. Ctrl-C stops everything.

use offers_local::conventions::LOCAL_DYNAMODB_ENDPOINT;
use offers_local::stack::{start, RunningStack, StackOptions};
use offers_local::{workspace_root, BedError};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: local-stack [--port PORT] [--http-port PORT] [--data-dir DIR] [--fresh]
                   [--api-instances N] [--bin-dir DIR] [--parameter NAME=VALUE]...
                   [--s3-port PORT] [--step-functions-port PORT] [--map-instances N]

  --port PORT         DynamoDB Local's port (default 8000)
  --http-port PORT    the HTTP APIs' port (default 3000)
  --data-dir DIR      DynamoDB Local's data, stream checkpoints, logs (default .local/data)
  --fresh             start from empty tables (data persists between runs otherwise)
  --api-instances N   processes per API function (default 2)
  --bin-dir DIR       where the built function binaries are (default: beside this one)
  --parameter NAME=VALUE
                      a template parameter's value, as sam deploy --parameter-overrides
                      gives it (e.g. DispatcherParallelizationFactor=4); repeatable
  --s3-port PORT      moto's port: S3 (the plan bucket) and Secrets Manager (default 8084)
  --step-functions-port PORT
                      the Step Functions stand-in's port (default 8083)
  --map-instances N   processes of a function a state machine's map invokes (default 4)";

fn options() -> Result<StackOptions, BedError> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
        .unwrap_or_default();
    let mut options = StackOptions {
        dynamodb_port: 8000,
        http_port: 3000,
        data_dir: workspace_root().join(".local").join("data"),
        fresh: false,
        bin_dir: exe_dir,
        api_instances: 2,
        parameters: Vec::new(),
        s3_port: 8084,
        step_functions_port: 8083,
        map_instances: 4,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| BedError::Usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--port" => options.dynamodb_port = number(&value("--port")?)?,
            "--http-port" => options.http_port = number(&value("--http-port")?)?,
            "--data-dir" => options.data_dir = PathBuf::from(value("--data-dir")?),
            "--bin-dir" => options.bin_dir = PathBuf::from(value("--bin-dir")?),
            "--api-instances" => options.api_instances = number(&value("--api-instances")?)?,
            "--fresh" => options.fresh = true,
            "--s3-port" => options.s3_port = number(&value("--s3-port")?)?,
            "--step-functions-port" => {
                options.step_functions_port = number(&value("--step-functions-port")?)?
            }
            "--map-instances" => options.map_instances = number(&value("--map-instances")?)?,
            "--parameter" => {
                let pair = value("--parameter")?;
                let (name, value) = pair.split_once('=').ok_or_else(|| {
                    BedError::Usage(format!("--parameter {pair:?} is not NAME=VALUE"))
                })?;
                options.parameters.push((name.to_owned(), value.to_owned()));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => {
                return Err(BedError::Usage(format!(
                    "unknown argument {other}\n{USAGE}"
                )))
            }
        }
    }
    Ok(options)
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, BedError> {
    text.parse()
        .map_err(|_| BedError::Usage(format!("{text:?} is not a valid number")))
}

#[tokio::main]
async fn main() -> ExitCode {
    offers_shared::telemetry::init_json_logging();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("local-stack: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BedError> {
    let options = options()?;
    println!("starting the local stack...");
    let stack = start(&options).await?;
    print_banner(&stack, &options);
    wait_for_stop_signal().await?;
    println!("stopping...");
    stack.stop().await?;
    println!("local stack stopped");
    Ok(())
}

async fn wait_for_stop_signal() -> Result<(), BedError> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|err| BedError::setup("signal handler", err))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    Ok(())
}

fn print_banner(stack: &RunningStack, options: &StackOptions) {
    let endpoint = stack.dynamodb_endpoint();
    let http = format!("http://{}", stack.http_address);
    let logs = RunningStack::logs_dir(&options.data_dir);
    let cli = if endpoint == LOCAL_DYNAMODB_ENDPOINT {
        "target/debug/offers --local".to_owned()
    } else {
        format!("target/debug/offers --local --endpoint-url {endpoint}")
    };
    let mut functions: Vec<&str> = stack
        .functions
        .iter()
        .map(|f| f.logical_id.as_str())
        .collect();
    functions.sort();
    println!(
        "
local stack ready
  DynamoDB Local  {endpoint}  (data in {data}; --fresh starts empty)
  HTTP APIs       {http}  (the headers x-local-user and x-local-groups stand in for the JWT)
  functions       {functions}
  stream batches  {parallelization}  (per shard at once: ParallelizationFactor)
  S3 (moto)       {s3}  (bucket {bucket}: audiences/ for distributed plans)
  Step Functions  http://{step_functions}  (local stand-in: {machines})
  sample catalog  {catalog}
  logs            {logs}/*.log
  pids            {pids}

Try it from another terminal:
  {cli} assign events/sample-assignments.jsonl
  {cli} status
  curl -s -H 'x-local-user: user-1' {http}/rewards/offers
  curl -s -X POST -H 'x-local-user: agent-1' -H 'x-local-groups: support' \\
       {http}/support/users/user-1/offers \\
       -d '{{\"offerId\":\"co-coffee\",\"expiryDate\":\"2099-01-01T00:00:00Z\",\"reason\":\"trying it\"}}'
  curl -s -H 'x-local-user: agent-1' -H 'x-local-groups: support' {http}/support/users/user-1/offers

Ctrl-C stops everything.",
        data = options.data_dir.display(),
        s3 = stack.s3_endpoint().unwrap_or_default(),
        bucket = offers_shared::local_conventions::LOCAL_PLAN_BUCKET,
        step_functions = stack.step_functions_address,
        machines = stack
            .state_machines
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        functions = functions.join(", "),
        parallelization = parallelization(stack),
        catalog = if stack.catalog_items_loaded > 0 {
            format!("{} items loaded from events/sample-catalog.json", stack.catalog_items_loaded)
        } else {
            "kept as it was".to_owned()
        },
        logs = logs.display(),
        pids = stack
            .pids()
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" "),
    );
}

/// `Function xN` for each stream function, sorted.
fn parallelization(stack: &RunningStack) -> String {
    let mut mappings: Vec<String> = stack
        .parallelization
        .iter()
        .map(|(function, factor)| format!("{function} x{factor}"))
        .collect();
    mappings.sort();
    mappings.join(", ")
}
