//! The plan file lives in the shared crate (`offers_shared::plan`), where
//! the plan-chunk function reads it too.

pub use offers_shared::plan::*;
