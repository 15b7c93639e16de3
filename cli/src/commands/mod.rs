//! One module per command.

pub mod assign;
pub mod catalog;
pub mod failures;
pub mod pending;
pub mod rejections;
pub mod report;
pub mod status;
pub mod transactions;
pub mod webhook;
