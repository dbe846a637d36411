//! audit-api: the append-only, tamper-evident audit register (private;
//! reachable only by service chaining, and only with its host key).
//!
//! - `POST /auditrecord`: validate, seal onto the resource's hash chain and
//!   store (audit_chain::append decides; this shell does the store calls):
//!   a head read and one transactional batch that creates the record and
//!   moves the chain head with it. The 201 leaves once both are stored.
//! - `POST /auditrecords`: up to 1,000 records at once, each onto its own
//!   resource's chain (the disclosure records of a search page). All are
//!   validated before any is stored; the 201 means every one is stored.
//!   Their store calls go together (audit_chain::append_records over the
//!   Cosmos client's bulk reads and batches, up to 8 in flight). A record
//!   that fails fails the request, and the records stored meanwhile stay
//!   (an append-only register keeps what it took).
//! - `GET /audit/records?resourceType=&resourceId=&from=&to=&limit=`: one
//!   page of a chain, `x-continuation-token` both ways.
//! - `GET /audit/verify?resourceType=&resourceId=`: is the chain intact?
//!
//! Append only: the store is only ever asked to create and read records;
//! the one replace is the chain head's conditional (If-Match) advance, in
//! the same atomic batch as the record it names.

use std::time::Duration;

use audit_chain::document::head_document_id;
use audit_chain::params::{parse_records_query, parse_verify_query};
use audit_chain::{
    append_order, append_records, chain_end_from_documents, chain_end_query, chain_records_query,
    heads_from_documents, heads_query, parse_audit_batch, parse_audit_input, record_from_document,
    record_to_json, verify_documents, Actor, AppendError, AppendPolicy, AppendRequest, AppendStore,
    AuditInput, AuditInputError, AuditQuery, AuditTime, ChainKey, Commit, CommitOutcome,
    CorrelationId, HeadDocument, StoredEnd, Violation, CHAIN_END_ITEMS, MAX_HEADS_PER_QUERY,
};
use component_kit::{
    continuation_token, correlation_id, json_response, method_name, misconfigured,
    problem_response, problem_response_with, require_host_key, MissingVariable, RequestLog,
    WasiClock, WasiTransport, ACTOR_HEADER, CONTINUATION_HEADER, CORRELATION_HEADER,
};
use cosmos::{
    Batch, BatchOperation, BatchOutcome, Clock, ContainerRef, CosmosClient, CosmosError,
    DocumentId, ETag, PageQuery, PageRequest, PartitionKey, PointOperation, Query, QueryScope,
};
use problem::Problem;
use serde_json::Value;
use spin_sdk::http::{Method, Request, Response};

/// Far above any valid record (a few hundred bytes); larger bodies are not read.
const MAX_BODY_BYTES: usize = 1 << 20;
/// Page size used to read a whole chain for verification.
const VERIFY_PAGE: u32 = 1000;
const STORE_TIMEOUT: Duration = Duration::from_secs(5);

type Store = CosmosClient<WasiTransport, WasiClock>;

component_kit::export_http!(component_kit::serve, crate::handle_request);

fn handle_request(request: Request) -> Response {
    let started = WasiClock.now_millis();
    let correlation = correlation_id(&request);
    let route = Route::of(request.path());
    let mut note = Note::default();
    let host_key = || {
        require_host_key(
            &request,
            "auditapiprimarykey",
            "auditapisecondarykey",
            &correlation,
        )
    };
    let response = match component_kit::liveness(&request, &correlation).map_or_else(host_key, Err)
    {
        Err(answered) => answered,
        Ok(()) => match serve(&request, route, &correlation, &mut note) {
            Ok(response) => response,
            Err(error) => {
                note.error = Some(error.kind());
                error.into_response(&correlation)
            }
        },
    };
    log(
        log_line(&request, route, &response, &correlation, started),
        &note,
    );
    response
}

/// The routes this component serves; anything else is `Other`. Logged by
/// name, never the raw path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    AuditRecord,
    AuditRecords,
    Records,
    Verify,
    Ready,
    Other,
}

impl Route {
    fn of(path: &str) -> Self {
        match path {
            "/auditrecord" => Route::AuditRecord,
            "/auditrecords" => Route::AuditRecords,
            "/audit/records" => Route::Records,
            "/audit/verify" => Route::Verify,
            "/health/ready" => Route::Ready,
            _ => Route::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Route::AuditRecord => "/auditrecord",
            Route::AuditRecords => "/auditrecords",
            Route::Records => "/audit/records",
            Route::Verify => "/audit/verify",
            Route::Ready => "/health/ready",
            Route::Other => "other",
        }
    }
}

fn serve(
    request: &Request,
    route: Route,
    correlation: &str,
    note: &mut Note,
) -> Result<Response, ApiError> {
    match (request.method(), route) {
        (Method::Post, Route::AuditRecord) => append(request, correlation, note),
        (Method::Post, Route::AuditRecords) => append_batch(request, correlation, note),
        (Method::Get, Route::Records) => list_records(request, correlation),
        (Method::Get, Route::Verify) => verify(request, correlation),
        (Method::Get, Route::Ready) => ready(correlation),
        // The register has no update or delete path.
        (_, Route::AuditRecord | Route::AuditRecords) => Err(ApiError::MethodNotAllowed("POST")),
        (_, Route::Records | Route::Verify | Route::Ready) => {
            Err(ApiError::MethodNotAllowed("GET"))
        }
        (_, Route::Other) => Err(ApiError::NoRoute),
    }
}

/// Everything that can go wrong, mapped to a response in one place.
#[derive(Debug)]
enum ApiError {
    Misconfigured(MissingVariable),
    /// A body member, header or query parameter; the error names it.
    Invalid(AuditInputError),
    BodyTooLarge,
    NoRoute,
    MethodNotAllowed(&'static str),
    /// The store failed after the client's retries.
    Store(CosmosError),
    /// Every append attempt lost to a concurrent one.
    Contended,
    /// A stored head or record of the chain is unreadable (tampering or
    /// corruption): the chain is not extended past it.
    Damaged,
}

impl ApiError {
    /// A short, value-free name for the log.
    fn kind(&self) -> &'static str {
        match self {
            ApiError::Misconfigured(_) => "misconfigured",
            ApiError::Invalid(_) => "invalid",
            ApiError::BodyTooLarge => "bodyTooLarge",
            ApiError::NoRoute => "noRoute",
            ApiError::MethodNotAllowed(_) => "methodNotAllowed",
            ApiError::Store(e) => match e {
                CosmosError::NotFound => "storeNotFound",
                CosmosError::Conflict => "storeConflict",
                CosmosError::PreconditionFailed => "storePreconditionFailed",
                CosmosError::Throttled { .. } => "storeThrottled",
                CosmosError::Unauthorized => "storeUnauthorized",
                CosmosError::Forbidden => "storeForbidden",
                CosmosError::BadRequest { .. } => "storeBadRequest",
                CosmosError::TooLarge => "storeTooLarge",
                CosmosError::Unavailable { .. } => "storeUnavailable",
                CosmosError::Protocol(_) => "storeProtocol",
                CosmosError::InvalidInput(_) => "storeInvalidInput",
            },
            ApiError::Contended => "contended",
            ApiError::Damaged => "chainDamaged",
        }
    }

    fn into_response(self, correlation: &str) -> Response {
        let problem = match self {
            ApiError::Misconfigured(missing) => return misconfigured(&missing, correlation),
            ApiError::Invalid(e) => Problem::invalid_field(e.field.clone(), e.message()),
            ApiError::BodyTooLarge => Problem::new(413, "The body is too large."),
            ApiError::NoRoute => Problem::new(404, "No such route."),
            ApiError::MethodNotAllowed(allow) => {
                let problem = Problem::new(405, format!("Only {allow} is allowed here."))
                    .with_correlation_id(correlation);
                return problem_response_with(problem, vec![("allow", allow.to_string())]);
            }
            // Throttling, outages and configuration errors of the store
            // alike: the caller may retry; the log says which.
            ApiError::Store(_) => Problem::new(503, "The audit store is not available."),
            ApiError::Contended => Problem::new(
                503,
                "Too many concurrent audit records for this resource; retry shortly.",
            ),
            ApiError::Damaged => Problem::new(
                500,
                "The audit chain of this resource is damaged and cannot be extended; verify it.",
            ),
        };
        problem_response(problem.with_correlation_id(correlation))
    }
}

impl From<CosmosError> for ApiError {
    fn from(e: CosmosError) -> Self {
        ApiError::Store(e)
    }
}

impl From<cosmos::InputError> for ApiError {
    fn from(e: cosmos::InputError) -> Self {
        ApiError::Store(e.into())
    }
}

impl From<AppendError<CosmosError>> for ApiError {
    fn from(e: AppendError<CosmosError>) -> Self {
        match e {
            AppendError::Store(e) => ApiError::Store(e),
            AppendError::Contended { .. } => ApiError::Contended,
            AppendError::Damaged(_) | AppendError::Seal(_) => ApiError::Damaged,
        }
    }
}

// --- POST /auditrecord -------------------------------------------------------

fn append(request: &Request, correlation: &str, note: &mut Note) -> Result<Response, ApiError> {
    if request.body().len() > MAX_BODY_BYTES {
        return Err(ApiError::BodyTooLarge);
    }
    let input = parse_audit_input(request.body()).map_err(ApiError::Invalid)?;
    let mut records = append_all(request, vec![input], note)?;
    let record = records.pop().unwrap_or(Value::Null);
    Ok(json_response(201, &record, correlation))
}

// --- POST /auditrecords ------------------------------------------------------

fn append_batch(
    request: &Request,
    correlation: &str,
    note: &mut Note,
) -> Result<Response, ApiError> {
    if request.body().len() > MAX_BODY_BYTES {
        return Err(ApiError::BodyTooLarge);
    }
    let inputs = parse_audit_batch(request.body()).map_err(ApiError::Invalid)?;
    let records = append_all(request, inputs, note)?;
    Ok(json_response(201, &Value::Array(records), correlation))
}

/// Appends each input under the request's correlation id and actor; the
/// records as the API shows them (in the order given). When one fails the
/// request fails, and the records stored meanwhile stay (the register only
/// grows; each is whole, its head with it).
fn append_all(
    request: &Request,
    inputs: Vec<AuditInput>,
    note: &mut Note,
) -> Result<Vec<Value>, ApiError> {
    let correlation_id = required_header(request, CORRELATION_HEADER, CorrelationId::parse)?;
    let actor = required_header(request, ACTOR_HEADER, Actor::parse)?;
    let mut store = AuditStore::open()?;
    // All records' store calls in flight together (audit_chain::append_records).
    // Sent in a random order (audit_chain::append_order): concurrent batches
    // over the same chains, which the transport sends a window at a time,
    // would otherwise meet on the same chains in the same order; answered
    // in the order given.
    let order = append_order(inputs.len(), || WasiClock.jitter());
    let mut inputs: Vec<Option<AuditInput>> = inputs.into_iter().map(Some).collect();
    let requests: Vec<AppendRequest> = order
        .iter()
        .filter_map(|&index| inputs[index].take())
        .map(|input| AppendRequest {
            input,
            id: component_kit::random_uuid(),
            correlation_id: correlation_id.clone(),
            actor: actor.clone(),
        })
        .collect();
    let results = append_records(&mut store, &requests, &AppendPolicy::default());
    let mut records = vec![Value::Null; requests.len()];
    let mut attempts = 0;
    let mut first_error = None;
    for (index, result) in order.into_iter().zip(results) {
        match result {
            Ok(stored) => {
                attempts += stored.attempts;
                records[index] = record_to_json(&stored.record);
            }
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    note.attempts = Some(attempts);
    match first_error {
        // The caller is told the batch failed and discloses nothing.
        Some(error) => Err(error.into()),
        None => Ok(records),
    }
}

/// A header validated by an audit_chain parser; errors name the header.
fn required_header<T>(
    request: &Request,
    name: &'static str,
    parse: fn(&str) -> Result<T, AuditInputError>,
) -> Result<T, ApiError> {
    let invalid = |violation| ApiError::Invalid(AuditInputError::new(name, violation));
    let value = request
        .header(name)
        .ok_or_else(|| invalid(Violation::Required))?
        .as_str()
        .ok_or_else(|| invalid(Violation::InvalidCharacters("printable ASCII characters")))?;
    parse(value).map_err(|e| invalid(e.violation))
}

// --- GET /audit/records ------------------------------------------------------

fn list_records(request: &Request, correlation: &str) -> Result<Response, ApiError> {
    let query = parse_records_query(request.query()).map_err(ApiError::Invalid)?;
    let continuation = continuation(request)?;
    let given = continuation.is_some();
    let store = AuditStore::open()?;
    let page = store
        .client
        .query_documents(
            &store.records,
            &cosmos_query(&chain_records_query(&query.chain_key, query.from, query.to))?,
            QueryScope::Partition(partition(&query.chain_key)),
            PageRequest {
                max_item_count: Some(query.limit),
                continuation,
            },
        )
        .map_err(|e| match e {
            // The only request value the store judges is the token.
            CosmosError::BadRequest { .. } | CosmosError::InvalidInput(_) if given => {
                invalid_continuation()
            }
            e => ApiError::Store(e),
        })?;
    let items: Vec<Value> = page.documents.into_iter().map(record_view).collect();
    let mut response = json_response(200, &Value::Array(items), correlation);
    if let Some(token) = page.continuation {
        response.set_header(CONTINUATION_HEADER, token);
    }
    Ok(response)
}

fn continuation(request: &Request) -> Result<Option<String>, ApiError> {
    // A value that is not text is as invalid as a malformed token.
    let header = match request.header(CONTINUATION_HEADER) {
        None => None,
        Some(value) => Some(value.as_str().ok_or_else(invalid_continuation)?),
    };
    continuation_token(header).map_err(|_| invalid_continuation())
}

fn invalid_continuation() -> ApiError {
    ApiError::Invalid(AuditInputError::new(
        CONTINUATION_HEADER,
        Violation::NotCanonical("a token from an earlier page of the same query"),
    ))
}

/// A stored record as the API shows it. A document that is no longer a
/// valid record is shown only as such (its content is not trusted to be
/// free of anything a tamperer put there); /audit/verify says more.
fn record_view(doc: Value) -> Value {
    let sequence = doc.get("sequence").and_then(Value::as_u64);
    match record_from_document(doc) {
        Ok(record) => record_to_json(&record),
        Err(_) => serde_json::json!({"malformed": true, "sequence": sequence}),
    }
}

// --- GET /audit/verify -------------------------------------------------------

fn verify(request: &Request, correlation: &str) -> Result<Response, ApiError> {
    let query = parse_verify_query(request.query()).map_err(ApiError::Invalid)?;
    let key = query.chain_key;
    let mut store = AuditStore::open()?;
    // The head first: records appended after this read are accepted (they
    // link on), whereas a head read after the records could name a record
    // the read did not see.
    let head = store
        .read_heads(std::slice::from_ref(&key))
        .pop()
        .unwrap_or(Ok(None))?
        .map(|(doc, _)| doc);
    let documents = store.query_all(
        &cosmos_query(&chain_records_query(&key, None, None))?,
        QueryScope::Partition(partition(&key)),
        VERIFY_PAGE,
    )?;
    let report = verify_documents(&key, &documents, head.as_ref());
    Ok(json_response(200, &report.to_json(), correlation))
}

// --- GET /health/ready -------------------------------------------------------

fn ready(correlation: &str) -> Result<Response, ApiError> {
    let store = AuditStore::open()?;
    store.client.database_account()?;
    Ok(json_response(
        200,
        &serde_json::json!({"status": "ready"}),
        correlation,
    ))
}

// --- the store ---------------------------------------------------------------

/// The audit container (records and chain heads), through the Cosmos client.
struct AuditStore {
    client: Store,
    records: ContainerRef,
}

impl AuditStore {
    fn open() -> Result<Self, ApiError> {
        let client = component_kit::store_client(STORE_TIMEOUT, CosmosClient::new)
            .map_err(ApiError::Misconfigured)?;
        Ok(Self {
            client,
            records: ContainerRef::new("audit", "records")?,
        })
    }

    /// One point read per chain, sent together.
    fn read_heads_by_id(
        &self,
        keys: &[ChainKey],
    ) -> Vec<Result<Option<HeadDocument>, CosmosError>> {
        let targets: Vec<_> = keys
            .iter()
            .map(|key| Ok((partition(key), DocumentId::new(head_document_id(key))?)))
            .collect();
        where_valid(
            &targets,
            |(pk, id)| PointOperation::Read {
                container: &self.records,
                pk,
                id,
            },
            |reads| self.client.bulk(reads),
        )
        .into_iter()
        .map(|read| match read {
            Ok(doc) => Ok(Some((doc.body, doc.etag.as_str().to_owned()))),
            Err(CosmosError::NotFound) => Ok(None),
            Err(e) => Err(e),
        })
        .collect()
    }

    /// Every document `query` finds, following its pages.
    fn query_all(
        &self,
        query: &Query,
        scope: QueryScope,
        page_size: u32,
    ) -> Result<Vec<Value>, CosmosError> {
        let mut documents = Vec::new();
        let mut continuation = None;
        loop {
            let page = self.client.query_documents(
                &self.records,
                query,
                scope.clone(),
                PageRequest {
                    max_item_count: Some(page_size),
                    continuation,
                },
            )?;
            documents.extend(page.documents);
            match page.continuation {
                Some(token) => continuation = Some(token),
                None => return Ok(documents),
            }
        }
    }

    /// The heads of up to [`MAX_HEADS_PER_QUERY`] chains, one query across
    /// their partitions (every page of it, though one page holds them all).
    fn query_heads(&self, keys: &[ChainKey]) -> Result<Vec<Option<HeadDocument>>, CosmosError> {
        let documents = self.query_all(
            &cosmos_query(&heads_query(keys))?,
            QueryScope::CrossPartition,
            keys.len() as u32,
        )?;
        heads_from_documents(keys, documents)
            .map_err(|_| CosmosError::Protocol("a chain head came back without an etag".into()))
    }
}

fn partition(key: &ChainKey) -> PartitionKey {
    PartitionKey::string(key.as_str())
}

fn cosmos_query(query: &AuditQuery) -> Result<Query, cosmos::InputError> {
    Query::with_parameters(query.text.clone(), query.parameters.clone())
}

impl AppendStore for AuditStore {
    type Error = CosmosError;

    fn read_heads(&mut self, keys: &[ChainKey]) -> Vec<Result<Option<HeadDocument>, CosmosError>> {
        if keys.len() < 2 {
            return self.read_heads_by_id(keys);
        }
        // Several chains (a page of disclosures): one query per hundred
        // instead of a point read each.
        keys.chunks(MAX_HEADS_PER_QUERY)
            .flat_map(|chunk| match self.query_heads(chunk) {
                Ok(heads) => heads.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => chunk.iter().map(|_| Err(e.clone())).collect(),
            })
            .collect()
    }

    fn read_ends(&mut self, keys: &[ChainKey]) -> Vec<Result<StoredEnd, CosmosError>> {
        let prepared: Vec<Result<(Query, QueryScope), CosmosError>> = keys
            .iter()
            .map(|key| {
                let query = cosmos_query(&chain_end_query(key))?;
                Ok((query, QueryScope::Partition(partition(key))))
            })
            .collect();
        let first_items = PageRequest {
            max_item_count: Some(CHAIN_END_ITEMS),
            continuation: None,
        };
        where_valid(
            &prepared,
            |(query, scope)| PageQuery {
                container: &self.records,
                query,
                scope,
                page: &first_items,
            },
            |queries| self.client.query_pages(queries),
        )
        .into_iter()
        .zip(keys)
        .map(|(page, key)| {
            chain_end_from_documents(key, page?.documents)
                .map_err(|_| CosmosError::Protocol("a chain head came back without an etag".into()))
        })
        .collect()
    }

    fn commit(&mut self, commits: &[Commit]) -> Vec<Result<CommitOutcome, CosmosError>> {
        let targets: Vec<Result<_, CosmosError>> = commits
            .iter()
            .map(|commit| {
                let head_id = DocumentId::new(head_document_id(&commit.key))?;
                let etag = commit.head_etag.as_deref().map(ETag::new).transpose()?;
                Ok((partition(&commit.key), head_id, etag))
            })
            .collect();
        // The head's write and the record's create, one atomic batch each.
        // The head goes first: a batch stops at its first refused
        // operation, so the refusal says which of the two moved.
        let batches: Vec<Result<_, CosmosError>> = targets
            .iter()
            .zip(commits)
            .map(|(target, commit)| {
                let (pk, head_id, etag) = target.as_ref().map_err(Clone::clone)?;
                let head = match etag {
                    Some(etag) => BatchOperation::Replace {
                        id: head_id,
                        doc: &commit.head,
                        if_match: Some(etag),
                    },
                    None => BatchOperation::Create { doc: &commit.head },
                };
                Ok((
                    pk,
                    [
                        head,
                        BatchOperation::Create {
                            doc: &commit.record,
                        },
                    ],
                ))
            })
            .collect();
        where_valid(
            &batches,
            |(pk, operations)| Batch {
                container: &self.records,
                pk,
                operations,
            },
            |batches| self.client.batches(batches),
        )
        .into_iter()
        .map(|outcome| match outcome? {
            BatchOutcome::Committed(_) | BatchOutcome::CommittedEarlier => {
                Ok(CommitOutcome::Committed)
            }
            // The head's etag changed, or a head appeared (or went) since it
            // was read.
            BatchOutcome::Refused {
                index: 0,
                error:
                    CosmosError::Conflict | CosmosError::PreconditionFailed | CosmosError::NotFound,
            } => Ok(CommitOutcome::HeadMoved),
            // The head was as read, but the record's id is taken.
            BatchOutcome::Refused {
                index: 1,
                error: CosmosError::Conflict,
            } => Ok(CommitOutcome::PositionTaken),
            BatchOutcome::Refused { error, .. } => Err(error),
        })
        .collect()
    }

    fn now(&mut self) -> AuditTime {
        // A WASI wall clock is always within years 0001-9999.
        AuditTime::from_unix_millis(WasiClock.unix_millis())
            .or_else(|_| AuditTime::from_unix_millis(0))
            .unwrap_or_else(|_| unreachable!("the Unix epoch is in range"))
    }

    fn sleep(&mut self, duration: Duration) {
        WasiClock.sleep(duration);
    }

    fn jitter(&mut self) -> f64 {
        WasiClock.jitter()
    }
}

/// One call for many (`run`: the client's `bulk`, `query_pages` or `batches`) for the
/// targets that could be prepared; each target's result in the order given
/// (a target that could not be prepared keeps its own error and sends
/// nothing).
fn where_valid<'a, T, Operation, Answer>(
    targets: &'a [Result<T, CosmosError>],
    operation: impl Fn(&'a T) -> Operation,
    run: impl FnOnce(&[Operation]) -> Vec<Result<Answer, CosmosError>>,
) -> Vec<Result<Answer, CosmosError>> {
    let operations: Vec<Operation> = targets
        .iter()
        .filter_map(|target| target.as_ref().ok())
        .map(operation)
        .collect();
    let mut done = run(&operations).into_iter();
    targets
        .iter()
        .map(|target| match target {
            Err(e) => Err(e.clone()),
            Ok(_) => done.next().unwrap_or_else(|| {
                Err(CosmosError::Protocol(
                    "a batch operation went unanswered".into(),
                ))
            }),
        })
        .collect()
}

// --- the log -----------------------------------------------------------------

/// What a request adds to its log line.
#[derive(Debug, Default)]
struct Note {
    error: Option<&'static str>,
    attempts: Option<u32>,
}

/// One JSON line per request: route name, status, timing (to the response),
/// correlation id. No header values, query strings, bodies or keys.
fn log_line(
    request: &Request,
    route: Route,
    response: &Response,
    correlation: &str,
    started: u64,
) -> Value {
    RequestLog {
        component: "audit-api",
        method: method_name(request.method()),
        route: route.name(),
        status: *response.status(),
        correlation_id: correlation,
        started_millis: started,
    }
    .line(WasiClock.now_millis())
}

/// Writes the line with what the request added to it.
fn log(mut line: Value, note: &Note) {
    if let Some(error) = note.error {
        line["error"] = error.into();
    }
    if let Some(attempts) = note.attempts {
        line["attempts"] = attempts.into();
    }
    component_kit::log(&line);
}
