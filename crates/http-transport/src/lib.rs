//! The injected I/O of the store clients: one HTTP exchange and a clock.
//! Components implement these over WASI (`component-kit`); native tests and
//! tools implement them with scripted fakes or a blocking HTTP client. The
//! Cosmos client (`cosmos`) is written against these traits, and so is the
//! component shell, which therefore needs no Cosmos code to send a request.
//!
//! What this crate must never do: show a request's header values or any
//! body in `Debug` or in an error (a request header may be the
//! `authorization` token, a body may be patient data), or do any I/O itself.

use std::time::Duration;

/// The methods the app sends: the Cosmos document API's, and the service
/// chaining calls (which use GET and POST).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    /// The method as it goes on the wire (and into the signature).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// One outgoing request. `headers` may carry the `authorization` token, so
/// `Debug` shows header names only.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The first value of a header, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("header_names", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// One response. `Debug` leaves the body out: it may hold patient data.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of a header, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

impl std::fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// Why no response arrived. The strings carry no secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// No answer in time; the server may or may not have executed the request.
    Timeout,
    /// The connection failed or broke.
    Connect(String),
    /// The runtime refused the outbound request (host not allowed).
    Denied,
    /// Anything else.
    Other(String),
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::Timeout => f.write_str("the request timed out"),
            TransportError::Connect(reason) => write!(f, "connection failed: {reason}"),
            TransportError::Denied => {
                f.write_str("the outbound request was denied (host not allowed)")
            }
            TransportError::Other(reason) => write!(f, "transport error: {reason}"),
        }
    }
}

impl std::error::Error for TransportError {}

/// Sends HTTP requests and returns their responses.
pub trait Transport {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;

    /// Sends independent requests, answering in the order given. A transport
    /// that can have several requests in flight at once does so (the WASI
    /// one does, at most [`MAX_IN_FLIGHT`] at a time); the default sends
    /// them one after another. Nothing may depend on the order in which
    /// they reach the server.
    fn send_all(&self, requests: Vec<HttpRequest>) -> Vec<Result<HttpResponse, TransportError>> {
        requests.into_iter().map(|r| self.send(r)).collect()
    }
}

/// Most requests one [`Transport::send_all`] keeps in flight: enough to hide
/// most of the round trips of a page of point operations (a search's fifty
/// disclosures go in seven windows), few enough that one caller cannot flood
/// the store. Measured under the Locust mix at 20 users on two cores, where
/// the store is CPU-bound: 8 lost fewer races and served more than 4 or 16
/// (docs/performance.md).
pub const MAX_IN_FLIGHT: usize = 8;

impl<T: Transport + ?Sized> Transport for &T {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        (**self).send(request)
    }

    fn send_all(&self, requests: Vec<HttpRequest>) -> Vec<Result<HttpResponse, TransportError>> {
        (**self).send_all(requests)
    }
}

/// Time as the client needs it.
pub trait Clock {
    /// Wall-clock Unix seconds, for `x-ms-date`.
    fn now_unix_seconds(&self) -> i64;
    /// A monotonic millisecond counter, for retry budgets.
    fn now_millis(&self) -> u64;
    /// Blocks for `d` (between retries).
    fn sleep(&self, d: Duration);
    /// A random number in `[0, 1)`, for backoff jitter.
    fn jitter(&self) -> f64;
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now_unix_seconds(&self) -> i64 {
        (**self).now_unix_seconds()
    }
    fn now_millis(&self) -> u64 {
        (**self).now_millis()
    }
    fn sleep(&self, d: Duration) {
        (**self).sleep(d)
    }
    fn jitter(&self) -> f64 {
        (**self).jitter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_request_header_value_and_no_body() {
        let request = HttpRequest {
            method: Method::Post,
            url: "https://store.example/dbs".into(),
            headers: vec![(
                "Authorization".into(),
                "type%3Dmaster%26sig%3Dsecret".into(),
            )],
            body: b"{\"firstName\":\"Ada\"}".to_vec(),
        };
        let shown = format!("{request:?}");
        assert!(shown.contains("Authorization") && shown.contains("body_len: 19"));
        assert!(
            !shown.contains("secret") && !shown.contains("Ada"),
            "{shown}"
        );
        let response = HttpResponse {
            status: 200,
            headers: vec![("etag".into(), "\"1\"".into())],
            body: b"{\"lastName\":\"Lovelace\"}".to_vec(),
        };
        assert!(!format!("{response:?}").contains("Lovelace"));
    }

    #[test]
    fn headers_are_found_case_insensitively_first_one_wins() {
        let response = HttpResponse {
            status: 200,
            headers: vec![
                ("X-Ms-Continuation".into(), "a".into()),
                ("x-ms-continuation".into(), "b".into()),
            ],
            body: Vec::new(),
        };
        assert_eq!(response.header("x-ms-CONTINUATION"), Some("a"));
        assert_eq!(response.header("etag"), None);
    }

    #[test]
    fn methods_go_on_the_wire_in_upper_case() {
        let names = [Method::Get, Method::Post, Method::Put, Method::Delete].map(Method::as_str);
        assert_eq!(names, ["GET", "POST", "PUT", "DELETE"]);
    }
}
