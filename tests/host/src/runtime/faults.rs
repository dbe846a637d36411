//! Faults the test host injects into chained requests, so tests can see
//! what a component does when the one it calls fails.

use std::time::Duration;

/// A failure the test host injects into chained requests to a component.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The component is down: callers get `connection-refused`.
    Refuse,
    /// Answer with this status (and headers) instead of running the
    /// component, for the next `times` requests (all, if `None`).
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
        times: Option<u32>,
    },
    /// Wait this long before running the component.
    Delay(Duration),
    /// Run the component (its effects happen), then discard its answer and
    /// respond with `status` instead, for the next `times` requests (all, if
    /// `None`): an acknowledgement lost after the work was done, as when a
    /// connection breaks or a proxy answers 5xx after the server committed.
    /// The caller cannot tell this from a request that was never executed.
    LoseResponse { status: u16, times: Option<u32> },
    /// `fault` applies only to requests with this method (any, if `None`)
    /// whose path starts with `path_prefix`; other requests pass untouched
    /// and do not count towards the inner fault's `times`. For faults in
    /// one operation of a component that several callers share.
    Only {
        method: Option<String>,
        path_prefix: String,
        fault: Box<Fault>,
    },
}

impl Fault {
    /// The fault that applies to one request, if any.
    pub(super) fn applies_to(&self, method: &str, path: &str) -> Option<&Fault> {
        match self {
            Fault::Only {
                method: only,
                path_prefix,
                fault,
            } => {
                let method_matches = only
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method));
                (method_matches && path.starts_with(path_prefix.as_str()))
                    .then_some(&**fault)
                    .and_then(|inner| inner.applies_to(method, path))
            }
            other => Some(other),
        }
    }

    /// Counts one use against `times`; true when the fault is used up.
    pub(super) fn use_once(&mut self, method: &str, path: &str) -> bool {
        match self {
            Fault::Only {
                method: only,
                path_prefix,
                fault,
            } => {
                let method_matches = only
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method));
                method_matches
                    && path.starts_with(path_prefix.as_str())
                    && fault.use_once(method, path)
            }
            Fault::Respond { times: Some(n), .. } | Fault::LoseResponse { times: Some(n), .. } => {
                *n = n.saturating_sub(1);
                *n == 0
            }
            _ => false,
        }
    }

    /// A short name for the host's log line.
    pub(super) fn describe(&self) -> String {
        match self {
            Fault::Refuse => "refuse".into(),
            Fault::Respond { status, .. } => format!("respond {status}"),
            Fault::Delay(d) => format!("delay {} ms", d.as_millis()),
            Fault::LoseResponse { status, .. } => format!("lose response, respond {status}"),
            Fault::Only { fault, .. } => fault.describe(),
        }
    }
}
