//! The documents patient-api keeps, behind a narrow trait so the service is
//! tested natively with an in-memory store; the real one is the Cosmos client.

use cosmos::{
    Clock, ContainerRef, CosmosClient, CosmosError, Document, DocumentId, ETag, PageRequest,
    PartitionKey, Query, QueryPage, QueryScope, Transport,
};
use records::QuerySpec;
use serde_json::Value;

/// The containers of database `patients` (spin.toml `docstorecontainers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Container {
    /// `patients/patients`, partitioned by `/id`.
    Patients,
    /// `patients/tests`, partitioned by `/patientId`.
    Tests,
}

impl Container {
    fn reference(self) -> Result<ContainerRef, CosmosError> {
        let name = match self {
            Container::Patients => "patients",
            Container::Tests => "tests",
        };
        Ok(ContainerRef::new("patients", name)?)
    }
}

/// Document operations, partition key and id as text.
pub trait Documents {
    fn create(&self, container: Container, pk: &str, doc: &Value) -> Result<Document, CosmosError>;
    fn read(&self, container: Container, pk: &str, id: &str) -> Result<Document, CosmosError>;
    /// Replace only: a missing document is `NotFound`, never an insert.
    fn replace(
        &self,
        container: Container,
        pk: &str,
        id: &str,
        doc: &Value,
        if_match: Option<&ETag>,
    ) -> Result<Document, CosmosError>;
    /// One page; `partition` `None` runs across partitions.
    fn query(
        &self,
        container: Container,
        query: &QuerySpec,
        partition: Option<&str>,
        page: PageRequest,
    ) -> Result<QueryPage, CosmosError>;
}

impl<T: Transport, C: Clock> Documents for CosmosClient<T, C> {
    fn create(&self, container: Container, pk: &str, doc: &Value) -> Result<Document, CosmosError> {
        self.create_document(&container.reference()?, &PartitionKey::string(pk), doc)
    }

    fn read(&self, container: Container, pk: &str, id: &str) -> Result<Document, CosmosError> {
        self.read_document(
            &container.reference()?,
            &PartitionKey::string(pk),
            &DocumentId::new(id)?,
        )
    }

    fn replace(
        &self,
        container: Container,
        pk: &str,
        id: &str,
        doc: &Value,
        if_match: Option<&ETag>,
    ) -> Result<Document, CosmosError> {
        self.replace_document(
            &container.reference()?,
            &PartitionKey::string(pk),
            &DocumentId::new(id)?,
            doc,
            if_match,
        )
    }

    fn query(
        &self,
        container: Container,
        spec: &QuerySpec,
        partition: Option<&str>,
        page: PageRequest,
    ) -> Result<QueryPage, CosmosError> {
        let query = Query::with_parameters(spec.text.clone(), spec.parameters.clone())?;
        let scope = match partition {
            Some(pk) => QueryScope::Partition(PartitionKey::string(pk)),
            None => QueryScope::CrossPartition,
        };
        self.query_documents(&container.reference()?, &query, scope, page)
    }
}
