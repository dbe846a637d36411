//! Partition key values: taken from the `x-ms-documentdb-partitionkey` header
//! or from a document, and written in one canonical text form so that equal
//! values (e.g. `5` and `5.0`) are stored and compared as equal.

use crate::config::PartitionKeyPath;
use crate::reply::Failure;
use serde_json::Value;

pub(crate) const HEADER: &str = "x-ms-documentdb-partitionkey";

/// A partition key value. `Undefined` is a document without the property
/// (the header spells it `[{}]`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PartitionKey {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    String(String),
}

impl PartitionKey {
    /// The canonical text stored in the `pk` column: strings JSON-quoted,
    /// numbers as the shortest form of their double value, `{}` for undefined.
    pub(crate) fn canonical(&self) -> String {
        match self {
            PartitionKey::Undefined => "{}".into(),
            PartitionKey::Null => "null".into(),
            PartitionKey::Bool(b) => b.to_string(),
            // -0 and 0 are one value; the double's Display is the shortest
            // form that round-trips.
            PartitionKey::Number(n) => if *n == 0.0 { 0.0f64 } else { *n }.to_string(),
            PartitionKey::String(s) => Value::String(s.clone()).to_string(),
        }
    }

    /// The key a query's equality on the partition key path names, when the
    /// value is one a partition key can be (a string, number or boolean).
    pub(crate) fn of_value(value: &Value) -> Option<Self> {
        match value {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => Self::from_value(Some(value)),
            _ => None,
        }
    }

    fn from_value(value: Option<&Value>) -> Option<Self> {
        Some(match value {
            None => PartitionKey::Undefined,
            Some(Value::Null) => PartitionKey::Null,
            Some(Value::Bool(b)) => PartitionKey::Bool(*b),
            Some(Value::Number(n)) => PartitionKey::Number(n.as_f64()?),
            Some(Value::String(s)) => PartitionKey::String(s.clone()),
            Some(Value::Object(o)) if o.is_empty() => return None,
            Some(_) => return None,
        })
    }
}

/// The partition key the request names in its header, if it sends one.
pub(crate) fn from_header(request: &crate::StoreRequest) -> Result<Option<PartitionKey>, Failure> {
    let Some(raw) = request.header(HEADER) else {
        return Ok(None);
    };
    let invalid = || {
        Failure::BadRequest(format!(
            "the {HEADER} header must be a JSON array holding one string, number, boolean or null (or {{}} for none), e.g. [\"value\"]"
        ))
    };
    let parsed: Value = serde_json::from_str(raw).map_err(|_| invalid())?;
    let Value::Array(items) = parsed else {
        return Err(invalid());
    };
    match items.as_slice() {
        [Value::Object(o)] if o.is_empty() => Ok(Some(PartitionKey::Undefined)),
        [value] => PartitionKey::from_value(Some(value))
            .map(Some)
            .ok_or_else(invalid),
        _ => Err(invalid()),
    }
}

/// The header value, required on point operations.
pub(crate) fn required_from_header(request: &crate::StoreRequest) -> Result<PartitionKey, Failure> {
    from_header(request)?.ok_or_else(|| {
        Failure::BadRequest(format!(
            "PartitionKey value must be supplied for this operation (header {HEADER})."
        ))
    })
}

/// The value at the container's partition key path in a document.
pub(crate) fn from_document(
    path: &PartitionKeyPath,
    document: &Value,
) -> Result<PartitionKey, Failure> {
    let mut current = Some(document);
    for segment in path.segments() {
        current = current.and_then(|v| v.get(segment));
    }
    PartitionKey::from_value(current).ok_or_else(|| {
        Failure::BadRequest(format!(
            "the partition key value at {} must be a string, number, boolean or null",
            path.as_cosmos_path()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request_with(header: Option<&str>) -> crate::StoreRequest {
        crate::StoreRequest {
            method: "GET".into(),
            path: "/".into(),
            headers: header
                .map(|h| vec![(HEADER.to_string(), h.to_string())])
                .unwrap_or_default(),
            body: Vec::new(),
            base_url: "http://127.0.0.1".into(),
        }
    }

    #[test]
    fn header_values_parse_to_canonical_text() {
        let canon = |h: &str| {
            from_header(&request_with(Some(h)))
                .unwrap()
                .unwrap()
                .canonical()
        };
        assert_eq!(canon("[\"abc\"]"), "\"abc\"");
        assert_eq!(canon("[5]"), canon("[5.0]"));
        assert_eq!(canon("[-0.0]"), canon("[0]"));
        assert_ne!(canon("[5]"), canon("[\"5\"]"));
        assert_eq!(canon("[true]"), "true");
        assert_eq!(canon("[null]"), "null");
        assert_eq!(canon("[{}]"), "{}");
        assert_eq!(from_header(&request_with(None)).unwrap(), None);
        for bad in [
            "",
            "abc",
            "\"abc\"",
            "[]",
            "[1,2]",
            "[[1]]",
            "[{\"a\":1}]",
            "{}",
        ] {
            assert!(
                matches!(
                    from_header(&request_with(Some(bad))),
                    Err(Failure::BadRequest(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            required_from_header(&request_with(None)),
            Err(Failure::BadRequest(_))
        ));
    }

    #[test]
    fn document_values_follow_the_path() {
        let path = PartitionKeyPath::parse("/a/b").unwrap();
        assert_eq!(
            from_document(&path, &json!({"a": {"b": "x"}})).unwrap(),
            PartitionKey::String("x".into())
        );
        assert_eq!(
            from_document(&path, &json!({"a": 1})).unwrap(),
            PartitionKey::Undefined
        );
        assert_eq!(
            from_document(&path, &json!({})).unwrap(),
            PartitionKey::Undefined
        );
        assert!(from_document(&path, &json!({"a": {"b": [1]}})).is_err());
        assert!(from_document(&path, &json!({"a": {"b": {"c": 1}}})).is_err());
    }
}
