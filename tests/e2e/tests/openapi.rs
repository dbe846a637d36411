//! `GET /openapi.json`: the OpenAPI 3.1 document of the public contract,
//! kept true to the gateway's route table and to what the gateway answers.

use std::collections::BTreeSet;
use std::collections::HashMap;

use e2e::{built_wasm, repo_root, Start, TestApp};
use gateway_policy::ROUTES;
use serde_json::{json, Value};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];
const PATIENT: &str = "5d0e7c9a-3f1b-4c2e-9a8d-1b2c3d4e5f60";

fn document() -> Value {
    let text =
        std::fs::read_to_string(repo_root().join("components/gateway/openapi.json")).unwrap();
    serde_json::from_str(&text).expect("openapi.json is JSON")
}

/// Resolves a local `$ref` (`#/components/...`).
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(pointer) => {
            let target = doc
                .pointer(pointer.strip_prefix('#').expect("local reference"))
                .unwrap_or_else(|| panic!("{pointer} does not resolve"));
            resolve(doc, target)
        }
        None => value,
    }
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if METHODS.contains(&method.as_str()) {
                out.push((method.to_uppercase(), path.clone(), op));
            }
        }
    }
    out
}

#[test]
fn the_gateway_serves_the_document_without_credentials() {
    let app = TestApp::start();
    let reply = app.get("/openapi.json", &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        document(),
        "the served document is components/gateway/openapi.json"
    );
    assert_eq!(reply.json()["openapi"], "3.1.0");
}

#[test]
fn every_route_the_gateway_serves_is_documented_and_nothing_else() {
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path_template.to_string()))
        .collect();
    let doc = document();
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    assert_eq!(served, documented);
}

#[test]
fn each_operation_states_its_scope_parameters_and_every_gateway_answer() {
    let doc = document();
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    let mut operation_ids = BTreeSet::new();
    for (method, path, op) in operations(&doc) {
        let what = format!("{method} {path}");
        assert!(
            operation_ids.insert(op["operationId"].as_str().unwrap().to_string()),
            "{what}: operationId"
        );
        let route = ROUTES
            .iter()
            .find(|r| r.method == method && r.path_template == path)
            .unwrap();
        let security = op["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: security"));
        for requirement in security {
            for name in requirement.as_object().unwrap().keys() {
                assert!(schemes.contains_key(name), "{what}: unknown scheme {name}");
            }
        }
        let responses = op["responses"].as_object().unwrap();
        match route.scope {
            Some(scope) => {
                assert_eq!(op["x-required-scope"], scope.as_str(), "{what}");
                assert!(!security.is_empty());
                for requirement in security {
                    for scopes in requirement.as_object().unwrap().values() {
                        assert_eq!(scopes, &json!([scope.as_str()]), "{what}");
                    }
                }
                for status in [
                    "400", "401", "403", "408", "413", "429", "502", "503", "504",
                ] {
                    assert!(responses.contains_key(status), "{what}: {status}");
                }
                let unauthorized = resolve(&doc, &responses["401"]);
                assert!(
                    unauthorized["headers"].get("WWW-Authenticate").is_some(),
                    "{what}"
                );
                let throttled = resolve(&doc, &responses["429"]);
                for header in [
                    "Retry-After",
                    "RateLimit-Limit",
                    "RateLimit-Remaining",
                    "RateLimit-Reset",
                ] {
                    assert!(
                        throttled["headers"].get(header).is_some(),
                        "{what}: 429 {header}"
                    );
                }
                let success = responses
                    .keys()
                    .find(|s| s.starts_with('2'))
                    .expect("a success");
                let success = resolve(&doc, &responses[success]);
                for header in [
                    "x-correlation-id",
                    "RateLimit-Limit",
                    "RateLimit-Remaining",
                    "RateLimit-Reset",
                ] {
                    assert!(success["headers"].get(header).is_some(), "{what}: {header}");
                }
            }
            None if path == "/health/ready" => {
                assert_eq!(security, &vec![json!({"healthKey": []})])
            }
            None => assert!(security.is_empty(), "{what} is public"),
        }
        // Every template parameter is declared as a required path parameter.
        let declared: BTreeSet<String> = op["parameters"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|p| resolve(&doc, p))
                    .filter(|p| p["in"] == "path")
                    .inspect(|p| assert_eq!(p["required"], true))
                    .map(|p| p["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let in_template: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(String::from)
            .collect();
        assert_eq!(declared, in_template, "{what}");
        // Bodies only where the route takes one.
        assert_eq!(op.get("requestBody").is_some(), method != "GET", "{what}");
    }
}

#[test]
fn every_reference_resolves_and_every_pattern_is_a_valid_regular_expression() {
    fn walk(doc: &Value, value: &Value, patterns: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if map.contains_key("$ref") {
                    resolve(doc, value);
                }
                if let Some(Value::String(p)) = map.get("pattern") {
                    patterns.push(p.clone());
                }
                map.values().for_each(|v| walk(doc, v, patterns));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(doc, v, patterns)),
            _ => {}
        }
    }
    let doc = document();
    let mut patterns = Vec::new();
    walk(&doc, &doc, &mut patterns);
    assert!(patterns.len() > 10);
    for pattern in patterns {
        // The patterns use the subset ECMA-262, Python and Rust share.
        regex_syntax::Parser::new()
            .parse(&pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"));
        assert!(
            pattern.starts_with('^') && pattern.ends_with('$'),
            "{pattern} is anchored"
        );
    }
}

// ---------------------------------------------------------------------------
// What the gateway answers conforms to the document.

/// Validates `value` against a schema (the subset of JSON Schema the
/// document uses; `pattern` and `format` are not checked here).
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    let fail = |why: String| Err(format!("{at}: {why} (value {value})"));
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = options
            .iter()
            .filter(|s| validate(doc, s, value, at).is_ok())
            .count();
        return if matching == 1 {
            Ok(())
        } else {
            fail(format!("{matching} oneOf branches match"))
        };
    }
    if let Some(expected) = schema.get("const") {
        if expected != value {
            return fail(format!("not {expected}"));
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            return fail("not in enum".into());
        }
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        if !types
            .iter()
            .any(|t| *t == actual || (*t == "number" && actual == "integer"))
        {
            return fail(format!("type {actual}, expected {types:?}"));
        }
    }
    if let Value::String(s) = value {
        let chars = s.chars().count() as u64;
        if schema
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|min| chars < min)
            || schema
                .get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|max| chars > max)
        {
            return fail("length".into());
        }
    }
    if let Some(n) = value.as_f64() {
        if schema
            .get("minimum")
            .and_then(Value::as_f64)
            .is_some_and(|min| n < min)
            || schema
                .get("maximum")
                .and_then(Value::as_f64)
                .is_some_and(|max| n > max)
        {
            return fail("range".into());
        }
    }
    if let Value::Object(map) = value {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !map.contains_key(name.as_str().unwrap()) {
                return fail(format!("{name} missing"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (name, member) in map {
            match properties.and_then(|p| p.get(name)) {
                Some(s) => validate(doc, s, member, &format!("{at}.{name}"))?,
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return fail(format!("{name} is not allowed"))
                }
                None => {}
            }
        }
    }
    if let Value::Array(items) = value {
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                validate(doc, item_schema, item, &format!("{at}[{i}]"))?;
            }
        }
    }
    Ok(())
}

/// Checks a reply against the documented response of `method path`.
fn conforms(doc: &Value, method: &str, template: &str, reply: &e2e::Reply) {
    let what = format!("{method} {template} -> {}", reply.status);
    let op = &doc["paths"][template][method.to_lowercase()];
    let response = op["responses"]
        .get(reply.status.to_string())
        .unwrap_or_else(|| panic!("{what}: status not documented"));
    let response = resolve(doc, response);
    let content_type = reply.header("content-type").unwrap_or_default();
    let media = &response["content"][content_type];
    assert!(media.is_object(), "{what}: {content_type} not documented");
    if let Err(e) = validate(doc, &media["schema"], &reply.json(), "body") {
        panic!("{what}: {e}");
    }
    for (name, header) in response["headers"].as_object().into_iter().flatten() {
        let schema = &resolve(doc, header)["schema"];
        if let Some(value) = reply.header(name) {
            let value = match schema["type"].as_str() {
                Some("integer") => json!(value
                    .parse::<i64>()
                    .unwrap_or_else(|_| panic!("{what}: {name}"))),
                _ => json!(value),
            };
            validate(doc, schema, &value, name).unwrap_or_else(|e| panic!("{what}: {e}"));
        }
    }
}

#[test]
#[cfg_attr(e2e_external, ignore = "starts its own in-process test host")]
fn gateway_answers_conform_to_the_document() {
    let doc = document();
    // The no-op probe stands in for the backends, so that only the
    // gateway's own answers are judged here; a small limit makes a 429.
    let small = json!([{
        "name": "tiny",
        "primaryKeySha256": e2e::sha256_hex("tiny-key"),
        "secondaryKeySha256": e2e::sha256_hex("tiny-key-2"),
        "scopes": ["patients.read"],
        "rateLimit": {"calls": 1, "periodSeconds": 3600},
        "quota": {"calls": 100, "periodSeconds": 86400}
    }]);
    let app = TestApp::in_process(Start {
        environment: HashMap::from([
            ("SPIN_VARIABLE_MAXBODYBYTES".to_string(), "16".to_string()),
            ("SPIN_VARIABLE_SUBSCRIPTIONS".to_string(), small.to_string()),
        ]),
        source_overrides: HashMap::from([
            ("patient-api".to_string(), built_wasm("probe")),
            ("audit-api".to_string(), built_wasm("probe")),
        ]),
        ..Start::default()
    });
    let patient = format!("/patient/{PATIENT}");
    let key = [("ocp-apim-subscription-key", "tiny-key")];

    conforms(&doc, "GET", "/health", &app.get("/health", &[]));
    conforms(&doc, "GET", "/health/ready", &app.get("/health/ready", &[]));
    conforms(
        &doc,
        "GET",
        "/health/ready",
        &app.get("/health/ready", &[("x-health-key", "wrong")]),
    );
    conforms(&doc, "GET", "/patient/{patientId}", &app.get(&patient, &[]));
    conforms(
        &doc,
        "GET",
        "/patient/{patientId}",
        &app.get(&patient, &[("ocp-apim-subscription-key", "wrong")]),
    );
    conforms(
        &doc,
        "GET",
        "/patient/{patientId}",
        &app.get(&patient, &[("authorization", "Bearer x.y.z")]),
    );
    conforms(
        &doc,
        "POST",
        "/patient",
        &app.send("POST", "/patient", &key, Some(b"{}")),
    );
    conforms(
        &doc,
        "POST",
        "/patient",
        &app.send("POST", "/patient", &key, Some(&[b' '; 17])),
    );
    conforms(
        &doc,
        "GET",
        "/audit/records",
        &app.get("/audit/records?resourceType=patient&resourceId=x", &key),
    );
    let allowed = app.get(&patient, &key);
    assert_eq!(allowed.status, 200);
    let throttled = app.get(&patient, &key);
    assert_eq!(throttled.status, 429);
    conforms(&doc, "GET", "/patient/{patientId}", &throttled);

    let host = app.host();
    host.set_fault("patient-api", Some(e2e::spin_test_host::Fault::Refuse));
    host.app
        .set_variable(
            "subscriptions",
            &small.to_string().replace("\"calls\":1,", "\"calls\":100,"),
        )
        .unwrap();
    let unavailable = app.get(&format!("/patient/{PATIENT}/tests"), &key);
    assert_eq!(unavailable.status, 503);
    conforms(&doc, "GET", "/patient/{patientId}/tests", &unavailable);
}
