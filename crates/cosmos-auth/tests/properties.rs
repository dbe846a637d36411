//! Property-based fuzzing of what the document store reads from a caller:
//! the master-key `authorization` header and the `x-ms-date` header.
//!
//! Properties: arbitrary headers never panic and are refused with the typed
//! error; what `sign` produces verifies, and any change to the request, key
//! or signature is refused; dates round-trip and the skew rule holds exactly.
//!
//! `PROPTEST_CASES` (default 256) bounds each property. Each property adds a
//! line `fuzz <target>: <n> cases` to `target/hardening/fuzz-cosmos-auth.txt`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use cosmos_auth::{
    check_date, http_date, parse_http_date, sign, verify, AuthError, MasterKey, SignedRequest,
    MAX_CLOCK_SKEW_SECONDS,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

/// Runs properties with a case budget and records how many cases ran.
#[path = "../../../tests/support/fuzz.rs"]
mod fuzz;

const NOW: i64 = 1_800_000_000;

fn key() -> MasterKey {
    MasterKey::from_base64(&BASE64.encode(b"a local document store key of some length")).unwrap()
}

fn request(date: &str) -> SignedRequest<'_> {
    SignedRequest {
        verb: "POST",
        resource_type: "docs",
        resource_link: "dbs/patients/colls/patients",
        date,
    }
}

/// Strict `%XX` and `+` decoding, as a reference for what a header means.
fn reference_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hostile_header() -> impl Strategy<Value = String> {
    let sig = prop_oneof![
        "[A-Za-z0-9+/=]{0,60}",
        vec(any::<u8>(), 0..40).prop_map(|b| BASE64.encode(b)),
        any::<String>(),
    ];
    prop_oneof![
        any::<String>(),
        "[%0-9a-fA-F+&=a-z.]{0,80}",
        "(%[0-9A-Fa-f+-]{0,2}|[a-z=&]){0,30}",
        (
            select(&["type", "TYPE", "typ", "", "sig", "ver"][..]),
            select(&["master", "resource", "aad", "Master", ""][..]),
            select(&["1.0", "2.0", "1", ""][..]),
            sig,
            any::<bool>(),
        )
            .prop_map(|(t, kind, ver, sig, encode)| {
                let plain = format!("{t}={kind}&ver={ver}&sig={sig}");
                if encode {
                    percent_encode(&plain)
                } else {
                    plain
                }
            }),
    ]
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn verify_refuses_arbitrary_authorization_headers() {
    let date = http_date(NOW);
    fuzz::run(
        "cosmos_auth::verify/arbitrary",
        hostile_header(),
        |header| {
            let result = verify(&key(), &request(&date), Some(&header));
            prop_assert!(
                matches!(
                    result,
                    Err(AuthError::MalformedAuthorization) | Err(AuthError::SignatureMismatch)
                ),
                "{header:?}: {result:?}"
            );
            Ok(())
        },
    );
}

#[test]
fn signed_requests_verify_and_any_change_is_refused() {
    #[derive(Debug, Clone)]
    enum Change {
        Verb(String),
        ResourceType(String),
        Link(String),
        Date(i64),
        Key(Vec<u8>),
        SignatureBit(prop::sample::Index, u8),
        HeaderText(prop::sample::Index, char),
    }
    let change = prop_oneof![
        "[A-Za-z]{1,7}".prop_map(Change::Verb),
        "[a-z]{0,6}".prop_map(Change::ResourceType),
        "[A-Za-z0-9/_ -]{0,40}".prop_map(Change::Link),
        (1i64..100_000).prop_map(Change::Date),
        vec(any::<u8>(), 1..70).prop_map(Change::Key),
        (any::<prop::sample::Index>(), 0u8..8).prop_map(|(i, b)| Change::SignatureBit(i, b)),
        (any::<prop::sample::Index>(), "[A-Za-z0-9%+=&/]")
            .prop_map(|(i, c)| Change::HeaderText(i, c.chars().next().unwrap())),
    ];
    let strategy = (
        select(&["GET", "POST", "PUT", "DELETE"][..]),
        select(&["", "dbs", "colls", "docs", "pkranges"][..]),
        "[A-Za-z0-9/_-]{0,60}",
        0i64..4_000_000_000,
        change,
    );
    fuzz::run(
        "cosmos_auth::verify/signed-and-changed",
        strategy,
        |(verb, kind, link, at, change)| {
            let key = key();
            let date = http_date(at);
            let original = SignedRequest {
                verb,
                resource_type: kind,
                resource_link: &link,
                date: &date,
            };
            let header = sign(&key, &original);
            prop_assert_eq!(verify(&key, &original, Some(&header)), Ok(()));
            // Verb, resource type and date are case-insensitive by definition.
            prop_assert_eq!(
                verify(
                    &key,
                    &SignedRequest {
                        verb: &verb.to_lowercase(),
                        ..original
                    },
                    Some(&header)
                ),
                Ok(())
            );

            let (mut verb2, mut kind2, mut link2, mut date2) = (
                verb.to_string(),
                kind.to_string(),
                link.clone(),
                date.clone(),
            );
            let mut key2 = key.clone();
            let mut header2 = header.clone();
            match &change {
                Change::Verb(v) => verb2 = v.clone(),
                Change::ResourceType(t) => kind2 = t.clone(),
                Change::Link(l) => link2 = l.clone(),
                Change::Date(d) => date2 = http_date(at + d),
                Change::Key(k) => key2 = MasterKey::from_base64(&BASE64.encode(k)).unwrap(),
                Change::SignatureBit(i, bit) => {
                    let sig = reference_decode(&header).unwrap();
                    let sig = sig.rsplit_once("sig=").unwrap().1;
                    let mut raw = BASE64.decode(sig).unwrap();
                    let i = i.index(raw.len());
                    raw[i] ^= 1 << bit;
                    header2 =
                        percent_encode(&format!("type=master&ver=1.0&sig={}", BASE64.encode(raw)));
                }
                Change::HeaderText(i, c) => {
                    let mut chars: Vec<char> = header.chars().collect();
                    let i = i.index(chars.len());
                    chars[i] = *c;
                    header2 = chars.into_iter().collect();
                }
            }
            let same_request = verb2.eq_ignore_ascii_case(verb)
                && kind2.eq_ignore_ascii_case(kind)
                && link2 == link
                && date2.eq_ignore_ascii_case(&date);
            let same_key = !matches!(change, Change::Key(ref k) if k.as_slice() != b"a local document store key of some length");
            let same_header = reference_decode(&header2) == reference_decode(&header);
            let changed = SignedRequest {
                verb: &verb2,
                resource_type: &kind2,
                resource_link: &link2,
                date: &date2,
            };
            let result = verify(&key2, &changed, Some(&header2));
            if same_request && same_key && same_header {
                prop_assert_eq!(result, Ok(()));
            } else {
                prop_assert!(result.is_err(), "{change:?} accepted");
            }
            Ok(())
        },
    );
}

#[test]
fn master_keys_from_arbitrary_text() {
    let strategy = prop_oneof![any::<String>(), "[A-Za-z0-9+/= \n]{0,90}"];
    fuzz::run("cosmos_auth::MasterKey::from_base64", strategy, |text| {
        match MasterKey::from_base64(&text) {
            Ok(key) => prop_assert_eq!(format!("{key:?}"), "MasterKey(..)"),
            Err(e) => prop_assert_eq!(e, AuthError::InvalidKey),
        }
        Ok(())
    });
}

#[test]
fn http_dates_round_trip() {
    // Years 1900..=9999: what RFC 1123 and the parser handle.
    fuzz::run(
        "cosmos_auth::http_date+parse_http_date/round-trip",
        -2_208_988_800i64..253_402_300_799,
        |t| {
            let text = http_date(t);
            prop_assert_eq!(parse_http_date(&text), Some(t), "{}", text);
            prop_assert_eq!(check_date(Some(&text), t), Ok(()));
            Ok(())
        },
    );
}

#[test]
fn date_headers_never_panic_and_skew_is_exact() {
    let date_text = prop_oneof![
        any::<String>(),
        (
            select(&["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Xyz", ""][..]),
            0u32..40,
            select(&["Jan", "Feb", "Apr", "Dec", "jan", "Foo"][..]),
            0i32..12000,
            0u32..30,
            0u32..70,
            0u32..70,
            select(&["GMT", "gmt", "UTC", "+0000", "", " GMT ", "GMT GMT"][..]),
        )
            .prop_map(|(wd, d, m, y, h, mi, s, z)| format!(
                "{wd}, {d:02} {m} {y} {h:02}:{mi:02}:{s:02} {z}"
            )),
    ];
    let strategy = (date_text, -1_000_000i64..1_000_000);
    fuzz::run(
        "cosmos_auth::check_date+parse_http_date/arbitrary",
        strategy,
        |(text, offset)| {
            let now = NOW + offset;
            let parsed = parse_http_date(&text);
            let checked = check_date(Some(&text), now);
            match parsed {
                None => prop_assert_eq!(checked, Err(AuthError::MalformedDate)),
                Some(t) if (t - now).abs() > MAX_CLOCK_SKEW_SECONDS => {
                    prop_assert_eq!(checked, Err(AuthError::DateOutOfRange))
                }
                Some(_) => prop_assert_eq!(checked, Ok(())),
            }
            prop_assert_eq!(check_date(None, now), Err(AuthError::MissingDate));
            Ok(())
        },
    );
}

#[test]
fn skew_boundary_is_fifteen_minutes() {
    fuzz::run(
        "cosmos_auth::check_date/skew-boundary",
        (0i64..4_000_000_000, -2000i64..2000),
        |(t, skew)| {
            let result = check_date(Some(&http_date(t)), t + skew);
            if skew.abs() <= MAX_CLOCK_SKEW_SECONDS {
                prop_assert_eq!(result, Ok(()));
            } else {
                prop_assert_eq!(result, Err(AuthError::DateOutOfRange));
            }
            Ok(())
        },
    );
}
