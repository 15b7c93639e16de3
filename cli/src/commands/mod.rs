//! One module per command.

pub mod assign;
pub mod catalog;
pub mod failures;
pub mod pending;
pub mod rejections;
pub mod status;
pub mod webhook;
