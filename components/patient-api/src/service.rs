//! The patient and test operations: validate, audit, then touch the store.
//!
//! Order is the point. Everything a request can get wrong (route ids, body,
//! paging parameters) is checked first and writes no audit record; then the
//! audit record is written; only if that succeeded is the store read or
//! written (fail closed). Generic over the auditor, the store and the
//! environment so that this order is unit tested natively.

use audit_chain::{AuditResource, CriterionName, Operation, ResourceId, ResourceType};
use cosmos::{CosmosError, ETag, PageRequest, QueryPage};
use records::{
    lab_test_from_document, lab_test_to_document, lab_test_to_json, parse_new_patient,
    parse_new_test, parse_patient_update, parse_search, patient_from_document, patient_to_document,
    patient_to_json, tests_of_patient_query, LabTest, Patient, PatientId, QuerySpec, TestId,
    Timestamp,
};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{store_error, ApiError};
use crate::idempotency::{self, IdempotencyKey, Replay};
use crate::route::Route;
use crate::store::{Container, Documents};

/// Largest request body accepted (the gateway enforces its own limit first).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Page size of a search or a test list without `?limit=`.
pub const DEFAULT_LIMIT: u32 = 100;
/// Largest `?limit=`. A page of large tests stays deliverable all the same:
/// the store ends a page at 4 MB (Cosmos DB, and docstore like it), below
/// the 8 MiB a component reads of an answer.
pub const MAX_LIMIT: u32 = 1000;
pub use component_kit::CONTINUATION_HEADER;
/// Pages a store may answer empty in a row before we give up looking for a
/// non-empty one (Cosmos may return empty pages with a continuation).
const MAX_EMPTY_PAGES: usize = 20;

/// Writes audit records; `Err` means not all were written.
pub trait Auditor {
    /// One record; its id.
    fn record(&self, resource: &AuditResource) -> Result<Uuid, AuditFailed>;
    /// One record per resource, each on its own resource's chain (the
    /// disclosures of a page of results).
    fn record_all(&self, resources: &[AuditResource]) -> Result<(), AuditFailed>;
}

/// Chains one caller's search records are spread over, so that its
/// concurrent searches do not all queue on one chain.
pub const SEARCH_SHARDS: u8 = 8;

/// The resource id of a caller's search records:
/// `search-<first 16 hex digits of SHA-256(actor)>-<shard>`. Each caller has
/// its own chains, so different callers' searches never contend (the one
/// `patient:*` chain every search used to go on made concurrent searches
/// fail closed for everyone), and an auditor finds a caller's searches on
/// [`SEARCH_SHARDS`] chains. The digest keeps the actor's name out of the
/// chain key, which the register already records in `actor`.
pub fn search_record_id(actor: &str, shard: u8) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(actor.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("search-{hex}-{}", shard % SEARCH_SHARDS)
}

/// The audit record was not written (refused, error status, timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFailed;

/// Time and fresh ids.
pub trait Environment {
    fn now(&self) -> Timestamp;
    fn new_uuid(&self) -> Uuid;
}

/// What the service needs of a request, once routed.
#[derive(Debug, Clone, Default)]
pub struct Incoming<'a> {
    /// Who acts (the gateway's `x-actor`), already validated.
    pub actor: &'a str,
    pub query: &'a str,
    pub body: &'a [u8],
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub continuation: Option<&'a str>,
    /// `Idempotency-Key`, as sent (read on the two creates only).
    pub idempotency_key: Option<&'a str>,
}

/// A successful answer: status, headers, JSON body (none for 304).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Value>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

pub struct Service<A, D, E> {
    pub auditor: A,
    pub documents: D,
    pub environment: E,
}

const PATIENT_NOT_FOUND: &str = "Patient not found.";
const TEST_NOT_FOUND: &str = "Test not found.";
const NO_PATIENTS: &str = "No patients found with provided criteria";
const NO_TESTS: &str = "No tests found for this patient.";

impl<A: Auditor, D: Documents, E: Environment> Service<A, D, E> {
    /// Runs one data operation (`Route::Ready` is the shell's, not ours).
    pub fn handle(&self, route: Route<'_>, request: &Incoming<'_>) -> Result<Reply, ApiError> {
        if request.body.len() > MAX_BODY_BYTES {
            return Err(ApiError::TooLarge);
        }
        match route {
            Route::CreatePatient => self.create_patient(request),
            Route::SearchPatients => self.search_patients(request),
            Route::ReadPatient(id) => self.read_patient(id, request),
            Route::UpdatePatient(id) => self.update_patient(id, request),
            Route::CreateTest(id) => self.create_test(id, request),
            Route::ListTests(id) => self.list_tests(id, request),
            Route::ReadTest(id, test) => self.read_test(id, test, request),
            Route::Ready | Route::AuditRecords | Route::AuditVerify => Err(ApiError::Internal(
                "readiness and the audit relay are not data operations",
            )),
        }
    }

    fn create_patient(&self, request: &Incoming<'_>) -> Result<Reply, ApiError> {
        let fields = parse_new_patient(request.body)?;
        let key = idempotency_key(request)?;
        // The id exists before the audit record, so the record names it.
        // With a key it is the key's: a retry aims at the same document.
        let id = PatientId::from_uuid(match &key {
            Some(key) => idempotency::resource_id(request.actor, "patients", key),
            None => self.environment.new_uuid(),
        });
        self.audit(ResourceType::Patient, &id.to_string(), Operation::Create)?;
        let patient = Patient {
            id,
            fields,
            last_updated: self.environment.now(),
        };
        let doc_key = id.to_string();
        let stored = match self.documents.create(
            Container::Patients,
            &doc_key,
            &patient_to_document(&patient),
        ) {
            Ok(stored) => stored,
            Err(CosmosError::Conflict) if key.is_some() => {
                return self.replay_patient(&patient);
            }
            Err(e) => return Err(store_error(e)),
        };
        Ok(Reply::json(201, patient_to_json(&patient))
            .header("location", format!("/patient/{id}"))
            .header("etag", stored.etag.as_str()))
    }

    /// A keyed create whose id was taken: the first result again, if it is
    /// what this request asks for.
    fn replay_patient(&self, asked: &Patient) -> Result<Reply, ApiError> {
        let key = asked.id.to_string();
        let doc = self
            .documents
            .read(Container::Patients, &key, &key)
            .map_err(store_error)?;
        let etag = doc.etag.clone();
        let stored = patient_from_document(doc.body)
            .map_err(|_| ApiError::Internal("stored patient is invalid"))?;
        self.judge_replay(stored.fields == asked.fields, stored.last_updated)?;
        Ok(Reply::json(201, patient_to_json(&stored))
            .header("location", format!("/patient/{}", stored.id))
            .header("etag", etag.as_str()))
    }

    fn judge_replay(&self, same_content: bool, last_written: Timestamp) -> Result<(), ApiError> {
        match idempotency::replay(
            same_content,
            last_written.unix_millis(),
            self.environment.now().unix_millis(),
        ) {
            Replay::FirstResult => Ok(()),
            Replay::DifferentRequest => Err(ApiError::IdempotencyKeyReused),
            Replay::Expired => Err(ApiError::IdempotencyKeyExpired),
        }
    }

    fn read_patient(&self, raw_id: &str, request: &Incoming<'_>) -> Result<Reply, ApiError> {
        let id = patient_id(raw_id)?;
        self.audit(ResourceType::Patient, &id.to_string(), Operation::Read)?;
        let key = id.to_string();
        let doc = self
            .documents
            .read(Container::Patients, &key, &key)
            .map_err(not_found_as(PATIENT_NOT_FOUND))?;
        if etag_matches(request.if_none_match, &doc.etag) {
            return Ok(not_modified(&doc.etag));
        }
        let patient = patient_from_document(doc.body)
            .map_err(|_| ApiError::Internal("stored patient is invalid"))?;
        Ok(Reply::json(200, patient_to_json(&patient)).header("etag", doc.etag.as_str()))
    }

    fn update_patient(&self, raw_id: &str, request: &Incoming<'_>) -> Result<Reply, ApiError> {
        let id = patient_id(raw_id)?;
        let fields = parse_patient_update(&id, request.body)?;
        let if_match = if_match(request.if_match)?;
        self.audit(ResourceType::Patient, &id.to_string(), Operation::Update)?;
        let patient = Patient {
            id,
            fields,
            last_updated: self.environment.now(),
        };
        let key = id.to_string();
        // Replace, never upsert: an unknown patient stays unknown (404).
        let stored = self
            .documents
            .replace(
                Container::Patients,
                &key,
                &key,
                &patient_to_document(&patient),
                if_match.as_ref(),
            )
            .map_err(|e| match e {
                CosmosError::NotFound => ApiError::NotFound(PATIENT_NOT_FOUND),
                CosmosError::PreconditionFailed => ApiError::PreconditionFailed,
                e => store_error(e),
            })?;
        Ok(Reply::json(200, patient_to_json(&patient)).header("etag", stored.etag.as_str()))
    }

    /// A search is recorded twice over: first the criteria names on one of
    /// the caller's search chains (fail closed: no record, no query), then,
    /// before any patient leaves, one disclosure record per returned patient
    /// on that patient's own chain, naming the search record. If any
    /// disclosure is not written the client gets 503 and no patient data.
    fn search_patients(&self, request: &Incoming<'_>) -> Result<Reply, ApiError> {
        let criteria = parse_search(request.body)?;
        let limit = parse_limit(request.query)?;
        let continuation = continuation(request.continuation)?;
        let names = criteria
            .field_names()
            .into_iter()
            .map(CriterionName::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ApiError::Internal("criterion name not accepted by the audit register"))?;
        let shard = self.environment.new_uuid().as_bytes()[0];
        let chain = resource_id(&search_record_id(request.actor, shard))?;
        let resource = AuditResource::search(ResourceType::Patient, chain, names)
            .map_err(|_| ApiError::Internal("search audit record not accepted"))?;
        let search_record = self.audit_resource(&resource)?;

        if let (Some(id), None) = (criteria.only_id(), &continuation) {
            // The id is the partition key: a point read, the cheapest store
            // call, gives the same answer as the query.
            let key = id.to_string();
            let doc = self
                .documents
                .read(Container::Patients, &key, &key)
                .map_err(not_found_as(NO_PATIENTS))?;
            let patient = patient_from_document(doc.body)
                .map_err(|_| ApiError::Internal("stored patient is invalid"))?;
            self.disclose(
                ResourceType::Patient,
                &[patient.id.to_string()],
                search_record,
            )?;
            return Ok(Reply::json(
                200,
                Value::Array(vec![patient_to_json(&patient)]),
            ));
        }

        let from_client = continuation.is_some();
        let page = self.page(
            Container::Patients,
            &criteria.to_query(),
            None,
            limit,
            continuation,
        )?;
        if page.documents.is_empty() && !from_client {
            return Err(ApiError::NotFound(NO_PATIENTS));
        }
        let patients = page
            .documents
            .into_iter()
            .map(patient_from_document)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ApiError::Internal("stored patient is invalid"))?;
        let ids: Vec<String> = patients.iter().map(|p| p.id.to_string()).collect();
        self.disclose(ResourceType::Patient, &ids, search_record)?;
        let patients = patients.iter().map(patient_to_json).collect();
        Ok(paged(patients, page.continuation))
    }

    /// One disclosure record per resource about to leave, on its own chain:
    /// operation `search`, `reference` = the search's record.
    fn disclose(
        &self,
        kind: ResourceType,
        ids: &[String],
        search_record: Uuid,
    ) -> Result<(), ApiError> {
        if ids.is_empty() {
            return Ok(());
        }
        let resources = ids
            .iter()
            .map(|id| {
                Ok(
                    AuditResource::new(kind, resource_id(id)?, Operation::Search)
                        .with_reference(search_record),
                )
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        self.auditor
            .record_all(&resources)
            .map_err(|AuditFailed| ApiError::AuditUnavailable)
    }

    /// One page of a query, as a client sees it: `limit` at most, skipping
    /// the empty pages a store may answer before the next non-empty one. A
    /// client's token the store refuses is the client's 400, not a 500.
    fn page(
        &self,
        container: Container,
        spec: &QuerySpec,
        partition: Option<&str>,
        limit: u32,
        continuation: Option<String>,
    ) -> Result<QueryPage, ApiError> {
        let from_client = continuation.is_some();
        let mut token = continuation;
        let mut empty_pages = 0;
        loop {
            let sent_client_token = from_client && empty_pages == 0;
            let page = self
                .documents
                .query(
                    container,
                    spec,
                    partition,
                    PageRequest {
                        max_item_count: Some(limit),
                        continuation: token.take(),
                    },
                )
                .map_err(|e| match e {
                    // The store refuses a token it did not issue for this query.
                    CosmosError::BadRequest { .. } | CosmosError::InvalidInput(_)
                        if sent_client_token =>
                    {
                        invalid_continuation()
                    }
                    e => store_error(e),
                })?;
            empty_pages += 1;
            if !page.documents.is_empty()
                || page.continuation.is_none()
                || empty_pages >= MAX_EMPTY_PAGES
            {
                return Ok(page);
            }
            token = page.continuation;
        }
    }

    fn create_test(&self, raw_patient: &str, request: &Incoming<'_>) -> Result<Reply, ApiError> {
        let patient = patient_id(raw_patient)?;
        let fields = parse_new_test(&patient, request.body)?;
        let key = idempotency_key(request)?;
        let id = TestId::from_uuid(match &key {
            Some(key) => idempotency::resource_id(request.actor, &format!("tests/{patient}"), key),
            None => self.environment.new_uuid(),
        });
        self.audit(ResourceType::Test, &id.to_string(), Operation::Create)?;
        let partition = patient.to_string();
        self.documents
            .read(Container::Patients, &partition, &partition)
            .map_err(not_found_as(PATIENT_NOT_FOUND))?;
        let test = LabTest {
            id,
            patient_id: patient,
            fields,
            last_updated: self.environment.now(),
        };
        let stored =
            match self
                .documents
                .create(Container::Tests, &partition, &lab_test_to_document(&test))
            {
                Ok(stored) => stored,
                Err(CosmosError::Conflict) if key.is_some() => return self.replay_test(&test),
                Err(e) => return Err(store_error(e)),
            };
        Ok(Reply::json(201, lab_test_to_json(&test))
            .header("location", format!("/patient/{patient}/tests/{id}"))
            .header("etag", stored.etag.as_str()))
    }

    fn replay_test(&self, asked: &LabTest) -> Result<Reply, ApiError> {
        let doc = self
            .documents
            .read(
                Container::Tests,
                &asked.patient_id.to_string(),
                &asked.id.to_string(),
            )
            .map_err(store_error)?;
        let etag = doc.etag.clone();
        let stored = lab_test_from_document(doc.body)
            .map_err(|_| ApiError::Internal("stored test is invalid"))?;
        self.judge_replay(stored.fields == asked.fields, stored.last_updated)?;
        Ok(Reply::json(201, lab_test_to_json(&stored))
            .header(
                "location",
                format!("/patient/{}/tests/{}", stored.patient_id, stored.id),
            )
            .header("etag", etag.as_str()))
    }

    fn list_tests(&self, raw_patient: &str, request: &Incoming<'_>) -> Result<Reply, ApiError> {
        let patient = patient_id(raw_patient)?;
        let limit = parse_limit(request.query)?;
        let continuation = continuation(request.continuation)?;
        // A query over the tests by patient: audited on the patient's id,
        // so the register shows whose tests were listed (every page); then
        // each test on the page is disclosed on its own chain, where its
        // reads are, as a search's patients are.
        let by_patient =
            CriterionName::parse("patientId").map_err(|_| ApiError::Internal("audit criterion"))?;
        let resource = AuditResource::search(
            ResourceType::Test,
            resource_id(&patient.to_string())?,
            vec![by_patient],
        )
        .map_err(|_| ApiError::Internal("list audit record not accepted"))?;
        let list_record = self.audit_resource(&resource)?;
        let from_client = continuation.is_some();
        let page = self.page(
            Container::Tests,
            &tests_of_patient_query(&patient),
            Some(&patient.to_string()),
            limit,
            continuation,
        )?;
        if page.documents.is_empty() && !from_client {
            return Err(ApiError::NotFound(NO_TESTS));
        }
        let tests = page
            .documents
            .into_iter()
            .map(lab_test_from_document)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ApiError::Internal("stored test is invalid"))?;
        let ids: Vec<String> = tests.iter().map(|t| t.id.to_string()).collect();
        self.disclose(ResourceType::Test, &ids, list_record)?;
        Ok(paged(
            tests.iter().map(lab_test_to_json).collect(),
            page.continuation,
        ))
    }

    fn read_test(
        &self,
        raw_patient: &str,
        raw_test: &str,
        request: &Incoming<'_>,
    ) -> Result<Reply, ApiError> {
        let patient = patient_id(raw_patient)?;
        let id: TestId = raw_test
            .parse()
            .map_err(|_| ApiError::NotFound(TEST_NOT_FOUND))?;
        self.audit(ResourceType::Test, &id.to_string(), Operation::Read)?;
        let doc = self
            .documents
            .read(Container::Tests, &patient.to_string(), &id.to_string())
            .map_err(not_found_as(TEST_NOT_FOUND))?;
        if etag_matches(request.if_none_match, &doc.etag) {
            return Ok(not_modified(&doc.etag));
        }
        let test = lab_test_from_document(doc.body)
            .map_err(|_| ApiError::Internal("stored test is invalid"))?;
        Ok(Reply::json(200, lab_test_to_json(&test)).header("etag", doc.etag.as_str()))
    }

    fn audit(&self, kind: ResourceType, id: &str, operation: Operation) -> Result<(), ApiError> {
        self.audit_resource(&AuditResource::new(kind, resource_id(id)?, operation))
            .map(|_| ())
    }

    /// Writes one record; its id.
    fn audit_resource(&self, resource: &AuditResource) -> Result<Uuid, ApiError> {
        self.auditor
            .record(resource)
            .map_err(|AuditFailed| ApiError::AuditUnavailable)
    }
}

/// A 200 page: the items, and the token for the next page when more remain.
fn paged(items: Vec<Value>, next: Option<String>) -> Reply {
    let reply = Reply::json(200, Value::Array(items));
    match next {
        Some(next) => reply.header(CONTINUATION_HEADER, next),
        None => reply,
    }
}

fn resource_id(id: &str) -> Result<ResourceId, ApiError> {
    ResourceId::parse(id)
        .map_err(|_| ApiError::Internal("resource id not accepted by the audit register"))
}

/// A route id that is not a GUID names nothing that can exist: 404.
fn patient_id(raw: &str) -> Result<PatientId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(PATIENT_NOT_FOUND))
}

fn not_found_as(detail: &'static str) -> impl Fn(CosmosError) -> ApiError {
    move |e| match e {
        CosmosError::NotFound => ApiError::NotFound(detail),
        e => store_error(e),
    }
}

fn not_modified(etag: &ETag) -> Reply {
    Reply {
        status: 304,
        headers: vec![("etag", etag.as_str().to_string())],
        body: None,
    }
}

/// `If-None-Match`: `*` or a list of etags, one of which is the current one.
fn etag_matches(if_none_match: Option<&str>, etag: &ETag) -> bool {
    if_none_match.is_some_and(|v| {
        v.split(',')
            .map(str::trim)
            .any(|t| t == "*" || t == etag.as_str())
    })
}

/// `If-Match`: absent or `*` is no condition (a replace needs the patient
/// to exist anyway); anything else is the etag the client last saw.
fn if_match(header: Option<&str>) -> Result<Option<ETag>, ApiError> {
    match header.map(str::trim) {
        None | Some("*") => Ok(None),
        Some(value) => ETag::new(value)
            .map(Some)
            .map_err(|_| ApiError::BadParameter {
                field: "If-Match",
                detail: "If-Match must be an entity tag.",
            }),
    }
}

/// `?limit=`: 1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`]. Other query
/// parameters are ignored.
pub fn parse_limit(query: &str) -> Result<u32, ApiError> {
    let invalid = ApiError::BadParameter {
        field: "limit",
        detail: "limit must be a whole number from 1 to 1000, given once.",
    };
    let mut values = query.split('&').filter_map(|pair| {
        pair.strip_prefix("limit=")
            .or((pair == "limit").then_some(""))
    });
    let Some(value) = values.next() else {
        return Ok(DEFAULT_LIMIT);
    };
    if values.next().is_some()
        || value.is_empty()
        || value.len() > 4
        || !value.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid);
    }
    match value.parse::<u32>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(invalid),
    }
}

fn invalid_continuation() -> ApiError {
    ApiError::BadParameter {
        field: CONTINUATION_HEADER,
        detail: "x-continuation-token is not a token this query issued.",
    }
}

/// The `Idempotency-Key` of a create, if sent; a malformed one is 400
/// before anything is audited.
fn idempotency_key(request: &Incoming<'_>) -> Result<Option<IdempotencyKey>, ApiError> {
    request
        .idempotency_key
        .map(IdempotencyKey::parse)
        .transpose()
        .map_err(|_| ApiError::BadParameter {
            field: "Idempotency-Key",
            detail: "Idempotency-Key must be 1 to 255 printable ASCII characters, quoted or bare.",
        })
}

/// A client's continuation token, read as every component reads one.
fn continuation(header: Option<&str>) -> Result<Option<String>, ApiError> {
    component_kit::continuation_token(header).map_err(|_| invalid_continuation())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmos::Document;
    use serde_json::json;
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;
    use std::time::Duration;

    /// Every call the fakes saw, in order: the audit-first check reads it.
    type Journal = RefCell<Vec<String>>;

    struct FakeAuditor<'a> {
        journal: &'a Journal,
        fail: bool,
    }

    /// The id the fake gives every record it writes.
    const RECORD_ID: Uuid = Uuid::from_u128(0xa0d1_7000_0000_4000_8000_0000_0000_0042);

    impl FakeAuditor<'_> {
        fn outcome(&self) -> Result<(), AuditFailed> {
            if self.fail {
                Err(AuditFailed)
            } else {
                Ok(())
            }
        }
    }

    impl Auditor for FakeAuditor<'_> {
        fn record(&self, r: &AuditResource) -> Result<Uuid, AuditFailed> {
            let criteria: Vec<&str> = r.criteria().iter().map(|c| c.as_str()).collect();
            // A search chain's id is checked where it is made; here it reads
            // as the caller's, to keep the journal legible.
            let id = match r.id().as_str() {
                id if id.starts_with("search-") => "<caller's search chain>",
                id => id,
            };
            self.journal.borrow_mut().push(format!(
                "audit {} {} {} {}",
                r.kind().as_str(),
                id,
                r.operation().as_str(),
                criteria.join(",")
            ));
            self.outcome().map(|()| RECORD_ID)
        }

        fn record_all(&self, resources: &[AuditResource]) -> Result<(), AuditFailed> {
            let ids: Vec<String> = resources
                .iter()
                .map(|r| {
                    assert_eq!(r.operation(), Operation::Search);
                    assert_eq!(r.reference(), Some(RECORD_ID));
                    format!("{} {}", r.kind().as_str(), r.id().as_str())
                })
                .collect();
            self.journal
                .borrow_mut()
                .push(format!("disclose {}", ids.join(",")));
            self.outcome()
        }
    }

    /// (container, partition key, id) -> (document, etag number).
    type Stored = BTreeMap<(Container, String, String), (Value, u32)>;

    #[derive(Default)]
    struct Memory {
        docs: RefCell<Stored>,
        next_etag: Cell<u32>,
        fail_with: RefCell<Option<CosmosError>>,
        /// Pages the fake answers to queries, in order (empty: all documents).
        pages: RefCell<Vec<Result<QueryPage, CosmosError>>>,
    }

    struct FakeDocs<'a> {
        journal: &'a Journal,
        memory: &'a Memory,
    }

    impl FakeDocs<'_> {
        fn note(&self, what: String) -> Result<(), CosmosError> {
            self.journal.borrow_mut().push(what);
            match self.memory.fail_with.borrow().clone() {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }

        fn etag(&self) -> u32 {
            let n = self.memory.next_etag.get() + 1;
            self.memory.next_etag.set(n);
            n
        }
    }

    fn document(body: &Value, etag: u32) -> Document {
        Document {
            body: body.clone(),
            etag: ETag::new(format!("\"{etag}\"")).unwrap(),
        }
    }

    impl Documents for FakeDocs<'_> {
        fn create(&self, c: Container, pk: &str, doc: &Value) -> Result<Document, CosmosError> {
            self.note(format!("create {c:?}"))?;
            let key = (c, pk.to_string(), doc["id"].as_str().unwrap().to_string());
            let mut docs = self.memory.docs.borrow_mut();
            if docs.contains_key(&key) {
                return Err(CosmosError::Conflict);
            }
            let etag = self.etag();
            docs.insert(key, (doc.clone(), etag));
            Ok(document(doc, etag))
        }

        fn read(&self, c: Container, pk: &str, id: &str) -> Result<Document, CosmosError> {
            self.note(format!("read {c:?}"))?;
            let docs = self.memory.docs.borrow();
            let (body, etag) = docs
                .get(&(c, pk.to_string(), id.to_string()))
                .ok_or(CosmosError::NotFound)?;
            Ok(document(body, *etag))
        }

        fn replace(
            &self,
            c: Container,
            pk: &str,
            id: &str,
            doc: &Value,
            if_match: Option<&ETag>,
        ) -> Result<Document, CosmosError> {
            self.note(format!("replace {c:?}"))?;
            let mut docs = self.memory.docs.borrow_mut();
            let key = (c, pk.to_string(), id.to_string());
            let (_, current) = docs.get(&key).ok_or(CosmosError::NotFound)?;
            if if_match.is_some_and(|m| m.as_str() != format!("\"{current}\"")) {
                return Err(CosmosError::PreconditionFailed);
            }
            let etag = self.etag();
            docs.insert(key, (doc.clone(), etag));
            Ok(document(doc, etag))
        }

        fn query(
            &self,
            c: Container,
            q: &QuerySpec,
            partition: Option<&str>,
            page: PageRequest,
        ) -> Result<QueryPage, CosmosError> {
            self.note(format!(
                "query {c:?} {} {:?} {:?}",
                q.text, page.max_item_count, page.continuation
            ))?;
            let mut scripted = self.memory.pages.borrow_mut();
            if !scripted.is_empty() {
                return scripted.remove(0);
            }
            let documents = self
                .memory
                .docs
                .borrow()
                .iter()
                .filter(|((dc, pk, _), _)| *dc == c && partition.is_none_or(|p| p == pk))
                .map(|(_, (v, _))| v.clone())
                .collect();
            Ok(QueryPage {
                documents,
                continuation: None,
            })
        }
    }

    struct FixedEnv {
        ids: Cell<u128>,
    }

    impl Environment for FixedEnv {
        fn now(&self) -> Timestamp {
            Timestamp::from_unix_millis(1_700_000_000_000).unwrap()
        }
        fn new_uuid(&self) -> Uuid {
            let n = self.ids.get() + 1;
            self.ids.set(n);
            Uuid::from_u128(0x1000_0000_0000_4000_8000_0000_0000_0000 + n)
        }
    }

    struct World {
        journal: Journal,
        memory: Memory,
        audit_fails: bool,
    }

    impl World {
        fn new() -> Self {
            Self {
                journal: RefCell::new(Vec::new()),
                memory: Memory::default(),
                audit_fails: false,
            }
        }

        fn service(&self) -> Service<FakeAuditor<'_>, FakeDocs<'_>, FixedEnv> {
            Service {
                auditor: FakeAuditor {
                    journal: &self.journal,
                    fail: self.audit_fails,
                },
                documents: FakeDocs {
                    journal: &self.journal,
                    memory: &self.memory,
                },
                environment: FixedEnv { ids: Cell::new(0) },
            }
        }

        fn run(&self, route: Route<'_>, body: &Value) -> Result<Reply, ApiError> {
            let body = body.to_string();
            self.service().handle(
                route,
                &Incoming {
                    body: body.as_bytes(),
                    ..Incoming::default()
                },
            )
        }

        fn journal(&self) -> Vec<String> {
            self.journal.borrow().clone()
        }

        fn take_journal(&self) -> Vec<String> {
            std::mem::take(&mut *self.journal.borrow_mut())
        }

        fn stored(&self) -> usize {
            self.memory.docs.borrow().len()
        }
    }

    fn patient() -> Value {
        json!({"firstName": "Ana", "gender": "female", "dateOfBirth": "1980-02-29", "postCode": "2100"})
    }

    fn test_body() -> Value {
        json!({"performer": "Lab", "orderReference": "O-1", "observations": [
            {"id": "o1", "code": "GLU", "measurement": "5", "interpretation": "n", "issued": "2024-01-01T00:00:00Z", "status": "final"}]})
    }

    fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
        reply
            .headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    const FIRST_ID: &str = "10000000-0000-4000-8000-000000000001";

    #[test]
    fn create_audits_the_new_id_before_storing() {
        let w = World::new();
        let reply = w.run(Route::CreatePatient, &patient()).unwrap();
        assert_eq!(reply.status, 201);
        let body = reply.body.clone().unwrap();
        assert_eq!(body["id"], FIRST_ID);
        assert_eq!(body["lastUpdated"], "2023-11-14T22:13:20.000Z");
        assert_eq!(
            header(&reply, "location"),
            Some(format!("/patient/{FIRST_ID}").as_str())
        );
        assert_eq!(header(&reply, "etag"), Some("\"1\""));
        assert_eq!(
            w.journal(),
            vec![
                format!("audit patient {FIRST_ID} create "),
                "create Patients".into()
            ]
        );
    }

    #[test]
    fn bad_input_is_rejected_before_any_audit_or_store_call() {
        let w = World::new();
        let mut with_id = patient();
        with_id["id"] = json!(FIRST_ID);
        let cases: Vec<(Route<'_>, Value, u16)> = vec![
            (Route::CreatePatient, with_id, 400),
            (Route::CreatePatient, json!({"firstName": "A"}), 400),
            (Route::ReadPatient("not-a-guid"), json!(null), 404),
            (Route::UpdatePatient("not-a-guid"), patient(), 404),
            (Route::UpdatePatient(FIRST_ID), patient(), 400),
            (Route::SearchPatients, json!({"shoeSize": "4"}), 400),
            (Route::CreateTest("x"), test_body(), 404),
            (
                Route::CreateTest(FIRST_ID),
                json!({"performer": "Lab"}),
                400,
            ),
            (Route::ListTests("x"), json!(null), 404),
            (Route::ReadTest(FIRST_ID, "x"), json!(null), 404),
            (Route::ReadTest("x", FIRST_ID), json!(null), 404),
        ];
        for (route, body, status) in cases {
            let e = w.run(route, &body).unwrap_err();
            assert_eq!(e.status(), status, "{route:?}");
        }
        assert!(w.journal().is_empty(), "{:?}", w.journal());
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        let e = w.service().handle(
            Route::SearchPatients,
            &Incoming {
                body: &big,
                ..Incoming::default()
            },
        );
        assert_eq!(e.unwrap_err(), ApiError::TooLarge);
        assert!(w.journal().is_empty());
    }

    #[test]
    fn audit_failure_fails_closed_for_every_operation() {
        let mut w = World::new();
        w.run(Route::CreatePatient, &patient()).unwrap();
        w.run(Route::CreateTest(FIRST_ID), &test_body()).unwrap();
        w.take_journal();
        let before = w.stored();
        w.audit_fails = true;
        let mut update = patient();
        update["id"] = json!(FIRST_ID);
        let test_id = "10000000-0000-4000-8000-000000000002";
        for (route, body) in [
            (Route::CreatePatient, patient()),
            (Route::ReadPatient(FIRST_ID), json!(null)),
            (Route::UpdatePatient(FIRST_ID), update),
            (Route::SearchPatients, json!({})),
            (Route::CreateTest(FIRST_ID), test_body()),
            (Route::ListTests(FIRST_ID), json!(null)),
            (Route::ReadTest(FIRST_ID, test_id), json!(null)),
        ] {
            let e = w.run(route, &body).unwrap_err();
            assert_eq!(e, ApiError::AuditUnavailable, "{route:?}");
            assert_eq!(e.status(), 503);
        }
        assert!(
            w.journal().iter().all(|line| line.starts_with("audit ")),
            "{:?}",
            w.journal()
        );
        assert_eq!(w.stored(), before);
    }

    #[test]
    fn read_update_and_precondition() {
        let w = World::new();
        w.run(Route::CreatePatient, &patient()).unwrap();
        let read = w.run(Route::ReadPatient(FIRST_ID), &json!(null)).unwrap();
        assert_eq!(read.status, 200);
        assert_eq!(header(&read, "etag"), Some("\"1\""));
        let mut body = patient();
        body["id"] = json!(FIRST_ID);
        body["postCode"] = json!("8000");
        let text = body.to_string();
        let put = |if_match: Option<&str>| {
            w.service().handle(
                Route::UpdatePatient(FIRST_ID),
                &Incoming {
                    body: text.as_bytes(),
                    if_match,
                    ..Incoming::default()
                },
            )
        };
        let ok = put(Some("\"1\"")).unwrap();
        assert_eq!((ok.status, header(&ok, "etag")), (200, Some("\"2\"")));
        assert_eq!(ok.body.unwrap()["postCode"], "8000");
        assert_eq!(
            put(Some("\"1\"")).unwrap_err(),
            ApiError::PreconditionFailed
        );
        assert_eq!(put(Some("*")).unwrap().status, 200);
        assert_eq!(put(None).unwrap().status, 200);
        let not_modified = w
            .service()
            .handle(
                Route::ReadPatient(FIRST_ID),
                &Incoming {
                    if_none_match: Some("\"4\""),
                    ..Incoming::default()
                },
            )
            .unwrap();
        assert_eq!((not_modified.status, not_modified.body), (304, None));
    }

    #[test]
    fn unknown_patients_are_404_and_never_inserted() {
        let w = World::new();
        let mut body = patient();
        body["id"] = json!(FIRST_ID);
        assert_eq!(
            w.run(Route::UpdatePatient(FIRST_ID), &body)
                .unwrap_err()
                .status(),
            404
        );
        assert_eq!(
            w.run(Route::ReadPatient(FIRST_ID), &json!(null))
                .unwrap_err()
                .status(),
            404
        );
        let e = w
            .run(Route::CreateTest(FIRST_ID), &test_body())
            .unwrap_err();
        assert_eq!(e, ApiError::NotFound("Patient not found."));
        assert_eq!(w.stored(), 0);
        // Each was audited first all the same: the attempt is an access.
        let audits = w
            .journal()
            .iter()
            .filter(|l| l.starts_with("audit "))
            .count();
        assert_eq!(audits, 3);
    }

    #[test]
    fn tests_are_created_listed_and_read() {
        let w = World::new();
        w.run(Route::CreatePatient, &patient()).unwrap();
        assert_eq!(
            w.run(Route::ListTests(FIRST_ID), &json!(null)).unwrap_err(),
            ApiError::NotFound(NO_TESTS)
        );
        w.take_journal();
        let created = w.run(Route::CreateTest(FIRST_ID), &test_body()).unwrap();
        let test_id = "10000000-0000-4000-8000-000000000001";
        assert_eq!(created.status, 201);
        assert_eq!(created.body.as_ref().unwrap()["patientId"], FIRST_ID);
        assert_eq!(
            header(&created, "location"),
            Some(format!("/patient/{FIRST_ID}/tests/{test_id}").as_str())
        );
        assert_eq!(
            w.take_journal(),
            vec![
                format!("audit test {test_id} create "),
                "read Patients".into(),
                "create Tests".into()
            ]
        );
        let list = w.run(Route::ListTests(FIRST_ID), &json!(null)).unwrap();
        assert_eq!(list.body.unwrap().as_array().unwrap().len(), 1);
        assert_eq!(
            w.take_journal()[0],
            format!("audit test {FIRST_ID} search patientId")
        );
        let read = w
            .run(Route::ReadTest(FIRST_ID, test_id), &json!(null))
            .unwrap();
        assert_eq!(read.body.unwrap()["id"], test_id);
        let other = "20000000-0000-4000-8000-000000000001";
        assert_eq!(
            w.run(Route::ReadTest(other, test_id), &json!(null))
                .unwrap_err()
                .status(),
            404
        );
    }

    #[test]
    fn search_audits_names_only_and_pages() {
        let w = World::new();
        assert_eq!(
            w.run(
                Route::SearchPatients,
                &json!({"firstName": "Ana", "dateOfBirthFrom": "1980"})
            )
            .unwrap_err(),
            ApiError::NotFound(NO_PATIENTS)
        );
        let journal = w.take_journal();
        assert_eq!(
            journal[0],
            "audit patient <caller's search chain> search firstName,dateOfBirthFrom"
        );
        assert!(!journal.concat().contains("Ana"));
        w.run(Route::CreatePatient, &patient()).unwrap();
        w.take_journal();
        *w.memory.pages.borrow_mut() = vec![
            Ok(QueryPage {
                documents: vec![],
                continuation: Some("t1".into()),
            }),
            Ok(QueryPage {
                documents: vec![w.memory.docs.borrow().values().next().unwrap().0.clone()],
                continuation: Some("t2".into()),
            }),
        ];
        let reply = w
            .service()
            .handle(
                Route::SearchPatients,
                &Incoming {
                    query: "limit=1",
                    body: b"",
                    ..Incoming::default()
                },
            )
            .unwrap();
        assert_eq!(header(&reply, CONTINUATION_HEADER), Some("t2"));
        assert_eq!(reply.body.unwrap().as_array().unwrap().len(), 1);
        let journal = w.take_journal();
        assert_eq!(journal[0], "audit patient <caller's search chain> search ");
        assert!(journal[1].ends_with("Some(1) None"), "{}", journal[1]);
        assert!(
            journal[2].ends_with("Some(1) Some(\"t1\")"),
            "{}",
            journal[2]
        );
    }

    #[test]
    fn tests_are_listed_page_by_page_and_each_page_is_audited_first() {
        let w = World::new();
        w.run(Route::CreatePatient, &patient()).unwrap();
        let test = w.run(Route::CreateTest(FIRST_ID), &test_body()).unwrap();
        let stored = w
            .memory
            .docs
            .borrow()
            .iter()
            .find(|((c, _, _), _)| *c == Container::Tests)
            .map(|(_, (doc, _))| doc.clone())
            .unwrap();
        w.take_journal();
        let list = |query: &'static str, continuation: Option<&'static str>| {
            w.service().handle(
                Route::ListTests(FIRST_ID),
                &Incoming {
                    query,
                    continuation,
                    ..Incoming::default()
                },
            )
        };
        // Bad paging parameters: 400, before any audit or store call.
        for query in ["limit=0", "limit=1001", "limit=x", "limit=1&limit=2"] {
            assert_eq!(list(query, None).unwrap_err().status(), 400, "{query}");
        }
        assert_eq!(list("", Some("bad\u{7f}")).unwrap_err().status(), 400);
        assert!(w.take_journal().is_empty());

        // A page of `limit`, an empty store page skipped, the token passed on.
        *w.memory.pages.borrow_mut() = vec![
            Ok(QueryPage {
                documents: vec![],
                continuation: Some("t1".into()),
            }),
            Ok(QueryPage {
                documents: vec![stored.clone()],
                continuation: Some("t2".into()),
            }),
        ];
        let first = list("limit=1", None).unwrap();
        assert_eq!(header(&first, CONTINUATION_HEADER), Some("t2"));
        assert_eq!(first.body.unwrap(), json!([test.body.clone().unwrap()]));
        let journal = w.take_journal();
        assert_eq!(
            journal[0],
            format!("audit test {FIRST_ID} search patientId")
        );
        assert!(journal[1].ends_with("Some(1) None"), "{}", journal[1]);
        assert!(
            journal[2].ends_with("Some(1) Some(\"t1\")"),
            "{}",
            journal[2]
        );

        // The next page with the client's token: audited again; the last
        // page has no token; default page size 100.
        *w.memory.pages.borrow_mut() = vec![Ok(QueryPage {
            documents: vec![],
            continuation: None,
        })];
        let last = list("", Some("t2")).unwrap();
        assert_eq!(
            (last.status, header(&last, CONTINUATION_HEADER)),
            (200, None)
        );
        assert_eq!(last.body, Some(json!([])));
        let journal = w.take_journal();
        assert_eq!(
            journal[0],
            format!("audit test {FIRST_ID} search patientId")
        );
        assert!(
            journal[1].ends_with("Some(100) Some(\"t2\")"),
            "{}",
            journal[1]
        );

        // A token the store refuses is the client's 400.
        *w.memory.pages.borrow_mut() = vec![Err(CosmosError::BadRequest {
            message: "x".into(),
        })];
        assert_eq!(list("", Some("forged")).unwrap_err().status(), 400);
    }

    #[test]
    fn a_search_by_id_alone_is_a_point_read() {
        let w = World::new();
        let created = w.run(Route::CreatePatient, &patient()).unwrap();
        let id = created.body.unwrap()["id"].as_str().unwrap().to_string();
        w.take_journal();
        let found = w.run(Route::SearchPatients, &json!({"id": id})).unwrap();
        assert_eq!(header(&found, CONTINUATION_HEADER), None);
        let list = found.body.unwrap();
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["id"], id.as_str());
        assert_eq!(
            w.take_journal(),
            vec![
                "audit patient <caller's search chain> search id".to_string(),
                "read Patients".into(),
                format!("disclose patient {id}"),
            ]
        );
        let unknown = "20000000-0000-4000-8000-000000000001";
        assert_eq!(
            w.run(Route::SearchPatients, &json!({"id": unknown}))
                .unwrap_err(),
            ApiError::NotFound(NO_PATIENTS)
        );
        // With another criterion it stays a query.
        w.take_journal();
        let _ = w.run(
            Route::SearchPatients,
            &json!({"id": id, "lastName": "Nobody"}),
        );
        assert!(
            w.take_journal()[1].starts_with("query Patients"),
            "a query, not a read"
        );
    }

    #[test]
    fn a_refused_continuation_token_is_400_and_a_last_empty_page_is_200() {
        let w = World::new();
        let search = |token: &str| {
            w.service().handle(
                Route::SearchPatients,
                &Incoming {
                    continuation: Some(token),
                    ..Incoming::default()
                },
            )
        };
        *w.memory.pages.borrow_mut() = vec![Err(CosmosError::BadRequest {
            message: "x".into(),
        })];
        assert_eq!(search("forged").unwrap_err().status(), 400);
        *w.memory.pages.borrow_mut() = vec![Ok(QueryPage {
            documents: vec![],
            continuation: None,
        })];
        let reply = search("valid").unwrap();
        assert_eq!((reply.status, reply.body), (200, Some(json!([]))));
        w.take_journal();
        assert_eq!(search("bad\u{7f}").unwrap_err().status(), 400);
        assert_eq!(search("").unwrap_err().status(), 400);
        assert!(
            w.journal().is_empty(),
            "malformed tokens are rejected before the audit"
        );
    }

    #[test]
    fn store_outages_are_503() {
        let w = World::new();
        w.run(Route::CreatePatient, &patient()).unwrap();
        *w.memory.fail_with.borrow_mut() = Some(CosmosError::Throttled {
            retry_after: Duration::from_millis(1500),
        });
        let e = w
            .run(Route::ReadPatient(FIRST_ID), &json!(null))
            .unwrap_err();
        assert_eq!(
            (e.status(), e.headers()),
            (503, vec![("retry-after", "2".to_string())])
        );
        *w.memory.fail_with.borrow_mut() = Some(CosmosError::Unavailable {
            reason: "timeout".into(),
        });
        assert_eq!(
            w.run(Route::CreatePatient, &patient())
                .unwrap_err()
                .status(),
            503
        );
        assert_eq!(
            w.run(Route::SearchPatients, &json!({}))
                .unwrap_err()
                .status(),
            503
        );
    }

    #[test]
    fn limit_is_1_to_1000() {
        assert_eq!(parse_limit(""), Ok(100));
        assert_eq!(parse_limit("other=5"), Ok(100));
        assert_eq!(parse_limit("limit=1"), Ok(1));
        assert_eq!(parse_limit("a=b&limit=1000"), Ok(1000));
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=",
            "limit",
            "limit=-1",
            "limit=+5",
            "limit=abc",
            "limit=1.5",
            "limit=99999999999",
            "limit=5&limit=6",
            "limit=%31",
        ] {
            assert_eq!(parse_limit(bad).unwrap_err().status(), 400, "{bad}");
        }
    }

    #[test]
    fn search_chains_are_the_caller_s_own_and_spread_over_shards() {
        let a: Vec<String> = (0..=255).map(|n| search_record_id("clinic", n)).collect();
        let distinct: std::collections::BTreeSet<&String> = a.iter().collect();
        assert_eq!(distinct.len(), usize::from(SEARCH_SHARDS));
        assert!(a[0].starts_with("search-") && a[0].len() == "search-".len() + 16 + 2);
        assert!(ResourceId::parse(&a[0]).is_ok());
        assert!(
            !a[0].contains("clinic"),
            "the actor's name stays out of the key"
        );
        let b = search_record_id("clinic/token:app-42", 0);
        assert!(!distinct.contains(&b), "another caller, other chains");
    }

    #[test]
    fn returned_patients_are_disclosed_before_they_leave_and_a_failed_disclosure_returns_none() {
        let w = World::new();
        let service = w.service();
        let create = || {
            let body = patient().to_string();
            let incoming = Incoming {
                body: body.as_bytes(),
                ..Incoming::default()
            };
            service.handle(Route::CreatePatient, &incoming).unwrap()
        };
        let (first, second) = (create(), create());
        let ids: Vec<String> = [first, second]
            .iter()
            .map(|r| r.body.as_ref().unwrap()["id"].as_str().unwrap().to_string())
            .collect();
        w.take_journal();
        let found = w.run(Route::SearchPatients, &json!({})).unwrap();
        assert_eq!(found.body.unwrap().as_array().unwrap().len(), 2);
        let journal = w.take_journal();
        assert_eq!(journal[0], "audit patient <caller's search chain> search ");
        let disclosed = journal.last().unwrap();
        for id in &ids {
            assert!(disclosed.contains(&format!("patient {id}")), "{disclosed}");
        }
        assert!(
            journal[1].starts_with("query"),
            "the query comes between: {journal:?}"
        );

        // The search record is written, the disclosures are not: 503, and
        // no patient in the answer.
        let failing = Service {
            auditor: FailAfterFirst {
                inner: w.service().auditor,
                written: Cell::new(0),
            },
            documents: w.service().documents,
            environment: FixedEnv {
                ids: Cell::new(100),
            },
        };
        let refused = failing
            .handle(
                Route::SearchPatients,
                &Incoming {
                    body: b"{}",
                    ..Incoming::default()
                },
            )
            .unwrap_err();
        assert_eq!(refused, ApiError::AuditUnavailable);
    }

    #[test]
    fn listed_tests_are_disclosed_on_their_own_chains() {
        let w = World::new();
        let created = w.run(Route::CreatePatient, &patient()).unwrap();
        let pid = created.body.unwrap()["id"].as_str().unwrap().to_string();
        let test = w.run(Route::CreateTest(&pid), &test_body()).unwrap();
        let tid = test.body.unwrap()["id"].as_str().unwrap().to_string();
        w.take_journal();
        w.run(Route::ListTests(&pid), &json!(null)).unwrap();
        let journal = w.take_journal();
        assert_eq!(journal[0], format!("audit test {pid} search patientId"));
        assert_eq!(journal.last().unwrap(), &format!("disclose test {tid}"));
    }

    /// Writes the first record, refuses every later call.
    struct FailAfterFirst<A> {
        inner: A,
        written: Cell<u32>,
    }

    impl<A: Auditor> Auditor for FailAfterFirst<A> {
        fn record(&self, r: &AuditResource) -> Result<Uuid, AuditFailed> {
            self.written.set(self.written.get() + 1);
            if self.written.get() > 1 {
                return Err(AuditFailed);
            }
            self.inner.record(r)
        }

        fn record_all(&self, _: &[AuditResource]) -> Result<(), AuditFailed> {
            Err(AuditFailed)
        }
    }
}
