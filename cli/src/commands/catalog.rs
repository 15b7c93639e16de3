//! `offers catalog load FILE`: every item checked (links included) before
//! any write; then BatchWriteItem, as `assign` writes rows.

use crate::aws::{Connection, Table};
use crate::catalog_check::{check_items, check_links, linked_ids_not_in_file, Accepted};
use crate::cli::CatalogLoadArgs;
use crate::error::CliError;
use crate::input::read_catalog_file;
use crate::output::say;
use crate::writer::{write_all, Backoff, Chunks, LineItem};
use offers_shared::domain::CatalogEntry;
use offers_shared::dynamo::{CatalogTable, CATALOG_KEY};
use std::collections::HashMap;

pub async fn load(args: CatalogLoadArgs, connection: &Connection) -> Result<(), CliError> {
    let table = connection.table_names().name(Table::Catalog)?.to_owned();
    let (accepted, mut problems) = check_items(read_catalog_file(&args.file)?);
    let catalog = CatalogTable::new(connection.client().await?, table);

    let linked = linked_ids_not_in_file(&accepted);
    let stored = if linked.is_empty() {
        HashMap::new()
    } else {
        read_stored(&catalog, &linked).await?
    };
    problems.extend(check_links(&accepted, &stored));
    if !problems.is_empty() {
        problems.sort_by_key(|problem| problem.position);
        for problem in &problems {
            say(problem)?;
        }
        return Err(CliError::Invalid(format!(
            "{} problems in {}: nothing written",
            problems.len(),
            args.file.display()
        )));
    }

    let (offers, templates) = kinds(&accepted);
    if args.dry_run {
        say(format!(
            "{} items valid ({offers} config offers, {templates} offer templates); dry run: nothing written",
            accepted.len()
        ))?;
        return Ok(());
    }
    let mut items = Vec::with_capacity(accepted.len());
    for (index, entry) in accepted.iter().enumerate() {
        let item = serde_dynamo::to_item(&entry.item).map_err(|err| {
            CliError::Invalid(format!(
                "{} ({}): not a DynamoDB item: {err}",
                entry.position,
                entry.id()
            ))
        })?;
        items.push(LineItem {
            line: index as u64,
            item,
        });
    }
    let report = write_all(
        &catalog,
        Chunks::new(items.into_iter()),
        &CATALOG_KEY,
        &Backoff::default(),
        4,
        |_| {},
    )
    .await;
    for (index, reason) in &report.failed {
        if let Some(entry) = accepted.get(*index as usize) {
            say(format!(
                "{} ({}): not written: {reason}",
                entry.position,
                entry.id()
            ))?;
        }
    }
    say(format!(
        "written {} of {} items ({offers} config offers, {templates} offer templates) to {}, retried {}",
        report.written,
        accepted.len(),
        catalog.name(),
        report.retried
    ))?;
    if let Some(why) = report.stopped {
        return Err(CliError::Service(format!(
            "writing stopped, {} of {} catalog items not written: {why}",
            accepted.len() as u64 - report.written,
            accepted.len()
        )));
    }
    Ok(())
}

/// The linked entries already in the catalog table, read the way the
/// dispatcher reads them (BatchGetItem).
async fn read_stored(
    catalog: &CatalogTable,
    ids: &[String],
) -> Result<HashMap<String, CatalogEntry>, CliError> {
    catalog.read_entries(ids).await.map_err(|err| {
        CliError::Service(format!(
            "reading the catalog table {}: {err}",
            catalog.name()
        ))
    })
}

fn kinds(accepted: &[Accepted]) -> (usize, usize) {
    let offers = accepted
        .iter()
        .filter(|entry| matches!(entry.entry, CatalogEntry::ConfigOffer(_)))
        .count();
    (offers, accepted.len() - offers)
}
