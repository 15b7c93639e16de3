//! The template's tables, created on DynamoDB Local with their keys,
//! indexes, stream and TTL.

use super::{shape, SamTemplate, TemplateError};
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType, StreamSpecification,
    StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use std::collections::BTreeMap;
use yaml_serde::Value;

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

impl SamTemplate {
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
    indexes(
        properties,
        "GlobalSecondaryIndexes",
        |name, keys, projection| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .set_key_schema(Some(keys))
                .projection(projection)
                .build()
        },
    )
}

fn local_indexes(properties: &Value) -> Result<Option<Vec<LocalSecondaryIndex>>, TemplateError> {
    indexes(
        properties,
        "LocalSecondaryIndexes",
        |name, keys, projection| {
            LocalSecondaryIndex::builder()
                .index_name(name)
                .set_key_schema(Some(keys))
                .projection(projection)
                .build()
        },
    )
}

/// The indexes listed under `key` (`None` when there is no such list),
/// each built by `build` from its name, key schema and projection.
fn indexes<T>(
    properties: &Value,
    key: &str,
    build: impl Fn(&str, Vec<KeySchemaElement>, Projection) -> Result<T, BuildError>,
) -> Result<Option<Vec<T>>, TemplateError> {
    let Some(indexes) = properties.get(key) else {
        return Ok(None);
    };
    list(Some(indexes), key)?
        .iter()
        .map(|index| {
            build(
                text(index, "IndexName")?,
                key_schema(index.get("KeySchema"))?,
                projection(index)?,
            )
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
