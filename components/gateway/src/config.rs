//! The gateway's settings, read from Spin variables on every request, so a
//! rotated subscription key or a new JWKS takes effect without a restart.
//!
//! A setting that cannot be used makes the request fail closed (503). The
//! log line names the setting and the problem; the problem texts of
//! `gateway_policy` never contain a key, digest or token.

use std::time::Duration;

use component_kit::variable;
use gateway_policy::{
    BodyLimit, CredentialPolicy, IpAllowList, JwtConfig, JwtValidator, Limit, Limits, Subscriptions,
};

use crate::error::GatewayError;

/// Allowed clock skew on `exp`, `nbf` and `iat`.
const JWT_LEEWAY_SECONDS: u32 = 60;
/// Longest accepted backend timeout setting.
const MAX_BACKEND_TIMEOUT_SECONDS: u64 = 120;

/// Logs why a setting is unusable and yields the client-facing error.
fn unusable(setting: &str, problem: impl std::fmt::Display) -> GatewayError {
    eprintln!(
        "{}",
        serde_json::json!({
            "level": "error",
            "event": "configuration",
            "setting": setting,
            "problem": problem.to_string(),
        })
    );
    GatewayError::Misconfigured
}

fn read(name: &'static str) -> Result<String, GatewayError> {
    variable(name).map_err(|_| unusable(name, "variable not available"))
}

pub fn allow_list() -> Result<IpAllowList, GatewayError> {
    IpAllowList::parse(&read("clientallowlist")?).map_err(|e| unusable("clientallowlist", e))
}

pub fn body_limit() -> Result<BodyLimit, GatewayError> {
    BodyLimit::parse(&read("maxbodybytes")?).map_err(|e| unusable("maxbodybytes", e))
}

pub fn backend_timeout() -> Result<Duration, GatewayError> {
    let text = read("backendtimeoutseconds")?;
    match text.trim().parse::<u64>() {
        Ok(seconds) if (1..=MAX_BACKEND_TIMEOUT_SECONDS).contains(&seconds) => {
            Ok(Duration::from_secs(seconds))
        }
        _ => Err(unusable(
            "backendtimeoutseconds",
            format!("must be a whole number of seconds from 1 to {MAX_BACKEND_TIMEOUT_SECONDS}"),
        )),
    }
}

/// A key: a backend's host key or the health key.
pub fn key(name: &'static str) -> Result<String, GatewayError> {
    read(name)
}

/// Everything authentication and limits need.
pub struct AuthSettings {
    pub subscriptions: Subscriptions,
    pub jwt: Option<JwtValidator>,
    pub policy: CredentialPolicy,
    /// Limits of callers with a token and no subscription, per subject.
    pub token_limits: Limits,
}

pub fn auth() -> Result<AuthSettings, GatewayError> {
    let policy_text = read("credentialpolicy")?;
    let mut policy = CredentialPolicy::parse(&policy_text).ok_or_else(|| {
        unusable(
            "credentialpolicy",
            "must be one of subscription, jwt, either, both",
        )
    })?;
    let jwks = read("jwtjwks")?;
    let jwt = if jwks.trim().is_empty() {
        match policy {
            // Tokens are optional under `either`: without a JWKS only keys
            // are accepted, and an Authorization header is not looked at.
            CredentialPolicy::Either => policy = CredentialPolicy::SubscriptionOnly,
            CredentialPolicy::SubscriptionOnly => {}
            CredentialPolicy::JwtOnly | CredentialPolicy::Both => {
                return Err(unusable("jwtjwks", "required by credentialpolicy"))
            }
        }
        None
    } else if policy.uses_jwt() {
        let config = JwtConfig {
            jwks_json: jwks,
            issuer: read("jwtissuer")?,
            audience: read("jwtaudience")?,
            scope_claim: read("jwtscopeclaim")?,
            leeway_seconds: JWT_LEEWAY_SECONDS,
        };
        Some(JwtValidator::new(config).map_err(|e| unusable("jwt settings", e))?)
    } else {
        None
    };
    let subscriptions = Subscriptions::from_json(&read("subscriptions")?)
        .map_err(|e| unusable("subscriptions", e))?;
    let limit = |name: &'static str| -> Result<Limit, GatewayError> {
        Limit::parse(&read(name)?)
            .ok_or_else(|| unusable(name, "must be calls/periodSeconds, both at least 1"))
    };
    let token_limits = Limits {
        rate: limit("tokenratelimit")?,
        quota: limit("tokenquota")?,
    };
    Ok(AuthSettings {
        subscriptions,
        jwt,
        policy,
        token_limits,
    })
}
