//! The API's errors: each has an HTTP status, a stable code and a short message.

use lambda_http::http::StatusCode;
use offers_shared::error::StoreError;

/// An error an API function answers with, as `{ "error": { "code", "message" } }`.
///
/// Messages are short and written for the API's users: storage details are
/// logged, never returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: the request itself is wrong (a malformed id, limit or cursor).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: no caller identity in the request context.
    #[error("the request carries no caller identity")]
    Unauthorized,
    /// 401 with a code of its own: a request that is not authenticated by
    /// its signature (the campaign webhook).
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: String },
    /// 403: the caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such resource, or not the caller's (the two are not told apart).
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists but not with this method.
    #[error("method not allowed; allowed: {}", allow.join(", "))]
    MethodNotAllowed { allow: &'static [&'static str] },
    /// 409: the request conflicts with an earlier one (an `Idempotency-Key`
    /// reused with another body).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 413: the body is larger than the route accepts.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 413: the request is larger than the API takes.
    #[error("{message}")]
    TooLarge { code: &'static str, message: String },
    /// 422: well-formed input that cannot be accepted, with a domain reason code.
    #[error("{message}")]
    Unprocessable { code: String, message: String },
    /// 503: the store is throttling, slow or unavailable; retrying can help.
    #[error("the service is busy, try again shortly")]
    Unavailable(#[source] StoreError),
    /// 503 with a code of its own: not now, but the same request will succeed later.
    #[error("{message}")]
    TryAgain { code: &'static str, message: String },
    /// 500: anything else; the detail goes to the log only.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// The 404 of an unknown route.
    pub fn no_route() -> Self {
        ApiError::NotFound("no such route".into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) | ApiError::TryAgain { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, machine-readable code of the error body.
    pub fn code(&self) -> &str {
        match self {
            ApiError::BadRequest { code, .. } => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::Unauthenticated { code, .. } => code,
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Conflict { code, .. } => code,
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::TooLarge { code, .. } => code,
            ApiError::Unprocessable { code, .. } => code,
            ApiError::Unavailable(_) => "service_unavailable",
            ApiError::TryAgain { code, .. } => code,
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// The message of the error body (never a storage detail).
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The detail to log for a server-side error, if any.
    pub fn log_detail(&self) -> Option<String> {
        match self {
            ApiError::Unavailable(err) => Some(format!("{} ({})", err, err.kind())),
            ApiError::Internal(detail) => Some(detail.clone()),
            _ => None,
        }
    }
}

/// Transient storage failures are 503 (retry), all others 500.
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        if err.is_transient() {
            ApiError::Unavailable(err)
        } else {
            ApiError::Internal(format!("{} ({})", err, err.kind()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        let cases = [
            (ApiError::bad_request("invalid_id", "x"), 400, "invalid_id"),
            (ApiError::Unauthorized, 401, "unauthorized"),
            (ApiError::Forbidden("no".into()), 403, "forbidden"),
            (ApiError::no_route(), 404, "not_found"),
            (
                ApiError::MethodNotAllowed { allow: &["GET"] },
                405,
                "method_not_allowed",
            ),
            (
                ApiError::Conflict {
                    code: "idempotency_conflict",
                    message: "m".into(),
                },
                409,
                "idempotency_conflict",
            ),
            (
                ApiError::PayloadTooLarge("big".into()),
                413,
                "payload_too_large",
            ),
            (
                ApiError::Unprocessable {
                    code: "unknown_offer".into(),
                    message: "m".into(),
                },
                422,
                "unknown_offer",
            ),
            (
                ApiError::Unavailable(StoreError::Throttled("t".into())),
                503,
                "service_unavailable",
            ),
            (ApiError::Internal("boom".into()), 500, "internal_error"),
            (
                ApiError::Unauthenticated {
                    code: "invalid_signature",
                    message: "m".into(),
                },
                401,
                "invalid_signature",
            ),
            (
                ApiError::TooLarge {
                    code: "body_too_large",
                    message: "m".into(),
                },
                413,
                "body_too_large",
            ),
            (
                ApiError::TryAgain {
                    code: "delivery_in_progress",
                    message: "m".into(),
                },
                503,
                "delivery_in_progress",
            ),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.code(), code, "{error:?}");
        }
    }

    #[test]
    fn store_errors_map_to_503_or_500_without_leaking_details() {
        for transient in [
            StoreError::Throttled("secret-table-name".into()),
            StoreError::Timeout("secret-table-name".into()),
            StoreError::Unavailable("secret-table-name".into()),
        ] {
            let error = ApiError::from(transient);
            assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(!error.message().contains("secret"));
            assert!(error.log_detail().is_some_and(|d| d.contains("secret")));
        }
        for permanent in [
            StoreError::Refused("secret-table-name".into()),
            StoreError::Corrupt("secret-table-name".into()),
        ] {
            let error = ApiError::from(permanent);
            assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(error.message(), "internal error");
            assert!(error.log_detail().is_some_and(|d| d.contains("secret")));
        }
    }
}
