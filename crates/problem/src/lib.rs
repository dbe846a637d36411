//! RFC 9457 problem details (`application/problem+json`), the single error
//! body shape of every component.
//!
//! Each component keeps its own error enum and maps it to a [`Problem`] in one
//! place; this crate only knows the wire shape. It must never put a secret, a
//! stack trace or patient data into a problem: callers pass only messages that
//! are safe to show a client.

use serde::Serialize;

/// Media type of every error body.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// One problem response. Build it with the constructors, then add the
/// correlation id and, for validation errors, the offending field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A URI reference naming the kind of problem, e.g. `/problems/validation`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, human-readable summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Human-readable explanation of this occurrence.
    pub detail: String,
    /// The trace id of the request this problem answers.
    pub correlation_id: String,
    /// The request field at fault, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    /// A problem of the given status; the `type` and `title` follow from it.
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        let (slug, title) = describe(status);
        Self {
            kind: format!("/problems/{slug}"),
            title: title.to_string(),
            status,
            detail: detail.into(),
            correlation_id: String::new(),
            field: None,
        }
    }

    /// 400 about one field of the request.
    pub fn invalid_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(400, detail).with_field(field)
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn with_correlation_id(mut self, correlation_id: impl Into<String>) -> Self {
        self.correlation_id = correlation_id.into();
        self
    }

    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_vec(self).expect("problem serialises")
    }
}

/// The `type` slug and `title` for a status code.
fn describe(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("validation", "Bad Request"),
        401 => ("unauthorized", "Unauthorized"),
        403 => ("forbidden", "Forbidden"),
        404 => ("not-found", "Not Found"),
        408 => ("request-timeout", "Request Timeout"),
        405 => ("method-not-allowed", "Method Not Allowed"),
        406 => ("not-acceptable", "Not Acceptable"),
        409 => ("conflict", "Conflict"),
        411 => ("length-required", "Length Required"),
        412 => ("precondition-failed", "Precondition Failed"),
        413 => ("payload-too-large", "Payload Too Large"),
        415 => ("unsupported-media-type", "Unsupported Media Type"),
        422 => ("unprocessable", "Unprocessable Content"),
        428 => ("precondition-required", "Precondition Required"),
        429 => ("too-many-requests", "Too Many Requests"),
        501 => ("not-implemented", "Not Implemented"),
        502 => ("bad-gateway", "Bad Gateway"),
        503 => ("unavailable", "Service Unavailable"),
        504 => ("gateway-timeout", "Gateway Timeout"),
        500..=599 => ("server-error", "Server Error"),
        _ => ("error", "Error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_the_rfc_9457_members_and_the_correlation_id() {
        let body = Problem::invalid_field("firstName", "firstName is required.")
            .with_correlation_id("4bf92f3577b34da6a3ce929d0e0e4736")
            .to_json();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["type"], "/problems/validation");
        assert_eq!(value["title"], "Bad Request");
        assert_eq!(value["status"], 400);
        assert_eq!(value["detail"], "firstName is required.");
        assert_eq!(value["field"], "firstName");
        assert_eq!(value["correlationId"], "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn omits_field_when_not_about_a_field() {
        let value: serde_json::Value =
            serde_json::from_slice(&Problem::new(503, "Audit unavailable.").to_json()).unwrap();
        assert!(value.get("field").is_none());
        assert_eq!(value["type"], "/problems/unavailable");
    }
}
