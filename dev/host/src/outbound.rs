//! Outgoing `wasi:http` requests: allow-list enforcement and sending, the
//! way Spin does both.
//!
//! **Enforcement.** Each component's `allowed_outbound_hosts` (syntax and
//! the load-time check: see [`crate::allowed_hosts`]) is resolved with the
//! variable values of the running app. If any entry fails to resolve to a
//! valid one, Spin's whole list fails and it denies *every* outbound
//! request of that component; the dev host does the same and logs the
//! reason on each denial. A denied request fails inside the component
//! with `error-code.HTTP-request-denied`, and the host logs which component
//! tried which destination. `self` / `self.alt` requests are sent to this
//! server's own listener.
//!
//! **Sending.** Like Spin (`factor-outbound-http`), plain `http` requests
//! go through one keep-alive connection pool per running app
//! (`hyper_util`'s pooled client), and connections are opened without
//! `TCP_NODELAY`. So a guest that lets a request's headers and body leave
//! in two writes meets Nagle's algorithm and the peer's delayed ACK here as
//! it does on Spin, instead of being hidden by a fresh (quick-ACK)
//! connection per call. The guest's `request-options` apply as in Spin:
//! the connect timeout to opening a connection (`connection-timeout`), the
//! first-byte timeout to everything up to the response head
//! (`connection-read-timeout`), the between-bytes timeout to each wait for
//! the response body (`connection-read-timeout`); 600 s when unset.
//! A request whose body the guest had not written when it called
//! `handle` has its head sent alone first (see [`HeadFirstUnlessWritten`]):
//! on Spin that is a race the guest often loses, here it always does, so
//! the resulting Nagle / delayed-ACK stall is reproducible. `https`
//! requests use a fresh connection each (wasmtime's default sender, with
//! the webpki roots): the dev host is meant for local upstreams.

use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

pub use crate::allowed_hosts::{AllowedHosts, OutboundUrl};

/// Spin's timeout for each phase when the guest sets none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// What one component may reach, shared by all its requests in one `serve`.
pub struct OutboundPolicy {
    pub component_id: String,
    /// The resolved allow-list, or why it could not be resolved (then every
    /// request is denied, as on Spin).
    pub allowed: Result<AllowedHosts, String>,
    /// Where `self` requests go: this server's own listener.
    pub self_addr: SocketAddr,
    /// The app's connection pool.
    pub client: OutboundClient,
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
enum Denial {
    /// The destination is not in the list; carries the origin to suggest.
    NotAllowed(String),
    /// The list itself failed to resolve.
    Unresolved(String),
}

impl OutboundPolicy {
    /// Checks the request against the allow-list and, for a self request,
    /// points it at this server.
    fn admit<B>(&self, request: &mut http::Request<B>) -> Result<(), Denial> {
        let allowed = self.allowed.as_ref().map_err(|reason| Denial::Unresolved(reason.clone()))?;
        let is_self = match request.uri().authority().map(|a| a.host()) {
            None | Some("") => true,
            Some(host) => host == "self.alt",
        };
        if is_self {
            if !allowed.allows_relative(&["http", "https"]) {
                return Err(Denial::NotAllowed("self".to_string()));
            }
            let path_and_query = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
            *request.uri_mut() =
                format!("http://{}{path_and_query}", self.self_addr).parse().map_err(|_| Denial::NotAllowed("self".to_string()))?;
            return Ok(());
        }
        let uri = request.uri().to_string();
        match OutboundUrl::parse(&uri, "https") {
            Ok(url) if allowed.allows(&url) => Ok(()),
            Ok(url) => Err(Denial::NotAllowed(url.origin())),
            Err(_) => Err(Denial::NotAllowed(uri)),
        }
    }

    fn log_denied(&self, denial: &Denial) {
        let id = &self.component_id;
        match denial {
            Denial::NotAllowed(destination) if destination == "self" => eprintln!(
                "dev-host: component '{id}' denied an HTTP request to its own app: add \"http://self\" to its allowed_outbound_hosts to allow it"
            ),
            Denial::NotAllowed(destination) => eprintln!(
                "dev-host: component '{id}' denied outbound request to '{destination}' (not in allowed_outbound_hosts); to allow it add \"{destination}\""
            ),
            Denial::Unresolved(reason) => eprintln!(
                "dev-host: component '{id}' denied an outbound request: its allowed_outbound_hosts did not resolve with the current variable values, so Spin allows it nothing: {reason}"
            ),
        }
    }
}

/// The `wasi:http` hooks installed in each request's store.
pub struct OutboundHooks(pub Arc<OutboundPolicy>);

type Io = Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>;
type SendFuture = Box<dyn Future<Output = wasmtime_wasi_http::Result<(http::Response<WasiBody>, Io)>> + Send>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_done: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        if let Err(denial) = self.0.admit(&mut request) {
            self.0.log_denied(&denial);
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        // Whether the guest wrote its body before `handle` is decided here,
        // inside the `handle` call itself (wasmtime calls this hook
        // synchronously and only then spawns the returned future, by which
        // time the guest may have written the body after all).
        let request = request.map(HeadFirstUnlessWritten::new);
        let client = self.0.client.clone();
        Box::new(async move { client.send(request, options).await })
    }
}

tokio::task_local! {
    /// The connect timeout of the request being sent: the pooled client
    /// gives its connector only the URI, so it travels with the task (a
    /// reused connection ignores it, as on Spin).
    static CONNECT_TIMEOUT: Duration;
}

/// One app's outbound connection pool (cheap to clone; clones share it).
#[derive(Clone)]
pub struct OutboundClient {
    pooled: Client<Connector, HeadFirstUnlessWritten>,
}

impl Default for OutboundClient {
    fn default() -> Self {
        Self::new()
    }
}

impl OutboundClient {
    /// A pool with Spin's settings: `hyper_util`'s defaults (keep-alive,
    /// idle connections kept per host) and no `TCP_NODELAY`.
    pub fn new() -> OutboundClient {
        OutboundClient { pooled: Client::builder(TokioExecutor::new()).build(Connector) }
    }

    async fn send(
        &self,
        mut request: http::Request<HeadFirstUnlessWritten>,
        options: Option<RequestOptions>,
    ) -> wasmtime_wasi_http::Result<(http::Response<WasiBody>, Io)> {
        if request.uri().scheme() == Some(&http::uri::Scheme::HTTPS) {
            let request = request.map(|body| body.boxed_unsync());
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            return Ok((response.map(|body| body.map_err(Into::into).boxed_unsync()), Box::new(io) as Io));
        }
        let timeout = |pick: fn(&RequestOptions) -> Option<Duration>| options.as_ref().and_then(pick).unwrap_or(DEFAULT_TIMEOUT);
        let connect = timeout(|o| o.connect_timeout);
        let first_byte = timeout(|o| o.first_byte_timeout);
        let between_bytes = timeout(|o| o.between_bytes_timeout);

        // The pooled client writes `Host` from the URI (Spin drops the
        // guest's for the same reason).
        request.headers_mut().remove(http::header::HOST);
        let response = CONNECT_TIMEOUT.scope(connect, self.pooled.request(request));
        let response =
            tokio::time::timeout(first_byte, response).await.map_err(|_| Error::ConnectionReadTimeout)?.map_err(request_error)?;
        let response = response.map(|body| BetweenBytes { body, timeout: between_bytes, sleep: None }.boxed_unsync());
        Ok((response, Box::new(async { Ok(()) }) as Io))
    }
}

/// Why the connector could not open a connection.
#[derive(Debug, Clone, Copy)]
enum ConnectFailure {
    Dns,
    Timeout,
    Refused,
}

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConnectFailure::Dns => "address not available",
            ConnectFailure::Timeout => "connect timed out",
            ConnectFailure::Refused => "connection refused",
        })
    }
}

impl StdError for ConnectFailure {}

impl From<ConnectFailure> for Error {
    fn from(failure: ConnectFailure) -> Error {
        match failure {
            ConnectFailure::Dns => Error::DnsError { rcode: Some("address not available".into()), info_code: Some(0) },
            ConnectFailure::Timeout => Error::ConnectionTimeout,
            ConnectFailure::Refused => Error::ConnectionRefused,
        }
    }
}

/// Maps a pooled-client failure to the error code Spin reports.
fn request_error(err: hyper_util::client::legacy::Error) -> Error {
    let mut cause = err.source();
    while let Some(c) = cause {
        if let Some(failure) = c.downcast_ref::<ConnectFailure>() {
            return (*failure).into();
        }
        if let Some(hyper) = c.downcast_ref::<hyper::Error>() {
            if hyper.is_timeout() {
                return Error::HttpResponseTimeout;
            }
        }
        cause = c.source();
    }
    Error::HttpProtocolError
}

/// Opens plain TCP connections for the pool: name lookup, then a connect
/// bounded by the request's connect timeout. `TCP_NODELAY` stays off.
#[derive(Clone)]
struct Connector;

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectFailure;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectFailure>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectFailure>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        // Read here, in the requesting task; the pool may finish a connect
        // in a task of its own.
        let timeout = CONNECT_TIMEOUT.try_with(|t| *t).unwrap_or(DEFAULT_TIMEOUT);
        Box::pin(async move {
            let authority = uri.authority().ok_or(ConnectFailure::Dns)?;
            let target = match authority.port_u16() {
                Some(_) => authority.to_string(),
                None => format!("{authority}:80"),
            };
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&target).await.map_err(|_| ConnectFailure::Dns)?.collect();
            let stream = tokio::time::timeout(timeout, TcpStream::connect(&addrs[..]))
                .await
                .map_err(|_| ConnectFailure::Timeout)?
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::AddrNotAvailable => ConnectFailure::Dns,
                    _ => ConnectFailure::Refused,
                })?;
            Ok(TokioIo::new(stream))
        })
    }
}

/// A request body that lets the head leave alone, in its own segment, when
/// the guest had written none of the body by the time it called
/// `outgoing-handler.handle`.
///
/// On Spin that is a race the guest loses often on a busy multi-core host
/// (the head is flushed before the body arrives; with Nagle and a delayed
/// ACK the body then waits ~40 ms). On a small machine the guest nearly
/// always wins it, which would hide the stall; the dev host settles the
/// race the way that shows it.
pub struct HeadFirstUnlessWritten {
    body: WasiBody,
    /// The first frame, already taken when `handle` was called.
    first: Option<Option<Result<Frame<Bytes>, Error>>>,
    /// The body was not written before `handle`: answer "not yet" once.
    hold_once: bool,
}

impl HeadFirstUnlessWritten {
    fn new(mut body: WasiBody) -> Self {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(frame) => HeadFirstUnlessWritten { body, first: Some(frame), hold_once: false },
            Poll::Pending => HeadFirstUnlessWritten { body, first: None, hold_once: true },
        }
    }
}

impl Body for HeadFirstUnlessWritten {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        if let Some(frame) = this.first.take() {
            return Poll::Ready(frame);
        }
        if std::mem::take(&mut this.hold_once) {
            // hyper flushes what it has (the head), then polls again.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Pin::new(&mut this.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        match &self.first {
            Some(frame) => frame.is_none(),
            None => !self.hold_once && self.body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.first {
            Some(None) => SizeHint::with_exact(0),
            Some(Some(_)) => SizeHint::default(),
            None => self.body.size_hint(),
        }
    }
}

/// A response body that fails with `connection-read-timeout` when the
/// next frame takes longer than `timeout`.
struct BetweenBytes {
    body: hyper::body::Incoming,
    timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for BetweenBytes {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.sleep = None;
                Poll::Ready(frame.map(|f| f.map_err(Error::from)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: Result<AllowedHosts, String>) -> OutboundPolicy {
        OutboundPolicy { component_id: "c".into(), allowed, self_addr: "127.0.0.1:3000".parse().unwrap(), client: OutboundClient::new() }
    }

    #[test]
    fn policy_admits_and_rewrites() {
        let policy = policy(Ok(AllowedHosts::from_literals(&["http://127.0.0.1:4010", "http://self"]).unwrap()));
        let mut ok = http::Request::get("http://127.0.0.1:4010/x").body(()).unwrap();
        assert!(policy.admit(&mut ok).is_ok());
        let mut denied = http::Request::get("http://127.0.0.1:9/x").body(()).unwrap();
        assert_eq!(policy.admit(&mut denied).unwrap_err(), Denial::NotAllowed("http://127.0.0.1:9".into()));
        let mut own = http::Request::get("http://self.alt/users/me?x=1").body(()).unwrap();
        assert!(policy.admit(&mut own).is_ok());
        assert_eq!(own.uri().to_string(), "http://127.0.0.1:3000/users/me?x=1");
    }

    #[test]
    fn an_unresolved_list_denies_everything() {
        let policy = policy(Err("bad entry".into()));
        for uri in ["http://127.0.0.1:4010/x", "http://self.alt/", "/relative"] {
            let mut req = http::Request::get(uri).body(()).unwrap();
            assert_eq!(policy.admit(&mut req).unwrap_err(), Denial::Unresolved("bad entry".into()), "{uri}");
        }
    }
}
