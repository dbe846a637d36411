//! The gateway's settings, read from Spin variables on every request, so a
//! rotated subscription key or a new JWKS takes effect without a restart.
//!
//! Few reads on purpose: under Spin each `variables::get` walks the provider
//! chain, which is a Key Vault GET on AKS for a secret. A request reads the
//! `gatewaypolicy` document, `subscriptions` when the policy accepts keys,
//! and `patientapi` (where patient-api is and its host key, one connection
//! string): three; `/health/ready` reads the health key instead of
//! `subscriptions` (docs/performance.md, "Variable reads").
//!
//! A setting that cannot be used makes the request fail closed (503). The
//! log line names the setting and the problem; the problem texts of
//! `gateway_policy` never contain a key, digest or token.

use component_kit::{variable, ServiceConnection};
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

/// The variable holding where patient-api is and the host key to present
/// (`Endpoint=…;Key=…`, composed in spin.toml from `patientapiurl` and
/// `patientapikey`).
const BACKEND_VARIABLE: &str = "patientapi";

/// The one backend: patient-api.
pub fn backend() -> Result<ServiceConnection, GatewayError> {
    ServiceConnection::parse(&read(BACKEND_VARIABLE)?).map_err(|e| unusable(BACKEND_VARIABLE, e))
}

/// A key held alone in a variable: the health key.
pub fn key(name: &'static str) -> Result<String, GatewayError> {
    read(name)
}
