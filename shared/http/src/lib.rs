//! HTTP plumbing shared by the API functions (API Gateway HTTP API, payload
//! 2.0): the caller's identity, typed errors, JSON responses, list cursors,
//! the offer JSON, the deadline guard, and the runtime loop that refuses an
//! undecodable body.

mod cursor;
mod deadline;
mod error;
mod identity;
mod metrics;
mod request;
mod response;
mod runtime;
mod view;

pub use cursor::{decode_cursor, encode_cursor};
pub use deadline::{within_deadline, Deadline, DEADLINE_MARGIN};
pub use error::ApiError;
pub use identity::{caller, caller_from_context, caller_id, Caller, Claims, IdentitySource};
pub use metrics::{request_metrics, route_key, Measured, UNMATCHED_ROUTE};
pub use request::{
    decode_segment, int_param, parse_offer_id, parse_uuid, path_segments, query_param, raw_path,
};
pub use response::{error_response, json_response, log_request, respond, JSON, NO_STORE};
pub use runtime::{run, undecodable_body, Answer, CheckedBody};

pub use view::{
    config_offer, offer_views, ChallengeView, OfferView, Progress, RedemptionView,
    OFFER_VIEW_FIELDS,
};
