//! Rate limit and quota counters in the key-value store.
//!
//! Each request atomically increments its window's counter
//! (`wasi:keyvalue/atomics` `increment` returns the new value) and the
//! decision is taken on that value, so concurrent requests each see a
//! distinct count and exactly `calls` pass per window: the overshoot margin
//! is zero. A get-then-set would let concurrent requests read the same count.
//! If the store fails, the request is refused (a limit that cannot be
//! counted is not enforced otherwise).

use gateway_policy::{combine, decide, window, Limit, LimitDecision, LimitKind, Limits};
use spin_sdk::wit::wasi::keyvalue::{atomics, store};

use crate::error::GatewayError;

const STORE: &str = "default";

/// Counts one request of `owner` against its rate limit, then (only if the
/// rate limit allows it, so a throttled client does not burn its quota)
/// against its quota.
pub fn count(owner: &str, limits: &Limits, now_unix: i64) -> Result<LimitDecision, GatewayError> {
    let bucket = store::open(STORE).map_err(|_| GatewayError::LimitStoreUnavailable)?;
    let rate = step(&bucket, owner, LimitKind::RateLimit, &limits.rate, now_unix)?;
    if !rate.allowed {
        return Ok(rate);
    }
    let quota = step(&bucket, owner, LimitKind::Quota, &limits.quota, now_unix)?;
    Ok(combine(rate, quota))
}

fn step(
    bucket: &store::Bucket,
    owner: &str,
    kind: LimitKind,
    limit: &Limit,
    now_unix: i64,
) -> Result<LimitDecision, GatewayError> {
    let window = window(owner, kind, limit, now_unix);
    let count = atomics::increment(bucket, &window.key, 1)
        .map_err(|_| GatewayError::LimitStoreUnavailable)?;
    if count == 1 {
        // The first request of a window retires the previous window's
        // counter, so at most two keys per owner and limit exist. A failed
        // delete leaves garbage, not a wrong count.
        let _ = bucket.delete(&window.previous_key);
    }
    Ok(decide(count, limit, &window, now_unix))
}
