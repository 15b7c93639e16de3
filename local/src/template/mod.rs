//! template.yaml is the one source of truth for tables and function settings:
//! the local stack and the tests create tables and environments from it.
//!
//! Here the template is loaded and its resources read; the rest, one concern
//! a module: `tags` (CloudFormation's `!Ref` and `!GetAtt`, resolved locally),
//! `tables` (the tables, created on DynamoDB Local), `functions` (a function's
//! binary, timeout and environment), `stream_mapping` (its `DynamoDB` event)
//! and `routes` (its `HttpApi` events).

mod functions;
mod routes;
mod stream_mapping;
mod tables;
mod tags;

pub use routes::HttpRoute;
pub use stream_mapping::StreamMappingSettings;
pub use tables::TableSet;
pub use tags::tagged;

use std::path::Path;
use yaml_serde::{Mapping, Value};

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read the template: {0}")]
    Read(#[from] std::io::Error),
    #[error("the template is not valid YAML: {0}")]
    Yaml(#[from] yaml_serde::Error),
    #[error("template: {0}")]
    Shape(String),
    #[error("creating table {table}: {detail}")]
    Create { table: String, detail: String },
}

fn shape(message: impl Into<String>) -> TemplateError {
    TemplateError::Shape(message.into())
}

#[derive(Debug, Clone)]
pub struct SamTemplate {
    root: Mapping,
    /// Parameter values given for this reading (`sam deploy
    /// --parameter-overrides`); the others take their `Default`.
    overrides: std::collections::BTreeMap<String, String>,
}

impl SamTemplate {
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path)?;
        Self::parse(&text)
    }

    /// The project's template.yaml.
    pub fn project() -> Result<Self, TemplateError> {
        Self::load(&crate::workspace_root().join("template.yaml"))
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        match yaml_serde::from_str(text)? {
            Value::Mapping(root) => Ok(Self {
                root,
                overrides: Default::default(),
            }),
            _ => Err(shape("the top level is not a mapping")),
        }
    }

    pub fn resources(&self) -> Result<&Mapping, TemplateError> {
        self.root
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| shape("no Resources"))
    }

    pub fn resource(&self, logical_id: &str) -> Result<&Value, TemplateError> {
        self.resources()?
            .get(logical_id)
            .ok_or_else(|| shape(format!("no resource {logical_id}")))
    }

    /// A resource's `Properties`.
    pub fn properties(&self, logical_id: &str) -> Result<&Value, TemplateError> {
        self.resource(logical_id)?
            .get("Properties")
            .ok_or_else(|| shape(format!("{logical_id} has no Properties")))
    }

    /// The template read with these parameter values, as a stack deployed
    /// with `--parameter-overrides` would be (conditions and `!If` follow them).
    pub fn with_parameters(mut self, values: &[(&str, &str)]) -> Self {
        self.overrides.extend(
            values
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string())),
        );
        self
    }

    /// `Globals.Function`, if any.
    pub fn function_globals(&self) -> Option<&Value> {
        self.root
            .get("Globals")
            .and_then(|globals| globals.get("Function"))
    }

    pub fn logical_ids_of_type(&self, resource_type: &str) -> Result<Vec<String>, TemplateError> {
        Ok(self
            .resources()?
            .iter()
            .filter(|(_, resource)| {
                resource.get("Type").and_then(Value::as_str) == Some(resource_type)
            })
            .filter_map(|(id, _)| id.as_str().map(str::to_owned))
            .collect())
    }
}
