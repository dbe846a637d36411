//! Point operations on documents: create (and upsert), read, replace, delete.

use crate::config::ContainerDef;
use crate::partition::{self, PartitionKey};
use crate::reply::{raw_json_response, Failure};
use crate::sqlstore::{self, text};
use crate::{rid, Sql, SqlValue, StoreRequest, StoreResponse};
use serde_json::{Map, Value};

/// Properties the store owns; whatever a client sends for them is replaced.
const SYSTEM_PROPERTIES: [&str; 5] = ["_rid", "_self", "_etag", "_attachments", "_ts"];

/// A valid document id: a string of 1 to 255 characters without `/ \ ? #`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DocumentId(String);

impl DocumentId {
    pub(crate) fn parse(id: &str) -> Result<Self, Failure> {
        if id.is_empty() {
            return Err(Failure::BadRequest(
                "the document id must not be empty".into(),
            ));
        }
        if id.chars().count() > 255 {
            return Err(Failure::BadRequest(
                "the document id is longer than 255 characters".into(),
            ));
        }
        if id.contains(['/', '\\', '?', '#']) {
            return Err(Failure::BadRequest(
                "the document id must not contain any of the characters / \\ ? #".into(),
            ));
        }
        Ok(Self(id.to_string()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// A request body that is a JSON object, with its id and partition key
/// checked against the request.
pub(crate) struct IncomingDocument {
    pub(crate) id: DocumentId,
    partition_key: PartitionKey,
    properties: Map<String, Value>,
}

fn parse_document(
    container: &ContainerDef,
    request: &StoreRequest,
) -> Result<IncomingDocument, Failure> {
    let value = json_body(&request.body, "the request body")?;
    incoming_document(container, value, partition::required_from_header(request)?)
}

/// A request body as JSON; `what` names it in the 400 when it is not.
pub(crate) fn json_body(body: &[u8], what: &str) -> Result<Value, Failure> {
    serde_json::from_slice(body).map_err(|e| {
        Failure::BadRequest(format!(
            "{what} is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

/// A document to write, checked: a JSON object with a valid id whose
/// partition key is the one the request (or batch) names.
pub(crate) fn incoming_document(
    container: &ContainerDef,
    value: Value,
    from_header: PartitionKey,
) -> Result<IncomingDocument, Failure> {
    let Value::Object(properties) = value else {
        return Err(Failure::BadRequest(
            "the document must be a JSON object".into(),
        ));
    };
    let id = match properties.get("id") {
        Some(Value::String(id)) => DocumentId::parse(id)?,
        Some(_) => {
            return Err(Failure::BadRequest(
                "the document id must be a string".into(),
            ))
        }
        None => return Err(Failure::BadRequest(
            "The input content is invalid because the required properties - 'id; ' - are missing"
                .into(),
        )),
    };
    let from_body =
        partition::from_document(&container.partition_key, &Value::Object(properties.clone()))?;
    if from_header.canonical() != from_body.canonical() {
        return Err(Failure::BadRequest(
            "PartitionKey extracted from document doesn't match the one specified in the header"
                .into(),
        ));
    }
    Ok(IncomingDocument {
        id,
        partition_key: from_header,
        properties,
    })
}

/// The stored row of a document, as far as a write needs it.
struct Existing {
    rid: String,
    etag: String,
}

/// The parameters of `db = ? AND coll = ? AND pk = ? AND id = ?`: one
/// document's key.
fn document_key(container: &ContainerDef, pk: &str, id: &str) -> [SqlValue; 4] {
    [
        container.database.as_str().into(),
        container.container.as_str().into(),
        pk.into(),
        id.into(),
    ]
}

fn find(
    sql: &impl Sql,
    container: &ContainerDef,
    pk: &str,
    id: &str,
) -> Result<Option<Existing>, Failure> {
    let rows = sql.execute(
        "SELECT rid, etag FROM docstore_documents WHERE db = ? AND coll = ? AND pk = ? AND id = ?",
        &document_key(container, pk, id),
    )?;
    match rows.first() {
        None => Ok(None),
        Some(row) => Ok(Some(Existing {
            rid: text(row.first())?,
            etag: text(row.get(1))?,
        })),
    }
}

/// Whether a presented `If-Match` / `If-None-Match` value names `etag`.
fn etag_matches(presented: &str, etag: &str) -> bool {
    let presented = presented.trim();
    presented == "*" || presented.trim_matches('"') == etag.trim_matches('"')
}

fn check_if_match(if_match: Option<&str>, existing: &Existing) -> Result<(), Failure> {
    match if_match {
        Some(expected) if !etag_matches(expected, &existing.etag) => Err(Failure::stale_etag()),
        _ => Ok(()),
    }
}

/// The document as stored: the client's properties plus system properties.
fn stored_body(
    container: &ContainerDef,
    mut properties: Map<String, Value>,
    rid: &str,
    etag: &str,
    ts: i64,
) -> String {
    for name in SYSTEM_PROPERTIES {
        properties.remove(name);
    }
    let db = container.database.as_str();
    let coll = container.container.as_str();
    properties.insert("_rid".into(), Value::String(rid.to_string()));
    properties.insert(
        "_self".into(),
        Value::String(rid::document_self(db, coll, rid)),
    );
    properties.insert("_etag".into(), Value::String(etag.to_string()));
    properties.insert("_attachments".into(), Value::String("attachments/".into()));
    properties.insert("_ts".into(), Value::from(ts));
    Value::Object(properties).to_string()
}

fn document_response(status: u16, body: String, etag: String) -> StoreResponse {
    let mut response = raw_json_response(status, body);
    response.headers.push(("etag".into(), etag));
    response
}

#[allow(clippy::too_many_arguments)]
fn insert(
    sql: &impl Sql,
    container: &ContainerDef,
    id: &DocumentId,
    partition_key: &PartitionKey,
    rid: &str,
    etag: &str,
    body: &str,
    ts: i64,
) -> Result<(), Failure> {
    sql.execute(
        "INSERT INTO docstore_documents (db, coll, pk, id, rid, etag, ts, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            container.database.as_str().into(),
            container.container.as_str().into(),
            partition_key.canonical().into(),
            id.as_str().into(),
            rid.into(),
            etag.into(),
            SqlValue::Integer(ts),
            body.into(),
        ],
    )?;
    Ok(())
}

fn update(
    sql: &impl Sql,
    container: &ContainerDef,
    doc: &IncomingDocument,
    etag: &str,
    body: &str,
    ts: i64,
) -> Result<(), Failure> {
    sql.execute(
        "UPDATE docstore_documents SET etag = ?, ts = ?, body = ? WHERE db = ? AND coll = ? AND pk = ? AND id = ?",
        &[
            etag.into(),
            SqlValue::Integer(ts),
            body.into(),
            container.database.as_str().into(),
            container.container.as_str().into(),
            doc.partition_key.canonical().into(),
            doc.id.as_str().into(),
        ],
    )?;
    Ok(())
}

/// `POST .../docs`: create (409 if the id exists in the partition), or upsert
/// with `x-ms-documentdb-is-upsert: True` (201 created, 200 replaced).
pub(crate) fn create(
    sql: &impl Sql,
    container: &ContainerDef,
    request: &StoreRequest,
    now: i64,
) -> Result<StoreResponse, Failure> {
    let doc = parse_document(container, request)?;
    if !request.header_is_true("x-ms-documentdb-is-upsert") {
        // One statement, no transaction: the primary key lets exactly one
        // of two concurrent creates of an id in, and the other gets 409.
        return create_new(sql, container, &doc, now);
    }
    sqlstore::transaction(sql, || {
        upsert_within(sql, container, &doc, request.header("if-match"), now)
    })
}

/// Creates `doc`: 201, or 409 when its id is taken in its partition.
pub(crate) fn create_new(
    sql: &impl Sql,
    container: &ContainerDef,
    doc: &IncomingDocument,
    now: i64,
) -> Result<StoreResponse, Failure> {
    let etag = rid::new_etag();
    let new_rid = rid::new_document(container.database.as_str(), container.container.as_str());
    let body = stored_body(container, doc.properties.clone(), &new_rid, &etag, now);
    insert(
        sql,
        container,
        &doc.id,
        &doc.partition_key,
        &new_rid,
        &etag,
        &body,
        now,
    )?;
    Ok(document_response(201, body, etag))
}

/// Upserts `doc` inside the caller's transaction: 200 replaced, 201
/// created, 412 when `if_match` is stale or names a missing document.
pub(crate) fn upsert_within(
    sql: &impl Sql,
    container: &ContainerDef,
    doc: &IncomingDocument,
    if_match: Option<&str>,
    now: i64,
) -> Result<StoreResponse, Failure> {
    match find(sql, container, &doc.partition_key.canonical(), doc.id.as_str())? {
        Some(existing) => overwrite(sql, container, doc, &existing, if_match, now),
        None if if_match.is_some() => Err(Failure::PreconditionFailed(
            "One of the specified pre-condition is not met: If-Match was sent but the document does not exist."
                .into(),
        )),
        None => create_new(sql, container, doc, now),
    }
}

/// `PUT .../docs/{id}`: replace (404 if absent, 412 on a stale `If-Match`).
pub(crate) fn replace(
    sql: &impl Sql,
    container: &ContainerDef,
    id: &str,
    request: &StoreRequest,
    now: i64,
) -> Result<StoreResponse, Failure> {
    let url_id = DocumentId::parse(id)?;
    let doc = parse_document(container, request)?;
    if doc.id != url_id {
        return Err(Failure::BadRequest(
            "the id in the document does not match the id in the request path".into(),
        ));
    }
    sqlstore::transaction(sql, || {
        replace_within(sql, container, &doc, request.header("if-match"), now)
    })
}

/// Replaces `doc` inside the caller's transaction: 200, 404, or 412.
pub(crate) fn replace_within(
    sql: &impl Sql,
    container: &ContainerDef,
    doc: &IncomingDocument,
    if_match: Option<&str>,
    now: i64,
) -> Result<StoreResponse, Failure> {
    let existing = find(
        sql,
        container,
        &doc.partition_key.canonical(),
        doc.id.as_str(),
    )?
    .ok_or_else(Failure::not_found_document)?;
    overwrite(sql, container, doc, &existing, if_match, now)
}

/// Writes `doc` over the stored `existing` if `if_match` allows: 200 or 412.
fn overwrite(
    sql: &impl Sql,
    container: &ContainerDef,
    doc: &IncomingDocument,
    existing: &Existing,
    if_match: Option<&str>,
    now: i64,
) -> Result<StoreResponse, Failure> {
    check_if_match(if_match, existing)?;
    let etag = rid::new_etag();
    let body = stored_body(container, doc.properties.clone(), &existing.rid, &etag, now);
    update(sql, container, doc, &etag, &body, now)?;
    Ok(document_response(200, body, etag))
}

/// `GET .../docs/{id}`: 200, 404, or 304 when `If-None-Match` names the
/// current etag.
pub(crate) fn read(
    sql: &impl Sql,
    container: &ContainerDef,
    id: &str,
    request: &StoreRequest,
) -> Result<StoreResponse, Failure> {
    let id = DocumentId::parse(id)?;
    let pk = partition::required_from_header(request)?;
    read_document(sql, container, &pk, &id, request.header("if-none-match"))
}

/// Reads a document: 200, 404, or 304 when `if_none_match` names its etag.
pub(crate) fn read_document(
    sql: &impl Sql,
    container: &ContainerDef,
    pk: &PartitionKey,
    id: &DocumentId,
    if_none_match: Option<&str>,
) -> Result<StoreResponse, Failure> {
    let rows = sql.execute(
        "SELECT body, etag FROM docstore_documents WHERE db = ? AND coll = ? AND pk = ? AND id = ?",
        &document_key(container, &pk.canonical(), id.as_str()),
    )?;
    let row = rows.first().ok_or_else(Failure::not_found_document)?;
    let (body, etag) = (text(row.first())?, text(row.get(1))?);
    if if_none_match.is_some_and(|v| etag_matches(v, &etag)) {
        let mut response = raw_json_response(304, String::new());
        response.headers.push(("etag".into(), etag));
        return Ok(response);
    }
    Ok(document_response(200, body, etag))
}

/// `DELETE .../docs/{id}`: 204, 404, or 412 on a stale `If-Match`.
pub(crate) fn delete(
    sql: &impl Sql,
    container: &ContainerDef,
    id: &str,
    request: &StoreRequest,
) -> Result<StoreResponse, Failure> {
    let id = DocumentId::parse(id)?;
    let pk = partition::required_from_header(request)?;
    sqlstore::transaction(sql, || {
        delete_within(sql, container, &pk, &id, request.header("if-match"))
    })
}

/// Deletes a document inside the caller's transaction: 204, 404, or 412.
pub(crate) fn delete_within(
    sql: &impl Sql,
    container: &ContainerDef,
    pk: &PartitionKey,
    id: &DocumentId,
    if_match: Option<&str>,
) -> Result<StoreResponse, Failure> {
    let pk = pk.canonical();
    let existing =
        find(sql, container, &pk, id.as_str())?.ok_or_else(Failure::not_found_document)?;
    check_if_match(if_match, &existing)?;
    sql.execute(
        "DELETE FROM docstore_documents WHERE db = ? AND coll = ? AND pk = ? AND id = ?",
        &document_key(container, &pk, id.as_str()),
    )?;
    Ok(raw_json_response(204, String::new()))
}
