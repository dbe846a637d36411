//! Checking a chain: is every record unchanged, present and in place?

use std::collections::HashSet;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::chain::{record_hash, AuditRecord, ChainHead, ChainKey, Digest};
use crate::document::{head_from_document, record_from_document};

/// Why a chain is not intact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakReason {
    /// A stored document is not a readable record or head at all.
    Malformed,
    /// A record of another resource's chain is among this chain's records.
    WrongChain,
    /// A record's content no longer matches the hash sealed with it.
    ContentAltered,
    /// Two records claim the same sequence number.
    DuplicateSequence,
    /// A sequence number is missing: a record was removed (for the last
    /// record, detected against the chain head).
    MissingRecord,
    /// A record links to another record of the chain instead of its
    /// predecessor: records were reordered (and rehashed).
    OutOfOrder,
    /// A record's `previousHash` is not its predecessor's hash, although
    /// both match their own content: one of the two was rewritten and
    /// rehashed after the later one was sealed.
    LinkMismatch,
    /// The head names a different last record than the chain holds at the
    /// head's sequence: the last record was rewritten, or the head altered.
    HeadMismatch,
}

impl BreakReason {
    /// The camelCase name used in API responses.
    pub fn as_str(&self) -> &'static str {
        match self {
            BreakReason::Malformed => "malformed",
            BreakReason::WrongChain => "wrongChain",
            BreakReason::ContentAltered => "contentAltered",
            BreakReason::DuplicateSequence => "duplicateSequence",
            BreakReason::MissingRecord => "missingRecord",
            BreakReason::OutOfOrder => "outOfOrder",
            BreakReason::LinkMismatch => "linkMismatch",
            BreakReason::HeadMismatch => "headMismatch",
        }
    }

    /// One sentence for people.
    pub fn describe(&self) -> &'static str {
        match self {
            BreakReason::Malformed => "a stored document is not a valid audit record or chain head",
            BreakReason::WrongChain => "a record of another resource is stored in this chain",
            BreakReason::ContentAltered => "the record's content does not match its sealed hash",
            BreakReason::DuplicateSequence => "two records claim this sequence number",
            BreakReason::MissingRecord => "the record with this sequence number is missing",
            BreakReason::OutOfOrder => "the record links to a record other than its predecessor",
            BreakReason::LinkMismatch => {
                "the record does not link to its predecessor's hash: one of them was rewritten"
            }
            BreakReason::HeadMismatch => "the chain head does not match the record at its sequence",
        }
    }
}

/// Where a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The sequence number at fault; `None` only for a document whose
    /// sequence cannot be read.
    pub sequence: Option<u64>,
    /// The record at fault, when one is known (not for a removed record,
    /// except the last one, whose id the head remembers).
    pub record_id: Option<Uuid>,
    pub reason: BreakReason,
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub intact: bool,
    /// How many records (or documents) were given.
    pub records_checked: u64,
    /// Whether a chain head was given. Without one, removing the last
    /// records of a chain cannot be detected.
    pub head_checked: bool,
    /// Records after the head's sequence (all of them without a head): the
    /// head has not reached them yet, so deleting them, newest first, would
    /// leave a chain that verifies as intact. Normally 0, or a few for the
    /// milliseconds between an append's 201 and its head advance; it stays
    /// above 0 when an advance failed, until the chain's next append moves
    /// the head. This is the exact limit of deletion detection.
    pub unprotected_records: u64,
    pub first_break: Option<ChainBreak>,
}

impl VerifyReport {
    /// The API representation:
    /// `{"intact", "recordsChecked", "headChecked", "unprotectedRecords", "firstBreak": null | {"sequence", "recordId", "reason", "detail"}}`.
    pub fn to_json(&self) -> Value {
        let first_break = self.first_break.as_ref().map(|b| {
            json!({
                "sequence": b.sequence,
                "recordId": b.record_id.map(|id| id.to_string()),
                "reason": b.reason.as_str(),
                "detail": b.reason.describe(),
            })
        });
        json!({
            "intact": self.intact,
            "recordsChecked": self.records_checked,
            "headChecked": self.head_checked,
            "unprotectedRecords": self.unprotected_records,
            "firstBreak": first_break,
        })
    }
}

/// Verifies one chain from its records, as read from the store in any
/// order, and its head (if the chain has one stored).
///
/// The first break is the first problem found in this order: records whose
/// chain or content does not match their seal (lowest sequence first), then
/// the chain's shape walked from sequence 1 (missing, duplicate, out of
/// order, broken link), then the head. Editing a record, removing one
/// (first, middle, or last when a head is given) and swapping two are each
/// reported at the record where the damage is.
///
/// Records after the head's sequence are accepted when they link correctly:
/// the head is advanced after a record is written, so it may lag behind.
///
/// What a keyless hash chain cannot detect: someone able to rewrite the
/// store can rebuild a consistent chain and head from the point they change.
/// Anchoring heads outside the store (or signing them) would close that.
pub fn verify_chain(
    chain_key: &ChainKey,
    records: &[AuditRecord],
    head: Option<&ChainHead>,
) -> VerifyReport {
    let first_break = find_break(chain_key, records.iter().collect(), head);
    report(records.len(), head, first_break)
}

/// Like [`verify_chain`], from the store's documents as read (system
/// properties and all). A document that is not a valid record or head is
/// itself a break ([`BreakReason::Malformed`]), reported before any other.
pub fn verify_documents(
    chain_key: &ChainKey,
    documents: &[Value],
    head_document: Option<&Value>,
) -> VerifyReport {
    let mut records = Vec::with_capacity(documents.len());
    let mut malformed = Vec::new();
    for doc in documents {
        match record_from_document(doc.clone()) {
            Ok(r) => records.push(r),
            Err(_) => malformed.push(ChainBreak {
                sequence: doc.get("sequence").and_then(Value::as_u64),
                record_id: doc
                    .get("recordId")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok()),
                reason: BreakReason::Malformed,
            }),
        }
    }
    let head = match head_document.map(|d| head_from_document(d.clone())) {
        None => None,
        Some(Ok(h)) => Some(h),
        Some(Err(_)) => {
            malformed.insert(
                0,
                ChainBreak {
                    sequence: None,
                    record_id: None,
                    reason: BreakReason::Malformed,
                },
            );
            None
        }
    };
    // `None` sorts first: an unreadable sequence is the worst case.
    let first_break = malformed
        .into_iter()
        .min_by_key(|b| b.sequence)
        .or_else(|| find_break(chain_key, records.iter().collect(), head.as_ref()));
    let mut report = report(documents.len(), head.as_ref(), first_break);
    report.head_checked = head_document.is_some();
    report
}

fn report(count: usize, head: Option<&ChainHead>, first_break: Option<ChainBreak>) -> VerifyReport {
    let records = count as u64;
    VerifyReport {
        intact: first_break.is_none(),
        records_checked: records,
        head_checked: head.is_some(),
        unprotected_records: records.saturating_sub(head.map_or(0, |h| h.sequence)),
        first_break,
    }
}

fn at(record: &AuditRecord, reason: BreakReason) -> Option<ChainBreak> {
    Some(ChainBreak {
        sequence: Some(record.sequence),
        record_id: Some(record.id),
        reason,
    })
}

fn find_break(
    chain_key: &ChainKey,
    mut records: Vec<&AuditRecord>,
    head: Option<&ChainHead>,
) -> Option<ChainBreak> {
    records.sort_by_key(|r| (r.sequence, r.id));

    // Each record against its own seal.
    for r in &records {
        if r.chain_key() != *chain_key {
            return at(r, BreakReason::WrongChain);
        }
        if record_hash(r) != r.hash {
            return at(r, BreakReason::ContentAltered);
        }
    }

    // The chain's shape: 1, 2, 3... each linking to the one before.
    let hashes: HashSet<Digest> = records.iter().map(|r| r.hash).collect();
    let mut expected: u64 = 1;
    let mut previous: Option<&AuditRecord> = None;
    for r in &records {
        if r.sequence < expected {
            return at(r, BreakReason::DuplicateSequence);
        }
        if r.sequence > expected {
            return Some(ChainBreak {
                sequence: Some(expected),
                record_id: None,
                reason: BreakReason::MissingRecord,
            });
        }
        let wanted = previous.map_or(Digest::GENESIS, |p| p.hash);
        if r.previous_hash != wanted {
            let links_elsewhere = hashes.contains(&r.previous_hash)
                || (r.previous_hash == Digest::GENESIS && r.sequence != 1);
            let reason = if links_elsewhere {
                BreakReason::OutOfOrder
            } else {
                BreakReason::LinkMismatch
            };
            return at(r, reason);
        }
        previous = Some(r);
        match expected.checked_add(1) {
            Some(next) => expected = next,
            None => break,
        }
    }

    // The head: the chain must reach it, and hold its record at its sequence.
    let head = head?;
    let last = previous.map_or(0, |p| p.sequence);
    if head.chain_key != *chain_key || head.sequence == 0 {
        return Some(ChainBreak {
            sequence: Some(head.sequence),
            record_id: Some(head.last_record_id),
            reason: BreakReason::HeadMismatch,
        });
    }
    if head.sequence > last {
        let missing = last + 1;
        return Some(ChainBreak {
            sequence: Some(missing),
            record_id: (head.sequence == missing).then_some(head.last_record_id),
            reason: BreakReason::MissingRecord,
        });
    }
    // Sequences run 1..=last without gaps here, so this index is the record.
    let r = records[(head.sequence - 1) as usize];
    if r.hash != head.last_hash || r.id != head.last_record_id {
        return at(r, BreakReason::HeadMismatch);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One way of tampering with a record.
    type Edit = Box<dyn Fn(&mut AuditRecord)>;
    use crate::chain::seal;
    use crate::chain::tests::{context, input};
    use crate::document::{head_to_document, record_to_document};
    use crate::input::{Actor, Operation, ResourceType};
    use crate::stamp::AuditTime;

    const PID: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
    const N: u64 = 5;

    fn key() -> ChainKey {
        ChainKey::new(
            ResourceType::Patient,
            &crate::input::ResourceId::parse(PID).unwrap(),
        )
    }

    /// A sealed chain of `n` (at least one) records and its head.
    fn chain(n: u64) -> (Vec<AuditRecord>, ChainHead) {
        let (records, head) = sealed_chain(n);
        (records, head.expect("n > 0"))
    }

    fn sealed_chain(n: u64) -> (Vec<AuditRecord>, Option<ChainHead>) {
        let ops = [
            Operation::Create,
            Operation::Read,
            Operation::Update,
            Operation::Read,
        ];
        let mut head = None;
        let mut records = Vec::new();
        for i in 0..n {
            let inp = input(ResourceType::Patient, PID, ops[i as usize % ops.len()]);
            let (r, h) = seal(inp, context(u128::from(i) + 1), head.as_ref()).unwrap();
            records.push(r);
            head = Some(h);
        }
        (records, head)
    }

    fn verify(records: &[AuditRecord], head: Option<&ChainHead>) -> VerifyReport {
        verify_chain(&key(), records, head)
    }

    fn broken(seq: u64, id: Option<Uuid>, reason: BreakReason) -> Option<ChainBreak> {
        Some(ChainBreak {
            sequence: Some(seq),
            record_id: id,
            reason,
        })
    }

    fn rehash(r: &mut AuditRecord) {
        r.hash = record_hash(r);
    }

    #[test]
    fn intact_chains_verify_in_any_order() {
        for n in [0, 1, 2, N] {
            let (mut records, head) = sealed_chain(n);
            let report = verify(&records, head.as_ref());
            assert_eq!(
                report,
                VerifyReport {
                    intact: true,
                    records_checked: n,
                    head_checked: n > 0,
                    unprotected_records: 0,
                    first_break: None
                }
            );
            records.reverse();
            assert!(verify(&records, head.as_ref()).intact);
            let mid = records.len() / 2;
            records.rotate_left(mid);
            assert!(verify(&records, head.as_ref()).intact);
            assert!(verify(&records, None).intact);
        }
    }

    #[test]
    fn edited_content_is_reported_at_the_edited_record() {
        let (records, head) = chain(N);
        let edits: Vec<Edit> = vec![
            Box::new(|r| r.actor = Actor::parse("mallory").unwrap()),
            Box::new(|r| r.created_date = AuditTime::from_unix_millis(0).unwrap()),
            Box::new(|r| {
                r.resource = crate::input::AuditResource::new(
                    ResourceType::Patient,
                    r.resource.id().clone(),
                    Operation::Search,
                )
            }),
            Box::new(|r| r.previous_hash = Digest::from_bytes([9; 32])),
            Box::new(|r| r.id = Uuid::from_u128(42)),
            Box::new(|r| r.hash = Digest::from_bytes([9; 32])),
        ];
        for pos in 0..N as usize {
            for (e, edit) in edits.iter().enumerate() {
                let mut tampered = records.clone();
                edit(&mut tampered[pos]);
                let id = tampered[pos].id;
                let report = verify(&tampered, Some(&head));
                assert!(!report.intact);
                assert_eq!(
                    report.first_break,
                    broken(pos as u64 + 1, Some(id), BreakReason::ContentAltered),
                    "pos {pos} edit {e}"
                );
            }
        }
    }

    #[test]
    fn removed_records_are_reported_at_their_sequence() {
        let (records, head) = chain(N);
        for pos in 0..N as usize {
            let mut tampered = records.clone();
            let removed = tampered.remove(pos);
            let seq = pos as u64 + 1;
            let expected_id = (seq == N).then_some(removed.id);
            assert_eq!(
                verify(&tampered, Some(&head)).first_break,
                broken(seq, expected_id, BreakReason::MissingRecord),
                "pos {pos}"
            );
            if seq < N {
                assert_eq!(
                    verify(&tampered, None).first_break,
                    broken(seq, None, BreakReason::MissingRecord)
                );
            } else {
                // Without the head, a chain cut at its end looks complete.
                assert!(verify(&tampered, None).intact);
            }
        }
        assert_eq!(
            verify(&[], Some(&head)).first_break,
            broken(1, None, BreakReason::MissingRecord)
        );
        let (one, one_head) = chain(1);
        assert_eq!(
            verify(&[], Some(&one_head)).first_break,
            broken(1, Some(one[0].id), BreakReason::MissingRecord)
        );
    }

    #[test]
    fn swapped_records_are_reported_where_the_swap_starts() {
        let (records, head) = chain(N);
        for i in 0..N as usize {
            for j in i + 1..N as usize {
                // Exchange the two records' positions (their sequence numbers).
                let mut tampered = records.clone();
                let (si, sj) = (tampered[i].sequence, tampered[j].sequence);
                tampered[i].sequence = sj;
                tampered[j].sequence = si;
                let report = verify(&tampered, Some(&head));
                assert_eq!(
                    report.first_break,
                    broken(si, Some(records[j].id), BreakReason::ContentAltered),
                    "swap {i} {j}"
                );
                // Exchange everything but the position.
                let mut tampered = records.clone();
                let (a, b) = (tampered[i].clone(), tampered[j].clone());
                tampered[i] = AuditRecord {
                    sequence: a.sequence,
                    ..b.clone()
                };
                tampered[j] = AuditRecord {
                    sequence: b.sequence,
                    ..a
                };
                assert_eq!(
                    verify(&tampered, Some(&head)).first_break,
                    broken(si, Some(records[j].id), BreakReason::ContentAltered)
                );
            }
        }
    }

    #[test]
    fn rehashed_tampering_is_still_found() {
        let (records, head) = chain(N);
        // Rewrite one record and recompute its hash: its successor (or the
        // head, for the last) no longer agrees.
        for pos in 0..N as usize {
            let mut tampered = records.clone();
            tampered[pos].actor = Actor::parse("mallory").unwrap();
            rehash(&mut tampered[pos]);
            let expected = if (pos as u64) + 1 < N {
                broken(
                    pos as u64 + 2,
                    Some(records[pos + 1].id),
                    BreakReason::LinkMismatch,
                )
            } else {
                broken(N, Some(records[pos].id), BreakReason::HeadMismatch)
            };
            assert_eq!(
                verify(&tampered, Some(&head)).first_break,
                expected,
                "pos {pos}"
            );
        }
        // Swap records 2 and 4 and rehash both: record 2's place now links to record 3.
        let mut tampered = records.clone();
        tampered[1].sequence = 4;
        tampered[3].sequence = 2;
        rehash(&mut tampered[1]);
        rehash(&mut tampered[3]);
        assert_eq!(
            verify(&tampered, Some(&head)).first_break,
            broken(2, Some(records[3].id), BreakReason::OutOfOrder)
        );
        // A copy of record 3 under a new id, rehashed.
        let mut tampered = records.clone();
        let mut copy = records[2].clone();
        copy.id = Uuid::from_u128(u128::MAX);
        rehash(&mut copy);
        tampered.push(copy.clone());
        let report = verify(&tampered, Some(&head));
        assert_eq!(
            report.first_break,
            broken(3, Some(copy.id), BreakReason::DuplicateSequence)
        );
        // Removing a record and renumbering the rest (rehashed) breaks the link.
        let mut tampered = records.clone();
        tampered.remove(2);
        for r in &mut tampered[2..] {
            r.sequence -= 1;
            rehash(r);
        }
        assert_eq!(
            verify(&tampered, None).first_break,
            broken(3, Some(records[3].id), BreakReason::LinkMismatch)
        );
        // A genesis link in the middle of the chain.
        let mut tampered = records.clone();
        tampered[2].previous_hash = Digest::GENESIS;
        rehash(&mut tampered[2]);
        assert_eq!(
            verify(&tampered, None).first_break,
            broken(3, Some(records[2].id), BreakReason::OutOfOrder)
        );
    }

    #[test]
    fn head_checks() {
        let (records, head) = chain(N);
        // The head may lag behind records that link correctly.
        let lagging = ChainHead::of(&records[2]);
        assert!(verify(&records, Some(&lagging)).intact);
        // A head that names another record or hash at its sequence.
        let wrong_hash = ChainHead {
            last_hash: Digest::from_bytes([3; 32]),
            ..head.clone()
        };
        assert_eq!(
            verify(&records, Some(&wrong_hash)).first_break,
            broken(N, Some(records[4].id), BreakReason::HeadMismatch)
        );
        let wrong_id = ChainHead {
            last_record_id: records[0].id,
            ..head.clone()
        };
        assert_eq!(
            verify(&records, Some(&wrong_id)).first_break,
            broken(N, Some(records[4].id), BreakReason::HeadMismatch)
        );
        let other_chain = ChainHead {
            chain_key: ChainKey::new(
                ResourceType::Test,
                &crate::input::ResourceId::parse(PID).unwrap(),
            ),
            ..head.clone()
        };
        assert_eq!(
            verify(&records, Some(&other_chain))
                .first_break
                .unwrap()
                .reason,
            BreakReason::HeadMismatch
        );
        let zero = ChainHead {
            sequence: 0,
            ..head.clone()
        };
        assert_eq!(
            verify(&records, Some(&zero)).first_break.unwrap().reason,
            BreakReason::HeadMismatch
        );
        // Head further than the records: the missing ones are reported.
        let ahead = ChainHead {
            sequence: N + 2,
            ..head.clone()
        };
        assert_eq!(
            verify(&records, Some(&ahead)).first_break,
            broken(N + 1, None, BreakReason::MissingRecord)
        );
    }

    #[test]
    fn records_of_another_chain_are_reported() {
        let (mut records, head) = chain(N);
        let (other, _) = {
            let inp = input(ResourceType::Test, PID, Operation::Read);
            seal(inp, context(99), None).unwrap()
        };
        records.push(AuditRecord {
            sequence: 3,
            ..other.clone()
        });
        let report = verify(&records, Some(&head));
        assert_eq!(
            report.first_break,
            broken(3, Some(other.id), BreakReason::WrongChain)
        );
    }

    #[test]
    fn documents_are_verified_and_malformed_ones_reported() {
        let (records, head) = chain(N);
        let mut docs: Vec<Value> = records.iter().map(record_to_document).collect();
        for d in &mut docs {
            d["_etag"] = json!("\"x\"");
            d["_ts"] = json!(1);
        }
        let head_doc = head_to_document(&head);
        let report = verify_documents(&key(), &docs, Some(&head_doc));
        assert_eq!(
            report,
            VerifyReport {
                intact: true,
                records_checked: N,
                head_checked: true,
                unprotected_records: 0,
                first_break: None
            }
        );

        // An edit in the store is found at its record.
        let mut tampered = docs.clone();
        tampered[3]["actor"] = json!("mallory");
        assert_eq!(
            verify_documents(&key(), &tampered, Some(&head_doc)).first_break,
            broken(4, Some(records[3].id), BreakReason::ContentAltered)
        );
        // A document that is no longer a valid record.
        let mut tampered = docs.clone();
        tampered[2]["actor"] = json!(17);
        assert_eq!(
            verify_documents(&key(), &tampered, Some(&head_doc)).first_break,
            broken(3, Some(records[2].id), BreakReason::Malformed)
        );
        let mut tampered = docs.clone();
        tampered[1].as_object_mut().unwrap().remove("sequence");
        let b = verify_documents(&key(), &tampered, Some(&head_doc))
            .first_break
            .unwrap();
        assert_eq!((b.sequence, b.reason), (None, BreakReason::Malformed));
        // The last document removed: found against the head.
        let report = verify_documents(&key(), &docs[..4], Some(&head_doc));
        assert_eq!(
            report.first_break,
            broken(5, Some(records[4].id), BreakReason::MissingRecord)
        );
        // An unreadable head.
        let report = verify_documents(&key(), &docs, Some(&json!({"id": "x"})));
        assert_eq!(report.first_break.unwrap().reason, BreakReason::Malformed);
    }

    #[test]
    fn report_json() {
        let (mut records, head) = chain(2);
        records[0].actor = Actor::parse("mallory").unwrap();
        let j = verify(&records, Some(&head)).to_json();
        assert_eq!(
            j,
            json!({
                "intact": false, "recordsChecked": 2, "headChecked": true, "unprotectedRecords": 0,
                "firstBreak": {"sequence": 1, "recordId": records[0].id.to_string(), "reason": "contentAltered",
                               "detail": "the record's content does not match its sealed hash"}
            })
        );
        let j = verify(&[], None).to_json();
        assert_eq!(
            j,
            json!({"intact": true, "recordsChecked": 0, "headChecked": false, "unprotectedRecords": 0, "firstBreak": null})
        );
    }

    /// The limit of deletion detection, exactly: records the head has not
    /// reached can be removed from the end unnoticed; the report counts
    /// them. Records the head covers cannot.
    #[test]
    fn deleting_the_newest_records_is_detected_up_to_the_head_and_the_rest_are_counted() {
        let (records, heads) = sealed_heads(5);
        // The head lags at 3 (the advances for 4 and 5 have not run).
        let lagging = &heads[2];
        let report = verify(&records, Some(lagging));
        assert!(report.intact);
        assert_eq!(report.unprotected_records, 2);
        // Removing 5, then 4: not detectable, and the count says so.
        let report = verify(&records[..4], Some(lagging));
        assert!(report.intact);
        assert_eq!(report.unprotected_records, 1);
        assert_eq!(verify(&records[..3], Some(lagging)).unprotected_records, 0);
        // Removing 3, which the head names: detected.
        let report = verify(&records[..2], Some(lagging));
        assert!(!report.intact);
        assert_eq!(
            report.first_break.unwrap().reason,
            BreakReason::MissingRecord
        );
        // Once the head has caught up, nothing is unprotected.
        let report = verify(&records, Some(&heads[4]));
        assert_eq!(report.unprotected_records, 0);
        assert!(!verify(&records[..4], Some(&heads[4])).intact);
        // Without a head every record is.
        assert_eq!(verify(&records, None).unprotected_records, 5);
    }

    /// A sealed chain of `n` records and the head after each.
    fn sealed_heads(n: usize) -> (Vec<AuditRecord>, Vec<ChainHead>) {
        let mut records = Vec::new();
        let mut heads: Vec<ChainHead> = Vec::new();
        for i in 0..n {
            let inp = input(ResourceType::Patient, PID, Operation::Read);
            let (r, h) = seal(inp, context(i as u128 + 1), heads.last()).unwrap();
            records.push(r);
            heads.push(h);
        }
        (records, heads)
    }
}
