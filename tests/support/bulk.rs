//! Rows written in bulk with bare BatchWriteItem calls: the floor of the
//! benchmarks that write many rows, and how they feed a table quickly.

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use futures::stream::{self, StreamExt};
use serde_json::Value;

/// The rows as put requests, 25 a chunk (BatchWriteItem's most).
pub fn put_request_chunks(rows: &[Value]) -> Vec<Vec<WriteRequest>> {
    rows.chunks(25)
        .map(|chunk| {
            chunk
                .iter()
                .map(|row| {
                    let item = serde_dynamo::to_item(row).expect("row item");
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(item))
                                .build()
                                .expect("put"),
                        )
                        .build()
                })
                .collect()
        })
        .collect()
}

/// One BatchWriteItem call per chunk, `in_flight` at once, each chunk's
/// unprocessed items sent again until none is left.
pub async fn batch_write(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    chunks: Vec<Vec<WriteRequest>>,
    in_flight: usize,
) {
    stream::iter(chunks)
        .for_each_concurrent(in_flight, |mut chunk| async move {
            while !chunk.is_empty() {
                let output = client
                    .batch_write_item()
                    .request_items(table, chunk)
                    .send()
                    .await
                    .expect("batch write");
                chunk = output
                    .unprocessed_items()
                    .and_then(|items| items.get(table))
                    .cloned()
                    .unwrap_or_default();
            }
        })
        .await;
}
