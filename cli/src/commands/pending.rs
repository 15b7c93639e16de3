//! `offers pending redrive`: pending rows made new INSERTs again, so that the
//! dispatcher handles them once more. For rows whose stream records Lambda
//! has given up on (they went to the on-failure destination): a failed
//! record writes nothing, so its row is still pending, but the mapping will
//! never deliver it again, and neither a MODIFY (filtered out) nor an
//! identical put (no stream record) would reach the dispatcher. A record
//! still being retried must not be redriven: it and the new INSERT would
//! make two offers. The redrive itself is the adapter's
//! (`offers_shared::dynamo::PendingTable::redrive`).

use crate::aws::{Connection, Table};
use crate::cli::PendingRedriveArgs;
use crate::error::CliError;
use crate::output::say;
use crate::writer::Backoff;
use futures::TryStreamExt;
use offers_shared::dynamo::{PendingKey, PendingTable, RedriveError, Redriven};

pub async fn redrive(args: PendingRedriveArgs, connection: &Connection) -> Result<(), CliError> {
    if args.user_id.is_none() && !args.all {
        return Err(CliError::Invalid(
            "say which rows: --user USER_ID [--sort-key KEY ...], or --all".into(),
        ));
    }
    let table = connection.table_names().name(Table::Pending)?.to_owned();
    let pending = PendingTable::new(connection.client().await?, table);
    let keys = chosen_keys(&pending, &args).await?;
    if args.dry_run {
        for PendingKey { user_id, sort_key } in &keys {
            say(format!("would redrive userId={user_id} sortKey={sort_key}"))?;
        }
        return say(format!(
            "{} pending rows would be redriven (dry run)",
            keys.len()
        ));
    }
    let backoff = Backoff::default();
    let mut rng = fastrand::Rng::new();
    let (mut again, mut gone, mut replaced) = (0, 0, 0);
    for key in keys {
        let pause = |retry| backoff.pause(retry, &mut rng);
        match pending.redrive(&key, pause).await {
            Ok(Redriven::Again) => again += 1,
            Ok(Redriven::Gone) => gone += 1,
            Ok(Redriven::Replaced) => {
                replaced += 1;
                say(format!(
                    "userId={} sortKey={}: a newer row took the key meanwhile; it was left as it is",
                    key.user_id, key.sort_key
                ))?;
            }
            Err(RedriveError::NotTaken(err)) => return Err(err.into()),
            Err(RedriveError::NotPutBack { row, error }) => {
                // The row is deleted: print it, so that it is not lost.
                let row: serde_json::Value =
                    serde_dynamo::from_item(row).unwrap_or(serde_json::Value::Null);
                eprintln!(
                    "offers: this row was deleted and could not be put back; put it back by hand:\n{row}"
                );
                return Err(error.into());
            }
        }
    }
    say(format!(
        "redriven {again}, already gone {gone}, replaced meanwhile {replaced}"
    ))
}

/// The keys of the rows asked for that are pending now.
async fn chosen_keys(
    pending: &PendingTable,
    args: &PendingRedriveArgs,
) -> Result<Vec<PendingKey>, CliError> {
    let keys = match &args.user_id {
        None => pending.all_keys(),
        Some(user_id) => pending.keys_of_user(user_id),
    };
    let wanted =
        |key: &PendingKey| args.sort_keys.is_empty() || args.sort_keys.contains(&key.sort_key);
    let keys = keys.try_filter(|key| std::future::ready(wanted(key)));
    Ok(keys.try_collect().await?)
}
