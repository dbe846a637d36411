//! Native implementations of the Cosmos client's transport and clock, so
//! tests and benchmarks can drive the store with the same client the
//! components use.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cosmos::{HttpRequest, HttpResponse, Method, Transport, TransportError};

/// Blocking HTTP over loopback.
pub struct UreqTransport {
    agent: ureq::Agent,
}

impl Default for UreqTransport {
    fn default() -> Self {
        Self {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(30)))
                .build()
                .into(),
        }
    }
}

impl Transport for UreqTransport {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut builder = http::Request::builder()
            .method(request.method.as_str())
            .uri(&request.url);
        for (k, v) in &request.headers {
            builder = builder.header(k, v);
        }
        let result = match request.method {
            Method::Get | Method::Delete => self.agent.run(builder.body(()).unwrap()),
            Method::Post | Method::Put => self.agent.run(builder.body(request.body).unwrap()),
        };
        let mut response = result.map_err(|e| TransportError::Connect(e.to_string()))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .map_err(|e| TransportError::Other(e.to_string()))?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// The system clock.
pub struct SystemClock {
    start: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl cosmos::Clock for SystemClock {
    fn now_unix_seconds(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn now_millis(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }

    fn jitter(&self) -> f64 {
        let bytes = crate::random_bytes(8);
        (u64::from_le_bytes(bytes.try_into().unwrap()) >> 11) as f64 / (1u64 << 53) as f64
    }
}
