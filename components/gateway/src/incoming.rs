//! The client's request as the gateway reads it: method, path, query,
//! headers (names lowercased) and a size-capped body.

use gateway_policy::{is_forwardable_request_header, BodyLimit};
use spin_sdk::http::{IncomingRequest, Method};
use std::time::Duration;

use wasi::clocks::monotonic_clock;
use wasi::io::streams::StreamError;

use component_kit::Method as OutMethod;

use crate::error::GatewayError;

pub struct Incoming {
    /// As the host parsed it; an unusual method stays `Method::Other`.
    pub method: Method,
    /// The path as sent (still percent-encoded), without the query.
    pub path: String,
    pub query: String,
    headers: Vec<(String, Vec<u8>)>,
    request: IncomingRequest,
}

impl Incoming {
    pub fn new(request: IncomingRequest) -> Incoming {
        let method = request.method();
        let path_and_query = request.path_with_query().unwrap_or_else(|| "/".into());
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path.to_string(), query.to_string()),
            None => (path_and_query, String::new()),
        };
        let headers = request
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        Incoming {
            method,
            path,
            query,
            headers,
            request,
        }
    }

    /// The method's name as the route table and the log know it
    /// (`OTHER` for an unusual one, which no route has).
    pub fn method_name(&self) -> &'static str {
        component_kit::method_name(&self.method)
    }

    /// The method to forward with: only those the route table has.
    pub fn forward_method(&self) -> Option<OutMethod> {
        match self.method {
            Method::Get => Some(OutMethod::Get),
            Method::Post => Some(OutMethod::Post),
            Method::Put => Some(OutMethod::Put),
            _ => None,
        }
    }

    /// The value of a header the gateway reads. More than one occurrence is
    /// refused: which one counts would be a guess, and a guess about a
    /// credential is a way in. A value that is not UTF-8 text reads as
    /// empty, which every reader treats as invalid or absent.
    pub fn single(&self, name: &'static str) -> Result<Option<&str>, GatewayError> {
        let mut values = self.headers.iter().filter(|(k, _)| k == name);
        let first = values.next();
        if values.next().is_some() {
            return Err(GatewayError::DuplicateHeader(name));
        }
        Ok(first.map(|(_, v)| std::str::from_utf8(v).unwrap_or("")))
    }

    /// Like [`Incoming::single`], but a repeated header counts as absent
    /// (for headers whose absence is harmless, such as `traceparent`).
    pub fn single_or_none(&self, name: &'static str) -> Option<&str> {
        self.single(name).ok().flatten()
    }

    /// Every value of a header a proxy may legitimately repeat (such as
    /// `x-forwarded-for`), in the order received; values that are not text
    /// read as empty.
    pub fn all(&self, name: &'static str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| std::str::from_utf8(v).unwrap_or(""))
            .collect()
    }

    /// The client headers a backend may see (the allow-list of
    /// `gateway_policy`); values that are not text are dropped.
    pub fn forwardable_headers(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .filter(|(name, _)| is_forwardable_request_header(name))
            .filter_map(|(name, value)| {
                let value = std::str::from_utf8(value).ok()?;
                Some((name.clone(), value.to_string()))
            })
            .collect()
    }

    /// Refuses a declared `Content-Length` above the limit before anything
    /// else is done with the request.
    pub fn check_declared_length(&self, limit: BodyLimit) -> Result<(), GatewayError> {
        let Some(text) = self.single("content-length")? else {
            return Ok(());
        };
        let length: u64 = text
            .trim()
            .parse()
            .map_err(|_| GatewayError::InvalidContentLength)?;
        if limit.allows(length) {
            Ok(())
        } else {
            Err(GatewayError::BodyTooLarge {
                limit: limit.bytes(),
            })
        }
    }

    /// Reads the body, stopping as soon as it exceeds the limit (a chunked
    /// body has no declared length, so counting is the only check) or when
    /// the whole of it has not arrived within `deadline` (408): a client
    /// that declares a length and sends less would otherwise hold the
    /// request, and this instance, open for as long as it likes.
    pub fn read_body(&self, limit: BodyLimit, deadline: Duration) -> Result<Vec<u8>, GatewayError> {
        let too_large = || GatewayError::BodyTooLarge {
            limit: limit.bytes(),
        };
        let body = self
            .request
            .consume()
            .map_err(|_| GatewayError::BodyUnreadable)?;
        let stream = body.stream().map_err(|_| GatewayError::BodyUnreadable)?;
        // Declared after `stream`, so dropped before it (a pollable is a
        // child of its stream).
        let nanos = u64::try_from(deadline.as_nanos()).unwrap_or(u64::MAX);
        let timer = monotonic_clock::subscribe_duration(nanos);
        let readable = stream.subscribe();
        let mut bytes = Vec::new();
        loop {
            match stream.read(64 * 1024) {
                Ok(chunk) if chunk.is_empty() => {
                    // Nothing buffered: wait for bytes or the deadline. Bytes
                    // that are there when the deadline is are still read.
                    wasi::io::poll::poll(&[&readable, &timer]);
                    if !readable.ready() && timer.ready() {
                        return Err(GatewayError::BodyTimeout {
                            seconds: deadline.as_secs(),
                        });
                    }
                }
                Ok(chunk) => {
                    bytes.extend_from_slice(&chunk);
                    if !limit.allows(bytes.len() as u64) {
                        return Err(too_large());
                    }
                }
                Err(StreamError::Closed) => break,
                Err(_) => return Err(GatewayError::BodyUnreadable),
            }
        }
        Ok(bytes)
    }
}
