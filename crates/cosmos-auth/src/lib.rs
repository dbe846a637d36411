//! Azure Cosmos DB master-key authorization, as documented for the REST API
//! ("Access control in the Azure Cosmos DB SQL API"):
//!
//! ```text
//! payload = lower(verb) \n lower(resourceType) \n resourceLink \n lower(x-ms-date) \n \n
//! sig     = base64(HMAC-SHA256(base64decode(masterKey), payload))
//! header  = urlencode("type=master&ver=1.0&sig=" + sig)
//! ```
//!
//! The client side signs ([`sign`]); the local document store verifies
//! ([`verify`]) with the same code, so what one signs the other accepts.
//! Nothing here ever logs or returns the key or an expected signature.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::format_description::well_known::Rfc2822;
use time::OffsetDateTime;

/// Header carrying the request date that the signature covers.
pub const DATE_HEADER: &str = "x-ms-date";

/// How far a request's `x-ms-date` may be from the server's clock, as Cosmos DB
/// enforces it.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 15 * 60;

/// A decoded master key. Its `Debug` shows nothing of the key.
#[derive(Clone)]
pub struct MasterKey(Vec<u8>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Everything that can be wrong with a key or a presented authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The configured key is not base64 or is empty.
    InvalidKey,
    /// No `authorization` header.
    MissingAuthorization,
    /// The header is not `type=master&ver=1.0&sig=...` (URL-encoded).
    MalformedAuthorization,
    /// The signature does not match.
    SignatureMismatch,
    /// No `x-ms-date` header.
    MissingDate,
    /// `x-ms-date` is not an RFC 1123 date.
    MalformedDate,
    /// `x-ms-date` is more than [`MAX_CLOCK_SKEW_SECONDS`] away from now.
    DateOutOfRange,
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthError::InvalidKey => "the master key is not valid base64",
            AuthError::MissingAuthorization => "the authorization header is missing",
            AuthError::MalformedAuthorization => {
                "the authorization header is not a master-key token (type=master&ver=1.0&sig=...)"
            }
            AuthError::SignatureMismatch => {
                "the input authorization token can't serve the request: the signature does not match"
            }
            AuthError::MissingDate => "the x-ms-date header is missing",
            AuthError::MalformedDate => "the x-ms-date header is not an RFC 1123 date",
            AuthError::DateOutOfRange => {
                "the x-ms-date header is more than 15 minutes away from the server time"
            }
        })
    }
}

impl std::error::Error for AuthError {}

impl MasterKey {
    /// Decodes a base64 master key as the Azure portal shows it.
    pub fn from_base64(encoded: &str) -> Result<Self, AuthError> {
        let bytes = BASE64
            .decode(encoded.trim())
            .map_err(|_| AuthError::InvalidKey)?;
        if bytes.is_empty() {
            return Err(AuthError::InvalidKey);
        }
        Ok(Self(bytes))
    }

    fn signature(&self, request: &SignedRequest<'_>) -> [u8; 32] {
        let payload = format!(
            "{}\n{}\n{}\n{}\n\n",
            request.verb.to_lowercase(),
            request.resource_type.to_lowercase(),
            request.resource_link,
            request.date.to_lowercase()
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(payload.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// The parts of a request the signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedRequest<'a> {
    /// HTTP method, e.g. `POST`.
    pub verb: &'a str,
    /// `dbs`, `colls`, `docs`, or empty for the database account.
    pub resource_type: &'a str,
    /// e.g. `dbs/patients/colls/tests` (case preserved, no leading slash).
    pub resource_link: &'a str,
    /// The `x-ms-date` value (RFC 1123).
    pub date: &'a str,
}

/// The `authorization` header value for a request, already URL-encoded.
pub fn sign(key: &MasterKey, request: &SignedRequest<'_>) -> String {
    let signature = BASE64.encode(key.signature(request));
    url_encode(&format!("type=master&ver=1.0&sig={signature}"))
}

/// Verifies a presented `authorization` header value against the key.
pub fn verify(
    key: &MasterKey,
    request: &SignedRequest<'_>,
    authorization: Option<&str>,
) -> Result<(), AuthError> {
    let header = authorization.ok_or(AuthError::MissingAuthorization)?;
    let decoded =
        percent::decode(header, percent::Plus::Space).ok_or(AuthError::MalformedAuthorization)?;
    let mut kind = None;
    let mut version = None;
    let mut signature = None;
    for part in decoded.split('&') {
        match part.split_once('=') {
            Some(("type", value)) => kind = Some(value),
            Some(("ver", value)) => version = Some(value),
            Some(("sig", value)) => signature = Some(value),
            _ => return Err(AuthError::MalformedAuthorization),
        }
    }
    if kind != Some("master") || version != Some("1.0") {
        return Err(AuthError::MalformedAuthorization);
    }
    let presented = BASE64
        .decode(signature.ok_or(AuthError::MalformedAuthorization)?)
        .map_err(|_| AuthError::MalformedAuthorization)?;
    let expected = key.signature(request);
    if presented.len() == expected.len() && bool::from(presented.ct_eq(&expected)) {
        Ok(())
    } else {
        Err(AuthError::SignatureMismatch)
    }
}

/// Checks that an `x-ms-date` value is a valid date within the allowed skew of
/// `now` (Unix seconds).
pub fn check_date(date: Option<&str>, now_unix_seconds: i64) -> Result<(), AuthError> {
    let date = date.ok_or(AuthError::MissingDate)?;
    let parsed = parse_http_date(date).ok_or(AuthError::MalformedDate)?;
    if (parsed - now_unix_seconds).abs() > MAX_CLOCK_SKEW_SECONDS {
        return Err(AuthError::DateOutOfRange);
    }
    Ok(())
}

/// Formats Unix seconds as an RFC 1123 date, e.g. `Tue, 01 Nov 1994 08:12:31 GMT`.
pub fn http_date(unix_seconds: i64) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let at =
        OffsetDateTime::from_unix_timestamp(unix_seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[at.weekday().number_days_from_monday() as usize],
        at.day(),
        MONTHS[at.month() as usize - 1],
        at.year(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Parses an RFC 1123 date (`GMT`) into Unix seconds.
pub fn parse_http_date(date: &str) -> Option<i64> {
    // RFC 2822 parsing accepts the RFC 1123 form once `GMT` is spelled `+0000`.
    let normalised = date.trim().strip_suffix("GMT")?.trim_end().to_string() + " +0000";
    OffsetDateTime::parse(&normalised, &Rfc2822)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // The worked example from Microsoft's "Access control in Azure Cosmos DB"
    // REST documentation (the Node.js sample's inputs).
    const DOC_KEY: &str =
        "dsZQi3KtZmCv1ljt3VNWNm7sQUF1y5rJfC6kv5JiwvW0EndXdDku/dkKBp8/ufDToSxLzR4y+O/0H/t4bQtVNw==";

    #[test]
    fn signs_the_documented_worked_example() {
        let key = MasterKey::from_base64(DOC_KEY).unwrap();
        let request = SignedRequest {
            verb: "GET",
            resource_type: "dbs",
            resource_link: "dbs/ToDoList",
            date: "Thu, 27 Apr 2017 00:51:12 GMT",
        };
        assert_eq!(
            sign(&key, &request),
            "type%3Dmaster%26ver%3D1.0%26sig%3Dc09PEVJrgp2uQRkr934kFbTqhByc7TVr3OHyqlu%2Bc%2Bc%3D"
        );
    }

    #[test]
    fn verify_accepts_what_sign_produced_and_rejects_other_requests() {
        let key = MasterKey::from_base64(DOC_KEY).unwrap();
        let request = SignedRequest {
            verb: "POST",
            resource_type: "docs",
            resource_link: "dbs/patients/colls/patients",
            date: "Tue, 24 Nov 2026 10:00:00 GMT",
        };
        let header = sign(&key, &request);
        assert_eq!(verify(&key, &request, Some(&header)), Ok(()));
        let other = SignedRequest {
            verb: "DELETE",
            ..request
        };
        assert_eq!(
            verify(&key, &other, Some(&header)),
            Err(AuthError::SignatureMismatch)
        );
        let wrong_key = MasterKey::from_base64("c2VjcmV0").unwrap();
        assert_eq!(
            verify(&wrong_key, &request, Some(&header)),
            Err(AuthError::SignatureMismatch)
        );
    }

    #[test]
    fn verify_rejects_malformed_headers() {
        let key = MasterKey::from_base64(DOC_KEY).unwrap();
        let request = SignedRequest {
            verb: "GET",
            resource_type: "",
            resource_link: "",
            date: "x",
        };
        assert_eq!(
            verify(&key, &request, None),
            Err(AuthError::MissingAuthorization)
        );
        for header in [
            "",
            "type=resource&ver=1.0&sig=abc",
            "type=master&ver=2.0&sig=abc",
            "type%3Dmaster%26ver%3D1.0%26sig%3D%%%",
            "garbage",
            "%zz",
        ] {
            assert!(
                matches!(
                    verify(&key, &request, Some(header)),
                    Err(AuthError::MalformedAuthorization)
                ),
                "{header}"
            );
        }
    }

    #[test]
    fn keys_must_be_base64() {
        assert_eq!(
            MasterKey::from_base64("not base64!").unwrap_err(),
            AuthError::InvalidKey
        );
        assert_eq!(
            MasterKey::from_base64("").unwrap_err(),
            AuthError::InvalidKey
        );
        assert_eq!(
            format!("{:?}", MasterKey::from_base64(DOC_KEY).unwrap()),
            "MasterKey(..)"
        );
    }

    #[test]
    fn dates_round_trip_and_skew_is_enforced() {
        let now = 1_795_000_000;
        let date = http_date(now);
        assert_eq!(parse_http_date(&date), Some(now));
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(check_date(Some(&date), now + 15 * 60), Ok(()));
        assert_eq!(
            check_date(Some(&date), now - 15 * 60 - 1),
            Err(AuthError::DateOutOfRange)
        );
        assert_eq!(
            check_date(Some("yesterday"), now),
            Err(AuthError::MalformedDate)
        );
        assert_eq!(check_date(None, now), Err(AuthError::MissingDate));
    }

    proptest! {
        #[test]
        fn whatever_is_signed_verifies(
            key in proptest::collection::vec(any::<u8>(), 1..80),
            verb in "(GET|POST|PUT|DELETE)",
            kind in "(|dbs|colls|docs)",
            link in "[A-Za-z0-9/_-]{0,60}",
            seconds in 0i64..4_000_000_000,
        ) {
            let key = MasterKey::from_base64(&BASE64.encode(key)).unwrap();
            let date = http_date(seconds);
            let request = SignedRequest { verb: &verb, resource_type: &kind, resource_link: &link, date: &date };
            prop_assert_eq!(verify(&key, &request, Some(&sign(&key, &request))), Ok(()));
        }
    }
}
