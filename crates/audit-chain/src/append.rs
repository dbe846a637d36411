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
//! tail instead would let a removed last record be silently replaced.

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
    fn read_head(&mut self, key: &ChainKey) -> Result<Option<(Value, String)>, Self::Error>;
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
    /// The current time, for `createdDate`.
    fn now(&mut self) -> AuditTime;
    fn sleep(&mut self, duration: Duration);
    /// Uniform in `[0, 1)`.
    fn jitter(&mut self) -> f64;
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
}

impl Default for AppendPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 64,
            base_delay: Duration::from_millis(4),
            max_delay: Duration::from_millis(100),
            max_head_attempts: 16,
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
    let key = ChainKey::of(&request.input.resource);
    let head = read_head(store, &key)?;
    let mut end: Option<ChainHead> = head.as_ref().map(|(h, _)| h.clone());
    let max_attempts = policy.max_attempts.max(1);
    for attempt in 1..=max_attempts {
        let context = SealContext {
            id: request.id,
            created_date: store.now(),
            correlation_id: request.correlation_id.clone(),
            actor: request.actor.clone(),
        };
        let (record, new_head) =
            seal(request.input.clone(), context, end.as_ref()).map_err(AppendError::Seal)?;
        let created = store
            .create_record(&key, &record_to_document(&record))
            .map_err(AppendError::Store)?;
        if created {
            return Ok(Stored {
                record,
                attempts: attempt,
                head: PendingHead {
                    key,
                    target: new_head,
                    current: head,
                },
            });
        }
        if attempt == max_attempts {
            break;
        }
        let wait = policy.backoff(attempt, store.jitter());
        if !wait.is_zero() {
            store.sleep(wait);
        }
        if let Some(found) = chain_end(store, &key, record.sequence)? {
            end = Some(found);
        }
    }
    Err(AppendError::Contended {
        attempts: max_attempts,
    })
}

fn read_head<S: AppendStore>(
    store: &mut S,
    key: &ChainKey,
) -> Result<Option<(ChainHead, String)>, AppendError<S::Error>> {
    match store.read_head(key).map_err(AppendError::Store)? {
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

/// Where the chain ends now that position `taken` is known to be occupied:
/// the tail, or (if the tail query does not see that far yet) the record
/// at `taken`. `None` when neither can be found (removed meanwhile): the
/// caller keeps what it knew and tries again.
fn chain_end<S: AppendStore>(
    store: &mut S,
    key: &ChainKey,
    taken: u64,
) -> Result<Option<ChainHead>, AppendError<S::Error>> {
    if let Some(doc) = store.read_tail(key).map_err(AppendError::Store)? {
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

        fn read_head(&mut self, _: &ChainKey) -> Result<Option<(Value, String)>, &'static str> {
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
}
