//! `offers campaign simulate`: the engine and the baselines on a synthetic
//! world with known rates (`offers_domain::selection::simulate`), same
//! users, same draws; cumulative reward and the ratio to the oracle's.

use crate::cli::SimulateArgs;
use crate::error::CliError;
use crate::output::say;
use offers_shared::domain::selection::simulate::{
    learning_curve, simulate, summary, write_world, SimPolicy, SimResult, Tuning, World,
    WorldConfig, WorldKind,
};
use std::io::{BufWriter, Write};
use std::time::Instant;

pub fn run(args: SimulateArgs) -> Result<(), CliError> {
    let started = Instant::now();
    let kind = WorldKind::parse(&args.world).ok_or_else(|| {
        CliError::Usage(format!(
            "--world must be segments, long-pool or shift; got {:?}",
            args.world
        ))
    })?;
    let mut tuning = Tuning::default();
    for setting in &args.settings {
        tuning.parse_setting(setting).map_err(CliError::Usage)?;
    }
    let world = World::new(WorldConfig {
        users: args.users,
        days: args.days,
        seed: args.seed,
        tuning,
        ..WorldConfig::of(kind)
    });
    let config = world.config.clone();
    let results = simulate(&world);
    if let Some(path) = &args.export {
        let io = CliError::Output;
        let mut out = BufWriter::new(std::fs::File::create(path).map_err(io)?);
        write_world(&world, &results, &mut out).map_err(io)?;
        out.flush().map_err(io)?;
    }
    let reward_of = |policy: SimPolicy, from: u64| {
        results
            .iter()
            .find(|result| result.policy == policy)
            .map_or(0, |result| result.reward_from(from))
            .max(1) as f64
    };
    let oracle = reward_of(SimPolicy::Oracle, 0);
    let last_fifth = config.last_fifth();
    let oracle_late = reward_of(SimPolicy::Oracle, last_fifth);
    let late = |result: &SimResult| result.reward_from(last_fifth) as f64 / oracle_late;
    if args.json {
        return say(summary(&world, &results));
    }
    say(format!(
        "world {}: {} offers, {} segments, 3 tiers; {} users over {} days, k {}, seed {}",
        kind.name(),
        world.offers(),
        config.segments,
        config.users,
        config.days,
        config.slots,
        config.seed
    ))?;
    say(format!(
        "{:<24} {:>10} {:>16} {:>10} {:>16}",
        "policy", "reward", "per 1,000 offers", "vs oracle", "last fifth vs"
    ))?;
    for result in &results {
        say(format!(
            "{:<24} {:>10} {:>16.2} {:>10.3} {:>16.3}",
            result.policy.name(),
            result.reward,
            1000.0 * result.reward as f64 / result.assigned.max(1) as f64,
            result.reward as f64 / oracle,
            late(result)
        ))?;
    }
    say(format!(
        "engine / oracle, day by day: {}",
        learning_curve(&results).join(" ")
    ))?;
    say(format!("{:.1} s", started.elapsed().as_secs_f64()))
}
