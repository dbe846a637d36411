//! The gateway's plain settings: one JSON document, the `gatewaypolicy`
//! variable, read once per request.
//!
//! One variable instead of eleven because under Spin every `variables::get`
//! walks the provider chain (a Key Vault GET on AKS when Key Vault answers
//! it), and every application variable is resolved again each time a
//! component instance first makes an outbound request. The document holds
//! no secret: subscriptions and keys stay in their own variables.
//!
//! Every member is optional; an absent one takes the default written in
//! [`GatewaySettings::default`] (and in components/gateway/README.md). An
//! unknown member, a member given twice or one of the wrong type is an
//! error naming the member, so a typo never silently falls back to a
//! default.

use std::time::Duration;

use serde_json::Value;
use strict_json::{Fields, JsonError, JsonType, Violation};

use crate::{
    BodyLimit, CredentialPolicy, IpAllowList, JwtConfig, JwtValidator, Limit, Limits,
    TrustedProxies,
};

/// Allowed clock skew on a token's `exp`, `nbf` and `iat`.
pub const JWT_LEEWAY_SECONDS: u32 = 60;
/// Longest backend timeout that may be configured.
pub const MAX_BACKEND_TIMEOUT_SECONDS: u64 = 120;
/// Backend timeout when none is configured.
pub const DEFAULT_BACKEND_TIMEOUT_SECONDS: u64 = 15;
/// Time a client has to send its whole request body, when none is
/// configured: a 64 KiB body takes well under a second on any real link.
pub const DEFAULT_BODY_TIMEOUT_SECONDS: u64 = 10;
/// Longest body deadline that may be configured.
pub const MAX_BODY_TIMEOUT_SECONDS: u64 = 120;

/// A `gatewaypolicy` document that cannot be used: which member, and why.
/// Never carries a member's value beyond the short entries an allow-list
/// error names (configuration, not secrets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("gatewaypolicy `{member}`: {problem}")]
pub struct SettingsError {
    pub member: String,
    pub problem: String,
}

impl SettingsError {
    fn new(member: impl Into<String>, problem: impl ToString) -> Self {
        Self {
            member: member.into(),
            problem: problem.to_string(),
        }
    }
}

impl From<JsonError> for SettingsError {
    fn from(error: JsonError) -> Self {
        let problem = match error.violation {
            Violation::MalformedJson { line, column } => {
                format!("not valid JSON (line {line}, column {column})")
            }
            Violation::DuplicateField => "given more than once".into(),
            Violation::UnknownField => "unknown member (a typo?)".into(),
            Violation::Required => "required".into(),
            Violation::WrongType(expected) => format!("must be {}", expected.with_article()),
        };
        let member = if error.field == strict_json::BODY {
            "(document)".to_string()
        } else {
            error.field
        };
        SettingsError { member, problem }
    }
}

/// Everything the gateway decides with, besides subscriptions and keys.
pub struct GatewaySettings {
    /// Which credentials a caller must present. `either` without a `jwt`
    /// section is read as `subscription`: tokens are optional there, and
    /// without a JWKS an `Authorization` header is not looked at.
    pub credentials: CredentialPolicy,
    /// Present whenever `credentials` uses tokens.
    pub jwt: Option<JwtValidator>,
    pub client_allow_list: IpAllowList,
    pub trusted_proxies: TrustedProxies,
    pub body_limit: BodyLimit,
    /// Limits of callers with a token and no subscription, per subject.
    pub token_limits: Limits,
    pub backend_timeout: Duration,
    /// Time a client has to send its whole body once the gateway starts
    /// reading it (408 after).
    pub body_timeout: Duration,
}

impl Default for GatewaySettings {
    /// What `{}` means: keys or tokens (tokens off until a `jwt` section
    /// names an issuer), every client address, no trusted proxy, 64 KiB
    /// bodies, 100 calls a minute and 10,000 a day per token subject,
    /// 15 s per backend call, 10 s to send a request body.
    fn default() -> Self {
        GatewaySettings {
            credentials: CredentialPolicy::SubscriptionOnly,
            jwt: None,
            client_allow_list: IpAllowList::default(),
            trusted_proxies: TrustedProxies::default(),
            body_limit: BodyLimit::default(),
            token_limits: default_token_limits(),
            backend_timeout: Duration::from_secs(DEFAULT_BACKEND_TIMEOUT_SECONDS),
            body_timeout: Duration::from_secs(DEFAULT_BODY_TIMEOUT_SECONDS),
        }
    }
}

fn default_token_limits() -> Limits {
    Limits {
        rate: Limit::new(100, 60).expect("non-zero"),
        quota: Limit::new(10_000, 86_400).expect("non-zero"),
    }
}

const MEMBERS: &[&str] = &[
    "credentials",
    "jwt",
    "clientAllowList",
    "trustedProxies",
    "maxBodyBytes",
    "tokenLimits",
    "backendTimeoutSeconds",
    "bodyTimeoutSeconds",
];
const JWT_MEMBERS: &[&str] = &["jwks", "issuer", "audience", "scopeClaim"];
const LIMIT_MEMBERS: &[&str] = &["rate", "quota"];

impl GatewaySettings {
    /// Reads a `gatewaypolicy` document.
    pub fn parse(text: &str) -> Result<GatewaySettings, SettingsError> {
        let mut doc = Fields::new(strict_json::parse_body(text.as_bytes())?, "")?;
        doc.reject_unknown(MEMBERS)?;
        let defaults = GatewaySettings::default();

        let credentials = match doc.optional_str("credentials")? {
            None => CredentialPolicy::Either,
            Some(text) => CredentialPolicy::parse(&text).ok_or_else(|| {
                SettingsError::new("credentials", "must be subscription, jwt, either or both")
            })?,
        };
        let jwt = match doc.take("jwt") {
            None => None,
            Some(section) => Some(jwt_validator(section)?),
        };
        let (credentials, jwt) = match (credentials, jwt) {
            (CredentialPolicy::Either, None) => (CredentialPolicy::SubscriptionOnly, None),
            (CredentialPolicy::JwtOnly | CredentialPolicy::Both, None) => {
                return Err(SettingsError::new(
                    "jwt",
                    "required when credentials is jwt or both",
                ))
            }
            (CredentialPolicy::SubscriptionOnly, Some(_)) => {
                (CredentialPolicy::SubscriptionOnly, None)
            }
            (policy, jwt) => (policy, jwt),
        };

        let client_allow_list = match doc.take("clientAllowList") {
            None => defaults.client_allow_list,
            Some(value) => IpAllowList::from_entries(&string_list("clientAllowList", value)?)
                .map_err(|e| SettingsError::new("clientAllowList", e))?,
        };
        let trusted_proxies = match doc.take("trustedProxies") {
            None => defaults.trusted_proxies,
            Some(value) => TrustedProxies::from_entries(&string_list("trustedProxies", value)?)
                .map_err(|e| SettingsError::new("trustedProxies", e))?,
        };
        let body_limit = match doc.take("maxBodyBytes") {
            None => defaults.body_limit,
            Some(value) => {
                let bytes = whole_number("maxBodyBytes", &value)?;
                BodyLimit::from_bytes(bytes).map_err(|e| SettingsError::new("maxBodyBytes", e))?
            }
        };
        let token_limits = match doc.take("tokenLimits") {
            None => defaults.token_limits,
            Some(value) => limits(value, defaults.token_limits)?,
        };
        let backend_timeout = match doc.take("backendTimeoutSeconds") {
            None => defaults.backend_timeout,
            Some(value) => seconds("backendTimeoutSeconds", &value, MAX_BACKEND_TIMEOUT_SECONDS)?,
        };
        let body_timeout = match doc.take("bodyTimeoutSeconds") {
            None => defaults.body_timeout,
            Some(value) => seconds("bodyTimeoutSeconds", &value, MAX_BODY_TIMEOUT_SECONDS)?,
        };
        Ok(GatewaySettings {
            credentials,
            jwt,
            client_allow_list,
            trusted_proxies,
            body_limit,
            token_limits,
            backend_timeout,
            body_timeout,
        })
    }
}

fn jwt_validator(section: Value) -> Result<JwtValidator, SettingsError> {
    let mut jwt = Fields::new(section, "jwt")?;
    jwt.reject_unknown(JWT_MEMBERS)?;
    let jwks = jwt.required("jwks")?;
    if !jwks.is_object() {
        return Err(JsonError::new("jwt.jwks", Violation::WrongType(JsonType::Object)).into());
    }
    let config = JwtConfig {
        jwks_json: jwks.to_string(),
        issuer: jwt.required_str("issuer")?,
        audience: jwt.required_str("audience")?,
        scope_claim: jwt
            .optional_str("scopeClaim")?
            .unwrap_or_else(|| "scp".into()),
        leeway_seconds: JWT_LEEWAY_SECONDS,
    };
    JwtValidator::new(config).map_err(|e| SettingsError::new("jwt", e))
}

fn string_list(member: &str, value: Value) -> Result<Vec<String>, SettingsError> {
    let not_list = || SettingsError::new(member, "must be an array of strings");
    let Value::Array(items) = value else {
        return Err(not_list());
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => Ok(s),
            _ => Err(not_list()),
        })
        .collect()
}

fn whole_number(member: &str, value: &Value) -> Result<u64, SettingsError> {
    value
        .as_u64()
        .ok_or_else(|| SettingsError::new(member, "must be a whole number"))
}

/// A whole number of seconds from 1 to `max`.
fn seconds(member: &str, value: &Value, max: u64) -> Result<Duration, SettingsError> {
    match whole_number(member, value)? {
        n @ 1.. if n <= max => Ok(Duration::from_secs(n)),
        _ => Err(SettingsError::new(
            member,
            format!("must be from 1 to {max}"),
        )),
    }
}

fn limits(value: Value, defaults: Limits) -> Result<Limits, SettingsError> {
    let mut fields = Fields::new(value, "tokenLimits")?;
    fields.reject_unknown(LIMIT_MEMBERS)?;
    let mut one = |name: &str, default: Limit| -> Result<Limit, SettingsError> {
        let path = fields.path_of(name);
        match fields.optional_str(name)? {
            None => Ok(default),
            Some(text) => Limit::parse(&text).ok_or_else(|| {
                SettingsError::new(path, "must be calls/periodSeconds, both at least 1")
            }),
        }
    };
    Ok(Limits {
        rate: one("rate", defaults.rate)?,
        quota: one("quota", defaults.quota)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(doc: Value) -> SettingsError {
        match GatewaySettings::parse(&doc.to_string()) {
            Ok(_) => panic!("accepted {doc}"),
            Err(e) => e,
        }
    }

    fn jwks() -> Value {
        // The P-256 public key of RFC 7515, appendix A.3.
        json!({"keys": [{"kty": "EC", "kid": "ec-1", "use": "sig", "alg": "ES256", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]})
    }

    #[test]
    fn the_empty_document_is_the_documented_default() {
        let s = GatewaySettings::parse("{}").unwrap();
        assert_eq!(s.credentials, CredentialPolicy::SubscriptionOnly);
        assert!(s.jwt.is_none());
        assert!(s.client_allow_list.allows_all());
        assert_eq!(s.trusted_proxies, TrustedProxies::default());
        assert_eq!(s.body_limit.bytes(), 65_536);
        assert_eq!(s.token_limits, default_token_limits());
        assert_eq!(s.backend_timeout, Duration::from_secs(15));
        assert_eq!(s.body_timeout, Duration::from_secs(10));
    }

    #[test]
    fn every_member_is_read() {
        let s = GatewaySettings::parse(
            &json!({
                "credentials": "both",
                "jwt": {"jwks": jwks(), "issuer": "https://issuer.example",
                        "audience": "api://records", "scopeClaim": "roles"},
                "clientAllowList": ["10.0.0.0/8", "::1"],
                "trustedProxies": ["10.240.0.0/16"],
                "maxBodyBytes": 1024,
                "tokenLimits": {"rate": "5/60"},
                "backendTimeoutSeconds": 3,
                "bodyTimeoutSeconds": 2
            })
            .to_string(),
        )
        .unwrap();
        assert_eq!(s.credentials, CredentialPolicy::Both);
        assert!(s.jwt.is_some());
        assert!(!s.client_allow_list.allows_all());
        assert_eq!(s.body_limit.bytes(), 1024);
        assert_eq!(s.token_limits.rate, Limit::new(5, 60).unwrap());
        assert_eq!(s.token_limits.quota, default_token_limits().quota);
        assert_eq!(s.backend_timeout, Duration::from_secs(3));
        assert_eq!(s.body_timeout, Duration::from_secs(2));
        assert_eq!(
            s.trusted_proxies
                .client_address(Some("10.240.1.1:80"), &["198.51.100.4"]),
            Ok("198.51.100.4".parse().unwrap())
        );
    }

    #[test]
    fn tokens_need_a_jwt_section_and_are_dropped_when_unused() {
        assert_eq!(err(json!({"credentials": "jwt"})).member, "jwt");
        assert_eq!(err(json!({"credentials": "both"})).member, "jwt");
        let jwt = json!({"jwks": jwks(), "issuer": "i", "audience": "a"});
        let either = GatewaySettings::parse(&json!({"jwt": jwt}).to_string()).unwrap();
        assert_eq!(either.credentials, CredentialPolicy::Either);
        assert!(either.jwt.is_some());
        let keys_only =
            GatewaySettings::parse(&json!({"credentials": "subscription", "jwt": jwt}).to_string())
                .unwrap();
        assert!(keys_only.jwt.is_none());
    }

    #[test]
    fn mistakes_name_the_member() {
        for (doc, member) in [
            (json!([]), "(document)"),
            (json!({"credential": "jwt"}), "credential"),
            (json!({"credentials": "keys"}), "credentials"),
            (json!({"credentials": 1}), "credentials"),
            (
                json!({"jwt": {"jwks": "{}", "issuer": "i", "audience": "a"}}),
                "jwt.jwks",
            ),
            (
                json!({"jwt": {"jwks": jwks(), "audience": "a"}}),
                "jwt.issuer",
            ),
            (
                json!({"jwt": {"jwks": jwks(), "issuer": "i", "audience": "a", "x": 1}}),
                "jwt.x",
            ),
            (
                json!({"jwt": {"jwks": {"keys": []}, "issuer": "i", "audience": "a"}}),
                "jwt",
            ),
            (json!({"clientAllowList": "10.0.0.0/8"}), "clientAllowList"),
            (
                json!({"clientAllowList": ["10.0.0.1/8"]}),
                "clientAllowList",
            ),
            (json!({"trustedProxies": [7]}), "trustedProxies"),
            (json!({"trustedProxies": ["proxy.local"]}), "trustedProxies"),
            (json!({"maxBodyBytes": "64KiB"}), "maxBodyBytes"),
            (json!({"maxBodyBytes": 0}), "maxBodyBytes"),
            (json!({"maxBodyBytes": -1}), "maxBodyBytes"),
            (json!({"tokenLimits": {"rate": "0/60"}}), "tokenLimits.rate"),
            (
                json!({"tokenLimits": {"burst": "1/1"}}),
                "tokenLimits.burst",
            ),
            (json!({"backendTimeoutSeconds": 0}), "backendTimeoutSeconds"),
            (
                json!({"backendTimeoutSeconds": 121}),
                "backendTimeoutSeconds",
            ),
            (
                json!({"backendTimeoutSeconds": 1.5}),
                "backendTimeoutSeconds",
            ),
        ] {
            let e = err(doc.clone());
            assert_eq!(e.member, member, "{doc}: {e}");
            assert!(e.to_string().starts_with("gatewaypolicy `"), "{e}");
        }
        let dup = GatewaySettings::parse(r#"{"maxBodyBytes": 1, "maxBodyBytes": 2}"#)
            .err()
            .unwrap();
        assert_eq!(dup.member, "maxBodyBytes");
        let broken = GatewaySettings::parse("{").err().unwrap();
        assert!(broken.problem.starts_with("not valid JSON"), "{broken}");
    }
}
