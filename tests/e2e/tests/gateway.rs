//! The gateway as the single managed entry point: subscriptions, OAuth bearer
//! tokens, scopes, rate limits and quotas, client address allow-list,
//! request hygiene, trace context, forwarding and access logs.
//!
//! Most tests run the probe fixture (a no-op component) in place of the
//! backends, so they judge the gateway alone; the spoofing tests use the
//! real patient-api, whose problem bodies show what reached it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use e2e::spin_test_host::Fault;
use e2e::{built_wasm, random_key, sha256_hex, Reply, Start, TestApp};
use serde_json::{json, Value};

const PATIENT: &str = "5d0e7c9a-3f1b-4c2e-9a8d-1b2c3d4e5f60";
const ISSUER: &str = "https://login.example.test/tenant/v2.0";
const AUDIENCE: &str = "api://patient-records";

// ---------------------------------------------------------------------------
// Helpers

fn patient_path() -> String {
    format!("/patient/{PATIENT}")
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A subscription entry of the `subscriptions` variable (digests only).
fn subscription(
    name: &str,
    primary: &str,
    secondary: &str,
    scopes: &[&str],
    rate: (u32, u32),
    quota: (u32, u32),
) -> Value {
    json!({
        "name": name,
        "primaryKeySha256": sha256_hex(primary),
        "secondaryKeySha256": sha256_hex(secondary),
        "scopes": scopes,
        "rateLimit": {"calls": rate.0, "periodSeconds": rate.1},
        "quota": {"calls": quota.0, "periodSeconds": quota.1},
    })
}

/// An app whose backends are the no-op probe, with extra variables.
fn app_with(vars: &[(&str, String)]) -> TestApp {
    let environment = vars
        .iter()
        .map(|(name, value)| {
            (
                format!("SPIN_VARIABLE_{}", name.to_uppercase()),
                value.clone(),
            )
        })
        .collect();
    TestApp::in_process(Start {
        environment,
        source_overrides: HashMap::from([
            ("patient-api".to_string(), built_wasm("probe")),
            ("audit-api".to_string(), built_wasm("probe")),
        ]),
        ..Start::default()
    })
}

fn probe_app() -> TestApp {
    app_with(&[])
}

fn with_key(app: &TestApp, method: &str, path: &str, key: &str) -> Reply {
    app.send(method, path, &[("ocp-apim-subscription-key", key)], None)
}

fn with_token(app: &TestApp, method: &str, path: &str, token: &str) -> Reply {
    app.send(
        method,
        path,
        &[("authorization", &format!("Bearer {token}"))],
        None,
    )
}

fn assert_problem(reply: &Reply, status: u16) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let body = reply.json();
    assert_eq!(body["status"], status);
    assert_eq!(
        body["correlationId"].as_str(),
        reply.header("x-correlation-id"),
        "the problem carries the response's correlation id"
    );
    body
}

fn header_u64(reply: &Reply, name: &str) -> u64 {
    reply
        .header(name)
        .unwrap_or_else(|| panic!("{name} missing: {:?}", reply.headers))
        .parse()
        .unwrap()
}

/// Sleeps until `margin` after the next multiple of `period` seconds, so a
/// burst of requests falls inside one epoch-aligned window.
fn wait_for_window_start(period: u64, margin: Duration) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let next = (now.as_secs() / period + 1) * period;
    std::thread::sleep(Duration::from_secs(next) - now + margin);
}

// ---------------------------------------------------------------------------
// Test tokens: RSA and P-256 keys made here, their JWKS served through the
// `jwt` section of the gatewaypolicy variable.

struct Keys {
    rsa: rsa::RsaPrivateKey,
    ec: p256::ecdsa::SigningKey,
    /// Not in the JWKS: signs forgeries.
    rogue_rsa: rsa::RsaPrivateKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = rand_core::OsRng;
        Keys {
            rsa: rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap(),
            ec: p256::ecdsa::SigningKey::random(&mut rng),
            rogue_rsa: rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap(),
        }
    })
}

fn jwks() -> String {
    use rsa::traits::PublicKeyParts;
    let k = keys();
    let public = k.rsa.to_public_key();
    let point = k.ec.verifying_key().to_encoded_point(false);
    json!({"keys": [
        {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
         "n": B64.encode(public.n().to_bytes_be()), "e": B64.encode(public.e().to_bytes_be())},
        {"kty": "EC", "kid": "ec-1", "use": "sig", "alg": "ES256", "crv": "P-256",
         "x": B64.encode(point.x().unwrap()), "y": B64.encode(point.y().unwrap())},
    ]})
    .to_string()
}

/// A `gatewaypolicy` accepting tokens from the test issuer, plus `extra`
/// members.
fn jwt_policy(extra: Value) -> (&'static str, String) {
    let mut policy = json!({"jwt": {"jwks": serde_json::from_str::<Value>(&jwks()).unwrap(),
                                    "issuer": ISSUER, "audience": AUDIENCE}});
    for (name, value) in extra.as_object().unwrap() {
        policy[name] = value.clone();
    }
    policy_var(policy)
}

/// The `gatewaypolicy` variable holding `policy`.
fn policy_var(policy: Value) -> (&'static str, String) {
    ("gatewaypolicy", policy.to_string())
}

fn jwt_vars() -> Vec<(&'static str, String)> {
    vec![jwt_policy(json!({}))]
}

fn claims(scopes: &str) -> Value {
    let now = unix_now();
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "app-42", "iat": now - 10, "nbf": now - 10,
           "exp": now + 600, "scp": scopes})
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}

fn rs256_with(key: &rsa::RsaPrivateKey, kid: &str, claims: &Value) -> String {
    use rsa::signature::{SignatureEncoding, Signer};
    let input = signing_input(&json!({"alg": "RS256", "typ": "JWT", "kid": kid}), claims);
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
    let signature = signer.sign(input.as_bytes()).to_bytes();
    format!("{input}.{}", B64.encode(signature))
}

fn rs256(claims: &Value) -> String {
    rs256_with(&keys().rsa, "rsa-1", claims)
}

fn es256(claims: &Value) -> String {
    use p256::ecdsa::signature::Signer;
    let input = signing_input(
        &json!({"alg": "ES256", "typ": "JWT", "kid": "ec-1"}),
        claims,
    );
    let signature: p256::ecdsa::Signature = keys().ec.sign(input.as_bytes());
    format!("{input}.{}", B64.encode(signature.to_bytes()))
}

// ---------------------------------------------------------------------------
// Subscriptions

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn subscription_keys_authenticate_and_scopes_authorize() {
    let app = probe_app();
    let path = patient_path();
    let reader = &app.secrets.subscriptions["reader"];

    let missing = app.get(&path, &[]);
    assert_problem(&missing, 401);
    let challenge = missing.header("www-authenticate").expect("challenge");
    assert!(
        challenge.contains(r#"SubscriptionKey realm="patient-records""#),
        "{challenge}"
    );
    assert_eq!(missing.json()["detail"], "Credentials are missing.");

    let wrong = with_key(&app, "GET", &path, "not-a-key");
    assert_problem(&wrong, 401);
    assert!(wrong.header("www-authenticate").is_some());
    assert_eq!(wrong.json()["detail"], "Credentials are invalid.");
    assert!(
        wrong.header("ratelimit-limit").is_none(),
        "unauthenticated requests are not counted"
    );

    let primary = with_key(&app, "GET", &path, &reader.primary);
    assert_eq!(primary.status, 200, "{}", primary.text());
    assert_eq!(
        primary.json(),
        json!({"outcome": "noop"}),
        "the backend answered"
    );
    let secondary = with_key(&app, "GET", &path, &reader.secondary);
    assert_eq!(secondary.status, 200);
    let query = app.get(&format!("{path}?subscription-key={}", reader.primary), &[]);
    assert_eq!(query.status, 200, "key in the query string");

    // Valid key, scope not granted: 403, no challenge for a key.
    let forbidden = app.send(
        "POST",
        "/patient",
        &[
            ("ocp-apim-subscription-key", &reader.primary),
            ("content-type", "application/json"),
        ],
        Some(b"{}"),
    );
    let body = assert_problem(&forbidden, 403);
    assert!(body["detail"].as_str().unwrap().contains("patients.write"));
    assert!(forbidden.header("www-authenticate").is_none());
    let auditor_on_patients = with_key(&app, "GET", &path, app.key("auditor"));
    assert_problem(&auditor_on_patients, 403);
    let clinic_on_audit = with_key(
        &app,
        "GET",
        "/audit/verify?resourceType=patient&resourceId=x",
        app.key("clinic"),
    );
    assert_problem(&clinic_on_audit, 403);
    let auditor_on_audit = with_key(
        &app,
        "GET",
        "/audit/verify?resourceType=patient&resourceId=x",
        app.key("auditor"),
    );
    assert_eq!(auditor_on_audit.status, 200);
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn a_credential_header_sent_twice_is_refused() {
    let app = probe_app();
    let key = app.key("reader").to_string();
    let reply = app.send(
        "GET",
        &patient_path(),
        &[
            ("ocp-apim-subscription-key", &key),
            ("ocp-apim-subscription-key", "other"),
        ],
        None,
    );
    assert_problem(&reply, 400);
}

// ---------------------------------------------------------------------------
// OAuth 2.0 bearer tokens

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn bearer_tokens_are_validated_strictly() {
    let app = app_with(&jwt_vars());
    let path = patient_path();
    let now = unix_now();
    let call = |token: &str| with_token(&app, "GET", &path, token);
    let refused = |token: &str, what: &str| {
        let reply = call(token);
        assert_eq!(reply.status, 401, "{what}: {}", reply.text());
        let challenge = reply
            .header("www-authenticate")
            .unwrap_or_default()
            .to_string();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{what}: {challenge}"
        );
        assert_eq!(reply.json()["detail"], "Credentials are invalid.", "{what}");
    };

    // Valid tokens, RS256 and ES256; clock skew up to 60 s is tolerated.
    assert_eq!(call(&rs256(&claims("patients.read"))).status, 200);
    assert_eq!(
        call(&es256(&claims("patients.read patients.write"))).status,
        200
    );
    let mut c = claims("patients.read");
    c["exp"] = json!(now - 30);
    assert_eq!(
        call(&rs256(&c)).status,
        200,
        "expired 30 s ago: within the skew"
    );

    // Valid token without the role: 403 with an insufficient_scope challenge.
    let forbidden = call(&rs256(&claims("patients.write audit.read")));
    assert_problem(&forbidden, 403);
    let challenge = forbidden.header("www-authenticate").unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#) && challenge.contains("patients.read"),
        "{challenge}"
    );

    // Forged: signed by a key not in the JWKS under a configured kid.
    refused(
        &rs256_with(&keys().rogue_rsa, "rsa-1", &claims("patients.read")),
        "forged signature",
    );
    // Tampered payload with the original signature.
    let good = rs256(&claims("patients.read"));
    let parts: Vec<&str> = good.split('.').collect();
    let mut escalated = claims("patients.read");
    escalated["sub"] = json!("someone-else");
    refused(
        &format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(escalated.to_string()),
            parts[2]
        ),
        "tampered payload",
    );

    let mut c = claims("patients.read");
    c["exp"] = json!(now - 120);
    refused(&rs256(&c), "expired");
    let mut c = claims("patients.read");
    c["nbf"] = json!(now + 300);
    refused(&rs256(&c), "not yet valid");
    let mut c = claims("patients.read");
    c["iat"] = json!(now + 300);
    refused(&rs256(&c), "issued in the future");
    let mut c = claims("patients.read");
    c.as_object_mut().unwrap().remove("exp");
    refused(&rs256(&c), "no exp");
    let mut c = claims("patients.read");
    c["aud"] = json!("api://something-else");
    refused(&rs256(&c), "wrong audience");
    let mut c = claims("patients.read");
    c["iss"] = json!("https://evil.example.test/");
    refused(&rs256(&c), "wrong issuer");

    let payload = B64.encode(claims("patients.read").to_string());
    let none = format!(
        "{}.{payload}.",
        B64.encode(json!({"alg": "none", "typ": "JWT"}).to_string())
    );
    refused(&none, "alg none");
    let hs = {
        use hmac_free::hs256;
        let header = B64.encode(json!({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).to_string());
        let input = format!("{header}.{payload}");
        format!("{input}.{}", B64.encode(hs256(b"secret", input.as_bytes())))
    };
    refused(&hs, "HMAC");
    refused(
        &rs256_with(&keys().rsa, "rsa-unknown", &claims("patients.read")),
        "unknown kid",
    );
    let mut c = claims("patients.read");
    c["padding"] = json!("x".repeat(9000));
    refused(&rs256(&c), "over 8 KiB");
    refused("not.a.jwt", "garbage");

    // Under the default policy (either), a wrong key next to a good token is
    // still a wrong credential.
    let reply = app.send(
        "GET",
        &path,
        &[
            (
                "authorization",
                &format!("Bearer {}", rs256(&claims("patients.read"))),
            ),
            ("ocp-apim-subscription-key", "wrong"),
        ],
        None,
    );
    assert_eq!(reply.status, 401);
}

/// HMAC-SHA256 for the HS256 forgery, without another dependency.
mod hmac_free {
    use sha2::{Digest, Sha256};

    pub fn hs256(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut block = [0u8; 64];
        block[..key.len()].copy_from_slice(key);
        let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
        let inner = Sha256::new()
            .chain_update(pad(0x36))
            .chain_update(message)
            .finalize();
        Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize()
            .to_vec()
    }
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn both_credentials_can_be_required_together() {
    let app = app_with(&[jwt_policy(json!({"credentials": "both"}))]);
    let key = app.key("clinic").to_string();
    let token = rs256(&claims("patients.read"));
    let path = patient_path();

    let key_only = with_key(&app, "GET", &path, &key);
    assert_problem(&key_only, 401);
    let challenge = key_only.header("www-authenticate").unwrap();
    assert!(
        challenge.contains("Bearer") && challenge.contains("SubscriptionKey"),
        "{challenge}"
    );
    assert_problem(&with_token(&app, "GET", &path, &token), 401);
    let both = app.send(
        "GET",
        &path,
        &[
            ("ocp-apim-subscription-key", &key),
            ("authorization", &format!("Bearer {token}")),
        ],
        None,
    );
    assert_eq!(both.status, 200, "{}", both.text());
    // The scopes are the intersection: the key grants write, the token not.
    let write = app.send(
        "POST",
        "/patient",
        &[
            ("ocp-apim-subscription-key", &key),
            ("authorization", &format!("Bearer {token}")),
        ],
        Some(b"{}"),
    );
    assert_problem(&write, 403);

    let host = app.host();
    let actors: Vec<String> = access_lines(host)
        .iter()
        .filter(|l| l["status"] == 200)
        .map(|l| l["actor"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actors, vec!["clinic/token:app-42".to_string()]);
}

/// The actor of the audit records of one resource, oldest first.
fn recorded_actors(app: &TestApp, kind: &str, id: &str) -> Vec<String> {
    let records = with_key(
        app,
        "GET",
        &format!("/audit/records?resourceType={kind}&resourceId={id}"),
        app.key("auditor"),
    );
    assert_eq!(records.status, 200, "{}", records.text());
    records
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["actor"].as_str().unwrap().to_string())
        .collect()
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn the_longest_actor_the_gateway_names_is_recorded_and_a_longer_subject_is_a_401() {
    // The real backends: the audit register must accept what the gateway names.
    let app = TestApp::in_process(Start {
        environment: jwt_vars()
            .into_iter()
            .map(|(name, value)| (format!("SPIN_VARIABLE_{}", name.to_uppercase()), value))
            .collect(),
        ..Start::default()
    });
    let host = app.host();
    // A subscription with the longest name, beside the usual ones.
    let name = "n".repeat(64);
    let key = random_key();
    let mut subscriptions: Vec<Value> =
        serde_json::from_str(&app.secrets.variables["subscriptions"]).unwrap();
    subscriptions.push(subscription(
        &name,
        &key,
        &random_key(),
        &["patients.read", "patients.write"],
        (1000, 60),
        (100_000, 86400),
    ));
    host.app
        .set_variable("subscriptions", &Value::Array(subscriptions).to_string())
        .unwrap();
    let mut longest = claims("patients.read patients.write");
    let subject = "s".repeat(256);
    longest["sub"] = json!(subject);
    let token = rs256(&longest);

    // Both credentials, longest name and subject: 327 characters, recorded.
    let created = app.send(
        "POST",
        "/patient",
        &[
            ("ocp-apim-subscription-key", &key),
            ("authorization", &format!("Bearer {token}")),
        ],
        Some(
            br#"{"firstName":"Ana","gender":"female","dateOfBirth":"1980-02-29","postCode":"2100"}"#,
        ),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_string();
    // The token alone: `token:<256 characters>`.
    let read = with_token(&app, "GET", &format!("/patient/{id}"), &token);
    assert_eq!(read.status, 200, "{}", read.text());
    let both = format!("{name}/token:{subject}");
    assert_eq!(both.len(), 327);
    assert_eq!(
        recorded_actors(&app, "patient", &id),
        vec![both, format!("token:{subject}")]
    );

    // One character more is refused by the gateway, and nothing goes further.
    host.settle();
    let backend_lines = || {
        host.app
            .logs()
            .iter()
            .filter(|l| l.component != "gateway")
            .count()
    };
    let before = backend_lines();
    let mut longer = longest.clone();
    longer["sub"] = json!("s".repeat(257));
    for headers in [
        vec![("authorization", format!("Bearer {}", rs256(&longer)))],
        vec![
            ("ocp-apim-subscription-key", key.clone()),
            ("authorization", format!("Bearer {}", rs256(&longer))),
        ],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let refused = app.send("GET", &format!("/patient/{id}"), &headers, None);
        let body = assert_problem(&refused, 401);
        assert_eq!(body["detail"], "Credentials are invalid.");
        assert!(!refused.text().contains("x-actor"));
        assert!(refused
            .header("www-authenticate")
            .unwrap()
            .contains(r#"error="invalid_token""#));
    }
    host.settle();
    assert_eq!(
        backend_lines(),
        before,
        "no backend saw the refused requests"
    );
    assert_eq!(recorded_actors(&app, "patient", &id).len(), 2);
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn token_only_callers_are_limited_per_subject() {
    let app = app_with(&[jwt_policy(
        json!({"credentials": "jwt", "tokenLimits": {"rate": "2/60"}}),
    )]);
    if unix_now() % 60 > 50 {
        wait_for_window_start(60, Duration::from_millis(50));
    }
    let token = rs256(&claims("patients.read"));
    let path = patient_path();
    // A key is ignored under `jwt`: it does not authenticate.
    assert_problem(&with_key(&app, "GET", &path, app.key("admin")), 401);
    let first = with_token(&app, "GET", &path, &token);
    assert_eq!(first.status, 200);
    assert_eq!(header_u64(&first, "ratelimit-limit"), 2);
    assert_eq!(with_token(&app, "GET", &path, &token).status, 200);
    let third = with_token(&app, "GET", &path, &token);
    assert_problem(&third, 429);
    // Another subject has its own counter.
    let mut other = claims("patients.read");
    other["sub"] = json!("app-43");
    assert_eq!(with_token(&app, "GET", &path, &rs256(&other)).status, 200);
}

// ---------------------------------------------------------------------------
// Rate limits and quotas

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn the_rate_limit_is_reached_exactly_at_the_limit_and_resets_after_the_period() {
    let key = random_key();
    let subs = json!([subscription(
        "burst",
        &key,
        &random_key(),
        &["patients.read"],
        (5, 3),
        (1000, 86400)
    )]);
    let app = app_with(&[("subscriptions", subs.to_string())]);
    let path = patient_path();
    wait_for_window_start(3, Duration::from_millis(30));
    for expected_remaining in (0..5).rev() {
        let reply = with_key(&app, "GET", &path, &key);
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(header_u64(&reply, "ratelimit-limit"), 5);
        assert_eq!(
            header_u64(&reply, "ratelimit-remaining"),
            expected_remaining
        );
        let reset = header_u64(&reply, "ratelimit-reset");
        assert!((1..=3).contains(&reset), "{reset}");
        assert!(reply.header("retry-after").is_none());
    }
    let over = with_key(&app, "GET", &path, &key);
    assert_problem(&over, 429);
    assert_eq!(header_u64(&over, "ratelimit-remaining"), 0);
    let retry_after = header_u64(&over, "retry-after");
    assert!((1..=3).contains(&retry_after), "{retry_after}");
    // Waiting Retry-After is always enough: the next window starts fresh.
    std::thread::sleep(Duration::from_secs(retry_after));
    let again = with_key(&app, "GET", &path, &key);
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(header_u64(&again, "ratelimit-remaining"), 4);
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn concurrent_requests_cannot_overshoot_the_limit() {
    let key = random_key();
    let subs = json!([subscription(
        "busy",
        &key,
        &random_key(),
        &["patients.read"],
        (10, 60),
        (1000, 86400)
    )]);
    let app = app_with(&[("subscriptions", subs.to_string())]);
    let path = patient_path();
    // Keep the burst inside one 60 s window.
    if unix_now() % 60 > 45 {
        wait_for_window_start(60, Duration::from_millis(50));
    }
    let passed = AtomicUsize::new(0);
    let refused = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..4 {
                    match with_key(&app, "GET", &path, &key).status {
                        200 => passed.fetch_add(1, Ordering::SeqCst),
                        429 => refused.fetch_add(1, Ordering::SeqCst),
                        other => panic!("unexpected {other}"),
                    };
                }
            });
        }
    });
    assert_eq!(
        passed.load(Ordering::SeqCst),
        10,
        "exactly the limit passes: overshoot 0"
    );
    assert_eq!(refused.load(Ordering::SeqCst), 22);
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn the_quota_is_enforced_independently_of_the_rate_limit() {
    let key = random_key();
    let subs = json!([subscription(
        "small",
        &key,
        &random_key(),
        &["patients.read"],
        (100, 60),
        (3, 86400)
    )]);
    let app = app_with(&[("subscriptions", subs.to_string())]);
    let path = patient_path();
    for remaining in [2, 1, 0] {
        let reply = with_key(&app, "GET", &path, &key);
        assert_eq!(reply.status, 200);
        // The quota is the most restrictive limit: the headers describe it.
        assert_eq!(header_u64(&reply, "ratelimit-limit"), 3);
        assert_eq!(header_u64(&reply, "ratelimit-remaining"), remaining);
    }
    let over = with_key(&app, "GET", &path, &key);
    assert_problem(&over, 429);
    assert_eq!(header_u64(&over, "ratelimit-limit"), 3);
    let retry_after = header_u64(&over, "retry-after");
    let until_midnight = 86_400 - (unix_now() % 86_400) as u64;
    assert!(
        retry_after.abs_diff(until_midnight) <= 2,
        "{retry_after} vs {until_midnight}"
    );
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn limits_fail_closed_when_the_store_fails() {
    let app = probe_app();
    let host = app.host();
    let key = app.key("reader").to_string();
    assert_eq!(with_key(&app, "GET", &patient_path(), &key).status, 200);
    let store =
        rusqlite::Connection::open(host.app.state_dir().join("sqlite_key_value.db")).unwrap();
    store.execute_batch("DROP TABLE spin_key_value").unwrap();
    let reply = with_key(&app, "GET", &patient_path(), &key);
    assert_problem(&reply, 503);
    assert!(reply.header("retry-after").is_some());
}

// ---------------------------------------------------------------------------
// Key rotation

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn rotating_both_keys_under_load_never_refuses_a_client_that_switches_keys() {
    let app = probe_app();
    let host = app.host();
    let scopes = ["patients.read"];
    let limits = ((100_000, 60), (1_000_000, 86_400));
    let (p1, s1, s2, p2) = (random_key(), random_key(), random_key(), random_key());
    let set = |primary: &str, secondary: &str| {
        let subs = json!([subscription(
            "rotating", primary, secondary, &scopes, limits.0, limits.1
        )]);
        host.app
            .set_variable("subscriptions", &subs.to_string())
            .unwrap();
    };
    set(&p1, &s1);
    let current = Mutex::new(p1.clone());
    let stop = AtomicBool::new(false);
    let statuses = Mutex::new(Vec::new());
    let path = patient_path();
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    let key = current.lock().unwrap().clone();
                    let status = with_key(&app, "GET", &path, &key).status;
                    statuses.lock().unwrap().push(status);
                }
            });
        }
        let pause = || std::thread::sleep(Duration::from_millis(300));
        pause();
        set(&p1, &s2); // 1. replace the secondary (the client uses the primary)
        pause();
        *current.lock().unwrap() = s2.clone(); // 2. the client switches to the new secondary
        pause();
        set(&p2, &s2); // 3. replace the primary
        pause();
        *current.lock().unwrap() = p2.clone(); // 4. the client may move to the new primary
        pause();
        stop.store(true, Ordering::SeqCst);
    });
    let statuses = statuses.into_inner().unwrap();
    assert!(
        statuses.len() >= 10,
        "requests ran throughout: {}",
        statuses.len()
    );
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // The retired keys no longer work.
    assert_eq!(with_key(&app, "GET", &path, &p1).status, 401);
    assert_eq!(with_key(&app, "GET", &path, &s1).status, 401);
}

// ---------------------------------------------------------------------------
// Client address allow-list, body size, methods

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn clients_outside_the_allow_list_are_refused() {
    let outside = app_with(&[policy_var(
        json!({"clientAllowList": ["10.0.0.0/8", "192.168.0.0/16"]}),
    )]);
    let key = outside.key("reader").to_string();
    assert_problem(&with_key(&outside, "GET", &patient_path(), &key), 403);
    assert_problem(&outside.get("/openapi.json", &[]), 403);
    assert_eq!(
        outside.get("/health", &[]).status,
        200,
        "liveness probes stay open"
    );

    let inside = app_with(&[policy_var(
        json!({"clientAllowList": ["10.0.0.0/8", "127.0.0.1"]}),
    )]);
    let key = inside.key("reader").to_string();
    assert_eq!(with_key(&inside, "GET", &patient_path(), &key).status, 200);
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn forwarded_for_counts_only_from_a_trusted_proxy() {
    let via = |app: &TestApp, forwarded: &[&str]| {
        let key = app.key("reader").to_string();
        let mut headers = vec![("ocp-apim-subscription-key", key.as_str())];
        headers.extend(forwarded.iter().map(|v| ("x-forwarded-for", *v)));
        app.send("GET", &patient_path(), &headers, None).status
    };
    // The test client (127.0.0.1) is no proxy here: what it writes in
    // x-forwarded-for is ignored, so it cannot claim an allowed address.
    let direct = app_with(&[policy_var(json!({"clientAllowList": ["10.0.0.0/8"]}))]);
    assert_eq!(via(&direct, &["10.1.2.3"]), 403);
    assert_eq!(via(&direct, &[]), 403);

    // Behind a trusted proxy (the test client plays the ingress), the
    // nearest entry the proxy appended is the client.
    let proxied = app_with(&[policy_var(json!({
        "clientAllowList": ["10.0.0.0/8"], "trustedProxies": ["127.0.0.0/8"]}))]);
    assert_eq!(via(&proxied, &["10.1.2.3"]), 200);
    assert_eq!(via(&proxied, &["192.0.2.1"]), 403);
    // A client's own entry stays to the left of what the proxy appended.
    assert_eq!(via(&proxied, &["10.1.2.3, 192.0.2.1"]), 403);
    assert_eq!(via(&proxied, &["10.1.2.3", "192.0.2.1"]), 403);
    assert_eq!(via(&proxied, &["192.0.2.1, 10.1.2.3"]), 200);
    // A proxy that says nothing, or garbage where the client should be.
    assert_eq!(via(&proxied, &[]), 403);
    assert_eq!(via(&proxied, &["10.1.2.3, not-an-address"]), 403);
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn an_unusable_policy_fails_closed_and_names_the_member() {
    let app = app_with(&[policy_var(json!({"maxBodyByte": 1024}))]);
    let key = app.key("reader").to_string();
    assert_problem(&with_key(&app, "GET", &patient_path(), &key), 503);
    assert_eq!(
        app.get("/health", &[]).status,
        200,
        "liveness needs no policy"
    );
    let logged: Vec<String> = app.host().app.logs().into_iter().map(|l| l.line).collect();
    assert!(
        logged
            .iter()
            .any(|l| l.contains("gatewaypolicy `maxBodyByte`: unknown member")),
        "{logged:?}"
    );
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn oversized_bodies_are_refused_with_413() {
    let app = app_with(&[policy_var(json!({"maxBodyBytes": 1024}))]);
    let key = app.key("clinic").to_string();
    let send = |size: usize| {
        app.send(
            "POST",
            "/patient",
            &[
                ("ocp-apim-subscription-key", &key),
                ("content-type", "application/json"),
            ],
            Some(&vec![b' '; size]),
        )
    };
    assert_eq!(send(1024).status, 200, "at the limit");
    assert_problem(&send(1025), 413);
    // (Larger bodies are refused the same way, by their declared length;
    // this one fits the socket buffer, so the client is not cut off while
    // still writing.)
    assert_problem(&send(8 << 10), 413);

    // A chunked body declares no length: the gateway counts as it reads.
    let address = app.base_url.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    let head = format!(
        "POST /patient HTTP/1.1\r\nhost: {address}\r\nocp-apim-subscription-key: {key}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    for _ in 0..3 {
        let chunk = format!("{:x}\r\n{}\r\n", 1000, " ".repeat(1000));
        if stream.write_all(chunk.as_bytes()).is_err() {
            break; // the gateway may answer and close before the end
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn a_body_that_does_not_arrive_in_time_is_a_408() {
    let app = app_with(&[policy_var(json!({"bodyTimeoutSeconds": 1}))]);
    let key = app.key("clinic").to_string();
    let address = app.base_url.trim_start_matches("http://").to_string();
    // Declares 100 bytes, sends 10, then waits: the slow-body attack.
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let head = format!(
        "POST /patient HTTP/1.1\r\nhost: {address}\r\nocp-apim-subscription-key: {key}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"firstNam"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut response = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&response).contains("\r\n\r\n{") {
        let n = stream
            .read(&mut buffer)
            .expect("an answer before the read timeout");
        assert!(n > 0, "closed without an answer");
        response.extend_from_slice(&buffer[..n]);
    }
    let response = String::from_utf8_lossy(&response).to_string();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("application/problem+json"), "{response}");
    // Nothing reached the backend, and the access log says why.
    assert!(access_lines(app.host())
        .iter()
        .any(|l| l["status"] == 408 && l["reason"] == "body_timeout"));

    // A body that arrives slowly but in time is read as usual.
    let slow = app_with(&[policy_var(json!({"bodyTimeoutSeconds": 5}))]);
    let key = slow.key("clinic").to_string();
    let address = slow.base_url.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    let body = b"{}";
    let head = format!(
        "POST /patient HTTP/1.1\r\nhost: {address}\r\nocp-apim-subscription-key: {key}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(&body[..1]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(&body[1..]).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn routes_answer_only_their_methods() {
    let app = probe_app();
    let key = app.key("admin").to_string();
    let reply = with_key(&app, "GET", "/patient", &key);
    assert_problem(&reply, 405);
    assert_eq!(reply.header("allow"), Some("POST"));
    let reply = with_key(&app, "DELETE", &patient_path(), &key);
    assert_problem(&reply, 405);
    assert_eq!(reply.header("allow"), Some("GET, PUT"));
    assert_eq!(
        with_key(&app, "GET", "/patient/search", &key).header("allow"),
        Some("POST")
    );
    for path in [
        "/patients",
        "/patient/",
        &format!("/patient/{PATIENT}/"),
        "/patient/a%2Fb",
        "/patient/../audit/records",
    ] {
        assert_problem(&with_key(&app, "GET", path, &key), 404);
    }
}

// ---------------------------------------------------------------------------
// Trace context, spoofing, forwarding

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn trace_context_is_continued_or_started() {
    let app = probe_app();
    let key = app.key("reader").to_string();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let reply = app.send(
        "GET",
        &patient_path(),
        &[
            ("ocp-apim-subscription-key", &key),
            ("traceparent", &format!("00-{trace_id}-00f067aa0ba902b7-01")),
        ],
        None,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-correlation-id"), Some(trace_id));
    for invalid in [
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
    ] {
        let reply = app.send(
            "GET",
            &patient_path(),
            &[
                ("ocp-apim-subscription-key", &key),
                ("traceparent", invalid),
            ],
            None,
        );
        assert_eq!(
            reply.status, 200,
            "an invalid traceparent is not a client error"
        );
        let id = reply.header("x-correlation-id").unwrap();
        assert!(
            id.len() == 32
                && id
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                && id != "0".repeat(32),
            "{id}"
        );
    }
    // Every response has one, errors included.
    let reply = app.get("/nowhere", &[]);
    assert_eq!(reply.header("x-correlation-id").map(str::len), Some(32));
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn spoofed_internal_headers_never_reach_a_backend() {
    // The real patient-api: its answers show what it received.
    let app = TestApp::start();
    let host = app.host();
    let key = app.key("clinic").to_string();
    let real_host_key = app.secrets.variables["patientapiprimarykey"].clone();
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let spoofs = [
        ("x-correlation-id", "spoofed-correlation"),
        ("x-actor", "mallory"),
        ("spin-client-addr", "10.1.2.3:4"),
        ("x-forwarded-for", "10.1.2.3"),
        (
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
    ];
    let mut headers: Vec<(&str, &str)> = vec![("ocp-apim-subscription-key", &key)];
    headers.extend(spoofs);
    let reply = app.send("GET", &patient_path(), &headers, None);
    // Whatever the backend answers (404, or 501/503 while it is being
    // built), its problem body names the correlation id it received: the
    // gateway's trace id, never the client's x-correlation-id.
    assert!(reply.status >= 400, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["correlationId"], trace_id, "{body}");
    assert_eq!(reply.header("x-correlation-id"), Some(trace_id));

    // x-functions-key: with the gateway's own key made stale, a client that
    // sends the right key gets nothing: the backend only ever sees the
    // gateway's key (and refuses it, which the gateway reports as 502).
    host.app.set_variable("patientapikey", "stale-key").unwrap();
    let reply = app.send(
        "GET",
        &patient_path(),
        &[
            ("ocp-apim-subscription-key", &key),
            ("x-functions-key", &real_host_key),
        ],
        None,
    );
    assert_problem(&reply, 502);
    host.app
        .set_variable("patientapikey", &real_host_key)
        .unwrap();

    // x-actor: the audit register records the authenticated subscription.
    let created = app.send(
        "POST",
        "/patient",
        &[("ocp-apim-subscription-key", &key), ("content-type", "application/json"), ("x-actor", "mallory")],
        Some(json!({"firstName": "Ana", "gender": "female", "dateOfBirth": "1980", "postCode": "2100"}).to_string().as_bytes()),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_string();
    let records = with_key(
        &app,
        "GET",
        &format!("/audit/records?resourceType=patient&resourceId={id}"),
        app.key("admin"),
    );
    assert_eq!(records.status, 200, "{}", records.text());
    let records = records.json();
    let actors: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["actor"].as_str().unwrap())
        .collect();
    assert!(!actors.is_empty());
    assert!(actors.iter().all(|a| *a == "clinic"), "{actors:?}");
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn backend_answers_pass_back_with_only_the_contract_headers() {
    let app = probe_app();
    let host = app.host();
    host.set_fault(
        "patient-api",
        Some(Fault::Respond {
            status: 201,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("etag".into(), "\"v1\"".into()),
                ("location".into(), format!("/patient/{PATIENT}")),
                ("x-continuation-token".into(), "next-page".into()),
                ("retry-after".into(), "7".into()),
                ("set-cookie".into(), "session=1".into()),
                ("x-correlation-id".into(), "from-the-backend".into()),
                ("server".into(), "internal".into()),
            ],
            body: "{\"id\":\"x\"}".into(),
            times: Some(1),
        }),
    );
    let reply = with_key(&app, "POST", "/patient", app.key("clinic"));
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body, b"{\"id\":\"x\"}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("etag"), Some("\"v1\""));
    assert_eq!(
        reply.header("location"),
        Some(format!("/patient/{PATIENT}").as_str())
    );
    assert_eq!(reply.header("x-continuation-token"), Some("next-page"));
    assert_eq!(reply.header("retry-after"), Some("7"));
    // The backend said nothing about caching: the gateway says no-store.
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert!(reply.header("set-cookie").is_none() && reply.header("server").is_none());
    assert_eq!(reply.header("x-correlation-id").map(str::len), Some(32));
    assert!(reply.header("ratelimit-remaining").is_some());
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn a_slow_backend_is_a_504_and_a_down_one_a_503() {
    let app = app_with(&[policy_var(json!({"backendTimeoutSeconds": 1}))]);
    let host = app.host();
    let key = app.key("reader").to_string();
    host.set_fault("patient-api", Some(Fault::Delay(Duration::from_secs(3))));
    let started = std::time::Instant::now();
    let reply = with_key(&app, "GET", &patient_path(), &key);
    assert_problem(&reply, 504);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    host.set_fault("patient-api", Some(Fault::Refuse));
    let reply = with_key(&app, "GET", &patient_path(), &key);
    assert_problem(&reply, 503);
    assert!(reply.header("retry-after").is_some());
    assert!(
        reply.header("ratelimit-limit").is_some(),
        "counted requests carry RateLimit headers"
    );
}

// ---------------------------------------------------------------------------
// Access logs

fn access_lines(host: &e2e::Host) -> Vec<Value> {
    host.app
        .logs()
        .iter()
        .filter(|l| l.component == "gateway" && l.stream == "stderr")
        .filter_map(|l| serde_json::from_str::<Value>(&l.line).ok())
        .filter(|v| v["event"] == "access")
        .collect()
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn one_structured_log_line_per_request_without_secrets_or_patient_data() {
    let app = app_with(&jwt_vars());
    let host = app.host();
    let key = app.key("reader").to_string();
    let token = rs256(&claims("patients.read"));
    let query_key = app.key("clinic").to_string();
    let replies = [
        with_key(&app, "GET", &patient_path(), &key),
        with_token(&app, "GET", &format!("/patient/{PATIENT}/tests"), &token),
        app.get(
            &format!("/patient/{PATIENT}?subscription-key={query_key}"),
            &[],
        ),
        with_key(&app, "GET", &patient_path(), "wrong-key"),
        app.get("/health", &[]),
    ];
    let lines = access_lines(host);
    assert_eq!(lines.len(), replies.len(), "{lines:?}");
    for (line, reply) in lines.iter().zip(&replies) {
        assert_eq!(
            line["correlationId"].as_str(),
            reply.header("x-correlation-id")
        );
        assert_eq!(line["status"], reply.status);
        assert!(line["durationMs"].is_u64());
        assert_eq!(line["method"], "GET");
    }
    assert_eq!(lines[0]["actor"], "reader");
    assert_eq!(lines[0]["route"], "/patient/{patientId}");
    assert_eq!(lines[1]["actor"], "token:app-42");
    assert_eq!(lines[1]["route"], "/patient/{patientId}/tests");
    assert_eq!(lines[2]["actor"], "clinic");
    assert_eq!(lines[3]["actor"], Value::Null);
    assert_eq!(lines[3]["reason"], "unknown_subscription_key");
    assert_eq!(lines[4]["route"], "/health");
    let everything: String = host
        .app
        .logs()
        .iter()
        .map(|l| format!("{}\n", l.line))
        .collect();
    for secret in [
        key.as_str(),
        token.as_str(),
        query_key.as_str(),
        PATIENT,
        "wrong-key",
    ] {
        assert!(!everything.contains(secret), "a log line holds {secret}");
    }
    for secret in app.secrets.variables.values() {
        assert!(!everything.contains(secret.as_str()));
    }
}
