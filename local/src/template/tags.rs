//! CloudFormation's short-form tags, resolved as far as the local stack
//! can: a `!Ref` of a table is its local name, a `!Ref` of a parameter its
//! value (given with `with_parameters`, else its default), `!Sub` of
//! parameters, `!If` on the template's `Conditions` (`!Equals`, `!Not`,
//! `!And`, `!Or`, `!Condition`), `AWS::NoValue` as no value; the target of a
//! `!Ref` or `!GetAtt` is read where the stack needs only the name (`ApiId`,
//! `Stream`).

use super::{shape, SamTemplate, TableSet, TemplateError};
use yaml_serde::Value;

impl SamTemplate {
    /// A value as the text a function's environment gets.
    pub(super) fn resolve(
        &self,
        value: &Value,
        tables: &TableSet,
    ) -> Result<String, TemplateError> {
        self.resolve_optional(value, tables)?
            .ok_or_else(|| shape(format!("{value:?} has no value here")))
    }

    /// A value as text, or none where it is `AWS::NoValue` (an `!If` whose
    /// branch drops the property or the list item).
    pub fn resolve_optional(
        &self,
        value: &Value,
        tables: &TableSet,
    ) -> Result<Option<String>, TemplateError> {
        match value {
            Value::String(text) => Ok(Some(text.clone())),
            Value::Number(number) => Ok(Some(number.to_string())),
            Value::Bool(flag) => Ok(Some(flag.to_string())),
            Value::Tagged(tagged) if tagged.tag == "!Ref" => {
                let target = tagged
                    .value
                    .as_str()
                    .ok_or_else(|| shape("!Ref of a non-name"))?;
                if target == "AWS::NoValue" {
                    return Ok(None);
                }
                if let Some(name) = tables.names.get(target) {
                    return Ok(Some(name.clone()));
                }
                self.parameter(target)
                    .map(Some)
                    .ok_or_else(|| shape(format!("cannot resolve !Ref {target} locally")))
            }
            Value::Tagged(tagged) if tagged.tag == "!If" => {
                self.resolve_optional(self.if_branch(&tagged.value)?, tables)
            }
            Value::Tagged(tagged) if tagged.tag == "!Sub" => {
                let text = tagged
                    .value
                    .as_str()
                    .ok_or_else(|| shape("only the one-argument !Sub resolves locally"))?;
                self.substitute(text, tables).map(Some)
            }
            other => Err(shape(format!("cannot resolve {other:?} locally"))),
        }
    }

    /// The branch an `!If [condition, then, else]` takes.
    pub(super) fn if_branch<'v>(&self, arguments: &'v Value) -> Result<&'v Value, TemplateError> {
        let branches = arguments
            .as_sequence()
            .filter(|items| items.len() == 3)
            .ok_or_else(|| shape("!If takes [condition, then, else]"))?;
        let condition = branches[0]
            .as_str()
            .ok_or_else(|| shape("!If of a non-name"))?;
        Ok(if self.condition(condition)? {
            &branches[1]
        } else {
            &branches[2]
        })
    }

    /// A parameter's value: given, else its default.
    pub fn parameter(&self, name: &str) -> Option<String> {
        if let Some(value) = self.overrides.get(name) {
            return Some(value.clone());
        }
        self.root
            .get("Parameters")
            .and_then(|parameters| parameters.get(name))
            .and_then(|parameter| parameter.get("Default"))
            .and_then(|default| match default {
                Value::String(text) => Some(text.clone()),
                Value::Number(number) => Some(number.to_string()),
                Value::Bool(flag) => Some(flag.to_string()),
                _ => None,
            })
    }

    /// Whether a condition of the template's `Conditions` holds.
    pub fn condition(&self, name: &str) -> Result<bool, TemplateError> {
        let definition = self
            .root
            .get("Conditions")
            .and_then(|conditions| conditions.get(name))
            .ok_or_else(|| shape(format!("no condition {name}")))?;
        self.evaluate(definition)
    }

    fn evaluate(&self, expression: &Value) -> Result<bool, TemplateError> {
        let Value::Tagged(tagged) = expression else {
            return Err(shape(format!("cannot evaluate {expression:?}")));
        };
        let operands = || {
            tagged
                .value
                .as_sequence()
                .ok_or_else(|| shape(format!("{} takes a list", tagged.tag)))
        };
        match tagged.tag.to_string().as_str() {
            "!Equals" => {
                let items = operands()?;
                let [left, right] = &items[..] else {
                    return Err(shape("!Equals takes two values"));
                };
                let none = TableSet::default();
                Ok(self.resolve_optional(left, &none)? == self.resolve_optional(right, &none)?)
            }
            "!Not" => {
                let items = operands()?;
                let [inner] = &items[..] else {
                    return Err(shape("!Not takes one condition"));
                };
                Ok(!self.evaluate(inner)?)
            }
            "!And" => operands()?
                .iter()
                .try_fold(true, |all, item| Ok(all && self.evaluate(item)?)),
            "!Or" => operands()?
                .iter()
                .try_fold(false, |any, item| Ok(any || self.evaluate(item)?)),
            "!Condition" => self.condition(
                tagged
                    .value
                    .as_str()
                    .ok_or_else(|| shape("!Condition of a non-name"))?,
            ),
            other => Err(shape(format!("cannot evaluate {other} locally"))),
        }
    }

    /// `${Name}` of parameters and tables in `text`.
    fn substitute(&self, text: &str, tables: &TableSet) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| shape(format!("unclosed ${{ in {text:?}")))?;
            let name = &after[..end];
            let value = tables
                .names
                .get(name)
                .cloned()
                .or_else(|| self.parameter(name))
                .ok_or_else(|| shape(format!("cannot resolve ${{{name}}} locally")))?;
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// A number, or a `!Ref` of a parameter with a numeric default.
    pub(super) fn number(&self, value: &Value) -> Result<u64, TemplateError> {
        let text = self.resolve(value, &TableSet::default())?;
        text.trim()
            .parse()
            .map_err(|_| shape(format!("{text:?} is not a whole number")))
    }
}

/// The text a short-form tag is applied to (`!Ref Table`, `!GetAtt
/// Table.StreamArn`, `!Sub "arn:...${Table}"`) when `value` carries `tag`.
pub fn tagged<'a>(value: &'a Value, tag: &str) -> Option<&'a str> {
    match value {
        Value::Tagged(tagged) if tagged.tag == tag => tagged.value.as_str(),
        _ => None,
    }
}
