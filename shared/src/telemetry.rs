//! JSON logs, one object per line, with stable field names at the top level.
//!
//! Every line also carries what Datadog correlates on: `service`, `env` and
//! `version` (from `DD_SERVICE`, `DD_ENV`, `DD_VERSION`, when set: template.yaml
//! sets them on a Datadog stage) and, inside an invocation, `request_id` (the
//! Lambda request id of the span lambda_runtime opens for each invocation).

use serde_json::json;
use std::fmt::Write as _;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The span lambda_runtime opens around each invocation (field `requestId`).
pub const INVOCATION_SPAN: &str = "Lambda runtime invoke";
/// Its target: kept enabled at any log level, so that `request_id` is on
/// warnings and errors too.
const INVOCATION_SPAN_TARGET: &str = "lambda_runtime::layers::trace";

/// Initialises JSON logging. The level comes from `RUST_LOG`, else from
/// Lambda's `AWS_LAMBDA_LOG_LEVEL` (set by `LoggingConfig`), else `info`.
pub fn init_json_logging() {
    let filter = log_filter(
        std::env::var("RUST_LOG").ok(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok(),
    );
    let fields = CorrelationFields::from_env(|name| std::env::var(name).ok());
    // Ignore the error of a second init (tests call handlers in one process).
    let _ = json_subscriber(filter, fields, std::io::stdout).try_init();
}

/// The subscriber: JSON lines to `writer`, filtered by `filter`, each with
/// the correlation fields.
fn json_subscriber<W>(
    filter: Targets,
    fields: CorrelationFields,
    writer: W,
) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let json = tracing_subscriber::fmt::format()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false);
    let format = Correlated {
        inner: json,
        prefix: fields.prefix(),
    };
    tracing_subscriber::registry()
        .with(RequestIdLayer)
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .event_format(format)
                .with_writer(writer),
        )
        .with(filter.with_target(INVOCATION_SPAN_TARGET, LevelFilter::INFO))
}

/// `service`, `env`, `version`: the ones set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorrelationFields(Vec<(&'static str, String)>);

impl CorrelationFields {
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Self {
        Self(
            [
                ("service", "DD_SERVICE"),
                ("env", "DD_ENV"),
                ("version", "DD_VERSION"),
            ]
            .into_iter()
            .filter_map(|(field, variable)| {
                lookup(variable)
                    .filter(|value| !value.trim().is_empty())
                    .map(|value| (field, value))
            })
            .collect(),
        )
    }

    /// The fields as JSON members, each followed by a comma.
    fn prefix(&self) -> String {
        self.0
            .iter()
            .fold(String::new(), |mut prefix, (field, value)| {
                let _ = write!(prefix, "\"{field}\":{},", json!(value));
                prefix
            })
    }
}

/// The request id of an invocation, kept in its span's extensions.
struct RequestId(String);

/// Reads `requestId` from each invocation span as it opens.
struct RequestIdLayer;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for RequestIdLayer {
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        if attributes.metadata().name() != INVOCATION_SPAN {
            return;
        }
        let mut visitor = RequestIdVisitor(None);
        attributes.record(&mut visitor);
        if let (Some(request_id), Some(span)) = (visitor.0, context.span(id)) {
            span.extensions_mut().insert(RequestId(request_id));
        }
    }
}

struct RequestIdVisitor(Option<String>);

impl Visit for RequestIdVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "requestId" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "requestId" {
            self.0 = Some(format!("{value:?}").trim_matches('"').to_owned());
        }
    }
}

/// The JSON format, with the correlation fields and the request id first.
struct Correlated<F> {
    inner: F,
    prefix: String,
}

impl<S, N, F> FormatEvent<S, N> for Correlated<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let request_id = context.event_scope().and_then(|scope| {
            scope
                .into_iter()
                .find_map(|span| span.extensions().get::<RequestId>().map(|id| id.0.clone()))
        });
        if self.prefix.is_empty() && request_id.is_none() {
            return self.inner.format_event(context, writer, event);
        }
        let mut line = String::new();
        self.inner
            .format_event(context, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => {
                writer.write_char('{')?;
                writer.write_str(&self.prefix)?;
                if let Some(id) = request_id {
                    write!(writer, "\"request_id\":{},", json!(id))?;
                }
                writer.write_str(rest)
            }
            None => writer.write_str(&line),
        }
    }
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

    /// Captures what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut buffer) = self.0.lock() {
                buffer.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    fn lines_logged(
        level: &str,
        fields: CorrelationFields,
        log: impl FnOnce(),
    ) -> Vec<serde_json::Value> {
        let captured = Captured::default();
        let subscriber = json_subscriber(
            log_filter(Some(level.into()), None),
            fields,
            captured.clone(),
        );
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(captured.0.lock().map(|b| b.clone()).unwrap_or_default())
            .expect("utf-8");
        text.lines()
            .map(|line| serde_json::from_str(line).expect("each line is JSON"))
            .collect()
    }

    #[test]
    fn every_line_carries_service_env_version_and_the_request_id() {
        let fields = CorrelationFields::from_env(|name| match name {
            "DD_SERVICE" => Some("personalized-offers".into()),
            "DD_ENV" => Some("prod".into()),
            "DD_VERSION" => Some("1.2.3".into()),
            _ => None,
        });
        // At WARN, as a stage may run: the invocation span is still read.
        let lines = lines_logged("warn", fields, || {
            let span = tracing::info_span!(target: "lambda_runtime::layers::trace", "Lambda runtime invoke", requestId = "req-1");
            let _entered = span.enter();
            tracing::warn!(
                user_id = "u1",
                outcome = "failed",
                "record failed; reported for retry"
            );
            tracing::info!("not at this level");
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert_eq!(line["service"], "personalized-offers");
        assert_eq!(line["env"], "prod");
        assert_eq!(line["version"], "1.2.3");
        assert_eq!(line["request_id"], "req-1");
        // The fields of before, at the top level.
        assert_eq!(line["message"], "record failed; reported for retry");
        assert_eq!(line["user_id"], "u1");
        assert_eq!(line["outcome"], "failed");
        assert_eq!(line["level"], "WARN");
        assert!(line["timestamp"].is_string());
        assert!(line.get("span").is_none() && line.get("spans").is_none());
    }

    #[test]
    fn without_dd_variables_or_invocation_the_line_is_as_before() {
        let lines = lines_logged("info", CorrelationFields::from_env(|_| None), || {
            tracing::info!(records = 3, "batch done");
        });
        let line = lines[0].as_object().expect("an object");
        let mut keys: Vec<&str> = line.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["level", "message", "records", "timestamp"]);
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
