//! The database account, databases, containers and partition key ranges: all
//! fixed by configuration, answered without touching SQL.

use crate::config::{ContainerDef, StoreConfig};
use crate::reply::{json_response, Failure};
use crate::{rid, StoreRequest, StoreResponse};
use serde_json::{json, Value};

/// What Cosmos DB advertises as its query engine limits; some SDKs parse it.
const QUERY_ENGINE_CONFIGURATION: &str = r#"{"maxSqlQueryInputLength":262144,"maxJoinsPerSqlQuery":5,"maxLogicalAndPerSqlQuery":500,"maxLogicalOrPerSqlQuery":500,"maxUdfRefPerSqlQuery":10,"maxInExpressionItemsCount":16000,"queryMaxInMemorySortDocumentCount":500,"maxQueryRequestTimeoutFraction":0.9,"sqlAllowNonFiniteNumbers":false,"sqlAllowAggregateFunctions":true,"sqlAllowSubQuery":true,"sqlAllowScalarSubQuery":true,"allowNewKeywords":true,"sqlAllowLike":false,"sqlAllowGroupByClause":false,"maxSpatialQueryCells":12,"spatialMaxGeometryPointCount":256,"sqlDisableOptimizationFlags":0,"sqlAllowTop":false,"enableSpatialIndexing":false}"#;

/// `GET /`. The locations advertise the store's own base URL, scheme
/// included: SDKs send every later request there.
pub(crate) fn account(base_url: &str) -> StoreResponse {
    let endpoint = format!("{}/", base_url.trim_end_matches('/'));
    let location = json!([{ "name": "local", "databaseAccountEndpoint": endpoint }]);
    json_response(
        200,
        &json!({
            "id": "localhost",
            "_rid": "localhost",
            "_self": "",
            "media": "//media/",
            "addresses": "//addresses/",
            "_dbs": "//dbs/",
            "writableLocations": location,
            "readableLocations": location,
            "enableMultipleWriteLocations": false,
            "userReplicationPolicy": { "asyncReplication": false, "minReplicaSetSize": 1, "maxReplicasetSize": 4 },
            "userConsistencyPolicy": { "defaultConsistencyLevel": "Session" },
            "systemReplicationPolicy": { "minReplicaSetSize": 1, "maxReplicasetSize": 4 },
            "readPolicy": { "primaryReadCoefficient": 1, "secondaryReadCoefficient": 1 },
            "queryEngineConfiguration": QUERY_ENGINE_CONFIGURATION,
        }),
    )
}

fn database_json(db: &str) -> Value {
    json!({
        "id": db,
        "_rid": rid::database(db),
        "_self": rid::database_self(db),
        "_etag": rid::fixed_etag(&["db", db]),
        "_colls": "colls/",
        "_users": "users/",
        "_ts": 0,
    })
}

fn container_json(def: &ContainerDef) -> Value {
    let (db, coll) = (def.database.as_str(), def.container.as_str());
    json!({
        "id": coll,
        "indexingPolicy": {
            "indexingMode": "consistent",
            "automatic": true,
            "includedPaths": [{ "path": "/*" }],
            "excludedPaths": [{ "path": "/\"_etag\"/?" }],
        },
        "partitionKey": { "paths": [def.partition_key.as_cosmos_path()], "kind": "Hash", "version": 2 },
        "conflictResolutionPolicy": { "mode": "LastWriterWins", "conflictResolutionPath": "/_ts", "conflictResolutionProcedure": "" },
        "geospatialConfig": { "type": "Geography" },
        "_rid": rid::container(db, coll),
        "_ts": 0,
        "_self": rid::container_self(db, coll),
        "_etag": rid::fixed_etag(&["coll", db, coll, &def.partition_key.as_cosmos_path()]),
        "_docs": "docs/",
        "_sprocs": "sprocs/",
        "_triggers": "triggers/",
        "_udfs": "udfs/",
        "_conflicts": "conflicts/",
    })
}

fn unknown_database(db: &str) -> Failure {
    Failure::NotFound(format!("database '{db}' does not exist"))
}

fn unknown_container(db: &str, coll: &str) -> Failure {
    Failure::NotFound(format!(
        "container '{coll}' does not exist in database '{db}'"
    ))
}

fn fixed_schema(what: &str) -> Failure {
    Failure::Forbidden(format!(
        "{what} is not supported by the local document store: databases and containers come only from its configuration (the docstorecontainers variable)"
    ))
}

pub(crate) fn list_databases(config: &StoreConfig) -> StoreResponse {
    let dbs: Vec<Value> = config
        .databases()
        .iter()
        .map(|d| database_json(d.as_str()))
        .collect();
    json_response(
        200,
        &json!({ "_rid": "", "Databases": dbs, "_count": dbs.len() }),
    )
}

pub(crate) fn database(config: &StoreConfig, db: &str) -> Result<StoreResponse, Failure> {
    if !config.has_database(db) {
        return Err(unknown_database(db));
    }
    Ok(json_response(200, &database_json(db)))
}

pub(crate) fn list_containers(config: &StoreConfig, db: &str) -> Result<StoreResponse, Failure> {
    if !config.has_database(db) {
        return Err(unknown_database(db));
    }
    let colls: Vec<Value> = config
        .containers()
        .iter()
        .filter(|d| d.database.as_str() == db)
        .map(container_json)
        .collect();
    Ok(json_response(
        200,
        &json!({ "_rid": rid::database(db), "DocumentCollections": colls, "_count": colls.len() }),
    ))
}

pub(crate) fn container(
    config: &StoreConfig,
    db: &str,
    coll: &str,
) -> Result<StoreResponse, Failure> {
    if !config.has_database(db) {
        return Err(unknown_database(db));
    }
    let def = config
        .container(db, coll)
        .ok_or_else(|| unknown_container(db, coll))?;
    Ok(json_response(200, &container_json(def)))
}

fn requested_id(request: &StoreRequest) -> Result<String, Failure> {
    let body: Value = serde_json::from_slice(&request.body)
        .map_err(|_| Failure::BadRequest("the request body is not valid JSON".into()))?;
    match body.get("id") {
        Some(Value::String(id)) => Ok(id.clone()),
        _ => Err(Failure::BadRequest(
            "the request body has no string 'id'".into(),
        )),
    }
}

/// `POST /dbs`: 409 for a configured database (as Cosmos answers for an
/// existing one, so "create if not exists" flows work), 403 otherwise.
pub(crate) fn create_database(
    config: &StoreConfig,
    request: &StoreRequest,
) -> Result<StoreResponse, Failure> {
    let id = requested_id(request)?;
    if config.has_database(&id) {
        return Err(Failure::Conflict(format!("database '{id}' already exists")));
    }
    Err(fixed_schema("creating a database"))
}

/// `POST /dbs/{db}/colls`: 409 for a configured container, 403 otherwise.
pub(crate) fn create_container(
    config: &StoreConfig,
    db: &str,
    request: &StoreRequest,
) -> Result<StoreResponse, Failure> {
    if !config.has_database(db) {
        return Err(unknown_database(db));
    }
    let id = requested_id(request)?;
    if config.container(db, &id).is_some() {
        return Err(Failure::Conflict(format!(
            "container '{id}' already exists in database '{db}'"
        )));
    }
    Err(fixed_schema("creating a container"))
}

/// Any change to a database or container: 404 if unknown, else 403.
pub(crate) fn refuse_change(
    config: &StoreConfig,
    db: &str,
    coll: Option<&str>,
) -> Result<StoreResponse, Failure> {
    if !config.has_database(db) {
        return Err(unknown_database(db));
    }
    match coll {
        Some(coll) if config.container(db, coll).is_none() => Err(unknown_container(db, coll)),
        Some(_) => Err(fixed_schema("replacing or deleting a container")),
        None => Err(fixed_schema("replacing or deleting a database")),
    }
}

/// `GET .../pkranges`: one range covering every partition key. SDKs read it
/// as a change feed until `304 Not Modified`, so the answer carries a fixed
/// etag and a request presenting it gets 304.
pub(crate) fn partition_key_ranges(
    config: &StoreConfig,
    db: &str,
    coll: &str,
    request: &StoreRequest,
) -> Result<StoreResponse, Failure> {
    if !config.has_database(db) {
        return Err(unknown_database(db));
    }
    config
        .container(db, coll)
        .ok_or_else(|| unknown_container(db, coll))?;
    let etag = rid::fixed_etag(&["pkranges", db, coll]);
    let presented = request.header("if-none-match").map(str::trim);
    if presented.is_some_and(|p| p == "*" || p == etag) {
        let mut response = crate::reply::raw_json_response(304, String::new());
        response.headers.push(("etag".into(), etag));
        return Ok(response);
    }
    let coll_rid = rid::container(db, coll);
    let range_rid = rid::fixed_etag(&["range", db, coll]);
    let mut response = json_response(
        200,
        &json!({
            "_rid": coll_rid,
            "PartitionKeyRanges": [{
                "_rid": range_rid.trim_matches('"'),
                "id": "0",
                "_etag": etag,
                "minInclusive": "",
                "maxExclusive": "FF",
                "ridPrefix": 0,
                "_self": format!("{}pkranges/0/", rid::container_self(db, coll)),
                "throughputFraction": 1,
                "status": "online",
                "parents": [],
                "_ts": 0,
                "_lsn": 1,
            }],
            "_count": 1,
        }),
    );
    response.headers.push(("etag".into(), etag));
    response
        .headers
        .push(("x-ms-item-count".into(), "1".into()));
    Ok(response)
}
