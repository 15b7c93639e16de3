//! `offers campaign simulate`: the engine and the baselines on a synthetic
//! world with known rates (`offers_domain::selection::simulate`), same
//! users, same draws; cumulative reward and the ratio to the oracle's.

use crate::cli::SimulateArgs;
use crate::error::CliError;
use crate::output::say;
use offers_shared::domain::selection::simulate::{
    learning_curve, simulate, SimPolicy, World, WorldConfig,
};
use serde_json::json;
use std::time::Instant;

pub fn run(args: SimulateArgs) -> Result<(), CliError> {
    let started = Instant::now();
    let world = World::new(WorldConfig {
        users: args.users,
        days: args.days,
        seed: args.seed,
        ..WorldConfig::default()
    });
    let config = world.config.clone();
    let results = simulate(&world);
    let oracle = results
        .iter()
        .find(|result| result.policy == SimPolicy::Oracle)
        .map_or(0, |result| result.reward)
        .max(1) as f64;
    if args.json {
        let policies: Vec<_> = results
            .iter()
            .map(|result| {
                json!({"name": result.policy.name(), "reward": result.reward,
                       "assigned": result.assigned, "vsOracle": result.reward as f64 / oracle,
                       "daily": result.daily})
            })
            .collect();
        return say(json!({
            "world": {"offers": config.offers, "segments": config.segments, "users": config.users,
                      "days": config.days, "slots": config.slots, "seed": config.seed},
            "policies": policies
        }));
    }
    say(format!(
        "world: {} offers, {} segments (each its own best offer), 3 tiers; {} users over {} days, k {}, seed {}",
        config.offers, config.segments, config.users, config.days, config.slots, config.seed
    ))?;
    say(format!(
        "{:<24} {:>10} {:>16} {:>10}",
        "policy", "reward", "per 1,000 offers", "vs oracle"
    ))?;
    for result in &results {
        say(format!(
            "{:<24} {:>10} {:>16.2} {:>10.3}",
            result.policy.name(),
            result.reward,
            1000.0 * result.reward as f64 / result.assigned.max(1) as f64,
            result.reward as f64 / oracle
        ))?;
    }
    say(format!(
        "engine / oracle, day by day: {}",
        learning_curve(&results).join(" ")
    ))?;
    say(format!("{:.1} s", started.elapsed().as_secs_f64()))
}
