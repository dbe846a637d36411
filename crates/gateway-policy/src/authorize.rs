//! Who is calling, and may they do this: the 401/403 decision.
//!
//! Rules, whatever the policy:
//! - only the credentials the policy uses are looked at (a bearer token under
//!   `SubscriptionOnly` is ignored, and the header is never forwarded);
//! - every credential looked at must be valid: a wrong key next to a good
//!   token is a 401, not a pass (a wrong credential is a signal, not noise);
//! - with two valid credentials the caller gets the *intersection* of their
//!   scopes (least privilege: each credential vouches only for what it grants);
//! - missing or invalid credentials → 401 with `WWW-Authenticate`; valid
//!   credentials without the required scope → 403.
//!
//! The actor (recorded in the audit register through `x-actor`):
//! - subscription only: the subscription name, e.g. `load-test`;
//! - token only: `token:<sub>`;
//! - both: `<subscription>/token:<sub>` — the system that called and the
//!   principal its token names, both of which an auditor needs.
//!
//! The `token:` prefix keeps the two namespaces apart: a token whose `sub` is
//! `load-test` is never recorded as the subscription `load-test` (subscription
//! names cannot contain `:` or `/`).

use std::fmt;

use crate::jwt::{JwtError, JwtValidator};
use crate::limits::Limits;
use crate::scope::{Scope, ScopeSet};
use crate::subscription::{SubscriptionName, Subscriptions};

/// Realm of every challenge.
pub const REALM: &str = "patient-records";

/// The credentials a request presented (already extracted from headers or
/// the query string; empty values count as absent).
#[derive(Clone, Copy, Default)]
pub struct Credentials<'a> {
    pub subscription_key: Option<&'a str>,
    /// The token, without the `Bearer ` prefix (see [`crate::bearer_token`]).
    pub bearer: Option<&'a str>,
}

impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field(
                "subscription_key",
                &self.subscription_key.map(|_| "<redacted>"),
            )
            .field("bearer", &self.bearer.map(|_| "<redacted>"))
            .finish()
    }
}

/// Which credentials the gateway demands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialPolicy {
    SubscriptionOnly,
    JwtOnly,
    /// A subscription key or a bearer token (or both, then both must be valid).
    Either,
    /// A subscription key and a bearer token.
    Both,
}

impl CredentialPolicy {
    /// From the configuration value `subscription`, `jwt`, `either` or `both`.
    pub fn parse(text: &str) -> Option<CredentialPolicy> {
        match text.trim() {
            "subscription" => Some(CredentialPolicy::SubscriptionOnly),
            "jwt" => Some(CredentialPolicy::JwtOnly),
            "either" => Some(CredentialPolicy::Either),
            "both" => Some(CredentialPolicy::Both),
            _ => None,
        }
    }

    /// Whether a [`JwtValidator`] must be configured. The shell checks this at
    /// start-up; if it is missing anyway, every token is refused.
    pub const fn uses_jwt(self) -> bool {
        !matches!(self, CredentialPolicy::SubscriptionOnly)
    }

    pub const fn uses_subscription(self) -> bool {
        !matches!(self, CredentialPolicy::JwtOnly)
    }

    /// The `WWW-Authenticate` value of a 401. `error="invalid_token"` only
    /// when a token was presented and refused (RFC 6750 §3.1: no error code
    /// when the request had no token).
    pub fn challenge(self, invalid_token: bool) -> String {
        let bearer = if invalid_token {
            format!(r#"Bearer realm="{REALM}", error="invalid_token""#)
        } else {
            format!(r#"Bearer realm="{REALM}""#)
        };
        let key = format!(r#"SubscriptionKey realm="{REALM}""#);
        match self {
            CredentialPolicy::SubscriptionOnly => key,
            CredentialPolicy::JwtOnly => bearer,
            CredentialPolicy::Either | CredentialPolicy::Both => format!("{bearer}, {key}"),
        }
    }
}

/// The checkers `authorize` uses.
#[derive(Debug, Clone, Copy)]
pub struct Verifiers<'a> {
    pub subscriptions: &'a Subscriptions,
    pub jwt: Option<&'a JwtValidator>,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Subscription {
        name: SubscriptionName,
        limits: Limits,
        scopes: ScopeSet,
    },
    Token {
        subject: String,
        scopes: ScopeSet,
    },
    Both {
        name: SubscriptionName,
        limits: Limits,
        subject: String,
        scopes: ScopeSet,
    },
}

impl Actor {
    /// The `x-actor` value recorded in the audit register (see module doc).
    pub fn audit_name(&self) -> String {
        match self {
            Actor::Subscription { name, .. } => actor::subscription(name.as_str()),
            Actor::Token { subject, .. } => actor::token(subject),
            Actor::Both { name, subject, .. } => actor::both(name.as_str(), subject),
        }
    }

    /// Whose counters the rate limit and quota use: the subscription when
    /// there is one (limits belong to subscriptions), else the token subject.
    pub fn limit_owner(&self) -> String {
        match self {
            Actor::Subscription { name, .. } | Actor::Both { name, .. } => {
                format!("subscription:{name}")
            }
            Actor::Token { subject, .. } => format!("token:{subject}"),
        }
    }

    /// The subscription's limits; `None` for token-only callers, whose limits
    /// the shell configures.
    pub fn limits(&self) -> Option<Limits> {
        match self {
            Actor::Subscription { limits, .. } | Actor::Both { limits, .. } => Some(*limits),
            Actor::Token { .. } => None,
        }
    }

    pub fn subscription_name(&self) -> Option<&SubscriptionName> {
        match self {
            Actor::Subscription { name, .. } | Actor::Both { name, .. } => Some(name),
            Actor::Token { .. } => None,
        }
    }

    pub fn subject(&self) -> Option<&str> {
        match self {
            Actor::Token { subject, .. } | Actor::Both { subject, .. } => Some(subject),
            Actor::Subscription { .. } => None,
        }
    }

    /// The scopes the caller holds (the intersection when both credentials
    /// were presented).
    pub fn scopes(&self) -> ScopeSet {
        match self {
            Actor::Subscription { scopes, .. }
            | Actor::Token { scopes, .. }
            | Actor::Both { scopes, .. } => *scopes,
        }
    }
}

/// Why authentication failed: for logs, never for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("no credentials")]
    MissingCredentials,
    #[error("no subscription key")]
    MissingSubscriptionKey,
    #[error("no bearer token")]
    MissingBearerToken,
    #[error("subscription key matches no subscription")]
    UnknownSubscriptionKey,
    #[error("invalid bearer token: {0}")]
    InvalidToken(JwtError),
    #[error("bearer tokens are required but JWT validation is not configured")]
    JwtNotConfigured,
}

impl AuthFailure {
    /// A short stable code for log lines.
    pub fn code(&self) -> &'static str {
        match self {
            AuthFailure::MissingCredentials => "missing_credentials",
            AuthFailure::MissingSubscriptionKey => "missing_subscription_key",
            AuthFailure::MissingBearerToken => "missing_bearer_token",
            AuthFailure::UnknownSubscriptionKey => "unknown_subscription_key",
            AuthFailure::InvalidToken(_) => "invalid_token",
            AuthFailure::JwtNotConfigured => "jwt_not_configured",
        }
    }
}

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// 401: missing or wrong credentials.
    Unauthenticated {
        failure: AuthFailure,
        www_authenticate: String,
    },
    /// 403: valid credentials without the scope.
    Forbidden {
        required: Scope,
        /// The actor's audit name, for the access log.
        actor: String,
        /// `Bearer ..., error="insufficient_scope"` when a token was used.
        www_authenticate: Option<String>,
    },
}

impl Denial {
    pub fn status(&self) -> u16 {
        match self {
            Denial::Unauthenticated { .. } => 401,
            Denial::Forbidden { .. } => 403,
        }
    }

    pub fn www_authenticate(&self) -> Option<&str> {
        match self {
            Denial::Unauthenticated {
                www_authenticate, ..
            } => Some(www_authenticate),
            Denial::Forbidden {
                www_authenticate, ..
            } => www_authenticate.as_deref(),
        }
    }

    /// The problem `detail` for the client: says what to do, never which
    /// credential failed or why (that goes to the log via [`AuthFailure`]).
    pub fn detail(&self) -> String {
        match self {
            Denial::Unauthenticated { failure, .. } => match failure {
                AuthFailure::MissingCredentials
                | AuthFailure::MissingSubscriptionKey
                | AuthFailure::MissingBearerToken => "Credentials are missing.".to_string(),
                _ => "Credentials are invalid.".to_string(),
            },
            Denial::Forbidden { required, .. } => {
                format!("The credentials do not grant the scope {required}.")
            }
        }
    }
}

/// Authenticates the request under `policy` and checks that the caller holds
/// `required`.
pub fn authorize(
    credentials: Credentials<'_>,
    policy: CredentialPolicy,
    required: Scope,
    verifiers: Verifiers<'_>,
    now_unix: i64,
) -> Result<Actor, Denial> {
    let key = credentials
        .subscription_key
        .filter(|k| !k.is_empty() && policy.uses_subscription());
    let token = credentials
        .bearer
        .filter(|t| !t.is_empty() && policy.uses_jwt());
    let unauthenticated = |failure: AuthFailure| {
        let invalid_token = matches!(failure, AuthFailure::InvalidToken(_));
        Denial::Unauthenticated {
            failure,
            www_authenticate: policy.challenge(invalid_token),
        }
    };

    let missing = match (policy, key, token) {
        (CredentialPolicy::SubscriptionOnly, None, _) => Some(AuthFailure::MissingSubscriptionKey),
        (CredentialPolicy::JwtOnly, _, None) => Some(AuthFailure::MissingBearerToken),
        (CredentialPolicy::Either, None, None) => Some(AuthFailure::MissingCredentials),
        (CredentialPolicy::Both, None, None) => Some(AuthFailure::MissingCredentials),
        (CredentialPolicy::Both, None, Some(_)) => Some(AuthFailure::MissingSubscriptionKey),
        (CredentialPolicy::Both, Some(_), None) => Some(AuthFailure::MissingBearerToken),
        _ => None,
    };
    if let Some(failure) = missing {
        return Err(unauthenticated(failure));
    }

    let subscription = match key {
        None => None,
        Some(key) => Some(
            verifiers
                .subscriptions
                .authenticate(key)
                .ok_or_else(|| unauthenticated(AuthFailure::UnknownSubscriptionKey))?,
        ),
    };
    let principal = match token {
        None => None,
        Some(token) => {
            let validator = verifiers
                .jwt
                .ok_or_else(|| unauthenticated(AuthFailure::JwtNotConfigured))?;
            Some(
                validator
                    .validate(token, now_unix)
                    .map_err(|e| unauthenticated(AuthFailure::InvalidToken(e)))?,
            )
        }
    };

    let actor = match (subscription, principal) {
        (Some(s), None) => Actor::Subscription {
            name: s.name().clone(),
            limits: s.limits(),
            scopes: s.scopes(),
        },
        (None, Some(p)) => Actor::Token {
            subject: p.subject,
            scopes: p.scopes,
        },
        (Some(s), Some(p)) => Actor::Both {
            name: s.name().clone(),
            limits: s.limits(),
            subject: p.subject,
            scopes: s.scopes().intersection(p.scopes),
        },
        // Excluded by the presence check above; refuse rather than panic.
        (None, None) => return Err(unauthenticated(AuthFailure::MissingCredentials)),
    };
    if actor.scopes().contains(required) {
        return Ok(actor);
    }
    let www_authenticate = actor.subject().map(|_| {
        format!(r#"Bearer realm="{REALM}", error="insufficient_scope", scope="{required}""#)
    });
    Err(Denial::Forbidden {
        required,
        actor: actor.audit_name(),
        www_authenticate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::tests::{es256, rs256, validator, NOW};
    use serde_json::json;
    use sha2::{Digest, Sha256};

    fn subscriptions() -> Subscriptions {
        let entry = |name: &str, k1: &str, k2: &str, scopes: &[&str]| {
            json!({"name": name,
                   "primaryKeySha256": hex::encode(Sha256::digest(k1)),
                   "secondaryKeySha256": hex::encode(Sha256::digest(k2)),
                   "scopes": scopes,
                   "rateLimit": {"calls": 100, "periodSeconds": 60},
                   "quota": {"calls": 10000, "periodSeconds": 86400}})
        };
        let json = json!([
            entry(
                "writer",
                "w-primary",
                "w-secondary",
                &["patients.read", "patients.write"]
            ),
            entry("auditor", "a-primary", "a-secondary", &["audit.read"]),
        ]);
        Subscriptions::from_json(&json.to_string()).unwrap()
    }

    /// A token with `scp` set to `scopes` and subject `app-7`.
    fn token(scopes: &str) -> String {
        let mut claims = crate::jwt::tests::claims();
        claims["scp"] = json!(scopes);
        claims["sub"] = json!("app-7");
        rs256(&claims)
    }

    fn run(
        policy: CredentialPolicy,
        key: Option<&str>,
        bearer: Option<&str>,
        required: Scope,
        with_jwt: bool,
    ) -> Result<Actor, Denial> {
        let subs = subscriptions();
        let jwt = validator();
        let verifiers = Verifiers {
            subscriptions: &subs,
            jwt: with_jwt.then_some(&jwt),
        };
        authorize(
            Credentials {
                subscription_key: key,
                bearer,
            },
            policy,
            required,
            verifiers,
            NOW,
        )
    }

    fn failure(result: Result<Actor, Denial>) -> (AuthFailure, String) {
        match result {
            Err(Denial::Unauthenticated {
                failure,
                www_authenticate,
            }) => (failure, www_authenticate),
            other => panic!("expected 401, got {other:?}"),
        }
    }

    use CredentialPolicy::*;
    use Scope::*;

    #[test]
    fn subscription_primary_and_secondary_keys_pass() {
        for key in ["w-primary", "w-secondary"] {
            let actor = run(SubscriptionOnly, Some(key), None, PatientsWrite, false).unwrap();
            assert_eq!(actor.audit_name(), "writer");
            assert_eq!(actor.limit_owner(), "subscription:writer");
            assert_eq!(actor.limits().unwrap().rate.calls(), 100);
            assert_eq!(actor.subject(), None);
        }
    }

    #[test]
    fn missing_and_wrong_subscription_keys_are_401_with_a_key_challenge() {
        for key in [None, Some("")] {
            let (f, challenge) = failure(run(SubscriptionOnly, key, None, PatientsRead, false));
            assert_eq!(f, AuthFailure::MissingSubscriptionKey);
            assert_eq!(challenge, r#"SubscriptionKey realm="patient-records""#);
        }
        let (f, challenge) = failure(run(
            SubscriptionOnly,
            Some("nope"),
            None,
            PatientsRead,
            false,
        ));
        assert_eq!(f, AuthFailure::UnknownSubscriptionKey);
        assert_eq!(challenge, r#"SubscriptionKey realm="patient-records""#);
        // A bearer token does not help under SubscriptionOnly.
        let (f, _) = failure(run(
            SubscriptionOnly,
            None,
            Some(&token("patients.read")),
            PatientsRead,
            true,
        ));
        assert_eq!(f, AuthFailure::MissingSubscriptionKey);
    }

    #[test]
    fn valid_key_without_the_scope_is_403() {
        let denial = run(
            SubscriptionOnly,
            Some("a-primary"),
            None,
            PatientsRead,
            false,
        )
        .unwrap_err();
        assert_eq!(denial.status(), 403);
        assert_eq!(
            denial,
            Denial::Forbidden {
                required: PatientsRead,
                actor: "auditor".into(),
                www_authenticate: None
            }
        );
        assert!(denial.detail().contains("patients.read"));
        assert!(run(SubscriptionOnly, Some("a-primary"), None, AuditRead, false).is_ok());
    }

    #[test]
    fn jwt_only() {
        let actor = run(
            JwtOnly,
            None,
            Some(&token("patients.read patients.write")),
            PatientsWrite,
            true,
        )
        .unwrap();
        assert_eq!(actor.audit_name(), "token:app-7");
        assert_eq!(actor.limit_owner(), "token:app-7");
        assert_eq!(actor.limits(), None);

        let (f, challenge) = failure(run(JwtOnly, Some("w-primary"), None, PatientsRead, true));
        assert_eq!(f, AuthFailure::MissingBearerToken);
        assert_eq!(challenge, r#"Bearer realm="patient-records""#);

        let (f, challenge) = failure(run(JwtOnly, None, Some("not.a.token"), PatientsRead, true));
        assert!(matches!(
            f,
            AuthFailure::InvalidToken(JwtError::Malformed(_))
        ));
        assert_eq!(
            challenge,
            r#"Bearer realm="patient-records", error="invalid_token""#
        );

        let denial = run(
            JwtOnly,
            None,
            Some(&token("patients.read")),
            PatientsWrite,
            true,
        )
        .unwrap_err();
        assert_eq!(denial.status(), 403);
        assert_eq!(
            denial.www_authenticate(),
            Some(
                r#"Bearer realm="patient-records", error="insufficient_scope", scope="patients.write""#
            )
        );
    }

    #[test]
    fn jwt_policy_without_validator_fails_closed() {
        let (f, _) = failure(run(
            JwtOnly,
            None,
            Some(&token("patients.read")),
            PatientsRead,
            false,
        ));
        assert_eq!(f, AuthFailure::JwtNotConfigured);
    }

    #[test]
    fn either() {
        assert_eq!(
            run(Either, Some("w-primary"), None, PatientsRead, true)
                .unwrap()
                .audit_name(),
            "writer"
        );
        assert_eq!(
            run(
                Either,
                None,
                Some(&token("patients.read")),
                PatientsRead,
                true
            )
            .unwrap()
            .audit_name(),
            "token:app-7"
        );
        let (f, challenge) = failure(run(Either, None, None, PatientsRead, true));
        assert_eq!(f, AuthFailure::MissingCredentials);
        assert_eq!(
            challenge,
            r#"Bearer realm="patient-records", SubscriptionKey realm="patient-records""#
        );
        // Every presented credential must be valid.
        let (f, _) = failure(run(
            Either,
            Some("wrong"),
            Some(&token("patients.read")),
            PatientsRead,
            true,
        ));
        assert_eq!(f, AuthFailure::UnknownSubscriptionKey);
        let (f, challenge) = failure(run(
            Either,
            Some("w-primary"),
            Some("garbage"),
            PatientsRead,
            true,
        ));
        assert!(matches!(f, AuthFailure::InvalidToken(_)));
        assert!(challenge.starts_with(
            r#"Bearer realm="patient-records", error="invalid_token", SubscriptionKey"#
        ));
    }

    #[test]
    fn both_requires_both_and_intersects_scopes() {
        let t = token("patients.read audit.read");
        let actor = run(Both, Some("w-primary"), Some(&t), PatientsRead, true).unwrap();
        assert_eq!(actor.audit_name(), "writer/token:app-7");
        assert_eq!(actor.limit_owner(), "subscription:writer");
        assert_eq!(actor.scopes(), ScopeSet::EMPTY.with(PatientsRead));
        // The key grants write, the token does not: 403.
        assert_eq!(
            run(Both, Some("w-primary"), Some(&t), PatientsWrite, true)
                .unwrap_err()
                .status(),
            403
        );
        // The token grants audit.read, the key does not: 403.
        assert_eq!(
            run(Both, Some("w-primary"), Some(&t), AuditRead, true)
                .unwrap_err()
                .status(),
            403
        );
        let (f, _) = failure(run(Both, Some("w-primary"), None, PatientsRead, true));
        assert_eq!(f, AuthFailure::MissingBearerToken);
        let (f, _) = failure(run(Both, None, Some(&t), PatientsRead, true));
        assert_eq!(f, AuthFailure::MissingSubscriptionKey);
        let (f, _) = failure(run(Both, None, None, PatientsRead, true));
        assert_eq!(f, AuthFailure::MissingCredentials);
        let (f, _) = failure(run(
            Both,
            Some("w-primary"),
            Some(&es256(&json!({}))),
            PatientsRead,
            true,
        ));
        assert_eq!(f, AuthFailure::InvalidToken(JwtError::MissingExpiry));
    }

    #[test]
    fn a_token_subject_cannot_pose_as_a_subscription() {
        let mut claims = crate::jwt::tests::claims();
        claims["sub"] = json!("writer");
        let actor = run(JwtOnly, None, Some(&rs256(&claims)), PatientsRead, true).unwrap();
        assert_ne!(actor.audit_name(), "writer");
        assert_ne!(actor.limit_owner(), "subscription:writer");
    }

    #[test]
    fn client_detail_does_not_say_which_credential_failed() {
        let wrong_key = run(Either, Some("wrong"), None, PatientsRead, true).unwrap_err();
        let bad_token = run(Either, None, Some("x.y.z"), PatientsRead, true).unwrap_err();
        assert_eq!(wrong_key.detail(), bad_token.detail());
        assert_eq!(wrong_key.status(), 401);
        let missing = run(Either, None, None, PatientsRead, true).unwrap_err();
        assert_eq!(missing.detail(), "Credentials are missing.");
    }

    #[test]
    fn policy_names_and_debug_redaction() {
        assert_eq!(
            CredentialPolicy::parse("subscription"),
            Some(SubscriptionOnly)
        );
        assert_eq!(CredentialPolicy::parse("jwt"), Some(JwtOnly));
        assert_eq!(CredentialPolicy::parse(" either "), Some(Either));
        assert_eq!(CredentialPolicy::parse("both"), Some(Both));
        assert_eq!(CredentialPolicy::parse("Both"), None);
        assert_eq!(CredentialPolicy::parse(""), None);
        let shown = format!(
            "{:?}",
            Credentials {
                subscription_key: Some("w-primary"),
                bearer: Some("tok")
            }
        );
        assert!(
            !shown.contains("w-primary") && !shown.contains("tok\""),
            "{shown}"
        );
    }
}
