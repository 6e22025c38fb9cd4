//! The Spin side of the ports: outbound HTTP over `wasi:http` with
//! timeouts, Spin variables, and the component entry point that turns an
//! incoming request into an operation call and its answer.

use std::future::Future;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use spin_sdk::http::{Fields, IncomingRequest, IncomingResponse, Method, OutgoingRequest, OutgoingResponse, ResponseOutparam, Scheme};
use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types::{ErrorCode, FutureIncomingResponse, OutgoingBody, RequestOptions};

use crate::cors::{Cors, CorsRequest};
use crate::ctx::Ctx;
use crate::ejson::DateTime;
use crate::ports::{Http, InboundResponse, KeyValue, OutboundRequest, TransportError, Variables};
use crate::problem::Error;
use crate::request::{encode, ApiRequest, ApiResponse, Encoded, MAX_BODY};
use crate::routes;

/// Outbound HTTP through the host's `wasi:http/outgoing-handler`.
pub struct SpinHttp;

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

fn transport_error(e: &ErrorCode) -> TransportError {
    match e {
        ErrorCode::ConnectionTimeout | ErrorCode::ConnectionReadTimeout | ErrorCode::ConnectionWriteTimeout => TransportError::Timeout,
        ErrorCode::HttpRequestDenied => TransportError::Denied("host not in allowed_outbound_hosts".into()),
        other => unreachable(plain_words(other), other),
    }
}

/// What happened, in words a caller can read in a problem's `detail`.
fn plain_words(e: &ErrorCode) -> &'static str {
    match e {
        ErrorCode::ConnectionRefused => "connection refused",
        ErrorCode::DnsTimeout | ErrorCode::DnsError(_) | ErrorCode::DestinationNotFound => "its host name did not resolve",
        ErrorCode::DestinationUnavailable | ErrorCode::DestinationIpProhibited | ErrorCode::DestinationIpUnroutable => {
            "no route to its address"
        }
        ErrorCode::ConnectionTerminated | ErrorCode::ConnectionLimitReached => "the connection was closed",
        ErrorCode::TlsProtocolError | ErrorCode::TlsCertificateError | ErrorCode::TlsAlertReceived(_) => "the TLS handshake failed",
        ErrorCode::HttpResponseIncomplete => "its answer broke off",
        _ => "the connection failed",
    }
}

/// An unreachable upstream: `plain` goes into the problem; the host's own
/// description (`ErrorCode::…`, a stream error) only into this log line,
/// for whoever runs the service.
fn unreachable(plain: &str, debug: impl std::fmt::Debug) -> TransportError {
    eprintln!("outbound call failed ({plain}): {debug:?}");
    TransportError::Unreachable(plain.to_owned())
}

/// A response being waited for, without blocking the executor, so several
/// calls can be in flight at once (`futures::join!`).
///
/// The pollable registered with the executor is a child of `fut` in the
/// host's resource table, and wasmtime traps (`resource has children`) when
/// a parent is dropped before its child. So the registration is held by a
/// cancel-on-drop token declared *before* `fut`: fields drop in declaration
/// order, and the pollable goes first whether the wait ends or the future
/// is dropped half-way (a sibling failed, a caller gave up).
struct AwaitResponse {
    registration: Option<spin_executor::CancelOnDropToken>,
    fut: FutureIncomingResponse,
}

impl Future for AwaitResponse {
    type Output = Result<IncomingResponse, ErrorCode>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let this = self.get_mut();
        // Whatever woke us, the old registration is spent.
        this.registration = None;
        match this.fut.get() {
            Some(Ok(result)) => std::task::Poll::Ready(result),
            Some(Err(())) => std::task::Poll::Ready(Err(ErrorCode::InternalError(Some("response taken twice".into())))),
            None => {
                let token = spin_executor::push_waker_and_get_token(this.fut.subscribe(), cx.waker().clone());
                this.registration = Some(token.into());
                std::task::Poll::Pending
            }
        }
    }
}

/// Waits `d` without blocking the executor: a `wasi:clocks` timer is a
/// pollable like a response's, so calls in flight beside the wait go on.
/// A timer has no parent resource, so the wait may be dropped half-way.
pub async fn sleep(d: Duration) {
    use spin_sdk::wit::wasi::clocks0_2_0::monotonic_clock::{now, subscribe_instant};
    let deadline = now().saturating_add(nanos(d));
    let mut registration: Option<spin_executor::CancelOnDropToken> = None;
    futures::future::poll_fn(|cx| {
        // Whatever woke us, the old registration is spent.
        registration = None;
        if now() >= deadline {
            return std::task::Poll::Ready(());
        }
        registration = Some(spin_executor::push_waker_and_get_token(subscribe_instant(deadline), cx.waker().clone()).into());
        std::task::Poll::Pending
    })
    .await
}

fn response(fut: FutureIncomingResponse) -> AwaitResponse {
    AwaitResponse { registration: None, fut }
}

impl Http for SpinHttp {
    async fn send(&self, req: OutboundRequest) -> Result<InboundResponse, TransportError> {
        let (scheme, rest) =
            req.url.split_once("://").ok_or_else(|| TransportError::Unreachable(format!("not an absolute URL: {}", req.url)))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let mut headers: Vec<(String, Vec<u8>)> = req.headers.iter().map(|(k, v)| (k.clone(), v.as_bytes().to_vec())).collect();
        // A declared length lets the host frame the body without chunking
        // and send it with the head (see below). Methods that carry a body
        // declare an empty one too.
        if !req.body.is_empty() || matches!(req.method, "POST" | "PUT" | "PATCH") {
            headers.push(("content-length".into(), req.body.len().to_string().into_bytes()));
        }
        let fields = Fields::from_list(&headers).map_err(|e| unreachable("a request header was invalid", e))?;
        let out = OutgoingRequest::new(fields);
        let method = match req.method {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            other => Method::Other(other.to_owned()),
        };
        let scheme = match scheme {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => Scheme::Other(other.to_owned()),
        };
        let bad = |what: &str| TransportError::Unreachable(format!("invalid request {what}"));
        out.set_method(&method).map_err(|()| bad("method"))?;
        out.set_scheme(Some(&scheme)).map_err(|()| bad("scheme"))?;
        out.set_authority(Some(authority)).map_err(|()| bad("authority"))?;
        out.set_path_with_query(Some(path)).map_err(|()| bad("path"))?;

        let options = RequestOptions::new();
        let t = Some(nanos(req.timeout));
        // Hosts may not support every option; a refusal just means the
        // host's own default applies.
        let _ = options.set_connect_timeout(t);
        let _ = options.set_first_byte_timeout(t);
        let _ = options.set_between_bytes_timeout(t);

        // Headers and body must leave together. Once `handle` is called the
        // host starts writing the request; a body written after that often
        // goes out as a second TCP segment, which Nagle's algorithm holds
        // until the peer ACKs the first, and peers delay that ACK by ~40 ms
        // on a kept-alive connection. So the body is written and finished
        // before `handle` whenever the stream accepts it in one write (its
        // `check-write` budget); only a larger body is streamed afterwards.
        let fut = if req.body.is_empty() {
            // No body resource at all: the request is the head alone.
            outgoing_handler::handle(out, Some(options)).map_err(|e| transport_error(&e))?
        } else {
            let body = out.body().map_err(|()| bad("body"))?;
            let stream = body.write().map_err(|()| bad("body stream"))?;
            let sending = |e| unreachable("the request could not be sent", e);
            let fits = stream.check_write().map_err(sending)? >= req.body.len() as u64;
            if fits {
                stream.write(&req.body).map_err(sending)?;
                drop(stream);
                OutgoingBody::finish(body, None).map_err(|e| transport_error(&e))?;
                outgoing_handler::handle(out, Some(options)).map_err(|e| transport_error(&e))?
            } else {
                let fut = outgoing_handler::handle(out, Some(options)).map_err(|e| transport_error(&e))?;
                let mut rest: &[u8] = &req.body;
                let mut token: Option<spin_executor::CancelOnDropToken> = None;
                futures::future::poll_fn(|cx| loop {
                    if rest.is_empty() {
                        return std::task::Poll::Ready(Ok(()));
                    }
                    match stream.check_write() {
                        Ok(0) => {
                            let wait = spin_executor::push_waker_and_get_token(stream.subscribe(), cx.waker().clone());
                            token = Some(wait.into());
                            return std::task::Poll::Pending;
                        }
                        Ok(budget) => {
                            let n = rest.len().min(budget as usize);
                            if let Err(e) = stream.write(&rest[..n]) {
                                return std::task::Poll::Ready(Err(e));
                            }
                            rest = &rest[n..];
                        }
                        Err(e) => return std::task::Poll::Ready(Err(e)),
                    }
                })
                .await
                .map_err(sending)?;
                drop(token);
                drop(stream);
                OutgoingBody::finish(body, None).map_err(|e| transport_error(&e))?;
                fut
            }
        };
        let resp = response(fut).await.map_err(|e| transport_error(&e))?;
        let status = resp.status();
        let headers =
            resp.headers().entries().into_iter().filter_map(|(k, v)| Some((k.to_ascii_lowercase(), String::from_utf8(v).ok()?))).collect();
        // A broken or stalled body: the host says why through the I/O error.
        let body = resp.into_body().await.map_err(|io| match spin_sdk::wit::wasi::http0_2_0::types::http_error_code(&io) {
            Some(code) => transport_error(&code),
            None => unreachable("its answer broke off", io.to_debug_string()),
        })?;
        Ok(InboundResponse { status, headers, body })
    }
}

/// Spin's `default` key-value store, opened on first use (a request whose
/// token check needs no cache never opens it). An open that failed stays
/// failed for the request: each use reports it, none retries it.
#[derive(Default)]
pub struct SpinKeyValue(std::cell::OnceCell<Result<spin_sdk::key_value::Store, String>>);

impl SpinKeyValue {
    fn store(&self) -> Result<&spin_sdk::key_value::Store, String> {
        let opened = self.0.get_or_init(|| spin_sdk::key_value::Store::open_default().map_err(|e| format!("opening `default`: {e}")));
        opened.as_ref().map_err(Clone::clone)
    }
}

impl KeyValue for SpinKeyValue {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.store()?.get(key).map_err(|e| e.to_string())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.store()?.set(key, value).map_err(|e| e.to_string())
    }
}

/// Spin variables of this component.
pub struct SpinVariables;

impl Variables for SpinVariables {
    fn get(&self, name: &str) -> Option<String> {
        spin_sdk::variables::get(name).ok().filter(|v| !v.is_empty())
    }
}

fn now() -> DateTime {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    DateTime(ms)
}

/// Reads at most [`MAX_BODY`] bytes: `Ok(None)` if the body is larger (a
/// `413`, in its place in the check order). A stream that breaks before
/// its end is a `400` at once: the request never fully arrived, so there
/// is no request to check.
async fn read_body(req: IncomingRequest) -> Result<Option<Vec<u8>>, Error> {
    let mut stream = req.into_body_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        body.extend(chunk.map_err(|_| Error::bad_request("The request body broke off before its end."))?);
        if body.len() > MAX_BODY {
            return Ok(None);
        }
    }
    Ok(Some(body))
}

/// The whole life of a request in a component: buffer it, run the
/// operation, log failures (never bodies or credentials), answer.
pub async fn serve<F, Fut>(req: IncomingRequest, out: ResponseOutparam, op: F)
where
    F: FnOnce(Ctx<SpinHttp>, ApiRequest) -> Fut,
    Fut: Future<Output = Result<ApiResponse, Error>>,
{
    let method = match req.method() {
        Method::Get => "GET".to_owned(),
        Method::Post => "POST".to_owned(),
        Method::Put => "PUT".to_owned(),
        Method::Patch => "PATCH".to_owned(),
        Method::Delete => "DELETE".to_owned(),
        Method::Head => "HEAD".to_owned(),
        Method::Options => "OPTIONS".to_owned(),
        Method::Connect => "CONNECT".to_owned(),
        Method::Trace => "TRACE".to_owned(),
        Method::Other(o) => o,
    };
    let uri = req.path_with_query().unwrap_or_else(|| "/".into());
    let header = |name: &str| req.headers().get(name).into_iter().next().map(|v| String::from_utf8_lossy(&v).into_owned());
    let authorization = header("authorization");
    let origin = header("origin");
    // A browser's preflight is answered before any other check (no token,
    // no body): the method it may use is the route's.
    let cors = Cors::from_vars(&SpinVariables);
    let path = uri.split('?').next().unwrap_or("");
    let asked =
        CorsRequest { method: &method, origin: origin.as_deref(), requests_method: header("access-control-request-method").is_some() };
    if let Some(preflight) = cors.preflight(&asked, routes::for_path(path).map_or("GET, POST", |o| o.method())) {
        return answer(out, preflight, &method, &uri).await;
    }
    let outcome = match read_body(req).await {
        Ok(body) => {
            let api_req = ApiRequest { method: method.clone(), uri: uri.clone(), authorization, body };
            op(Ctx::new(SpinHttp, Box::new(SpinVariables), Box::new(SpinKeyValue::default()), now()), api_req).await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = &outcome {
        if e.status() >= 500 {
            let path = uri.split('?').next().unwrap_or("");
            eprintln!("{method} {path} -> {}: {e}", e.status());
        }
    }
    let mut enc = encode(outcome);
    cors.decorate(origin.as_deref(), &mut enc);
    answer(out, enc, &method, &uri).await
}

/// Sends `enc` as the response.
async fn answer(out: ResponseOutparam, enc: Encoded, method: &str, uri: &str) {
    let headers: Vec<(String, Vec<u8>)> = enc.headers.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect();
    let response = OutgoingResponse::new(Fields::from_list(&headers).expect("our headers are valid"));
    response.set_status_code(enc.status).expect("our statuses are valid");
    let mut body = response.take_body();
    out.set(response);
    if !enc.body.is_empty() {
        if let Err(e) = body.send(enc.body).await {
            eprintln!("{method} {uri}: writing the response failed: {e:?}");
        }
    }
}
