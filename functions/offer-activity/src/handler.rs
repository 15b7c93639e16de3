//! The HTTP handler: API Gateway v2 request in, JSON response out.
//!
//! - `POST /rewards/offers/{personalizedOfferId}/redemptions`: use the
//!   caller's offer for an order; 201, or 200 with the first redemption when
//!   the order used it before.
//! - `DELETE /rewards/offers/{personalizedOfferId}/redemptions/{orderId}`:
//!   the order was cancelled; 200 with the voided redemption.
//! - `POST /rewards/offers/{personalizedOfferId}/events`: `viewed` or
//!   `clicked`; 202, each `eventId` counted once.
//!
//! Checks run in this order: route (404, 405), caller (401), ids (400), body
//! (413, 400), then the service (404, 409, 422). The whole request runs under
//! the invocation's deadline guard (503 with `Retry-After`); every write is
//! idempotent, so a retry after a 503 is safe.

use chrono::{DateTime, Utc};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use offers_http::{
    caller_id, decode_segment, log_request, offer_views, parse_offer_id, path_segments, raw_path,
    respond, within_deadline, ApiError, OfferView, RedemptionView,
};
use offers_shared::activity::{ActivityError, ActivityService, Redeemed};
use offers_shared::domain::redemption::BodyProblem;
use offers_shared::domain::OrderId;
use offers_shared::domain::{
    parse_offer_event, parse_redemption_request, OfferEventType, PersonalizedOffer,
};
use offers_shared::ports::{ActivityStore, CatalogReader, RedemptionBudgets};
use serde::Serialize;
use serde_json::{Map, Value};
use std::time::Instant;
use uuid::Uuid;

/// Larger bodies are refused with 413 before they are parsed: a redemption
/// or an event is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// What a request asks for; the path segments exactly as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    Redeem { id: &'a str },
    Void { id: &'a str, order: &'a str },
    Event { id: &'a str },
}

/// The route of a method and raw path: 404 for an unknown path, 405 for a
/// known path with a method it does not take.
pub fn route<'a>(method: &Method, path: &'a str) -> Result<Route<'a>, ApiError> {
    let (route, allowed) = match path_segments(path).as_slice() {
        ["rewards", "offers", id, "redemptions"] if !id.is_empty() => {
            (Route::Redeem { id }, Method::POST)
        }
        ["rewards", "offers", id, "redemptions", order] if !id.is_empty() && !order.is_empty() => {
            (Route::Void { id, order }, Method::DELETE)
        }
        ["rewards", "offers", id, "events"] if !id.is_empty() => {
            (Route::Event { id }, Method::POST)
        }
        _ => return Err(ApiError::no_route()),
    };
    if *method != allowed {
        return Err(ApiError::MethodNotAllowed {
            allow: if allowed == Method::POST {
                &["POST"]
            } else {
                &["DELETE"]
            },
        });
    }
    Ok(route)
}

/// The body of a redemption's answer.
#[derive(Debug, Serialize)]
pub struct RedemptionAnswer {
    pub redemption: RedemptionView,
    pub offer: OfferView,
}

/// The body of an accepted event.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventAccepted {
    pub event_id: Uuid,
    #[serde(rename = "type")]
    pub event_type: OfferEventType,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Answer {
    Redemption(Box<RedemptionAnswer>),
    Event(EventAccepted),
}

/// Handles one request. Every failure is an error response, so this never
/// returns `Err` (the runtime would turn that into a bare 500).
pub async fn handle<S: ActivityStore, C: CatalogReader, B: RedemptionBudgets>(
    activity: &ActivityService<S, C, B>,
    request: Request,
) -> Result<Response<Body>, Error> {
    let started = Instant::now();
    let response = respond(within_deadline(&request, answer(activity, &request)).await);
    log_request(&request, &response, started);
    Ok(response)
}

async fn answer<S: ActivityStore, C: CatalogReader, B: RedemptionBudgets>(
    activity: &ActivityService<S, C, B>,
    request: &Request,
) -> Result<(StatusCode, Answer), ApiError> {
    let route = route(request.method(), raw_path(request))?;
    let user_id = &caller_id(request)?;
    let now = Utc::now();
    match route {
        Route::Redeem { id } => {
            let id = parse_offer_id(id)?;
            // 413 and 400 for what is not a JSON object first; the amounts
            // are then read from the body's own text (exact decimals).
            json_body(request)?;
            let order = parse_redemption_request(request.body().as_ref()).map_err(invalid_body)?;
            let redeemed = activity
                .redeem(user_id, id, &order, now)
                .await
                .map_err(activity_error)?;
            let status = if redeemed.new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            redemption_answer(activity.catalog(), redeemed, now)
                .await
                .map(|answer| (status, answer))
        }
        Route::Void { id, order } => {
            let id = parse_offer_id(id)?;
            let order = decode_segment(order)
                .ok_or_else(|| BodyProblem::new("orderId is not UTF-8 text"))
                .and_then(|order| {
                    OrderId::try_from(order).map_err(|invalid| BodyProblem::new(invalid.0))
                })
                .map_err(|problem| ApiError::bad_request("invalid_order_id", problem.message))?;
            let voided = activity
                .void(user_id, id, &order, now)
                .await
                .map_err(activity_error)?;
            redemption_answer(activity.catalog(), voided, now)
                .await
                .map(|answer| (StatusCode::OK, answer))
        }
        Route::Event { id } => {
            let id = parse_offer_id(id)?;
            let body = json_body(request)?;
            let event = parse_offer_event(&body).map_err(invalid_body)?;
            activity
                .record_event(user_id, id, event, now)
                .await
                .map_err(activity_error)?;
            Ok((
                StatusCode::ACCEPTED,
                Answer::Event(EventAccepted {
                    event_id: event.event_id,
                    event_type: event.event_type,
                }),
            ))
        }
    }
}

/// The request body as a JSON object: 413 over [`MAX_BODY_BYTES`], 400 when
/// missing, not JSON, or not an object.
fn json_body(request: &Request) -> Result<Map<String, Value>, ApiError> {
    let bytes: &[u8] = request.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(format!(
            "the body is larger than {MAX_BODY_BYTES} bytes"
        )));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(body)) => Ok(body),
        Ok(_) => Err(ApiError::bad_request(
            "invalid_body",
            "the body must be a JSON object",
        )),
        Err(_) if bytes.iter().all(u8::is_ascii_whitespace) => Err(ApiError::bad_request(
            "invalid_body",
            "a JSON object body is required",
        )),
        Err(err) => Err(ApiError::bad_request(
            "invalid_body",
            format!("the body is not valid JSON: {err}"),
        )),
    }
}

fn invalid_body(problem: BodyProblem) -> ApiError {
    ApiError::bad_request("invalid_body", problem.message)
}

/// The service's errors as the API answers them: refusals are 409 (the
/// offer's state) or 422 (the order against its rules), their message
/// naming the status or rule.
fn activity_error(err: ActivityError) -> ApiError {
    match err {
        ActivityError::NotFound(message) => ApiError::NotFound(message.into()),
        ActivityError::Refused(refusal) => match refusal.code() {
            "rule_not_met" => ApiError::Unprocessable {
                code: refusal.code().to_owned(),
                message: refusal.to_string(),
            },
            code => ApiError::Conflict {
                code,
                message: refusal.to_string(),
            },
        },
        ActivityError::Store(err) => err.into(),
    }
}

async fn redemption_answer<C: CatalogReader>(
    catalog: &C,
    redeemed: Redeemed,
    now: DateTime<Utc>,
) -> Result<Answer, ApiError> {
    let Redeemed {
        offer, redemption, ..
    } = redeemed;
    let view = one_view(catalog, &offer, now).await?;
    Ok(Answer::Redemption(Box::new(RedemptionAnswer {
        redemption: RedemptionView::new(offer.personalized_offer_id, &redemption),
        offer: view,
    })))
}

async fn one_view<C: CatalogReader>(
    catalog: &C,
    offer: &PersonalizedOffer,
    now: DateTime<Utc>,
) -> Result<OfferView, ApiError> {
    offer_views(catalog, std::slice::from_ref(offer), now)
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal("no view of the offer".into()))
}

#[cfg(test)]
mod tests;
