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
            // A variable under a condition that does not hold is not set.
            if let Some(value) = self.resolve_optional(&value, tables)? {
                environment.insert(name, value);
            }
        }
        Ok(environment)
    }

    /// A function's layers (Globals' then its own), `!If`s resolved.
    pub fn function_layers(&self, function_id: &str) -> Result<Vec<String>, TemplateError> {
        let layers = |function: Option<&Value>| {
            function
                .and_then(|f| f.get("Layers"))
                .and_then(Value::as_sequence)
                .cloned()
                .unwrap_or_default()
        };
        let mut all = layers(self.function_globals());
        all.extend(layers(Some(self.properties(function_id)?)));
        let mut resolved = Vec::new();
        for layer in all {
            if let Some(arn) = self.resolve_optional(&layer, &TableSet::default())? {
                resolved.push(arn);
            }
        }
        Ok(resolved)
    }

    /// The entries of a function's `Policies` that apply with these
    /// parameters: an `!If` is replaced by its branch, dropped for `AWS::NoValue`.
    pub fn function_policies(&self, function_id: &str) -> Result<Vec<Value>, TemplateError> {
        let mut policies = Vec::new();
        let listed = self
            .properties(function_id)?
            .get("Policies")
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default();
        for policy in listed {
            let chosen = match &policy {
                Value::Tagged(tagged) if tagged.tag == "!If" => {
                    let branch = self.if_branch(&tagged.value)?;
                    if super::tagged(branch, "!Ref") == Some("AWS::NoValue") {
                        continue;
                    }
                    branch.clone()
                }
                other => other.clone(),
            };
            policies.push(chosen);
        }
        Ok(policies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_follow_the_parameters() {
        let tables = TableSet {
            names: [
                "PendingPersonalizedOffersTable",
                "LoyaltyOffersTable",
                "OfferCatalogTable",
                "RejectedPersonalizedOffersTable",
                "CampaignsTable",
            ]
            .into_iter()
            .map(|id| (id.to_owned(), format!("t-{id}")))
            .collect(),
        };
        let default = SamTemplate::project().expect("template.yaml");
        let environment = default
            .function_environment("OfferDispatcherFunction", &tables)
            .expect("environment");
        assert_eq!(environment["OBSERVABILITY"], "cloudwatch");
        assert!(!environment.contains_key("DD_ENV"));
        assert_eq!(
            default.function_layers("OfferDispatcherFunction").ok(),
            Some(vec![])
        );

        let datadog = default.with_parameters(&[("Observability", "datadog"), ("Stage", "prod")]);
        assert_eq!(datadog.condition("UseDatadog").ok(), Some(true));
        let environment = datadog
            .function_environment("OfferDispatcherFunction", &tables)
            .expect("environment");
        assert_eq!(environment["OBSERVABILITY"], "datadog");
        assert_eq!(environment["DD_ENV"], "prod");
        assert_eq!(
            environment["DD_TAGS"],
            "project:personalized-offers,stage:prod"
        );
        assert_eq!(
            datadog
                .function_layers("OfferDispatcherFunction")
                .map(|l| l.len())
                .ok(),
            Some(1)
        );
    }

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
