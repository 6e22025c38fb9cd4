//! The HTTP/1.1 front end: accepts connections, routes each request, runs
//! the component in a fresh instance, and streams its response back.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

use crate::app::App;
use crate::key_value::{self, ComponentStores, StateDir, StoreManager};
use crate::memory::MemoryPeaks;
use crate::outbound::{AllowedHosts, OutboundClient, OutboundPolicy};
use crate::runtime;
use crate::variables::{resolve_app_variables, ComponentVariables, VariableSources};

/// Spin's reserved path prefix (health and info endpoints).
const WELL_KNOWN_PREFIX: &str = "/.well-known/spin/";

/// How long `shutdown` lets in-flight requests finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How to serve an [`App`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen; port 0 picks a free port (see [`Server::addr`]).
    pub addr: SocketAddr,
    /// Application-variable values that win over the environment and the
    /// manifest defaults.
    pub variables: HashMap<String, String>,
    /// Read `SPIN_VARIABLE_<NAME>` from the process environment (the
    /// binary does; tests usually should not).
    pub use_process_env: bool,
    /// Where the default key-value store keeps its data
    /// (`<dir>/sqlite_key_value.db`), as `spin up --state-dir`: by default
    /// `.spin/` beside the manifest; [`StateDir::Unset`] keeps it in memory
    /// for this `serve` only.
    pub state_dir: StateDir,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            variables: HashMap::new(),
            use_process_env: false,
            state_dir: StateDir::Default,
        }
    }
}

/// A running server. Dropping it stops accepting connections too; call
/// [`Server::shutdown`] to also wait for in-flight requests.
pub struct Server {
    /// The address actually listened on.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    memory: Arc<MemoryPeaks>,
    log_requests: Arc<AtomicBool>,
    traps: Arc<AtomicUsize>,
}

impl Server {
    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Peak wasm linear memory per component over the requests served
    /// since the last [`MemoryPeaks::take`] (for `make bench`).
    pub fn memory_peaks(&self) -> &MemoryPeaks {
        &self.memory
    }

    /// Turns the one line per request on stderr off or back on (on by
    /// default; `make bench` sends thousands of requests).
    pub fn log_requests(&self, on: bool) {
        self.log_requests.store(on, Ordering::Relaxed);
    }

    /// How many requests ended with the guest failing (a trap, or a return
    /// without a response) since the server started: each is also a
    /// `dev-host: component '…' failed` line on stderr. Tests hold it at 0.
    pub fn traps(&self) -> usize {
        self.traps.load(Ordering::Relaxed)
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s), then
    /// closes every connection.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Per-component settings fixed for one `serve` call.
struct ComponentRuntime {
    policy: Arc<OutboundPolicy>,
    variables: Arc<ComponentVariables>,
    key_value: Arc<ComponentStores>,
}

struct ServeState {
    app: Arc<App>,
    components: HashMap<String, ComponentRuntime>,
    memory: Arc<MemoryPeaks>,
    log_requests: Arc<AtomicBool>,
    traps: Arc<AtomicUsize>,
}

/// Resolves variables, allow-lists and key-value stores for this run,
/// starts listening, and returns once the socket is bound. Fails, naming
/// them, if required application variables have no value.
pub async fn serve(app: Arc<App>, opts: ServeOptions) -> Result<Server> {
    let app_values = resolve_app_variables(
        &app.manifest().variables,
        &VariableSources { overrides: &opts.variables, use_process_env: opts.use_process_env },
    )?;

    // The app's key-value stores, shared by all its components and
    // requests for this run (one `spin up`).
    let state_dir = opts.state_dir.resolve(app.manifest().dir())?;
    let stores = Arc::new(StoreManager::new(state_dir.as_deref()));
    if key_value::default_store_used(app.manifest()) {
        stores.create_dirs()?;
        eprintln!("dev-host: Storing default key-value data to {}.", stores.default_summary());
    }

    let listener = TcpListener::bind(opts.addr).await.with_context(|| format!("listening on {}", opts.addr))?;
    let addr = listener.local_addr()?;

    // One connection pool for the whole app, as in Spin.
    let client = OutboundClient::new();
    let mut components = HashMap::new();
    for (id, _) in app.components() {
        let decl = &app.manifest().components[id];
        let variables =
            ComponentVariables::resolve(id, &decl.variables, &app_values).with_context(|| format!("component {id:?} variables"))?;
        // A list that does not resolve does not stop the app (Spin starts
        // too); every outbound request of that component is denied instead.
        let allowed = AllowedHosts::resolve(&decl.allowed_outbound_hosts, &app_values).map_err(|e| format!("{e:#}"));
        components.insert(
            id.to_string(),
            ComponentRuntime {
                policy: Arc::new(OutboundPolicy { component_id: id.to_string(), allowed, self_addr: addr, client: client.clone() }),
                variables: Arc::new(variables),
                key_value: Arc::new(ComponentStores::new(id, &decl.key_value_stores, stores.clone())),
            },
        );
    }

    let memory = Arc::new(MemoryPeaks::new(components.keys().map(String::as_str)));
    let log_requests = Arc::new(AtomicBool::new(true));
    let traps = Arc::new(AtomicUsize::new(0));
    let state = Arc::new(ServeState { app, components, memory: memory.clone(), log_requests: log_requests.clone(), traps: traps.clone() });
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, state, stop_rx));
    Ok(Server { addr, stop, task: Some(task), memory, log_requests, traps })
}

async fn accept_loop(listener: TcpListener, state: Arc<ServeState>, mut stop: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            // A send of `true` or a dropped `Server` both end the loop.
            _ = stopped(&mut stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, client)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(stream, client, state.clone(), stop.clone()));
                }
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    eprintln!("dev-host: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

/// Resolves once the server is told to stop (or the `Server` is dropped).
/// The watch guard is dropped here so callers' futures stay `Send`.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

async fn serve_connection(stream: tokio::net::TcpStream, client: SocketAddr, state: Arc<ServeState>, mut stop: watch::Receiver<bool>) {
    let service = service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(&state, req, client).await) }
    });
    let conn = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // Clients hanging up mid-request are routine; anything else is worth a line.
        if !e.is_incomplete_message() && !e.is_canceled() {
            eprintln!("dev-host: connection from {client}: {e}");
        }
    }
}

/// Serves one request and logs one line for it (unless turned off).
async fn handle(state: &ServeState, req: Request<Incoming>, client: SocketAddr) -> Response<HyperOutgoingBody> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let (component, response) = dispatch(state, req, client).await;
    if !state.log_requests.load(Ordering::Relaxed) {
        return response;
    }
    eprintln!(
        "dev-host: {method} {path} -> {} {} ({:.1} ms)",
        component.as_deref().unwrap_or("-"),
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    response
}

/// Returns the component that handled the request (if any) and the response.
async fn dispatch(state: &ServeState, mut req: Request<Incoming>, client: SocketAddr) -> (Option<String>, Response<HyperOutgoingBody>) {
    // Transport-level header meaningful only to this server (Spin strips it too).
    req.headers_mut().remove(http::header::CONNECTION);

    let path = req.uri().path().to_string();
    if let Some(name) = path.strip_prefix(WELL_KNOWN_PREFIX) {
        return (None, well_known(state, name));
    }

    let Some(route) = state.app.router().route(&path) else {
        return (None, status_only(StatusCode::NOT_FOUND));
    };
    let id = route.entry.component.clone();

    let prepared = prepare_request(req, &route, client);
    let req = match prepared {
        Ok(req) => req,
        Err(e) => {
            eprintln!("dev-host: {id}: bad request: {e:#}");
            return (Some(id), status_only(StatusCode::INTERNAL_SERVER_ERROR));
        }
    };
    let response = match run_component(state, &id, req).await {
        Ok(resp) => resp,
        Err(e) => {
            state.traps.fetch_add(1, Ordering::Relaxed);
            eprintln!("dev-host: component '{id}' failed: {e:#}");
            status_only(StatusCode::INTERNAL_SERVER_ERROR)
        }
    };
    (Some(id), response)
}

/// Makes the URI absolute (authority from `Host`, as Spin does) and adds
/// Spin's `spin-*` headers after the client's own.
fn prepare_request(req: Request<Incoming>, route: &crate::routes::RouteMatch<'_>, client: SocketAddr) -> Result<Request<Incoming>> {
    let (mut parts, body) = req.into_parts();
    let host = match parts.headers.get(http::header::HOST) {
        Some(h) => h.to_str().context("'Host' header is not valid UTF-8")?.to_string(),
        None => match parts.uri.authority() {
            Some(a) => a.to_string(),
            None => bail!("no 'Host' header present in request"),
        },
    };
    for (name, value) in &parts.headers {
        if value.to_str().is_err() {
            bail!("header {name} is not valid UTF-8 (Spin rejects such requests)");
        }
    }
    let path_and_query = parts.uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/").to_string();
    parts.uri =
        format!("http://{host}{path_and_query}").parse().with_context(|| format!("'Host' header {host:?} is not a valid authority"))?;

    let spin_headers = route.spin_headers(&host, &path_and_query, client);
    for (name, value) in spin_headers {
        let (Ok(name), Ok(value)) = (name.parse::<HeaderName>(), HeaderValue::from_str(&value)) else {
            continue;
        };
        parts.headers.append(name, value);
    }
    Ok(Request::from_parts(parts, body))
}

/// Instantiates the component in a fresh store and calls its
/// `wasi:http/incoming-handler.handle`. The guest keeps running in its own
/// task after it sends the response head, so bodies stream.
async fn run_component(state: &ServeState, id: &str, req: Request<Incoming>) -> Result<Response<HyperOutgoingBody>> {
    let loaded = state.app.component(id).context("component is not loaded")?;
    let rt = state.components.get(id).context("component has no runtime settings")?;
    let mut store =
        runtime::new_store(state.app.engine(), rt.policy.clone(), rt.variables.clone(), rt.key_value.clone(), state.memory.meter(id));

    let incoming = store.data_mut().http().new_incoming_request(Scheme::Http, req)?;
    let (tx, rx) = oneshot::channel();
    let outparam = store.data_mut().http().new_response_outparam(tx)?;
    let pre = loaded.pre.clone();

    let guest = tokio::spawn(async move {
        let proxy = pre.instantiate_async(&mut store).await?;
        proxy.wasi_http_incoming_handler().call_handle(&mut store, incoming, outparam).await
    });

    match rx.await {
        Ok(Ok(response)) => {
            // The head is out; a later failure can only cut the body short.
            let id = id.to_string();
            let traps = state.traps.clone();
            tokio::spawn(async move {
                let failed = match guest.await {
                    Ok(Ok(())) => return,
                    Ok(Err(e)) => format!("failed after sending its response head: {e:#}"),
                    Err(e) => format!("task failed: {e}"),
                };
                traps.fetch_add(1, Ordering::Relaxed);
                eprintln!("dev-host: component '{id}' {failed}");
            });
            Ok(response)
        }
        Ok(Err(code)) => {
            let _ = guest.await;
            bail!("guest set an error instead of a response: {code:?}")
        }
        // The outparam was dropped unset: the guest trapped or returned early.
        Err(_) => match guest.await {
            Ok(Ok(())) => bail!("guest returned without setting a response"),
            Ok(Err(e)) => Err(anyhow::Error::from(e).context("guest trapped")),
            Err(e) => bail!("guest task failed: {e}"),
        },
    }
}

fn well_known(state: &ServeState, name: &str) -> Response<HyperOutgoingBody> {
    match name {
        "health" => body_response(StatusCode::OK, "text/plain", Bytes::from_static(b"OK")),
        "info" => {
            let manifest = state.app.manifest();
            let info = serde_json::json!({ "name": manifest.name, "version": manifest.version });
            let body = serde_json::to_vec_pretty(&info).unwrap_or_default();
            body_response(StatusCode::OK, "application/json", body.into())
        }
        _ => status_only(StatusCode::NOT_FOUND),
    }
}

fn status_only(status: StatusCode) -> Response<HyperOutgoingBody> {
    let mut resp = Response::new(Empty::<Bytes>::new().map_err(|never| match never {}).boxed_unsync());
    *resp.status_mut() = status;
    resp
}

fn body_response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<HyperOutgoingBody> {
    let mut resp = Response::new(Full::new(body).map_err(|never: Infallible| match never {}).boxed_unsync());
    *resp.status_mut() = status;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
