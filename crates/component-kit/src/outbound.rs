//! Synchronous outbound HTTP over `wasi:http/outgoing-handler`, with a time
//! limit on connecting and on the first byte of the response.
//!
//! Synchronous because every handler here is: a request is a short sequence
//! of dependent calls (audit, then store), and blocking on each keeps the
//! shells simple. Where a step is many independent calls (a page of audit
//! disclosures), [`send_all`] has them in flight together and blocks once. Spin enforces `allowed_outbound_hosts` below this layer; a
//! denied host comes back as [`TransportError::Denied`].

use std::time::Duration;

use http_transport::{HttpRequest, HttpResponse, Method, TransportError, MAX_IN_FLIGHT};
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingResponse, Method as WasiMethod,
    OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasi::io::poll::Pollable;

/// Largest response body read into memory (the Cosmos document limit is 2 MB;
/// query pages stay below 4 MB).
const MAX_RESPONSE_BYTES: usize = 8 << 20;

pub fn send(request: &HttpRequest, timeout: Duration) -> Result<HttpResponse, TransportError> {
    let pending = start(request, timeout)?;
    let arrived = until_deadline(
        || pending.future.get(),
        || pending.deadline.ready(),
        || {
            wasi::io::poll::poll(&[&pending.future.subscribe(), &pending.deadline]);
        },
    );
    receive(arrived)
}

/// Sends independent requests with up to [`MAX_IN_FLIGHT`] of them in flight
/// at once, each with its own time limit; the results in the order given.
/// The runtime serves the requests concurrently (Spin and the test host run
/// each outgoing request as its own task), so a page of point operations
/// costs about one round trip instead of one per operation.
pub fn send_all(
    requests: &[HttpRequest],
    timeout: Duration,
) -> Vec<Result<HttpResponse, TransportError>> {
    let mut results: Vec<Option<Result<HttpResponse, TransportError>>> =
        requests.iter().map(|_| None).collect();
    let mut waiting = requests.iter().enumerate();
    let mut in_flight: Vec<(usize, Pending)> = Vec::new();
    loop {
        while in_flight.len() < MAX_IN_FLIGHT {
            let Some((index, request)) = waiting.next() else {
                break;
            };
            match start(request, timeout) {
                Ok(pending) => in_flight.push((index, pending)),
                Err(error) => results[index] = Some(Err(error)),
            }
        }
        if in_flight.is_empty() {
            break;
        }
        let before = in_flight.len();
        let mut i = 0;
        while i < in_flight.len() {
            let pending = &in_flight[i].1;
            match look(|| pending.future.get(), || pending.deadline.ready()) {
                None => i += 1,
                Some(arrived) => {
                    let (index, _) = in_flight.swap_remove(i);
                    results[index] = Some(receive(arrived));
                }
            }
        }
        if in_flight.len() == before {
            let subscriptions: Vec<Pollable> = in_flight
                .iter()
                .map(|(_, pending)| pending.future.subscribe())
                .collect();
            let mut ready: Vec<&Pollable> = subscriptions.iter().collect();
            ready.extend(in_flight.iter().map(|(_, pending)| &pending.deadline));
            wasi::io::poll::poll(&ready);
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(TransportError::Other("request not sent".into()))))
        .collect()
}

/// A request that has left, and the moment its time is up.
struct Pending {
    future: FutureIncomingResponse,
    deadline: Pollable,
}

type Arrived = Option<Result<Result<IncomingResponse, ErrorCode>, ()>>;

/// Starts `request`: headers, body, and the clock of its time limit.
fn start(request: &HttpRequest, timeout: Duration) -> Result<Pending, TransportError> {
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
    Ok(Pending {
        future,
        deadline: wasi::clocks::monotonic_clock::subscribe_duration(nanos),
    })
}

/// The response that arrived (or the timeout), read into memory.
fn receive(arrived: Arrived) -> Result<HttpResponse, TransportError> {
    let response = arrived
        .ok_or(TransportError::Timeout)?
        .map_err(|_| TransportError::Other("response already taken".into()))?
        .map_err(map_error)?;
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

/// Takes what `take` yields, waiting (`wait`) until it yields or `expired`
/// says the deadline has passed; `None` only if nothing arrived by then.
fn until_deadline<T>(
    mut take: impl FnMut() -> Option<T>,
    mut expired: impl FnMut() -> bool,
    mut wait: impl FnMut(),
) -> Option<T> {
    loop {
        if let Some(outcome) = look(&mut take, &mut expired) {
            return outcome;
        }
        wait();
    }
}

/// One look at a pending response: `Some(Some(_))` it arrived, `Some(None)`
/// the deadline passed without it, `None` keep waiting.
///
/// `take` is `future-incoming-response.get`: it hands the response over once
/// and never again. So an answer that is ready when the deadline is must be
/// kept, not taken to check for it and then dropped: the request was served
/// (a write happened), and reporting a timeout invites a duplicate retry.
fn look<T>(
    mut take: impl FnMut() -> Option<T>,
    mut expired: impl FnMut() -> bool,
) -> Option<Option<T>> {
    if let Some(arrived) = take() {
        return Some(Some(arrived));
    }
    if expired() {
        // It may have arrived between the two looks.
        return Some(take());
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A `future-incoming-response` and a deadline on one fake clock: the
    /// response is ready from `ready_at`, the deadline from `deadline_at`,
    /// and each `wait` advances the clock by one tick. `get` hands the
    /// response over once, then `Err(())` ("already taken"), as WASI does.
    struct Race {
        now: Cell<u32>,
        ready_at: u32,
        deadline_at: u32,
        taken: Cell<bool>,
    }

    impl Race {
        fn new(ready_at: u32, deadline_at: u32) -> Self {
            Race {
                now: Cell::new(0),
                ready_at,
                deadline_at,
                taken: Cell::new(false),
            }
        }

        fn get(&self) -> Option<Result<&'static str, ()>> {
            if self.now.get() < self.ready_at {
                None
            } else if self.taken.replace(true) {
                Some(Err(()))
            } else {
                Some(Ok("201 Created"))
            }
        }

        fn run(&self) -> Option<Result<&'static str, ()>> {
            until_deadline(
                || self.get(),
                || self.now.get() >= self.deadline_at,
                || self.now.set(self.now.get() + 1),
            )
        }
    }

    #[test]
    fn a_response_arriving_exactly_at_the_deadline_is_kept() {
        assert_eq!(Race::new(3, 3).run(), Some(Ok("201 Created")));
    }

    #[test]
    fn a_response_before_the_deadline_is_taken_and_none_after_it() {
        assert_eq!(Race::new(0, 3).run(), Some(Ok("201 Created")));
        assert_eq!(Race::new(2, 3).run(), Some(Ok("201 Created")));
        assert_eq!(Race::new(4, 3).run(), None);
        assert_eq!(Race::new(u32::MAX, 0).run(), None);
    }

    #[test]
    fn a_response_arriving_between_the_two_looks_is_kept() {
        // Ready at tick 1, but the first look happens at tick 0 and the
        // deadline check already sees tick 1: the clock moves inside `expired`.
        let race = Race::new(1, 1);
        let arrived = until_deadline(
            || race.get(),
            || {
                race.now.set(1);
                true
            },
            || unreachable!("the deadline has passed"),
        );
        assert_eq!(arrived, Some(Ok("201 Created")));
    }
}
