//! A test-only Azure Key Vault variable provider: the Key Vault REST secrets
//! API (`GET {vault}/secrets/{name}?api-version=7.4` with a bearer token)
//! spoken to a vault on loopback.
//!
//! Like Spin's provider (crates/variables-azure), every lookup is a GET and
//! anything but a secret (404 included) is an error, which stops the lookup.
//! The token comes from the Entra token endpoint the way the Azure SDK's
//! workload-identity credential gets it (`AZURE_AUTHORITY_HOST`,
//! `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE`), or
//! from a client secret in the runtime config; it is reused until it
//! expires, as the SDK does.
//!
//! The test host never sends traffic off loopback: a vault or token URL
//! that is not loopback `http://` is refused at startup. No error message
//! carries a secret value or a token.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

use crate::runtime_config::{KeyVaultAuth, KeyVaultConfig};

const API_VERSION: &str = "7.4";
const TIMEOUT: Duration = Duration::from_secs(5);

/// A loopback `http://host:port` and a path prefix.
#[derive(Debug, Clone)]
struct LoopbackUrl {
    authority: String,
    path: String,
}

impl LoopbackUrl {
    fn parse(what: &str, url: &str) -> Result<Self> {
        let uri: http::Uri = url.parse().map_err(|_| anyhow!("{what} is not a URL"))?;
        if uri.scheme_str() != Some("http") {
            bail!(
                "{what} must be http:// on loopback: the test host speaks to a fake vault on \
                 this machine only and never sends traffic off it"
            );
        }
        let host = uri.host().unwrap_or("");
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = bare.eq_ignore_ascii_case("localhost")
            || bare
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            bail!(
                "{what} {host:?} is not loopback: the test host never sends traffic off loopback"
            );
        }
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        Ok(Self {
            authority,
            path: uri.path().trim_end_matches('/').to_string(),
        })
    }
}

enum Credential {
    /// Workload identity: a client assertion read from a token file.
    FederatedToken {
        token_url: LoopbackUrl,
        client_id: String,
        token_file: String,
    },
    ClientSecret {
        token_url: LoopbackUrl,
        client_id: String,
        client_secret: String,
    },
}

pub struct KeyVaultProvider {
    vault: LoopbackUrl,
    credential: Credential,
    token: Mutex<Option<(String, Instant)>>,
}

impl KeyVaultProvider {
    pub fn new(config: &KeyVaultConfig, environment: &HashMap<String, String>) -> Result<Self> {
        let vault = LoopbackUrl::parse("vault_url", &config.vault_url)?;
        let credential = match &config.auth {
            KeyVaultAuth::ClientSecret {
                client_id,
                client_secret,
                tenant_id,
                authority_host,
            } => Credential::ClientSecret {
                token_url: token_url("authority_host", authority_host, tenant_id)?,
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
            },
            KeyVaultAuth::Environmental => {
                let var = |name: &str| {
                    environment.get(name).cloned().ok_or_else(|| {
                        anyhow!(
                            "azure_key_vault with ambient credentials: {name} is not set (the test \
                             host models workload identity: AZURE_AUTHORITY_HOST, \
                             AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE)"
                        )
                    })
                };
                Credential::FederatedToken {
                    token_url: token_url(
                        "AZURE_AUTHORITY_HOST",
                        &var("AZURE_AUTHORITY_HOST")?,
                        &var("AZURE_TENANT_ID")?,
                    )?,
                    client_id: var("AZURE_CLIENT_ID")?,
                    token_file: var("AZURE_FEDERATED_TOKEN_FILE")?,
                }
            }
        };
        Ok(Self {
            vault,
            credential,
            token: Mutex::new(None),
        })
    }

    /// One secret read: always a GET, never cached.
    pub fn get(&self, name: &str) -> Result<String, String> {
        // Spin's context for every failure of this provider.
        let fail = |why: String| format!("Failed to read variable from Azure Key Vault: {why}");
        let token = self.token().map_err(fail)?;
        let path = format!(
            "{}/secrets/{name}?api-version={API_VERSION}",
            self.vault.path
        );
        let (status, body) = http_call(
            &self.vault.authority,
            "GET",
            &path,
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )
        .map_err(|e| fail(format!("vault unreachable ({e})")))?;
        if status != 200 {
            return Err(fail(format!("the vault answered HTTP {status}")));
        }
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("value")?.as_str().map(str::to_string))
            .ok_or_else(|| fail("the vault's answer is not a secret bundle".into()))
    }

    fn token(&self) -> Result<String, String> {
        let mut cached = self.token.lock().unwrap();
        if let Some((token, expires)) = cached.as_ref() {
            if Instant::now() < *expires {
                return Ok(token.clone());
            }
        }
        let (token_url, mut form) = match &self.credential {
            Credential::FederatedToken {
                token_url,
                client_id,
                token_file,
            } => {
                let assertion = std::fs::read_to_string(token_file)
                    .map_err(|e| format!("cannot read AZURE_FEDERATED_TOKEN_FILE ({e})"))?;
                (
                    token_url,
                    vec![
                        ("client_id", client_id.clone()),
                        (
                            "client_assertion_type",
                            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                        ),
                        ("client_assertion", assertion.trim().to_string()),
                    ],
                )
            }
            Credential::ClientSecret {
                token_url,
                client_id,
                client_secret,
            } => (
                token_url,
                vec![
                    ("client_id", client_id.clone()),
                    ("client_secret", client_secret.clone()),
                ],
            ),
        };
        form.push(("grant_type", "client_credentials".into()));
        form.push(("scope", "https://vault.azure.net/.default".into()));
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let (status, answer) = http_call(
            &token_url.authority,
            "POST",
            &token_url.path,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(body.as_bytes()),
        )
        .map_err(|e| format!("token endpoint unreachable ({e})"))?;
        if status != 200 {
            return Err(format!("the token endpoint answered HTTP {status}"));
        }
        let json: serde_json::Value = serde_json::from_slice(&answer)
            .map_err(|_| "the token endpoint's answer is not JSON".to_string())?;
        let token = json
            .get("access_token")
            .and_then(|t| t.as_str())
            .ok_or_else(|| "the token endpoint's answer has no access_token".to_string())?
            .to_string();
        let lifetime = json.get("expires_in").and_then(|e| e.as_u64()).unwrap_or(0);
        // Renew a little early, as the SDK does.
        let expires = Instant::now() + Duration::from_secs(lifetime.saturating_sub(60));
        *cached = Some((token.clone(), expires));
        Ok(token)
    }
}

fn token_url(what: &str, authority: &str, tenant: &str) -> Result<LoopbackUrl> {
    let mut url = LoopbackUrl::parse(what, authority)?;
    if tenant.is_empty()
        || !tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        bail!("the tenant id is not a tenant id");
    }
    url.path = format!("{}/{tenant}/oauth2/v2.0/token", url.path);
    Ok(url)
}

fn form_encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One HTTP/1.1 exchange on a fresh loopback connection. Blocking on
/// purpose: `variables::get` is a synchronous host call, and the fake vault
/// runs on its own thread. Returns the status and the body.
fn http_call(
    authority: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<(u16, Vec<u8>)> {
    let addr = std::net::ToSocketAddrs::to_socket_addrs(authority)?
        .find(|a| a.ip().is_loopback())
        .ok_or_else(|| std::io::Error::other("no loopback address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let path = if path.is_empty() { "/" } else { path };
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or_default();
    request.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP header end"))?;
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP response"))?;
    Ok((status, answer[split + 4..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vault_url: &str) -> KeyVaultConfig {
        KeyVaultConfig {
            vault_url: vault_url.into(),
            auth: KeyVaultAuth::Environmental,
        }
    }

    fn env(authority: &str) -> HashMap<String, String> {
        HashMap::from([
            ("AZURE_AUTHORITY_HOST".into(), authority.into()),
            ("AZURE_TENANT_ID".into(), "t1".into()),
            ("AZURE_CLIENT_ID".into(), "c1".into()),
            ("AZURE_FEDERATED_TOKEN_FILE".into(), "/nonexistent".into()),
        ])
    }

    #[test]
    fn only_loopback_http_vaults_and_token_endpoints_are_accepted() {
        let local = env("http://127.0.0.1:1/");
        assert!(KeyVaultProvider::new(&config("http://127.0.0.1:1/"), &local).is_ok());
        assert!(KeyVaultProvider::new(&config("http://[::1]:1"), &local).is_ok());
        for vault in [
            "https://myvault.vault.azure.net/",
            "http://10.0.0.1/",
            "http://vault.example/",
            "ftp://127.0.0.1/",
            "not a url",
        ] {
            assert!(
                KeyVaultProvider::new(&config(vault), &local).is_err(),
                "{vault}"
            );
        }
        let remote = env("https://login.microsoftonline.com/");
        assert!(KeyVaultProvider::new(&config("http://127.0.0.1:1/"), &remote).is_err());
        // A service principal's authority is a public cloud: refused too.
        let sp = KeyVaultConfig {
            vault_url: "http://127.0.0.1:1/".into(),
            auth: KeyVaultAuth::ClientSecret {
                client_id: "c".into(),
                client_secret: "s".into(),
                tenant_id: "t".into(),
                authority_host: "https://login.microsoftonline.com/".into(),
            },
        };
        assert!(KeyVaultProvider::new(&sp, &HashMap::new()).is_err());
    }

    #[test]
    fn ambient_credentials_need_the_workload_identity_variables() {
        let err = KeyVaultProvider::new(&config("http://127.0.0.1:1/"), &HashMap::new())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("AZURE_AUTHORITY_HOST is not set"), "{err}");
    }

    #[test]
    fn a_vault_that_is_down_is_an_error_naming_no_value() {
        // Port 1 on loopback: nothing listens there.
        let provider =
            KeyVaultProvider::new(&config("http://127.0.0.1:1/"), &env("http://127.0.0.1:1/"))
                .unwrap();
        let err = provider.get("cosmoskey").unwrap_err();
        assert!(
            err.starts_with("Failed to read variable from Azure Key Vault"),
            "{err}"
        );
    }
}
