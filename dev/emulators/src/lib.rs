//! Local stand-ins for the four upstream systems, speaking their real wire
//! contracts (what the service uses of each: docs/upstreams.md), plus a dev OIDC token issuer.
//! Each emulator is an axum router wrapped by [`faults::Controls`].

pub mod authentik;
pub mod data_api;
pub mod demo;
pub mod faults;
pub mod issuer;
pub mod ocis;
pub mod stalwart;

// ---------------------------------------------------------------------------
// Running a set of emulators

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use data_api::{DataApi, DataApiOptions};
use faults::Controls;
use issuer::Issuer;

/// Which emulators [`start`] runs, and how. A port of `None` leaves that
/// emulator off; `Some(0)` picks an ephemeral port. Everything listens on
/// 127.0.0.1.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the Data API persists (`None`: memory only).
    pub data_dir: Option<PathBuf>,
    /// Seed the demo data into a database that does not exist yet.
    pub seed: bool,
    /// The Data API database holding the demo data (default `dezky`).
    pub database: String,
    /// The key the Data API accepts (default [`demo::DATA_API_KEY`]).
    pub data_api_key: String,
    pub data_api_port: Option<u16>,
    /// The Data API's MongoDB wire-protocol listener (same store; see
    /// [`data_api::wire`]); only with `data_api_port`.
    pub data_api_wire_port: Option<u16>,
    /// The Authentik emulator's port; it also serves the OIDC issuer.
    pub authentik_port: Option<u16>,
    pub stalwart_port: Option<u16>,
    pub ocis_port: Option<u16>,
}

impl Default for Options {
    /// Every emulator on an ephemeral port, in memory, seeded.
    fn default() -> Self {
        Options {
            data_dir: None,
            seed: true,
            database: data_api::DEFAULT_DATABASE.to_owned(),
            data_api_key: demo::DATA_API_KEY.to_owned(),
            data_api_port: Some(0),
            data_api_wire_port: Some(0),
            authentik_port: Some(0),
            stalwart_port: Some(0),
            ocis_port: Some(0),
        }
    }
}

/// A running Data API emulator.
#[derive(Clone)]
pub struct DataApiHandle {
    /// Base URL (`http://127.0.0.1:<port>`): actions are at `<url>/action/<name>`.
    pub url: String,
    pub addr: SocketAddr,
    /// The API key it accepts.
    pub key: String,
    /// Direct access to the store (see [`DataApi`]'s test helpers).
    pub api: DataApi,
    /// Faults and request log of this emulator (HTTP only).
    pub controls: Controls,
    /// The wire-protocol listener's address, when it runs.
    pub wire_addr: Option<SocketAddr>,
}

impl DataApiHandle {
    /// A MongoDB connection string for the wire-protocol listener
    /// (`mongodb://127.0.0.1:<port>/?directConnection=true`); panics when
    /// it was not started.
    pub fn wire_url(&self) -> String {
        let addr = self.wire_addr.expect("the Data API's wire listener was not started");
        format!("mongodb://{addr}/?directConnection=true")
    }

    /// `<url>/action/<action>`.
    pub fn action_url(&self, action: &str) -> String {
        format!("{}/action/{action}", self.url)
    }
}

/// A running Authentik emulator: the admin API (`/api/v3/`) and the OIDC issuer's routes.
#[derive(Clone)]
pub struct AuthentikHandle {
    /// Base URL (`http://127.0.0.1:<port>`).
    pub url: String,
    pub addr: SocketAddr,
    pub controls: Controls,
    pub issuer: Arc<Issuer>,
    /// The Authentik API's data (`/api/v3/...`, see [`authentik::AuthentikState`]).
    pub state: authentik::AuthentikState,
}

impl AuthentikHandle {
    /// How many times the issuer's JWKS was fetched (from the request log).
    pub fn jwks_fetches(&self) -> usize {
        let path = self.issuer.jwks_uri().strip_prefix(&self.url).map(str::to_owned).unwrap_or_default();
        self.controls.log.all().iter().filter(|r| r.method == "GET" && r.path() == path).count()
    }
}

/// A running Stalwart or OCIS emulator, with its state for inspection.
#[derive(Clone)]
pub struct Handle<S> {
    /// Base URL (`http://127.0.0.1:<port>`).
    pub url: String,
    pub addr: SocketAddr,
    pub controls: Controls,
    pub state: S,
}

/// The emulators [`start`] runs. Dropping it stops the servers; call
/// [`Emulators::shutdown`] to wait for them.
pub struct Emulators {
    pub data_api: Option<DataApiHandle>,
    pub authentik: Option<AuthentikHandle>,
    pub stalwart: Option<Handle<stalwart::StalwartState>>,
    pub ocis: Option<Handle<ocis::OcisState>>,
    /// Signs tokens for `<authentik url>/application/o/dezky/` (or for
    /// `http://authentik.invalid/...` when Authentik is not running).
    pub issuer: Arc<Issuer>,
    servers: Servers,
}

impl Emulators {
    /// The Data API emulator; panics when it was not started.
    pub fn data_api(&self) -> &DataApiHandle {
        self.data_api.as_ref().expect("the Data API emulator was not started")
    }

    /// The Authentik emulator; panics when it was not started.
    pub fn authentik(&self) -> &AuthentikHandle {
        self.authentik.as_ref().expect("the Authentik emulator was not started")
    }

    /// The Stalwart emulator; panics when it was not started.
    pub fn stalwart(&self) -> &Handle<stalwart::StalwartState> {
        self.stalwart.as_ref().expect("the Stalwart emulator was not started")
    }

    /// The OCIS emulator; panics when it was not started.
    pub fn ocis(&self) -> &Handle<ocis::OcisState> {
        self.ocis.as_ref().expect("the OCIS emulator was not started")
    }

    /// Stops every server: stops accepting, lets requests in flight finish
    /// (at most 5 s), then returns. Persisted data is complete afterwards.
    pub async fn shutdown(self) {
        self.servers.shutdown().await
    }
}

/// The server tasks of a set of emulators and their shutdown signal.
struct Servers {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Servers {
    fn new() -> Servers {
        Servers { stop: tokio::sync::watch::channel(false).0, tasks: Vec::new() }
    }

    /// Binds 127.0.0.1:`port`; returns the listener, its address and base URL.
    async fn bind(port: u16) -> anyhow::Result<(tokio::net::TcpListener, SocketAddr, String)> {
        let listener =
            tokio::net::TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| anyhow::anyhow!("binding 127.0.0.1:{port}: {e}"))?;
        let addr = listener.local_addr()?;
        Ok((listener, addr, format!("http://{addr}")))
    }

    /// Serves `router` (already wrapped by its [`Controls`]) until shutdown.
    fn spawn(&mut self, listener: tokio::net::TcpListener, router: axum::Router) {
        let mut stop = self.stop.subscribe();
        self.tasks.push(tokio::spawn(async move {
            let graceful = async move {
                // Stops on the signal, or when the sender (Emulators) is dropped.
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(graceful).await {
                tracing::error!(error = %e, "emulator server failed");
            }
        }));
    }

    async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), t).await.is_err() {
                abort.abort();
            }
        }
    }
}

/// The file under [`Options::data_dir`] holding the issuer's signing keys.
pub const ISSUER_KEY_FILE: &str = "issuer-keys.json";

/// Starts the emulators `opts` asks for on 127.0.0.1.
pub async fn start(opts: Options) -> anyhow::Result<Emulators> {
    let mut servers = Servers::new();

    let data_api = match opts.data_api_port {
        Some(port) => {
            let api = DataApi::open(DataApiOptions {
                data_dir: opts.data_dir.clone(),
                seed: opts.seed,
                database: opts.database.clone(),
                api_key: opts.data_api_key.clone(),
            })?;
            let controls = Controls::default();
            let (listener, addr, url) = Servers::bind(port).await?;
            servers.spawn(listener, controls.wrap(api.router()));
            let wire_addr = match opts.data_api_wire_port {
                Some(port) => {
                    let (listener, addr, _) = Servers::bind(port).await?;
                    let stop = servers.stop.subscribe();
                    servers.tasks.push(tokio::spawn(data_api::wire::Wire::new(api.clone()).serve(listener, stop)));
                    Some(addr)
                }
                None => None,
            };
            Some(DataApiHandle { url, addr, key: api.api_key(), api, controls, wire_addr })
        }
        None => None,
    };

    let (issuer, authentik) = match opts.authentik_port {
        Some(port) => {
            let (listener, addr, url) = Servers::bind(port).await?;
            let iss_url = issuer::issuer_url(&url, demo::OIDC_APP_SLUG);
            let issuer = Arc::new(match &opts.data_dir {
                // Keys persist with the data, so tokens and JWKS survive restarts.
                Some(dir) => Issuer::with_key_file(iss_url, demo::OIDC_AUDIENCE, &dir.join(ISSUER_KEY_FILE))?,
                None => Issuer::new(iss_url, demo::OIDC_AUDIENCE),
            });
            let controls = Controls::default();
            let state = authentik::AuthentikState::demo();
            let app = issuer::router(issuer.clone()).merge(authentik::router(state.clone()));
            servers.spawn(listener, controls.wrap(app));
            (issuer.clone(), Some(AuthentikHandle { url, addr, controls, issuer, state }))
        }
        None => (Arc::new(Issuer::for_authentik("http://authentik.invalid")), None),
    };

    let stalwart = match opts.stalwart_port {
        Some(port) => {
            let (listener, addr, url) = Servers::bind(port).await?;
            let (controls, state) = (Controls::default(), stalwart::StalwartState::demo());
            servers.spawn(listener, controls.wrap(stalwart::router(state.clone())));
            Some(Handle { url, addr, controls, state })
        }
        None => None,
    };
    let ocis = match opts.ocis_port {
        Some(port) => {
            let (listener, addr, url) = Servers::bind(port).await?;
            let (controls, state) = (Controls::default(), ocis::OcisState::demo());
            servers.spawn(listener, controls.wrap(ocis::router(state.clone())));
            Some(Handle { url, addr, controls, state })
        }
        None => None,
    };

    Ok(Emulators { data_api, authentik, stalwart, ocis, issuer, servers })
}
