//! JSON logs, one object per line, with stable field names at the top level.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Initialises JSON logging. The level comes from `RUST_LOG`, else from
/// Lambda's `AWS_LAMBDA_LOG_LEVEL` (set by `LoggingConfig`), else `info`.
pub fn init_json_logging() {
    let filter = log_filter(
        std::env::var("RUST_LOG").ok(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok(),
    );
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        // Every level here; `filter` decides.
        .with_max_level(LevelFilter::TRACE)
        .finish()
        .with(filter);
    // Ignore the error of a second init (tests call handlers in one process).
    let _ = subscriber.try_init();
}

/// The filter of `RUST_LOG` (directives as `warn` or `info,offers_shared=debug`:
/// levels by target, as EnvFilter reads them, without its span and field
/// filters, whose regex engine (regex-automata, regex-syntax) is about 230 KiB
/// of each binary), else of Lambda's level name; `info` when neither is set
/// or the directives cannot be read.
fn log_filter(rust_log: Option<String>, lambda_level: Option<String>) -> Targets {
    rust_log
        .or_else(|| lambda_level.map(|level| level.to_lowercase()))
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_level(filter: &Targets) -> Option<LevelFilter> {
        filter.default_level()
    }

    #[test]
    fn rust_log_then_lambda_level_then_info() {
        let some = |text: &str| Some(text.to_owned());
        assert_eq!(
            default_level(&log_filter(some("warn"), some("DEBUG"))),
            Some(LevelFilter::WARN)
        );
        assert_eq!(
            default_level(&log_filter(None, some("DEBUG"))),
            Some(LevelFilter::DEBUG)
        );
        assert_eq!(
            default_level(&log_filter(some("a=b=c"), some("WARN"))),
            Some(LevelFilter::INFO)
        );
        assert_eq!(
            default_level(&log_filter(None, None)),
            Some(LevelFilter::INFO)
        );
        let by_target = log_filter(some("error,offers_shared=debug"), None);
        assert_eq!(default_level(&by_target), Some(LevelFilter::ERROR));
        assert!(by_target.would_enable("offers_shared::dispatch", &tracing::Level::DEBUG));
        assert!(!by_target.would_enable("aws_smithy_runtime", &tracing::Level::WARN));
    }
}
