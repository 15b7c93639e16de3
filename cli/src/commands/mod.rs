//! One module per command.

pub mod assign;
pub mod campaign;
pub mod catalog;
pub mod definitions;
pub mod distributed_plan;
pub mod evaluate;
pub mod failures;
pub mod pending;
pub mod rejections;
pub mod report;
pub mod simulate;
pub mod status;
pub mod transactions;
pub mod webhook;
