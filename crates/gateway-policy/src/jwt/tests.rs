//! Keys are generated here and tokens signed here, so every signature the
//! validator sees was made by a real RS256/ES256 implementation.

use std::sync::OnceLock;

use p256::ecdsa::SigningKey as EcKey;
use rand_core::OsRng;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};

use super::*;

pub(crate) const NOW: i64 = 1_750_000_000;
pub(crate) const ISSUER: &str = "https://login.example.test/tenant/v2.0";
pub(crate) const AUDIENCE: &str = "api://patient-records";

pub(crate) struct TestKeys {
    pub rsa: RsaPrivateKey,
    pub rsa_other: RsaPrivateKey,
    pub ec: EcKey,
    pub ec_other: EcKey,
}

pub(crate) fn keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(|| TestKeys {
        rsa: RsaPrivateKey::new(&mut OsRng, 2048).unwrap(),
        rsa_other: RsaPrivateKey::new(&mut OsRng, 2048).unwrap(),
        ec: EcKey::random(&mut OsRng),
        ec_other: EcKey::random(&mut OsRng),
    })
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn rsa_jwk(kid: &str, key: &RsaPrivateKey) -> Value {
    json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
           "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be())})
}

fn ec_jwk(kid: &str, key: &EcKey) -> Value {
    let point = key.verifying_key().to_encoded_point(false);
    json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())})
}

pub(crate) fn jwks() -> String {
    json!({"keys": [rsa_jwk("rsa-1", &keys().rsa), ec_jwk("ec-1", &keys().ec)]}).to_string()
}

pub(crate) fn config(scope_claim: &str) -> JwtConfig {
    JwtConfig {
        jwks_json: jwks(),
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        scope_claim: scope_claim.into(),
        leeway_seconds: 60,
    }
}

pub(crate) fn validator() -> JwtValidator {
    JwtValidator::new(config("scp")).unwrap()
}

pub(crate) fn claims() -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "client-app-1", "exp": NOW + 600,
           "nbf": NOW - 10, "iat": NOW - 10, "scp": "patients.read something.else"})
}

pub(crate) enum Sig<'a> {
    Rsa(&'a RsaPrivateKey),
    Ec(&'a EcKey),
}

pub(crate) fn sign(header: &Value, claims: &Value, sig: Sig<'_>) -> String {
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = match sig {
        Sig::Rsa(key) => rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone())
            .sign(signing_input.as_bytes())
            .to_vec(),
        Sig::Ec(key) => {
            let signature: p256::ecdsa::Signature = key.sign(signing_input.as_bytes());
            signature.to_bytes().to_vec()
        }
    };
    format!("{signing_input}.{}", b64(&signature))
}

/// A valid RS256 token with these claims.
pub(crate) fn rs256(claims: &Value) -> String {
    sign(
        &json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}),
        claims,
        Sig::Rsa(&keys().rsa),
    )
}

/// A valid ES256 token with these claims.
pub(crate) fn es256(claims: &Value) -> String {
    sign(
        &json!({"alg": "ES256", "kid": "ec-1"}),
        claims,
        Sig::Ec(&keys().ec),
    )
}

fn with(mutate: impl FnOnce(&mut Map<String, Value>)) -> Value {
    let mut c = claims();
    mutate(c.as_object_mut().unwrap());
    c
}

fn check(token: &str) -> Result<Principal, JwtError> {
    validator().validate(token, NOW)
}

#[test]
fn valid_rs256_and_es256_tokens() {
    for token in [rs256(&claims()), es256(&claims())] {
        let principal = check(&token).unwrap();
        assert_eq!(principal.subject, "client-app-1");
        assert_eq!(
            principal.scopes,
            ScopeSet::EMPTY.with(Scope::PatientsRead),
            "unknown scopes are ignored"
        );
    }
}

#[test]
fn roles_array_claim_and_audience_array() {
    let v = JwtValidator::new(config("roles")).unwrap();
    let c = with(|c| {
        c.insert(
            "roles".into(),
            json!(["patients.write", "audit.read", "Admin", 7]),
        );
        c.insert("aud".into(), json!(["other", AUDIENCE]));
    });
    let principal = v.validate(&rs256(&c), NOW).unwrap();
    assert_eq!(
        principal.scopes,
        ScopeSet::EMPTY
            .with(Scope::PatientsWrite)
            .with(Scope::AuditRead)
    );
}

#[test]
fn token_without_scope_claim_is_valid_with_no_scopes() {
    let principal = check(&rs256(&with(|c| drop(c.remove("scp"))))).unwrap();
    assert!(principal.scopes.is_empty());
    assert_eq!(
        check(&rs256(&with(|c| drop(c.insert("scp".into(), json!(42)))))),
        Err(JwtError::Malformed(
            "scope claim is neither a string nor an array"
        ))
    );
}

#[test]
fn at_jwt_typ_is_accepted_other_typ_and_crit_are_not() {
    let header = json!({"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"});
    assert!(check(&sign(&header, &claims(), Sig::Rsa(&keys().rsa))).is_ok());
    let header = json!({"alg": "RS256", "kid": "rsa-1", "typ": "JOSE+JSON"});
    assert_eq!(
        check(&sign(&header, &claims(), Sig::Rsa(&keys().rsa))),
        Err(JwtError::UnsupportedType)
    );
    let header = json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"]});
    assert_eq!(
        check(&sign(&header, &claims(), Sig::Rsa(&keys().rsa))),
        Err(JwtError::CriticalHeader)
    );
}

#[test]
fn alg_none_is_rejected_in_any_spelling() {
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "kid": "rsa-1"});
        let unsigned = format!(
            "{}.{}.",
            b64(header.to_string().as_bytes()),
            b64(claims().to_string().as_bytes())
        );
        assert_eq!(check(&unsigned), Err(JwtError::AlgNone), "{alg}");
    }
}

#[test]
fn hmac_algorithms_are_rejected_even_with_a_plausible_signature() {
    // The classic confusion: HMAC keyed with the public key's bytes.
    use hmac::Mac as _;
    let public_der = keys().rsa.n().to_bytes_be();
    for alg in ["HS256", "HS384", "HS512", "hs256"] {
        let header = json!({"alg": alg, "kid": "rsa-1"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims().to_string().as_bytes())
        );
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&public_der).unwrap();
        mac.update(input.as_bytes());
        let token = format!("{input}.{}", b64(&mac.finalize().into_bytes()));
        assert_eq!(check(&token), Err(JwtError::HmacAlgorithm), "{alg}");
    }
}

#[test]
fn other_algorithms_are_rejected() {
    for alg in ["PS256", "RS512", "ES384", "EdDSA", "rs256", ""] {
        let header = json!({"alg": alg, "kid": "rsa-1"});
        assert_eq!(
            check(&sign(&header, &claims(), Sig::Rsa(&keys().rsa))),
            Err(JwtError::UnsupportedAlgorithm),
            "{alg}"
        );
    }
    let header = json!({"alg": 256, "kid": "rsa-1"});
    assert_eq!(
        check(&sign(&header, &claims(), Sig::Rsa(&keys().rsa))),
        Err(JwtError::Malformed("header has no alg"))
    );
}

#[test]
fn kid_must_be_present_known_and_of_the_right_key_type() {
    let c = claims();
    let missing = json!({"alg": "RS256"});
    assert_eq!(
        check(&sign(&missing, &c, Sig::Rsa(&keys().rsa))),
        Err(JwtError::MissingKid)
    );
    let empty = json!({"alg": "RS256", "kid": ""});
    assert_eq!(
        check(&sign(&empty, &c, Sig::Rsa(&keys().rsa))),
        Err(JwtError::MissingKid)
    );
    let unknown = json!({"alg": "RS256", "kid": "rsa-2"});
    assert_eq!(
        check(&sign(&unknown, &c, Sig::Rsa(&keys().rsa))),
        Err(JwtError::UnknownKid)
    );
    let rs_on_ec = json!({"alg": "RS256", "kid": "ec-1"});
    assert_eq!(
        check(&sign(&rs_on_ec, &c, Sig::Rsa(&keys().rsa))),
        Err(JwtError::KeyTypeMismatch)
    );
    let es_on_rsa = json!({"alg": "ES256", "kid": "rsa-1"});
    assert_eq!(
        check(&sign(&es_on_rsa, &c, Sig::Ec(&keys().ec))),
        Err(JwtError::KeyTypeMismatch)
    );
}

#[test]
fn embedded_keys_are_not_trusted() {
    // A token carrying its own key in the header, signed with that key,
    // under a configured kid: the configured key decides.
    let header = json!({"alg": "ES256", "kid": "ec-1", "jwk": ec_jwk("ec-1", &keys().ec_other),
                        "jku": "https://attacker.example/jwks"});
    assert_eq!(
        check(&sign(&header, &claims(), Sig::Ec(&keys().ec_other))),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn bad_signatures() {
    let c = claims();
    // Signed by another key under a configured kid.
    assert_eq!(
        check(&sign(
            &json!({"alg": "RS256", "kid": "rsa-1"}),
            &c,
            Sig::Rsa(&keys().rsa_other)
        )),
        Err(JwtError::BadSignature)
    );
    assert_eq!(
        check(&sign(
            &json!({"alg": "ES256", "kid": "ec-1"}),
            &c,
            Sig::Ec(&keys().ec_other)
        )),
        Err(JwtError::BadSignature)
    );
    // A payload swapped after signing.
    for token in [rs256(&c), es256(&c)] {
        let parts: Vec<&str> = token.split('.').collect();
        let forged = b64(with(|c| drop(c.insert("scp".into(), "audit.read".into())))
            .to_string()
            .as_bytes());
        assert_eq!(
            check(&format!("{}.{}.{}", parts[0], forged, parts[2])),
            Err(JwtError::BadSignature)
        );
    }
    // Truncated, empty and DER-encoded signatures.
    let token = rs256(&c);
    let (input, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let cut = format!("{input}.{}", b64(&signature[..signature.len() - 1]));
    assert_eq!(check(&cut), Err(JwtError::BadSignature));
    let mut flipped = signature.clone();
    flipped[100] ^= 1;
    assert_eq!(
        check(&format!("{input}.{}", b64(&flipped))),
        Err(JwtError::BadSignature)
    );
    assert_eq!(check(&format!("{input}.")), Err(JwtError::BadSignature));
    let header = json!({"alg": "ES256", "kid": "ec-1"});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(c.to_string().as_bytes())
    );
    let signature: p256::ecdsa::Signature = keys().ec.sign(input.as_bytes());
    let der = signature.to_der();
    assert_eq!(
        check(&format!("{input}.{}", b64(der.as_bytes()))),
        Err(JwtError::BadSignature)
    );
    assert_eq!(
        check(&format!("{input}.{}", b64(&[0u8; 64]))),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn malformed_tokens() {
    let good = rs256(&claims());
    let parts: Vec<&str> = good.split('.').collect();
    let not_json = b64(b"not json");
    let array = b64(b"[1,2]");
    let padded_header = format!("{}=", parts[0]);
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "expected three dot-separated parts"),
        ("abc".into(), "expected three dot-separated parts"),
        (
            format!("{}.{}", parts[0], parts[1]),
            "expected three dot-separated parts",
        ),
        (
            format!("{good}.extra.parts"),
            "expected three dot-separated parts",
        ),
        (
            format!("!!!.{}.{}", parts[1], parts[2]),
            "header is not base64url",
        ),
        (
            format!("{padded_header}.{}.{}", parts[1], parts[2]),
            "header is not base64url",
        ),
        (
            format!("{not_json}.{}.{}", parts[1], parts[2]),
            "header is not a JSON object",
        ),
        (
            format!("{array}.{}.{}", parts[1], parts[2]),
            "header is not a JSON object",
        ),
        (
            format!("{}.{}.+/+/", parts[0], parts[1]),
            "signature is not base64url",
        ),
        (
            format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
            "signature is not base64url",
        ),
    ];
    for (token, expected) in cases {
        assert_eq!(
            check(&token),
            Err(JwtError::Malformed(expected)),
            "{token:?}"
        );
    }
    // Correctly signed payloads that are not JSON objects.
    let header = json!({"alg": "RS256", "kid": "rsa-1"});
    for payload in [json!("a string"), json!([1])] {
        assert_eq!(
            check(&sign(&header, &payload, Sig::Rsa(&keys().rsa))),
            Err(JwtError::Malformed("payload is not a JSON object"))
        );
    }
}

#[test]
fn tokens_over_8_kib_are_rejected_before_parsing() {
    let big = with(|c| drop(c.insert("pad".into(), "x".repeat(MAX_TOKEN_LEN).into())));
    assert_eq!(check(&rs256(&big)), Err(JwtError::TooLarge));
    assert_eq!(
        check(&"a".repeat(MAX_TOKEN_LEN + 1)),
        Err(JwtError::TooLarge)
    );
    // Just under the limit is parsed (and fails for another reason).
    assert_eq!(
        check(&"a".repeat(MAX_TOKEN_LEN)),
        Err(JwtError::Malformed("expected three dot-separated parts"))
    );
}

#[test]
fn expiry_with_leeway() {
    let at = |exp: Value| check(&rs256(&with(|c| drop(c.insert("exp".into(), exp)))));
    assert_eq!(
        check(&rs256(&with(|c| drop(c.remove("exp"))))),
        Err(JwtError::MissingExpiry)
    );
    assert!(
        at(json!(NOW - 59)).is_ok(),
        "expired 59 s ago is within the 60 s leeway"
    );
    assert_eq!(at(json!(NOW - 60)), Err(JwtError::Expired));
    assert_eq!(at(json!(NOW - 3600)), Err(JwtError::Expired));
    assert!(
        at(json!((NOW + 10) as f64 + 0.5)).is_ok(),
        "fractional NumericDate"
    );
    assert_eq!(
        at(json!("tomorrow")),
        Err(JwtError::Malformed("exp is not a number"))
    );
    assert_eq!(at(json!(i64::MIN)), Err(JwtError::Expired));
    assert!(at(json!(u64::MAX)).is_ok());
}

#[test]
fn not_before_and_issued_at_with_leeway() {
    let nbf = |v: i64| check(&rs256(&with(|c| drop(c.insert("nbf".into(), v.into())))));
    assert!(nbf(NOW + 60).is_ok());
    assert_eq!(nbf(NOW + 61), Err(JwtError::NotYetValid));
    let iat = |v: i64| check(&rs256(&with(|c| drop(c.insert("iat".into(), v.into())))));
    assert!(iat(NOW + 60).is_ok());
    assert_eq!(iat(NOW + 61), Err(JwtError::IssuedInFuture));
    assert!(check(&rs256(&with(|c| {
        c.remove("nbf");
        c.remove("iat");
    })))
    .is_ok());
    assert_eq!(
        check(&rs256(&with(|c| drop(c.insert("nbf".into(), json!(null)))))),
        Err(JwtError::Malformed("nbf is not a number"))
    );
}

#[test]
fn issuer_and_audience() {
    let set = |k: &str, v: Value| check(&rs256(&with(|c| drop(c.insert(k.into(), v)))));
    assert_eq!(
        set("iss", json!("https://evil.example/")),
        Err(JwtError::WrongIssuer)
    );
    assert_eq!(
        set("iss", json!(format!("{ISSUER}/"))),
        Err(JwtError::WrongIssuer)
    );
    assert_eq!(
        check(&rs256(&with(|c| drop(c.remove("iss"))))),
        Err(JwtError::WrongIssuer)
    );
    assert_eq!(
        set("aud", json!("api://other")),
        Err(JwtError::WrongAudience)
    );
    assert_eq!(
        set("aud", json!(["api://other", "api://third"])),
        Err(JwtError::WrongAudience)
    );
    assert_eq!(set("aud", json!([])), Err(JwtError::WrongAudience));
    assert_eq!(
        check(&rs256(&with(|c| drop(c.remove("aud"))))),
        Err(JwtError::WrongAudience)
    );
    assert!(set("aud", json!([AUDIENCE])).is_ok());
}

#[test]
fn subject() {
    let set = |v: Value| check(&rs256(&with(|c| drop(c.insert("sub".into(), v)))));
    assert_eq!(
        check(&rs256(&with(|c| drop(c.remove("sub"))))),
        Err(JwtError::MissingSubject)
    );
    assert_eq!(set(json!("")), Err(JwtError::MissingSubject));
    assert_eq!(set(json!(42)), Err(JwtError::MissingSubject));
    assert_eq!(set(json!("two words")), Err(JwtError::InvalidSubject));
    assert_eq!(set(json!("line\nbreak")), Err(JwtError::InvalidSubject));
    assert_eq!(
        set(json!("x".repeat(MAX_SUBJECT_LEN)))
            .unwrap()
            .subject
            .len(),
        MAX_SUBJECT_LEN
    );
    assert_eq!(
        set(json!("x".repeat(MAX_SUBJECT_LEN + 1))),
        Err(JwtError::InvalidSubject)
    );
    assert_eq!(
        set(json!("auth0|5f7c8ec7c33c6c004bbafe82"))
            .unwrap()
            .subject,
        "auth0|5f7c8ec7c33c6c004bbafe82"
    );
}

#[test]
fn error_text_never_contains_the_token() {
    let token = rs256(&with(|c| drop(c.insert("exp".into(), json!(NOW - 3600)))));
    let error = check(&token).unwrap_err();
    let shown = format!("{error} {error:?}");
    for part in token.split('.') {
        assert!(!shown.contains(&part[..16]), "{shown}");
    }
}

fn config_with_keys(keys: Value) -> Result<JwtValidator, JwtConfigError> {
    JwtValidator::new(JwtConfig {
        jwks_json: json!({"keys": keys}).to_string(),
        ..config("scp")
    })
}

#[test]
fn jwks_keys_that_cannot_sign_are_skipped() {
    let v = config_with_keys(json!([
        {"kty": "oct", "kid": "sym", "alg": "HS256"},
        {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
        {"kty": "RSA", "kid": "rs512", "alg": "RS512", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"},
        {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "AA"},
        rsa_jwk("rsa-1", &keys().rsa),
    ]))
    .unwrap();
    assert!(v.validate(&rs256(&claims()), NOW).is_ok());
    assert_eq!(format!("{v:?}").matches("rsa-1").count(), 1);
    assert!(!format!("{v:?}").contains("p384"));
}

#[test]
fn jwks_configuration_errors() {
    let small = RsaPrivateKey::new(&mut OsRng, 1024).unwrap();
    let mut with_private = rsa_jwk("rsa-1", &keys().rsa);
    with_private["d"] = json!("AQAB");
    let mut bad_point = ec_jwk("ec-1", &keys().ec);
    bad_point["y"] = bad_point["x"].clone();
    let mut short_point = ec_jwk("ec-1", &keys().ec);
    short_point["x"] = json!("AAAA");
    let mut no_n = rsa_jwk("rsa-1", &keys().rsa);
    no_n.as_object_mut().unwrap().remove("n");
    let mut bad_b64 = rsa_jwk("rsa-1", &keys().rsa);
    bad_b64["e"] = json!("AQAB==");
    let mut no_kid = rsa_jwk("x", &keys().rsa);
    no_kid.as_object_mut().unwrap().remove("kid");
    let bad = |kid: &str, problem| {
        Err(JwtConfigError::BadKey {
            kid: kid.into(),
            problem,
        })
    };
    let cases: Vec<(Value, Result<(), JwtConfigError>)> = vec![
        (json!([]), Err(JwtConfigError::NoUsableKey)),
        (
            json!([{"kty": "oct", "kid": "k"}]),
            Err(JwtConfigError::NoUsableKey),
        ),
        (
            json!([rsa_jwk("small", &small)]),
            bad("small", "RSA modulus is shorter than 2048 bits"),
        ),
        (
            json!([with_private]),
            bad("rsa-1", "contains private or symmetric key material"),
        ),
        (
            json!([{"kty": "oct", "kid": "sym", "k": "c2VjcmV0"}]),
            bad("sym", "contains private or symmetric key material"),
        ),
        (json!([bad_point]), bad("ec-1", "not a point on P-256")),
        (
            json!([short_point]),
            bad("ec-1", "P-256 coordinates must be 32 bytes each"),
        ),
        (
            json!([no_n]),
            bad("rsa-1", "missing a key member (n, e, x or y)"),
        ),
        (
            json!([bad_b64]),
            bad("rsa-1", "a key member is not base64url"),
        ),
        (json!([no_kid]), Err(JwtConfigError::MissingKid(1))),
        (
            json!([rsa_jwk("same", &keys().rsa), ec_jwk("same", &keys().ec)]),
            Err(JwtConfigError::DuplicateKid("same".into())),
        ),
        (json!(["not an object"]), Err(JwtConfigError::JwksShape)),
    ];
    for (keys, expected) in cases {
        assert_eq!(
            config_with_keys(keys.clone()).map(|_| ()),
            expected,
            "{keys}"
        );
    }
    let doc = |json: &str| {
        JwtValidator::new(JwtConfig {
            jwks_json: json.into(),
            ..config("scp")
        })
        .map(|_| ())
    };
    assert!(matches!(doc("{"), Err(JwtConfigError::JwksJson { .. })));
    assert_eq!(doc("[]"), Err(JwtConfigError::JwksShape));
    assert_eq!(doc(r#"{"keys": {}}"#), Err(JwtConfigError::JwksShape));
}

#[test]
fn settings_errors() {
    let err = |c: JwtConfig| JwtValidator::new(c).unwrap_err();
    assert_eq!(
        err(JwtConfig {
            issuer: " ".into(),
            ..config("scp")
        }),
        JwtConfigError::EmptyIssuer
    );
    assert_eq!(
        err(JwtConfig {
            audience: "".into(),
            ..config("scp")
        }),
        JwtConfigError::EmptyAudience
    );
    assert_eq!(
        err(JwtConfig {
            scope_claim: "".into(),
            ..config("scp")
        }),
        JwtConfigError::EmptyScopeClaim
    );
    assert_eq!(
        err(JwtConfig {
            leeway_seconds: 301,
            ..config("scp")
        }),
        JwtConfigError::LeewayTooLarge
    );
    let strict = JwtValidator::new(JwtConfig {
        leeway_seconds: 0,
        ..config("scp")
    })
    .unwrap();
    let c = with(|c| drop(c.insert("exp".into(), json!(NOW))));
    assert_eq!(
        strict.validate(&rs256(&c), NOW),
        Err(JwtError::Expired),
        "exp is exclusive"
    );
    assert!(strict.validate(&rs256(&c), NOW - 1).is_ok());
}
