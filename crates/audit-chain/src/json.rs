//! Strict JSON reading: duplicate and unknown members rejected, types
//! checked, errors naming the JSON path.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{AuditInputError, Violation};

pub(crate) const BODY: &str = "body";
const MAX_ECHOED_NAME: usize = 64;

/// Parses a body, rejecting duplicate members anywhere in it.
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, AuditInputError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let raw = Raw::deserialize(&mut de).and_then(|raw| de.end().map(|()| raw));
    match raw {
        Ok(raw) => raw.into_value(""),
        Err(e) => Err(AuditInputError::new(
            BODY,
            Violation::MalformedJson {
                line: e.line(),
                column: e.column(),
            },
        )),
    }
}

/// A JSON tree that keeps duplicate members, so they can be reported.
enum Raw {
    Value(Value),
    Array(Vec<Raw>),
    Object(Vec<(String, Raw)>),
}

impl Raw {
    fn into_value(self, path: &str) -> Result<Value, AuditInputError> {
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
                        return Err(AuditInputError::new(child, Violation::DuplicateField));
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

/// `parent.key` with the client's key shortened and made printable.
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

pub(crate) fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// The members of one JSON object, taken out as they are validated.
pub(crate) struct Fields {
    path: String,
    map: Map<String, Value>,
}

impl Fields {
    pub(crate) fn new(value: Value, path: &str) -> Result<Self, AuditInputError> {
        match value {
            Value::Object(map) => Ok(Self {
                path: path.to_owned(),
                map,
            }),
            _ => Err(AuditInputError::new(
                if path.is_empty() { BODY } else { path },
                Violation::WrongType("an object"),
            )),
        }
    }

    pub(crate) fn path_of(&self, key: &str) -> String {
        member_path(&self.path, key)
    }

    pub(crate) fn reject_unknown(&self, allowed: &[&str]) -> Result<(), AuditInputError> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(AuditInputError::new(
                self.path_of(k),
                Violation::UnknownField,
            )),
            None => Ok(()),
        }
    }

    pub(crate) fn discard(&mut self, key: &str) {
        self.map.remove(key);
    }

    /// Removes a member; `null` counts as absent.
    pub(crate) fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key).filter(|v| !v.is_null())
    }

    pub(crate) fn required(&mut self, key: &str) -> Result<Value, AuditInputError> {
        self.take(key)
            .ok_or_else(|| AuditInputError::new(self.path_of(key), Violation::Required))
    }

    pub(crate) fn required_str(&mut self, key: &str) -> Result<String, AuditInputError> {
        match self.required(key)? {
            Value::String(s) => Ok(s),
            _ => Err(AuditInputError::new(
                self.path_of(key),
                Violation::WrongType("a string"),
            )),
        }
    }

    pub(crate) fn required_u64(&mut self, key: &str) -> Result<u64, AuditInputError> {
        self.required(key)?.as_u64().ok_or_else(|| {
            AuditInputError::new(
                self.path_of(key),
                Violation::WrongType("a non-negative integer"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_found_at_any_depth() {
        let e = parse_body(br#"{"a":{"b":[{"c":1,"c":2}]}}"#).unwrap_err();
        assert_eq!(
            e,
            AuditInputError::new("a.b[0].c", Violation::DuplicateField)
        );
    }

    #[test]
    fn malformed_and_trailing_input() {
        for body in ["", "{", "{}{}", "[1,]"] {
            let e = parse_body(body.as_bytes()).unwrap_err();
            assert_eq!(e.field, "body");
            assert!(matches!(e.violation, Violation::MalformedJson { .. }));
        }
    }

    #[test]
    fn same_tree_as_serde_json() {
        let body = r#"{"x":[1,2.5,-3,null,true,"s",{}],"y":{"z":"é"}}"#;
        let expected: Value = serde_json::from_str(body).unwrap();
        assert_eq!(parse_body(body.as_bytes()).unwrap(), expected);
    }
}
