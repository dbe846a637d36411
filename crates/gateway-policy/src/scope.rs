//! Scopes: what a credential allows. Subscriptions and tokens map to the same
//! three values, so authorization does not care how a caller authenticated.

use std::fmt;

/// One permission of the public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `patients.read`: read and search patients and their tests.
    PatientsRead,
    /// `patients.write`: create and update patients and tests.
    PatientsWrite,
    /// `audit.read`: read the audit register and verify its chains.
    AuditRead,
}

impl Scope {
    /// Every scope, in a fixed order.
    pub const ALL: [Scope; 3] = [Scope::PatientsRead, Scope::PatientsWrite, Scope::AuditRead];

    /// The wire name, as in configuration, tokens and the OpenAPI document.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::PatientsRead => "patients.read",
            Scope::PatientsWrite => "patients.write",
            Scope::AuditRead => "audit.read",
        }
    }

    /// The scope with this exact wire name (case-sensitive), if any.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == name)
    }

    const fn bit(self) -> u8 {
        match self {
            Scope::PatientsRead => 1,
            Scope::PatientsWrite => 2,
            Scope::AuditRead => 4,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes (a bit set: copying and comparing are free).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScopeSet(u8);

impl ScopeSet {
    /// No scope at all.
    pub const EMPTY: ScopeSet = ScopeSet(0);

    pub const fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn insert(&mut self, scope: Scope) {
        self.0 |= scope.bit();
    }

    /// This set plus `scope`.
    pub const fn with(self, scope: Scope) -> ScopeSet {
        ScopeSet(self.0 | scope.bit())
    }

    /// The scopes in both sets.
    pub const fn intersection(self, other: ScopeSet) -> ScopeSet {
        ScopeSet(self.0 & other.0)
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The scopes in the set, in [`Scope::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |scope| self.contains(*scope))
    }

    /// The set as an OAuth-style space-separated list.
    pub fn to_space_separated(self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(" ")
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        iter.into_iter().fold(ScopeSet::EMPTY, ScopeSet::with)
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(Scope::as_str))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_and_are_case_sensitive() {
        assert_eq!(Scope::parse("patients.read"), Some(Scope::PatientsRead));
        assert_eq!(Scope::parse("patients.write"), Some(Scope::PatientsWrite));
        assert_eq!(Scope::parse("audit.read"), Some(Scope::AuditRead));
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
        assert_eq!(Scope::parse("Patients.Read"), None);
        assert_eq!(Scope::parse("patients.read "), None);
        assert_eq!(Scope::parse("patients"), None);
        assert_eq!(Scope::parse(""), None);
    }

    #[test]
    fn set_operations() {
        let read_write: ScopeSet = [Scope::PatientsRead, Scope::PatientsWrite]
            .into_iter()
            .collect();
        assert!(read_write.contains(Scope::PatientsRead));
        assert!(read_write.contains(Scope::PatientsWrite));
        assert!(!read_write.contains(Scope::AuditRead));
        let audit = ScopeSet::EMPTY
            .with(Scope::AuditRead)
            .with(Scope::PatientsRead);
        assert_eq!(
            read_write.intersection(audit).iter().collect::<Vec<_>>(),
            vec![Scope::PatientsRead]
        );
        assert!(ScopeSet::EMPTY.is_empty());
        assert!(read_write
            .intersection(ScopeSet::EMPTY.with(Scope::AuditRead))
            .is_empty());
        assert_eq!(
            read_write.to_space_separated(),
            "patients.read patients.write"
        );
        assert_eq!(
            format!("{read_write:?}"),
            r#"{"patients.read", "patients.write"}"#
        );
    }
}
