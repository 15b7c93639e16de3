//! Paginated reads of whole tables: counts and projections.

use crate::error::CliError;
use crate::writer::Item;
use aws_sdk_dynamodb::types::Select;
use aws_sdk_dynamodb::Client;

/// Items of `table` (Scan, Select COUNT, every page).
pub async fn count(client: &Client, table: &str) -> Result<u64, CliError> {
    let mut total = 0u64;
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .select(Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|err| CliError::service(format!("counting the items of {table}"), &err))?;
        total += page.count().max(0) as u64;
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(total);
        }
    }
}

/// Calls `each` with every item of `table`, with only the `attributes`
/// named (all of them when empty).
pub async fn scan_each(
    client: &Client,
    table: &str,
    attributes: &[&str],
    mut each: impl FnMut(Item) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut start = None;
    loop {
        let mut request = client.scan().table_name(table);
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
        let page = request
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|err| CliError::service(format!("scanning {table}"), &err))?;
        for item in page.items.unwrap_or_default() {
            each(item)?;
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(());
        }
    }
}

/// Whether `table` exists (DescribeTable).
pub async fn table_exists(client: &Client, table: &str) -> Result<bool, CliError> {
    match client.describe_table().table_name(table).send().await {
        Ok(_) => Ok(true),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(err) => Err(CliError::service(format!("describing {table}"), &err)),
    }
}

/// An attribute's text (S), if it has one.
pub fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .map(String::as_str)
}
