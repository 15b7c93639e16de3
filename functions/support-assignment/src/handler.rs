//! The HTTP handler: API Gateway v2 request in, JSON response out.
//!
//! - `POST /support/users/{userId}/offers`: assign an offer now; 201.
//! - `GET /support/users/{userId}/offers[?limit=N][&cursor=C]`: the user's
//!   offers of any status, newest first.
//! - `DELETE /support/users/{userId}/offers/{personalizedOfferId}`: revoke;
//!   the offer stays, for audit.
//! - `GET /support/campaigns/{campaignId}/stats`: the campaign's counts per
//!   offer and in total (zeros for a campaign nobody counted).
//! - `GET /support/users/{userId}/profile`: the user's behaviour profile;
//!   404 for a user without counted visits.
//!
//! Checks run in this order: route (404, 405), caller (401), the `support`
//! group (403), input (400), then the service (422, 409, 404). The whole
//! request runs under the invocation's deadline guard
//! (`offers_http::Deadline`): 503 with `Retry-After` rather than a
//! function killed at its timeout. An abandoned write is safe to retry with
//! the same `Idempotency-Key` (a conditional put keyed by it).

use crate::SupportApi;
use chrono::{DateTime, Utc};
use lambda_http::http::header::HeaderValue;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use offers_http::{
    caller, decode_cursor, decode_segment, encode_cursor, error_response, int_param, json_response,
    log_request, offer_views, parse_offer_id, path_segments, query_param, raw_path,
    within_deadline, ApiError, OfferView, RedemptionView,
};
use offers_shared::domain::campaign_stats::MAX_STATS_ID_BYTES;
use offers_shared::domain::dates::rfc3339;
use offers_shared::domain::{
    AuditEntry, CampaignId, OfferSource, PersonalizedOffer, PersonalizedOfferId, SupportRequest,
    UserId,
};
use offers_shared::ports::ProfileStore;
use offers_shared::ports::{
    CampaignStatsStore, CatalogReader, PageRequest, Revocation, RevokeOutcome, SupportStore,
};
use offers_shared::profiles::profile_view;
use offers_shared::support::{AssignRequest, SupportError, SupportService};
use serde::Serialize;
use serde_json::{Map, Value};
use std::time::Instant;

/// The Cognito group whose members may use this API.
pub const SUPPORT_GROUP: &str = "support";
/// Larger bodies are refused (400) before they are parsed.
pub const MAX_BODY_BYTES: usize = 32 * 1024;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;
/// Page size when the request gives no `limit`.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 100;
/// Longer ids are not ids of this system (and DynamoDB keys are bounded).
const MAX_USER_ID_BYTES: usize = 1024;
/// Set to `true` on the answer to a retry with an `Idempotency-Key` already used.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// What a request asks for; the path segments exactly as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    Assign { user: &'a str },
    List { user: &'a str },
    Revoke { user: &'a str, id: &'a str },
    CampaignStats { campaign: &'a str },
    Profile { user: &'a str },
}

/// The route of a method and raw path: 404 for an unknown path, 405 for a
/// known path with a method it does not take.
pub fn route<'a>(method: &Method, path: &'a str) -> Result<Route<'a>, ApiError> {
    match path_segments(path).as_slice() {
        ["support", "users", user, "offers"] if !user.is_empty() => match *method {
            Method::POST => Ok(Route::Assign { user }),
            Method::GET => Ok(Route::List { user }),
            _ => Err(ApiError::MethodNotAllowed {
                allow: &["GET", "POST"],
            }),
        },
        ["support", "users", user, "offers", id] if !user.is_empty() && !id.is_empty() => {
            match *method {
                Method::DELETE => Ok(Route::Revoke { user, id }),
                _ => Err(ApiError::MethodNotAllowed { allow: &["DELETE"] }),
            }
        }
        ["support", "users", user, "profile"] if !user.is_empty() => match *method {
            Method::GET => Ok(Route::Profile { user }),
            _ => Err(ApiError::MethodNotAllowed { allow: &["GET"] }),
        },
        ["support", "campaigns", campaign, "stats"] if !campaign.is_empty() => match *method {
            Method::GET => Ok(Route::CampaignStats { campaign }),
            _ => Err(ApiError::MethodNotAllowed { allow: &["GET"] }),
        },
        _ => Err(ApiError::no_route()),
    }
}

/// An offer as the support tool sees it: the app's offer JSON plus who
/// assigned it and why, where it came from, its audit trail and its
/// redemptions.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportOfferView {
    #[serde(flatten)]
    pub offer: OfferView,
    pub user_id: String,
    pub source: OfferSource,
    pub assigned_by: Option<String>,
    pub reason: Option<String>,
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "rfc3339::option")]
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
    pub audit: Vec<AuditEntry>,
    /// Every redemption, voided ones (with `voidedAt`) included, oldest first.
    pub redemptions: Vec<RedemptionView>,
}

/// The list's body: a page of offers and, when more remain, the next cursor.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportOfferList {
    pub offers: Vec<SupportOfferView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Handles one request. Every failure is an error response, so this never
/// returns `Err` (the runtime would turn that into a bare 500).
pub async fn handle<S: SupportStore, C: CatalogReader, T: CampaignStatsStore, P: ProfileStore>(
    api: &SupportApi<S, C, T, P>,
    request: Request,
) -> Result<Response<Body>, Error> {
    let started = Instant::now();
    // The store calls never run past the invocation's timeout: 503 instead.
    let response = within_deadline(&request, answer(api, &request))
        .await
        .unwrap_or_else(|error| error_response(&error));
    log_request(&request, &response, started);
    Ok(response)
}

async fn answer<S: SupportStore, C: CatalogReader, T: CampaignStatsStore, P: ProfileStore>(
    api: &SupportApi<S, C, T, P>,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let support = &api.assignment;
    let route = route(request.method(), raw_path(request))?;
    let agent = agent(request)?;
    match route {
        Route::CampaignStats { campaign } => {
            let campaign_id = campaign_id(campaign)?;
            let report = api.stats.campaign_report(&campaign_id).await?;
            let mut body = report.to_json();
            // Section 14: the limits set, and what each has used.
            if let Some((budget, used)) = support.campaign_budget(&campaign_id).await? {
                let view = budget.view(&used);
                if view.as_object().is_some_and(|limits| !limits.is_empty()) {
                    body["budget"] = view;
                }
            }
            Ok(json_response(StatusCode::OK, &body))
        }
        Route::Profile { user } => {
            let user_id = user_id(user)?;
            match profile_view(&api.profiles, &user_id).await? {
                Some(view) => Ok(json_response(StatusCode::OK, &view)),
                None => Err(ApiError::NotFound(format!(
                    "user {user_id:?} has no counted visits"
                ))),
            }
        }
        Route::Assign { user } => assign(support, request, user_id(user)?, agent).await,
        Route::List { user } => list(support, request, &user_id(user)?).await,
        Route::Revoke { user, id } => {
            let id = parse_offer_id(id)?;
            revoke(support, request, &user_id(user)?, id, &agent).await
        }
    }
}

/// The agent: an authenticated caller (else 401) in the support group with
/// a `sub` claim (else 403).
pub fn agent(request: &Request) -> Result<String, ApiError> {
    let caller = caller(request)?;
    if !caller.claims.in_group(SUPPORT_GROUP) {
        return Err(ApiError::Forbidden(format!(
            "only members of the {SUPPORT_GROUP:?} group may use the support API"
        )));
    }
    caller
        .claims
        .get("sub")
        .filter(|sub| !sub.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ApiError::Forbidden("the caller's token has no sub claim".into()))
}

/// The user id of the path, percent-decoded (`us-east-1%3A…` is `us-east-1:…`).
fn user_id(segment: &str) -> Result<UserId, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "invalid_user_id",
            format!("userId must be a non-empty id of at most {MAX_USER_ID_BYTES} bytes"),
        )
    };
    let id = decode_segment(segment).ok_or_else(invalid)?;
    if id.trim().is_empty() || id.len() > MAX_USER_ID_BYTES {
        return Err(invalid());
    }
    UserId::try_from(id).map_err(|_| invalid())
}

/// The campaign id of the path, percent-decoded: 1 to
/// [`MAX_STATS_ID_BYTES`] bytes (no longer id is counted).
fn campaign_id(segment: &str) -> Result<CampaignId, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "invalid_campaign_id",
            format!("campaignId must be a non-empty id of at most {MAX_STATS_ID_BYTES} bytes"),
        )
    };
    let id = decode_segment(segment).ok_or_else(invalid)?;
    if id.len() > MAX_STATS_ID_BYTES {
        return Err(invalid());
    }
    CampaignId::try_from(id).map_err(|_| invalid())
}

/// The request body as a JSON object; `None` when there is none. Too large,
/// not JSON, or JSON but not an object: 400.
fn json_body(request: &Request) -> Result<Option<Map<String, Value>>, ApiError> {
    let bytes: &[u8] = request.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::bad_request(
            "body_too_large",
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(body)) => Ok(Some(body)),
        Ok(_) => Err(ApiError::bad_request(
            "invalid_body",
            "the body must be a JSON object",
        )),
        Err(err) => Err(ApiError::bad_request(
            "invalid_body",
            format!("the body is not valid JSON: {err}"),
        )),
    }
}

/// The `Idempotency-Key` header, if any: 1 to 255 visible ASCII characters.
fn idempotency_key(request: &Request) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::bad_request(
            "invalid_idempotency_key",
            format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters"
            ),
        )
    };
    let key = value.to_str().map_err(|_| invalid())?.trim();
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY_CHARS
        || !key.bytes().all(|byte| byte.is_ascii_graphic())
    {
        return Err(invalid());
    }
    Ok(Some(key.to_owned()))
}

/// The assignment a request asks for: the key (400), the body as JSON (400),
/// then its shape (422, a reason code of the contract).
fn assign_request(
    request: &Request,
    user_id: UserId,
    agent: String,
) -> Result<AssignRequest, ApiError> {
    let idempotency_key = idempotency_key(request)?;
    let body = json_body(request)?
        .ok_or_else(|| ApiError::bad_request("invalid_body", "a JSON object body is required"))?;
    let offer = SupportRequest::parse(&body)
        .map_err(|rejection| support_error(SupportError::Rejected(rejection)))?;
    Ok(AssignRequest {
        user_id,
        agent,
        offer,
        idempotency_key,
    })
}

async fn assign<S: SupportStore, C: CatalogReader>(
    support: &SupportService<S, C>,
    request: &Request,
    user_id: UserId,
    agent: String,
) -> Result<Response<Body>, ApiError> {
    let request = assign_request(request, user_id, agent)?;
    let now = Utc::now();
    let assigned = support.assign(&request, now).await.map_err(support_error)?;
    let view = one_view(support.catalog(), assigned.offer, now).await?;
    let mut response = json_response(StatusCode::CREATED, &view);
    if assigned.replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

async fn list<S: SupportStore, C: CatalogReader>(
    support: &SupportService<S, C>,
    request: &Request,
    user_id: &UserId,
) -> Result<Response<Body>, ApiError> {
    let limit = int_param(request, "limit", 1..=MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
    let after = query_param(request, "cursor")
        .map(decode_cursor)
        .transpose()?;
    let now = Utc::now();
    let page = support
        .list(user_id, &PageRequest { limit, after, now })
        .await?;
    let body = SupportOfferList {
        next_cursor: page.next.as_ref().map(encode_cursor),
        offers: views(support.catalog(), page.offers, now).await?,
    };
    Ok(json_response(StatusCode::OK, &body))
}

async fn revoke<S: SupportStore, C: CatalogReader>(
    support: &SupportService<S, C>,
    request: &Request,
    user_id: &UserId,
    id: PersonalizedOfferId,
    agent: &str,
) -> Result<Response<Body>, ApiError> {
    let reason = revocation_reason(request)?;
    let now = Utc::now();
    let revocation = Revocation {
        by: agent.to_owned(),
        at: now,
        reason,
    };
    let offer = match support
        .revoke(user_id, id, revocation)
        .await
        .map_err(support_error)?
    {
        RevokeOutcome::Revoked(offer) | RevokeOutcome::AlreadyRevoked(offer) => *offer,
        RevokeOutcome::NotFound => return Err(ApiError::NotFound("no such offer".into())),
    };
    let view = one_view(support.catalog(), offer, now).await?;
    Ok(json_response(StatusCode::OK, &view))
}

/// Why the agent revokes: the body's `reason`, else the `reason` query
/// parameter (some clients send no body with DELETE); optional.
fn revocation_reason(request: &Request) -> Result<Option<String>, ApiError> {
    let from_body = match json_body(request)? {
        None => None,
        Some(body) => match body.get("reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(reason)) => Some(reason.clone()),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "invalid_body",
                    "reason must be a string",
                ))
            }
        },
    };
    Ok(from_body
        .or_else(|| query_param(request, "reason").map(str::to_owned))
        .map(|reason| reason.trim().to_owned())
        .filter(|reason| !reason.is_empty()))
}

async fn one_view<C: CatalogReader>(
    catalog: &C,
    offer: PersonalizedOffer,
    now: DateTime<Utc>,
) -> Result<SupportOfferView, ApiError> {
    views(catalog, vec![offer], now)
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal("no view of the offer".into()))
}

/// Views of `offers`, in their order, with one catalog read for all.
async fn views<C: CatalogReader>(
    catalog: &C,
    offers: Vec<PersonalizedOffer>,
    now: DateTime<Utc>,
) -> Result<Vec<SupportOfferView>, ApiError> {
    let base = offer_views(catalog, &offers, now).await?;
    Ok(offers
        .into_iter()
        .zip(base)
        .map(|(offer, view)| SupportOfferView {
            redemptions: RedemptionView::all_of(&offer),
            offer: view,
            user_id: offer.user_id,
            source: offer.source,
            assigned_by: offer.assigned_by,
            reason: offer.reason,
            created_at: offer.created_at,
            revoked_at: offer.revoked_at,
            revoked_by: offer.revoked_by,
            audit: offer.audit,
        })
        .collect())
}

/// The support service's errors as the API answers them: a rejection is
/// 422 with its reason code, a reused idempotency key 409, a store error as
/// any store error (503 when retrying can help).
fn support_error(err: SupportError) -> ApiError {
    match err {
        SupportError::Rejected(rejection) => ApiError::Unprocessable {
            code: rejection.code.as_str().to_owned(),
            message: rejection.message,
        },
        SupportError::IdempotencyConflict => ApiError::Conflict {
            code: "idempotency_conflict",
            message: err.to_string(),
        },
        SupportError::Store(err) => err.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::header::RETRY_AFTER;
    use lambda_http::{Context, RequestExt};
    use offers_shared::campaign_stats::memory::MemoryStatsStore;
    use offers_shared::campaign_stats::{StatsService, StatsSettings};
    use offers_shared::fakes::{MemoryCatalog, MemoryOffers};
    use offers_shared::profiles::memory::ProfileMemoryStore;
    use serde_json::json;
    use std::time::{Duration, SystemTime};

    /// A config offer `co-1` whose template `tpl-1` needs no rules.
    fn catalog() -> MemoryCatalog {
        MemoryCatalog::of([
            json!({"id": "co-1", "kind": "configOffer", "name": "Free fries",
                   "templateId": "tpl-1", "rules": {}}),
            json!({"id": "tpl-1", "kind": "offerTemplate", "configOfferId": "co-1",
                   "rules": []}),
        ])
    }

    fn service() -> SupportApi<MemoryOffers, MemoryCatalog, MemoryStatsStore, ProfileMemoryStore> {
        SupportApi {
            assignment: SupportService::new(
                MemoryOffers::default(),
                catalog(),
                chrono::Duration::days(90),
            ),
            stats: StatsService::new(MemoryStatsStore::default(), StatsSettings::default()),
            profiles: ProfileMemoryStore::new(),
        }
    }

    /// An agent's assignment to user `u`, with an `Idempotency-Key`, as
    /// Lambda hands it over: with the invocation deadline `left` from now.
    fn assignment(key: &str, left: Duration) -> Request {
        let body = json!({"offerId": "co-1", "expiryDate": "2099-12-31T23:59:59Z",
                          "reason": "ticket 1: goodwill"});
        let mut context = Context::default();
        context.deadline = (SystemTime::now() + left)
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|since| since.as_millis() as u64)
            .unwrap_or_default();
        request(
            Some(json!({"sub": "agent-1", "cognito:groups": "[support]"})),
            Some(&body.to_string()),
            json!({"idempotency-key": key}),
        )
        .with_lambda_context(context)
    }

    fn body_of(response: &Response<Body>) -> Value {
        match response.body() {
            Body::Text(text) => serde_json::from_str(text).expect("JSON"),
            other => panic!("body {other:?}"),
        }
    }

    /// The invocation's time left in the deadline tests: 2 s, so the guard
    /// keeps a fifth of it (400 ms) in hand and cuts at 1.6 s.
    const LEFT: Duration = Duration::from_secs(2);

    #[tokio::test]
    async fn a_write_slower_than_the_deadline_is_a_503_and_its_retry_gets_the_first_offer() {
        let support = service();
        support
            .assignment
            .store()
            .set_delay(Some(Duration::from_secs(60)));
        let started = std::time::Instant::now();
        let response = handle(&support, assignment("ticket-1", LEFT))
            .await
            .expect("never Err");
        let elapsed = started.elapsed();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
        assert_eq!(body_of(&response)["error"]["code"], "service_unavailable");
        // Abandoned mid-write at the cutoff, well before the deadline itself.
        assert!(
            elapsed >= Duration::from_millis(1_500) && elapsed < LEFT,
            "{elapsed:?}"
        );
        // The write landed all the same: the client cannot know, and retries.
        let first = support.assignment.store().offers();
        assert_eq!(first.len(), 1);

        support.assignment.store().set_delay(None);
        let retry = handle(&support, assignment("ticket-1", LEFT))
            .await
            .expect("never Err");
        assert_eq!(retry.status(), StatusCode::CREATED);
        assert_eq!(retry.headers()[IDEMPOTENT_REPLAYED], "true");
        assert_eq!(
            body_of(&retry)["personalizedOfferId"],
            first[0].personalized_offer_id.to_string()
        );
        assert_eq!(
            support.assignment.store().offers().len(),
            1,
            "no second offer"
        );
    }

    #[tokio::test]
    async fn a_fast_store_assigns_normally_under_the_same_deadline() {
        let support = service();
        support
            .assignment
            .store()
            .set_delay(Some(Duration::from_millis(20)));
        let response = handle(&support, assignment("ticket-2", LEFT))
            .await
            .expect("never Err");
        assert_eq!(response.status(), StatusCode::CREATED);
        assert!(response.headers().get(IDEMPOTENT_REPLAYED).is_none());
        assert!(response.headers().get(RETRY_AFTER).is_none());
        assert_eq!(body_of(&response)["offerId"], "co-1");
        assert_eq!(support.assignment.store().offers().len(), 1);
    }

    fn request(claims: Option<Value>, body: Option<&str>, headers: Value) -> Request {
        let mut event = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/support/users/u/offers",
            "rawQueryString": "", "headers": headers,
            "requestContext": {"http": {"method": "POST", "path": "/support/users/u/offers"},
                               "stage": "$default", "requestId": "r-1"},
            "isBase64Encoded": false
        });
        if let Some(claims) = claims {
            event["requestContext"]["authorizer"] = json!({"jwt": {"claims": claims}});
        }
        if let Some(body) = body {
            event["body"] = json!(body);
        }
        lambda_http::request::from_str(&event.to_string()).expect("event")
    }

    #[test]
    fn routes() {
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let user_path = "/support/users/us-east-1%3Aabc/offers";
        assert_eq!(
            route(&Method::POST, user_path),
            Ok(Route::Assign {
                user: "us-east-1%3Aabc"
            })
        );
        assert_eq!(
            route(&Method::GET, user_path),
            Ok(Route::List {
                user: "us-east-1%3Aabc"
            })
        );
        assert_eq!(
            route(&Method::DELETE, &format!("/support/users/u/offers/{id}")),
            Ok(Route::Revoke { user: "u", id })
        );
        assert_eq!(
            route(&Method::GET, "/support/campaigns/spring%2024/stats"),
            Ok(Route::CampaignStats {
                campaign: "spring%2024"
            })
        );
        assert_eq!(
            route(&Method::GET, "/support/users/us-east-1%3Aabc/profile"),
            Ok(Route::Profile {
                user: "us-east-1%3Aabc"
            })
        );
        assert_eq!(
            campaign_id("spring%2024").ok().as_deref(),
            Some("spring 24")
        );
        assert!(campaign_id(&"c".repeat(MAX_STATS_ID_BYTES + 1)).is_err());
        for (method, path, status) in [
            (Method::PUT, user_path, 405),
            (Method::DELETE, user_path, 405),
            (Method::GET, "/support/users/u/offers/x", 405),
            (Method::GET, "/support/users//offers", 404),
            (Method::GET, "/support/users/u/offers/", 404),
            (Method::GET, "/support/users/u", 404),
            (Method::GET, "/rewards/offers", 404),
            (Method::POST, "/support/users/u/offers/x/y", 404),
            (Method::POST, "/support/campaigns/c1/stats", 405),
            (Method::DELETE, "/support/users/u/profile", 405),
            (Method::GET, "/support/users//profile", 404),
            (Method::GET, "/support/campaigns//stats", 404),
            (Method::GET, "/support/campaigns/c1", 404),
        ] {
            assert_eq!(
                route(&method, path).map_err(|e| e.status().as_u16()),
                Err(status),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn only_support_members_with_a_sub_are_agents() {
        let agent_of = |claims: Option<Value>| {
            agent(&request(claims, None, json!({}))).map_err(|e| e.status().as_u16())
        };
        assert_eq!(agent_of(None), Err(401));
        assert_eq!(agent_of(Some(json!({"sub": "a-1"}))), Err(403));
        assert_eq!(
            agent_of(Some(json!({"sub": "a-1", "cognito:groups": "[admins]"}))),
            Err(403)
        );
        assert_eq!(
            agent_of(Some(
                json!({"sub": "a-1", "cognito:groups": "[admins support]"})
            )),
            Ok("a-1".to_owned())
        );
        assert_eq!(
            agent_of(Some(
                json!({"sub": "a-1", "cognito:groups": "[\"support\"]"})
            )),
            Ok("a-1".to_owned())
        );
    }

    #[test]
    fn bodies_must_be_json_objects_of_sane_size() {
        let code = |body: Option<&str>| {
            json_body(&request(None, body, json!({})))
                .map(|body| body.map(|b| b.len()))
                .map_err(|e| e.code().to_owned())
        };
        assert_eq!(code(None), Ok(None));
        assert_eq!(code(Some("  \n")), Ok(None));
        assert_eq!(code(Some(r#"{"a": 1, "b": 2}"#)), Ok(Some(2)));
        assert_eq!(code(Some("[]")), Err("invalid_body".into()));
        assert_eq!(code(Some("{")), Err("invalid_body".into()));
        let large = format!(r#"{{"a": "{}"}}"#, "x".repeat(MAX_BODY_BYTES));
        assert_eq!(code(Some(&large)), Err("body_too_large".into()));
    }

    #[test]
    fn idempotency_keys_are_short_visible_ascii() {
        let key = |value: &str| {
            idempotency_key(&request(None, None, json!({"idempotency-key": value})))
                .map_err(|e| e.code().to_owned())
        };
        assert_eq!(key("ticket-1"), Ok(Some("ticket-1".into())));
        assert_eq!(key(" padded "), Ok(Some("padded".into())));
        for bad in ["", "two words", &"k".repeat(MAX_IDEMPOTENCY_KEY_CHARS + 1)] {
            assert_eq!(key(bad), Err("invalid_idempotency_key".into()), "{bad:?}");
        }
        assert_eq!(
            idempotency_key(&request(None, None, json!({}))).map_err(|e| e.status()),
            Ok(None)
        );
    }

    proptest::proptest! {
        /// Fuzzing the request side: whatever arrives, routing, the agent
        /// check and the parsing of body, key and reason answer or refuse
        /// with an API error, never a panic, and bad input is never a 5xx.
        #[test]
        fn any_request_is_parsed_or_refused(
            method in "(GET|POST|PUT|DELETE|PATCH)",
            path in proptest::prop_oneof![
                "/support/users/([A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-F]{2}){0,20}/offers(/[A-Za-z0-9._~%-]{0,40})?",
                "(/([A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-F]{2}){0,12}){0,5}",
            ],
            body in proptest::prop_oneof![".{0,200}", "\\{\"reason\": ?.{0,30}\\}"],
            groups in "[ -~]{0,30}",
            key in "[ -~]{0,300}",
        ) {
            let claims = json!({"sub": "agent", "cognito:groups": groups});
            let Ok(request) = std::panic::catch_unwind(|| {
                request(Some(claims.clone()), Some(&body), json!({"idempotency-key": key}))
            }) else {
                // A header value the event format itself refuses never reaches us.
                return Ok(());
            };
            let client_error = |error: ApiError| error.status().is_client_error();
            if let Err(error) = route(&Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET), &path) {
                proptest::prop_assert!(client_error(error));
            }
            if let Err(error) = agent(&request) {
                proptest::prop_assert!(client_error(error));
            }
            if let Err(error) = json_body(&request) {
                proptest::prop_assert!(client_error(error));
            }
            if let Err(error) = idempotency_key(&request) {
                proptest::prop_assert!(client_error(error));
            }
            if let Err(error) = revocation_reason(&request) {
                proptest::prop_assert!(client_error(error));
            }
        }
    }
}
