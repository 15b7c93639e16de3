//! Reading an API Gateway v2 request: its path, query and ids.

use super::error::ApiError;
use lambda_http::{Request, RequestExt};
use offers_domain::PersonalizedOfferId;
use uuid::Uuid;

/// The request's path as the client sent it (API Gateway's `rawPath`). The
/// APIs are deployed on the `$default` stage, so there is no stage prefix.
pub fn raw_path(request: &Request) -> &str {
    match request.raw_http_path() {
        "" => request.uri().path(),
        path => path,
    }
}

/// The segments of an absolute path: `/rewards/offers/x` is
/// `["rewards", "offers", "x"]`. Empty segments (a trailing or double slash)
/// are kept, so such paths match no route.
pub fn path_segments(path: &str) -> Vec<&str> {
    match path.strip_prefix('/') {
        Some("") | None => Vec::new(),
        Some(rest) => rest.split('/').collect(),
    }
}

/// A path segment with its percent-encoding undone (`us-east-1%3Aabc` is
/// `us-east-1:abc`); `None` when it does not decode to UTF-8 text.
pub fn decode_segment(segment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|text| text.into_owned())
}

/// The first value of a query parameter, decoded.
pub fn query_param<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .query_string_parameters_ref()
        .and_then(|query| query.first(name))
}

/// A resource id that must be a UUID in its canonical, hyphenated form
/// (any letter case); 400 `invalid_id` otherwise.
pub fn parse_uuid(text: &str, what: &str) -> Result<Uuid, ApiError> {
    let invalid = || ApiError::bad_request("invalid_id", format!("{what} must be a UUID"));
    if text.len() != 36 {
        return Err(invalid());
    }
    Uuid::try_parse(text).map_err(|_| invalid())
}

/// A personalized offer's id in a path (`{id}`), else 400 `invalid_id`.
pub fn parse_offer_id(text: &str) -> Result<PersonalizedOfferId, ApiError> {
    parse_uuid(text, "personalizedOfferId").map(PersonalizedOfferId::from_uuid)
}

/// An optional integer query parameter within `range`, else 400 `invalid_{name}`.
pub fn int_param(
    request: &Request,
    name: &'static str,
    range: std::ops::RangeInclusive<usize>,
) -> Result<Option<usize>, ApiError> {
    let Some(text) = query_param(request, name) else {
        return Ok(None);
    };
    match text.parse::<usize>() {
        Ok(value) if range.contains(&value) => Ok(Some(value)),
        _ => Err(ApiError::BadRequest {
            code: match name {
                "limit" => "invalid_limit",
                _ => "invalid_parameter",
            },
            message: format!(
                "{name} must be a whole number from {} to {}",
                range.start(),
                range.end()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(raw_path: &str, raw_query: &str) -> Request {
        let event = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": raw_path, "rawQueryString": raw_query,
            "requestContext": {"http": {"method": "GET", "path": raw_path}, "stage": "$default"}
        });
        lambda_http::request::from_str(&event.to_string()).expect("event")
    }

    #[test]
    fn segments_of_paths() {
        assert_eq!(path_segments("/rewards/offers"), vec!["rewards", "offers"]);
        assert_eq!(
            path_segments("/rewards/offers/x"),
            vec!["rewards", "offers", "x"]
        );
        assert_eq!(
            path_segments("/rewards/offers/"),
            vec!["rewards", "offers", ""]
        );
        assert!(path_segments("/").is_empty());
        assert!(path_segments("").is_empty());
    }

    #[test]
    fn segments_are_percent_decoded() {
        assert_eq!(
            decode_segment("us-east-1%3A192991f1-ede8").as_deref(),
            Some("us-east-1:192991f1-ede8")
        );
        assert_eq!(decode_segment("plain").as_deref(), Some("plain"));
        assert_eq!(decode_segment("%FF%FE"), None);
    }

    #[test]
    fn raw_path_and_decoded_query() {
        let request = request("/rewards/offers", "limit=5&cursor=a%2Db&limit=7");
        assert_eq!(raw_path(&request), "/rewards/offers");
        assert_eq!(query_param(&request, "cursor"), Some("a-b"));
        assert_eq!(int_param(&request, "limit", 1..=100), Ok(Some(5)));
        assert_eq!(query_param(&request, "missing"), None);
    }

    #[test]
    fn integer_parameters_outside_their_range_are_400() {
        for query in [
            "limit=0",
            "limit=101",
            "limit=-1",
            "limit=ten",
            "limit=",
            "limit=1.5",
        ] {
            let error =
                int_param(&request("/rewards/offers", query), "limit", 1..=100).expect_err(query);
            assert_eq!(error.code(), "invalid_limit", "{query}");
        }
        assert_eq!(
            int_param(&request("/rewards/offers", "limit=100"), "limit", 1..=100),
            Ok(Some(100))
        );
        assert_eq!(
            int_param(&request("/rewards/offers", ""), "limit", 1..=100),
            Ok(None)
        );
    }

    #[test]
    fn only_canonical_uuids_are_ids() {
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(
            parse_uuid(id, "id").map(|u| u.to_string()),
            Ok(id.to_owned())
        );
        assert_eq!(
            parse_uuid(&id.to_uppercase(), "id").map(|u| u.to_string()),
            Ok(id.to_owned())
        );
        for bad in [
            "not-a-uuid",
            "0f8fad5bd9cb469fa16570867728950e",
            "{0f8fad5b-d9cb-469f-a165-70867728950e}",
            "urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950g",
            "",
        ] {
            assert_eq!(
                parse_uuid(bad, "id").map_err(|e| e.code().to_owned()),
                Err("invalid_id".to_owned()),
                "{bad}"
            );
        }
    }
}
