//! Test doubles: a scripted transport that records requests, a fake clock
//! that records sleeps, and a server-side view of a request (what the store
//! would derive from the URL and verify).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::time::Duration;

use cosmos_auth::{check_date, verify, AuthError, MasterKey, SignedRequest};

use http_transport::{Clock, HttpRequest, HttpResponse, Transport, TransportError};

pub const KEY_B64: &str =
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";
pub const BASE: &str = "https://acct.documents.azure.com:443";
pub const NOW: i64 = 1_795_000_000;

pub fn key() -> MasterKey {
    MasterKey::from_base64(KEY_B64).unwrap()
}

type Responder<'a> = Box<dyn FnMut(&HttpRequest) -> Result<HttpResponse, TransportError> + 'a>;

pub struct FakeTransport<'a> {
    responder: RefCell<Responder<'a>>,
    pub sent: RefCell<Vec<HttpRequest>>,
    /// How many requests each `send_all` was given, in call order.
    pub batches: RefCell<Vec<usize>>,
}

impl<'a> FakeTransport<'a> {
    pub fn with(
        responder: impl FnMut(&HttpRequest) -> Result<HttpResponse, TransportError> + 'a,
    ) -> Self {
        Self {
            responder: RefCell::new(Box::new(responder)),
            sent: RefCell::new(Vec::new()),
            batches: RefCell::new(Vec::new()),
        }
    }

    /// Answers with `script` in order; panics if asked for more.
    pub fn scripted(script: Vec<Result<HttpResponse, TransportError>>) -> Self {
        let mut script = VecDeque::from(script);
        Self::with(move |_| {
            script
                .pop_front()
                .expect("the client sent more requests than scripted")
        })
    }

    pub fn requests(&self) -> Vec<HttpRequest> {
        self.sent.borrow().clone()
    }

    pub fn count(&self) -> usize {
        self.sent.borrow().len()
    }
}

impl Transport for FakeTransport<'_> {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let response = (self.responder.borrow_mut())(&request);
        self.sent.borrow_mut().push(request);
        response
    }

    fn send_all(&self, requests: Vec<HttpRequest>) -> Vec<Result<HttpResponse, TransportError>> {
        self.batches.borrow_mut().push(requests.len());
        requests.into_iter().map(|r| self.send(r)).collect()
    }
}

pub struct FakeClock {
    pub unix_seconds: i64,
    pub millis: Cell<u64>,
    pub jitter: Cell<f64>,
    pub sleeps: RefCell<Vec<Duration>>,
}

impl FakeClock {
    pub fn new() -> Self {
        Self {
            unix_seconds: NOW,
            millis: Cell::new(10_000),
            jitter: Cell::new(0.5),
            sleeps: RefCell::new(Vec::new()),
        }
    }

    pub fn advance(&self, ms: u64) {
        self.millis.set(self.millis.get() + ms);
    }

    pub fn sleeps_ms(&self) -> Vec<u128> {
        self.sleeps
            .borrow()
            .iter()
            .map(Duration::as_millis)
            .collect()
    }
}

impl Clock for FakeClock {
    fn now_unix_seconds(&self) -> i64 {
        self.unix_seconds
    }
    fn now_millis(&self) -> u64 {
        self.millis.get()
    }
    fn sleep(&self, d: Duration) {
        self.sleeps.borrow_mut().push(d);
        self.advance(d.as_millis() as u64);
    }
    fn jitter(&self) -> f64 {
        self.jitter.get()
    }
}

pub fn response(
    status: u16,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<HttpResponse, TransportError> {
    Ok(HttpResponse {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    })
}

pub fn status(code: u16) -> Result<HttpResponse, TransportError> {
    response(code, &[], "")
}

/// What the store sees: resource type and link derived from the URL the way a
/// server does it (split the path, then percent-decode each segment).
#[derive(Debug, PartialEq, Eq)]
pub struct ServerView {
    pub resource_type: String,
    pub link: String,
    pub segments: Vec<String>,
}

pub fn server_view(request: &HttpRequest) -> ServerView {
    let path = request
        .url
        .strip_prefix(BASE)
        .expect("the request goes to the endpoint");
    assert!(path.starts_with('/'), "{path}");
    let segments: Vec<String> = path[1..]
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent::decode(s, percent::Plus::Literal).expect("well-formed percent-encoding"))
        .collect();
    let resource_type = match segments.len() {
        0 => "",
        n if n % 2 == 1 => segments[n - 1].as_str(), // a feed: dbs/x/colls/y/docs
        n => segments[n - 2].as_str(),               // an item: dbs/x/colls/y/docs/z
    }
    .to_string();
    let link_len = if segments.len() % 2 == 1 {
        segments.len() - 1
    } else {
        segments.len()
    };
    let link = segments[..link_len].join("/");
    ServerView {
        resource_type,
        link,
        segments,
    }
}

/// Verifies the request as the store would: date fresh, signature valid.
pub fn server_verify(request: &HttpRequest, key: &MasterKey) -> Result<(), AuthError> {
    let view = server_view(request);
    let date = request.header("x-ms-date");
    check_date(date, NOW)?;
    let signed = SignedRequest {
        verb: request.method.as_str(),
        resource_type: &view.resource_type,
        resource_link: &view.link,
        date: date.unwrap_or_default(),
    };
    verify(key, &signed, request.header("authorization"))
}
