//! Records, their canonical form and hash, and sealing a record onto its chain.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::error::{AuditInputError, SealError, Violation};
use crate::input::{
    Actor, AuditInput, AuditResource, CorrelationId, ResourceId, ResourceType, SourceSystemName,
};
use crate::stamp::AuditTime;

/// A SHA-256 digest, written as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The `previousHash` of a chain's first record: 64 zeros. A fixed value
    /// (rather than an empty string) keeps every record's shape the same.
    pub const GENESIS: Digest = Digest([0; 32]);

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Digest(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Not 64 lower-case hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidDigest;

impl fmt::Display for InvalidDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not 64 lower-case hex digits")
    }
}

impl std::error::Error for InvalidDigest {}

impl FromStr for Digest {
    type Err = InvalidDigest;

    /// Only the canonical spelling: exactly 64 lower-case hex digits.
    fn from_str(s: &str) -> Result<Self, InvalidDigest> {
        if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(InvalidDigest);
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| InvalidDigest)?;
        Ok(Digest(out))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// The chain a record belongs to: one per resource, `"<type>:<id>"`, such
/// as `patient:3f2504e0-4f89-11d3-9a0c-0305e82c3301` (or `patient:*` for
/// searches). Also the partition key of the audit container.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainKey(String);

impl ChainKey {
    pub fn new(kind: ResourceType, id: &ResourceId) -> Self {
        ChainKey(format!("{}:{}", kind.as_str(), id.as_str()))
    }

    pub fn of(resource: &AuditResource) -> Self {
        Self::new(resource.kind(), resource.id())
    }

    /// Reads `"<type>:<id>"` back, with the same rules as the input's
    /// `resource.type` and `resource.id`.
    pub fn parse(s: &str) -> Result<Self, AuditInputError> {
        let (kind, id) = s.split_once(':').ok_or_else(|| {
            AuditInputError::new("chainKey", Violation::NotCanonical("<type>:<id>"))
        })?;
        let kind = ResourceType::parse_at("chainKey", kind)?;
        let id = ResourceId::parse_at("chainKey", id)?;
        Ok(Self::new(kind, &id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One entry of the register.
///
/// Fields are public because records read from the store may have been
/// tampered with: [`crate::verify_chain`] judges them, construction does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The record's id, assigned by the audit service.
    pub id: Uuid,
    /// Position in the chain, from 1, without gaps.
    pub sequence: u64,
    pub created_date: AuditTime,
    pub correlation_id: CorrelationId,
    pub actor: Actor,
    pub source_system_name: SourceSystemName,
    pub resource: AuditResource,
    /// The `hash` of the previous record of this chain; [`Digest::GENESIS`]
    /// for the first.
    pub previous_hash: Digest,
    /// [`record_hash`] of this record, as computed when it was sealed.
    pub hash: Digest,
}

impl AuditRecord {
    pub fn chain_key(&self) -> ChainKey {
        ChainKey::of(&self.resource)
    }
}

/// Where a chain ends: its last record's sequence, hash and id. Kept in its
/// own document, so that removing the last record is detectable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub chain_key: ChainKey,
    pub sequence: u64,
    pub last_hash: Digest,
    pub last_record_id: Uuid,
}

impl ChainHead {
    /// The head of a chain that ends at `record`.
    pub fn of(record: &AuditRecord) -> Self {
        ChainHead {
            chain_key: record.chain_key(),
            sequence: record.sequence,
            last_hash: record.hash,
            last_record_id: record.id,
        }
    }
}

/// What the audit service adds to an input: the record id, the time, and the
/// request's correlation id and actor (validated from headers by the
/// caller with [`CorrelationId::parse`] and [`Actor::parse`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealContext {
    pub id: Uuid,
    pub created_date: AuditTime,
    pub correlation_id: CorrelationId,
    pub actor: Actor,
}

/// Turns an input into the next record of its resource's chain.
///
/// `previous` is the chain's current head (`None` for a new chain). Returns
/// the record to store and the chain's new head.
pub fn seal(
    input: AuditInput,
    context: SealContext,
    previous: Option<&ChainHead>,
) -> Result<(AuditRecord, ChainHead), SealError> {
    let (sequence, previous_hash) = match previous {
        None => (1, Digest::GENESIS),
        Some(head) => {
            if head.chain_key != ChainKey::of(&input.resource) {
                return Err(SealError::HeadOfOtherChain);
            }
            let next = head
                .sequence
                .checked_add(1)
                .ok_or(SealError::SequenceExhausted)?;
            (next, head.last_hash)
        }
    };
    let mut record = AuditRecord {
        id: context.id,
        sequence,
        created_date: context.created_date,
        correlation_id: context.correlation_id,
        actor: context.actor,
        source_system_name: input.source_system_name,
        resource: input.resource,
        previous_hash,
        hash: Digest::GENESIS,
    };
    record.hash = record_hash(&record);
    let head = ChainHead::of(&record);
    Ok((record, head))
}

/// Version tag, first element of the canonical form of a record without a
/// `reference`.
pub const CANONICAL_VERSION: &str = "audit-record/1";
/// Version tag of the canonical form of a record with a `reference`
/// (version 1 with the reference before `previousHash`). Records without
/// one keep version 1, so every record sealed before references existed
/// hashes as it did.
pub const CANONICAL_VERSION_WITH_REFERENCE: &str = "audit-record/2";

/// The exact bytes that are hashed: a JSON array without whitespace, in
/// this fixed order, `hash` itself excluded:
///
/// ```text
/// ["audit-record/1", id, sequence, createdDate, correlationId, actor,
///  sourceSystemName, resourceType, resourceId, operation, [criteria...],
///  previousHash]
/// ```
///
/// `sequence` is a JSON integer, `criteria` an array of strings (empty
/// unless a search), everything else a JSON string: `id` as a lower-case
/// hyphenated GUID, `createdDate` as `YYYY-MM-DDTHH:MM:SS.mmmZ`,
/// `previousHash` as 64 lower-case hex digits. Every string is printable
/// ASCII, so the only escapes are `\"` and `\\`. The chain key is not listed
/// separately: it is `resourceType:resourceId`.
///
/// A record with a `reference` is tagged [`CANONICAL_VERSION_WITH_REFERENCE`]
/// and has the reference (a lower-case hyphenated GUID) between
/// `[criteria...]` and `previousHash`.
///
/// Being a positional array, it does not depend on the member order of any
/// JSON the record was read from.
pub fn canonical_bytes(record: &AuditRecord) -> Vec<u8> {
    let s = |v: &str| Value::String(v.to_owned());
    let criteria = record
        .resource
        .criteria()
        .iter()
        .map(|c| s(c.as_str()))
        .collect();
    let version = match record.resource.reference() {
        None => CANONICAL_VERSION,
        Some(_) => CANONICAL_VERSION_WITH_REFERENCE,
    };
    let mut form = vec![
        s(version),
        s(&record.id.hyphenated().to_string()),
        Value::from(record.sequence),
        s(&record.created_date.to_string()),
        s(record.correlation_id.as_str()),
        s(record.actor.as_str()),
        s(record.source_system_name.as_str()),
        s(record.resource.kind().as_str()),
        s(record.resource.id().as_str()),
        s(record.resource.operation().as_str()),
        Value::Array(criteria),
    ];
    if let Some(reference) = record.resource.reference() {
        form.push(s(&reference.hyphenated().to_string()));
    }
    form.push(s(&record.previous_hash.to_string()));
    // Serialising a tree of strings and integers cannot fail.
    serde_json::to_vec(&Value::Array(form)).unwrap_or_default()
}

/// SHA-256 of [`canonical_bytes`].
pub fn record_hash(record: &AuditRecord) -> Digest {
    Digest(Sha256::digest(canonical_bytes(record)).into())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One way of tampering with a record.
    type Edit = Box<dyn Fn(&mut AuditRecord)>;
    use crate::input::{CriterionName, Operation};

    pub(crate) fn input(kind: ResourceType, id: &str, operation: Operation) -> AuditInput {
        AuditInput {
            source_system_name: SourceSystemName::parse("patient-api").unwrap(),
            resource: AuditResource::new(kind, ResourceId::parse(id).unwrap(), operation),
        }
    }

    pub(crate) fn context(n: u128) -> SealContext {
        SealContext {
            id: Uuid::from_u128(0xa000_0000_0000_4000_8000_0000_0000_0000 + n),
            created_date: AuditTime::from_unix_millis(1_700_000_000_000 + n as i64).unwrap(),
            correlation_id: CorrelationId::parse("0af7651916cd43dd8448eb211c80319c").unwrap(),
            actor: Actor::parse("lab-system").unwrap(),
        }
    }

    const PID: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";

    fn first() -> AuditRecord {
        seal(
            input(ResourceType::Patient, PID, Operation::Create),
            context(1),
            None,
        )
        .unwrap()
        .0
    }

    #[test]
    fn canonical_form_is_the_documented_array() {
        let r = first();
        let expected = format!(
            "[\"audit-record/1\",\"a0000000-0000-4000-8000-000000000001\",1,\"2023-11-14T22:13:20.001Z\",\
             \"0af7651916cd43dd8448eb211c80319c\",\"lab-system\",\"patient-api\",\"patient\",\"{PID}\",\
             \"create\",[],\"{}\"]",
            "0".repeat(64)
        );
        assert_eq!(String::from_utf8(canonical_bytes(&r)).unwrap(), expected);
    }

    #[test]
    fn hash_is_sha256_of_the_canonical_bytes() {
        let r = first();
        let digest: [u8; 32] = Sha256::digest(canonical_bytes(&r)).into();
        assert_eq!(record_hash(&r), Digest::from_bytes(digest));
        assert_eq!(r.hash, record_hash(&r));
        // The stored hash is not part of what is hashed.
        let mut other = r.clone();
        other.hash = Digest::from_bytes([7; 32]);
        assert_eq!(canonical_bytes(&other), canonical_bytes(&r));
    }

    #[test]
    fn canonical_bytes_are_stable_and_cover_every_field() {
        let r = first();
        assert_eq!(canonical_bytes(&r), canonical_bytes(&r.clone()));
        let base = canonical_bytes(&r);
        let changes: Vec<Edit> = vec![
            Box::new(|r| r.id = Uuid::from_u128(9)),
            Box::new(|r| r.sequence = 2),
            Box::new(|r| r.created_date = AuditTime::from_unix_millis(0).unwrap()),
            Box::new(|r| r.correlation_id = CorrelationId::parse("other").unwrap()),
            Box::new(|r| r.actor = Actor::parse("mallory").unwrap()),
            Box::new(|r| r.source_system_name = SourceSystemName::parse("x").unwrap()),
            Box::new(|r| {
                r.resource = AuditResource::new(
                    ResourceType::Test,
                    r.resource.id().clone(),
                    Operation::Create,
                )
            }),
            Box::new(|r| {
                r.resource = AuditResource::new(
                    ResourceType::Patient,
                    ResourceId::parse("x").unwrap(),
                    Operation::Create,
                )
            }),
            Box::new(|r| {
                r.resource = AuditResource::new(
                    ResourceType::Patient,
                    r.resource.id().clone(),
                    Operation::Read,
                )
            }),
            Box::new(|r| {
                r.resource = AuditResource::search(
                    ResourceType::Patient,
                    r.resource.id().clone(),
                    vec![CriterionName::parse("a").unwrap()],
                )
                .unwrap()
            }),
            Box::new(|r| r.previous_hash = Digest::from_bytes([1; 32])),
            Box::new(|r| r.resource = r.resource.clone().with_reference(Uuid::from_u128(7))),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut altered = r.clone();
            change(&mut altered);
            assert_ne!(canonical_bytes(&altered), base, "change {i}");
            assert_ne!(record_hash(&altered), r.hash, "change {i}");
        }
    }

    #[test]
    fn criteria_order_and_quotes_are_unambiguous() {
        let with = |names: &[&str]| {
            let mut r = first();
            let c = names
                .iter()
                .map(|n| CriterionName::parse(n).unwrap())
                .collect();
            r.resource =
                AuditResource::search(ResourceType::Patient, ResourceId::parse("*").unwrap(), c)
                    .unwrap();
            canonical_bytes(&r)
        };
        assert_ne!(with(&["ab", "c"]), with(&["a", "bc"]));
        assert_ne!(with(&["a", "b"]), with(&["b", "a"]));
        let mut r = first();
        r.actor = Actor::parse("a\",\"b\\").unwrap();
        let text = String::from_utf8(canonical_bytes(&r)).unwrap();
        assert!(text.contains(r#""a\",\"b\\""#), "{text}");
    }

    #[test]
    fn sealing_links_records() {
        let (r1, h1) = seal(
            input(ResourceType::Patient, PID, Operation::Create),
            context(1),
            None,
        )
        .unwrap();
        assert_eq!((r1.sequence, r1.previous_hash), (1, Digest::GENESIS));
        assert_eq!(
            h1,
            ChainHead {
                chain_key: r1.chain_key(),
                sequence: 1,
                last_hash: r1.hash,
                last_record_id: r1.id
            }
        );
        assert_eq!(r1.chain_key().as_str(), format!("patient:{PID}"));
        let (r2, h2) = seal(
            input(ResourceType::Patient, PID, Operation::Read),
            context(2),
            Some(&h1),
        )
        .unwrap();
        assert_eq!((r2.sequence, r2.previous_hash), (2, r1.hash));
        assert_eq!(r2.hash, record_hash(&r2));
        assert_eq!(h2.sequence, 2);
        assert_eq!(h2.last_hash, r2.hash);
        assert_eq!(h2.last_record_id, r2.id);
    }

    #[test]
    fn sealing_refuses_a_foreign_or_full_chain() {
        let (_, h1) = seal(
            input(ResourceType::Patient, PID, Operation::Create),
            context(1),
            None,
        )
        .unwrap();
        let other = seal(
            input(ResourceType::Test, PID, Operation::Read),
            context(2),
            Some(&h1),
        );
        assert_eq!(other.unwrap_err(), SealError::HeadOfOtherChain);
        let full = ChainHead {
            sequence: u64::MAX,
            ..h1
        };
        let r = seal(
            input(ResourceType::Patient, PID, Operation::Read),
            context(3),
            Some(&full),
        );
        assert_eq!(r.unwrap_err(), SealError::SequenceExhausted);
    }

    #[test]
    fn chain_key_text() {
        let k = ChainKey::parse(&format!("test:{PID}")).unwrap();
        assert_eq!(
            k,
            ChainKey::new(ResourceType::Test, &ResourceId::parse(PID).unwrap())
        );
        assert_eq!(k.to_string(), format!("test:{PID}"));
        assert_eq!(ChainKey::parse("patient:*").unwrap().as_str(), "patient:*");
        for bad in ["patient", "lab:1", "patient:", "patient:a:b", ":1"] {
            assert_eq!(ChainKey::parse(bad).unwrap_err().field, "chainKey", "{bad}");
        }
    }

    #[test]
    fn digest_text() {
        let d = Digest::from_bytes([0xab; 32]);
        assert_eq!(d.to_string(), "ab".repeat(32));
        assert_eq!(d.to_string().parse::<Digest>(), Ok(d));
        assert_eq!(Digest::GENESIS.to_string(), "0".repeat(64));
        for bad in [
            "AB".repeat(32),
            "ab".repeat(31),
            "ab".repeat(33),
            "zz".repeat(32),
            String::new(),
        ] {
            assert_eq!(bad.parse::<Digest>(), Err(InvalidDigest), "{bad}");
        }
    }

    #[test]
    fn a_reference_has_its_own_version_and_a_record_without_keeps_version_1() {
        let plain = first();
        let text = String::from_utf8(canonical_bytes(&plain)).unwrap();
        assert!(text.starts_with("[\"audit-record/1\","), "{text}");
        let mut referring = plain.clone();
        let search = Uuid::from_u128(0xb000_0000_0000_4000_8000_0000_0000_0001);
        referring.resource = referring.resource.clone().with_reference(search);
        let text = String::from_utf8(canonical_bytes(&referring)).unwrap();
        assert!(text.starts_with("[\"audit-record/2\","), "{text}");
        let tail = format!(
            "[],\"{}\",\"{}\"]",
            search.hyphenated(),
            referring.previous_hash
        );
        assert!(text.ends_with(&tail), "{text}");
        let mut other = referring.clone();
        other.resource = other.resource.clone().with_reference(Uuid::from_u128(8));
        assert_ne!(record_hash(&referring), record_hash(&other));
    }
}
