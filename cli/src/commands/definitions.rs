//! `offers campaign put|list|pause|resume`: campaign definitions in
//! `CampaignsTable` (contract sections 13 and 14).

use crate::aws::{Connection, Table};
use crate::cli::{CampaignIdArgs, CampaignListArgs, CampaignPutArgs};
use crate::commands::campaign::read_pool_catalog;
use crate::error::CliError;
use crate::input::read_error;
use crate::output::say;
use crate::plan::check_pool;
use chrono::{DateTime, Duration, Utc};
use offers_shared::domain::campaign::{
    parse_definition, CampaignDefinition, CampaignStatus, FieldProblem, MAX_DEFINITION_BYTES,
};
use offers_shared::domain::dates::format_timestamp;
use offers_shared::domain::limits::{key_problem, MAX_ID_BYTES};
use offers_shared::dynamo::{CampaignsError, CampaignsTable, CatalogTable, StoredCampaign};
use serde_json::{json, Value};
use std::io::Read;

async fn campaigns_table(connection: &Connection) -> Result<CampaignsTable, CliError> {
    let name = connection.table_names().name(Table::Campaigns)?.to_owned();
    Ok(CampaignsTable::new(connection.client().await?, name))
}

/// Every problem on stderr, then exit code 1 naming the first.
pub fn refuse_definition(file: &str, problems: &[FieldProblem]) -> CliError {
    for problem in problems {
        eprintln!("{problem}");
    }
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    CliError::Invalid(format!(
        "{file}: the definition is not valid ({}): nothing stored",
        fields.join(", ")
    ))
}

impl From<CampaignsError> for CliError {
    fn from(err: CampaignsError) -> Self {
        match err {
            CampaignsError::Call(err) => err.into(),
            CampaignsError::Planned(_) => CliError::Invalid(err.to_string()),
            CampaignsError::Contended(_) | CampaignsError::Corrupt(..) => {
                CliError::Service(err.to_string())
            }
        }
    }
}

pub async fn put(args: CampaignPutArgs, connection: &Connection) -> Result<(), CliError> {
    let shown = args.file.display().to_string();
    // Bounded before it is read: a definition is at most 32 KiB.
    let mut text = String::new();
    std::fs::File::open(&args.file)
        .and_then(|file| {
            file.take(MAX_DEFINITION_BYTES as u64 + 1)
                .read_to_string(&mut text)
        })
        .map_err(|err| read_error(&args.file, err))?;
    let definition =
        parse_definition(&text).map_err(|problems| refuse_definition(&shown, &problems))?;
    let table = campaigns_table(connection).await?;
    let now = Utc::now();
    if definition.always_on.is_some() {
        check_always_on_pool(&definition, connection, now).await?;
    }
    let outcome = table.put_definition(&definition, now).await?;
    say(format!(
        "campaign {} ({}) stored as version {}{}",
        definition.campaign_id,
        definition.mode.as_str(),
        outcome.version,
        if outcome.replaced {
            format!(", replacing version {}", outcome.version - 1)
        } else {
            String::new()
        }
    ))
}

/// The pool as the dispatcher will see an always-on row: assigned at the
/// campaign's start (or now, if later), expiring `validDays` after.
async fn check_always_on_pool(
    definition: &CampaignDefinition,
    connection: &Connection,
    now: DateTime<Utc>,
) -> Result<(), CliError> {
    let Some(always_on) = &definition.always_on else {
        return Ok(());
    };
    let names = connection.table_names();
    let catalog = CatalogTable::new(connection.client().await?, names.name(Table::Catalog)?);
    let mut ids: Vec<String> = always_on
        .pool
        .iter()
        .flat_map(|offer| {
            std::iter::once(offer.offer_id.to_string()).chain(offer.template_id.clone())
        })
        .collect();
    ids.sort();
    ids.dedup();
    let entries = read_pool_catalog(&catalog, &ids).await?;
    let start = definition.start.map_or(now, |start| start.max(now));
    let days = i64::try_from(always_on.valid_days).unwrap_or(i64::MAX);
    let expiry = Duration::try_days(days)
        .and_then(|days| start.checked_add_signed(days))
        .unwrap_or(start);
    let dates = (format_timestamp(start), format_timestamp(expiry));
    check_pool(
        &definition.campaign_id,
        &always_on.pool,
        (&dates.0, &dates.1),
        &entries,
        now,
    )
    .map(|_| ())
    .map_err(|problems| {
        for problem in &problems {
            eprintln!("{problem}");
        }
        CliError::Invalid(format!(
            "pool: {} offers do not pass the catalog's checks: nothing stored",
            problems.len()
        ))
    })
}

/// What `list --json` shows of a campaign at `now`.
pub fn campaign_json(campaign: &StoredCampaign, now: DateTime<Utc>) -> Value {
    let status = CampaignStatus::at(campaign.start, campaign.end, campaign.paused, now);
    let mut view = json!({
        "campaignId": campaign.campaign_id,
        "mode": campaign.mode.as_str(),
        "status": status.as_str(),
        "version": campaign.version,
    });
    if let (Some(budget), Value::Object(view)) = (&campaign.budget, &mut view) {
        view.insert("budget".into(), budget.view(&campaign.used));
    }
    view
}

pub async fn list(args: CampaignListArgs, connection: &Connection) -> Result<(), CliError> {
    let table = campaigns_table(connection).await?;
    let (campaigns, unreadable) = table.list().await?;
    let now = Utc::now();
    let views: Vec<Value> = campaigns
        .iter()
        .map(|campaign| campaign_json(campaign, now))
        .collect();
    if unreadable > 0 {
        eprintln!(
            "warning: {unreadable} items of {} are not campaigns and were left out",
            table.name()
        );
    }
    if args.json {
        return say(Value::Array(views));
    }
    say(format!(
        "{:<36} {:<9} {:<9} {:>7}  budget (used/limit)",
        "campaignId", "mode", "status", "version"
    ))?;
    for view in &views {
        let budget = view["budget"]
            .as_object()
            .map(|limits| {
                limits
                    .iter()
                    .map(|(name, limit)| format!("{name} {}/{}", limit["used"], limit["limit"]))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_else(|| "-".into());
        say(format!(
            "{:<36} {:<9} {:<9} {:>7}  {budget}",
            view["campaignId"].as_str().unwrap_or_default(),
            view["mode"].as_str().unwrap_or_default(),
            view["status"].as_str().unwrap_or_default(),
            view["version"],
        ))?;
    }
    say(format!("{} campaigns", views.len()))
}

pub async fn set_paused(
    args: CampaignIdArgs,
    paused: bool,
    connection: &Connection,
) -> Result<(), CliError> {
    // Bounded before it becomes a key: DynamoDB would refuse it as a service error.
    if let Some(problem) = key_problem("the campaign id", &args.campaign, MAX_ID_BYTES) {
        return Err(CliError::Invalid(problem));
    }
    let table = campaigns_table(connection).await?;
    if !table.set_paused(&args.campaign, paused, Utc::now()).await? {
        return Err(CliError::Invalid(format!(
            "no campaign {} in {}",
            args.campaign,
            table.name()
        )));
    }
    say(format!(
        "campaign {} {}",
        args.campaign,
        if paused { "paused" } else { "resumed" }
    ))
}
