//! Composition root: logging, configuration, one DynamoDB client, then the runtime loop.

use lambda_http::{run, service_fn, Error, Request};
use offer_lookup::{build_lookup, handler, LookupConfig};
use offers_shared::config::Env;
use offers_shared::dynamo::dynamodb_client;
use offers_shared::telemetry::init_json_logging;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_json_logging();
    let config = LookupConfig::from_env(&Env::process())?;
    let sdk_config = aws_config::load_from_env().await;
    let lookup = build_lookup(dynamodb_client(&sdk_config, &config.sdk), &config);
    let lookup = &lookup;
    run(service_fn(move |request: Request| {
        handler::handle(lookup, request)
    }))
    .await
}
