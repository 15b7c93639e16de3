//! Reads a table's real stream from DynamoDB Local and shapes its records as
//! Lambda receives them from an event source mapping.

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use aws_sdk_dynamodbstreams::Client;
use aws_smithy_types::error::display::DisplayErrorContext;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};

/// Follows every shard of one stream from its start, returning each record once.
pub struct StreamReader {
    client: Client,
    stream_arn: String,
    /// Next iterator by shard id; `None` once a closed shard is read to its end.
    iterators: BTreeMap<String, Option<String>>,
}

impl StreamReader {
    /// Opens the stream of `table` (it must have one).
    pub async fn open(
        sdk_config: &aws_config::SdkConfig,
        dynamodb: &aws_sdk_dynamodb::Client,
        table: &str,
    ) -> Result<Self, String> {
        let described = dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|err| DisplayErrorContext(err).to_string())?;
        let stream_arn = described
            .table()
            .and_then(|table| table.latest_stream_arn())
            .ok_or_else(|| format!("table {table} has no stream"))?
            .to_owned();
        Ok(Self {
            client: Client::new(sdk_config),
            stream_arn,
            iterators: BTreeMap::new(),
        })
    }

    pub fn stream_arn(&self) -> &str {
        &self.stream_arn
    }

    /// Every record written since the last call, in shard order, as Lambda event records.
    pub async fn read_new(&mut self) -> Result<Vec<Value>, String> {
        let error = |err: &dyn std::fmt::Display| err.to_string();
        let described = self
            .client
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await
            .map_err(|err| error(&DisplayErrorContext(err)))?;
        for shard in described
            .stream_description()
            .map(|d| d.shards())
            .unwrap_or_default()
        {
            let Some(shard_id) = shard.shard_id() else {
                continue;
            };
            if !self.iterators.contains_key(shard_id) {
                let iterator = self
                    .client
                    .get_shard_iterator()
                    .stream_arn(&self.stream_arn)
                    .shard_id(shard_id)
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await
                    .map_err(|err| error(&DisplayErrorContext(err)))?;
                self.iterators.insert(
                    shard_id.to_owned(),
                    iterator.shard_iterator().map(str::to_owned),
                );
            }
        }
        let mut records = Vec::new();
        for iterator in self.iterators.values_mut() {
            // The open shard always hands back a next iterator: stop on an empty page.
            while let Some(current) = iterator.clone() {
                let page = self
                    .client
                    .get_records()
                    .shard_iterator(current)
                    .send()
                    .await
                    .map_err(|err| error(&DisplayErrorContext(err)))?;
                *iterator = page.next_shard_iterator().map(str::to_owned);
                if page.records().is_empty() {
                    break;
                }
                records.extend(
                    page.records()
                        .iter()
                        .map(|record| lambda_record(record, &self.stream_arn)),
                );
            }
        }
        Ok(records)
    }
}

/// A Lambda event for a DynamoDB stream, carrying `records`.
pub fn lambda_event(records: &[Value]) -> Value {
    json!({ "Records": records })
}

/// One stream record in the shape of Lambda's DynamoDB event.
pub fn lambda_record(record: &Record, stream_arn: &str) -> Value {
    let mut change = Map::new();
    if let Some(stream) = record.dynamodb() {
        if let Some(at) = stream.approximate_creation_date_time() {
            change.insert("ApproximateCreationDateTime".into(), json!(at.secs()));
        }
        for (name, image) in [
            ("Keys", stream.keys()),
            ("NewImage", stream.new_image()),
            ("OldImage", stream.old_image()),
        ] {
            if let Some(image) = image {
                change.insert(name.into(), item_json(image));
            }
        }
        if let Some(sequence) = stream.sequence_number() {
            change.insert("SequenceNumber".into(), json!(sequence));
        }
        if let Some(size) = stream.size_bytes() {
            change.insert("SizeBytes".into(), json!(size));
        }
        if let Some(view) = stream.stream_view_type() {
            change.insert("StreamViewType".into(), json!(view.as_str()));
        }
    }
    let mut event = json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|name| name.as_str()),
        "eventVersion": record.event_version(),
        "eventSource": record.event_source().unwrap_or("aws:dynamodb"),
        "awsRegion": record.aws_region(),
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    });
    if let Some(identity) = record.user_identity() {
        event["userIdentity"] =
            json!({"type": identity.r#type(), "principalId": identity.principal_id()});
    }
    event
}

pub fn item_json(item: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        item.iter()
            .map(|(name, value)| (name.clone(), attribute_json(value)))
            .collect(),
    )
}

/// An attribute in DynamoDB's JSON wire format (`{"S": ...}`, `{"N": ...}`, ...).
pub fn attribute_json(value: &AttributeValue) -> Value {
    use base64::Engine as _;
    let encode = |blob: &aws_smithy_types::Blob| {
        base64::engine::general_purpose::STANDARD.encode(blob.as_ref())
    };
    match value {
        AttributeValue::S(text) => json!({ "S": text }),
        AttributeValue::N(number) => json!({ "N": number }),
        AttributeValue::Bool(flag) => json!({ "BOOL": flag }),
        AttributeValue::Null(flag) => json!({ "NULL": flag }),
        AttributeValue::B(blob) => json!({ "B": encode(blob) }),
        AttributeValue::Ss(texts) => json!({ "SS": texts }),
        AttributeValue::Ns(numbers) => json!({ "NS": numbers }),
        AttributeValue::Bs(blobs) => json!({ "BS": blobs.iter().map(encode).collect::<Vec<_>>() }),
        AttributeValue::M(members) => json!({ "M": item_json(members) }),
        AttributeValue::L(items) => {
            json!({ "L": items.iter().map(attribute_json).collect::<Vec<_>>() })
        }
        _ => json!({ "NULL": true }),
    }
}
