//! Store documents for records and chain heads, the API view of a record,
//! and the queries that read a chain back.
//!
//! Layout in the audit container `records` (partition key `/chainKey`):
//! - a record: `id` = `<chainKey>:<sequence as 20 digits>`, `docType` =
//!   `auditRecord`. The id is derived from the position, so two concurrent
//!   appends to one chain cannot both succeed: the store's create answers
//!   409 to the second, which re-reads and retries. Zero-padding makes
//!   `ORDER BY c.id` the chain order.
//! - the head: `id` = `<chainKey>:head`, `docType` = `auditHead`, in the
//!   same container and partition as its records, so that each append
//!   commits its record and the head's `If-Match` replace in one
//!   transactional batch; only ever moved forward.
//!
//! Append protocol for the audit service ([`crate::append`]): read the head
//! (none: new chain); [`crate::seal`]; commit the record and the new head;
//! when the chain moved meanwhile, find its real end ([`chain_end_query`]),
//! take [`ChainHead::of`] it and seal again (bounded retries).

use serde_json::{json, Value};
use uuid::Uuid;

use crate::append::{HeadDocument, StoredEnd};
use crate::chain::{AuditRecord, ChainHead, ChainKey, Digest};
use crate::error::{AuditInputError, DocumentError, Violation};
use crate::input::{Actor, AuditResource, CorrelationId, SourceSystemName};
use crate::stamp::AuditTime;
use strict_json::Fields;

/// Properties Cosmos DB adds to every document; ignored when reading.
pub const SYSTEM_PROPERTIES: [&str; 5] = ["_rid", "_self", "_etag", "_ts", "_attachments"];

pub const RECORD_DOC_TYPE: &str = "auditRecord";
pub const HEAD_DOC_TYPE: &str = "auditHead";

/// The store id of the record at `sequence` of a chain.
pub fn record_document_id(chain_key: &ChainKey, sequence: u64) -> String {
    format!("{chain_key}:{sequence:020}")
}

/// The store id of a chain's head document.
pub fn head_document_id(chain_key: &ChainKey) -> String {
    format!("{chain_key}:head")
}

/// The `_etag` of a store document (for `If-Match` when replacing the head).
pub fn document_etag(doc: &Value) -> Option<&str> {
    doc.get("_etag").and_then(Value::as_str)
}

/// The API view of a record (`GET /audit/records`): every sealed field, so
/// a client can recompute the hashes itself.
pub fn record_to_json(record: &AuditRecord) -> Value {
    json!({
        "id": record.id.to_string(),
        "chainKey": record.chain_key().as_str(),
        "sequence": record.sequence,
        "createdDate": record.created_date.to_string(),
        "correlationId": record.correlation_id.as_str(),
        "actor": record.actor.as_str(),
        "sourceSystemName": record.source_system_name.as_str(),
        "resource": record.resource.to_json(),
        "previousHash": record.previous_hash.to_string(),
        "hash": record.hash.to_string(),
    })
}

/// The store document of a record.
pub fn record_to_document(record: &AuditRecord) -> Value {
    let key = record.chain_key();
    json!({
        "id": record_document_id(&key, record.sequence),
        "docType": RECORD_DOC_TYPE,
        "chainKey": key.as_str(),
        "recordId": record.id.to_string(),
        "sequence": record.sequence,
        "createdDate": record.created_date.to_string(),
        "correlationId": record.correlation_id.as_str(),
        "actor": record.actor.as_str(),
        "sourceSystemName": record.source_system_name.as_str(),
        "resource": record.resource.to_json(),
        "previousHash": record.previous_hash.to_string(),
        "hash": record.hash.to_string(),
    })
}

fn invalid(field: &str, violation: Violation) -> DocumentError {
    DocumentError(AuditInputError::new(field, violation))
}

fn canonical_uuid(obj: &mut Fields, key: &str) -> Result<Uuid, DocumentError> {
    let s = obj.required_str(key)?;
    match Uuid::parse_str(&s) {
        Ok(u) if u.hyphenated().to_string() == s => Ok(u),
        _ => Err(invalid(
            key,
            Violation::NotCanonical("a lower-case hyphenated GUID"),
        )),
    }
}

fn digest(obj: &mut Fields, key: &str) -> Result<Digest, DocumentError> {
    obj.required_str(key)?
        .parse()
        .map_err(|_| invalid(key, Violation::NotCanonical("64 lower-case hex digits")))
}

fn sequence(obj: &mut Fields) -> Result<u64, DocumentError> {
    match obj.required_u64("sequence")? {
        0 => Err(invalid(
            "sequence",
            Violation::NotCanonical("an integer from 1"),
        )),
        n => Ok(n),
    }
}

fn doc_type(obj: &mut Fields, expected: &'static [&'static str]) -> Result<(), DocumentError> {
    if obj.required_str("docType")? == expected[0] {
        Ok(())
    } else {
        Err(invalid("docType", Violation::NotOneOf(expected)))
    }
}

/// Reads a record document back. System properties are ignored; anything
/// else unknown, missing, mistyped, not canonical, or inconsistent (an `id`
/// or `chainKey` that does not follow from the record) is an error.
pub fn record_from_document(doc: Value) -> Result<AuditRecord, DocumentError> {
    let mut obj = Fields::new(doc, "")?;
    for key in SYSTEM_PROPERTIES {
        obj.discard(key);
    }
    obj.reject_unknown(&[
        "id",
        "docType",
        "chainKey",
        "recordId",
        "sequence",
        "createdDate",
        "correlationId",
        "actor",
        "sourceSystemName",
        "resource",
        "previousHash",
        "hash",
    ])?;
    doc_type(&mut obj, &[RECORD_DOC_TYPE])?;
    let id = canonical_uuid(&mut obj, "recordId")?;
    let sequence = sequence(&mut obj)?;
    let created_date = obj
        .required_str("createdDate")?
        .parse::<AuditTime>()
        .map_err(|_| {
            invalid(
                "createdDate",
                Violation::NotCanonical("YYYY-MM-DDTHH:MM:SS.mmmZ"),
            )
        })?;
    let correlation_id =
        CorrelationId::parse_at("correlationId", &obj.required_str("correlationId")?)?;
    let actor = Actor::parse_at("actor", &obj.required_str("actor")?)?;
    let source_system_name =
        SourceSystemName::parse_at("sourceSystemName", &obj.required_str("sourceSystemName")?)?;
    let resource = AuditResource::from_json(obj.required("resource")?, "resource")?;
    let previous_hash = digest(&mut obj, "previousHash")?;
    let hash = digest(&mut obj, "hash")?;
    let key = ChainKey::of(&resource);
    if obj.required_str("chainKey")? != key.as_str() {
        return Err(invalid(
            "chainKey",
            Violation::Inconsistent("does not match resource type and id"),
        ));
    }
    if obj.required_str("id")? != record_document_id(&key, sequence) {
        return Err(invalid(
            "id",
            Violation::Inconsistent("does not follow from chainKey and sequence"),
        ));
    }
    Ok(AuditRecord {
        id,
        sequence,
        created_date,
        correlation_id,
        actor,
        source_system_name,
        resource,
        previous_hash,
        hash,
    })
}

/// The store document of a chain head.
pub fn head_to_document(head: &ChainHead) -> Value {
    json!({
        "id": head_document_id(&head.chain_key),
        "docType": HEAD_DOC_TYPE,
        "chainKey": head.chain_key.as_str(),
        "sequence": head.sequence,
        "lastHash": head.last_hash.to_string(),
        "lastRecordId": head.last_record_id.to_string(),
    })
}

/// Reads a head document back, as strictly as a record.
pub fn head_from_document(doc: Value) -> Result<ChainHead, DocumentError> {
    let mut obj = Fields::new(doc, "")?;
    for key in SYSTEM_PROPERTIES {
        obj.discard(key);
    }
    obj.reject_unknown(&[
        "id",
        "docType",
        "chainKey",
        "sequence",
        "lastHash",
        "lastRecordId",
    ])?;
    doc_type(&mut obj, &[HEAD_DOC_TYPE])?;
    let chain_key = ChainKey::parse(&obj.required_str("chainKey")?)?;
    let sequence = sequence(&mut obj)?;
    let last_hash = digest(&mut obj, "lastHash")?;
    let last_record_id = canonical_uuid(&mut obj, "lastRecordId")?;
    if obj.required_str("id")? != head_document_id(&chain_key) {
        return Err(invalid(
            "id",
            Violation::Inconsistent("does not follow from chainKey"),
        ));
    }
    Ok(ChainHead {
        chain_key,
        sequence,
        last_hash,
        last_record_id,
    })
}

/// A store query: text with `@name` placeholders, and the values.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditQuery {
    pub text: String,
    /// `(name, value)`, names with their leading `@`.
    pub parameters: Vec<(String, Value)>,
}

impl AuditQuery {
    /// The Cosmos DB query body: `{"query", "parameters": [{"name", "value"}]}`.
    pub fn to_cosmos_body(&self) -> Value {
        let parameters: Vec<Value> = self
            .parameters
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect();
        json!({"query": self.text, "parameters": parameters})
    }
}

/// The records of one chain in sequence order, optionally only those
/// created within `[from, to]` (inclusive; `createdDate` is fixed-width
/// text, so the comparison is a string comparison). A single-partition
/// query in the subset the local store understands.
pub fn chain_records_query(
    chain_key: &ChainKey,
    from: Option<AuditTime>,
    to: Option<AuditTime>,
) -> AuditQuery {
    let mut text =
        String::from("SELECT * FROM c WHERE c.chainKey = @chainKey AND c.docType = @docType");
    let mut parameters = vec![
        (
            "@chainKey".to_owned(),
            Value::String(chain_key.as_str().to_owned()),
        ),
        (
            "@docType".to_owned(),
            Value::String(RECORD_DOC_TYPE.to_owned()),
        ),
    ];
    if let Some(from) = from {
        text.push_str(" AND c.createdDate >= @from");
        parameters.push(("@from".to_owned(), Value::String(from.to_string())));
    }
    if let Some(to) = to {
        text.push_str(" AND c.createdDate <= @to");
        parameters.push(("@to".to_owned(), Value::String(to.to_string())));
    }
    text.push_str(" ORDER BY c.id");
    AuditQuery { text, parameters }
}

/// Where a chain ends: its documents in reverse id order, of which the
/// first two tell ([`chain_end_from_documents`]). The head's id
/// (`<chainKey>:head`) sorts after every record's (`<chainKey>:` and
/// digits), so the head comes first, then the record with the highest
/// sequence: one query instead of a head read and a tail read.
/// Appenders use it after losing a race.
pub fn chain_end_query(chain_key: &ChainKey) -> AuditQuery {
    AuditQuery {
        text: "SELECT * FROM c WHERE c.chainKey = @chainKey ORDER BY c.id DESC".to_owned(),
        parameters: vec![(
            "@chainKey".to_owned(),
            Value::String(chain_key.as_str().to_owned()),
        )],
    }
}

/// Items of [`chain_end_query`]'s first page that say where the chain ends.
pub const CHAIN_END_ITEMS: u32 = 2;

/// The head (with its etag) and the last record among the first documents
/// of [`chain_end_query`]. A head without an etag is a store that does not
/// follow the protocol: an error, as the head could not be replaced.
pub fn chain_end_from_documents(
    chain_key: &ChainKey,
    documents: Vec<Value>,
) -> Result<StoredEnd, DocumentError> {
    let head_id = head_document_id(chain_key);
    let mut end = StoredEnd::default();
    for doc in documents.into_iter().take(CHAIN_END_ITEMS as usize) {
        if doc.get("id").and_then(Value::as_str) == Some(head_id.as_str()) {
            let etag = document_etag(&doc)
                .ok_or_else(|| invalid("_etag", Violation::Required))?
                .to_owned();
            end.head = Some((doc, etag));
        } else if end.tail.is_none() {
            end.tail = Some(doc);
        }
    }
    Ok(end)
}

/// At most this many chains' heads in one [`heads_query`] (the local
/// store's bound on alternatives joined by OR).
pub const MAX_HEADS_PER_QUERY: usize = 100;

/// The heads of several chains in one cross-partition query: one
/// `(id, chainKey)` alternative per chain, the shape the Cosmos SDKs'
/// ReadMany sends. A page of disclosures reads its fifty heads with one store
/// call instead of fifty. At most [`MAX_HEADS_PER_QUERY`] keys.
pub fn heads_query(chain_keys: &[ChainKey]) -> AuditQuery {
    let mut alternatives = Vec::with_capacity(chain_keys.len());
    let mut parameters = Vec::with_capacity(2 * chain_keys.len());
    for (i, key) in chain_keys.iter().enumerate() {
        alternatives.push(format!("(c.id = @h{i} AND c.chainKey = @k{i})"));
        parameters.push((format!("@h{i}"), Value::String(head_document_id(key))));
        parameters.push((format!("@k{i}"), Value::String(key.as_str().to_owned())));
    }
    AuditQuery {
        text: format!("SELECT * FROM c WHERE {}", alternatives.join(" OR ")),
        parameters,
    }
}

/// Each chain's head (with its etag) among the documents [`heads_query`]
/// found, in the order of `chain_keys`; `None` for a chain without one (a
/// document with a head's id but another chain's `chainKey` is not its head).
/// A head without an etag is a store that does not follow the protocol.
pub fn heads_from_documents(
    chain_keys: &[ChainKey],
    documents: Vec<Value>,
) -> Result<Vec<Option<HeadDocument>>, DocumentError> {
    let mut found = std::collections::HashMap::new();
    for doc in documents {
        let Some(id) = doc.get("id").and_then(Value::as_str).map(str::to_owned) else {
            continue;
        };
        let etag = document_etag(&doc)
            .ok_or_else(|| invalid("_etag", Violation::Required))?
            .to_owned();
        found.insert(id, (doc, etag));
    }
    // The query pairs each head id with its partition; checking the pair
    // again here keeps a head stored in another chain's partition out even
    // if a store answered loosely.
    Ok(chain_keys
        .iter()
        .map(|key| {
            found
                .get(&head_document_id(key))
                .filter(|(doc, _)| {
                    doc.get("chainKey").and_then(Value::as_str) == Some(key.as_str())
                })
                .cloned()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::seal;
    use crate::chain::tests::{context, input};
    use crate::input::{CriterionName, Operation, ResourceId, ResourceType};
    use crate::AuditInput;

    const PID: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";

    fn sealed() -> (AuditRecord, ChainHead) {
        let (_, h1) = seal(
            input(ResourceType::Patient, PID, Operation::Create),
            context(1),
            None,
        )
        .unwrap();
        let search = AuditInput {
            source_system_name: SourceSystemName::parse("patient-api").unwrap(),
            resource: AuditResource::search(
                ResourceType::Patient,
                ResourceId::parse(PID).unwrap(),
                vec![
                    CriterionName::parse("firstName").unwrap(),
                    CriterionName::parse("postCode").unwrap(),
                ],
            )
            .unwrap(),
        };
        seal(search, context(2), Some(&h1)).unwrap()
    }

    #[test]
    fn record_document_layout() {
        let (r, _) = sealed();
        let d = record_to_document(&r);
        assert_eq!(
            d["id"],
            json!(format!("patient:{PID}:00000000000000000002"))
        );
        assert_eq!(d["docType"], json!("auditRecord"));
        assert_eq!(d["chainKey"], json!(format!("patient:{PID}")));
        assert_eq!(d["recordId"], json!("a0000000-0000-4000-8000-000000000002"));
        assert_eq!(d["sequence"], json!(2));
        assert_eq!(d["createdDate"], json!("2023-11-14T22:13:20.002Z"));
        assert_eq!(
            d["resource"],
            json!({"type": "patient", "id": PID, "operation": "search", "criteria": ["firstName", "postCode"]})
        );
        assert_eq!(d["hash"], json!(r.hash.to_string()));
        assert_eq!(d["previousHash"], json!(r.previous_hash.to_string()));
    }

    #[test]
    fn ids_sort_in_chain_order() {
        let k = ChainKey::parse("test:x").unwrap();
        let ids: Vec<String> = [1u64, 2, 9, 10, 11, 100, u64::MAX]
            .iter()
            .map(|s| record_document_id(&k, *s))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert_eq!(head_document_id(&k), "test:x:head");
    }

    #[test]
    fn record_round_trip_ignores_system_properties() {
        let (r, _) = sealed();
        let mut d = record_to_document(&r);
        assert_eq!(record_from_document(d.clone()).unwrap(), r);
        for k in SYSTEM_PROPERTIES {
            d[k] = json!("x");
        }
        assert_eq!(record_from_document(d).unwrap(), r);
    }

    #[test]
    fn member_order_does_not_change_the_hash() {
        let (r, _) = sealed();
        let d = record_to_document(&r);
        // Rebuild the document text with members in reverse order.
        let members: Vec<String> = d
            .as_object()
            .unwrap()
            .iter()
            .rev()
            .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), v))
            .collect();
        let text = format!("{{{}}}", members.join(","));
        let reordered: Value = serde_json::from_str(&text).unwrap();
        let back = record_from_document(reordered).unwrap();
        assert_eq!(crate::canonical_bytes(&back), crate::canonical_bytes(&r));
        assert_eq!(crate::record_hash(&back), r.hash);
    }

    #[test]
    fn strict_record_reading() {
        let (r, _) = sealed();
        let d = record_to_document(&r);
        let fails = |change: &dyn Fn(&mut Value), field: &str| {
            let mut bad = d.clone();
            change(&mut bad);
            let e = record_from_document(bad).unwrap_err();
            assert_eq!(e.0.field, field, "{e}");
        };
        fails(&|d| d["extra"] = json!(1), "extra");
        fails(&|d| d["docType"] = json!("auditHead"), "docType");
        fails(
            &|d| d["recordId"] = json!(r.id.to_string().to_uppercase()),
            "recordId",
        );
        fails(&|d| d["sequence"] = json!(0), "sequence");
        fails(&|d| d["sequence"] = json!(-1), "sequence");
        fails(&|d| d["sequence"] = json!("2"), "sequence");
        fails(
            &|d| d["createdDate"] = json!("2023-11-14T22:13:20Z"),
            "createdDate",
        );
        fails(
            &|d| d["hash"] = json!(r.hash.to_string().to_uppercase()),
            "hash",
        );
        fails(&|d| d["previousHash"] = json!(""), "previousHash");
        fails(&|d| d["actor"] = json!("tab\t"), "actor");
        fails(&|d| d["resource"]["value"] = json!("Ana"), "resource.value");
        fails(&|d| d["chainKey"] = json!("patient:other"), "chainKey");
        fails(&|d| d["id"] = json!(format!("patient:{PID}:2")), "id");
        fails(
            &|d| d["id"] = json!(format!("patient:{PID}:00000000000000000003")),
            "id",
        );
        fails(
            &|d| {
                d.as_object_mut().unwrap().remove("correlationId");
            },
            "correlationId",
        );
        assert!(record_from_document(json!("x")).is_err());
    }

    #[test]
    fn head_round_trip_and_strictness() {
        let (_, h) = sealed();
        let mut d = head_to_document(&h);
        assert_eq!(d["id"], json!(format!("patient:{PID}:head")));
        assert_eq!(d["docType"], json!("auditHead"));
        assert_eq!(d["sequence"], json!(2));
        assert_eq!(head_from_document(d.clone()).unwrap(), h);
        d["_etag"] = json!("\"1\"");
        assert_eq!(document_etag(&d), Some("\"1\""));
        assert_eq!(head_from_document(d.clone()).unwrap(), h);
        let mut bad = d.clone();
        bad["id"] = json!("x");
        assert_eq!(head_from_document(bad).unwrap_err().0.field, "id");
        let mut bad = d.clone();
        bad["chainKey"] = json!("nope");
        assert_eq!(head_from_document(bad).unwrap_err().0.field, "chainKey");
        let mut bad = d;
        bad["docType"] = json!("auditRecord");
        assert_eq!(head_from_document(bad).unwrap_err().0.field, "docType");
    }

    #[test]
    fn api_view_has_the_record_id_and_no_store_fields() {
        let (r, _) = sealed();
        let j = record_to_json(&r);
        assert_eq!(j["id"], json!(r.id.to_string()));
        assert_eq!(j["chainKey"], json!(format!("patient:{PID}")));
        assert!(j.get("docType").is_none() && j.get("recordId").is_none());
        assert_eq!(j["resource"]["criteria"], json!(["firstName", "postCode"]));
    }

    #[test]
    fn the_end_query_finds_the_head_then_the_last_record() {
        let k = ChainKey::parse(&format!("patient:{PID}")).unwrap();
        let q = chain_end_query(&k);
        assert!(q.text.ends_with("ORDER BY c.id DESC"), "{}", q.text);
        assert_eq!(
            q.parameters[0],
            chain_records_query(&k, None, None).parameters[0]
        );
        // The head's id sorts after every record id of its chain.
        let last = record_document_id(&k, u64::MAX);
        assert!(head_document_id(&k) > last, "{last}");
        let mut head = head_to_document(&sealed().1);
        head["_etag"] = json!("\"7\"");
        let record = record_to_document(&sealed().0);
        let end = chain_end_from_documents(&k, vec![head.clone(), record.clone()]).unwrap();
        assert_eq!(end.head, Some((head.clone(), "\"7\"".to_owned())));
        assert_eq!(end.tail, Some(record.clone()));
        // No head (a chain from before heads lived with records): the
        // first document is the tail.
        let end = chain_end_from_documents(&k, vec![record.clone()]).unwrap();
        assert_eq!((end.head, end.tail), (None, Some(record)));
        assert_eq!(
            chain_end_from_documents(&k, vec![]).unwrap(),
            StoredEnd::default()
        );
        head.as_object_mut().unwrap().remove("_etag");
        assert_eq!(
            chain_end_from_documents(&k, vec![head])
                .unwrap_err()
                .0
                .field,
            "_etag"
        );
    }

    #[test]
    fn chain_query() {
        let k = ChainKey::parse(&format!("patient:{PID}")).unwrap();
        let q = chain_records_query(&k, None, None);
        assert_eq!(
            q.text,
            "SELECT * FROM c WHERE c.chainKey = @chainKey AND c.docType = @docType ORDER BY c.id"
        );
        assert_eq!(
            q.to_cosmos_body(),
            json!({"query": q.text, "parameters": [
                {"name": "@chainKey", "value": format!("patient:{PID}")},
                {"name": "@docType", "value": "auditRecord"}]})
        );
        let from = AuditTime::from_unix_millis(0).unwrap();
        let to = AuditTime::from_unix_millis(1000).unwrap();
        let q = chain_records_query(&k, Some(from), Some(to));
        assert_eq!(
            q.text,
            "SELECT * FROM c WHERE c.chainKey = @chainKey AND c.docType = @docType \
             AND c.createdDate >= @from AND c.createdDate <= @to ORDER BY c.id"
        );
        assert_eq!(
            q.parameters[2],
            ("@from".to_owned(), json!("1970-01-01T00:00:00.000Z"))
        );
        assert_eq!(
            q.parameters[3],
            ("@to".to_owned(), json!("1970-01-01T00:00:01.000Z"))
        );
    }

    #[test]
    fn heads_query_pairs_each_head_id_with_its_partition() {
        let keys = [
            ChainKey::parse("patient:a").unwrap(),
            ChainKey::parse("test:b").unwrap(),
        ];
        let q = heads_query(&keys);
        assert_eq!(
            q.text,
            "SELECT * FROM c WHERE (c.id = @h0 AND c.chainKey = @k0) OR (c.id = @h1 AND c.chainKey = @k1)"
        );
        assert_eq!(
            q.parameters,
            vec![
                ("@h0".to_owned(), json!("patient:a:head")),
                ("@k0".to_owned(), json!("patient:a")),
                ("@h1".to_owned(), json!("test:b:head")),
                ("@k1".to_owned(), json!("test:b")),
            ]
        );
    }

    #[test]
    fn heads_come_back_in_the_order_asked_with_none_for_chains_without_one() {
        let keys = [
            ChainKey::parse("patient:a").unwrap(),
            ChainKey::parse("patient:missing").unwrap(),
            ChainKey::parse("test:b").unwrap(),
            ChainKey::parse("patient:a").unwrap(),
        ];
        // The store's order is its own: here the reverse of the keys'.
        let documents = vec![
            json!({"id": "test:b:head", "chainKey": "test:b", "_etag": "\"2\""}),
            json!({"id": "patient:a:head", "chainKey": "patient:a", "_etag": "\"1\""}),
        ];
        let heads = heads_from_documents(&keys, documents).unwrap();
        let etags: Vec<Option<&str>> = heads
            .iter()
            .map(|h| h.as_ref().map(|(_, etag)| etag.as_str()))
            .collect();
        assert_eq!(etags, [Some("\"1\""), None, Some("\"2\""), Some("\"1\"")]);
        assert_eq!(heads[2].as_ref().unwrap().0["chainKey"], json!("test:b"));

        let misplaced =
            vec![json!({"id": "patient:a:head", "chainKey": "test:b", "_etag": "\"3\""})];
        assert_eq!(heads_from_documents(&keys[..1], misplaced).unwrap(), [None]);

        let without_etag = vec![json!({"id": "patient:a:head", "chainKey": "patient:a"})];
        assert!(heads_from_documents(&keys, without_etag).is_err());
    }
}
