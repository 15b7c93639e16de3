//! The workspace's binaries as processes: functions started the way Lambda
//! starts them, their peak memory, and the `local-stack` on free ports.

use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A built function binary of this workspace (`target/<profile>/<name>`), next
/// to the running test or bench. `scripts/test.sh` builds them first.
pub fn function_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target profile dir");
    let binary = profile_dir.join(name);
    assert!(
        binary.is_file(),
        "{} is not built: run `cargo build --workspace --bins` (scripts/test.sh does) first",
        binary.display()
    );
    binary
}

/// Starts a function binary the way Lambda does: the environment template.yaml
/// gives it, the standard AWS settings pointing at `endpoint`, and
/// `AWS_LAMBDA_RUNTIME_API` pointing at `runtime`.
pub fn spawn_function(
    binary: &std::path::Path,
    environment: &HashMap<String, String>,
    endpoint: &str,
    runtime: &offers_local::RuntimeApi,
) -> std::process::Child {
    spawn_function_with(
        binary,
        environment,
        endpoint,
        runtime,
        std::process::Stdio::null(),
    )
}

/// The same, its stdout (logs and EMF lines) going to `stdout` (piped: for
/// the test to read).
pub fn spawn_function_with(
    binary: &std::path::Path,
    environment: &HashMap<String, String>,
    endpoint: &str,
    runtime: &offers_local::RuntimeApi,
    stdout: std::process::Stdio,
) -> std::process::Child {
    let mut variables = environment.clone();
    variables.insert("AWS_LAMBDA_LOG_LEVEL".into(), "WARN".into());
    let name = binary
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("function");
    let mut command = std::process::Command::new(binary);
    command
        .env_clear()
        .envs(offers_local::functions::lambda_environment(
            &variables,
            name,
            endpoint,
            &runtime.address(),
        ))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(stdout)
        .stderr(std::process::Stdio::piped());
    command.spawn().expect("spawn function binary")
}

/// Runs the function binary `name` for one invocation with `event` (through
/// a Runtime API of its own), then stops it: its answer and its stdout (its
/// log and EMF lines).
pub async fn invoke_binary_once(
    name: &str,
    environment: &HashMap<String, String>,
    endpoint: &str,
    event: Value,
) -> (
    Result<offers_local::Answer, offers_local::InvokeError>,
    String,
) {
    let runtime = offers_local::RuntimeApi::start()
        .await
        .expect("runtime api");
    let mut function = spawn_function_with(
        &function_binary(name),
        environment,
        endpoint,
        &runtime,
        Stdio::piped(),
    );
    let answer = runtime.invoke(event, Duration::from_secs(30)).await;
    let _ = function.kill();
    let stdout = tokio::task::spawn_blocking(move || {
        let _ = function.wait();
        let mut text = String::new();
        if let Some(mut pipe) = function.stdout.take() {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
    .await
    .expect("stdout");
    (answer, stdout)
}

/// The peak resident set (VmHWM) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// The duration at `fraction` of sorted durations (0.5: the median).
pub fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// A duration in milliseconds.
pub fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// User and system CPU time of a process (for the benches).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTime {
    pub user: Duration,
    pub system: Duration,
}

impl CpuTime {
    /// The CPU time of a process so far (all its threads): utime and stime
    /// of `/proc/<pid>/stat`, in clock ticks (10 ms on Linux).
    pub fn of_process(pid: u32) -> CpuTime {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
        // The command name may hold spaces: fields are counted after its closing parenthesis.
        let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
            .split_whitespace()
            .collect();
        // Fields 14 and 15 of stat(5), counted from 1 with pid and comm as 1 and 2.
        let ticks = |index: usize| -> u64 { fields[index - 3].parse().expect("ticks") };
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let time = |ticks: u64| Duration::from_secs_f64(ticks as f64 / per_second);
        CpuTime {
            user: time(ticks(14)),
            system: time(ticks(15)),
        }
    }

    /// The CPU time of this process so far (getrusage, microseconds).
    pub fn of_self() -> CpuTime {
        Self::of_usage(libc::RUSAGE_SELF)
    }

    /// The CPU time of this process's children that have ended and been
    /// waited for (getrusage RUSAGE_CHILDREN): a command's, once it is done.
    pub fn of_ended_children() -> CpuTime {
        Self::of_usage(libc::RUSAGE_CHILDREN)
    }

    fn of_usage(who: libc::c_int) -> CpuTime {
        // SAFETY: getrusage writes the struct it is given.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(who, &mut usage);
            usage
        };
        let time = |value: libc::timeval| {
            Duration::from_secs(value.tv_sec as u64) + Duration::from_micros(value.tv_usec as u64)
        };
        CpuTime {
            user: time(usage.ru_utime),
            system: time(usage.ru_stime),
        }
    }

    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }

    /// Milliseconds of CPU per item, over `items`.
    pub fn per_item_ms(self, items: usize) -> f64 {
        self.user_per_item_ms(items) + self.system_per_item_ms(items)
    }

    pub fn user_per_item_ms(self, items: usize) -> f64 {
        self.user.as_secs_f64() * 1000.0 / items.max(1) as f64
    }

    pub fn system_per_item_ms(self, items: usize) -> f64 {
        self.system.as_secs_f64() * 1000.0 / items.max(1) as f64
    }
}

/// Starts a function binary that must stop at init (a bad configuration) and
/// waits, at most 20 s, for it to exit: its exit status and what it wrote to stderr.
pub async fn exit_at_init(
    binary: &std::path::Path,
    environment: &HashMap<String, String>,
    endpoint: &str,
    runtime: &offers_local::RuntimeApi,
) -> (std::process::ExitStatus, String) {
    let mut function = spawn_function(binary, environment, endpoint, runtime);
    let exited = tokio::task::spawn_blocking(move || {
        let status = function.wait().expect("wait for the function");
        let mut stderr = String::new();
        if let Some(mut pipe) = function.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
        }
        (status, stderr)
    });
    tokio::time::timeout(std::time::Duration::from_secs(20), exited)
        .await
        .expect("exits promptly")
        .expect("join")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// A `local-stack` process started on free ports, its banner and the pids
/// it started. Dropping it stops the stack.
pub struct LocalStack {
    pub child: Child,
    pub banner: Vec<String>,
    pub pids: Vec<u32>,
    pub dynamodb: String,
    pub http_port: u16,
    /// moto's port: S3 with the plan bucket.
    pub s3_port: u16,
    /// The Step Functions stand-in's.
    pub step_functions_port: u16,
}

impl LocalStack {
    /// Starts `local-stack` and waits (at most 120 s) for its "ready" banner.
    pub fn start(data_dir: &std::path::Path) -> LocalStack {
        Self::start_with(data_dir, &[])
    }

    /// As [`Self::start`], with template parameter values (`NAME=VALUE`,
    /// as `sam deploy --parameter-overrides` gives them).
    pub fn start_with(data_dir: &std::path::Path, parameters: &[&str]) -> LocalStack {
        let (dynamodb_port, http_port) = (free_port(), free_port());
        let (s3_port, step_functions_port) = (free_port(), free_port());
        let mut child = Command::new(function_binary("local-stack"))
            .args(parameters.iter().flat_map(|p| ["--parameter", p]))
            .args(["--port", &dynamodb_port.to_string()])
            .args(["--http-port", &http_port.to_string()])
            .args(["--s3-port", &s3_port.to_string()])
            .args(["--step-functions-port", &step_functions_port.to_string()])
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--fresh")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("local-stack starts");
        let stdout = child.stdout.take().expect("stdout");
        let (lines, banner_lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let started = Instant::now();
        let mut banner = Vec::new();
        loop {
            let left = Duration::from_secs(120).saturating_sub(started.elapsed());
            match banner_lines.recv_timeout(left) {
                Ok(line) => {
                    let done = line.starts_with("Ctrl-C stops everything");
                    banner.push(line);
                    if done {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    panic!("no ready banner in time; got {banner:#?}");
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait();
                    panic!("local-stack ended ({status:?}) before it was ready; got {banner:#?}");
                }
            }
        }
        assert!(
            banner.iter().any(|l| l == "local stack ready"),
            "{banner:#?}"
        );
        let pids: Vec<u32> = banner
            .iter()
            .find_map(|line| line.trim().strip_prefix("pids"))
            .map(|pids| {
                pids.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        // Keep draining stdout so the stack never blocks on a full pipe.
        std::thread::spawn(move || while banner_lines.recv().is_ok() {});
        LocalStack {
            child,
            banner,
            pids,
            dynamodb: format!("http://127.0.0.1:{dynamodb_port}"),
            http_port,
            s3_port,
            step_functions_port,
        }
    }

    /// `offers --local --endpoint-url <this stack> ARGS` (S3 and Step
    /// Functions on this stack's ports): exit code and stdout.
    pub fn offers(&self, args: &[&str]) -> (i32, String) {
        let output = Command::new(function_binary("offers"))
            .args(["--local", "--endpoint-url", &self.dynamodb])
            .env(
                "AWS_ENDPOINT_URL_S3",
                format!("http://127.0.0.1:{}", self.s3_port),
            )
            .env(
                "AWS_ENDPOINT_URL_SFN",
                format!("http://127.0.0.1:{}", self.step_functions_port),
            )
            .args(args)
            .output()
            .expect("offers runs");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    }

    /// Polls `GET path` as `user` (of `groups`) every 5 ms until `ready`
    /// holds of its status and body; panics `limit` after `started`.
    pub fn poll_until(
        &self,
        path: &str,
        user: &str,
        groups: &str,
        started: Instant,
        limit: Duration,
        ready: impl Fn(u16, &Value) -> bool,
    ) {
        loop {
            let (status, body) = self.get_as(path, user, groups);
            if ready(status, &body) {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "{path} as {user}: not ready after {limit:?}: {status} {body}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A GET over HTTP with the local identity header: status and JSON body.
    pub fn get(&self, path: &str, user: &str) -> (u16, Value) {
        self.get_as(path, user, "")
    }

    /// A GET as a caller of these (comma-separated) groups, e.g. `support`.
    pub fn get_as(&self, path: &str, user: &str, groups: &str) -> (u16, Value) {
        self.send("GET", path, user, groups, None)
    }

    /// A request over HTTP with the local identity header and an optional
    /// JSON body: status and JSON body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        user: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        self.send(method, path, user, "", body)
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        user: &str,
        groups: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let groups = if groups.is_empty() {
            String::new()
        } else {
            format!("x-local-groups: {groups}\r\n")
        };
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nx-local-user: {user}\r\n{groups}\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        self.exchange(request.as_bytes())
    }

    /// POST `body` with `headers` (`Name: value` lines) and no local identity.
    pub fn post(&self, path: &str, headers: &[String], body: &[u8]) -> (u16, Value) {
        let mut request = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\n");
        for header in headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.exchange(&bytes)
    }

    /// PUT `body` as the object `bucket/key` of the stack's S3 (moto), as
    /// `curl -T FILE URL` does (no Content-Type): the status.
    pub fn put_object(&self, bucket: &str, key: &str, body: &[u8]) -> u16 {
        let mut request = format!(
            "PUT /{bucket}/{key} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.s3_port,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        exchange(self.s3_port, &request).0
    }

    fn exchange(&self, request: &[u8]) -> (u16, Value) {
        exchange(self.http_port, request)
    }

    /// Ctrl-C, as a person would press it; waits at most 300 s for the exit.
    /// The stack first finishes the batches in hand (with their retries),
    /// which on a busy machine can take minutes: a completion wait, not a
    /// timed assertion.
    pub fn interrupt(&mut self) -> Option<std::process::ExitStatus> {
        // SAFETY: kill(2) on the pid of a child we own and have not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(300) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

/// One HTTP/1.1 exchange with a server on 127.0.0.1: the status and the
/// body as JSON (`Null` when it is not).
fn exchange(port: u16, request: &[u8]) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the server answers");
    stream.write_all(request).expect("request sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A failing test still stops the stack and what it started.
impl Drop for LocalStack {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) && self.interrupt().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
