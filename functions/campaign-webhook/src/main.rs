//! Composition root: logging, configuration, the signing secret (read once,
//! from Secrets Manager), one DynamoDB client, then the runtime loop.

use campaign_webhook::secret::secrets_endpoint;
use campaign_webhook::{
    build_webhook, handler, load_signing_secret, secrets_client, WebhookConfig,
};
use lambda_http::{service_fn, Error, Request};
// lambda_http's loop, with an undecodable base64 body answered 400 (it would panic).
use offers_http::run;
use offers_shared::config::Env;
use offers_shared::dynamo::{dynamodb_client, environment_sdk_config};
use offers_shared::telemetry::init_json_logging;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_json_logging();
    let config = WebhookConfig::from_env(&Env::process())?;
    let sdk_config = environment_sdk_config();
    // At init: a function that cannot read its secret fails to start, and
    // no request is ever checked against a missing key.
    let secret = load_signing_secret(
        &secrets_client(&sdk_config, &config.sdk, secrets_endpoint()),
        &config.signing_secret_arn,
    )
    .await?;
    let webhook = build_webhook(dynamodb_client(&sdk_config, &config.sdk), &config, secret);
    let webhook = &webhook;
    let metrics = config.observability.sink_from_env()?;
    let metrics = metrics.as_ref();
    run(
        metrics,
        service_fn(move |request: Request| handler::handle(webhook, request)),
    )
    .await
}
