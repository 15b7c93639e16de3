//! Function binaries run the way Lambda runs them: each instance a process
//! polling its function's local Runtime API, with the environment
//! template.yaml declares; an instance that exits is started again.

use crate::dynamodb_local::spawn_from_lasting_thread;
use crate::error::InvokeError;
use crate::invoke::Invoke;
use crate::runtime_api::{Answer, RuntimeApi};
use crate::stop::stopping;
use serde_json::Value;
use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The environment Lambda gives a function: its own variables (from
/// template.yaml), the AWS settings pointing at `endpoint` (DynamoDB Local),
/// and the Runtime API to poll.
pub fn lambda_environment(
    variables: &HashMap<String, String>,
    function_name: &str,
    endpoint: &str,
    runtime_api: &str,
) -> HashMap<String, String> {
    let mut environment = variables.clone();
    for (name, value) in [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_LAMBDA_RUNTIME_API", runtime_api),
        ("AWS_LAMBDA_FUNCTION_NAME", function_name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    ] {
        environment.insert(name.to_owned(), value.to_owned());
    }
    environment
        .entry("AWS_LAMBDA_LOG_LEVEL".to_owned())
        .or_insert_with(|| "INFO".to_owned());
    environment
}

/// How to run one function locally.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub logical_id: String,
    pub binary: PathBuf,
    /// Its variables from template.yaml (table names, settings).
    pub variables: HashMap<String, String>,
    pub endpoint: String,
    pub timeout: Duration,
    /// Processes polling the same Runtime API: how many invocations run at once.
    pub instances: usize,
    /// Where its stdout and stderr go (appended); discarded when `None`.
    pub log_file: Option<PathBuf>,
}

/// A function running locally. Invoking it queues the event on its Runtime
/// API; the first free instance takes it.
pub struct LocalFunction {
    pub logical_id: String,
    runtime: Arc<RuntimeApi>,
    timeout: Duration,
    pids: Arc<Mutex<Vec<u32>>>,
    supervisors: tokio::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl LocalFunction {
    /// Starts its Runtime API and instances; they run until `stop` turns true.
    pub async fn start(spec: FunctionSpec, stop: watch::Receiver<bool>) -> std::io::Result<Self> {
        if !spec.binary.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} is not built", spec.binary.display()),
            ));
        }
        let runtime = Arc::new(RuntimeApi::start().await?);
        let environment = lambda_environment(
            &spec.variables,
            &spec.logical_id,
            &spec.endpoint,
            &runtime.address(),
        );
        let pids = Arc::new(Mutex::new(Vec::new()));
        let mut supervisors = Vec::new();
        for _ in 0..spec.instances.max(1) {
            let (spec, environment, pids, stop) = (
                spec.clone(),
                environment.clone(),
                pids.clone(),
                stop.clone(),
            );
            supervisors.push(tokio::spawn(supervise(spec, environment, pids, stop)));
        }
        Ok(Self {
            logical_id: spec.logical_id,
            runtime,
            timeout: spec.timeout,
            pids,
            supervisors: tokio::sync::Mutex::new(supervisors),
        })
    }

    /// The process ids of its running instances.
    pub fn pids(&self) -> Vec<u32> {
        self.pids
            .lock()
            .map(|pids| pids.clone())
            .unwrap_or_default()
    }

    /// Waits until an instance has finished its init and asked for work;
    /// false if none has within `limit`.
    pub async fn ready(&self, limit: Duration) -> bool {
        let started = std::time::Instant::now();
        while self.runtime.first_poll().is_none() {
            if started.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Waits until every instance has been stopped (after `stop` turned true).
    pub async fn stopped(&self) {
        let supervisors: Vec<_> = self.supervisors.lock().await.drain(..).collect();
        for supervisor in supervisors {
            let _ = supervisor.await;
        }
    }
}

impl Invoke for LocalFunction {
    /// The function's response, or its error (an error response, a crash or
    /// a timeout) as a function error.
    async fn invoke(&self, event: Value) -> Result<Value, InvokeError> {
        match self.runtime.invoke(event, self.timeout).await {
            Ok(Answer::Response(response)) => Ok(response),
            Ok(Answer::Error(error)) => Err(InvokeError::Function(error)),
            Err(error) => Err(error),
        }
    }
}

/// Keeps one instance running: starts it, and starts it again (after a
/// pause) when it exits, until `stop`; then stops it (SIGTERM, then SIGKILL).
async fn supervise(
    spec: FunctionSpec,
    environment: HashMap<String, String>,
    pids: Arc<Mutex<Vec<u32>>>,
    mut stop: watch::Receiver<bool>,
) {
    while !stopping(&stop) {
        let mut child = match spawn(&spec, &environment) {
            Ok(child) => child,
            Err(err) => {
                tracing::error!(function = spec.logical_id.as_str(), error = %err, "instance not started");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    _ = stop.changed() => break,
                }
            }
        };
        let pid = child.id();
        if let Ok(mut pids) = pids.lock() {
            pids.push(pid);
        }
        let exited = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) => {}
                Err(_) => break None,
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stop.changed() => {}
            }
            if stopping(&stop) {
                terminate(&mut child).await;
                break None;
            }
        };
        if let Ok(mut pids) = pids.lock() {
            pids.retain(|known| *known != pid);
        }
        if let Some(status) = exited {
            tracing::warn!(function = spec.logical_id.as_str(), %status, "instance exited; starting another");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

fn spawn(spec: &FunctionSpec, environment: &HashMap<String, String>) -> std::io::Result<Child> {
    let mut command = Command::new(&spec.binary);
    command
        .env_clear()
        .envs(environment)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    match &spec.log_file {
        Some(path) => {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            command.stdout(log.try_clone()?).stderr(log);
        }
        None => {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    spawn_from_lasting_thread(command)
}

async fn terminate(child: &mut Child) {
    // SAFETY: kill(2) on the pid of a child we own and have not reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    for _ in 0..20 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lambda_environment_points_at_the_runtime_api_and_endpoint() {
        let variables = HashMap::from([("TABLE".to_owned(), "t".to_owned())]);
        let environment = lambda_environment(&variables, "F", "http://127.0.0.1:1", "127.0.0.1:2");
        assert_eq!(environment["TABLE"], "t");
        assert_eq!(environment["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:2");
        assert_eq!(environment["AWS_ENDPOINT_URL"], "http://127.0.0.1:1");
        assert_eq!(environment["AWS_LAMBDA_FUNCTION_NAME"], "F");
        assert_eq!(environment["AWS_LAMBDA_LOG_LEVEL"], "INFO");
    }
}
