//! The runtime loop of every API function: lambda_http's, with the body's
//! encoding checked first. API Gateway marks a body `isBase64Encoded`, and
//! lambda_http decodes it with `expect` (a panic, then an invocation error
//! and a bare 502): a body that is not base64 gets a 400
//! `invalid_body_encoding` here instead, before lambda_http sees it. Every
//! answer, refusals included, is measured (`crate::metrics`).

use crate::error::ApiError;
use crate::metrics::{request_metrics, Measured, UNMATCHED_ROUTE};
use crate::response::error_response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use lambda_http::lambda_runtime::Diagnostic;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Body, Error, LambdaEvent, Request, Response, Service};
use offers_shared::metrics::MetricsSink;
use serde::Serialize;
use std::fmt::Debug;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Runs `handler` as `lambda_http::run` does, answering an undecodable body
/// with a 400 of its own, and every request measured into `metrics`.
pub async fn run<'a, S, E>(metrics: &'a dyn MetricsSink, handler: S) -> Result<(), Error>
where
    S: Service<Request, Response = Response<Body>, Error = E>,
    S::Future: Send + 'a,
    E: Debug + Into<Diagnostic> + 'a,
{
    let measured = Measured::new(handler, metrics);
    lambda_http::lambda_runtime::run(CheckedBody::new(Adapter::from(measured), metrics)).await
}

/// What the function answers: lambda_http's response, or the refusal of a
/// body it could not have decoded.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Answer<R> {
    Handled(R),
    Refused(Box<ApiGatewayV2httpResponse>),
}

/// A service of API Gateway events that refuses an undecodable body itself
/// and hands every other event to `inner` (lambda_http's adapter).
pub struct CheckedBody<'a, A> {
    inner: A,
    metrics: &'a dyn MetricsSink,
    _future: PhantomData<&'a ()>,
}

impl<'a, A> CheckedBody<'a, A> {
    pub fn new(inner: A, metrics: &'a dyn MetricsSink) -> Self {
        Self {
            inner,
            metrics,
            _future: PhantomData,
        }
    }
}

impl<'a, A> Service<LambdaEvent<LambdaRequest>> for CheckedBody<'a, A>
where
    A: Service<LambdaEvent<LambdaRequest>>,
    A::Future: 'a,
    A::Error: 'a,
    A::Response: 'a,
{
    type Response = Answer<A::Response>;
    type Error = A::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, A::Error>> + 'a>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, event: LambdaEvent<LambdaRequest>) -> Self::Future {
        if let Some(refusal) = undecodable_body(&event.payload) {
            let route = match &event.payload {
                LambdaRequest::ApiGatewayV2(request) => request.route_key.as_deref(),
                _ => None,
            };
            self.metrics.emit(&request_metrics(
                route.unwrap_or(UNMATCHED_ROUTE),
                400,
                std::time::Duration::ZERO,
            ));
            return Box::pin(std::future::ready(Ok(Answer::Refused(Box::new(refusal)))));
        }
        let handled = self.inner.call(event);
        Box::pin(async move { handled.await.map(Answer::Handled) })
    }
}

/// The 400 of an event whose body says it is base64 and is not; `None`
/// for any other event.
pub fn undecodable_body(event: &LambdaRequest) -> Option<ApiGatewayV2httpResponse> {
    let undecodable = match event {
        LambdaRequest::ApiGatewayV2(request) => {
            request.is_base64_encoded
                && request
                    .body
                    .as_deref()
                    .is_some_and(|body| STANDARD.decode(body).is_err())
        }
        _ => false,
    };
    if !undecodable {
        return None;
    }
    tracing::warn!(
        code = "invalid_body_encoding",
        "request refused: isBase64Encoded with a body that is not base64"
    );
    let (parts, body) = error_response(&ApiError::bad_request(
        "invalid_body_encoding",
        "the body is marked base64-encoded (isBase64Encoded) but is not base64",
    ))
    .into_parts();
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(parts.status.as_u16());
    response.headers = parts.headers;
    response.body = Some(body);
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn event(body: &str, base64: bool) -> LambdaRequest {
        let event = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/offers", "rawQueryString": "",
            "headers": {"host": "api.example.test"},
            "requestContext": {"accountId": "000000000000", "apiId": "example",
                "domainName": "api.example.test",
                "http": {"method": "POST", "path": "/offers", "protocol": "HTTP/1.1",
                         "sourceIp": "192.0.2.1", "userAgent": "test"},
                "requestId": "r", "routeKey": "$default", "stage": "$default",
                "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0},
            "body": body,
            "isBase64Encoded": base64
        });
        serde_json::from_value(event).expect("an API Gateway v2 event")
    }

    #[test]
    fn a_body_marked_base64_that_is_not_is_a_400_in_the_error_shape() {
        let refused = undecodable_body(&event("%%%not base64", true)).expect("refused");
        assert_eq!(refused.status_code, 400);
        assert_eq!(refused.headers["content-type"], "application/json");
        let answer = serde_json::to_value(Answer::<()>::Refused(Box::new(refused))).expect("json");
        let body: Value =
            serde_json::from_str(answer["body"].as_str().expect("a text body")).expect("json");
        assert_eq!(body["error"]["code"], "invalid_body_encoding");
        assert!(body["error"]["message"].is_string());
    }

    #[test]
    fn valid_base64_and_plain_bodies_pass() {
        assert!(undecodable_body(&event("eyJhIjoxfQ==", true)).is_none());
        assert!(undecodable_body(&event("%%%not base64", false)).is_none());
        assert!(undecodable_body(&event("", true)).is_none());
    }
}
