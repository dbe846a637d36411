//! `allowed_outbound_hosts`: which URLs a component may request.
//!
//! Entries are `scheme://host[:port]`; `*` may stand for the whole host, a
//! leading `*.` label, or the port. Without a port the scheme's default port
//! applies (80 for http, 443 for https), as in Spin. Templated entries are
//! expanded from variables when the app starts.

use anyhow::{bail, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: String,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    Suffix(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Exact(u16),
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl AllowedHost {
    pub fn parse(entry: &str) -> Result<Self> {
        let (scheme, rest) = entry.split_once("://").ok_or_else(|| {
            anyhow::anyhow!("allowed_outbound_hosts entry {entry:?} needs a scheme")
        })?;
        let scheme = scheme.to_ascii_lowercase();
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            bail!("allowed_outbound_hosts entry {entry:?} must not contain a path");
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
            _ => (rest, None),
        };
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            HostPattern::Suffix(format!(".{suffix}"))
        } else if host.is_empty() {
            bail!("allowed_outbound_hosts entry {entry:?} has no host");
        } else {
            HostPattern::Exact(host)
        };
        let port = match port {
            Some("*") => PortPattern::Any,
            Some(p) => PortPattern::Exact(
                p.parse()
                    .map_err(|_| anyhow::anyhow!("invalid port in {entry:?}"))?,
            ),
            None => PortPattern::Exact(
                default_port(&scheme)
                    .ok_or_else(|| anyhow::anyhow!("{entry:?} needs a port for scheme {scheme}"))?,
            ),
        };
        Ok(Self { scheme, host, port })
    }

    pub fn is_wildcard(&self) -> bool {
        !matches!(self.host, HostPattern::Exact(_)) || self.port == PortPattern::Any
    }

    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme = scheme.to_ascii_lowercase();
        let host = host.to_ascii_lowercase();
        let Some(port) = port.or_else(|| default_port(&scheme)) else {
            return false;
        };
        scheme == self.scheme
            && match &self.host {
                HostPattern::Any => true,
                HostPattern::Exact(h) => *h == host,
                HostPattern::Suffix(s) => host.ends_with(s.as_str()),
            }
            && match self.port {
                PortPattern::Any => true,
                PortPattern::Exact(p) => p == port,
            }
    }
}

/// A component's expanded list.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    entries: Vec<AllowedHost>,
}

impl OutboundPolicy {
    pub fn new(entries: Vec<AllowedHost>) -> Self {
        Self { entries }
    }

    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        self.entries.iter().any(|e| e.allows(scheme, host, port))
    }

    pub fn has_wildcard(&self) -> bool {
        self.entries.iter().any(AllowedHost::is_wildcard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_entries_use_the_schemes_default_port() {
        let a = AllowedHost::parse("http://audit-api.spin.internal").unwrap();
        assert!(a.allows("http", "audit-api.spin.internal", None));
        assert!(a.allows("http", "audit-api.spin.internal", Some(80)));
        assert!(!a.allows("http", "audit-api.spin.internal", Some(8080)));
        assert!(!a.allows("https", "audit-api.spin.internal", None));
        assert!(!a.allows("http", "patient-api.spin.internal", None));
    }

    #[test]
    fn ports_and_wildcards() {
        let a = AllowedHost::parse("http://127.0.0.1:8081").unwrap();
        assert!(a.allows("http", "127.0.0.1", Some(8081)));
        assert!(!a.allows("http", "127.0.0.1", None));
        let w = AllowedHost::parse("http://*.spin.internal").unwrap();
        assert!(w.allows("http", "docstore.spin.internal", None));
        assert!(w.is_wildcard());
        let any_port = AllowedHost::parse("https://example.org:*").unwrap();
        assert!(any_port.allows("https", "example.org", Some(1)));
        assert!(any_port.is_wildcard());
        assert!(!AllowedHost::parse("https://acct.documents.azure.com:443")
            .unwrap()
            .is_wildcard());
    }

    #[test]
    fn malformed_entries_are_errors() {
        for bad in [
            "audit-api.spin.internal",
            "http://",
            "http://h:port",
            "ftp://h",
            "http://h/path",
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad}");
        }
    }
}
