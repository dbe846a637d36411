//! Laboratory tests: fields, request parsing, API and store representations.

use serde_json::{Map, Value};

use crate::error::{DocumentError, ValidationError, Violation};
use crate::ids::{PatientId, TestId};
use crate::text::{text_type, TextStyle};
use crate::timestamp::Timestamp;
use crate::SYSTEM_PROPERTIES;
use strict_json::{index_path, parse_body, Fields};

text_type!(
    /// A string member of a test (`performer`, `orderReference`, and an
    /// observation's `id`, `code`, `measurement`, `interpretation`,
    /// `status`). Free text kept verbatim: not empty or blank, no control
    /// characters other than tab, CR and LF, at most 1024 characters (the
    /// contract sets no length; the bound limits what one request stores).
    TestText, field = "text", max = 1024, style = TextStyle::Free
);

/// One result within a test. Every member is required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub id: TestText,
    pub code: TestText,
    pub measurement: TestText,
    pub interpretation: TestText,
    /// When the result was issued: any RFC 3339 text on input, stored and
    /// shown normalised to UTC with milliseconds.
    pub issued: Timestamp,
    pub status: TestText,
}

/// Everything about a test that a client writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFields {
    pub performer: TestText,
    pub order_reference: TestText,
    /// May be empty (the original API allowed it); at most [`MAX_OBSERVATIONS`].
    pub observations: Vec<Observation>,
}

/// A stored laboratory test. Stored in a container partitioned by `patientId`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabTest {
    pub id: TestId,
    pub patient_id: PatientId,
    pub fields: TestFields,
    /// Set by the server on every write.
    pub last_updated: Timestamp,
}

/// Most observations one test may hold.
pub const MAX_OBSERVATIONS: usize = 1000;

const OBSERVATION_FIELDS: [&str; 6] = [
    "id",
    "code",
    "measurement",
    "interpretation",
    "issued",
    "status",
];

/// Parses the body of `POST /patient/{route_patient}/tests`.
///
/// `id` and `lastUpdated` fail with the original API's messages. `patientId`
/// may be sent but must then be the route's patient (the route decides which
/// patient a test belongs to; a different id in the body is a client error,
/// not something to overwrite silently). `null` counts as absent.
pub fn parse_new_test(
    route_patient: &PatientId,
    body: &[u8],
) -> Result<TestFields, ValidationError> {
    let mut obj = Fields::new(parse_body(body)?, "")?;
    if obj.has("id") {
        return Err(ValidationError::new("id", Violation::IdUnexpected));
    }
    if obj.has("lastUpdated") {
        return Err(ValidationError::new(
            "lastUpdated",
            Violation::LastUpdatedUnexpected,
        ));
    }
    obj.reject_unknown(&[
        "id",
        "lastUpdated",
        "patientId",
        "performer",
        "orderReference",
        "observations",
    ])?;
    if let Some(p) = obj.optional_str("patientId")? {
        if PatientId::parse_at("patientId", &p)? != *route_patient {
            return Err(ValidationError::new(
                "patientId",
                Violation::PatientIdMismatch,
            ));
        }
    }
    read_fields(&mut obj)
}

fn read_text(obj: &mut Fields, key: &str) -> Result<TestText, ValidationError> {
    TestText::parse_at(&obj.path_of(key), obj.required_str(key)?)
}

fn read_fields(obj: &mut Fields) -> Result<TestFields, ValidationError> {
    let performer = read_text(obj, "performer")?;
    let order_reference = read_text(obj, "orderReference")?;
    let items = obj.required_array("observations")?;
    if items.len() > MAX_OBSERVATIONS {
        return Err(ValidationError::new(
            obj.path_of("observations"),
            Violation::TooManyItems {
                max: MAX_OBSERVATIONS,
            },
        ));
    }
    let base = obj.path_of("observations");
    let observations = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| read_observation(item, &index_path(&base, i)))
        .collect::<Result<_, _>>()?;
    Ok(TestFields {
        performer,
        order_reference,
        observations,
    })
}

fn read_observation(value: Value, path: &str) -> Result<Observation, ValidationError> {
    let mut obj = Fields::new(value, path)?;
    obj.reject_unknown(&OBSERVATION_FIELDS)?;
    let id = read_text(&mut obj, "id")?;
    let code = read_text(&mut obj, "code")?;
    let measurement = read_text(&mut obj, "measurement")?;
    let interpretation = read_text(&mut obj, "interpretation")?;
    let issued_path = obj.path_of("issued");
    let issued = obj
        .required_str("issued")?
        .parse()
        .map_err(|_| ValidationError::new(issued_path, Violation::NotATimestamp))?;
    let status = read_text(&mut obj, "status")?;
    Ok(Observation {
        id,
        code,
        measurement,
        interpretation,
        issued,
        status,
    })
}

fn string(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

/// The API representation (response bodies), camelCase as in the contract.
pub fn lab_test_to_json(test: &LabTest) -> Value {
    let observations = test
        .fields
        .observations
        .iter()
        .map(|o| {
            let mut m = Map::new();
            m.insert("id".into(), string(o.id.as_str()));
            m.insert("code".into(), string(o.code.as_str()));
            m.insert("measurement".into(), string(o.measurement.as_str()));
            m.insert("interpretation".into(), string(o.interpretation.as_str()));
            m.insert("issued".into(), string(o.issued.to_string()));
            m.insert("status".into(), string(o.status.as_str()));
            Value::Object(m)
        })
        .collect();
    let mut m = Map::new();
    m.insert("id".into(), string(test.id.to_string()));
    m.insert("patientId".into(), string(test.patient_id.to_string()));
    m.insert("performer".into(), string(test.fields.performer.as_str()));
    m.insert(
        "orderReference".into(),
        string(test.fields.order_reference.as_str()),
    );
    m.insert("observations".into(), Value::Array(observations));
    m.insert("lastUpdated".into(), string(test.last_updated.to_string()));
    Value::Object(m)
}

/// The store document: the same members as the API representation; the
/// partition key is `patientId`.
pub fn lab_test_to_document(test: &LabTest) -> Value {
    lab_test_to_json(test)
}

/// Reads a store document back, dropping the store's system properties and
/// validating everything else strictly.
pub fn lab_test_from_document(doc: Value) -> Result<LabTest, DocumentError> {
    let mut obj = Fields::new(doc, "")?;
    for key in SYSTEM_PROPERTIES {
        obj.discard(key);
    }
    obj.reject_unknown(&[
        "id",
        "patientId",
        "lastUpdated",
        "performer",
        "orderReference",
        "observations",
    ])?;
    let id = TestId::parse_at("id", &obj.required_str("id")?)?;
    let patient_id = PatientId::parse_at("patientId", &obj.required_str("patientId")?)?;
    let last_updated = obj
        .required_str("lastUpdated")?
        .parse()
        .map_err(|_| ValidationError::new("lastUpdated", Violation::NotATimestamp))?;
    let fields = read_fields(&mut obj)?;
    Ok(LabTest {
        id,
        patient_id,
        fields,
        last_updated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::JsonType;
    use serde_json::json;

    const PATIENT: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
    const TEST: &str = "9b2c1a00-0000-4000-8000-00000000abcd";

    fn route() -> PatientId {
        PATIENT.parse().unwrap()
    }

    fn observation() -> Value {
        json!({
            "id": "obs-1", "code": "GLU", "measurement": "5.4 mmol/L",
            "interpretation": "normal", "issued": "2024-03-01T09:30:00+01:00", "status": "final"
        })
    }

    fn body() -> Value {
        json!({"performer": "Lab A", "orderReference": "ORD-7", "observations": [observation(), observation()]})
    }

    fn parse(v: &Value) -> Result<TestFields, ValidationError> {
        parse_new_test(&route(), v.to_string().as_bytes())
    }

    fn err(v: &Value) -> (String, String) {
        let e = parse(v).unwrap_err();
        (e.field.clone(), e.message())
    }

    #[test]
    fn valid_test_parses() {
        let t = parse(&body()).unwrap();
        assert_eq!(t.performer.as_str(), "Lab A");
        assert_eq!(t.order_reference.as_str(), "ORD-7");
        assert_eq!(t.observations.len(), 2);
        let o = &t.observations[0];
        assert_eq!(o.issued.to_string(), "2024-03-01T08:30:00.000Z");
        assert_eq!(
            (
                o.id.as_str(),
                o.code.as_str(),
                o.measurement.as_str(),
                o.interpretation.as_str(),
                o.status.as_str()
            ),
            ("obs-1", "GLU", "5.4 mmol/L", "normal", "final")
        );
        let mut v = body();
        v["observations"] = json!([]);
        assert!(parse(&v).unwrap().observations.is_empty());
    }

    #[test]
    fn every_member_is_required() {
        for k in ["performer", "orderReference", "observations"] {
            let mut v = body();
            v.as_object_mut().unwrap().remove(k);
            assert_eq!(err(&v), (k.to_string(), format!("{k} is required")));
            v[k] = Value::Null;
            assert_eq!(err(&v).0, k);
        }
        for k in OBSERVATION_FIELDS {
            let mut v = body();
            v["observations"][1].as_object_mut().unwrap().remove(k);
            assert_eq!(
                err(&v),
                (
                    format!("observations[1].{k}"),
                    format!("observations[1].{k} is required")
                )
            );
        }
    }

    #[test]
    fn types_are_checked_with_paths() {
        let mut v = body();
        v["observations"] = json!({});
        assert_eq!(
            err(&v),
            (
                "observations".into(),
                "observations must be an array".into()
            )
        );
        let mut v = body();
        v["observations"][1] = json!("x");
        assert_eq!(
            err(&v),
            (
                "observations[1]".into(),
                "observations[1] must be an object".into()
            )
        );
        let mut v = body();
        v["observations"][0]["measurement"] = json!(5.4);
        assert_eq!(err(&v).1, "observations[0].measurement must be a string");
        let mut v = body();
        v["performer"] = json!(["x"]);
        let e = parse(&v).unwrap_err();
        assert_eq!(e.violation, Violation::WrongType(JsonType::String));
    }

    #[test]
    fn issued_must_be_a_timestamp() {
        for bad in ["2024-03-01", "yesterday", "2024-03-01T09:30:00"] {
            let mut v = body();
            v["observations"][1]["issued"] = json!(bad);
            assert_eq!(
                err(&v),
                (
                    "observations[1].issued".into(),
                    "observations[1].issued must be an RFC 3339 timestamp".into()
                )
            );
        }
    }

    #[test]
    fn unknown_members_at_each_level() {
        let mut v = body();
        v["result"] = json!("x");
        assert_eq!(
            err(&v),
            ("result".into(), "result is not a known field".into())
        );
        let mut v = body();
        v["observations"][0]["unit"] = json!("x");
        assert_eq!(err(&v).0, "observations[0].unit");
    }

    #[test]
    fn id_and_last_updated_are_unexpected() {
        let mut v = body();
        v["id"] = json!(TEST);
        assert_eq!(err(&v), ("id".into(), "Id unexpected.".into()));
        let mut v = body();
        v["lastUpdated"] = json!("2024-01-01T00:00:00Z");
        assert_eq!(
            err(&v),
            ("lastUpdated".into(), "lastUpdated unexpected.".into())
        );
    }

    #[test]
    fn body_patient_id_must_match_the_route() {
        let mut v = body();
        v["patientId"] = json!(PATIENT.to_uppercase());
        assert!(parse(&v).is_ok());
        v["patientId"] = json!("00000000-0000-0000-0000-000000000001");
        assert_eq!(
            err(&v),
            (
                "patientId".into(),
                "patientId must be the patient id of the route".into()
            )
        );
        v["patientId"] = json!("x");
        assert_eq!(parse(&v).unwrap_err().violation, Violation::NotAGuid);
    }

    #[test]
    fn text_bounds() {
        let mut v = body();
        v["performer"] = json!("é".repeat(1024));
        assert!(parse(&v).is_ok());
        v["performer"] = json!("é".repeat(1025));
        assert_eq!(err(&v).1, "performer must be at most 1024 characters");
        v["performer"] = json!("  ");
        assert_eq!(err(&v).1, "performer must not be blank");
        v["performer"] = json!("");
        assert_eq!(err(&v).1, "performer must not be empty");
        let mut v = body();
        v["observations"][0]["interpretation"] = json!(" high,\nrecheck\t");
        assert!(parse(&v).is_ok(), "free text is kept verbatim");
    }

    #[test]
    fn observation_count_is_bounded() {
        let mut v = body();
        v["observations"] = Value::Array(vec![observation(); MAX_OBSERVATIONS]);
        assert!(parse(&v).is_ok());
        v["observations"] = Value::Array(vec![observation(); MAX_OBSERVATIONS + 1]);
        assert_eq!(
            err(&v),
            (
                "observations".into(),
                "observations must have at most 1000 items".into()
            )
        );
    }

    fn stored() -> LabTest {
        LabTest {
            id: TEST.parse().unwrap(),
            patient_id: route(),
            fields: parse(&body()).unwrap(),
            last_updated: Timestamp::from_unix_millis(1_709_280_000_000).unwrap(),
        }
    }

    #[test]
    fn api_json_has_contract_members() {
        let j = lab_test_to_json(&stored());
        assert_eq!(j["id"], json!(TEST));
        assert_eq!(j["patientId"], json!(PATIENT));
        assert_eq!(j["lastUpdated"], json!("2024-03-01T08:00:00.000Z"));
        assert_eq!(
            j["observations"][0]["issued"],
            json!("2024-03-01T08:30:00.000Z")
        );
        let mut keys: Vec<_> = j.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "id",
                "lastUpdated",
                "observations",
                "orderReference",
                "patientId",
                "performer"
            ]
        );
    }

    #[test]
    fn document_round_trip() {
        let t = stored();
        let mut doc = lab_test_to_document(&t);
        assert_eq!(lab_test_from_document(doc.clone()).unwrap(), t);
        doc["_etag"] = json!("\"0\"");
        doc["_ts"] = json!(1);
        doc["_rid"] = json!("r");
        doc["_self"] = json!("s");
        doc["_attachments"] = json!("a");
        let back = lab_test_from_document(doc).unwrap();
        assert_eq!(back, t);
        assert!(lab_test_to_json(&back).get("_etag").is_none());
        let mut doc = lab_test_to_document(&t);
        doc["extra"] = json!(1);
        assert_eq!(lab_test_from_document(doc).unwrap_err().0.field, "extra");
        let mut doc = lab_test_to_document(&t);
        doc.as_object_mut().unwrap().remove("patientId");
        assert_eq!(
            lab_test_from_document(doc).unwrap_err().0.field,
            "patientId"
        );
    }
}
