//! One owner's rate-limit and quota counts as a single key-value entry,
//! advanced by compare-and-swap: one durable write per admitted request.
//!
//! Why not two atomic increments (one per limit, the earlier design): under
//! Spin every key-value operation of the whole process waits for one SQLite
//! connection, and each increment is its own committed transaction; on
//! Azure each is a Cosmos patch followed by a read. Two increments per
//! request were the largest single cost of a request under real Spin. Here a
//! request reads the entry (no commit), decides with [`meter`], and writes
//! back only if it is admitted, conditional on the entry being unchanged; a
//! lost race re-reads and decides again. Refused requests write nothing.
//!
//! Exactness: the write is conditional on the exact bytes read (Spin's
//! SQLite store: `UPDATE … WHERE value = old`; its Cosmos store: `If-Match`
//! on the etag), so two requests can never both be admitted on the same
//! count. The one non-conditional write Spin's SQLite store makes is the
//! first write of a key that does not exist yet (an upsert); the gateway
//! shell therefore elects a single creator for a missing entry with an
//! atomic increment of [`creation_key`] and lets everyone else wait for it.
//!
//! Windows are fixed and aligned to the Unix epoch, as [`crate::window`]
//! describes; an entry from an older window (or from a limit whose period
//! was reconfigured) counts as zero.
//!
//! Nothing here touches the store.

use crate::limits::{combine, decide, window, Limit, LimitDecision, Limits};

/// Key-value key of `owner`'s entry. The owner comes last so that any
/// characters it holds cannot make two owners' keys equal.
pub fn usage_key(owner: &str) -> String {
    format!("usage:v1:{owner}")
}

/// Key of the counter that elects the one request allowed to create
/// `owner`'s entry (see the module doc).
pub fn creation_key(owner: &str) -> String {
    format!("usage-create:v1:{owner}")
}

/// Calls counted in one fixed window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct WindowCount {
    starts_at: i64,
    period_seconds: u32,
    calls: u64,
}

impl WindowCount {
    /// Calls already admitted in the window of `limit` that holds `now`.
    fn calls_in_window(&self, limit: &Limit, now_unix: i64) -> u64 {
        let current = window(limit, now_unix);
        if self.period_seconds == limit.period_seconds() && self.starts_at == current.starts_at {
            self.calls
        } else {
            0
        }
    }

    fn admit(limit: &Limit, now_unix: i64, calls_before: u64) -> WindowCount {
        WindowCount {
            starts_at: window(limit, now_unix).starts_at,
            period_seconds: limit.period_seconds(),
            calls: calls_before + 1,
        }
    }
}

/// An owner's stored usage: the rate-limit window and the quota window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    rate: WindowCount,
    quota: WindowCount,
}

const FORMAT: &str = "v1";

impl Usage {
    /// Reads a stored entry. Anything that is not an entry this module
    /// wrote (another format, damaged bytes) counts as no usage: the
    /// entry is the gateway's own, and refusing every request of an owner
    /// forever over a damaged counter would be worse than one fresh window.
    pub fn decode(bytes: &[u8]) -> Usage {
        Self::parse(bytes).unwrap_or_default()
    }

    fn parse(bytes: &[u8]) -> Option<Usage> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut fields = text.split(' ');
        if fields.next()? != FORMAT {
            return None;
        }
        let mut number = || fields.next()?.parse::<i64>().ok();
        let mut count = || {
            Some(WindowCount {
                starts_at: number()?,
                period_seconds: u32::try_from(number()?).ok()?,
                calls: u64::try_from(number()?).ok()?,
            })
        };
        let usage = Usage {
            rate: count()?,
            quota: count()?,
        };
        fields.next().is_none().then_some(usage)
    }

    /// The stored form: short, readable, and byte-for-byte deterministic,
    /// since a compare-and-swap compares bytes.
    pub fn encode(&self) -> Vec<u8> {
        let w = |c: &WindowCount| format!("{} {} {}", c.starts_at, c.period_seconds, c.calls);
        format!("{FORMAT} {} {}", w(&self.rate), w(&self.quota)).into_bytes()
    }
}

/// What one request does to an owner's usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metered {
    /// Whether it passes, and the rate-limit headers to send.
    pub decision: LimitDecision,
    /// The entry to write back (conditionally) when it passes; `None`
    /// when it is refused: a refused request consumes nothing, so a
    /// throttled client neither burns its quota nor costs a write.
    pub next: Option<Usage>,
}

/// Counts one request of an owner whose stored usage is `stored` against
/// its rate limit and, only if that allows it, its quota.
pub fn meter(stored: &Usage, limits: &Limits, now_unix: i64) -> Metered {
    let rate_before = stored.rate.calls_in_window(&limits.rate, now_unix);
    let rate = decide_after(rate_before, &limits.rate, now_unix);
    if !rate.allowed {
        return Metered {
            decision: rate,
            next: None,
        };
    }
    let quota_before = stored.quota.calls_in_window(&limits.quota, now_unix);
    let quota = decide_after(quota_before, &limits.quota, now_unix);
    let decision = combine(rate, quota);
    let next = decision.allowed.then(|| Usage {
        rate: WindowCount::admit(&limits.rate, now_unix, rate_before),
        quota: WindowCount::admit(&limits.quota, now_unix, quota_before),
    });
    Metered { decision, next }
}

/// The decision for the request that would be call number `before + 1`.
fn decide_after(before: u64, limit: &Limit, now_unix: i64) -> LimitDecision {
    let count = i64::try_from(before).unwrap_or(i64::MAX).saturating_add(1);
    decide(count, limit, &window(limit, now_unix), now_unix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: (u32, u32), quota: (u32, u32)) -> Limits {
        Limits {
            rate: Limit::new(rate.0, rate.1).unwrap(),
            quota: Limit::new(quota.0, quota.1).unwrap(),
        }
    }

    /// The shell's loop against a store that is read and written whole.
    fn request(stored: &mut Usage, limits: &Limits, now: i64) -> LimitDecision {
        let metered = meter(stored, limits, now);
        if let Some(next) = metered.next {
            *stored = next;
        }
        metered.decision
    }

    #[test]
    fn exactly_the_rate_limit_passes_in_a_window_then_it_resets() {
        let lim = limits((3, 60), (1000, 86_400));
        let mut usage = Usage::default();
        let passed: Vec<bool> = (0..5)
            .map(|i| request(&mut usage, &lim, 6_000 + i).allowed)
            .collect();
        assert_eq!(passed, [true, true, true, false, false]);
        let refused = request(&mut usage, &lim, 6_010);
        assert_eq!((refused.remaining, refused.retry_after), (0, Some(50)));
        let next = request(&mut usage, &lim, 6_060);
        assert!(next.allowed);
        assert_eq!(next.remaining, 2);
    }

    #[test]
    fn refused_requests_consume_nothing() {
        let lim = limits((2, 60), (3, 86_400));
        let mut usage = Usage::default();
        for i in 0..10 {
            request(&mut usage, &lim, 86_400 * 10 + i);
        }
        // Only the two admitted calls reached the quota.
        let after = request(&mut usage, &lim, 86_400 * 10 + 120);
        assert!(after.allowed, "third call of the quota");
        let over = request(&mut usage, &lim, 86_400 * 10 + 240);
        assert!(!over.allowed);
        assert_eq!(over.limit, 3, "the refusing quota's headers");
        assert_eq!(meter(&usage, &lim, 86_400 * 10 + 300).next, None);
    }

    #[test]
    fn the_quota_counts_across_rate_windows() {
        let lim = limits((100, 60), (3, 86_400));
        let mut usage = Usage::default();
        let passed: Vec<bool> = (0..4)
            .map(|i| request(&mut usage, &lim, 86_400 * 10 + i * 120).allowed)
            .collect();
        assert_eq!(passed, [true, true, true, false]);
        // The next quota window starts from zero.
        assert!(request(&mut usage, &lim, 86_400 * 11).allowed);
    }

    #[test]
    fn a_reconfigured_period_starts_a_fresh_window() {
        let mut usage = Usage::default();
        let old = limits((1, 60), (1000, 86_400));
        assert!(request(&mut usage, &old, 6_000).allowed);
        assert!(!request(&mut usage, &old, 6_001).allowed);
        let new = limits((1, 30), (1000, 86_400));
        assert!(request(&mut usage, &new, 6_002).allowed);
    }

    #[test]
    fn encoding_round_trips_and_is_deterministic() {
        let lim = limits((5, 60), (7, 3600));
        let mut usage = Usage::default();
        request(&mut usage, &lim, 1_000_000_030);
        request(&mut usage, &lim, 1_000_000_031);
        let bytes = usage.encode();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            "v1 1000000020 60 2 999997200 3600 2"
        );
        assert_eq!(Usage::decode(&bytes), usage);
        assert_eq!(Usage::decode(&bytes).encode(), bytes);
    }

    #[test]
    fn anything_else_decodes_as_no_usage() {
        for bad in [
            &b""[..],
            b"v1",
            b"v2 1 60 1 1 60 1",
            b"v1 1 60 1 1 60",
            b"v1 1 60 1 1 60 1 9",
            b"v1 1 -60 1 1 60 1",
            b"v1 1 60 -1 1 60 1",
            b"v1 x 60 1 1 60 1",
            &0i64.to_le_bytes()[..],
            b"\xff\xfe",
        ] {
            assert_eq!(Usage::decode(bad), Usage::default(), "{bad:?}");
        }
    }

    #[test]
    fn keys_keep_owners_apart() {
        assert_ne!(usage_key("a"), usage_key("b"));
        assert_ne!(usage_key("a"), creation_key("a"));
        assert!(usage_key("sub:clinic").ends_with(":sub:clinic"));
    }
}
