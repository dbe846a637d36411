//! Rate limits and quotas as fixed windows.
//!
//! A limit is a number of calls per fixed window. [`decide`] takes the
//! count a request would be (the calls already admitted in its window plus
//! one) and says whether it passes and what the `RateLimit-*` headers say;
//! [`crate::meter`] keeps both counts of an owner in one key-value entry.
//! Nothing here touches the store.
//!
//! Window boundaries: windows are aligned to the Unix epoch (a 60 s window
//! starts on the minute, an 86 400 s quota at 00:00 UTC). When a window ends
//! the next one starts from zero, so up to `2 × calls` requests can pass in
//! any span of `period` seconds that straddles a boundary (the end of one
//! window plus the start of the next). That is the known price of fixed
//! windows; it buys a single small entry per owner.
//!
//! If the store fails, the shell should refuse the request (fail closed):
//! a limit that cannot be counted cannot be enforced.

use std::num::NonZeroU32;

/// A number of calls per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    calls: NonZeroU32,
    period_seconds: NonZeroU32,
}

impl Limit {
    /// A limit; `None` if either number is zero (a zero limit is a
    /// configuration mistake, not a way to block a caller).
    pub fn new(calls: u32, period_seconds: u32) -> Option<Limit> {
        Some(Limit {
            calls: NonZeroU32::new(calls)?,
            period_seconds: NonZeroU32::new(period_seconds)?,
        })
    }

    /// Parses `calls/periodSeconds`, e.g. `100/60` (the form configuration
    /// variables use); `None` for anything else, zeros included.
    pub fn parse(text: &str) -> Option<Limit> {
        let (calls, period) = text.trim().split_once('/')?;
        let number = |s: &str| {
            let s = s.trim();
            // `u32::from_str` accepts a leading `+`; configuration should not.
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u32>().ok())
                .flatten()
        };
        Limit::new(number(calls)?, number(period)?)
    }

    pub fn calls(&self) -> u32 {
        self.calls.get()
    }

    pub fn period_seconds(&self) -> u32 {
        self.period_seconds.get()
    }
}

/// A subscription's (or token client's) rate limit and quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub rate: Limit,
    pub quota: Limit,
}

/// The fixed window `now` falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Unix time the window started.
    pub starts_at: i64,
    /// Unix time the next window starts.
    pub resets_at: i64,
}

/// The window of `limit` that contains `now_unix`.
pub fn window(limit: &Limit, now_unix: i64) -> Window {
    let period = i64::from(limit.period_seconds());
    let starts_at = now_unix.div_euclid(period) * period;
    Window {
        starts_at,
        resets_at: starts_at + period,
    }
}

/// Whether a request may pass one limit, and what to tell the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitDecision {
    pub allowed: bool,
    /// `RateLimit-Limit`: the calls allowed per window.
    pub limit: u32,
    /// `RateLimit-Remaining`: calls left in this window after this request.
    pub remaining: u32,
    /// `RateLimit-Reset`: seconds until the window resets (at least 1).
    pub reset_seconds: i64,
    /// `Retry-After` seconds, only when the request is refused.
    pub retry_after: Option<i64>,
}

/// The decision for the request that is call number `count` of its window.
pub fn decide(count: i64, limit: &Limit, window: &Window, now_unix: i64) -> LimitDecision {
    let calls = i64::from(limit.calls());
    let allowed = count <= calls;
    let remaining = (calls - count).clamp(0, calls);
    // `now` lies inside the window, so this is 1..=period; the clamp keeps a
    // sane value if the shell passes a window computed at another time.
    let reset_seconds = (window.resets_at - now_unix).clamp(1, i64::from(limit.period_seconds()));
    LimitDecision {
        allowed,
        limit: limit.calls(),
        // `remaining` is within 0..=calls, which came from a u32.
        remaining: u32::try_from(remaining).unwrap_or(0),
        reset_seconds,
        retry_after: (!allowed).then_some(reset_seconds),
    }
}

/// Rate limit and quota together: allowed only if both allow. The headers
/// describe the most restrictive of the two: a refusing one over an allowing
/// one, then the one with fewer calls remaining, then the later reset.
/// `Retry-After` is the time until every refusing limit has reset.
pub fn combine(rate: LimitDecision, quota: LimitDecision) -> LimitDecision {
    let restrictiveness = |d: &LimitDecision| (d.allowed, d.remaining, -d.reset_seconds);
    let mut chosen = if restrictiveness(&quota) < restrictiveness(&rate) {
        quota
    } else {
        rate
    };
    chosen.allowed = rate.allowed && quota.allowed;
    chosen.retry_after = match (rate.retry_after, quota.retry_after) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    chosen
}

impl LimitDecision {
    /// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and, when
    /// refused, `Retry-After`, as (name, value) pairs.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("RateLimit-Limit", self.limit.to_string()),
            ("RateLimit-Remaining", self.remaining.to_string()),
            ("RateLimit-Reset", self.reset_seconds.to_string()),
        ];
        if let Some(seconds) = self.retry_after {
            headers.push(("Retry-After", seconds.to_string()));
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(calls: u32, period: u32) -> Limit {
        Limit::new(calls, period).unwrap()
    }

    /// An in-memory counter per owner, limit and window, incremented then
    /// checked.
    struct Store(std::collections::HashMap<String, i64>);

    impl Store {
        fn request(&mut self, owner: &str, kind: &str, limit: &Limit, now: i64) -> LimitDecision {
            let window = window(limit, now);
            let key = format!("{owner}:{kind}:{}", window.starts_at);
            let count = self.0.entry(key).or_insert(0);
            *count += 1;
            decide(*count, limit, &window, now)
        }
    }

    #[test]
    fn zero_limits_are_unrepresentable() {
        assert!(Limit::new(0, 60).is_none());
        assert!(Limit::new(10, 0).is_none());
        assert!(Limit::new(1, 1).is_some());
    }

    #[test]
    fn limits_parse_from_calls_per_period() {
        assert_eq!(Limit::parse("100/60"), Limit::new(100, 60));
        assert_eq!(Limit::parse(" 5 / 2 "), Limit::new(5, 2));
        assert_eq!(Limit::parse("4294967295/1"), Limit::new(u32::MAX, 1));
        for bad in [
            "",
            "100",
            "/60",
            "100/",
            "0/60",
            "10/0",
            "-1/60",
            "+1/60",
            "1.5/60",
            "1/60/2",
            "4294967296/1",
            "a/b",
        ] {
            assert_eq!(Limit::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn windows_align_to_the_epoch() {
        let w = window(&limit(100, 60), 1_000_000_030);
        assert_eq!(w.starts_at, 1_000_000_020);
        assert_eq!(w.resets_at, 1_000_000_080);
        // The last second of a window and the first of the next.
        assert_eq!(
            window(&limit(1, 60), 1_000_000_079).starts_at,
            1_000_000_020
        );
        assert_eq!(
            window(&limit(1, 60), 1_000_000_080).starts_at,
            1_000_000_080
        );
    }

    #[test]
    fn exactly_calls_requests_pass_then_one_over_is_refused() {
        let mut store = Store(Default::default());
        let lim = limit(3, 60);
        let now = 6_000; // start of a window
        let decisions: Vec<_> = (0..4)
            .map(|i| store.request("s", "rate", &lim, now + i))
            .collect();
        assert!(decisions[..3].iter().all(|d| d.allowed));
        assert_eq!(
            decisions.iter().map(|d| d.remaining).collect::<Vec<_>>(),
            vec![2, 1, 0, 0]
        );
        assert_eq!(decisions[2].retry_after, None);
        let over = decisions[3];
        assert!(!over.allowed);
        assert_eq!(over.reset_seconds, 60 - 3);
        assert_eq!(over.retry_after, Some(57));
        assert_eq!(over.limit, 3);
    }

    #[test]
    fn counter_resets_in_the_next_window() {
        let mut store = Store(Default::default());
        let lim = limit(2, 60);
        for _ in 0..5 {
            store.request("s", "rate", &lim, 6_059);
        }
        assert!(!store.request("s", "rate", &lim, 6_059).allowed);
        let next = store.request("s", "rate", &lim, 6_060);
        assert!(next.allowed);
        assert_eq!(next.remaining, 1);
        assert_eq!(next.reset_seconds, 60);
    }

    #[test]
    fn boundary_burst_is_at_most_twice_the_limit() {
        // Documented fixed-window behaviour: the end of one window plus the
        // start of the next.
        let mut store = Store(Default::default());
        let lim = limit(5, 60);
        let passed = (0..20)
            .filter(|i| store.request("s", "rate", &lim, 6_059 + i % 2).allowed)
            .count();
        assert_eq!(passed, 10);
    }

    #[test]
    fn quota_counts_independently_of_rate_limit() {
        let mut store = Store(Default::default());
        let rate = limit(100, 60);
        let quota = limit(3, 86_400);
        let mut last = None;
        for i in 0..4 {
            let now = 86_400 * 10 + i * 120; // each request in its own rate window
            let r = store.request("s", "rate", &rate, now);
            let q = store.request("s", "quota", &quota, now);
            last = Some(combine(r, q));
            if i < 3 {
                assert!(last.unwrap().allowed, "request {i}");
            }
        }
        let refused = last.unwrap();
        assert!(!refused.allowed);
        assert_eq!(refused.limit, 3, "headers describe the refusing quota");
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.retry_after, Some(86_400 - 360));
    }

    #[test]
    fn combine_reports_the_most_restrictive() {
        let d = |allowed, limit, remaining, reset| LimitDecision {
            allowed,
            limit,
            remaining,
            reset_seconds: reset,
            retry_after: (!allowed).then_some(reset),
        };
        // Both allow: fewer remaining wins.
        let c = combine(d(true, 100, 90, 30), d(true, 10_000, 5, 80_000));
        assert!(c.allowed);
        assert_eq!((c.limit, c.remaining, c.retry_after), (10_000, 5, None));
        // Rate refuses, quota allows: refused, rate's headers.
        let c = combine(d(false, 100, 0, 30), d(true, 10_000, 0, 80_000));
        assert!(!c.allowed);
        assert_eq!(
            (c.limit, c.reset_seconds, c.retry_after),
            (100, 30, Some(30))
        );
        // Both refuse: Retry-After waits for both.
        let c = combine(d(false, 100, 0, 30), d(false, 10_000, 0, 80_000));
        assert!(!c.allowed);
        assert_eq!(c.retry_after, Some(80_000));
        assert_eq!(c.reset_seconds, 80_000);
    }

    #[test]
    fn header_values() {
        let lim = limit(100, 60);
        let w = window(&lim, 6_010);
        let ok = decide(1, &lim, &w, 6_010);
        assert_eq!(
            ok.headers(),
            vec![
                ("RateLimit-Limit", "100".to_string()),
                ("RateLimit-Remaining", "99".to_string()),
                ("RateLimit-Reset", "50".to_string()),
            ]
        );
        let refused = decide(101, &lim, &w, 6_010);
        assert_eq!(
            refused.headers().last().unwrap(),
            &("Retry-After", "50".to_string())
        );
    }

    #[test]
    fn negative_time_and_odd_counts_do_not_panic() {
        let lim = limit(2, 60);
        let w = window(&lim, -1);
        assert_eq!((w.starts_at, w.resets_at), (-60, 0));
        let d = decide(0, &lim, &w, -1);
        assert!(d.allowed);
        assert_eq!(d.remaining, 2);
        let d = decide(i64::MAX, &lim, &w, 10_000);
        assert!(!d.allowed);
        assert_eq!(d.reset_seconds, 1);
    }
}
