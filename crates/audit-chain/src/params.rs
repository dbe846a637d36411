//! The query parameters of the read routes, `GET /audit/records` and
//! `GET /audit/verify`. Errors name the parameter, never echo its value.
//!
//! Values are percent-decoded; `+` is kept as a plus sign (so an RFC 3339
//! offset such as `+02:00` survives a client that did not encode it).
//! Parameters these routes do not know are ignored: the gateway may pass
//! its own (such as `subscription-key`) along.

use percent::Plus;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::chain::ChainKey;
use crate::error::{AuditInputError, Violation};
use crate::input::{ResourceId, ResourceType};
use crate::stamp::AuditTime;

/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 100;
/// Largest `limit`.
pub const MAX_LIMIT: u32 = 1000;

/// `GET /audit/records?resourceType=&resourceId=&from=&to=&limit=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordsQuery {
    pub chain_key: ChainKey,
    /// Inclusive bounds on `createdDate`.
    pub from: Option<AuditTime>,
    pub to: Option<AuditTime>,
    pub limit: u32,
}

/// `GET /audit/verify?resourceType=&resourceId=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyQuery {
    pub chain_key: ChainKey,
}

const RESOURCE_TYPE: &str = "resourceType";
const RESOURCE_ID: &str = "resourceId";
const FROM: &str = "from";
const TO: &str = "to";
const LIMIT: &str = "limit";

pub fn parse_records_query(query: &str) -> Result<RecordsQuery, AuditInputError> {
    let mut p = Params::parse(query, &[RESOURCE_TYPE, RESOURCE_ID, FROM, TO, LIMIT])?;
    let chain_key = chain_key(&mut p)?;
    // A bound inside a millisecond is rounded inwards, so that the range
    // never takes in a record outside what was asked for.
    let from = p
        .take(FROM)
        .map(|v| time_param(FROM, &v, true))
        .transpose()?;
    let to = p.take(TO).map(|v| time_param(TO, &v, false)).transpose()?;
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(AuditInputError::new(
                FROM,
                Violation::Inconsistent("must not be later than to"),
            ));
        }
    }
    let limit = match p.take(LIMIT) {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) && !v.starts_with('+') => n,
            _ => {
                return Err(AuditInputError::new(
                    LIMIT,
                    Violation::NotCanonical("an integer from 1 to 1000"),
                ))
            }
        },
    };
    Ok(RecordsQuery {
        chain_key,
        from,
        to,
        limit,
    })
}

pub fn parse_verify_query(query: &str) -> Result<VerifyQuery, AuditInputError> {
    let mut p = Params::parse(query, &[RESOURCE_TYPE, RESOURCE_ID])?;
    Ok(VerifyQuery {
        chain_key: chain_key(&mut p)?,
    })
}

fn chain_key(p: &mut Params) -> Result<ChainKey, AuditInputError> {
    let kind = ResourceType::parse_at(RESOURCE_TYPE, &p.required(RESOURCE_TYPE)?)?;
    let id = ResourceId::parse_at(RESOURCE_ID, &p.required(RESOURCE_ID)?)?;
    Ok(ChainKey::new(kind, &id))
}

fn time_param(name: &str, value: &str, round_up: bool) -> Result<AuditTime, AuditInputError> {
    let invalid = || {
        AuditInputError::new(
            name,
            Violation::NotCanonical("an RFC 3339 timestamp in years 0001-9999"),
        )
    };
    let t = OffsetDateTime::parse(value, &Rfc3339).map_err(|_| invalid())?;
    let nanos = t.unix_timestamp_nanos();
    let millis = if round_up {
        nanos.div_euclid(1_000_000) + i128::from(nanos.rem_euclid(1_000_000) != 0)
    } else {
        nanos.div_euclid(1_000_000)
    };
    let millis = i64::try_from(millis).map_err(|_| invalid())?;
    AuditTime::from_unix_millis(millis).map_err(|_| invalid())
}

/// The known parameters of a query string, decoded, each at most once.
struct Params(Vec<(&'static str, String)>);

impl Params {
    fn parse(query: &str, known: &[&'static str]) -> Result<Self, AuditInputError> {
        let mut found: Vec<(&'static str, String)> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            // Unknown (or undecodable) names are not ours to judge.
            let Some(name) = percent::decode(raw_name, Plus::Literal)
                .and_then(|n| known.iter().copied().find(|k| *k == n))
            else {
                continue;
            };
            let value = percent::decode(raw_value, Plus::Literal).ok_or_else(|| {
                AuditInputError::new(name, Violation::InvalidCharacters("percent-encoded UTF-8"))
            })?;
            if found.iter().any(|(n, _)| *n == name) {
                return Err(AuditInputError::new(name, Violation::DuplicateField));
            }
            found.push((name, value));
        }
        Ok(Params(found))
    }

    /// The value, if given and not empty (an empty value counts as absent).
    fn take(&mut self, name: &str) -> Option<String> {
        let at = self.0.iter().position(|(n, _)| *n == name)?;
        let (_, value) = self.0.swap_remove(at);
        (!value.is_empty()).then_some(value)
    }

    fn required(&mut self, name: &str) -> Result<String, AuditInputError> {
        self.take(name)
            .ok_or_else(|| AuditInputError::new(name, Violation::Required))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PID: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";

    fn field(r: Result<impl std::fmt::Debug, AuditInputError>) -> String {
        r.unwrap_err().field
    }

    #[test]
    fn records_query_with_every_parameter() {
        let q = parse_records_query(&format!(
            "resourceType=patient&resourceId={PID}&from=2024-01-01T00:00:00Z\
             &to=2024-01-02T01:00:00%2B01:00&limit=5&subscription-key=x"
        ))
        .unwrap();
        assert_eq!(q.chain_key.as_str(), format!("patient:{PID}"));
        assert_eq!(q.from.unwrap().to_string(), "2024-01-01T00:00:00.000Z");
        assert_eq!(q.to.unwrap().to_string(), "2024-01-02T00:00:00.000Z");
        assert_eq!(q.limit, 5);
        // A raw `+` is a plus sign.
        let q = parse_records_query(&format!(
            "resourceType=test&resourceId={PID}&to=2024-01-02T01:00:00.5+01:00"
        ))
        .unwrap();
        assert_eq!(q.to.unwrap().to_string(), "2024-01-02T00:00:00.500Z");
    }

    #[test]
    fn defaults() {
        let q = parse_records_query(&format!("resourceType=patient&resourceId={PID}")).unwrap();
        assert_eq!((q.from, q.to, q.limit), (None, None, DEFAULT_LIMIT));
        let q = parse_records_query(&format!(
            "resourceType=patient&resourceId={PID}&from=&to=&limit="
        ))
        .unwrap();
        assert_eq!((q.from, q.to, q.limit), (None, None, DEFAULT_LIMIT));
        let v = parse_verify_query("resourceId=%2A&resourceType=patient").unwrap();
        assert_eq!(v.chain_key.as_str(), "patient:*");
    }

    #[test]
    fn sub_millisecond_bounds_round_inwards() {
        let q = parse_records_query(&format!(
            "resourceType=patient&resourceId={PID}&from=2024-01-01T00:00:00.0001Z&to=2024-01-01T00:00:00.0019Z"
        ))
        .unwrap();
        assert_eq!(q.from.unwrap().to_string(), "2024-01-01T00:00:00.001Z");
        assert_eq!(q.to.unwrap().to_string(), "2024-01-01T00:00:00.001Z");
    }

    #[test]
    fn errors_name_the_parameter() {
        let base = format!("resourceType=patient&resourceId={PID}");
        assert_eq!(field(parse_records_query("")), "resourceType");
        assert_eq!(
            field(parse_records_query("resourceType=patient")),
            "resourceId"
        );
        assert_eq!(
            field(parse_verify_query(&format!("resourceId={PID}"))),
            "resourceType"
        );
        for (extra, name) in [
            ("&from=yesterday", "from"),
            ("&from=2024-01-01", "from"),
            ("&to=2024-01-01T00:00:00", "to"),
            ("&from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z", "from"),
            ("&limit=0", "limit"),
            ("&limit=1001", "limit"),
            ("&limit=-1", "limit"),
            ("&limit=%2B5", "limit"),
            ("&limit=ten", "limit"),
            ("&limit=1&limit=2", "limit"),
            ("&resourceId=x", "resourceId"),
            ("&from=%E0%80", "from"),
            ("&from=%zz", "from"),
        ] {
            assert_eq!(
                field(parse_records_query(&format!("{base}{extra}"))),
                name,
                "{extra}"
            );
        }
        for (q, name) in [
            (format!("resourceType=lab&resourceId={PID}"), "resourceType"),
            (
                "resourceType=patient&resourceId=a%2Fb".to_string(),
                "resourceId",
            ),
            (
                format!("resourceType=patient&resourceId={}", "a".repeat(129)),
                "resourceId",
            ),
        ] {
            assert_eq!(field(parse_verify_query(&q)), name, "{q}");
            assert_eq!(field(parse_records_query(&q)), name, "{q}");
        }
        // The message names the rule, not the value.
        let e = parse_records_query(&format!("{base}&from=secret-value")).unwrap_err();
        assert!(!e.message().contains("secret-value"), "{}", e.message());
    }
}
