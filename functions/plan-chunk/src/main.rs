//! Composition root: logging, configuration, the pending table, then the runtime loop.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use offers_shared::config::Env;
use offers_shared::dynamo::{dynamodb_client, environment_sdk_config, PendingTable};
use offers_shared::telemetry::init_json_logging;
use plan_chunk::{handler, PlanChunkConfig};
use serde_json::Value;

// One thread: Lambda sends one event at a time; the writes are concurrent futures.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_json_logging();
    let config = PlanChunkConfig::from_env(&Env::process())?;
    let sdk_config = environment_sdk_config();
    let pending = PendingTable::new(
        dynamodb_client(&sdk_config, &config.sdk),
        config.tables.pending()?,
    );
    let (pending, config) = (&pending, &config);
    run(service_fn(move |event: LambdaEvent<Value>| {
        handler::handle(pending, config, event)
    }))
    .await
}
