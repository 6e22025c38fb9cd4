//! `dev-host`: runs a Spin HTTP app (manifest version 2) on wasmtime, in
//! process, without Spin installed. Used by the test-suite and the dev
//! launcher (as a library) and by developers (as the `dev-host` binary).
//!
//! # Library use
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use std::{collections::HashMap, path::Path, sync::Arc};
//! use dev_host::{serve, App, ServeOptions, StateDir};
//!
//! // Compile once (or load from the cache)...
//! let app = Arc::new(App::load(Path::new("spin.toml"), Path::new("target/.dev-cache"))?);
//! // ...then serve as often as needed, each time with its own variables.
//! let server = serve(app.clone(), ServeOptions {
//!     addr: "127.0.0.1:0".parse()?,
//!     variables: HashMap::from([("data_api_url".into(), "http://127.0.0.1:4010".into())]),
//!     use_process_env: false,
//!     // The default key-value store: `.spin/sqlite_key_value.db` beside
//!     // spin.toml, as `spin up`; `StateDir::Unset` keeps it in memory.
//!     state_dir: StateDir::Default,
//! }).await?;
//! println!("listening on {}", server.addr);
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! - [`App::load`]`(manifest, cache_dir) -> Result<App>` parses the
//!   manifest, compiles every component an HTTP trigger names (in parallel,
//!   or loads it from `cache_dir`), and pre-instantiates it.
//!   [`App::components`] lists `(id, wasm path)`, [`App::routes`] the route
//!   table in match order, [`App::load_stats`] the load time and cache use.
//! - [`serve`]`(Arc<App>, ServeOptions) -> Result<Server>` resolves
//!   variables, allow-lists and the key-value state directory
//!   ([`ServeOptions::state_dir`], a [`StateDir`]) for this run, binds,
//!   and returns once listening. [`Server::addr`] is the bound address
//!   (use port 0 for an ephemeral one); [`Server::shutdown`] stops it and
//!   waits for in-flight requests (dropping the `Server` also stops
//!   accepting).
//! - [`default_cache_dir`] picks `<workspace>/target/.dev-cache` (or
//!   `$CARGO_TARGET_DIR/.dev-cache`, else `<manifest dir>/.dev-cache`).
//!
//! # Spin behaviour reproduced
//!
//! - **Manifest**: `[application]`, `[variables]`, `[[trigger.http]]`
//!   (`route`, `component`, `route = { private = true }`),
//!   `[component.<id>]` `source` (relative to the manifest),
//!   `allowed_outbound_hosts`, `key_value_stores`,
//!   `[component.<id>.variables]`. Unknown keys,
//!   `build` tables and other trigger types are ignored. See [`manifest`].
//! - **Routing** on the path only: exact, `:param` and trailing `/...`
//!   routes, Spin's precedence, trailing slashes tolerated, `404` with an
//!   empty body when nothing matches, `/.well-known/spin/health` and
//!   `/info`. The component receives the client's headers plus
//!   `spin-full-url`, `spin-path-info`, `spin-matched-route`,
//!   `spin-raw-component-route`, `spin-component-route`, `spin-base-path`
//!   (`/`), `spin-client-addr` and one `spin-path-match-<name>` per
//!   `:name` (underscores become dashes). See [`routes`].
//! - **Instances**: each request runs in a fresh store and instance of a
//!   component pre-instantiated at load; nothing survives between
//!   requests. A trap before the response head is a `500` (and a log line
//!   with the trap); after it, the body is cut short.
//! - **Variables** (`fermyon:spin/variables@2.0.0`): a component sees only
//!   its own `[component.<id>.variables]`, each a template over
//!   application variables whose values come from, highest first, the
//!   embedder's override map, `SPIN_VARIABLE_<NAME>`, the default. Missing
//!   required variables make `serve` fail, naming them. Unknown name →
//!   `undefined`, malformed name → `invalid-name`. See [`variables`].
//! - **`allowed_outbound_hosts`** checked when Spin checks it: at load,
//!   literal entries and templated ones resolved with the variables'
//!   defaults must parse with Spin's rules (no path, no `""`, no
//!   `insecure:allow-all`), or [`App::load`] fails with Spin's error chain
//!   (`Failed to load component `x`: `allowed_outbound_hosts` is
//!   malformed: ...`); when serving, a list whose entries do not resolve
//!   with the values in force denies every outbound request of that
//!   component. See [`allowed_hosts`].
//! - **Outbound HTTP** only through `wasi:http`, checked against the
//!   allow-list; a denied request fails in the guest with
//!   `HTTP-request-denied` and is logged with the component and
//!   destination. `self` requests go back to this server. Plain `http`
//!   goes through one keep-alive connection pool per served app without
//!   `TCP_NODELAY`, as on Spin, honouring the guest's connect, first-byte
//!   and between-bytes timeouts. See [`outbound`].
//! - **Memory**: nothing limits an instance beyond its memories' own
//!   maximum (see "Not reproduced"); each request's
//!   peak linear memory is measured and [`Server::memory_peaks`] gives
//!   the per-component peak (no header, nothing else changes). See
//!   [`memory`].
//! - **Key-value** (`fermyon:spin/key-value@2.0.0`, what
//!   `spin_sdk::key_value` 5.2 calls), as Spin v3.6.3 and v4.0.2: a
//!   component opens only the labels of its `key_value_stores` (any other
//!   is `access-denied` at `open`); a listed label no store has stops
//!   [`App::load`] with Spin's error (only `default` exists: no
//!   runtime-config file); `default` is Spin's SQLite file
//!   `<state dir>/sqlite_key_value.db` (same schema), shared by the app's
//!   components, lasting across requests and restarts. See [`key_value`].
//! - **WASI**: guest stdout/stderr reach the host's, line by line, prefixed
//!   `[component-id]`; no environment, arguments, files or sockets.
//!
//! # Not reproduced
//!
//! - Spin's other host interfaces (sqlite, redis, outbound databases, LLM,
//!   MQTT), and the other key-value interfaces (unversioned
//!   `fermyon:spin/key-value`, `wasi:keyvalue`, `spin:key-value@3.0.0`):
//!   components importing them still load, but calling them traps (a
//!   warning at load names them). A stubbed interface with resources may
//!   fail every request of the component: before key-value was provided,
//!   one importing `fermyon:spin/key-value@2.0.0` trapped on each request
//!   (`resource type mismatch`). Key-value stores other than `default`
//!   (runtime-config `[key_value_store.<label>]`: Redis, Azure, ...).
//! - WASIp3 / `wasi:http@0.3` handlers, the old Spin `inbound-http`
//!   handler, Wagi, `static_response` triggers, inline or remote
//!   (`url`/`digest`, registry) component sources, `files` mounts,
//!   `[application.trigger.http] base` (base is always `/`).
//! - Service chaining (`http://<component>.spin.internal`), `.env` files,
//!   `--variable` files, runtime-config files (so no `state_dir` from
//!   one), TLS, HTTP/2, OpenTelemetry, per-instance memory limits, the
//!   legacy `allowed_http_hosts` key.
//! - Connection pooling and TLS for `https` outbound requests (each gets a
//!   fresh connection), blocked networks, outbound connection limits.

pub mod allowed_hosts;
mod app;
mod bindings;
pub mod cache;
pub mod key_value;
pub mod manifest;
pub mod memory;
pub mod outbound;
pub mod routes;
pub mod runtime;
mod server;
pub mod stdio;
pub mod variables;

use std::path::{Path, PathBuf};

pub use app::{App, LoadStats};
pub use key_value::StateDir;
pub use memory::MemoryPeaks;
pub use server::{serve, ServeOptions, Server};

/// Where the binary keeps compiled components unless told otherwise:
/// `$CARGO_TARGET_DIR/.dev-cache` if that variable is set; else
/// `<dir>/target/.dev-cache` for the nearest ancestor `<dir>` of the
/// manifest holding a `Cargo.lock` and a `target` directory (the workspace
/// root); else `<manifest dir>/.dev-cache`.
pub fn default_cache_dir(manifest: &Path) -> PathBuf {
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join(".dev-cache");
    }
    let manifest = std::path::absolute(manifest).unwrap_or_else(|_| manifest.to_path_buf());
    let dir = manifest.parent().unwrap_or(Path::new(".")).to_path_buf();
    for ancestor in dir.ancestors() {
        if ancestor.join("Cargo.lock").is_file() && ancestor.join("target").is_dir() {
            return ancestor.join("target").join(".dev-cache");
        }
    }
    dir.join(".dev-cache")
}
