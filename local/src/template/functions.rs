//! A function's settings from the template: its binary, its timeout, its
//! environment (Globals merged under its own) and its events.

use super::{shape, SamTemplate, TableSet, TemplateError};
use std::collections::HashMap;
use yaml_serde::Value;

impl SamTemplate {
    /// The logical ids of the `AWS::Serverless::Function`s.
    pub fn function_ids(&self) -> Result<Vec<String>, TemplateError> {
        self.logical_ids_of_type("AWS::Serverless::Function")
    }

    /// The binary cargo-lambda builds for a function (`Metadata.BuildProperties.Binary`).
    pub fn function_binary(&self, function_id: &str) -> Result<String, TemplateError> {
        self.resource(function_id)?
            .get("Metadata")
            .and_then(|metadata| metadata.get("BuildProperties"))
            .and_then(|build| build.get("Binary"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| shape(format!("{function_id} names no Binary")))
    }

    /// A function's timeout: its own `Timeout`, else `Globals.Function.Timeout`, else 3 s.
    pub fn function_timeout(
        &self,
        function_id: &str,
    ) -> Result<std::time::Duration, TemplateError> {
        let own = self.properties(function_id)?.get("Timeout");
        let global = self.function_globals().and_then(|g| g.get("Timeout"));
        let seconds = match own.or(global) {
            Some(value) => self.number(value)?,
            None => 3,
        };
        Ok(std::time::Duration::from_secs(seconds))
    }

    /// The `Type` and `Properties` of each of a function's `Events`.
    pub(super) fn events(&self, function_id: &str) -> Result<Vec<(&Value, &Value)>, TemplateError> {
        Ok(self
            .properties(function_id)?
            .get("Events")
            .and_then(Value::as_mapping)
            .map(|events| {
                events
                    .values()
                    .filter_map(|event| Some((event.get("Type")?, event.get("Properties")?)))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// A function's environment (Globals merged under its own), with `!Ref`s
    /// of tables resolved to `tables` and of parameters to their defaults.
    pub fn function_environment(
        &self,
        function_id: &str,
        tables: &TableSet,
    ) -> Result<HashMap<String, String>, TemplateError> {
        let variables = |function: Option<&Value>| {
            function
                .and_then(|f| f.get("Environment"))
                .and_then(|e| e.get("Variables"))
                .and_then(Value::as_mapping)
                .cloned()
                .unwrap_or_default()
        };
        let mut merged = variables(self.function_globals());
        merged.extend(variables(Some(self.properties(function_id)?)));
        let mut environment = HashMap::new();
        for (name, value) in merged {
            let name = name
                .as_str()
                .ok_or_else(|| shape("a variable name is not text"))?
                .to_owned();
            environment.insert(name, self.resolve(&value, tables)?);
        }
        Ok(environment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binaries_and_timeouts_come_from_the_template() {
        let template = SamTemplate::project().expect("template.yaml");
        assert_eq!(
            template
                .function_binary("OfferLookupFunction")
                .ok()
                .as_deref(),
            Some("offer-lookup")
        );
        assert_eq!(
            template.function_timeout("OfferDispatcherFunction").ok(),
            Some(std::time::Duration::from_secs(60))
        );
    }
}
