//! No secret leaves the app: after a scenario that drives many error paths
//! (wrong and near-miss keys, bad and forged tokens, store and audit-api
//! down, a store answering with its own error text, broken configuration,
//! bad input, direct calls to the private components with wrong keys), no
//! response body, no response header, no component log line and no stored
//! document holds a key, a token or a connection secret (nor does a log line
//! hold a member name a client made up), nor a recognisable
//! part or encoding of one: the first 12 characters, the base64/base64url/
//! hex forms of the decoded key bytes (the Cosmos key above all), and the
//! SHA-256 digests of the subscription keys that the `subscriptions`
//! variable holds.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use e2e::{sha256_hex, Reply, Start, TestApp};
use serde_json::{json, Value};
use spin_test_host::Fault;

const ISSUER: &str = "https://login.example.test/secrets/v2.0";
const AUDIENCE: &str = "api://patient-records";
const KID: &str = "secrets-ec-1";
/// A marker the faulted store puts in its error text; it must not travel on.
const STORE_CANARY: &str = "store-canary-7d1c9e";
/// A member name a client sends (it could be patient data): never logged.
const MEMBER_CANARY: &str = "Vandersloot1961";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An ES256 token signed with `key`.
fn token(key: &p256::ecdsa::SigningKey, claims: &Value) -> String {
    use p256::ecdsa::signature::Signer;
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": KID});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature: p256::ecdsa::Signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

fn claims(scopes: &str, exp_offset: i64) -> Value {
    let now = now();
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "svc-secrets", "iat": now - 5, "nbf": now - 5,
           "exp": now + exp_offset, "scp": scopes})
}

/// The same key with its last character changed: shares every prefix.
fn near_miss(key: &str) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    let last = chars.last_mut().unwrap();
    *last = if *last == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// Every form of a secret a leak could take, by a name for the report.
fn needles(secrets: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, value) in secrets {
        let mut forms = vec![("", value.clone())];
        let decoded = URL_SAFE_NO_PAD
            .decode(value.trim_end_matches('='))
            .or_else(|_| STANDARD.decode(value))
            .ok()
            .filter(|bytes| bytes.len() >= 16);
        if let Some(bytes) = decoded {
            forms.push(("hex", hex::encode(&bytes)));
            forms.push(("HEX", hex::encode_upper(&bytes)));
            forms.push(("base64", STANDARD.encode(&bytes)));
            forms.push(("base64 unpadded", STANDARD_NO_PAD.encode(&bytes)));
            forms.push(("base64url", URL_SAFE.encode(&bytes)));
            forms.push(("base64url unpadded", URL_SAFE_NO_PAD.encode(&bytes)));
        }
        for (form, text) in forms {
            let label = if form.is_empty() {
                name.clone()
            } else {
                format!("{name} as {form}")
            };
            out.push((
                format!("{label} (first 12)"),
                text.chars().take(12).collect(),
            ));
            // A URL-encoded copy (a key in a logged query string).
            let encoded: String = text
                .replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D");
            if encoded != text {
                out.push((format!("{label} url-encoded"), encoded));
            }
            out.push((label, text));
        }
    }
    // One name per distinct text (the first form that produced it).
    let mut seen = std::collections::HashSet::new();
    out.retain(|(_, text)| seen.insert(text.clone()));
    for (name, needle) in &out {
        assert!(needle.len() >= 12, "{name} is too short to scan for");
    }
    out
}

/// What of `needles` (and of any store authorization token or the store's
/// canary) `text` holds.
fn leaks_in(text: &str, needles: &[(String, String)]) -> Vec<String> {
    let mut found: Vec<String> = needles
        .iter()
        .filter(|(_, needle)| text.contains(needle.as_str()))
        .map(|(name, _)| name.clone())
        .collect();
    // A Cosmos authorization token, whatever key signed it.
    let lower = text.to_ascii_lowercase();
    if lower.contains("type=master") || lower.contains("type%3dmaster") || lower.contains("sig=") {
        found.push("a store authorization token".into());
    }
    if text.contains(STORE_CANARY) {
        found.push("the store's own error text".into());
    }
    found
}

struct Scan {
    /// (what, text) of every response: status, headers and body.
    responses: Vec<(String, String)>,
}

impl Scan {
    fn add(&mut self, what: &str, reply: &Reply) -> &mut Self {
        let mut text = format!("{}\n", reply.status);
        for (k, v) in &reply.headers {
            text.push_str(&format!("{k}: {v}\n"));
        }
        text.push_str(&reply.text());
        self.responses.push((what.to_string(), text));
        self
    }
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn no_secret_in_any_response_header_body_or_log_line() {
    let signing = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let point = signing.verifying_key().to_encoded_point(false);
    let jwks = json!({"keys": [{"kty": "EC", "kid": KID, "use": "sig", "alg": "ES256", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()), "y": URL_SAFE_NO_PAD.encode(point.y().unwrap())}]});
    let policy = |jwks: &serde_json::Value| {
        json!({"jwt": {"jwks": jwks, "issuer": ISSUER, "audience": AUDIENCE}}).to_string()
    };
    let environment = HashMap::from([("SPIN_VARIABLE_GATEWAYPOLICY".to_string(), policy(&jwks))]);
    let app = TestApp::in_process(Start {
        environment,
        ..Start::default()
    });
    let host = app.host();

    let good_token = token(&signing, &claims("patients.read patients.write", 600));
    let rogue = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let forged_token = token(&rogue, &claims("patients.read", 600));
    let expired_token = token(&signing, &claims("patients.read", -3600));
    let wrong_audience = token(&signing, &{
        let mut c = claims("patients.read", 600);
        c["aud"] = json!("api://someone-else");
        c
    });
    let read_only_token = token(&signing, &claims("patients.read", 600));

    // --- the secrets, by name
    let mut secrets: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &app.secrets.variables {
        if name != "subscriptions" {
            secrets.insert(format!("variable {name}"), value.clone());
        }
    }
    for (name, s) in &app.secrets.subscriptions {
        secrets.insert(format!("{name} primary key"), s.primary.clone());
        secrets.insert(format!("{name} secondary key"), s.secondary.clone());
        secrets.insert(
            format!("{name} primary key SHA-256"),
            sha256_hex(&s.primary),
        );
        secrets.insert(
            format!("{name} secondary key SHA-256"),
            sha256_hex(&s.secondary),
        );
    }
    for (name, t) in [
        ("token", &good_token),
        ("read-only token", &read_only_token),
    ] {
        secrets.insert(name.to_string(), t.clone());
        secrets.insert(
            format!("{name} signature"),
            t.rsplit('.').next().unwrap().to_string(),
        );
    }
    let needles = needles(&secrets);

    // --- the scenario
    let mut scan = Scan {
        responses: Vec::new(),
    };
    let clinic = app.secrets.subscriptions["clinic"].clone();
    let reader = app.secrets.subscriptions["reader"].clone();
    let json_headers = |key: &str| {
        vec![
            ("ocp-apim-subscription-key", key.to_string()),
            ("content-type", "application/json".to_string()),
        ]
    };
    let send = |method: &str, path: &str, headers: &[(&str, String)], body: Option<&str>| {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        app.send(method, path, &h, body.map(str::as_bytes))
    };
    let patient = json!({"firstName": "Sec", "lastName": "Ret", "gender": "female", "dateOfBirth": "1970", "postCode": "4000"});
    let created = app.call("clinic", "POST", "/patient", Some(&patient));
    assert_eq!(created.status, 201, "{}", created.text());
    let pid = created.json()["id"].as_str().unwrap().to_string();
    scan.add("create", &created);
    let ppath = format!("/patient/{pid}");

    // Credentials: missing, wrong, near misses, secondary, query string, scope.
    scan.add("no credentials", &app.get(&ppath, &[]));
    scan.add(
        "wrong key",
        &app.get(&ppath, &[("ocp-apim-subscription-key", &e2e::random_key())]),
    );
    scan.add(
        "near-miss key",
        &app.get(
            &ppath,
            &[("ocp-apim-subscription-key", &near_miss(&clinic.primary))],
        ),
    );
    scan.add(
        "secondary key",
        &app.get(&ppath, &[("ocp-apim-subscription-key", &clinic.secondary)]),
    );
    scan.add(
        "query key",
        &app.get(&format!("{ppath}?subscription-key={}", clinic.primary), &[]),
    );
    scan.add(
        "near-miss query key",
        &app.get(
            &format!("{ppath}?subscription-key={}", near_miss(&clinic.primary)),
            &[],
        ),
    );
    scan.add(
        "key twice",
        &app.get(
            &ppath,
            &[
                ("ocp-apim-subscription-key", &clinic.primary),
                ("ocp-apim-subscription-key", &reader.primary),
            ],
        ),
    );
    scan.add(
        "missing scope",
        &send(
            "POST",
            "/patient",
            &json_headers(&reader.primary),
            Some(&patient.to_string()),
        ),
    );
    scan.add(
        "audit without scope",
        &app.get(
            &format!("/audit/verify?resourceType=patient&resourceId={pid}"),
            &[("ocp-apim-subscription-key", &clinic.primary)],
        ),
    );
    scan.add(
        "digest as key",
        &app.get(
            &ppath,
            &[("ocp-apim-subscription-key", &sha256_hex(&clinic.primary))],
        ),
    );
    scan.add(
        "host key as subscription key",
        &app.get(
            &ppath,
            &[(
                "ocp-apim-subscription-key",
                &app.secrets.variables["patientapikey"],
            )],
        ),
    );
    // Tokens.
    let bearer = |t: &str| format!("Bearer {t}");
    for (what, t) in [
        ("good token", good_token.as_str()),
        ("forged token", forged_token.as_str()),
        ("expired token", expired_token.as_str()),
        ("wrong audience", wrong_audience.as_str()),
        ("malformed token", "abc.def"),
        (
            "alg none",
            &format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
                good_token.split('.').nth(1).unwrap()
            ),
        ),
        (
            "tampered token",
            &format!("{}x", &good_token[..good_token.len() - 1]),
        ),
    ] {
        scan.add(what, &app.get(&ppath, &[("authorization", &bearer(t))]));
    }
    scan.add(
        "token without write scope",
        &send(
            "POST",
            "/patient",
            &[
                ("authorization", bearer(&read_only_token)),
                ("content-type", "application/json".into()),
            ],
            Some(&patient.to_string()),
        ),
    );
    scan.add(
        "token and wrong key",
        &app.get(
            &ppath,
            &[
                ("authorization", &bearer(&good_token)),
                ("ocp-apim-subscription-key", "nope-nope-nope"),
            ],
        ),
    );
    // Readiness key.
    let health = app.secrets.variables["healthkey"].clone();
    scan.add(
        "ready",
        &app.get("/health/ready", &[("x-health-key", &health)]),
    );
    scan.add(
        "ready near miss",
        &app.get("/health/ready", &[("x-health-key", &near_miss(&health))]),
    );
    scan.add("ready without key", &app.get("/health/ready", &[]));
    scan.add(
        "ready with host key",
        &app.get(
            "/health/ready",
            &[("x-health-key", &app.secrets.variables["auditapikey"])],
        ),
    );
    // Bad input.
    let h = json_headers(&clinic.primary);
    let mut with_id = patient.clone();
    with_id["id"] = json!(pid);
    for (what, method, path, body) in [
        (
            "invalid JSON",
            "POST",
            "/patient".to_string(),
            "{\"firstName\": ".to_string(),
        ),
        (
            "unknown field",
            "POST",
            "/patient".into(),
            json!({"firstName": "A", "shoe": 1}).to_string(),
        ),
        ("id sent", "POST", "/patient".into(), with_id.to_string()),
        ("inconsistent ids", "PUT", ppath.clone(), {
            let mut b = with_id.clone();
            b["id"] = json!("6b1d2e3f-4a5b-4c6d-8e7f-901234567890");
            b.to_string()
        }),
        (
            "not a guid",
            "GET",
            "/patient/not-a-guid".into(),
            String::new(),
        ),
        (
            "oversized",
            "POST",
            "/patient".into(),
            format!("{{\"firstName\": \"{}\"}}", "x".repeat(70_000)),
        ),
        (
            "bad search",
            "POST",
            "/patient/search?limit=0".into(),
            "{}".into(),
        ),
        (
            "bad test",
            "POST",
            format!("{ppath}/tests"),
            json!({"performer": 5}).to_string(),
        ),
        (
            "unknown member",
            "POST",
            "/patient".into(),
            json!({"firstName": "A", MEMBER_CANARY: 1}).to_string(),
        ),
        (
            "unknown criterion",
            "POST",
            "/patient/search".into(),
            json!({MEMBER_CANARY: "x"}).to_string(),
        ),
        (
            "duplicate member",
            "POST",
            "/patient".into(),
            format!("{{\"{MEMBER_CANARY}\": 1, \"{MEMBER_CANARY}\": 2}}"),
        ),
    ] {
        let body = (!body.is_empty()).then_some(body.as_str());
        scan.add(what, &send(method, &path, &h, body));
    }
    let mut with_token = h.clone();
    with_token.push(("x-continuation-token", "forged-token-value".into()));
    scan.add(
        "forged continuation",
        &send("POST", "/patient/search", &with_token, Some("{}")),
    );
    let mut stale = h.clone();
    stale.push(("if-match", "\"not-the-etag\"".into()));
    scan.add(
        "stale if-match",
        &send("PUT", &ppath, &stale, Some(&with_id.to_string())),
    );
    // Outages, and a store whose error text must not travel on.
    host.set_fault("docstore", Some(Fault::Refuse));
    scan.add("store down", &app.call("clinic", "GET", &ppath, None));
    scan.add(
        "store down, ready",
        &app.get("/health/ready", &[("x-health-key", &health)]),
    );
    host.set_fault(
        "docstore",
        Some(Fault::Respond {
            status: 400,
            headers: vec![("content-type".into(), "application/json".into())],
            body: json!({"code": "BadRequest", "message": format!("{STORE_CANARY} the input authorization token can't serve the request")}).to_string(),
            times: None,
        }),
    );
    scan.add("store 400", &app.call("clinic", "GET", &ppath, None));
    scan.add(
        "store 400, audit",
        &app.call(
            "auditor",
            "GET",
            &format!("/audit/verify?resourceType=patient&resourceId={pid}"),
            None,
        ),
    );
    host.set_fault(
        "docstore",
        Some(Fault::Respond {
            status: 401,
            headers: vec![],
            body: STORE_CANARY.into(),
            times: None,
        }),
    );
    scan.add(
        "store 401",
        &app.call("clinic", "POST", "/patient", Some(&patient)),
    );
    host.set_fault("docstore", None);
    host.set_fault("audit-api", Some(Fault::Refuse));
    scan.add("audit-api down", &app.call("clinic", "GET", &ppath, None));
    scan.add(
        "audit-api down, verify",
        &app.call(
            "admin",
            "GET",
            &format!("/audit/verify?resourceType=patient&resourceId={pid}"),
            None,
        ),
    );
    host.set_fault("audit-api", None);
    // Broken configuration: a malformed store key, subscriptions whose
    // parse fails next to the real digests, an unusable JWKS.
    let cosmoskey = app.secrets.variables["cosmoskey"].clone();
    host.app
        .set_variable("cosmoskey", &format!("{}!!", &cosmoskey[..40]))
        .unwrap();
    scan.add("bad cosmoskey", &app.call("clinic", "GET", &ppath, None));
    host.app.set_variable("cosmoskey", &cosmoskey).unwrap();
    // Keys that break the connection strings they are composed into (a `;`
    // inside one, an empty one): 503, and the log line names the component
    // variable and what is wrong, never any of the text.
    for (secret, connection, component) in [
        ("auditapikey", "auditapi", "patient-api"),
        ("patientapikey", "patientapi", "gateway"),
    ] {
        let real = app.secrets.variables[secret].clone();
        for broken in [format!("{};{}", &real[..20], &real[20..]), String::new()] {
            host.app.set_variable(secret, &broken).unwrap();
            let reply = app.call("clinic", "GET", &ppath, None);
            assert_eq!(reply.status, 503, "{secret} broken: {}", reply.text());
            // Log lines are collected when an instance ends.
            host.settle();
            let named =
                host.app.logs().iter().any(|l| {
                    l.component == component && l.line.contains(&format!("\"{connection}\""))
                });
            assert!(named, "{component} does not name {connection}");
            scan.add(&format!("{secret} breaks {connection}"), &reply);
        }
        host.app.set_variable(secret, &real).unwrap();
    }
    let subscriptions = app.secrets.variables["subscriptions"].clone();
    let broken = subscriptions.replacen("\"scopes\":[", "\"scopes\":[7,", 1);
    assert_ne!(broken, subscriptions);
    host.app.set_variable("subscriptions", &broken).unwrap();
    scan.add(
        "bad subscriptions",
        &app.call("clinic", "GET", &ppath, None),
    );
    let bad_digest = subscriptions.replacen("KeySha256\":\"", "KeySha256\":\"zz", 1);
    host.app.set_variable("subscriptions", &bad_digest).unwrap();
    scan.add("bad digest", &app.call("clinic", "GET", &ppath, None));
    host.app
        .set_variable("subscriptions", &subscriptions)
        .unwrap();
    host.app
        .set_variable("gatewaypolicy", &policy(&json!({"keys": [{"kty": "EC"}]})))
        .unwrap();
    scan.add(
        "bad jwks",
        &app.get(&ppath, &[("authorization", &bearer(&good_token))]),
    );
    host.app
        .set_variable("gatewaypolicy", &policy(&jwks))
        .unwrap();
    scan.add("recovered", &app.call("clinic", "GET", &ppath, None));

    // Straight to the private components, with wrong, swapped and near-miss keys.
    let vars = &app.secrets.variables;
    for (component, path, key) in [
        ("patient-api", ppath.clone(), "wrong".to_string()),
        ("patient-api", ppath.clone(), vars["auditapikey"].clone()),
        (
            "patient-api",
            ppath.clone(),
            near_miss(&vars["patientapiprimarykey"]),
        ),
        (
            "patient-api",
            ppath.clone(),
            vars["patientapisecondarykey"].clone(),
        ),
        (
            "audit-api",
            format!("/audit/verify?resourceType=patient&resourceId={pid}"),
            vars["patientapikey"].clone(),
        ),
        (
            "audit-api",
            "/auditrecord".to_string(),
            near_miss(&vars["auditapiprimarykey"]),
        ),
        (
            "audit-api",
            "/auditrecord".to_string(),
            vars["auditapisecondarykey"].clone(),
        ),
    ] {
        let reply = host.invoke(
            component,
            "POST",
            &path,
            &[
                ("x-functions-key", &key),
                ("x-actor", "clinic"),
                ("content-type", "application/json"),
            ],
            b"{\"bad\": true}",
        );
        scan.add(&format!("{component} {path}"), &reply);
        let reply = host.invoke(
            component,
            "GET",
            &path,
            &[("x-functions-key", &key), ("x-actor", "clinic")],
            b"",
        );
        scan.add(&format!("{component} GET {path}"), &reply);
    }
    // The store, with a forged signature, a signature by another key, and none.
    let date = cosmos_auth::http_date(now());
    let other_key =
        cosmos_auth::MasterKey::from_base64(&STANDARD.encode(e2e::random_bytes(64))).unwrap();
    let right_key = cosmos_auth::MasterKey::from_base64(&cosmoskey).unwrap();
    let link = format!("dbs/patients/colls/patients/docs/{pid}");
    let signed = |key: &cosmos_auth::MasterKey, date: &str| {
        cosmos_auth::sign(
            key,
            &cosmos_auth::SignedRequest {
                verb: "GET",
                resource_type: "docs",
                resource_link: &link,
                date,
            },
        )
    };
    let stale_date = cosmos_auth::http_date(now() - 3600);
    for (what, auth, date) in [
        ("store, other key", signed(&other_key, &date), date.clone()),
        (
            "store, forged",
            "type=master&ver=1.0&sig=AAAA".to_string(),
            date.clone(),
        ),
        (
            "store, stale date",
            signed(&right_key, &stale_date),
            stale_date.clone(),
        ),
        ("store, none", String::new(), date.clone()),
    ] {
        let mut headers = vec![
            ("x-ms-date", date.as_str()),
            ("x-ms-version", "2018-12-31"),
            ("x-ms-documentdb-partitionkey", "[\"x\"]"),
        ];
        if !auth.is_empty() {
            headers.push(("authorization", auth.as_str()));
        }
        let reply = host.invoke("docstore", "GET", &format!("/{link}"), &headers, b"");
        assert!(
            matches!(reply.status, 400 | 401 | 403),
            "{what}: {} {}",
            reply.status,
            reply.text()
        );
        scan.add(what, &reply);
    }

    // --- the scan
    // A component's log line may land just after its response.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let logs = host.app.logs();
    let stored: Vec<String> = {
        let conn = rusqlite::Connection::open_with_flags(
            host.app.sqlite_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let mut stmt = conn.prepare("SELECT body FROM docstore_documents").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let mut leaks = Vec::new();
    let haystacks = scan
        .responses
        .iter()
        .map(|(what, text)| (format!("response to {what}"), text.as_str()))
        .chain(logs.iter().map(|l| {
            (
                format!("log line of {} ({})", l.component, l.stream),
                l.line.as_str(),
            )
        }))
        .chain(
            stored
                .iter()
                .map(|body| ("a stored document".to_string(), body.as_str())),
        );
    for line in &logs {
        if line.line.contains(MEMBER_CANARY) {
            leaks.push(format!(
                "a client's member name in a log line of {}",
                line.component
            ));
        }
    }
    for (where_, text) in haystacks {
        leaks.extend(
            leaks_in(text, &needles)
                .into_iter()
                .map(|what| format!("{what} in the {where_}")),
        );
    }
    // The scan itself finds what it looks for.
    let planted = format!("x{}y", &near_miss(&clinic.primary)[..20]);
    assert_eq!(
        leaks_in(&planted, &needles),
        vec!["clinic primary key (first 12)".to_string()]
    );
    let cosmos_hex = hex::encode(STANDARD.decode(&cosmoskey).unwrap());
    assert!(leaks_in(&format!("k={cosmos_hex}"), &needles)
        .iter()
        .any(|w| w == "variable cosmoskey as hex"));
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
    // The scenario did reach the error paths it is about.
    let statuses: Vec<u16> = scan
        .responses
        .iter()
        .map(|(_, t)| t[..3].parse().unwrap())
        .collect();
    for status in [200, 201, 400, 401, 403, 404, 412, 413, 503] {
        assert!(statuses.contains(&status), "no {status} in the scenario");
    }
    assert!(!logs.is_empty());
    e2e::write_hardening_counts(
        "secrets",
        &[format!(
            "secret scans: {} responses, {} log lines, {} stored documents, {} needles from {} secrets",
            scan.responses.len(),
            logs.len(),
            stored.len(),
            needles.len(),
            secrets.len()
        )],
    );
}
