//! Composition root: logging, configuration, clients, then the runtime loop.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use offers_shared::config::Env;
use offers_shared::dynamo::{dynamodb_client, environment_sdk_config};
use offers_shared::telemetry::init_json_logging;
use serde_json::Value;
use user_visits::{build_visits, handler, VisitsConfig};

// One thread, as the other stream functions: Lambda sends one event at a time.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_json_logging();
    let config = VisitsConfig::from_env(&Env::process())?;
    let sdk_config = environment_sdk_config();
    let visits = build_visits(dynamodb_client(&sdk_config, &config.sdk), &config);
    let metrics = config.observability.sink_from_env()?;
    let (visits, metrics) = (&visits, metrics.as_ref());
    run(service_fn(move |event: LambdaEvent<Value>| {
        handler::handle(visits, metrics, event)
    }))
    .await
}
