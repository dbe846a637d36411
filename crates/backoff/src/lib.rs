//! The one backoff of the app: exponential growth to a cap, with full
//! jitter (AWS's "full jitter": a uniform wait between zero and the
//! ceiling), so that clients that failed together do not retry together.
//! The Cosmos client's retries and the audit chain's append retries both
//! wait [`full_jitter`]; the document store's lock waits use
//! [`spread`].
//!
//! Pure: the caller passes the random number (its clock's `jitter`, in
//! `[0, 1)`), so every wait is tested exactly. A jitter source that
//! misbehaves (outside `[0, 1]`, NaN) can never stretch a wait past its
//! ceiling.

use std::time::Duration;

/// `jitter * min(max, base * 2^doublings)`: the wait after a failure that
/// has doubled the ceiling `doublings` times. Growth stops at `max` (and
/// `doublings` above 31 counts as 31).
pub fn full_jitter(base: Duration, max: Duration, doublings: u32, jitter: f64) -> Duration {
    ceiling(base, max, doublings).mul_f64(unit(jitter))
}

/// Between half of `wait` and all of it: spreads waiters out while still
/// waiting about as long as asked.
pub fn spread(wait: Duration, jitter: f64) -> Duration {
    wait.mul_f64(0.5 + unit(jitter) / 2.0)
}

/// `min(max, base * 2^doublings)`, without overflow.
fn ceiling(base: Duration, max: Duration, doublings: u32) -> Duration {
    base.checked_mul(1u32 << doublings.min(31))
        .map_or(max, |d| d.min(max))
}

/// The jitter clamped into `[0, 1]`; anything not a number is 0.
fn unit(jitter: f64) -> f64 {
    if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_secs(1);

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let ms = |n| full_jitter(BASE, MAX, n, 1.0).as_millis();
        assert_eq!(
            [ms(0), ms(1), ms(2), ms(3), ms(4), ms(5), ms(31), ms(40)],
            [50, 100, 200, 400, 800, 1000, 1000, 1000]
        );
    }

    #[test]
    fn jitter_scales_and_is_clamped() {
        let wait = |jitter| full_jitter(BASE, MAX, 2, jitter);
        assert_eq!(wait(0.5), Duration::from_millis(100));
        assert_eq!(wait(0.0), Duration::ZERO);
        assert_eq!(wait(7.0), Duration::from_millis(200));
        assert_eq!(wait(-1.0), Duration::ZERO);
        assert_eq!(wait(f64::NAN), Duration::ZERO);
        assert_eq!(wait(f64::INFINITY), Duration::ZERO);
    }

    #[test]
    fn a_huge_base_is_capped_not_overflowed() {
        let wait = full_jitter(Duration::MAX, MAX, 31, 1.0);
        assert_eq!(wait, MAX);
    }

    #[test]
    fn spread_is_half_to_all_of_the_wait() {
        let wait = Duration::from_millis(8);
        assert_eq!(spread(wait, 0.0), Duration::from_millis(4));
        assert_eq!(spread(wait, 0.5), Duration::from_millis(6));
        assert_eq!(spread(wait, 1.0), wait);
        assert_eq!(spread(wait, f64::NAN), Duration::from_millis(4));
        assert_eq!(spread(wait, 9.0), wait);
    }
}
