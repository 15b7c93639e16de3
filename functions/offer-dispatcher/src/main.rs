//! Composition root: logging, configuration, clients, then the runtime loop.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use offer_dispatcher::{build_dispatcher, handler, DispatcherConfig};
use offers_shared::config::Env;
use offers_shared::dynamo::{dynamodb_client, environment_sdk_config};
use offers_shared::telemetry::init_json_logging;
use serde_json::Value;

// One thread: Lambda sends one event at a time, and the SDK calls of an event
// interleave on it; a multi-threaded runtime only adds a wake-up of another
// thread (futex, context switch) to every request and response.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_json_logging();
    let config = DispatcherConfig::from_env(&Env::process())?;
    let sdk_config = environment_sdk_config();
    let dispatcher = build_dispatcher(dynamodb_client(&sdk_config, &config.sdk), &config);
    let metrics = config.observability.sink_from_env()?;
    let (dispatcher, metrics) = (&dispatcher, metrics.as_ref());
    run(service_fn(move |event: LambdaEvent<Value>| {
        handler::handle(dispatcher, metrics, event)
    }))
    .await
}
