//! Every API request through the metrics port: a count, the server errors
//! among them and the latency, per function (CloudWatch's one dimension) and,
//! in Datadog, per route and status.
//!
//! The route is API Gateway's `routeKey` (`GET /rewards/offers/{id}`): one of
//! the template's routes, a bounded set, never the raw path (which carries
//! ids and would make a series per user).

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response, Service};
use offers_shared::metrics::{MetricSet, MetricsSink, Tag};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The route of a request no route matched (a direct invocation, a test).
pub const UNMATCHED_ROUTE: &str = "$default";
/// The longest route tag kept: a template route is far shorter.
const MAX_ROUTE_CHARS: usize = 128;

/// The metrics of one answered request.
pub fn request_metrics(route: &str, status: u16, latency: Duration) -> MetricSet {
    let route: String = route.chars().take(MAX_ROUTE_CHARS).collect();
    let status_tags = vec![
        Tag::new("route", route.clone()),
        Tag::new("status", status.to_string()),
    ];
    let server_error = u64::from(status >= 500);
    let millis = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    let mut set = MetricSet::new(chrono::Utc::now());
    set.count("ApiRequests", "api.requests", 1, status_tags.clone())
        .count(
            "ApiServerErrors",
            "api.server_errors",
            server_error,
            status_tags,
        )
        .milliseconds(
            "ApiLatency",
            "api.latency",
            vec![millis],
            vec![Tag::new("route", route)],
        );
    set
}

/// API Gateway's route key of the request, or [`UNMATCHED_ROUTE`].
pub fn route_key(request: &Request) -> String {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.route_key.clone(),
        _ => None,
    }
    .filter(|key| !key.is_empty())
    .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned())
}

/// A handler whose every answer is measured: the inner service answers, the
/// sink gets [`request_metrics`] (an error the runtime would turn into a bare
/// 500 counts as a 500).
pub struct Measured<'a, S> {
    inner: S,
    metrics: &'a dyn MetricsSink,
}

impl<'a, S> Measured<'a, S> {
    pub fn new(inner: S, metrics: &'a dyn MetricsSink) -> Self {
        Self { inner, metrics }
    }
}

impl<'a, S> Service<Request> for Measured<'a, S>
where
    S: Service<Request, Response = Response<Body>>,
    S::Future: Send + 'a,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send + 'a>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let route = route_key(&request);
        let started = Instant::now();
        let metrics = self.metrics;
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answer = answer.await;
            let status = answer
                .as_ref()
                .map_or(500, |response| response.status().as_u16());
            metrics.emit(&request_metrics(&route, status, started.elapsed()));
            answer
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::StatusCode;
    use lambda_http::service_fn;
    use offers_shared::metrics::memory::MemoryMetrics;
    use offers_shared::metrics::Values;
    use serde_json::json;

    fn request(route_key: &str) -> Request {
        let event = json!({
            "version": "2.0", "routeKey": route_key, "rawPath": "/rewards/offers",
            "rawQueryString": "", "headers": {"host": "api.example.test"},
            "requestContext": {"accountId": "000000000000", "apiId": "example",
                "domainName": "api.example.test",
                "http": {"method": "GET", "path": "/rewards/offers", "protocol": "HTTP/1.1",
                         "sourceIp": "192.0.2.1", "userAgent": "test"},
                "requestId": "r", "routeKey": route_key, "stage": "$default",
                "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0},
            "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).expect("an API Gateway v2 request")
    }

    fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
        tags.iter()
            .find(|tag| tag.key == key)
            .map(|tag| tag.value.as_str())
    }

    #[tokio::test]
    async fn each_answer_is_counted_by_route_and_status_with_its_latency() {
        let metrics = MemoryMetrics::default();
        let mut service = Measured::new(
            service_fn(|request: Request| async move {
                let status = if request.uri().query() == Some("fail") {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                };
                let mut response = Response::new(Body::Empty);
                *response.status_mut() = status;
                Ok::<_, lambda_http::Error>(response)
            }),
            &metrics,
        );
        let answered = service
            .call(request("GET /rewards/offers"))
            .await
            .expect("answered");
        assert_eq!(answered.status(), StatusCode::OK);
        let sets = metrics.sets();
        let [set] = &sets[..] else {
            panic!("one set per request: {sets:?}");
        };
        let names: Vec<_> = set.metrics.iter().map(|metric| metric.name).collect();
        assert_eq!(names, ["ApiRequests", "ApiServerErrors", "ApiLatency"]);
        assert_eq!(set.metrics[0].values, Values::One(1));
        assert_eq!(set.metrics[1].values, Values::One(0));
        assert!(matches!(&set.metrics[2].values, Values::Many(values) if values.len() == 1));
        assert_eq!(
            tag(&set.metrics[0].tags, "route"),
            Some("GET /rewards/offers")
        );
        assert_eq!(tag(&set.metrics[0].tags, "status"), Some("200"));
    }

    #[test]
    fn a_server_error_is_counted_and_an_unknown_route_is_bounded() {
        let set = request_metrics("", 503, Duration::from_millis(7));
        assert_eq!(set.metrics[1].values, Values::One(1));
        assert_eq!(set.metrics[2].values, Values::Many(vec![7]));
        let long = "x".repeat(1_000);
        let set = request_metrics(&long, 200, Duration::ZERO);
        assert_eq!(
            tag(&set.metrics[0].tags, "route").map(str::len),
            Some(MAX_ROUTE_CHARS)
        );
        assert_eq!(
            route_key(&request("")),
            UNMATCHED_ROUTE,
            "an empty route key"
        );
    }

    #[tokio::test]
    async fn a_handler_error_counts_as_a_500() {
        let metrics = MemoryMetrics::default();
        let mut service = Measured::new(
            service_fn(|_request: Request| async move {
                Err::<Response<Body>, lambda_http::Error>("broken".into())
            }),
            &metrics,
        );
        assert!(service.call(request("POST /x")).await.is_err());
        let sets = metrics.sets();
        assert_eq!(tag(&sets[0].metrics[0].tags, "status"), Some("500"));
        assert_eq!(sets[0].metrics[1].values, Values::One(1));
    }
}
