//! planChunk: the item processor of the distributed plan's map (template.yaml
//! `PlanStateMachine`): one batch of the audience, chosen for with the CLI's
//! engine and written with its row writer (`offers_shared::plan`).

pub mod config;
pub mod handler;

pub use config::PlanChunkConfig;
