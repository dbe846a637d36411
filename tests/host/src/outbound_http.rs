//! Outbound HTTP and HTTPS to loopback, with connections pooled as Spin
//! pools them.
//!
//! As Spin does it (crates/factor-outbound-http wasi.rs `HttpClients`,
//! `CONNECT_OPTIONS`, `send_request`):
//! - a `hyper_util` legacy client per app, so idle connections are kept
//!   per (scheme, authority) and reused by the next request to the same
//!   place, whichever component sends it (so a TLS connection opened with
//!   one component's client certificate can carry another component's
//!   request to that authority, in Spin as here);
//! - the connect timeout and the component's TLS config are task-local
//!   options, used only when a new connection is opened (a pooled one is
//!   reused as it is);
//! - the component's `Host` header is dropped and the URI's authority sent;
//! - the first-byte timeout covers the whole wait for the response head,
//!   connecting included; the between-bytes timeout each body frame;
//! - `[outbound_http] connection_pooling = false` keeps no idle connection
//!   (a table without the key turns pooling off too, as in Spin: serde's
//!   default for its `bool` is false).
//!
//! Where the test host differs: no `max_connections` semaphore, and ALPN
//! offers HTTP/1.1 only (client_tls.rs).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// wasi:http's default for every timeout a request does not set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// An app's pooled outbound client (Spin's `HttpClients`). Spin keeps one
/// client for plain HTTP/1 and one for HTTPS; the pool is keyed by scheme
/// and authority either way, so one client with a connector that opens
/// either kind of connection pools the same.
pub(crate) struct OutboundClients {
    client: Client<Connector, WasiBody>,
}

impl OutboundClients {
    pub(crate) fn new(pooling: bool) -> Self {
        let mut builder = Client::builder(TokioExecutor::new());
        if !pooling {
            builder.pool_max_idle_per_host(0);
        }
        Self {
            client: builder.build(Connector),
        }
    }

    /// Sends `request` (an absolute URI) over a pooled connection; `tls` is
    /// the component's config for the host when the scheme is https.
    pub(crate) async fn send(
        &self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let timeout = |pick: fn(RequestOptions) -> Option<Duration>| {
            options.and_then(pick).unwrap_or(DEFAULT_TIMEOUT)
        };
        let connect_timeout = timeout(|o| o.connect_timeout);
        let first_byte_timeout = timeout(|o| o.first_byte_timeout);
        let between_bytes_timeout = timeout(|o| o.between_bytes_timeout);
        request.headers_mut().remove(http::header::HOST);

        let connect = ConnectOptions {
            connect_timeout,
            tls,
        };
        let response = CONNECT_OPTIONS.scope(connect, self.client.request(request));
        let response = tokio::time::timeout(first_byte_timeout, response)
            .await
            .map_err(|_| HttpError::ConnectionReadTimeout)?
            .map_err(request_error)?;
        Ok(response
            .map(|incoming| BetweenBytes::new(incoming, between_bytes_timeout).boxed_unsync()))
    }
}

tokio::task_local! {
    /// What a new connection is opened with (Spin's `CONNECT_OPTIONS`): the
    /// legacy client has no way to pass these to its connector.
    static CONNECT_OPTIONS: ConnectOptions;
}

#[derive(Clone)]
struct ConnectOptions {
    connect_timeout: Duration,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// Why a new connection could not be opened; the client carries it back as
/// the error's source and [`request_error`] turns it into wasi:http's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnectFailure {
    InvalidUri,
    Refused,
    Timeout,
    InvalidDnsName,
    Tls,
}

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for ConnectFailure {}

impl From<ConnectFailure> for HttpError {
    fn from(failure: ConnectFailure) -> Self {
        match failure {
            ConnectFailure::InvalidUri => HttpError::HttpRequestUriInvalid,
            ConnectFailure::Refused => HttpError::ConnectionRefused,
            ConnectFailure::Timeout => HttpError::ConnectionTimeout,
            ConnectFailure::InvalidDnsName => HttpError::DnsError {
                rcode: Some("invalid dns name".into()),
                info_code: Some(0),
            },
            ConnectFailure::Tls => HttpError::TlsProtocolError,
        }
    }
}

fn request_error(error: hyper_util::client::legacy::Error) -> HttpError {
    use std::error::Error as _;
    match error
        .source()
        .and_then(|cause| cause.downcast_ref::<ConnectFailure>())
    {
        Some(failure) => (*failure).into(),
        None => HttpError::HttpProtocolError,
    }
}

/// Opens a new connection for the pool: TCP for `http`, TCP and TLS with
/// the task's [`ConnectOptions::tls`] for `https`.
#[derive(Clone)]
struct Connector;

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = ConnectFailure;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectFailure>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let options = CONNECT_OPTIONS.get();
        Box::pin(async move { options.connect(&uri).await.map(TokioIo::new) })
    }
}

impl ConnectOptions {
    async fn connect(&self, uri: &Uri) -> Result<Stream, ConnectFailure> {
        let use_tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let host = uri.host().ok_or(ConnectFailure::InvalidUri)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if use_tls { 443 } else { 80 });
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| ConnectFailure::Timeout)?
            .map_err(|_| ConnectFailure::Refused)?;
        if !use_tls {
            return Ok(Stream::Plain(tcp));
        }
        let config = self.tls.clone().ok_or(ConnectFailure::Tls)?;
        let name =
            ServerName::try_from(host.to_string()).map_err(|_| ConnectFailure::InvalidDnsName)?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|_| ConnectFailure::Tls)?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// A pooled connection, plain or TLS (the legacy client wants
/// [`Connection`], which tokio-rustls does not implement).
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Stream::Plain(tcp) => tcp.connected(),
            Stream::Tls(tls) => tls.get_ref().0.connected(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A response body that fails with `connection-read-timeout` when no frame
/// arrives within the between-bytes timeout, as wasi:http's default sender.
struct BetweenBytes {
    incoming: Incoming,
    timeout: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl BetweenBytes {
    fn new(incoming: Incoming, timeout: Duration) -> Self {
        Self {
            incoming,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl Body for BetweenBytes {
    type Data = bytes::Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + self.timeout;
                self.deadline.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(_))) => Poll::Ready(Some(Err(HttpError::HttpProtocolError))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::{Empty, Full};

    use super::*;

    /// A loopback HTTP/1.1 server that answers "ok" and counts the
    /// connections it accepts.
    async fn counting_server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(|request: http::Request<Incoming>| async move {
                            let host = request
                                .headers()
                                .get_all(http::header::HOST)
                                .iter()
                                .map(|v| v.to_str().unwrap_or("?").to_string())
                                .collect::<Vec<_>>()
                                .join(",");
                            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                                bytes::Bytes::from(format!("{} {host}", request.uri())),
                            )))
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (addr, accepted)
    }

    async fn get(clients: &OutboundClients, url: &str) -> Result<String, HttpError> {
        let request = http::Request::get(url)
            .header(http::header::HOST, "forged.example")
            .body(Empty::new().map_err(|never| match never {}).boxed_unsync())
            .unwrap();
        let response = clients.send(request, None, None).await?;
        let body = response.into_body().collect().await?.to_bytes();
        Ok(String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn pooled_requests_to_one_authority_share_a_connection() {
        let (addr, accepted) = counting_server().await;
        let clients = OutboundClients::new(true);
        for _ in 0..3 {
            let answer = get(&clients, &format!("http://{addr}/a?b=c"))
                .await
                .unwrap();
            // Origin form on the wire, and the URI's authority as the only Host.
            assert_eq!(answer, format!("/a?b=c {addr}"));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn without_pooling_every_request_opens_a_connection() {
        let (addr, accepted) = counting_server().await;
        let clients = OutboundClients::new(false);
        for _ in 0..3 {
            get(&clients, &format!("http://{addr}/")).await.unwrap();
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn connect_failures_keep_their_wasi_http_codes() {
        let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = unused.local_addr().unwrap();
        drop(unused);
        let clients = OutboundClients::new(true);
        let refused = get(&clients, &format!("http://{addr}/")).await.unwrap_err();
        assert!(
            matches!(refused, HttpError::ConnectionRefused),
            "{refused:?}"
        );
        // https to a plain HTTP server: the handshake fails.
        let (plain, _) = counting_server().await;
        let request = http::Request::get(format!("https://{plain}/"))
            .body(Empty::new().map_err(|never| match never {}).boxed_unsync())
            .unwrap();
        let config = crate::client_tls::ClientTls::new(&[])
            .unwrap()
            .config_for("any", "127.0.0.1");
        let tls = clients.send(request, None, Some(config)).await.unwrap_err();
        assert!(matches!(tls, HttpError::TlsProtocolError), "{tls:?}");
    }
}
