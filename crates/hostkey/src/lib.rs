//! Shared-key checks for service-to-service calls (`x-functions-key`) and for
//! the health key.
//!
//! A service accepts two keys, primary and secondary, so that one can be
//! replaced while callers still use the other: rotation without downtime.
//! Comparison is in constant time over SHA-256 digests, so neither the content
//! nor the length of a key leaks through timing. This crate never logs, prints
//! or returns a key.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Header a caller presents its host key in, as Azure Functions does.
pub const HOST_KEY_HEADER: &str = "x-functions-key";

/// Why a presented key was not accepted. Deliberately says nothing about
/// which key was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRejection {
    /// No key was presented.
    Missing,
    /// A key was presented and matched neither accepted key.
    Wrong,
}

/// Why a key pair could not be configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyConfigError {
    /// A configured key is empty (an empty key would accept an empty header).
    Empty,
}

/// The keys a service accepts. Holds digests only.
#[derive(Clone)]
pub struct AcceptedKeys {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for AcceptedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AcceptedKeys({} keys)", self.digests.len())
    }
}

impl AcceptedKeys {
    /// The primary and secondary key of a service.
    pub fn pair(primary: &str, secondary: &str) -> Result<Self, KeyConfigError> {
        Self::from_keys([primary, secondary])
    }

    /// A single accepted key (such as the health key).
    pub fn single(key: &str) -> Result<Self, KeyConfigError> {
        Self::from_keys([key])
    }

    fn from_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<Self, KeyConfigError> {
        let mut digests = Vec::new();
        for key in keys {
            if key.trim().is_empty() {
                return Err(KeyConfigError::Empty);
            }
            digests.push(digest(key));
        }
        Ok(Self { digests })
    }

    /// Checks a presented key. Every accepted key is compared, whichever
    /// matches, so timing does not tell primary from secondary.
    pub fn verify(&self, presented: Option<&str>) -> Result<(), KeyRejection> {
        let presented = match presented {
            Some(key) if !key.is_empty() => key,
            _ => return Err(KeyRejection::Missing),
        };
        let presented = digest(presented);
        let matched = self
            .digests
            .iter()
            .fold(subtle::Choice::from(0), |any, accepted| {
                any | accepted.ct_eq(&presented)
            });
        if bool::from(matched) {
            Ok(())
        } else {
            Err(KeyRejection::Wrong)
        }
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> AcceptedKeys {
        AcceptedKeys::pair("primary-key-value", "secondary-key-value").unwrap()
    }

    #[test]
    fn primary_and_secondary_both_pass() {
        assert_eq!(keys().verify(Some("primary-key-value")), Ok(()));
        assert_eq!(keys().verify(Some("secondary-key-value")), Ok(()));
    }

    #[test]
    fn missing_empty_and_wrong_keys_are_rejected() {
        assert_eq!(keys().verify(None), Err(KeyRejection::Missing));
        assert_eq!(keys().verify(Some("")), Err(KeyRejection::Missing));
        assert_eq!(
            keys().verify(Some("primary-key-valu")),
            Err(KeyRejection::Wrong)
        );
        assert_eq!(
            keys().verify(Some("primary-key-value ")),
            Err(KeyRejection::Wrong)
        );
        assert_eq!(
            keys().verify(Some("PRIMARY-KEY-VALUE")),
            Err(KeyRejection::Wrong)
        );
    }

    #[test]
    fn empty_configured_keys_are_refused() {
        assert_eq!(
            AcceptedKeys::pair("k", "").unwrap_err(),
            KeyConfigError::Empty
        );
        assert_eq!(
            AcceptedKeys::single("  ").unwrap_err(),
            KeyConfigError::Empty
        );
    }

    #[test]
    fn debug_output_reveals_no_key_material() {
        let shown = format!("{:?}", keys());
        assert!(!shown.contains("primary"));
        assert_eq!(shown, "AcceptedKeys(2 keys)");
    }
}
