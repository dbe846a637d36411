//! OAuth 2.0 bearer tokens: JWT validation against a configured JWKS.
//!
//! Only RS256 (RSASSA-PKCS1-v1_5 with SHA-256) and ES256 (ECDSA P-256 with
//! SHA-256) are accepted; `alg: none`, every HMAC algorithm and anything else
//! are refused before any key is looked at. The key is chosen by the token's
//! `kid` among the configured keys only: `jku`, `x5u` and an embedded `jwk`
//! are never followed or trusted. The signature is checked before any claim
//! is read.
//!
//! Only public-key verification happens here. RUSTSEC-2023-0071 (the "Marvin"
//! timing attack on the `rsa` crate) concerns private-key operations
//! (decryption, signing), which the gateway never performs.
//!
//! Errors never include the token, nor any part of it.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use crate::scope::{Scope, ScopeSet};

/// Largest accepted token, in bytes (the whole compact serialization).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Largest accepted clock-skew allowance.
pub const MAX_LEEWAY_SECONDS: u32 = 300;
/// Smallest accepted RSA modulus.
pub const MIN_RSA_BITS: usize = 2048;
/// Longest accepted `sub`: the one actor rule, so that every subject
/// accepted here fits the audit register's actor.
pub const MAX_SUBJECT_LEN: usize = actor::MAX_SUBJECT_CHARS;

/// What the gateway needs to validate tokens.
#[derive(Clone)]
pub struct JwtConfig {
    /// The JWKS document (`{"keys":[...]}`) of the token issuer.
    pub jwks_json: String,
    /// Expected `iss`, compared exactly.
    pub issuer: String,
    /// Expected `aud` (the token's `aud` may be a string or an array).
    pub audience: String,
    /// Claim holding the scopes: a space-separated string (e.g. `scp`) or an
    /// array of strings (e.g. `roles`).
    pub scope_claim: String,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway_seconds: u32,
}

/// Why a [`JwtConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtConfigError {
    #[error("JWKS: not valid JSON (line {line}, column {column})")]
    JwksJson { line: usize, column: usize },
    #[error("JWKS: expected an object with a `keys` array")]
    JwksShape,
    #[error("JWKS key #{0}: missing or empty `kid`")]
    MissingKid(usize),
    #[error("JWKS key `{kid}`: {problem}")]
    BadKey { kid: String, problem: &'static str },
    #[error("JWKS: key id `{0}` is used by more than one signing key")]
    DuplicateKid(String),
    #[error("JWKS: no usable RS256 or ES256 signing key")]
    NoUsableKey,
    #[error("JWT issuer must not be empty")]
    EmptyIssuer,
    #[error("JWT audience must not be empty")]
    EmptyAudience,
    #[error("JWT scope claim name must not be empty")]
    EmptyScopeClaim,
    #[error("JWT leeway must be at most {MAX_LEEWAY_SECONDS} seconds")]
    LeewayTooLarge,
}

/// Why a token was refused. The Display text is safe to log; it never
/// contains the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLarge,
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    #[error("alg `none` is not accepted")]
    AlgNone,
    #[error("HMAC algorithms are not accepted")]
    HmacAlgorithm,
    #[error("unsupported signing algorithm (only RS256 and ES256)")]
    UnsupportedAlgorithm,
    #[error("unsupported token type (typ)")]
    UnsupportedType,
    #[error("token has critical header parameters (crit), none of which are supported")]
    CriticalHeader,
    #[error("token header has no kid")]
    MissingKid,
    #[error("token kid is not a configured key")]
    UnknownKid,
    #[error("token alg does not match the type of the key its kid names")]
    KeyTypeMismatch,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has no exp")]
    MissingExpiry,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet (nbf)")]
    NotYetValid,
    #[error("token was issued in the future (iat)")]
    IssuedInFuture,
    #[error("token issuer is not the expected one")]
    WrongIssuer,
    #[error("token audience is not the expected one")]
    WrongAudience,
    #[error("token has no sub")]
    MissingSubject,
    #[error("token sub is too long or has characters other than printable ASCII")]
    InvalidSubject,
}

/// Who a valid token names, and what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `sub`: printable ASCII without spaces, at most 256 characters.
    pub subject: String,
    /// The token's scopes that this API knows; others are ignored.
    pub scopes: ScopeSet,
}

#[derive(Clone)]
enum VerifyKey {
    Rs256(rsa::pkcs1v15::VerifyingKey<sha2::Sha256>, usize),
    Es256(p256::ecdsa::VerifyingKey),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Alg {
    Rs256,
    Es256,
}

/// Validates bearer tokens against one issuer, audience and JWKS.
#[derive(Clone)]
pub struct JwtValidator {
    keys: Vec<(String, VerifyKey)>,
    issuer: String,
    audience: String,
    scope_claim: String,
    leeway: i64,
}

impl fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtValidator")
            .field(
                "kids",
                &self
                    .keys
                    .iter()
                    .map(|(kid, _)| kid.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("scope_claim", &self.scope_claim)
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl JwtValidator {
    /// Checks the configuration and loads the JWKS. Keys that cannot sign
    /// RS256 or ES256 tokens (`use` other than `sig`, other key types or
    /// curves, an `alg` other than RS256/ES256) are skipped, as an identity
    /// provider's JWKS may list them; a usable key that is malformed, too
    /// weak or carries private key material is an error.
    pub fn new(config: JwtConfig) -> Result<JwtValidator, JwtConfigError> {
        if config.issuer.trim().is_empty() {
            return Err(JwtConfigError::EmptyIssuer);
        }
        if config.audience.trim().is_empty() {
            return Err(JwtConfigError::EmptyAudience);
        }
        if config.scope_claim.trim().is_empty() {
            return Err(JwtConfigError::EmptyScopeClaim);
        }
        if config.leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(JwtConfigError::LeewayTooLarge);
        }
        let keys = parse_jwks(&config.jwks_json)?;
        Ok(JwtValidator {
            keys,
            issuer: config.issuer,
            audience: config.audience,
            scope_claim: config.scope_claim,
            leeway: i64::from(config.leeway_seconds),
        })
    }

    /// Validates a compact JWS token (without the `Bearer ` prefix) at time
    /// `now_unix`.
    pub fn validate(&self, token: &str, now_unix: i64) -> Result<Principal, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed("expected three dot-separated parts"));
        };

        let header = decode_object(
            header_b64,
            "header is not base64url",
            "header is not a JSON object",
        )?;
        let alg = match header.get("alg").and_then(Value::as_str) {
            None => return Err(JwtError::Malformed("header has no alg")),
            Some(alg) if alg.eq_ignore_ascii_case("none") => return Err(JwtError::AlgNone),
            Some(alg) if alg.to_ascii_uppercase().starts_with("HS") => {
                return Err(JwtError::HmacAlgorithm)
            }
            Some("RS256") => Alg::Rs256,
            Some("ES256") => Alg::Es256,
            Some(_) => return Err(JwtError::UnsupportedAlgorithm),
        };
        if header.contains_key("crit") {
            return Err(JwtError::CriticalHeader);
        }
        match header.get("typ") {
            None => {}
            Some(Value::String(typ))
                if ["JWT", "at+jwt", "application/at+jwt"]
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(typ)) => {}
            Some(_) => return Err(JwtError::UnsupportedType),
        }
        let kid = match header.get("kid").and_then(Value::as_str) {
            Some(kid) if !kid.is_empty() => kid,
            _ => return Err(JwtError::MissingKid),
        };
        let key = self
            .keys
            .iter()
            .find(|(k, _)| k == kid)
            .map(|(_, key)| key)
            .ok_or(JwtError::UnknownKid)?;

        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| JwtError::Malformed("signature is not base64url"))?;
        let signed = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
        verify_signature(key, alg, signed, &signature)?;

        let claims = decode_object(
            payload_b64,
            "payload is not base64url",
            "payload is not a JSON object",
        )?;
        self.check_claims(&claims, now_unix)
    }

    fn check_claims(&self, claims: &Map<String, Value>, now: i64) -> Result<Principal, JwtError> {
        let exp = match claims.get("exp") {
            None => return Err(JwtError::MissingExpiry),
            Some(v) => numeric_date(v).ok_or(JwtError::Malformed("exp is not a number"))?,
        };
        // RFC 7519: the token must not be accepted on or after exp.
        if now >= exp.saturating_add(self.leeway) {
            return Err(JwtError::Expired);
        }
        if let Some(v) = claims.get("nbf") {
            let nbf = numeric_date(v).ok_or(JwtError::Malformed("nbf is not a number"))?;
            if nbf > now.saturating_add(self.leeway) {
                return Err(JwtError::NotYetValid);
            }
        }
        if let Some(v) = claims.get("iat") {
            let iat = numeric_date(v).ok_or(JwtError::Malformed("iat is not a number"))?;
            if iat > now.saturating_add(self.leeway) {
                return Err(JwtError::IssuedInFuture);
            }
        }
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(JwtError::WrongIssuer);
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => *aud == self.audience,
            Some(Value::Array(auds)) => auds
                .iter()
                .any(|a| a.as_str() == Some(self.audience.as_str())),
            _ => false,
        };
        if !audience_ok {
            return Err(JwtError::WrongAudience);
        }
        let subject = match claims.get("sub").and_then(Value::as_str) {
            None | Some("") => return Err(JwtError::MissingSubject),
            Some(sub)
                if sub.len() > MAX_SUBJECT_LEN || !sub.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                return Err(JwtError::InvalidSubject)
            }
            Some(sub) => sub.to_owned(),
        };
        let scopes = match claims.get(&self.scope_claim) {
            None => ScopeSet::EMPTY,
            Some(Value::String(list)) => list
                .split_ascii_whitespace()
                .filter_map(Scope::parse)
                .collect(),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .filter_map(Scope::parse)
                .collect(),
            Some(_) => {
                return Err(JwtError::Malformed(
                    "scope claim is neither a string nor an array",
                ))
            }
        };
        Ok(Principal { subject, scopes })
    }
}

fn decode_object(
    part: &str,
    not_b64: &'static str,
    not_object: &'static str,
) -> Result<Map<String, Value>, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed(not_b64))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::Malformed(not_object)),
    }
}

fn verify_signature(
    key: &VerifyKey,
    alg: Alg,
    signed: &[u8],
    signature: &[u8],
) -> Result<(), JwtError> {
    use rsa::signature::Verifier as _;
    match (key, alg) {
        (VerifyKey::Rs256(key, modulus_len), Alg::Rs256) => {
            if signature.len() != *modulus_len {
                return Err(JwtError::BadSignature);
            }
            let signature = rsa::pkcs1v15::Signature::try_from(signature)
                .map_err(|_| JwtError::BadSignature)?;
            key.verify(signed, &signature)
                .map_err(|_| JwtError::BadSignature)
        }
        (VerifyKey::Es256(key), Alg::Es256) => {
            // JWS carries ECDSA signatures as raw r || s (64 bytes), not DER.
            let signature = p256::ecdsa::Signature::from_slice(signature)
                .map_err(|_| JwtError::BadSignature)?;
            key.verify(signed, &signature)
                .map_err(|_| JwtError::BadSignature)
        }
        _ => Err(JwtError::KeyTypeMismatch),
    }
}

/// A JSON NumericDate (seconds, possibly fractional) as whole seconds.
fn numeric_date(value: &Value) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    // Floats and integers beyond i64: `as` saturates, which is what we want.
    value
        .as_f64()
        .filter(|f| f.is_finite())
        .map(|f| f.floor() as i64)
}

const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

fn parse_jwks(json: &str) -> Result<Vec<(String, VerifyKey)>, JwtConfigError> {
    let value: Value = serde_json::from_str(json).map_err(|e| JwtConfigError::JwksJson {
        line: e.line(),
        column: e.column(),
    })?;
    let list = value
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(JwtConfigError::JwksShape)?;
    let mut keys: Vec<(String, VerifyKey)> = Vec::new();
    for (index, jwk) in list.iter().enumerate() {
        let jwk = jwk.as_object().ok_or(JwtConfigError::JwksShape)?;
        let kid = match jwk.get("kid").and_then(Value::as_str) {
            Some(kid) if !kid.is_empty() => kid.to_owned(),
            _ => return Err(JwtConfigError::MissingKid(index + 1)),
        };
        let bad = |problem| JwtConfigError::BadKey {
            kid: kid.clone(),
            problem,
        };
        if PRIVATE_MEMBERS
            .iter()
            .any(|member| jwk.contains_key(*member))
        {
            // A JWKS is public; private or symmetric key material in this
            // variable means a secret was put where it does not belong.
            return Err(bad("contains private or symmetric key material"));
        }
        if let Some(key) = parse_jwk(jwk).map_err(bad)? {
            if keys.iter().any(|(k, _)| *k == kid) {
                return Err(JwtConfigError::DuplicateKid(kid));
            }
            keys.push((kid, key));
        }
    }
    if keys.is_empty() {
        return Err(JwtConfigError::NoUsableKey);
    }
    Ok(keys)
}

/// `Ok(None)` for a key that cannot verify RS256/ES256 signatures.
fn parse_jwk(jwk: &Map<String, Value>) -> Result<Option<VerifyKey>, &'static str> {
    let text = |name: &'static str| jwk.get(name).and_then(Value::as_str);
    if text("use").is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    let b64 = |name: &'static str| -> Result<Vec<u8>, &'static str> {
        let value = text(name).ok_or("missing a key member (n, e, x or y)")?;
        URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| "a key member is not base64url")
    };
    match text("kty") {
        Some("RSA") => {
            if text("alg").is_some_and(|alg| alg != "RS256") {
                return Ok(None);
            }
            use rsa::traits::PublicKeyParts as _;
            let n = rsa::BigUint::from_bytes_be(&b64("n")?);
            let e = rsa::BigUint::from_bytes_be(&b64("e")?);
            let key = rsa::RsaPublicKey::new(n, e).map_err(|_| "not a valid RSA public key")?;
            if key.n().bits() < MIN_RSA_BITS {
                return Err("RSA modulus is shorter than 2048 bits");
            }
            let modulus_len = key.size();
            Ok(Some(VerifyKey::Rs256(
                rsa::pkcs1v15::VerifyingKey::new(key),
                modulus_len,
            )))
        }
        Some("EC") => {
            if text("crv") != Some("P-256") || text("alg").is_some_and(|alg| alg != "ES256") {
                return Ok(None);
            }
            let (x, y) = (b64("x")?, b64("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("P-256 coordinates must be 32 bytes each");
            }
            let point = p256::EncodedPoint::from_affine_coordinates(
                p256::FieldBytes::from_slice(&x),
                p256::FieldBytes::from_slice(&y),
                false,
            );
            let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                .map_err(|_| "not a point on P-256")?;
            Ok(Some(VerifyKey::Es256(key)))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
pub(crate) mod tests;
