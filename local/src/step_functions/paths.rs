//! The JSONPath subset of Amazon States Language the stand-in runs: paths
//! of names (`$`, `$.a.b`, and `$$.` for the context object), payload
//! templates (`"name.$": path` fields of `Parameters`, `ItemSelector`,
//! `ResultSelector`, `BatchInput`), the intrinsic `States.StringToJson`,
//! and `ResultPath`. Anything else is an error that names it.

use serde_json::{Map, Value};

/// Why a path, template or `ResultPath` could not be applied: the cause of
/// the `States.Runtime` failure the state then ends in.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PathError {
    #[error("{0} is not a path")]
    NotAPath(String),
    #[error("{0}: the local stand-in follows names only")]
    Unsupported(String),
    #[error("the JSONPath {0} could not be found in the input")]
    NotFound(String),
    #[error("{0}: not a string")]
    NotAString(String),
    #[error("{expression}: not JSON text: {detail}")]
    NotJson { expression: String, detail: String },
    #[error("{0}: an intrinsic the local stand-in does not run")]
    UnknownIntrinsic(String),
    #[error("ResultPath {path}: not an object at {name}")]
    NotAnObject { path: String, name: String },
}

/// The value at `path` in `input` (`$...`) or in `context` (`$$...`).
pub fn select(path: &str, input: &Value, context: &Value) -> Result<Value, PathError> {
    let (root, rest) = if let Some(rest) = path.strip_prefix("$$") {
        (context, rest)
    } else if let Some(rest) = path.strip_prefix('$') {
        (input, rest)
    } else {
        return Err(PathError::NotAPath(format!("{path:?}")));
    };
    let mut value = root;
    for name in rest.split('.').skip(1) {
        if name.is_empty() || name.contains(['[', '*', '?', '@']) {
            return Err(PathError::Unsupported(format!("{path:?}")));
        }
        value = value
            .get(name)
            .ok_or_else(|| PathError::NotFound(format!("{path:?}")))?;
    }
    Ok(value.clone())
}

/// A payload template evaluated: each `"name.$"` field becomes `"name"`
/// with the value of its path or intrinsic function; other fields as given.
pub fn apply_template(
    template: &Value,
    input: &Value,
    context: &Value,
) -> Result<Value, PathError> {
    match template {
        Value::Object(fields) => {
            let mut out = Map::with_capacity(fields.len());
            for (name, value) in fields {
                match name.strip_suffix(".$") {
                    Some(name) => {
                        let expression = value
                            .as_str()
                            .ok_or_else(|| PathError::NotAPath(format!("{name}.$")))?;
                        out.insert(name.to_owned(), evaluate(expression, input, context)?);
                    }
                    None => {
                        out.insert(name.clone(), apply_template(value, input, context)?);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .map(|item| apply_template(item, input, context))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

fn evaluate(expression: &str, input: &Value, context: &Value) -> Result<Value, PathError> {
    if let Some(argument) = expression
        .strip_prefix("States.StringToJson(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        let text = match argument
            .strip_prefix('\'')
            .and_then(|a| a.strip_suffix('\''))
        {
            Some(literal) => literal.to_owned(),
            None => select(argument, input, context)?
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| PathError::NotAString(expression.to_owned()))?,
        };
        return serde_json::from_str(&text).map_err(|err| PathError::NotJson {
            expression: expression.to_owned(),
            detail: err.to_string(),
        });
    }
    if expression.starts_with("States.") {
        return Err(PathError::UnknownIntrinsic(expression.to_owned()));
    }
    select(expression, input, context)
}

/// `ResultPath`: where a state's result goes in its input (`$` replaces
/// it, `$.a.b` sets a field, `null` drops the result).
pub fn place_result(
    input: Value,
    result_path: Option<&Value>,
    result: Value,
) -> Result<Value, PathError> {
    let path = match result_path {
        None => return Ok(result),
        Some(Value::Null) => return Ok(input),
        Some(Value::String(path)) => path.as_str(),
        Some(other) => return Err(PathError::NotAPath(format!("ResultPath {other}"))),
    };
    if path == "$" {
        return Ok(result);
    }
    let names: Vec<&str> = path
        .strip_prefix("$.")
        .ok_or_else(|| PathError::Unsupported(format!("ResultPath {path:?}")))?
        .split('.')
        .collect();
    let mut output = input;
    let mut at = &mut output;
    for (index, name) in names.iter().enumerate() {
        let Value::Object(fields) = at else {
            return Err(PathError::NotAnObject {
                path: format!("{path:?}"),
                name: (*name).to_owned(),
            });
        };
        if index + 1 == names.len() {
            fields.insert((*name).to_owned(), result);
            break;
        }
        at = fields
            .entry((*name).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    Ok(output)
}

/// `InputPath` / `OutputPath`: absent is `$`, `null` is `{}`.
pub fn filter(path: Option<&Value>, value: Value, context: &Value) -> Result<Value, PathError> {
    match path {
        None => Ok(value),
        Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(Value::String(path)) => select(path, &value, context),
        Some(other) => Err(PathError::NotAPath(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_select_paths_context_and_intrinsics() {
        let input = json!({"a": {"b": 3}, "s": "[1]"});
        let context = json!({"Map": {"Item": {"Index": 7}}});
        let template = json!({"x.$": "$.a.b", "i.$": "$$.Map.Item.Index", "k": {"n.$": "States.StringToJson('40')"},
                              "j.$": "States.StringToJson($.s)", "c": "plain"});
        assert_eq!(
            apply_template(&template, &input, &context).expect("applied"),
            json!({"x": 3, "i": 7, "k": {"n": 40}, "j": [1], "c": "plain"})
        );
        assert_eq!(
            select("$.missing", &input, &context),
            Err(PathError::NotFound("\"$.missing\"".into()))
        );
        assert!(matches!(
            select("$.a[0]", &input, &context),
            Err(PathError::Unsupported(_))
        ));
        assert_eq!(
            apply_template(&json!({"f.$": "States.Format('x')"}), &input, &context),
            Err(PathError::UnknownIntrinsic("States.Format('x')".into()))
        );
        let not_json = apply_template(
            &json!({"j.$": "States.StringToJson('{')"}),
            &input,
            &context,
        );
        assert!(
            matches!(not_json, Err(PathError::NotJson { .. })),
            "{not_json:?}"
        );
    }

    #[test]
    fn results_are_placed_where_the_result_path_says() {
        let input = json!({"a": 1});
        assert_eq!(
            place_result(input.clone(), Some(&json!("$.r.s")), json!(2)).expect("placed"),
            json!({"a": 1, "r": {"s": 2}})
        );
        assert_eq!(
            place_result(input.clone(), None, json!(2)).expect("placed"),
            json!(2)
        );
        assert_eq!(
            place_result(input.clone(), Some(&Value::Null), json!(2)).expect("placed"),
            input
        );
    }
}
