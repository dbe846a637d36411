//! Error types. None of them carries a key, a signature or document content.

use std::time::Duration;

/// The endpoint given to [`crate::CosmosClient::new`] is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The endpoint is not `http(s)://host[:port][/]`; the text says why.
    InvalidEndpoint(&'static str),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::InvalidEndpoint(why) => write!(f, "invalid Cosmos endpoint: {why}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A value the caller supplied is not acceptable; found before any request.
/// `what` names the value (e.g. "document id"); the value itself is not echoed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    Empty {
        what: &'static str,
    },
    TooLong {
        what: &'static str,
        max_chars: usize,
    },
    ForbiddenCharacter {
        what: &'static str,
        character: char,
    },
    TrailingSpace {
        what: &'static str,
    },
    /// A header-bound value (ETag, continuation) holds a control or non-ASCII character.
    NotHeaderSafe {
        what: &'static str,
    },
    /// A partition key number is NaN or infinite.
    NonFiniteNumber,
    /// A query parameter name is not `@` followed by an identifier.
    InvalidParameterName,
    DuplicateParameter,
    /// A document body is not a JSON object.
    DocumentNotObject,
    /// A document body has no string `id`.
    DocumentIdMissing,
    /// A replaced document's `id` differs from the id it is stored under.
    DocumentIdMismatch,
    /// `max_item_count` is zero.
    ZeroMaxItemCount,
    /// A transactional batch has no operations.
    EmptyBatch,
    /// A transactional batch has more operations than Cosmos allows in one.
    TooManyOperations {
        max_operations: usize,
    },
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputError::Empty { what } => write!(f, "{what} is empty"),
            InputError::TooLong { what, max_chars } => {
                write!(f, "{what} is longer than {max_chars} characters")
            }
            InputError::ForbiddenCharacter { what, character } => {
                write!(f, "{what} contains the forbidden character {character:?}")
            }
            InputError::TrailingSpace { what } => write!(f, "{what} ends with a space"),
            InputError::NotHeaderSafe { what } => {
                write!(f, "{what} contains a control or non-ASCII character")
            }
            InputError::NonFiniteNumber => f.write_str("partition key number is not finite"),
            InputError::InvalidParameterName => f.write_str(
                "query parameter name must be '@' followed by letters, digits or '_' (not starting with a digit)",
            ),
            InputError::DuplicateParameter => f.write_str("query parameter is given twice"),
            InputError::DocumentNotObject => f.write_str("document is not a JSON object"),
            InputError::DocumentIdMissing => f.write_str("document has no string \"id\""),
            InputError::DocumentIdMismatch => {
                f.write_str("document \"id\" differs from the id being replaced")
            }
            InputError::ZeroMaxItemCount => f.write_str("max_item_count must be at least 1"),
            InputError::EmptyBatch => f.write_str("batch has no operations"),
            InputError::TooManyOperations { max_operations } => {
                write!(f, "batch has more than {max_operations} operations")
            }
        }
    }
}

impl std::error::Error for InputError {}

/// The outcome of a failed operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CosmosError {
    /// 404.
    NotFound,
    /// 409: a document with that id exists.
    Conflict,
    /// 412: the `If-Match` etag is stale.
    PreconditionFailed,
    /// 429 and the retry budget ran out; `retry_after` is the server's last hint.
    Throttled { retry_after: Duration },
    /// 401: the signature or date was rejected (wrong key, clock skew).
    Unauthorized,
    /// 403.
    Forbidden,
    /// 400, with Cosmos's message.
    BadRequest { message: String },
    /// 413: the document or request is too large.
    TooLarge,
    /// 408, 5xx or a transport failure, after retries.
    Unavailable { reason: String },
    /// The response did not follow the protocol (unexpected status, bad JSON, no etag).
    Protocol(String),
    /// The caller's input was rejected before any request was sent.
    InvalidInput(InputError),
}

impl std::fmt::Display for CosmosError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CosmosError::NotFound => f.write_str("the resource was not found"),
            CosmosError::Conflict => f.write_str("a document with this id already exists"),
            CosmosError::PreconditionFailed => f.write_str("the document changed (etag mismatch)"),
            CosmosError::Throttled { retry_after } => write!(
                f,
                "the store is throttling requests; retry after {} ms",
                retry_after.as_millis()
            ),
            CosmosError::Unauthorized => f.write_str("the store rejected the request signature"),
            CosmosError::Forbidden => f.write_str("the store forbade the request"),
            CosmosError::BadRequest { message } => {
                write!(f, "the store rejected the request: {message}")
            }
            CosmosError::TooLarge => f.write_str("the request is too large for the store"),
            CosmosError::Unavailable { reason } => write!(f, "the store is unavailable: {reason}"),
            CosmosError::Protocol(why) => write!(f, "unexpected store response: {why}"),
            CosmosError::InvalidInput(error) => write!(f, "invalid input: {error}"),
        }
    }
}

impl std::error::Error for CosmosError {}

impl From<InputError> for CosmosError {
    fn from(error: InputError) -> Self {
        CosmosError::InvalidInput(error)
    }
}
