//! One table behind a client: what the operations of every table share
//! (paginated scans and counts, batch puts, retries of transient failures).

use super::errors::{classify_briefly, CallError};
use super::items::Item;
use crate::error::StoreError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{PutRequest, Select, WriteRequest};
use aws_sdk_dynamodb::Client;
use futures::stream::{BoxStream, StreamExt};
use std::future::Future;
use std::task::{Context, Poll};
use std::time::Duration;

/// A table by its physical name. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoTable {
    client: Client,
    name: String,
}

impl DynamoTable {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    /// Every item (Scan, every page), with only the `attributes` named (all
    /// of them when empty).
    pub fn scan(&self, attributes: &[&str]) -> BoxStream<'static, Result<Item, CallError>> {
        let mut request = self.client.scan().table_name(&self.name);
        if !attributes.is_empty() {
            // Placeholders, since some names (`source`) are reserved words.
            let placeholders: Vec<String> = (0..attributes.len())
                .map(|index| format!("#a{index}"))
                .collect();
            request = request.projection_expression(placeholders.join(", "));
            for (placeholder, name) in placeholders.iter().zip(attributes) {
                request = request.expression_attribute_names(placeholder, *name);
            }
        }
        let mut items = request.into_paginator().items().send();
        paged(
            move |cx| items.poll_next(cx),
            format!("scanning {}", self.name),
        )
    }

    /// How many items the table holds (Scan, Select COUNT, every page).
    pub async fn count(&self) -> Result<u64, CallError> {
        let mut pages = self
            .client
            .scan()
            .table_name(&self.name)
            .select(Select::Count)
            .into_paginator()
            .send();
        let mut total = 0u64;
        while let Some(page) = pages
            .try_next()
            .await
            .map_err(|err| CallError::new(format!("counting the items of {}", self.name), &err))?
        {
            total += u64::try_from(page.count()).unwrap_or(0);
        }
        Ok(total)
    }

    /// Whether the table exists (DescribeTable).
    pub async fn exists(&self) -> Result<bool, CallError> {
        match self
            .client
            .describe_table()
            .table_name(&self.name)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(CallError::new(format!("describing {}", self.name), &err)),
        }
    }

    /// One BatchWriteItem of puts (at most 25 items of distinct keys). The
    /// items DynamoDB did not process come back, to be sent again.
    pub async fn put_batch(&self, items: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let requests = items
            .into_iter()
            .map(|item| {
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|put| WriteRequest::builder().put_request(put).build())
                    .map_err(|err| StoreError::Refused(err.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let output = self
            .client
            .batch_write_item()
            .request_items(&self.name, requests)
            .send()
            .await
            .map_err(|err| classify_briefly(&err))?;
        Ok(output
            .unprocessed_items
            .and_then(|mut unprocessed| unprocessed.remove(&self.name))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|request| request.put_request.map(|put| put.item))
            .collect())
    }
}

/// A paginator (`poll_next` of the SDK's `PaginationStream`, whose type
/// the SDK does not export) as a `futures` stream whose errors say what was
/// being done. Pages are requested as they are read: dropping the stream
/// sends no further request.
pub(super) fn paged<T, E, R>(
    poll_next: impl FnMut(&mut Context<'_>) -> Poll<Option<Result<T, SdkError<E, R>>>> + Send + 'static,
    doing: String,
) -> BoxStream<'static, Result<T, CallError>>
where
    T: Send + 'static,
    E: ProvideErrorMetadata + std::error::Error + Send + 'static,
    R: std::fmt::Debug + Send + 'static,
{
    futures::stream::poll_fn(poll_next)
        .map(move |page| page.map_err(|err| CallError::new(doing.clone(), &err)))
        .boxed()
}

/// Runs `attempt` again after each transient failure while `pause` gives a
/// wait: `pause(n)` is the wait before retry `n` (from 1), `None` to give up.
pub(super) async fn with_retries<T, F, Fut>(
    mut pause: impl FnMut(u32) -> Option<Duration>,
    mut attempt: F,
) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CallError>>,
{
    let mut retry = 0;
    loop {
        match attempt().await {
            Err(err) if err.error.is_transient() => {
                retry += 1;
                match pause(retry) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(err),
                }
            }
            done => return done,
        }
    }
}
