//! Test bed for the end-to-end tests: the real DynamoDB Local, tables from
//! template.yaml, rows written with the SDK, the stream read as Lambda would.
//!
//! - `bed`: [`TestBed`] (the tables of one test on a shared DynamoDB Local,
//!   the functions wired as their main.rs wires them) and the setups the
//!   tests start from;
//! - `fixtures`: logical ids, the sample catalog, rows, dates;
//! - `api`: API Gateway events and the API functions' answers;
//! - `processes`: function binaries run as processes, their memory, the
//!   local stack;
//! - `permissions`: the DynamoDB permissions a client's calls need;
//! - `plan_stack`: the distributed plan's parts (moto, plan-chunk, the
//!   Step Functions stand-in) for `offers campaign plan --audience s3://...`;
//! - `bulk`: rows written with bare BatchWriteItem calls;
//! - `gate`: a relay that holds a process's calls of one operation after
//!   the first few (to kill it midway);
//! - `timing`: what the benches share (the redemption handler timed,
//!   offers as stored, percentiles).
//!
//! Everything is re-exported here: a test needs `use offers_integration_tests::*;`.

mod api;
mod bed;
mod bulk;
mod fixtures;
mod gate;
mod permissions;
mod plan_stack;
mod processes;
mod timing;

pub use api::*;
pub use bed::*;
pub use bulk::*;
pub use fixtures::*;
pub use gate::*;
pub use permissions::*;
pub use plan_stack::*;
pub use processes::*;
pub use timing::*;
