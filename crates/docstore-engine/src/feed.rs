//! Queries and the document feed, with keyset paging.
//!
//! SQL text is assembled only from fixed fragments; every value (query
//! parameters, JSON paths, partition keys, continuation positions) is a bound
//! parameter. Comparisons follow Cosmos DB's type rules: a condition holds
//! only when the property exists and has the parameter's JSON type
//! (`json_type` guards), so a string never equals a number and an undefined
//! property never matches.
//!
//! Results are ordered by (sort value, partition key, id) — by (partition key,
//! id) without ORDER BY — and a continuation token carries the last row's
//! position in that order, so pages stay stable while documents are inserted:
//! no row is repeated and no row that existed before the first page is lost.

use crate::config::ContainerDef;
use crate::partition;
use crate::query::{self, CompareOp, Condition, PathStep, Query};
use crate::reply::{json_response, raw_json_response, Failure};
use crate::sqlstore::text;
use crate::{rid, Sql, SqlValue, StoreRequest, StoreResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

pub(crate) const DEFAULT_PAGE_SIZE: i64 = 100;
pub(crate) const MAX_PAGE_SIZE: i64 = 1000;
/// The most document bytes one page carries (Cosmos DB's 4 MB page limit).
pub(crate) const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
const CONTINUATION_HEADER: &str = "x-ms-continuation";

/// `POST .../docs` with `application/query+json`.
pub(crate) fn query(
    sql: &impl Sql,
    container: &ContainerDef,
    request: &StoreRequest,
) -> Result<StoreResponse, Failure> {
    let spec = QuerySpec::parse(&request.body)?;
    let parsed = query::parse(&spec.query).map_err(|e| Failure::BadRequest(e.to_string()))?;
    let params = spec.parameters()?;
    run(
        sql,
        container,
        request,
        &parsed,
        &params,
        &spec.fingerprint_source(),
    )
}

/// `GET .../docs`: every document, paged like `SELECT * FROM c`.
pub(crate) fn read_feed(
    sql: &impl Sql,
    container: &ContainerDef,
    request: &StoreRequest,
) -> Result<StoreResponse, Failure> {
    let all = Query {
        alternatives: vec![Vec::new()],
        order_by: None,
    };
    run(sql, container, request, &all, &HashMap::new(), "read feed")
}

/// A query plan request (`x-ms-cosmos-is-query-plan-request: True`). The
/// store has one partition key range and runs ORDER BY itself, so the plan
/// tells the SDK to send the query unchanged to that one range.
pub(crate) fn query_plan(request: &StoreRequest) -> Result<StoreResponse, Failure> {
    let spec = QuerySpec::parse(&request.body)?;
    query::parse(&spec.query).map_err(|e| Failure::BadRequest(e.to_string()))?;
    Ok(json_response(
        200,
        &serde_json::json!({
            "partitionedQueryExecutionInfoVersion": 2,
            "queryInfo": {
                "distinctType": "None",
                "top": null,
                "offset": null,
                "limit": null,
                "orderBy": [],
                "orderByExpressions": [],
                "groupByExpressions": [],
                "groupByAliases": [],
                "aggregates": [],
                "groupByAliasToAggregateType": {},
                "rewrittenQuery": "",
                "hasSelectValue": false,
                "dCountInfo": null,
                "hasNonStreamingOrderBy": false
            },
            "queryRanges": [
                { "min": "", "max": "FF", "isMinInclusive": true, "isMaxInclusive": false }
            ]
        }),
    ))
}

#[derive(Deserialize)]
struct QuerySpec {
    query: String,
    /// Absent or `null` when the query has none.
    #[serde(default)]
    parameters: Option<Vec<QueryParameter>>,
}

#[derive(Deserialize, Serialize)]
struct QueryParameter {
    name: String,
    value: Value,
}

impl QuerySpec {
    fn parse(body: &[u8]) -> Result<Self, Failure> {
        serde_json::from_slice(body).map_err(|e| {
            Failure::BadRequest(format!(
                "the query body must be {{\"query\": \"...\", \"parameters\": [{{\"name\": \"@p\", \"value\": ...}}]}} ({})",
                if e.is_data() { "wrong shape".to_string() } else { format!("invalid JSON at line {}, column {}", e.line(), e.column()) }
            ))
        })
    }

    fn parameters(&self) -> Result<HashMap<String, Value>, Failure> {
        let mut out = HashMap::new();
        for p in self.parameters.iter().flatten() {
            if !p.name.starts_with('@') {
                return Err(Failure::BadRequest(format!(
                    "query parameter name '{}' must start with '@'",
                    p.name
                )));
            }
            if out.insert(p.name.clone(), p.value.clone()).is_some() {
                return Err(Failure::BadRequest(format!(
                    "query parameter '{}' is given twice",
                    p.name
                )));
            }
        }
        Ok(out)
    }

    /// What a continuation token is tied to: the query text and its
    /// parameter values.
    fn fingerprint_source(&self) -> String {
        format!(
            "{}\u{0}{}",
            self.query,
            serde_json::to_string(&self.parameters.as_deref().unwrap_or_default())
                .unwrap_or_default()
        )
    }
}

/// The position after the last row of a page.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Continuation {
    /// Fingerprint of the query, parameters, scope and order it belongs to.
    f: String,
    /// Sort rank and value of the last row (ORDER BY queries only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<(i64, SortValue)>,
    /// Partition key (canonical) and id of the last row.
    p: String,
    i: String,
}

/// A sort value as SQLite returned it, so it binds back with the same type.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
enum SortValue {
    I(i64),
    R(f64),
    T(String),
}

impl SortValue {
    fn from_sql(value: Option<&SqlValue>) -> Result<Self, Failure> {
        match value {
            Some(SqlValue::Integer(i)) => Ok(SortValue::I(*i)),
            Some(SqlValue::Real(r)) => Ok(SortValue::R(*r)),
            Some(SqlValue::Text(t)) => Ok(SortValue::T(t.clone())),
            _ => Err(Failure::Internal),
        }
    }

    fn to_sql(&self) -> SqlValue {
        match self {
            SortValue::I(i) => SqlValue::Integer(*i),
            SortValue::R(r) => SqlValue::Real(*r),
            SortValue::T(t) => SqlValue::Text(t.clone()),
        }
    }
}

fn encode_token(token: &Continuation) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(token).unwrap_or_default())
}

fn decode_token(raw: &str, fingerprint: &str, ordered: bool) -> Result<Continuation, Failure> {
    let invalid =
        || Failure::BadRequest("the continuation token (x-ms-continuation) is not valid".into());
    let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| invalid())?;
    let token: Continuation = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if token.f != fingerprint {
        return Err(Failure::BadRequest(
            "the continuation token (x-ms-continuation) does not belong to this query".into(),
        ));
    }
    if token.s.is_some() != ordered {
        return Err(invalid());
    }
    Ok(token)
}

fn page_size(request: &StoreRequest) -> Result<i64, Failure> {
    let Some(raw) = request.header("x-ms-max-item-count") else {
        return Ok(DEFAULT_PAGE_SIZE);
    };
    match raw.trim().parse::<i64>() {
        Ok(-1) => Ok(DEFAULT_PAGE_SIZE),
        Ok(n) if n >= 1 => Ok(n.min(MAX_PAGE_SIZE)),
        _ => Err(Failure::BadRequest(format!(
            "x-ms-max-item-count must be -1 or a positive integer (at most {MAX_PAGE_SIZE} is used), not '{raw}'"
        ))),
    }
}

/// SQL text and its parameters, built together so they never drift apart.
struct Statement {
    text: String,
    params: Vec<SqlValue>,
}

impl Statement {
    fn push(&mut self, fragment: &str) {
        self.text.push_str(fragment);
    }

    fn bind(&mut self, value: SqlValue) {
        self.params.push(value);
    }
}

// Cosmos DB's order of types: undefined < null < false < true < numbers <
// strings < arrays < objects. One placeholder: the JSON path.
const RANK_SQL: &str = "CASE json_type(body, ?) WHEN 'null' THEN 1 WHEN 'false' THEN 2 WHEN 'true' THEN 3 \
    WHEN 'integer' THEN 4 WHEN 'real' THEN 4 WHEN 'text' THEN 5 WHEN 'array' THEN 6 WHEN 'object' THEN 7 ELSE 0 END";
// The value compared within one rank (0 where the rank says it all).
// Two placeholders: the JSON path twice.
const VALUE_SQL: &str =
    "CASE WHEN json_type(body, ?) IN ('integer', 'real', 'text', 'array', 'object') \
    THEN json_extract(body, ?) ELSE 0 END";

fn number_value(n: &serde_json::Number) -> SqlValue {
    match n.as_i64() {
        Some(i) => SqlValue::Integer(i),
        None => SqlValue::Real(n.as_f64().unwrap_or(f64::MAX)),
    }
}

fn push_condition(
    stmt: &mut Statement,
    condition: &Condition,
    params: &HashMap<String, Value>,
) -> Result<(), Failure> {
    let (path, param) = match condition {
        Condition::Compare { path, param, .. } | Condition::StartsWith { path, param } => {
            (path, param)
        }
    };
    let value = params.get(param).ok_or_else(|| {
        Failure::BadRequest(format!(
            "query parameter '{param}' is used in the query but not given in parameters"
        ))
    })?;
    let json_path = SqlValue::Text(path.sqlite_json_path());
    match condition {
        Condition::StartsWith { .. } => {
            let Value::String(prefix) = value else {
                // STARTSWITH of a non-string is undefined in Cosmos DB: no match.
                stmt.push(" AND 0");
                return Ok(());
            };
            stmt.push(" AND (json_type(body, ?) = 'text' AND substr(json_extract(body, ?), 1, length(?)) = ?)");
            stmt.bind(json_path.clone());
            stmt.bind(json_path);
            stmt.bind(SqlValue::Text(prefix.clone()));
            stmt.bind(SqlValue::Text(prefix.clone()));
        }
        Condition::Compare { op, .. } => {
            let op_sql = op.sql();
            let (types, bound) = match value {
                Value::String(s) => ("'text'", SqlValue::Text(s.clone())),
                Value::Number(n) => ("'integer', 'real'", number_value(n)),
                Value::Bool(b) => ("'true', 'false'", SqlValue::Integer(i64::from(*b))),
                Value::Null => {
                    // null only compares with null, and is equal to itself.
                    stmt.push(" AND (json_type(body, ?) = 'null' AND 0 ");
                    stmt.push(op_sql);
                    stmt.push(" 0)");
                    stmt.bind(json_path);
                    return Ok(());
                }
                Value::Array(_) | Value::Object(_) => {
                    return Err(Failure::BadRequest(format!(
                        "Unsupported query: comparing with an array or object (parameter {param})"
                    )))
                }
            };
            stmt.push(" AND (json_type(body, ?) IN (");
            stmt.push(types);
            stmt.push(") AND json_extract(body, ?) ");
            stmt.push(op_sql);
            stmt.push(" ?)");
            stmt.bind(json_path.clone());
            stmt.bind(json_path);
            stmt.bind(bound);
        }
    }
    Ok(())
}

/// An equality on `id` or on the partition key path also holds for the
/// column the store keeps it in: saying so lets SQLite use the primary key
/// instead of reading every document's body. It never changes what matches
/// (the JSON condition stays), so a value the columns cannot hold is simply
/// not hinted.
fn push_key_column(
    stmt: &mut Statement,
    container: &ContainerDef,
    condition: &Condition,
    params: &HashMap<String, Value>,
) {
    let Condition::Compare {
        path,
        op: CompareOp::Eq,
        param,
    } = condition
    else {
        return;
    };
    let Some(value) = params.get(param) else {
        return;
    };
    let is_path = |names: &[&str]| {
        path.steps().len() == names.len()
            && path
                .steps()
                .iter()
                .zip(names)
                .all(|(step, name)| matches!(step, PathStep::Key(k) if k == name))
    };
    // Both can apply: a container partitioned by `/id`.
    if is_path(&["id"]) {
        if let Value::String(id) = value {
            stmt.push(" AND id = ?");
            stmt.bind(SqlValue::Text(id.clone()));
        }
    }
    let segments: Vec<&str> = container
        .partition_key
        .segments()
        .iter()
        .map(String::as_str)
        .collect();
    if is_path(&segments) {
        if let Some(pk) = partition::PartitionKey::of_value(value) {
            stmt.push(" AND pk = ?");
            stmt.bind(SqlValue::Text(pk.canonical()));
        }
    }
}

fn fingerprint(container: &ContainerDef, source: &str, partition: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    for part in [
        container.database.as_str(),
        container.container.as_str(),
        source,
        partition.unwrap_or("*"),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..12])
}

fn run(
    sql: &impl Sql,
    container: &ContainerDef,
    request: &StoreRequest,
    parsed: &Query,
    params: &HashMap<String, Value>,
    source: &str,
) -> Result<StoreResponse, Failure> {
    let limit = page_size(request)?;
    let partition = partition::from_header(request)?.map(|pk| pk.canonical());
    let order = parsed.order_by.as_ref();
    let fingerprint = fingerprint(
        container,
        &format!(
            "{source}\u{0}{}",
            order.map_or("", |o| if o.descending { "desc" } else { "asc" })
        ),
        partition.as_deref(),
    );
    let after = request
        .header(CONTINUATION_HEADER)
        .filter(|v| !v.trim().is_empty())
        .map(|raw| decode_token(raw, &fingerprint, order.is_some()))
        .transpose()?;

    let mut stmt = Statement {
        text: String::new(),
        params: Vec::new(),
    };
    // Inner query: filter, and compute the sort rank and value once per row.
    stmt.push("SELECT pk, id, body, r, v FROM (SELECT pk, id, body, ");
    match order {
        Some(o) => {
            let path = SqlValue::Text(o.path.sqlite_json_path());
            stmt.push(RANK_SQL);
            stmt.push(" AS r, ");
            stmt.push(VALUE_SQL);
            stmt.push(" AS v");
            stmt.bind(path.clone());
            stmt.bind(path.clone());
            stmt.bind(path);
        }
        None => stmt.push("0 AS r, 0 AS v"),
    }
    stmt.push(" FROM docstore_documents WHERE ");
    // Each alternative names the container (and the key columns it can),
    // so that SQLite looks each one up in the primary key index.
    for (i, alternative) in parsed.alternatives.iter().enumerate() {
        if i > 0 {
            stmt.push(" OR ");
        }
        stmt.push("(db = ? AND coll = ?");
        stmt.bind(container.database.as_str().into());
        stmt.bind(container.container.as_str().into());
        if let Some(pk) = &partition {
            stmt.push(" AND pk = ?");
            stmt.bind(pk.as_str().into());
        }
        for condition in alternative {
            push_key_column(&mut stmt, container, condition, params);
        }
        for condition in alternative {
            push_condition(&mut stmt, condition, params)?;
        }
        stmt.push(")");
    }
    stmt.push(")");
    let descending = order.is_some_and(|o| o.descending);
    let cmp = if descending { "<" } else { ">" };
    if let Some(token) = after {
        match &token.s {
            Some((rank, value)) => {
                stmt.push(" WHERE (r, v, pk, id) ");
                stmt.push(cmp);
                stmt.push(" (?, ?, ?, ?)");
                stmt.bind(SqlValue::Integer(*rank));
                stmt.bind(value.to_sql());
            }
            None => {
                stmt.push(" WHERE (pk, id) ");
                stmt.push(cmp);
                stmt.push(" (?, ?)");
            }
        }
        stmt.bind(SqlValue::Text(token.p));
        stmt.bind(SqlValue::Text(token.i));
    }
    stmt.push(if descending {
        " ORDER BY r DESC, v DESC, pk DESC, id DESC LIMIT ?"
    } else {
        " ORDER BY r, v, pk, id LIMIT ?"
    });
    // One extra row tells whether another page exists.
    stmt.bind(SqlValue::Integer(limit + 1));

    let mut rows = sql.execute(&stmt.text, &stmt.params)?;
    let mut more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);

    // Like Cosmos DB, a page also ends when its documents reach a size budget
    // (always at least one document); the keyset resumes after the last one.
    let mut bodies = Vec::with_capacity(rows.len());
    let mut bytes = 0;
    for (taken, row) in rows.iter().enumerate() {
        let body = text(row.get(2))?;
        if taken > 0 && bytes + body.len() > MAX_PAGE_BYTES {
            more = true;
            break;
        }
        bytes += body.len();
        bodies.push(body);
    }
    rows.truncate(bodies.len());
    let continuation = match (more, rows.last()) {
        (true, Some(last)) => Some(encode_token(&Continuation {
            f: fingerprint,
            s: match order {
                Some(_) => Some((
                    match last.get(3) {
                        Some(SqlValue::Integer(r)) => *r,
                        _ => return Err(Failure::Internal),
                    },
                    SortValue::from_sql(last.get(4))?,
                )),
                None => None,
            },
            p: text(last.first())?,
            i: text(last.get(1))?,
        })),
        _ => None,
    };
    // Stored bodies are JSON the store serialized itself: they are spliced
    // into the envelope without another parse.
    let body = format!(
        "{{\"_rid\":{},\"Documents\":[{}],\"_count\":{}}}",
        Value::String(rid::container(
            container.database.as_str(),
            container.container.as_str()
        )),
        bodies.join(","),
        bodies.len()
    );
    let mut response = raw_json_response(200, body);
    response
        .headers
        .push(("x-ms-item-count".into(), bodies.len().to_string()));
    if let Some(token) = continuation {
        response.headers.push((CONTINUATION_HEADER.into(), token));
    }
    Ok(response)
}

#[cfg(test)]
pub(crate) fn explain(
    parsed: &Query,
    params: &HashMap<String, Value>,
) -> Result<(String, Vec<SqlValue>), Failure> {
    let mut stmt = Statement {
        text: String::new(),
        params: Vec::new(),
    };
    for condition in parsed.conditions() {
        push_condition(&mut stmt, condition, params)?;
    }
    Ok((stmt.text, stmt.params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameter_values_never_reach_the_sql_text() {
        let evil = "x'); DROP TABLE docstore_documents; --";
        let parsed =
            query::parse("SELECT * FROM c WHERE c.name = @n AND STARTSWITH(c.city, @n)").unwrap();
        let params = HashMap::from([("@n".to_string(), json!(evil))]);
        let (text, bound) = explain(&parsed, &params).unwrap();
        assert!(!text.contains("DROP"), "{text}");
        assert!(!text.contains("name"), "paths are bound too: {text}");
        assert_eq!(text.matches('?').count(), bound.len());
        assert!(bound.contains(&SqlValue::Text(evil.into())));
    }

    #[test]
    fn undefined_parameters_and_composite_values_are_refused() {
        let parsed = query::parse("SELECT * FROM c WHERE c.a = @a").unwrap();
        assert!(
            matches!(explain(&parsed, &HashMap::new()), Err(Failure::BadRequest(m)) if m.contains("@a"))
        );
        let params = HashMap::from([("@a".to_string(), json!([1]))]);
        assert!(
            matches!(explain(&parsed, &params), Err(Failure::BadRequest(m)) if m.starts_with("Unsupported query"))
        );
    }

    #[test]
    fn tokens_round_trip_and_are_tied_to_their_query() {
        let token = Continuation {
            f: "abc".into(),
            s: Some((5, SortValue::T("x".into()))),
            p: "\"p\"".into(),
            i: "id".into(),
        };
        let raw = encode_token(&token);
        assert_eq!(decode_token(&raw, "abc", true).unwrap(), token);
        assert!(
            matches!(decode_token(&raw, "other", true), Err(Failure::BadRequest(m)) if m.contains("does not belong"))
        );
        assert!(matches!(
            decode_token(&raw, "abc", false),
            Err(Failure::BadRequest(_))
        ));
        assert!(matches!(
            decode_token("!!!", "abc", true),
            Err(Failure::BadRequest(_))
        ));
        assert!(matches!(
            decode_token("e30", "abc", true),
            Err(Failure::BadRequest(_))
        ));
    }
}
