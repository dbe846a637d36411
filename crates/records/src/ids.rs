//! Patient and test identifiers: GUIDs in their hyphenated form.
//!
//! Accepted text: exactly `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` with hex
//! digits in either case. Braced (`{...}`), URN (`urn:uuid:...`) and
//! unhyphenated forms are rejected, so every identifier has one spelling in
//! routes, bodies and stored documents. Displayed in lower case, which is
//! also how ids are stored, so the store's exact string match finds them.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::error::{ValidationError, Violation};

/// Text that is not a hyphenated GUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidGuid;

impl fmt::Display for InvalidGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a hyphenated GUID")
    }
}

impl std::error::Error for InvalidGuid {}

/// Parses the one accepted GUID spelling.
pub(crate) fn parse_guid(s: &str) -> Result<Uuid, InvalidGuid> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    if !shape_ok {
        return Err(InvalidGuid);
    }
    Uuid::parse_str(s).map_err(|_| InvalidGuid)
}

macro_rules! guid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// Parses a value found at JSON path `field`.
            pub(crate) fn parse_at(field: &str, s: &str) -> Result<Self, ValidationError> {
                s.parse().map_err(|_| ValidationError::new(field, Violation::NotAGuid))
            }
        }

        impl FromStr for $name {
            type Err = InvalidGuid;
            fn from_str(s: &str) -> Result<Self, InvalidGuid> {
                parse_guid(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }
    };
}

guid_id!(
    /// A patient's id, assigned by the server.
    PatientId
);
guid_id!(
    /// A laboratory test's id, assigned by the server.
    TestId
);

#[cfg(test)]
mod tests {
    use super::*;

    const LOWER: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";

    #[test]
    fn hyphenated_guids_parse_in_either_case_and_display_lowercase() {
        let a: PatientId = LOWER.parse().unwrap();
        let b: PatientId = LOWER.to_uppercase().parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(b.to_string(), LOWER);
        let mixed = "3F2504e0-4f89-11D3-9a0c-0305E82c3301";
        assert_eq!(mixed.parse::<TestId>().unwrap().to_string(), LOWER);
    }

    #[test]
    fn other_guid_spellings_are_rejected() {
        for s in [
            "",
            "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}",
            "3f2504e04f8911d39a0c0305e82c3301",
            "urn:uuid:3f2504e0-4f89-11d3-9a0c-0305e82c3301",
            "3f2504e0-4f89-11d3-9a0c-0305e82c330",
            "3f2504e0-4f89-11d3-9a0c-0305e82c33011",
            "3f2504e0-4f89-11d3-9a0c-0305e82c330g",
            "3f2504e0_4f89_11d3_9a0c_0305e82c3301",
            " 3f2504e0-4f89-11d3-9a0c-0305e82c3301",
            "3f2504e0-4f8-911d3-9a0c-0305e82c3301",
            "1",
        ] {
            assert_eq!(s.parse::<PatientId>(), Err(InvalidGuid), "{s:?}");
        }
    }

    #[test]
    fn parse_at_names_the_field() {
        let e = PatientId::parse_at("id", "nope").unwrap_err();
        assert_eq!(e, ValidationError::new("id", Violation::NotAGuid));
    }

    #[test]
    fn uuid_round_trip() {
        let u = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let id = TestId::from_uuid(u);
        assert_eq!(*id.as_uuid(), u);
        assert_eq!(id.to_string(), "01234567-89ab-cdef-0123-456789abcdef");
    }
}
