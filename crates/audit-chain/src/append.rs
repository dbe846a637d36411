//! The append protocol: adding records to chains with optimistic
//! concurrency, over a store the caller injects (the audit service's Cosmos
//! client; fakes in tests). This module decides; the store does the I/O.
//!
//! 1. Read the chain's head document (and its etag). None: a new chain.
//! 2. Seal the record after the head and commit the record and the moved
//!    head together, atomically ([`AppendStore::commit`]: one Cosmos
//!    transactional batch, the record created and the head replaced
//!    `If-Match` its etag, or created). The record's id encodes its
//!    sequence and the head's etag changes with every append, so of two
//!    concurrent appends at one position exactly one commits; the other
//!    writes nothing and learns it lost.
//! 3. Lost: find where the chain really ends and seal again after it. The
//!    commit checks the head before the record, so it says which moved:
//!    the head (another append won: read the head again, which for many
//!    chains is one query) or only the record's position (the records run
//!    past the head: read the chain's end, its head and its record with the
//!    highest id). From the second loss on, wait a jittered, growing delay
//!    first so that a crowd of appenders spreads out. Bounded: when
//!    attempts run out the caller answers 503.
//!
//! The head never lags: it moves in the same commit as the record it
//! names. So the end is the head, except on a chain whose head was written
//! by an older protocol that advanced it after the record (or not at all):
//! there the tail is ahead, the commit finds the record's position taken,
//! step 3 seals after the tail, and the head catches up with that commit.
//! The end only ever moves forward from the head: starting from a tail
//! behind it would let a removed last record be silently replaced.
//!
//! Many records at once ([`append_records`], a page of search disclosures):
//! each step is one store call for every record still at it
//! ([`AppendStore::read_heads`], `commit`, and after a loss `read_heads` or
//! `read_ends`), which a store with concurrent I/O sends together, so a
//! page costs two round trips without contention, however many records it
//! holds.

use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use crate::chain::{seal, AuditRecord, ChainHead, ChainKey, SealContext};
use crate::document::{
    head_from_document, head_to_document, record_from_document, record_to_document,
};
use crate::error::{AuditInputError, DocumentError, SealError, Violation};
use crate::input::{Actor, AuditInput, CorrelationId};
use crate::stamp::AuditTime;

/// The store operations and environment the protocol needs. Records and
/// heads live in one container partitioned by chain key, so a record and
/// its chain's head can be committed together.
pub trait AppendStore {
    /// A store failure (unavailable, throttled past its retries, ...).
    type Error;

    /// The head document and etag of each chain, in the order given;
    /// `None` for a chain without one. A store that can have requests in
    /// flight together sends them together (as the two below).
    fn read_heads(&mut self, keys: &[ChainKey]) -> Vec<Result<Option<HeadDocument>, Self::Error>>;
    /// Where each chain ends as stored: its head and its record document
    /// with the highest id ([`crate::chain_end_query`]).
    fn read_ends(&mut self, keys: &[ChainKey]) -> Vec<Result<StoredEnd, Self::Error>>;
    /// Each record with its chain's new head, atomically: both written, or
    /// neither because the chain moved. The head's condition is checked
    /// before the record's position, so a loss says which one moved
    /// ([`CommitOutcome`]).
    fn commit(&mut self, commits: &[Commit]) -> Vec<Result<CommitOutcome, Self::Error>>;
    /// The current time, for `createdDate`.
    fn now(&mut self) -> AuditTime;
    fn sleep(&mut self, duration: Duration);
    /// Uniform in `[0, 1)`.
    fn jitter(&mut self) -> f64;
}

/// How one [`Commit`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The record and the head were both written.
    Committed,
    /// Neither: the head is not the one read (its etag changed, a head
    /// exists where none was expected, or it went). Another append won.
    HeadMoved,
    /// Neither: the head was as read, but the record's position is taken:
    /// the chain's records run past its head (a head an older protocol
    /// left behind, or none at all).
    PositionTaken,
}

/// A chain head's document as read, and its etag.
pub type HeadDocument = (Value, String);

/// A chain's end as [`AppendStore::read_ends`] finds it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredEnd {
    pub head: Option<HeadDocument>,
    /// The record document with the highest id.
    pub tail: Option<Value>,
}

/// One atomic write of [`AppendStore::commit`]: create `record`, and write
/// `head` over the head whose etag is `head_etag` (create it when `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub key: ChainKey,
    pub record: Value,
    pub head: Value,
    pub head_etag: Option<String>,
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
    /// Commits in total, the first included. Each loss means another
    /// append succeeded, so this bounds how many concurrent appends to one
    /// chain a request can lose to.
    pub max_attempts: u32,
    /// Ceiling of the wait before the second retry; doubles each time.
    pub base_delay: Duration,
    /// No single wait is longer than this.
    pub max_delay: Duration,
}

impl Default for AppendPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 64,
            base_delay: Duration::from_millis(4),
            max_delay: Duration::from_millis(100),
        }
    }
}

impl AppendPolicy {
    /// Full-jitter wait after `conflicts` lost commits: none after the
    /// first (the end just read is fresh), then
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

/// A stored record; its chain's head names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub record: AuditRecord,
    /// Commits it took (1 without contention).
    pub attempts: u32,
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
pub type AppendResult<E> = Result<Appended, AppendError<E>>;

/// Appends `request` to its resource's chain. See the module documentation.
pub fn append<S: AppendStore>(
    store: &mut S,
    request: &AppendRequest,
    policy: &AppendPolicy,
) -> AppendResult<S::Error> {
    append_records(store, std::slice::from_ref(request), policy)
        .pop()
        .unwrap_or(Err(AppendError::Contended { attempts: 0 }))
}

/// [`append`] for many records at once, with the store's round trips
/// shared: each step (read the heads, commit, find where the chains of the
/// records that lost really end) is one call for every record still at it,
/// so a page of fifty disclosures costs two round trips without contention
/// and a few more however many races it loses. Records of one chain go in
/// successive rounds, so no round races with itself. One result per
/// request, in the order given; a failure fails only its own record (the
/// others are stored).
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

/// Where one append stands: its chain, the end it will seal after, the
/// etag the head must still have (`None`: no head yet), and the number of
/// the commit it is about to make.
struct Attempt {
    index: usize,
    key: ChainKey,
    end: Option<ChainHead>,
    head_etag: Option<String>,
    number: u32,
}

impl Attempt {
    /// The next commit, sealed after `end` and conditional on `head_etag`.
    /// No end found (removed meanwhile) keeps the end it knew, so a removal
    /// stays visible as a gap.
    fn retry_after(mut self, end: Option<ChainHead>, head_etag: Option<String>) -> Self {
        if end.is_some() {
            self.end = end;
        }
        self.head_etag = head_etag;
        self.number += 1;
        self
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
    let mut active = Vec::new();
    for ((&index, key), head) in round.iter().zip(keys).zip(heads) {
        let head = head
            .map_err(AppendError::Store)
            .and_then(|head| parse_head(&key, head));
        match head {
            Ok(head) => {
                let (end, head_etag) = head.unzip();
                active.push(Attempt {
                    index,
                    key,
                    end,
                    head_etag,
                    number: 1,
                });
            }
            Err(error) => results[index] = Some(Err(error)),
        }
    }
    let mut losses = 0;
    while !active.is_empty() {
        // Seal each record after the end it knows, and commit them all.
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
                Ok((record, head)) => sealed.push((attempt, record, head)),
                Err(error) => results[attempt.index] = Some(Err(AppendError::Seal(error))),
            }
        }
        let commits: Vec<Commit> = sealed
            .iter()
            .map(|(attempt, record, head)| Commit {
                key: attempt.key.clone(),
                record: record_to_document(record),
                head: head_to_document(head),
                head_etag: attempt.head_etag.clone(),
            })
            .collect();
        let committed = store.commit(&commits);
        let mut head_moved = Vec::new();
        let mut position_taken = Vec::new();
        for ((attempt, record, _), committed) in sealed.into_iter().zip(committed) {
            let index = attempt.index;
            results[index] = match committed {
                Ok(CommitOutcome::Committed) => Some(Ok(Appended {
                    record,
                    attempts: attempt.number,
                })),
                Ok(_) if attempt.number >= max_attempts => Some(Err(AppendError::Contended {
                    attempts: max_attempts,
                })),
                Ok(CommitOutcome::HeadMoved) => {
                    head_moved.push(attempt);
                    None
                }
                Ok(CommitOutcome::PositionTaken) => {
                    position_taken.push(attempt);
                    None
                }
                Err(error) => Some(Err(AppendError::Store(error))),
            };
        }
        if head_moved.is_empty() && position_taken.is_empty() {
            break;
        }
        // From the second loss on, a jittered, growing wait, so that a
        // crowd of appenders spreads out.
        losses += 1;
        let wait = policy.backoff(losses, store.jitter());
        if !wait.is_zero() {
            store.sleep(wait);
        }
        // The head moved: it moved in the winner's commit, so it is the
        // end. A head that went is looked for with the records.
        if !head_moved.is_empty() {
            let keys: Vec<ChainKey> = head_moved.iter().map(|a| a.key.clone()).collect();
            let heads = store.read_heads(&keys);
            for (attempt, head) in head_moved.into_iter().zip(heads) {
                let head = head
                    .map_err(AppendError::Store)
                    .and_then(|head| parse_head(&attempt.key, head));
                match head {
                    Ok(Some((head, etag))) => {
                        active.push(attempt.retry_after(Some(head), Some(etag)))
                    }
                    Ok(None) => position_taken.push(attempt),
                    Err(error) => results[attempt.index] = Some(Err(error)),
                }
            }
        }
        if position_taken.is_empty() {
            continue;
        }
        let keys: Vec<ChainKey> = position_taken.iter().map(|a| a.key.clone()).collect();
        let ends = store.read_ends(&keys);
        for (attempt, stored) in position_taken.into_iter().zip(ends) {
            let found = stored
                .map_err(AppendError::Store)
                .and_then(|stored| chain_end(&attempt.key, stored));
            match found {
                Ok((end, head_etag)) => active.push(attempt.retry_after(end, head_etag)),
                Err(error) => results[attempt.index] = Some(Err(error)),
            }
        }
    }
}

/// Where a chain ends, and its head's etag, from what
/// [`AppendStore::read_ends`] found: the head, unless the tail is past it
/// (a head an older protocol left behind, or none at all). A tail behind
/// the head is a removed last record: the end stays at the head.
fn chain_end<E>(
    key: &ChainKey,
    stored: StoredEnd,
) -> Result<(Option<ChainHead>, Option<String>), AppendError<E>> {
    let head = parse_head(key, stored.head)?;
    let tail = stored.tail.map(|doc| parse_record(key, doc)).transpose()?;
    let (head, head_etag) = head.unzip();
    let end = match (head, tail) {
        (Some(head), Some(tail)) if tail.sequence > head.sequence => Some(ChainHead::of(&tail)),
        (Some(head), _) => Some(head),
        (None, tail) => tail.as_ref().map(ChainHead::of),
    };
    Ok((end, head_etag))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::tests::input;
    use crate::document::{chain_records_query, head_document_id, record_document_id};
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

    /// An in-memory store of many chains whose commits are atomic, as a
    /// transactional batch is, counting the calls each step makes.
    #[derive(Default)]
    struct Chains {
        records: BTreeMap<String, Value>,
        heads: BTreeMap<String, (Value, u64)>,
        etags: u64,
        clock: i64,
        slept: Vec<Duration>,
        /// Sizes of each read_heads / commit / read_ends call.
        head_reads: Vec<usize>,
        commits: Vec<usize>,
        end_reads: Vec<usize>,
        /// Before each of the next `rival_rounds` commit calls, another
        /// appender commits a record to each of these chains.
        rivals: Vec<ChainKey>,
        rival_rounds: u32,
        /// Every call on this chain fails.
        broken: Option<ChainKey>,
        /// The record with the highest id is invisible to `read_ends`.
        tail_blind: bool,
        /// Before the next commit call, every head is rewritten as it is.
        touch_head: bool,
        /// Before the next commit call, every head is removed.
        drop_heads: bool,
    }

    impl Chains {
        fn etag(&self, key: &ChainKey) -> Option<String> {
            self.heads
                .get(key.as_str())
                .map(|(_, e)| format!("\"{e}\""))
        }

        fn set_head(&mut self, key: &ChainKey, doc: Value) {
            self.etags += 1;
            self.heads
                .insert(key.as_str().to_owned(), (doc, self.etags));
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

        fn head_of(&self, key: &ChainKey) -> Option<HeadDocument> {
            let etag = self.etag(key)?;
            Some((self.heads[key.as_str()].0.clone(), etag))
        }

        fn check(&self, key: &ChainKey) -> Result<(), &'static str> {
            match &self.broken {
                Some(broken) if broken == key => Err("down"),
                _ => Ok(()),
            }
        }

        fn commit_one(&mut self, commit: &Commit) -> Result<CommitOutcome, &'static str> {
            self.check(&commit.key)?;
            // The head's condition first, as audit-api's batch orders it.
            if self.etag(&commit.key) != commit.head_etag {
                return Ok(CommitOutcome::HeadMoved);
            }
            let id = commit.record["id"].as_str().unwrap().to_owned();
            if self.records.contains_key(&id) {
                return Ok(CommitOutcome::PositionTaken);
            }
            self.records.insert(id, commit.record.clone());
            self.set_head(&commit.key, commit.head.clone());
            Ok(CommitOutcome::Committed)
        }

        fn calls(&self) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
            (
                self.head_reads.clone(),
                self.commits.clone(),
                self.end_reads.clone(),
            )
        }

        fn forget_calls(&mut self) {
            self.head_reads.clear();
            self.commits.clear();
            self.end_reads.clear();
        }
    }

    impl AppendStore for Chains {
        type Error = &'static str;

        fn read_heads(
            &mut self,
            keys: &[ChainKey],
        ) -> Vec<Result<Option<HeadDocument>, &'static str>> {
            self.head_reads.push(keys.len());
            keys.iter()
                .map(|key| self.check(key).map(|()| self.head_of(key)))
                .collect()
        }

        fn read_ends(&mut self, keys: &[ChainKey]) -> Vec<Result<StoredEnd, &'static str>> {
            self.end_reads.push(keys.len());
            keys.iter()
                .map(|key| {
                    self.check(key)?;
                    let mut docs = self.chain_docs(key);
                    if self.tail_blind {
                        docs.pop();
                    }
                    Ok(StoredEnd {
                        head: self.head_of(key),
                        tail: docs.pop(),
                    })
                })
                .collect()
        }

        fn commit(&mut self, commits: &[Commit]) -> Vec<Result<CommitOutcome, &'static str>> {
            if self.rival_rounds > 0 {
                // The rivals' own commits meet no rivals, and their calls
                // are not this append's.
                let rounds_left = std::mem::take(&mut self.rival_rounds) - 1;
                let counted = self.calls();
                for (n, key) in self.rivals.clone().into_iter().enumerate() {
                    let mut rival = chain_request(&key, 9000 + u128::from(self.etags) + n as u128);
                    rival.actor = Actor::parse("rival").unwrap();
                    append(self, &rival, &AppendPolicy::default()).unwrap();
                }
                (self.head_reads, self.commits, self.end_reads) = counted;
                self.rival_rounds = rounds_left;
            }
            if std::mem::take(&mut self.drop_heads) {
                self.heads.clear();
            }
            if std::mem::take(&mut self.touch_head) {
                for (key, (doc, _)) in self.heads.clone() {
                    self.set_head(&ChainKey::parse(&key).unwrap(), doc);
                }
            }
            self.commits.push(commits.len());
            commits.iter().map(|c| self.commit_one(c)).collect()
        }

        fn now(&mut self) -> AuditTime {
            self.clock += 1;
            AuditTime::from_unix_millis(1_700_000_000_000 + self.clock).unwrap()
        }

        fn sleep(&mut self, duration: Duration) {
            self.slept.push(duration);
        }

        fn jitter(&mut self) -> f64 {
            0.5
        }
    }

    fn patient(n: u32) -> String {
        format!("3f2504e0-4f89-11d3-9a0c-{n:012x}")
    }

    fn patient_key(n: u32) -> ChainKey {
        ChainKey::of(&input(ResourceType::Patient, &patient(n), Operation::Read).resource)
    }

    fn chain_request(key: &ChainKey, n: u128) -> AppendRequest {
        let id = key.as_str().split_once(':').unwrap().1.to_owned();
        AppendRequest {
            input: input(ResourceType::Patient, &id, Operation::Read),
            id: Uuid::from_u128(0xb000_0000_0000_4000_8000_0000_0000_0000 + n),
            correlation_id: CorrelationId::parse("0af7651916cd43dd8448eb211c80319c").unwrap(),
            actor: Actor::parse("clinic").unwrap(),
        }
    }

    fn key() -> ChainKey {
        patient_key(1)
    }

    fn request(n: u128) -> AppendRequest {
        chain_request(&key(), n)
    }

    fn appended(store: &mut Chains, n: u128) -> Appended {
        append(store, &request(n), &AppendPolicy::default()).unwrap()
    }

    #[test]
    fn each_append_is_one_head_read_and_one_commit_that_moves_the_head_with_the_record() {
        let mut store = Chains::default();
        for n in 1..=5u64 {
            store.forget_calls();
            let out = appended(&mut store, n.into());
            assert_eq!((out.record.sequence, out.attempts), (n, 1));
            assert_eq!(store.head_sequence(&key()), Some(n), "never lags");
            assert_eq!(store.calls(), (vec![1], vec![1], vec![]));
        }
        let report = store.verify(&key());
        assert!(report.intact, "{report:?}");
        assert_eq!(report.records_checked, 5);
        assert!(store.slept.is_empty());
    }

    #[test]
    fn a_lost_race_moves_to_the_real_end_and_keeps_the_chain_whole() {
        let mut store = Chains::default();
        appended(&mut store, 1);
        store.rivals = vec![key()];
        store.rival_rounds = 3;
        store.forget_calls();
        let out = appended(&mut store, 2);
        assert_eq!((out.record.sequence, out.attempts), (5, 4));
        // Each loss is to a head that moved: the head is read again, the
        // chain's records are not queried.
        assert_eq!(store.calls(), (vec![1; 4], vec![1; 4], vec![]));
        assert_eq!(store.head_sequence(&key()), Some(5));
        assert!(store.verify(&key()).intact);
        // No wait after the first loss, then growing jittered waits.
        assert_eq!(
            store.slept,
            vec![Duration::from_millis(2), Duration::from_millis(4)]
        );
    }

    #[test]
    fn a_head_rewritten_under_a_commit_refuses_it_whole_and_the_retry_follows_it() {
        let mut store = Chains::default();
        appended(&mut store, 1);
        // Between our head read and our commit the head is written again
        // (same content, new etag): the commit is refused, its record with
        // it, and the retry commits after the head it finds.
        store.touch_head = true;
        store.forget_calls();
        let out = appended(&mut store, 2);
        assert_eq!((out.record.sequence, out.attempts), (2, 2));
        assert_eq!(store.calls(), (vec![1, 1], vec![1, 1], vec![]));
        assert_eq!(store.records.len(), 2, "no record of the refused commit");
        assert!(store.verify(&key()).intact);
    }

    #[test]
    fn a_chain_whose_head_is_missing_or_behind_continues_after_its_tail() {
        let mut store = Chains::default();
        for n in 1..=3 {
            appended(&mut store, n);
        }
        // No head at all, as a chain from before heads lived with records.
        store.heads.clear();
        store.forget_calls();
        let out = appended(&mut store, 4);
        assert_eq!((out.record.sequence, out.attempts), (4, 2));
        assert_eq!(store.calls(), (vec![1], vec![1, 1], vec![1]));
        assert_eq!(store.head_sequence(&key()), Some(4), "the head is created");
        assert!(store.verify(&key()).intact);
        // A head left behind at 1 by the old advance-after-answer protocol.
        let first = record_from_document(store.chain_docs(&key())[0].clone()).unwrap();
        store.set_head(&key(), head_to_document(&ChainHead::of(&first)));
        store.forget_calls();
        let out = appended(&mut store, 5);
        assert_eq!((out.record.sequence, out.attempts), (5, 2));
        // The head was as read, the position was not: the records say where
        // the chain ends.
        assert_eq!(store.calls(), (vec![1], vec![1, 1], vec![1]));
        assert_eq!(store.head_sequence(&key()), Some(5), "and it catches up");
        assert!(store.verify(&key()).intact);
        // A head that goes between the read and the commit: it is not there
        // to read again, so the records say where the chain ends.
        store.drop_heads = true;
        store.forget_calls();
        let out = appended(&mut store, 6);
        assert_eq!((out.record.sequence, out.attempts), (6, 2));
        assert_eq!(store.calls(), (vec![1, 1], vec![1, 1], vec![1]));
        assert_eq!(store.head_sequence(&key()), Some(6));
        assert!(store.verify(&key()).intact);
    }

    #[test]
    fn attempts_are_bounded() {
        let mut store = Chains {
            rivals: vec![key()],
            rival_rounds: u32::MAX,
            ..Chains::default()
        };
        let policy = AppendPolicy {
            max_attempts: 5,
            ..AppendPolicy::default()
        };
        let err = append(&mut store, &request(1), &policy).unwrap_err();
        assert_eq!(err, AppendError::Contended { attempts: 5 });
        assert_eq!(store.commits, vec![1; 5]);
        assert!(store.verify(&key()).intact, "the rivals' chain is whole");
        // A store that hides the end keeps losing, and is bounded too.
        let mut blind = Chains::default();
        appended(&mut blind, 1);
        blind.heads.clear();
        blind.tail_blind = true;
        assert_eq!(
            append(&mut blind, &request(2), &policy).unwrap_err(),
            AppendError::Contended { attempts: 5 }
        );
        // Waits never exceed the cap.
        let long = AppendPolicy::default();
        for n in 0..100 {
            assert!(long.backoff(n, 1.0) <= long.max_delay);
            assert_eq!(long.backoff(n, f64::NAN), Duration::ZERO);
        }
    }

    #[test]
    fn a_removed_last_record_is_not_papered_over() {
        let mut store = Chains::default();
        for n in 1..=3 {
            appended(&mut store, n);
        }
        store.records.remove(&record_document_id(&key(), 3));
        let out = appended(&mut store, 4);
        // Appended after the head (3), not after the tail (2).
        assert_eq!(out.record.sequence, 4);
        let report = store.verify(&key());
        assert_eq!(
            report.first_break.map(|b| (b.sequence, b.reason)),
            Some((Some(3), crate::BreakReason::MissingRecord))
        );
        // The same when the race is lost and the end is read: a tail
        // behind the head does not pull the end back.
        store.records.remove(&record_document_id(&key(), 4));
        store.touch_head = true;
        let out = appended(&mut store, 5);
        assert_eq!((out.record.sequence, out.attempts), (5, 2));
    }

    #[test]
    fn store_failures_and_damage_are_reported() {
        let mut store = Chains {
            broken: Some(key()),
            ..Chains::default()
        };
        assert_eq!(
            append(&mut store, &request(1), &AppendPolicy::default()),
            Err(AppendError::Store("down"))
        );
        assert!(store.records.is_empty());
        // A chain of one record whose head is then edited: no append.
        let damaged_by = |edit: &dyn Fn(&mut Value)| {
            let mut store = Chains::default();
            appended(&mut store, 1);
            let (mut doc, _) = store.head_of(&key()).unwrap();
            edit(&mut doc);
            store.set_head(&key(), doc);
            append(&mut store, &request(2), &AppendPolicy::default())
        };
        // An unreadable head.
        assert!(matches!(
            damaged_by(&|doc| doc["sequence"] = serde_json::json!("one")),
            Err(AppendError::Damaged(_))
        ));
        // A head of another chain stored under this one's id.
        assert!(matches!(
            damaged_by(&|doc| {
                doc["chainKey"] = serde_json::json!(patient_key(2).as_str());
                doc["id"] = serde_json::json!(head_document_id(&patient_key(2)));
            }),
            Err(AppendError::Damaged(_))
        ));
        // A tail that is not a readable record, found after a loss.
        let mut store = Chains::default();
        appended(&mut store, 1);
        store.heads.clear();
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
        assert_eq!(head_document_id(&key()), format!("{}:head", key().as_str()));
        assert_eq!(
            chain_records_query(&key(), None, None).parameters[0].1,
            serde_json::json!(key().as_str())
        );
    }

    #[test]
    fn a_batch_shares_its_round_trips_and_builds_intact_chains() {
        let policy = AppendPolicy::default();
        let mut store = Chains::default();
        // One record already on chain 0, so heads exist and do not.
        append(&mut store, &chain_request(&patient_key(0), 1), &policy).unwrap();
        store.forget_calls();
        let requests: Vec<AppendRequest> = (0..50)
            .map(|n| chain_request(&patient_key(n), 100 + u128::from(n)))
            .collect();
        let stored: Vec<Appended> = append_records(&mut store, &requests, &policy)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(store.calls(), (vec![50], vec![50], vec![]));
        for (n, s) in stored.iter().enumerate() {
            assert_eq!(s.record.id, requests[n].id, "answered in the order given");
            assert_eq!(s.record.sequence, if n == 0 { 2 } else { 1 });
            assert_eq!(s.attempts, 1);
        }
        for n in 0..50 {
            let key = patient_key(n);
            assert!(store.verify(&key).intact, "chain {n}");
            assert_eq!(store.head_sequence(&key), Some(if n == 0 { 2 } else { 1 }));
        }
    }

    #[test]
    fn records_that_lose_their_races_retry_together_and_the_rest_are_unaffected() {
        // Rivals get in first on chains 1, 3 and 4.
        let mut store = Chains {
            rivals: vec![patient_key(1), patient_key(3), patient_key(4)],
            rival_rounds: 1,
            ..Chains::default()
        };
        let requests: Vec<AppendRequest> = (0..6)
            .map(|n| chain_request(&patient_key(n), n.into()))
            .collect();
        let stored: Vec<Appended> = append_records(&mut store, &requests, &AppendPolicy::default())
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let shape: Vec<(u32, u64)> = stored
            .iter()
            .map(|s| (s.attempts, s.record.sequence))
            .collect();
        assert_eq!(shape, vec![(1, 1), (2, 2), (1, 1), (2, 2), (2, 2), (1, 1)]);
        // One call per step: the three losers read their heads again
        // together and committed together.
        assert_eq!(store.calls(), (vec![6, 3], vec![6, 3], vec![]));
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
        assert_eq!(store.head_sequence(&a), Some(3));
        assert!(store.verify(&a).intact);
        assert!(store.chain_docs(&b).is_empty());
        assert!(append_records(&mut store, &[], &policy).is_empty());
    }
}
