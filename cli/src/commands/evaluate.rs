//! `offers campaign evaluate --obd DIR`: the Open Bandit Dataset's logs
//! (`DIR/{random,bts}/<campaign>/<campaign>.csv`), the engine, uniform
//! random and most-popular replayed on the uniformly random log
//! (`offers_domain::selection::offline`), beside each logging policy's own
//! click rate.

use crate::cli::EvaluateArgs;
use crate::error::CliError;
use crate::input::read_error;
use crate::output::say;
use offers_shared::domain::selection::offline::{
    click_rate, estimate, weights, Estimate, LoggedRound, OfflineConfig, OfflinePolicy,
};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The user features of the log used as attributes (hashed categoricals).
const USER_FEATURES: [&str; 4] = [
    "user_feature_0",
    "user_feature_1",
    "user_feature_2",
    "user_feature_3",
];
/// Rounds between two learning steps of the replayed policies.
const BATCH: usize = 500;

/// The rounds of one log, sorted by time, and the number of items.
pub struct ObdLog {
    pub rounds: Vec<LoggedRound>,
    pub items: usize,
    pub positions: usize,
}

pub fn log_path(dir: &Path, policy: &str, campaign: &str) -> PathBuf {
    dir.join(policy)
        .join(campaign)
        .join(format!("{campaign}.csv"))
}

/// Reads one log: timestamp, item_id, position (1-based), click,
/// propensity_score and the user features.
pub fn read_log(path: &Path) -> Result<ObdLog, CliError> {
    let mut reader = csv::Reader::from_path(path).map_err(|err| match err.into_kind() {
        csv::ErrorKind::Io(io) => read_error(path, io),
        other => CliError::Invalid(format!("{}: {other:?}", path.display())),
    })?;
    let header = reader
        .headers()
        .map_err(|err| CliError::Invalid(format!("{}: {err}", path.display())))?
        .clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|cell| cell == name)
            .ok_or_else(|| CliError::Invalid(format!("{}: no column {name}", path.display())))
    };
    let (time, item, position, click, propensity) = (
        column("timestamp")?,
        column("item_id")?,
        column("position")?,
        column("click")?,
        column("propensity_score")?,
    );
    let features: Vec<usize> = USER_FEATURES
        .iter()
        .map(|name| column(name))
        .collect::<Result<_, _>>()?;
    let mut rows: Vec<(String, LoggedRound)> = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let bad =
            |what: &str| CliError::Invalid(format!("{}: line {line}: {what}", path.display()));
        let record = record.map_err(|err| bad(&err.to_string()))?;
        let cell = |at: usize| record.get(at).unwrap_or_default();
        let item: usize = cell(item)
            .parse()
            .map_err(|_| bad("item_id is not an integer"))?;
        let position: usize = cell(position)
            .parse()
            .map_err(|_| bad("position is not an integer"))?;
        let click = match cell(click) {
            "1" => true,
            "0" => false,
            _ => return Err(bad("click is not 0 or 1")),
        };
        let propensity: f64 = cell(propensity)
            .parse()
            .map_err(|_| bad("propensity_score is not a number"))?;
        if position == 0 || item > 10_000 || !(propensity > 0.0 && propensity <= 1.0) {
            return Err(bad("position, item_id or propensity_score out of range"));
        }
        let context = USER_FEATURES
            .iter()
            .zip(&features)
            .map(|(name, &at)| ((*name).to_owned(), cell(at).to_owned()))
            .collect();
        rows.push((
            cell(time).to_owned(),
            LoggedRound {
                item,
                position: position - 1,
                click,
                propensity,
                context,
            },
        ));
    }
    // The timestamps are ISO-8601 in one zone: text order is time order.
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let items = rows
        .iter()
        .map(|(_, round)| round.item + 1)
        .max()
        .unwrap_or(0);
    let positions = rows
        .iter()
        .map(|(_, round)| round.position + 1)
        .max()
        .unwrap_or(0);
    Ok(ObdLog {
        rounds: rows.into_iter().map(|(_, round)| round).collect(),
        items,
        positions,
    })
}

/// The estimates of every policy on the random log.
pub fn evaluate(log: &ObdLog, bootstrap: u32, seed: u64, draws: u32) -> Vec<Estimate> {
    let config = OfflineConfig {
        items: log.items,
        slots: log.positions,
        batch: BATCH,
        draws,
        bootstrap,
        seed,
    };
    OfflinePolicy::ALL
        .iter()
        .map(|&policy| {
            let w = weights(&log.rounds, &config, policy);
            estimate(&log.rounds, &w, policy, bootstrap, seed)
        })
        .collect()
}

pub fn run(args: EvaluateArgs) -> Result<(), CliError> {
    let random = read_log(&log_path(&args.obd, "random", &args.campaign))?;
    let bts = read_log(&log_path(&args.obd, "bts", &args.campaign))?;
    let estimates = evaluate(&random, args.bootstrap, args.seed, args.draws);
    let logged = [
        ("random", click_rate(&random.rounds)),
        ("bts", click_rate(&bts.rounds)),
    ];
    if args.json {
        let policies: Vec<_> = estimates
            .iter()
            .map(|e| {
                json!({"name": e.policy.name(), "ipw": e.ipw, "snipw": e.snipw,
                            "ci95": [e.ci95.0, e.ci95.1]})
            })
            .collect();
        let logged: Vec<_> = logged
            .iter()
            .map(|(name, rate)| json!({"name": name, "clickRate": rate}))
            .collect();
        return say(json!({"policies": policies, "logged": logged}));
    }
    say(format!(
        "Open Bandit Dataset, campaign {}: {} rounds of the uniformly random log, {} items, {} positions; learning every {BATCH} rounds",
        args.campaign,
        random.rounds.len(),
        random.items,
        random.positions
    ))?;
    say(format!(
        "{:<16} {:>8} {:>8} {:>20} {:>8}",
        "policy", "IPW", "SNIPW", "95% interval (IPW)", "matched"
    ))?;
    for e in &estimates {
        say(format!(
            "{:<16} {:>7.3}% {:>7.3}% {:>9.3}% - {:>6.3}% {:>8}",
            e.policy.name(),
            100.0 * e.ipw,
            100.0 * e.snipw,
            100.0 * e.ci95.0,
            100.0 * e.ci95.1,
            e.matched
        ))?;
    }
    for (name, rate) in logged {
        say(format!("logged {name:<9} click rate {:.3}%", 100.0 * rate))?;
    }
    Ok(())
}
