//! Lambda's invocation deadline, read once and kept in hand: the stream
//! dispatcher and the API functions both stop starting work a margin before
//! it, so that the function answers instead of being killed mid-call.

use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// Lambda's longest timeout: no real invocation's deadline is further away,
/// in the past or in the future.
const MAX_FUNCTION_TIMEOUT: Duration = Duration::from_secs(900);

/// An invocation's deadline and the time kept in hand before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// When Lambda ends the invocation.
    pub at: Instant,
    /// How long before `at` no new work starts.
    pub margin: Duration,
}

impl Deadline {
    /// `configured_margin`, but never more than a fifth of the time the
    /// invocation has: a function given a short timeout still does its work.
    pub fn new(at: Instant, configured_margin: Duration) -> Self {
        let budget = at.saturating_duration_since(Instant::now());
        Self {
            at,
            margin: configured_margin.min(budget / 5),
        }
    }

    /// The deadline of an invocation given in epoch milliseconds, as the
    /// Lambda context carries it. `None` for 0 (a `Context::default()`) and
    /// for a value further than any Lambda timeout from now: emulators such
    /// as `cargo lambda watch` send a relative value (600000) where Lambda
    /// sends epoch milliseconds, and every record or request would be refused
    /// as out of time.
    pub fn from_epoch_ms(deadline_ms: u64, configured_margin: Duration) -> Option<Self> {
        invocation_deadline(deadline_ms).map(|at| Self::new(at, configured_margin))
    }

    /// When no new work may start.
    pub fn cutoff(&self) -> Instant {
        self.at.checked_sub(self.margin).unwrap_or(self.at)
    }

    /// Whether it is too late to start new work.
    pub fn is_near(&self) -> bool {
        Instant::now() >= self.cutoff()
    }
}

/// The invocation deadline (epoch milliseconds, as the Lambda context
/// carries it) as an `Instant`: see [`Deadline::from_epoch_ms`].
pub fn invocation_deadline(deadline_ms: u64) -> Option<Instant> {
    {
        if deadline_ms == 0 {
            return None;
        }
        let deadline = SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(deadline_ms))?;
        let now = SystemTime::now();
        let distance = match deadline.duration_since(now) {
            Ok(ahead) => ahead,
            Err(past) => past.duration(),
        };
        if distance > MAX_FUNCTION_TIMEOUT {
            tracing::warn!(
                deadline_ms,
                "the invocation deadline is not a Lambda deadline; running without a deadline guard"
            );
            return None;
        }
        let left = deadline.duration_since(now).unwrap_or(Duration::ZERO);
        Some(Instant::now() + left)
    }
}

/// Runs a store call, abandoned (as a timeout) at half the margin before
/// the deadline when there is one: the record or request is then reported
/// failed instead of the function being killed mid-call; a write that lands
/// anyway makes the retry a duplicate.
pub async fn within_deadline<T>(
    deadline: Option<Deadline>,
    call: impl std::future::Future<Output = Result<T, crate::error::StoreError>>,
) -> Result<T, crate::error::StoreError> {
    match deadline {
        None => call.await,
        Some(deadline) => {
            let cutoff = deadline
                .at
                .checked_sub(deadline.margin / 2)
                .unwrap_or(deadline.at);
            tokio::time::timeout_at(cutoff, call)
                .await
                .unwrap_or_else(|_| {
                    Err(crate::error::StoreError::Timeout(
                        "abandoned at the invocation deadline".into(),
                    ))
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch_ms(at: SystemTime) -> u64 {
        at.duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default()
    }

    #[test]
    fn deadlines_as_lambda_gives_them_and_values_it_never_gives() {
        let margin = Duration::from_secs(3);
        assert_eq!(Deadline::from_epoch_ms(0, margin), None);
        // cargo lambda watch's constant: 600 s after the epoch.
        assert_eq!(Deadline::from_epoch_ms(600_000, margin), None);
        assert_eq!(Deadline::from_epoch_ms(u64::MAX, margin), None);
        let in_a_minute = Deadline::from_epoch_ms(
            epoch_ms(SystemTime::now() + Duration::from_secs(60)),
            margin,
        )
        .expect("a deadline");
        let left = in_a_minute.at.saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(58) && left <= Duration::from_secs(60),
            "{left:?}"
        );
        assert_eq!(in_a_minute.margin, margin);
        assert!(!in_a_minute.is_near());
        // Just past: a real deadline with no time left.
        let past =
            Deadline::from_epoch_ms(epoch_ms(SystemTime::now() - Duration::from_secs(1)), margin)
                .expect("a deadline");
        assert!(past.is_near());
    }

    #[test]
    fn the_margin_is_at_most_a_fifth_of_the_time_left() {
        let deadline = Deadline::new(
            Instant::now() + Duration::from_secs(3),
            Duration::from_secs(3),
        );
        assert!(
            deadline.margin <= Duration::from_millis(600),
            "{:?}",
            deadline.margin
        );
        assert!(!deadline.is_near());
    }
}
