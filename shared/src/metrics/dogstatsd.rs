//! The Datadog adapter: each metric of a set is one DogStatsD distribution
//! line (`personalized_offers.<name>:<v>[:<v>...]|d|#function:<name>,<tags>`)
//! sent over UDP to the Datadog Lambda extension, which aggregates them and
//! adds `env`, `service`, `version` and the Lambda tags. Through `cadence`:
//! its buffered UDP sink packs the lines of a set into few datagrams, and the
//! set is flushed before `emit` returns, so that the extension has it before
//! the invocation ends. The socket is non-blocking and errors are only
//! logged: a missing extension never slows or fails the function.

use super::{MetricSet, MetricsSink, Values, DATADOG_PREFIX};
use cadence::prelude::*;
use cadence::{BufferedUdpMetricSink, MetricSink, StatsdClient};
use std::net::{Ipv4Addr, UdpSocket};
use std::panic::RefUnwindSafe;

/// Lines of a set are packed into datagrams of at most this many bytes (a
/// safe UDP payload; a longer line goes alone).
pub const DATAGRAM_BYTES: usize = 1432;

pub struct DogStatsdMetrics {
    client: StatsdClient,
    function_name: String,
}

impl DogStatsdMetrics {
    /// To the extension at 127.0.0.1:`port`, from a local non-blocking socket.
    pub fn udp(function_name: &str, port: u16) -> std::io::Result<Self> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        socket.set_nonblocking(true)?;
        let sink = BufferedUdpMetricSink::with_capacity(
            (Ipv4Addr::LOCALHOST, port),
            socket,
            DATAGRAM_BYTES,
        )
        .map_err(std::io::Error::other)?;
        Ok(Self::with_sink(function_name, sink))
    }

    /// Over any cadence sink (tests use its spy sink).
    pub fn with_sink<S>(function_name: &str, sink: S) -> Self
    where
        S: MetricSink + Sync + Send + RefUnwindSafe + 'static,
    {
        Self {
            client: StatsdClient::from_sink(DATADOG_PREFIX, sink),
            function_name: tag_value(function_name),
        }
    }
}

impl MetricsSink for DogStatsdMetrics {
    fn emit(&self, set: &MetricSet) {
        let mut unsent = 0_usize;
        let mut last_error = None;
        for metric in &set.metrics {
            let builder = match &metric.values {
                Values::One(value) => self
                    .client
                    .distribution_with_tags(metric.datadog_name, *value),
                Values::Many(values) => self
                    .client
                    .distribution_with_tags(metric.datadog_name, values.clone()),
            };
            let mut builder = builder.with_tag("function", &self.function_name);
            let values: Vec<String> = metric
                .tags
                .iter()
                .map(|tag| tag_value(&tag.value))
                .collect();
            for (tag, value) in metric.tags.iter().zip(&values) {
                builder = builder.with_tag(tag.key, value);
            }
            if let Err(error) = builder.try_send() {
                unsent += 1;
                last_error = Some(error.to_string());
            }
        }
        if let Err(error) = self.client.flush() {
            unsent += 1;
            last_error = Some(error.to_string());
        }
        if let Some(error) = last_error {
            tracing::warn!(unsent, error, "metrics not sent to the Datadog extension");
        }
    }
}

/// A tag value as DogStatsD can carry it: no `,` (tag separator), `|`
/// (field separator), `#` or line breaks.
fn tag_value(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            ',' | '|' | '#' | '\n' | '\r' => '_',
            other => other,
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::metrics::Tag;
    use cadence::BufferedSpyMetricSink;
    use chrono::Utc;

    /// The DogStatsD lines of a set, as the function `offer-dispatcher` sends them.
    pub(crate) fn lines_of(set: &MetricSet) -> Vec<String> {
        let (received, sink) = BufferedSpyMetricSink::with_capacity(None, Some(DATAGRAM_BYTES));
        DogStatsdMetrics::with_sink("offer-dispatcher", sink).emit(set);
        // Flushed by `emit`: everything is there without dropping the sink.
        received
            .try_iter()
            .flat_map(|datagram| {
                String::from_utf8_lossy(&datagram)
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn each_metric_is_one_tagged_distribution_line() {
        let mut set = MetricSet::new(Utc::now());
        set.count(
            "Dispatched",
            "dispatch.records",
            2,
            vec![Tag::new("outcome", "dispatched")],
        )
        .count(
            "Rejected",
            "dispatch.records",
            1,
            vec![
                Tag::new("outcome", "rejected"),
                Tag::new("reason_code", "unknown_offer"),
            ],
        )
        .milliseconds("DispatchLag", "dispatch.lag", vec![2000, 500], vec![]);
        assert_eq!(
            lines_of(&set),
            [
                "personalized_offers.dispatch.records:2|d|#function:offer-dispatcher,outcome:dispatched",
                "personalized_offers.dispatch.records:1|d|#function:offer-dispatcher,outcome:rejected,reason_code:unknown_offer",
                "personalized_offers.dispatch.lag:2000:500|d|#function:offer-dispatcher",
            ]
        );
    }

    #[test]
    fn tag_values_cannot_break_the_line() {
        let mut set = MetricSet::new(Utc::now());
        set.count("A", "a", 1, vec![Tag::new("campaign", "c,1|x#y\nz")]);
        assert_eq!(
            lines_of(&set),
            ["personalized_offers.a:1|d|#function:offer-dispatcher,campaign:c_1_x_y_z"]
        );
    }

    #[test]
    fn nobody_listening_never_fails_or_blocks() {
        // A port nothing listens on (bound, then closed).
        let port = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|socket| socket.local_addr())
            .map(|address| address.port())
            .expect("a port");
        let metrics = DogStatsdMetrics::udp("f", port).expect("socket");
        let mut set = MetricSet::new(Utc::now());
        set.milliseconds("Lag", "lag", (0..5_000).collect(), vec![]);
        let started = std::time::Instant::now();
        for _ in 0..10 {
            metrics.emit(&set);
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn lines_reach_a_udp_listener() {
        let listener = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("listener");
        listener
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let port = listener.local_addr().expect("address").port();
        let metrics = DogStatsdMetrics::udp("f", port).expect("socket");
        let mut set = MetricSet::new(Utc::now());
        set.count("A", "a", 3, vec![]);
        metrics.emit(&set);
        let mut buffer = [0_u8; 2048];
        let read = listener.recv(&mut buffer).expect("a datagram");
        assert_eq!(
            String::from_utf8_lossy(&buffer[..read]).trim_end(),
            "personalized_offers.a:3|d|#function:f"
        );
    }
}
