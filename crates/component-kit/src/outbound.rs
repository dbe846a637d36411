//! Synchronous outbound HTTP over `wasi:http/outgoing-handler`, with a time
//! limit on connecting and on the first byte of the response.
//!
//! Synchronous because every handler here is: a request is a short sequence
//! of dependent calls (audit, then store), and blocking on each keeps the
//! shells simple. Spin enforces `allowed_outbound_hosts` below this layer; a
//! denied host comes back as [`TransportError::Denied`].

use std::time::Duration;

use http_transport::{HttpRequest, HttpResponse, Method, TransportError};
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, Method as WasiMethod, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};

/// Largest response body read into memory (the Cosmos document limit is 2 MB;
/// query pages stay below 4 MB).
const MAX_RESPONSE_BYTES: usize = 8 << 20;

pub fn send(request: &HttpRequest, timeout: Duration) -> Result<HttpResponse, TransportError> {
    let (scheme, authority, path) = split_url(&request.url)
        .ok_or_else(|| TransportError::Other("invalid outbound URL".into()))?;
    let headers = Fields::new();
    for (name, value) in &request.headers {
        headers
            .append(&name.to_ascii_lowercase(), &value.as_bytes().to_vec())
            .map_err(|_| TransportError::Other(format!("header {name} not allowed")))?;
    }
    let outgoing = OutgoingRequest::new(headers);
    let method = match request.method {
        Method::Get => WasiMethod::Get,
        Method::Post => WasiMethod::Post,
        Method::Put => WasiMethod::Put,
        Method::Delete => WasiMethod::Delete,
    };
    let ok = outgoing.set_method(&method).is_ok()
        && outgoing.set_scheme(Some(&scheme)).is_ok()
        && outgoing.set_authority(Some(authority)).is_ok()
        && outgoing.set_path_with_query(Some(path)).is_ok();
    if !ok {
        return Err(TransportError::Other("invalid outbound request".into()));
    }
    let body = outgoing
        .body()
        .map_err(|_| TransportError::Other("request body unavailable".into()))?;
    let options = RequestOptions::new();
    let nanos = timeout.as_nanos() as u64;
    let _ = options.set_connect_timeout(Some(nanos));
    let _ = options.set_first_byte_timeout(Some(nanos));
    let _ = options.set_between_bytes_timeout(Some(nanos));
    let future = outgoing_handler::handle(outgoing, Some(options)).map_err(map_error)?;
    write_body(&body, &request.body)?;
    OutgoingBody::finish(body, None).map_err(map_error)?;

    let deadline = wasi::clocks::monotonic_clock::subscribe_duration(nanos);
    let response = loop {
        if let Some(result) = future.get() {
            break result
                .map_err(|_| TransportError::Other("response already taken".into()))?
                .map_err(map_error)?;
        }
        wasi::io::poll::poll(&[&future.subscribe(), &deadline]);
        if deadline.ready() && future.get().is_none() {
            return Err(TransportError::Timeout);
        }
    };
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|_| TransportError::Other("response body unavailable".into()))?;
    let stream = incoming
        .stream()
        .map_err(|_| TransportError::Other("response body unavailable".into()))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_RESPONSE_BYTES {
                    return Err(TransportError::Other("response body too large".into()));
                }
            }
            Err(wasi::io::streams::StreamError::Closed) => break,
            Err(_) => return Err(TransportError::Other("response body interrupted".into())),
        }
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), TransportError> {
    let stream = body
        .write()
        .map_err(|_| TransportError::Other("request body unavailable".into()))?;
    for chunk in bytes.chunks(4096) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|_| TransportError::Other("request body write failed".into()))?;
    }
    Ok(())
}

fn split_url(url: &str) -> Option<(Scheme, &str, &str)> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return None;
    };
    let slash = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(slash);
    Some((scheme, authority, if path.is_empty() { "/" } else { path }))
}

fn map_error(code: ErrorCode) -> TransportError {
    match code {
        ErrorCode::HttpRequestDenied => TransportError::Denied,
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => TransportError::Timeout,
        ErrorCode::ConnectionRefused
        | ErrorCode::ConnectionTerminated
        | ErrorCode::DnsError(_)
        | ErrorCode::DnsTimeout
        | ErrorCode::DestinationNotFound
        | ErrorCode::DestinationUnavailable => TransportError::Connect(format!("{code:?}")),
        other => TransportError::Other(format!("{other:?}")),
    }
}
