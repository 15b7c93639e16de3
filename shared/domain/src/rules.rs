//! Rule merging: config offer defaults, overridden by the template's required rules.

use crate::catalog::{ConfigOffer, OfferTemplate, RuleType};
use crate::dates::{format_timestamp, parse_timestamp};
use crate::limits::{quote, quote_names, storable_number};
use crate::rejection::{ReasonCode, Rejection};
use serde_json::Value;
use std::collections::BTreeMap;

/// Rule values by rule name.
pub type Rules = BTreeMap<String, Value>;

/// Merges the rules of an assignment.
///
/// Every rule the template declares must be given, with a value of the
/// declared type, and overrides the config offer's value; a rule the template
/// does not declare may not be set. Timestamps are normalised to RFC 3339 UTC.
pub fn merge_rules(
    config: &ConfigOffer,
    template: &OfferTemplate,
    assigned: &Rules,
) -> Result<Rules, Rejection> {
    let missing: Vec<&str> = template
        .rules
        .iter()
        .filter(|declared| !assigned.contains_key(&declared.name))
        .map(|declared| declared.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(Rejection::new(
            ReasonCode::MissingRule,
            format!(
                "template {} requires rules not given: {}",
                quote(&template.id),
                quote_names(missing)
            ),
        ));
    }

    let unknown: Vec<&str> = assigned
        .keys()
        .filter(|name| {
            !template
                .rules
                .iter()
                .any(|declared| &declared.name == *name)
        })
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(Rejection::new(
            ReasonCode::UnknownRule,
            format!(
                "template {} does not declare rules: {}",
                quote(&template.id),
                quote_names(unknown)
            ),
        ));
    }

    let mut merged = config.rules.clone();
    for declared in &template.rules {
        let given = &assigned[&declared.name];
        let value = coerce_rule_value(declared.rule_type, given).ok_or_else(|| {
            Rejection::new(
                ReasonCode::InvalidRuleValue,
                format!(
                    "rule {} must be a {}, got {}",
                    quote(&declared.name),
                    declared.rule_type,
                    describe(given)
                ),
            )
        })?;
        merged.insert(declared.name.clone(), value);
    }
    Ok(merged)
}

/// The value in its canonical form when it has the declared type, else `None`.
pub fn coerce_rule_value(rule_type: RuleType, value: &Value) -> Option<Value> {
    match (rule_type, value) {
        (RuleType::Number, Value::Number(number)) if storable_number(number) => Some(value.clone()),
        (RuleType::Integer, Value::Number(number)) => {
            if number.is_i64() || number.is_u64() {
                Some(value.clone())
            } else {
                let float = number.as_f64()?;
                let integral = float.fract() == 0.0 && float.abs() < 9.0e15;
                // Exact for |x| < 2^53, so the cast loses nothing.
                integral.then(|| Value::from(float as i64))
            }
        }
        (RuleType::Boolean, Value::Bool(_)) => Some(value.clone()),
        (RuleType::String, Value::String(_)) => Some(value.clone()),
        (RuleType::StringList, Value::Array(items)) if items.iter().all(Value::is_string) => {
            Some(value.clone())
        }
        (RuleType::Timestamp, Value::String(text)) => {
            parse_timestamp(text).map(|at| Value::from(format_timestamp(at)))
        }
        _ => None,
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(number) if !storable_number(number) => {
            "a number outside what DynamoDB can store"
        }
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::RuleDeclaration;
    use serde_json::json;

    fn config() -> ConfigOffer {
        ConfigOffer {
            id: "co-1".into(),
            name: "Free fries".into(),
            description: None,
            image_url: None,
            template_id: Some("tpl-1".into()),
            rules: BTreeMap::from([
                ("minimumSpend".into(), json!(5)),
                ("serviceModes".into(), json!(["pickup"])),
                ("redemptionLimit".into(), json!(1)),
            ]),
        }
    }

    fn template(rules: &[(&str, RuleType)]) -> OfferTemplate {
        OfferTemplate {
            id: "tpl-1".into(),
            config_offer_id: "co-1".into(),
            name: None,
            rules: rules
                .iter()
                .map(|(name, rule_type)| RuleDeclaration {
                    name: (*name).into(),
                    rule_type: *rule_type,
                })
                .collect(),
        }
    }

    fn rules(value: Value) -> Rules {
        serde_json::from_value(value).expect("test rules are a map")
    }

    #[test]
    fn template_rules_override_config_rules_and_others_are_kept() {
        let template = template(&[
            ("minimumSpend", RuleType::Number),
            ("serviceModes", RuleType::StringList),
        ]);
        let merged = merge_rules(
            &config(),
            &template,
            &rules(json!({"minimumSpend": 10.5, "serviceModes": ["delivery", "pickup"]})),
        )
        .expect("valid");
        assert_eq!(merged["minimumSpend"], json!(10.5));
        assert_eq!(merged["serviceModes"], json!(["delivery", "pickup"]));
        assert_eq!(
            merged["redemptionLimit"],
            json!(1),
            "config value kept when not templated"
        );
    }

    #[test]
    fn template_without_rules_keeps_config_rules() {
        let merged = merge_rules(&config(), &template(&[]), &Rules::new()).expect("valid");
        assert_eq!(merged, config().rules);
    }

    #[test]
    fn declared_rule_must_be_given() {
        let err = merge_rules(
            &config(),
            &template(&[("minimumSpend", RuleType::Number)]),
            &Rules::new(),
        )
        .unwrap_err();
        assert_eq!(err.code, ReasonCode::MissingRule);
        assert!(err.message.contains("minimumSpend"));
    }

    #[test]
    fn undeclared_rule_may_not_be_set() {
        let err = merge_rules(
            &config(),
            &template(&[]),
            &rules(json!({"redemptionLimit": 3})),
        )
        .unwrap_err();
        assert_eq!(err.code, ReasonCode::UnknownRule);
        assert!(err.message.contains("redemptionLimit"));
    }

    #[test]
    fn values_must_have_the_declared_type() {
        let cases = [
            (RuleType::Number, json!("5")),
            (RuleType::Integer, json!(2.5)),
            (RuleType::Boolean, json!("true")),
            (RuleType::String, json!(3)),
            (RuleType::StringList, json!(["a", 1])),
            (RuleType::StringList, json!("a")),
            (RuleType::Timestamp, json!("next week")),
            (RuleType::Number, Value::Null),
        ];
        for (rule_type, value) in cases {
            let err = merge_rules(
                &config(),
                &template(&[("r", rule_type)]),
                &rules(json!({ "r": value.clone() })),
            )
            .expect_err("wrong type");
            assert_eq!(
                err.code,
                ReasonCode::InvalidRuleValue,
                "{rule_type} with {value}"
            );
        }
    }

    #[test]
    fn values_are_canonicalised() {
        assert_eq!(
            coerce_rule_value(RuleType::Integer, &json!(3.0)),
            Some(json!(3))
        );
        assert_eq!(
            coerce_rule_value(RuleType::Timestamp, &json!("2024-01-01T10:00:00+0100")),
            Some(json!("2024-01-01T09:00:00Z"))
        );
        assert_eq!(
            coerce_rule_value(RuleType::Boolean, &json!(true)),
            Some(json!(true))
        );
    }
}
