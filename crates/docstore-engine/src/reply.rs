//! Responses and the failures a request can end in, with Cosmos DB's status
//! codes and error codes.

use crate::{SqlError, StoreResponse};

/// How long a client should wait before retrying after the database stayed
/// locked past the store's lock-wait budget.
pub(crate) const BUSY_RETRY_AFTER_MS: u32 = 100;

/// Why a request failed. Messages never contain secrets or SQL error text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    BadRequest(String),
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    MethodNotAllowed(String),
    Conflict(String),
    PreconditionFailed(String),
    TooLarge,
    /// The database is locked by another request; past the lock-wait
    /// budget it is a 429, retried by Cosmos clients after
    /// `x-ms-retry-after-ms`.
    Busy,
    /// The database has no documents table yet; `handle` creates it and
    /// runs the request again. Answered as `Internal` if it ever escapes.
    NoSchema,
    /// A truly internal storage failure.
    Internal,
}

impl Failure {
    pub(crate) fn method(method: &str, resource: &str, allowed: &str) -> Self {
        Failure::MethodNotAllowed(format!(
            "method {method} is not supported on {resource}; supported: {allowed}"
        ))
    }

    pub(crate) fn not_found_document() -> Self {
        Failure::NotFound("Entity with the specified id does not exist in the system.".into())
    }

    pub(crate) fn conflict_document() -> Self {
        Failure::Conflict("Entity with the specified id already exists in the system.".into())
    }

    pub(crate) fn stale_etag() -> Self {
        Failure::PreconditionFailed(
            "One of the specified pre-condition is not met: the If-Match etag is not the document's current etag."
                .into(),
        )
    }

    /// Status, Cosmos error code and message: what [`Self::into_response`]
    /// answers, and what a batch reports for a failed operation.
    pub(crate) fn parts(&self) -> (u16, &'static str, String) {
        match self {
            Failure::BadRequest(m) => (400, "BadRequest", m.clone()),
            Failure::Unauthorized(m) => (401, "Unauthorized", m.clone()),
            Failure::Forbidden(m) => (403, "Forbidden", m.clone()),
            Failure::NotFound(m) => (404, "NotFound", m.clone()),
            Failure::MethodNotAllowed(m) => (405, "MethodNotAllowed", m.clone()),
            Failure::Conflict(m) => (409, "Conflict", m.clone()),
            Failure::PreconditionFailed(m) => (412, "PreconditionFailed", m.clone()),
            Failure::TooLarge => (
                413,
                "RequestEntityTooLarge",
                format!(
                    "Request size is too large: the body exceeds {} bytes.",
                    crate::MAX_BODY_BYTES
                ),
            ),
            Failure::Busy => (
                429,
                "TooManyRequests",
                "The local document store's database is busy; retry after x-ms-retry-after-ms."
                    .into(),
            ),
            Failure::Internal | Failure::NoSchema => (
                500,
                "InternalServerError",
                "The local document store failed to access its database.".into(),
            ),
        }
    }

    pub(crate) fn into_response(self) -> StoreResponse {
        let (status, code, message) = self.parts();
        let mut response = json_response(
            status,
            &serde_json::json!({ "code": code, "message": message }),
        );
        if self == Failure::Busy {
            response.headers.push((
                "x-ms-retry-after-ms".into(),
                BUSY_RETRY_AFTER_MS.to_string(),
            ));
        }
        response
    }
}

impl From<SqlError> for Failure {
    fn from(error: SqlError) -> Self {
        match error {
            SqlError::Busy(_) => Failure::Busy,
            // The only constraint is the document key, so a violation means
            // a document with that id is in the partition already.
            SqlError::Constraint(_) => Failure::conflict_document(),
            SqlError::NoTable(_) => Failure::NoSchema,
            SqlError::Other(_) => Failure::Internal,
        }
    }
}

pub(crate) fn json_response(status: u16, body: &serde_json::Value) -> StoreResponse {
    StoreResponse {
        status,
        headers: Vec::new(),
        body: body.to_string().into_bytes(),
    }
}

/// A response whose body is already serialized JSON.
pub(crate) fn raw_json_response(status: u16, body: String) -> StoreResponse {
    StoreResponse {
        status,
        headers: Vec::new(),
        body: body.into_bytes(),
    }
}

/// Headers every response carries.
pub(crate) fn add_common_headers(response: &mut StoreResponse) {
    response
        .headers
        .push(("content-type".into(), "application/json".into()));
    response
        .headers
        .push(("x-ms-activity-id".into(), uuid::Uuid::new_v4().to_string()));
    response
        .headers
        .push(("x-ms-request-charge".into(), "1".into()));
}
