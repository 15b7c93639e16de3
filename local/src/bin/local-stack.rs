//! Runs the system's storage locally: DynamoDB Local (persistent under
//! `.local/data` unless `--fresh`), every table of template.yaml, the sample
//! catalog; prints the environment the functions need, and stops cleanly on Ctrl-C.

use offers_local::{local_sdk_config, workspace_root, DynamoDbLocal, SamTemplate, StartOptions};
use std::collections::HashMap;
use std::process::ExitCode;

const TABLE_PREFIX: &str = "offers-local-";
const FUNCTIONS: [&str; 1] = ["OfferDispatcherFunction"];

struct Options {
    port: u16,
    fresh: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        port: 8000,
        fresh: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                options.port = args
                    .next()
                    .and_then(|port| port.parse().ok())
                    .ok_or("--port takes a port number")?;
            }
            "--fresh" => options.fresh = true,
            "-h" | "--help" => {
                println!("usage: local-stack [--port PORT] [--fresh]\n\n  --port PORT  DynamoDB Local's port (default 8000)\n  --fresh      start from empty tables (data persists between runs otherwise)");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}; see --help")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("local-stack: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let options = options()?;
    let data = workspace_root().join(".local").join("data");
    if options.fresh {
        let _ = std::fs::remove_dir_all(&data);
    }
    let mut local = DynamoDbLocal::start(StartOptions {
        port: Some(options.port),
        db_path: Some(data.clone()),
    })
    .map_err(|err| err.to_string())?;
    let endpoint = local.endpoint();
    let sdk = local_sdk_config(&endpoint).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let template = SamTemplate::project().map_err(|err| err.to_string())?;
    let tables = template
        .create_tables(&client, TABLE_PREFIX)
        .await
        .map_err(|err| err.to_string())?;
    let catalog = load_sample_catalog(&client, tables.name("OfferCatalogTable")).await?;

    println!("DynamoDB Local: {endpoint} (data in {})", data.display());
    for (logical_id, name) in &tables.names {
        println!("  {logical_id:<34} {name}");
    }
    println!("sample catalog: {catalog} items from events/sample-catalog.json\n");
    println!("environment for the functions:");
    let mut environment: HashMap<String, String> = HashMap::new();
    for function in FUNCTIONS {
        environment.extend(
            template
                .function_environment(function, &tables)
                .map_err(|err| err.to_string())?,
        );
    }
    let mut names: Vec<_> = environment.keys().cloned().collect();
    names.sort();
    println!("  export AWS_ENDPOINT_URL={endpoint} AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local");
    for name in names {
        println!("  export {name}={}", environment[&name]);
    }
    println!("\nCtrl-C stops DynamoDB Local.");
    tokio::signal::ctrl_c()
        .await
        .map_err(|err| err.to_string())?;
    local.stop().map_err(|err| err.to_string())?;
    println!("stopped");
    Ok(())
}

async fn load_sample_catalog(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<usize, String> {
    let path = workspace_root().join("events").join("sample-catalog.json");
    let text =
        std::fs::read_to_string(&path).map_err(|err| format!("{}: {err}", path.display()))?;
    let items: Vec<serde_json::Value> =
        serde_json::from_str(&text).map_err(|err| format!("{}: {err}", path.display()))?;
    for item in &items {
        let item: HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            serde_dynamo::to_item(item).map_err(|err| err.to_string())?;
        client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|err| {
                aws_smithy_types::error::display::DisplayErrorContext(err).to_string()
            })?;
    }
    Ok(items.len())
}
