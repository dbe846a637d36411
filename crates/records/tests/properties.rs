//! Property-based fuzzing of the parsers that take a client's bytes:
//! patient and test bodies, search criteria.
//!
//! Properties: arbitrary bytes and arbitrary JSON never panic and fail only
//! with a `ValidationError` that names a field and never echoes a value;
//! structurally generated valid bodies parse and round-trip through the API
//! and store representations; one targeted defect in a valid body fails with
//! exactly that field and rule.
//!
//! `PROPTEST_CASES` (default 256) bounds each property. Each property adds a
//! line `fuzz <target>: <n> cases` to `target/hardening/fuzz-records.txt`.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Map, Value};

use records::{
    lab_test_from_document, lab_test_to_document, lab_test_to_json, parse_new_patient,
    parse_new_test, parse_patient_update, parse_search, patient_from_document, patient_to_document,
    patient_to_json, DateOfBirth, JsonType, LabTest, Patient, PatientId, TestId, Timestamp,
    ValidationError, Violation,
};

/// Runs properties with a case budget and records how many cases ran.
#[path = "../../../tests/support/fuzz.rs"]
mod fuzz;

const PATIENT_FIELDS: &[&str] = &[
    "id",
    "firstName",
    "lastName",
    "fullName",
    "gender",
    "dateOfBirth",
    "postCode",
    "insuranceNumber",
    "preferredContactNumber",
    "lastUpdated",
];
const TEST_FIELDS: &[&str] = &[
    "id",
    "patientId",
    "performer",
    "orderReference",
    "observations",
    "lastUpdated",
    "code",
    "measurement",
    "interpretation",
    "issued",
    "status",
];
const SEARCH_FIELDS: &[&str] = &[
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
];

// ---------------------------------------------------------------- generators

/// Strings a hostile client would try: anything, near-miss ids and dates,
/// whitespace and control characters, long ones.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,12}",
        "[0-9a-fA-F-]{30,40}",
        "[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?",
        "[ \t\r\n\u{0}\u{1f}\u{7f}\u{85}\u{a0}\u{2028}]{0,3}[a-z]{0,3}[ \t\r\n\u{0}]{0,3}",
        select(&["male", "female", "other", "unknown", "Male", "", " ", "null"][..])
            .prop_map(String::from),
        (1usize..1100).prop_map(|n| "x".repeat(n)),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2})",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN and infinities become null
    ]
}

/// Arbitrary JSON whose object keys are mostly the API's own member names.
fn json_value(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((key(keys), inner), 0..10)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

fn key(keys: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(keys).prop_map(String::from),
        1 => hostile_string(),
    ]
}

/// A JSON object's text, allowing repeated member names (which `Value` cannot hold).
fn object_text(keys: &'static [&'static str]) -> impl Strategy<Value = (String, bool)> {
    vec((key(keys), json_value(keys)), 0..12).prop_map(|members| {
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

/// Bytes: random, or JSON-ish text cut and spliced.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..256),
        json_value(PATIENT_FIELDS).prop_map(|v| v.to_string().into_bytes()),
        (json_value(TEST_FIELDS), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let text = v.to_string().into_bytes();
            let at = cut.index(text.len() + 1);
            text[..at].to_vec()
        }),
        (1usize..3000, any::<bool>()).prop_map(|(depth, arrays)| {
            let (open, close) = if arrays { ("[", "]") } else { ("{\"a\":", "}") };
            let mut s = open.repeat(depth);
            s.push('1');
            s.push_str(&close.repeat(depth));
            s.into_bytes()
        }),
    ]
}

/// Text the identifying fields accept: no control characters, no
/// surrounding whitespace, 1..=`max` characters.
fn identifying(max: usize) -> impl Strategy<Value = String> {
    let middle = max.saturating_sub(2).min(70);
    let regex = |r: String| proptest::string::string_regex(&r).expect("valid regex");
    prop_oneof![
        regex("[^\\p{C}\\s]".into()),
        regex(format!(
            "[^\\p{{C}}\\s][^\\p{{C}}]{{0,{middle}}}[^\\p{{C}}\\s]"
        )),
        regex(format!(
            "[A-Za-z][A-Za-z '.-]{{0,{}}}[A-Za-z]",
            middle.min(20)
        )),
        Just("x".repeat(max)).boxed(),
    ]
}

/// Free text (test fields): tab, CR and LF allowed, not blank, at most 1024.
fn free_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[\t\r\n ]{0,3}[^\\p{C}\\s][^\\p{C}]{0,40}[\t\r\n ]{0,3}",
        "[A-Za-z0-9 ./%-]{0,10}[A-Za-z0-9]",
        Just("é".repeat(1024)),
    ]
}

fn date_of_birth() -> impl Strategy<Value = String> {
    (1u16..=9999, 1u8..=12, 1u8..=31, 0u8..3).prop_map(|(y, m, d, precision)| {
        let days = time::Month::try_from(m).unwrap().length(i32::from(y));
        match precision {
            0 => format!("{y:04}"),
            1 => format!("{y:04}-{m:02}"),
            _ => format!("{y:04}-{m:02}-{:02}", d.min(days)),
        }
    })
}

fn patient_id() -> impl Strategy<Value = PatientId> {
    any::<u128>().prop_map(|n| PatientId::from_uuid(uuid::Uuid::from_u128(n)))
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (Timestamp::MIN_UNIX_MILLIS..=Timestamp::MAX_UNIX_MILLIS)
        .prop_map(|ms| Timestamp::from_unix_millis(ms).unwrap())
}

/// A valid `POST /patient` body, built member by member.
fn patient_body() -> impl Strategy<Value = Map<String, Value>> {
    (
        identifying(64),
        proptest::option::of(identifying(64)),
        proptest::option::of(identifying(128)),
        select(&["male", "female", "other", "unknown"][..]),
        date_of_birth(),
        "[^\\p{C}\\s][^\\p{C}]{2}[^\\p{C}\\s]",
        proptest::option::of(identifying(128)),
        proptest::option::of(identifying(128)),
    )
        .prop_map(|(first, last, full, gender, dob, post, ins, contact)| {
            let mut m = Map::new();
            m.insert("firstName".into(), json!(first));
            let mut opt = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    m.insert(k.into(), json!(v));
                }
            };
            opt("lastName", last);
            opt("fullName", full);
            opt("insuranceNumber", ins);
            opt("preferredContactNumber", contact);
            m.insert("gender".into(), json!(gender));
            m.insert("dateOfBirth".into(), json!(dob));
            m.insert("postCode".into(), json!(post));
            m
        })
}

fn observation() -> impl Strategy<Value = Value> {
    (
        free_text(),
        free_text(),
        free_text(),
        free_text(),
        timestamp(),
        free_text(),
    )
        .prop_map(|(id, code, measurement, interpretation, issued, status)| {
            json!({"id": id, "code": code, "measurement": measurement,
                   "interpretation": interpretation, "issued": issued.to_string(), "status": status})
        })
}

/// A valid `POST /patient/{id}/tests` body.
fn test_body() -> impl Strategy<Value = Map<String, Value>> {
    (free_text(), free_text(), vec(observation(), 0..4)).prop_map(|(performer, order, obs)| {
        let mut m = Map::new();
        m.insert("performer".into(), json!(performer));
        m.insert("orderReference".into(), json!(order));
        m.insert("observations".into(), Value::Array(obs));
        m
    })
}

fn bytes(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// What every error must look like: a field path and a message that does
/// not echo `secret` (a value the body carried).
fn check_error(e: &ValidationError, secret: Option<&str>) -> Result<(), TestCaseError> {
    // F-records-1: a member named "" is reported with an empty field path;
    // tolerated for unknown and duplicate members until fixed.
    prop_assert!(
        !e.field.is_empty()
            || (!include_known_findings()
                && matches!(
                    e.violation,
                    Violation::UnknownField | Violation::DuplicateField
                )),
        "error without a field: {e:?}"
    );
    prop_assert!(
        e.field.chars().count() <= 64 * 8 + 64,
        "field path too long"
    );
    prop_assert!(
        !e.field.chars().any(char::is_control),
        "control character in field path"
    );
    let message = e.message();
    prop_assert!(!message.is_empty());
    if let Some(secret) = secret {
        prop_assert!(!message.contains(secret), "error echoes a value: {message}");
    }
    Ok(())
}

/// Known findings still open are tolerated, so CI stays a signal for new
/// ones; `FUZZ_KNOWN_FINDINGS=1` makes the properties strict again.
fn include_known_findings() -> bool {
    std::env::var("FUZZ_KNOWN_FINDINGS").is_ok_and(|v| v == "1")
}

/// F-records-1, kept as a reproducer until it is fixed: the error for a
/// member named "" names no field (detail " is not a known field").
#[test]
#[ignore = "known finding F-records-1: a member named \"\" gives an error with an empty field"]
fn known_finding_empty_member_name_is_named_in_the_error() {
    let route = PatientId::from_uuid(uuid::Uuid::from_u128(7));
    for e in [
        parse_new_patient(b"{\"\": 1}").unwrap_err(),
        parse_patient_update(&route, b"{\"\": 1}").unwrap_err(),
        parse_new_test(&route, b"{\"\": 1}").unwrap_err(),
        parse_search(b"{\"\": 1}").unwrap_err(),
    ] {
        assert!(!e.field.is_empty(), "{e:?}: {}", e.message());
    }
}

// ---------------------------------------------------------------- patients

#[test]
fn patient_parsers_reject_hostile_bytes_with_typed_errors() {
    let route = PatientId::from_uuid(uuid::Uuid::from_u128(7));
    fuzz::run(
        "records::parse_new_patient+update/bytes",
        hostile_bytes(),
        |body| {
            if let Err(e) = parse_new_patient(&body) {
                check_error(&e, None)?;
            }
            if let Err(e) = parse_patient_update(&route, &body) {
                check_error(&e, None)?;
            }
            Ok(())
        },
    );
}

#[test]
fn patient_parsers_on_arbitrary_json_objects() {
    let route = PatientId::from_uuid(uuid::Uuid::from_u128(7));
    fuzz::run(
        "records::parse_new_patient+update/json",
        object_text(PATIENT_FIELDS),
        |(text, duplicated)| {
            for result in [
                parse_new_patient(text.as_bytes()),
                parse_patient_update(&route, text.as_bytes()),
            ] {
                match result {
                    Ok(_) => prop_assert!(!duplicated, "duplicate members accepted"),
                    Err(e) => {
                        check_error(&e, None)?;
                        if duplicated {
                            prop_assert_eq!(e.violation, Violation::DuplicateField);
                        }
                    }
                }
            }
            Ok(())
        },
    );
}

#[test]
fn valid_patients_parse_and_round_trip() {
    let strategy = (patient_body(), patient_id(), timestamp());
    fuzz::run(
        "records::parse_new_patient/valid-roundtrip",
        strategy,
        |(body, id, at)| {
            let fields = parse_new_patient(&bytes(&Value::Object(body.clone())))
                .map_err(|e| TestCaseError::fail(format!("valid body refused: {e}")))?;
            let patient = Patient {
                id,
                fields: fields.clone(),
                last_updated: at,
            };
            // The API representation goes back through PUT unchanged...
            let shown = patient_to_json(&patient);
            prop_assert_eq!(
                parse_patient_update(&id, &bytes(&shown)),
                Ok(fields.clone())
            );
            // ...shows exactly what was sent, plus id and lastUpdated...
            let mut expected = body;
            expected.insert("id".into(), json!(id.to_string()));
            expected.insert("lastUpdated".into(), json!(at.to_string()));
            prop_assert_eq!(shown, Value::Object(expected));
            // ...and the store document reads back as the same patient.
            prop_assert_eq!(
                patient_from_document(patient_to_document(&patient)),
                Ok(patient)
            );
            Ok(())
        },
    );
}

/// One defect planted in a valid body, and the error it must produce.
#[derive(Debug, Clone)]
enum Defect {
    Remove(&'static str),
    Set(String, Value),
}

fn set(field: &str, value: Value, violation: Violation) -> (Defect, String, Violation) {
    (
        Defect::Set(field.to_owned(), value),
        field.to_owned(),
        violation,
    )
}

fn patient_defect() -> impl Strategy<Value = (Defect, String, Violation)> {
    let required = select(&["firstName", "gender", "dateOfBirth", "postCode"][..]);
    let text_field = select(
        &[
            "firstName",
            "lastName",
            "fullName",
            "insuranceNumber",
            "preferredContactNumber",
        ][..],
    );
    prop_oneof![
        required.clone().prop_map(|f| (Defect::Remove(f), f.to_owned(), Violation::Required)),
        required.prop_map(|f| set(f, Value::Null, Violation::Required)),
        (text_field.clone(), number()).prop_map(|(f, n)| set(f, n, Violation::WrongType(JsonType::String))),
        text_field.clone().prop_map(|f| set(f, json!(""), Violation::Empty)),
        (text_field.clone(), "[ \u{a0}\u{2003}\u{3000}]", "[a-z]{1,5}", any::<bool>()).prop_map(|(f, ws, s, front)| {
            let value = if front { format!("{ws}{s}") } else { format!("{s}{ws}") };
            set(f, json!(value), Violation::SurroundingWhitespace)
        }),
        (text_field, "[\u{0}-\u{1f}\u{7f}-\u{9f}]", "[a-z]{1,5}")
            .prop_map(|(f, c, s)| set(f, json!(format!("a{c}{s}")), Violation::ControlCharacter)),
        Just(set("firstName", json!("x".repeat(65)), Violation::TooLong { max: 64 })),
        Just(set("fullName", json!("ü".repeat(129)), Violation::TooLong { max: 128 })),
        "[a-z]{8}|[A-Z][a-z]{3}|M|F|male |".prop_map(|g| set("gender", json!(g),
            Violation::NotOneOf(&["male", "female", "other", "unknown"]))),
        "x[a-z]{1,3}[0-9]{0,3}".prop_map(|k| set(&k, json!(1), Violation::UnknownField)),
        "[^\\p{C}\\s]{1,3}|[^\\p{C}\\s]{5,8}".prop_map(|p| set("postCode", json!(p), Violation::WrongLength { exact: 4 })),
        Just(set("dateOfBirth", json!("1980-02-30"), Violation::NoSuchDay)),
        Just(set("dateOfBirth", json!("1900-02-29"), Violation::NoSuchDay)),
        Just(set("dateOfBirth", json!("0000"), Violation::YearOutOfRange)),
        Just(set("dateOfBirth", json!("1980-13"), Violation::MonthOutOfRange)),
        Just(set("dateOfBirth", json!("1980-01-32"), Violation::DayOutOfRange)),
        "[0-9]{1,3}|[0-9]{5}|[0-9]{4}/[0-9]{2}|[0-9]{4}-[0-9]|[0-9]{4}-[0-9]{2}-[0-9]{3}|[0-9]{4}-[0-9]{2}T|[٠-٩]{4}"
            .prop_map(|d| set("dateOfBirth", json!(d), Violation::DateFormat)),
        Just(set("id", json!("3f2504e0-4f89-11d3-9a0c-0305e82c3301"), Violation::IdUnexpected)),
        Just(set("lastUpdated", json!("2024-01-01T00:00:00Z"), Violation::LastUpdatedUnexpected)),
    ]
}

#[test]
fn one_defect_gives_exactly_its_error() {
    fuzz::run(
        "records::parse_new_patient/one-defect",
        (patient_body(), patient_defect()),
        |(mut body, (defect, field, violation))| {
            match defect {
                Defect::Remove(k) => {
                    body.remove(k);
                }
                Defect::Set(k, v) => {
                    body.insert(k, v);
                }
            }
            let e = parse_new_patient(&bytes(&Value::Object(body)))
                .expect_err("defective body accepted");
            prop_assert_eq!(e.field, field);
            prop_assert_eq!(e.violation, violation);
            Ok(())
        },
    );
}

#[test]
fn field_values_never_appear_in_errors() {
    // Every member gets a value marked with a random tag; whatever fails,
    // the message names fields, never a value.
    let strategy = (
        patient_body(),
        "[A-Z]{12}",
        select(
            &[
                "firstName",
                "lastName",
                "postCode",
                "dateOfBirth",
                "gender",
                "insuranceNumber",
            ][..],
        ),
        "[^\\p{C}]{0,3}",
    );
    fuzz::run(
        "records::errors-never-echo-values",
        strategy,
        |(mut body, tag, field, noise)| {
            body.insert(field.into(), json!(format!("{noise}{tag}{noise}\u{1}")));
            if let Err(e) = parse_new_patient(&bytes(&Value::Object(body))) {
                check_error(&e, Some(&tag))?;
            }
            Ok(())
        },
    );
}

#[test]
fn dates_of_birth_follow_the_calendar() {
    let strategy = prop_oneof![
        "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        "[0-9]{4}(-[0-9]{2})?",
        any::<String>()
    ];
    fuzz::run("records::DateOfBirth::parse", strategy, |text| {
        let b = text.as_bytes();
        let expected_ok = match b.len() {
            4 | 7 | 10
                if text.bytes().enumerate().all(|(i, c)| {
                    if i == 4 || i == 7 {
                        c == b'-'
                    } else {
                        c.is_ascii_digit()
                    }
                }) =>
            {
                let y: i32 = text[0..4].parse().unwrap();
                let m: u8 = if b.len() >= 7 {
                    text[5..7].parse().unwrap()
                } else {
                    1
                };
                let d: u8 = if b.len() == 10 {
                    text[8..10].parse().unwrap()
                } else {
                    1
                };
                y >= 1
                    && time::Month::try_from(m)
                        .is_ok_and(|m| time::Date::from_calendar_date(y, m, d).is_ok())
            }
            _ => false,
        };
        match DateOfBirth::parse(&text) {
            Ok(date) => {
                prop_assert!(expected_ok, "accepted {text:?}");
                prop_assert_eq!(date.to_string(), text);
            }
            Err(e) => {
                prop_assert!(!expected_ok, "refused {text:?}: {e}");
                prop_assert_eq!(e.field.as_str(), "dateOfBirth");
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------- tests

#[test]
fn test_parser_rejects_hostile_bytes_with_typed_errors() {
    let route = PatientId::from_uuid(uuid::Uuid::from_u128(9));
    fuzz::run("records::parse_new_test/bytes", hostile_bytes(), |body| {
        if let Err(e) = parse_new_test(&route, &body) {
            check_error(&e, None)?;
        }
        Ok(())
    });
}

#[test]
fn test_parser_on_arbitrary_json_objects() {
    let route = PatientId::from_uuid(uuid::Uuid::from_u128(9));
    let strategy = prop_oneof![
        object_text(TEST_FIELDS),
        // Valid shells with arbitrary observations.
        (test_body(), vec(json_value(TEST_FIELDS), 0..4)).prop_map(|(mut body, obs)| {
            body.insert("observations".into(), Value::Array(obs));
            (Value::Object(body).to_string(), false)
        }),
    ];
    fuzz::run(
        "records::parse_new_test/json",
        strategy,
        |(text, duplicated)| {
            match parse_new_test(&route, text.as_bytes()) {
                Ok(_) => prop_assert!(!duplicated, "duplicate members accepted"),
                Err(e) => {
                    check_error(&e, None)?;
                    if duplicated {
                        prop_assert_eq!(e.violation, Violation::DuplicateField);
                    }
                }
            }
            Ok(())
        },
    );
}

#[test]
fn valid_tests_parse_and_round_trip() {
    let strategy = (
        test_body(),
        patient_id(),
        any::<u128>(),
        timestamp(),
        any::<bool>(),
    );
    fuzz::run(
        "records::parse_new_test/valid-roundtrip",
        strategy,
        |(mut body, patient, test, at, with_patient)| {
            if with_patient {
                body.insert("patientId".into(), json!(patient.to_string()));
            }
            let fields = parse_new_test(&patient, &bytes(&Value::Object(body.clone())))
                .map_err(|e| TestCaseError::fail(format!("valid body refused: {e}")))?;
            prop_assert_eq!(
                fields.observations.len(),
                body["observations"].as_array().unwrap().len()
            );
            let stored = LabTest {
                id: TestId::from_uuid(uuid::Uuid::from_u128(test)),
                patient_id: patient,
                fields,
                last_updated: at,
            };
            // Observations' `issued` was generated in canonical form, so the API
            // representation is exactly what was sent (plus the server's members).
            let shown = lab_test_to_json(&stored);
            let mut expected = body;
            expected.insert("id".into(), json!(stored.id.to_string()));
            expected.insert("patientId".into(), json!(patient.to_string()));
            expected.insert("lastUpdated".into(), json!(at.to_string()));
            prop_assert_eq!(&shown, &Value::Object(expected));
            prop_assert_eq!(
                lab_test_from_document(lab_test_to_document(&stored)),
                Ok(stored)
            );
            Ok(())
        },
    );
}

#[test]
fn a_test_for_another_patient_is_refused() {
    let strategy = (test_body(), patient_id(), patient_id());
    fuzz::run(
        "records::parse_new_test/patient-mismatch",
        strategy,
        |(mut body, route, other)| {
            prop_assume!(route != other);
            body.insert("patientId".into(), json!(other.to_string().to_uppercase()));
            let e = parse_new_test(&route, &bytes(&Value::Object(body)))
                .expect_err("mismatch accepted");
            prop_assert_eq!(e.field.as_str(), "patientId");
            prop_assert_eq!(e.violation, Violation::PatientIdMismatch);
            Ok(())
        },
    );
}

#[test]
fn timestamps_round_trip() {
    let strategy = prop_oneof![
        timestamp().prop_map(|t| t.to_string()),
        "[0-9]{4}-[01][0-9]-[0-3][0-9][Tt ][0-2][0-9]:[0-5][0-9]:[0-6][0-9](\\.[0-9]{1,15})?([Zz]|[+-][0-2][0-9]:[0-5][0-9])",
        any::<String>(),
    ];
    fuzz::run("records::Timestamp::from_str", strategy, |text| {
        if let Ok(t) = text.parse::<Timestamp>() {
            let canonical = t.to_string();
            prop_assert_eq!(canonical.parse::<Timestamp>(), Ok(t));
            prop_assert_eq!(
                canonical.len(),
                24,
                "not YYYY-MM-DDTHH:MM:SS.mmmZ: {}",
                canonical
            );
        }
        Ok(())
    });
}

// ---------------------------------------------------------------- search

#[test]
fn search_rejects_hostile_bytes_with_typed_errors() {
    let strategy = prop_oneof![
        hostile_bytes(),
        object_text(SEARCH_FIELDS).prop_map(|(t, _)| t.into_bytes()),
        json_value(SEARCH_FIELDS).prop_map(|v| bytes(&v)),
    ];
    fuzz::run("records::parse_search/bytes+json", strategy, |body| {
        match parse_search(&body) {
            Ok(criteria) => {
                let query = criteria.to_query();
                check_query_text(&query.text)?;
            }
            Err(e) => check_error(&e, None)?,
        }
        Ok(())
    });
}

/// Query text is built only from the fixed vocabulary: no value in it.
fn check_query_text(text: &str) -> Result<(), TestCaseError> {
    let rest = text
        .strip_prefix("SELECT * FROM c")
        .ok_or_else(|| TestCaseError::fail("prefix"))?;
    // Search runs across partitions: no ORDER BY (Cosmos' gateway refuses it).
    if rest.contains("ORDER BY") {
        return Err(TestCaseError::fail("cross-partition ORDER BY"));
    }
    for (i, condition) in rest.split(" AND ").enumerate() {
        if rest.is_empty() {
            break;
        }
        let condition = if i == 0 {
            condition
                .strip_prefix(" WHERE ")
                .ok_or_else(|| TestCaseError::fail("WHERE"))?
        } else {
            condition
        };
        let parts: Vec<&str> = condition.split(' ').collect();
        prop_assert_eq!(parts.len(), 3, "condition {:?}", condition);
        prop_assert!(
            parts[0].starts_with("c.") && parts[0][2..].chars().all(|c| c.is_ascii_alphabetic())
        );
        prop_assert!(["=", ">=", "<="].contains(&parts[1]));
        prop_assert!(SEARCH_FIELDS
            .iter()
            .any(|f| parts[2].strip_prefix('@') == Some(*f)));
    }
    Ok(())
}

#[test]
fn valid_search_criteria_become_parameters() {
    let criterion = prop_oneof![
        patient_id().prop_map(|id| ("id", json!(id.to_string()))),
        identifying(64).prop_map(|s| ("firstName", json!(s))),
        identifying(64).prop_map(|s| ("lastName", json!(s))),
        identifying(128).prop_map(|s| ("fullName", json!(s))),
        select(&["male", "female", "other", "unknown"][..]).prop_map(|s| ("gender", json!(s))),
        date_of_birth().prop_map(|s| ("dateOfBirthFrom", json!(s))),
        date_of_birth().prop_map(|s| ("dateOfBirthTo", json!(s))),
        "[^\\p{C}\\s][^\\p{C}]{2}[^\\p{C}\\s]".prop_map(|s| ("postCode", json!(s))),
        identifying(128).prop_map(|s| ("insuranceNumber", json!(s))),
        identifying(128).prop_map(|s| ("preferredContactNumber", json!(s))),
    ];
    fuzz::run(
        "records::parse_search/valid",
        vec(criterion, 0..10),
        |chosen| {
            let body: Map<String, Value> = chosen
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect();
            let from = body
                .get("dateOfBirthFrom")
                .and_then(Value::as_str)
                .map(|s| DateOfBirth::parse(s).unwrap());
            let to = body
                .get("dateOfBirthTo")
                .and_then(Value::as_str)
                .map(|s| DateOfBirth::parse(s).unwrap());
            let empty_range =
                matches!((from, to), (Some(f), Some(t)) if f.first_day_key() > t.last_day_key());
            match parse_search(&bytes(&Value::Object(body.clone()))) {
                Err(e) => {
                    prop_assert!(empty_range, "valid criteria refused: {e}");
                    prop_assert_eq!(e.violation, Violation::EmptyDateRange);
                }
                Ok(criteria) => {
                    prop_assert!(!empty_range, "empty date range accepted");
                    let query = criteria.to_query();
                    check_query_text(&query.text)?;
                    let mut names: Vec<&str> = criteria.field_names();
                    names.sort_unstable();
                    let mut given: Vec<&str> = body.keys().map(String::as_str).collect();
                    given.sort_unstable();
                    prop_assert_eq!(names, given);
                    for (name, value) in &query.parameters {
                        let field = &name[1..];
                        match field {
                            "dateOfBirthFrom" => {
                                prop_assert_eq!(value, &json!(from.unwrap().first_day_key()))
                            }
                            "dateOfBirthTo" => {
                                prop_assert_eq!(value, &json!(to.unwrap().last_day_key()))
                            }
                            _ => prop_assert_eq!(value, &body[field]),
                        }
                    }
                }
            }
            Ok(())
        },
    );
}
