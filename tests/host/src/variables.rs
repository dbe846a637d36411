//! Spin variables: provider order, templates and per-component visibility.
//!
//! Providers are tried in Spin's order: the environment (`SPIN_VARIABLE_<NAME>`),
//! then a `.env` file beside the manifest, then the manifest default. A
//! `required` variable that no provider resolves stops the app at startup with
//! Spin's message. A component sees only the names in its own
//! `[component.<id>.variables]` table.

use anyhow::{anyhow, bail, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::RwLock;

use crate::manifest::Manifest;

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

/// Where a variable's value came from; tests and diagnostics use it, values
/// themselves are never printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Environment,
    DotEnv,
    Default,
}

/// Application variables as the providers resolve them. Values can be
/// replaced at run time through [`Variables::set`], which models a secret
/// changing in the provider (a key rotation in Key Vault).
pub struct Variables {
    declared: BTreeMap<String, crate::manifest::VariableDecl>,
    resolved: RwLock<HashMap<String, (String, Provider)>>,
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
    /// Resolves every declared variable. `environment` is the process
    /// environment (or a test's stand-in for it).
    pub fn resolve(manifest: &Manifest, environment: &HashMap<String, String>) -> Result<Self> {
        let dotenv = read_dotenv(&manifest.dir.join(".env"));
        let mut resolved = HashMap::new();
        let mut missing = Vec::new();
        for (name, decl) in &manifest.variables {
            let env_key = format!("SPIN_VARIABLE_{}", name.to_uppercase());
            let value = if let Some(v) = environment.get(&env_key) {
                Some((v.clone(), Provider::Environment))
            } else if let Some(v) = dotenv.get(&env_key) {
                Some((v.clone(), Provider::DotEnv))
            } else {
                decl.default.clone().map(|v| (v, Provider::Default))
            };
            match value {
                Some(v) => {
                    resolved.insert(name.clone(), v);
                }
                None if decl.required => missing.push(format!("Key({name:?})")),
                None => {}
            }
        }
        if !missing.is_empty() {
            bail!(
                "provider error: no provider resolved required variable(s): [{}]",
                missing.join(", ")
            );
        }
        Ok(Self {
            declared: manifest.variables.clone(),
            resolved: RwLock::new(resolved),
        })
    }

    /// Replaces a variable's value as a provider would after a secret update.
    pub fn set(&self, name: &str, value: &str) -> Result<()> {
        if !self.declared.contains_key(name) {
            bail!("no application variable {name:?}");
        }
        self.resolved
            .write()
            .unwrap()
            .insert(name.to_string(), (value.to_string(), Provider::Environment));
        Ok(())
    }

    pub fn provider_of(&self, name: &str) -> Option<Provider> {
        self.resolved.read().unwrap().get(name).map(|(_, p)| *p)
    }

    fn app_value(&self, name: &str) -> Option<String> {
        self.resolved
            .read()
            .unwrap()
            .get(name)
            .map(|(v, _)| v.clone())
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
            let value = self
                .app_value(name)
                .ok_or_else(|| anyhow!("template refers to undefined variable {name:?}"))?;
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
