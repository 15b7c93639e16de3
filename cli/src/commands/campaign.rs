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
use offers_shared::domain::assignment_ids::for_planned_rank;
use offers_shared::domain::campaign::{
    planned_definition, CampaignDefinition, CampaignMode, Snapshot,
};
use offers_shared::domain::selection::history::{date_undated, utc_day};
use offers_shared::domain::selection::LearningCounter;
use offers_shared::domain::selection::{
    Engine, History, Pick, SelectionError, SelectionRecord, HOLDOUT_POLICY, POLICY,
};
use offers_shared::domain::CatalogEntry;
use offers_shared::dynamo::{
    CampaignsTable, CatalogTable, Item, PendingTable, PlanWrite, SelectionStatsTable,
    StoredCampaign, PENDING_KEY,
};
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
    let started = Instant::now();
    let text = std::fs::read_to_string(&args.plan).map_err(|err| read_error(&args.plan, err))?;
    let plan = Plan::parse(&text).map_err(|problems| refuse("the plan is not valid", &problems))?;
    let format = RowFormat::for_file(&args.audience, args.format)
        .map_err(|err| CliError::Plan(err.to_string()))?;

    let names = connection.table_names();
    let client = connection.client().await?;
    let catalog = CatalogTable::new(client.clone(), names.name(Table::Catalog)?);
    let entries = read_pool_catalog(&catalog, &plan.catalog_ids()).await?;
    let expiry = plan
        .check_against_catalog(&entries, Utc::now())
        .map_err(|problems| refuse("the pool does not pass the catalog's checks", &problems))?;

    // A planned campaign's definition (section 13): its budget is checked
    // as any definition's (exit code 1).
    let definition = planned_definition(&plan.campaign_id, &plan.document)
        .map_err(|problems| refuse_definition(&args.plan.display().to_string(), &problems))?;
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
    let mut snapshot = match &stored {
        Some(stored) => rerun_snapshot(stored, &definition, &fingerprint)?,
        None => {
            let stats_table = names
                .name(Table::CampaignStats)
                .map(|name| SelectionStatsTable::new(client.clone(), name))
                .map_err(|err| err.to_string());
            let stats = match &stats_table {
                Ok(table) => Ok((table, table.name())),
                Err(why) => Err(why.clone()),
            };
            let counters = read_counters(&plan, stats, args.allow_cold).await?;
            let (bounded, dropped) = Snapshot::bounded(counters, Utc::now());
            if dropped > 0 {
                note(format!(
                    "warning: {dropped} attribute counters of the least assigned values left out of the statistics snapshot (bounded to {} KiB)",
                    offers_shared::domain::campaign::MAX_SNAPSHOT_BYTES / 1_024
                ));
            }
            bounded
        }
    };

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
        match stored {
            Some(stored) if stored.budget != definition.budget => {
                let outcome = table.put_definition(&definition, Utc::now()).await?;
                note(format!(
                    "campaign {}: budget changed, definition version {}",
                    plan.campaign_id, outcome.version
                ));
            }
            Some(_) => {}
            None => match table
                .create_plan(&definition, &snapshot, &fingerprint, Utc::now())
                .await?
            {
                PlanWrite::Created => note(format!(
                    "campaign {}: definition and statistics snapshot stored in {}",
                    plan.campaign_id,
                    table.name()
                )),
                PlanWrite::Existing(stored) => {
                    snapshot = rerun_snapshot(&stored, &definition, &fingerprint)?;
                }
            },
        }
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
        engine,
        picks: Vec::with_capacity(plan.config.slots),
        tally: Tally::new(plan.pool.len()),
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
        choices.tally.report(&plan);
        note(format!(
            "{} rows for {} users to {whereto}; {:.1} s; nothing written to the pending table",
            choices.tally.rows,
            choices.tally.users,
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
    choices.tally.report(&plan);
    note(format!(
        "{} users, {} rows chosen, written {}, retried {}, failed {}; {:.1} s",
        choices.tally.users,
        choices.tally.rows,
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

/// The history the engine chooses from: the counters of the pool's offers,
/// each day's discounted by its age on `today` (a UTC day) under the plan's
/// half-life; undated (all-time) counters, kept before counters were dated,
/// as one bucket of the day before the offer's oldest dated one.
pub fn history_of(
    plan: &Plan,
    counters: &[LearningCounter],
    today: u32,
) -> Result<History, CliError> {
    let mut history = History::new(plan.offer_ids())
        .map_err(|err: SelectionError| CliError::Plan(err.to_string()))?;
    let mut counters = counters.to_vec();
    date_undated(&mut counters);
    for counter in &counters {
        history.add_dated(counter, today, plan.config.half_life);
    }
    Ok(history)
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

/// What each row of an offer has in common, prepared once.
struct PlanRows {
    /// The row's JSON after `userId`, `rank` and `selection`: `,"sortKey":...}\n`.
    json_tails: Vec<String>,
    items: Vec<Item>,
    /// Each row's assignmentId is of (campaign, user, rank) (section 2).
    campaign_id: String,
}

impl PlanRows {
    fn new(plan: &Plan, ttl: i64) -> Self {
        let mut json_tails = Vec::with_capacity(plan.pool.len());
        let mut items = Vec::with_capacity(plan.pool.len());
        for offer in &plan.pool {
            let mut row = plan.sample_row(offer, "");
            row.remove("userId");
            row.insert("ttl".into(), Value::from(ttl));
            let text = Value::Object(row.clone()).to_string();
            // `{...}` without its opening brace, after a comma.
            json_tails.push(format!(",{}\n", &text[1..]));
            let item: Item = serde_dynamo::to_item(&row).unwrap_or_default();
            items.push(item);
        }
        Self {
            json_tails,
            items,
            campaign_id: plan.campaign_id.clone(),
        }
    }
}

/// Pass 2: each user of the audience, chosen for.
struct Choices {
    reader: RowReader,
    engine: Engine,
    picks: Vec<Pick>,
    tally: Tally,
    read_failure: Option<std::io::Error>,
}

impl Choices {
    /// The next user's rows as JSON Lines into `buffer`; `None` at the end.
    fn next_user(&mut self, buffer: &mut Vec<u8>, rows: &PlanRows) -> Option<u64> {
        buffer.clear();
        let row = self.next_row()?;
        let Ok(user) = read_user(&row.row) else {
            return Some(row.line);
        };
        let holdout = self.engine.choose_into(
            user.user_id,
            user.attributes.iter().copied(),
            &mut self.picks,
        );
        self.tally.count(holdout, &self.picks);
        let user_id = serde_json::to_string(user.user_id).unwrap_or_default();
        let context = context_json(&user.attributes);
        let policy = if holdout { HOLDOUT_POLICY } else { POLICY };
        for pick in &self.picks {
            let _ = write!(
                buffer,
                "{{\"userId\":{user_id},\"rank\":{},\"assignmentId\":\"{}\",\"selection\":{{\"policy\":\"{policy}\",\"propensity\":{},\"holdout\":{holdout},\"context\":{context}}}",
                pick.rank,
                for_planned_rank(&rows.campaign_id, user.user_id, pick.rank),
                serde_json::Number::from_f64(pick.propensity).map_or("1".into(), |n| n.to_string()),
            );
            buffer.extend_from_slice(rows.json_tails[pick.offer].as_bytes());
        }
        Some(row.line)
    }

    /// The next user's rows as DynamoDB items.
    fn next_items(&mut self, rows: &PlanRows) -> Option<Vec<LineItem>> {
        let row = self.next_row()?;
        let Ok(user) = read_user(&row.row) else {
            return Some(Vec::new());
        };
        let holdout = self.engine.choose_into(
            user.user_id,
            user.attributes.iter().copied(),
            &mut self.picks,
        );
        self.tally.count(holdout, &self.picks);
        let mut selection = SelectionRecord {
            policy: if holdout { HOLDOUT_POLICY } else { POLICY }.to_owned(),
            propensity: 1.0,
            holdout,
            context: user
                .attributes
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        };
        Some(
            self.picks
                .iter()
                .map(|pick| {
                    let mut item = rows.items[pick.offer].clone();
                    item.insert("userId".into(), AttributeValue::S(user.user_id.to_owned()));
                    item.insert("rank".into(), AttributeValue::N(pick.rank.to_string()));
                    item.insert(
                        "assignmentId".into(),
                        AttributeValue::S(for_planned_rank(
                            &rows.campaign_id,
                            user.user_id,
                            pick.rank,
                        )),
                    );
                    selection.propensity = pick.propensity;
                    // Texts, a number and a bool: serde_dynamo cannot fail on them.
                    if let Ok(record) = serde_dynamo::to_attribute_value(&selection) {
                        item.insert("selection".into(), record);
                    }
                    LineItem {
                        line: row.line,
                        item,
                    }
                })
                .collect(),
        )
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

/// `{"name":"value",...}` of sorted attributes.
fn context_json(attributes: &[(&str, &str)]) -> String {
    let mut text = String::with_capacity(16 + attributes.len() * 24);
    text.push('{');
    for (index, (name, value)) in attributes.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push_str(&serde_json::to_string(name).unwrap_or_default());
        text.push(':');
        text.push_str(&serde_json::to_string(value).unwrap_or_default());
    }
    text.push('}');
    text
}

/// What the plan chose, for its summary.
struct Tally {
    users: u64,
    holdout: u64,
    rows: u64,
    first: Vec<u64>,
}

impl Tally {
    fn new(pool: usize) -> Self {
        Self {
            users: 0,
            holdout: 0,
            rows: 0,
            first: vec![0; pool],
        }
    }

    fn count(&mut self, holdout: bool, picks: &[Pick]) {
        self.users += 1;
        self.holdout += u64::from(holdout);
        self.rows += picks.len() as u64;
        if let Some(first) = picks.first() {
            self.first[first.offer] += 1;
        }
    }

    fn report(&self, plan: &Plan) {
        note(format!(
            "users {}, holdout {} ({:.1}%), rows {}",
            self.users,
            self.holdout,
            100.0 * self.holdout as f64 / self.users.max(1) as f64,
            self.rows
        ));
        let mut top: Vec<(usize, u64)> = self.first.iter().copied().enumerate().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let shown: Vec<String> = top
            .iter()
            .take(5)
            .filter(|(_, count)| *count > 0)
            .map(|(offer, count)| format!("{} {count}", plan.pool[*offer].offer_id))
            .collect();
        note(format!("most often first: {}", shown.join(", ")));
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
