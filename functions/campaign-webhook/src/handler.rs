//! The HTTP handler: `POST /campaigns/webhook`, API Gateway v2 request in,
//! JSON response out.
//!
//! Checks run in the contract's order, each failure with its own status
//! and code, and nothing written:
//! 1. size: more than 1 MiB is 413 `body_too_large`;
//! 2. signature: 401 `missing_signature`, `malformed_signature`,
//!    `stale_signature` (`t` more than 300 s away), `invalid_signature`;
//! 3. JSON and delivery id: 400 `malformed_json`, `invalid_body`,
//!    `missing_delivery_id`;
//! 4. more than 500 assignments: 413 `too_many_assignments`.
//!
//! Then the service: 202 `{accepted, rejected}`; a redelivery gets the
//! first answer (with `Idempotent-Replayed: true`); the same delivery id
//! with another body 409 `delivery_conflict`; a signature that another
//! delivery used 409 `signature_reused`; a delivery still being
//! written by another request 503 `delivery_in_progress` (`Retry-After`).
//! The request runs under the invocation's deadline guard.

use crate::CampaignWebhook;
use chrono::Utc;
use lambda_http::http::header::HeaderValue;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use offers_http::{
    error_response, json_response, log_request, path_segments, raw_path, within_deadline, ApiError,
};
use offers_shared::domain::webhook::{
    check_delivery_id, parse_webhook_body, verify_signature, BodyError, DELIVERY_HEADER,
    MAX_WEBHOOK_BODY_BYTES, SIGNATURE_HEADER,
};
use offers_shared::ports::{CatalogReader, WebhookStore};
use offers_shared::webhook::{Delivery, WebhookError};
use std::time::Instant;

/// Set to `true` on the answer to a redelivery.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// Handles one request. Every failure is an error response, so this never
/// returns `Err` (the runtime would turn that into a bare 500).
pub async fn handle<S: WebhookStore, C: CatalogReader>(
    webhook: &CampaignWebhook<S, C>,
    request: Request,
) -> Result<Response<Body>, Error> {
    let started = Instant::now();
    let response = within_deadline(&request, answer(webhook, &request))
        .await
        .unwrap_or_else(|error| error_response(&error));
    log_request(&request, &response, started);
    Ok(response)
}

async fn answer<S: WebhookStore, C: CatalogReader>(
    webhook: &CampaignWebhook<S, C>,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    match path_segments(raw_path(request)).as_slice() {
        ["campaigns", "webhook"] if request.method() == Method::POST => {}
        ["campaigns", "webhook"] => return Err(ApiError::MethodNotAllowed { allow: &["POST"] }),
        _ => return Err(ApiError::no_route()),
    }
    let body: &[u8] = request.body().as_ref();
    if body.len() > MAX_WEBHOOK_BODY_BYTES {
        return Err(ApiError::TooLarge {
            code: "body_too_large",
            message: format!(
                "the body is {} bytes; at most {MAX_WEBHOOK_BODY_BYTES}",
                body.len()
            ),
        });
    }
    // A header that is not text cannot be a signature: 401 like any malformed one.
    let signature = request
        .headers()
        .get(SIGNATURE_HEADER)
        .map(|value| value.to_str().unwrap_or_default());
    let signature = verify_signature(
        signature,
        webhook.secret.as_bytes(),
        body,
        Utc::now().timestamp(),
    )
    .map_err(|error| ApiError::Unauthenticated {
        code: error.code(),
        message: error.to_string(),
    })?;
    let assignments = parse_webhook_body(body).map_err(|error| match error {
        BodyError::TooManyAssignments(_) => ApiError::TooLarge {
            code: error.code(),
            message: error.to_string(),
        },
        _ => ApiError::bad_request(error.code(), error.to_string()),
    });
    // A malformed body is 400 before a missing delivery id; both before the count (413).
    let assignments = match assignments {
        Err(ApiError::TooLarge { code, message }) => {
            delivery_id(request)?;
            return Err(ApiError::TooLarge { code, message });
        }
        other => other?,
    };
    let delivery_id = delivery_id(request)?;
    let received = webhook
        .service
        .receive(
            Delivery {
                delivery_id,
                body,
                assignments: &assignments,
                signature: &signature,
            },
            Utc::now(),
        )
        .await
        .map_err(|error| match error {
            WebhookError::Conflict => ApiError::Conflict {
                code: "delivery_conflict",
                message: "this X-Offers-Delivery was already used with a different body".into(),
            },
            WebhookError::SignatureReused => ApiError::Conflict {
                code: "signature_reused",
                message:
                    "this signature was already used by another delivery: sign each delivery anew"
                        .into(),
            },
            WebhookError::InProgress => ApiError::TryAgain {
                code: "delivery_in_progress",
                message: "another request of this delivery is still being processed; retry".into(),
            },
            WebhookError::Store(error) => error.into(),
        })?;
    let mut response = json_response(StatusCode::ACCEPTED, &received.receipt);
    if received.replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// A header's value as text; one that is not text is treated as malformed.
fn header<'a>(request: &'a Request, name: &str) -> Result<Option<&'a str>, ApiError> {
    match request.headers().get(name) {
        None => Ok(None),
        Some(value) => value.to_str().map(Some).map_err(|_| {
            ApiError::bad_request("invalid_header", format!("the {name} header is not text"))
        }),
    }
}

fn delivery_id(request: &Request) -> Result<&str, ApiError> {
    check_delivery_id(header(request, DELIVERY_HEADER)?)
        .map_err(|message| ApiError::bad_request("missing_delivery_id", message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningSecret;
    use offers_shared::domain::webhook::signature_header;
    use offers_shared::fakes::MemoryCatalog;
    use offers_shared::webhook::memory::MemoryWebhookStore;
    use offers_shared::webhook::{WebhookService, WebhookSettings};
    use proptest::prelude::*;
    use serde_json::{json, Value};

    const SECRET: &str = "whsec_local_only_not_a_real_secret";

    fn webhook() -> CampaignWebhook<MemoryWebhookStore, MemoryCatalog> {
        CampaignWebhook::new(
            WebhookService::new(
                MemoryWebhookStore::default(),
                MemoryCatalog::default(),
                WebhookSettings::default(),
            ),
            SigningSecret::new(SECRET).expect("key"),
        )
    }

    fn request(body: &[u8], headers: &[(&str, String)]) -> Request {
        let mut builder = lambda_http::http::Request::builder()
            .method("POST")
            .uri("https://hooks.example.test/campaigns/webhook");
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        builder.body(Body::from(body.to_vec())).expect("request")
    }

    fn signed(body: &[u8], t: i64) -> Vec<(&'static str, String)> {
        vec![
            (
                SIGNATURE_HEADER,
                signature_header(SECRET.as_bytes(), t, body),
            ),
            (DELIVERY_HEADER, "d-1".to_owned()),
        ]
    }

    async fn status_and_code(request: Request) -> (u16, Value) {
        let response = handle(&webhook(), request).await.expect("answered");
        let status = response.status().as_u16();
        let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap_or_default();
        (status, body["error"]["code"].clone())
    }

    #[tokio::test]
    async fn each_refusal_has_its_status_and_code_in_the_contracts_order() {
        let now = Utc::now().timestamp();
        let good = br#"{"assignments":[]}"#;
        let huge = vec![b' '; MAX_WEBHOOK_BODY_BYTES + 1];
        let many = json!({"assignments": vec![json!({}); 501]}).to_string();
        let cases: Vec<(Request, u16, &str)> = vec![
            // Too large comes first, even unsigned.
            (request(&huge, &[]), 413, "body_too_large"),
            (request(good, &[]), 401, "missing_signature"),
            (
                request(good, &[(SIGNATURE_HEADER, "t=1".into())]),
                401,
                "malformed_signature",
            ),
            (
                request(good, &signed(good, now - 301)),
                401,
                "stale_signature",
            ),
            (
                request(br#"{"assignments":[{}]}"#, &signed(good, now)),
                401,
                "invalid_signature",
            ),
            (request(b"{", &signed(b"{", now)), 400, "malformed_json"),
            (
                request(good, &signed(good, now)[..1]),
                400,
                "missing_delivery_id",
            ),
            (
                request(many.as_bytes(), &signed(many.as_bytes(), now)),
                413,
                "too_many_assignments",
            ),
            (
                request(many.as_bytes(), &signed(many.as_bytes(), now)[..1]),
                400,
                "missing_delivery_id",
            ),
        ];
        for (index, (request, status, code)) in cases.into_iter().enumerate() {
            assert_eq!(
                status_and_code(request).await,
                (status, json!(code)),
                "case {index}"
            );
        }
    }

    #[tokio::test]
    async fn a_signed_delivery_is_accepted_and_routes_are_checked() {
        let now = Utc::now().timestamp();
        let body = br#"{"assignments":[{"userId":"u"}]}"#;
        let response = handle(&webhook(), request(body, &signed(body, now)))
            .await
            .expect("answered");
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let receipt: Value = serde_json::from_slice(response.body().as_ref()).expect("json");
        assert_eq!(receipt["accepted"], json!(0));
        assert_eq!(receipt["rejected"][0]["code"], json!("invalid_row"));
        let get = lambda_http::http::Request::builder()
            .method("GET")
            .uri("https://hooks.example.test/campaigns/webhook")
            .body(Body::Empty)
            .expect("request");
        assert_eq!(status_and_code(get).await.0, 405);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_body_and_headers_get_an_answer_and_nothing_unsigned_passes(
            body in proptest::collection::vec(any::<u8>(), 0..512),
            signature in ".{0,120}",
            delivery in ".{0,40}",
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let headers = [(SIGNATURE_HEADER, signature), (DELIVERY_HEADER, delivery)];
            let request = lambda_http::http::Request::builder()
                .method("POST")
                .uri("https://hooks.example.test/campaigns/webhook");
            let request = headers.iter().fold(request, |r, (n, v)| match HeaderValue::from_str(v) {
                Ok(v) => r.header(*n, v),
                Err(_) => r,
            });
            let request = request.body(Body::from(body)).expect("request");
            let (status, _) = runtime.block_on(status_and_code(request));
            prop_assert_eq!(status, 401);
        }
    }
}
