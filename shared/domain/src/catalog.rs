//! The CMS side: config offers and offer templates, as stored in the catalog table.

use crate::limits::{key_problem, quote, MAX_ID_BYTES, MAX_NAME_BYTES};
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
            "configOffer" => match serde_json::from_value::<ConfigOffer>(Value::Object(item)) {
                Ok(offer) => match config_offer_problem(&offer) {
                    Some(problem) => malformed(format!("config offer is malformed: {problem}")),
                    None => CatalogEntry::ConfigOffer(offer),
                },
                Err(err) => malformed(format!("config offer is malformed: {err}")),
            },
            "offerTemplate" => match serde_json::from_value::<OfferTemplate>(Value::Object(item)) {
                Ok(template) => match template_problem(&template) {
                    Some(problem) => malformed(format!("offer template is malformed: {problem}")),
                    None => CatalogEntry::OfferTemplate(template),
                },
                Err(err) => malformed(format!("offer template is malformed: {err}")),
            },
            "" => malformed("catalog item has no kind".to_owned()),
            other => malformed(format!("catalog item has unknown kind {}", quote(other))),
        }
    }

    /// An item the store could not even read as JSON (a binary attribute, say).
    pub fn unreadable(id: &str, problem: impl std::fmt::Display) -> CatalogEntry {
        CatalogEntry::Malformed {
            id: id.to_owned(),
            problem: format!("catalog item cannot be read: {problem}"),
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

/// Ids the config offer names are keys of the catalog: an empty or oversized
/// one would make DynamoDB refuse the read of every row's catalog.
fn config_offer_problem(offer: &ConfigOffer) -> Option<String> {
    offer
        .template_id
        .as_deref()
        .and_then(|id| key_problem("templateId", id, MAX_ID_BYTES))
}

fn template_problem(template: &OfferTemplate) -> Option<String> {
    if let Some(problem) = key_problem("configOfferId", &template.config_offer_id, MAX_ID_BYTES) {
        return Some(problem);
    }
    let mut seen = std::collections::HashSet::new();
    template.rules.iter().find_map(|rule| {
        if let Some(problem) = key_problem("a rule name", &rule.name, MAX_NAME_BYTES) {
            Some(problem)
        } else if !seen.insert(rule.name.as_str()) {
            Some(format!("declares rule {} twice", quote(&rule.name)))
        } else {
            None
        }
    })
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
        let empty_template = CatalogEntry::from_json(
            "co-1",
            object(json!({"id": "co-1", "kind": "configOffer", "name": "x", "templateId": ""})),
        );
        assert!(
            matches!(empty_template, CatalogEntry::Malformed { ref problem, .. } if problem.contains("templateId is empty")),
            "{empty_template:?}"
        );
        let long_link = CatalogEntry::from_json(
            "tpl-1",
            object(
                json!({"id": "tpl-1", "kind": "offerTemplate", "configOfferId": "c".repeat(3_000)}),
            ),
        );
        assert!(matches!(long_link, CatalogEntry::Malformed { .. }));
        let bad_kind = CatalogEntry::from_json("x", object(json!({"id": "x", "kind": "banner"})));
        assert!(
            matches!(bad_kind, CatalogEntry::Malformed { ref problem, .. } if problem.contains("banner"))
        );
    }
}
