//! Request hygiene: what a client may pass through to the backends, the
//! headers the gateway sets itself, where credentials are read from, and the
//! body size limit.

use percent::Plus;

/// Set by the gateway: the authenticated actor ([`crate::Actor::audit_name`]).
pub const ACTOR_HEADER: &str = "x-actor";
/// Set by the gateway: the trace id, on forwarded requests and on responses.
pub const CORRELATION_ID_HEADER: &str = "x-correlation-id";
/// Set by the gateway: its own span as parent ([`crate::TraceContext`]).
pub const TRACEPARENT_HEADER: &str = crate::trace::TRACEPARENT;
/// Where clients send their subscription key.
pub const SUBSCRIPTION_KEY_HEADER: &str = "ocp-apim-subscription-key";
/// The query-string alternative to [`SUBSCRIPTION_KEY_HEADER`].
pub const SUBSCRIPTION_KEY_QUERY: &str = "subscription-key";
/// Health key header of `GET /health/ready`.
pub const HEALTH_KEY_HEADER: &str = "x-health-key";

/// The request headers a client may pass to a backend.
///
/// An allow-list, not a deny-list: the backends trust several headers
/// (`x-functions-key`, `x-actor`, `x-correlation-id`, `spin-*`, ...) because
/// only the gateway can reach them. With a deny-list, every header a backend
/// starts to trust later, and every spelling nobody thought of, would pass
/// through by default and let a client forge identity or keys. With an
/// allow-list a forgotten header is merely dropped, which fails safe and
/// shows up at once in tests. The list is what the public contract uses:
/// content negotiation, conditional requests, paging, and the user agent.
/// `content-length` is absent on purpose: the outgoing request computes its
/// own from the body the gateway forwards (no request smuggling through a
/// mismatched length). Everything the gateway must set (`x-actor`, keys,
/// `traceparent`, `x-correlation-id`) it sets itself after filtering.
const FORWARDABLE_REQUEST_HEADERS: [&str; 7] = [
    "accept",
    "content-type",
    "idempotency-key",
    "if-match",
    "if-none-match",
    "user-agent",
    "x-continuation-token",
];

/// Whether a client's request header may be forwarded to a backend
/// (case-insensitive).
pub fn is_forwardable_request_header(name: &str) -> bool {
    FORWARDABLE_REQUEST_HEADERS
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(name))
}

/// The response headers of a backend that reach the client: what the public
/// contract uses (media type, caching, entity tags, the created resource,
/// paging, back-off). Everything else a backend sets (its own correlation id,
/// host details, anything added later) stays inside; the gateway sets
/// `x-correlation-id` and the `RateLimit-*` headers itself.
const FORWARDABLE_RESPONSE_HEADERS: [&str; 6] = [
    "cache-control",
    "content-type",
    "etag",
    "location",
    "retry-after",
    "x-continuation-token",
];

/// Whether a backend's response header may be passed to the client
/// (case-insensitive).
pub fn is_forwardable_response_header(name: &str) -> bool {
    FORWARDABLE_RESPONSE_HEADERS
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(name))
}

/// The token of an `Authorization: Bearer <token>` value; `None` for another
/// scheme or an empty token. The token itself is not checked here.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Splits the `subscription-key` parameter off a query string: the key (the
/// first one, percent-decoded) and the query to forward, without any
/// `subscription-key` parameter, so a key never reaches a backend or its logs.
/// A header key takes precedence over a query key; the shell decides that.
pub fn split_subscription_key(query: &str) -> (Option<String>, String) {
    let mut key = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent::decode(name, Plus::Literal).as_deref() == Some(SUBSCRIPTION_KEY_QUERY) {
            if key.is_none() {
                key =
                    Some(percent::decode(value, Plus::Literal).unwrap_or_else(|| value.to_owned()));
            }
        } else {
            rest.push(pair);
        }
    }
    (key, rest.join("&"))
}

/// Default largest request body: 64 KiB (a patient or a test with many
/// observations is a few KiB).
pub const DEFAULT_BODY_LIMIT: u64 = 64 * 1024;
/// Largest configurable body limit: 64 MiB (a component holds the body in
/// memory).
pub const MAX_BODY_LIMIT: u64 = 64 * 1024 * 1024;

/// Why a body limit setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyLimitError {
    #[error("body limit `{0}` is not a number of bytes with an optional KiB or MiB suffix")]
    Invalid(String),
    #[error("body limit must be between 1 byte and 64 MiB")]
    OutOfRange,
}

/// The largest request body the gateway accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(u64);

impl Default for BodyLimit {
    fn default() -> Self {
        BodyLimit(DEFAULT_BODY_LIMIT)
    }
}

impl BodyLimit {
    /// Parses `1048576`, `512KiB` or `1MiB` (binary units; `B` allowed as a
    /// suffix). An empty value means the default.
    pub fn parse(text: &str) -> Result<BodyLimit, BodyLimitError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(BodyLimit::default());
        }
        let invalid = || BodyLimitError::Invalid(text.chars().take(40).collect());
        let digits_end = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(digits_end);
        let multiplier: u64 = match unit.trim_start() {
            "" | "B" => 1,
            "KiB" => 1024,
            "MiB" => 1024 * 1024,
            _ => return Err(invalid()),
        };
        if digits.is_empty() {
            return Err(invalid());
        }
        let bytes = digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(multiplier))
            .ok_or(BodyLimitError::OutOfRange)?;
        BodyLimit::from_bytes(bytes)
    }

    /// A limit of `bytes`, from 1 byte to [`MAX_BODY_LIMIT`].
    pub fn from_bytes(bytes: u64) -> Result<BodyLimit, BodyLimitError> {
        if bytes == 0 || bytes > MAX_BODY_LIMIT {
            return Err(BodyLimitError::OutOfRange);
        }
        Ok(BodyLimit(bytes))
    }

    pub fn bytes(self) -> u64 {
        self.0
    }

    /// Whether a body of `len` bytes fits.
    pub fn allows(self, len: u64) -> bool {
        len <= self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_headers_are_forwarded_in_any_case() {
        for name in [
            "content-type",
            "Content-Type",
            "accept",
            "If-Match",
            "if-none-match",
            "x-continuation-token",
            "User-Agent",
        ] {
            assert!(is_forwardable_request_header(name), "{name}");
        }
    }

    #[test]
    fn headers_backends_trust_and_hop_by_hop_headers_are_stripped() {
        let stripped = [
            "x-functions-key",
            "X-Functions-Key",
            "x-health-key",
            "spin-full-url",
            "spin-path-info",
            "spin-client-addr",
            "Spin-Matched-Route",
            "x-actor",
            "x-authenticated-actor",
            "x-correlation-id",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "forwarded",
            "connection",
            "keep-alive",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "proxy-authorization",
            "proxy-connection",
            "host",
            "authorization",
            "Authorization",
            "ocp-apim-subscription-key",
            "cookie",
            "traceparent",
            "tracestate",
            "content-length",
            "x-ms-date",
            "x-custom",
            "",
            "content-type ",
            " accept",
        ];
        for name in stripped {
            assert!(!is_forwardable_request_header(name), "{name:?}");
        }
    }

    #[test]
    fn only_contract_response_headers_pass_back() {
        for name in [
            "Cache-Control",
            "Content-Type",
            "etag",
            "Location",
            "retry-after",
            "X-Continuation-Token",
        ] {
            assert!(is_forwardable_response_header(name), "{name}");
        }
        for name in [
            "x-correlation-id",
            "set-cookie",
            "server",
            "x-powered-by",
            "x-functions-key",
            "content-length",
            "transfer-encoding",
            "connection",
            "",
        ] {
            assert!(!is_forwardable_response_header(name), "{name}");
        }
    }

    #[test]
    fn internal_header_names() {
        assert_eq!(ACTOR_HEADER, "x-actor");
        assert_eq!(CORRELATION_ID_HEADER, "x-correlation-id");
        assert_eq!(TRACEPARENT_HEADER, "traceparent");
        for name in [
            ACTOR_HEADER,
            CORRELATION_ID_HEADER,
            TRACEPARENT_HEADER,
            SUBSCRIPTION_KEY_HEADER,
            HEALTH_KEY_HEADER,
        ] {
            assert!(
                !is_forwardable_request_header(name),
                "a client must not set {name}"
            );
        }
    }

    #[test]
    fn bearer_token_extraction() {
        assert_eq!(bearer_token("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer_token("bearer   abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER abc "), Some("abc"));
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Basic dXNlcjpwdw=="), None);
        assert_eq!(bearer_token("Bearerabc"), None);
        assert_eq!(bearer_token(""), None);
    }

    #[test]
    fn subscription_key_is_taken_out_of_the_query() {
        assert_eq!(
            split_subscription_key("subscription-key=abc&limit=10"),
            (Some("abc".into()), "limit=10".into())
        );
        assert_eq!(
            split_subscription_key("resourceType=patient&subscription-key=a%2Bb%3D&from=2024"),
            (Some("a+b=".into()), "resourceType=patient&from=2024".into())
        );
        assert_eq!(
            split_subscription_key("subscription%2Dkey=x&subscription-key=y&limit=1"),
            (Some("x".into()), "limit=1".into()),
            "every spelling and repetition is removed; the first wins"
        );
        assert_eq!(split_subscription_key("limit=5"), (None, "limit=5".into()));
        assert_eq!(split_subscription_key(""), (None, String::new()));
        assert_eq!(
            split_subscription_key("subscription-key"),
            (Some(String::new()), String::new())
        );
        assert_eq!(
            split_subscription_key("subscription-key=%zz"),
            (Some("%zz".into()), String::new())
        );
        assert_eq!(
            split_subscription_key("Subscription-Key=x"),
            (None, "Subscription-Key=x".into())
        );
    }

    #[test]
    fn body_limit_parsing() {
        assert_eq!(BodyLimit::parse("").unwrap().bytes(), DEFAULT_BODY_LIMIT);
        assert_eq!(BodyLimit::parse("1048576").unwrap().bytes(), 1_048_576);
        assert_eq!(BodyLimit::parse("64KiB").unwrap().bytes(), 65_536);
        assert_eq!(BodyLimit::parse(" 2 MiB ").unwrap().bytes(), 2_097_152);
        assert_eq!(BodyLimit::parse("100B").unwrap().bytes(), 100);
        assert_eq!(BodyLimit::parse("64MiB").unwrap().bytes(), MAX_BODY_LIMIT);
        for bad in ["1.5MiB", "-1", "MiB", "10 kb", "10MB", "0x10", "ten"] {
            assert!(
                matches!(BodyLimit::parse(bad), Err(BodyLimitError::Invalid(_))),
                "{bad}"
            );
        }
        for out in [
            "0",
            "0KiB",
            "65MiB",
            "99999999999999999999",
            "18014398509481984MiB",
        ] {
            assert_eq!(
                BodyLimit::parse(out),
                Err(BodyLimitError::OutOfRange),
                "{out}"
            );
        }
        let limit = BodyLimit::parse("10").unwrap();
        assert!(limit.allows(10));
        assert!(!limit.allows(11));
    }
}
