//! Resource ids (`_rid`), self links and etags in Cosmos DB's formats: a
//! database rid is 4 bytes, a container rid adds 4, a document rid adds 8,
//! written as base64 with `/` replaced by `-`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use sha2::{Digest, Sha256};

fn encode(bytes: &[u8]) -> String {
    BASE64.encode(bytes).replace('/', "-")
}

fn hashed<const N: usize>(parts: &[&str]) -> [u8; N] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let mut out = [0u8; N];
    out.copy_from_slice(&digest[..N]);
    out
}

fn database_bytes(db: &str) -> [u8; 4] {
    hashed(&["db", db])
}

fn container_bytes(db: &str, coll: &str) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&database_bytes(db));
    out[4..].copy_from_slice(&hashed::<4>(&["coll", db, coll]));
    out
}

/// A database's rid: stable, derived from its name.
pub(crate) fn database(db: &str) -> String {
    encode(&database_bytes(db))
}

/// A container's rid: stable, derived from its names.
pub(crate) fn container(db: &str, coll: &str) -> String {
    encode(&container_bytes(db, coll))
}

/// A new random document rid within a container.
pub(crate) fn new_document(db: &str, coll: &str) -> String {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&container_bytes(db, coll));
    out[8..].copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
    encode(&out)
}

pub(crate) fn database_self(db: &str) -> String {
    format!("dbs/{}/", database(db))
}

pub(crate) fn container_self(db: &str, coll: &str) -> String {
    format!("dbs/{}/colls/{}/", database(db), container(db, coll))
}

pub(crate) fn document_self(db: &str, coll: &str, doc_rid: &str) -> String {
    format!("{}docs/{doc_rid}/", container_self(db, coll))
}

/// A fresh etag, quoted as Cosmos DB quotes them.
pub(crate) fn new_etag() -> String {
    format!("\"{}\"", uuid::Uuid::new_v4())
}

/// A stable etag for a configured (never changing) resource.
pub(crate) fn fixed_etag(parts: &[&str]) -> String {
    format!("\"{}\"", hex::encode(hashed::<16>(parts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rids_nest_and_have_cosmos_lengths() {
        let db = database("patients");
        let coll = container("patients", "tests");
        let doc = new_document("patients", "tests");
        assert_eq!(BASE64.decode(db.replace('-', "/")).unwrap().len(), 4);
        assert_eq!(BASE64.decode(coll.replace('-', "/")).unwrap().len(), 8);
        assert_eq!(BASE64.decode(doc.replace('-', "/")).unwrap().len(), 16);
        let db_bytes = BASE64.decode(db.replace('-', "/")).unwrap();
        let coll_bytes = BASE64.decode(coll.replace('-', "/")).unwrap();
        let doc_bytes = BASE64.decode(doc.replace('-', "/")).unwrap();
        assert_eq!(&coll_bytes[..4], &db_bytes[..]);
        assert_eq!(&doc_bytes[..8], &coll_bytes[..]);
        assert!(!doc.contains('/'));
        assert_ne!(
            container("patients", "tests"),
            container("patients", "patients")
        );
        assert_ne!(new_document("a", "b"), new_document("a", "b"));
    }

    #[test]
    fn etags_are_quoted_and_fresh() {
        let a = new_etag();
        assert!(a.starts_with('"') && a.ends_with('"') && a.len() == 38);
        assert_ne!(a, new_etag());
        assert_eq!(fixed_etag(&["x"]), fixed_etag(&["x"]));
        assert_ne!(fixed_etag(&["x"]), fixed_etag(&["y"]));
    }
}
