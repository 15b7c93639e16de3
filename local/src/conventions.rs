//! The local stack's conventions: they live in `offers_shared::local_conventions`
//! so that `offers --local` shares them without depending on this crate.

pub use offers_shared::local_conventions::*;
