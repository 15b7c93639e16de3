//! A minimal Lambda Runtime API on localhost: runs a real function binary the
//! way Lambda does (`AWS_LAMBDA_RUNTIME_API`), one invocation at a time.

use crate::error::InvokeError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

const PREFIX: &str = "/2018-06-01/runtime";

/// What the function answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Response(Value),
    Error(Value),
}

struct Pending {
    request_id: String,
    event: Value,
    deadline: Duration,
    reply: oneshot::Sender<Answer>,
}

#[derive(Default)]
struct State {
    replies: HashMap<String, oneshot::Sender<Answer>>,
    first_poll: Option<Instant>,
    init_error: Option<Value>,
}

/// The Runtime API server. Dropping it stops accepting connections.
pub struct RuntimeApi {
    address: std::net::SocketAddr,
    queue: mpsc::Sender<Pending>,
    state: Arc<Mutex<State>>,
    next_id: std::sync::atomic::AtomicU64,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    /// Listens on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let (queue, receiver) = mpsc::channel::<Pending>(64);
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        let state = Arc::new(Mutex::new(State::default()));
        let server_state = state.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (receiver, state) = (receiver.clone(), server_state.clone());
                tokio::spawn(async move {
                    let service =
                        service_fn(move |request| route(request, receiver.clone(), state.clone()));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            address,
            queue,
            state,
            next_id: Default::default(),
            server,
        })
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API` (host:port, no scheme).
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// When the function first asked for an invocation (its init is done).
    pub fn first_poll(&self) -> Option<Instant> {
        self.state.lock().ok().and_then(|state| state.first_poll)
    }

    /// The error the function reported at init, if any.
    pub fn init_error(&self) -> Option<Value> {
        self.state
            .lock()
            .ok()
            .and_then(|state| state.init_error.clone())
    }

    /// Invokes the function with `event`, giving it `timeout` (its deadline).
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Result<Answer, InvokeError> {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            request_id: format!("local-{id:08}"),
            event,
            deadline: timeout,
            reply,
        };
        self.queue
            .send(pending)
            .await
            .map_err(|_| InvokeError::RuntimeStopped)?;
        match tokio::time::timeout(timeout + Duration::from_secs(5), answer).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(InvokeError::InvocationDropped),
            Err(_) => Err(InvokeError::NoAnswer(timeout)),
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

type Body = Full<Bytes>;

fn reply(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}

async fn route(
    request: Request<Incoming>,
    receiver: Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>,
    state: Arc<Mutex<State>>,
) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().trim_start_matches(PREFIX).to_owned();
    let method = request.method().clone();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|body| body.to_bytes())
        .unwrap_or_default();
    let parsed = || serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let response = match (method, segments.as_slice()) {
        (Method::GET, ["invocation", "next"]) => {
            if let Ok(mut state) = state.lock() {
                state.first_poll.get_or_insert_with(Instant::now);
            }
            let next = receiver.lock().await.recv().await;
            match next {
                None => reply(StatusCode::GONE, Bytes::new()),
                Some(pending) => {
                    let deadline = SystemTime::now() + pending.deadline;
                    let deadline_ms = deadline
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_millis())
                        .unwrap_or(0);
                    if let Ok(mut state) = state.lock() {
                        state
                            .replies
                            .insert(pending.request_id.clone(), pending.reply);
                    }
                    let mut response =
                        reply(StatusCode::OK, Bytes::from(pending.event.to_string()));
                    let headers = response.headers_mut();
                    let header = |value: String| {
                        value
                            .parse()
                            .unwrap_or_else(|_| hyper::header::HeaderValue::from_static(""))
                    };
                    headers.insert("lambda-runtime-aws-request-id", header(pending.request_id));
                    headers.insert(
                        "lambda-runtime-deadline-ms",
                        header(deadline_ms.to_string()),
                    );
                    headers.insert(
                        "lambda-runtime-invoked-function-arn",
                        header("arn:aws:lambda:us-east-1:000000000000:function:local".into()),
                    );
                    headers.insert(
                        "lambda-runtime-trace-id",
                        header("Root=1-00000000-000000000000000000000000".into()),
                    );
                    headers.insert("content-type", header("application/json".into()));
                    response
                }
            }
        }
        (Method::POST, ["invocation", request_id, kind @ ("response" | "error")]) => {
            let waiting = state
                .lock()
                .ok()
                .and_then(|mut state| state.replies.remove(*request_id));
            if let Some(waiting) = waiting {
                let answer = if *kind == "response" {
                    Answer::Response(parsed())
                } else {
                    Answer::Error(parsed())
                };
                let _ = waiting.send(answer);
            }
            reply(StatusCode::ACCEPTED, Bytes::new())
        }
        (Method::POST, ["init", "error"]) => {
            if let Ok(mut state) = state.lock() {
                state.init_error = Some(parsed());
            }
            reply(StatusCode::ACCEPTED, Bytes::new())
        }
        _ => reply(StatusCode::NOT_FOUND, Bytes::new()),
    };
    Ok(response)
}
