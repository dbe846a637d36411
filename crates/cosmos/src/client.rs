//! The client: builds and signs requests, maps statuses, retries.

use std::time::Duration;

use cosmos_auth::{http_date, sign, MasterKey, SignedRequest};
use serde_json::Value;

use crate::error::{ConfigError, CosmosError, InputError};
use crate::model::{
    encode_segment, BatchOutcome, BatchResult, ContainerRef, Document, DocumentId, ETag,
    PageRequest, PartitionKey, Query, QueryPage, QueryScope,
};
use crate::retry::RetryPolicy;
use http_transport::{Clock, HttpRequest, HttpResponse, Method, Transport, TransportError};

/// The REST API version every request asks for (`x-ms-version`).
pub const API_VERSION: &str = "2018-12-31";

/// Properties the store adds to every document; ignored when comparing content.
const SYSTEM_PROPERTIES: [&str; 5] = ["_rid", "_self", "_etag", "_ts", "_attachments"];

/// Longest Cosmos error message we pass on (they can be long; the rest is noise).
const MAX_MESSAGE_CHARS: usize = 300;

/// Cosmos DB's limit on operations in one transactional batch.
const MAX_BATCH_OPERATIONS: usize = 100;

/// The status a batch answer gives every operation but the one that failed.
const FAILED_DEPENDENCY: u16 = 424;

/// A Cosmos DB client for one account.
///
/// Retries: 429 waits the server's `x-ms-retry-after-ms`; 408, 500, 502, 503,
/// 504, transport timeouts and connection failures back off exponentially;
/// nothing else is retried (see [`RetryPolicy`]).
///
/// Writes and retries: a timeout or 5xx does not tell us whether the server
/// executed the write. So when an attempt of a write *after such an ambiguous
/// attempt* fails in the way our own earlier success would make it fail, the
/// client reads the document back instead of guessing:
/// - create + 409: success if the stored document has the content we sent
///   (ignoring system properties), otherwise [`CosmosError::Conflict`];
/// - replace with `If-Match` + 412: likewise, otherwise `PreconditionFailed`;
/// - delete + 404: success (the document is gone either way).
///
/// A transactional batch retried after such an attempt and refused (207) at
/// a create with 409, or a conditional replace with 412, is read back the
/// same way at that operation: our content means the lost attempt committed
/// the whole batch ([`BatchOutcome::CommittedEarlier`]).
///
/// A 409/412/404 with no ambiguous attempt before it (the first attempt, or
/// only 429s before it: throttled requests are not executed) is returned as is.
pub struct CosmosClient<T: Transport, C: Clock> {
    base_url: String,
    key: MasterKey,
    transport: T,
    clock: C,
    policy: RetryPolicy,
}

impl<T: Transport, C: Clock> std::fmt::Debug for CosmosClient<T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("CosmosClient")
            .field("base_url", &self.base_url)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// What one operation sends, minus the per-attempt date and signature.
struct Spec {
    method: Method,
    resource_type: &'static str,
    /// Signed resource link: case kept, not encoded, no leading slash.
    link: String,
    /// URL path: percent-encoded, leading slash.
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// One document operation of [`CosmosClient::bulk`].
#[derive(Debug, Clone, Copy)]
pub enum PointOperation<'a> {
    /// [`CosmosClient::create_document`].
    Create {
        container: &'a ContainerRef,
        pk: &'a PartitionKey,
        doc: &'a Value,
    },
    /// [`CosmosClient::read_document`].
    Read {
        container: &'a ContainerRef,
        pk: &'a PartitionKey,
        id: &'a DocumentId,
    },
    /// [`CosmosClient::replace_document`].
    Replace {
        container: &'a ContainerRef,
        pk: &'a PartitionKey,
        id: &'a DocumentId,
        doc: &'a Value,
        if_match: Option<&'a ETag>,
    },
}

impl PointOperation<'_> {
    /// What the operation sends; an input the store would refuse is refused
    /// here, before anything is sent.
    fn spec(&self) -> Result<Spec, CosmosError> {
        Ok(match *self {
            PointOperation::Create { container, pk, doc } => {
                body_id(doc)?;
                feed_spec(
                    container,
                    vec![partition_header(pk), json_content_type()],
                    doc,
                )
            }
            PointOperation::Read { container, pk, id } => Spec {
                method: Method::Get,
                headers: vec![partition_header(pk)],
                ..document_spec(container, id)
            },
            PointOperation::Replace {
                container,
                pk,
                id,
                doc,
                if_match,
            } => {
                check_replacement(id, doc)?;
                let mut headers = vec![partition_header(pk), json_content_type()];
                if let Some(etag) = if_match {
                    headers.push(("If-Match".to_string(), etag.as_str().to_string()));
                }
                Spec {
                    method: Method::Put,
                    headers,
                    body: doc.to_string().into_bytes(),
                    ..document_spec(container, id)
                }
            }
        })
    }
}

/// One query page of [`CosmosClient::query_pages`].
#[derive(Debug, Clone, Copy)]
pub struct PageQuery<'a> {
    pub container: &'a ContainerRef,
    pub query: &'a Query,
    pub scope: &'a QueryScope,
    pub page: &'a PageRequest,
}

impl PageQuery<'_> {
    fn spec(&self) -> Result<Spec, CosmosError> {
        self.page.validate()?;
        let mut headers = vec![
            (
                "Content-Type".to_string(),
                "application/query+json".to_string(),
            ),
            ("x-ms-documentdb-isquery".to_string(), "True".to_string()),
        ];
        match self.scope {
            QueryScope::Partition(pk) => headers.push(partition_header(pk)),
            QueryScope::CrossPartition => headers.push((
                "x-ms-documentdb-query-enablecrosspartition".to_string(),
                "True".to_string(),
            )),
        }
        if let Some(count) = self.page.max_item_count {
            headers.push(("x-ms-max-item-count".to_string(), count.to_string()));
        }
        if let Some(token) = &self.page.continuation {
            headers.push(("x-ms-continuation".to_string(), token.clone()));
        }
        Ok(feed_spec(self.container, headers, &self.query.body()))
    }
}

/// One operation of a transactional batch ([`CosmosClient::batch`]).
#[derive(Debug, Clone, Copy)]
pub enum BatchOperation<'a> {
    Create {
        doc: &'a Value,
    },
    Read {
        id: &'a DocumentId,
    },
    Replace {
        id: &'a DocumentId,
        doc: &'a Value,
        if_match: Option<&'a ETag>,
    },
}

impl BatchOperation<'_> {
    /// The operation as the batch body lists it (azure-cosmos
    /// `_format_batch_operations`); refused as the point operation would be.
    fn wire(&self) -> Result<Value, InputError> {
        Ok(match *self {
            BatchOperation::Create { doc } => {
                body_id(doc)?;
                serde_json::json!({ "operationType": "Create", "resourceBody": doc })
            }
            BatchOperation::Read { id } => {
                serde_json::json!({ "operationType": "Read", "id": id.as_str() })
            }
            BatchOperation::Replace { id, doc, if_match } => {
                check_replacement(id, doc)?;
                let mut operation = serde_json::json!({
                    "operationType": "Replace", "id": id.as_str(), "resourceBody": doc
                });
                if let Some(etag) = if_match {
                    operation["ifMatch"] = Value::from(etag.as_str());
                }
                operation
            }
        })
    }

    /// The same operation on its own, for reading its document back.
    fn point<'a>(
        &'a self,
        container: &'a ContainerRef,
        pk: &'a PartitionKey,
    ) -> PointOperation<'a> {
        match *self {
            BatchOperation::Create { doc } => PointOperation::Create { container, pk, doc },
            BatchOperation::Read { id } => PointOperation::Read { container, pk, id },
            BatchOperation::Replace { id, doc, if_match } => PointOperation::Replace {
                container,
                pk,
                id,
                doc,
                if_match,
            },
        }
    }
}

/// Operations on one partition of one container that commit together or not at all.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub container: &'a ContainerRef,
    pub pk: &'a PartitionKey,
    pub operations: &'a [BatchOperation<'a>],
}

impl Batch<'_> {
    /// A create on the container's feed marked as a batch (azure-cosmos
    /// `_populate_batch_headers`): atomic, so the store never stops half-way.
    fn spec(&self) -> Result<Spec, CosmosError> {
        if self.operations.is_empty() {
            return Err(InputError::EmptyBatch.into());
        }
        if self.operations.len() > MAX_BATCH_OPERATIONS {
            return Err(InputError::TooManyOperations {
                max_operations: MAX_BATCH_OPERATIONS,
            }
            .into());
        }
        let operations = self
            .operations
            .iter()
            .map(BatchOperation::wire)
            .collect::<Result<Vec<_>, _>>()?;
        let flag = |name: &str, value: &str| (name.to_string(), value.to_string());
        let headers = vec![
            partition_header(self.pk),
            json_content_type(),
            flag("x-ms-cosmos-is-batch-request", "True"),
            flag("x-ms-cosmos-batch-atomic", "True"),
            flag("x-ms-cosmos-batch-continue-on-error", "False"),
        ];
        Ok(feed_spec(
            self.container,
            headers,
            &Value::Array(operations),
        ))
    }
}

/// The end of a retry loop.
struct Sent {
    result: Result<HttpResponse, CosmosError>,
    /// An earlier attempt may have been executed by the server.
    maybe_executed: bool,
}

/// What to do after one attempt.
enum Step {
    Done(Result<HttpResponse, CosmosError>),
    Retry {
        error: CosmosError,
        wait: Duration,
        ambiguous: bool,
    },
}

impl<T: Transport, C: Clock> CosmosClient<T, C> {
    /// `endpoint` is the account URL, e.g. `https://acct.documents.azure.com:443/`
    /// or `http://docstore.spin.internal`.
    pub fn new(
        endpoint: &str,
        key: MasterKey,
        transport: T,
        clock: C,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            base_url: parse_endpoint(endpoint)?,
            key,
            transport,
            clock,
            policy: RetryPolicy::default(),
        })
    }

    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The endpoint as requests use it: `scheme://host[:port]`, no trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// `GET /`: the database account (its readable and writable locations).
    pub fn database_account(&self) -> Result<Value, CosmosError> {
        let spec = Spec {
            method: Method::Get,
            resource_type: "",
            link: String::new(),
            path: "/".to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        };
        let response = self.send(&spec, self.clock.now_millis()).result?;
        parse_json(&response.body)
    }

    /// Creates `doc`, which must be an object with a valid string `id`.
    pub fn create_document(
        &self,
        container: &ContainerRef,
        pk: &PartitionKey,
        doc: &Value,
    ) -> Result<Document, CosmosError> {
        self.one(&PointOperation::Create { container, pk, doc })
    }

    pub fn read_document(
        &self,
        container: &ContainerRef,
        pk: &PartitionKey,
        id: &DocumentId,
    ) -> Result<Document, CosmosError> {
        self.one(&PointOperation::Read { container, pk, id })
    }

    /// Replaces the document `id` with `doc` (whose `id` must be the same),
    /// only if its etag is still `if_match` when given.
    pub fn replace_document(
        &self,
        container: &ContainerRef,
        pk: &PartitionKey,
        id: &DocumentId,
        doc: &Value,
        if_match: Option<&ETag>,
    ) -> Result<Document, CosmosError> {
        self.one(&PointOperation::Replace {
            container,
            pk,
            id,
            doc,
            if_match,
        })
    }

    /// Runs independent point operations together, as the Cosmos SDKs'
    /// bulk mode does: every first attempt is sent at once
    /// ([`Transport::send_all`]), then each operation is finished on its
    /// own exactly as [`Self::create_document`] and the others would
    /// (retries, reading back after an ambiguous attempt). The results are
    /// in the order given, one per operation; one failing fails only itself.
    /// The operations must not depend on each other (two writes to one
    /// document in one call race).
    pub fn bulk(&self, operations: &[PointOperation<'_>]) -> Vec<Result<Document, CosmosError>> {
        let specs: Vec<Result<Spec, CosmosError>> =
            operations.iter().map(PointOperation::spec).collect();
        let started = self.clock.now_millis();
        operations
            .iter()
            .zip(self.send_together(&specs, started))
            .map(|(operation, sent)| self.conclude(operation, sent?, started))
            .collect()
    }

    /// Every spec's first attempt in one [`Transport::send_all`], then each
    /// one's retries alone, all within the budget that began at `started`.
    /// A spec that could not be made keeps its error and sends nothing.
    fn send_together(
        &self,
        specs: &[Result<Spec, CosmosError>],
        started: u64,
    ) -> Vec<Result<Sent, CosmosError>> {
        let requests = specs
            .iter()
            .filter_map(|spec| spec.as_ref().ok())
            .map(|spec| self.build(spec))
            .collect();
        let mut first_attempts = self.transport.send_all(requests).into_iter();
        specs
            .iter()
            .map(|spec| {
                spec.as_ref().map_err(Clone::clone).map(|spec| {
                    let first = first_attempts.next().unwrap_or_else(|| {
                        Err(TransportError::Other("the transport lost a request".into()))
                    });
                    self.finish(spec, started, first)
                })
            })
            .collect()
    }

    fn one(&self, operation: &PointOperation<'_>) -> Result<Document, CosmosError> {
        let spec = operation.spec()?;
        let started = self.clock.now_millis();
        let sent = self.send(&spec, started);
        self.conclude(operation, sent, started)
    }

    /// An operation's result from the end of its retry loop.
    fn conclude(
        &self,
        operation: &PointOperation<'_>,
        sent: Sent,
        started: u64,
    ) -> Result<Document, CosmosError> {
        match sent.result {
            Ok(response) => parse_document(response),
            Err(error) if sent.maybe_executed => self
                .written_earlier(operation, &error, started)?
                .ok_or(error),
            Err(error) => Err(error),
        }
    }

    /// After an ambiguous attempt, whether `operation` failed with `error`
    /// only because that attempt wrote it: a create's 409 (it created the
    /// document) or a conditional replace's 412 (it changed the etag). Reads
    /// the document back to tell; `None` when it is not ours, or the failure
    /// is not one our own write could cause.
    fn written_earlier(
        &self,
        operation: &PointOperation<'_>,
        error: &CosmosError,
        started: u64,
    ) -> Result<Option<Document>, CosmosError> {
        match (operation, error) {
            (PointOperation::Create { container, pk, doc }, CosmosError::Conflict) => {
                self.read_back_if_same(container, pk, &body_id(doc)?, doc, started)
            }
            (
                PointOperation::Replace {
                    container,
                    pk,
                    id,
                    doc,
                    if_match: Some(_),
                },
                CosmosError::PreconditionFailed,
            ) => self.read_back_if_same(container, pk, id, doc, started),
            _ => Ok(None),
        }
    }

    /// Runs `batch` atomically (up to 100 operations, at least 1, on one
    /// partition): every operation commits or none does. Retried like a
    /// point operation; a refusal that our own lost earlier attempt could
    /// have caused is read back (see [`CosmosClient`]).
    pub fn batch(&self, batch: &Batch<'_>) -> Result<BatchOutcome, CosmosError> {
        let spec = batch.spec()?;
        let started = self.clock.now_millis();
        let sent = self.send(&spec, started);
        self.conclude_batch(batch, sent, started)
    }

    /// Several independent batches (each on its own partition), their first
    /// attempts sent together as [`Self::bulk`] sends point operations, each
    /// then finished on its own as [`Self::batch`] would; the results in the
    /// order given. A batch refused before sending fails only itself.
    pub fn batches(&self, batches: &[Batch<'_>]) -> Vec<Result<BatchOutcome, CosmosError>> {
        let specs: Vec<Result<Spec, CosmosError>> = batches.iter().map(Batch::spec).collect();
        let started = self.clock.now_millis();
        batches
            .iter()
            .zip(self.send_together(&specs, started))
            .map(|(batch, sent)| self.conclude_batch(batch, sent?, started))
            .collect()
    }

    /// A batch's outcome from the end of its retry loop, as [`Self::conclude`]
    /// finds a point operation's.
    fn conclude_batch(
        &self,
        batch: &Batch<'_>,
        sent: Sent,
        started: u64,
    ) -> Result<BatchOutcome, CosmosError> {
        let outcome = parse_batch(sent.result?, batch.operations.len())?;
        match outcome {
            BatchOutcome::Refused { index, ref error } if sent.maybe_executed => {
                let operation = batch.operations[index].point(batch.container, batch.pk);
                match self.written_earlier(&operation, error, started)? {
                    Some(_) => Ok(BatchOutcome::CommittedEarlier),
                    None => Ok(outcome),
                }
            }
            outcome => Ok(outcome),
        }
    }

    pub fn delete_document(
        &self,
        container: &ContainerRef,
        pk: &PartitionKey,
        id: &DocumentId,
    ) -> Result<(), CosmosError> {
        let spec = Spec {
            method: Method::Delete,
            headers: vec![partition_header(pk)],
            ..document_spec(container, id)
        };
        let sent = self.send(&spec, self.clock.now_millis());
        match sent.result {
            Ok(_) => Ok(()),
            // Our own earlier attempt may have deleted it; either way it is gone.
            Err(CosmosError::NotFound) if sent.maybe_executed => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Runs one page of a parameterised query.
    pub fn query_documents(
        &self,
        container: &ContainerRef,
        query: &Query,
        scope: QueryScope,
        page: PageRequest,
    ) -> Result<QueryPage, CosmosError> {
        let spec = PageQuery {
            container,
            query,
            scope: &scope,
            page: &page,
        }
        .spec()?;
        parse_query_page(self.send(&spec, self.clock.now_millis()).result?)
    }

    /// One page of each of several independent queries, sent together as
    /// [`Self::bulk`] sends point operations; each finished (retried) on its
    /// own, the results in the order given.
    pub fn query_pages(&self, queries: &[PageQuery<'_>]) -> Vec<Result<QueryPage, CosmosError>> {
        let specs: Vec<Result<Spec, CosmosError>> = queries.iter().map(PageQuery::spec).collect();
        self.send_together(&specs, self.clock.now_millis())
            .into_iter()
            .map(|sent| parse_query_page(sent?.result?))
            .collect()
    }

    fn read_within(
        &self,
        container: &ContainerRef,
        pk: &PartitionKey,
        id: &DocumentId,
        started: u64,
    ) -> Result<Document, CosmosError> {
        let spec = PointOperation::Read { container, pk, id }.spec()?;
        parse_document(self.send(&spec, started).result?)
    }

    /// Reads `id` back (within the same time budget) and returns it if its
    /// content is `sent`; `None` if it differs or is gone. A failed read is
    /// returned as is: the write's outcome is then unknown, not a conflict.
    fn read_back_if_same(
        &self,
        container: &ContainerRef,
        pk: &PartitionKey,
        id: &DocumentId,
        sent: &Value,
        started: u64,
    ) -> Result<Option<Document>, CosmosError> {
        match self.read_within(container, pk, id, started) {
            Ok(stored) if same_content(&stored.body, sent) => Ok(Some(stored)),
            Ok(_) | Err(CosmosError::NotFound) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Sends `spec`, retrying per the policy; `started` is when the caller's
    /// operation began (its budget clock).
    fn send(&self, spec: &Spec, started: u64) -> Sent {
        let first = self.transport.send(self.build(spec));
        self.finish(spec, started, first)
    }

    /// The rest of [`Self::send`] once the first attempt's `outcome` is in.
    fn finish(
        &self,
        spec: &Spec,
        started: u64,
        mut outcome: Result<HttpResponse, TransportError>,
    ) -> Sent {
        let max_attempts = self.policy.max_attempts.max(1);
        let mut maybe_executed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (error, wait, ambiguous) = match self.classify(attempt, outcome) {
                Step::Done(result) => {
                    return Sent {
                        result,
                        maybe_executed,
                    }
                }
                Step::Retry {
                    error,
                    wait,
                    ambiguous,
                } => (error, wait, ambiguous),
            };
            maybe_executed |= ambiguous;
            let elapsed = Duration::from_millis(self.clock.now_millis().saturating_sub(started));
            if attempt >= max_attempts || elapsed + wait > self.policy.total_budget {
                return Sent {
                    result: Err(error),
                    maybe_executed,
                };
            }
            self.clock.sleep(wait);
            outcome = self.transport.send(self.build(spec));
        }
    }

    /// One attempt's request, freshly dated and signed.
    fn build(&self, spec: &Spec) -> HttpRequest {
        let date = http_date(self.clock.now_unix_seconds());
        let authorization = sign(
            &self.key,
            &SignedRequest {
                verb: spec.method.as_str(),
                resource_type: spec.resource_type,
                resource_link: &spec.link,
                date: &date,
            },
        );
        let mut headers = vec![
            ("authorization".to_string(), authorization),
            ("x-ms-date".to_string(), date),
            ("x-ms-version".to_string(), API_VERSION.to_string()),
            ("Accept".to_string(), "application/json".to_string()),
        ];
        headers.extend(spec.headers.iter().cloned());
        HttpRequest {
            method: spec.method,
            url: format!("{}{}", self.base_url, spec.path),
            headers,
            body: spec.body.clone(),
        }
    }

    fn classify(&self, attempt: u32, outcome: Result<HttpResponse, TransportError>) -> Step {
        let backoff = || self.policy.backoff(attempt, self.clock.jitter());
        let transient = |reason: String| Step::Retry {
            error: CosmosError::Unavailable { reason },
            wait: backoff(),
            ambiguous: true,
        };
        match outcome {
            Ok(response) if (200..300).contains(&response.status) => Step::Done(Ok(response)),
            Ok(response) if response.status == 429 => {
                let hint = response
                    .header("x-ms-retry-after-ms")
                    .and_then(parse_retry_after);
                let wait = hint.map_or_else(backoff, |d| self.policy.throttle_wait(d));
                // Throttled requests are not executed, so this attempt is not ambiguous.
                Step::Retry {
                    error: CosmosError::Throttled {
                        retry_after: hint.unwrap_or(wait),
                    },
                    wait,
                    ambiguous: false,
                }
            }
            Ok(response) if matches!(response.status, 408 | 500 | 502 | 503 | 504) => {
                transient(format!("the store answered {}", response.status))
            }
            Ok(response) => Step::Done(Err(status_error(
                response.status,
                serde_json::from_slice(&response.body).ok().as_ref(),
            ))),
            Err(error @ (TransportError::Timeout | TransportError::Connect(_))) => {
                transient(error.to_string())
            }
            Err(error) => Step::Done(Err(CosmosError::Unavailable {
                reason: error.to_string(),
            })),
        }
    }
}

/// `scheme://host[:port]` from an endpoint with an optional trailing slash.
fn parse_endpoint(endpoint: &str) -> Result<String, ConfigError> {
    let invalid = ConfigError::InvalidEndpoint;
    let endpoint = endpoint.trim();
    let (scheme, rest) = endpoint
        .split_once("://")
        .ok_or(invalid("it must start with http:// or https://"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(invalid("it must start with http:// or https://"));
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() {
        return Err(invalid("it has no host"));
    }
    if authority.contains(['?', '#']) {
        return Err(invalid("it must not have a query or fragment"));
    }
    if authority.contains('/') {
        return Err(invalid("it must not have a path"));
    }
    if authority.contains('@') {
        return Err(invalid("it must not contain credentials"));
    }
    if !authority.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "it contains spaces, control or non-ASCII characters",
        ));
    }
    // A port follows the last ':' unless that ':' is inside an IPv6 literal.
    if let Some((host, port)) = authority
        .rsplit_once(':')
        .filter(|(_, port)| !port.contains(']'))
    {
        if host.is_empty() {
            return Err(invalid("it has no host"));
        }
        if !matches!(port.parse::<u16>(), Ok(p) if p > 0) {
            return Err(invalid("its port is not a number from 1 to 65535"));
        }
    }
    Ok(format!("{scheme}://{authority}"))
}

/// A `POST` of `body` to the container's document feed: create, query, batch.
fn feed_spec(container: &ContainerRef, headers: Vec<(String, String)>, body: &Value) -> Spec {
    Spec {
        method: Method::Post,
        resource_type: "docs",
        link: container.link(),
        path: format!("{}/docs", container.path()),
        headers,
        body: body.to_string().into_bytes(),
    }
}

fn document_spec(container: &ContainerRef, id: &DocumentId) -> Spec {
    Spec {
        method: Method::Get,
        resource_type: "docs",
        link: format!("{}/docs/{}", container.link(), id.as_str()),
        path: format!("{}/docs/{}", container.path(), encode_segment(id.as_str())),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

fn partition_header(pk: &PartitionKey) -> (String, String) {
    (
        "x-ms-documentdb-partitionkey".to_string(),
        pk.header_value(),
    )
}

fn json_content_type() -> (String, String) {
    ("Content-Type".to_string(), "application/json".to_string())
}

fn body_id(doc: &Value) -> Result<DocumentId, InputError> {
    let object = doc.as_object().ok_or(InputError::DocumentNotObject)?;
    let id = object
        .get("id")
        .and_then(Value::as_str)
        .ok_or(InputError::DocumentIdMissing)?;
    DocumentId::new(id)
}

/// A replacement must keep the id it is stored under.
fn check_replacement(id: &DocumentId, doc: &Value) -> Result<(), InputError> {
    if body_id(doc)? != *id {
        return Err(InputError::DocumentIdMismatch);
    }
    Ok(())
}

/// `x-ms-retry-after-ms`: milliseconds, usually an integer.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(ms) = value.parse::<u64>() {
        return Some(Duration::from_millis(ms));
    }
    let ms = value
        .parse::<f64>()
        .ok()
        .filter(|ms| ms.is_finite() && *ms >= 0.0)?;
    // `as` saturates: an absurd hint becomes a huge wait, which the cap bounds.
    Some(Duration::from_millis(ms.ceil() as u64))
}

/// The error for a status that is neither success nor retried, whether a
/// response's or a batch operation's; `body` is the error body
/// `{"code":..,"message":..}` if there is one.
fn status_error(status: u16, body: Option<&Value>) -> CosmosError {
    match status {
        400 => CosmosError::BadRequest {
            message: error_message(body),
        },
        401 => CosmosError::Unauthorized,
        403 => CosmosError::Forbidden,
        404 => CosmosError::NotFound,
        409 => CosmosError::Conflict,
        412 => CosmosError::PreconditionFailed,
        413 => CosmosError::TooLarge,
        status @ 500..=599 => CosmosError::Unavailable {
            reason: format!("the store answered {status}"),
        },
        status => CosmosError::Protocol(format!("unexpected status {status}")),
    }
}

/// The `message` of a Cosmos error body, made single-line and short.
fn error_message(body: Option<&Value>) -> String {
    match body.and_then(|v| v.get("message")).and_then(Value::as_str) {
        Some(text) if !text.trim().is_empty() => text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_MESSAGE_CHARS)
            .collect::<String>()
            .trim()
            .to_string(),
        _ => "no message".to_string(),
    }
}

fn parse_json(body: &[u8]) -> Result<Value, CosmosError> {
    // serde_json's error text can quote the body: keep it out.
    serde_json::from_slice(body)
        .map_err(|_| CosmosError::Protocol("the response body is not JSON".to_string()))
}

fn parse_document(response: HttpResponse) -> Result<Document, CosmosError> {
    let body = parse_json(&response.body)?;
    if !body.is_object() {
        return Err(CosmosError::Protocol(
            "the document is not a JSON object".to_string(),
        ));
    }
    let tag = response
        .header("etag")
        .map(str::to_string)
        .or_else(|| {
            body.get("_etag")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .ok_or_else(|| CosmosError::Protocol("the response has no etag".to_string()))?;
    let etag = ETag::new(tag)
        .map_err(|_| CosmosError::Protocol("the response etag is malformed".to_string()))?;
    Ok(Document { body, etag })
}

/// A batch answer: 200 with one result per operation (all committed), or
/// 207 naming the operation that failed, 424 for the rest (none committed).
fn parse_batch(response: HttpResponse, operations: usize) -> Result<BatchOutcome, CosmosError> {
    let protocol = |why: &str| CosmosError::Protocol(why.to_string());
    if !matches!(response.status, 200 | 207) {
        return Err(CosmosError::Protocol(format!(
            "unexpected status {} for a batch",
            response.status
        )));
    }
    let results = match parse_json(&response.body)? {
        Value::Array(results) if results.len() == operations => results,
        _ => {
            return Err(protocol(
                "the batch response is not one result per operation",
            ))
        }
    };
    let status_of = |result: &Value| {
        result
            .get("statusCode")
            .and_then(Value::as_u64)
            .and_then(|code| u16::try_from(code).ok())
            .ok_or_else(|| protocol("a batch result has no status code"))
    };
    if response.status == 207 {
        for (index, result) in results.iter().enumerate() {
            match status_of(result)? {
                FAILED_DEPENDENCY => continue,
                200..=299 => return Err(protocol("a refused batch reports a success")),
                status => {
                    let error = status_error(status, result.get("resourceBody"));
                    return Ok(BatchOutcome::Refused { index, error });
                }
            }
        }
        return Err(protocol("a refused batch names no failed operation"));
    }
    results
        .into_iter()
        .map(|mut result| {
            let status = status_of(&result)?;
            if !(200..300).contains(&status) {
                return Err(protocol("a committed batch reports a failure"));
            }
            let etag = match result.get("eTag") {
                None => None,
                Some(tag) => Some(
                    tag.as_str()
                        .and_then(|tag| ETag::new(tag).ok())
                        .ok_or_else(|| protocol("a batch result etag is malformed"))?,
                ),
            };
            let body = result.get_mut("resourceBody").map(Value::take);
            if body.as_ref().is_some_and(|body| !body.is_object()) {
                return Err(protocol("a batch result document is not a JSON object"));
            }
            Ok(BatchResult { status, etag, body })
        })
        .collect::<Result<_, _>>()
        .map(BatchOutcome::Committed)
}

fn parse_query_page(response: HttpResponse) -> Result<QueryPage, CosmosError> {
    let continuation = response
        .header("x-ms-continuation")
        .filter(|token| !token.is_empty())
        .map(str::to_string);
    let mut body = parse_json(&response.body)?;
    let documents = match body.get_mut("Documents").map(Value::take) {
        Some(Value::Array(documents)) => documents,
        _ => {
            return Err(CosmosError::Protocol(
                "the query response has no Documents array".to_string(),
            ))
        }
    };
    Ok(QueryPage {
        documents,
        continuation,
    })
}

/// Equal as documents: system properties ignored, numbers compared by value
/// (the store may give back `1` for a `1.0` it was sent).
fn same_content(stored: &Value, sent: &Value) -> bool {
    match (stored, sent) {
        (Value::Object(a), Value::Object(b)) => {
            let user = |o: &serde_json::Map<String, Value>| {
                o.iter()
                    .filter(|(k, _)| !SYSTEM_PROPERTIES.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<serde_json::Map<String, Value>>()
            };
            json_equal(&Value::Object(user(a)), &Value::Object(user(b)))
        }
        _ => false,
    }
}

fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(x), Some(y), _, _) => x == y,
                (_, _, Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
