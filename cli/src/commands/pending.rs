//! `offers pending redrive`: pending rows made new INSERTs again, so that the
//! dispatcher handles them once more. For rows whose stream records Lambda
//! has given up on (they went to the on-failure destination): a failed
//! record writes nothing, so its row is still pending, but the mapping will
//! never deliver it again, and neither a MODIFY (filtered out) nor an
//! identical put (no stream record) would reach the dispatcher. A record
//! still being retried must not be redriven: it and the new INSERT would
//! make two offers.

use crate::aws::{Connection, Table};
use crate::cli::PendingRedriveArgs;
use crate::error::CliError;
use crate::output::say;
use crate::scan::{scan_each, text};
use crate::writer::Backoff;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// What became of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Redriven {
    /// Deleted and put back: a new INSERT.
    Again,
    /// Gone before we got to it (dispatched meanwhile): nothing to do.
    Gone,
    /// Deleted, but a newer row of the key arrived before the put: that row
    /// has its own INSERT, ours was not put back over it.
    Replaced,
}

pub async fn redrive(args: PendingRedriveArgs, connection: &Connection) -> Result<(), CliError> {
    if args.user_id.is_none() && !args.all {
        return Err(CliError::Invalid(
            "say which rows: --user USER_ID [--sort-key KEY ...], or --all".into(),
        ));
    }
    let table = connection.table_names().name(Table::Pending)?.to_owned();
    let client = connection.client().await?;
    let keys = chosen_keys(&client, &table, &args).await?;
    if args.dry_run {
        for (user_id, sort_key) in &keys {
            say(format!("would redrive userId={user_id} sortKey={sort_key}"))?;
        }
        return say(format!(
            "{} pending rows would be redriven (dry run)",
            keys.len()
        ));
    }
    let (mut again, mut gone, mut replaced) = (0, 0, 0);
    for (user_id, sort_key) in keys {
        match redrive_row(&client, &table, &user_id, &sort_key).await? {
            Redriven::Again => again += 1,
            Redriven::Gone => gone += 1,
            Redriven::Replaced => {
                replaced += 1;
                say(format!(
                    "userId={user_id} sortKey={sort_key}: a newer row took the key meanwhile; it was left as it is"
                ))?;
            }
        }
    }
    say(format!(
        "redriven {again}, already gone {gone}, replaced meanwhile {replaced}"
    ))
}

/// The keys of the rows asked for that are pending now.
async fn chosen_keys(
    client: &Client,
    table: &str,
    args: &PendingRedriveArgs,
) -> Result<Vec<(String, String)>, CliError> {
    let mut keys = Vec::new();
    let mut keep = |item: Item| {
        if let (Some(user_id), Some(sort_key)) = (text(&item, "userId"), text(&item, "sortKey")) {
            let wanted = args.sort_keys.is_empty() || args.sort_keys.iter().any(|k| k == sort_key);
            if wanted {
                keys.push((user_id.to_owned(), sort_key.to_owned()));
            }
        }
        Ok(())
    };
    match &args.user_id {
        None => scan_each(client, table, &["userId", "sortKey"], keep).await?,
        Some(user_id) => {
            let mut start = None;
            loop {
                let page = client
                    .query()
                    .table_name(table)
                    .key_condition_expression("userId = :user")
                    .expression_attribute_values(":user", AttributeValue::S(user_id.clone()))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|err| CliError::service(format!("querying {table}"), &err))?;
                for item in page.items.unwrap_or_default() {
                    keep(item)?;
                }
                start = page.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
        }
    }
    Ok(keys)
}

/// Deletes the row (keeping what was deleted) and puts exactly that back,
/// unless a newer row of the key arrived in between. Transient failures of
/// the put are retried; if it still fails, the row is printed so that it is
/// not lost, and the command stops.
async fn redrive_row(
    client: &Client,
    table: &str,
    user_id: &str,
    sort_key: &str,
) -> Result<Redriven, CliError> {
    let key: Item = HashMap::from([
        ("userId".to_owned(), AttributeValue::S(user_id.to_owned())),
        ("sortKey".to_owned(), AttributeValue::S(sort_key.to_owned())),
    ]);
    let deleted = client
        .delete_item()
        .table_name(table)
        .set_key(Some(key))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .map_err(|err| CliError::service(format!("deleting {user_id}/{sort_key}"), &err))?;
    let Some(row) = deleted.attributes.filter(|row| !row.is_empty()) else {
        return Ok(Redriven::Gone);
    };
    let backoff = Backoff::default();
    let mut rng = fastrand::Rng::new();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = client
            .put_item()
            .table_name(table)
            .set_item(Some(row.clone()))
            .condition_expression("attribute_not_exists(userId)")
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Redriven::Again),
            Err(err) => err,
        };
        if matches!(
            err.as_service_error(),
            Some(PutItemError::ConditionalCheckFailedException(_))
        ) {
            return Ok(Redriven::Replaced);
        }
        if attempt < backoff.max_attempts && offers_shared::dynamo::classify(&err).is_transient() {
            tokio::time::sleep(backoff.delay(attempt, &mut rng)).await;
            continue;
        }
        let row: serde_json::Value =
            serde_dynamo::from_item(row).unwrap_or(serde_json::Value::Null);
        eprintln!(
            "offers: this row was deleted and could not be put back; put it back by hand:\n{row}"
        );
        return Err(CliError::service(
            format!("putting {user_id}/{sort_key} back"),
            &err,
        ));
    }
}
