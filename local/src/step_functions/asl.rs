//! A state machine's definition from template.yaml: `Definition` (YAML) as
//! the JSON Step Functions gets, each `${Name}` of `DefinitionSubstitutions`
//! replaced by its local value: a table's local name, a parameter's value,
//! a function's or the plan bucket's local name.

use crate::template::{tagged, SamTemplate, TableSet, TemplateError};
use offers_shared::local_conventions::{local_function_arn, LOCAL_PLAN_BUCKET};
use serde_json::Value;
use std::collections::BTreeMap;

/// A state machine's definition, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct StateMachineDefinition {
    pub logical_id: String,
    pub definition: Value,
}

fn shape(message: impl Into<String>) -> TemplateError {
    TemplateError::Shape(message.into())
}

impl SamTemplate {
    /// The logical ids of the `AWS::Serverless::StateMachine`s.
    pub fn state_machine_ids(&self) -> Result<Vec<String>, TemplateError> {
        self.logical_ids_of_type("AWS::Serverless::StateMachine")
    }

    /// A state machine's definition with its substitutions made.
    pub fn state_machine_definition(
        &self,
        logical_id: &str,
        tables: &TableSet,
    ) -> Result<StateMachineDefinition, TemplateError> {
        let properties = self.properties(logical_id)?;
        let definition = properties
            .get("Definition")
            .ok_or_else(|| shape(format!("{logical_id} has no inline Definition")))?;
        let mut substitutions = BTreeMap::new();
        if let Some(mapping) = properties
            .get("DefinitionSubstitutions")
            .and_then(yaml_serde::Value::as_mapping)
        {
            for (name, value) in mapping {
                let name = name
                    .as_str()
                    .ok_or_else(|| shape("a substitution's name is not text"))?;
                substitutions.insert(name.to_owned(), self.substitution(value, tables)?);
            }
        }
        let mut definition: Value = serde_json::to_value(definition)
            .map_err(|err| shape(format!("{logical_id}'s Definition: {err}")))?;
        substitute(&mut definition, &substitutions)?;
        Ok(StateMachineDefinition {
            logical_id: logical_id.to_owned(),
            definition,
        })
    }

    /// A substitution's local value: `!GetAtt Function.Arn` is the
    /// function's local ARN, `!Ref` of a bucket the local plan bucket, any
    /// other value as a function's environment resolves it.
    fn substitution(
        &self,
        value: &yaml_serde::Value,
        tables: &TableSet,
    ) -> Result<String, TemplateError> {
        if let Some(target) = tagged(value, "!GetAtt") {
            let function = target
                .strip_suffix(".Arn")
                .filter(|id| {
                    self.function_ids()
                        .is_ok_and(|ids| ids.iter().any(|f| f == id))
                })
                .ok_or_else(|| shape(format!("cannot resolve !GetAtt {target} locally")))?;
            return Ok(local_function_arn(function));
        }
        if let Some(target) = tagged(value, "!Ref") {
            let is_bucket = self
                .resource(target)
                .ok()
                .and_then(|resource| resource.get("Type"))
                .and_then(yaml_serde::Value::as_str)
                == Some("AWS::S3::Bucket");
            if is_bucket {
                return Ok(LOCAL_PLAN_BUCKET.to_owned());
            }
        }
        self.resolve_optional(value, tables)?
            .ok_or_else(|| shape(format!("{value:?} has no value here")))
    }
}

/// Replaces each `${Name}` in every string of `value`, as CloudFormation
/// does in the definition's text; an unknown name is an error.
fn substitute(value: &mut Value, names: &BTreeMap<String, String>) -> Result<(), TemplateError> {
    match value {
        Value::String(text) => {
            let mut out = String::with_capacity(text.len());
            let mut rest = text.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                let end = after
                    .find('}')
                    .ok_or_else(|| shape(format!("an unclosed ${{ in {text:?}")))?;
                let name = &after[..end];
                let replacement = names
                    .get(name)
                    .ok_or_else(|| shape(format!("no substitution for ${{{name}}}")))?;
                out.push_str(replacement);
                rest = &after[end + 1..];
            }
            out.push_str(rest);
            *text = out;
        }
        Value::Array(items) => {
            for item in items {
                substitute(item, names)?;
            }
        }
        Value::Object(map) => {
            for item in map.values_mut() {
                substitute(item, names)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutions_replace_names_in_every_string() {
        let names = BTreeMap::from([("A".to_owned(), "x".to_owned())]);
        let mut value = serde_json::json!({"k": ["${A}-${A}", {"n": "States.F('${A}')"}], "m": 3});
        substitute(&mut value, &names).expect("known");
        assert_eq!(
            value,
            serde_json::json!({"k": ["x-x", {"n": "States.F('x')"}], "m": 3})
        );
        assert!(substitute(&mut serde_json::json!("${B}"), &names).is_err());
    }
}
