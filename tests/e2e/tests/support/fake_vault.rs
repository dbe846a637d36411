//! A fake Azure Key Vault and Entra token endpoint on 127.0.0.1, for the
//! test host's `azure_key_vault` provider.
//!
//! It speaks just enough of the real APIs: `POST /{tenant}/oauth2/v2.0/token`
//! answers a bearer token; `GET /secrets/{name}?api-version=7.4` with that
//! token answers `{"value": ...}`, 404 `SecretNotFound` for an unknown name,
//! 401 without the token. It can be told to answer 403, 500 or garbage, and
//! it counts secret reads per name. It runs on its own threads with blocking
//! sockets, so it answers while a test-host thread blocks on it.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// How the vault answers secret reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Status(u16),
    Garbage,
}

#[derive(Default)]
struct State {
    secrets: HashMap<String, String>,
    reads: BTreeMap<String, u64>,
    token_requests: u64,
    mode: Option<Mode>,
}

pub struct FakeVault {
    pub url: String,
    token: String,
    state: Arc<Mutex<State>>,
}

impl FakeVault {
    pub fn start(secrets: &HashMap<String, String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake vault");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let token = format!("fake-token-{}", std::process::id());
        let state = Arc::new(Mutex::new(State {
            secrets: secrets.clone(),
            ..State::default()
        }));
        let (s, t) = (state.clone(), token.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (s, t) = (s.clone(), t.clone());
                std::thread::spawn(move || serve(stream, &s, &t));
            }
        });
        FakeVault { url, token, state }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = Some(mode);
    }

    /// Secret GETs per name so far.
    pub fn reads(&self) -> BTreeMap<String, u64> {
        self.state.lock().unwrap().reads.clone()
    }

    pub fn total_reads(&self) -> u64 {
        self.reads().values().sum()
    }

    pub fn reset_reads(&self) {
        self.state.lock().unwrap().reads.clear();
    }

    pub fn token_requests(&self) -> u64 {
        self.state.lock().unwrap().token_requests
    }

    /// The token this vault accepts (for tests that check it is sent).
    #[allow(dead_code)]
    pub fn token(&self) -> &str {
        &self.token
    }
}

fn serve(mut stream: TcpStream, state: &Mutex<State>, token: &str) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + 4 + length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end + 4..]).to_string();
    let (status, answer) = answer(method, target, &headers, &body, state, token);
    let reply = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    );
    let _ = stream.write_all(reply.as_bytes());
}

fn answer(
    method: &str,
    target: &str,
    headers: &HashMap<String, String>,
    body: &str,
    state: &Mutex<State>,
    token: &str,
) -> (u16, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut state = state.lock().unwrap();
    if method == "POST" && path.ends_with("/oauth2/v2.0/token") {
        state.token_requests += 1;
        let ok = body.contains("grant_type=client_credentials")
            && body.contains("scope=https%3A%2F%2Fvault.azure.net%2F.default");
        if !ok {
            return (400, r#"{"error":"invalid_request"}"#.into());
        }
        return (
            200,
            format!(r#"{{"token_type":"Bearer","expires_in":3600,"access_token":"{token}"}}"#),
        );
    }
    let Some(name) = path.strip_prefix("/secrets/") else {
        return (404, r#"{"error":{"code":"NotFound"}}"#.into());
    };
    if method != "GET" || query != "api-version=7.4" {
        return (400, r#"{"error":{"code":"BadParameter"}}"#.into());
    }
    if headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {token}")) {
        return (401, r#"{"error":{"code":"Unauthorized"}}"#.into());
    }
    *state.reads.entry(name.to_string()).or_default() += 1;
    match state.mode.unwrap_or(Mode::Normal) {
        Mode::Status(status) => (status, r#"{"error":{"code":"Forbidden"}}"#.into()),
        Mode::Garbage => (200, "<html>not json".into()),
        Mode::Normal => match state.secrets.get(name) {
            Some(value) => (
                200,
                serde_json::json!({"value": value, "id": format!("/secrets/{name}/1")}).to_string(),
            ),
            None => (404, r#"{"error":{"code":"SecretNotFound"}}"#.into()),
        },
    }
}
