//! The routes of the template's `HttpApi` events, as the local gateway serves them.

use super::{shape, tagged, SamTemplate, TemplateError};
use yaml_serde::Value;

/// One route of an `HttpApi` event: method, path (with `{parameters}`), and
/// the function behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    pub api: String,
    pub method: String,
    pub path: String,
    pub function: String,
    /// Whether API Gateway authorizes the route (its API's default
    /// authorizer, not opted out of with `Auth.Authorizer: NONE`). The
    /// campaign webhook's API has none: its signature is checked by the function.
    pub authorized: bool,
}

impl SamTemplate {
    /// Every route of every `HttpApi` event.
    pub fn http_routes(&self) -> Result<Vec<HttpRoute>, TemplateError> {
        let mut routes = Vec::new();
        for function in self.function_ids()? {
            for (kind, event) in self.events(&function)? {
                if kind.as_str() != Some("HttpApi") {
                    continue;
                }
                let text = |name: &str| event.get(name).and_then(Value::as_str);
                let api = event
                    .get("ApiId")
                    .and_then(|id| tagged(id, "!Ref"))
                    .unwrap_or("ServerlessHttpApi");
                let default_authorizer = self
                    .properties(api)
                    .ok()
                    .and_then(|properties| properties.get("Auth"))
                    .and_then(|auth| auth.get("DefaultAuthorizer"))
                    .and_then(Value::as_str)
                    .is_some();
                let opted_out = event
                    .get("Auth")
                    .and_then(|auth| auth.get("Authorizer"))
                    .and_then(Value::as_str)
                    == Some("NONE");
                routes.push(HttpRoute {
                    api: api.to_owned(),
                    method: text("Method").unwrap_or("ANY").to_uppercase(),
                    path: text("Path")
                        .ok_or_else(|| shape(format!("{function}: an HttpApi event without Path")))?
                        .to_owned(),
                    function: function.clone(),
                    authorized: default_authorizer && !opted_out,
                });
            }
        }
        Ok(routes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_come_from_the_template() {
        let template = SamTemplate::project().expect("template.yaml");
        let routes = template.http_routes().expect("routes");
        assert!(routes.contains(&HttpRoute {
            api: "OffersHttpApi".into(),
            method: "GET".into(),
            path: "/rewards/offers/{personalizedOfferId}".into(),
            function: "OfferLookupFunction".into(),
            authorized: true,
        }));
        assert!(routes.contains(&HttpRoute {
            api: "CampaignWebhookHttpApi".into(),
            method: "POST".into(),
            path: "/campaigns/webhook".into(),
            function: "CampaignWebhookFunction".into(),
            authorized: false,
        }));
        assert!(
            routes
                .iter()
                .any(|route| route.method == "DELETE"
                    && route.function == "SupportAssignmentFunction")
        );
        assert!(routes.contains(&HttpRoute {
            api: "OffersHttpApi".into(),
            method: "DELETE".into(),
            path: "/rewards/offers/{personalizedOfferId}/redemptions/{orderId}".into(),
            function: "OfferActivityFunction".into(),
            authorized: true,
        }));
    }
}
