//! The response the gateway builds before it becomes a Spin response: one
//! value per header name (lowercase), so a header the gateway sets replaces
//! any a backend sent.

use gateway_policy::LimitDecision;
use http::StatusCode;
use spin_sdk::http::Response;

pub struct Reply {
    pub status: StatusCode,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    pub fn new(status: StatusCode, content_type: &str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body,
        }
    }

    pub fn json(status: StatusCode, value: &serde_json::Value) -> Reply {
        Reply::new(status, "application/json", value.to_string().into_bytes())
    }

    /// A backend's answer: its status and body, headers as the caller chose.
    pub fn passthrough(status: StatusCode, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body,
        }
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let name = name.to_ascii_lowercase();
        self.headers.retain(|(k, _)| *k != name);
        self.headers.push((name, value.into()));
    }

    pub fn has(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    /// `RateLimit-Limit`, `-Remaining`, `-Reset` and, when refused,
    /// `Retry-After`.
    pub fn set_limit_headers(&mut self, decision: &LimitDecision) {
        for (name, value) in decision.headers() {
            self.set(name, value);
        }
    }

    pub fn into_response(self) -> Response {
        let mut builder = Response::builder();
        builder.status(self.status.as_u16());
        for (name, value) in self.headers {
            builder.header(name, value);
        }
        builder.body(self.body).build()
    }
}
