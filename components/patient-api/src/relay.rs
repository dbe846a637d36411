//! `GET /audit/records` and `GET /audit/verify`: relayed to audit-api as
//! they came, so that the gateway needs one backend only and, in a split
//! deployment, only patient-api's pods may reach audit-api.
//!
//! Nothing is added or decided here: audit-api checks the query, the actor
//! and pages the answer; the gateway has already checked the `audit.read`
//! scope. The answer goes back with the headers the contract uses.

use component_kit::{
    header, outbound, HttpRequest, HttpResponse, Method, ServiceConnection, ACTOR_HEADER,
    CONTINUATION_HEADER, CORRELATION_HEADER,
};
use std::time::Duration;

/// Under the gateway's default backend time limit (15 s), so that a slow
/// audit-api is this component's 503, not the gateway's 504.
pub const RELAY_TIMEOUT: Duration = Duration::from_secs(14);

/// The request headers audit-api reads (besides its host key).
const RELAYED_REQUEST_HEADERS: [&str; 4] = [
    CORRELATION_HEADER,
    ACTOR_HEADER,
    CONTINUATION_HEADER,
    "traceparent",
];

/// The response headers the caller may see.
const RELAYED_RESPONSE_HEADERS: [&str; 4] = [
    "content-type",
    "cache-control",
    "retry-after",
    CONTINUATION_HEADER,
];

/// Why a relay gave no answer of audit-api's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayFailed {
    /// No answer in time, or no connection.
    Unreachable,
    /// audit-api refused this component's host key: configuration.
    KeyRejected,
}

/// The outbound request for `path` (`/audit/records` or `/audit/verify`).
pub fn relay_request(
    audit: &ServiceConnection,
    path: &str,
    query: &str,
    header: impl Fn(&str) -> Option<String>,
) -> HttpRequest {
    let mut url = audit.endpoint().url(path);
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    let mut headers = vec![(
        hostkey::HOST_KEY_HEADER.to_string(),
        audit.key().to_string(),
    )];
    headers.extend(
        RELAYED_REQUEST_HEADERS
            .iter()
            .filter_map(|name| Some((name.to_string(), header(name)?))),
    );
    HttpRequest {
        method: Method::Get,
        url,
        headers,
        body: Vec::new(),
    }
}

/// audit-api's answer, its headers filtered; a 401 means our key is wrong.
pub fn relayed_answer(response: HttpResponse) -> Result<HttpResponse, RelayFailed> {
    if response.status == 401 {
        return Err(RelayFailed::KeyRejected);
    }
    let headers = response
        .headers
        .into_iter()
        .filter(|(name, _)| {
            RELAYED_RESPONSE_HEADERS
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(name))
        })
        .collect();
    Ok(HttpResponse {
        headers,
        ..response
    })
}

/// Relays `request` to audit-api.
pub fn relay(
    audit: &ServiceConnection,
    request: &spin_sdk::http::Request,
    path: &str,
) -> Result<HttpResponse, RelayFailed> {
    let outgoing = relay_request(audit, path, request.query(), |name| {
        header(request, name).map(str::to_string)
    });
    let response =
        outbound::send(&outgoing, RELAY_TIMEOUT).map_err(|_| RelayFailed::Unreachable)?;
    relayed_answer(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audit() -> ServiceConnection {
        ServiceConnection::parse("Endpoint=https://audit.example:8443;Key=k3y").unwrap()
    }

    #[test]
    fn the_request_carries_the_query_the_key_and_only_the_headers_audit_api_reads() {
        let seen = |name: &str| match name {
            CORRELATION_HEADER => Some("c0ffee".to_string()),
            ACTOR_HEADER => Some("subscription:registry".to_string()),
            _ => None,
        };
        let r = relay_request(
            &audit(),
            "/audit/records",
            "resourceType=patient&limit=5",
            seen,
        );
        assert_eq!(
            r.url,
            "https://audit.example:8443/audit/records?resourceType=patient&limit=5"
        );
        assert_eq!(
            r.headers,
            vec![
                ("x-functions-key".to_string(), "k3y".to_string()),
                (CORRELATION_HEADER.to_string(), "c0ffee".to_string()),
                (
                    ACTOR_HEADER.to_string(),
                    "subscription:registry".to_string()
                ),
            ]
        );
        let r = relay_request(&audit(), "/audit/verify", "", |_| None);
        assert_eq!(r.url, "https://audit.example:8443/audit/verify");
    }

    #[test]
    fn the_answer_keeps_status_body_and_contract_headers_only() {
        let answer = relayed_answer(HttpResponse {
            status: 400,
            headers: vec![
                ("Content-Type".into(), "application/problem+json".into()),
                ("x-continuation-token".into(), "t".into()),
                ("x-internal".into(), "secret-ish".into()),
            ],
            body: b"{}".to_vec(),
        })
        .unwrap();
        assert_eq!(answer.status, 400);
        assert_eq!(answer.body, b"{}");
        let names: Vec<_> = answer.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Content-Type", "x-continuation-token"]);
    }

    #[test]
    fn a_refused_host_key_is_not_passed_on_as_the_callers_401() {
        let refused = HttpResponse {
            status: 401,
            headers: vec![],
            body: vec![],
        };
        assert_eq!(
            relayed_answer(refused).unwrap_err(),
            RelayFailed::KeyRejected
        );
    }
}
