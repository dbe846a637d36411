//! `Idempotency-Key` on the two creates (IETF
//! draft-ietf-httpapi-idempotency-key-header): a client that retries a
//! `POST /patient` or `POST /patient/{id}/tests` with the same key gets the
//! first result, not a second patient or test.
//!
//! No key table: the new resource's id is derived from the caller, the
//! collection and the key, so every retry (and every concurrent duplicate)
//! aims at the same document, and the store's create-if-absent decides which
//! one wrote it. A retry then finds the stored resource and compares its
//! content with its own request: the same is the first result again,
//! anything else is 422. A key is honoured for [`KEY_LIFETIME_MILLIS`] after
//! the resource was last written; after that its reuse is 422 too.
//!
//! Pure functions only; src/service.rs does the store calls.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The request header (lower case, as headers are compared).
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Longest key accepted (the draft sets none; a UUID is 36).
pub const MAX_KEY_CHARS: usize = 255;
/// How long a key replays its first result: 24 hours after the resource it
/// created was last written.
pub const KEY_LIFETIME_MILLIS: i64 = 24 * 60 * 60 * 1000;

/// A client's idempotency key, unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

/// Why a header value is not a key. Says nothing of the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidKey;

impl IdempotencyKey {
    /// The header value: an RFC 8941 sf-string as the draft specifies
    /// (`"8e03978e-40d5-43e8-bc93-6894a57f9324"`, with `\"` and `\\`
    /// escapes), or, as many clients send it, the bare key. Either way 1 to
    /// [`MAX_KEY_CHARS`] printable ASCII characters; a bare key has no
    /// spaces, quotes or backslashes.
    pub fn parse(header: &str) -> Result<IdempotencyKey, InvalidKey> {
        let key = match header.strip_prefix('"') {
            Some(quoted) => unquote(quoted)?,
            None => {
                let bare = header
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
                if !bare {
                    return Err(InvalidKey);
                }
                header.to_owned()
            }
        };
        if key.is_empty() || key.len() > MAX_KEY_CHARS {
            return Err(InvalidKey);
        }
        Ok(IdempotencyKey(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The inside of an sf-string, after its opening quote: up to the closing
/// quote, which must end the value.
fn unquote(rest: &str) -> Result<String, InvalidKey> {
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                return if chars.next().is_none() {
                    Ok(out)
                } else {
                    Err(InvalidKey)
                }
            }
            '\\' => match chars.next() {
                Some(escaped @ ('"' | '\\')) => out.push(escaped),
                _ => return Err(InvalidKey),
            },
            ' '..='~' => out.push(c),
            _ => return Err(InvalidKey),
        }
    }
    Err(InvalidKey)
}

/// The id a create with `key` makes: the same for every request of `actor`
/// to `collection` (`patients`, or `tests/<patient id>`) with that key,
/// different for any other caller, collection or key, and not guessable
/// without the key. A version-4-shaped UUID, like every other id.
pub fn resource_id(actor: &str, collection: &str, key: &IdempotencyKey) -> Uuid {
    let mut hasher = Sha256::new();
    // Lengths first, so no two (actor, collection, key) triples hash alike.
    for part in [actor, collection, key.as_str()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// What a create that found its id taken does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// The stored resource is what this request asks for: answer it again.
    FirstResult,
    /// The key was used for different content (or the resource has been
    /// changed since): 422.
    DifferentRequest,
    /// The key's lifetime is over: 422, use a new key.
    Expired,
}

/// Judges a retry: `same_content` compares the stored resource with the
/// request, the times are the stored `lastUpdated` and now.
pub fn replay(same_content: bool, last_written_millis: i64, now_millis: i64) -> Replay {
    if now_millis.saturating_sub(last_written_millis) > KEY_LIFETIME_MILLIS {
        Replay::Expired
    } else if same_content {
        Replay::FirstResult
    } else {
        Replay::DifferentRequest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(s: &str) -> IdempotencyKey {
        IdempotencyKey::parse(s).unwrap()
    }

    #[test]
    fn quoted_and_bare_keys() {
        let uuid = "8e03978e-40d5-43e8-bc93-6894a57f9324";
        assert_eq!(key(&format!("\"{uuid}\"")).as_str(), uuid);
        assert_eq!(key(uuid).as_str(), uuid);
        assert_eq!(key(r#""a \"b\" \\ c""#).as_str(), r#"a "b" \ c"#);
        assert_eq!(
            key(&"k".repeat(MAX_KEY_CHARS)).as_str().len(),
            MAX_KEY_CHARS
        );
        for bad in [
            "",
            "\"\"",
            "\"open",
            "\"a\"b",
            "\"a\\x\"",
            "two words",
            "quote\"inside",
            "back\\slash",
            "caf\u{e9}",
            "tab\there",
            "\"tab\there\"",
        ] {
            assert_eq!(IdempotencyKey::parse(bad), Err(InvalidKey), "{bad:?}");
        }
        assert_eq!(
            IdempotencyKey::parse(&"k".repeat(MAX_KEY_CHARS + 1)),
            Err(InvalidKey)
        );
    }

    #[test]
    fn ids_depend_on_caller_collection_and_key_only() {
        let k = key("retry-1");
        let id = resource_id("clinic", "patients", &k);
        assert_eq!(id, resource_id("clinic", "patients", &key("\"retry-1\"")));
        assert_eq!(id.get_version_num(), 4);
        assert_ne!(id, resource_id("reader", "patients", &k));
        assert_ne!(id, resource_id("clinic", "tests/x", &k));
        assert_ne!(id, resource_id("clinic", "patients", &key("retry-2")));
        // Moving text between the parts changes the id.
        assert_ne!(
            resource_id("ab", "c", &key("d")),
            resource_id("a", "bc", &key("d"))
        );
    }

    #[test]
    fn a_retry_replays_within_the_lifetime_only() {
        let t = 1_700_000_000_000;
        assert_eq!(replay(true, t, t + 5), Replay::FirstResult);
        assert_eq!(replay(false, t, t + 5), Replay::DifferentRequest);
        assert_eq!(
            replay(true, t, t + KEY_LIFETIME_MILLIS),
            Replay::FirstResult
        );
        assert_eq!(
            replay(true, t, t + KEY_LIFETIME_MILLIS + 1),
            Replay::Expired
        );
        assert_eq!(
            replay(false, t, t + KEY_LIFETIME_MILLIS + 1),
            Replay::Expired
        );
    }

    proptest! {
        /// Any header value is a key or InvalidKey, never a panic; a key
        /// is printable ASCII within the length bound, and a bare printable
        /// key without quotes or backslashes is itself.
        #[test]
        fn parsing_never_panics_and_keys_stay_in_bounds(value in ".{0,300}") {
            if let Ok(k) = IdempotencyKey::parse(&value) {
                prop_assert!(!k.as_str().is_empty() && k.as_str().len() <= MAX_KEY_CHARS);
                prop_assert!(k.as_str().bytes().all(|b| (b' '..=b'~').contains(&b)));
            }
        }

        #[test]
        fn quoting_a_bare_key_gives_the_same_key(k in "[!#-\\[\\]-~]{1,255}") {
            prop_assert_eq!(key(&k), key(&format!("\"{k}\"")));
        }
    }
}
