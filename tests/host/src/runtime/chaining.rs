//! Outbound requests from a component: `allowed_outbound_hosts`, service
//! chaining to `*.spin.internal` in process (with injected faults), and
//! loopback-only HTTP (HTTPS with `[[client_tls]]`), pooled as in Spin,
//! for everything else.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use super::*;

pub(super) fn error_body(status: u16, text: &str) -> http::Response<WasiBody> {
    http::Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(
            Full::new(Bytes::from(text.to_string()))
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .expect("static response")
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub(super) struct OutboundHooks {
    pub(super) app: Arc<AppInner>,
    pub(super) component: Arc<LoadedComponent>,
    pub(super) lineage: Lineage,
    /// Spin resolves every application variable once per instance, the
    /// first time the instance's outbound requests are checked
    /// (factor-outbound-networking `prepare`); a failure there denies every
    /// outbound request of the instance.
    pub(super) prepared: Option<Result<(), String>>,
}

type IoFuture = Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<
        dyn std::future::Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>>
            + Send,
    > {
        let app = self.app.clone();
        let component = self.component.clone();
        let prepared = self
            .prepared
            .get_or_insert_with(|| app.variables.prepare_all())
            .clone();
        let lineage = self.lineage.clone();
        Box::new(async move {
            if let Err(e) = prepared {
                app.log(
                    &component.decl.id,
                    "host",
                    format!(
                        "Error resolving variables when checking request against allowed \
                         outbound hosts: {e}"
                    ),
                );
                return Err(HttpError::HttpRequestDenied);
            }
            let response = app
                .send_outbound(&component, &lineage, request, options)
                .await?;
            Ok((response, Box::new(async { Ok(()) }) as IoFuture))
        })
    }
}

impl AppInner {
    async fn send_outbound(
        self: &Arc<Self>,
        caller: &LoadedComponent,
        lineage: &Lineage,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        // Spin injects its current span into every outbound request,
        // replacing the component's own traceparent (telemetry on).
        if let (Some(telemetry), Some(trace_id)) = (&self.telemetry, lineage.trace_id()) {
            let traceparent = telemetry.traceparent(trace_id);
            if let Ok(value) = http::HeaderValue::from_str(&traceparent) {
                request.headers_mut().insert("traceparent", value);
            }
        }
        let uri = request.uri().clone();
        let scheme = uri.scheme_str().unwrap_or("http").to_string();
        let host = uri.host().unwrap_or("").to_string();
        if !caller.outbound.allows(&scheme, &host, uri.port_u16()) {
            let url = format!(
                "{scheme}://{}{}",
                uri.authority().map(|a| a.as_str()).unwrap_or(""),
                uri.path()
            );
            self.log(
                &caller.decl.id,
                "host",
                format!("outbound request to {url} denied by allowed_outbound_hosts"),
            );
            self.denials.lock().unwrap().push(Denial {
                component: caller.decl.id.clone(),
                url,
            });
            return Err(HttpError::HttpRequestDenied);
        }
        if let Some(target) = host.strip_suffix(".spin.internal") {
            return self
                .send_chained(&caller.decl.id, lineage, target, request, options)
                .await;
        }
        if !is_loopback(&host) {
            // The test host only ever talks to this machine; any other name is
            // treated as unresolvable, which is what Spin reports for a name
            // it cannot resolve.
            return Err(HttpError::DnsError {
                rcode: Some("address not available to the test host".into()),
                info_code: None,
            });
        }
        let tls = (scheme == "https").then(|| self.client_tls.config_for(&caller.decl.id, &host));
        self.outbound_clients.send(request, options, tls).await
    }

    async fn send_chained(
        self: &Arc<Self>,
        caller: &str,
        lineage: &Lineage,
        target: &str,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        if !self.components.contains_key(target) {
            return Err(HttpError::DnsError {
                rcode: Some(format!("no component {target:?} in this app")),
                info_code: None,
            });
        }
        let method = request.method().as_str().to_string();
        let path = request.uri().path().to_string();
        let fault = {
            let mut faults = self.faults.lock().unwrap();
            let fault = faults
                .get(target)
                .and_then(|f| f.applies_to(&method, &path))
                .cloned();
            if fault.is_some()
                && faults
                    .get_mut(target)
                    .is_some_and(|f| f.use_once(&method, &path))
            {
                faults.remove(target);
            }
            fault
        };
        if let Some(fault) = &fault {
            // One line per injected fault, so a test can count what it exercised.
            self.log(
                caller,
                "host",
                format!(
                    "fault injected into a request to {target}: {}",
                    fault.describe()
                ),
            );
        }
        let mut lose_response = None;
        match fault {
            Some(Fault::Refuse) => return Err(HttpError::ConnectionRefused),
            Some(Fault::Respond {
                status,
                headers,
                body,
                ..
            }) => {
                let mut response = error_body(status, &body);
                for (k, v) in headers {
                    if let (Ok(k), Ok(v)) = (
                        http::HeaderName::from_bytes(k.as_bytes()),
                        http::HeaderValue::from_str(&v),
                    ) {
                        response.headers_mut().insert(k, v);
                    }
                }
                return Ok(response);
            }
            Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
            Some(Fault::LoseResponse { status, .. }) => lose_response = Some(status),
            Some(Fault::Only { .. }) | None => {}
        }
        let request = Self::as_chained(target, request)?;
        self.costs.chained_hop();
        let app = self.clone();
        let target_id = target.to_string();
        let lineage = lineage.clone();
        let call = async move {
            let response = app.invoke(&target_id, &lineage, request).await;
            match lose_response {
                None => response,
                Some(status) => {
                    // Let the component finish its answer, then drop it.
                    let _ = response.into_body().collect().await;
                    error_body(status, "")
                }
            }
        };
        match options.and_then(|o| o.first_byte_timeout) {
            Some(limit) => tokio::time::timeout(limit, call)
                .await
                .map_err(|_| HttpError::ConnectionReadTimeout),
            None => Ok(call.await),
        }
    }
}
