//! Property-based fuzzing of the strict reader on hostile input.
//!
//! Properties: arbitrary bytes never panic and fail only with a path that is
//! bounded and printable; an object text reports a duplicate member exactly
//! when it has one; without duplicates the tree equals `serde_json`'s.
//!
//! `PROPTEST_CASES` (default 256) bounds each property. Each property adds a
//! line `fuzz <target>: <n> cases` to `target/hardening/fuzz-strict-json.txt`.

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::Value;
use strict_json::{parse_body, JsonError, Violation, MAX_ECHOED_NAME};

#[path = "../../../tests/support/fuzz.rs"]
mod fuzz;

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-c]{1,2}",
        1 => any::<String>(),
        1 => (60usize..80).prop_map(|n| "k".repeat(n)),
        1 => "[\u{0}\n\t a]{0,3}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((key(), inner), 0..8)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// An object's text that may repeat a member name (a `Value` cannot).
fn object_text() -> impl Strategy<Value = (String, bool)> {
    vec((key(), json_value()), 0..10).prop_map(|members| {
        let mut seen = std::collections::HashSet::new();
        let duplicated = !members.iter().all(|(k, _)| seen.insert(k.clone()));
        let body = members
            .iter()
            .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
            .collect::<Vec<_>>()
            .join(",");
        (format!("{{{body}}}"), duplicated)
    })
}

fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..256),
        (json_value(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let text = v.to_string().into_bytes();
            let at = cut.index(text.len() + 1);
            text[..at].to_vec()
        }),
        object_text().prop_map(|(text, _)| text.into_bytes()),
    ]
}

fn check_path(e: &JsonError) -> Result<(), TestCaseError> {
    // One echoed name per level, each at most MAX_ECHOED_NAME + 1 characters.
    prop_assert!(e.field.chars().count() <= (MAX_ECHOED_NAME + 16) * 8);
    prop_assert!(!e.field.chars().any(char::is_control), "{e:?}");
    Ok(())
}

#[test]
fn hostile_bytes_never_panic_and_errors_have_printable_paths() {
    fuzz::run("strict_json::parse_body/bytes", hostile_bytes(), |body| {
        match parse_body(&body) {
            Ok(value) => {
                // Whatever is accepted is JSON serde_json accepts too.
                prop_assert_eq!(serde_json::from_slice::<Value>(&body).ok(), Some(value));
            }
            Err(e) => check_path(&e)?,
        }
        Ok(())
    });
}

#[test]
fn duplicates_are_reported_exactly_when_present() {
    fuzz::run(
        "strict_json::parse_body/duplicates",
        object_text(),
        |(text, duplicated)| {
            let result = parse_body(text.as_bytes());
            if duplicated {
                let e = result.expect_err("a duplicate member is refused");
                prop_assert_eq!(e.violation, Violation::DuplicateField);
                check_path(&e)?;
            } else {
                let expected: Value = serde_json::from_str(&text).unwrap();
                prop_assert_eq!(result.unwrap(), expected);
            }
            Ok(())
        },
    );
}
