//! CloudFormation's short-form tags, resolved as far as the local stack
//! can: a `!Ref` of a table is its local name, a `!Ref` of a parameter its
//! default; the target of a `!Ref` or `!GetAtt` is read where the stack
//! needs only the name (`ApiId`, `Stream`).

use super::{shape, SamTemplate, TableSet, TemplateError};
use yaml_serde::Value;

impl SamTemplate {
    /// A value as the text a function's environment gets.
    pub(super) fn resolve(
        &self,
        value: &Value,
        tables: &TableSet,
    ) -> Result<String, TemplateError> {
        match value {
            Value::String(text) => Ok(text.clone()),
            Value::Number(number) => Ok(number.to_string()),
            Value::Bool(flag) => Ok(flag.to_string()),
            Value::Tagged(tagged) if tagged.tag == "!Ref" => {
                let target = tagged
                    .value
                    .as_str()
                    .ok_or_else(|| shape("!Ref of a non-name"))?;
                if let Some(name) = tables.names.get(target) {
                    return Ok(name.clone());
                }
                self.root
                    .get("Parameters")
                    .and_then(|parameters| parameters.get(target))
                    .and_then(|parameter| parameter.get("Default"))
                    .map(|default| self.resolve(default, tables))
                    .unwrap_or_else(|| Err(shape(format!("cannot resolve !Ref {target} locally"))))
            }
            other => Err(shape(format!("cannot resolve {other:?} locally"))),
        }
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
