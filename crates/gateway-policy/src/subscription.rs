//! Subscriptions: named clients with two keys, scopes and limits, read from
//! one secret Spin variable that holds SHA-256 digests of the keys, never the
//! keys themselves.
//!
//! ```json
//! [{"name":"load-test",
//!   "primaryKeySha256":"<64 hex>","secondaryKeySha256":"<64 hex>",
//!   "scopes":["patients.read","patients.write","audit.read"],
//!   "rateLimit":{"calls":100,"periodSeconds":60},
//!   "quota":{"calls":10000,"periodSeconds":86400}}]
//! ```

use std::collections::HashSet;
use std::fmt;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::limits::{Limit, Limits};
use crate::scope::{Scope, ScopeSet};

/// Longest accepted subscription name: the one actor rule, so that every
/// name accepted here fits the audit register's actor.
pub const MAX_NAME_LEN: usize = actor::MAX_SUBSCRIPTION_NAME_CHARS;

/// Why the subscriptions variable was refused. Names the subscription (by
/// name, or by position when the name itself is unusable), never a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("subscriptions: not valid JSON (line {line}, column {column})")]
    Json { line: usize, column: usize },
    #[error("subscriptions: expected a JSON array of subscriptions")]
    NotAList,
    #[error("subscription {which}: {problem}")]
    Subscription {
        which: String,
        problem: SubscriptionProblem,
    },
}

/// What is wrong with one subscription.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionProblem {
    #[error("expected a JSON object")]
    NotAnObject,
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    #[error("unknown field `{0}`")]
    UnknownField(String),
    #[error("field `{0}` has the wrong type")]
    WrongType(&'static str),
    #[error("name must be 1-{MAX_NAME_LEN} characters of A-Z, a-z, 0-9, '.', '_' or '-'")]
    BadName,
    #[error("the name is used by an earlier subscription")]
    DuplicateName,
    #[error("`{0}` must be 64 hexadecimal digits (a SHA-256 digest)")]
    BadDigest(&'static str),
    #[error("`{0}` is the digest of the empty string")]
    EmptyKeyDigest(&'static str),
    #[error("primary and secondary key digests are the same")]
    SameKeys,
    #[error("`{0}` is also a key digest of an earlier subscription")]
    DuplicateDigest(&'static str),
    #[error("unknown scope `{0}`")]
    UnknownScope(String),
    #[error("scope `{0}` is listed twice")]
    DuplicateScope(&'static str),
    #[error("grants no scope")]
    NoScopes,
    #[error("`{0}` must have calls and periodSeconds between 1 and 4294967295")]
    BadLimit(&'static str),
}

/// A subscription's name: 1–64 characters of `[A-Za-z0-9._-]`, so it is safe
/// in headers, log lines and key-value store keys as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscriptionName(String);

impl SubscriptionName {
    pub fn parse(name: &str) -> Option<SubscriptionName> {
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        ok.then(|| SubscriptionName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubscriptionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One configured subscription. Its key digests are private and never shown.
#[derive(Clone)]
pub struct Subscription {
    name: SubscriptionName,
    scopes: ScopeSet,
    limits: Limits,
    digests: [[u8; 32]; 2],
}

impl Subscription {
    pub fn name(&self) -> &SubscriptionName {
        &self.name
    }
    pub fn scopes(&self) -> ScopeSet {
        self.scopes
    }
    pub fn rate_limit(&self) -> Limit {
        self.limits.rate
    }
    pub fn quota(&self) -> Limit {
        self.limits.quota
    }
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("name", &self.name.0)
            .field("scopes", &self.scopes)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// All configured subscriptions.
#[derive(Clone, Debug, Default)]
pub struct Subscriptions {
    list: Vec<Subscription>,
}

const FIELDS: [&str; 6] = [
    "name",
    "primaryKeySha256",
    "secondaryKeySha256",
    "scopes",
    "rateLimit",
    "quota",
];
const LIMIT_FIELDS: [&str; 2] = ["calls", "periodSeconds"];

impl Subscriptions {
    /// Parses and strictly validates the subscriptions variable. An empty
    /// array is valid (no subscription key is then accepted, which suits a
    /// JWT-only gateway).
    pub fn from_json(json: &str) -> Result<Subscriptions, ConfigError> {
        let value: Value = serde_json::from_str(json).map_err(|e| ConfigError::Json {
            line: e.line(),
            column: e.column(),
        })?;
        let Value::Array(items) = value else {
            return Err(ConfigError::NotAList);
        };
        let mut list: Vec<Subscription> = Vec::with_capacity(items.len());
        let mut names = HashSet::new();
        let mut digests = HashSet::new();
        for (index, item) in items.iter().enumerate() {
            let which = item
                .get("name")
                .and_then(Value::as_str)
                .and_then(SubscriptionName::parse)
                .map_or_else(|| format!("#{}", index + 1), |name| format!("`{name}`"));
            let fail = |problem| ConfigError::Subscription {
                which: which.clone(),
                problem,
            };
            let subscription = parse_one(item).map_err(fail)?;
            if !names.insert(subscription.name.clone()) {
                return Err(fail(SubscriptionProblem::DuplicateName));
            }
            for (digest, field) in subscription
                .digests
                .iter()
                .zip(["primaryKeySha256", "secondaryKeySha256"])
            {
                if !digests.insert(*digest) {
                    return Err(fail(SubscriptionProblem::DuplicateDigest(field)));
                }
            }
            list.push(subscription);
        }
        Ok(Subscriptions { list })
    }

    /// The subscription whose primary or secondary key is `presented_key`.
    ///
    /// The presented key is hashed and compared with every configured digest
    /// in constant time, with no early exit, so timing reveals neither which
    /// subscription or key slot matched nor how much of a key was right.
    pub fn authenticate(&self, presented_key: &str) -> Option<&Subscription> {
        if presented_key.is_empty() {
            return None;
        }
        let presented: [u8; 32] = Sha256::digest(presented_key.as_bytes()).into();
        const NONE: u32 = u32::MAX;
        let mut found = NONE;
        for (index, subscription) in self.list.iter().enumerate() {
            // Lists are tiny; an index past u32 cannot be configured in practice.
            let index = u32::try_from(index).unwrap_or(NONE);
            for digest in &subscription.digests {
                found = u32::conditional_select(&found, &index, digest.ct_eq(&presented));
            }
        }
        self.list.get(usize::try_from(found).ok()?)
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The subscriptions, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Subscription> {
        self.list.iter()
    }
}

fn parse_one(item: &Value) -> Result<Subscription, SubscriptionProblem> {
    let obj = item.as_object().ok_or(SubscriptionProblem::NotAnObject)?;
    reject_unknown(obj, &FIELDS)?;
    let name = str_field(obj, "name")?;
    let name = SubscriptionName::parse(name).ok_or(SubscriptionProblem::BadName)?;
    let primary = digest_field(obj, "primaryKeySha256")?;
    let secondary = digest_field(obj, "secondaryKeySha256")?;
    if primary == secondary {
        return Err(SubscriptionProblem::SameKeys);
    }
    let scopes = scopes_field(obj)?;
    let rate = limit_field(obj, "rateLimit")?;
    let quota = limit_field(obj, "quota")?;
    Ok(Subscription {
        name,
        scopes,
        limits: Limits { rate, quota },
        digests: [primary, secondary],
    })
}

fn reject_unknown(obj: &Map<String, Value>, known: &[&str]) -> Result<(), SubscriptionProblem> {
    match obj.keys().find(|key| !known.contains(&key.as_str())) {
        // A field name is configuration structure, not a secret; shortened so
        // a pasted value in the wrong place cannot fill the message.
        Some(key) => Err(SubscriptionProblem::UnknownField(
            key.chars().take(40).collect(),
        )),
        None => Ok(()),
    }
}

fn field<'a>(
    obj: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a Value, SubscriptionProblem> {
    obj.get(name).ok_or(SubscriptionProblem::MissingField(name))
}

fn str_field<'a>(
    obj: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, SubscriptionProblem> {
    field(obj, name)?
        .as_str()
        .ok_or(SubscriptionProblem::WrongType(name))
}

fn digest_field(
    obj: &Map<String, Value>,
    name: &'static str,
) -> Result<[u8; 32], SubscriptionProblem> {
    let text = str_field(obj, name)?;
    let mut digest = [0u8; 32];
    if text.len() != 64 || hex::decode_to_slice(text, &mut digest).is_err() {
        return Err(SubscriptionProblem::BadDigest(name));
    }
    // A digest of "" would match a client that sends an empty header.
    if digest == <[u8; 32]>::from(Sha256::digest(b"")) {
        return Err(SubscriptionProblem::EmptyKeyDigest(name));
    }
    Ok(digest)
}

fn scopes_field(obj: &Map<String, Value>) -> Result<ScopeSet, SubscriptionProblem> {
    let list = field(obj, "scopes")?
        .as_array()
        .ok_or(SubscriptionProblem::WrongType("scopes"))?;
    let mut scopes = ScopeSet::EMPTY;
    for entry in list {
        let text = entry
            .as_str()
            .ok_or(SubscriptionProblem::WrongType("scopes"))?;
        let scope = Scope::parse(text)
            .ok_or_else(|| SubscriptionProblem::UnknownScope(text.chars().take(40).collect()))?;
        if scopes.contains(scope) {
            return Err(SubscriptionProblem::DuplicateScope(scope.as_str()));
        }
        scopes.insert(scope);
    }
    if scopes.is_empty() {
        return Err(SubscriptionProblem::NoScopes);
    }
    Ok(scopes)
}

fn limit_field(obj: &Map<String, Value>, name: &'static str) -> Result<Limit, SubscriptionProblem> {
    let limit = field(obj, name)?
        .as_object()
        .ok_or(SubscriptionProblem::WrongType(name))?;
    reject_unknown(limit, &LIMIT_FIELDS)?;
    let number = |key| -> Result<u32, SubscriptionProblem> {
        let value = limit.get(key).ok_or(SubscriptionProblem::BadLimit(name))?;
        let n = value.as_u64().ok_or(SubscriptionProblem::BadLimit(name))?;
        u32::try_from(n).map_err(|_| SubscriptionProblem::BadLimit(name))
    };
    Limit::new(number("calls")?, number("periodSeconds")?)
        .ok_or(SubscriptionProblem::BadLimit(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha_hex(key: &str) -> String {
        hex::encode(Sha256::digest(key.as_bytes()))
    }

    fn entry(name: &str, primary: &str, secondary: &str, scopes: &[&str]) -> Value {
        serde_json::json!({
            "name": name,
            "primaryKeySha256": sha_hex(primary),
            "secondaryKeySha256": sha_hex(secondary),
            "scopes": scopes,
            "rateLimit": {"calls": 100, "periodSeconds": 60},
            "quota": {"calls": 10000, "periodSeconds": 86400},
        })
    }

    fn config() -> Subscriptions {
        let json = Value::Array(vec![
            entry(
                "load-test",
                "lt-primary",
                "lt-secondary",
                &["patients.read", "patients.write", "audit.read"],
            ),
            entry("reader", "rd-primary", "rd-secondary", &["patients.read"]),
        ]);
        Subscriptions::from_json(&json.to_string()).unwrap()
    }

    fn error_for(mutate: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut value = entry("broken", "b-1", "b-2", &["patients.read"]);
        mutate(value.as_object_mut().unwrap());
        let json =
            Value::Array(vec![entry("fine", "f-1", "f-2", &["audit.read"]), value]).to_string();
        Subscriptions::from_json(&json).unwrap_err().to_string()
    }

    #[test]
    fn parses_the_documented_example() {
        let s = config();
        assert_eq!(s.len(), 2);
        let lt = s.iter().next().unwrap();
        assert_eq!(lt.name().as_str(), "load-test");
        assert!(lt.scopes().contains(Scope::AuditRead));
        assert_eq!(lt.rate_limit(), Limit::new(100, 60).unwrap());
        assert_eq!(lt.quota(), Limit::new(10_000, 86_400).unwrap());
    }

    #[test]
    fn primary_and_secondary_keys_authenticate_their_subscription() {
        let s = config();
        assert_eq!(
            s.authenticate("lt-primary").unwrap().name().as_str(),
            "load-test"
        );
        assert_eq!(
            s.authenticate("lt-secondary").unwrap().name().as_str(),
            "load-test"
        );
        assert_eq!(
            s.authenticate("rd-primary").unwrap().name().as_str(),
            "reader"
        );
        assert_eq!(
            s.authenticate("rd-secondary").unwrap().name().as_str(),
            "reader"
        );
    }

    #[test]
    fn wrong_and_missing_keys_authenticate_nothing() {
        let s = config();
        for key in [
            "",
            "lt-primar",
            "lt-primary ",
            "LT-PRIMARY",
            "wrong",
            &sha_hex("lt-primary"),
        ] {
            assert!(s.authenticate(key).is_none(), "{key:?}");
        }
        assert!(Subscriptions::from_json("[]")
            .unwrap()
            .authenticate("lt-primary")
            .is_none());
    }

    #[test]
    fn uppercase_hex_digests_are_accepted() {
        let mut value = entry("upper", "u-1", "u-2", &["patients.read"]);
        value["primaryKeySha256"] = Value::String(sha_hex("u-1").to_uppercase());
        let s = Subscriptions::from_json(&Value::Array(vec![value]).to_string()).unwrap();
        assert!(s.authenticate("u-1").is_some());
    }

    #[test]
    fn document_level_errors() {
        assert!(matches!(
            Subscriptions::from_json("[{"),
            Err(ConfigError::Json { .. })
        ));
        assert_eq!(
            Subscriptions::from_json("{}").unwrap_err(),
            ConfigError::NotAList
        );
        assert!(Subscriptions::from_json("").is_err());
    }

    #[test]
    fn each_invalid_subscription_is_named_in_the_error() {
        type Mutation = Box<dyn FnOnce(&mut Map<String, Value>)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (
                Box::new(|o| o["scopes"] = serde_json::json!(["patients.delete"])),
                "unknown scope `patients.delete`",
            ),
            (
                Box::new(|o| o["scopes"] = serde_json::json!([])),
                "grants no scope",
            ),
            (
                Box::new(|o| o["scopes"] = serde_json::json!(["audit.read", "audit.read"])),
                "listed twice",
            ),
            (
                Box::new(|o| o["scopes"] = serde_json::json!("patients.read")),
                "`scopes` has the wrong type",
            ),
            (
                Box::new(|o| o["primaryKeySha256"] = "abc".into()),
                "`primaryKeySha256` must be 64 hexadecimal",
            ),
            (
                Box::new(|o| o["secondaryKeySha256"] = "z".repeat(64).into()),
                "`secondaryKeySha256` must be 64",
            ),
            (
                Box::new(|o| o["primaryKeySha256"] = sha_hex("").into()),
                "digest of the empty string",
            ),
            (
                Box::new(|o| o["secondaryKeySha256"] = o["primaryKeySha256"].clone()),
                "are the same",
            ),
            (
                Box::new(|o| o["rateLimit"] = serde_json::json!({"calls": 0, "periodSeconds": 60})),
                "`rateLimit` must",
            ),
            (
                Box::new(|o| o["quota"] = serde_json::json!({"calls": 5, "periodSeconds": 0})),
                "`quota` must",
            ),
            (
                Box::new(|o| o["quota"] = serde_json::json!({"calls": -5, "periodSeconds": 1})),
                "`quota` must",
            ),
            (
                Box::new(|o| {
                    o["quota"] = serde_json::json!({"calls": 5_000_000_000u64, "periodSeconds": 1})
                }),
                "`quota`",
            ),
            (
                Box::new(|o| o["quota"] = serde_json::json!({"calls": 5})),
                "`quota` must",
            ),
            (
                Box::new(|o| {
                    o["quota"] = serde_json::json!({"calls": 5, "periodSeconds": 1, "x": 1})
                }),
                "unknown field `x`",
            ),
            (
                Box::new(|o| drop(o.remove("rateLimit"))),
                "missing field `rateLimit`",
            ),
            (
                Box::new(|o| drop(o.insert("primaryKey".into(), "secret".into()))),
                "unknown field `primaryKey`",
            ),
        ];
        for (mutate, expected) in cases {
            let message = error_for(mutate);
            assert!(message.starts_with("subscription `broken`: "), "{message}");
            assert!(
                message.contains(expected),
                "{message} should contain {expected}"
            );
        }
    }

    #[test]
    fn unusable_names_are_reported_by_position() {
        for bad in [
            serde_json::json!(""),
            serde_json::json!("has space"),
            serde_json::json!("x".repeat(65)),
            5.into(),
        ] {
            let message = error_for(|o| o["name"] = bad);
            assert!(message.starts_with("subscription #2: "), "{message}");
        }
        let message = error_for(|o| drop(o.remove("name")));
        assert_eq!(message, "subscription #2: missing field `name`");
    }

    #[test]
    fn duplicates_across_subscriptions_are_refused() {
        let json = Value::Array(vec![
            entry("a", "k1", "k2", &["audit.read"]),
            entry("a", "k3", "k4", &["audit.read"]),
        ]);
        assert_eq!(
            Subscriptions::from_json(&json.to_string())
                .unwrap_err()
                .to_string(),
            "subscription `a`: the name is used by an earlier subscription"
        );
        let json = Value::Array(vec![
            entry("a", "k1", "k2", &["audit.read"]),
            entry("b", "k3", "k1", &["audit.read"]),
        ]);
        assert_eq!(
            Subscriptions::from_json(&json.to_string()).unwrap_err().to_string(),
            "subscription `b`: `secondaryKeySha256` is also a key digest of an earlier subscription"
        );
    }

    #[test]
    fn errors_and_debug_never_show_a_digest() {
        let digest = sha_hex("b-1");
        let message = error_for(|o| o["secondaryKeySha256"] = o["primaryKeySha256"].clone());
        assert!(!message.contains(&digest));
        let message = error_for(|o| o["primaryKeySha256"] = Value::String(format!("{digest}00")));
        assert!(!message.contains(&digest[..16]), "{message}");
        let shown = format!("{:?}", config());
        assert!(!shown.contains(&sha_hex("lt-primary")));
        assert!(!shown.to_lowercase().contains("digest"));
        assert!(shown.contains("load-test"));
    }
}
