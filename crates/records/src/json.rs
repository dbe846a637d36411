//! Strict JSON reading: duplicate members rejected, unknown members rejected,
//! types checked, every error naming its JSON path.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{JsonType, ValidationError, Violation};

/// Field name used for errors about the body as a whole.
pub(crate) const BODY: &str = "body";

/// Longest member name echoed back in an error; longer names are cut, so a
/// hostile client cannot make the error body arbitrarily large.
const MAX_ECHOED_NAME: usize = 64;

/// Parses a request body, rejecting duplicate members anywhere in it.
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, ValidationError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let raw = Raw::deserialize(&mut de).and_then(|raw| de.end().map(|()| raw));
    match raw {
        Ok(raw) => raw.into_value(""),
        Err(e) => Err(ValidationError::new(
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
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Raw>),
    Object(Vec<(String, Raw)>),
}

impl Raw {
    fn into_value(self, path: &str) -> Result<Value, ValidationError> {
        Ok(match self {
            Raw::Null => Value::Null,
            Raw::Bool(b) => Value::Bool(b),
            Raw::Number(n) => Value::Number(n),
            Raw::String(s) => Value::String(s),
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
                        return Err(ValidationError::new(child, Violation::DuplicateField));
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
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
        serde_json::Number::from_f64(v)
            .map(Raw::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::String(v))
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
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
        while let Some((key, value)) = map.next_entry::<String, Raw>()? {
            members.push((key, value));
        }
        Ok(Raw::Object(members))
    }
}

/// `parent.key`, or `key` at the top level. The key is shortened and its
/// control characters replaced, since it comes from the client.
pub(crate) fn member_path(parent: &str, key: &str) -> String {
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
pub(crate) fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// The members of one JSON object, taken out one by one as they are validated.
pub(crate) struct Fields {
    path: String,
    map: Map<String, Value>,
}

impl Fields {
    /// `value` must be an object; `path` is its JSON path ("" for the body).
    pub(crate) fn new(value: Value, path: &str) -> Result<Self, ValidationError> {
        match value {
            Value::Object(map) => Ok(Self {
                path: path.to_owned(),
                map,
            }),
            _ => {
                let field = if path.is_empty() { BODY } else { path };
                Err(ValidationError::new(
                    field,
                    Violation::WrongType(JsonType::Object),
                ))
            }
        }
    }

    pub(crate) fn path_of(&self, key: &str) -> String {
        member_path(&self.path, key)
    }

    /// Whether `key` is present with a value other than `null`.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    /// Fails on the first member (in name order) not in `allowed`.
    pub(crate) fn reject_unknown(&self, allowed: &[&str]) -> Result<(), ValidationError> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(unknown) => Err(ValidationError::new(
                self.path_of(unknown),
                Violation::UnknownField,
            )),
            None => Ok(()),
        }
    }

    /// Removes and returns a member; `null` counts as absent.
    pub(crate) fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key).filter(|v| !v.is_null())
    }

    /// Removes a member that is ignored (such as a store system property).
    pub(crate) fn discard(&mut self, key: &str) {
        self.map.remove(key);
    }

    pub(crate) fn optional_str(&mut self, key: &str) -> Result<Option<String>, ValidationError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ValidationError::new(
                self.path_of(key),
                Violation::WrongType(JsonType::String),
            )),
        }
    }

    pub(crate) fn required_str(&mut self, key: &str) -> Result<String, ValidationError> {
        self.optional_str(key)?
            .ok_or_else(|| ValidationError::new(self.path_of(key), Violation::Required))
    }

    pub(crate) fn required_array(&mut self, key: &str) -> Result<Vec<Value>, ValidationError> {
        match self.take(key) {
            None => Err(ValidationError::new(self.path_of(key), Violation::Required)),
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(ValidationError::new(
                self.path_of(key),
                Violation::WrongType(JsonType::Array),
            )),
        }
    }
}

/// How strictly a string is checked beyond its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextStyle {
    /// Names, codes and numbers that are searched by exact match: no control
    /// characters, no leading or trailing whitespace.
    Identifying,
    /// Free text kept verbatim: tab, CR and LF allowed, not blank.
    Free,
}

/// The rules every string field follows: not empty (as the original API's
/// validator required), at most `max` characters, and the style's rules.
pub(crate) fn check_text(
    field: &str,
    s: &str,
    max: usize,
    style: TextStyle,
) -> Result<(), ValidationError> {
    let fail = |v| Err(ValidationError::new(field, v));
    if s.is_empty() {
        return fail(Violation::Empty);
    }
    match style {
        TextStyle::Identifying => {
            if s.chars().any(char::is_control) {
                return fail(Violation::ControlCharacter);
            }
            if s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
                return fail(Violation::SurroundingWhitespace);
            }
        }
        TextStyle::Free => {
            if s.chars()
                .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
            {
                return fail(Violation::ControlCharacter);
            }
            if s.chars().all(char::is_whitespace) {
                return fail(Violation::Blank);
            }
        }
    }
    if s.chars().count() > max {
        return fail(Violation::TooLong { max });
    }
    Ok(())
}

/// Defines a validated string newtype. Its `Debug` never shows the value
/// (it may be patient data); use `as_str` where the value is needed.
macro_rules! text_type {
    ($(#[$meta:meta])* $name:ident, field = $field:literal, max = $max:expr, style = $style:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// Most characters allowed.
            pub const MAX_CHARS: usize = $max;

            /// Validates a value of this field.
            pub fn parse(value: &str) -> Result<Self, $crate::ValidationError> {
                Self::parse_at($field, value.to_owned())
            }

            /// Validates a value found at JSON path `field`.
            pub(crate) fn parse_at(
                field: &str,
                value: String,
            ) -> Result<Self, $crate::ValidationError> {
                $crate::json::check_text(field, &value, $max, $style)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, concat!(stringify!($name), "(<{} chars>)"), self.0.chars().count())
            }
        }
    };
}
pub(crate) use text_type;

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> ValidationError {
        parse_body(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn malformed_json_is_reported_on_body() {
        for body in ["", "{", "{\"a\":}", "{} x", "\u{feff}{}", "nul"] {
            let e = err(body);
            assert_eq!(e.field, "body", "{body:?}");
            assert!(
                matches!(e.violation, Violation::MalformedJson { .. }),
                "{body:?}"
            );
        }
    }

    #[test]
    fn duplicate_members_are_rejected_with_their_path() {
        assert_eq!(
            err(r#"{"a":1,"a":2}"#),
            ValidationError::new("a", Violation::DuplicateField)
        );
        assert_eq!(
            err(r#"{"o":[{"x":1},{"x":1,"x":1}]}"#),
            ValidationError::new("o[1].x", Violation::DuplicateField)
        );
    }

    #[test]
    fn well_formed_json_parses_to_the_same_value_as_serde_json() {
        let body = r#"{"a":[1,-2,3.5,true,null,"s",{"b":{}}],"c":"\u00e9"}"#;
        let expected: Value = serde_json::from_str(body).unwrap();
        assert_eq!(parse_body(body.as_bytes()).unwrap(), expected);
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
    }

    #[test]
    fn non_object_is_a_type_error_on_its_path() {
        let e = Fields::new(Value::Array(vec![]), "").err().unwrap();
        assert_eq!(
            e,
            ValidationError::new("body", Violation::WrongType(JsonType::Object))
        );
        let e = Fields::new(Value::Null, "observations[3]").err().unwrap();
        assert_eq!(e.field, "observations[3]");
    }

    #[test]
    fn text_rules() {
        use TextStyle::*;
        let v = |s: &str, style| check_text("f", s, 5, style).map_err(|e| e.violation);
        assert_eq!(v("", Identifying), Err(Violation::Empty));
        assert_eq!(v("", Free), Err(Violation::Empty));
        assert_eq!(v(" a", Identifying), Err(Violation::SurroundingWhitespace));
        assert_eq!(
            v("a\u{a0}", Identifying),
            Err(Violation::SurroundingWhitespace)
        );
        assert_eq!(v("a b", Identifying), Ok(()));
        assert_eq!(v("a\tb", Identifying), Err(Violation::ControlCharacter));
        assert_eq!(v("a\tb\n", Free), Ok(()));
        assert_eq!(v("a\u{7}", Free), Err(Violation::ControlCharacter));
        assert_eq!(v(" \n ", Free), Err(Violation::Blank));
        assert_eq!(v(" a ", Free), Ok(()));
        // Characters, not bytes: five two-byte characters fit, six do not.
        assert_eq!(v("ééééé", Identifying), Ok(()));
        assert_eq!(v("éééééé", Identifying), Err(Violation::TooLong { max: 5 }));
    }
}
