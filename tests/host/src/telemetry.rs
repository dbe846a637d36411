//! Spin's OpenTelemetry trace propagation, as far as a component can see it
//! (Spin 4.0 crates/telemetry env.rs and propagation.rs, trigger-http
//! server.rs `handle`, factor-outbound-http wasi.rs `send`):
//!
//! - Tracing is on when `OTEL_EXPORTER_OTLP_ENDPOINT` or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (and `OTEL_SDK_DISABLED` is
//!   not `true`).
//! - For a request from outside, Spin continues a valid W3C `traceparent`
//!   or starts a new trace. The request the component sees is unchanged:
//!   without a client `traceparent`, the component has no way to learn the
//!   trace id.
//! - Every outbound request a component makes (chained or not) gets Spin's
//!   current span context injected as `traceparent`, replacing whatever the
//!   component set.
//!
//! The host records the trace id of every request it would export spans
//! for, so tests can compare it with what components logged and audited.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
pub(crate) struct Telemetry {
    exported: Mutex<Vec<String>>,
    counter: AtomicU64,
    seed: RandomState,
}

impl Telemetry {
    /// On when Spin's tracing would be, judged on `environment` (the
    /// process environment the host stands in for).
    pub fn from_environment(environment: &HashMap<String, String>) -> Option<Telemetry> {
        let set = |name: &str| environment.get(name).is_some_and(|v| !v.is_empty());
        let disabled = environment
            .get("OTEL_SDK_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let on = (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
            && !disabled;
        on.then(Telemetry::default)
    }

    /// The trace of a request from outside: the client's, when its
    /// `traceparent` is valid, else a new one. Recorded as exported.
    pub fn start_trace(&self, traceparent: Option<&str>) -> String {
        let trace_id = traceparent
            .and_then(trace_id_of)
            .unwrap_or_else(|| self.random_hex(2));
        self.exported.lock().unwrap().push(trace_id.clone());
        trace_id
    }

    /// The `traceparent` Spin injects into an outbound request of a
    /// request traced as `trace_id`: a new span of that trace, sampled.
    pub fn traceparent(&self, trace_id: &str) -> String {
        format!("00-{trace_id}-{}-01", self.random_hex(1))
    }

    pub fn exported_trace_ids(&self) -> Vec<String> {
        self.exported.lock().unwrap().clone()
    }

    /// `words` times 16 hex digits, never all zeros (an invalid id).
    fn random_hex(&self, words: usize) -> String {
        loop {
            let hex: String = (0..words)
                .map(|_| {
                    let mut h = self.seed.build_hasher();
                    h.write_u64(self.counter.fetch_add(1, Ordering::Relaxed));
                    format!("{:016x}", h.finish())
                })
                .collect();
            if hex.bytes().any(|b| b != b'0') {
                return hex;
            }
        }
    }
}

/// The trace id of a valid version-00 `traceparent`
/// (`00-<32 hex>-<16 hex>-<2 hex>`, lower case, ids not all zeros).
fn trace_id_of(traceparent: &str) -> Option<String> {
    let parts: Vec<&str> = traceparent.trim().split('-').collect();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    match parts.as_slice() {
        ["00", trace, span, flags]
            if hex(trace, 32)
                && hex(span, 16)
                && hex(flags, 2)
                && nonzero(trace)
                && nonzero(span) =>
        {
            Some((*trace).to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_only_with_an_exporter_endpoint() {
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        };
        assert!(Telemetry::from_environment(&env(&[])).is_none());
        assert!(
            Telemetry::from_environment(&env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "")])).is_none()
        );
        assert!(Telemetry::from_environment(&env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://127.0.0.1:4318"
        )]))
        .is_some());
        assert!(Telemetry::from_environment(&env(&[
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://127.0.0.1:4318"
            ),
            ("OTEL_SDK_DISABLED", "TRUE"),
        ]))
        .is_none());
    }

    #[test]
    fn a_valid_client_trace_is_continued_and_anything_else_starts_one() {
        let t = Telemetry::default();
        let client = "0af7651916cd43dd8448eb211c80319c";
        assert_eq!(
            t.start_trace(Some(&format!("00-{client}-b7ad6b7169203331-01"))),
            client
        );
        for bad in [
            "",
            "garbage",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        ] {
            let started = t.start_trace(Some(bad));
            assert_ne!(started, client);
            assert!(trace_id_of(&t.traceparent(&started)).is_some(), "{bad:?}");
        }
        assert_eq!(t.exported_trace_ids().len(), 6);
        let injected = t.traceparent(client);
        assert_eq!(trace_id_of(&injected).as_deref(), Some(client));
        assert_ne!(injected, t.traceparent(client), "a new span each time");
    }
}
