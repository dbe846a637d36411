//! A small, synchronous client for the Azure Cosmos DB for NoSQL REST API: the
//! document operations the patient-records components use (create, read,
//! replace, delete, parameterised query, independent point operations sent
//! together, and transactional batches: operations on one partition that
//! commit together or not at all) plus the database-account read.
//!
//! The client owns no I/O. The caller injects a [`Transport`] (in a Spin
//! component, outbound HTTP; in tests, a scripted fake) and a [`Clock`] (dates
//! for signing, a monotonic clock for retry budgets, sleeping, jitter), so the
//! whole protocol — signing, headers, status mapping, retries — runs and is
//! tested natively.
//!
//! What this crate must never do:
//! - put the master key, a signature or a document body into `Debug`,
//!   `Display` or error text (errors name what went wrong, not the data);
//! - build a query by string concatenation: [`Query`] carries parameters only;
//! - retry non-idempotent work blindly: a create (or conditional replace, or
//!   delete, or batch) whose earlier attempt may have been executed is
//!   resolved by reading the document back, never by assuming (see
//!   [`CosmosClient`]);
//! - retry a 4xx other than 429: the same request would fail the same way.

mod client;
mod error;
mod model;
mod retry;

#[cfg(test)]
mod testing;

pub use client::{Batch, BatchOperation, CosmosClient, PageQuery, PointOperation, API_VERSION};
pub use error::{ConfigError, CosmosError, InputError};
/// The injected I/O, re-exported so callers of the client need no second
/// dependency to implement it.
pub use http_transport::{Clock, HttpRequest, HttpResponse, Method, Transport, TransportError};
pub use model::{
    BatchOutcome, BatchResult, ContainerRef, Document, DocumentId, ETag, PageRequest, PartitionKey,
    Query, QueryPage, QueryScope,
};
pub use retry::RetryPolicy;

/// Re-exported so callers need no direct dependency to build a key.
pub use cosmos_auth::MasterKey;
