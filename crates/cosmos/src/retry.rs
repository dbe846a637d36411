//! Retry policy: how often and how long to retry throttled and transient failures.

use std::time::Duration;

/// Retry limits. 429s wait the server's `x-ms-retry-after-ms` (capped at
/// `max_delay`); transient failures back off exponentially with full jitter.
/// No retry starts if its wait would take the call past `total_budget`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (0 is treated as 1).
    pub max_attempts: u32,
    /// The backoff before the first retry, before jitter.
    pub base_delay: Duration,
    /// No single wait is longer than this.
    pub max_delay: Duration,
    /// The whole call, attempts and waits, stays within this.
    pub total_budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(1),
            total_budget: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Never retries: every failure is returned at once.
    pub fn no_retries() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Full-jitter backoff after failed attempt number `attempt` (1-based):
    /// `jitter * min(max_delay, base_delay * 2^(attempt-1))`.
    pub(crate) fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        backoff::full_jitter(
            self.base_delay,
            self.max_delay,
            attempt.saturating_sub(1),
            jitter,
        )
    }

    /// The wait the server asked for, capped.
    pub(crate) fn throttle_wait(&self, retry_after: Duration) -> Duration {
        retry_after.min(self.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let ms = |attempt| policy.backoff(attempt, 1.0).as_millis();
        assert_eq!(
            [ms(1), ms(2), ms(3), ms(4), ms(5), ms(6), ms(40)],
            [50, 100, 200, 400, 800, 1000, 1000]
        );
    }

    #[test]
    fn jitter_scales_and_is_clamped() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(3, 0.5), Duration::from_millis(100));
        assert_eq!(policy.backoff(3, 0.0), Duration::ZERO);
        assert_eq!(policy.backoff(3, 7.0), Duration::from_millis(200));
        assert_eq!(policy.backoff(3, -1.0), Duration::ZERO);
        assert_eq!(policy.backoff(3, f64::NAN), Duration::ZERO);
    }

    #[test]
    fn throttle_waits_are_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.throttle_wait(Duration::from_millis(30)),
            Duration::from_millis(30)
        );
        assert_eq!(
            policy.throttle_wait(Duration::from_secs(9)),
            Duration::from_secs(1)
        );
    }
}
