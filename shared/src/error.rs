//! Errors of the storage side, classified for the edges: retry or give up.

/// A failure talking to the store. Every variant but `Corrupt` and `Refused`
/// is transient: the same request may succeed later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the store is throttling requests: {0}")]
    Throttled(String),
    #[error("the store did not answer in time: {0}")]
    Timeout(String),
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Another request was changing the same item; affects that item only.
    #[error("the item was being changed concurrently: {0}")]
    Conflict(String),
    #[error("the store refused the request: {0}")]
    Refused(String),
    #[error("a stored item is corrupt: {0}")]
    Corrupt(String),
    /// The function was not given this table (a wiring mistake, not input).
    #[error("no {0} table is configured for this function")]
    Unconfigured(&'static str),
}

impl StoreError {
    /// Whether retrying later can help.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Throttled(_)
                | StoreError::Timeout(_)
                | StoreError::Unavailable(_)
                | StoreError::Conflict(_)
        )
    }

    /// Whether the store as a whole looks down (no answer, or a server
    /// error), as opposed to one item or partition having trouble
    /// (a conflict, a throttled hot key).
    pub fn is_outage(&self) -> bool {
        matches!(self, StoreError::Timeout(_) | StoreError::Unavailable(_))
    }

    /// What the store said, without the kind's words.
    pub fn detail(&self) -> &str {
        match self {
            StoreError::Throttled(detail)
            | StoreError::Timeout(detail)
            | StoreError::Unavailable(detail)
            | StoreError::Conflict(detail)
            | StoreError::Refused(detail)
            | StoreError::Corrupt(detail) => detail,
            StoreError::Unconfigured(table) => table,
        }
    }

    /// A stable, short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Throttled(_) => "throttled",
            StoreError::Timeout(_) => "timeout",
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Conflict(_) => "conflict",
            StoreError::Refused(_) => "refused",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::Unconfigured(_) => "unconfigured",
        }
    }
}

/// A configuration problem found at init.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name}={value:?} is invalid: expected {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}
