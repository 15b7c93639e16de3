//! Composition root: logging, configuration, one DynamoDB client, then the runtime loop.

use lambda_http::{service_fn, Error, Request};
use offer_activity::{build_activity, handler, ActivityConfig};
// lambda_http's loop, with an undecodable base64 body answered 400 (it would panic).
use offers_http::run;
use offers_shared::config::Env;
use offers_shared::dynamo::{dynamodb_client, environment_sdk_config};
use offers_shared::telemetry::init_json_logging;

// One thread, as the lookup: Lambda sends one event at a time.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_json_logging();
    let config = ActivityConfig::from_env(&Env::process())?;
    let sdk_config = environment_sdk_config();
    let activity = build_activity(dynamodb_client(&sdk_config, &config.sdk), &config);
    let activity = &activity;
    let metrics = config.observability.sink_from_env()?;
    let metrics = metrics.as_ref();
    run(
        metrics,
        service_fn(move |request: Request| handler::handle(activity, request)),
    )
    .await
}
