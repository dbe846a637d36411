//! The one error type of request parsing: which field, and what is wrong with it.
//!
//! Messages name the field and the rule, never the offending value: an error
//! body may be logged, and the value may be patient data.

use std::fmt;

/// The JSON type a field must have (`strict_json` checks it).
pub use strict_json::JsonType;

/// What is wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// The body is not JSON at all.
    MalformedJson { line: usize, column: usize },
    /// An object member appears twice (JSON parsers disagree on which wins).
    DuplicateField,
    /// A member this API does not know.
    UnknownField,
    /// A required member is absent or `null`.
    Required,
    /// The member has the wrong JSON type.
    WrongType(JsonType),
    /// An empty string.
    Empty,
    /// A free-text string made of whitespace only.
    Blank,
    /// Leading or trailing whitespace in an identifying field (never trimmed silently).
    SurroundingWhitespace,
    /// A control character (free text may contain tab, CR and LF).
    ControlCharacter,
    /// Longer than allowed, counted in Unicode scalar values (characters), not bytes.
    TooLong { max: usize },
    /// Not exactly the required number of characters.
    WrongLength { exact: usize },
    /// Not one of the allowed values.
    NotOneOf(&'static [&'static str]),
    /// An array with more items than allowed.
    TooManyItems { max: usize },
    /// A date not in the form `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    DateFormat,
    /// Year `0000`.
    YearOutOfRange,
    /// Month `00` or above `12`.
    MonthOutOfRange,
    /// Day `00` or above `31`.
    DayOutOfRange,
    /// A day that the month does not have (February 30, April 31, February 29 of a common year).
    NoSuchDay,
    /// Not a hyphenated GUID.
    NotAGuid,
    /// Not an RFC 3339 timestamp (or outside years 0001–9999).
    NotATimestamp,
    /// `id` sent on a create (message kept from the original API).
    IdUnexpected,
    /// `lastUpdated` sent on a create (message kept from the original API).
    LastUpdatedUnexpected,
    /// The body's `id` is missing or differs from the route's (message kept from the original API).
    InconsistentIds,
    /// The body's `patientId` differs from the route's.
    PatientIdMismatch,
    /// `dateOfBirthFrom` is after `dateOfBirthTo`.
    EmptyDateRange,
}

/// A request (or stored document) that does not follow the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// JSON path of the offending member, such as `observations[2].issued`;
    /// `body` for errors about the body as a whole.
    pub field: String,
    pub violation: Violation,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, violation: Violation) -> Self {
        Self {
            field: field.into(),
            violation,
        }
    }

    /// The human-readable message for the problem `detail`.
    pub fn message(&self) -> String {
        let f = &self.field;
        match &self.violation {
            Violation::MalformedJson { line, column } => {
                format!("{f} is not valid JSON (line {line}, column {column})")
            }
            Violation::DuplicateField => format!("{f} appears more than once"),
            Violation::UnknownField => format!("{f} is not a known field"),
            Violation::Required => format!("{f} is required"),
            Violation::WrongType(t) => format!("{f} must be {}", t.with_article()),
            Violation::Empty => format!("{f} must not be empty"),
            Violation::Blank => format!("{f} must not be blank"),
            Violation::SurroundingWhitespace => {
                format!("{f} must not begin or end with whitespace")
            }
            Violation::ControlCharacter => format!("{f} must not contain control characters"),
            Violation::TooLong { max } => format!("{f} must be at most {max} characters"),
            Violation::WrongLength { exact } => format!("{f} must be exactly {exact} characters"),
            Violation::NotOneOf(allowed) => format!("{f} must be one of {}", allowed.join(", ")),
            Violation::TooManyItems { max } => format!("{f} must have at most {max} items"),
            Violation::DateFormat => format!("{f} must be YYYY, YYYY-MM or YYYY-MM-DD"),
            Violation::YearOutOfRange => format!("{f} year must be between 0001 and 9999"),
            Violation::MonthOutOfRange => format!("{f} month must be between 01 and 12"),
            Violation::DayOutOfRange => format!("{f} day must be between 01 and 31"),
            Violation::NoSuchDay => format!("{f} day does not exist in that month"),
            Violation::NotAGuid => {
                format!("{f} must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
            }
            Violation::NotATimestamp => format!("{f} must be an RFC 3339 timestamp"),
            Violation::IdUnexpected => "Id unexpected.".to_string(),
            Violation::LastUpdatedUnexpected => "lastUpdated unexpected.".to_string(),
            Violation::InconsistentIds => "Inconsistent registration IDs".to_string(),
            Violation::PatientIdMismatch => {
                format!("{f} must be the patient id of the route")
            }
            Violation::EmptyDateRange => {
                "dateOfBirthFrom must not be after dateOfBirthTo".to_string()
            }
        }
    }
}

/// A JSON reading error is a validation error of the same member; the
/// message is this crate's.
impl From<strict_json::JsonError> for ValidationError {
    fn from(e: strict_json::JsonError) -> Self {
        use strict_json::Violation as Json;
        let violation = match e.violation {
            Json::MalformedJson { line, column } => Violation::MalformedJson { line, column },
            Json::DuplicateField => Violation::DuplicateField,
            Json::UnknownField => Violation::UnknownField,
            Json::Required => Violation::Required,
            Json::WrongType(t) => Violation::WrongType(t),
        };
        ValidationError::new(e.field, violation)
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ValidationError {}

/// A stored document that cannot be turned back into a domain value: the
/// store holds something this code did not write (or no longer accepts).
/// Callers answer it as a server error, never as the client's fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError(pub ValidationError);

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stored document is invalid: {}", self.0.message())
    }
}

impl std::error::Error for DocumentError {}

impl From<strict_json::JsonError> for DocumentError {
    fn from(e: strict_json::JsonError) -> Self {
        DocumentError(e.into())
    }
}

impl From<ValidationError> for DocumentError {
    fn from(e: ValidationError) -> Self {
        DocumentError(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_messages_are_exact() {
        let m = |v| ValidationError::new("id", v).message();
        assert_eq!(m(Violation::IdUnexpected), "Id unexpected.");
        assert_eq!(
            m(Violation::LastUpdatedUnexpected),
            "lastUpdated unexpected."
        );
        assert_eq!(
            m(Violation::InconsistentIds),
            "Inconsistent registration IDs"
        );
    }

    #[test]
    fn messages_name_the_field() {
        let e = ValidationError::new("firstName", Violation::WrongType(JsonType::String));
        assert_eq!(e.to_string(), "firstName must be a string");
        let e = ValidationError::new("observations[2].issued", Violation::NotATimestamp);
        assert_eq!(
            e.message(),
            "observations[2].issued must be an RFC 3339 timestamp"
        );
        let e = ValidationError::new("gender", Violation::NotOneOf(&["male", "female"]));
        assert_eq!(e.message(), "gender must be one of male, female");
    }
}
