//! Documents per second against the docstore component on the test host
//! (one client thread, kept-alive connections), for the compass. Prints
//! figures; asserts nothing about speed.
//!
//!     cargo bench -p e2e --bench docstore

use std::time::Instant;

use cosmos::{
    ContainerRef, CosmosClient, DocumentId, MasterKey, PageRequest, PartitionKey, Query, QueryScope,
};
use e2e::native::{SystemClock, UreqTransport};
use e2e::{repo_root, Start, TestApp};
use serde_json::json;

const DOCUMENTS: usize = 400;

fn main() {
    let app = TestApp::in_process(Start {
        manifest: Some(repo_root().join("tests/conformance/spin.toml")),
        ..Start::default()
    });
    let client = CosmosClient::new(
        &app.base_url,
        MasterKey::from_base64(&app.secrets.variables["cosmoskey"]).unwrap(),
        UreqTransport::default(),
        SystemClock::default(),
    )
    .unwrap();
    let container = ContainerRef::new("patients", "tests").unwrap();
    let patient = "9d1c0d5e-0000-4000-8000-00000000beef";
    let pk = PartitionKey::string(patient);

    let started = Instant::now();
    for i in 0..DOCUMENTS {
        client
            .create_document(
                &container,
                &pk,
                &json!({"id": format!("doc{i:05}"), "patientId": patient, "n": i}),
            )
            .expect("create");
    }
    report("create", DOCUMENTS, started);

    let started = Instant::now();
    for i in 0..DOCUMENTS {
        client
            .read_document(
                &container,
                &pk,
                &DocumentId::new(format!("doc{i:05}")).unwrap(),
            )
            .expect("read");
    }
    report("read", DOCUMENTS, started);

    let query = Query::new("SELECT * FROM c WHERE c.patientId = @p AND c.n >= @n ORDER BY c.n")
        .unwrap()
        .with_parameter("@p", json!(patient))
        .unwrap()
        .with_parameter("@n", json!(0))
        .unwrap();
    let started = Instant::now();
    let mut returned = 0;
    let queries = 50;
    for _ in 0..queries {
        let page = client
            .query_documents(
                &container,
                &query,
                QueryScope::Partition(pk.clone()),
                PageRequest {
                    max_item_count: Some(100),
                    continuation: None,
                },
            )
            .expect("query");
        returned += page.documents.len();
    }
    report("query (pages of 100)", queries, started);
    println!(
        "  query returned {} documents/s",
        (returned as f64 / started.elapsed().as_secs_f64()) as u64
    );
}

fn report(what: &str, n: usize, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "docstore {what:<22} {n:>5} ops in {secs:>6.2} s = {:>7.0} ops/s, mean {:.2} ms",
        n as f64 / secs,
        secs * 1000.0 / n as f64
    );
}
