//! Who acted: the forms of the `x-actor` value and their lengths, shared by
//! the gateway (which names the authenticated caller) and the audit register
//! (which records it), so that one cannot accept what the other refuses.
//!
//! - subscription only: the subscription name, e.g. `load-test`;
//! - token only: `token:<sub>`;
//! - both: `<subscription>/token:<sub>`.

/// Longest subscription name the gateway accepts.
pub const MAX_SUBSCRIPTION_NAME_CHARS: usize = 64;
/// Longest bearer-token `sub` the gateway accepts.
pub const MAX_SUBJECT_CHARS: usize = 256;
/// Longest actor the audit register accepts: the longest the gateway can
/// name (both credentials, longest name and subject).
pub const MAX_ACTOR_CHARS: usize =
    MAX_SUBSCRIPTION_NAME_CHARS + BOTH_SEPARATOR.len() + TOKEN_PREFIX.len() + MAX_SUBJECT_CHARS;

/// Keeps token subjects apart from subscription names (which cannot hold
/// `:` or `/`): a `sub` of `load-test` is never the subscription `load-test`.
const TOKEN_PREFIX: &str = "token:";
const BOTH_SEPARATOR: &str = "/";

/// The actor of a caller that presented only a subscription key.
pub fn subscription(name: &str) -> String {
    name.to_string()
}

/// The actor of a caller that presented only a bearer token.
pub fn token(subject: &str) -> String {
    format!("{TOKEN_PREFIX}{subject}")
}

/// The actor of a caller that presented both: the system that called and
/// the principal its token names.
pub fn both(name: &str, subject: &str) -> String {
    format!("{name}{BOTH_SEPARATOR}{TOKEN_PREFIX}{subject}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_name_and_subject_make_exactly_the_longest_actor() {
        let name = "n".repeat(MAX_SUBSCRIPTION_NAME_CHARS);
        let subject = "s".repeat(MAX_SUBJECT_CHARS);
        assert_eq!(both(&name, &subject).len(), MAX_ACTOR_CHARS);
        assert!(token(&subject).len() < MAX_ACTOR_CHARS);
        assert!(subscription(&name).len() < MAX_ACTOR_CHARS);
        assert_eq!(MAX_ACTOR_CHARS, 327);
    }

    #[test]
    fn the_forms() {
        assert_eq!(subscription("clinic"), "clinic");
        assert_eq!(token("app-7"), "token:app-7");
        assert_eq!(both("clinic", "app-7"), "clinic/token:app-7");
    }
}
