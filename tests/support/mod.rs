//! Test bed for the end-to-end tests: the real DynamoDB Local, tables from
//! template.yaml, rows written with the SDK, the stream read as Lambda would.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use lambda_runtime::{Context, LambdaEvent};
use offer_dispatcher::DispatcherConfig;
use offer_dispatcher::{build_dispatcher, handler};
use offers_local::streams::lambda_event;
use offers_local::{
    local_sdk_config, DynamoDbLocal, SamTemplate, StartOptions, StreamReader, TableSet,
};
use offers_shared::config::Env;
use offers_shared::dynamo::dynamodb_client;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub const PENDING: &str = "PendingPersonalizedOffersTable";
pub const OFFERS: &str = "LoyaltyOffersTable";
pub const CATALOG: &str = "OfferCatalogTable";
pub const REJECTED: &str = "RejectedPersonalizedOffersTable";
pub const DISPATCHER: &str = "OfferDispatcherFunction";

/// One DynamoDB Local per test binary, started on first use. It fails loudly
/// when it cannot start: no test skips itself.
pub fn shared_dynamodb() -> &'static DynamoDbLocal {
    static LOCAL: OnceLock<DynamoDbLocal> = OnceLock::new();
    LOCAL.get_or_init(|| {
        DynamoDbLocal::start(StartOptions::default()).unwrap_or_else(|err| panic!("{err}"))
    })
}

/// Tables of one test, named with a prefix of their own on a DynamoDB Local.
pub struct TestBed {
    pub sdk: SdkConfig,
    pub client: Client,
    pub template: SamTemplate,
    pub tables: TableSet,
}

impl TestBed {
    /// A test bed on the shared DynamoDB Local.
    pub async fn new() -> Self {
        Self::on(&shared_dynamodb().endpoint()).await
    }

    /// A test bed on the DynamoDB Local at `endpoint`.
    pub async fn on(endpoint: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        offers_shared::telemetry::init_json_logging();
        let sdk = local_sdk_config(endpoint).await;
        let client = Client::new(&sdk);
        let template = SamTemplate::project().expect("template.yaml loads");
        let prefix = format!(
            "t{}-{}-",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let tables = template
            .create_tables(&client, &prefix)
            .await
            .expect("tables from template.yaml");
        Self {
            sdk,
            client,
            template,
            tables,
        }
    }

    pub fn table(&self, logical_id: &str) -> &str {
        self.tables.name(logical_id)
    }

    /// The environment template.yaml gives `function`, with `overrides` on top.
    pub fn environment(
        &self,
        function: &str,
        overrides: &[(&str, &str)],
    ) -> HashMap<String, String> {
        let mut environment = self
            .template
            .function_environment(function, &self.tables)
            .expect("function environment");
        environment.extend(
            overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        environment
    }

    pub fn dispatcher_config(&self, overrides: &[(&str, &str)]) -> DispatcherConfig {
        let environment = self.environment(DISPATCHER, overrides);
        DispatcherConfig::from_env(&Env(move |name: &str| environment.get(name).cloned()))
            .expect("dispatcher config")
    }

    /// The dispatcher exactly as main.rs wires it, configured from template.yaml.
    pub fn dispatcher(&self, overrides: &[(&str, &str)]) -> offer_dispatcher::DynamoDispatcher {
        let config = self.dispatcher_config(overrides);
        build_dispatcher(dynamodb_client(&self.sdk, &config.sdk), &config)
    }

    pub async fn put(&self, logical_id: &str, item: Value) {
        let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(item).expect("item");
        self.client
            .put_item()
            .table_name(self.table(logical_id))
            .set_item(Some(item))
            .send()
            .await
            .expect("put item");
    }

    pub async fn delete_pending(&self, user_id: &str, sort_key: &str) {
        self.client
            .delete_item()
            .table_name(self.table(PENDING))
            .key("userId", AttributeValue::S(user_id.into()))
            .key("sortKey", AttributeValue::S(sort_key.into()))
            .send()
            .await
            .expect("delete pending");
    }

    /// Every item of a table, as plain JSON.
    pub async fn scan(&self, logical_id: &str) -> Vec<Map<String, Value>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(self.table(logical_id))
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            for item in page.items() {
                items.push(serde_dynamo::from_item(item.clone()).expect("item as JSON"));
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        items
    }

    pub async fn stream(&self) -> StreamReader {
        StreamReader::open(&self.sdk, &self.client, self.table(PENDING))
            .await
            .expect("pending stream")
    }

    pub async fn load_sample_catalog(&self) {
        for item in sample_catalog() {
            self.put(CATALOG, item).await;
        }
    }
}

/// Calls the handler the way Lambda does, with a default context.
pub async fn invoke(
    dispatcher: &offer_dispatcher::DynamoDispatcher,
    records: &[Value],
) -> Vec<String> {
    invoke_with(dispatcher, records, Context::default()).await
}

/// Returns the sequence numbers reported in `batchItemFailures`.
pub async fn invoke_with(
    dispatcher: &offer_dispatcher::DynamoDispatcher,
    records: &[Value],
    context: Context,
) -> Vec<String> {
    let response = handler::handle(dispatcher, LambdaEvent::new(lambda_event(records), context))
        .await
        .expect("handler");
    response
        .batch_item_failures
        .into_iter()
        .filter_map(|failure| failure.item_identifier)
        .collect()
}

pub const SEED_OFFER: &str = "290fb746-9850-4994-b7d7-5630046792e1";
pub const SEED_USER: &str = "us-east-1:192991f1-ede8-47bf-89e1-3942d4ab8aaa";
pub const SEED_STATUS: &str = "{\"reward\": {\"value\": \"100\"},\"goals\": {\"visit1\": {\"condition\": {\"total_cost\": \"1\"}},\"visit2\": {\"condition\": {\"total_cost\": \"1\"}}}}";

/// The sample catalog of events/sample-catalog.json, plus a config offer
/// without a template for the `missing_template` case.
pub fn sample_catalog() -> Vec<Value> {
    let mut catalog: Vec<Value> =
        serde_json::from_value(read_json("events/sample-catalog.json")).expect("catalog list");
    catalog.push(
        json!({"id": "co-untemplated", "kind": "configOffer", "name": "No template", "rules": {}}),
    );
    catalog
}

/// A JSON file of the workspace, e.g. a sample event.
pub fn read_json(relative: &str) -> Value {
    let path = offers_local::workspace_root().join(relative);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// A valid pending row for `co-fries`, as a campaign tool writes it.
pub fn fries_row(user_id: &str, sort_key: &str) -> Value {
    json!({
        "userId": user_id,
        "sortKey": sort_key,
        "offerId": "co-fries",
        "campaignId": "camp-1",
        "ttl": future_epoch(30),
        "startDate": "2024-01-01T00:00:00+0000",
        "expiryDate": future_date(30),
        "rank": 1,
        "rules": {"minimumSpend": 7.5}
    })
}

/// The contract's challenge example with its expiry moved into the future.
pub fn seed_challenge_row(expiry: &str) -> Value {
    json!({
        "userId": SEED_USER,
        "sortKey": "e2dd4cb3-9b0f-479c-8e1b-e42234f27314+d2dd9cb3-9b0f-479c-8e1b-e40046f57170",
        "challengeStatus": SEED_STATUS,
        "challengeType": "frequency",
        "expiryDate": expiry,
        "frequency": SEED_OFFER,
        "offerId": SEED_OFFER,
        "rank": 12,
        "startDate": "2023-10-20T17:37:37+0000",
        "taskId": "e2dd4cb3-9b0f-479c-8e1b-e42234f27314"
    })
}

pub fn future_date(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days))
        .format("%Y-%m-%dT%H:%M:%S+0000")
        .to_string()
}

pub fn future_epoch(days: i64) -> i64 {
    (chrono::Utc::now() + chrono::Duration::days(days)).timestamp()
}

pub fn inserts(records: &[Value]) -> Vec<Value> {
    records
        .iter()
        .filter(|record| record["eventName"] == "INSERT")
        .cloned()
        .collect()
}

// ------------------------------------------------------------ offer lookup --
pub const LOOKUP: &str = "OfferLookupFunction";

impl TestBed {
    pub fn lookup_config(&self, overrides: &[(&str, &str)]) -> offer_lookup::LookupConfig {
        let environment = self.environment(LOOKUP, overrides);
        offer_lookup::LookupConfig::from_env(&Env(move |name: &str| environment.get(name).cloned()))
            .expect("lookup config")
    }

    /// The lookup exactly as its main.rs wires it, configured from template.yaml.
    pub fn lookup(&self, overrides: &[(&str, &str)]) -> offer_lookup::DynamoLookup {
        let config = self.lookup_config(overrides);
        offer_lookup::build_lookup(dynamodb_client(&self.sdk, &config.sdk), &config)
    }

    /// Puts pending rows and hands what the stream shows to the dispatcher;
    /// returns the `personalizedOfferId` of each row's offer, by sort key.
    pub async fn dispatch_rows(
        &self,
        stream: &mut StreamReader,
        rows: &[Value],
    ) -> HashMap<String, String> {
        for row in rows {
            self.put(PENDING, row.clone()).await;
        }
        let records = stream.read_new().await.expect("stream");
        let failures = invoke(&self.dispatcher(&[]), &records).await;
        assert!(failures.is_empty(), "dispatch failures: {failures:?}");
        let wanted: Vec<&str> = rows
            .iter()
            .filter_map(|row| row["sortKey"].as_str())
            .collect();
        let ids: HashMap<String, String> = self
            .scan(OFFERS)
            .await
            .into_iter()
            .filter_map(|offer| {
                let sort_key = offer.get("sortKey")?.as_str()?.to_owned();
                let id = offer.get("personalizedOfferId")?.as_str()?.to_owned();
                wanted
                    .contains(&sort_key.as_str())
                    .then_some((sort_key, id))
            })
            .collect();
        assert_eq!(ids.len(), rows.len(), "one offer per row");
        ids
    }
}

/// Who an API Gateway v2 test event says is calling.
#[derive(Debug, Clone, Copy)]
pub enum Identity<'a> {
    Nobody,
    /// JWT authorizer with this `sub`.
    Jwt(&'a str),
    /// IAM authorizer with this Cognito identity id.
    Iam(&'a str),
    /// Both: the Cognito identity id and a JWT `sub`.
    IamAndJwt(&'a str, &'a str),
}

/// An API Gateway HTTP API (payload 2.0) event, as the function receives it.
pub fn api_event(method: &str, path: &str, query: &str, identity: Identity<'_>) -> Value {
    let jwt = |sub: &str| {
        json!({"claims": {"sub": sub, "iss": "https://cognito-idp.us-east-1.amazonaws.com/example",
                                             "aud": "example-client-id", "token_use": "id"}, "scopes": null})
    };
    let iam = |identity_id: &str| {
        json!({"cognitoIdentity": {"amr": ["authenticated"], "identityId": identity_id,
                                                             "identityPoolId": "us-east-1:00000000-0000-0000-0000-000000000000"}})
    };
    let authorizer = match identity {
        Identity::Nobody => Value::Null,
        Identity::Jwt(sub) => json!({"jwt": jwt(sub)}),
        Identity::Iam(identity_id) => json!({"iam": iam(identity_id)}),
        Identity::IamAndJwt(identity_id, sub) => json!({"iam": iam(identity_id), "jwt": jwt(sub)}),
    };
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"accept": "application/json", "host": "api.example.test"},
        "requestContext": {
            "accountId": "000000000000", "apiId": "example", "domainName": "api.example.test",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1",
                     "userAgent": "test"},
            "requestId": "test-request", "routeKey": "$default", "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 1767225600000i64
        },
        "isBase64Encoded": false
    });
    if !authorizer.is_null() {
        event["requestContext"]["authorizer"] = authorizer;
    }
    event
}

/// A response of an API function: status, the headers that matter, the JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    /// The support API's `Idempotent-Replayed` header.
    pub idempotent_replayed: Option<String>,
    pub body: Value,
}

/// An API Gateway v2 event given as JSON, as the request the function gets.
pub fn api_request(event: &Value) -> lambda_http::Request {
    lambda_http::request::from_str(&event.to_string()).expect("API Gateway v2 event")
}

/// Calls the lookup handler with an API Gateway v2 event given as JSON.
pub async fn call_lookup(lookup: &offer_lookup::DynamoLookup, event: &Value) -> ApiResponse {
    let response = offer_lookup::handler::handle(lookup, api_request(event))
        .await
        .expect("the handler answers every request");
    api_response(&response)
}

/// Calls the support handler with an API Gateway v2 event given as JSON.
pub async fn call_support(
    support: &support_assignment::DynamoSupport,
    event: &Value,
) -> ApiResponse {
    let response = support_assignment::handler::handle(support, api_request(event))
        .await
        .expect("the handler answers every request");
    api_response(&response)
}

fn api_response(response: &lambda_http::Response<lambda_http::Body>) -> ApiResponse {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let body = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).expect("JSON body"),
        other => panic!("unexpected body {other:?}"),
    };
    ApiResponse {
        status: response.status().as_u16(),
        content_type: header("content-type"),
        cache_control: header("cache-control"),
        idempotent_replayed: header("idempotent-replayed"),
        body,
    }
}

// ------------------------------------------------------ support assignment --
pub const SUPPORT: &str = "SupportAssignmentFunction";

impl TestBed {
    pub fn support_config(&self, overrides: &[(&str, &str)]) -> support_assignment::SupportConfig {
        let environment = self.environment(SUPPORT, overrides);
        support_assignment::SupportConfig::from_env(&Env(move |name: &str| {
            environment.get(name).cloned()
        }))
        .expect("support config")
    }

    /// The support service exactly as its main.rs wires it, configured from template.yaml.
    pub fn support(&self, overrides: &[(&str, &str)]) -> support_assignment::DynamoSupport {
        let config = self.support_config(overrides);
        support_assignment::build_support(dynamodb_client(&self.sdk, &config.sdk), &config)
    }
}

/// Who calls the support API.
#[derive(Debug, Clone, Copy)]
pub enum Agent<'a> {
    Nobody,
    /// A JWT with this `sub` and `cognito:groups` as API Gateway renders a
    /// list claim: `[support]`.
    Support(&'a str),
    /// A JWT with this `sub` and this exact `cognito:groups` claim text.
    WithGroups(&'a str, &'a str),
}

/// An API Gateway v2 event of the support API.
pub fn support_event(method: &str, path: &str, query: &str, agent: Agent<'_>) -> Value {
    let (identity, groups) = match agent {
        Agent::Nobody => (Identity::Nobody, None),
        Agent::Support(sub) => (Identity::Jwt(sub), Some("[support]")),
        Agent::WithGroups(sub, groups) => (Identity::Jwt(sub), Some(groups)),
    };
    let mut event = api_event(method, path, query, identity);
    if let Some(groups) = groups {
        event["requestContext"]["authorizer"]["jwt"]["claims"]["cognito:groups"] = json!(groups);
    }
    event
}

/// The event with `body` as its JSON body.
pub fn with_body(mut event: Value, body: &Value) -> Value {
    event["body"] = json!(body.to_string());
    event["headers"]["content-type"] = json!("application/json");
    event
}

/// The event with one more header.
pub fn with_header(mut event: Value, name: &str, value: &str) -> Value {
    event["headers"][name] = json!(value);
    event
}

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
    let mut variables = environment.clone();
    variables.insert("AWS_LAMBDA_LOG_LEVEL".into(), "WARN".into());
    let name = binary
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("function");
    std::process::Command::new(binary)
        .env_clear()
        .envs(offers_local::functions::lambda_environment(
            &variables,
            name,
            endpoint,
            &runtime.address(),
        ))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn function binary")
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

/// The API Gateway v2 response a binary sent through the Runtime API:
/// status, headers, JSON body.
pub fn http_answer(answer: Result<offers_local::Answer, String>) -> (u64, Value, Value) {
    match answer {
        Ok(offers_local::Answer::Response(response)) => {
            let body = response["body"]
                .as_str()
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or(Value::Null);
            (
                response["statusCode"].as_u64().unwrap_or_default(),
                response["headers"].clone(),
                body,
            )
        }
        other => panic!("not an HTTP response: {other:?}"),
    }
}

// ------------------------------------------------------------- local stack --
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
}

impl LocalStack {
    /// Starts `local-stack` and waits (at most 120 s) for its "ready" banner.
    pub fn start(data_dir: &std::path::Path) -> LocalStack {
        let (dynamodb_port, http_port) = (free_port(), free_port());
        let mut child = Command::new(function_binary("local-stack"))
            .args(["--port", &dynamodb_port.to_string()])
            .args(["--http-port", &http_port.to_string()])
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
        }
    }

    /// `offers --local --endpoint-url <this stack> ARGS`: exit code and stdout.
    pub fn offers(&self, args: &[&str]) -> (i32, String) {
        let output = Command::new(function_binary("offers"))
            .args(["--local", "--endpoint-url", &self.dynamodb])
            .args(args)
            .output()
            .expect("offers runs");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    }

    /// A GET over HTTP with the local identity header: status and JSON body.
    pub fn get(&self, path: &str, user: &str) -> (u16, Value) {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.http_port)).expect("HTTP API answers");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nx-local-user: {user}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).expect("request sent");
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

    /// Ctrl-C, as a person would press it; waits at most 60 s for the exit.
    pub fn interrupt(&mut self) -> Option<std::process::ExitStatus> {
        // SAFETY: kill(2) on the pid of a child we own and have not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
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

// ------------------------------------------------ operations and policies --
use aws_sdk_dynamodb::operation::{
    batch_get_item::BatchGetItemInput, batch_write_item::BatchWriteItemInput,
    delete_item::DeleteItemInput, get_item::GetItemInput, put_item::PutItemInput,
    query::QueryInput, scan::ScanInput, transact_write_items::TransactWriteItemsInput,
    update_item::UpdateItemInput,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// One permission a DynamoDB call needs: the IAM action, the table, and
/// the index for a Query.
pub type Permission = (String, String, Option<String>);

/// Records, from a client's calls, every (action, table, index) they need:
/// a transaction needs the actions of its parts.
#[derive(Debug, Default, Clone)]
pub struct PermissionRecorder(Arc<Mutex<BTreeSet<Permission>>>);

impl PermissionRecorder {
    pub fn recorded(&self) -> BTreeSet<Permission> {
        self.0.lock().map(|set| set.clone()).unwrap_or_default()
    }

    fn record(&self, action: &str, table: Option<&str>, index: Option<&str>) {
        if let Ok(mut set) = self.0.lock() {
            set.insert((
                format!("dynamodb:{action}"),
                table.unwrap_or("?").to_owned(),
                index.map(str::to_owned),
            ));
        }
    }
}

impl Intercept for PermissionRecorder {
    fn name(&self) -> &'static str {
        "PermissionRecorder"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input();
        if let Some(i) = input.downcast_ref::<GetItemInput>() {
            self.record("GetItem", i.table_name(), None);
        } else if let Some(i) = input.downcast_ref::<PutItemInput>() {
            self.record("PutItem", i.table_name(), None);
        } else if let Some(i) = input.downcast_ref::<UpdateItemInput>() {
            self.record("UpdateItem", i.table_name(), None);
        } else if let Some(i) = input.downcast_ref::<DeleteItemInput>() {
            self.record("DeleteItem", i.table_name(), None);
        } else if let Some(i) = input.downcast_ref::<QueryInput>() {
            self.record("Query", i.table_name(), i.index_name());
        } else if let Some(i) = input.downcast_ref::<ScanInput>() {
            self.record("Scan", i.table_name(), i.index_name());
        } else if let Some(i) = input.downcast_ref::<BatchGetItemInput>() {
            for table in i.request_items().into_iter().flat_map(|items| items.keys()) {
                self.record("BatchGetItem", Some(table), None);
            }
        } else if let Some(i) = input.downcast_ref::<BatchWriteItemInput>() {
            for table in i.request_items().into_iter().flat_map(|items| items.keys()) {
                self.record("BatchWriteItem", Some(table), None);
            }
        } else if let Some(i) = input.downcast_ref::<TransactWriteItemsInput>() {
            for item in i.transact_items() {
                if let Some(put) = item.put() {
                    self.record("PutItem", Some(put.table_name()), None);
                }
                if let Some(delete) = item.delete() {
                    self.record("DeleteItem", Some(delete.table_name()), None);
                }
                if let Some(update) = item.update() {
                    self.record("UpdateItem", Some(update.table_name()), None);
                }
                if let Some(check) = item.condition_check() {
                    self.record("ConditionCheckItem", Some(check.table_name()), None);
                }
            }
        } else {
            self.record("Unrecognized", None, None);
        }
        Ok(())
    }
}

impl TestBed {
    /// A function's DynamoDB client, as main.rs builds it, that also records
    /// the permissions its calls need.
    pub fn recording_client(
        &self,
        settings: &offers_shared::config::SdkSettings,
        recorder: &PermissionRecorder,
    ) -> Client {
        let client = dynamodb_client(&self.sdk, settings);
        let config = client
            .config()
            .to_builder()
            .interceptor(recorder.clone())
            .build();
        Client::from_conf(config)
    }

    /// The logical id of a table of this bed, from its physical name.
    pub fn logical_id(&self, physical: &str) -> String {
        self.tables
            .names
            .iter()
            .find(|(_, name)| name.as_str() == physical)
            .map(|(logical, _)| logical.clone())
            .unwrap_or_else(|| physical.to_owned())
    }
}
