//! Patient search criteria and the parameterised store queries they become.

use serde_json::{json, Value};

use crate::date::DateOfBirth;
use crate::error::{ValidationError, Violation};
use crate::ids::PatientId;
use crate::patient::{
    ContactNumber, FirstName, FullName, Gender, InsuranceNumber, LastName, PostCode,
    DATE_OF_BIRTH_KEY,
};
use strict_json::{parse_body, Fields};

/// Validated search criteria; every given criterion must match. No criteria
/// at all means all patients.
///
/// String criteria follow the same rules as the patient fields they match
/// and compare by exact, case-sensitive equality. `dateOfBirthFrom` and
/// `dateOfBirthTo` accept the three date forms and bound the patient's
/// `dateOfBirthKey` (its date of birth's first day) inclusively: `From`
/// starts at the first day it can mean, `To` ends at the last, so
/// `"dateOfBirthTo": "1980"` includes everyone born in 1980, and a patient
/// whose date of birth is only `1980` counts as born on 1980-01-01.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchCriteria {
    id: Option<PatientId>,
    first_name: Option<FirstName>,
    last_name: Option<LastName>,
    full_name: Option<FullName>,
    gender: Option<Gender>,
    date_of_birth_from: Option<DateOfBirth>,
    date_of_birth_to: Option<DateOfBirth>,
    post_code: Option<PostCode>,
    insurance_number: Option<InsuranceNumber>,
    preferred_contact_number: Option<ContactNumber>,
}

/// A store query: text with `@name` placeholders and the parameter values.
/// Values never appear in the text.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySpec {
    pub text: String,
    /// `(name, value)`, each name with its leading `@`, in the text's order.
    pub parameters: Vec<(String, Value)>,
}

impl QuerySpec {
    /// The body of a Cosmos DB query request (`application/query+json`):
    /// `{"query": text, "parameters": [{"name", "value"}...]}`.
    pub fn to_cosmos_body(&self) -> Value {
        let parameters: Vec<Value> = self
            .parameters
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect();
        json!({"query": self.text, "parameters": parameters})
    }
}

/// The criteria members, in the order of `field_names` and of the query.
const CRITERIA: [&str; 10] = [
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

/// Parses the body of `POST /patient/search`.
///
/// `{}` searches all patients, and so does an empty (or all-whitespace)
/// body, as the original API accepted a search without a body. `null`
/// counts as absent. Unknown and duplicate members fail naming the member;
/// `dateOfBirthFrom` after `dateOfBirthTo` fails.
pub fn parse_search(body: &[u8]) -> Result<SearchCriteria, ValidationError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(SearchCriteria::default());
    }
    let mut obj = Fields::new(parse_body(body)?, "")?;
    obj.reject_unknown(&CRITERIA)?;
    macro_rules! text {
        ($key:literal, $ty:ty) => {
            obj.optional_str($key)?
                .map(|s| <$ty>::parse_at($key, s))
                .transpose()?
        };
    }
    let criteria = SearchCriteria {
        id: obj
            .optional_str("id")?
            .map(|s| PatientId::parse_at("id", &s))
            .transpose()?,
        first_name: text!("firstName", FirstName),
        last_name: text!("lastName", LastName),
        full_name: text!("fullName", FullName),
        gender: obj
            .optional_str("gender")?
            .map(|s| Gender::parse_at("gender", &s))
            .transpose()?,
        date_of_birth_from: obj
            .optional_str("dateOfBirthFrom")?
            .map(|s| DateOfBirth::parse_at("dateOfBirthFrom", &s))
            .transpose()?,
        date_of_birth_to: obj
            .optional_str("dateOfBirthTo")?
            .map(|s| DateOfBirth::parse_at("dateOfBirthTo", &s))
            .transpose()?,
        post_code: text!("postCode", PostCode),
        insurance_number: text!("insuranceNumber", InsuranceNumber),
        preferred_contact_number: text!("preferredContactNumber", ContactNumber),
    };
    if let (Some(from), Some(to)) = (&criteria.date_of_birth_from, &criteria.date_of_birth_to) {
        if from.first_day_key() > to.last_day_key() {
            return Err(ValidationError::new(
                "dateOfBirthFrom",
                Violation::EmptyDateRange,
            ));
        }
    }
    Ok(criteria)
}

/// One condition of the query: member, operator, parameter name, value.
struct Condition {
    member: &'static str,
    op: &'static str,
    param: &'static str,
    value: String,
}

impl SearchCriteria {
    /// Whether no criterion is given (a search for all patients).
    pub fn is_empty(&self) -> bool {
        self.conditions().is_empty()
    }

    /// The id, when it is the only criterion: such a search has at most one
    /// result and is answered by a point read (the id is the partition key).
    pub fn only_id(&self) -> Option<&PatientId> {
        self.id.as_ref().filter(|_| self.field_names() == ["id"])
    }

    /// The names of the given criteria, for the audit record: never values.
    pub fn field_names(&self) -> Vec<&'static str> {
        self.conditions().iter().map(|c| c.param).collect()
    }

    fn conditions(&self) -> Vec<Condition> {
        let eq = |param: &'static str, value: Option<String>| {
            value.map(|value| Condition {
                member: param,
                op: "=",
                param,
                value,
            })
        };
        let range = |param: &'static str, op: &'static str, value: Option<String>| {
            value.map(|value| Condition {
                member: DATE_OF_BIRTH_KEY,
                op,
                param,
                value,
            })
        };
        let conditions = [
            eq("id", self.id.map(|v| v.to_string())),
            eq(
                "firstName",
                self.first_name.as_ref().map(|v| v.as_str().to_owned()),
            ),
            eq(
                "lastName",
                self.last_name.as_ref().map(|v| v.as_str().to_owned()),
            ),
            eq(
                "fullName",
                self.full_name.as_ref().map(|v| v.as_str().to_owned()),
            ),
            eq("gender", self.gender.map(|v| v.as_str().to_owned())),
            range(
                "dateOfBirthFrom",
                ">=",
                self.date_of_birth_from.map(|d| d.first_day_key()),
            ),
            range(
                "dateOfBirthTo",
                "<=",
                self.date_of_birth_to.map(|d| d.last_day_key()),
            ),
            eq(
                "postCode",
                self.post_code.as_ref().map(|v| v.as_str().to_owned()),
            ),
            eq(
                "insuranceNumber",
                self.insurance_number
                    .as_ref()
                    .map(|v| v.as_str().to_owned()),
            ),
            eq(
                "preferredContactNumber",
                self.preferred_contact_number
                    .as_ref()
                    .map(|v| v.as_str().to_owned()),
            ),
        ];
        conditions.into_iter().flatten().collect()
    }

    /// The store query, in the subset both the local store and Cosmos DB
    /// understand: `SELECT * FROM c [WHERE c.a = @a AND c.k >= @b ...]`, one
    /// parameter per criterion, named after it.
    ///
    /// No `ORDER BY`: search runs across partitions, and Cosmos DB's REST
    /// gateway refuses a cross-partition `ORDER BY` unless the client runs a
    /// query plan. Pages still come in one stable order (by partition key,
    /// which for patients is the id).
    pub fn to_query(&self) -> QuerySpec {
        let conditions = self.conditions();
        let mut text = String::from("SELECT * FROM c");
        for (i, c) in conditions.iter().enumerate() {
            text.push_str(if i == 0 { " WHERE " } else { " AND " });
            text.push_str(&format!("c.{} {} @{}", c.member, c.op, c.param));
        }
        let parameters = conditions
            .into_iter()
            .map(|c| (format!("@{}", c.param), Value::String(c.value)))
            .collect();
        QuerySpec { text, parameters }
    }
}

/// The query for all tests of one patient (a single-partition query on the
/// tests container, which is partitioned by `patientId`).
pub fn tests_of_patient_query(patient: &PatientId) -> QuerySpec {
    QuerySpec {
        text: "SELECT * FROM c WHERE c.patientId = @patientId ORDER BY c.id".to_owned(),
        parameters: vec![("@patientId".to_owned(), Value::String(patient.to_string()))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(body: &str) -> Result<SearchCriteria, ValidationError> {
        parse_search(body.as_bytes())
    }

    fn params(q: &QuerySpec) -> Vec<(&str, &str)> {
        q.parameters
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str().unwrap()))
            .collect()
    }

    #[test]
    fn only_an_id_alone_is_a_point_read() {
        let id = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
        let alone = search(&format!(r#"{{"id":"{id}"}}"#)).unwrap();
        assert_eq!(alone.only_id().map(|p| p.to_string()), Some(id.to_string()));
        for body in [
            format!(r#"{{"id":"{id}","lastName":"Smith"}}"#),
            format!(r#"{{"id":"{id}","dateOfBirthFrom":"1980"}}"#),
            r#"{"lastName":"Smith"}"#.to_string(),
            "{}".to_string(),
        ] {
            assert_eq!(search(&body).unwrap().only_id(), None, "{body}");
        }
    }

    #[test]
    fn empty_search_means_all() {
        for body in ["{}", "", "  \n", r#"{"firstName":null}"#] {
            let c = search(body).unwrap();
            assert!(c.is_empty(), "{body:?}");
            assert!(c.field_names().is_empty());
            let q = c.to_query();
            assert_eq!(q.text, "SELECT * FROM c");
            assert!(q.parameters.is_empty());
        }
    }

    #[test]
    fn every_criterion_becomes_a_parameter() {
        let c = search(
            r#"{"preferredContactNumber":"+45 1","insuranceNumber":"I-9","postCode":"2100",
                "dateOfBirthTo":"1990-06","dateOfBirthFrom":"1980","gender":"other",
                "fullName":"Ana Søren","lastName":"Søren","firstName":"Ana",
                "id":"3F2504E0-4F89-11D3-9A0C-0305E82C3301"}"#,
        )
        .unwrap();
        assert_eq!(c.field_names(), CRITERIA.to_vec());
        let q = c.to_query();
        assert_eq!(
            q.text,
            "SELECT * FROM c WHERE c.id = @id AND c.firstName = @firstName AND c.lastName = @lastName \
             AND c.fullName = @fullName AND c.gender = @gender AND c.dateOfBirthKey >= @dateOfBirthFrom \
             AND c.dateOfBirthKey <= @dateOfBirthTo AND c.postCode = @postCode \
             AND c.insuranceNumber = @insuranceNumber AND c.preferredContactNumber = @preferredContactNumber"
        );
        assert_eq!(
            params(&q),
            vec![
                ("@id", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
                ("@firstName", "Ana"),
                ("@lastName", "Søren"),
                ("@fullName", "Ana Søren"),
                ("@gender", "other"),
                ("@dateOfBirthFrom", "1980-01-01"),
                ("@dateOfBirthTo", "1990-06-30"),
                ("@postCode", "2100"),
                ("@insuranceNumber", "I-9"),
                ("@preferredContactNumber", "+45 1"),
            ]
        );
    }

    #[test]
    fn values_never_appear_in_the_query_text() {
        let c = search(r#"{"firstName":"x' OR 1=1 --","postCode":"a\"b)"}"#).unwrap();
        let q = c.to_query();
        assert_eq!(
            q.text,
            "SELECT * FROM c WHERE c.firstName = @firstName AND c.postCode = @postCode"
        );
        assert_eq!(
            params(&q),
            vec![("@firstName", "x' OR 1=1 --"), ("@postCode", "a\"b)")]
        );
        assert_eq!(c.field_names(), vec!["firstName", "postCode"]);
    }

    #[test]
    fn cosmos_body_shape() {
        let q = search(r#"{"gender":"male"}"#).unwrap().to_query();
        assert_eq!(
            q.to_cosmos_body(),
            json!({"query": "SELECT * FROM c WHERE c.gender = @gender",
                   "parameters": [{"name": "@gender", "value": "male"}]})
        );
    }

    #[test]
    fn single_date_bounds() {
        let q = search(r#"{"dateOfBirthTo":"2000-02"}"#).unwrap().to_query();
        assert_eq!(
            q.text,
            "SELECT * FROM c WHERE c.dateOfBirthKey <= @dateOfBirthTo"
        );
        assert_eq!(params(&q), vec![("@dateOfBirthTo", "2000-02-29")]);
        let q = search(r#"{"dateOfBirthFrom":"2001-02-28"}"#)
            .unwrap()
            .to_query();
        assert_eq!(params(&q), vec![("@dateOfBirthFrom", "2001-02-28")]);
    }

    #[test]
    fn date_range_must_not_be_empty() {
        assert!(search(r#"{"dateOfBirthFrom":"1980","dateOfBirthTo":"1980"}"#).is_ok());
        assert!(search(r#"{"dateOfBirthFrom":"1980-12-31","dateOfBirthTo":"1980"}"#).is_ok());
        assert!(search(r#"{"dateOfBirthFrom":"1980-05","dateOfBirthTo":"1980-05-01"}"#).is_ok());
        let e = search(r#"{"dateOfBirthFrom":"1981","dateOfBirthTo":"1980-12-31"}"#).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message().as_str()),
            (
                "dateOfBirthFrom",
                "dateOfBirthFrom must not be after dateOfBirthTo"
            )
        );
        let e =
            search(r#"{"dateOfBirthFrom":"1980-05-02","dateOfBirthTo":"1980-05-01"}"#).unwrap_err();
        assert_eq!(e.violation, Violation::EmptyDateRange);
    }

    #[test]
    fn invalid_criteria_name_the_member() {
        let cases = [
            (r#"{"id":"123"}"#, "id", Violation::NotAGuid),
            (
                r#"{"postCode":"123"}"#,
                "postCode",
                Violation::WrongLength { exact: 4 },
            ),
            (
                r#"{"postCode":"12345"}"#,
                "postCode",
                Violation::WrongLength { exact: 4 },
            ),
            (
                r#"{"gender":"Male"}"#,
                "gender",
                Violation::NotOneOf(Gender::VALUES),
            ),
            (
                r#"{"dateOfBirthFrom":"1980-13"}"#,
                "dateOfBirthFrom",
                Violation::MonthOutOfRange,
            ),
            (
                r#"{"dateOfBirthTo":"1981-02-29"}"#,
                "dateOfBirthTo",
                Violation::NoSuchDay,
            ),
            (
                r#"{"dateOfBirth":"1980"}"#,
                "dateOfBirth",
                Violation::UnknownField,
            ),
            (
                r#"{"lastUpdated":"x"}"#,
                "lastUpdated",
                Violation::UnknownField,
            ),
            (
                r#"{"firstName":1}"#,
                "firstName",
                Violation::WrongType(crate::error::JsonType::String),
            ),
            (r#"{"firstName":""}"#, "firstName", Violation::Empty),
            (
                r#"{"firstName":"a","firstName":"b"}"#,
                "firstName",
                Violation::DuplicateField,
            ),
            (
                "[]",
                "body",
                Violation::WrongType(crate::error::JsonType::Object),
            ),
        ];
        for (body, field, violation) in cases {
            assert_eq!(
                search(body).unwrap_err(),
                ValidationError::new(field, violation),
                "{body}"
            );
        }
        let long = format!(r#"{{"firstName":"{}"}}"#, "a".repeat(65));
        assert_eq!(
            search(&long).unwrap_err().violation,
            Violation::TooLong { max: 64 }
        );
        let ok = format!(r#"{{"firstName":"{}"}}"#, "a".repeat(64));
        assert!(search(&ok).is_ok());
        assert!(matches!(
            search("{").unwrap_err().violation,
            Violation::MalformedJson { .. }
        ));
    }

    #[test]
    fn tests_query_uses_a_parameter() {
        let id: PatientId = "3f2504e0-4f89-11d3-9a0c-0305e82c3301".parse().unwrap();
        let q = tests_of_patient_query(&id);
        assert_eq!(
            q.text,
            "SELECT * FROM c WHERE c.patientId = @patientId ORDER BY c.id"
        );
        assert_eq!(
            params(&q),
            vec![("@patientId", "3f2504e0-4f89-11d3-9a0c-0305e82c3301")]
        );
    }
}
