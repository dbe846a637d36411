//! Errors: invalid audit input (the caller's fault), invalid stored documents
//! (the store's), and sealing errors (a programming error of the caller).
//!
//! Messages name the field and the rule, never the value.

use std::fmt;

/// What is wrong with one member of an audit input (or of a stored document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// The body is not JSON.
    MalformedJson { line: usize, column: usize },
    /// A member appears twice.
    DuplicateField,
    /// A member this API does not know.
    UnknownField,
    /// A required member is absent or `null`.
    Required,
    /// The member must be "a string", "an object", "an array", "an integer".
    WrongType(&'static str),
    /// An empty string.
    Empty,
    /// More characters than allowed.
    TooLong { max: usize },
    /// A character outside the allowed set, described in words.
    InvalidCharacters(&'static str),
    /// Not one of the allowed values.
    NotOneOf(&'static [&'static str]),
    /// More items than allowed.
    TooManyItems { max: usize },
    /// The same item twice.
    DuplicateItem,
    /// `criteria` on an operation other than `search`.
    CriteriaNotAllowed,
    /// A stored value that is not in its one canonical form.
    NotCanonical(&'static str),
    /// Stored members that contradict each other (such as a document `id`
    /// that is not derived from its chain key and sequence).
    Inconsistent(&'static str),
}

/// An audit input or stored document that does not follow the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditInputError {
    /// JSON path, such as `resource.criteria[3]`; `body` for the whole body.
    pub field: String,
    pub violation: Violation,
}

impl AuditInputError {
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
            Violation::WrongType(t) => format!("{f} must be {t}"),
            Violation::Empty => format!("{f} must not be empty"),
            Violation::TooLong { max } => format!("{f} must be at most {max} characters"),
            Violation::InvalidCharacters(allowed) => format!("{f} may contain only {allowed}"),
            Violation::NotOneOf(allowed) => format!("{f} must be one of {}", allowed.join(", ")),
            Violation::TooManyItems { max } => format!("{f} must have at most {max} items"),
            Violation::DuplicateItem => format!("{f} repeats an earlier item"),
            Violation::CriteriaNotAllowed => {
                format!("{f} is allowed only when the operation is search")
            }
            Violation::NotCanonical(form) => format!("{f} must be {form}"),
            Violation::Inconsistent(what) => format!("{f} {what}"),
        }
    }
}

/// A JSON reading error is an input error of the same member; the message
/// is this crate's.
impl From<strict_json::JsonError> for AuditInputError {
    fn from(e: strict_json::JsonError) -> Self {
        use strict_json::Violation as Json;
        let violation = match e.violation {
            Json::MalformedJson { line, column } => Violation::MalformedJson { line, column },
            Json::DuplicateField => Violation::DuplicateField,
            Json::UnknownField => Violation::UnknownField,
            Json::Required => Violation::Required,
            Json::WrongType(t) => Violation::WrongType(t.with_article()),
        };
        AuditInputError::new(e.field, violation)
    }
}

impl fmt::Display for AuditInputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for AuditInputError {}

/// A stored document that is not a valid audit record or chain head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError(pub AuditInputError);

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stored audit document is invalid: {}", self.0.message())
    }
}

impl std::error::Error for DocumentError {}

impl From<strict_json::JsonError> for DocumentError {
    fn from(e: strict_json::JsonError) -> Self {
        DocumentError(e.into())
    }
}

impl From<AuditInputError> for DocumentError {
    fn from(e: AuditInputError) -> Self {
        DocumentError(e)
    }
}

/// Why a record could not be sealed onto a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealError {
    /// The head given belongs to a different resource's chain.
    HeadOfOtherChain,
    /// The chain already holds `u64::MAX` records.
    SequenceExhausted,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SealError::HeadOfOtherChain => "the chain head belongs to another resource's chain",
            SealError::SequenceExhausted => "the chain has no sequence numbers left",
        })
    }
}

impl std::error::Error for SealError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_field_and_rule() {
        let m = |f: &str, v| AuditInputError::new(f, v).message();
        assert_eq!(
            m("resource.type", Violation::NotOneOf(&["patient", "test"])),
            "resource.type must be one of patient, test"
        );
        assert_eq!(
            m("resource", Violation::WrongType("an object")),
            "resource must be an object"
        );
        assert_eq!(
            m("resource.criteria", Violation::CriteriaNotAllowed),
            "resource.criteria is allowed only when the operation is search"
        );
        assert_eq!(
            m("resource.criteria[2]", Violation::DuplicateItem),
            "resource.criteria[2] repeats an earlier item"
        );
    }
}
