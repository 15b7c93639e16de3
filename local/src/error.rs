//! The test bed's errors: an invocation's ([`InvokeError`]), and the local
//! stack's and its streams' ([`BedError`], which holds DynamoDB Local's
//! [`LocalError`] and moto's [`MotoError`]).

use crate::dynamodb_local::LocalError;
use crate::moto::MotoError;
use serde_json::Value;
use std::time::Duration;

/// An invocation that gave no response: what the event sources (the
/// stream mapping, the HTTP gateway) see as a function error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvokeError {
    /// The runtime API no longer takes invocations (the stack is stopping).
    #[error("runtime API stopped")]
    RuntimeStopped,
    /// The function's process went away with the invocation in hand.
    #[error("the invocation was dropped")]
    InvocationDropped,
    /// No answer within the function's timeout (and a grace of 5 s).
    #[error("no answer within {0:?}")]
    NoAnswer(Duration),
    /// The function answered with an error (its `errorType` and
    /// `errorMessage`, as Lambda reports them; shown as JSON, a bare text as it is).
    #[error("{}", text_of(.0))]
    Function(Value),
    /// No local function has the ARN a state machine invokes.
    #[error("no local function {0}")]
    NoSuchFunction(String),
}

/// What setting up and running the local stack and its streams fails with.
#[derive(Debug, thiserror::Error)]
pub enum BedError {
    /// A call to DynamoDB Local or its streams failed (the SDK's error with its context).
    #[error("{0}")]
    Aws(String),
    /// The streams' GetRecords, sent over HTTP, failed or answered an error.
    #[error("{0}")]
    GetRecords(String),
    /// A part of the stack could not be set up: what, and why.
    #[error("{what}: {detail}")]
    Setup { what: String, detail: String },
    #[error(transparent)]
    DynamoDbLocal(#[from] LocalError),
    #[error(transparent)]
    Moto(#[from] MotoError),
    /// The local stack's command line.
    #[error("{0}")]
    Usage(String),
}

impl BedError {
    /// An SDK call's failure, with the SDK's context.
    pub fn aws(err: impl std::error::Error) -> Self {
        Self::Aws(aws_smithy_types::error::display::DisplayErrorContext(err).to_string())
    }

    pub fn setup(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Self::Setup {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
