//! Strict JSON reading, shared by every parser of client (and stored) JSON:
//! duplicate members rejected anywhere in a body, unknown members rejected
//! where the caller lists the known ones, types checked, and every error
//! naming the JSON path of the offending member.
//!
//! Errors carry a path and a [`Violation`], never the offending value: the
//! value may be patient data. A member name echoed in a path comes from the
//! client, so it is cut to [`MAX_ECHOED_NAME`] characters and its control
//! characters are replaced.
//!
//! Numbers and nesting follow `serde_json` (nesting deeper than its
//! recursion limit of 128 is malformed JSON; a number outside `f64` is
//! malformed JSON). The callers turn [`JsonError`] into their own error
//! type, which owns the message a client sees.
//!
//! What this crate must never do: put a member's value into an error, or
//! accept a body with a member given twice (JSON parsers disagree on which
//! one wins, so a check and a store could read different values).

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Field name used for errors about the body as a whole.
pub const BODY: &str = "body";

/// Longest member name echoed back in an error; longer names are cut, so a
/// hostile client cannot make the error body arbitrarily large.
pub const MAX_ECHOED_NAME: usize = 64;

/// The JSON type a member must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    String,
    Array,
    Object,
    /// An integer in `0..=u64::MAX`.
    NonNegativeInteger,
}

impl JsonType {
    /// "a string", "an array", ...: the type as the messages say it.
    pub fn with_article(self) -> &'static str {
        match self {
            JsonType::String => "a string",
            JsonType::Array => "an array",
            JsonType::Object => "an object",
            JsonType::NonNegativeInteger => "a non-negative integer",
        }
    }
}

/// What is wrong with one member (or with the body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// The body is not JSON at all (or has trailing text).
    MalformedJson { line: usize, column: usize },
    /// An object member appears twice.
    DuplicateField,
    /// A member the caller does not know.
    UnknownField,
    /// A required member is absent or `null`.
    Required,
    /// The member has the wrong JSON type.
    WrongType(JsonType),
}

/// A JSON reading error: which member, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// JSON path, such as `observations[2].issued`; [`BODY`] for the body.
    pub field: String,
    pub violation: Violation,
}

impl JsonError {
    pub fn new(field: impl Into<String>, violation: Violation) -> Self {
        Self {
            field: field.into(),
            violation,
        }
    }
}

/// Parses a body, rejecting duplicate members anywhere in it.
pub fn parse_body(body: &[u8]) -> Result<Value, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let raw = Raw::deserialize(&mut de).and_then(|raw| de.end().map(|()| raw));
    match raw {
        Ok(raw) => raw.into_value(""),
        Err(e) => Err(JsonError::new(
            BODY,
            Violation::MalformedJson {
                line: e.line(),
                column: e.column(),
            },
        )),
    }
}

/// A JSON tree that keeps duplicate members, so they can be reported by path.
enum Raw {
    Value(Value),
    Array(Vec<Raw>),
    Object(Vec<(String, Raw)>),
}

impl Raw {
    fn into_value(self, path: &str) -> Result<Value, JsonError> {
        Ok(match self {
            Raw::Value(v) => v,
            Raw::Array(items) => Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| item.into_value(&index_path(path, i)))
                    .collect::<Result<_, _>>()?,
            ),
            Raw::Object(members) => {
                let mut map = Map::new();
                for (key, raw) in members {
                    let child = member_path(path, &key);
                    if map.contains_key(&key) {
                        return Err(JsonError::new(child, Violation::DuplicateField));
                    }
                    let value = raw.into_value(&child)?;
                    map.insert(key, value);
                }
                Value::Object(map)
            }
        })
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Value(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Value(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Value(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
        serde_json::Number::from_f64(v)
            .map(|n| Raw::Value(Value::Number(n)))
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Value(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Value(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Value(Value::Null))
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Value(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Raw::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut members = Vec::new();
        while let Some(entry) = map.next_entry::<String, Raw>()? {
            members.push(entry);
        }
        Ok(Raw::Object(members))
    }
}

/// `parent.key`, or `key` at the top level. The key is shortened and its
/// control characters replaced, since it comes from the client.
pub fn member_path(parent: &str, key: &str) -> String {
    let mut shown: String = key
        .chars()
        .take(MAX_ECHOED_NAME)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if key.chars().nth(MAX_ECHOED_NAME).is_some() {
        shown.push('…');
    }
    if parent.is_empty() {
        shown
    } else {
        format!("{parent}.{shown}")
    }
}

/// `parent[i]`.
pub fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// The members of one JSON object, taken out one by one as they are validated.
pub struct Fields {
    path: String,
    map: Map<String, Value>,
}

impl Fields {
    /// `value` must be an object; `path` is its JSON path ("" for the body).
    pub fn new(value: Value, path: &str) -> Result<Self, JsonError> {
        match value {
            Value::Object(map) => Ok(Self {
                path: path.to_owned(),
                map,
            }),
            _ => Err(JsonError::new(
                if path.is_empty() { BODY } else { path },
                Violation::WrongType(JsonType::Object),
            )),
        }
    }

    /// The JSON path of member `key` of this object.
    pub fn path_of(&self, key: &str) -> String {
        member_path(&self.path, key)
    }

    /// Whether `key` is present with a value other than `null`.
    pub fn has(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    /// Fails on the first member (in name order) not in `allowed`.
    pub fn reject_unknown(&self, allowed: &[&str]) -> Result<(), JsonError> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(unknown) => Err(JsonError::new(
                self.path_of(unknown),
                Violation::UnknownField,
            )),
            None => Ok(()),
        }
    }

    /// Removes and returns a member; `null` counts as absent.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key).filter(|v| !v.is_null())
    }

    /// Removes a member that is ignored (such as a store system property).
    pub fn discard(&mut self, key: &str) {
        self.map.remove(key);
    }

    /// Removes a member that must be present and not `null`.
    pub fn required(&mut self, key: &str) -> Result<Value, JsonError> {
        self.take(key)
            .ok_or_else(|| JsonError::new(self.path_of(key), Violation::Required))
    }

    pub fn optional_str(&mut self, key: &str) -> Result<Option<String>, JsonError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.wrong_type(key, JsonType::String)),
        }
    }

    pub fn required_str(&mut self, key: &str) -> Result<String, JsonError> {
        match self.required(key)? {
            Value::String(s) => Ok(s),
            _ => Err(self.wrong_type(key, JsonType::String)),
        }
    }

    pub fn required_array(&mut self, key: &str) -> Result<Vec<Value>, JsonError> {
        match self.required(key)? {
            Value::Array(items) => Ok(items),
            _ => Err(self.wrong_type(key, JsonType::Array)),
        }
    }

    pub fn required_u64(&mut self, key: &str) -> Result<u64, JsonError> {
        self.required(key)?
            .as_u64()
            .ok_or_else(|| self.wrong_type(key, JsonType::NonNegativeInteger))
    }

    fn wrong_type(&self, key: &str, expected: JsonType) -> JsonError {
        JsonError::new(self.path_of(key), Violation::WrongType(expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(body: &str) -> JsonError {
        parse_body(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn malformed_and_trailing_input_is_reported_on_body() {
        for body in [
            "",
            "{",
            "{\"a\":}",
            "{} x",
            "{}{}",
            "[1,]",
            "\u{feff}{}",
            "nul",
        ] {
            let e = err(body);
            assert_eq!(e.field, "body", "{body:?}");
            assert!(
                matches!(e.violation, Violation::MalformedJson { .. }),
                "{body:?}"
            );
        }
    }

    #[test]
    fn nesting_beyond_the_recursion_limit_is_malformed() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(
            err(&deep).violation,
            Violation::MalformedJson { .. }
        ));
        let fine = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse_body(fine.as_bytes()).is_ok());
    }

    #[test]
    fn duplicate_members_are_rejected_with_their_path_at_any_depth() {
        assert_eq!(
            err(r#"{"a":1,"a":2}"#),
            JsonError::new("a", Violation::DuplicateField)
        );
        assert_eq!(
            err(r#"{"o":[{"x":1},{"x":1,"x":1}]}"#),
            JsonError::new("o[1].x", Violation::DuplicateField)
        );
        assert_eq!(
            err(r#"{"a":{"b":[{"c":1,"c":2}]}}"#),
            JsonError::new("a.b[0].c", Violation::DuplicateField)
        );
    }

    #[test]
    fn well_formed_json_parses_to_the_same_value_as_serde_json() {
        for body in [
            r#"{"a":[1,-2,3.5,true,null,"s",{"b":{}}],"c":"\u00e9"}"#,
            r#"{"x":[1,2.5,-3,null,true,"s",{}],"y":{"z":"é"}}"#,
            r#"[18446744073709551615,-9223372036854775808,1e300]"#,
        ] {
            let expected: Value = serde_json::from_str(body).unwrap();
            assert_eq!(parse_body(body.as_bytes()).unwrap(), expected, "{body}");
        }
    }

    #[test]
    fn echoed_member_names_are_bounded_and_printable() {
        let long = "k".repeat(200);
        let p = member_path("", &long);
        assert_eq!(p.chars().count(), MAX_ECHOED_NAME + 1);
        assert!(p.ends_with('…'));
        assert_eq!(member_path("a", "x\ny"), "a.x?y");
        assert_eq!(
            member_path("", &"k".repeat(MAX_ECHOED_NAME)),
            "k".repeat(MAX_ECHOED_NAME)
        );
        assert_eq!(index_path("o", 3), "o[3]");
    }

    #[test]
    fn non_object_is_a_type_error_on_its_path() {
        let e = Fields::new(Value::Array(vec![]), "").err().unwrap();
        assert_eq!(
            e,
            JsonError::new("body", Violation::WrongType(JsonType::Object))
        );
        let e = Fields::new(Value::Null, "observations[3]").err().unwrap();
        assert_eq!(e.field, "observations[3]");
    }

    #[test]
    fn members_are_taken_with_their_types_and_null_is_absent() {
        let doc = json!({"s": "x", "n": 7, "a": [1], "z": null, "neg": -1, "o": {}});
        let mut f = Fields::new(doc, "p").unwrap();
        assert!(f.has("s") && !f.has("z") && !f.has("missing"));
        assert_eq!(f.reject_unknown(&["s", "n", "a", "z", "neg", "o"]), Ok(()));
        assert_eq!(
            f.reject_unknown(&["s", "n", "a", "z", "o"]),
            Err(JsonError::new("p.neg", Violation::UnknownField))
        );
        assert_eq!(f.optional_str("z"), Ok(None));
        assert_eq!(
            f.required_str("z"),
            Err(JsonError::new("p.z", Violation::Required))
        );
        assert_eq!(
            f.required_u64("neg"),
            Err(JsonError::new(
                "p.neg",
                Violation::WrongType(JsonType::NonNegativeInteger)
            ))
        );
        assert_eq!(
            f.required_array("o"),
            Err(JsonError::new("p.o", Violation::WrongType(JsonType::Array)))
        );
        assert_eq!(
            f.optional_str("n"),
            Err(JsonError::new(
                "p.n",
                Violation::WrongType(JsonType::String)
            ))
        );
        assert_eq!(f.required_array("a"), Ok(vec![json!(1)]));
        assert_eq!(f.required_str("s"), Ok("x".to_string()));
        // Taken members are gone: a second take is "required".
        assert_eq!(
            f.required_str("s"),
            Err(JsonError::new("p.s", Violation::Required))
        );
    }

    #[test]
    fn types_read_as_the_messages_say_them() {
        assert_eq!(JsonType::String.with_article(), "a string");
        assert_eq!(JsonType::Array.with_article(), "an array");
        assert_eq!(JsonType::Object.with_article(), "an object");
        assert_eq!(
            JsonType::NonNegativeInteger.with_article(),
            "a non-negative integer"
        );
    }
}
