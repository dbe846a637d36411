//! Strict `%XX` decoding, shared by everything that reads a URL part: the
//! gateway's query parameters, the audit register's query parameters, the
//! document store's path segments and the Cosmos authorization header.
//!
//! Strict means: a `%` must be followed by exactly two hexadecimal digits
//! (no sign, no shorter escape) and the decoded bytes must be UTF-8;
//! anything else is `None`, so the caller can answer 400 instead of guessing.
//! It never allocates more than the input's length and never panics.

/// What a `+` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plus {
    /// A plus sign (URL paths and query values that are not form data).
    Literal,
    /// A space (`application/x-www-form-urlencoded`).
    Space,
}

/// Decodes `text`; `None` for a broken escape or a result that is not UTF-8.
pub fn decode(text: &str, plus: Plus) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let high = hex_digit(*bytes.get(i + 1)?)?;
                let low = hex_digit(*bytes.get(i + 2)?)?;
                out.push(high << 4 | low);
                i += 3;
            }
            b'+' if plus == Plus::Space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{decode, Plus};

    #[test]
    fn escapes_decode_and_plain_text_passes() {
        assert_eq!(
            decode("a%20b%2Fc%2fd", Plus::Literal).as_deref(),
            Some("a b/c/d")
        );
        assert_eq!(decode("caf%C3%A9", Plus::Literal).as_deref(), Some("café"));
        assert_eq!(decode("", Plus::Literal).as_deref(), Some(""));
    }

    #[test]
    fn plus_is_literal_or_space() {
        assert_eq!(decode("+02:00", Plus::Literal).as_deref(), Some("+02:00"));
        assert_eq!(decode("a+b%2B", Plus::Space).as_deref(), Some("a b+"));
    }

    #[test]
    fn broken_escapes_and_non_utf8_are_refused() {
        for bad in ["%", "%2", "%zz", "%+f", "%-1", "% 1", "ab%4", "%C3", "%FF"] {
            assert_eq!(decode(bad, Plus::Literal), None, "{bad:?}");
        }
    }
}
