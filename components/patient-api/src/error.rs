//! Every way a patient-api request can fail, and the one place each becomes
//! a status, a problem body and headers.

use cosmos::CosmosError;
use problem::Problem;
use records::{ValidationError, Violation};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 404; the detail is fixed text, never an id.
    NotFound(&'static str),
    /// 405 with `Allow`.
    MethodNotAllowed { allow: &'static str },
    /// 400 about a body member.
    Invalid(ValidationError),
    /// 400 about a header or query parameter.
    BadParameter {
        field: &'static str,
        detail: &'static str,
    },
    /// 413: the body is over [`crate::service::MAX_BODY_BYTES`].
    TooLarge,
    /// 412: `If-Match` is stale.
    PreconditionFailed,
    /// 422: the `Idempotency-Key` made a resource with other content (or
    /// that resource has changed since).
    IdempotencyKeyReused,
    /// 422: the `Idempotency-Key` is past its lifetime.
    IdempotencyKeyExpired,
    /// 503: the audit record could not be written, so nothing was done.
    AuditUnavailable,
    /// 503: the store is throttling or down (after the client's retries).
    StoreUnavailable { retry_after_secs: u64 },
    /// 502: the store answered outside its protocol.
    StoreProtocol,
    /// 503: a variable is missing or unusable; names the variable.
    Misconfigured(&'static str),
    /// 500: a fault of this service, never of the request. The text is for logs.
    Internal(&'static str),
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::Invalid(e)
    }
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::Invalid(_) | ApiError::BadParameter { .. } => 400,
            ApiError::TooLarge => 413,
            ApiError::PreconditionFailed => 412,
            ApiError::IdempotencyKeyReused | ApiError::IdempotencyKeyExpired => 422,
            ApiError::AuditUnavailable
            | ApiError::StoreUnavailable { .. }
            | ApiError::Misconfigured(_) => 503,
            ApiError::StoreProtocol => 502,
            ApiError::Internal(_) => 500,
        }
    }

    /// The problem body (the caller adds the correlation id).
    pub fn problem(&self) -> Problem {
        let status = self.status();
        match self {
            ApiError::NotFound(detail) => Problem::new(status, *detail),
            ApiError::MethodNotAllowed { .. } => {
                Problem::new(status, "This method is not allowed on this route.")
            }
            ApiError::Invalid(e) => Problem::invalid_field(e.field.clone(), e.message()),
            ApiError::BadParameter { field, detail } => Problem::invalid_field(*field, *detail),
            ApiError::TooLarge => Problem::new(status, "The request body is larger than 64 KiB."),
            ApiError::PreconditionFailed => Problem::new(
                status,
                "The patient has changed since it was read (If-Match is stale).",
            ),
            ApiError::IdempotencyKeyReused => Problem::new(
                status,
                "This Idempotency-Key was used for a different request; use a new key.",
            )
            .with_field("Idempotency-Key"),
            ApiError::IdempotencyKeyExpired => Problem::new(
                status,
                "This Idempotency-Key is older than 24 hours; use a new key.",
            )
            .with_field("Idempotency-Key"),
            ApiError::AuditUnavailable => Problem::new(
                status,
                "The audit register is unavailable; nothing was read or written. Retry later.",
            ),
            ApiError::StoreUnavailable { .. } => {
                Problem::new(status, "The document store is unavailable. Retry later.")
            }
            ApiError::StoreProtocol => {
                Problem::new(status, "The document store answered unexpectedly.")
            }
            ApiError::Misconfigured(_) => Problem::new(status, "The service is not configured."),
            ApiError::Internal(_) => Problem::new(status, "An internal error occurred."),
        }
    }

    /// Headers beside the body: `Retry-After` on every 503, `Allow` on 405.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            ApiError::MethodNotAllowed { allow } => vec![("allow", allow.to_string())],
            ApiError::StoreUnavailable { retry_after_secs } => {
                vec![("retry-after", retry_after_secs.to_string())]
            }
            ApiError::AuditUnavailable | ApiError::Misconfigured(_) => {
                vec![("retry-after", "1".to_string())]
            }
            _ => Vec::new(),
        }
    }

    /// A short, data-free reason for the request log.
    pub fn reason(&self) -> String {
        match self {
            ApiError::NotFound(_) => "not found".into(),
            ApiError::MethodNotAllowed { .. } => "method not allowed".into(),
            // An unknown or duplicated member's name is the client's own text
            // (it may be patient data): logged by kind only.
            ApiError::Invalid(e) if e.violation == Violation::UnknownField => {
                "invalid body: unknown member".into()
            }
            ApiError::Invalid(e) if e.violation == Violation::DuplicateField => {
                "invalid body: duplicate member".into()
            }
            // Otherwise the path of a known member: safe, and short is better in logs.
            ApiError::Invalid(e) => format!("invalid {}", e.field),
            ApiError::BadParameter { field, .. } => format!("invalid {field}"),
            ApiError::TooLarge => "body too large".into(),
            ApiError::PreconditionFailed => "stale if-match".into(),
            ApiError::IdempotencyKeyReused => "idempotency key reused".into(),
            ApiError::IdempotencyKeyExpired => "idempotency key expired".into(),
            ApiError::AuditUnavailable => "audit unavailable".into(),
            ApiError::StoreUnavailable { .. } => "store unavailable".into(),
            ApiError::StoreProtocol => "store protocol error".into(),
            ApiError::Misconfigured(variable) => format!("variable {variable} not available"),
            ApiError::Internal(why) => (*why).into(),
        }
    }
}

/// A store failure that the operation did not expect (a 404 or 412 the
/// operation gives meaning to is matched before this).
pub fn store_error(e: CosmosError) -> ApiError {
    match e {
        CosmosError::Throttled { retry_after } => ApiError::StoreUnavailable {
            retry_after_secs: retry_after.as_millis().div_ceil(1000).clamp(1, 60) as u64,
        },
        CosmosError::Unavailable { .. } => ApiError::StoreUnavailable {
            retry_after_secs: 1,
        },
        // Wrong key or permissions: configuration, and it may heal on rotation.
        CosmosError::Unauthorized | CosmosError::Forbidden => ApiError::Misconfigured("cosmoskey"),
        CosmosError::Protocol(_) => ApiError::StoreProtocol,
        CosmosError::TooLarge => ApiError::TooLarge,
        CosmosError::NotFound => ApiError::Internal("store: unexpected not found"),
        CosmosError::Conflict => ApiError::Internal("store: unexpected conflict"),
        CosmosError::PreconditionFailed => {
            ApiError::Internal("store: unexpected precondition failure")
        }
        CosmosError::BadRequest { .. } => ApiError::Internal("store: request rejected"),
        CosmosError::InvalidInput(_) => ApiError::Internal("store: invalid input"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn store_outages_are_503_with_retry_after_never_500() {
        for e in [
            CosmosError::Throttled {
                retry_after: Duration::from_millis(100),
            },
            CosmosError::Unavailable {
                reason: "timeout".into(),
            },
            CosmosError::Unauthorized,
        ] {
            let api = store_error(e);
            assert_eq!(api.status(), 503);
            assert!(
                api.headers()
                    .iter()
                    .any(|(k, v)| *k == "retry-after" && v == "1"),
                "{api:?}"
            );
        }
        let slow = store_error(CosmosError::Throttled {
            retry_after: Duration::from_millis(2500),
        });
        assert_eq!(slow.headers(), vec![("retry-after", "3".to_string())]);
    }

    #[test]
    fn legacy_messages_reach_the_problem_detail() {
        let e = ApiError::Invalid(ValidationError::new("id", records::Violation::IdUnexpected));
        let p = e.problem();
        assert_eq!(
            (p.status, p.detail.as_str(), p.field.as_deref()),
            (400, "Id unexpected.", Some("id"))
        );
    }

    #[test]
    fn client_chosen_member_names_stay_out_of_the_log() {
        for violation in [Violation::UnknownField, Violation::DuplicateField] {
            let e = ApiError::Invalid(ValidationError::new(
                "observations[0].Vandersloot",
                violation,
            ));
            assert!(!e.reason().contains("Vandersloot"), "{}", e.reason());
        }
        let known = ApiError::Invalid(ValidationError::new(
            "postCode",
            Violation::WrongLength { exact: 4 },
        ));
        assert_eq!(known.reason(), "invalid postCode");
    }

    #[test]
    fn internal_reasons_stay_out_of_the_body() {
        let p = ApiError::Internal("store: unexpected conflict").problem();
        assert_eq!(p.detail, "An internal error occurred.");
        let p = ApiError::Misconfigured("cosmoskey").problem();
        assert!(!p.detail.contains("cosmoskey"));
    }
}
