//! Rate limit and quota counting in the key-value store: one entry per
//! owner, advanced by compare-and-swap (`wasi:keyvalue/atomics`), so an
//! admitted request costs one conditional write and a refused one none.
//! `gateway_policy::meter` decides; this file only talks to the store.
//!
//! A lost race (another request of the same owner wrote first) re-reads and
//! decides again, so no two requests are admitted on the same count.
//! A missing entry is created by one elected request only (Spin's SQLite
//! store writes a missing key unconditionally; see `gateway_policy::usage`).
//! If the store fails, or the entry stays contended past the budget, the
//! request is refused (a limit that cannot be counted is not enforced
//! otherwise).

use std::time::Duration;

use gateway_policy::{creation_key, meter, usage_key, LimitDecision, Limits, Usage};
use spin_sdk::wit::wasi::keyvalue::{atomics, store};

use crate::error::GatewayError;

const STORE: &str = "default";
/// Swaps one request may lose before it gives up (503). Each lost swap
/// means another request of the same owner was counted meanwhile.
const MAX_ATTEMPTS: u32 = 200;
/// How often a request that lost the creation election looks for the
/// entry its winner is writing, and for how long in all.
const CREATION_POLL: Duration = Duration::from_micros(500);
const CREATION_WAIT: Duration = Duration::from_millis(500);

/// Counts one request of `owner` against its rate limit and quota.
pub fn count(owner: &str, limits: &Limits, now_unix: i64) -> Result<LimitDecision, GatewayError> {
    let unavailable = |_| GatewayError::LimitStoreUnavailable;
    let bucket = store::open(STORE).map_err(unavailable)?;
    let key = usage_key(owner);
    let mut cas = atomics::Cas::new(&bucket, &key).map_err(unavailable)?;
    let mut stored = cas.current().map_err(unavailable)?;
    if stored.is_none() {
        (cas, stored) = await_creation(&bucket, owner, &key)?;
    }
    for _ in 0..MAX_ATTEMPTS {
        let usage = stored.as_deref().map(Usage::decode).unwrap_or_default();
        let metered = meter(&usage, limits, now_unix);
        let Some(next) = metered.next else {
            return Ok(metered.decision);
        };
        match atomics::swap(cas, &next.encode()) {
            Ok(()) => return Ok(metered.decision),
            // The store hands back a fresh handle that has read the value
            // that beat ours.
            Err(atomics::CasError::CasFailed(fresh)) => {
                stored = fresh.current().map_err(unavailable)?;
                cas = fresh;
            }
            Err(atomics::CasError::StoreError(_)) => {
                return Err(GatewayError::LimitStoreUnavailable)
            }
        }
    }
    Err(GatewayError::LimitStoreUnavailable)
}

/// For an owner with no entry yet: the request that wins the creation
/// election returns at once with a handle that will create the entry;
/// everyone else waits until the entry exists and then counts on it. If the
/// winner vanished before it wrote (the instance died in between), the wait
/// ends and the waiter creates the entry itself: the only unconditional
/// write left, and it needs a crash inside a window of microseconds.
type Current = (atomics::Cas, Option<Vec<u8>>);

fn await_creation(bucket: &store::Bucket, owner: &str, key: &str) -> Result<Current, GatewayError> {
    let unavailable = |_| GatewayError::LimitStoreUnavailable;
    let ballot = atomics::increment(bucket, &creation_key(owner), 1).map_err(unavailable)?;
    let mut waited = Duration::ZERO;
    loop {
        let cas = atomics::Cas::new(bucket, key).map_err(unavailable)?;
        let current = cas.current().map_err(unavailable)?;
        if current.is_some() || ballot == 1 || waited >= CREATION_WAIT {
            return Ok((cas, current));
        }
        component_kit::sleep(CREATION_POLL);
        waited += CREATION_POLL;
    }
}
