//! The gateway's settings, read from Spin variables on every request, so a
//! rotated subscription key or a new JWKS takes effect without a restart.
//!
//! Few reads on purpose: under Spin each `variables::get` walks the provider
//! chain, which is a Key Vault GET on AKS for a secret. A request reads the
//! `gatewaypolicy` document, `subscriptions` when the policy accepts keys,
//! and the one key it needs (a backend's host key, or the health key):
//! at most three (docs/performance.md, "Variable reads").
//!
//! A setting that cannot be used makes the request fail closed (503). The
//! log line names the setting and the problem; the problem texts of
//! `gateway_policy` never contain a key, digest or token.

use component_kit::variable;
use gateway_policy::{GatewaySettings, Subscriptions};

use crate::error::GatewayError;

/// The variable holding every plain setting (gateway_policy::GatewaySettings).
const POLICY_VARIABLE: &str = "gatewaypolicy";

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

/// The `gatewaypolicy` document, validated.
pub fn settings() -> Result<GatewaySettings, GatewayError> {
    GatewaySettings::parse(&read(POLICY_VARIABLE)?).map_err(|e| unusable(POLICY_VARIABLE, e))
}

/// The subscriptions, read only when `settings` accepts keys at all.
pub fn subscriptions(settings: &GatewaySettings) -> Result<Subscriptions, GatewayError> {
    if !settings.credentials.uses_subscription() {
        return Ok(Subscriptions::default());
    }
    Subscriptions::from_json(&read("subscriptions")?).map_err(|e| unusable("subscriptions", e))
}

/// A key: a backend's host key or the health key.
pub fn key(name: &'static str) -> Result<String, GatewayError> {
    read(name)
}
