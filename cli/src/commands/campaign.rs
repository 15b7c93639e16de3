//! `offers campaign plan PLAN --audience FILE`: check the plan against the
//! catalog, read the statistics once, check the audience (pass 1), then
//! choose each user's offers and write them (pass 2). Nothing is written
//! unless every check passed.

use crate::audience::{check_audience, read_user};
use crate::aws::{Connection, Table};
use crate::cli::CampaignPlanArgs;
use crate::commands::definitions::refuse_definition;
use crate::error::CliError;
use crate::input::{open_rows, read_error, ReadError, RowFormat, RowReader};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::writer::{write_all, Backoff, Chunks, LineItem, WriteReport};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use offers_shared::domain::campaign::{
    planned_definition, CampaignDefinition, CampaignMode, Snapshot,
};
use offers_shared::domain::selection::history::utc_day;
use offers_shared::domain::selection::LearningCounter;
use offers_shared::domain::selection::{Engine, History, SelectionError};
use offers_shared::domain::CatalogEntry;
use offers_shared::dynamo::{
    CampaignsTable, CatalogTable, PendingTable, PlanWrite, SelectionStatsTable, StoredCampaign,
    PENDING_KEY,
};
use offers_shared::plan::rows::{Chooser, PlanRows, Tally};
use offers_shared::ports::SelectionStatsReader;
use serde_json::Map;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

/// Problems listed one by one; the rest are counted.
const SHOWN_PROBLEMS: usize = 100;

/// A line on stderr (stdout carries the rows in a dry run).
fn note(text: impl std::fmt::Display) {
    eprintln!("{text}");
}

fn refuse(what: &str, problems: &[String]) -> CliError {
    for problem in problems.iter().take(SHOWN_PROBLEMS) {
        note(problem);
    }
    if problems.len() > SHOWN_PROBLEMS {
        note(format!("... and {} more", problems.len() - SHOWN_PROBLEMS));
    }
    CliError::Plan(format!("{what}: nothing written"))
}

pub async fn plan(args: CampaignPlanArgs, connection: &Connection) -> Result<(), CliError> {
    if let Some(audience) = crate::commands::distributed_plan::S3Audience::parse(&args.audience)? {
        return crate::commands::distributed_plan::plan(args, audience, connection).await;
    }
    let started = Instant::now();
    let format = RowFormat::for_file(&args.audience, args.format)
        .map_err(|err| CliError::Plan(err.to_string()))?;
    let names = connection.table_names();
    let client = connection.client().await?;
    let CheckedPlan {
        plan,
        expiry,
        definition,
    } = check_plan(&args, &client, &names).await?;
    let writing = !(args.dry_run || args.out.is_some());
    // Without --dry-run or --out the definition is stored: its table is required.
    let campaigns = match names.name(Table::Campaigns) {
        Ok(name) => Some(CampaignsTable::new(client.clone(), name)),
        Err(err) if writing => return Err(err),
        Err(_) => None,
    };
    let fingerprint = audience_fingerprint(&args.audience)?;
    let stored = match &campaigns {
        Some(table) => table.get(&plan.campaign_id).await?,
        None => None,
    };
    let mut snapshot = plan_snapshot(
        &plan,
        &definition,
        stored.as_ref(),
        (&client, &names),
        &fingerprint,
        args.allow_cold,
    )
    .await?;

    let checked = check_audience(&args.audience, format, SHOWN_PROBLEMS)?;
    if checked.problems.count() > 0 {
        let lines = checked.problems.lines();
        return Err(refuse(
            &format!(
                "{} problems in the audience {}",
                checked.problems.count(),
                args.audience.display()
            ),
            &lines,
        ));
    }

    // The first write: the definition with the snapshot, before any row. A
    // rerun found it above; a run that raced this one finds it here.
    if let (true, Some(table)) = (writing, &campaigns) {
        snapshot = store_plan(table, stored, &definition, snapshot, &fingerprint).await?;
    }
    // Ages count from the snapshot's day: a rerun discounts as the first run did.
    let today = utc_day(snapshot.taken_at.timestamp());
    let history = history_of(&plan, &snapshot.counters, today)?;

    let engine =
        Engine::new(history, plan.config.clone()).map_err(|err| CliError::Plan(err.to_string()))?;
    note(format!(
        "plan {}: {} users, pool {}, k {}, holdout {}, seed {}, prior rate {:.4} (weight {}), {} cold offers",
        plan.campaign_id,
        checked.users,
        plan.pool.len(),
        plan.config.slots,
        plan.config.holdout,
        plan.config.seed,
        engine.prior().rate,
        engine.prior().weight,
        engine.cold().len()
    ));
    if !engine.interaction().is_empty() {
        let described: Vec<String> = engine
            .interaction()
            .iter()
            .map(|(name, z)| {
                let used = engine.attribute_use(*z);
                let role = if used >= 1.0 {
                    "ranks offers".to_owned()
                } else if used > 0.0 {
                    format!("ranks offers at weight {used:.2}: the interaction is not yet certain")
                } else {
                    "left out: scales every offer alike, as far as the statistics show".to_owned()
                };
                format!("{name} (z {z:.1}, {role})")
            })
            .collect();
        note(format!("attributes: {}", described.join("; ")));
    }
    let rows = PlanRows::new(&plan, expiry);
    let mut choices = Choices {
        reader: open_rows(&args.audience, format)?,
        chooser: Chooser::new(engine),
        read_failure: None,
    };

    if args.dry_run || args.out.is_some() {
        let out: Box<dyn Write> = match &args.out {
            Some(path) => Box::new(File::create(path).map_err(|err| read_error(path, err))?),
            None => Box::new(std::io::stdout().lock()),
        };
        let mut out = BufWriter::with_capacity(256 * 1024, out);
        let mut progress = Progress::new("choosing", Some(checked.users));
        let mut buffer = Vec::with_capacity(4096);
        while choices.next_user(&mut buffer, &rows).is_some() {
            out.write_all(&buffer).map_err(CliError::Output)?;
            progress.advance(1);
        }
        progress.finish();
        out.flush().map_err(CliError::Output)?;
        if let Some(err) = choices.read_failure.take() {
            return Err(read_error(&args.audience, err));
        }
        let whereto = args
            .out
            .as_deref()
            .map_or("stdout".to_owned(), |path: &Path| {
                path.display().to_string()
            });
        report_tally(&choices.chooser.tally, &plan);
        note(format!(
            "{} rows for {} users to {whereto}; {:.1} s; nothing written to the pending table",
            choices.chooser.tally.rows,
            choices.chooser.tally.users,
            started.elapsed().as_secs_f64()
        ));
        return Ok(());
    }

    let pending = PendingTable::new(client, names.name(Table::Pending)?);
    let mut progress = Progress::new("writing", Some(checked.users * plan.config.slots as u64));
    let items = std::iter::from_fn(|| choices.next_items(&rows)).flatten();
    let report: WriteReport = write_all(
        &pending,
        Chunks::new(items),
        &PENDING_KEY,
        &Backoff::default(),
        usize::from(args.concurrency),
        |chunk| progress.advance(chunk.written + chunk.failed.len() as u64),
    )
    .await;
    progress.finish();
    report_tally(&choices.chooser.tally, &plan);
    note(format!(
        "{} users, {} rows chosen, written {}, retried {}, failed {}; {:.1} s",
        choices.chooser.tally.users,
        choices.chooser.tally.rows,
        report.written,
        report.retried,
        report.failed.len(),
        started.elapsed().as_secs_f64()
    ));
    if let Some(err) = choices.read_failure.take() {
        return Err(read_error(&args.audience, err));
    }
    if let Some(why) = report.stopped {
        return Err(CliError::Service(format!(
            "writing stopped after {} rows (users after audience line {} not written): {why}",
            report.written,
            report.last_line_taken.unwrap_or(0)
        )));
    }
    Ok(())
}

/// A plan read, checked against the catalog, with its campaign definition.
pub(crate) struct CheckedPlan {
    pub plan: Plan,
    /// The rows' expiry (epoch seconds).
    pub expiry: i64,
    pub definition: CampaignDefinition,
}

/// Reads the plan and checks it: its own checks, the catalog's, and its
/// budget as any definition's (exit code 1).
pub(crate) async fn check_plan(
    args: &CampaignPlanArgs,
    client: &aws_sdk_dynamodb::Client,
    names: &crate::aws::TableNames,
) -> Result<CheckedPlan, CliError> {
    let text = std::fs::read_to_string(&args.plan).map_err(|err| read_error(&args.plan, err))?;
    let plan = Plan::parse(&text).map_err(|problems| refuse("the plan is not valid", &problems))?;
    let catalog = CatalogTable::new(client.clone(), names.name(Table::Catalog)?);
    let entries = read_pool_catalog(&catalog, &plan.catalog_ids()).await?;
    let expiry = plan
        .check_against_catalog(&entries, Utc::now())
        .map_err(|problems| refuse("the pool does not pass the catalog's checks", &problems))?;
    // A planned campaign's definition (section 13).
    let definition = planned_definition(&plan.campaign_id, &plan.document)
        .map_err(|problems| refuse_definition(&args.plan.display().to_string(), &problems))?;
    Ok(CheckedPlan {
        plan,
        expiry,
        definition,
    })
}

/// The statistics the plan chooses from: a rerun's stored snapshot (the
/// same plan and audience only), else the statistics read now, bounded.
pub(crate) async fn plan_snapshot(
    plan: &Plan,
    definition: &CampaignDefinition,
    stored: Option<&StoredCampaign>,
    (client, names): (&aws_sdk_dynamodb::Client, &crate::aws::TableNames),
    fingerprint: &str,
    allow_cold: bool,
) -> Result<Snapshot, CliError> {
    if let Some(stored) = stored {
        return rerun_snapshot(stored, definition, fingerprint);
    }
    let stats_table = names
        .name(Table::CampaignStats)
        .map(|name| SelectionStatsTable::new(client.clone(), name))
        .map_err(|err| err.to_string());
    let stats = match &stats_table {
        Ok(table) => Ok((table, table.name())),
        Err(why) => Err(why.clone()),
    };
    let counters = read_counters(plan, stats, allow_cold).await?;
    let (bounded, dropped) = Snapshot::bounded(counters, Utc::now());
    if dropped > 0 {
        note(format!(
            "warning: {dropped} attribute counters of the least assigned values left out of the statistics snapshot (bounded to {} KiB)",
            offers_shared::domain::campaign::MAX_SNAPSHOT_BYTES / 1_024
        ));
    }
    Ok(bounded)
}

/// The plan's first write: its definition with the snapshot, before any
/// row (a changed budget of a stored plan: its next version). Returns the
/// snapshot to choose from: a run that raced this one stored its own first.
pub(crate) async fn store_plan(
    table: &CampaignsTable,
    stored: Option<StoredCampaign>,
    definition: &CampaignDefinition,
    snapshot: Snapshot,
    fingerprint: &str,
) -> Result<Snapshot, CliError> {
    let id = &definition.campaign_id;
    match stored {
        Some(stored) if stored.budget != definition.budget => {
            let outcome = table.put_definition(definition, Utc::now()).await?;
            note(format!(
                "campaign {id}: budget changed, definition version {}",
                outcome.version
            ));
            Ok(snapshot)
        }
        Some(_) => Ok(snapshot),
        None => match table
            .create_plan(definition, &snapshot, fingerprint, Utc::now())
            .await?
        {
            PlanWrite::Created => {
                note(format!(
                    "campaign {id}: definition and statistics snapshot stored in {}",
                    table.name()
                ));
                Ok(snapshot)
            }
            PlanWrite::Existing(stored) => rerun_snapshot(&stored, definition, fingerprint),
        },
    }
}

/// The catalog items a pool names, and the templates its config offers
/// link to where the pool names none.
pub async fn read_pool_catalog(
    catalog: &CatalogTable,
    ids: &[String],
) -> Result<HashMap<String, CatalogEntry>, CliError> {
    let catalog_error =
        |err| CliError::Service(format!("reading the catalog ({}): {err}", catalog.name()));
    let mut entries = catalog.read_entries(ids).await.map_err(catalog_error)?;
    let linked: Vec<String> = entries
        .values()
        .filter_map(|entry| match entry {
            CatalogEntry::ConfigOffer(offer) => offer.template_id.clone(),
            _ => None,
        })
        .filter(|id| !entries.contains_key(id))
        .collect();
    if !linked.is_empty() {
        entries.extend(catalog.read_entries(&linked).await.map_err(catalog_error)?);
    }
    Ok(entries)
}

/// The pool's learning counters, read once through the port: `stats` is
/// the statistics table and its name, or why it is unknown. Missing or
/// unreadable statistics stop the plan unless `allow_cold`.
pub async fn read_counters<S: SelectionStatsReader>(
    plan: &Plan,
    stats: Result<(&S, &str), String>,
    allow_cold: bool,
) -> Result<Vec<LearningCounter>, CliError> {
    let read = match stats {
        Ok((stats, name)) => stats
            .learning_counters(&plan.offer_ids())
            .await
            .map_err(|err| format!("the statistics ({name}) cannot be read: {err}")),
        Err(why) => Err(format!("the statistics table is unknown: {why}")),
    };
    match read {
        Ok(read) => {
            if read.unreadable > 0 {
                note(format!(
                    "warning: {} items of the statistics table are not learning counters and were left out",
                    read.unreadable
                ));
            }
            if history_of(plan, &read.counters, 0)?.is_empty() {
                if !allow_cold {
                    return Err(CliError::Plan(
                        "no statistics for any offer of the pool (a new pool?): pass --allow-cold to choose with priors only".into(),
                    ));
                }
                note("no statistics for any offer of the pool: choosing with priors only (--allow-cold)");
            }
            Ok(read.counters)
        }
        Err(why) if allow_cold => {
            note(format!("{why}; choosing with priors only (--allow-cold)"));
            Ok(Vec::new())
        }
        Err(why) => Err(CliError::Service(format!(
            "{why}; pass --allow-cold to choose with priors only"
        ))),
    }
}

/// The history the engine chooses from (`offers_shared::plan::history_of`).
pub fn history_of(
    plan: &Plan,
    counters: &[LearningCounter],
    today: u32,
) -> Result<History, CliError> {
    offers_shared::plan::history_of(plan, counters, today)
        .map_err(|err: SelectionError| CliError::Plan(err.to_string()))
}

/// Both reads, for callers that choose from what the table holds now.
pub async fn read_history<S: SelectionStatsReader>(
    plan: &Plan,
    stats: Result<(&S, &str), String>,
    allow_cold: bool,
) -> Result<History, CliError> {
    let today = utc_day(Utc::now().timestamp());
    history_of(plan, &read_counters(plan, stats, allow_cold).await?, today)
}

/// A rerun of a stored plan: the same plan (its budget aside) and the same
/// audience choose from the stored snapshot, so that they write the same
/// rows. Anything else could rewrite an undispatched row of a user under
/// another assignment (the dispatcher ignores the MODIFY) and leave that
/// user short of k offers, or give one offer twice: refused.
fn rerun_snapshot(
    stored: &StoredCampaign,
    definition: &CampaignDefinition,
    fingerprint: &str,
) -> Result<Snapshot, CliError> {
    let id = &stored.campaign_id;
    if stored.mode != CampaignMode::Planned {
        return Err(CliError::Invalid(format!(
            "campaign {id} is stored as a {} campaign: a plan needs a campaignId of its own: nothing written",
            stored.mode.as_str()
        )));
    }
    if without_budget(&stored.definition) != without_budget(&definition.document) {
        return Err(CliError::Invalid(format!(
            "campaign {id} was planned with another plan (version {}): a rerun must be the same plan, only its budget may change; plan a new campaignId to choose again: nothing written",
            stored.version
        )));
    }
    if stored.audience_fingerprint.as_deref() != Some(fingerprint) {
        return Err(CliError::Invalid(format!(
            "the audience is not the one campaign {id} was planned for (its SHA-256 differs): a rerun must be of the same audience file; plan a new campaignId for other users: nothing written"
        )));
    }
    let snapshot = stored.snapshot.clone().ok_or_else(|| {
        CliError::Service(format!(
            "campaign {id} is stored without its statistics snapshot"
        ))
    })?;
    note(format!(
        "campaign {id} was planned before: choosing from its statistics snapshot of {} (same rows as then)",
        snapshot.taken_at_text()
    ));
    Ok(snapshot)
}

/// A definition as stored (through DynamoDB's number types), without its budget.
fn without_budget(document: &Map<String, Value>) -> Option<Value> {
    let mut document = document.clone();
    document.remove("budget");
    let stored: AttributeValue = serde_dynamo::to_attribute_value(&document).ok()?;
    serde_dynamo::from_attribute_value(stored).ok()
}

/// The audience file's SHA-256, streamed.
fn audience_fingerprint(path: &Path) -> Result<String, CliError> {
    let mut file = File::open(path).map_err(|err| read_error(path, err))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read =
            std::io::Read::read(&mut file, &mut buffer).map_err(|err| read_error(path, err))?;
        if read == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..read]);
    }
}

/// Pass 2: each user of the audience, chosen for.
struct Choices {
    reader: RowReader,
    chooser: Chooser,
    read_failure: Option<std::io::Error>,
}

impl Choices {
    /// The next user's rows as JSON Lines into `buffer`; `None` at the end.
    fn next_user(&mut self, buffer: &mut Vec<u8>, rows: &PlanRows) -> Option<u64> {
        buffer.clear();
        let row = self.next_row()?;
        if let Ok(user) = read_user(&row.row) {
            self.chooser.json_lines(rows, &user, buffer);
        }
        Some(row.line)
    }

    /// The next user's rows as DynamoDB items.
    fn next_items(&mut self, rows: &PlanRows) -> Option<Vec<LineItem>> {
        let row = self.next_row()?;
        let Ok(user) = read_user(&row.row) else {
            return Some(Vec::new());
        };
        Some(self.chooser.items(rows, &user, row.line))
    }

    fn next_row(&mut self) -> Option<crate::input::InputRow> {
        loop {
            match self.reader.next()? {
                Ok(row) => return Some(row),
                // Checked in pass 1: a row unreadable now means the file changed.
                Err(ReadError::Row { .. }) => continue,
                Err(ReadError::Io(err)) => {
                    self.read_failure = Some(err);
                    return None;
                }
            }
        }
    }
}

/// The plan's summary on stderr.
fn report_tally(tally: &Tally, plan: &Plan) {
    for line in tally.summary(plan) {
        note(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use offers_shared::domain::selection::{Counts, LearningCounter, Scope};
    use offers_shared::error::StoreError;
    use offers_shared::fakes::MemorySelectionStats;

    fn plan() -> Plan {
        Plan::parse(include_str!("../../../events/sample-plan.json")).expect("plan")
    }

    fn counter(offer: &str) -> LearningCounter {
        LearningCounter {
            offer_id: offer.into(),
            scope: Scope::Overall,
            day: None,
            counts: Counts {
                assigned: 100,
                clicked: 10,
                redeemed: 5,
            },
        }
    }

    #[tokio::test]
    async fn statistics_are_read_once_through_the_port() {
        let stats = MemorySelectionStats {
            counters: vec![counter("co-fries"), counter("not-in-the-pool")],
            failure: None,
        };
        let history = read_history(&plan(), Ok((&stats, "stats")), false)
            .await
            .expect("history");
        assert_eq!(history.overall(0).assigned, 100.0);
        assert_eq!(history.overall(1).assigned, 0.0);
    }

    #[tokio::test]
    async fn missing_or_unreadable_statistics_need_allow_cold() {
        let empty = MemorySelectionStats::default();
        let err = read_history(&plan(), Ok((&empty, "stats")), false)
            .await
            .expect_err("cold");
        assert_eq!(err.exit_code(), 2);
        assert!(read_history(&plan(), Ok((&empty, "stats")), true)
            .await
            .is_ok());
        let broken = MemorySelectionStats {
            counters: vec![counter("co-fries")],
            failure: Some(StoreError::Unavailable("down".into())),
        };
        let err = read_history(&plan(), Ok((&broken, "stats")), false)
            .await
            .expect_err("down");
        assert_eq!(err.exit_code(), 3);
        assert!(err.to_string().contains("--allow-cold"), "{err}");
        let history = read_history(&plan(), Ok((&broken, "stats")), true)
            .await
            .expect("cold");
        assert!(history.is_empty());
        let unknown: Result<(&MemorySelectionStats, &str), String> = Err("no name".into());
        assert_eq!(
            read_history(&plan(), unknown, false)
                .await
                .expect_err("unknown")
                .exit_code(),
            3
        );
    }
}
