//! Composition root: logging, configuration, clients, then the runtime loop.

use challenge_progress::{build_progress, handler, ProgressConfig};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use offers_shared::config::Env;
use offers_shared::dynamo::{dynamodb_client, environment_sdk_config};
use offers_shared::telemetry::init_json_logging;
use serde_json::Value;

// One thread, as the dispatcher: Lambda sends one event at a time.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_json_logging();
    let config = ProgressConfig::from_env(&Env::process())?;
    let sdk_config = environment_sdk_config();
    let progress = build_progress(dynamodb_client(&sdk_config, &config.sdk), &config);
    let metrics = config.observability.sink_from_env()?;
    let (progress, metrics) = (&progress, metrics.as_ref());
    run(service_fn(move |event: LambdaEvent<Value>| {
        handler::handle(progress, metrics, event)
    }))
    .await
}
