//! API Gateway HTTP API (payload 2.0) events, as the lookup and support
//! functions receive them, and their answers.

use serde_json::{json, Value};

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

/// Calls the activity handler with an API Gateway v2 event given as JSON.
pub async fn call_activity(
    activity: &offer_activity::DynamoActivity,
    event: &Value,
) -> ApiResponse {
    let response = offer_activity::handler::handle(activity, api_request(event))
        .await
        .expect("the handler answers every request");
    api_response(&response)
}

/// How many times a test sends a request at most while the API answers 503:
/// on a busy machine the deadline guard or the SDK's attempt timeouts answer
/// 503 with `Retry-After`, which is correct; a client sends the request again.
pub const MAX_ATTEMPTS: usize = 20;

/// An answer and how many 503s came before it.
pub struct Retried {
    pub answer: ApiResponse,
    pub unavailable: usize,
}

/// Calls the activity handler as a client does: a 503 is sent again after a
/// short, growing pause (every write is idempotent, so that is safe), at most
/// [`MAX_ATTEMPTS`] times; panics if the last answer is still a 503.
pub async fn call_activity_retrying(
    activity: &offer_activity::DynamoActivity,
    event: &Value,
) -> Retried {
    for unavailable in 0..MAX_ATTEMPTS {
        let answer = call_activity(activity, event).await;
        if answer.status != 503 {
            return Retried {
                answer,
                unavailable,
            };
        }
        let pause = 50u64 << unavailable.min(5);
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
    }
    panic!("still 503 after {MAX_ATTEMPTS} attempts");
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

/// The API Gateway v2 response a binary sent through the Runtime API:
/// status, headers, JSON body.
pub fn http_answer(
    answer: Result<offers_local::Answer, offers_local::InvokeError>,
) -> (u64, Value, Value) {
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

/// A `POST /campaigns/webhook` event (no authorizer: the signature is the
/// authentication) with `body` as sent, signed at `t` with `secret` unless
/// `signature` is given, and `delivery` as `X-Offers-Delivery` if any.
pub fn webhook_event(body: &[u8], signature: Option<String>, delivery: Option<&str>) -> Value {
    let mut event = api_event("POST", "/campaigns/webhook", "", Identity::Nobody);
    event["headers"]["content-type"] = json!("application/json");
    match std::str::from_utf8(body) {
        Ok(text) => event["body"] = json!(text),
        Err(_) => {
            use base64::Engine;
            event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
            event["isBase64Encoded"] = json!(true);
        }
    }
    if let Some(signature) = signature {
        event["headers"]["x-offers-signature"] = json!(signature);
    }
    if let Some(delivery) = delivery {
        event["headers"]["x-offers-delivery"] = json!(delivery);
    }
    event
}

/// A webhook event signed now with the local signing secret.
pub fn signed_webhook_event(body: &[u8], delivery: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    webhook_event(body, Some(sign_now(body, now)), Some(delivery))
}

/// The `X-Offers-Signature` of `body` at `t`, with the local signing secret.
pub fn sign_now(body: &[u8], t: i64) -> String {
    offers_shared::domain::webhook::signature_header(
        offers_local::moto::LOCAL_SIGNING_SECRET.as_bytes(),
        t,
        body,
    )
}

/// Calls the webhook handler with an API Gateway v2 event given as JSON.
pub async fn call_webhook(webhook: &campaign_webhook::DynamoWebhook, event: &Value) -> ApiResponse {
    let response = campaign_webhook::handler::handle(webhook, api_request(event))
        .await
        .expect("the handler answers every request");
    api_response(&response)
}
