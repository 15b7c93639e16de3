//! JSON logs, one object per line, with stable field names at the top level.

use tracing_subscriber::EnvFilter;

/// Initialises JSON logging. The level comes from `RUST_LOG`, else from
/// Lambda's `AWS_LAMBDA_LOG_LEVEL` (set by `LoggingConfig`), else `info`.
pub fn init_json_logging() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| {
            std::env::var("AWS_LAMBDA_LOG_LEVEL")
                .ok()
                .map(|level| level.to_lowercase())
        })
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    // Ignore the error of a second init (tests call handlers in one process).
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .try_init();
}
