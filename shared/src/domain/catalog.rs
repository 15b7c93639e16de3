//! The CMS side: config offers and offer templates, as stored in the catalog table.

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// The value types a template may declare for a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RuleType {
    Number,
    Integer,
    Boolean,
    String,
    StringList,
    Timestamp,
}

impl fmt::Display for RuleType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuleType::Number => "number",
            RuleType::Integer => "integer",
            RuleType::Boolean => "boolean",
            RuleType::String => "string",
            RuleType::StringList => "stringList",
            RuleType::Timestamp => "timestamp",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RuleDeclaration {
    pub name: String,
    #[serde(rename = "type")]
    pub rule_type: RuleType,
}

/// What the offer is, with its default rule values.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigOffer {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub image_url: Option<String>,
    #[serde(default)]
    pub template_id: Option<String>,
    #[serde(default)]
    pub rules: BTreeMap<String, Value>,
}

/// The rules that must be set at assignment, linked to one config offer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferTemplate {
    pub id: String,
    pub config_offer_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub rules: Vec<RuleDeclaration>,
}

/// One catalog item, classified by its `kind`.
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogEntry {
    ConfigOffer(ConfigOffer),
    OfferTemplate(OfferTemplate),
    /// Present but unusable (unknown kind, missing fields, unknown rule type):
    /// assignments that need it are rejected with the problem in the message.
    Malformed {
        id: String,
        problem: String,
    },
}

impl CatalogEntry {
    /// Classifies a catalog item given as plain JSON.
    pub fn from_json(id: &str, item: Map<String, Value>) -> CatalogEntry {
        let kind = item
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let malformed = |problem: String| CatalogEntry::Malformed {
            id: id.to_owned(),
            problem,
        };
        match kind.as_str() {
            "configOffer" => match serde_json::from_value(Value::Object(item)) {
                Ok(offer) => CatalogEntry::ConfigOffer(offer),
                Err(err) => malformed(format!("config offer is malformed: {err}")),
            },
            "offerTemplate" => match serde_json::from_value::<OfferTemplate>(Value::Object(item)) {
                Ok(template) => match duplicate_rule_name(&template) {
                    Some(name) => malformed(format!("offer template declares rule {name} twice")),
                    None => CatalogEntry::OfferTemplate(template),
                },
                Err(err) => malformed(format!("offer template is malformed: {err}")),
            },
            "" => malformed("catalog item has no kind".to_owned()),
            other => malformed(format!("catalog item has unknown kind {other}")),
        }
    }

    pub fn id(&self) -> &str {
        match self {
            CatalogEntry::ConfigOffer(offer) => &offer.id,
            CatalogEntry::OfferTemplate(template) => &template.id,
            CatalogEntry::Malformed { id, .. } => id,
        }
    }
}

fn duplicate_rule_name(template: &OfferTemplate) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    template
        .rules
        .iter()
        .map(|rule| rule.name.as_str())
        .find(|name| !seen.insert(*name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn classifies_config_offers_and_templates() {
        let offer = CatalogEntry::from_json(
            "co-1",
            object(
                json!({"id": "co-1", "kind": "configOffer", "name": "Free fries", "rules": {"minimumSpend": 5}}),
            ),
        );
        assert!(
            matches!(offer, CatalogEntry::ConfigOffer(ref o) if o.rules["minimumSpend"] == json!(5))
        );

        let template = CatalogEntry::from_json(
            "tpl-1",
            object(
                json!({"id": "tpl-1", "kind": "offerTemplate", "configOfferId": "co-1",
                          "rules": [{"name": "minimumSpend", "type": "number"}]}),
            ),
        );
        assert!(
            matches!(template, CatalogEntry::OfferTemplate(ref t) if t.rules[0].rule_type == RuleType::Number)
        );
    }

    #[test]
    fn unknown_rule_types_and_kinds_are_malformed() {
        let bad_type = CatalogEntry::from_json(
            "tpl-1",
            object(
                json!({"id": "tpl-1", "kind": "offerTemplate", "configOfferId": "co-1",
                          "rules": [{"name": "x", "type": "colour"}]}),
            ),
        );
        assert!(matches!(bad_type, CatalogEntry::Malformed { .. }));
        let bad_kind = CatalogEntry::from_json("x", object(json!({"id": "x", "kind": "banner"})));
        assert!(
            matches!(bad_kind, CatalogEntry::Malformed { ref problem, .. } if problem.contains("banner"))
        );
    }
}
