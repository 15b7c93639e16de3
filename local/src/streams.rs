//! Reads a table's real stream from DynamoDB Local and shapes its records as
//! Lambda receives them from an event source mapping.

use crate::error::BedError;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use aws_sdk_dynamodbstreams::Client;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Follows every shard of one stream from its start, returning each record once.
pub struct StreamReader {
    client: Client,
    /// DynamoDB Local's endpoint, for the JSON GetRecords.
    endpoint: String,
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
    ) -> Result<Self, BedError> {
        let described = dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(BedError::aws)?;
        let stream_arn = described
            .table()
            .and_then(|table| table.latest_stream_arn())
            .ok_or_else(|| BedError::setup(format!("table {table}"), "it has no stream"))?
            .to_owned();
        let endpoint = sdk_config
            .endpoint_url()
            .ok_or_else(|| {
                BedError::setup("the stream reader", "it needs DynamoDB Local's endpoint")
            })?
            .to_owned();
        Ok(Self {
            client: Client::new(sdk_config),
            endpoint,
            stream_arn,
            iterators: BTreeMap::new(),
        })
    }

    pub fn stream_arn(&self) -> &str {
        &self.stream_arn
    }

    /// Every record written since the last call, in shard order, as Lambda event records.
    pub async fn read_new(&mut self) -> Result<Vec<Value>, BedError> {
        for shard_id in shard_ids(&self.client, &self.stream_arn).await? {
            let shard_id = shard_id.as_str();
            if !self.iterators.contains_key(shard_id) {
                let iterator = self
                    .client
                    .get_shard_iterator()
                    .stream_arn(&self.stream_arn)
                    .shard_id(shard_id)
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await
                    .map_err(BedError::aws)?;
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
                let page = get_records(&self.endpoint, &current, 1000).await?;
                *iterator = page.next_iterator;
                if page.records.is_empty() {
                    break;
                }
                records.extend(
                    page.records
                        .into_iter()
                        .map(|record| lambda_record_from_wire(record, &self.stream_arn)),
                );
            }
        }
        Ok(records)
    }
}

/// The ids of a stream's shards, oldest first.
pub async fn shard_ids(client: &Client, stream_arn: &str) -> Result<Vec<String>, BedError> {
    let described = client
        .describe_stream()
        .stream_arn(stream_arn)
        .send()
        .await
        .map_err(BedError::aws)?;
    Ok(described
        .stream_description()
        .map(|d| d.shards())
        .unwrap_or_default()
        .iter()
        .filter_map(|shard| shard.shard_id().map(str::to_owned))
        .collect())
}

/// A Lambda event for a DynamoDB stream, carrying `records`.
pub fn lambda_event(records: &[Value]) -> Value {
    json!({ "Records": records })
}

/// One page of GetRecords, read as JSON from DynamoDB Local.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordsPage {
    /// The records in DynamoDB Streams' wire JSON, empty maps normalised.
    pub records: Vec<Value>,
    pub next_iterator: Option<String>,
}

/// GetRecords on DynamoDB Local, read as plain JSON rather than through the
/// SDK: DynamoDB Local writes an empty map attribute as a bare `{}` instead
/// of `{"M": {}}`, which the SDK's parser rejects, failing the whole page and
/// stalling the shard. Such values are normalised here, as AWS would send
/// them. (DynamoDB Local does not check signatures; this never goes to AWS.)
pub async fn get_records(
    endpoint: &str,
    shard_iterator: &str,
    limit: u32,
) -> Result<RecordsPage, BedError> {
    let authority = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .map_err(|err| BedError::GetRecords(format!("{endpoint}: {err}")))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(get_records_failed)?;
    tokio::spawn(connection);
    let body = json!({"ShardIterator": shard_iterator, "Limit": limit}).to_string();
    let request = hyper::Request::post("/")
        .header("host", &authority)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", "DynamoDBStreams_20120810.GetRecords")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=local/20240101/us-east-1/dynamodb/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .map_err(get_records_failed)?;
    let response = sender
        .send_request(request)
        .await
        .map_err(get_records_failed)?;
    let status = response.status();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .map_err(get_records_failed)?
        .to_bytes();
    let mut page: Value = serde_json::from_slice(&body).map_err(|err| {
        BedError::GetRecords(format!("GetRecords answered {status} with no JSON: {err}"))
    })?;
    if !status.is_success() {
        return Err(BedError::GetRecords(format!(
            "GetRecords: {} {}",
            page["__type"].as_str().unwrap_or_default(),
            page["message"].as_str().unwrap_or_default()
        )));
    }
    let mut records = match page.get_mut("Records").map(Value::take) {
        Some(Value::Array(records)) => records,
        _ => Vec::new(),
    };
    for record in &mut records {
        for image in ["Keys", "NewImage", "OldImage"] {
            if let Some(Value::Object(attributes)) = record["dynamodb"].get_mut(image) {
                attributes.values_mut().for_each(normalise_attribute);
            }
        }
    }
    Ok(RecordsPage {
        records,
        next_iterator: page["NextShardIterator"].as_str().map(str::to_owned),
    })
}

/// A bare `{}` attribute is an empty map; maps and lists are walked.
fn normalise_attribute(value: &mut Value) {
    match value {
        Value::Object(members) if members.is_empty() => *value = json!({"M": {}}),
        Value::Object(members) => {
            if let Some(Value::Object(map)) = members.get_mut("M") {
                map.values_mut().for_each(normalise_attribute);
            }
            if let Some(Value::Array(list)) = members.get_mut("L") {
                list.iter_mut().for_each(normalise_attribute);
            }
        }
        _ => {}
    }
}

/// A wire-JSON stream record as Lambda's event carries it: the same fields,
/// plus `eventSourceARN`.
pub fn lambda_record_from_wire(mut record: Value, stream_arn: &str) -> Value {
    record["eventSourceARN"] = json!(stream_arn);
    if record.get("eventSource").is_none() {
        record["eventSource"] = json!("aws:dynamodb");
    }
    record
}

fn get_records_failed(err: impl std::fmt::Display) -> BedError {
    BedError::GetRecords(err.to_string())
}

#[cfg(test)]
mod wire_tests {
    use super::*;

    #[test]
    fn bare_empty_maps_become_maps_at_every_depth() {
        let mut value = json!({"M": {"rules": {}, "list": {"L": [{}, {"S": "x"}]}}});
        normalise_attribute(&mut value);
        assert_eq!(
            value,
            json!({"M": {"rules": {"M": {}}, "list": {"L": [{"M": {}}, {"S": "x"}]}}})
        );
        let mut empty = json!({});
        normalise_attribute(&mut empty);
        assert_eq!(empty, json!({"M": {}}));
    }

    #[test]
    fn a_wire_record_gets_its_stream_arn() {
        let record =
            lambda_record_from_wire(json!({"eventID": "1", "eventName": "INSERT"}), "arn:s");
        assert_eq!(record["eventSourceARN"], "arn:s");
        assert_eq!(record["eventSource"], "aws:dynamodb");
    }
}
