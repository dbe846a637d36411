//! Which databases and containers the store serves. They come only from
//! configuration (the `docstorecontainers` Spin variable); the REST API cannot
//! create or delete them.

use cosmos_auth::MasterKey;

/// What is wrong with the store's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The master key is not valid base64 (its value is never shown).
    InvalidKey,
    /// The container specification lists no container.
    NoContainers,
    /// An entry is not `database/container=/partitionKeyPath`.
    MalformedEntry { entry: String, reason: &'static str },
    /// A database or container name breaks Cosmos DB's naming rules.
    InvalidName { name: String, reason: &'static str },
    /// A partition key path is not `/segment[/segment...]`.
    InvalidPartitionKeyPath { path: String },
    /// The same database/container pair appears twice.
    DuplicateContainer { database: String, container: String },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::InvalidKey => f.write_str("the store master key is not valid base64"),
            ConfigError::NoContainers => f.write_str(
                "the container specification lists no container (expected database/container=/partitionKeyPath;...)",
            ),
            ConfigError::MalformedEntry { entry, reason } => {
                write!(f, "container specification entry {entry:?} is malformed: {reason}")
            }
            ConfigError::InvalidName { name, reason } => {
                write!(f, "resource name {name:?} is invalid: {reason}")
            }
            ConfigError::InvalidPartitionKeyPath { path } => write!(
                f,
                "partition key path {path:?} is invalid: expected /name or /name/name..., names without \" or \\"
            ),
            ConfigError::DuplicateContainer { database, container } => {
                write!(f, "container {database}/{container} is configured twice")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// A database or container id, valid under Cosmos DB's rules: 1 to 255
/// characters, none of `/ \ ? #`, no trailing space.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceName(String);

impl ResourceName {
    pub fn parse(name: &str) -> Result<Self, ConfigError> {
        let invalid = |reason| ConfigError::InvalidName {
            name: name.to_string(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid("it is empty"));
        }
        if name.chars().count() > 255 {
            return Err(invalid("it is longer than 255 characters"));
        }
        if name.contains(['/', '\\', '?', '#']) {
            return Err(invalid("it contains one of / \\ ? #"));
        }
        if name.ends_with(' ') {
            return Err(invalid("it ends with a space"));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A partition key path such as `/patientId` or `/a/b`, kept as its segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionKeyPath(Vec<String>);

impl PartitionKeyPath {
    pub fn parse(path: &str) -> Result<Self, ConfigError> {
        let invalid = || ConfigError::InvalidPartitionKeyPath {
            path: path.to_string(),
        };
        let rest = path.strip_prefix('/').ok_or_else(invalid)?;
        let segments: Vec<String> = rest.split('/').map(str::to_string).collect();
        // `"` and `\` would need escaping inside SQLite JSON paths; no
        // configured container needs them, so they are refused outright.
        if segments
            .iter()
            .any(|s| s.is_empty() || s.contains(['"', '\\']))
        {
            return Err(invalid());
        }
        Ok(Self(segments))
    }

    /// The property names from the document root.
    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// The path as Cosmos DB writes it, e.g. `/patientId`.
    pub fn as_cosmos_path(&self) -> String {
        self.0.iter().map(|s| format!("/{s}")).collect()
    }
}

/// One configured container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerDef {
    pub database: ResourceName,
    pub container: ResourceName,
    pub partition_key: PartitionKeyPath,
}

/// The store's key and containers. The key never appears in `Debug`.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    key: MasterKey,
    containers: Vec<ContainerDef>,
}

impl StoreConfig {
    /// A configuration from a decoded key and parsed containers.
    pub fn new(key: MasterKey, containers: Vec<ContainerDef>) -> Result<Self, ConfigError> {
        if containers.is_empty() {
            return Err(ConfigError::NoContainers);
        }
        for (i, def) in containers.iter().enumerate() {
            if containers[..i]
                .iter()
                .any(|d| d.database == def.database && d.container == def.container)
            {
                return Err(ConfigError::DuplicateContainer {
                    database: def.database.as_str().to_string(),
                    container: def.container.as_str().to_string(),
                });
            }
        }
        Ok(Self { key, containers })
    }

    /// A configuration from the two Spin variables: the base64 master key and
    /// the container specification.
    pub fn from_variables(key_base64: &str, containers_spec: &str) -> Result<Self, ConfigError> {
        let key = MasterKey::from_base64(key_base64).map_err(|_| ConfigError::InvalidKey)?;
        Self::new(key, Self::parse_containers(containers_spec)?)
    }

    /// Parses `database/container=/partitionKeyPath;...`, e.g.
    /// `patients/patients=/id;patients/tests=/patientId;audit/records=/chainKey`.
    /// Whitespace around entries and parts is ignored, as are empty entries.
    pub fn parse_containers(spec: &str) -> Result<Vec<ContainerDef>, ConfigError> {
        let mut defs: Vec<ContainerDef> = Vec::new();
        for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let malformed = |reason| ConfigError::MalformedEntry {
                entry: entry.to_string(),
                reason,
            };
            let (names, path) = entry
                .split_once('=')
                .ok_or_else(|| malformed("missing '=' before the partition key path"))?;
            let (database, container) = names
                .trim()
                .split_once('/')
                .ok_or_else(|| malformed("missing '/' between database and container"))?;
            let def = ContainerDef {
                database: ResourceName::parse(database.trim())?,
                container: ResourceName::parse(container.trim())?,
                partition_key: PartitionKeyPath::parse(path.trim())?,
            };
            if defs
                .iter()
                .any(|d| d.database == def.database && d.container == def.container)
            {
                return Err(ConfigError::DuplicateContainer {
                    database: def.database.0,
                    container: def.container.0,
                });
            }
            defs.push(def);
        }
        if defs.is_empty() {
            return Err(ConfigError::NoContainers);
        }
        Ok(defs)
    }

    pub(crate) fn key(&self) -> &MasterKey {
        &self.key
    }

    pub fn containers(&self) -> &[ContainerDef] {
        &self.containers
    }

    pub(crate) fn has_database(&self, database: &str) -> bool {
        self.containers
            .iter()
            .any(|d| d.database.as_str() == database)
    }

    pub(crate) fn container(&self, database: &str, container: &str) -> Option<&ContainerDef> {
        self.containers
            .iter()
            .find(|d| d.database.as_str() == database && d.container.as_str() == container)
    }

    /// The distinct database names, in configuration order.
    pub(crate) fn databases(&self) -> Vec<&ResourceName> {
        let mut out: Vec<&ResourceName> = Vec::new();
        for def in &self.containers {
            if !out.contains(&&def.database) {
                out.push(&def.database);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_default_specification() {
        let defs = StoreConfig::parse_containers(
            "patients/patients=/id; patients/tests=/patientId ;audit/records=/chainKey;",
        )
        .unwrap();
        let flat: Vec<(&str, &str, String)> = defs
            .iter()
            .map(|d| {
                (
                    d.database.as_str(),
                    d.container.as_str(),
                    d.partition_key.as_cosmos_path(),
                )
            })
            .collect();
        assert_eq!(
            flat,
            vec![
                ("patients", "patients", "/id".to_string()),
                ("patients", "tests", "/patientId".to_string()),
                ("audit", "records", "/chainKey".to_string()),
            ]
        );
    }

    #[test]
    fn nested_partition_key_paths_keep_their_segments() {
        let defs = StoreConfig::parse_containers("d/c=/a/b").unwrap();
        assert_eq!(defs[0].partition_key.segments(), ["a", "b"]);
    }

    #[test]
    fn rejects_malformed_specifications() {
        assert_eq!(
            StoreConfig::parse_containers(" ; "),
            Err(ConfigError::NoContainers)
        );
        assert!(matches!(
            StoreConfig::parse_containers("patients/patients"),
            Err(ConfigError::MalformedEntry { .. })
        ));
        assert!(matches!(
            StoreConfig::parse_containers("patients=/id"),
            Err(ConfigError::MalformedEntry { .. })
        ));
        for bad_path in ["id", "/", "//a", "/a/", "/a\"b"] {
            assert!(
                matches!(
                    StoreConfig::parse_containers(&format!("d/c={bad_path}")),
                    Err(ConfigError::InvalidPartitionKeyPath { .. })
                ),
                "{bad_path}"
            );
        }
        for bad_name in ["d/=/id", "/c=/id", "d/c?x=/id", "d#/c=/id", "d/c /x=/id"] {
            assert!(
                matches!(
                    StoreConfig::parse_containers(bad_name),
                    Err(ConfigError::InvalidName { .. })
                ),
                "{bad_name}"
            );
        }
        let long = "x".repeat(256);
        assert!(matches!(
            StoreConfig::parse_containers(&format!("{long}/c=/id")),
            Err(ConfigError::InvalidName { .. })
        ));
        assert_eq!(
            StoreConfig::parse_containers("d/c=/id;d/c=/other"),
            Err(ConfigError::DuplicateContainer {
                database: "d".into(),
                container: "c".into()
            })
        );
    }

    #[test]
    fn from_variables_checks_the_key_without_showing_it() {
        let err = StoreConfig::from_variables("not base64!!", "d/c=/id").unwrap_err();
        assert_eq!(err, ConfigError::InvalidKey);
        assert!(!err.to_string().contains("not base64!!"));
        let config = StoreConfig::from_variables("c2VjcmV0a2V5", "d/c=/id").unwrap();
        assert!(!format!("{config:?}").contains("c2VjcmV0a2V5"));
        assert!(!format!("{config:?}").contains("secretkey"));
        assert_eq!(config.containers().len(), 1);
    }
}
