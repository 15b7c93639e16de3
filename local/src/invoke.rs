//! What the event sources (the stream mapping, the HTTP gateway) need of a
//! function, and what a local function gives: one invocation with one event.

use crate::error::InvokeError;
use serde_json::Value;
use std::future::Future;

/// Invokes the function with one event. `Err` is a function error (an
/// error response, a crash, a timeout): the whole batch failed.
pub trait Invoke: Send + Sync {
    fn invoke(&self, event: Value) -> impl Future<Output = Result<Value, InvokeError>> + Send;
}
