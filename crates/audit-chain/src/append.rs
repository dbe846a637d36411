//! The append protocol: adding one record to a chain with optimistic
//! concurrency, over a store the caller injects (the audit service's Cosmos
//! client; fakes in tests). This module decides; the store does the I/O.
//!
//! 1. Read the head document (and its etag). None: a new chain.
//! 2. Seal the record after the known end and create its document. Its id
//!    encodes the sequence, so of two concurrent appends at one position
//!    the store lets exactly one in; the other gets "taken" (409).
//! 3. Taken: find the chain's real end, read the tail (the record with the
//!    highest id; the head may lag) or else the record at the taken
//!    position, and seal again after it. From the second time on, wait a
//!    jittered, growing delay first so that a crowd of appenders spreads
//!    out. Bounded: when attempts run out the caller answers 503.
//! 4. Advance the head with a conditional replace (or create it); the
//!    audit service does this after it has answered ([`append_record`]
//!    then [`advance_head`]), so it costs the caller nothing. A stale
//!    etag means someone else moved it: re-read, and stop once it is at or
//!    past this record. A head left behind is allowed (verification accepts
//!    correctly linked records after the head), so failing here does not
//!    undo or fail the append.
//!
//! The known end only ever moves forward from the head: starting from the
//! tail instead would let a removed last record be silently replaced. (With
//! [`AppendPolicy::start_from_tail`] step 1 reads the tail too and starts
//! there when it is at or past the head, never behind it.)
//!
//! Many records at once ([`append_records`], a page of search disclosures):
//! each step is one store call for every record still at it
//! ([`AppendStore::read_heads`], `read_tails`, `create_records`,
//! `write_heads`), which a store with concurrent I/O sends together, so a
//! page costs a few round trips instead of a few per record.

use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use crate::chain::{seal, AuditRecord, ChainHead, ChainKey, SealContext};
use crate::document::{
    head_from_document, head_to_document, record_document_id, record_from_document,
    record_to_document,
};
use crate::error::{AuditInputError, DocumentError, SealError, Violation};
use crate::input::{Actor, AuditInput, CorrelationId};
use crate::stamp::AuditTime;

/// The store operations and environment the protocol needs. Records live in
/// one container and heads in another, both partitioned by chain key.
pub trait AppendStore {
    /// A store failure (unavailable, throttled past its retries, ...).
    type Error;

    /// The chain's head document and its etag; `None` when it has none.
    fn read_head(&mut self, key: &ChainKey) -> Result<Option<HeadDocument>, Self::Error>;
    /// The chain's record document with the highest id, if any
    /// ([`crate::chain_tail_query`], one item).
    fn read_tail(&mut self, key: &ChainKey) -> Result<Option<Value>, Self::Error>;
    /// The record document with this id, if present.
    fn read_record(&mut self, key: &ChainKey, id: &str) -> Result<Option<Value>, Self::Error>;
    /// Creates a record document; `Ok(false)` when its id is taken.
    fn create_record(&mut self, key: &ChainKey, doc: &Value) -> Result<bool, Self::Error>;
    /// Creates the head document; `Ok(false)` when one exists.
    fn create_head(&mut self, key: &ChainKey, doc: &Value) -> Result<bool, Self::Error>;
    /// Replaces the head document if its etag is still `etag`; `Ok(false)`
    /// when it is not (or the head is gone).
    fn replace_head(
        &mut self,
        key: &ChainKey,
        doc: &Value,
        etag: &str,
    ) -> Result<bool, Self::Error>;
    /// The heads of several chains, as [`Self::read_head`] of each, in the
    /// order given. A store that can have requests in flight together
    /// overrides this (and the two below) to do so.
    fn read_heads(&mut self, keys: &[ChainKey]) -> Vec<Result<Option<HeadDocument>, Self::Error>> {
        keys.iter().map(|key| self.read_head(key)).collect()
    }
    /// Creates record documents, each on its own chain, as
    /// [`Self::create_record`] of each.
    fn create_records(&mut self, records: &[(ChainKey, Value)]) -> Vec<Result<bool, Self::Error>> {
        records
            .iter()
            .map(|(key, doc)| self.create_record(key, doc))
            .collect()
    }
    /// The tails of several chains, as [`Self::read_tail`] of each.
    fn read_tails(&mut self, keys: &[ChainKey]) -> Vec<Result<Option<Value>, Self::Error>> {
        keys.iter().map(|key| self.read_tail(key)).collect()
    }
    /// Writes heads, each of its own chain: a replace if the etag is given
    /// (as [`Self::replace_head`]), else a create (as [`Self::create_head`]).
    fn write_heads(&mut self, writes: &[HeadWrite]) -> Vec<Result<bool, Self::Error>> {
        writes
            .iter()
            .map(|write| match &write.etag {
                Some(etag) => self.replace_head(&write.key, &write.doc, etag),
                None => self.create_head(&write.key, &write.doc),
            })
            .collect()
    }
    /// The current time, for `createdDate`.
    fn now(&mut self) -> AuditTime;
    fn sleep(&mut self, duration: Duration);
    /// Uniform in `[0, 1)`.
    fn jitter(&mut self) -> f64;
}

/// A chain head's document as read, and its etag.
pub type HeadDocument = (Value, String);

/// One head write of [`AppendStore::write_heads`].
#[derive(Debug, Clone, PartialEq)]
pub struct HeadWrite {
    pub key: ChainKey,
    pub doc: Value,
    /// The etag the head must still have; `None` creates the head.
    pub etag: Option<String>,
}

/// The order in which to append a batch of records, each on its own chain:
/// a random permutation of `0..len` (Fisher-Yates over `random`, uniform in
/// `[0, 1)`).
///
/// Concurrent batches often name the same chains in the same order (two
/// searches that return the same first page of patients). Appended in that
/// order they move in lockstep: the second loses the race on every chain,
/// waits, and loses again on the next, so a batch of fifty takes fifty
/// conflicts and their back-offs. In independent random orders two batches
/// meet on a chain at the same moment rarely. The records are independent
/// (each links only to its own chain), so the order is free to choose.
pub fn append_order(len: usize, mut random: impl FnMut() -> f64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    for i in (1..len).rev() {
        // `random` is below 1, so `j` is at most `i`; the `min` guards a
        // source that returns exactly 1.0.
        let j = ((random() * (i + 1) as f64) as usize).min(i);
        order.swap(i, j);
    }
    order
}

/// Retry limits of one append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendPolicy {
    /// Record creates in total, the first included. Each "taken" means
    /// another append succeeded, so this bounds how many concurrent appends
    /// to one chain a request can lose to.
    pub max_attempts: u32,
    /// Ceiling of the wait before the second retry; doubles each time.
    pub base_delay: Duration,
    /// No single wait is longer than this.
    pub max_delay: Duration,
    /// Head replaces (or creates) in total.
    pub max_head_attempts: u32,
    /// Read each chain's tail with its head and seal after the tail when it
    /// is ahead: one more read per record, and no certain loss on a chain
    /// whose head lags behind a concurrent append (between its create and
    /// its head advance). Worth it for a page of disclosures, whose chains
    /// concurrent searches share; not for a single record.
    pub start_from_tail: bool,
}

impl Default for AppendPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 64,
            base_delay: Duration::from_millis(4),
            max_delay: Duration::from_millis(100),
            max_head_attempts: 16,
            start_from_tail: false,
        }
    }
}

impl AppendPolicy {
    /// Full-jitter wait after `conflicts` lost creates: none after the
    /// first (the tail just read is fresh), then
    /// `jitter * min(max_delay, base_delay * 2^(conflicts-2))`.
    pub fn backoff(&self, conflicts: u32, jitter: f64) -> Duration {
        if conflicts < 2 {
            return Duration::ZERO;
        }
        backoff::full_jitter(self.base_delay, self.max_delay, conflicts - 2, jitter)
    }
}

/// What the audit service adds to an input, except the time (read at each
/// attempt, so that `createdDate` follows the chain order closely).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendRequest {
    pub input: AuditInput,
    pub id: Uuid,
    pub correlation_id: CorrelationId,
    pub actor: Actor,
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub record: AuditRecord,
    /// Record creates it took (1 without contention).
    pub attempts: u32,
    /// Whether the head is at or past the record; `false` leaves a lagging
    /// head, which the design allows.
    pub head_advanced: bool,
}

/// Why nothing was appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendError<E> {
    /// The store failed; nothing was stored by this append.
    Store(E),
    /// Every attempt lost to a concurrent append.
    Contended { attempts: u32 },
    /// A stored head or record of the chain cannot be read: the chain is
    /// damaged and cannot be extended without hiding that.
    Damaged(DocumentError),
    /// The chain has no sequence numbers left.
    Seal(SealError),
}

impl<E> From<DocumentError> for AppendError<E> {
    fn from(e: DocumentError) -> Self {
        AppendError::Damaged(e)
    }
}

/// One record's outcome in [`append_records`].
pub type AppendResult<E> = Result<Stored, AppendError<E>>;

/// A record created on its chain whose head has not been advanced yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub record: AuditRecord,
    /// Record creates it took (1 without contention).
    pub attempts: u32,
    /// Step 4, still to do: [`advance_head`].
    pub head: PendingHead,
}

/// Where a chain's head must move after an append, and what it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingHead {
    key: ChainKey,
    target: ChainHead,
    current: Option<(ChainHead, String)>,
}

/// Appends `request` to its resource's chain, head advance included. See
/// the module documentation.
pub fn append<S: AppendStore>(
    store: &mut S,
    request: &AppendRequest,
    policy: &AppendPolicy,
) -> Result<Appended, AppendError<S::Error>> {
    let stored = append_record(store, request, policy)?;
    let head_advanced = advance_head(store, stored.head, policy);
    Ok(Appended {
        record: stored.record,
        attempts: stored.attempts,
        head_advanced,
    })
}

/// Steps 1 to 3: the record is stored (and can be acknowledged) when this
/// returns. The head advance is left to the caller, who may run it after
/// answering: a lagging head is allowed, so its outcome never changes
/// whether the append happened.
pub fn append_record<S: AppendStore>(
    store: &mut S,
    request: &AppendRequest,
    policy: &AppendPolicy,
) -> Result<Stored, AppendError<S::Error>> {
    append_records(store, std::slice::from_ref(request), policy)
        .pop()
        .unwrap_or(Err(AppendError::Contended { attempts: 0 }))
}

/// [`append_record`] for many records at once, with the store's round
/// trips shared: each step (read the heads, create the records, find where
/// the chains of the records that lost really end) is one call for every
/// record still at it ([`AppendStore::read_heads`], `create_records`,
/// `read_tails`), so a page of fifty disclosures costs a few round trips
/// however many races it loses. Records of one chain go in successive
/// rounds, so no round races with itself. One result per request, in the
/// order given; a failure fails only its own record (the others are stored).
pub fn append_records<S: AppendStore>(
    store: &mut S,
    requests: &[AppendRequest],
    policy: &AppendPolicy,
) -> Vec<AppendResult<S::Error>> {
    let mut results: Vec<Option<AppendResult<S::Error>>> = requests.iter().map(|_| None).collect();
    for round in rounds(requests) {
        append_round(store, requests, &round, policy, &mut results);
    }
    results
        .into_iter()
        .map(|result| result.unwrap_or(Err(AppendError::Contended { attempts: 0 })))
        .collect()
}

/// The indexes of `requests` in rounds, the n-th record of each chain in
/// round n, each round in the order given.
fn rounds(requests: &[AppendRequest]) -> Vec<Vec<usize>> {
    let mut seen: std::collections::HashMap<ChainKey, usize> = Default::default();
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    for (index, request) in requests.iter().enumerate() {
        let count = seen
            .entry(ChainKey::of(&request.input.resource))
            .or_default();
        if rounds.len() <= *count {
            rounds.push(Vec::new());
        }
        rounds[*count].push(index);
        *count += 1;
    }
    rounds
}

/// Where one append stands: its chain, the head read at the start (where
/// the head advance starts from), the chain end it will seal after, and
/// the number of the record create it is about to make.
struct Attempt {
    index: usize,
    key: ChainKey,
    head: Option<(ChainHead, String)>,
    end: Option<ChainHead>,
    number: u32,
}

impl Attempt {
    /// The first attempt of record `index` on chain `key`, from its head
    /// and (if read) tail: it seals after the tail when that is at or past
    /// the head, else after the head.
    fn first<E>(
        index: usize,
        key: ChainKey,
        head: Result<Option<HeadDocument>, E>,
        tail: Result<Option<Value>, E>,
    ) -> Result<Self, AppendError<E>> {
        let head = parse_head(&key, head.map_err(AppendError::Store)?)?;
        let tail = match tail.map_err(AppendError::Store)? {
            Some(doc) => Some(parse_record(&key, doc)?),
            None => None,
        };
        let end = match (&head, tail) {
            (Some((h, _)), Some(t)) if t.sequence < h.sequence => Some(h.clone()),
            (_, Some(t)) => Some(ChainHead::of(&t)),
            (head, None) => head.as_ref().map(|(h, _)| h.clone()),
        };
        Ok(Attempt {
            index,
            key,
            head,
            end,
            number: 1,
        })
    }
}

/// Steps 1 to 3 for records on distinct chains (`round`, indexes into
/// `requests`), each step shared by every record still at it.
fn append_round<S: AppendStore>(
    store: &mut S,
    requests: &[AppendRequest],
    round: &[usize],
    policy: &AppendPolicy,
    results: &mut [Option<AppendResult<S::Error>>],
) {
    let max_attempts = policy.max_attempts.max(1);
    let keys: Vec<ChainKey> = round
        .iter()
        .map(|&i| ChainKey::of(&requests[i].input.resource))
        .collect();
    let heads = store.read_heads(&keys);
    // With `start_from_tail`, the end starts at the tail when the tail is at
    // or past the head, never behind it (a removed last record must not be
    // replaced silently).
    let tails = if policy.start_from_tail {
        store.read_tails(&keys)
    } else {
        keys.iter().map(|_| Ok(None)).collect()
    };
    let mut active = Vec::new();
    for (((&index, key), head), tail) in round.iter().zip(keys).zip(heads).zip(tails) {
        match Attempt::first(index, key, head, tail) {
            Ok(attempt) => active.push(attempt),
            Err(error) => results[index] = Some(Err(error)),
        }
    }
    let mut losses = 0;
    while !active.is_empty() {
        // Seal each record after the end it knows, and create them all.
        let mut sealed = Vec::new();
        for attempt in active.drain(..) {
            let request = &requests[attempt.index];
            let context = SealContext {
                id: request.id,
                created_date: store.now(),
                correlation_id: request.correlation_id.clone(),
                actor: request.actor.clone(),
            };
            match seal(request.input.clone(), context, attempt.end.as_ref()) {
                Ok(sealed_record) => sealed.push((attempt, sealed_record)),
                Err(error) => results[attempt.index] = Some(Err(AppendError::Seal(error))),
            }
        }
        let documents: Vec<(ChainKey, Value)> = sealed
            .iter()
            .map(|(attempt, (record, _))| (attempt.key.clone(), record_to_document(record)))
            .collect();
        let created = store.create_records(&documents);
        let mut lost = Vec::new();
        for ((attempt, (record, target)), created) in sealed.into_iter().zip(created) {
            let index = attempt.index;
            results[index] = match created {
                Ok(true) => Some(Ok(Stored {
                    record,
                    attempts: attempt.number,
                    head: PendingHead {
                        key: attempt.key,
                        target,
                        current: attempt.head,
                    },
                })),
                Ok(false) if attempt.number >= max_attempts => Some(Err(AppendError::Contended {
                    attempts: max_attempts,
                })),
                Ok(false) => {
                    lost.push((attempt, record.sequence));
                    None
                }
                Err(error) => Some(Err(AppendError::Store(error))),
            };
        }
        if lost.is_empty() {
            break;
        }
        // From the second loss on, a jittered, growing wait, so that a
        // crowd of appenders spreads out.
        losses += 1;
        let wait = policy.backoff(losses, store.jitter());
        if !wait.is_zero() {
            store.sleep(wait);
        }
        let keys: Vec<ChainKey> = lost.iter().map(|(a, _)| a.key.clone()).collect();
        let tails = store.read_tails(&keys);
        for ((mut attempt, taken), tail) in lost.into_iter().zip(tails) {
            match tail
                .map_err(AppendError::Store)
                .and_then(|tail| chain_end(store, &attempt.key, taken, tail))
            {
                Ok(found) => {
                    if found.is_some() {
                        attempt.end = found;
                    }
                    attempt.number += 1;
                    active.push(attempt);
                }
                Err(error) => results[attempt.index] = Some(Err(error)),
            }
        }
    }
}

fn read_head<S: AppendStore>(
    store: &mut S,
    key: &ChainKey,
) -> Result<Option<(ChainHead, String)>, AppendError<S::Error>> {
    parse_head(key, store.read_head(key).map_err(AppendError::Store)?)
}

/// A head document as read, checked to be of chain `key`.
fn parse_head<E>(
    key: &ChainKey,
    read: Option<HeadDocument>,
) -> Result<Option<(ChainHead, String)>, AppendError<E>> {
    match read {
        None => Ok(None),
        Some((doc, etag)) => {
            let head = head_from_document(doc)?;
            if head.chain_key != *key {
                return Err(foreign("chainKey").into());
            }
            Ok(Some((head, etag)))
        }
    }
}

fn foreign(field: &str) -> DocumentError {
    DocumentError(AuditInputError::new(
        field,
        Violation::Inconsistent("belongs to another chain"),
    ))
}

fn parse_record<E>(key: &ChainKey, doc: Value) -> Result<AuditRecord, AppendError<E>> {
    let record = record_from_document(doc)?;
    if record.chain_key() != *key {
        return Err(foreign("chainKey").into());
    }
    Ok(record)
}

/// Where the chain ends now that position `taken` is known to be occupied,
/// given its `tail` (the record with the highest id, [`AppendStore::read_tails`]):
/// the tail, or (if the tail query does not see that far yet) the record at
/// `taken`. `None` when neither can be found (removed meanwhile): the caller
/// keeps what it knew and tries again.
fn chain_end<S: AppendStore>(
    store: &mut S,
    key: &ChainKey,
    taken: u64,
    tail: Option<Value>,
) -> Result<Option<ChainHead>, AppendError<S::Error>> {
    if let Some(doc) = tail {
        let tail = parse_record(key, doc)?;
        if tail.sequence >= taken {
            return Ok(Some(ChainHead::of(&tail)));
        }
    }
    let id = record_document_id(key, taken);
    match store.read_record(key, &id).map_err(AppendError::Store)? {
        Some(doc) => Ok(Some(ChainHead::of(&parse_record(key, doc)?))),
        None => Ok(None),
    }
}

/// Step 4: moves the head forward to the stored record, starting from the
/// head read before the append (if any). Returns whether the head is at or
/// past the record; `false` leaves a lagging head, which is allowed.
pub fn advance_head<S: AppendStore>(
    store: &mut S,
    pending: PendingHead,
    policy: &AppendPolicy,
) -> bool {
    let PendingHead {
        key,
        target,
        mut current,
    } = pending;
    let doc = head_to_document(&target);
    for _ in 0..policy.max_head_attempts.max(1) {
        let done = match &current {
            Some((head, _)) if head.sequence >= target.sequence => return true,
            Some((_, etag)) => store.replace_head(&key, &doc, etag),
            None => store.create_head(&key, &doc),
        };
        match done {
            Ok(true) => return true,
            Ok(false) => {}
            // The record stands; a lagging head is allowed.
            Err(_) => return false,
        }
        current = match read_head(store, &key) {
            Ok(head) => head,
            Err(_) => return false,
        };
    }
    false
}

/// [`advance_head`] for many records, the first write of every head
/// together ([`AppendStore::write_heads`]); a head whose write loses (or
/// any later step) goes on alone. Of several records of one chain only the
/// last is needed. Returns whether every head is at or past its record.
pub fn advance_heads<S: AppendStore>(
    store: &mut S,
    pending: Vec<PendingHead>,
    policy: &AppendPolicy,
) -> bool {
    let mut by_chain: std::collections::BTreeMap<ChainKey, PendingHead> = Default::default();
    for head in pending {
        match by_chain.get(&head.key) {
            Some(known) if known.target.sequence >= head.target.sequence => {}
            _ => {
                by_chain.insert(head.key.clone(), head);
            }
        }
    }
    let furthest: Vec<PendingHead> = by_chain
        .into_values()
        .filter(|p| !matches!(&p.current, Some((head, _)) if head.sequence >= p.target.sequence))
        .collect();
    let writes: Vec<HeadWrite> = furthest
        .iter()
        .map(|p| HeadWrite {
            key: p.key.clone(),
            doc: head_to_document(&p.target),
            etag: p.current.as_ref().map(|(_, etag)| etag.clone()),
        })
        .collect();
    let written = store.write_heads(&writes);
    let mut all_advanced = true;
    for (pending, written) in furthest.into_iter().zip(written) {
        all_advanced &= match written {
            Ok(true) => true,
            // The record stands; a lagging head is allowed.
            Err(_) => false,
            Ok(false) => match read_head(store, &pending.key) {
                Ok(current) => advance_head(
                    store,
                    PendingHead { current, ..pending },
                    &AppendPolicy {
                        max_head_attempts: policy.max_head_attempts.saturating_sub(1),
                        ..*policy
                    },
                ),
                Err(_) => false,
            },
        };
    }
    all_advanced
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::tests::input;
    use crate::document::{chain_records_query, head_document_id};
    use crate::input::{Operation, ResourceType};
    use crate::verify::verify_documents;
    use std::collections::BTreeMap;

    /// A deterministic source for the order tests (an LCG).
    fn source(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn an_append_order_is_a_permutation_and_two_orders_rarely_agree() {
        for len in [0, 1, 2, 50, 1000] {
            let mut order = append_order(len, source(7));
            order.sort_unstable();
            assert_eq!(order, (0..len).collect::<Vec<_>>(), "len {len}");
        }
        // Two batches over the same fifty chains: positions where both
        // would append to the same chain at the same step are few (about
        // one expected), where the input order makes it all fifty.
        let (a, b) = (append_order(50, source(1)), append_order(50, source(2)));
        let same_step = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        assert!(same_step <= 5, "{same_step} of 50 in lockstep");
        // A source at its upper bound still gives a permutation.
        let mut edge = append_order(10, || 1.0);
        edge.sort_unstable();
        assert_eq!(edge, (0..10).collect::<Vec<_>>());
    }

    const PID: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";

    type Hook = Box<dyn FnMut(&mut Fake)>;

    /// An in-memory store. `interleave` runs before each record create and
    /// `after_create` after each successful one, standing in for concurrent
    /// appenders.
    #[derive(Default)]
    struct Fake {
        records: BTreeMap<String, Value>,
        head: Option<(Value, u64)>,
        etag_counter: u64,
        clock: i64,
        slept: Vec<Duration>,
        fail_head_writes: bool,
        fail_reads: bool,
        tail_blind: bool,
        interleave: Option<Hook>,
        after_create: Option<Hook>,
        creates: u32,
    }

    impl Fake {
        fn head_etag(&self) -> Option<String> {
            self.head.as_ref().map(|(_, e)| format!("\"{e}\""))
        }

        fn set_head(&mut self, doc: Value) {
            self.etag_counter += 1;
            self.head = Some((doc, self.etag_counter));
        }

        fn docs(&self) -> Vec<Value> {
            self.records.values().cloned().collect()
        }
    }

    impl AppendStore for Fake {
        type Error = &'static str;

        fn read_head(&mut self, _: &ChainKey) -> Result<Option<HeadDocument>, &'static str> {
            if self.fail_reads {
                return Err("down");
            }
            let etag = self.head_etag();
            Ok(self.head.as_ref().map(|(d, _)| (d.clone(), etag.unwrap())))
        }

        fn read_tail(&mut self, _: &ChainKey) -> Result<Option<Value>, &'static str> {
            if self.tail_blind {
                return Ok(None);
            }
            Ok(self.records.values().next_back().cloned())
        }

        fn read_record(&mut self, _: &ChainKey, id: &str) -> Result<Option<Value>, &'static str> {
            Ok(self.records.get(id).cloned())
        }

        fn create_record(&mut self, _: &ChainKey, doc: &Value) -> Result<bool, &'static str> {
            self.creates += 1;
            if let Some(mut f) = self.interleave.take() {
                f(self);
                self.interleave = Some(f);
            }
            let id = doc["id"].as_str().unwrap().to_owned();
            if self.records.contains_key(&id) {
                return Ok(false);
            }
            self.records.insert(id, doc.clone());
            if let Some(mut f) = self.after_create.take() {
                f(self);
                self.after_create = Some(f);
            }
            Ok(true)
        }

        fn create_head(&mut self, _: &ChainKey, doc: &Value) -> Result<bool, &'static str> {
            if self.fail_head_writes {
                return Err("down");
            }
            if self.head.is_some() {
                return Ok(false);
            }
            self.set_head(doc.clone());
            Ok(true)
        }

        fn replace_head(
            &mut self,
            _: &ChainKey,
            doc: &Value,
            etag: &str,
        ) -> Result<bool, &'static str> {
            if self.fail_head_writes {
                return Err("down");
            }
            if self.head_etag().as_deref() != Some(etag) {
                return Ok(false);
            }
            self.set_head(doc.clone());
            Ok(true)
        }

        fn now(&mut self) -> AuditTime {
            self.clock += 1;
            AuditTime::from_unix_millis(1_700_000_000_000 + self.clock).unwrap()
        }

        fn sleep(&mut self, d: Duration) {
            self.slept.push(d);
        }

        fn jitter(&mut self) -> f64 {
            0.5
        }
    }

    fn request(n: u128) -> AppendRequest {
        AppendRequest {
            input: input(ResourceType::Patient, PID, Operation::Read),
            id: Uuid::from_u128(0xb000_0000_0000_4000_8000_0000_0000_0000 + n),
            correlation_id: CorrelationId::parse("0af7651916cd43dd8448eb211c80319c").unwrap(),
            actor: Actor::parse("clinic").unwrap(),
        }
    }

    fn key() -> ChainKey {
        ChainKey::of(&request(0).input.resource)
    }

    fn verify(store: &Fake) -> crate::VerifyReport {
        let head = store.head.as_ref().map(|(d, _)| d.clone());
        verify_documents(&key(), &store.docs(), head.as_ref())
    }

    fn head_sequence(store: &Fake) -> u64 {
        store.head.as_ref().unwrap().0["sequence"].as_u64().unwrap()
    }

    #[test]
    fn appends_build_an_intact_chain_and_move_the_head() {
        let mut store = Fake::default();
        for n in 1..=5u64 {
            let out = append(&mut store, &request(n.into()), &AppendPolicy::default()).unwrap();
            assert_eq!(out.record.sequence, n);
            assert_eq!((out.attempts, out.head_advanced), (1, true));
            assert_eq!(head_sequence(&store), n);
        }
        let report = verify(&store);
        assert!(report.intact, "{report:?}");
        assert_eq!(report.records_checked, 5);
        assert!(store.slept.is_empty());
    }

    /// Another appender, running the same protocol, that wins the race
    /// `times` times. (The hook is out of the store while it runs, so the
    /// rival's own creates are undisturbed.)
    fn rival(times: u32) -> Hook {
        let mut left = times;
        let mut n = 1000u128;
        Box::new(move |store: &mut Fake| {
            if left == 0 {
                return;
            }
            left -= 1;
            n += 1;
            append(store, &request(n), &AppendPolicy::default()).unwrap();
        })
    }

    #[test]
    fn a_lost_race_moves_to_the_real_end_and_keeps_the_chain_whole() {
        let mut store = Fake::default();
        append(&mut store, &request(1), &AppendPolicy::default()).unwrap();
        store.interleave = Some(rival(3));
        let out = append(&mut store, &request(2), &AppendPolicy::default()).unwrap();
        store.interleave = None;
        assert_eq!(out.attempts, 4);
        assert_eq!(out.record.sequence, 5);
        assert!(out.head_advanced);
        assert_eq!(head_sequence(&store), 5);
        assert!(verify(&store).intact);
        // No wait after the first loss, then growing jittered waits.
        assert_eq!(
            store.slept,
            vec![Duration::from_millis(2), Duration::from_millis(4)]
        );
    }

    #[test]
    fn a_lagging_head_is_skipped_via_the_tail() {
        let mut store = Fake::default();
        for n in 1..=3 {
            append(&mut store, &request(n), &AppendPolicy::default()).unwrap();
        }
        // The head stays at 1, as if two appenders had not advanced it yet.
        let first = record_from_document(store.records.values().next().unwrap().clone()).unwrap();
        store.set_head(head_to_document(&ChainHead::of(&first)));
        let out = append(&mut store, &request(4), &AppendPolicy::default()).unwrap();
        assert_eq!((out.record.sequence, out.attempts), (4, 2));
        assert_eq!(head_sequence(&store), 4);
        assert!(verify(&store).intact);
        // The same when the tail query does not see the new records yet:
        // the record at the taken position is read instead.
        store.set_head(head_to_document(&ChainHead::of(&first)));
        store.tail_blind = true;
        let out = append(&mut store, &request(5), &AppendPolicy::default()).unwrap();
        assert_eq!(out.record.sequence, 5);
        assert!(verify(&store).intact);
    }

    #[test]
    fn a_deferred_head_advance_may_run_late_and_out_of_order() {
        let policy = AppendPolicy::default();
        let mut store = Fake::default();
        // Two appends answered before either advanced the head.
        let first = append_record(&mut store, &request(1), &policy).unwrap();
        assert!(
            store.head.is_none(),
            "append_record must not touch the head"
        );
        let second = append_record(&mut store, &request(2), &policy).unwrap();
        assert_eq!((second.record.sequence, second.attempts), (2, 2));
        assert!(verify(&store).intact, "a lagging head is a valid chain");
        // The later advance lands first; the earlier one must not move the
        // head back.
        assert!(advance_head(&mut store, second.head, &policy));
        assert_eq!(head_sequence(&store), 2);
        assert!(advance_head(&mut store, first.head, &policy));
        assert_eq!(head_sequence(&store), 2);
        assert!(verify(&store).intact);
    }

    #[test]
    fn attempts_are_bounded() {
        let mut store = Fake {
            interleave: Some(rival(u32::MAX)),
            ..Fake::default()
        };
        let policy = AppendPolicy {
            max_attempts: 5,
            ..AppendPolicy::default()
        };
        let err = append(&mut store, &request(1), &policy).unwrap_err();
        assert_eq!(err, AppendError::Contended { attempts: 5 });
        assert_eq!(store.creates, 5 + 5);
        store.interleave = None;
        assert!(verify(&store).intact);
        // Waits never exceed the cap.
        let long = AppendPolicy::default();
        for n in 0..100 {
            assert!(long.backoff(n, 1.0) <= long.max_delay);
            assert_eq!(long.backoff(n, f64::NAN), Duration::ZERO);
        }
    }

    #[test]
    fn a_removed_last_record_is_not_papered_over() {
        let mut store = Fake::default();
        for n in 1..=3 {
            append(&mut store, &request(n), &AppendPolicy::default()).unwrap();
        }
        let last = record_document_id(&key(), 3);
        store.records.remove(&last);
        let out = append(&mut store, &request(4), &AppendPolicy::default()).unwrap();
        // Appended after the head (3), not after the tail (2).
        assert_eq!(out.record.sequence, 4);
        let report = verify(&store);
        assert_eq!(
            report.first_break.map(|b| (b.sequence, b.reason)),
            Some((Some(3), crate::BreakReason::MissingRecord))
        );
    }

    #[test]
    fn a_head_write_failure_keeps_the_record() {
        let mut store = Fake::default();
        append(&mut store, &request(1), &AppendPolicy::default()).unwrap();
        store.fail_head_writes = true;
        let out = append(&mut store, &request(2), &AppendPolicy::default()).unwrap();
        assert!(!out.head_advanced);
        assert_eq!(store.records.len(), 2);
        assert_eq!(head_sequence(&store), 1);
        // The lagging head is allowed, and the next append catches up.
        assert!(verify(&store).intact);
        store.fail_head_writes = false;
        let out = append(&mut store, &request(3), &AppendPolicy::default()).unwrap();
        assert_eq!((out.record.sequence, out.head_advanced), (3, true));
        assert_eq!(head_sequence(&store), 3);
    }

    #[test]
    fn a_head_already_ahead_is_left_alone() {
        let mut store = Fake::default();
        append(&mut store, &request(1), &AppendPolicy::default()).unwrap();
        // A rival appends (and advances the head) right after our record is
        // stored and before we move the head: our etag is stale, and the
        // head re-read is already past our record.
        store.after_create = Some(rival(1));
        let out = append(&mut store, &request(2), &AppendPolicy::default()).unwrap();
        store.after_create = None;
        assert_eq!((out.record.sequence, out.head_advanced), (2, true));
        assert_eq!(head_sequence(&store), 3);
        assert!(verify(&store).intact);
    }

    #[test]
    fn store_failures_and_damage_are_reported() {
        let mut store = Fake {
            fail_reads: true,
            ..Fake::default()
        };
        assert_eq!(
            append(&mut store, &request(1), &AppendPolicy::default()),
            Err(AppendError::Store("down"))
        );
        assert!(store.records.is_empty());
        let mut store = Fake::default();
        append(&mut store, &request(1), &AppendPolicy::default()).unwrap();
        let mut doc = store.head.clone().unwrap().0;
        doc["sequence"] = serde_json::json!("one");
        store.set_head(doc);
        assert!(matches!(
            append(&mut store, &request(2), &AppendPolicy::default()),
            Err(AppendError::Damaged(_))
        ));
        // A tail that is not a readable record.
        let mut store = Fake::default();
        append(&mut store, &request(1), &AppendPolicy::default()).unwrap();
        store.head = None;
        let id = record_document_id(&key(), 1);
        store.records.get_mut(&id).unwrap()["actor"] = serde_json::json!("");
        assert!(matches!(
            append(&mut store, &request(2), &AppendPolicy::default()),
            Err(AppendError::Damaged(_))
        ));
        assert_eq!(store.records.len(), 1);
    }

    #[test]
    fn ids_and_queries_agree_with_the_document_layout() {
        assert_eq!(head_document_id(&key()), format!("patient:{PID}:head"));
        assert_eq!(
            chain_records_query(&key(), None, None).parameters[0].1,
            serde_json::json!(format!("patient:{PID}"))
        );
    }

    /// Many chains in one store, counting the calls a batch makes.
    #[derive(Default)]
    struct Chains {
        records: BTreeMap<String, Value>,
        heads: BTreeMap<String, (Value, u64)>,
        etags: u64,
        clock: i64,
        /// Sizes of each read_heads / create_records / write_heads call.
        head_reads: Vec<usize>,
        record_creates: Vec<usize>,
        head_writes: Vec<usize>,
        tail_reads: Vec<usize>,
        /// Before the next batch create, another appender adds a record to
        /// each of these chains.
        rivals: Vec<ChainKey>,
        /// Head reads of this chain fail.
        broken: Option<ChainKey>,
    }

    impl Chains {
        fn etag(&self, key: &ChainKey) -> Option<String> {
            self.heads
                .get(key.as_str())
                .map(|(_, e)| format!("\"{e}\""))
        }

        fn chain_docs(&self, key: &ChainKey) -> Vec<Value> {
            let prefix = format!("{}:", key.as_str());
            self.records
                .iter()
                .filter(|(id, _)| id.starts_with(&prefix))
                .map(|(_, d)| d.clone())
                .collect()
        }

        fn verify(&self, key: &ChainKey) -> crate::VerifyReport {
            let head = self.heads.get(key.as_str()).map(|(d, _)| d.clone());
            verify_documents(key, &self.chain_docs(key), head.as_ref())
        }

        fn head_sequence(&self, key: &ChainKey) -> Option<u64> {
            self.heads
                .get(key.as_str())
                .map(|(d, _)| d["sequence"].as_u64().unwrap())
        }
    }

    impl AppendStore for Chains {
        type Error = &'static str;

        fn read_head(&mut self, key: &ChainKey) -> Result<Option<HeadDocument>, &'static str> {
            if self.broken.as_ref() == Some(key) {
                return Err("down");
            }
            let etag = self.etag(key);
            Ok(self
                .heads
                .get(key.as_str())
                .map(|(d, _)| (d.clone(), etag.unwrap())))
        }

        fn read_heads(
            &mut self,
            keys: &[ChainKey],
        ) -> Vec<Result<Option<HeadDocument>, &'static str>> {
            self.head_reads.push(keys.len());
            keys.iter().map(|k| self.read_head(k)).collect()
        }

        fn read_tail(&mut self, key: &ChainKey) -> Result<Option<Value>, &'static str> {
            Ok(self.chain_docs(key).pop())
        }

        fn read_tails(&mut self, keys: &[ChainKey]) -> Vec<Result<Option<Value>, &'static str>> {
            self.tail_reads.push(keys.len());
            keys.iter().map(|k| self.read_tail(k)).collect()
        }

        fn read_record(&mut self, _: &ChainKey, id: &str) -> Result<Option<Value>, &'static str> {
            Ok(self.records.get(id).cloned())
        }

        fn create_record(&mut self, _: &ChainKey, doc: &Value) -> Result<bool, &'static str> {
            let id = doc["id"].as_str().unwrap().to_owned();
            if self.records.contains_key(&id) {
                return Ok(false);
            }
            self.records.insert(id, doc.clone());
            Ok(true)
        }

        fn create_records(
            &mut self,
            docs: &[(ChainKey, Value)],
        ) -> Vec<Result<bool, &'static str>> {
            let counted = (
                self.head_reads.len(),
                self.record_creates.len(),
                self.tail_reads.len(),
            );
            for (n, key) in std::mem::take(&mut self.rivals).into_iter().enumerate() {
                let mut rival = chain_request(&key, 9000 + n as u128);
                rival.actor = Actor::parse("rival").unwrap();
                append(self, &rival, &AppendPolicy::default()).unwrap();
            }
            // The rivals' own calls are not the batch's.
            self.head_reads.truncate(counted.0);
            self.record_creates.truncate(counted.1);
            self.tail_reads.truncate(counted.2);
            self.record_creates.push(docs.len());
            let out = docs.iter().map(|(k, d)| self.create_record(k, d)).collect();
            out
        }

        fn create_head(&mut self, key: &ChainKey, doc: &Value) -> Result<bool, &'static str> {
            if self.heads.contains_key(key.as_str()) {
                return Ok(false);
            }
            self.etags += 1;
            self.heads
                .insert(key.as_str().to_owned(), (doc.clone(), self.etags));
            Ok(true)
        }

        fn replace_head(
            &mut self,
            key: &ChainKey,
            doc: &Value,
            etag: &str,
        ) -> Result<bool, &'static str> {
            if self.etag(key).as_deref() != Some(etag) {
                return Ok(false);
            }
            self.etags += 1;
            self.heads
                .insert(key.as_str().to_owned(), (doc.clone(), self.etags));
            Ok(true)
        }

        fn write_heads(&mut self, writes: &[HeadWrite]) -> Vec<Result<bool, &'static str>> {
            self.head_writes.push(writes.len());
            writes
                .iter()
                .map(|w| match &w.etag {
                    Some(etag) => self.replace_head(&w.key, &w.doc, etag),
                    None => self.create_head(&w.key, &w.doc),
                })
                .collect()
        }

        fn now(&mut self) -> AuditTime {
            self.clock += 1;
            AuditTime::from_unix_millis(1_700_000_000_000 + self.clock).unwrap()
        }

        fn sleep(&mut self, _: Duration) {}

        fn jitter(&mut self) -> f64 {
            0.5
        }
    }

    fn patient(n: u32) -> String {
        format!("3f2504e0-4f89-11d3-9a0c-{n:012x}")
    }

    fn chain_request(key: &ChainKey, n: u128) -> AppendRequest {
        let id = key.as_str().split_once(':').unwrap().1.to_owned();
        AppendRequest {
            input: input(ResourceType::Patient, &id, Operation::Read),
            ..request(n)
        }
    }

    fn patient_key(n: u32) -> ChainKey {
        ChainKey::of(&input(ResourceType::Patient, &patient(n), Operation::Read).resource)
    }

    #[test]
    fn a_batch_shares_its_round_trips_and_builds_intact_chains() {
        let policy = from_tail();
        let mut store = Chains::default();
        // One record already on chain 0, so heads exist and do not.
        append(&mut store, &chain_request(&patient_key(0), 1), &policy).unwrap();
        store.head_reads.clear();
        store.record_creates.clear();
        store.tail_reads.clear();
        let requests: Vec<AppendRequest> = (0..50)
            .map(|n| chain_request(&patient_key(n), 100 + u128::from(n)))
            .collect();
        let stored: Vec<Stored> = append_records(&mut store, &requests, &policy)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            (store.head_reads.clone(), store.record_creates.clone()),
            (vec![50], vec![50])
        );
        assert_eq!(
            store.tail_reads,
            vec![50],
            "read with the heads, no race lost"
        );
        for (n, s) in stored.iter().enumerate() {
            assert_eq!(s.record.id, requests[n].id, "answered in the order given");
            assert_eq!(s.record.sequence, if n == 0 { 2 } else { 1 });
            assert_eq!(s.attempts, 1);
        }
        assert!(advance_heads(
            &mut store,
            stored.into_iter().map(|s| s.head).collect(),
            &policy
        ));
        assert_eq!(store.head_writes, vec![50]);
        for n in 0..50 {
            let key = patient_key(n);
            assert!(store.verify(&key).intact, "chain {n}");
            assert_eq!(store.head_sequence(&key), Some(if n == 0 { 2 } else { 1 }));
        }
    }

    #[test]
    fn records_that_lose_their_races_retry_together_and_the_rest_are_unaffected() {
        let policy = from_tail();
        // Rivals get in first on chains 1, 3 and 4.
        let mut store = Chains {
            rivals: vec![patient_key(1), patient_key(3), patient_key(4)],
            ..Chains::default()
        };
        let requests: Vec<AppendRequest> = (0..6)
            .map(|n| chain_request(&patient_key(n), n.into()))
            .collect();
        let stored: Vec<Stored> = append_records(&mut store, &requests, &policy)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let shape: Vec<(u32, u64)> = stored
            .iter()
            .map(|s| (s.attempts, s.record.sequence))
            .collect();
        assert_eq!(shape, vec![(1, 1), (2, 2), (1, 1), (2, 2), (2, 2), (1, 1)]);
        // One call per step: the three losers found their ends together and
        // were created together.
        assert_eq!(store.record_creates, vec![6, 3]);
        assert_eq!(store.tail_reads, vec![6, 3]);
        // The rivals moved those heads: our batch writes of them are stale,
        // re-read, and completed alone.
        assert!(advance_heads(
            &mut store,
            stored.into_iter().map(|s| s.head).collect(),
            &policy
        ));
        for n in 0..6 {
            assert!(store.verify(&patient_key(n)).intact, "chain {n}");
            let expected = if [1, 3, 4].contains(&n) { 2 } else { 1 };
            assert_eq!(store.head_sequence(&patient_key(n)), Some(expected));
        }
    }

    #[test]
    fn records_of_one_chain_go_in_rounds_and_failures_stay_their_own() {
        let policy = AppendPolicy::default();
        let mut store = Chains {
            broken: Some(patient_key(2)),
            ..Chains::default()
        };
        let (a, b) = (patient_key(1), patient_key(2));
        let requests = vec![
            chain_request(&a, 1),
            chain_request(&a, 2),
            chain_request(&b, 3),
            chain_request(&a, 4),
        ];
        let results = append_records(&mut store, &requests, &policy);
        assert_eq!(
            store.head_reads,
            vec![2, 1, 1],
            "three rounds: [a, b], [a], [a]"
        );
        assert_eq!(
            results[2].as_ref().unwrap_err(),
            &AppendError::Store("down")
        );
        let sequences: Vec<u64> = [0, 1, 3]
            .iter()
            .map(|&i| results[i].as_ref().unwrap().record.sequence)
            .collect();
        assert_eq!(sequences, vec![1, 2, 3]);
        let heads = [0, 1, 3]
            .iter()
            .map(|&i| results[i].as_ref().unwrap().head.clone())
            .collect();
        assert!(advance_heads(&mut store, heads, &policy));
        assert_eq!(
            store.head_writes,
            vec![1],
            "only the furthest head of a chain is written"
        );
        assert_eq!(store.head_sequence(&a), Some(3));
        assert!(store.verify(&a).intact);
        assert!(store.chain_docs(&b).is_empty());
        assert!(append_records(&mut store, &[], &policy).is_empty());
    }

    fn from_tail() -> AppendPolicy {
        AppendPolicy {
            start_from_tail: true,
            ..AppendPolicy::default()
        }
    }

    #[test]
    fn starting_from_the_tail_skips_a_lagging_head_but_never_goes_behind_it() {
        let mut store = Chains::default();
        let key = patient_key(7);
        for n in 1..=3 {
            append(
                &mut store,
                &chain_request(&key, n),
                &AppendPolicy::default(),
            )
            .unwrap();
        }
        // The head stays at 1, as if two appends had not advanced it yet.
        let first = record_from_document(store.chain_docs(&key)[0].clone()).unwrap();
        let etag = store.etag(&key).unwrap();
        store
            .replace_head(&key, &head_to_document(&ChainHead::of(&first)), &etag)
            .unwrap();
        let out = append_records(&mut store, &[chain_request(&key, 4)], &from_tail())
            .pop()
            .unwrap()
            .unwrap();
        assert_eq!((out.record.sequence, out.attempts), (4, 1), "no race lost");
        // The last record removed: the tail (3) is behind the head (4), so
        // the record goes after the head and the gap stays visible.
        assert!(advance_heads(&mut store, vec![out.head], &from_tail()));
        store.records.remove(&record_document_id(&key, 4));
        let out = append_records(&mut store, &[chain_request(&key, 5)], &from_tail())
            .pop()
            .unwrap()
            .unwrap();
        assert_eq!(out.record.sequence, 5);
        assert_eq!(
            store.verify(&key).first_break.map(|b| b.sequence),
            Some(Some(4))
        );
    }
}
