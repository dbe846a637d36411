//! portal: the developer portal, public at `/portal/`. Static files only:
//! a page that loads the gateway's OpenAPI document (`/openapi.json`, same
//! origin), renders every operation and lets a reader try it with their own
//! key. The component calls nothing (`allowed_outbound_hosts = []`) and
//! reads no variable; it never sees a key, because the page sends keys only
//! to the gateway's routes.
//!
//! This file is the shell: it turns [`site::answer`] into a Spin response
//! and logs one line per request (the file's name or the refusal's kind;
//! never the path or the query, which a careless caller might fill with a
//! key).

mod site;

use component_kit::{correlation_id, CORRELATION_HEADER};
use problem::Problem;
use site::{Answer, ALLOW, HOME, SECURITY_HEADERS};
use spin_sdk::http::{Method, Request, Response};

component_kit::export_http!(component_kit::serve, crate::handle_request);

fn handle_request(request: Request) -> Response {
    let correlation = correlation_id(&request);
    let method = method_name(request.method());
    // The raw path, never decoded or normalised (an unparsable URI has
    // none, and is 404).
    let answer = site::answer(&method, request.path());
    eprintln!(
        "{{\"component\":\"portal\",\"method\":\"{}\",\"file\":\"{}\",\"status\":{},\"correlationId\":\"{}\"}}",
        loggable_method(&method),
        answer.log_name(),
        answer.status(),
        correlation
    );
    into_response(&answer, &correlation)
}

fn into_response(answer: &Answer, correlation: &str) -> Response {
    let mut builder = Response::builder();
    builder
        .status(answer.status())
        .header(CORRELATION_HEADER, correlation);
    for (name, value) in SECURITY_HEADERS {
        builder.header(*name, *value);
    }
    match answer {
        Answer::File { asset, head } => {
            builder.header("content-type", asset.content_type);
            let body: &[u8] = if *head { &[] } else { asset.body };
            builder.body(body.to_vec()).build()
        }
        Answer::Redirect => builder.header("location", HOME).body(Vec::new()).build(),
        Answer::NotFound(_) => problem(
            builder,
            Problem::new(404, "No such page in the developer portal."),
            correlation,
        ),
        Answer::MethodNotAllowed => {
            builder.header("allow", ALLOW);
            problem(
                builder,
                Problem::new(405, "The developer portal answers GET and HEAD only."),
                correlation,
            )
        }
    }
}

fn problem(
    mut builder: spin_sdk::http::ResponseBuilder,
    problem: Problem,
    correlation: &str,
) -> Response {
    builder
        .header("content-type", problem::CONTENT_TYPE)
        .body(problem.with_correlation_id(correlation).to_json())
        .build()
}

fn method_name(method: &Method) -> String {
    match method {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Patch => "PATCH".into(),
        Method::Options => "OPTIONS".into(),
        Method::Connect => "CONNECT".into(),
        Method::Trace => "TRACE".into(),
        Method::Other(other) => other.clone(),
    }
}

/// A method name is the caller's text: log it only if it is a plain token.
fn loggable_method(method: &str) -> &str {
    if !method.is_empty() && method.len() <= 16 && method.bytes().all(|b| b.is_ascii_uppercase()) {
        method
    } else {
        "other"
    }
}
