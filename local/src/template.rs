//! template.yaml is the one source of truth for tables and function settings:
//! the local stack and the tests create tables and environments from it.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType, StreamSpecification,
    StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use std::collections::{BTreeMap, HashMap};
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

/// Physical table names by logical id, as created for one stack or test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSet {
    pub names: BTreeMap<String, String>,
}

impl TableSet {
    pub fn name(&self, logical_id: &str) -> &str {
        self.names
            .get(logical_id)
            .map(String::as_str)
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct SamTemplate {
    root: Mapping,
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
            Value::Mapping(root) => Ok(Self { root }),
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

    fn resolve(&self, value: &Value, tables: &TableSet) -> Result<String, TemplateError> {
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

    /// Creates every `AWS::DynamoDB::Table` of the template, named
    /// `<prefix><LogicalId>`, with its keys, indexes, stream and TTL. Tables
    /// that already exist are kept as they are (data persists between runs).
    pub async fn create_tables(
        &self,
        client: &Client,
        prefix: &str,
    ) -> Result<TableSet, TemplateError> {
        let mut tables = TableSet::default();
        for logical_id in self.logical_ids_of_type("AWS::DynamoDB::Table")? {
            let name = format!("{prefix}{logical_id}");
            let properties = self.properties(&logical_id)?;
            let create_error = |detail: String| TemplateError::Create {
                table: name.clone(),
                detail,
            };
            let request = client
                .create_table()
                .table_name(&name)
                .billing_mode(BillingMode::PayPerRequest)
                .set_attribute_definitions(Some(attribute_definitions(properties)?))
                .set_key_schema(Some(key_schema(properties.get("KeySchema"))?))
                .set_global_secondary_indexes(global_indexes(properties)?)
                .set_local_secondary_indexes(local_indexes(properties)?)
                .set_stream_specification(stream_specification(properties)?);
            match request.send().await {
                Ok(_) => {}
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_resource_in_use_exception()) => {}
                Err(err) => {
                    return Err(create_error(
                        aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
                    ))
                }
            }
            if let Some(ttl) = properties.get("TimeToLiveSpecification") {
                let enabled = ttl.get("Enabled").and_then(Value::as_bool).unwrap_or(false);
                let attribute = ttl
                    .get("AttributeName")
                    .and_then(Value::as_str)
                    .unwrap_or("ttl");
                if enabled {
                    let specification = TimeToLiveSpecification::builder()
                        .enabled(true)
                        .attribute_name(attribute)
                        .build()
                        .map_err(|err| create_error(err.to_string()))?;
                    // Errors when TTL is already on (a table kept from an earlier run): fine.
                    let _ = client
                        .update_time_to_live()
                        .table_name(&name)
                        .time_to_live_specification(specification)
                        .send()
                        .await;
                }
            }
            tables.names.insert(logical_id, name);
        }
        Ok(tables)
    }
}

fn text<'a>(value: &'a Value, key: &str) -> Result<&'a str, TemplateError> {
    value
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| shape(format!("{key} missing")))
}

fn list<'a>(value: Option<&'a Value>, what: &str) -> Result<&'a Vec<Value>, TemplateError> {
    value
        .and_then(Value::as_sequence)
        .ok_or_else(|| shape(format!("{what} is not a list")))
}

fn attribute_definitions(properties: &Value) -> Result<Vec<AttributeDefinition>, TemplateError> {
    list(
        properties.get("AttributeDefinitions"),
        "AttributeDefinitions",
    )?
    .iter()
    .map(|definition| {
        AttributeDefinition::builder()
            .attribute_name(text(definition, "AttributeName")?)
            .attribute_type(ScalarAttributeType::from(text(
                definition,
                "AttributeType",
            )?))
            .build()
            .map_err(|err| shape(err.to_string()))
    })
    .collect()
}

fn key_schema(schema: Option<&Value>) -> Result<Vec<KeySchemaElement>, TemplateError> {
    list(schema, "KeySchema")?
        .iter()
        .map(|element| {
            KeySchemaElement::builder()
                .attribute_name(text(element, "AttributeName")?)
                .key_type(KeyType::from(text(element, "KeyType")?))
                .build()
                .map_err(|err| shape(err.to_string()))
        })
        .collect()
}

fn projection(index: &Value) -> Result<Projection, TemplateError> {
    let projection = index
        .get("Projection")
        .ok_or_else(|| shape("index without Projection"))?;
    let non_key = projection
        .get("NonKeyAttributes")
        .and_then(Value::as_sequence)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        });
    Ok(Projection::builder()
        .projection_type(ProjectionType::from(text(projection, "ProjectionType")?))
        .set_non_key_attributes(non_key)
        .build())
}

fn global_indexes(properties: &Value) -> Result<Option<Vec<GlobalSecondaryIndex>>, TemplateError> {
    let Some(indexes) = properties.get("GlobalSecondaryIndexes") else {
        return Ok(None);
    };
    list(Some(indexes), "GlobalSecondaryIndexes")?
        .iter()
        .map(|index| {
            GlobalSecondaryIndex::builder()
                .index_name(text(index, "IndexName")?)
                .set_key_schema(Some(key_schema(index.get("KeySchema"))?))
                .projection(projection(index)?)
                .build()
                .map_err(|err| shape(err.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn local_indexes(properties: &Value) -> Result<Option<Vec<LocalSecondaryIndex>>, TemplateError> {
    let Some(indexes) = properties.get("LocalSecondaryIndexes") else {
        return Ok(None);
    };
    list(Some(indexes), "LocalSecondaryIndexes")?
        .iter()
        .map(|index| {
            LocalSecondaryIndex::builder()
                .index_name(text(index, "IndexName")?)
                .set_key_schema(Some(key_schema(index.get("KeySchema"))?))
                .projection(projection(index)?)
                .build()
                .map_err(|err| shape(err.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn stream_specification(properties: &Value) -> Result<Option<StreamSpecification>, TemplateError> {
    let Some(stream) = properties.get("StreamSpecification") else {
        return Ok(None);
    };
    StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::from(text(stream, "StreamViewType")?))
        .build()
        .map(Some)
        .map_err(|err| shape(err.to_string()))
}

/// The settings of a function's `DynamoDB` event (its event source mapping).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamMappingSettings {
    /// The table whose stream it reads (the logical id in `!GetAtt X.StreamArn`).
    pub table: String,
    pub batch_size: usize,
    pub batching_window: std::time::Duration,
    /// Retries of a failing batch before it goes to the on-failure destination.
    pub maximum_retry_attempts: u32,
    /// Records older than this go to the on-failure destination unprocessed.
    pub maximum_record_age: std::time::Duration,
    pub bisect_batch_on_function_error: bool,
    pub report_batch_item_failures: bool,
    /// Event names that pass the filter (`{"eventName": [...]}`); `None`: all pass.
    pub event_names: Option<Vec<String>>,
}

/// One route of an `HttpApi` event: method, path (with `{parameters}`), and
/// the function behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    pub api: String,
    pub method: String,
    pub path: String,
    pub function: String,
}

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

    fn events(&self, function_id: &str) -> Result<Vec<(&Value, &Value)>, TemplateError> {
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

    /// The settings of the function's `DynamoDB` event, with parameters at
    /// their defaults. Fails on a filter pattern the local stack cannot apply.
    pub fn stream_mapping(
        &self,
        function_id: &str,
    ) -> Result<StreamMappingSettings, TemplateError> {
        let (_, event) = self
            .events(function_id)?
            .into_iter()
            .find(|(kind, _)| kind.as_str() == Some("DynamoDB"))
            .ok_or_else(|| shape(format!("{function_id} has no DynamoDB event")))?;
        let table = match event.get("Stream") {
            Some(Value::Tagged(tagged)) if tagged.tag == "!GetAtt" => tagged
                .value
                .as_str()
                .and_then(|target| target.strip_suffix(".StreamArn"))
                .map(str::to_owned),
            _ => None,
        }
        .ok_or_else(|| {
            shape(format!(
                "{function_id}: Stream is not !GetAtt <Table>.StreamArn"
            ))
        })?;
        let number = |name: &str, default: u64| match event.get(name) {
            Some(value) => self.number(value),
            None => Ok(default),
        };
        let flag = |name: &str| event.get(name).and_then(Value::as_bool).unwrap_or(false);
        let report_batch_item_failures = event
            .get("FunctionResponseTypes")
            .and_then(Value::as_sequence)
            .is_some_and(|types| {
                types
                    .iter()
                    .any(|kind| kind.as_str() == Some("ReportBatchItemFailures"))
            });
        let mut event_names: Option<Vec<String>> = None;
        let patterns = event
            .get("FilterCriteria")
            .and_then(|criteria| criteria.get("Filters"))
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default();
        for filter in patterns {
            let pattern = filter
                .get("Pattern")
                .and_then(Value::as_str)
                .ok_or_else(|| shape("a filter without a Pattern"))?;
            let names = event_name_pattern(pattern)?;
            event_names.get_or_insert_with(Vec::new).extend(names);
        }
        // AWS: -1 (or absent) is "retry until the record expires"; finite here.
        let retries = number("MaximumRetryAttempts", 10_000)?;
        Ok(StreamMappingSettings {
            table,
            batch_size: number("BatchSize", 100)? as usize,
            batching_window: std::time::Duration::from_secs(number(
                "MaximumBatchingWindowInSeconds",
                0,
            )?),
            maximum_retry_attempts: u32::try_from(retries).unwrap_or(u32::MAX),
            maximum_record_age: std::time::Duration::from_secs(number(
                "MaximumRecordAgeInSeconds",
                604_800,
            )?),
            bisect_batch_on_function_error: flag("BisectBatchOnFunctionError"),
            report_batch_item_failures,
            event_names,
        })
    }

    /// Every route of every `HttpApi` event.
    pub fn http_routes(&self) -> Result<Vec<HttpRoute>, TemplateError> {
        let mut routes = Vec::new();
        for function in self.function_ids()? {
            for (kind, event) in self.events(&function)? {
                if kind.as_str() != Some("HttpApi") {
                    continue;
                }
                let text = |name: &str| event.get(name).and_then(Value::as_str);
                let api = match event.get("ApiId") {
                    Some(Value::Tagged(tagged)) if tagged.tag == "!Ref" => {
                        tagged.value.as_str().map(str::to_owned)
                    }
                    _ => None,
                };
                routes.push(HttpRoute {
                    api: api.unwrap_or_else(|| "ServerlessHttpApi".into()),
                    method: text("Method").unwrap_or("ANY").to_uppercase(),
                    path: text("Path")
                        .ok_or_else(|| shape(format!("{function}: an HttpApi event without Path")))?
                        .to_owned(),
                    function: function.clone(),
                });
            }
        }
        Ok(routes)
    }

    /// A number, or a `!Ref` of a parameter with a numeric default.
    fn number(&self, value: &Value) -> Result<u64, TemplateError> {
        let text = self.resolve(value, &TableSet::default())?;
        text.trim()
            .parse()
            .map_err(|_| shape(format!("{text:?} is not a whole number")))
    }
}

/// The event names of a filter pattern `{"eventName": ["INSERT", ...]}`: the
/// only shape of pattern the local stack applies.
fn event_name_pattern(pattern: &str) -> Result<Vec<String>, TemplateError> {
    let unsupported = || shape(format!("filter pattern {pattern} is not supported locally"));
    let parsed: serde_json::Value = serde_json::from_str(pattern).map_err(|_| unsupported())?;
    let object = parsed.as_object().ok_or_else(unsupported)?;
    if object.len() != 1 {
        return Err(unsupported());
    }
    object
        .get("eventName")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(unsupported)?
        .iter()
        .map(|name| name.as_str().map(str::to_owned).ok_or_else(unsupported))
        .collect()
}

#[cfg(test)]
mod function_tests {
    use super::*;

    #[test]
    fn the_dispatchers_mapping_comes_from_the_template() {
        let template = SamTemplate::project().expect("template.yaml");
        let mapping = template
            .stream_mapping("OfferDispatcherFunction")
            .expect("mapping");
        assert_eq!(mapping.table, "PendingPersonalizedOffersTable");
        assert_eq!(mapping.batch_size, 100);
        assert_eq!(mapping.batching_window, std::time::Duration::from_secs(1));
        assert_eq!(mapping.maximum_retry_attempts, 10);
        assert_eq!(
            mapping.maximum_record_age,
            std::time::Duration::from_secs(21_600)
        );
        assert!(mapping.bisect_batch_on_function_error);
        assert!(mapping.report_batch_item_failures);
        assert_eq!(mapping.event_names, Some(vec!["INSERT".to_owned()]));
    }

    #[test]
    fn routes_binaries_and_timeouts_come_from_the_template() {
        let template = SamTemplate::project().expect("template.yaml");
        let routes = template.http_routes().expect("routes");
        assert!(routes.contains(&HttpRoute {
            api: "OffersHttpApi".into(),
            method: "GET".into(),
            path: "/rewards/offers/{personalizedOfferId}".into(),
            function: "OfferLookupFunction".into(),
        }));
        assert!(
            routes
                .iter()
                .any(|route| route.method == "DELETE"
                    && route.function == "SupportAssignmentFunction")
        );
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

    #[test]
    fn only_event_name_patterns_are_applied() {
        assert_eq!(
            event_name_pattern(r#"{"eventName": ["INSERT", "MODIFY"]}"#).ok(),
            Some(vec!["INSERT".to_owned(), "MODIFY".to_owned()])
        );
        assert!(event_name_pattern(r#"{"dynamodb": {"Keys": {}}}"#).is_err());
        assert!(event_name_pattern("not json").is_err());
    }
}
