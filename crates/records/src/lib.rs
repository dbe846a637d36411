//! Patients and laboratory tests: the domain types of the patient-records
//! API, strict parsing and validation of request bodies, search criteria and
//! the parameterised store queries they become, and the conversion between
//! API values and store documents.
//!
//! Everything here is a pure function of its inputs: no I/O, no clock, no
//! randomness (callers pass ids and Unix milliseconds in). The crate must
//! never put a patient's data into an error, a `Debug` string or a query
//! text: errors name the field and the rule, `Debug` of patient values is
//! redacted, and queries carry values only as parameters.
//!
//! Rules beyond the contract's, decided here:
//! - Strings are never trimmed. Identifying fields (names, post code,
//!   insurance and contact numbers, search criteria) reject leading or
//!   trailing whitespace and control characters; test fields are free text
//!   kept verbatim (tab, CR, LF allowed), but not blank.
//! - Every string member must be non-empty, as the original API's validator
//!   required; lengths count characters (Unicode scalar values), not bytes.
//! - `null` for an optional member means absent; for a required member it is
//!   the "is required" error.
//! - Duplicate members are rejected (parsers disagree on which one wins).
//! - `gender` is exactly `male`, `female`, `other` or `unknown` (lowercase).
//! - Dates of birth must exist in the calendar (no February 30).
//! - GUIDs: hyphenated only, either case; stored and shown in lower case.
//! - A `PUT` body must carry the route's `id`; a test body may carry
//!   `patientId` only if it is the route's.

mod date;
mod error;
mod ids;
mod lab;
mod patient;
mod search;
mod text;
mod timestamp;

pub use date::DateOfBirth;
pub use error::{DocumentError, JsonType, ValidationError, Violation};
pub use ids::{InvalidGuid, PatientId, TestId};
pub use lab::{
    lab_test_from_document, lab_test_to_document, lab_test_to_json, parse_new_test, LabTest,
    Observation, TestFields, TestText, MAX_OBSERVATIONS,
};
pub use patient::{
    parse_new_patient, parse_patient_update, patient_from_document, patient_to_document,
    patient_to_json, ContactNumber, FirstName, FullName, Gender, InsuranceNumber, LastName,
    Patient, PatientFields, PostCode, DATE_OF_BIRTH_KEY,
};
pub use search::{parse_search, tests_of_patient_query, QuerySpec, SearchCriteria};
pub use timestamp::{Timestamp, TimestampError};

/// Properties Cosmos DB adds to every document. They are dropped when a
/// document is read back, so API responses never show them.
pub const SYSTEM_PROPERTIES: [&str; 5] = ["_rid", "_self", "_etag", "_ts", "_attachments"];

/// The `_etag` of a store document, for the `ETag` response header and
/// `If-Match` on replace. Read it before converting the document, which
/// drops it.
pub fn document_etag(doc: &serde_json::Value) -> Option<&str> {
    doc.get("_etag").and_then(serde_json::Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_is_read_from_the_document() {
        let doc = serde_json::json!({"id": "x", "_etag": "\"00-1\""});
        assert_eq!(document_etag(&doc), Some("\"00-1\""));
        assert_eq!(document_etag(&serde_json::json!({"_etag": 1})), None);
        assert_eq!(document_etag(&serde_json::json!({})), None);
    }
}
