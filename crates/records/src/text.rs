//! The string rules of this API's fields: not empty, bounded in
//! characters, and either identifying (exact-match text) or free text.
//! Reading the JSON itself is `strict_json`'s.

use crate::error::{ValidationError, Violation};

/// How strictly a string is checked beyond its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextStyle {
    /// Names, codes and numbers that are searched by exact match: no control
    /// characters, no leading or trailing whitespace.
    Identifying,
    /// Free text kept verbatim: tab, CR and LF allowed, not blank.
    Free,
}

/// The rules every string field follows: not empty (as the original API's
/// validator required), at most `max` characters, and the style's rules.
pub(crate) fn check_text(
    field: &str,
    s: &str,
    max: usize,
    style: TextStyle,
) -> Result<(), ValidationError> {
    let fail = |v| Err(ValidationError::new(field, v));
    if s.is_empty() {
        return fail(Violation::Empty);
    }
    match style {
        TextStyle::Identifying => {
            if s.chars().any(char::is_control) {
                return fail(Violation::ControlCharacter);
            }
            if s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
                return fail(Violation::SurroundingWhitespace);
            }
        }
        TextStyle::Free => {
            if s.chars()
                .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
            {
                return fail(Violation::ControlCharacter);
            }
            if s.chars().all(char::is_whitespace) {
                return fail(Violation::Blank);
            }
        }
    }
    if s.chars().count() > max {
        return fail(Violation::TooLong { max });
    }
    Ok(())
}

/// Defines a validated string newtype. Its `Debug` never shows the value
/// (it may be patient data); use `as_str` where the value is needed.
macro_rules! text_type {
    ($(#[$meta:meta])* $name:ident, field = $field:literal, max = $max:expr, style = $style:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// Most characters allowed.
            pub const MAX_CHARS: usize = $max;

            /// Validates a value of this field.
            pub fn parse(value: &str) -> Result<Self, $crate::ValidationError> {
                Self::parse_at($field, value.to_owned())
            }

            /// Validates a value found at JSON path `field`.
            pub(crate) fn parse_at(
                field: &str,
                value: String,
            ) -> Result<Self, $crate::ValidationError> {
                $crate::text::check_text(field, &value, $max, $style)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, concat!(stringify!($name), "(<{} chars>)"), self.0.chars().count())
            }
        }
    };
}
pub(crate) use text_type;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        use TextStyle::*;
        let v = |s: &str, style| check_text("f", s, 5, style).map_err(|e| e.violation);
        assert_eq!(v("", Identifying), Err(Violation::Empty));
        assert_eq!(v("", Free), Err(Violation::Empty));
        assert_eq!(v(" a", Identifying), Err(Violation::SurroundingWhitespace));
        assert_eq!(
            v("a\u{a0}", Identifying),
            Err(Violation::SurroundingWhitespace)
        );
        assert_eq!(v("a b", Identifying), Ok(()));
        assert_eq!(v("a\tb", Identifying), Err(Violation::ControlCharacter));
        assert_eq!(v("a\tb\n", Free), Ok(()));
        assert_eq!(v("a\u{7}", Free), Err(Violation::ControlCharacter));
        assert_eq!(v(" \n ", Free), Err(Violation::Blank));
        assert_eq!(v(" a ", Free), Ok(()));
        // Characters, not bytes: five two-byte characters fit, six do not.
        assert_eq!(v("ééééé", Identifying), Ok(()));
        assert_eq!(v("éééééé", Identifying), Err(Violation::TooLong { max: 5 }));
    }
}
