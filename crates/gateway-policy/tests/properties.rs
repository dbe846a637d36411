//! Property-based fuzzing of what the gateway reads from a client: bearer
//! tokens (JWT), `traceparent`, `x-forwarded-for` and the small header and
//! query parsers; and of its one configuration document, `gatewaypolicy`.
//!
//! Properties: arbitrary input never panics and fails with the typed error;
//! tokens signed over structurally generated valid claims are accepted and
//! name their subject and scopes; every mutation of a valid token (bit flip,
//! insertion, deletion, truncation, swapped or re-encoded parts, another
//! algorithm) is refused; `traceparent` values round-trip.
//!
//! `PROPTEST_CASES` (default 256) bounds each property. Each property adds a
//! line `fuzz <target>: <n> cases` to `target/hardening/fuzz-gateway-policy.txt`.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gateway_policy::{
    bearer_token, parse_client_addr, route, split_subscription_key, ClientAddressError,
    GatewaySettings, JwtConfig, JwtError, JwtValidator, Scope, ScopeSet, TraceContext,
    TraceparentError, TrustedProxies, MAX_FORWARDED_FOR_HOPS, MAX_TOKEN_LEN,
    SUBSCRIPTION_KEY_QUERY,
};
use p256::ecdsa::SigningKey as EcKey;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use rand_core::OsRng;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};

/// Runs properties with a case budget and records how many cases ran.
#[path = "../../../tests/support/fuzz.rs"]
mod fuzz;

// ---------------------------------------------------------------- keys and tokens

const NOW: i64 = 1_750_000_000;
const ISSUER: &str = "https://login.example.test/tenant/v2.0";
const AUDIENCE: &str = "api://patient-records";

struct Keys {
    rsa: RsaPrivateKey,
    ec: EcKey,
    /// Not in the JWKS: signs with the right kid but the wrong key.
    ec_other: EcKey,
    validator: JwtValidator,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rsa = RsaPrivateKey::new(&mut OsRng, 2048).unwrap();
        let ec = EcKey::random(&mut OsRng);
        let point = ec.verifying_key().to_encoded_point(false);
        let jwks = json!({"keys": [
            {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
             "n": b64(&rsa.n().to_bytes_be()), "e": b64(&rsa.e().to_bytes_be())},
            {"kty": "EC", "crv": "P-256", "kid": "ec-1",
             "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())},
        ]});
        let validator = JwtValidator::new(JwtConfig {
            jwks_json: jwks.to_string(),
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            scope_claim: "scp".into(),
            leeway_seconds: 60,
        })
        .unwrap();
        Keys {
            rsa,
            ec,
            ec_other: EcKey::random(&mut OsRng),
            validator,
        }
    })
}

#[derive(Debug, Clone, Copy)]
enum Signer {
    Rsa,
    Ec,
    EcOther,
}

fn sign_raw(header: &[u8], claims: &[u8], signer: Signer) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let k = keys();
    let signature = match signer {
        Signer::Rsa => rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(k.rsa.clone())
            .sign(input.as_bytes())
            .to_vec(),
        Signer::Ec | Signer::EcOther => {
            let key = if matches!(signer, Signer::Ec) {
                &k.ec
            } else {
                &k.ec_other
            };
            let signature: p256::ecdsa::Signature = key.sign(input.as_bytes());
            signature.to_bytes().to_vec()
        }
    };
    format!("{input}.{}", b64(&signature))
}

fn sign(header: &Value, claims: &Value, signer: Signer) -> String {
    sign_raw(
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
        signer,
    )
}

fn header_for(signer: Signer) -> Value {
    match signer {
        Signer::Rsa => json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}),
        Signer::Ec | Signer::EcOther => json!({"alg": "ES256", "kid": "ec-1"}),
    }
}

fn claims() -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "client-app-1", "exp": NOW + 600,
           "nbf": NOW - 10, "iat": NOW - 10, "scp": "patients.read patients.write"})
}

fn validate(token: &str) -> Result<gateway_policy::Principal, JwtError> {
    keys().validator.validate(token, NOW)
}

/// One valid token per algorithm, made once.
fn valid_tokens() -> &'static [String; 2] {
    static TOKENS: OnceLock<[String; 2]> = OnceLock::new();
    TOKENS.get_or_init(|| {
        [
            sign(&header_for(Signer::Rsa), &claims(), Signer::Rsa),
            sign(&header_for(Signer::Ec), &claims(), Signer::Ec),
        ]
    })
}

// ---------------------------------------------------------------- JWT: hostile input

fn json_ish() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        select(
            &[
                "RS256", "ES256", "none", "None", "HS256", "hs512", "RS512", "PS256", "EdDSA", "",
                "rsa-1", "ec-1", "JWT", "at+jwt", ISSUER, AUDIENCE
            ][..]
        )
        .prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let key = prop_oneof![
            select(
                &[
                    "alg", "kid", "typ", "crit", "jku", "x5u", "jwk", "iss", "aud", "sub", "exp",
                    "nbf", "iat", "scp"
                ][..]
            )
            .prop_map(String::from),
            "\\PC{0,6}",
        ];
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec((key, inner), 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn hostile_token() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_=+/.-]{0,200}",
        "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,90}",
        // Parts that decode: arbitrary JSON header and payload, random signature.
        (json_ish(), json_ish(), vec(any::<u8>(), 0..300)).prop_map(|(h, p, s)| {
            format!(
                "{}.{}.{}",
                b64(h.to_string().as_bytes()),
                b64(p.to_string().as_bytes()),
                b64(&s)
            )
        }),
        // Raw bytes as header or payload (not UTF-8, not JSON).
        (
            vec(any::<u8>(), 0..64),
            vec(any::<u8>(), 0..64),
            vec(any::<u8>(), 0..80)
        )
            .prop_map(|(h, p, s)| format!("{}.{}.{}", b64(&h), b64(&p), b64(&s))),
        // Around the size limit.
        (MAX_TOKEN_LEN - 2..MAX_TOKEN_LEN + 3)
            .prop_map(|n| "a.b.".to_string() + &"c".repeat(n - 4)),
    ]
}

#[test]
fn jwt_hostile_tokens_are_refused_without_panic() {
    fuzz::run(
        "gateway_policy::JwtValidator::validate/arbitrary",
        hostile_token(),
        |token| {
            let error = match validate(&token) {
                Ok(_) => return Err(TestCaseError::fail(format!("accepted {token:?}"))),
                Err(e) => e,
            };
            let message = error.to_string();
            prop_assert!(
                token.len() < 8 || !message.contains(&token),
                "error echoes the token"
            );
            if token.len() > MAX_TOKEN_LEN {
                prop_assert_eq!(error, JwtError::TooLarge);
            }
            Ok(())
        },
    );
}

#[test]
fn jwt_dangerous_headers_are_refused_before_the_key() {
    // A correctly formed token whose header asks for something refused:
    // the error names that, whatever the (valid or not) signature.
    let header = prop_oneof![
            "[nN][oO][nN][eE]"
                .prop_map(|alg| (json!({"alg": alg, "kid": "rsa-1"}), JwtError::AlgNone)),
            "[hH][sS](256|384|512|1)"
                .prop_map(|alg| (json!({"alg": alg, "kid": "rsa-1"}), JwtError::HmacAlgorithm)),
            select(
                &[
                    "RS384", "RS512", "PS256", "ES384", "ES512", "EdDSA", "rs256", "es256",
                    "RSA-OAEP"
                ][..]
            )
            .prop_map(|alg| (
                json!({"alg": alg, "kid": "rsa-1"}),
                JwtError::UnsupportedAlgorithm
            )),
            select(&["RS256", "ES256"][..]).prop_map(|alg| (
                json!({"alg": alg, "kid": "rsa-1", "crit": ["exp"]}),
                JwtError::CriticalHeader
            )),
            select(&["RS256", "ES256"][..])
                .prop_map(|alg| (json!({"alg": alg}), JwtError::MissingKid)),
            select(&["RS256", "ES256"][..])
                .prop_map(|alg| (json!({"alg": alg, "kid": ""}), JwtError::MissingKid)),
            (select(&["RS256", "ES256"][..]), "[a-z0-9-]{1,12}")
                .prop_filter("a configured kid", |(_, kid)| kid != "rsa-1"
                    && kid != "ec-1")
                .prop_map(|(alg, kid)| (json!({"alg": alg, "kid": kid}), JwtError::UnknownKid)),
            "JWS|jwt\\+at|[a-z]{1,6}"
                .prop_filter("an accepted typ", |t| !["jwt", "at+jwt"]
                    .contains(&t.to_ascii_lowercase().as_str()))
                .prop_map(|typ| (
                    json!({"alg": "RS256", "kid": "rsa-1", "typ": typ}),
                    JwtError::UnsupportedType
                )),
            Just((
                json!({"alg": "ES256", "kid": "rsa-1"}),
                JwtError::KeyTypeMismatch
            )),
            Just((
                json!({"alg": "RS256", "kid": "ec-1"}),
                JwtError::KeyTypeMismatch
            )),
        ];
    let strategy = (header, prop_oneof![Just(Signer::Rsa), Just(Signer::Ec)]);
    fuzz::run(
        "gateway_policy::JwtValidator::validate/dangerous-headers",
        strategy,
        |((header, expected), signer)| {
            let token = sign(&header, &claims(), signer);
            prop_assert_eq!(validate(&token).unwrap_err(), expected);
            Ok(())
        },
    );
}

// ---------------------------------------------------------------- JWT: valid and mutated

#[derive(Debug, Clone)]
struct ValidClaims {
    subject: String,
    scopes: Vec<&'static str>,
    scopes_as_array: bool,
    exp_offset: i64,
    nbf_offset: Option<i64>,
    aud_array: bool,
    fractional: bool,
}

fn valid_claims() -> impl Strategy<Value = ValidClaims> {
    let scope = select(
        &[
            "patients.read",
            "patients.write",
            "audit.read",
            "other.scope",
            "Patients.Read",
            "openid",
        ][..],
    );
    (
        "[!-~]{1,256}",
        vec(scope, 0..5),
        any::<bool>(),
        -59i64..100_000,
        proptest::option::of(-100_000i64..60),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(subject, scopes, scopes_as_array, exp_offset, nbf_offset, aud_array, fractional)| {
                ValidClaims {
                    subject,
                    scopes,
                    scopes_as_array,
                    exp_offset,
                    nbf_offset,
                    aud_array,
                    fractional,
                }
            },
        )
}

impl ValidClaims {
    fn to_json(&self) -> Value {
        let exp = NOW + self.exp_offset;
        let mut c = json!({
            "iss": ISSUER,
            "sub": self.subject,
            "exp": if self.fractional { json!(exp as f64 + 0.5) } else { json!(exp) },
            "aud": if self.aud_array { json!(["other", AUDIENCE]) } else { json!(AUDIENCE) },
        });
        if let Some(nbf) = self.nbf_offset {
            c["nbf"] = json!(NOW + nbf);
            c["iat"] = json!(NOW + nbf);
        }
        c["scp"] = if self.scopes_as_array {
            json!(self.scopes)
        } else {
            json!(self.scopes.join(" "))
        };
        c
    }

    fn expected_scopes(&self) -> ScopeSet {
        self.scopes
            .iter()
            .filter_map(|s| Scope::parse(s))
            .fold(ScopeSet::EMPTY, ScopeSet::with)
    }
}

#[test]
fn jwt_valid_tokens_are_accepted() {
    let strategy = (
        valid_claims(),
        prop_oneof![Just(Signer::Rsa), Just(Signer::Ec)],
    );
    fuzz::run(
        "gateway_policy::JwtValidator::validate/valid",
        strategy,
        |(claims, signer)| {
            let token = sign(&header_for(signer), &claims.to_json(), signer);
            let principal =
                validate(&token).map_err(|e| TestCaseError::fail(format!("refused: {e}")))?;
            prop_assert_eq!(&principal.subject, &claims.subject);
            prop_assert_eq!(principal.scopes, claims.expected_scopes());
            Ok(())
        },
    );
}

/// A change to a token's text.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(prop::sample::Index, char),
    Insert(prop::sample::Index, char),
    Delete(prop::sample::Index),
    Truncate(prop::sample::Index),
    Swap(prop::sample::Index, prop::sample::Index),
    FlipSignatureBit(prop::sample::Index, u8),
    PadPart(usize),
    StandardBase64,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let c = prop_oneof![
        "[A-Za-z0-9_-]".prop_map(|s| s.chars().next().unwrap()),
        select(&['.', '=', '+', '/', ' ', '\0', 'é'][..]),
    ];
    prop_oneof![
        4 => (any::<prop::sample::Index>(), c.clone()).prop_map(|(i, c)| Mutation::Replace(i, c)),
        2 => (any::<prop::sample::Index>(), c).prop_map(|(i, c)| Mutation::Insert(i, c)),
        2 => any::<prop::sample::Index>().prop_map(Mutation::Delete),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        1 => (any::<prop::sample::Index>(), any::<prop::sample::Index>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        2 => (any::<prop::sample::Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipSignatureBit(i, b)),
        1 => (0usize..3).prop_map(Mutation::PadPart),
        1 => Just(Mutation::StandardBase64),
    ]
}

fn apply(token: &str, m: &Mutation) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    match m {
        Mutation::Replace(i, c) => {
            let i = i.index(chars.len());
            chars[i] = *c;
        }
        Mutation::Insert(i, c) => chars.insert(i.index(chars.len() + 1), *c),
        Mutation::Delete(i) => {
            chars.remove(i.index(chars.len()));
        }
        Mutation::Truncate(i) => chars.truncate(i.index(chars.len())),
        Mutation::Swap(a, b) => {
            let (a, b) = (a.index(chars.len()), b.index(chars.len()));
            chars.swap(a, b);
        }
        Mutation::FlipSignatureBit(i, bit) => {
            let (signed, signature) = token.rsplit_once('.').unwrap();
            let mut raw = URL_SAFE_NO_PAD.decode(signature).unwrap();
            let i = i.index(raw.len());
            raw[i] ^= 1 << bit;
            return format!("{signed}.{}", b64(&raw));
        }
        Mutation::PadPart(part) => {
            let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
            parts[*part].push('=');
            return parts.join(".");
        }
        Mutation::StandardBase64 => {
            // The same bytes in standard base64 (only differs where the
            // url-safe alphabet does, or by padding).
            let parts: Vec<String> = token
                .split('.')
                .map(|p| {
                    base64::engine::general_purpose::STANDARD
                        .encode(URL_SAFE_NO_PAD.decode(p).unwrap())
                })
                .collect();
            return parts.join(".");
        }
    }
    chars.into_iter().collect()
}

#[test]
fn jwt_mutations_of_valid_tokens_are_refused() {
    let strategy = (0usize..2, mutation());
    fuzz::run(
        "gateway_policy::JwtValidator::validate/mutated",
        strategy,
        |(which, m)| {
            let original = &valid_tokens()[which];
            prop_assert!(validate(original).is_ok());
            let mutated = apply(original, &m);
            prop_assume!(mutated != *original);
            let result = validate(&mutated);
            prop_assert!(result.is_err(), "mutation {m:?} accepted: {mutated}");
            Ok(())
        },
    );
}

#[test]
fn jwt_resigned_claims_changes_are_refused() {
    // Tokens correctly signed by a configured key (or the right kid with a
    // foreign key) whose claims break one rule.
    let broken = prop_oneof![
        (1i64..1_000_000).prop_map(|d| ("exp", json!(NOW - 60 - d), JwtError::Expired)),
        Just(("exp", json!(NOW - 60), JwtError::Expired)),
        (61i64..1_000_000).prop_map(|d| ("nbf", json!(NOW + d), JwtError::NotYetValid)),
        (61i64..1_000_000).prop_map(|d| ("iat", json!(NOW + d), JwtError::IssuedInFuture)),
        "\\PC{0,30}"
            .prop_filter("the issuer", |s| s != ISSUER)
            .prop_map(|s| ("iss", json!(s), JwtError::WrongIssuer)),
        "\\PC{0,30}"
            .prop_filter("the audience", |s| s != AUDIENCE)
            .prop_map(|s| ("aud", json!(s), JwtError::WrongAudience)),
        Just(("aud", json!([]), JwtError::WrongAudience)),
        Just((
            "aud",
            json!(AUDIENCE.to_uppercase()),
            JwtError::WrongAudience
        )),
        Just(("sub", json!(""), JwtError::MissingSubject)),
        Just(("sub", Value::Null, JwtError::MissingSubject)),
        "[!-~]{0,10}[ \u{7f}\u{e9}\t][!-~]{0,10}".prop_map(|s| (
            "sub",
            json!(s),
            JwtError::InvalidSubject
        )),
        Just(("sub", json!("a".repeat(257)), JwtError::InvalidSubject)),
        select(&["\"soon\"", "{}", "[1]", "true"][..]).prop_map(|v| (
            "exp",
            serde_json::from_str(v).unwrap(),
            JwtError::Malformed("exp is not a number")
        )),
    ];
    let strategy = (
        broken,
        prop_oneof![Just(Signer::Rsa), Just(Signer::Ec), Just(Signer::EcOther)],
    );
    fuzz::run(
        "gateway_policy::JwtValidator::validate/bad-claims",
        strategy,
        |((claim, value, expected), signer)| {
            let mut c = claims();
            if value.is_null() {
                c.as_object_mut().unwrap().remove(claim);
            } else {
                c[claim] = value;
            }
            let result = validate(&sign(&header_for(signer), &c, signer));
            match signer {
                Signer::EcOther => prop_assert_eq!(result.unwrap_err(), JwtError::BadSignature),
                _ => prop_assert_eq!(result.unwrap_err(), expected),
            }
            Ok(())
        },
    );
}

#[test]
fn jwt_payload_not_an_object_is_malformed_after_the_signature() {
    let strategy = (
        json_ish().prop_filter("not an object", |v| !v.is_object()),
        any::<bool>(),
    );
    fuzz::run(
        "gateway_policy::JwtValidator::validate/payload-shape",
        strategy,
        |(payload, rsa)| {
            let signer = if rsa { Signer::Rsa } else { Signer::Ec };
            let token = sign(&header_for(signer), &payload, signer);
            prop_assert_eq!(
                validate(&token).unwrap_err(),
                JwtError::Malformed("payload is not a JSON object")
            );
            Ok(())
        },
    );
}

// ---------------------------------------------------------------- traceparent

fn traceparent() -> impl Strategy<Value = String> {
    (any::<[u8; 16]>(), any::<[u8; 8]>(), any::<u8>())
        .prop_filter("non-zero ids", |(t, p, _)| *t != [0; 16] && *p != [0; 8])
        .prop_map(|(t, p, f)| format!("00-{}-{}-{f:02x}", hex::encode(t), hex::encode(p)))
}

#[test]
fn traceparent_arbitrary_values_never_panic() {
    let strategy = prop_oneof![
        any::<String>(),
        "[0-9a-fA-F-]{50,60}",
        "[ \t]{0,2}[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-[ -~]{0,10})?[ \t]{0,2}",
        (traceparent(), any::<prop::sample::Index>(), "[\\PC]").prop_map(|(t, i, c)| {
            let mut chars: Vec<char> = t.chars().collect();
            let i = i.index(chars.len());
            chars[i] = c.chars().next().unwrap();
            chars.into_iter().collect()
        }),
    ];
    fuzz::run(
        "gateway_policy::TraceContext::parse/arbitrary",
        strategy,
        |value| {
            match TraceContext::parse(&value) {
                Ok(ctx) => {
                    let trimmed = value.trim_matches([' ', '\t']);
                    let out = ctx.traceparent();
                    prop_assert_eq!(out.len(), 55);
                    prop_assert_eq!(&out[3..52], &trimmed[3..52], "ids are kept");
                    if trimmed.starts_with("00") {
                        prop_assert_eq!(out.as_str(), trimmed);
                    } else {
                        prop_assert!(
                            ctx.flags() <= 1,
                            "unknown flags of a newer version passed on"
                        );
                    }
                    prop_assert_eq!(ctx.trace_id(), ctx.correlation_id());
                    prop_assert!(ctx
                        .trace_id()
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
                }
                Err(e) => {
                    let _: TraceparentError = e;
                }
            }
            Ok(())
        },
    );
}

#[test]
fn traceparent_valid_values_round_trip() {
    fuzz::run(
        "gateway_policy::TraceContext::parse/valid",
        (traceparent(), any::<[u8; 8]>()),
        |(value, span)| {
            let ctx = TraceContext::parse(&value)
                .map_err(|e| TestCaseError::fail(format!("refused: {e}")))?;
            prop_assert_eq!(ctx.traceparent(), value.clone());
            prop_assert_eq!(
                TraceContext::parse(&value.to_uppercase()).is_err(),
                value != value.to_uppercase()
            );
            let child = ctx.child(span);
            prop_assert_eq!(child.trace_id(), ctx.trace_id());
            prop_assert_eq!(TraceContext::parse(&child.traceparent()), Ok(child));
            Ok(())
        },
    );
}

// ---------------------------------------------------------------- small parsers

#[test]
fn header_and_query_parsers_never_panic() {
    let strategy = (any::<String>(), "[a-zA-Z%0-9=&+_.-]{0,60}", any::<String>());
    fuzz::run(
        "gateway_policy::headers+route/arbitrary",
        strategy,
        |(text, query, path)| {
            if let Some(token) = bearer_token(&text) {
                prop_assert!(!token.is_empty() && text.contains(token));
            }
            let _ = parse_client_addr(&text);
            let _ = route("GET", &path);
            let _ = route(&text, &format!("/patient/{path}"));
            for q in [query.as_str(), text.as_str()] {
                let (key, rest) = split_subscription_key(q);
                // The key parameter never reaches a backend.
                for pair in rest.split('&') {
                    let name = pair.split_once('=').map_or(pair, |(n, _)| n);
                    prop_assert_ne!(name, SUBSCRIPTION_KEY_QUERY, "key forwarded in {:?}", rest);
                }
                if q.split('&')
                    .any(|p| p == SUBSCRIPTION_KEY_QUERY || p.starts_with("subscription-key="))
                {
                    prop_assert!(key.is_some());
                }
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------- x-forwarded-for

fn forwarded_entry() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u8..=255, 0u8..=255).prop_map(|(a, b)| format!("10.240.{a}.{b}")),
        (0u8..=255, 0u8..=255).prop_map(|(a, b)| format!("198.51.{a}.{b}")),
        (0u8..=255, 0u16..=65535).prop_map(|(a, p)| format!("203.0.113.{a}:{p}")),
        Just("[2001:db8::7]".to_string()),
        Just("unknown".to_string()),
        Just(String::new()),
        "\\PC{0,12}",
    ]
}

#[test]
fn forwarded_for_never_panics_and_names_only_the_peer_or_an_entry() {
    let proxies = TrustedProxies::from_entries(&["10.240.0.0/16"]).unwrap();
    fuzz::run(
        "gateway_policy::TrustedProxies::client_address/arbitrary",
        (
            prop_oneof![Just("10.240.1.1:80"), Just("192.0.2.9:80"), Just("garbage")],
            vec(vec(forwarded_entry(), 0..5).prop_map(|e| e.join(",")), 0..3),
        ),
        |(peer, values)| {
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            match proxies.client_address(Some(peer), &refs) {
                Ok(addr) => {
                    let shown = addr.to_string();
                    let from_peer = peer.starts_with(&shown);
                    let from_header = values.iter().any(|v| v.contains(&shown));
                    prop_assert!(from_peer || from_header, "{addr} from nowhere");
                    // An untrusted peer is always the client.
                    if peer == "192.0.2.9:80" {
                        prop_assert_eq!(shown, "192.0.2.9");
                    }
                }
                Err(ClientAddressError::Unknown) => prop_assert_eq!(peer, "garbage"),
                Err(ClientAddressError::TooManyHops) => {
                    let hops: usize = values.iter().map(|v| v.split(',').count()).sum();
                    prop_assert!(hops > MAX_FORWARDED_FOR_HOPS);
                }
                Err(_) => prop_assert_eq!(peer, "10.240.1.1:80"),
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------- gatewaypolicy

#[test]
fn a_policy_document_is_used_or_refused_naming_a_member_never_a_panic() {
    let member = select(
        &[
            "credentials",
            "jwt",
            "clientAllowList",
            "trustedProxies",
            "maxBodyBytes",
            "tokenLimits",
            "backendTimeoutSeconds",
            "bodyTimeoutSeconds",
            "credential",
        ][..],
    )
    .prop_map(String::from);
    let document = vec((member, json_ish()), 0..6)
        .prop_map(|members| Value::Object(members.into_iter().collect()).to_string());
    fuzz::run(
        "gateway_policy::GatewaySettings::parse/structured",
        prop_oneof![document, "\\PC{0,40}"],
        |text| {
            if let Err(e) = GatewaySettings::parse(&text) {
                prop_assert!(!e.member.is_empty());
                prop_assert!(e.to_string().starts_with("gatewaypolicy `"), "{e}");
            }
            Ok(())
        },
    );
}
