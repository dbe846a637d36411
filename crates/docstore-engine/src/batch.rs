//! Transactional batch: `POST .../docs` with `x-ms-cosmos-is-batch-request:
//! True` and `x-ms-cosmos-batch-atomic: True`, as the Cosmos SDKs send it
//! (azure-cosmos `_base.py` `_populate_batch_headers` and
//! `_format_batch_operations`): a JSON array of up to 100 operations on one
//! partition (the request's partition key header), each
//! `{"operationType": "Create" | "Upsert" | "Replace" | "Read" | "Delete",
//! "id", "resourceBody", "ifMatch" | "ifNoneMatch"}`.
//!
//! All of them commit together or none does. The answer is 200 with one
//! result per operation (`statusCode`, `requestCharge`, `eTag`,
//! `resourceBody`), or, when an operation fails (4xx), 207 with that
//! operation's status and 424 for every other: nothing was written. A store
//! failure (busy, internal) fails the whole request as a point operation
//! would, so Cosmos clients retry it the same way.
//!
//! Not modelled, refused with 400: `Patch` (the docstore has no patch), a
//! non-atomic batch (`x-ms-cosmos-batch-atomic` false: the SDKs' bulk mode
//! uses another wire format), and an operation whose document names another
//! partition than the header.

use serde_json::{json, Map, Value};

use crate::config::ContainerDef;
use crate::documents::{self, DocumentId};
use crate::partition;
use crate::reply::{json_response, Failure};
use crate::sqlstore;
use crate::{Sql, StoreRequest, StoreResponse};

/// Cosmos DB's limit on operations in one transactional batch.
pub(crate) const MAX_OPERATIONS: usize = 100;

enum Operation {
    Create(documents::IncomingDocument),
    Upsert(documents::IncomingDocument, Option<String>),
    Replace(documents::IncomingDocument, Option<String>),
    Read(DocumentId, Option<String>),
    Delete(DocumentId, Option<String>),
}

/// Why a batch did not commit: one operation's own failure (answered 207),
/// or the store's (answered as a point operation would be).
enum Abort {
    Operation { index: usize, failure: Failure },
    Store(Failure),
}

impl From<Failure> for Abort {
    fn from(failure: Failure) -> Self {
        Abort::Store(failure)
    }
}

pub(crate) fn execute(
    sql: &impl Sql,
    container: &ContainerDef,
    request: &StoreRequest,
    now: i64,
) -> Result<StoreResponse, Failure> {
    if !request.header_is_true("x-ms-cosmos-batch-atomic") {
        return Err(Failure::BadRequest(
            "only atomic batches (x-ms-cosmos-batch-atomic: True) are supported by the local \
             document store"
                .into(),
        ));
    }
    let pk = partition::required_from_header(request)?;
    let operations = parse(container, &pk, request)?;
    let outcome = sqlstore::transaction(sql, || {
        operations
            .iter()
            .enumerate()
            .map(|(index, operation)| {
                run(sql, container, &pk, operation, now).map_err(|failure| match failure {
                    Failure::BadRequest(_)
                    | Failure::NotFound(_)
                    | Failure::Conflict(_)
                    | Failure::PreconditionFailed(_) => Abort::Operation { index, failure },
                    other => Abort::Store(other),
                })
            })
            .collect::<Result<Vec<_>, Abort>>()
    });
    match outcome {
        Ok(results) => Ok(json_response(
            200,
            &Value::Array(results.into_iter().map(result_json).collect()),
        )),
        Err(Abort::Store(failure)) => Err(failure),
        Err(Abort::Operation { index, failure }) => {
            let (status, code, message) = failure.parts();
            let results = (0..operations.len())
                .map(|i| {
                    if i == index {
                        json!({"statusCode": status, "requestCharge": 1,
                               "resourceBody": {"code": code, "message": message}})
                    } else {
                        json!({"statusCode": 424, "requestCharge": 0})
                    }
                })
                .collect();
            Ok(json_response(207, &Value::Array(results)))
        }
    }
}

fn parse(
    container: &ContainerDef,
    pk: &partition::PartitionKey,
    request: &StoreRequest,
) -> Result<Vec<Operation>, Failure> {
    let body = documents::json_body(&request.body, "the batch")?;
    let Value::Array(items) = body else {
        return Err(Failure::BadRequest(
            "a batch must be a JSON array of operations".into(),
        ));
    };
    if items.is_empty() {
        return Err(Failure::BadRequest(
            "a batch must have at least one operation".into(),
        ));
    }
    if items.len() > MAX_OPERATIONS {
        return Err(Failure::BadRequest(format!(
            "Batch request has more operations than what is supported: at most {MAX_OPERATIONS}"
        )));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            parse_operation(container, pk, item).map_err(|e| {
                Failure::BadRequest(format!("batch operation {index}: {}", e.parts().2))
            })
        })
        .collect()
}

fn parse_operation(
    container: &ContainerDef,
    pk: &partition::PartitionKey,
    item: Value,
) -> Result<Operation, Failure> {
    let Value::Object(mut fields) = item else {
        return Err(Failure::BadRequest(
            "an operation must be a JSON object".into(),
        ));
    };
    let kind = match fields.remove("operationType") {
        Some(Value::String(kind)) => kind,
        _ => return Err(Failure::BadRequest("operationType must be a string".into())),
    };
    let condition = |fields: &mut Map<String, Value>, name: &str| match fields.remove(name) {
        None => Ok(None),
        Some(Value::String(etag)) => Ok(Some(etag)),
        Some(_) => Err(Failure::BadRequest(format!("{name} must be a string"))),
    };
    let if_match = condition(&mut fields, "ifMatch")?;
    let if_none_match = condition(&mut fields, "ifNoneMatch")?;
    let document = |fields: &mut Map<String, Value>| {
        let body = fields
            .remove("resourceBody")
            .ok_or_else(|| Failure::BadRequest("resourceBody is required".into()))?;
        documents::incoming_document(container, body, pk.clone())
    };
    let id = |fields: &mut Map<String, Value>| match fields.remove("id") {
        Some(Value::String(id)) => DocumentId::parse(&id),
        _ => Err(Failure::BadRequest("id must be a string".into())),
    };
    let write_condition = || {
        if if_none_match.is_some() {
            Err(Failure::BadRequest(format!(
                "ifNoneMatch is not supported on {kind}"
            )))
        } else {
            Ok(if_match.clone())
        }
    };
    let operation = match kind.to_ascii_lowercase().as_str() {
        "create" => {
            if if_match.is_some() || if_none_match.is_some() {
                return Err(Failure::BadRequest(
                    "a Create takes no ifMatch or ifNoneMatch".into(),
                ));
            }
            Operation::Create(document(&mut fields)?)
        }
        "upsert" => Operation::Upsert(document(&mut fields)?, write_condition()?),
        "replace" => {
            let id = id(&mut fields)?;
            let doc = document(&mut fields)?;
            if doc.id != id {
                return Err(Failure::BadRequest(
                    "the id in the document does not match the operation's id".into(),
                ));
            }
            Operation::Replace(doc, write_condition()?)
        }
        "read" => {
            if if_match.is_some() {
                return Err(Failure::BadRequest(
                    "ifMatch is not supported on Read".into(),
                ));
            }
            Operation::Read(id(&mut fields)?, if_none_match)
        }
        "delete" => Operation::Delete(id(&mut fields)?, write_condition()?),
        "patch" => {
            return Err(Failure::BadRequest(
                "Patch is not supported by the local document store".into(),
            ))
        }
        _ => {
            return Err(Failure::BadRequest(format!(
                "unknown operationType {kind:?}"
            )))
        }
    };
    // The SDKs send only these fields; anything else is a mistake to report.
    if let Some(name) = fields.keys().next() {
        return Err(Failure::BadRequest(format!("unknown field {name:?}")));
    }
    Ok(operation)
}

fn run(
    sql: &impl Sql,
    container: &ContainerDef,
    pk: &partition::PartitionKey,
    operation: &Operation,
    now: i64,
) -> Result<StoreResponse, Failure> {
    match operation {
        Operation::Create(doc) => documents::create_new(sql, container, doc, now),
        Operation::Upsert(doc, if_match) => {
            documents::upsert_within(sql, container, doc, if_match.as_deref(), now)
        }
        Operation::Replace(doc, if_match) => {
            documents::replace_within(sql, container, doc, if_match.as_deref(), now)
        }
        Operation::Read(id, if_none_match) => {
            documents::read_document(sql, container, pk, id, if_none_match.as_deref())
        }
        Operation::Delete(id, if_match) => {
            documents::delete_within(sql, container, pk, id, if_match.as_deref())
        }
    }
}

/// One operation's result as Cosmos DB writes it in a batch answer.
fn result_json(response: StoreResponse) -> Value {
    let mut result = Map::new();
    result.insert("statusCode".into(), Value::from(response.status));
    result.insert("requestCharge".into(), Value::from(1));
    if let Some((_, etag)) = response.headers.iter().find(|(name, _)| name == "etag") {
        result.insert("eTag".into(), Value::String(etag.clone()));
    }
    if let Ok(body) = serde_json::from_slice::<Value>(&response.body) {
        result.insert("resourceBody".into(), body);
    }
    Value::Object(result)
}
