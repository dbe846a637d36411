//! W3C Trace Context (`traceparent`), version 00.
//!
//! The gateway continues a client's trace when its `traceparent` is valid
//! and starts a new one otherwise; either way it sends its own span id
//! downstream. Randomness is passed in, so this stays pure and testable.
//! The correlation id every response and audit record carries is the trace id.

use std::fmt;

/// Header name.
pub const TRACEPARENT: &str = "traceparent";

/// The flag bit meaning "the caller may have recorded this trace".
pub const FLAG_SAMPLED: u8 = 0x01;

/// Why a `traceparent` value was refused (the gateway then starts a new
/// trace; it is never a client error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TraceparentError {
    #[error("traceparent has the wrong length or layout")]
    Layout,
    #[error("traceparent has a character that is not lowercase hex")]
    NotLowercaseHex,
    #[error("traceparent version ff is invalid")]
    InvalidVersion,
    #[error("traceparent trace id is all zeros")]
    ZeroTraceId,
    #[error("traceparent parent id is all zeros")]
    ZeroParentId,
}

/// A trace id and the id of the span that is the parent of the next hop.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.traceparent())
    }
}

impl TraceContext {
    /// Parses a `traceparent` header value.
    ///
    /// Version 00 must be exactly 55 characters. A higher version (01–fe) is
    /// parsed by its version-00 prefix, as the spec asks, provided anything
    /// after it starts with `-`; version ff is invalid. Hex must be lowercase.
    pub fn parse(value: &str) -> Result<TraceContext, TraceparentError> {
        let value = value.trim_matches([' ', '\t']);
        let bytes = value.as_bytes();
        if bytes.len() < 55 {
            return Err(TraceparentError::Layout);
        }
        let version = hex_field::<1>(&bytes[0..2])?;
        if version == [0xff] {
            return Err(TraceparentError::InvalidVersion);
        }
        let exact = version == [0x00];
        if (exact && bytes.len() != 55) || (!exact && bytes.len() > 55 && bytes[55] != b'-') {
            return Err(TraceparentError::Layout);
        }
        if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return Err(TraceparentError::Layout);
        }
        let trace_id = hex_field::<16>(&bytes[3..35])?;
        let parent_id = hex_field::<8>(&bytes[36..52])?;
        let [flags] = hex_field::<1>(&bytes[53..55])?;
        if trace_id == [0; 16] {
            return Err(TraceparentError::ZeroTraceId);
        }
        if parent_id == [0; 8] {
            return Err(TraceparentError::ZeroParentId);
        }
        // Unknown flags of a newer version are not ours to pass on.
        let flags = if exact { flags } else { flags & FLAG_SAMPLED };
        Ok(TraceContext {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// A new trace: trace id from the first 16 random bytes, span id from
    /// the last 8, sampled (the gateway logs every request).
    pub fn start(random: [u8; 24]) -> TraceContext {
        let mut trace_id = [0u8; 16];
        trace_id.copy_from_slice(&random[..16]);
        let mut parent_id = [0u8; 8];
        parent_id.copy_from_slice(&random[16..]);
        TraceContext {
            trace_id: nonzero(trace_id),
            parent_id: nonzero(parent_id),
            flags: FLAG_SAMPLED,
        }
    }

    /// The context for the next hop: same trace and flags, the gateway's own
    /// span id (from `random`) as the parent.
    pub fn child(&self, random: [u8; 8]) -> TraceContext {
        TraceContext {
            parent_id: nonzero(random),
            ..*self
        }
    }

    /// The `traceparent` header value (always version 00).
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.parent_id),
            self.flags
        )
    }

    /// The trace id, 32 lowercase hex digits: the correlation id.
    pub fn trace_id(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// The correlation id (`x-correlation-id`) is the trace id.
    pub fn correlation_id(&self) -> String {
        self.trace_id()
    }

    pub fn parent_id(&self) -> String {
        hex::encode(self.parent_id)
    }

    pub fn flags(&self) -> u8 {
        self.flags
    }
}

/// Whether `text` is a W3C trace id: 32 lowercase hex digits, not all zero
/// (what a backend names the trace it answered under).
pub fn is_trace_id(text: &str) -> bool {
    text.len() == 32
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && text.bytes().any(|b| b != b'0')
}

/// Continues the client's trace if its header is valid, else starts one.
/// Either way the result is the gateway's own span (a child), ready to send.
pub fn continue_or_start(header: Option<&str>, random: [u8; 24]) -> TraceContext {
    let mut span = [0u8; 8];
    span.copy_from_slice(&random[16..]);
    match header.map(TraceContext::parse) {
        Some(Ok(incoming)) => incoming.child(span),
        _ => TraceContext::start(random),
    }
}

/// All-zero ids are invalid; random bytes are all zero with negligible
/// probability, but a broken source must not produce an invalid header.
fn nonzero<const N: usize>(mut id: [u8; N]) -> [u8; N] {
    if id == [0; N] {
        id[N - 1] = 1;
    }
    id
}

fn hex_field<const N: usize>(text: &[u8]) -> Result<[u8; N], TraceparentError> {
    // `hex` accepts uppercase; the spec does not.
    if text.len() != 2 * N || !text.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(TraceparentError::NotLowercaseHex);
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|_| TraceparentError::NotLowercaseHex)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_spec_example() {
        let ctx = TraceContext::parse(VALID).unwrap();
        assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.parent_id(), "00f067aa0ba902b7");
        assert_eq!(ctx.flags(), 1);
        assert_eq!(ctx.traceparent(), VALID);
        assert_eq!(ctx.correlation_id(), ctx.trace_id());
        assert!(
            TraceContext::parse(&format!(" {VALID}\t")).is_ok(),
            "surrounding whitespace"
        );
        assert_eq!(
            TraceContext::parse(&VALID.replace("-01", "-00"))
                .unwrap()
                .flags(),
            0
        );
    }

    #[test]
    fn invalid_forms() {
        use TraceparentError::*;
        let upper = VALID.replace("4bf92f", "4BF92F");
        let cases = [
            ("", Layout),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                Layout,
            ),
            (&format!("{VALID}0"), Layout),
            (&format!("{VALID}-extra"), Layout),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-011",
                Layout,
            ),
            (
                "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                Layout,
            ),
            (&upper, NotLowercaseHex),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
                NotLowercaseHex,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
                NotLowercaseHex,
            ),
            (
                "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                NotLowercaseHex,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
                NotLowercaseHex,
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                InvalidVersion,
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                ZeroTraceId,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                ZeroParentId,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-+1",
                NotLowercaseHex,
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(TraceContext::parse(value), Err(expected), "{value:?}");
        }
    }

    #[test]
    fn future_versions_are_read_by_their_version_00_prefix() {
        let v1 = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-future-stuff";
        let ctx = TraceContext::parse(v1).unwrap();
        assert_eq!(
            ctx.traceparent(),
            VALID,
            "re-emitted as version 00 with known flags only"
        );
        assert!(TraceContext::parse(&v1[..55]).is_ok());
        assert_eq!(
            TraceContext::parse(&format!("{}x", &v1[..55])),
            Err(TraceparentError::Layout)
        );
    }

    #[test]
    fn child_keeps_trace_and_flags_with_a_new_parent() {
        let parent = TraceContext::parse(VALID).unwrap();
        let child = parent.child([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            child.traceparent(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708-01"
        );
        assert_eq!(
            child.child([0; 8]).parent_id(),
            "0000000000000001",
            "never all zero"
        );
    }

    #[test]
    fn start_uses_the_random_bytes_and_is_valid() {
        let mut random = [0u8; 24];
        for (i, b) in random.iter_mut().enumerate() {
            *b = i as u8 + 0xa0;
        }
        let ctx = TraceContext::start(random);
        assert_eq!(
            ctx.traceparent(),
            "00-a0a1a2a3a4a5a6a7a8a9aaabacadaeaf-b0b1b2b3b4b5b6b7-01"
        );
        assert_eq!(TraceContext::parse(&ctx.traceparent()), Ok(ctx));
        let zero = TraceContext::start([0; 24]);
        assert_eq!(TraceContext::parse(&zero.traceparent()), Ok(zero));
    }

    #[test]
    fn continue_or_start_prefers_a_valid_incoming_trace() {
        let random = [7u8; 24];
        let continued = continue_or_start(Some(VALID), random);
        assert_eq!(continued.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(continued.parent_id(), "0707070707070707");
        for header in [None, Some("garbage"), Some(&*VALID.to_uppercase())] {
            let started = continue_or_start(header, random);
            assert_eq!(started.trace_id(), "07".repeat(16));
        }
    }

    #[test]
    fn trace_ids_are_32_lowercase_hex_not_all_zero() {
        assert!(is_trace_id("0af7651916cd43dd8448eb211c80319c"));
        for bad in [
            "",
            "0AF7651916CD43DD8448EB211C80319C",
            "00000000000000000000000000000000",
            "0af7651916cd43dd8448eb211c80319",
            "0af7651916cd43dd8448eb211c80319cc",
            "0af7651916cd43dd-448eb211c80319c",
        ] {
            assert!(!is_trace_id(bad), "{bad:?}");
        }
    }
}
