//! The tamper-evident audit register's pure logic: validating what callers
//! ask to record, sealing each record onto a per-resource hash chain,
//! verifying chains, and the store documents of records and chain heads.
//!
//! Every access to patient data is recorded here first. A record says who
//! (`actor`, `sourceSystemName`, `correlationId`) did what (`operation`) to
//! which resource (`type`, `id`) and when; for a search, only the criteria
//! *names*. The register must never hold patient data values: inputs are
//! restricted to ids, fixed words and ASCII names, so a value cannot be
//! smuggled in, and unknown members are rejected at every level.
//!
//! Tamper evidence: each record carries its chain position (`sequence`,
//! from 1), the hash of the previous record of the same resource
//! (`previousHash`, 64 zeros for the first) and the SHA-256 of its own
//! canonical form ([`canonical_bytes`]). A separate head document remembers
//! each chain's last record. [`verify_chain`] finds edited, removed
//! (including the last), reordered, duplicated and foreign records and says
//! where. See [`document`] for the store layout and [`append`] for the
//! append protocol; [`params`] reads the read routes' query parameters.
//!
//! Pure functions only: no I/O, no clock, no randomness. Callers pass ids
//! and times in.

pub mod append;
mod chain;
pub mod document;
mod error;
mod input;
pub mod params;
mod stamp;
mod verify;

pub use append::{
    append, append_order, append_records, AppendError, AppendPolicy, AppendRequest, AppendResult,
    AppendStore, Appended, Commit, CommitOutcome, HeadDocument, StoredEnd,
};
pub use chain::{
    canonical_bytes, record_hash, seal, AuditRecord, ChainHead, ChainKey, Digest, InvalidDigest,
    SealContext, CANONICAL_VERSION, CANONICAL_VERSION_WITH_REFERENCE,
};
pub use document::{
    chain_end_from_documents, chain_end_query, chain_records_query, head_from_document,
    head_to_document, heads_from_documents, heads_query, record_from_document, record_to_document,
    record_to_json, AuditQuery, CHAIN_END_ITEMS, MAX_HEADS_PER_QUERY,
};
pub use error::{AuditInputError, DocumentError, SealError, Violation};
pub use input::{
    parse_audit_batch, parse_audit_input, Actor, AuditInput, AuditResource, CorrelationId,
    CriterionName, Operation, ResourceId, ResourceType, SourceSystemName, MAX_ACTOR_CHARS,
    MAX_BATCH, MAX_CRITERIA, MAX_CRITERION_CHARS, MAX_NAME_CHARS,
};
pub use stamp::{AuditTime, InvalidAuditTime};
pub use verify::{verify_chain, verify_documents, BreakReason, ChainBreak, VerifyReport};
