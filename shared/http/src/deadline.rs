//! The API functions' deadline guard: a request's chain of store calls never
//! runs past the invocation's timeout. Lambda would kill the function there
//! and API Gateway would answer a bare error of its own; abandoning the chain
//! a little earlier lets the function answer 503 with `Retry-After` instead.
//!
//! The same idea as the dispatcher's guard (`dispatch::service`): the margin
//! kept in hand is capped at a fifth of the time the invocation has, and a
//! context without a real Lambda deadline runs unguarded.

use super::error::ApiError;
use lambda_http::{Request, RequestExt};
use offers_shared::deadline::{invocation_deadline, Deadline as InvocationDeadline};
use offers_shared::error::StoreError;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// Time kept in hand before the invocation deadline to send the answer.
/// Answering takes milliseconds; the rest absorbs scheduling and the
/// runtime's own round trip.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(1_000);

/// When a request's work must be abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    cutoff: Instant,
}

impl Deadline {
    /// The guard of a request, from its Lambda context; `None` when it has
    /// no context or no real deadline.
    pub fn of_request(request: &Request) -> Option<Self> {
        request
            .lambda_context_ref()
            .and_then(|context| Self::from_epoch_ms(context.deadline))
    }

    /// The guard of an invocation deadline in epoch milliseconds; `None`
    /// where the Lambda context has no real deadline (see
    /// `offers_shared::deadline::invocation_deadline`).
    pub fn from_epoch_ms(deadline_ms: u64) -> Option<Self> {
        invocation_deadline(deadline_ms).map(|at| Self {
            cutoff: InvocationDeadline::new(at, DEADLINE_MARGIN).cutoff(),
        })
    }

    /// The guard of an invocation with `left` to run: the margin, but never
    /// more than a fifth of that time, so that a function deployed with a
    /// short timeout still does its work.
    pub fn after(left: Duration) -> Self {
        Self {
            cutoff: InvocationDeadline::new(Instant::now() + left, DEADLINE_MARGIN).cutoff(),
        }
    }

    /// When the work is abandoned.
    pub fn cutoff(&self) -> Instant {
        self.cutoff
    }

    /// Runs `work`, abandoning it at the cutoff: 503, which carries
    /// `Retry-After`. Dropping the work drops its SDK call; a write that
    /// reached DynamoDB may still land, which is why writes are conditional
    /// (see docs/api-support.md).
    pub async fn run<T>(
        self,
        work: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        tokio::time::timeout_at(self.cutoff, work)
            .await
            .unwrap_or_else(|_| {
                Err(ApiError::Unavailable(StoreError::Timeout(
                    "abandoned at the invocation deadline".into(),
                )))
            })
    }
}

/// Runs a request's work under the request's own deadline, if it has one.
/// The one path both API functions use.
pub async fn within_deadline<T>(
    request: &Request,
    work: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    match Deadline::of_request(request) {
        Some(deadline) => deadline.run(work).await,
        None => work.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::Context;
    use std::time::SystemTime;

    fn epoch_ms(at: SystemTime) -> u64 {
        at.duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default()
    }

    fn left(deadline: Deadline) -> Duration {
        deadline.cutoff().saturating_duration_since(Instant::now())
    }

    #[test]
    fn deadlines_as_lambda_gives_them_and_values_it_never_gives() {
        assert_eq!(Deadline::from_epoch_ms(0), None);
        // cargo lambda watch's constant: 600 s after the epoch.
        assert_eq!(Deadline::from_epoch_ms(600_000), None);
        let in_an_hour = SystemTime::now() + Duration::from_secs(3_600);
        assert_eq!(Deadline::from_epoch_ms(epoch_ms(in_an_hour)), None);

        // 10 s left: the whole margin is kept.
        let ten = Deadline::from_epoch_ms(epoch_ms(SystemTime::now() + Duration::from_secs(10)))
            .expect("a deadline");
        let left_ten = left(ten);
        assert!(
            left_ten > Duration::from_millis(8_900) && left_ten <= Duration::from_secs(9),
            "{left_ten:?}"
        );
        // 1 s left: the margin shrinks to a fifth of it.
        let one = Deadline::from_epoch_ms(epoch_ms(SystemTime::now() + Duration::from_secs(1)))
            .expect("a deadline");
        let left_one = left(one);
        assert!(
            left_one > Duration::from_millis(700) && left_one <= Duration::from_millis(800),
            "{left_one:?}"
        );
        // Just past: a real deadline with no time left.
        let past = Deadline::from_epoch_ms(epoch_ms(SystemTime::now() - Duration::from_secs(1)))
            .expect("a deadline");
        assert!(past.cutoff() <= Instant::now());
    }

    fn request_with_deadline(deadline_ms: u64) -> Request {
        let event = serde_json::json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
            "requestContext": {"http": {"method": "GET", "path": "/"}, "stage": "$default"}
        });
        let mut context = Context::default();
        context.deadline = deadline_ms;
        lambda_http::request::from_str(&event.to_string())
            .expect("event")
            .with_lambda_context(context)
    }

    #[tokio::test]
    async fn work_past_the_cutoff_is_abandoned_as_a_503() {
        let deadline = epoch_ms(SystemTime::now() + Duration::from_secs(1));
        let started = Instant::now();
        let slow = async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, ApiError>("done")
        };
        let error = within_deadline(&request_with_deadline(deadline), slow)
            .await
            .expect_err("abandoned");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "before the deadline"
        );
        assert_eq!(error.status().as_u16(), 503);
        assert_eq!(error.code(), "service_unavailable");
        assert!(error
            .log_detail()
            .is_some_and(|detail| detail.contains("invocation deadline")));
    }

    #[tokio::test]
    async fn work_within_the_cutoff_or_without_a_deadline_is_left_alone() {
        let soon = epoch_ms(SystemTime::now() + Duration::from_secs(1));
        let quick = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok::<_, ApiError>("done")
        };
        assert_eq!(
            within_deadline(&request_with_deadline(soon), quick).await,
            Ok("done")
        );
        // No deadline at all: an error of the work itself passes through.
        let refused = async { Err::<(), _>(ApiError::no_route()) };
        assert_eq!(
            within_deadline(&request_with_deadline(0), refused).await,
            Err(ApiError::no_route())
        );
        // Past by more than any timeout (cargo lambda): not a deadline.
        let late = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok::<_, ApiError>("done")
        };
        assert_eq!(
            within_deadline(&request_with_deadline(600_000), late).await,
            Ok("done")
        );
    }
}
