//! JSON responses: every one private and never cached.

use super::error::ApiError;
use lambda_http::http::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::json;
use std::time::Instant;

pub const JSON: &str = "application/json";
/// Offers are per user: no shared cache may keep them, and no client either.
pub const NO_STORE: &str = "private, no-store";

/// `value` as a JSON response with `status`. Should serialization fail (it
/// cannot for the API's own types), a 500 error body is sent instead.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_string(value) {
        Ok(body) => with_headers(status, body),
        Err(err) => error_response(&ApiError::Internal(format!(
            "response not serializable: {err}"
        ))),
    }
}

/// The error as `{ "error": { "code", "message" } }`, with the headers its
/// status calls for. Server-side errors are logged with their detail here.
pub fn error_response(error: &ApiError) -> Response<Body> {
    if let Some(detail) = error.log_detail() {
        if error.status().is_server_error() && error.status() != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(code = error.code(), detail = %detail, "request failed");
        } else {
            tracing::warn!(code = error.code(), detail = %detail, "request failed");
        }
    }
    let body = json!({ "error": { "code": error.code(), "message": error.message() } });
    let mut response = with_headers(error.status(), body.to_string());
    let headers = response.headers_mut();
    match error {
        ApiError::MethodNotAllowed { allow } => {
            if let Ok(value) = HeaderValue::from_str(&allow.join(", ")) {
                headers.insert(ALLOW, value);
            }
        }
        ApiError::Unauthorized => {
            headers.insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        ApiError::Unavailable(_) => {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        ApiError::TryAgain { .. } => {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("5"));
        }
        _ => {}
    }
    response
}

/// The handler's result as a response, whichever way it went.
pub fn respond<T: Serialize>(result: Result<(StatusCode, T), ApiError>) -> Response<Body> {
    match result {
        Ok((status, value)) => json_response(status, &value),
        Err(error) => error_response(&error),
    }
}

/// Logs an answered request at debug level: method, status and time taken
/// (never the body: it may hold a user's data).
pub fn log_request(request: &Request, response: &Response<Body>, started: Instant) {
    tracing::debug!(
        method = %request.method(),
        status = response.status().as_u16(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "request"
    );
}

fn with_headers(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use offers_shared::error::StoreError;

    fn body_json(response: &Response<Body>) -> serde_json::Value {
        match response.body() {
            Body::Text(text) => serde_json::from_str(text).expect("JSON body"),
            other => panic!("not a text body: {other:?}"),
        }
    }

    #[test]
    fn json_responses_are_private_and_not_stored() {
        let response = json_response(StatusCode::OK, &json!({"offers": []}));
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], JSON);
        assert_eq!(response.headers()[CACHE_CONTROL], NO_STORE);
        assert_eq!(body_json(&response), json!({"offers": []}));
    }

    #[test]
    fn errors_have_the_contract_shape_and_their_headers() {
        let response = error_response(&ApiError::MethodNotAllowed { allow: &["GET"] });
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[ALLOW], "GET");
        assert_eq!(response.headers()[CACHE_CONTROL], NO_STORE);
        let body = body_json(&response);
        assert_eq!(body["error"]["code"], "method_not_allowed");
        assert!(body["error"]["message"].is_string());
        assert_eq!(body.as_object().map(|o| o.len()), Some(1));

        let response = error_response(&ApiError::Unauthorized);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        assert_eq!(body_json(&response)["error"]["code"], "unauthorized");

        // A 503 (store trouble or the deadline guard) tells the client when to retry.
        let response = error_response(&ApiError::Unavailable(StoreError::Timeout("t".into())));
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
        assert_eq!(body_json(&response)["error"]["code"], "service_unavailable");
    }
}
