//! Property-based fuzzing of what the audit register reads from callers:
//! the body of `POST /auditrecord` and the read routes' query strings.
//!
//! Properties: arbitrary bytes, JSON and query strings never panic and fail
//! with an `AuditInputError` that names a field and never echoes a value;
//! structurally generated valid inputs parse and round-trip through
//! `AuditInput::to_json`; only ids, fixed words and ASCII names get through.
//!
//! `PROPTEST_CASES` (default 256) bounds each property. Each property adds a
//! line `fuzz <target>: <n> cases` to `target/hardening/fuzz-audit-chain.txt`.

use audit_chain::params::{parse_records_query, parse_verify_query, MAX_LIMIT};
use audit_chain::{
    parse_audit_input, AuditInputError, Operation, Violation, MAX_CRITERIA, MAX_CRITERION_CHARS,
    MAX_NAME_CHARS,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Value};

/// Runs properties with a case budget and records how many cases ran.
#[path = "../../../tests/support/fuzz.rs"]
mod fuzz;

const KEYS: &[&str] = &[
    "sourceSystemName",
    "resource",
    "type",
    "id",
    "operation",
    "criteria",
    "actor",
    "correlationId",
    "createdDate",
    "hash",
];

// ---------------------------------------------------------------- generators

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,10}",
        "[ -~]{0,20}",
        select(
            &[
                "patient",
                "test",
                "Patient",
                "create",
                "read",
                "update",
                "search",
                "delete",
                "*",
                "",
                " patient-api",
                "patient-api "
            ][..]
        )
        .prop_map(String::from),
        "[A-Za-z0-9._*-]{1,8}[\\u{0}\\n\\r\\t\\u{7f}\\u{e9}/ ][A-Za-z0-9]{0,8}",
        (120usize..140).prop_map(|n| "a".repeat(n)),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 8, |inner| {
        let key = prop_oneof![4 => select(KEYS).prop_map(String::from), 1 => hostile_string()];
        prop_oneof![
            vec(inner.clone(), 0..25).prop_map(Value::Array),
            vec((key, inner), 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..200),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        // A valid shell around an arbitrary resource.
        (hostile_string(), json_value()).prop_map(|(s, r)| {
            json!({"sourceSystemName": s, "resource": r})
                .to_string()
                .into_bytes()
        }),
        // Repeated members, which `Value` cannot hold.
        (select(KEYS), json_value(), json_value())
            .prop_map(|(k, a, b)| { format!("{{\"{k}\":{a},\"{k}\":{b}}}").into_bytes() }),
        (1usize..2000).prop_map(|n| ("[".repeat(n) + &"]".repeat(n)).into_bytes()),
    ]
}

/// A valid input: `sourceSystemName`, `type`, `id`, `operation`, criteria names.
fn regex(r: &str) -> proptest::string::RegexGeneratorStrategy<String> {
    proptest::string::string_regex(r).expect("valid regex")
}

fn valid_input() -> impl Strategy<Value = Value> {
    let source = prop_oneof![
        regex("[!-~]"),
        regex(&format!("[!-~][ -~]{{0,{}}}[!-~]", MAX_NAME_CHARS - 2)),
        regex("patient-api"),
    ];
    let id = prop_oneof![
        regex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
        regex("\\*"),
        regex(&format!("[A-Za-z0-9._*-]{{1,{MAX_NAME_CHARS}}}")),
    ];
    let criteria = proptest::option::of(
        proptest::sample::subsequence(
            vec![
                "id",
                "firstName",
                "lastName",
                "fullName",
                "gender",
                "dateOfBirthFrom",
                "dateOfBirthTo",
                "postCode",
                "insuranceNumber",
                "preferredContactNumber",
                "a",
                "Z",
            ],
            0..=12,
        )
        .prop_shuffle(),
    );
    let long_criterion = regex(&format!("[A-Za-z]{{{MAX_CRITERION_CHARS}}}"));
    (
        source,
        select(&["patient", "test"][..]),
        id,
        select(&["create", "read", "update", "search"][..]),
        criteria,
        proptest::option::of(long_criterion),
    )
        .prop_map(|(source, kind, id, operation, criteria, long)| {
            let mut resource = json!({"type": kind, "id": id, "operation": operation});
            if operation == "search" {
                if let Some(mut names) = criteria {
                    names.truncate(MAX_CRITERIA - 1);
                    let mut names: Vec<String> = names.into_iter().map(String::from).collect();
                    if let Some(long) = long {
                        if !names.contains(&long) {
                            names.push(long);
                        }
                    }
                    resource["criteria"] = json!(names);
                }
            }
            json!({"sourceSystemName": source, "resource": resource})
        })
}

fn check_error(e: &AuditInputError, secret: Option<&str>) -> Result<(), TestCaseError> {
    // F-records-1 applies here too: a member named "" is reported with an
    // empty field path; tolerated until fixed unless FUZZ_KNOWN_FINDINGS=1.
    let known_findings = std::env::var("FUZZ_KNOWN_FINDINGS").is_ok_and(|v| v == "1");
    prop_assert!(
        !e.field.is_empty()
            || (!known_findings
                && matches!(
                    e.violation,
                    Violation::UnknownField | Violation::DuplicateField
                )),
        "error without a field: {e:?}"
    );
    prop_assert!(
        !e.field.chars().any(char::is_control),
        "control character in field path"
    );
    let message = e.message();
    if let Some(secret) = secret {
        prop_assert!(!message.contains(secret), "error echoes a value: {message}");
    }
    Ok(())
}

// ---------------------------------------------------------------- properties

#[test]
fn audit_input_rejects_hostile_bytes_with_typed_errors() {
    fuzz::run(
        "audit_chain::parse_audit_input/bytes+json",
        hostile_bytes(),
        |body| {
            match parse_audit_input(&body) {
                Err(e) => check_error(&e, None)?,
                Ok(input) => {
                    // Whatever got through holds only ASCII names, ids and words.
                    let text = input.to_json().to_string();
                    prop_assert!(text.is_ascii(), "non-ASCII accepted: {text}");
                    prop_assert!(
                        !text.bytes().any(|b| b < 0x20 || b == 0x7f),
                        "control character accepted"
                    );
                    prop_assert_eq!(parse_audit_input(text.as_bytes()), Ok(input));
                }
            }
            Ok(())
        },
    );
}

#[test]
fn valid_audit_inputs_parse_and_round_trip() {
    fuzz::run(
        "audit_chain::parse_audit_input/valid-roundtrip",
        valid_input(),
        |body| {
            let input = parse_audit_input(body.to_string().as_bytes())
                .map_err(|e| TestCaseError::fail(format!("valid input refused: {e:?}")))?;
            prop_assert_eq!(
                input.source_system_name.as_str(),
                body["sourceSystemName"].as_str().unwrap()
            );
            prop_assert_eq!(
                input.resource.kind().as_str(),
                body["resource"]["type"].as_str().unwrap()
            );
            prop_assert_eq!(
                input.resource.id().as_str(),
                body["resource"]["id"].as_str().unwrap()
            );
            prop_assert_eq!(
                input.resource.operation().as_str(),
                body["resource"]["operation"].as_str().unwrap()
            );
            let names: Vec<&str> = input
                .resource
                .criteria()
                .iter()
                .map(|c| c.as_str())
                .collect();
            let given: Vec<&str> = body["resource"]["criteria"]
                .as_array()
                .map_or_else(Vec::new, |a| {
                    a.iter().map(|v| v.as_str().unwrap()).collect()
                });
            prop_assert_eq!(names, given);
            // to_json is the inverse of parsing; a search always lists its criteria.
            let shown = input.to_json();
            prop_assert_eq!(
                parse_audit_input(shown.to_string().as_bytes()),
                Ok(input.clone())
            );
            prop_assert_eq!(
                shown["resource"].get("criteria").is_some(),
                input.resource.operation() == Operation::Search
            );
            Ok(())
        },
    );
}

#[test]
fn one_defect_gives_exactly_its_error() {
    let defect = prop_oneof![
        Just((
            "/sourceSystemName",
            json!(""),
            "sourceSystemName",
            Violation::Empty
        )),
        "[!-~]{1,5}[\\u{0}-\\u{1f}\\u{7f}\\u{e9}\\u{202e}][!-~]{1,5}".prop_map(|s| (
            "/sourceSystemName",
            json!(s),
            "sourceSystemName",
            Violation::InvalidCharacters(
                "printable ASCII characters, not beginning or ending with a space"
            )
        )),
        " [!-~]{1,5}|[!-~]{1,5} ".prop_map(|s| (
            "/sourceSystemName",
            json!(s),
            "sourceSystemName",
            Violation::InvalidCharacters(
                "printable ASCII characters, not beginning or ending with a space"
            )
        )),
        Just((
            "/sourceSystemName",
            json!("a".repeat(MAX_NAME_CHARS + 1)),
            "sourceSystemName",
            Violation::TooLong {
                max: MAX_NAME_CHARS
            }
        )),
        Just((
            "/sourceSystemName",
            json!(7),
            "sourceSystemName",
            Violation::WrongType("a string")
        )),
        Just(("/resource", json!(null), "resource", Violation::Required)),
        Just((
            "/resource",
            json!("patient"),
            "resource",
            Violation::WrongType("an object")
        )),
        "[a-z]{1,6}|Patient|TEST"
            .prop_filter("a type", |t| t != "patient" && t != "test")
            .prop_map(|t| (
                "/resource/type",
                json!(t),
                "resource.type",
                Violation::NotOneOf(&["patient", "test"])
            )),
        "[a-z]{1,7}|READ"
            .prop_filter("an operation", |o| !["create", "read", "update", "search"]
                .contains(&o.as_str()))
            .prop_map(|o| (
                "/resource/operation",
                json!(o),
                "resource.operation",
                Violation::NotOneOf(&["create", "read", "update", "search"])
            )),
        "[a-z0-9]{0,5}[/ {}\"%:;,\\u{e9}][a-z0-9]{0,5}".prop_map(|id| (
            "/resource/id",
            json!(id),
            "resource.id",
            Violation::InvalidCharacters("letters, digits and - _ . *")
        )),
        Just((
            "/resource/id",
            json!("a".repeat(MAX_NAME_CHARS + 1)),
            "resource.id",
            Violation::TooLong {
                max: MAX_NAME_CHARS
            }
        )),
        Just((
            "/resource/criteria",
            json!(["firstName"]),
            "resource.criteria",
            Violation::CriteriaNotAllowed
        )),
        "x[A-Za-z]{0,5}".prop_map(|k| (
            "/resource/extra",
            json!(k),
            "resource.extra",
            Violation::UnknownField
        )),
        Just(("/actor", json!("someone"), "actor", Violation::UnknownField)),
        Just((
            "/createdDate",
            json!("2024-01-01T00:00:00Z"),
            "createdDate",
            Violation::UnknownField
        )),
    ];
    let strategy = (valid_input(), defect);
    fuzz::run(
        "audit_chain::parse_audit_input/one-defect",
        strategy,
        |(mut body, (pointer, value, field, violation))| {
            if pointer == "/resource/criteria" && body["resource"]["operation"] == "search" {
                body["resource"]["operation"] = json!("read");
            }
            let (parent, member) = pointer.rsplit_once('/').unwrap();
            // `/resource/extra` adds an unknown member whose name is the value.
            let (member, expected_field, value) = if member == "extra" {
                let name = value.as_str().unwrap().to_string();
                (name.clone(), format!("resource.{name}"), json!(1))
            } else {
                (member.to_string(), field.to_string(), value)
            };
            let target = if parent.is_empty() {
                &mut body
            } else {
                body.pointer_mut(parent).unwrap()
            };
            if value.is_null() {
                target.as_object_mut().unwrap().remove(&member);
            } else {
                target[&member] = value;
            }
            let e = parse_audit_input(body.to_string().as_bytes())
                .expect_err("defective input accepted");
            prop_assert_eq!(e.field, expected_field);
            prop_assert_eq!(e.violation, violation);
            Ok(())
        },
    );
}

#[test]
fn criteria_rules_hold() {
    let strategy = vec(
        prop_oneof![4 => "[A-Za-z]{1,8}", 1 => "\\PC{0,4}", 1 => Just(String::new())],
        0..30,
    );
    fuzz::run(
        "audit_chain::parse_audit_input/criteria",
        strategy,
        |names| {
            let body = json!({"sourceSystemName": "patient-api",
                          "resource": {"type": "patient", "id": "*", "operation": "search", "criteria": names}});
            let valid_names = names.iter().all(|n| {
                !n.is_empty()
                    && n.len() <= MAX_CRITERION_CHARS
                    && n.bytes().all(|b| b.is_ascii_alphabetic())
            });
            let unique = names
                .iter()
                .enumerate()
                .all(|(i, n)| !names[..i].contains(n));
            match parse_audit_input(body.to_string().as_bytes()) {
                Ok(input) => {
                    prop_assert!(
                        names.len() <= MAX_CRITERIA && valid_names && unique,
                        "accepted {names:?}"
                    );
                    prop_assert_eq!(input.resource.criteria().len(), names.len());
                }
                Err(e) => {
                    prop_assert!(
                        names.len() > MAX_CRITERIA || !valid_names || !unique,
                        "refused {names:?}: {e:?}"
                    );
                    prop_assert!(e.field.starts_with("resource.criteria"), "{}", e.field);
                    if names.len() > MAX_CRITERIA {
                        prop_assert_eq!(e.violation, Violation::TooManyItems { max: MAX_CRITERIA });
                    }
                }
            }
            Ok(())
        },
    );
}

#[test]
fn values_never_appear_in_errors() {
    let strategy = (
        valid_input(),
        "[A-Z]{12}",
        select(&["sourceSystemName", "type", "id", "operation"][..]),
        "[ -~]{0,3}",
    );
    fuzz::run(
        "audit_chain::errors-never-echo-values",
        strategy,
        |(mut body, tag, field, noise)| {
            let value = json!(format!("{noise}{tag}{noise}\u{1}"));
            if field == "sourceSystemName" {
                body[field] = value;
            } else {
                body["resource"][field] = value;
            }
            let e = parse_audit_input(body.to_string().as_bytes())
                .expect_err("accepted a control character");
            check_error(&e, Some(&tag))
        },
    );
}

/// F-records-1 (same pattern), kept as a reproducer until it is fixed.
#[test]
#[ignore = "known finding F-records-1: a member named \"\" gives an error with an empty field"]
fn known_finding_empty_member_name_is_named_in_the_error() {
    for body in [
        &b"{\"\": 1}"[..],
        br#"{"sourceSystemName": "x", "resource": {"": 1}}"#,
    ] {
        let e = parse_audit_input(body).unwrap_err();
        assert!(
            !e.field.is_empty() && !e.field.ends_with('.'),
            "{e:?}: {}",
            e.message()
        );
    }
}

// ---------------------------------------------------------------- read routes' query strings

fn query_string() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        4 => select(&["resourceType", "resourceId", "from", "to", "limit", "subscription-key", "resource%54ype"][..]).prop_map(String::from),
        1 => "[%0-9A-Za-z+]{0,8}",
    ];
    let value = prop_oneof![
        select(
            &[
                "patient",
                "test",
                "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
                "*",
                "1",
                "1000",
                "1001",
                "0",
                "+5",
                "-1",
                "2024-01-01T00:00:00Z",
                "2024-01-01T00:00:00.0000001+02:00",
                "9999-12-31T23:59:59.9999999Z",
                "0000-01-01T00:00:00Z",
                "0001-01-01T00:00:00.0000001-00:01",
                "%zz",
                "%",
                "%C3%28",
                ""
            ][..]
        )
        .prop_map(String::from),
        "[%0-9A-Za-z:.+-]{0,30}",
        any::<String>().prop_map(|s| s.replace(['&', '='], "")),
    ];
    prop_oneof![
        vec((name, value), 0..8).prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        }),
        any::<String>(),
    ]
}

#[test]
fn read_route_queries_never_panic() {
    fuzz::run(
        "audit_chain::params::parse_records_query+parse_verify_query",
        query_string(),
        |query| {
            match parse_records_query(&query) {
                Ok(q) => {
                    prop_assert!((1..=MAX_LIMIT).contains(&q.limit));
                    if let (Some(from), Some(to)) = (q.from, q.to) {
                        prop_assert!(from <= to);
                    }
                }
                Err(e) => check_error(&e, None)?,
            }
            if let Err(e) = parse_verify_query(&query) {
                check_error(&e, None)?;
            }
            Ok(())
        },
    );
}
