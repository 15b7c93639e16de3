//! Composition root: logging, configuration, one DynamoDB client, then the runtime loop.

use lambda_http::{service_fn, Error, Request};
// lambda_http's loop, with an undecodable base64 body answered 400 (it would panic).
use offers_http::run;
use offers_shared::config::Env;
use offers_shared::dynamo::{dynamodb_client, environment_sdk_config};
use offers_shared::telemetry::init_json_logging;
use support_assignment::{build_support, handler, SupportConfig};

// One thread: Lambda sends one event at a time, and the SDK calls of an event
// interleave on it; a multi-threaded runtime only adds a wake-up of another
// thread (futex, context switch) to every request and response.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_json_logging();
    let config = SupportConfig::from_env(&Env::process())?;
    let sdk_config = environment_sdk_config();
    let support = build_support(dynamodb_client(&sdk_config, &config.sdk), &config);
    let support = &support;
    let metrics = config.observability.sink_from_env()?;
    let metrics = metrics.as_ref();
    run(
        metrics,
        service_fn(move |request: Request| handler::handle(support, request)),
    )
    .await
}
