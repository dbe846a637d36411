//! Validated values: names, ids, partition keys, etags, queries, pages,
//! and what a transactional batch answers.

use crate::error::{CosmosError, InputError};
use serde_json::Value;

/// Cosmos's limit for ids and database/container names.
const MAX_NAME_CHARS: usize = 255;
/// Characters Cosmos forbids in ids and names (they break resource links).
const FORBIDDEN: [char; 4] = ['/', '\\', '?', '#'];

fn check_name(what: &'static str, value: &str) -> Result<(), InputError> {
    if value.is_empty() {
        return Err(InputError::Empty { what });
    }
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(InputError::TooLong {
            what,
            max_chars: MAX_NAME_CHARS,
        });
    }
    if let Some(character) = value.chars().find(|c| FORBIDDEN.contains(c)) {
        return Err(InputError::ForbiddenCharacter { what, character });
    }
    Ok(())
}

/// A document id Cosmos accepts: 1–255 characters, none of `/ \ ? #`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DocumentId(String);

impl DocumentId {
    pub fn new(id: impl Into<String>) -> Result<Self, InputError> {
        let id = id.into();
        check_name("document id", &id)?;
        Ok(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DocumentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A database and container by name. Names follow Cosmos's rules: 1–255
/// characters, none of `/ \ ? #`, no trailing space.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerRef {
    database: String,
    container: String,
}

impl ContainerRef {
    pub fn new(
        database: impl Into<String>,
        container: impl Into<String>,
    ) -> Result<Self, InputError> {
        let database = database.into();
        let container = container.into();
        for (what, name) in [("database name", &database), ("container name", &container)] {
            check_name(what, name)?;
            if name.ends_with(' ') {
                return Err(InputError::TrailingSpace { what });
            }
        }
        Ok(Self {
            database,
            container,
        })
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    pub fn container(&self) -> &str {
        &self.container
    }

    /// `dbs/{db}/colls/{coll}`: the resource link as signed (case kept, not encoded).
    pub(crate) fn link(&self) -> String {
        format!("dbs/{}/colls/{}", self.database, self.container)
    }

    /// `/dbs/{db}/colls/{coll}` with each segment percent-encoded, for the URL.
    pub(crate) fn path(&self) -> String {
        format!(
            "/dbs/{}/colls/{}",
            encode_segment(&self.database),
            encode_segment(&self.container)
        )
    }
}

/// Percent-encodes one path segment: everything but RFC 3986 unreserved characters.
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A partition key value: a string or a finite number.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionKey(Value);

impl PartitionKey {
    pub fn string(value: impl Into<String>) -> Self {
        Self(Value::String(value.into()))
    }

    pub fn integer(value: i64) -> Self {
        Self(Value::from(value))
    }

    pub fn number(value: f64) -> Result<Self, InputError> {
        serde_json::Number::from_f64(value)
            .map(|n| Self(Value::Number(n)))
            .ok_or(InputError::NonFiniteNumber)
    }

    pub fn value(&self) -> &Value {
        &self.0
    }

    /// The `x-ms-documentdb-partitionkey` value: a one-element JSON array.
    /// Non-ASCII characters are `\u`-escaped so the header stays ASCII.
    pub fn header_value(&self) -> String {
        ascii_json(&Value::Array(vec![self.0.clone()]))
    }
}

impl From<&str> for PartitionKey {
    fn from(value: &str) -> Self {
        Self::string(value)
    }
}

impl From<i64> for PartitionKey {
    fn from(value: i64) -> Self {
        Self::integer(value)
    }
}

/// Serializes JSON with every non-ASCII character escaped (still valid JSON,
/// same value): HTTP header values must be ASCII.
fn ascii_json(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// True when every byte is printable ASCII (or space/tab): safe as a header value.
fn header_safe(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// An entity tag as the store returned it (quotes included).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ETag(String);

impl ETag {
    pub fn new(value: impl Into<String>) -> Result<Self, InputError> {
        let value = value.into();
        if value.is_empty() {
            return Err(InputError::Empty { what: "etag" });
        }
        if !header_safe(&value) {
            return Err(InputError::NotHeaderSafe { what: "etag" });
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ETag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored document and its current etag.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub body: Value,
    pub etag: ETag,
}

/// A SQL query with named parameters. There is deliberately no way to splice
/// values into the text: every value travels as a parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    text: String,
    parameters: Vec<(String, Value)>,
}

impl Query {
    pub fn new(text: impl Into<String>) -> Result<Self, InputError> {
        let text = text.into();
        if text.trim().is_empty() {
            return Err(InputError::Empty { what: "query text" });
        }
        Ok(Self {
            text,
            parameters: Vec::new(),
        })
    }

    /// Adds `@name = value`. The name must be `@` plus an identifier.
    pub fn with_parameter(
        mut self,
        name: impl Into<String>,
        value: impl Into<Value>,
    ) -> Result<Self, InputError> {
        let name = name.into();
        let identifier = name
            .strip_prefix('@')
            .ok_or(InputError::InvalidParameterName)?;
        let mut chars = identifier.chars();
        let starts_well = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !starts_well || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(InputError::InvalidParameterName);
        }
        if self
            .parameters
            .iter()
            .any(|(existing, _)| existing == &name)
        {
            return Err(InputError::DuplicateParameter);
        }
        self.parameters.push((name, value.into()));
        Ok(self)
    }

    /// A query from its text and `(name, value)` parameters, each checked as
    /// [`Query::with_parameter`] does (the shape `records` and
    /// `audit-chain` build their queries in).
    pub fn with_parameters<N, V>(
        text: impl Into<String>,
        parameters: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Self, InputError>
    where
        N: Into<String>,
        V: Into<Value>,
    {
        parameters
            .into_iter()
            .try_fold(Self::new(text)?, |query, (name, value)| {
                query.with_parameter(name, value)
            })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn parameters(&self) -> &[(String, Value)] {
        &self.parameters
    }

    /// The `application/query+json` body.
    pub(crate) fn body(&self) -> Value {
        let parameters: Vec<Value> = self
            .parameters
            .iter()
            .map(|(name, value)| serde_json::json!({ "name": name, "value": value }))
            .collect();
        serde_json::json!({ "query": self.text, "parameters": parameters })
    }
}

/// Where a query runs.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryScope {
    /// Within one logical partition (the cheap, normal case).
    Partition(PartitionKey),
    /// Across all partitions (`x-ms-documentdb-query-enablecrosspartition`).
    CrossPartition,
}

/// Which page of results to fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// At most this many documents (`x-ms-max-item-count`); `None` lets the store choose.
    pub max_item_count: Option<u32>,
    /// The `continuation` of the previous page; `None` for the first page.
    pub continuation: Option<String>,
}

impl PageRequest {
    pub(crate) fn validate(&self) -> Result<(), InputError> {
        if self.max_item_count == Some(0) {
            return Err(InputError::ZeroMaxItemCount);
        }
        if let Some(token) = &self.continuation {
            if token.is_empty() {
                return Err(InputError::Empty {
                    what: "continuation token",
                });
            }
            if !header_safe(token) {
                return Err(InputError::NotHeaderSafe {
                    what: "continuation token",
                });
            }
        }
        Ok(())
    }
}

/// One page of query results.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPage {
    pub documents: Vec<Value>,
    /// Present when more results remain; pass it back in [`PageRequest`].
    pub continuation: Option<String>,
}

/// How a transactional batch ([`crate::CosmosClient::batch`]) ended.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchOutcome {
    /// Every operation committed; one result per operation, in order.
    Committed(Vec<BatchResult>),
    /// A retry was refused only because an earlier attempt of this same batch, whose answer
    /// was lost (timeout/5xx), had already committed it: confirmed by reading the refused
    /// operation's document back with the content this batch sent.
    CommittedEarlier,
    /// Nothing was written: operation `index` failed with `error` (409 -> Conflict,
    /// 412 -> PreconditionFailed, 404 -> NotFound, 400 -> BadRequest, ...); the others were not applied.
    Refused { index: usize, error: CosmosError },
}

/// One committed operation's result.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchResult {
    pub status: u16,
    pub etag: Option<ETag>,
    /// The document for a Create/Replace/Read result when the store returned it.
    pub body: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn document_ids_follow_cosmos_rules() {
        assert!(DocumentId::new("3fa85f64-5717-4562-b3fc-2c963f66afa6").is_ok());
        assert!(DocumentId::new("with space and ünïcode").is_ok());
        assert!(DocumentId::new("x".repeat(255)).is_ok());
        assert_eq!(
            DocumentId::new(""),
            Err(InputError::Empty {
                what: "document id"
            })
        );
        assert_eq!(
            DocumentId::new("x".repeat(256)),
            Err(InputError::TooLong {
                what: "document id",
                max_chars: 255
            })
        );
        // 255 multi-byte characters are still 255 characters.
        assert!(DocumentId::new("é".repeat(255)).is_ok());
        for (id, character) in [("a/b", '/'), ("a\\b", '\\'), ("a?b", '?'), ("a#b", '#')] {
            assert_eq!(
                DocumentId::new(id),
                Err(InputError::ForbiddenCharacter {
                    what: "document id",
                    character
                })
            );
        }
    }

    #[test]
    fn container_names_are_validated_and_named_in_errors() {
        let c = ContainerRef::new("patients", "Tests").unwrap();
        assert_eq!(c.link(), "dbs/patients/colls/Tests");
        assert_eq!(
            ContainerRef::new("", "x"),
            Err(InputError::Empty {
                what: "database name"
            })
        );
        assert_eq!(
            ContainerRef::new("db", "a/b"),
            Err(InputError::ForbiddenCharacter {
                what: "container name",
                character: '/'
            })
        );
        assert_eq!(
            ContainerRef::new("db ", "x"),
            Err(InputError::TrailingSpace {
                what: "database name"
            })
        );
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("a b%c"), "a%20b%25c");
        assert_eq!(encode_segment("é"), "%C3%A9");
        assert_eq!(encode_segment("A-z_0.~"), "A-z_0.~");
        let c = ContainerRef::new("my db", "c+1").unwrap();
        assert_eq!(c.path(), "/dbs/my%20db/colls/c%2B1");
    }

    #[test]
    fn partition_key_headers_are_json_arrays() {
        assert_eq!(PartitionKey::string("abc").header_value(), r#"["abc"]"#);
        assert_eq!(PartitionKey::string("a\"b").header_value(), r#"["a\"b"]"#);
        assert_eq!(PartitionKey::integer(42).header_value(), "[42]");
        assert_eq!(PartitionKey::number(1.5).unwrap().header_value(), "[1.5]");
        assert_eq!(
            PartitionKey::number(f64::NAN),
            Err(InputError::NonFiniteNumber)
        );
        let unicode = PartitionKey::string("Zoë😀").header_value();
        assert_eq!(unicode, r#"["Zo\u00eb\ud83d\ude00"]"#);
        // Escaping changes the bytes, not the value.
        assert_eq!(
            serde_json::from_str::<Value>(&unicode).unwrap(),
            json!(["Zoë😀"])
        );
    }

    #[test]
    fn query_parameters_are_validated() {
        let q = Query::new("SELECT * FROM c WHERE c.a = @a")
            .unwrap()
            .with_parameter("@a", 1)
            .unwrap();
        assert_eq!(q.parameters(), &[("@a".to_string(), json!(1))]);
        assert_eq!(
            Query::new("  "),
            Err(InputError::Empty { what: "query text" })
        );
        for name in ["a", "@", "@1a", "@a-b", "@a b"] {
            assert_eq!(
                Query::new("SELECT 1").unwrap().with_parameter(name, 1),
                Err(InputError::InvalidParameterName),
                "{name}"
            );
        }
        assert_eq!(
            q.with_parameter("@a", 2),
            Err(InputError::DuplicateParameter)
        );
    }

    #[test]
    fn a_query_from_parts_checks_each_parameter() {
        let parts = vec![("@a".to_string(), json!(1)), ("@b".to_string(), json!("x"))];
        let q = Query::with_parameters("SELECT * FROM c WHERE c.a = @a", parts.clone()).unwrap();
        assert_eq!(q.parameters(), parts.as_slice());
        assert_eq!(
            Query::with_parameters("SELECT 1", [("@a", 1), ("@a", 2)]),
            Err(InputError::DuplicateParameter)
        );
        assert_eq!(
            Query::with_parameters("SELECT 1", [("a", 1)]),
            Err(InputError::InvalidParameterName)
        );
        assert_eq!(
            Query::with_parameters(" ", Vec::<(String, Value)>::new()),
            Err(InputError::Empty { what: "query text" })
        );
    }

    #[test]
    fn etags_and_continuations_must_be_header_safe() {
        assert!(ETag::new("\"00000000-0000-0000-0000-000000000000\"").is_ok());
        assert_eq!(
            ETag::new("a\r\nb"),
            Err(InputError::NotHeaderSafe { what: "etag" })
        );
        assert_eq!(ETag::new(""), Err(InputError::Empty { what: "etag" }));
        let page = |c: &str| PageRequest {
            max_item_count: None,
            continuation: Some(c.to_string()),
        };
        assert!(
            page(r#"{"token":"+RID:~abc","range":{"min":"","max":"FF"}}"#)
                .validate()
                .is_ok()
        );
        assert_eq!(
            page("x\ny").validate(),
            Err(InputError::NotHeaderSafe {
                what: "continuation token"
            })
        );
        let zero = PageRequest {
            max_item_count: Some(0),
            continuation: None,
        };
        assert_eq!(zero.validate(), Err(InputError::ZeroMaxItemCount));
    }
}
