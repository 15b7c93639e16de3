//! The HTTP handler: API Gateway v2 request in, JSON response out.
//!
//! - `GET /rewards/offers/{personalizedOfferId}`: one of the caller's offers,
//!   whatever its status.
//! - `GET /rewards/offers[?limit=N][&cursor=C]`: the caller's offers that are
//!   neither expired nor revoked, by rank, then start date, then id.
//!
//! Checks run in this order: route (404, 405), caller (401), input (400),
//! and only then the store. The whole request runs under the invocation's
//! deadline guard (`offers_http::Deadline`): 503 with `Retry-After`
//! rather than a function killed at its timeout.

use chrono::Utc;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use offers_http::{
    caller_id, decode_cursor, encode_cursor, int_param, log_request, offer_views, parse_offer_id,
    path_segments, query_param, raw_path, respond, within_deadline, ApiError, OfferView,
};
use offers_shared::lookup::{
    LookedUp, LookupError, LookupRequest, LookupService, DEFAULT_LIMIT, MAX_LIMIT,
};
use offers_shared::ports::{CatalogReader, OfferReader, PageRequest};
use serde::Serialize;
use std::time::Instant;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    List,
    /// The id exactly as in the path, not yet validated.
    Get(&'a str),
}

const ALLOWED: &[&str] = &["GET"];

/// The route of a method and raw path: 404 for an unknown path, 405 for a
/// known path with another method than GET.
pub fn route<'a>(method: &Method, path: &'a str) -> Result<Route<'a>, ApiError> {
    let route = match path_segments(path).as_slice() {
        ["rewards", "offers"] => Route::List,
        ["rewards", "offers", id] if !id.is_empty() => Route::Get(id),
        _ => return Err(ApiError::no_route()),
    };
    if method != Method::GET {
        return Err(ApiError::MethodNotAllowed { allow: ALLOWED });
    }
    Ok(route)
}

/// The lookup request of an API Gateway request, checked in the contract's
/// order: route (404, 405), caller (401), then input (400).
pub fn lookup_request(request: &Request) -> Result<LookupRequest, ApiError> {
    let route = route(request.method(), raw_path(request))?;
    let user_id = caller_id(request)?;
    Ok(match route {
        Route::Get(id) => LookupRequest::Offer {
            user_id,
            personalized_offer_id: parse_offer_id(id)?,
        },
        Route::List => LookupRequest::Page {
            user_id,
            page: PageRequest {
                limit: int_param(request, "limit", 1..=MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT),
                after: query_param(request, "cursor")
                    .map(decode_cursor)
                    .transpose()?,
                now: Utc::now(),
            },
        },
    })
}

/// The list's body: a page of offers and, when more remain, the cursor of the next.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferList {
    pub offers: Vec<OfferView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Answer {
    One(Box<OfferView>),
    Page(OfferList),
}

/// Handles one request. Every failure is an error response, so this never
/// returns `Err` (the runtime would turn that into a bare 500).
pub async fn handle<R: OfferReader, C: CatalogReader>(
    lookup: &LookupService<R, C>,
    request: Request,
) -> Result<Response<Body>, Error> {
    let started = Instant::now();
    // The store calls never run past the invocation's timeout: 503 instead.
    let response = respond(within_deadline(&request, answer(lookup, &request)).await);
    log_request(&request, &response, started);
    Ok(response)
}

async fn answer<R: OfferReader, C: CatalogReader>(
    lookup: &LookupService<R, C>,
    request: &Request,
) -> Result<(StatusCode, Answer), ApiError> {
    let request = lookup_request(request)?;
    // A page's statuses are those of the time its read was asked for.
    let now = match &request {
        LookupRequest::Page { page, .. } => page.now,
        LookupRequest::Offer { .. } => Utc::now(),
    };
    let answer = match lookup.look_up(&request).await.map_err(lookup_error)? {
        LookedUp::Offer(offer) => {
            let view = offer_views(lookup.catalog(), std::slice::from_ref(&*offer), now)
                .await?
                .pop()
                .ok_or_else(|| lookup_error(LookupError::NotFound))?;
            Answer::One(Box::new(view))
        }
        LookedUp::Page { offers, next } => Answer::Page(OfferList {
            offers: offer_views(lookup.catalog(), &offers, now).await?,
            next_cursor: next.as_ref().map(encode_cursor),
        }),
    };
    Ok((StatusCode::OK, answer))
}

/// Missing and someone else's are the same 404; a store error is answered
/// as any store error (503 when retrying can help).
fn lookup_error(error: LookupError) -> ApiError {
    match error {
        LookupError::NotFound => ApiError::NotFound("no such offer".into()),
        LookupError::Store(error) => error.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::header::RETRY_AFTER;
    use lambda_http::{Context, RequestExt};
    use offers_shared::domain::PersonalizedOffer;
    use offers_shared::error::StoreError;
    use offers_shared::fakes::{active_offer, MemoryCatalog, MemoryOffers};
    use serde_json::{json, Value};
    use std::time::{Duration as StdDuration, SystemTime};
    use uuid::Uuid;

    const ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

    /// The owner's offer with id `id` (any other text: a new id).
    fn offer(user_id: &str, id: &str) -> PersonalizedOffer {
        let mut offer = active_offer(user_id, Utc::now());
        if let Ok(id) = id.parse() {
            offer.personalized_offer_id = id;
        }
        offer
    }

    /// A config offer `co-1` (no template: the lookup reads only its texts).
    fn catalog() -> MemoryCatalog {
        MemoryCatalog::of([json!({"id": "co-1", "kind": "configOffer", "name": "Free fries"})])
    }

    fn lookup(offers: MemoryOffers) -> LookupService<MemoryOffers, MemoryCatalog> {
        LookupService::new(offers, catalog())
    }

    fn event(method: &str, path: &str, query: &str, sub: Option<&str>) -> Request {
        let mut event = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
            "headers": {"x-user-id": "intruder"},
            "requestContext": {"http": {"method": method, "path": path}, "stage": "$default",
                               "requestId": "r-1"},
            "isBase64Encoded": false
        });
        if let Some(sub) = sub {
            event["requestContext"]["authorizer"] = json!({"jwt": {"claims": {"sub": sub}}});
        }
        lambda_http::request::from_str(&event.to_string()).expect("event")
    }

    /// `request` as Lambda hands it over: with an invocation deadline
    /// `deadline_ms` (epoch milliseconds; 0 is none).
    fn with_deadline(request: Request, deadline_ms: u64) -> Request {
        let mut context = Context::default();
        context.deadline = deadline_ms;
        request.with_lambda_context(context)
    }

    /// The epoch milliseconds `left` from now.
    fn in_ms(left: StdDuration) -> u64 {
        (SystemTime::now() + left)
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|since| since.as_millis() as u64)
            .unwrap_or_default()
    }

    async fn call(
        lookup: &LookupService<MemoryOffers, MemoryCatalog>,
        request: Request,
    ) -> (u16, Value) {
        let response = handle(lookup, request).await.expect("never Err");
        let body = match response.body() {
            Body::Text(text) => serde_json::from_str(text).expect("JSON"),
            other => panic!("body {other:?}"),
        };
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["cache-control"], "private, no-store");
        (response.status().as_u16(), body)
    }

    fn reads(lookup: &LookupService<MemoryOffers, MemoryCatalog>) -> Vec<String> {
        lookup.offers().reads()
    }

    #[test]
    fn routes() {
        let get = Method::GET;
        assert_eq!(route(&get, "/rewards/offers"), Ok(Route::List));
        assert_eq!(
            route(&get, &format!("/rewards/offers/{ID}")),
            Ok(Route::Get(ID))
        );
        assert_eq!(route(&get, "/rewards/offers/x"), Ok(Route::Get("x")));
        for path in [
            "/",
            "/rewards",
            "/rewards/offer",
            "/rewards/offers/a/b",
            "/rewards/offers/",
            "/dev/rewards/offers",
            "//rewards/offers",
        ] {
            assert_eq!(
                route(&get, path).map_err(|e| e.status().as_u16()),
                Err(404),
                "{path}"
            );
        }
        for method in [
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::HEAD,
        ] {
            assert_eq!(
                route(&method, "/rewards/offers").map_err(|e| e.status().as_u16()),
                Err(405)
            );
            assert_eq!(
                route(&method, "/nowhere").map_err(|e| e.status().as_u16()),
                Err(404)
            );
        }
    }

    #[tokio::test]
    async fn owner_gets_the_offer_and_others_the_same_404_as_missing() {
        let lookup = lookup(MemoryOffers::of([offer("owner", ID)]));
        let (status, body) = call(
            &lookup,
            event("GET", &format!("/rewards/offers/{ID}"), "", Some("owner")),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["personalizedOfferId"], ID);
        assert_eq!(body["name"], "Free fries");
        assert_eq!(body["status"], "active");

        let other = call(
            &lookup,
            event("GET", &format!("/rewards/offers/{ID}"), "", Some("other")),
        )
        .await;
        let missing_id = Uuid::new_v4();
        let missing = call(
            &lookup,
            event(
                "GET",
                &format!("/rewards/offers/{missing_id}"),
                "",
                Some("owner"),
            ),
        )
        .await;
        assert_eq!(other.0, 404);
        assert_eq!(other, missing);
        assert_eq!(other.1["error"]["code"], "not_found");
        assert_eq!(
            reads(&lookup)[1],
            format!("get other {ID}"),
            "read under the caller's key"
        );
    }

    #[tokio::test]
    async fn malformed_ids_limits_and_cursors_are_400_before_any_read() {
        let lookup = lookup(MemoryOffers::default());
        for (path, query, code) in [
            ("/rewards/offers/not-a-uuid", "", "invalid_id"),
            (
                "/rewards/offers/0f8fad5bd9cb469fa16570867728950e",
                "",
                "invalid_id",
            ),
            ("/rewards/offers", "limit=0", "invalid_limit"),
            ("/rewards/offers", "limit=101", "invalid_limit"),
            ("/rewards/offers", "limit=abc", "invalid_limit"),
            ("/rewards/offers", "cursor=garbage!", "invalid_cursor"),
            ("/rewards/offers", "cursor=", "invalid_cursor"),
        ] {
            let (status, body) = call(&lookup, event("GET", path, query, Some("owner"))).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some(code)),
                "{path}?{query}"
            );
        }
        assert!(reads(&lookup).is_empty(), "no read for a bad request");
    }

    #[tokio::test]
    async fn no_caller_is_401_and_a_user_id_elsewhere_is_ignored() {
        let lookup = lookup(MemoryOffers::default());
        for path in ["/rewards/offers", "/rewards/offers/not-a-uuid"] {
            let (status, body) = call(&lookup, event("GET", path, "userId=owner", None)).await;
            assert_eq!(status, 401);
            assert_eq!(body["error"]["code"], "unauthorized");
        }
        assert!(reads(&lookup).is_empty());
        call(
            &lookup,
            event(
                "GET",
                "/rewards/offers",
                "userId=intruder&user_id=x",
                Some("owner"),
            ),
        )
        .await;
        assert_eq!(
            reads(&lookup),
            vec![format!("list owner {DEFAULT_LIMIT} None")]
        );
    }

    #[tokio::test]
    async fn the_list_pages_with_a_cursor() {
        let lookup = lookup(MemoryOffers::of(
            (0..3)
                .map(|_| offer("owner", "new"))
                .chain([offer("other", "new")]),
        ));
        let (status, body) = call(
            &lookup,
            event("GET", "/rewards/offers", "limit=2", Some("owner")),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["offers"].as_array().map(Vec::len), Some(2));
        let cursor = body["nextCursor"].as_str().expect("cursor").to_owned();
        let (status, _) = call(
            &lookup,
            event(
                "GET",
                "/rewards/offers",
                &format!("cursor={cursor}"),
                Some("owner"),
            ),
        )
        .await;
        assert_eq!(status, 200);
        let second = &reads(&lookup)[1];
        assert!(second.starts_with("list owner 50 Some("), "{second}");

        let (_, body) = call(&lookup, event("GET", "/rewards/offers", "", Some("other"))).await;
        assert_eq!(body["offers"].as_array().map(Vec::len), Some(1));
        assert!(
            body.get("nextCursor").is_none(),
            "no cursor on the last page"
        );
    }

    #[tokio::test]
    async fn store_failures_are_503_when_transient_else_500() {
        for (fail, status, code) in [
            (
                StoreError::Throttled("t".into()),
                503,
                "service_unavailable",
            ),
            (StoreError::Corrupt("c".into()), 500, "internal_error"),
        ] {
            let lookup = lookup(MemoryOffers::default());
            lookup.offers().set_failure(Some(fail));
            for path in [
                format!("/rewards/offers/{ID}"),
                "/rewards/offers".to_owned(),
            ] {
                let response = handle(&lookup, event("GET", &path, "", Some("owner")))
                    .await
                    .expect("never Err");
                // Only a 503 says when to retry.
                assert_eq!(
                    response.headers().get(RETRY_AFTER).is_some(),
                    status == 503,
                    "{path}"
                );
                let (got, body) = call(&lookup, event("GET", &path, "", Some("owner"))).await;
                assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)));
            }
        }
    }

    /// The invocation's time left in the deadline tests: 2 s, so the guard
    /// keeps a fifth of it (400 ms) in hand and cuts at 1.6 s.
    const LEFT: StdDuration = StdDuration::from_secs(2);

    #[tokio::test]
    async fn a_store_slower_than_the_deadline_is_abandoned_with_a_503_and_retry_after() {
        let lookup = lookup(MemoryOffers::of([offer("owner", ID)]));
        lookup.offers().set_delay(Some(StdDuration::from_secs(60)));
        let deadline = in_ms(LEFT);
        let started = Instant::now();
        let get = event("GET", &format!("/rewards/offers/{ID}"), "", Some("owner"));
        let list = event("GET", "/rewards/offers", "", Some("owner"));
        let (get, list) = tokio::join!(
            handle(&lookup, with_deadline(get, deadline)),
            handle(&lookup, with_deadline(list, deadline)),
        );
        let elapsed = started.elapsed();
        for response in [get, list] {
            let response = response.expect("never Err");
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[RETRY_AFTER], "1");
            let Body::Text(text) = response.body() else {
                panic!("body {:?}", response.body());
            };
            let body: Value = serde_json::from_str(text).expect("JSON");
            assert_eq!(body["error"]["code"], "service_unavailable");
        }
        // Abandoned mid-call at the cutoff, well before the deadline itself.
        assert_eq!(reads(&lookup).len(), 2, "both reads were under way");
        assert!(
            elapsed >= StdDuration::from_millis(1_500) && elapsed < LEFT,
            "{elapsed:?}"
        );
    }

    #[tokio::test]
    async fn a_fast_store_answers_normally_under_the_same_deadline() {
        let lookup = lookup(MemoryOffers::of([offer("owner", ID)]));
        lookup
            .offers()
            .set_delay(Some(StdDuration::from_millis(20)));
        let request = event("GET", &format!("/rewards/offers/{ID}"), "", Some("owner"));
        let (status, body) = call(&lookup, with_deadline(request, in_ms(LEFT))).await;
        assert_eq!(status, 200);
        assert_eq!(body["personalizedOfferId"], ID);
        let request = event("GET", "/rewards/offers", "", Some("owner"));
        let (status, body) = call(&lookup, with_deadline(request, in_ms(LEFT))).await;
        assert_eq!(status, 200);
        assert_eq!(body["offers"].as_array().map(Vec::len), Some(1));
    }

    #[tokio::test]
    async fn a_context_without_a_real_deadline_runs_unguarded() {
        let lookup = lookup(MemoryOffers::of([offer("owner", ID)]));
        lookup
            .offers()
            .set_delay(Some(StdDuration::from_millis(20)));
        // None at all (a default context), and cargo lambda watch's relative
        // 600000: taken as epoch milliseconds, both are long past and every
        // request would be a 503.
        for deadline_ms in [0, 600_000] {
            let request = event("GET", &format!("/rewards/offers/{ID}"), "", Some("owner"));
            let (status, _) = call(&lookup, with_deadline(request, deadline_ms)).await;
            assert_eq!(status, 200, "{deadline_ms}");
        }
    }

    #[tokio::test]
    async fn wrong_method_and_unknown_route() {
        let lookup = lookup(MemoryOffers::default());
        let (status, body) =
            call(&lookup, event("POST", "/rewards/offers", "", Some("owner"))).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (405, Some("method_not_allowed"))
        );
        let (status, body) = call(&lookup, event("GET", "/rewards", "", Some("owner"))).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("not_found"))
        );
        assert!(reads(&lookup).is_empty());
    }

    proptest::proptest! {
        /// Fuzzing the request side: any method, path, query and caller get
        /// an answer with a known status and the contract's JSON, never a panic.
        #[test]
        fn any_request_is_answered_in_the_contracts_shape(
            method in "(GET|POST|PUT|DELETE|HEAD|PATCH|OPTIONS)",
            // What API Gateway can deliver: URI characters, percent-encoding.
            path in proptest::prop_oneof![
                "/rewards/offers(/([A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-F]{2}){0,40})?",
                "(/([A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-F]{2}){0,12}){0,5}",
            ],
            query in "([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-F]{2}){0,60}",
            sub in proptest::option::of("[ -~]{0,40}"),
        ) {
            let mut event = json!({
                "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
                "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
                "isBase64Encoded": false
            });
            if let Some(sub) = sub {
                event["requestContext"]["authorizer"] = json!({"jwt": {"claims": {"sub": sub}}});
            }
            // lambda_http panics on an event it cannot make a request of (see
            // docs/design.md); API Gateway sends none such, so it is skipped.
            let text = event.to_string();
            let Ok(Ok(request)) = std::panic::catch_unwind(|| lambda_http::request::from_str(&text)) else {
                return Ok(());
            };
            let lookup = lookup(MemoryOffers::default());
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let response = runtime.block_on(handle(&lookup, request)).expect("never Err");
            let status = response.status().as_u16();
            proptest::prop_assert!([200, 400, 401, 404, 405].contains(&status), "{}", status);
            let body: Value = match response.body() {
                Body::Text(text) => serde_json::from_str(text).expect("JSON"),
                other => panic!("{other:?}"),
            };
            if status >= 400 {
                proptest::prop_assert!(body["error"]["code"].is_string());
                proptest::prop_assert!(body["error"]["message"].is_string());
            }
        }
    }
}
