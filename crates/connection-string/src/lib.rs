//! Connection strings: `Name=value;Name=value[;]`, as Azure writes them.
//!
//! A component reads one variable per dependency instead of two (where it
//! is, and the key to call it with): under Spin every variable read is a
//! provider call, a Key Vault GET on AKS. spin.toml composes the string
//! from two application variables, so the URL stays configuration and the
//! key a secret of its own (see the crate README).
//!
//! Nothing here ever puts text from the input into an error or into
//! `Debug` output: the input holds a key.

use std::fmt;

/// Why a connection string was refused. Never carries any of its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionError {
    /// A part has no `=`, or an empty name or value.
    MalformedPart,
    /// A part this kind of connection string does not have.
    UnknownPart,
    /// A required part is absent.
    Missing(&'static str),
    /// A part is given twice.
    Duplicate(&'static str),
    /// The endpoint is not an origin (`http(s)://host[:port]`, optionally
    /// with a trailing `/`).
    BadEndpoint(&'static str),
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::MalformedPart => {
                f.write_str("a part is not `Name=value` with both non-empty")
            }
            ConnectionError::UnknownPart => f.write_str("a part has a name that is not expected"),
            ConnectionError::Missing(name) => write!(f, "`{name}` is missing"),
            ConnectionError::Duplicate(name) => write!(f, "`{name}` is given more than once"),
            ConnectionError::BadEndpoint(name) => write!(
                f,
                "`{name}` must be http:// or https:// with a host and optional port, nothing else"
            ),
        }
    }
}

impl std::error::Error for ConnectionError {}

/// The values of exactly the parts `names`, in that order.
fn parts<'a, const N: usize>(
    text: &'a str,
    names: [&'static str; N],
) -> Result<[&'a str; N], ConnectionError> {
    let mut found: [Option<&'a str>; N] = [None; N];
    // One trailing `;` is what Azure writes; an empty part elsewhere is not.
    let text = text.trim();
    let text = text.strip_suffix(';').unwrap_or(text);
    for part in text.split(';') {
        let (name, value) = part.split_once('=').ok_or(ConnectionError::MalformedPart)?;
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || value.is_empty() {
            return Err(ConnectionError::MalformedPart);
        }
        let index = names
            .iter()
            .position(|expected| expected.eq_ignore_ascii_case(name))
            .ok_or(ConnectionError::UnknownPart)?;
        if found[index].replace(value).is_some() {
            return Err(ConnectionError::Duplicate(names[index]));
        }
    }
    let mut values = [""; N];
    for (i, value) in found.into_iter().enumerate() {
        values[i] = value.ok_or(ConnectionError::Missing(names[i]))?;
    }
    Ok(values)
}

/// An origin, `scheme://host[:port]` with the scheme in lower case and no
/// trailing slash: what a request URL starts with.
#[derive(Clone, PartialEq, Eq)]
pub struct Origin(String);

impl Origin {
    /// Reads `http(s)://host[:port][/]`; `part` names the part in errors.
    fn parse(url: &str, part: &'static str) -> Result<Self, ConnectionError> {
        let bad = ConnectionError::BadEndpoint(part);
        let (scheme, rest) = url.split_once("://").ok_or(bad)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad);
        }
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = match authority.rsplit_once(':') {
            // An IPv6 literal's colons are inside its brackets.
            Some((host, port)) if !port.contains(']') => (host, Some(port)),
            _ => (authority, None),
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b))
            && (host.starts_with('[') == host.ends_with(']'))
            && (!host.contains(':') || host.starts_with('['));
        let port_ok = port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
        if !host_ok || !port_ok {
            return Err(bad);
        }
        Ok(Self(format!("{scheme}://{authority}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `origin` + `path_and_query` (which starts with `/`).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.0)
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Configuration, not a secret.
        f.debug_tuple("Origin").field(&self.0).finish()
    }
}

/// Where a private service is and the host key to present to it:
/// `Endpoint=<origin>;Key=<host key>`.
#[derive(Clone)]
pub struct ServiceConnection {
    endpoint: Origin,
    key: String,
}

impl ServiceConnection {
    pub fn parse(text: &str) -> Result<Self, ConnectionError> {
        let [endpoint, key] = parts(text, ["Endpoint", "Key"])?;
        Ok(Self {
            endpoint: Origin::parse(endpoint, "Endpoint")?,
            key: key.to_string(),
        })
    }

    pub fn endpoint(&self) -> &Origin {
        &self.endpoint
    }

    /// The host key, to send in `x-functions-key` and nowhere else.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Debug for ServiceConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceConnection")
            .field("endpoint", &self.endpoint)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The document store: `AccountEndpoint=<url>;AccountKey=<base64>`, the
/// form of an Azure Cosmos DB connection string.
#[derive(Clone)]
pub struct CosmosConnection {
    endpoint: Origin,
    account_key: String,
}

impl CosmosConnection {
    pub fn parse(text: &str) -> Result<Self, ConnectionError> {
        let [endpoint, account_key] = parts(text, ["AccountEndpoint", "AccountKey"])?;
        Ok(Self {
            endpoint: Origin::parse(endpoint, "AccountEndpoint")?,
            account_key: account_key.to_string(),
        })
    }

    pub fn endpoint(&self) -> &Origin {
        &self.endpoint
    }

    /// The base64 master key, to sign requests with and nothing else.
    pub fn account_key(&self) -> &str {
        &self.account_key
    }
}

impl fmt::Debug for CosmosConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CosmosConnection")
            .field("endpoint", &self.endpoint)
            .field("account_key", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &str =
        "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

    #[test]
    fn a_service_connection_as_spin_toml_composes_it() {
        let c =
            ServiceConnection::parse("Endpoint=http://audit-api.spin.internal;Key=k3y").unwrap();
        assert_eq!(c.endpoint().as_str(), "http://audit-api.spin.internal");
        assert_eq!(c.key(), "k3y");
        assert_eq!(
            c.endpoint().url("/health/ready"),
            "http://audit-api.spin.internal/health/ready"
        );
    }

    #[test]
    fn a_cosmos_connection_string_as_azure_writes_it() {
        let text =
            format!("AccountEndpoint=https://acct.documents.azure.com:443/;AccountKey={KEY};");
        let c = CosmosConnection::parse(&text).unwrap();
        assert_eq!(
            c.endpoint().as_str(),
            "https://acct.documents.azure.com:443"
        );
        // Base64 padding `=` belongs to the value.
        assert_eq!(c.account_key(), KEY);
    }

    #[test]
    fn names_are_case_insensitive_and_order_free() {
        let c = ServiceConnection::parse("key=abc; ENDPOINT=HTTPS://[::1]:8443").unwrap();
        assert_eq!(c.endpoint().as_str(), "https://[::1]:8443");
        assert_eq!(c.key(), "abc");
    }

    #[test]
    fn every_part_is_required_once_and_nothing_else_is_accepted() {
        use ConnectionError::*;
        let cases = [
            ("", MalformedPart),
            ("Endpoint=http://a", Missing("Key")),
            ("Key=k", Missing("Endpoint")),
            ("Endpoint=http://a;Key=k;Key=j", Duplicate("Key")),
            ("Endpoint=http://a;Key=k;Extra=1", UnknownPart),
            ("Endpoint=http://a;Key=", MalformedPart),
            ("Endpoint=http://a;;Key=k", MalformedPart),
            ("Endpoint=http://a;Key", MalformedPart),
            ("=x;Endpoint=http://a;Key=k", MalformedPart),
        ];
        for (text, expected) in cases {
            assert_eq!(
                ServiceConnection::parse(text).unwrap_err(),
                expected,
                "{text:?}"
            );
        }
    }

    #[test]
    fn an_endpoint_is_an_origin_and_nothing_more() {
        for endpoint in [
            "ftp://a",
            "http//a",
            "http://",
            "http://a/path",
            "http://a?x=1",
            "http://a#f",
            "http://user@a",
            "http://a:",
            "http://a:99999x",
            "http://a b",
            "http://::1",
            "{{ auditapiurl }}",
        ] {
            let text = format!("Endpoint={endpoint};Key=k");
            assert_eq!(
                ServiceConnection::parse(&text).unwrap_err(),
                ConnectionError::BadEndpoint("Endpoint"),
                "{endpoint:?}"
            );
        }
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let c = ServiceConnection::parse("Endpoint=https://a;Key=s3cret").unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
        let text = format!("AccountEndpoint=https://a/;AccountKey={KEY}");
        let c = CosmosConnection::parse(&text).unwrap();
        assert!(!format!("{c:?}").contains(KEY));
    }

    proptest! {
        /// Whatever the text, an error's message contains none of it (a
        /// part of a key could be anywhere in a broken string).
        #[test]
        fn errors_never_echo_the_input(secret in "[A-Za-z0-9+/]{12,40}", shape in 0usize..6) {
            let text = match shape {
                0 => format!("Endpoint=http://a;Key={secret};{secret}"),
                1 => format!("{secret}=x;Endpoint=http://a;Key=k"),
                2 => format!("Endpoint={secret};Key=k"),
                3 => format!("Endpoint=http://a/{secret};Key={secret}"),
                4 => format!("Key={secret}"),
                _ => secret.clone(),
            };
            if let Err(e) = ServiceConnection::parse(&text) {
                let shown = format!("{e} {e:?}");
                prop_assert!(!shown.contains(&secret), "{}", shown);
            }
        }

        /// A well-formed string always parses back to its parts.
        #[test]
        fn well_formed_strings_round_trip(
            host in "[a-z][a-z0-9-]{0,20}(\\.[a-z0-9-]{1,10}){0,3}",
            port in proptest::option::of(1u16..),
            key in "[A-Za-z0-9+/=_-]{1,64}",
            https in any::<bool>(),
        ) {
            let scheme = if https { "https" } else { "http" };
            let origin = match port {
                Some(p) => format!("{scheme}://{host}:{p}"),
                None => format!("{scheme}://{host}"),
            };
            let c = ServiceConnection::parse(&format!("Endpoint={origin};Key={key}")).unwrap();
            prop_assert_eq!(c.endpoint().as_str(), origin.as_str());
            prop_assert_eq!(c.key(), key.as_str());
        }
    }
}
