//! Handing a response to the host so that it leaves in one write.
//!
//! spin-sdk's `Response` path sets the response-outparam first and writes
//! the body afterwards. The host then starts sending the headers as soon as
//! they are set, and if the body is not there yet they leave on their own,
//! with the body in a second write. Spin does not set TCP_NODELAY, so on a
//! kept-alive connection that second small write can wait for the client's
//! delayed ACK (up to 40 ms on Linux; docs/architecture.md). Here the body is
//! written and finished *before* the response is set, whenever it fits in
//! what the body stream accepts without blocking (wasmtime buffers one
//! chunk; every response of this app fits), so headers and body are ready
//! together. A larger body falls back to set-then-stream, which cannot
//! deadlock: nothing waits on a reader that has not been given the body yet.

use spin_sdk::http::conversions::TryFromIncomingRequest;
use spin_sdk::http::{
    Headers, IncomingRequest, IntoResponse, OutgoingBody, OutgoingResponse, Response,
    ResponseOutparam,
};

/// Runs `handler` on the request and sends its response in one write.
pub async fn serve<R, F>(incoming: IncomingRequest, out: ResponseOutparam, handler: F)
where
    R: TryFromIncomingRequest,
    R::Error: IntoResponse,
    F: FnOnce(R) -> Response,
{
    let response = match R::try_from_incoming_request(incoming).await {
        Ok(request) => handler(request),
        Err(unreadable) => unreadable.into_response(),
    };
    send(out, response);
}

/// Sends `response`: body first when it fits, then the response.
pub fn send(out: ResponseOutparam, mut response: Response) {
    let body = std::mem::take(response.body_mut());
    let status = *response.status();
    let mut fields: Vec<(String, Vec<u8>)> = response
        .headers()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect();
    if carries_body(status) {
        // A known length: no chunked framing on the wire.
        fields.push(("content-length".into(), body.len().to_string().into_bytes()));
    }
    let Some(outgoing) = outgoing_response(status, &fields) else {
        // Only a header the host rejects gets here; say so without it.
        let fallback = OutgoingResponse::new(Headers::new());
        let _ = fallback.set_status_code(500);
        finish_empty(out, fallback);
        return;
    };
    let Ok(body_handle) = outgoing.body() else {
        out.set(outgoing);
        return;
    };
    let Ok(stream) = body_handle.write() else {
        out.set(outgoing);
        return;
    };
    let fits = stream
        .check_write()
        .is_ok_and(|permit| body.len() as u64 <= permit);
    if fits {
        let written = body.is_empty() || stream.write(&body).is_ok();
        drop(stream);
        if written {
            let _ = OutgoingBody::finish(body_handle, None);
        }
        // An unfinished body reaches the caller as an aborted response,
        // never as a silently truncated one.
        out.set(outgoing);
        return;
    }
    out.set(outgoing);
    let mut rest = &body[..];
    while !rest.is_empty() {
        let permit = match stream.check_write() {
            Ok(0) => {
                stream.subscribe().block();
                continue;
            }
            Ok(permit) => permit.min(rest.len() as u64) as usize,
            Err(_) => return, // the caller went away
        };
        if stream.write(&rest[..permit]).is_err() {
            return;
        }
        rest = &rest[permit..];
    }
    if stream.blocking_flush().is_err() {
        return;
    }
    drop(stream);
    let _ = OutgoingBody::finish(body_handle, None);
}

/// 1xx, 204 and 304 responses have no body and no Content-Length.
fn carries_body(status: u16) -> bool {
    !(status < 200 || status == 204 || status == 304)
}

fn outgoing_response(status: u16, fields: &[(String, Vec<u8>)]) -> Option<OutgoingResponse> {
    let headers = Headers::from_list(fields).ok()?;
    let outgoing = OutgoingResponse::new(headers);
    outgoing.set_status_code(status).ok()?;
    Some(outgoing)
}

fn finish_empty(out: ResponseOutparam, outgoing: OutgoingResponse) {
    if let Ok(body) = outgoing.body() {
        let _ = OutgoingBody::finish(body, None);
    }
    out.set(outgoing);
}

#[cfg(test)]
mod tests {
    use super::carries_body;

    #[test]
    fn bodiless_statuses_get_no_content_length() {
        for status in [100, 101, 204, 304] {
            assert!(!carries_body(status), "{status}");
        }
        for status in [200, 201, 400, 404, 412, 500, 503] {
            assert!(carries_body(status), "{status}");
        }
    }
}
