//! Patients: fields, request parsing, API and store representations.

use serde_json::{Map, Value};

use crate::date::DateOfBirth;
use crate::error::{DocumentError, ValidationError, Violation};
use crate::ids::PatientId;
use crate::text::{text_type, TextStyle};
use crate::timestamp::Timestamp;
use crate::SYSTEM_PROPERTIES;
use strict_json::{parse_body, Fields};

text_type!(
    /// `firstName`: required, at most 64 characters.
    FirstName, field = "firstName", max = 64, style = TextStyle::Identifying
);
text_type!(
    /// `lastName`: at most 64 characters.
    LastName, field = "lastName", max = 64, style = TextStyle::Identifying
);
text_type!(
    /// `fullName`: at most 128 characters.
    FullName, field = "fullName", max = 128, style = TextStyle::Identifying
);
text_type!(
    /// `insuranceNumber`. The contract sets no length; 128 characters bound
    /// what one request can store.
    InsuranceNumber, field = "insuranceNumber", max = 128, style = TextStyle::Identifying
);
text_type!(
    /// `preferredContactNumber`. The contract sets no length; 128 characters
    /// bound what one request can store.
    ContactNumber, field = "preferredContactNumber", max = 128, style = TextStyle::Identifying
);

/// `postCode`: exactly 4 characters (any characters, as in the original
/// API, but no control characters and no leading or trailing whitespace).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PostCode(String);

impl PostCode {
    pub const CHARS: usize = 4;

    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        Self::parse_at("postCode", value.to_owned())
    }

    pub(crate) fn parse_at(field: &str, value: String) -> Result<Self, ValidationError> {
        crate::text::check_text(field, &value, usize::MAX, TextStyle::Identifying)?;
        if value.chars().count() != Self::CHARS {
            return Err(ValidationError::new(
                field,
                Violation::WrongLength { exact: Self::CHARS },
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PostCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostCode(<4 chars>)")
    }
}

/// `gender`: exactly one of the lowercase words `male`, `female`, `other`,
/// `unknown` (case-sensitive, as the original API's validator was).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gender {
    Male,
    Female,
    Other,
    Unknown,
}

impl Gender {
    /// The accepted spellings, in the order error messages list them.
    pub const VALUES: &'static [&'static str] = &["male", "female", "other", "unknown"];

    pub fn as_str(&self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
            Gender::Other => "other",
            Gender::Unknown => "unknown",
        }
    }

    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        Self::parse_at("gender", value)
    }

    pub(crate) fn parse_at(field: &str, value: &str) -> Result<Self, ValidationError> {
        match value {
            "male" => Ok(Gender::Male),
            "female" => Ok(Gender::Female),
            "other" => Ok(Gender::Other),
            "unknown" => Ok(Gender::Unknown),
            _ => Err(ValidationError::new(
                field,
                Violation::NotOneOf(Self::VALUES),
            )),
        }
    }
}

/// Everything about a patient that a client writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientFields {
    pub first_name: FirstName,
    pub last_name: Option<LastName>,
    pub full_name: Option<FullName>,
    pub gender: Gender,
    pub date_of_birth: DateOfBirth,
    pub post_code: PostCode,
    pub insurance_number: Option<InsuranceNumber>,
    pub preferred_contact_number: Option<ContactNumber>,
}

/// A stored patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    pub id: PatientId,
    pub fields: PatientFields,
    /// Set by the server on every write.
    pub last_updated: Timestamp,
}

/// The client-writable members, in the order they are validated.
const FIELD_NAMES: [&str; 8] = [
    "firstName",
    "lastName",
    "fullName",
    "gender",
    "dateOfBirth",
    "postCode",
    "insuranceNumber",
    "preferredContactNumber",
];

/// The member the store adds beside the patient's own: `dateOfBirth`'s
/// first day as `YYYY-MM-DD`, so date ranges compare as strings.
pub const DATE_OF_BIRTH_KEY: &str = "dateOfBirthKey";

/// Parses the body of `POST /patient`.
///
/// `id` or `lastUpdated` with a non-null value fails with the original API's
/// messages ("Id unexpected.", "lastUpdated unexpected."); `null` counts as
/// absent, for these and for every optional member. Unknown members,
/// duplicate members and wrong types fail naming the member.
pub fn parse_new_patient(body: &[u8]) -> Result<PatientFields, ValidationError> {
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
    let mut allowed = FIELD_NAMES.to_vec();
    allowed.extend(["id", "lastUpdated"]); // present only as null here
    obj.reject_unknown(&allowed)?;
    read_fields(&mut obj)
}

/// Parses the body of `PUT /patient/{route_id}`.
///
/// As in the original API the body must carry the patient's `id`: missing,
/// or a GUID other than `route_id`, fails with "Inconsistent registration
/// IDs" (a malformed one first fails as not a GUID). `lastUpdated` may be
/// sent back as read (it must then be an RFC 3339 timestamp) and is ignored:
/// the server sets it.
pub fn parse_patient_update(
    route_id: &PatientId,
    body: &[u8],
) -> Result<PatientFields, ValidationError> {
    let mut obj = Fields::new(parse_body(body)?, "")?;
    let mut allowed = FIELD_NAMES.to_vec();
    allowed.extend(["id", "lastUpdated"]);
    obj.reject_unknown(&allowed)?;
    match obj.optional_str("id")? {
        None => return Err(ValidationError::new("id", Violation::InconsistentIds)),
        Some(id) => {
            if PatientId::parse_at("id", &id)? != *route_id {
                return Err(ValidationError::new("id", Violation::InconsistentIds));
            }
        }
    }
    if let Some(t) = obj.optional_str("lastUpdated")? {
        t.parse::<Timestamp>()
            .map_err(|_| ValidationError::new("lastUpdated", Violation::NotATimestamp))?;
    }
    read_fields(&mut obj)
}

/// Reads the client-writable members (unknown ones already rejected).
fn read_fields(obj: &mut Fields) -> Result<PatientFields, ValidationError> {
    let first_name =
        FirstName::parse_at(&obj.path_of("firstName"), obj.required_str("firstName")?)?;
    let last_name = obj
        .optional_str("lastName")?
        .map(|s| LastName::parse_at(&obj.path_of("lastName"), s))
        .transpose()?;
    let full_name = obj
        .optional_str("fullName")?
        .map(|s| FullName::parse_at(&obj.path_of("fullName"), s))
        .transpose()?;
    let gender = Gender::parse_at(&obj.path_of("gender"), &obj.required_str("gender")?)?;
    let date_of_birth = DateOfBirth::parse_at(
        &obj.path_of("dateOfBirth"),
        &obj.required_str("dateOfBirth")?,
    )?;
    let post_code = PostCode::parse_at(&obj.path_of("postCode"), obj.required_str("postCode")?)?;
    let insurance_number = obj
        .optional_str("insuranceNumber")?
        .map(|s| InsuranceNumber::parse_at(&obj.path_of("insuranceNumber"), s))
        .transpose()?;
    let preferred_contact_number = obj
        .optional_str("preferredContactNumber")?
        .map(|s| ContactNumber::parse_at(&obj.path_of("preferredContactNumber"), s))
        .transpose()?;
    Ok(PatientFields {
        first_name,
        last_name,
        full_name,
        gender,
        date_of_birth,
        post_code,
        insurance_number,
        preferred_contact_number,
    })
}

/// The API representation (response bodies): camelCase members, absent
/// optional members omitted.
pub fn patient_to_json(patient: &Patient) -> Value {
    let f = &patient.fields;
    let mut m = Map::new();
    let mut put = |k: &str, v: &str| {
        m.insert(k.to_owned(), Value::String(v.to_owned()));
    };
    put("id", &patient.id.to_string());
    put("firstName", f.first_name.as_str());
    if let Some(v) = &f.last_name {
        put("lastName", v.as_str());
    }
    if let Some(v) = &f.full_name {
        put("fullName", v.as_str());
    }
    put("gender", f.gender.as_str());
    put("dateOfBirth", &f.date_of_birth.to_string());
    put("postCode", f.post_code.as_str());
    if let Some(v) = &f.insurance_number {
        put("insuranceNumber", v.as_str());
    }
    if let Some(v) = &f.preferred_contact_number {
        put("preferredContactNumber", v.as_str());
    }
    put("lastUpdated", &patient.last_updated.to_string());
    Value::Object(m)
}

/// The store document: the API representation plus [`DATE_OF_BIRTH_KEY`].
/// Its `id` is the patient id (also the natural partition key).
pub fn patient_to_document(patient: &Patient) -> Value {
    let mut doc = patient_to_json(patient);
    if let Value::Object(m) = &mut doc {
        m.insert(
            DATE_OF_BIRTH_KEY.to_owned(),
            Value::String(patient.fields.date_of_birth.first_day_key()),
        );
    }
    doc
}

/// Reads a store document back. The store's system properties (`_rid`,
/// `_self`, `_etag`, `_ts`, `_attachments`) and [`DATE_OF_BIRTH_KEY`] are
/// dropped, so they never reach an API response; everything else is
/// validated as strictly as a request, and anything unknown is an error.
pub fn patient_from_document(doc: Value) -> Result<Patient, DocumentError> {
    let mut obj = Fields::new(doc, "")?;
    for key in SYSTEM_PROPERTIES.iter().chain([&DATE_OF_BIRTH_KEY]) {
        obj.discard(key);
    }
    let mut allowed = FIELD_NAMES.to_vec();
    allowed.extend(["id", "lastUpdated"]);
    obj.reject_unknown(&allowed)?;
    let id = PatientId::parse_at("id", &obj.required_str("id")?)?;
    let last_updated = obj
        .required_str("lastUpdated")?
        .parse()
        .map_err(|_| ValidationError::new("lastUpdated", Violation::NotATimestamp))?;
    let fields = read_fields(&mut obj)?;
    Ok(Patient {
        id,
        fields,
        last_updated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::JsonType;
    use serde_json::json;

    const ID: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";

    fn full() -> Value {
        json!({
            "firstName": "Ana",
            "lastName": "Søren",
            "fullName": "Ana Søren",
            "gender": "female",
            "dateOfBirth": "1980-02-29",
            "postCode": "2100",
            "insuranceNumber": "INS-1",
            "preferredContactNumber": "+45 1234 5678"
        })
    }

    fn minimal() -> Value {
        json!({"firstName": "Bo", "gender": "male", "dateOfBirth": "1975", "postCode": "8000"})
    }

    fn new(v: &Value) -> Result<PatientFields, ValidationError> {
        parse_new_patient(v.to_string().as_bytes())
    }

    fn with(key: &str, value: Value) -> Value {
        let mut v = full();
        v[key] = value;
        v
    }

    fn without(key: &str) -> Value {
        let mut v = full();
        v.as_object_mut().unwrap().remove(key);
        v
    }

    fn err(v: &Value) -> (String, String) {
        let e = new(v).unwrap_err();
        (e.field.clone(), e.message())
    }

    #[test]
    fn full_body_parses() {
        let p = new(&full()).unwrap();
        assert_eq!(p.first_name.as_str(), "Ana");
        assert_eq!(p.last_name.unwrap().as_str(), "Søren");
        assert_eq!(p.full_name.unwrap().as_str(), "Ana Søren");
        assert_eq!(p.gender, Gender::Female);
        assert_eq!(p.date_of_birth.to_string(), "1980-02-29");
        assert_eq!(p.post_code.as_str(), "2100");
        assert_eq!(p.insurance_number.unwrap().as_str(), "INS-1");
        assert_eq!(
            p.preferred_contact_number.unwrap().as_str(),
            "+45 1234 5678"
        );
    }

    #[test]
    fn optional_members_may_be_absent_or_null() {
        let p = new(&minimal()).unwrap();
        assert!(p.last_name.is_none() && p.full_name.is_none());
        assert!(p.insurance_number.is_none() && p.preferred_contact_number.is_none());
        let mut v = minimal();
        for k in [
            "lastName",
            "fullName",
            "insuranceNumber",
            "preferredContactNumber",
            "id",
            "lastUpdated",
        ] {
            v[k] = Value::Null;
        }
        assert_eq!(new(&v).unwrap(), new(&minimal()).unwrap());
    }

    #[test]
    fn required_members() {
        for k in ["firstName", "gender", "dateOfBirth", "postCode"] {
            assert_eq!(
                err(&without(k)),
                (k.to_string(), format!("{k} is required"))
            );
            assert_eq!(
                err(&with(k, Value::Null)),
                (k.to_string(), format!("{k} is required"))
            );
            assert_eq!(err(&with(k, json!(""))).0, k);
        }
        assert_eq!(
            err(&with("firstName", json!(""))).1,
            "firstName must not be empty"
        );
    }

    #[test]
    fn wrong_types_name_the_member() {
        for k in FIELD_NAMES {
            for bad in [json!(1), json!(true), json!([]), json!({})] {
                assert_eq!(
                    err(&with(k, bad)),
                    (k.to_string(), format!("{k} must be a string"))
                );
            }
        }
    }

    #[test]
    fn id_and_last_updated_are_unexpected_on_create() {
        assert_eq!(
            err(&with("id", json!(ID))),
            ("id".into(), "Id unexpected.".into())
        );
        assert_eq!(err(&with("id", json!(7))).1, "Id unexpected.");
        assert_eq!(
            err(&with("lastUpdated", json!("2024-01-01T00:00:00Z"))),
            ("lastUpdated".into(), "lastUpdated unexpected.".into())
        );
    }

    #[test]
    fn unknown_and_duplicate_members() {
        assert_eq!(
            err(&with("middleName", json!("X"))),
            (
                "middleName".into(),
                "middleName is not a known field".into()
            )
        );
        assert_eq!(
            err(&with("dateOfBirthKey", json!("1980-01-01"))).0,
            "dateOfBirthKey"
        );
        assert_eq!(err(&with("_etag", json!("x"))).0, "_etag");
        let body = br#"{"firstName":"A","firstName":"B","gender":"male","dateOfBirth":"1980","postCode":"1234"}"#;
        let e = parse_new_patient(body).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.violation),
            ("firstName", Violation::DuplicateField)
        );
    }

    #[test]
    fn body_must_be_a_json_object() {
        for body in ["[]", "\"x\"", "1", "null"] {
            let e = parse_new_patient(body.as_bytes()).unwrap_err();
            assert_eq!(
                (e.field.as_str(), e.message().as_str()),
                ("body", "body must be an object")
            );
        }
        let e = parse_new_patient(b"{\"firstName\":").unwrap_err();
        assert_eq!(e.field, "body");
        assert!(
            e.message().starts_with("body is not valid JSON"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn name_lengths_count_characters() {
        for (k, max) in [("firstName", 64), ("lastName", 64), ("fullName", 128)] {
            assert!(new(&with(k, json!("a".repeat(max)))).is_ok(), "{k}");
            assert!(
                new(&with(k, json!("é".repeat(max)))).is_ok(),
                "{k} multi-byte"
            );
            assert!(new(&with(k, json!("😀".repeat(max)))).is_ok(), "{k} 4-byte");
            assert_eq!(
                err(&with(k, json!("a".repeat(max + 1)))),
                (
                    k.to_string(),
                    format!("{k} must be at most {max} characters")
                )
            );
            assert_eq!(err(&with(k, json!("é".repeat(max + 1)))).0, k);
        }
        for k in ["insuranceNumber", "preferredContactNumber"] {
            assert!(new(&with(k, json!("1".repeat(128)))).is_ok());
            assert_eq!(
                err(&with(k, json!("1".repeat(129)))).1,
                format!("{k} must be at most 128 characters")
            );
        }
    }

    #[test]
    fn post_code_is_exactly_four_characters() {
        assert!(new(&with("postCode", json!("1234"))).is_ok());
        assert!(new(&with("postCode", json!("ÆØÅ1"))).is_ok());
        assert!(new(&with("postCode", json!("1 34"))).is_ok());
        for bad in ["123", "12345", "ÆØÅ", "ÆØÅ12"] {
            assert_eq!(
                err(&with("postCode", json!(bad))),
                (
                    "postCode".into(),
                    "postCode must be exactly 4 characters".into()
                ),
                "{bad}"
            );
        }
        assert_eq!(
            err(&with("postCode", json!(" 123"))).1,
            "postCode must not begin or end with whitespace"
        );
    }

    #[test]
    fn gender_is_one_of_four_lowercase_words() {
        for (s, g) in [
            ("male", Gender::Male),
            ("female", Gender::Female),
            ("other", Gender::Other),
            ("unknown", Gender::Unknown),
        ] {
            assert_eq!(new(&with("gender", json!(s))).unwrap().gender, g);
            assert_eq!(g.as_str(), s);
        }
        for bad in ["Male", "FEMALE", "m", "none", " male"] {
            assert_eq!(
                err(&with("gender", json!(bad))),
                (
                    "gender".into(),
                    "gender must be one of male, female, other, unknown".into()
                )
            );
        }
    }

    #[test]
    fn date_of_birth_rules_apply() {
        for ok in ["1980", "1980-06", "1980-06-15"] {
            assert_eq!(
                new(&with("dateOfBirth", json!(ok)))
                    .unwrap()
                    .date_of_birth
                    .to_string(),
                ok
            );
        }
        assert_eq!(
            err(&with("dateOfBirth", json!("1981-02-29"))),
            (
                "dateOfBirth".into(),
                "dateOfBirth day does not exist in that month".into()
            )
        );
        assert_eq!(
            err(&with("dateOfBirth", json!("1980-13"))).1,
            "dateOfBirth month must be between 01 and 12"
        );
    }

    #[test]
    fn whitespace_is_rejected_not_trimmed() {
        assert_eq!(
            err(&with("firstName", json!(" Ana"))).1,
            "firstName must not begin or end with whitespace"
        );
        assert_eq!(err(&with("lastName", json!("Søren "))).0, "lastName");
        assert_eq!(
            err(&with("firstName", json!("A\u{0}na"))).1,
            "firstName must not contain control characters"
        );
        assert!(new(&with("fullName", json!("Ana Maria Søren"))).is_ok());
    }

    fn update(route: &str, v: &Value) -> Result<PatientFields, ValidationError> {
        parse_patient_update(&route.parse().unwrap(), v.to_string().as_bytes())
    }

    #[test]
    fn update_requires_the_route_id_in_the_body() {
        assert!(update(ID, &with("id", json!(ID))).is_ok());
        assert!(update(ID, &with("id", json!(ID.to_uppercase()))).is_ok());
        let other = "00000000-0000-0000-0000-000000000001";
        for body in [with("id", json!(other)), full(), with("id", Value::Null)] {
            let e = update(ID, &body).unwrap_err();
            assert_eq!(
                (e.field.as_str(), e.message().as_str()),
                ("id", "Inconsistent registration IDs")
            );
        }
        let e = update(ID, &with("id", json!("not-a-guid"))).unwrap_err();
        assert_eq!(e.violation, Violation::NotAGuid);
        let e = update(ID, &with("id", json!(1))).unwrap_err();
        assert_eq!(e.violation, Violation::WrongType(JsonType::String));
    }

    #[test]
    fn update_accepts_and_ignores_a_valid_last_updated() {
        let mut v = with("id", json!(ID));
        v["lastUpdated"] = json!("2024-01-01T00:00:00.000Z");
        assert_eq!(update(ID, &v).unwrap(), new(&full()).unwrap());
        v["lastUpdated"] = json!("yesterday");
        assert_eq!(
            update(ID, &v).unwrap_err().message(),
            "lastUpdated must be an RFC 3339 timestamp"
        );
        let mut v = with("id", json!(ID));
        v["nickname"] = json!("x");
        assert_eq!(
            update(ID, &v).unwrap_err().violation,
            Violation::UnknownField
        );
        let mut v = with("id", json!(ID));
        v["gender"] = json!("x");
        assert_eq!(update(ID, &v).unwrap_err().field, "gender");
    }

    fn patient(fields: PatientFields) -> Patient {
        Patient {
            id: ID.parse().unwrap(),
            fields,
            last_updated: Timestamp::from_unix_millis(1_700_000_000_123).unwrap(),
        }
    }

    #[test]
    fn api_json_has_contract_members() {
        let p = patient(new(&minimal()).unwrap());
        let expected = json!({
            "id": ID, "firstName": "Bo", "gender": "male", "dateOfBirth": "1975",
            "postCode": "8000", "lastUpdated": "2023-11-14T22:13:20.123Z"
        });
        assert_eq!(patient_to_json(&p), expected);
    }

    #[test]
    fn document_round_trip_drops_store_properties() {
        for fields in [new(&full()).unwrap(), new(&minimal()).unwrap()] {
            let p = patient(fields);
            let mut doc = patient_to_document(&p);
            assert_eq!(
                doc[DATE_OF_BIRTH_KEY],
                json!(p.fields.date_of_birth.first_day_key())
            );
            assert_eq!(patient_from_document(doc.clone()).unwrap(), p);
            for (k, v) in [
                ("_rid", json!("r")),
                ("_self", json!("s")),
                ("_etag", json!("\"e\"")),
                ("_ts", json!(1)),
                ("_attachments", json!("a")),
            ] {
                doc[k] = v;
            }
            let back = patient_from_document(doc).unwrap();
            assert_eq!(back, p);
            let shown = patient_to_json(&back);
            assert!(shown
                .as_object()
                .unwrap()
                .keys()
                .all(|k| !k.starts_with('_') && k != DATE_OF_BIRTH_KEY));
        }
        let p = patient(new(&minimal()).unwrap());
        assert_eq!(
            patient_to_document(&p)[DATE_OF_BIRTH_KEY],
            json!("1975-01-01")
        );
    }

    #[test]
    fn invalid_documents_are_errors_not_panics() {
        let p = patient(new(&full()).unwrap());
        let mut doc = patient_to_document(&p);
        doc["internal"] = json!(1);
        assert_eq!(patient_from_document(doc).unwrap_err().0.field, "internal");
        let mut doc = patient_to_document(&p);
        doc.as_object_mut().unwrap().remove("lastUpdated");
        assert_eq!(
            patient_from_document(doc).unwrap_err().0.violation,
            Violation::Required
        );
        let mut doc = patient_to_document(&p);
        doc["id"] = json!("x");
        assert_eq!(
            patient_from_document(doc).unwrap_err().0.violation,
            Violation::NotAGuid
        );
        assert!(patient_from_document(json!([])).is_err());
    }

    #[test]
    fn debug_never_shows_patient_values() {
        let p = patient(new(&full()).unwrap());
        let shown = format!("{p:?}");
        for secret in ["Ana", "Søren", "2100", "INS-1", "1234", "1980"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}
