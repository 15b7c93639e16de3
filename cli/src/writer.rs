//! The batch writer lives in the shared adapter (`offers_shared::dynamo::batch_write`),
//! where the campaign webhook uses it too.

pub use offers_shared::dynamo::batch_write::*;
