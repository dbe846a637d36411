//! A Spin runtime config (`spin up --runtime-config-file`), as far as the
//! test host models it: the variable providers, the key-value store
//! `default`, `[[client_tls]]` (client_tls.rs) and `[outbound_http]`
//! `connection_pooling` (outbound_http.rs).
//!
//! As in Spin (crates/runtime-config/src/variables.rs): the providers listed
//! under `[[variables_provider]]` (or the older `[[config_provider]]`) are
//! asked first, in the order written, and an environment provider
//! (`SPIN_VARIABLE_*`, then `.env` in the working directory) is always
//! appended after them. The types modelled are `env` and `azure_key_vault`;
//! any other is refused at startup.
//!
//! Error messages name the section and the field, never a value: a runtime
//! config may hold a client secret.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use serde::Deserialize;

/// One `[[config_provider]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderConfig {
    /// Spin's `env` provider: `<prefix>_<NAME>` (prefix `SPIN_VARIABLE` if
    /// unset) from the environment, then from `dotenv_path` if one is given.
    /// A configured `env` entry reads no `.env` unless `dotenv_path` says so.
    Env {
        prefix: Option<String>,
        dotenv_path: Option<PathBuf>,
    },
    /// Spin's `azure_key_vault` provider. The test host speaks the Key Vault
    /// REST API to a vault on loopback only.
    AzureKeyVault(KeyVaultConfig),
}

/// The fields of an `azure_key_vault` entry, as Spin's
/// `AzureKeyVaultVariablesConfig` has them.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyVaultConfig {
    pub vault_url: String,
    pub auth: KeyVaultAuth,
}

impl std::fmt::Debug for KeyVaultConfig {
    // A client secret must never reach a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVaultConfig")
            .field("vault_url", &self.vault_url)
            .field(
                "auth",
                &match self.auth {
                    KeyVaultAuth::Environmental => "environmental",
                    KeyVaultAuth::ClientSecret { .. } => "client secret",
                },
            )
            .finish()
    }
}

/// How the Key Vault provider gets its token: Spin uses a service principal
/// when `client_id`, `client_secret` and `tenant_id` are all set, and the
/// ambient credential chain (workload identity on AKS) when none is.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyVaultAuth {
    Environmental,
    ClientSecret {
        client_id: String,
        client_secret: String,
        tenant_id: String,
        authority_host: String,
    },
}

/// Where the key-value store `default` keeps its data
/// (`[key_value_store.default]`, type `spin`; crates/key-value-spin).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeyValueLocation {
    /// No section: Spin's default store, `sqlite_key_value.db` in the state
    /// directory.
    #[default]
    StateDir,
    /// `path = "..."`, relative to the runtime config's directory.
    File(PathBuf),
    /// The section without `path`: an in-memory SQLite database, which
    /// commits without touching a disk and is gone when the process ends.
    InMemory,
}

/// The parts of a runtime config the test host uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub providers: Vec<ProviderConfig>,
    /// The key-value store `default`.
    pub key_value_default: KeyValueLocation,
    /// Sections Spin knows and the test host does not model (for example
    /// `[key_value_store.default]` of type `azure_cosmos`): reported at
    /// startup, the local default is used instead.
    pub unmodelled: Vec<String>,
    /// `[[client_tls]]`, in the order written (the first entry for a
    /// component and host wins).
    pub client_tls: Vec<crate::client_tls::ClientTlsEntry>,
    /// `[outbound_http] connection_pooling`: whether idle outbound
    /// connections are kept for reuse (outbound_http.rs).
    pub connection_pooling: bool,
}

/// Top-level keys Spin's runtime config accepts. Spin refuses any other
/// ("unused runtime config key(s)"), and so does the test host.
const KNOWN_TOP_LEVEL: &[&str] = &[
    "variables_provider",
    "config_provider",
    "key_value_store",
    "sqlite_database",
    "llm_compute",
    "outbound_networking",
    "client_tls",
    "outbound_http",
    "otel",
];

impl RuntimeConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("runtime config {}: {e}", path.display()))?;
        let mut config =
            Self::parse(&text).map_err(|e| anyhow!("runtime config {}: {e}", path.display()))?;
        // Spin resolves a store's relative `path` against the runtime
        // config's directory (runtime-config `key_value_config_resolver`).
        if let KeyValueLocation::File(file) = &config.key_value_default {
            let dir = path.parent().unwrap_or(Path::new("."));
            config.key_value_default = KeyValueLocation::File(dir.join(file));
        }
        // And the files of `[[client_tls]]` (factor-outbound-networking
        // `load_certs`: `runtime_config_dir.join(path)`).
        let dir = path.parent().unwrap_or(Path::new("."));
        for entry in &mut config.client_tls {
            entry.resolve_paths(dir);
        }
        Ok(config)
    }

    pub fn parse(text: &str) -> Result<Self> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            // toml's message quotes the offending line, which may hold a
            // secret: report only where the problem is.
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            match line {
                Some(line) => anyhow!("not valid TOML (line {line})"),
                None => anyhow!("not valid TOML"),
            }
        })?;
        let unknown: BTreeSet<&str> = table
            .keys()
            .map(String::as_str)
            .filter(|k| !KNOWN_TOP_LEVEL.contains(k))
            .collect();
        if !unknown.is_empty() {
            bail!("unused runtime config key(s): {unknown:?}");
        }
        // Spin reads `variables_provider` and falls back to `config_provider`.
        let (section, entries) = match (
            table.get("variables_provider"),
            table.get("config_provider"),
        ) {
            (Some(v), _) => ("variables_provider", Some(v)),
            (None, Some(v)) => ("config_provider", Some(v)),
            (None, None) => ("config_provider", None),
        };
        let mut providers = Vec::new();
        if let Some(entries) = entries {
            let entries = entries
                .as_array()
                .ok_or_else(|| anyhow!("`{section}` must be an array of tables ([[{section}]])"))?;
            for (i, entry) in entries.iter().enumerate() {
                let at = format!("[[{section}]] #{}", i + 1);
                let entry = entry
                    .as_table()
                    .ok_or_else(|| anyhow!("{at} must be a table"))?;
                providers.push(provider(entry, &at)?);
            }
        }
        let mut unmodelled = Vec::new();
        let mut key_value_default = KeyValueLocation::StateDir;
        for key in ["key_value_store", "sqlite_database", "llm_compute", "otel"] {
            if let Some(sections) = table.get(key).and_then(|v| v.as_table()) {
                for (label, section) in sections {
                    let kind = section.get("type").and_then(|t| t.as_str()).unwrap_or("?");
                    if key == "key_value_store" && label == "default" && kind == "spin" {
                        let at = "[key_value_store.default]";
                        let section = section
                            .as_table()
                            .ok_or_else(|| anyhow!("{at} must be a table"))?;
                        key_value_default = match string_field(section, at, "path")? {
                            Some(path) => KeyValueLocation::File(PathBuf::from(path)),
                            None => KeyValueLocation::InMemory,
                        };
                        continue;
                    }
                    unmodelled.push(format!("[{key}.{label}] (type {kind:?})"));
                }
            }
        }
        let client_tls = match table.get("client_tls") {
            None => Vec::new(),
            Some(toml::Value::Array(entries)) => entries
                .iter()
                .enumerate()
                .map(|(i, entry)| {
                    let at = format!("[[client_tls]] #{}", i + 1);
                    let entry: crate::client_tls::ClientTlsEntry =
                        entry.clone().try_into().map_err(|e: toml::de::Error| {
                            // The field's name, not the value next to it.
                            anyhow!("{at}: {}", e.message())
                        })?;
                    entry.validate().map_err(|e| anyhow!("{at}: {e}"))?;
                    Ok(entry)
                })
                .collect::<Result<_>>()?,
            Some(_) => bail!("`client_tls` must be an array of tables ([[client_tls]])"),
        };
        let connection_pooling = match table.get("outbound_http") {
            None => true,
            Some(section) => {
                let section: OutboundHttpSection = section
                    .clone()
                    .try_into()
                    .map_err(|e: toml::de::Error| anyhow!("[outbound_http]: {}", e.message()))?;
                section.connection_pooling
            }
        };
        Ok(Self {
            providers,
            key_value_default,
            unmodelled,
            client_tls,
            connection_pooling,
        })
    }
}

/// `[outbound_http]` as far as the test host models it. Spin's
/// `connection_pooling` is a `bool` with serde's default, so a table without
/// it turns pooling off; Spin's `max_connections` (and the deprecated
/// `max_concurrent_requests`) are refused here rather than ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboundHttpSection {
    #[serde(default)]
    connection_pooling: bool,
}

fn string_field(entry: &toml::Table, at: &str, field: &str) -> Result<Option<String>> {
    match entry.get(field) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => bail!("{at}: `{field}` must be a string"),
    }
}

fn only_fields(entry: &toml::Table, at: &str, allowed: &[&str]) -> Result<()> {
    for key in entry.keys() {
        if key != "type" && !allowed.contains(&key.as_str()) {
            bail!("{at}: unknown field `{key}`, expected one of {allowed:?}");
        }
    }
    Ok(())
}

fn provider(entry: &toml::Table, at: &str) -> Result<ProviderConfig> {
    let kind =
        string_field(entry, at, "type")?.ok_or_else(|| anyhow!("{at}: missing field `type`"))?;
    match kind.as_str() {
        "env" => {
            only_fields(entry, at, &["prefix", "dotenv_path"])?;
            Ok(ProviderConfig::Env {
                prefix: string_field(entry, at, "prefix")?,
                dotenv_path: string_field(entry, at, "dotenv_path")?.map(PathBuf::from),
            })
        }
        "azure_key_vault" => {
            let at = format!("{at} (azure_key_vault)");
            only_fields(
                entry,
                &at,
                &[
                    "vault_url",
                    "client_id",
                    "client_secret",
                    "tenant_id",
                    "authority_host",
                ],
            )?;
            let vault_url = string_field(entry, &at, "vault_url")?
                .ok_or_else(|| anyhow!("{at}: missing field `vault_url`"))?;
            let authority_host = match string_field(entry, &at, "authority_host")?.as_deref() {
                None | Some("AzurePublicCloud") => "https://login.microsoftonline.com/",
                Some("AzureChina") => "https://login.chinacloudapi.cn/",
                Some("AzureGermany") => "https://login.microsoftonline.de/",
                Some("AzureGovernment") => "https://login.microsoftonline.us/",
                Some(_) => bail!(
                    "{at}: `authority_host` must be one of AzurePublicCloud, AzureChina, \
                     AzureGermany, AzureGovernment"
                ),
            };
            let auth = match (
                string_field(entry, &at, "client_id")?,
                string_field(entry, &at, "tenant_id")?,
                string_field(entry, &at, "client_secret")?,
            ) {
                (Some(client_id), Some(tenant_id), Some(client_secret)) => {
                    KeyVaultAuth::ClientSecret {
                        client_id,
                        client_secret,
                        tenant_id,
                        authority_host: authority_host.to_string(),
                    }
                }
                (None, None, None) => KeyVaultAuth::Environmental,
                // Spin's own message for this case.
                _ => bail!(
                    "{at}: The current runtime config specifies some but not all of the Azure \
                     KeyVault 'client_id', 'client_secret', and 'tenant_id' values. Provide the \
                     missing values to authenticate to Azure KeyVault with the given service \
                     principal, or remove all these values to authenticate using ambient \
                     authentication (e.g. env vars, Azure CLI, Managed Identity, Workload \
                     Identity)."
                ),
            };
            Ok(ProviderConfig::AzureKeyVault(KeyVaultConfig {
                vault_url,
                auth,
            }))
        }
        "static" | "vault" => bail!(
            "{at}: provider type {kind:?} is one Spin has, but the test host does not model it \
             (it models \"env\" and \"azure_key_vault\")"
        ),
        _ => bail!(
            "{at}: unknown provider type {kind:?} (Spin knows azure_key_vault, static, vault, env)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_keep_their_order_and_options() {
        let config = RuntimeConfig::parse(
            r#"
[[config_provider]]
type = "env"
prefix = "APP"
dotenv_path = "settings.env"

[[config_provider]]
type = "azure_key_vault"
vault_url = "http://127.0.0.1:9/"
authority_host = "AzurePublicCloud"

[key_value_store.default]
type = "azure_cosmos"
account = "a"
"#,
        )
        .unwrap();
        assert_eq!(
            config.providers[0],
            ProviderConfig::Env {
                prefix: Some("APP".into()),
                dotenv_path: Some("settings.env".into())
            }
        );
        assert!(matches!(
            &config.providers[1],
            ProviderConfig::AzureKeyVault(KeyVaultConfig {
                auth: KeyVaultAuth::Environmental,
                ..
            })
        ));
        assert_eq!(
            config.unmodelled,
            vec!["[key_value_store.default] (type \"azure_cosmos\")"]
        );
    }

    #[test]
    fn outbound_http_connection_pooling_is_read_as_spin_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let read = |text: &str| {
            let path = dir.path().join("runtime-config.toml");
            std::fs::write(&path, text).unwrap();
            RuntimeConfig::load(&path)
        };
        assert!(read("").unwrap().connection_pooling);
        assert!(
            read("[outbound_http]\nconnection_pooling = true\n")
                .unwrap()
                .connection_pooling
        );
        assert!(
            !read("[outbound_http]\nconnection_pooling = false\n")
                .unwrap()
                .connection_pooling
        );
        // serde's default for Spin's bool: the table alone turns pooling off.
        assert!(!read("[outbound_http]\n").unwrap().connection_pooling);
        let err = format!(
            "{:#}",
            read("[outbound_http]\nmax_connections = 4\n").unwrap_err()
        );
        assert!(
            err.contains("outbound_http") && err.contains("max_connections"),
            "{err}"
        );
    }

    #[test]
    fn client_tls_entries_are_read_with_paths_from_the_configs_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runtime-config.toml");
        std::fs::write(
            &path,
            "[[client_tls]]\ncomponent_ids = [\"gateway\"]\nhosts = [\"127.0.0.1\"]\n\
             ca_use_webpki_roots = false\nca_roots_file = \"tls/ca.crt\"\n\
             client_cert_file = \"tls/gateway.crt\"\nclient_private_key_file = \"/abs/gateway.key\"\n",
        )
        .unwrap();
        let config = RuntimeConfig::load(&path).unwrap();
        let [entry] = config.client_tls.as_slice() else {
            panic!("one entry: {:?}", config.client_tls)
        };
        assert_eq!(entry.component_ids, ["gateway"]);
        assert_eq!(entry.ca_roots_file, Some(dir.path().join("tls/ca.crt")));
        assert_eq!(
            entry.client_cert_file,
            Some(dir.path().join("tls/gateway.crt"))
        );
        assert_eq!(
            entry.client_private_key_file,
            Some(PathBuf::from("/abs/gateway.key"))
        );
        for bad in [
            "client_tls = 3\n",
            "[[client_tls]]\ncomponent_ids = [\"a\"]\nhosts = [\"h:8443\"]\n",
            "[[client_tls]]\ncomponent_ids = [\"a\"]\nhosts = [\"h\"]\nclient_key = \"x\"\n",
        ] {
            let err = RuntimeConfig::parse(bad).expect_err(bad).to_string();
            assert!(err.contains("client_tls"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_spin_key_value_store_is_a_file_or_in_memory_as_in_spin() {
        let none = RuntimeConfig::parse("").unwrap();
        assert_eq!(none.key_value_default, KeyValueLocation::StateDir);
        let memory = RuntimeConfig::parse("[key_value_store.default]\ntype = \"spin\"\n").unwrap();
        assert_eq!(memory.key_value_default, KeyValueLocation::InMemory);
        assert!(memory.unmodelled.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rc.toml");
        std::fs::write(
            &file,
            "[key_value_store.default]\ntype = \"spin\"\npath = \"kv/counters.db\"\n",
        )
        .unwrap();
        assert_eq!(
            RuntimeConfig::load(&file).unwrap().key_value_default,
            KeyValueLocation::File(dir.path().join("kv/counters.db"))
        );
        let bad = RuntimeConfig::parse("[key_value_store.default]\ntype = \"spin\"\npath = 3\n");
        assert!(bad
            .unwrap_err()
            .to_string()
            .contains("`path` must be a string"));
    }

    #[test]
    fn variables_provider_wins_over_config_provider_as_in_spin() {
        let config = RuntimeConfig::parse(
            "[[variables_provider]]\ntype = \"env\"\n[[config_provider]]\ntype = \"azure_key_vault\"\nvault_url = \"x\"\n",
        )
        .unwrap();
        assert_eq!(config.providers.len(), 1);
    }

    #[test]
    fn bad_configs_are_refused_naming_the_problem_never_a_value() {
        let cases = [
            ("[[config_provider]]\ntype = \"consul\"\n", "unknown provider type \"consul\""),
            ("[[config_provider]]\ntype = \"vault\"\n", "does not model"),
            ("[[config_provider]]\nprefix = \"x\"\n", "missing field `type`"),
            (
                "[[config_provider]]\ntype = \"azure_key_vault\"\n",
                "missing field `vault_url`",
            ),
            (
                "[[config_provider]]\ntype = \"azure_key_vault\"\nvault_url = \"x\"\nclient_secret = \"hunter2\"\n",
                "some but not all",
            ),
            (
                "[[config_provider]]\ntype = \"azure_key_vault\"\nvault_url = \"x\"\nclientsecret = \"hunter2\"\n",
                "unknown field `clientsecret`",
            ),
            (
                "[[config_provider]]\ntype = \"env\"\nprefix = 7\n",
                "`prefix` must be a string",
            ),
            ("config_provider = \"env\"\n", "must be an array of tables"),
            ("[variables]\nhunter2 = 1\n", "unused runtime config key(s)"),
            ("[[config_provider]]\ntype = \"env\nprefix = \"hunter2\"\n", "not valid TOML (line 2)"),
        ];
        for (text, expected) in cases {
            let err = RuntimeConfig::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(!err.contains("hunter2"), "{text:?} leaked a value: {err}");
        }
    }

    #[test]
    fn debug_output_hides_the_client_secret() {
        let config = RuntimeConfig::parse(
            "[[config_provider]]\ntype = \"azure_key_vault\"\nvault_url = \"x\"\nclient_id = \"i\"\ntenant_id = \"t\"\nclient_secret = \"hunter2\"\n",
        )
        .unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
