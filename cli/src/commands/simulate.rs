//! `offers campaign simulate`: the engine and the baselines on a synthetic
//! world with known rates (`offers_domain::selection::simulate`), same
//! users, same draws; cumulative reward and the ratio to the oracle's.
//! `--world behaviour` plays an always-on campaign visit by visit through
//! the chooser of the user-visits function (`offers_domain::behaviour_world`).

use crate::cli::SimulateArgs;
use crate::error::CliError;
use crate::output::say;
use offers_shared::domain::behaviour_world::{
    behaviour_summary, last_week_ratio, oracle_of, per_thousand, simulate_behaviour,
    BehaviourConfig, BehaviourWorld,
};
use offers_shared::domain::selection::simulate::{
    learning_curve, simulate, summary, write_world, SimPolicy, SimResult, Tuning, World,
    WorldConfig, WorldKind,
};
use std::io::{BufWriter, Write};
use std::time::Instant;

pub fn run(args: SimulateArgs) -> Result<(), CliError> {
    let started = Instant::now();
    let mut tuning = Tuning::default();
    for setting in &args.settings {
        tuning.parse_setting(setting).map_err(CliError::Usage)?;
    }
    if args.world == "behaviour" {
        return run_behaviour(&args, tuning, started);
    }
    let kind = WorldKind::parse(&args.world).ok_or_else(|| {
        CliError::Usage(format!(
            "--world must be segments, long-pool, shift or behaviour; got {:?}",
            args.world
        ))
    })?;
    let defaults = WorldConfig::of(kind);
    let world = World::new(WorldConfig {
        users: args.users.unwrap_or(defaults.users),
        days: args.days.unwrap_or(defaults.days),
        seed: args.seed,
        tuning,
        ..defaults
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

/// The behaviour world: each policy's visits, offers, redemptions, per
/// 1,000 offers, ratio to the oracle's over the run and its last week.
fn run_behaviour(args: &SimulateArgs, tuning: Tuning, started: Instant) -> Result<(), CliError> {
    if args.export.is_some() {
        return Err(CliError::Usage(
            "--export writes the segment worlds; the behaviour world has no export".to_owned(),
        ));
    }
    let defaults = BehaviourConfig::default();
    let world = BehaviourWorld::new(BehaviourConfig {
        users: args.users.unwrap_or(defaults.users),
        days: args.days.unwrap_or(defaults.days),
        seed: args.seed,
        tuning,
        ..defaults
    });
    let results = simulate_behaviour(&world);
    if args.json {
        return say(behaviour_summary(&world, &results));
    }
    let config = &world.config;
    say(format!(
        "world behaviour: {} offers, {} users visiting {} times over {} days \
         (mode, spend, time of day decide), always-on: 2 slots, a window of a day, \
         statistics read every simulated minute, seed {}",
        offers_shared::domain::behaviour_world::OFFERS,
        config.users,
        world.visits(),
        config.days,
        config.seed
    ))?;
    say(format!(
        "{:<26} {:>8} {:>8} {:>16} {:>10} {:>15}",
        "policy", "offers", "reward", "per 1,000 offers", "vs oracle", "last week vs"
    ))?;
    let oracle = oracle_of(&results);
    for result in &results {
        say(format!(
            "{:<26} {:>8} {:>8} {:>16.2} {:>10.3} {:>15.3}",
            result.policy.name(),
            result.assigned,
            result.reward,
            per_thousand(result),
            result.reward as f64 / oracle.reward.max(1) as f64,
            last_week_ratio(result, &oracle)
        ))?;
    }
    say(format!("{:.1} s", started.elapsed().as_secs_f64()))
}
