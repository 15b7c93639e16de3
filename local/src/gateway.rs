//! The HTTP APIs of template.yaml on localhost: a request is routed as API
//! Gateway's HTTP API routes it (method and path of each `HttpApi` event;
//! anything else is API Gateway's 404), turned into a payload 2.0 event for
//! the function behind the route, and the function's response sent back.
//!
//! Identity is local-only. API Gateway's JWT authorizer is replaced by two
//! headers, which become the claims the authorizer would pass on:
//! `x-local-user` (the `sub`) and `x-local-groups` (`cognito:groups`, comma
//! separated). Without `x-local-user` the answer is the authorizer's 401. A
//! route whose API has no authorizer (the campaign webhook: its signature is
//! the authentication) gets no claims and needs no such header. The
//! headers exist only here: the gateway serves on loopback only, inside the
//! local stack, and the functions themselves never read them.

use crate::error::BedError;
use crate::invoke::Invoke;
use crate::template::HttpRoute;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The caller's user id (the JWT `sub`).
pub const USER_HEADER: &str = "x-local-user";
/// The caller's groups, comma separated (the `cognito:groups` claim).
pub const GROUPS_HEADER: &str = "x-local-groups";
/// Larger request bodies are refused, as API Gateway refuses payloads over 10 MB.
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// The routes of the template and the functions behind them.
pub struct Gateway<F> {
    routes: Vec<HttpRoute>,
    functions: HashMap<String, Arc<F>>,
}

/// A route that matched, with its path parameters (percent-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<'a> {
    pub route: &'a HttpRoute,
    pub parameters: BTreeMap<String, String>,
}

impl<F: Invoke + 'static> Gateway<F> {
    /// `functions` by logical id; every route's function must be there.
    pub fn new(
        routes: Vec<HttpRoute>,
        functions: HashMap<String, Arc<F>>,
    ) -> Result<Self, BedError> {
        if let Some(route) = routes.iter().find(|r| !functions.contains_key(&r.function)) {
            return Err(BedError::setup(
                format!("{} {}", route.method, route.path),
                format!("needs {}, which is not running", route.function),
            ));
        }
        Ok(Self { routes, functions })
    }

    /// The route of a request, as API Gateway picks it: the method must
    /// match (or the route be `ANY`); of several, the one with the most
    /// literal segments.
    pub fn route(&self, method: &str, raw_path: &str) -> Option<Matched<'_>> {
        self.routes
            .iter()
            .filter(|route| route.method == "ANY" || route.method == method)
            .filter_map(|route| {
                match_path(&route.path, raw_path).map(|parameters| Matched { route, parameters })
            })
            .max_by_key(|matched| literal_segments(&matched.route.path))
    }

    /// Serves on `address`, which must be a loopback address, until `stop`.
    pub async fn serve(
        self: Arc<Self>,
        address: SocketAddr,
        mut stop: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        if !address.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the local gateway (and its identity headers) serves on loopback only",
            ));
        }
        let listener = TcpListener::bind(address).await?;
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(_) => continue,
                },
                _ = stop.changed() => return Ok(()),
            };
            if !peer.ip().is_loopback() {
                continue;
            }
            let gateway = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let gateway = gateway.clone();
                    async move { Ok::<_, Infallible>(gateway.answer(request).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let method = parts.method.as_str().to_owned();
        let raw_path = parts.uri.path().to_owned();
        let raw_query = parts.uri.query().unwrap_or_default().to_owned();
        let Some(matched) = self.route(&method, &raw_path) else {
            return message(StatusCode::NOT_FOUND, "Not Found");
        };
        let claims = if matched.route.authorized {
            let Some(claims) = local_claims(&parts.headers) else {
                return message(StatusCode::UNAUTHORIZED, "Unauthorized");
            };
            Some(claims)
        } else {
            None
        };
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return message(StatusCode::BAD_REQUEST, "Bad Request"),
        };
        if body.len() > MAX_BODY_BYTES {
            return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
        }
        let event = payload_event(
            &matched,
            &method,
            &raw_path,
            &raw_query,
            &parts.headers,
            &body,
            claims,
        );
        let Some(function) = self.functions.get(&matched.route.function) else {
            return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        };
        match function.invoke(event).await {
            Ok(response) => http_response(&response),
            Err(error) => {
                tracing::warn!(function = matched.route.function.as_str(), error = %error, "function error");
                message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }
}

/// The path parameters if `path` matches the route's `pattern`.
pub fn match_path(pattern: &str, path: &str) -> Option<BTreeMap<String, String>> {
    let pattern: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let mut parameters = BTreeMap::new();
    for (index, part) in pattern.iter().enumerate() {
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix("+}")) {
            // A greedy parameter takes the rest of the path.
            let rest = segments.get(index..)?.join("/");
            if rest.is_empty() {
                return None;
            }
            parameters.insert(name.to_owned(), decode(&rest)?);
            return Some(parameters);
        }
        let segment = segments.get(index)?;
        match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) if !segment.is_empty() => {
                parameters.insert(name.to_owned(), decode(segment)?);
            }
            Some(_) => return None,
            None if part == segment => {}
            None => return None,
        }
    }
    (segments.len() == pattern.len()).then_some(parameters)
}

fn literal_segments(pattern: &str) -> usize {
    pattern
        .split('/')
        .filter(|part| !part.starts_with('{'))
        .count()
}

fn decode(text: &str) -> Option<String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(|text| text.into_owned())
}

/// The claims the JWT authorizer would pass, from the local identity
/// headers; `None` without a user.
pub fn local_claims(headers: &HeaderMap) -> Option<Map<String, Value>> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| !value.is_empty())
    };
    let user = header(USER_HEADER)?;
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user));
    claims.insert("iss".into(), json!("local-stack"));
    claims.insert("token_use".into(), json!("id"));
    if let Some(groups) = header(GROUPS_HEADER) {
        // API Gateway renders a list claim as `[a b]`.
        let names: Vec<&str> = groups
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .collect();
        claims.insert(
            "cognito:groups".into(),
            json!(format!("[{}]", names.join(" "))),
        );
    }
    Some(claims)
}

/// The API Gateway HTTP API (payload 2.0) event of a request.
pub fn payload_event(
    matched: &Matched<'_>,
    method: &str,
    raw_path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    body: &[u8],
    claims: Option<Map<String, Value>>,
) -> Value {
    let mut header_values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        if name.as_str().starts_with("x-local-") {
            continue;
        }
        header_values
            .entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let user_agent = header_values
        .get("user-agent")
        .map(|values| values.join(","))
        .unwrap_or_default();
    let event_headers: Map<String, Value> = header_values
        .into_iter()
        .map(|(name, values)| (name, json!(values.join(","))))
        .collect();
    let mut query: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in raw_query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let form = |text: &str| decode(&text.replace('+', " ")).unwrap_or_else(|| text.to_owned());
        query.entry(form(name)).or_default().push(form(value));
    }
    let now = chrono::Utc::now();
    let route_key = format!("{} {}", matched.route.method, matched.route.path);
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": event_headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": matched.route.api,
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": user_agent},
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": false,
    });
    if let Some(claims) = claims {
        event["requestContext"]["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
    }
    if !query.is_empty() {
        event["queryStringParameters"] = json!(query
            .into_iter()
            .map(|(name, values)| (name, json!(values.join(","))))
            .collect::<Map<String, Value>>());
    }
    if !matched.parameters.is_empty() {
        event["pathParameters"] = json!(matched.parameters);
    }
    if !body.is_empty() {
        match std::str::from_utf8(body) {
            Ok(text) => event["body"] = json!(text),
            Err(_) => {
                event["body"] = json!(BASE64.encode(body));
                event["isBase64Encoded"] = json!(true);
            }
        }
    }
    event
}

/// The HTTP response of a function's payload 2.0 answer. An answer without
/// `statusCode` is, as API Gateway takes it, a 200 JSON body.
pub fn http_response(answer: &Value) -> Response<Full<Bytes>> {
    let Some(status) = answer.get("statusCode").and_then(Value::as_u64) else {
        let mut response = Response::new(Full::new(Bytes::from(answer.to_string())));
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        return response;
    };
    let body = match answer.get("body").and_then(Value::as_str) {
        None => Bytes::new(),
        Some(text) if answer["isBase64Encoded"] == json!(true) => {
            Bytes::from(BASE64.decode(text).unwrap_or_default())
        }
        Some(text) => Bytes::from(text.to_owned()),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() =
        StatusCode::from_u16(status as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    let mut add = |name: &str, value: &str| {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.append(name, value);
        }
    };
    if let Some(single) = answer.get("headers").and_then(Value::as_object) {
        for (name, value) in single {
            add(name, value.as_str().unwrap_or_default());
        }
    }
    if let Some(multi) = answer.get("multiValueHeaders").and_then(Value::as_object) {
        for (name, values) in multi {
            if single_has(answer, name) {
                continue;
            }
            for value in values.as_array().into_iter().flatten() {
                add(name, value.as_str().unwrap_or_default());
            }
        }
    }
    for cookie in answer["cookies"].as_array().into_iter().flatten() {
        add("set-cookie", cookie.as_str().unwrap_or_default());
    }
    response
}

fn single_has(answer: &Value, name: &str) -> bool {
    answer
        .get("headers")
        .and_then(Value::as_object)
        .is_some_and(|headers| headers.contains_key(name))
}

/// API Gateway's own answers: `{"message": "..."}`.
fn message(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(
        json!({ "message": text }).to_string(),
    )));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::InvokeError;

    struct Echo;

    impl Invoke for Echo {
        async fn invoke(&self, event: Value) -> Result<Value, InvokeError> {
            Ok(event)
        }
    }

    fn route(method: &str, path: &str, function: &str) -> HttpRoute {
        HttpRoute {
            api: "Api".into(),
            method: method.into(),
            path: path.into(),
            function: function.into(),
            authorized: true,
        }
    }

    fn gateway() -> Gateway<Echo> {
        let routes = vec![
            route("GET", "/rewards/offers", "Lookup"),
            route("GET", "/rewards/offers/{personalizedOfferId}", "Lookup"),
            route("POST", "/support/users/{userId}/offers", "Support"),
            route(
                "DELETE",
                "/support/users/{userId}/offers/{personalizedOfferId}",
                "Support",
            ),
        ];
        let echo = Arc::new(Echo);
        Gateway::new(
            routes,
            HashMap::from([("Lookup".into(), echo.clone()), ("Support".into(), echo)]),
        )
        .expect("gateway")
    }

    #[test]
    fn routes_match_as_api_gateway_matches_them() {
        let gateway = gateway();
        let matched = gateway
            .route("POST", "/support/users/us-east-1%3Aabc/offers")
            .expect("route");
        assert_eq!(matched.route.function, "Support");
        assert_eq!(matched.parameters["userId"], "us-east-1:abc");
        assert!(gateway.route("GET", "/rewards/offers").is_some());
        for (method, path) in [
            ("POST", "/rewards/offers"),
            ("GET", "/rewards/offers/"),
            ("GET", "/rewards/offers/a/b"),
            ("GET", "/support/users//offers"),
            ("GET", "/nowhere"),
        ] {
            assert!(gateway.route(method, path).is_none(), "{method} {path}");
        }
        assert!(Gateway::new(
            vec![route("GET", "/x", "Missing")],
            HashMap::<String, Arc<Echo>>::new()
        )
        .is_err());
    }

    #[test]
    fn local_identity_headers_become_jwt_claims() {
        let mut headers = HeaderMap::new();
        assert!(local_claims(&headers).is_none());
        headers.insert(USER_HEADER, HeaderValue::from_static("agent-1"));
        headers.insert(GROUPS_HEADER, HeaderValue::from_static("support, admins"));
        let claims = local_claims(&headers).expect("claims");
        assert_eq!(claims["sub"], "agent-1");
        assert_eq!(claims["cognito:groups"], "[support admins]");
    }

    #[test]
    fn the_event_is_a_payload_2_0_event_without_the_local_headers() {
        let gateway = gateway();
        let matched = gateway
            .route(
                "GET",
                "/rewards/offers/0f8fad5b-d9cb-469f-a165-70867728950e",
            )
            .expect("route");
        let mut headers = HeaderMap::new();
        headers.insert(USER_HEADER, HeaderValue::from_static("u-1"));
        headers.insert("accept", HeaderValue::from_static("application/json"));
        let claims = local_claims(&headers).expect("claims");
        let event = payload_event(
            &matched,
            "GET",
            "/rewards/offers/0f8fad5b-d9cb-469f-a165-70867728950e",
            "limit=5&cursor=a%2Bb",
            &headers,
            b"",
            Some(claims),
        );
        assert_eq!(
            event["routeKey"],
            "GET /rewards/offers/{personalizedOfferId}"
        );
        assert_eq!(event["queryStringParameters"]["cursor"], "a+b");
        assert_eq!(
            event["pathParameters"]["personalizedOfferId"],
            "0f8fad5b-d9cb-469f-a165-70867728950e"
        );
        assert_eq!(
            event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"],
            "u-1"
        );
        assert!(event["headers"].get(USER_HEADER).is_none());
        assert_eq!(event["headers"]["accept"], "application/json");
        let request = lambda_http::request::from_str(&event.to_string());
        assert!(request.is_ok(), "lambda_http reads it: {request:?}");
    }

    #[test]
    fn responses_keep_status_headers_and_body() {
        let response = http_response(
            &json!({"statusCode": 201, "headers": {"content-type": "application/json",
            "idempotent-replayed": "true"}, "body": "{\"a\":1}", "isBase64Encoded": false}),
        );
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()["idempotent-replayed"], "true");
        let plain = http_response(&json!({"a": 1}));
        assert_eq!(plain.status(), StatusCode::OK);
    }
}
