//! Property-based fuzzing of the local document store: its query parser and
//! the whole `handle` entry point, on a real SQLite file through rusqlite.
//!
//! Properties: arbitrary query text never panics and is refused with an
//! `UnsupportedQuery`; queries generated from the grammar parse to what was
//! generated; arbitrary requests (unsigned, or signed so that they reach
//! every handler) never panic, never answer 500, and always answer JSON;
//! an unsigned request is never served; queries generated over stored
//! documents with unusual property names answer 200 or 400 and page
//! without repeating a document.
//!
//! `PROPTEST_CASES` (default 256) bounds each property. Each property adds a
//! line `fuzz <target>: <n> cases` to `target/hardening/fuzz-docstore-engine.txt`.

#[path = "../src/rusqlite_sql.rs"]
mod rusqlite_sql;

// `Sql`, `SqlError` and `SqlValue` are used by the included module via `super`.
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};
use base64::Engine;
use cosmos_auth::{http_date, MasterKey, SignedRequest};
use docstore_engine::query::{self, CompareOp, Condition, PathStep};
#[allow(unused_imports)]
use docstore_engine::{
    handle, LockWait, Sql, SqlError, SqlValue, StoreConfig, StoreRequest, StoreResponse,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use rusqlite_sql::{RusqliteSql, ThreadLockWait};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Runs properties with a case budget and records how many cases ran.
#[path = "../../../tests/support/fuzz.rs"]
mod fuzz;

// ---------------------------------------------------------------- the store

const NOW: i64 = 1_800_000_000;
const KEY: &str = "dGVzdCBrZXkgZm9yIHRoZSBsb2NhbCBkb2N1bWVudCBzdG9yZSwgNjQgYnl0ZXMgbG9uZy4uLg==";
const SPEC: &str = "patients/patients=/id;patients/tests=/patientId;audit/records=/chainKey";
const DOCS: &str = "/dbs/patients/colls/tests/docs";

/// Values of the seeded documents' properties.
fn seed_values() -> [Value; 11] {
    [
        json!(1),
        json!(-2.5),
        json!("text"),
        json!(""),
        json!(true),
        json!(null),
        json!([1, "x"]),
        json!({"a": 1}),
        json!(9_007_199_254_740_993u64),
        json!(1e300),
        json!("ü\u{0}"),
    ]
}

/// Property names of the seeded documents: what a query may path into.
const ODD_KEYS: &[&str] = &[
    "a", "n", "s", "", " ", "a.b", "a[0]", "$", "\\", "a\\b", "ü", "\u{0}", "x\u{0}y", "'", "]",
    "\t",
];

struct Store {
    path: PathBuf,
    config: StoreConfig,
    /// The documents `seeded` stored, as sent.
    docs: Vec<Value>,
}

impl Drop for Store {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
    }
}

impl Store {
    /// A fresh database with documents in two partitions of `patients/tests`
    /// holding numbers, strings, booleans, nulls, arrays, objects and odd keys.
    fn seeded() -> Store {
        let path =
            std::env::temp_dir().join(format!("docstore-fuzz-{}.sqlite", uuid::Uuid::new_v4()));
        let mut store = Store {
            path,
            config: StoreConfig::from_variables(KEY, SPEC).unwrap(),
            docs: Vec::new(),
        };
        let values = seed_values();
        for i in 0..24usize {
            let patient = if i % 3 == 0 { "p1" } else { "p2" };
            let mut doc = json!({"id": format!("doc-{i:02}"), "patientId": patient,
                                 "n": i, "s": format!("s{}", i % 5), "a": {"b": values[i % values.len()].clone()}});
            for (k, key) in ODD_KEYS.iter().enumerate() {
                if (i + k) % 4 != 0 {
                    doc[*key] = values[(i + k) % values.len()].clone();
                }
            }
            let r = store.send(
                "POST",
                DOCS,
                vec![pk(json!(patient))],
                doc.to_string().into_bytes(),
            );
            assert_eq!(
                r.status,
                201,
                "seeding: {}",
                String::from_utf8_lossy(&r.body)
            );
            store.docs.push(doc);
        }
        store
    }

    fn raw(&self, request: &StoreRequest) -> StoreResponse {
        // A new connection per request, with SQLite's defaults, as Spin.
        let sql = RusqliteSql::open(&self.path).unwrap();
        handle(&sql, &self.config, request, NOW, &mut ThreadLockWait::new())
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        extra: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> StoreResponse {
        let mut headers = signed_headers(method, path);
        headers.extend(extra);
        self.raw(&StoreRequest {
            method: method.into(),
            path: path.into(),
            headers,
            body,
            base_url: "http://127.0.0.1:3000".into(),
        })
    }
}

fn pk(value: Value) -> (String, String) {
    (
        "x-ms-documentdb-partitionkey".into(),
        json!([value]).to_string(),
    )
}

/// `%XX` decoding of one path segment (a broken escape is kept as is: the
/// store refuses such a path before it looks at the signature).
fn decode_segment(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok()),
        ) {
            (b'%', Some(hex)) if hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `authorization` and `x-ms-date` headers a Cosmos client sends:
/// resource type and link derived from the path as Cosmos DB does.
fn signed_headers(method: &str, path: &str) -> Vec<(String, String)> {
    let trimmed = path.trim_matches('/');
    let segments: Vec<String> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').map(decode_segment).collect()
    };
    let n = segments.len();
    let (kind, link) = if n == 0 {
        (String::new(), String::new())
    } else if n % 2 == 1 {
        (
            segments[n - 1].to_ascii_lowercase(),
            segments[..n - 1].join("/"),
        )
    } else {
        (segments[n - 2].to_ascii_lowercase(), segments.join("/"))
    };
    let date = http_date(NOW);
    let auth = cosmos_auth::sign(
        &MasterKey::from_base64(KEY).unwrap(),
        &SignedRequest {
            verb: method,
            resource_type: &kind,
            resource_link: &link,
            date: &date,
        },
    );
    vec![("authorization".into(), auth), ("x-ms-date".into(), date)]
}

/// What every answer must be: no panic (checked by the runner), no 500,
/// a JSON body (empty only for 204 and 304), a content type.
fn check_response(r: &StoreResponse, what: &str) -> Result<Value, TestCaseError> {
    let body = String::from_utf8_lossy(&r.body);
    prop_assert!(r.status != 500, "500 for {what}: {body}");
    prop_assert!((200..600).contains(&r.status), "status {}", r.status);
    prop_assert_eq!(r.header("content-type"), Some("application/json"));
    if r.body.is_empty() && matches!(r.status, 204 | 304) {
        return Ok(Value::Null);
    }
    let value: Value = serde_json::from_slice(&r.body)
        .map_err(|e| TestCaseError::fail(format!("not JSON ({e}) for {what}: {body}")))?;
    if r.status >= 400 {
        prop_assert!(
            value["code"].is_string() && value["message"].is_string(),
            "error body {body}"
        );
        prop_assert!(
            !body.to_ascii_lowercase().contains("sqlite"),
            "SQL error text leaked: {body}"
        );
        prop_assert!(!body.contains(KEY), "key leaked");
    }
    Ok(value)
}

// ---------------------------------------------------------------- query parser

fn hostile_query() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        select(
            &[
                "SELECT",
                "select",
                "*",
                "FROM",
                "c",
                "root",
                "r",
                "AS",
                "WHERE",
                "AND",
                "OR",
                "NOT",
                "ORDER",
                "BY",
                "ASC",
                "DESC",
                "TOP",
                "VALUE",
                "JOIN",
                "IN",
                "LIKE",
                "BETWEEN",
                "STARTSWITH",
                "(",
                ")",
                ",",
                ".",
                "[",
                "]",
                "=",
                "!=",
                "<>",
                "<",
                "<=",
                ">",
                ">=",
                "@p",
                "@",
                "c.a",
                "c[\"a\"]",
                "c[0]",
                "1",
                "1.5e3",
                "'x'",
                "\"y\"",
                "\"",
                "'",
                "--",
                "||",
                "??",
                "+",
                ";",
                "/*",
                "true",
                "null",
                "OFFSET",
                "GROUP",
                "99999999999",
                "\\"
            ][..]
        )
        .prop_map(String::from),
        "\\PC{1,4}",
    ];
    prop_oneof![
        any::<String>(),
        vec(word, 0..20).prop_map(|w| w.join(" ")),
        vec(any::<char>(), 0..60).prop_map(|c| format!(
            "SELECT * FROM c WHERE {}",
            c.into_iter().collect::<String>()
        )),
    ]
}

#[test]
fn query_parser_refuses_hostile_text_with_typed_errors() {
    fuzz::run(
        "docstore_engine::query::parse/arbitrary",
        hostile_query(),
        |text| {
            match query::parse(&text) {
                Ok(q) => {
                    for c in q.conditions() {
                        let path = match c {
                            Condition::Compare { path, param, .. }
                            | Condition::StartsWith { path, param } => {
                                prop_assert!(param.starts_with('@') && param.len() > 1);
                                path
                            }
                        };
                        prop_assert!(!path.steps().is_empty());
                        for step in path.steps() {
                            if let PathStep::Key(k) = step {
                                prop_assert!(!k.contains('"'), "a quote in a JSON path key");
                            }
                        }
                    }
                }
                Err(e) => prop_assert!(!e.0.is_empty()),
            }
            Ok(())
        },
    );
}

/// A query of the supported shape, as text, and what it must parse to.
#[derive(Debug, Clone)]
struct GeneratedQuery {
    text: String,
    conditions: Vec<(Vec<PathStep>, Option<CompareOp>, String)>,
    order: Option<(Vec<PathStep>, bool)>,
}

/// Known findings still open are left out of generation, so CI stays a
/// signal for new ones; `FUZZ_KNOWN_FINDINGS=1` puts them back in.
fn include_known_findings() -> bool {
    std::env::var("FUZZ_KNOWN_FINDINGS").is_ok_and(|v| v == "1")
}

fn path_step() -> impl Strategy<Value = (String, PathStep)> {
    let step = prop_oneof![
        "[A-Za-z_][A-Za-z0-9_]{0,6}"
            .prop_filter("a keyword", |k| !is_reserved(k))
            .prop_map(|k| (format!(".{k}"), PathStep::Key(k))),
        select(ODD_KEYS)
            .prop_map(|k| (format!("[\"{}\"]", escape(k)), PathStep::Key(k.to_string()))),
        "[^\"\\\\]{0,6}"
            .prop_map(|k| (format!("['{}']", k.replace('\'', "\\'")), PathStep::Key(k))),
        (0u32..5).prop_map(|i| (format!("[{i}]"), PathStep::Index(i))),
        Just(("[4294967295]".to_string(), PathStep::Index(u32::MAX))),
    ];
    step.prop_filter("known findings", |(_, s)| match s {
        PathStep::Key(k) => include_known_findings() || !has_known_finding(k),
        PathStep::Index(_) => true,
    })
}

/// Open findings about backslashes in a bracketed key (SQLite reads a
/// quoted JSON-path key with JSON escapes):
/// F-docstore-2: a backslash before the closing quote (`c["\\"]`,
/// `c["a\\"]`) makes the path invalid and the store answers 500.
/// F-docstore-3: other backslashes are read as escapes, so `c["a\\b"]`
/// matches the property "a\u{8}" and `c["\\u0041"]` matches "A".
/// (A NUL, F-docstore-1, is fixed: refused as an unsupported query.)
fn has_known_finding(key: &str) -> bool {
    key.contains('\\')
}

fn is_reserved(word: &str) -> bool {
    [
        "select",
        "from",
        "where",
        "and",
        "or",
        "not",
        "order",
        "by",
        "asc",
        "desc",
        "as",
        "in",
        "join",
        "top",
        "value",
        "offset",
        "limit",
        "group",
        "having",
        "like",
        "between",
        "exists",
        "true",
        "false",
        "null",
        "undefined",
        "distinct",
        "startswith",
    ]
    .contains(&word.to_ascii_lowercase().as_str())
}

/// A JSON-path key written inside a double-quoted query string literal.
fn escape(key: &str) -> String {
    key.replace('\\', "\\\\").replace('\t', "\\t")
}

fn generated_query() -> impl Strategy<Value = GeneratedQuery> {
    let alias = prop_oneof![
        Just("c".to_string()),
        "[a-z]{1,3}".prop_filter("a keyword", |a| !is_reserved(a))
    ];
    let op = select(
        &[
            ("=", CompareOp::Eq),
            ("!=", CompareOp::Ne),
            ("<>", CompareOp::Ne),
            ("<", CompareOp::Lt),
            ("<=", CompareOp::Le),
            (">", CompareOp::Gt),
            (">=", CompareOp::Ge),
        ][..],
    );
    let condition = (
        vec(path_step(), 1..4),
        prop_oneof![op.prop_map(Some), Just(None)],
        "@[a-z]{1,4}",
        any::<bool>(),
    );
    (
        alias,
        any::<bool>(),
        vec(condition, 0..4),
        proptest::option::of((
            vec(path_step(), 1..3),
            select(&["", " ASC", " DESC", " asc", " desc"][..]),
        )),
        select(&["SELECT * FROM", "select * from", "SeLeCt  *  FrOm"][..]),
    )
        .prop_map(|(alias, with_as, conditions, order, select)| {
            let mut text = if with_as {
                format!("{select} root AS {alias}")
            } else {
                format!("{select} {alias}")
            };
            let mut expected = Vec::new();
            for (i, (steps, op, param, flipped)) in conditions.into_iter().enumerate() {
                text.push_str(if i == 0 { " WHERE " } else { " AND " });
                let path = format!(
                    "{alias}{}",
                    steps.iter().map(|(t, _)| t.as_str()).collect::<String>()
                );
                match op {
                    Some((symbol, op)) if flipped => {
                        text.push_str(&format!("{param} {symbol} {path}"));
                        let flipped_op = match op {
                            CompareOp::Lt => CompareOp::Gt,
                            CompareOp::Le => CompareOp::Ge,
                            CompareOp::Gt => CompareOp::Lt,
                            CompareOp::Ge => CompareOp::Le,
                            other => other,
                        };
                        expected.push((
                            steps.into_iter().map(|(_, s)| s).collect(),
                            Some(flipped_op),
                            param,
                        ));
                    }
                    Some((symbol, op)) => {
                        text.push_str(&format!("{path} {symbol} {param}"));
                        expected.push((
                            steps.into_iter().map(|(_, s)| s).collect(),
                            Some(op),
                            param,
                        ));
                    }
                    None => {
                        text.push_str(&format!("STARTSWITH({path}, {param})"));
                        expected.push((steps.into_iter().map(|(_, s)| s).collect(), None, param));
                    }
                }
            }
            let order = order.map(|(steps, direction)| {
                let path = format!(
                    "{alias}{}",
                    steps.iter().map(|(t, _)| t.as_str()).collect::<String>()
                );
                text.push_str(&format!(" ORDER BY {path}{direction}"));
                (
                    steps.into_iter().map(|(_, s)| s).collect(),
                    direction.to_ascii_lowercase().contains("desc"),
                )
            });
            GeneratedQuery {
                text,
                conditions: expected,
                order,
            }
        })
}

#[test]
fn generated_queries_parse_to_what_was_generated() {
    fuzz::run(
        "docstore_engine::query::parse/grammar",
        generated_query(),
        |g| {
            // A NUL in a property name is refused on purpose (F-docstore-1).
            let nul = g
                .conditions
                .iter()
                .map(|(steps, _, _)| steps)
                .chain(g.order.as_ref().map(|(steps, _)| steps))
                .flatten()
                .any(|s| matches!(s, PathStep::Key(k) if k.contains('\0')));
            if nul {
                prop_assert!(query::parse(&g.text).is_err(), "{}", g.text);
                return Ok(());
            }
            let q = query::parse(&g.text)
                .map_err(|e| TestCaseError::fail(format!("{}: {e}", g.text)))?;
            prop_assert_eq!(q.alternatives.len(), 1);
            prop_assert_eq!(q.alternatives[0].len(), g.conditions.len());
            for (c, (steps, op, param)) in q.alternatives[0].iter().zip(&g.conditions) {
                match (c, op) {
                    (
                        Condition::Compare {
                            path,
                            op: got,
                            param: p,
                        },
                        Some(op),
                    ) => {
                        prop_assert_eq!(path.steps(), steps.as_slice());
                        prop_assert_eq!(got, op);
                        prop_assert_eq!(p, param);
                    }
                    (Condition::StartsWith { path, param: p }, None) => {
                        prop_assert_eq!(path.steps(), steps.as_slice());
                        prop_assert_eq!(p, param);
                    }
                    other => return Err(TestCaseError::fail(format!("{}: {other:?}", g.text))),
                }
            }
            match (&q.order_by, &g.order) {
                (None, None) => {}
                (Some(o), Some((steps, descending))) => {
                    prop_assert_eq!(o.path.steps(), steps.as_slice());
                    prop_assert_eq!(o.descending, *descending);
                }
                other => return Err(TestCaseError::fail(format!("order: {other:?}"))),
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------- handle

fn hostile_path() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        select(
            &[
                "patients",
                "tests",
                "audit",
                "records",
                "chainheads",
                "nope",
                "PATIENTS",
                "users",
                "sprocs",
                "%70atients",
                "%",
                "%zz",
                "%C3%28",
                "..",
                "doc-01",
                "doc%2F1",
                "x?y",
                "a#b"
            ][..]
        )
        .prop_map(String::from),
        "[A-Za-z0-9%._~-]{1,12}",
        "\\PC{1,6}",
    ];
    prop_oneof![
        any::<String>(),
        vec(name.clone(), 0..8).prop_map(|s| format!("/{}", s.join("/"))),
        (name.clone(), name.clone()).prop_map(|(c, d)| format!("/dbs/patients/colls/{c}/docs/{d}")),
        name.clone()
            .prop_map(|d| format!("/dbs/patients/colls/tests/docs/{d}")),
        name.prop_map(|c| format!("/dbs/patients/colls/{c}/docs")),
        select(
            &[
                "/",
                "",
                "//",
                "/dbs",
                "/dbs/",
                "/dbs/patients",
                "/dbs/patients/colls",
                "/dbs/patients/colls/tests",
                "/dbs/patients/colls/tests/pkranges",
                DOCS,
                "/dbs/patients/colls/tests/docs/doc-01",
                "/dbs/patients/colls/tests/docs/doc-01/attachments",
                "/dbs/audit/colls/records/docs"
            ][..]
        )
        .prop_map(String::from),
    ]
}

fn hostile_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        select(&["p1", "p2", "doc-01", "", "a/b", "\u{0}"][..]).prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        let key = prop_oneof![
            select(
                &[
                    "id",
                    "patientId",
                    "query",
                    "parameters",
                    "name",
                    "value",
                    "_rid",
                    "_etag",
                    "_ts",
                    "a",
                    "n"
                ][..]
            )
            .prop_map(String::from),
            select(ODD_KEYS).prop_map(String::from),
            "\\PC{0,6}",
        ];
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Value::Array),
            vec((key, inner), 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn hostile_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..200),
        hostile_json().prop_map(|v| v.to_string().into_bytes()),
        // A document of the tests container.
        (
            select(&["doc-01", "doc-99", "new", "", "a/b", "x\u{0}"][..]),
            select(&["p1", "p2", "p3"][..]),
            hostile_json()
        )
            .prop_map(|(id, p, extra)| {
                let mut doc = json!({"id": id, "patientId": p});
                if let Value::Object(m) = extra {
                    for (k, v) in m {
                        if k != "id" && k != "patientId" {
                            doc[k] = v;
                        }
                    }
                }
                doc.to_string().into_bytes()
            }),
        // A query body.
        (
            prop_oneof![hostile_query(), generated_query().prop_map(|g| g.text)],
            vec(("@[a-z]{1,4}|[a-z]{1,3}", hostile_json()), 0..5)
        )
            .prop_map(|(query, params)| {
                let params: Vec<Value> = params
                    .into_iter()
                    .map(|(n, v)| json!({"name": n, "value": v}))
                    .collect();
                json!({"query": query, "parameters": params})
                    .to_string()
                    .into_bytes()
            }),
        (1usize..3000).prop_map(|n| ("[".repeat(n) + &"]".repeat(n)).into_bytes()),
    ]
}

fn continuation() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_-]{0,80}",
        (hostile_json(), "[0-9a-f]{24}").prop_map(|(v, f)| {
            let mut token = json!({"f": f, "p": "\"p1\"", "i": "doc-01"});
            if let Value::Object(m) = v {
                for (k, v) in m {
                    token[k] = v;
                }
            }
            URL_SAFE_NO_PAD.encode(token.to_string())
        }),
        hostile_json().prop_map(|v| URL_SAFE_NO_PAD.encode(v.to_string())),
    ]
}

fn hostile_headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let header = prop_oneof![
        prop_oneof![
            select(
                &[
                    "[\"p1\"]",
                    "[\"p2\"]",
                    "[1]",
                    "[1.0]",
                    "[-0.0]",
                    "[null]",
                    "[true]",
                    "[{}]",
                    "[]",
                    "[1,2]",
                    "[[1]]",
                    "[{\"a\":1}]",
                    "\"p1\"",
                    "p1",
                    "",
                    "[1e400]",
                    "[\"\\u0000\"]"
                ][..]
            )
            .prop_map(String::from),
            hostile_json().prop_map(|v| json!([v]).to_string()),
        ]
        .prop_map(|v| ("x-ms-documentdb-partitionkey".to_string(), v)),
        select(
            &[
                "application/query+json",
                "application/json",
                "APPLICATION/QUERY+JSON ",
                "text/plain",
                ""
            ][..]
        )
        .prop_map(|v| ("content-type".to_string(), v.to_string())),
        select(&["True", "true", " TRUE ", "false", "1", ""][..])
            .prop_map(|v| ("x-ms-documentdb-isquery".to_string(), v.to_string())),
        select(&["True", "false", "yes"][..])
            .prop_map(|v| ("x-ms-documentdb-is-upsert".to_string(), v.to_string())),
        select(&["True", "false"][..]).prop_map(|v| (
            "x-ms-cosmos-is-query-plan-request".to_string(),
            v.to_string()
        )),
        select(&["True", "false"][..])
            .prop_map(|v| ("x-ms-cosmos-is-batch-request".to_string(), v.to_string())),
        prop_oneof![
            select(
                &[
                    "-1",
                    "0",
                    "1",
                    "2",
                    "1000",
                    "1001",
                    "99999999999999999999",
                    "-2",
                    " 5 ",
                    "x",
                    ""
                ][..]
            )
            .prop_map(String::from),
            any::<i64>().prop_map(|n| n.to_string()),
        ]
        .prop_map(|v| ("x-ms-max-item-count".to_string(), v)),
        continuation().prop_map(|v| ("x-ms-continuation".to_string(), v)),
        prop_oneof![
            Just("*".to_string()),
            "\"?[0-9a-f-]{0,36}\"?",
            any::<String>()
        ]
        .prop_map(|v| ("if-match".to_string(), v)),
        prop_oneof![Just("*".to_string()), "\"?[0-9a-f-]{0,36}\"?"]
            .prop_map(|v| ("if-none-match".to_string(), v)),
        ("[a-z-]{1,20}", any::<String>()).prop_map(|(n, v)| (n, v)),
    ];
    vec(header, 0..7)
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => select(&["GET", "POST", "PUT", "DELETE"][..]).prop_map(String::from),
        2 => select(&["PATCH", "HEAD", "OPTIONS", "get", "post", "TRACE", ""][..]).prop_map(String::from),
        1 => "\\PC{0,8}",
    ]
}

#[test]
fn unsigned_requests_are_never_served() {
    let store = Store::seeded();
    let auth = prop_oneof![
        Just(None),
        any::<String>().prop_map(Some),
        "type%3Dmaster%26ver%3D1.0%26sig%3D[A-Za-z0-9%]{0,50}".prop_map(Some),
    ];
    let date = prop_oneof![
        Just(None),
        any::<String>().prop_map(Some),
        (-100_000i64..100_000).prop_map(|d| Some(http_date(NOW + d))),
    ];
    let strategy = (
        method(),
        hostile_path(),
        hostile_headers(),
        hostile_body(),
        auth,
        date,
    );
    fuzz::run(
        "docstore_engine::handle/unsigned",
        strategy,
        |(method, path, mut headers, body, auth, date)| {
            if let Some(a) = auth {
                headers.push(("authorization".into(), a));
            }
            if let Some(d) = date {
                headers.push(("x-ms-date".into(), d));
            }
            let r = store.raw(&StoreRequest {
                method,
                path: path.clone(),
                headers,
                body,
                base_url: "http://127.0.0.1:3000".into(),
            });
            check_response(&r, &path)?;
            prop_assert!(
                matches!(r.status, 400 | 401 | 404),
                "unsigned request answered {}",
                r.status
            );
            Ok(())
        },
    );
}

#[test]
fn signed_hostile_requests_never_fail_the_server() {
    let store = Store::seeded();
    let strategy = (
        method(),
        hostile_path(),
        hostile_headers(),
        hostile_body(),
        any::<bool>(),
    );
    fuzz::run(
        "docstore_engine::handle/signed",
        strategy,
        |(method, path, headers, body, stale)| {
            let mut all = signed_headers(&method, &path);
            if stale {
                // A signature over a date outside the 15-minute window.
                all[1].1 = http_date(NOW - 901);
            }
            all.extend(headers);
            let request = StoreRequest {
                method: method.clone(),
                path: path.clone(),
                headers: all,
                body,
                base_url: "http://127.0.0.1:3000".into(),
            };
            let r = store.raw(&request);
            check_response(&r, &format!("{method} {path}"))?;
            Ok(())
        },
    );
}

#[test]
fn generated_queries_run_and_page_without_repeats() {
    let store = Store::seeded();
    let param_value = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..30).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        select(&["s1", "s", "", "text", "ü", "\u{0}", "p1"][..]).prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!([1])),
        Just(json!({"a": 1})),
    ];
    let strategy = (
        generated_query(),
        vec(param_value, 8),
        proptest::option::of(select(&["p1", "p2", "p3"][..])),
        1i64..8,
    );
    fuzz::run(
        "docstore_engine::handle/query-paging",
        strategy,
        |(g, values, partition, page)| {
            let names: std::collections::BTreeSet<String> =
                g.conditions.iter().map(|(_, _, p)| p.clone()).collect();
            let params: Vec<Value> = names
                .iter()
                .zip(values.iter().cycle())
                .map(|(n, v)| json!({"name": n, "value": v}))
                .collect();
            let body = json!({"query": g.text, "parameters": params})
                .to_string()
                .into_bytes();
            let mut seen = std::collections::HashSet::new();
            let mut token: Option<String> = None;
            for _ in 0..30 {
                let mut headers = vec![
                    (
                        "content-type".to_string(),
                        "application/query+json".to_string(),
                    ),
                    ("x-ms-documentdb-isquery".to_string(), "True".to_string()),
                    ("x-ms-max-item-count".to_string(), page.to_string()),
                ];
                if let Some(p) = partition {
                    headers.push(pk(json!(p)));
                }
                if let Some(t) = &token {
                    headers.push(("x-ms-continuation".to_string(), t.clone()));
                }
                let r = store.send("POST", DOCS, headers, body.clone());
                let value = check_response(&r, &g.text)?;
                if r.status != 200 {
                    // Only a refused parameter (an array or object, or a missing
                    // one) may stop a query of the supported shape.
                    prop_assert_eq!(r.status, 400, "{}", g.text);
                    return Ok(());
                }
                let docs = value["Documents"]
                    .as_array()
                    .ok_or_else(|| TestCaseError::fail("no Documents"))?;
                prop_assert!(docs.len() as i64 <= page);
                for d in docs {
                    let key = format!("{}/{}", d["patientId"], d["id"]);
                    prop_assert!(seen.insert(key.clone()), "{key} repeated by {}", g.text);
                    if let Some(p) = partition {
                        prop_assert_eq!(d["patientId"].as_str(), Some(p));
                    }
                }
                match r.header("x-ms-continuation") {
                    Some(t) => token = Some(t.to_string()),
                    None => return Ok(()),
                }
            }
            Err(TestCaseError::fail(format!(
                "more than 30 pages for {}",
                g.text
            )))
        },
    );
}

#[test]
fn key_mismatch_is_unauthorized() {
    // Requests signed with another key never reach a handler.
    let store = Store::seeded();
    let strategy = (vec(any::<u8>(), 1..64), method(), hostile_path());
    fuzz::run(
        "docstore_engine::handle/other-key",
        strategy,
        |(key, method, path)| {
            let other = MasterKey::from_base64(&BASE64.encode(&key)).unwrap();
            let date = http_date(NOW);
            let auth = cosmos_auth::sign(
                &other,
                &SignedRequest {
                    verb: &method,
                    resource_type: "docs",
                    resource_link: "dbs/patients/colls/tests",
                    date: &date,
                },
            );
            let r = store.raw(&StoreRequest {
                method,
                path: path.clone(),
                headers: vec![("authorization".into(), auth), ("x-ms-date".into(), date)],
                body: Vec::new(),
                base_url: "http://127.0.0.1:3000".into(),
            });
            check_response(&r, &path)?;
            prop_assert!(matches!(r.status, 400 | 401 | 404), "answered {}", r.status);
            Ok(())
        },
    );
}

#[test]
fn equality_on_any_property_name_finds_exactly_the_matching_documents() {
    let store = Store::seeded();
    let key = prop_oneof![select(ODD_KEYS), Just("n"), Just("s")]
        .prop_filter("known findings", |k| {
            include_known_findings() || !has_known_finding(k)
        });
    let value = prop_oneof![
        select(seed_values().to_vec())
            .prop_filter("comparable", |v| !v.is_array() && !v.is_object()),
        (0i64..25).prop_map(Value::from),
        "s[0-5]".prop_map(Value::from),
    ];
    fuzz::run(
        "docstore_engine::handle/query-equality-oracle",
        (key, value),
        |(key, value)| {
            let text = format!("SELECT * FROM c WHERE c[\"{}\"] = @p", escape(key));
            let body =
                json!({"query": text, "parameters": [{"name": "@p", "value": value}]}).to_string();
            let r = store.send(
                "POST",
                DOCS,
                vec![
                    ("content-type".into(), "application/query+json".into()),
                    ("x-ms-max-item-count".into(), "1000".into()),
                ],
                body.into_bytes(),
            );
            let answer = check_response(&r, &text)?;
            if key.contains('\0') {
                // Refused on purpose: SQLite's JSON paths end at a NUL.
                prop_assert_eq!(r.status, 400, "{}", text);
                return Ok(());
            }
            prop_assert_eq!(r.status, 200, "{}", text);
            let mut got: Vec<String> = answer["Documents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].to_string())
                .collect();
            let mut expected: Vec<String> = store
                .docs
                .iter()
                .filter(|d| d.get(key) == Some(&value))
                .map(|d| d["id"].to_string())
                .collect();
            got.sort();
            expected.sort();
            prop_assert_eq!(got, expected, "{} with @p = {}", text, value);
            Ok(())
        },
    );
}

/// F-docstore-1 (fixed): a NUL character in a bracketed property name is a
/// client error (400), not a server error.
#[test]
fn nul_in_a_property_name_is_a_client_error() {
    let store = Store::seeded();
    for query in [
        "SELECT * FROM c ORDER BY c[\"\u{0}\"]",
        "SELECT * FROM c WHERE c[\"a\u{0}b\"] = @p",
    ] {
        let body = json!({"query": query, "parameters": [{"name": "@p", "value": 1}]}).to_string();
        let r = store.send(
            "POST",
            DOCS,
            vec![("content-type".into(), "application/query+json".into())],
            body.into_bytes(),
        );
        assert_eq!(
            r.status,
            400,
            "{query:?}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
}

/// F-docstore-2 and F-docstore-3 (fixed by refusing them): a backslash in
/// a bracketed property name is a client error, never a server error nor
/// read as a JSON escape by SQLite.
#[test]
fn backslash_in_a_property_name_is_refused_as_unsupported() {
    let store = Store::seeded();
    for key in ["\\", "a\\", "a\\b", "\\\\"] {
        let query = format!("SELECT * FROM c WHERE c[\"{}\"] = @p", escape(key));
        let body = json!({"query": query, "parameters": [{"name": "@p", "value": 1}]}).to_string();
        let r = store.send(
            "POST",
            DOCS,
            vec![("content-type".into(), "application/query+json".into())],
            body.into_bytes(),
        );
        assert_eq!(
            r.status,
            400,
            "{query}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
}
