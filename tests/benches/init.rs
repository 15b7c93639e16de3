//! Each function's process init: from exec to its first poll of the Lambda
//! Runtime API (JSON logging, configuration from the environment, the AWS
//! configuration and DynamoDB client), measured against a minimal local
//! Runtime API. Target: at most 15 ms. The floor is a trivial process (`true`)
//! spawned the same way, for the cost of exec itself on this machine. Also
//! prints each release binary's size and its zipped size (what Lambda stores).
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p offers-integration-tests --bench init`

use offers_integration_tests::*;
use offers_local::{RuntimeApi, SamTemplate, TableSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 30;

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * fraction).round() as usize]
}

fn zipped_size(path: &std::path::Path) -> Option<u64> {
    let script = "import io,sys,zipfile\nb=io.BytesIO()\nz=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED)\nz.write(sys.argv[1],'bootstrap')\nz.close()\nprint(len(b.getvalue()))";
    let output = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// Time from spawn to the first `GET /runtime/invocation/next`, `RUNS` times.
async fn init_times(
    binary: &std::path::Path,
    environment: &std::collections::HashMap<String, String>,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let runtime = RuntimeApi::start().await.expect("runtime api");
        let started = Instant::now();
        let mut function = spawn_function(binary, environment, "http://127.0.0.1:9", &runtime);
        let polled = loop {
            if let Some(at) = runtime.first_poll() {
                break at;
            }
            if let Ok(Some(status)) = function.try_wait() {
                panic!("{} exited at init: {status}", binary.display());
            }
            assert!(started.elapsed() < Duration::from_secs(10), "no poll");
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        times.push(polled.saturating_duration_since(started));
        let _ = function.kill();
        let _ = function.wait();
    }
    times.sort();
    times
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let template = SamTemplate::project().expect("template.yaml");
    // Init reads table names only; no table is touched before the first event.
    let tables = TableSet {
        names: template
            .logical_ids_of_type("AWS::DynamoDB::Table")
            .expect("tables")
            .into_iter()
            .map(|id| (id.clone(), format!("init-bench-{id}")))
            .collect(),
    };

    let mut floor = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        let mut child = Command::new("true")
            .stdout(Stdio::null())
            .spawn()
            .expect("true");
        let _ = child.wait();
        floor.push(started.elapsed());
    }
    floor.sort();
    println!("init bench: exec to first Runtime API poll, {RUNS} runs each, release binaries");
    println!(
        "  floor (spawn and exit of `true`): p50 {:.2} ms",
        percentile(&floor, 0.5).as_secs_f64() * 1e3
    );
    for function in template.function_ids().expect("functions") {
        let name = template.function_binary(&function).expect("binary");
        let binary = function_binary(&name);
        let mut environment = template
            .function_environment(&function, &tables)
            .expect("environment");
        // The webhook reads its signing secret at init: from moto, as on the local stack.
        if environment.contains_key("WEBHOOK_SIGNING_SECRET_ARN") {
            let (endpoint, arn) = shared_signing_secret().await;
            environment.insert("WEBHOOK_SIGNING_SECRET_ARN".into(), arn.clone());
            environment.insert(
                offers_local::moto::SECRETS_MANAGER_ENDPOINT_VARIABLE.into(),
                endpoint.clone(),
            );
        }
        let times = init_times(&binary, &environment).await;
        let p50 = percentile(&times, 0.5);
        let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
        println!(
            "  {name:<20} p50 {:>6.2} ms  p90 {:>6.2} ms  max {:>6.2} ms  (target <= 15 ms: {})  binary {:.2} MiB, zipped {:.2} MiB",
            p50.as_secs_f64() * 1e3,
            percentile(&times, 0.9).as_secs_f64() * 1e3,
            times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
            if p50 <= Duration::from_millis(15) { "met" } else { "NOT met" },
            size as f64 / 1_048_576.0,
            zipped_size(&binary).unwrap_or(0) as f64 / 1_048_576.0,
        );
    }
}
