//! Composition root: logging, configuration, clients, then the runtime loop.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use offer_dispatcher::{build_dispatcher, handler, DispatcherConfig};
use offers_shared::config::Env;
use offers_shared::dynamo::dynamodb_client;
use offers_shared::telemetry::init_json_logging;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_json_logging();
    let config = DispatcherConfig::from_env(&Env::process())?;
    let sdk_config = aws_config::load_from_env().await;
    let dispatcher = build_dispatcher(dynamodb_client(&sdk_config, &config.sdk), &config);
    let dispatcher = &dispatcher;
    run(service_fn(move |event: LambdaEvent<Value>| {
        handler::handle(dispatcher, event)
    }))
    .await
}
