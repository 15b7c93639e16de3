//! The simulation alone, for benches on a busy machine: the same runs as
//! `offers campaign simulate --json` without building the CLI (and its AWS
//! SDK) in release. `cargo run --release -p offers-domain --example
//! simulate -- WORLD SEED USERS DAYS [--export FILE] [NAME=VALUE...]`
//! prints the summary as one JSON line (scripts/bench-vw.sh uses it).
//! WORLD `behaviour` plays the always-on campaign visit by visit
//! (`offers_domain::behaviour_world`; `--export` does not apply to it).

use offers_domain::behaviour_world::{
    behaviour_summary, simulate_behaviour, BehaviourConfig, BehaviourWorld,
};
use offers_domain::selection::simulate::{
    simulate, summary, write_world, Tuning, World, WorldConfig, WorldKind,
};
use std::io::Write;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, seed, users, days, rest @ ..] = args.as_slice() else {
        return Err("usage: simulate WORLD SEED USERS DAYS [--export FILE] [NAME=VALUE...]".into());
    };
    let number = |text: &str| {
        text.parse::<u64>()
            .map_err(|err| format!("{text:?}: {err}"))
    };
    let mut tuning = Tuning::default();
    let mut export = None;
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        if arg == "--export" {
            export = rest.next();
        } else {
            tuning.parse_setting(arg)?;
        }
    }
    if kind == "behaviour" {
        let world = BehaviourWorld::new(BehaviourConfig {
            seed: number(seed)?,
            users: number(users)?,
            days: number(days)?,
            tuning,
            ..BehaviourConfig::default()
        });
        println!("{}", behaviour_summary(&world, &simulate_behaviour(&world)));
        return Ok(());
    }
    let kind = WorldKind::parse(kind).ok_or(format!("unknown world {kind:?}"))?;
    let world = World::new(WorldConfig {
        seed: number(seed)?,
        users: number(users)?,
        days: number(days)?,
        tuning,
        ..WorldConfig::of(kind)
    });
    let results = simulate(&world);
    if let Some(path) = export {
        let file = std::fs::File::create(path).map_err(|err| err.to_string())?;
        let mut out = std::io::BufWriter::new(file);
        write_world(&world, &results, &mut out).map_err(|err| err.to_string())?;
        out.flush().map_err(|err| err.to_string())?;
    }
    println!("{}", summary(&world, &results));
    Ok(())
}
