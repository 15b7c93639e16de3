//! Checks of a catalog file before any write: every item a known kind with
//! known rule types (the domain's own classification), ids unique, and
//! every link between config offers and templates resolvable in the file or
//! the catalog table.

use crate::input::{CatalogInput, Position};
use offers_shared::domain::limits::{item_problem, key_problem, MAX_ID_BYTES};
use offers_shared::domain::CatalogEntry;
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::fmt;

/// An item of the file that passed the checks of its own.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub position: Position,
    pub entry: CatalogEntry,
    /// The item as given, to be written.
    pub item: Map<String, Value>,
}

impl Accepted {
    pub fn id(&self) -> &str {
        self.entry.id()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogProblem {
    pub position: Position,
    pub id: Option<String>,
    pub message: String,
}

impl fmt::Display for CatalogProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{} ({id}): {}", self.position, self.message),
            None => write!(f, "{}: {}", self.position, self.message),
        }
    }
}

/// Each item on its own: JSON object, `id`, kind, fields, rule types; and ids unique.
pub fn check_items(inputs: Vec<CatalogInput>) -> (Vec<Accepted>, Vec<CatalogProblem>) {
    let mut accepted: Vec<Accepted> = Vec::new();
    let mut problems = Vec::new();
    let mut first_position: HashMap<String, Position> = HashMap::new();
    for input in inputs {
        let position = input.position;
        let problem = |id: Option<&str>, message: String| CatalogProblem {
            position,
            id: id.map(str::to_owned),
            message,
        };
        let item = match input.value {
            Ok(Value::Object(item)) => item,
            Ok(_) => {
                problems.push(problem(None, "an item must be a JSON object".to_owned()));
                continue;
            }
            Err(message) => {
                problems.push(problem(None, message));
                continue;
            }
        };
        let id = match item.get("id") {
            Some(Value::String(id)) if !id.trim().is_empty() => id.clone(),
            _ => {
                problems.push(problem(None, "id must be a non-empty string".to_owned()));
                continue;
            }
        };
        // Checked before any write: DynamoDB would refuse the whole batch.
        if let Some(message) = key_problem("id", &id, MAX_ID_BYTES) {
            problems.push(problem(None, message));
            continue;
        }
        if let Some(message) = item_problem(&item) {
            problems.push(problem(Some(&id), message));
            continue;
        }
        if let Some(first) = first_position.get(&id) {
            problems.push(problem(Some(&id), format!("the same id as {first}")));
            continue;
        }
        first_position.insert(id.clone(), position);
        match CatalogEntry::from_json(&id, item.clone()) {
            CatalogEntry::Malformed {
                problem: message, ..
            } => {
                problems.push(problem(Some(&id), message));
            }
            entry => accepted.push(Accepted {
                position,
                entry,
                item,
            }),
        }
    }
    (accepted, problems)
}

/// Ids the accepted items link to that the file does not define: they must
/// be read from the catalog table.
pub fn linked_ids_not_in_file(accepted: &[Accepted]) -> Vec<String> {
    let in_file: BTreeSet<&str> = accepted.iter().map(Accepted::id).collect();
    let linked: BTreeSet<&str> = accepted
        .iter()
        .filter_map(|accepted| match &accepted.entry {
            CatalogEntry::ConfigOffer(offer) => offer.template_id.as_deref(),
            CatalogEntry::OfferTemplate(template) => Some(template.config_offer_id.as_str()),
            CatalogEntry::Malformed { .. } => None,
        })
        .collect();
    linked
        .difference(&in_file)
        .map(|id| (*id).to_owned())
        .collect()
}

/// Every template's `configOfferId` is a config offer, and every config
/// offer's `templateId` a template linked back to it: in the file (which
/// wins) or in `stored`, the catalog table's entries.
pub fn check_links(
    accepted: &[Accepted],
    stored: &HashMap<String, CatalogEntry>,
) -> Vec<CatalogProblem> {
    let in_file: HashMap<&str, &CatalogEntry> = accepted
        .iter()
        .map(|accepted| (accepted.id(), &accepted.entry))
        .collect();
    let find = |id: &str| in_file.get(id).copied().or_else(|| stored.get(id));
    let mut problems = Vec::new();
    for accepted in accepted {
        let message = match &accepted.entry {
            CatalogEntry::OfferTemplate(template) => {
                let id = &template.config_offer_id;
                match find(id) {
                    Some(CatalogEntry::ConfigOffer(_)) => None,
                    Some(CatalogEntry::OfferTemplate(_)) => Some(format!(
                        "configOfferId {id} is an offer template, not a config offer"
                    )),
                    Some(CatalogEntry::Malformed { problem, .. }) => Some(format!(
                        "configOfferId {id} is malformed in the catalog table: {problem}"
                    )),
                    None => Some(format!(
                        "configOfferId {id} is not a config offer in the file or the catalog table"
                    )),
                }
            }
            CatalogEntry::ConfigOffer(offer) => match offer.template_id.as_deref() {
                None => None,
                Some(id) => match find(id) {
                    Some(CatalogEntry::OfferTemplate(template))
                        if template.config_offer_id == offer.id =>
                    {
                        None
                    }
                    Some(CatalogEntry::OfferTemplate(template)) => Some(format!(
                        "templateId {id} is linked to config offer {}, not to this one",
                        template.config_offer_id
                    )),
                    Some(CatalogEntry::ConfigOffer(_)) => Some(format!(
                        "templateId {id} is a config offer, not an offer template"
                    )),
                    Some(CatalogEntry::Malformed { problem, .. }) => Some(format!(
                        "templateId {id} is malformed in the catalog table: {problem}"
                    )),
                    None => Some(format!(
                        "templateId {id} is not an offer template in the file or the catalog table"
                    )),
                },
            },
            CatalogEntry::Malformed { .. } => None,
        };
        if let Some(message) = message {
            problems.push(CatalogProblem {
                position: accepted.position,
                id: Some(accepted.id().to_owned()),
                message,
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::parse_catalog_text;
    use serde_json::json;

    fn sample() -> Value {
        json!([
            {"id": "co-fries", "kind": "configOffer", "name": "Free fries", "templateId": "tpl-fries",
             "rules": {"minimumSpend": 5}},
            {"id": "tpl-fries", "kind": "offerTemplate", "configOfferId": "co-fries",
             "rules": [{"name": "minimumSpend", "type": "number"}]}
        ])
    }

    fn checked(value: Value) -> (Vec<Accepted>, Vec<CatalogProblem>) {
        check_items(parse_catalog_text(&value.to_string()).expect("array"))
    }

    #[test]
    fn a_consistent_catalog_passes_with_nothing_to_read() {
        let (accepted, problems) = checked(sample());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(accepted.len(), 2);
        assert!(linked_ids_not_in_file(&accepted).is_empty());
        assert!(check_links(&accepted, &HashMap::new()).is_empty());
    }

    #[test]
    fn kinds_rule_types_ids_and_shapes_are_checked_item_by_item() {
        let (accepted, problems) = checked(json!([
            {"id": "x", "kind": "banner"},
            {"id": "tpl-1", "kind": "offerTemplate", "configOfferId": "co-1",
             "rules": [{"name": "colour", "type": "paint"}]},
            {"kind": "configOffer", "name": "no id"},
            "just text",
            {"id": "co-1", "kind": "configOffer", "name": "One"},
            {"id": "co-1", "kind": "configOffer", "name": "One again"}
        ]));
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert!(lines[0].starts_with("item 1 (x): catalog item has unknown kind \"banner\""));
        assert!(lines[1].starts_with("item 2 (tpl-1): offer template is malformed"));
        assert_eq!(lines[2], "item 3: id must be a non-empty string");
        assert_eq!(lines[3], "item 4: an item must be a JSON object");
        assert_eq!(lines[4], "item 6 (co-1): the same id as item 5");
        assert_eq!(accepted.len(), 1);
    }

    #[test]
    fn items_dynamodb_would_refuse_are_problems_before_any_write() {
        let (accepted, problems) = checked(json!([
            {"id": "i".repeat(1_025), "kind": "configOffer", "name": "Long id"},
            {"id": "co-big", "kind": "configOffer", "name": "Big", "rules": {"x": 1e300}},
            {"id": "co-deep", "kind": "configOffer", "name": "Deep", "description": "d".repeat(410_000)},
            {"id": "co-ok", "kind": "configOffer", "name": "Fine"}
        ]));
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].contains("id is 1025 bytes"), "{}", lines[0]);
        assert!(lines[0].len() < 200, "the id is quoted, not repeated");
        assert!(lines[1].contains("1e+300"), "{}", lines[1]);
        assert!(lines[2].contains("DynamoDB stores at most"), "{}", lines[2]);
        assert_eq!(accepted.len(), 1);
    }

    #[test]
    fn links_resolve_in_the_file_first_then_the_table() {
        let (accepted, problems) = checked(json!([
            {"id": "tpl-new", "kind": "offerTemplate", "configOfferId": "co-stored", "rules": []},
            {"id": "tpl-orphan", "kind": "offerTemplate", "configOfferId": "co-missing", "rules": []},
            {"id": "co-new", "kind": "configOffer", "name": "New", "templateId": "tpl-stored"},
            {"id": "co-wrong", "kind": "configOffer", "name": "Wrong", "templateId": "tpl-new"}
        ]));
        assert!(problems.is_empty());
        assert_eq!(
            linked_ids_not_in_file(&accepted),
            vec!["co-missing", "co-stored", "tpl-stored"]
        );
        let stored = HashMap::from([
            (
                "co-stored".to_owned(),
                CatalogEntry::from_json(
                    "co-stored",
                    json!({"id": "co-stored", "kind": "configOffer", "name": "Stored"})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                ),
            ),
            (
                "tpl-stored".to_owned(),
                CatalogEntry::from_json(
                    "tpl-stored",
                    json!({"id": "tpl-stored", "kind": "offerTemplate", "configOfferId": "co-new"})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                ),
            ),
        ]);
        let lines: Vec<String> = check_links(&accepted, &stored)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            vec![
                "item 2 (tpl-orphan): configOfferId co-missing is not a config offer in the file or the catalog table",
                "item 4 (co-wrong): templateId tpl-new is linked to config offer co-stored, not to this one",
            ]
        );
    }
}
