//! Who is calling: only what API Gateway's authorizer put in the request
//! context counts. A user id in the path, query, headers or body is ignored.

use super::error::ApiError;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use offers_domain::UserId;
use std::collections::HashMap;

/// Longer ids are not ids an authorizer issues (and DynamoDB keys are bounded).
const MAX_USER_ID_BYTES: usize = 1024;

/// Where the caller's user id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentitySource {
    /// `requestContext.authorizer.iam.cognitoIdentity.identityId` (IAM auth
    /// with Cognito identity pool credentials).
    CognitoIdentity,
    /// The JWT authorizer's `sub` claim.
    JwtSubject,
}

/// The JWT authorizer's claims, as API Gateway passes them: every value is
/// text (a list claim such as `cognito:groups` arrives as `[a b]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims(HashMap<String, String>);

impl Claims {
    pub fn new(claims: HashMap<String, String>) -> Self {
        Claims(claims)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The `cognito:groups` claim as a list of group names.
    pub fn groups(&self) -> Vec<String> {
        self.get("cognito:groups")
            .map(parse_list)
            .unwrap_or_default()
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups().iter().any(|name| name == group)
    }
}

/// Reads a list claim in any of the shapes it is seen in: `[a b]` (API
/// Gateway's rendering of a JSON array), `["a","b"]`, `a,b` or `a`.
fn parse_list(text: &str) -> Vec<String> {
    let text = text.trim();
    if let Ok(list) = serde_json::from_str::<Vec<String>>(text) {
        return list;
    }
    let inner = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(text);
    inner
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|name| name.trim_matches('"'))
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    pub source: IdentitySource,
    /// The JWT claims, empty when the request was not authorized by JWT.
    pub claims: Claims,
}

/// The caller of `request`, or 401.
pub fn caller(request: &Request) -> Result<Caller, ApiError> {
    caller_from_context(request.request_context_ref()).ok_or(ApiError::Unauthorized)
}

/// The user id of the caller of `request`; 401 without one, or for an id
/// no key can hold (no caller of this system).
pub fn caller_id(request: &Request) -> Result<UserId, ApiError> {
    UserId::try_from(caller(request)?.user_id).map_err(|_| ApiError::Unauthorized)
}

/// The Cognito identity id when present, else the JWT `sub`; `None` when
/// neither is there (or the request did not come through API Gateway v2).
pub fn caller_from_context(context: Option<&RequestContext>) -> Option<Caller> {
    #[allow(unreachable_patterns)] // more variants exist with other lambda_http features
    let authorizer = match context? {
        RequestContext::ApiGatewayV2(context) => context.authorizer.as_ref()?,
        _ => return None,
    };
    let claims = authorizer
        .jwt
        .as_ref()
        .map(|jwt| Claims::new(jwt.claims.clone()))
        .unwrap_or_default();
    let identity_id = authorizer
        .iam
        .as_ref()
        .and_then(|iam| iam.cognito_identity.as_ref())
        .and_then(|cognito| cognito.identity_id.as_deref())
        .filter(|id| usable(id));
    if let Some(id) = identity_id {
        return Some(Caller {
            user_id: id.to_owned(),
            source: IdentitySource::CognitoIdentity,
            claims,
        });
    }
    let subject = claims.get("sub").filter(|id| usable(id))?.to_owned();
    Some(Caller {
        user_id: subject,
        source: IdentitySource::JwtSubject,
        claims,
    })
}

fn usable(id: &str) -> bool {
    !id.trim().is_empty() && id.len() <= MAX_USER_ID_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn request(authorizer: Value) -> Request {
        let mut event = json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/rewards/offers",
            "rawQueryString": "userId=someone-else",
            "headers": {"x-user-id": "someone-else"},
            "requestContext": {
                "http": {"method": "GET", "path": "/rewards/offers"},
                "stage": "$default"
            },
            "isBase64Encoded": false
        });
        if !authorizer.is_null() {
            event["requestContext"]["authorizer"] = authorizer;
        }
        lambda_http::request::from_str(&event.to_string()).expect("API Gateway v2 event")
    }

    fn iam(identity_id: &str) -> Value {
        json!({"cognitoIdentity": {"amr": ["authenticated"], "identityId": identity_id,
                                    "identityPoolId": "us-east-1:pool"}})
    }

    #[test]
    fn jwt_sub_is_the_caller() {
        let caller = caller(&request(
            json!({"jwt": {"claims": {"sub": "sub-1", "cognito:groups": "[support admins]"}, "scopes": null}}),
        ))
        .expect("caller");
        assert_eq!(caller.user_id, "sub-1");
        assert_eq!(caller.source, IdentitySource::JwtSubject);
        assert_eq!(caller.claims.groups(), vec!["support", "admins"]);
        assert!(caller.claims.in_group("support"));
    }

    #[test]
    fn cognito_identity_wins_over_jwt_sub() {
        let mut authorizer = json!({"jwt": {"claims": {"sub": "sub-1"}}});
        authorizer["iam"] = iam("us-east-1:identity-1");
        let caller = caller(&request(authorizer)).expect("caller");
        assert_eq!(caller.user_id, "us-east-1:identity-1");
        assert_eq!(caller.source, IdentitySource::CognitoIdentity);
        assert_eq!(caller.claims.get("sub"), Some("sub-1"));
    }

    #[test]
    fn an_empty_identity_id_falls_back_to_sub() {
        let mut authorizer = json!({"jwt": {"claims": {"sub": "sub-1"}}});
        authorizer["iam"] = iam(" ");
        assert_eq!(
            caller(&request(authorizer)).expect("caller").user_id,
            "sub-1"
        );
    }

    #[test]
    fn no_authorizer_or_no_id_is_401_whatever_else_the_request_says() {
        for authorizer in [
            Value::Null,
            json!({}),
            json!({"jwt": {"claims": {"email": "a@example.com"}}}),
            json!({"jwt": {"claims": {"sub": ""}}}),
            json!({"iam": {"accessKey": "AKIAEXAMPLE", "userId": "AIDAEXAMPLE"}}),
        ] {
            assert_eq!(
                caller(&request(authorizer.clone())),
                Err(ApiError::Unauthorized),
                "{authorizer}"
            );
        }
    }

    #[test]
    fn group_lists_in_every_shape() {
        assert_eq!(parse_list("[a b]"), vec!["a", "b"]);
        assert_eq!(parse_list(r#"["a","b"]"#), vec!["a", "b"]);
        assert_eq!(parse_list("a, b"), vec!["a", "b"]);
        assert_eq!(parse_list("support"), vec!["support"]);
        assert!(parse_list("[]").is_empty());
        assert!(Claims::default().groups().is_empty());
    }
}
