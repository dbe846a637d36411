//! Every way the gateway itself refuses or fails a request, mapped to a
//! status, a problem+json body and a log reason in this one place.
//!
//! Client details say what to do, never which credential failed, what a
//! secret holds or what configuration is wrong (that goes to the log).

use component_kit::{CACHE_CONTROL_HEADER, NO_STORE};
use gateway_policy::{Denial, LimitDecision};
use http::StatusCode;
use problem::Problem;

use crate::reply::Reply;

#[derive(Debug)]
pub enum GatewayError {
    NotFound,
    MethodNotAllowed {
        allow: &'static [&'static str],
    },
    /// A header the gateway reads appeared more than once (ambiguous).
    DuplicateHeader(&'static str),
    InvalidContentLength,
    /// `spin-client-addr` is not on the configured allow-list.
    ClientAddressRefused,
    /// 401 or 403 as `gateway_policy::authorize` decided.
    Denied(Denial),
    RateLimited(LimitDecision),
    /// The key-value store could not count: fail closed.
    LimitStoreUnavailable,
    BodyTooLarge {
        limit: u64,
    },
    BodyUnreadable,
    /// The client did not send its whole body within the body deadline
    /// (a slow or stalled upload holds a request open).
    BodyTimeout {
        seconds: u64,
    },
    /// A setting is missing or invalid; the log says which.
    Misconfigured,
    HealthKeyRejected,
    NotReady(&'static str),
    BackendTimeout,
    BackendUnreachable,
    /// The backend refused the gateway's host key: a deployment mistake,
    /// never the client's.
    BackendRejectedHostKey,
    /// The backend failed without a problem answer (a trap: the runtime's
    /// bare 500): its text is not passed on.
    BackendFailed,
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        use GatewayError::*;
        match self {
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            DuplicateHeader(_) | InvalidContentLength | BodyUnreadable => StatusCode::BAD_REQUEST,
            ClientAddressRefused => StatusCode::FORBIDDEN,
            // gateway_policy decides 401 or 403; anything else it could
            // say is refused as 403 (closed).
            Denied(denial) => StatusCode::from_u16(denial.status())
                .ok()
                .filter(StatusCode::is_client_error)
                .unwrap_or(StatusCode::FORBIDDEN),
            RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            HealthKeyRejected => StatusCode::UNAUTHORIZED,
            LimitStoreUnavailable | Misconfigured | NotReady(_) | BackendUnreachable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            BackendTimeout => StatusCode::GATEWAY_TIMEOUT,
            BackendRejectedHostKey | BackendFailed => StatusCode::BAD_GATEWAY,
        }
    }

    /// A static code for the access log.
    pub fn reason(&self) -> &'static str {
        use GatewayError::*;
        match self {
            NotFound => "not_found",
            MethodNotAllowed { .. } => "method_not_allowed",
            DuplicateHeader(_) => "duplicate_header",
            InvalidContentLength => "invalid_content_length",
            ClientAddressRefused => "client_address_refused",
            Denied(Denial::Unauthenticated { failure, .. }) => failure.code(),
            Denied(Denial::Forbidden { .. }) => "insufficient_scope",
            RateLimited(_) => "rate_limited",
            LimitStoreUnavailable => "limit_store_unavailable",
            BodyTooLarge { .. } => "body_too_large",
            BodyUnreadable => "body_unreadable",
            BodyTimeout { .. } => "body_timeout",
            Misconfigured => "misconfigured",
            HealthKeyRejected => "health_key_rejected",
            NotReady(_) => "not_ready",
            BackendTimeout => "backend_timeout",
            BackendUnreachable => "backend_unreachable",
            BackendRejectedHostKey => "backend_rejected_host_key",
            BackendFailed => "backend_failed",
        }
    }

    fn detail(&self) -> String {
        use GatewayError::*;
        match self {
            NotFound => "No such route.".into(),
            MethodNotAllowed { allow } => {
                format!("This route allows only {}.", allow.join(", "))
            }
            DuplicateHeader(name) => format!("The header {name} must appear at most once."),
            InvalidContentLength => "Content-Length is not a number of bytes.".into(),
            ClientAddressRefused => "Requests from this address are not allowed.".into(),
            Denied(denial) => denial.detail(),
            RateLimited(_) => "The rate limit or quota of these credentials is used up.".into(),
            LimitStoreUnavailable => "Usage cannot be counted right now; try again.".into(),
            BodyTooLarge { limit } => format!("The request body exceeds {limit} bytes."),
            BodyUnreadable => "The request body could not be read.".into(),
            BodyTimeout { seconds } => {
                format!("The request body did not arrive within {seconds} s.")
            }
            Misconfigured => "The service is not configured.".into(),
            HealthKeyRejected => "A valid x-health-key is required.".into(),
            NotReady(name) => format!("{name} is not ready."),
            BackendTimeout => "The service did not answer in time.".into(),
            BackendUnreachable => "The service is unavailable; try again.".into(),
            BackendRejectedHostKey => "The service could not be reached.".into(),
            BackendFailed => "The service failed; try again.".into(),
        }
    }

    pub fn into_reply(self, correlation_id: &str) -> Reply {
        let status = self.status();
        let problem =
            Problem::new(status.as_u16(), self.detail()).with_correlation_id(correlation_id);
        let mut reply = Reply::new(status, problem::CONTENT_TYPE, problem.to_json());
        reply.set(CACHE_CONTROL_HEADER, NO_STORE);
        match &self {
            GatewayError::MethodNotAllowed { allow } => reply.set("allow", allow.join(", ")),
            GatewayError::Denied(denial) => {
                if let Some(challenge) = denial.www_authenticate() {
                    reply.set("www-authenticate", challenge);
                }
            }
            GatewayError::RateLimited(decision) => reply.set_limit_headers(decision),
            _ => {}
        }
        if status == StatusCode::SERVICE_UNAVAILABLE && !reply.has("retry-after") {
            reply.set("retry-after", "1");
        }
        reply
    }
}
