//! Spin variables: the provider chain, templates and per-component visibility.
//!
//! As Spin does it (crates/expressions, crates/runtime-config/src/variables.rs,
//! crates/variables-env, crates/variables-azure):
//!
//! - The providers of the runtime config are asked first, in order; an
//!   environment provider (`SPIN_VARIABLE_<NAME>`, then `.env` in the working
//!   directory) is always appended; the manifest default comes last.
//! - A provider that answers "not mine" passes to the next; a provider that
//!   fails stops the lookup (no fall-through). The Key Vault provider fails
//!   for a secret it does not have.
//! - Nothing is cached: every `variables::get` walks the chain again, so each
//!   is a Key Vault GET when Key Vault answers it. Only a `.env` file is read
//!   once.
//! - At startup Spin only asks each provider whether it *may* resolve each
//!   required variable: the environment provider looks, Key Vault always says
//!   yes. So a secret missing from Key Vault does not stop startup; it fails
//!   where it is read.
//!
//! A component sees only the names in its own `[component.<id>.variables]`.
//! Every resolution is counted per variable, for tests and benchmarks.

use anyhow::{anyhow, bail, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, RwLock};

use crate::keyvault::KeyVaultProvider;
use crate::manifest::Manifest;
use crate::runtime_config::{ProviderConfig, RuntimeConfig};

/// Spin's rule for variable names: lowercase ASCII letters, digits and
/// underscores, starting with a letter, no double or trailing underscore.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.contains("__")
        && !name.ends_with('_');
    if ok {
        Ok(())
    } else {
        bail!(
            "invalid variable name {name:?}: use lowercase letters, digits and single underscores"
        )
    }
}

/// Where a variable's value comes from; tests and diagnostics use it, values
/// themselves are never printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Environment,
    DotEnv,
    KeyVault,
    Default,
}

/// Spin's environment provider: `<prefix>_<NAME>` from the environment, then
/// from a dotenv file (read once, as Spin caches it).
struct EnvProvider {
    prefix: String,
    dotenv_path: Option<PathBuf>,
    dotenv: OnceLock<HashMap<String, String>>,
}

impl EnvProvider {
    fn get(&self, environment: &HashMap<String, String>, name: &str) -> Option<(String, Provider)> {
        let key = format!("{}_{}", self.prefix, name.to_ascii_uppercase());
        if let Some(v) = environment.get(&key) {
            return Some((v.clone(), Provider::Environment));
        }
        let path = self.dotenv_path.as_deref()?;
        self.dotenv
            .get_or_init(|| read_dotenv(path))
            .get(&key)
            .map(|v| (v.clone(), Provider::DotEnv))
    }
}

enum ChainProvider {
    Env(EnvProvider),
    KeyVault(KeyVaultProvider),
}

/// Application variables and the providers that resolve them.
pub struct Variables {
    declared: BTreeMap<String, crate::manifest::VariableDecl>,
    providers: Vec<ChainProvider>,
    /// The process environment the env providers read (a test's stand-in for
    /// it); [`Variables::set`] changes it, as `export` would.
    environment: RwLock<HashMap<String, String>>,
    /// Resolutions per application variable since the last reset.
    reads: Mutex<BTreeMap<String, u64>>,
    /// `variables::get` calls per component since the last reset.
    gets: Mutex<BTreeMap<String, u64>>,
    /// The most `variables::get` calls one instance of each component made
    /// since the last reset: under Spin an instance serves one request, so
    /// this is the component's reads per request.
    most_gets_per_instance: Mutex<BTreeMap<String, u64>>,
}

/// Reads a `.env` file: `KEY=value` lines, `#` comments, optional quotes.
pub fn parse_dotenv(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        if let Some((key, value)) = line.split_once('=') {
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            out.insert(key.trim().to_string(), value.to_string());
        }
    }
    out
}

impl Variables {
    /// The chain with no runtime config: the environment provider only, as
    /// `spin up` without `--runtime-config-file`.
    #[cfg(test)]
    pub fn resolve(manifest: &Manifest, environment: &HashMap<String, String>) -> Result<Self> {
        Self::with_runtime_config(manifest, environment, &RuntimeConfig::default())
    }

    /// Builds the chain from a runtime config and checks, as Spin's startup
    /// does, that every required variable has a provider that may resolve it.
    pub fn with_runtime_config(
        manifest: &Manifest,
        environment: &HashMap<String, String>,
        config: &RuntimeConfig,
    ) -> Result<Self> {
        let mut providers = Vec::new();
        for (i, entry) in config.providers.iter().enumerate() {
            providers.push(match entry {
                ProviderConfig::Env {
                    prefix,
                    dotenv_path,
                } => ChainProvider::Env(EnvProvider {
                    prefix: prefix.clone().unwrap_or_else(|| "SPIN_VARIABLE".into()),
                    dotenv_path: dotenv_path.clone(),
                    dotenv: OnceLock::new(),
                }),
                ProviderConfig::AzureKeyVault(kv) => ChainProvider::KeyVault(
                    KeyVaultProvider::new(kv, environment)
                        .map_err(|e| anyhow!("runtime config provider #{}: {e}", i + 1))?,
                ),
            });
        }
        // Spin always appends its default environment provider, whose
        // dotenv path is `.env` relative to the working directory.
        providers.push(ChainProvider::Env(EnvProvider {
            prefix: "SPIN_VARIABLE".into(),
            dotenv_path: Some(PathBuf::from(".env")),
            dotenv: OnceLock::new(),
        }));
        let vars = Self {
            declared: manifest.variables.clone(),
            providers,
            environment: RwLock::new(environment.clone()),
            reads: Mutex::new(BTreeMap::new()),
            gets: Mutex::new(BTreeMap::new()),
            most_gets_per_instance: Mutex::new(BTreeMap::new()),
        };
        let missing: Vec<String> = manifest
            .variables
            .iter()
            .filter(|(_, decl)| decl.default.is_none())
            .filter(|(name, _)| !vars.may_resolve(name))
            .map(|(name, _)| format!("Key({name:?})"))
            .collect();
        if !missing.is_empty() {
            bail!(
                "provider error: no provider resolved required variable(s): [{}]",
                missing.join(", ")
            );
        }
        Ok(vars)
    }

    /// Spin's `may_resolve`: the environment provider looks; a Key Vault
    /// provider always says it may.
    fn may_resolve(&self, name: &str) -> bool {
        let environment = self.environment.read().unwrap();
        self.providers.iter().any(|p| match p {
            ChainProvider::Env(env) => env.get(&environment, name).is_some(),
            ChainProvider::KeyVault(_) => true,
        })
    }

    /// Sets `SPIN_VARIABLE_<NAME>` in the environment the env providers
    /// read, as a changed deployment setting would. A provider before them
    /// (Key Vault) still answers first, as in Spin.
    pub fn set(&self, name: &str, value: &str) -> Result<()> {
        if !self.declared.contains_key(name) {
            bail!("no application variable {name:?}");
        }
        self.environment.write().unwrap().insert(
            format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase()),
            value.to_string(),
        );
        Ok(())
    }

    /// Which provider would answer for `name` now (not counted as a read).
    pub fn provider_of(&self, name: &str) -> Option<Provider> {
        self.lookup(name).ok().map(|(_, p)| p)
    }

    /// One walk of the chain: the first provider with a value wins, the
    /// first error stops, the default is the last resort.
    fn lookup(&self, name: &str) -> Result<(String, Provider), String> {
        let decl = self
            .declared
            .get(name)
            .ok_or_else(|| format!("undefined variable {name:?}"))?;
        for provider in &self.providers {
            match provider {
                ChainProvider::Env(env) => {
                    if let Some(found) = env.get(&self.environment.read().unwrap(), name) {
                        return Ok(found);
                    }
                }
                ChainProvider::KeyVault(kv) => {
                    return kv.get(name).map(|v| (v, Provider::KeyVault));
                }
            }
        }
        decl.default
            .clone()
            .map(|v| (v, Provider::Default))
            .ok_or_else(|| format!("no provider resolved required variable {name:?}"))
    }

    /// Resolves one application variable, counting the read.
    fn app_value(&self, name: &str) -> Result<String, String> {
        *self
            .reads
            .lock()
            .unwrap()
            .entry(name.to_string())
            .or_default() += 1;
        self.lookup(name).map(|(v, _)| v)
    }

    /// What Spin does the first time an instance makes an outbound request
    /// (factor-outbound-networking `prepare`): resolves every application
    /// variable, in turn, stopping at the first error.
    pub fn prepare_all(&self) -> Result<(), String> {
        for name in self.declared.keys() {
            self.app_value(name)?;
        }
        Ok(())
    }

    /// Resolutions per application variable since the last reset.
    pub fn reads(&self) -> BTreeMap<String, u64> {
        self.reads.lock().unwrap().clone()
    }

    /// `variables::get` calls per component since the last reset.
    pub fn gets(&self) -> BTreeMap<String, u64> {
        self.gets.lock().unwrap().clone()
    }

    /// The most `variables::get` calls one instance of each component made
    /// since the last reset.
    pub fn most_gets_per_instance(&self) -> BTreeMap<String, u64> {
        self.most_gets_per_instance.lock().unwrap().clone()
    }

    /// Counts one `variables::get` by a component; `by_this_instance` is
    /// the instance's own count, this one included.
    pub fn count_get(&self, component: &str, by_this_instance: u64) {
        *self
            .gets
            .lock()
            .unwrap()
            .entry(component.to_string())
            .or_default() += 1;
        let mut most = self.most_gets_per_instance.lock().unwrap();
        let entry = most.entry(component.to_string()).or_default();
        *entry = (*entry).max(by_this_instance);
    }

    pub fn reset_counts(&self) {
        self.reads.lock().unwrap().clear();
        self.gets.lock().unwrap().clear();
        self.most_gets_per_instance.lock().unwrap().clear();
    }

    /// Expands a template such as `"{{ cosmosendpoint }}"` or
    /// `"https://{{ host }}:443"` against application variables.
    pub fn expand(&self, template: &str) -> Result<String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| anyhow!("unterminated template in {template:?}"))?;
            let name = after[..end].trim();
            if !self.declared.contains_key(name) {
                bail!("template refers to undefined variable {name:?}");
            }
            let value = self.app_value(name).map_err(|e| anyhow!(e))?;
            out.push_str(&value);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn read_dotenv(path: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(path)
        .map(|t| parse_dotenv(&t))
        .unwrap_or_default()
}

/// The `fermyon:spin/variables` error a component gets, mirroring Spin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetError {
    InvalidName(String),
    Undefined(String),
    Provider(String),
}

/// A component's view of the variables: only its own mapped names.
pub fn component_get(
    variables: &Variables,
    component_vars: &BTreeMap<String, String>,
    name: &str,
) -> Result<String, GetError> {
    if validate_name(name).is_err() {
        return Err(GetError::InvalidName(format!(
            "invalid variable name {name:?}"
        )));
    }
    let template = component_vars
        .get(name)
        .ok_or_else(|| GetError::Undefined(format!("no variable for \"{name}\"")))?;
    variables
        .expand(template)
        .map_err(|e| GetError::Provider(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::parse(
            r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
secretkey = { required = true, secret = true }
endpoint = { default = "http://docstore.spin.internal" }
[[trigger.http]]
route = "/..."
component = "a"
[component.a]
source = "a.wasm"
[component.a.variables]
key = "{{ secretkey }}"
url = "prefix-{{ endpoint }}"
"#,
            Path::new("/nonexistent"),
        )
        .unwrap()
    }

    #[test]
    fn a_required_variable_nobody_provides_stops_startup_with_spins_message() {
        let err = Variables::resolve(&manifest(), &HashMap::new())
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "provider error: no provider resolved required variable(s): [Key(\"secretkey\")]"
        );
    }

    #[test]
    fn environment_beats_default_and_components_see_only_their_names() {
        let env = HashMap::from([
            ("SPIN_VARIABLE_SECRETKEY".to_string(), "s3".to_string()),
            (
                "SPIN_VARIABLE_ENDPOINT".to_string(),
                "http://127.0.0.1:9".to_string(),
            ),
        ]);
        let m = manifest();
        let vars = Variables::resolve(&m, &env).unwrap();
        let mapped = &m.components["a"].variables;
        assert_eq!(component_get(&vars, mapped, "key").unwrap(), "s3");
        assert_eq!(
            component_get(&vars, mapped, "url").unwrap(),
            "prefix-http://127.0.0.1:9"
        );
        assert!(matches!(
            component_get(&vars, mapped, "secretkey"),
            Err(GetError::Undefined(_))
        ));
        assert!(matches!(
            component_get(&vars, mapped, "Key"),
            Err(GetError::InvalidName(_))
        ));
        assert_eq!(vars.provider_of("endpoint"), Some(Provider::Environment));
    }

    #[test]
    fn defaults_apply_and_values_can_rotate() {
        let env = HashMap::from([("SPIN_VARIABLE_SECRETKEY".to_string(), "old".to_string())]);
        let m = manifest();
        let vars = Variables::resolve(&m, &env).unwrap();
        assert_eq!(vars.provider_of("endpoint"), Some(Provider::Default));
        vars.set("secretkey", "new").unwrap();
        assert_eq!(
            component_get(&vars, &m.components["a"].variables, "key").unwrap(),
            "new"
        );
        assert!(vars.set("undeclared", "x").is_err());
    }

    fn chain(config: &str, env: &[(&str, &str)]) -> Result<Variables> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Variables::with_runtime_config(&manifest(), &env, &RuntimeConfig::parse(config).unwrap())
    }

    const WORKLOAD_IDENTITY: [(&str, &str); 4] = [
        ("AZURE_AUTHORITY_HOST", "http://127.0.0.1:1/"),
        ("AZURE_TENANT_ID", "t"),
        ("AZURE_CLIENT_ID", "c"),
        ("AZURE_FEDERATED_TOKEN_FILE", "/nonexistent"),
    ];

    #[test]
    fn configured_providers_come_first_and_an_error_stops_the_lookup() {
        // Key Vault (down) first: its error wins over the environment and
        // the default, as in Spin.
        let mut env = WORKLOAD_IDENTITY.to_vec();
        env.push(("SPIN_VARIABLE_ENDPOINT", "http://127.0.0.1:9"));
        let vars = chain(
            "[[config_provider]]\ntype = \"azure_key_vault\"\nvault_url = \"http://127.0.0.1:1/\"\n",
            &env,
        )
        .unwrap();
        let err = vars.app_value("endpoint").unwrap_err();
        assert!(
            err.starts_with("Failed to read variable from Azure Key Vault"),
            "{err}"
        );
        // An explicit env entry before Key Vault answers what it has...
        let vars = chain(
            "[[config_provider]]\ntype = \"env\"\n[[config_provider]]\ntype = \"azure_key_vault\"\nvault_url = \"http://127.0.0.1:1/\"\n",
            &env,
        )
        .unwrap();
        assert_eq!(vars.app_value("endpoint").unwrap(), "http://127.0.0.1:9");
        // ...and the rest still goes to Key Vault and fails there.
        assert!(vars.app_value("secretkey").is_err());
        assert_eq!(vars.reads()["endpoint"], 1);
        assert_eq!(vars.reads()["secretkey"], 1);
    }

    #[test]
    fn key_vault_may_resolve_anything_so_startup_does_not_ask_it() {
        // No SPIN_VARIABLE_SECRETKEY anywhere: with Key Vault in the chain
        // Spin's startup check passes, and no vault request is made.
        assert!(chain(
            "[[config_provider]]\ntype = \"azure_key_vault\"\nvault_url = \"http://127.0.0.1:1/\"\n",
            &WORKLOAD_IDENTITY,
        )
        .is_ok());
        // With env providers only, the required variable stops startup.
        let err = chain(
            "[[config_provider]]\ntype = \"env\"\nprefix = \"APP\"\n",
            &[],
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("Key(\"secretkey\")"), "{err}");
    }

    #[test]
    fn an_env_provider_uses_its_prefix_and_every_read_is_counted() {
        let vars = chain(
            "[[config_provider]]\ntype = \"env\"\nprefix = \"APP\"\n",
            &[("APP_SECRETKEY", "s"), ("SPIN_VARIABLE_SECRETKEY", "other")],
        )
        .unwrap();
        let m = manifest();
        for _ in 0..3 {
            assert_eq!(
                component_get(&vars, &m.components["a"].variables, "key").unwrap(),
                "s"
            );
        }
        assert_eq!(vars.reads()["secretkey"], 3);
        vars.prepare_all().unwrap();
        assert_eq!(vars.reads()["secretkey"], 4);
        assert_eq!(vars.reads()["endpoint"], 1);
        vars.reset_counts();
        assert!(vars.reads().is_empty());
    }

    #[test]
    fn names_follow_spins_rules() {
        for ok in ["cosmoskey", "a1", "a_b"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Cosmos", "1a", "a-b", "a__b", "a_", "_a"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dotenv_lines_parse() {
        let parsed = parse_dotenv(
            "# c\nSPIN_VARIABLE_A=1\nexport SPIN_VARIABLE_B=\"two words\"\n\nC='x=y'\n",
        );
        assert_eq!(parsed["SPIN_VARIABLE_A"], "1");
        assert_eq!(parsed["SPIN_VARIABLE_B"], "two words");
        assert_eq!(parsed["C"], "x=y");
    }
}
