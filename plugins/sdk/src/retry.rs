//! Retrying transient failures with exponential backoff, shared by [`crate::PluginHttp`] and
//! [`with_retry`].

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

use crate::PluginError;

/// How often and how patiently to retry.
///
/// The wait before retry `n` (1-based) is `initial_backoff * 2^(n-1)`, capped at
/// `max_backoff`, with up to half of it taken off at random so that many instances failing
/// together do not retry together. A server's `Retry-After` replaces that wait, capped at
/// `max_retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; `1` never retries. `0` is treated as `1`.
    pub max_attempts: u32,
    /// The wait before the first retry.
    pub initial_backoff: Duration,
    /// The longest computed wait between attempts.
    pub max_backoff: Duration,
    /// The longest wait a server's `Retry-After` can impose.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts, 200 ms doubling up to 10 s, `Retry-After` honoured up to 60 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn never() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The attempts this policy allows, at least one.
    pub fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }

    /// The wait after failed attempt number `attempt` (1-based), with jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(31);
        let full = self
            .initial_backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_backoff);
        // Equal jitter: half fixed, half random.
        let half = full / 2;
        let random = random_fraction();
        half + half.mul_f64(random)
    }

    /// The wait a server asked for, capped at `max_retry_after`.
    pub fn server_wait(&self, retry_after: Duration) -> Duration {
        retry_after.min(self.max_retry_after)
    }
}

/// A number in `[0, 1)` from the standard library's randomly keyed hasher; enough for jitter
/// without a random number crate.
fn random_fraction() -> f64 {
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Parses a `Retry-After` value: delay seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, a past date meaning now). `None` if it is neither.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Runs `operation` until it succeeds, fails with an error that is not
/// [transient](PluginError::is_transient), or `policy` runs out of attempts; waits the
/// policy's backoff between attempts. Returns the last error.
///
/// ```
/// # async fn demo() -> Result<(), tributary_plugin_sdk::PluginError> {
/// use tributary_plugin_sdk::{with_retry, PluginError, RetryPolicy};
///
/// let token: String = with_retry(RetryPolicy::default(), || async {
///     Ok::<_, PluginError>("token".to_owned())
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn with_retry<T, F, Fut>(policy: RetryPolicy, mut operation: F) -> Result<T, PluginError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, PluginError>>,
{
    let mut attempt = 1;
    loop {
        match operation().await {
            Ok(value) => return Ok(value),
            Err(error) if error.is_transient() && attempt < policy.attempts() => {
                let wait = policy.backoff(attempt);
                tracing::debug!(attempt, ?wait, %error, "Retrying after a transient failure.");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn quick(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            max_retry_after: Duration::from_secs(1),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_at_most_half_jitter() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(5),
        };
        for (attempt, full) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
        ] {
            let wait = policy.backoff(attempt);
            let full = Duration::from_millis(full);
            assert!(
                wait >= full / 2 && wait <= full,
                "attempt {attempt}: {wait:?}"
            );
        }
        assert_eq!(
            policy.server_wait(Duration::from_secs(100)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        let in_a_minute = SystemTime::now() + Duration::from_secs(60);
        let wait = parse_retry_after(&httpdate::fmt_http_date(in_a_minute)).unwrap();
        assert!(
            wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[tokio::test]
    async fn with_retry_retries_transient_errors_until_success() {
        let calls = AtomicU32::new(0);
        let value = with_retry(quick(5), || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(PluginError::Transient("reset".into())),
                _ => Ok(42),
            }
        })
        .await
        .unwrap();
        assert_eq!((value, calls.load(Ordering::SeqCst)), (42, 3));
    }

    #[tokio::test]
    async fn with_retry_gives_up_after_max_attempts_and_never_retries_permanent_errors() {
        let calls = AtomicU32::new(0);
        let err = with_retry(quick(3), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(PluginError::Http {
                status: 503,
                message: "busy".into(),
            })
        })
        .await
        .unwrap_err();
        assert!(matches!(err, PluginError::Http { status: 503, .. }));
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let calls = AtomicU32::new(0);
        let err = with_retry(quick(3), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(PluginError::Other("bad".into()))
        })
        .await
        .unwrap_err();
        assert!(matches!(err, PluginError::Other(_)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
