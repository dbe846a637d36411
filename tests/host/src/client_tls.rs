//! Outbound HTTPS, with the runtime config's `[[client_tls]]`: which roots a
//! component trusts for a host, and which client certificate it presents.
//!
//! As Spin does it (crates/factor-outbound-networking runtime_config/spin.rs
//! and tls.rs, crates/factor-outbound-http wasi.rs `connect_tls`):
//! - each entry names `component_ids` and `hosts` (a host without a port);
//!   the first entry naming a (component, host) pair wins;
//! - `ca_roots_file`, `client_cert_file` and `client_private_key_file` are
//!   PEM files, relative to the runtime config's directory, read once at
//!   start (a bad file refuses to start);
//! - with neither `ca_use_platform_roots` nor `ca_use_webpki_roots` set, a
//!   `ca_roots_file` replaces the default roots; otherwise the flags add
//!   them;
//! - a pair without an entry gets the default: platform and webpki roots,
//!   no client certificate;
//! - every TLS failure reaches the component as `TLS-protocol-error`.
//!
//! Where the test host differs: it has no platform verifier, so "platform
//! roots" are the webpki roots (it only ever connects to loopback, where no
//! public CA's certificate is possible anyway); it offers only HTTP/1.1 in
//! ALPN (Spin offers h2 too; the terminators here speak HTTP/1.1).
//! Connections are opened and pooled by outbound_http.rs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, ensure, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// One `[[client_tls]]` entry as written (paths already resolved against the
/// runtime config's directory by [`ClientTlsEntry::resolve_paths`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTlsEntry {
    pub component_ids: Vec<String>,
    pub hosts: Vec<String>,
    pub ca_use_platform_roots: Option<bool>,
    pub ca_use_webpki_roots: Option<bool>,
    pub ca_roots_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
    pub client_private_key_file: Option<PathBuf>,
}

impl ClientTlsEntry {
    /// Spin's checks on an entry, made when the runtime config is read.
    pub(crate) fn validate(&self) -> Result<()> {
        ensure!(
            !self.component_ids.is_empty(),
            "'component_ids' list may not be empty"
        );
        ensure!(!self.hosts.is_empty(), "'hosts' list may not be empty");
        for host in &self.hosts {
            let authority: http::uri::Authority = host
                .parse()
                .map_err(|_| anyhow!("invalid TLS 'host' {host:?}"))?;
            ensure!(
                authority.port().is_none(),
                "invalid TLS 'host' {host:?}; ports not currently supported"
            );
        }
        match (&self.client_cert_file, &self.client_private_key_file) {
            (Some(_), None) => bail!("client_cert_file specified without client_private_key_file"),
            (None, Some(_)) => bail!("client_private_key_file specified without client_cert_file"),
            _ => Ok(()),
        }
    }

    pub(crate) fn resolve_paths(&mut self, dir: &Path) {
        for path in [
            &mut self.ca_roots_file,
            &mut self.client_cert_file,
            &mut self.client_private_key_file,
        ]
        .into_iter()
        .flatten()
        {
            *path = dir.join(&*path);
        }
    }

    fn client_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        let (platform, webpki) = match (self.ca_use_platform_roots, self.ca_use_webpki_roots) {
            (Some(platform), Some(webpki)) => (platform, webpki),
            (Some(platform), None) => (platform, false),
            (None, Some(webpki)) => (false, webpki),
            (None, None) => (self.ca_roots_file.is_none(), false),
        };
        let roots = self
            .ca_roots_file
            .as_deref()
            .map(load_certs)
            .transpose()?
            .unwrap_or_default();
        ensure!(
            platform || webpki || !roots.is_empty(),
            "at least one of 'use_platform_roots', 'use_webpki_roots', or 'root_certificates' \
             must be set"
        );
        let client_cert = match (&self.client_cert_file, &self.client_private_key_file) {
            (Some(cert), Some(key)) => Some((load_certs(cert)?, load_key(key)?)),
            _ => None,
        };
        client_config(platform || webpki, roots, client_cert)
    }
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("failed to load certificate(s) from '{}'", path.display()))?;
    ensure!(!certs.is_empty(), "no certificate in '{}'", path.display());
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    // The error names the file, never its contents.
    PrivateKeyDer::from_pem_file(path)
        .map_err(|_| anyhow!("failed to load key from '{}'", path.display()))
}

fn client_config(
    public_roots: bool,
    roots: Vec<CertificateDer<'static>>,
    client_cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<rustls::ClientConfig>> {
    let mut store = rustls::RootCertStore::empty();
    if public_roots {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for cert in roots {
        store
            .add(cert)
            .context("a root certificate is not usable")?;
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(store);
    let mut config = match client_cert {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .context("the client certificate and key do not make a usable pair")?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The TLS client configs of an app: component → host → config.
pub(crate) struct ClientTls {
    by_component: HashMap<String, HashMap<String, Arc<rustls::ClientConfig>>>,
    default: Arc<rustls::ClientConfig>,
}

impl ClientTls {
    pub(crate) fn new(entries: &[ClientTlsEntry]) -> Result<Self> {
        let mut by_component: HashMap<String, HashMap<String, Arc<rustls::ClientConfig>>> =
            HashMap::new();
        for (i, entry) in entries.iter().enumerate() {
            let config = entry
                .client_config()
                .with_context(|| format!("[[client_tls]] #{}", i + 1))?;
            for component in &entry.component_ids {
                let hosts = by_component.entry(component.clone()).or_default();
                for host in &entry.hosts {
                    // First matching (component, host) pair wins, as in Spin.
                    hosts
                        .entry(host.to_ascii_lowercase())
                        .or_insert_with(|| config.clone());
                }
            }
        }
        Ok(Self {
            by_component,
            default: client_config(true, Vec::new(), None)?,
        })
    }

    pub(crate) fn config_for(&self, component: &str, host: &str) -> Arc<rustls::ClientConfig> {
        self.by_component
            .get(component)
            .and_then(|hosts| hosts.get(&host.to_ascii_lowercase()))
            .unwrap_or(&self.default)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str) -> Result<ClientTlsEntry> {
        let entry: ClientTlsEntry = toml::from_str(text)?;
        entry.validate()?;
        Ok(entry)
    }

    #[test]
    fn entries_are_checked_as_spin_checks_them() {
        assert!(entry("component_ids = [\"a\"]\nhosts = [\"h.example\"]\n").is_ok());
        for bad in [
            "component_ids = []\nhosts = [\"h\"]\n",
            "component_ids = [\"a\"]\nhosts = []\n",
            "component_ids = [\"a\"]\nhosts = [\"h:443\"]\n",
            "component_ids = [\"a\"]\nhosts = [\"h\"]\nclient_cert_file = \"c.pem\"\n",
            "component_ids = [\"a\"]\nhosts = [\"h\"]\nclient_private_key_file = \"k.pem\"\n",
            "component_ids = [\"a\"]\nhosts = [\"h\"]\nclient_cert_chain = \"c.pem\"\n",
        ] {
            assert!(entry(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_entry_without_roots_is_refused_and_missing_files_name_the_file() {
        let none = entry("component_ids = [\"a\"]\nhosts = [\"h\"]\nca_use_webpki_roots = false\n")
            .unwrap();
        let err = ClientTls::new(&[none])
            .err()
            .expect("no roots at all")
            .to_string();
        assert!(err.contains("#1"), "{err}");
        let missing = entry(
            "component_ids = [\"a\"]\nhosts = [\"h\"]\nca_roots_file = \"/nonexistent/ca.pem\"\n",
        )
        .unwrap();
        let err = format!(
            "{:#}",
            ClientTls::new(&[missing]).err().expect("missing file")
        );
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn the_first_entry_for_a_pair_wins_and_others_get_the_default() {
        let a = entry("component_ids = [\"a\"]\nhosts = [\"h\"]\nca_use_webpki_roots = true\n")
            .unwrap();
        let b = entry("component_ids = [\"a\", \"b\"]\nhosts = [\"H\"]\n").unwrap();
        let tls = ClientTls::new(&[a, b]).unwrap();
        let first = tls.config_for("a", "h");
        assert!(Arc::ptr_eq(&first, &tls.config_for("a", "H")));
        assert!(!Arc::ptr_eq(&first, &tls.config_for("b", "h")));
        assert!(Arc::ptr_eq(&tls.default, &tls.config_for("c", "h")));
        assert!(Arc::ptr_eq(&tls.default, &tls.config_for("a", "other")));
    }
}
