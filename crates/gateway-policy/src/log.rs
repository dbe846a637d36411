//! One structured access-log line per request.
//!
//! The line holds only what is safe to keep in any log store: the correlation
//! id, who called (subscription name or `token:<sub>`), the route *template*
//! (a concrete path holds patient ids), the method, status, duration and a
//! static reason code. It never holds a key, a token, a header value, a
//! query string, a body or a concrete path.

use serde_json::json;

/// Methods logged as they are; anything else is logged as `OTHER` (the
/// method is client text and could carry anything).
const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
];

/// The fields of one access-log line.
#[derive(Debug, Clone, Copy)]
pub struct AccessLog<'a> {
    pub correlation_id: &'a str,
    /// [`crate::Actor::audit_name`] when the caller was authenticated (also on
    /// a 403), else `None`.
    pub actor: Option<&'a str>,
    pub method: &'a str,
    /// [`crate::RouteMatch::template`]; `None` for unmatched paths.
    pub route: Option<&'static str>,
    pub status: u16,
    pub duration_ms: u64,
    /// A static code such as `invalid_token` or `rate_limited`.
    pub reason: Option<&'static str>,
}

/// The JSON line (no trailing newline).
pub fn access_log_line(entry: &AccessLog<'_>) -> String {
    let method = KNOWN_METHODS
        .iter()
        .find(|m| **m == entry.method)
        .copied()
        .unwrap_or("OTHER");
    let mut line = json!({
        "event": "access",
        "correlationId": entry.correlation_id,
        "actor": entry.actor,
        "method": method,
        "route": entry.route.unwrap_or("(unmatched)"),
        "status": entry.status,
        "durationMs": entry.duration_ms,
    });
    if let Some(reason) = entry.reason {
        line["reason"] = reason.into();
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::route;
    use serde_json::Value;

    const PATIENT_ID: &str = "5d0e7c9a-3f1b-4c2e-9a8d-1b2c3d4e5f60";

    #[test]
    fn line_uses_the_template_not_the_path() {
        let path = format!("/patient/{PATIENT_ID}/tests");
        let entry = AccessLog {
            correlation_id: "4bf92f3577b34da6a3ce929d0e0e4736",
            actor: Some("load-test"),
            method: "GET",
            route: route("GET", &path).template(),
            status: 200,
            duration_ms: 12,
            reason: None,
        };
        let line = access_log_line(&entry);
        assert!(!line.contains(PATIENT_ID));
        assert!(!line.contains('\n'));
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["correlationId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parsed["actor"], "load-test");
        assert_eq!(parsed["route"], "/patient/{patientId}/tests");
        assert_eq!(parsed["method"], "GET");
        assert_eq!(parsed["status"], 200);
        assert_eq!(parsed["durationMs"], 12);
        assert!(parsed.get("reason").is_none());
    }

    #[test]
    fn unauthenticated_unmatched_and_odd_methods() {
        let entry = AccessLog {
            correlation_id: "c",
            actor: None,
            method: "GET\n{\"injected\":1}",
            route: route("GET", "/patient/x/../../secret").template(),
            status: 404,
            duration_ms: 0,
            reason: Some("not_found"),
        };
        let parsed: Value = serde_json::from_str(&access_log_line(&entry)).unwrap();
        assert_eq!(parsed["actor"], Value::Null);
        assert_eq!(parsed["method"], "OTHER");
        assert_eq!(parsed["route"], "(unmatched)");
        assert_eq!(parsed["reason"], "not_found");
        assert!(parsed.get("injected").is_none());
    }
}
