//! The cost of a dispatch batch's metrics, per adapter, against a floor
//! measured in the same run: building the set (`dispatch_metrics`, what both
//! adapters start from) for a batch of 100 records (dispatched, rejected with
//! three reason codes, failed, ignored, 100 lags). Then, per batch:
//!
//! - EMF: the line rendered as text (`emf_line` and `to_string`: what
//!   `EmfMetrics` does before its one write to stdout, left out here so that
//!   the bench's output stays readable);
//! - DogStatsD: `DogStatsdMetrics::emit` over real UDP to a local listener
//!   (the extension's place), and to a port nobody listens on (the extension
//!   missing): the function must not be slowed by it.
//!
//! Figures are µs per batch (the median of 15 rounds of 200 batches) and
//! ratios to the floor; the dispatcher's CPU per row (docs/benchmarks.md) puts
//! them in scale. Target: every adapter below 1% of the dispatcher's CPU for
//! the batch (100 rows at about 0.3 ms each: 30 ms, so under 300 µs).
//! Run: `cargo bench -p offers-integration-tests --bench metrics`.

use chrono::Utc;
use offers_shared::dispatch::{DispatchOutcome, DispatchReport, Failure, Outcome, RecordReport};
use offers_shared::domain::ReasonCode;
use offers_shared::metrics::dogstatsd::DogStatsdMetrics;
use offers_shared::metrics::emf::emf_line;
use offers_shared::metrics::{dispatch_metrics, MetricsSink};
use offers_shared::stream::IgnoredReason;
use std::hint::black_box;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

const BATCHES: usize = 200;
const ROUNDS: usize = 15;

fn batch() -> DispatchReport {
    let created = Utc::now() - chrono::Duration::milliseconds(1_500);
    let codes = [
        ReasonCode::Expired,
        ReasonCode::UnknownOffer,
        ReasonCode::InvalidRow,
    ];
    let records = (0..100)
        .map(|i| {
            let outcome = match i % 10 {
                0..=5 => Outcome::Done(DispatchOutcome::Dispatched {
                    personalized_offer_id: offers_shared::domain::PersonalizedOfferId::random(),
                    pending_row_kept: false,
                }),
                6..=8 => Outcome::Done(DispatchOutcome::Rejected {
                    code: codes[i % 3],
                    rejection_id: uuid::Uuid::new_v4(),
                    pending_row_kept: false,
                }),
                _ if i % 20 == 9 => Outcome::Failed(Failure::StoreDown),
                _ => Outcome::Ignored(IgnoredReason::Modify),
            };
            RecordReport {
                created_at: Some(created),
                ..RecordReport::of_outcome(outcome)
            }
        })
        .collect();
    DispatchReport {
        records,
        ..DispatchReport::default()
    }
}

/// The median over rounds of the time per batch of `work`.
fn per_batch(mut work: impl FnMut()) -> Duration {
    let mut rounds: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..BATCHES {
                work();
            }
            started.elapsed() / BATCHES as u32
        })
        .collect();
    rounds.sort();
    rounds[ROUNDS / 2]
}

fn main() {
    let report = batch();
    let listener = UdpSocket::bind(("127.0.0.1", 0)).expect("listener");
    listener.set_nonblocking(true).expect("non-blocking");
    let port = listener.local_addr().expect("address").port();
    let closed = UdpSocket::bind(("127.0.0.1", 0))
        .and_then(|socket| socket.local_addr())
        .map(|address| address.port())
        .expect("a port");
    let to_listener = DogStatsdMetrics::udp("offer-dispatcher", port).expect("socket");
    let to_nobody = DogStatsdMetrics::udp("offer-dispatcher", closed).expect("socket");
    let drain = || {
        let mut buffer = [0_u8; 65_536];
        while listener.recv(&mut buffer).is_ok() {}
    };

    let floor = per_batch(|| {
        black_box(dispatch_metrics(black_box(&report), Utc::now()));
    });
    let emf = per_batch(|| {
        let set = dispatch_metrics(black_box(&report), Utc::now());
        black_box(emf_line("offer-dispatcher", &set).to_string());
    });
    let dogstatsd = per_batch(|| {
        to_listener.emit(&dispatch_metrics(black_box(&report), Utc::now()));
        drain();
    });
    let nobody = per_batch(|| {
        to_nobody.emit(&dispatch_metrics(black_box(&report), Utc::now()));
    });
    let set = dispatch_metrics(&report, Utc::now());
    let emf_bytes = emf_line("offer-dispatcher", &set).to_string().len();

    let micros = |time: Duration| time.as_secs_f64() * 1e6;
    println!("metrics bench: a batch of 100 records, median of {ROUNDS} rounds of {BATCHES}");
    println!(
        "  floor (build the set)        {:>8.1} µs/batch",
        micros(floor)
    );
    for (name, time) in [
        ("EMF line rendered", emf),
        ("DogStatsD to a listener", dogstatsd),
        ("DogStatsD, nobody listening", nobody),
    ] {
        println!(
            "  {name:<28} {:>8.1} µs/batch  {:>5.1}x floor",
            micros(time),
            time.as_secs_f64() / floor.as_secs_f64()
        );
    }
    println!(
        "  EMF line: {emf_bytes} bytes; DogStatsD: {} metric lines",
        set.metrics.len()
    );
    for (name, time) in [
        ("EMF", emf),
        ("DogStatsD", dogstatsd),
        ("DogStatsD, nobody", nobody),
    ] {
        assert!(
            time < Duration::from_micros(300),
            "{name}: {time:?} per batch, over 1% of the batch's CPU"
        );
    }
}
