//! End-to-end tests: a real guest component (`tests/fixture`, built here
//! with `cargo build --target wasm32-wasip2` into
//! `<target>/host-fixture`) served in process by `dev_host::serve`, plus
//! one run of the `dev-host` binary. Key-value tests give each server its
//! own state directory unless they test the default one.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dev_host::{serve, App, ServeOptions, Server, StateDir};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

// ---- fixture ----------------------------------------------------------------

fn workspace_target() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    }
}

fn fixture_target() -> PathBuf {
    workspace_target().join("host-fixture")
}

/// Builds the fixture once per test run (a no-op when it is up to date)
/// and returns the component's path.
fn fixture_wasm() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        let fixture_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixture");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let status = Command::new(cargo)
            .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(fixture_dir.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", fixture_target())
            .status()
            .expect("running cargo to build the guest fixture");
        assert!(status.success(), "building the guest fixture failed");
        let wasm = fixture_target().join("wasm32-wasip2/release/dev_host_fixture.wasm");
        assert!(wasm.is_file(), "{} missing after build", wasm.display());
        wasm
    })
}

/// Same wasm mounted as several components so that routing decides which
/// one answers (each reports its own `spin-component-route`).
fn manifest_text(wasm: &Path) -> String {
    let wasm = wasm.display();
    format!(
        r#"
spin_manifest_version = 2

[application]
name = "fixture-app"
version = "1.2.3"

[variables]
greeting = {{ default = "hello" }}
upstream_url = {{ default = "http://127.0.0.1:1" }}
denied_url = {{ default = "http://127.0.0.1:1" }}
secret_key = {{ required = true, secret = true }}

[[trigger.http]]
route = "/users/:subject"
component = "user"

[[trigger.http]]
route = "/users/me"
component = "me"

[[trigger.http]]
route = "/tenants/:slug/members/:user_id/remove"
component = "remove-member"

[[trigger.http]]
route = "/static/..."
component = "static"

[[trigger.http]]
route = "/outbound"
component = "caller"

[component.me]
source = "{wasm}"
key_value_stores = ["default"]
[component.me.variables]
greeting = "{{{{ greeting }}}}, world"
key = "k={{{{ secret_key }}}}"
[component.me.build]
command = "ignored"

[component.user]
source = "{wasm}"
key_value_stores = ["default", "default"]

[component.remove-member]
source = "{wasm}"

[component.static]
source = "{wasm}"
[component.static.variables]
target_url = "{{{{ upstream_url }}}}"

[component.caller]
source = "{wasm}"
allowed_outbound_hosts = ["{{{{ upstream_url }}}}"]
[component.caller.variables]
upstream_url = "{{{{ upstream_url }}}}"
denied_url = "{{{{ denied_url }}}}"
"#
    )
}

struct Fixture {
    _dir: tempfile::TempDir,
    manifest: PathBuf,
    app: Arc<App>,
}

/// One loaded app shared by the tests (each test serves it on its own).
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("spin.toml");
        std::fs::write(&manifest, manifest_text(fixture_wasm())).unwrap();
        let cache = fixture_target().join(".dev-cache");
        let app = Arc::new(App::load(&manifest, &cache).expect("loading the fixture app"));
        Fixture { _dir: dir, manifest, app }
    })
}

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn start(variables: HashMap<String, String>) -> Server {
    serve(fixture().app.clone(), ServeOptions { variables, ..ServeOptions::default() }).await.expect("serve")
}

async fn start_default() -> Server {
    start(vars(&[("secret_key", "s3cret")])).await
}

/// The fixture app served with its key-value state in `state_dir`.
async fn start_with_state(app: Arc<App>, state_dir: StateDir) -> Server {
    serve(app, ServeOptions { variables: vars(&[("secret_key", "s3cret")]), state_dir, ..ServeOptions::default() }).await.expect("serve")
}

/// `GET <path>?action=kv&<query>` on `addr`.
async fn kv(addr: SocketAddr, path: &str, query: &str) -> (u16, String) {
    get(addr, &format!("{path}?action=kv&{query}")).await
}

fn ok(body: &str) -> (u16, String) {
    (200, body.to_string())
}

// ---- tiny HTTP client and upstream -----------------------------------------

async fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req =
        http::Request::builder().method(method).uri(path).header(http::header::HOST, addr.to_string()).body(Empty::<Bytes>::new()).unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    request(addr, "GET", path).await
}

/// Parses the fixture's default `key=value` report.
fn report(body: &str) -> HashMap<String, String> {
    body.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A local upstream answering `pong <path>`; stops with the test's runtime.
async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                    let body = format!("pong {}", req.uri().path());
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    addr
}

// ---- tests ------------------------------------------------------------------

#[tokio::test]
async fn routing_precedence_params_and_spin_headers() {
    let server = start_default().await;
    let addr = server.addr;

    // Exact beats :param regardless of manifest order; trailing slash is fine.
    for path in ["/users/me", "/users/me/"] {
        let (status, body) = get(addr, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let r = report(&body);
        assert_eq!(r["spin-component-route"], "/users/me", "{path}");
        assert_eq!(r["spin-matched-route"], "/users/me");
        assert!(!r.contains_key("spin-path-match-subject"));
    }

    let (status, body) = get(addr, "/users/alice?x=1").await;
    assert_eq!(status, 200);
    let r = report(&body);
    assert_eq!(r["spin-component-route"], "/users/:subject");
    assert_eq!(r["spin-raw-component-route"], "/users/:subject");
    assert_eq!(r["spin-path-match-subject"], "alice");
    assert_eq!(r["spin-full-url"], format!("http://{addr}/users/alice?x=1"));
    assert_eq!(r["spin-path-info"], "");
    assert_eq!(r["spin-base-path"], "/");
    assert!(r["spin-client-addr"].starts_with("127.0.0.1:"), "{}", r["spin-client-addr"]);

    let (_, body) = get(addr, "/tenants/acme/members/u-42/remove").await;
    let r = report(&body);
    assert_eq!(r["spin-component-route"], "/tenants/:slug/members/:user_id/remove");
    assert_eq!(r["spin-path-match-slug"], "acme");
    assert_eq!(r["spin-path-match-user-id"], "u-42");

    let (_, body) = get(addr, "/static/css/site.css").await;
    let r = report(&body);
    assert_eq!(r["spin-matched-route"], "/static/...");
    assert_eq!(r["spin-component-route"], "/static");
    assert_eq!(r["spin-path-info"], "/css/site.css");
    let (_, body) = get(addr, "/static").await;
    assert_eq!(report(&body)["spin-path-info"], "");

    // Routing ignores the method.
    let (status, body) = request(addr, "DELETE", "/users/me").await;
    assert_eq!(status, 200);
    assert_eq!(report(&body)["spin-component-route"], "/users/me");

    // No route: 404, empty body.
    for path in ["/nope", "/users", "/users/a/b", "/tenants/acme/members"] {
        assert_eq!(get(addr, path).await, (404, String::new()), "{path}");
    }

    // Spin's health endpoint.
    assert_eq!(get(addr, "/.well-known/spin/health").await, (200, "OK".to_string()));
    let (status, info) = get(addr, "/.well-known/spin/info").await;
    assert_eq!(status, 200);
    assert!(info.contains("fixture-app") && info.contains("1.2.3"), "{info}");

    server.shutdown().await;
}

#[tokio::test]
async fn variables_follow_spin_rules() {
    let server = start(vars(&[("secret_key", "s3cret"), ("greeting", "hi")])).await;
    let addr = server.addr;

    // Template over an overridden application variable.
    assert_eq!(get(addr, "/users/me?action=var&name=greeting").await, (200, "hi, world".into()));
    assert_eq!(get(addr, "/users/me?action=var&name=key").await, (200, "k=s3cret".into()));

    // Application variables not mapped by the component are invisible.
    let (status, body) = get(addr, "/users/me?action=var&name=secret_key").await;
    assert_eq!(status, 404);
    assert!(body.contains("Undefined(\"no variable for"), "{body}");
    let (_, body) = get(addr, "/users/alice?action=var&name=greeting").await;
    assert!(body.contains("Undefined(\"no variable for"), "{body}");

    let (status, body) = get(addr, "/users/me?action=var&name=Not-Valid").await;
    assert_eq!(status, 404);
    assert!(body.contains("InvalidName("), "{body}");
    server.shutdown().await;

    // The same App served again with other values: defaults apply.
    let server = start(vars(&[("secret_key", "other")])).await;
    assert_eq!(get(server.addr, "/users/me?action=var&name=greeting").await, (200, "hello, world".into()));
    assert_eq!(get(server.addr, "/users/me?action=var&name=key").await, (200, "k=other".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn missing_required_variable_fails_serve() {
    let err = serve(fixture().app.clone(), ServeOptions::default()).await.err().expect("serve must fail");
    let msg = format!("{err:#}");
    assert!(msg.contains("secret_key"), "{msg}");
    assert!(msg.contains("SPIN_VARIABLE_SECRET_KEY"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_gets_a_fresh_instance() {
    let server = start_default().await;
    let addr = server.addr;
    for _ in 0..3 {
        let (_, body) = get(addr, "/users/me").await;
        assert_eq!(report(&body)["counter"], "1");
    }
    let handles: Vec<_> = (0..12).map(|i| tokio::spawn(async move { get(addr, &format!("/users/u{i}")).await })).collect();
    for (i, handle) in handles.into_iter().enumerate() {
        let (status, body) = handle.await.unwrap();
        assert_eq!(status, 200);
        let r = report(&body);
        assert_eq!(r["counter"], "1");
        assert_eq!(r["spin-path-match-subject"], format!("u{i}"));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn peak_linear_memory_is_measured_per_component() {
    const MIB: usize = 1 << 20;
    let server = start_default().await;
    let addr = server.addr;
    assert!(server.memory_peaks().take().is_empty(), "nothing ran yet");

    assert_eq!(get(addr, "/users/me?action=alloc&mib=0").await.0, 200);
    let baseline = server.memory_peaks().take()["me"];
    assert!(baseline > 0 && baseline < 8 * MIB, "baseline {baseline}");

    // Two components, one allocating 40 MiB, the other 8 MiB; each
    // component keeps its own peak.
    assert_eq!(get(addr, "/users/me?action=alloc&mib=40").await.0, 200);
    assert_eq!(get(addr, "/users/u1?action=alloc&mib=8").await.0, 200);
    // A later small request (a fresh instance) does not lower the peak.
    assert_eq!(get(addr, "/users/me?action=alloc&mib=0").await.0, 200);
    let peaks = server.memory_peaks().take();
    assert_eq!(peaks.len(), 2, "{peaks:?}");
    assert!(peaks["me"] >= baseline + 40 * MIB, "{peaks:?}");
    assert!(peaks["user"] >= baseline + 8 * MIB && peaks["user"] < peaks["me"], "{peaks:?}");

    // `take` reset the peaks: a small request reads as small again.
    assert_eq!(get(addr, "/users/me?action=alloc&mib=0").await.0, 200);
    assert_eq!(server.memory_peaks().take()["me"], baseline);
    server.shutdown().await;
}

#[tokio::test]
async fn outbound_allowed_and_denied() {
    let allowed = upstream().await;
    // A live server that is *not* in the allow-list: success here would mean
    // the check is missing, not that the connection failed.
    let other = upstream().await;
    let server =
        start(vars(&[("secret_key", "s"), ("upstream_url", &format!("http://{allowed}")), ("denied_url", &format!("http://{other}/x"))]))
            .await;
    let addr = server.addr;

    let (status, body) = get(addr, "/outbound?action=outbound&url_var=upstream_url").await;
    assert_eq!((status, body.as_str()), (200, "upstream 200 pong /"));

    let (status, body) = get(addr, "/outbound?action=outbound&url_var=denied_url").await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");

    // The same port on another scheme is not allowed either.
    let server2 =
        start(vars(&[("secret_key", "s"), ("upstream_url", &format!("http://{allowed}")), ("denied_url", &format!("https://{allowed}/"))]))
            .await;
    let (status, body) = get(server2.addr, "/outbound?action=outbound&url_var=denied_url").await;
    assert_eq!(status, 502);
    assert!(body.contains("HttpRequestDenied"), "{body}");

    // A component without allowed_outbound_hosts may not call anything,
    // even a host another component may call.
    let (status, body) = get(addr, "/static/x?action=outbound&url_var=target_url").await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");

    server.shutdown().await;
    server2.shutdown().await;
}

#[tokio::test]
async fn key_value_set_get_delete_across_requests() {
    let state = tempfile::tempdir().unwrap();
    let server = start_with_state(fixture().app.clone(), StateDir::Path(state.path().to_path_buf())).await;
    let addr = server.addr;

    assert_eq!(kv(addr, "/users/me", "op=get&key=jwks").await, ok("none"));
    assert_eq!(kv(addr, "/users/me", "op=exists&key=jwks").await, ok("false"));
    assert_eq!(kv(addr, "/users/me", "op=set&key=jwks&value=v1").await, ok("ok"));
    // Each request is a fresh instance: the value lives in the host's store.
    assert_eq!(kv(addr, "/users/me", "op=get&key=jwks").await, ok("some v1"));
    assert_eq!(kv(addr, "/users/me", "op=exists&key=jwks").await, ok("true"));
    // A store is the app's: another component listing `default` shares it.
    assert_eq!(kv(addr, "/users/alice", "op=get&key=jwks").await, ok("some v1"));
    assert_eq!(kv(addr, "/users/alice", "op=set&key=jwks&value=v2").await, ok("ok"));
    assert_eq!(kv(addr, "/users/me", "op=get&key=jwks").await, ok("some v2"));
    assert_eq!(kv(addr, "/users/me", "op=set&key=another&value=x").await, ok("ok"));
    assert_eq!(kv(addr, "/users/me", "op=keys").await, ok("another,jwks"));

    // Delete, then the key is gone; deleting a missing key is no error.
    assert_eq!(kv(addr, "/users/me", "op=delete&key=jwks").await, ok("ok"));
    assert_eq!(kv(addr, "/users/me", "op=get&key=jwks").await, ok("none"));
    assert_eq!(kv(addr, "/users/me", "op=exists&key=jwks").await, ok("false"));
    assert_eq!(kv(addr, "/users/me", "op=delete&key=jwks").await, ok("ok"));
    assert_eq!(kv(addr, "/users/me", "op=keys").await, ok("another"));

    assert_eq!(server.traps(), 0);
    server.shutdown().await;
    assert!(state.path().join("sqlite_key_value.db").is_file());
}

#[tokio::test]
async fn key_value_label_not_listed_is_access_denied() {
    let state = tempfile::tempdir().unwrap();
    let server = start_with_state(fixture().app.clone(), StateDir::Path(state.path().to_path_buf())).await;
    let addr = server.addr;
    // `static` lists no store: even `default` is refused, at `open`.
    assert_eq!(kv(addr, "/static/x", "op=get&key=k").await, (403, "Error::AccessDenied".into()));
    // `me` lists only `default`: any other label is refused the same way,
    // whether or not a store has it.
    for label in ["other", "Default", ""] {
        assert_eq!(kv(addr, "/users/me", &format!("store={label}&op=get&key=k")).await, (403, "Error::AccessDenied".into()), "{label:?}");
    }
    assert_eq!(kv(addr, "/users/me", "op=set&key=k&value=v").await, ok("ok"));
    assert_eq!(kv(addr, "/static/x", "op=get&key=k").await, (403, "Error::AccessDenied".into()));
    assert_eq!(server.traps(), 0);
    server.shutdown().await;
}

#[test]
fn key_value_label_without_a_store_stops_the_app_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("spin.toml");
    let cache = fixture_target().join(".dev-cache");
    let text =
        manifest_text(fixture_wasm()).replace(r#"key_value_stores = ["default"]"#, r#"key_value_stores = ["default", "jwks-cache"]"#);
    std::fs::write(&manifest, text).unwrap();
    let err = format!("{:#}", App::load(&manifest, &cache).err().expect("Spin does not start this app"));
    assert_eq!(
        err,
        r#"failed to configure app: spin_factor_key_value::KeyValueFactor::configure_app failed: unknown key_value_stores label "jwks-cache" for component "me""#
    );

    // A label Spin's manifest cannot hold is refused with the manifest.
    let text = manifest_text(fixture_wasm()).replace(r#"key_value_stores = ["default"]"#, r#"key_value_stores = ["b@dlabel"]"#);
    std::fs::write(&manifest, text).unwrap();
    let err = format!("{:#}", App::load(&manifest, &cache).err().expect("Spin does not load this manifest"));
    assert!(err.contains("key_value_stores: expected kebab-case or snake_case"), "{err}");
}

#[tokio::test]
async fn key_value_persists_across_a_host_restart() {
    let state = tempfile::tempdir().unwrap();
    let server = start_with_state(fixture().app.clone(), StateDir::Path(state.path().to_path_buf())).await;
    assert_eq!(kv(server.addr, "/users/me", "op=set&key=jwks&value=cached").await, ok("ok"));
    server.shutdown().await;

    // A new host: the app loaded again, served on the same state dir.
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("spin.toml");
    std::fs::write(&manifest, manifest_text(fixture_wasm())).unwrap();
    let app = Arc::new(App::load(&manifest, &fixture_target().join(".dev-cache")).unwrap());
    let server = start_with_state(app.clone(), StateDir::Path(state.path().to_path_buf())).await;
    assert_eq!(kv(server.addr, "/users/me", "op=get&key=jwks").await, ok("some cached"));
    server.shutdown().await;

    // The file is Spin's own: `spin up --state-dir` on it sees the same data.
    let db = rusqlite::Connection::open(state.path().join("sqlite_key_value.db")).unwrap();
    let rows: Vec<(String, String, Vec<u8>)> = db
        .prepare("SELECT store, key, value FROM spin_key_value")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, [("default".to_string(), "jwks".to_string(), b"cached".to_vec())]);

    // No state dir (`--state-dir ""`): in memory, for one serve only.
    let server = start_with_state(app.clone(), StateDir::Unset).await;
    assert_eq!(kv(server.addr, "/users/me", "op=get&key=jwks").await, ok("none"));
    assert_eq!(kv(server.addr, "/users/me", "op=set&key=jwks&value=mem").await, ok("ok"));
    assert_eq!(kv(server.addr, "/users/alice", "op=get&key=jwks").await, ok("some mem"));
    server.shutdown().await;
    let server = start_with_state(app, StateDir::Unset).await;
    assert_eq!(kv(server.addr, "/users/me", "op=get&key=jwks").await, ok("none"));
    server.shutdown().await;
}

#[tokio::test]
async fn key_value_default_state_dir_is_dot_spin_beside_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("spin.toml");
    std::fs::write(&manifest, manifest_text(fixture_wasm())).unwrap();
    let app = Arc::new(App::load(&manifest, &fixture_target().join(".dev-cache")).unwrap());
    let server = start_with_state(app, StateDir::Default).await;
    assert_eq!(kv(server.addr, "/users/me", "op=set&key=k&value=v").await, ok("ok"));
    server.shutdown().await;
    assert!(dir.path().join(".spin/sqlite_key_value.db").is_file());
}

#[tokio::test]
async fn trap_is_a_500_and_the_next_request_works() {
    let server = start_default().await;
    let (status, body) = get(server.addr, "/users/me?action=trap").await;
    assert_eq!((status, body.as_str()), (500, ""));
    let (status, body) = get(server.addr, "/users/me").await;
    assert_eq!(status, 200);
    assert_eq!(report(&body)["counter"], "1");
    server.shutdown().await;
}

#[tokio::test]
async fn dropping_the_server_stops_it() {
    let server = start_default().await;
    let addr = server.addr;
    assert_eq!(get(addr, "/users/me").await.0, 200);
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if TcpStream::connect(addr).await.is_err() {
            break;
        }
        assert!(Instant::now() < deadline, "server still accepting after drop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn compiled_components_are_cached() {
    let wasm = fixture_wasm();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("spin.toml");
    std::fs::write(&manifest, manifest_text(wasm)).unwrap();
    let cache = dir.path().join("cache");

    let cold = App::load(&manifest, &cache).unwrap();
    let cold_stats = cold.load_stats();
    // Five components share one .wasm: compiled once.
    assert_eq!((cold_stats.compiled, cold_stats.from_cache), (1, 0));
    assert_eq!(cold.components().count(), 5);
    assert!(cold.components().all(|(_, path)| path == wasm));

    let warm = App::load(&manifest, &cache).unwrap();
    let warm_stats = warm.load_stats();
    assert_eq!((warm_stats.compiled, warm_stats.from_cache), (0, 1));
    eprintln!("fixture start-up: cold {} ms, warm {} ms", cold_stats.elapsed.as_millis(), warm_stats.elapsed.as_millis());
    assert!(warm_stats.elapsed < cold_stats.elapsed);
}

#[test]
fn binary_serves_with_process_env_and_logs() {
    let fixture = fixture();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dev-host"))
        .args(["--listen", "127.0.0.1:0", "--manifest"])
        .arg(&fixture.manifest)
        .arg("--cache-dir")
        .arg(fixture_target().join(".dev-cache"))
        .env("SPIN_VARIABLE_SECRET_KEY", "from-env")
        .env("SPIN_VARIABLE_GREETING", "env-greeting")
        .env("SPIN_VARIABLE_DENIED_URL", "http://127.0.0.1:2/nope")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting dev-host");

    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    let addr: SocketAddr = loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            panic!("dev-host exited early; output so far:\n{banner}");
        }
        banner.push_str(&line);
        if let Some(url) = line.trim().strip_prefix("Serving http://") {
            break url.parse().unwrap();
        }
    };
    // The route table follows the banner.
    let mut routes = String::new();
    for _ in 0..6 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        routes.push_str(&line);
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (key, greeting, stderr_action, denied) = rt.block_on(async {
        (
            get(addr, "/users/me?action=var&name=key").await,
            get(addr, "/users/me?action=var&name=greeting").await,
            get(addr, "/users/me?action=stderr").await,
            get(addr, "/outbound?action=outbound&url_var=denied_url").await,
        )
    });
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();

    assert!(banner.contains("dev-host: loaded fixture-app in"), "{banner}");
    assert!(routes.contains("/users/me -> me"), "{routes}");
    assert!(routes.contains("/users/:subject -> user"), "{routes}");
    assert_eq!(key, (200, "k=from-env".to_string()));
    assert_eq!(greeting, (200, "env-greeting, world".to_string()));
    assert_eq!(stderr_action.0, 200);
    assert_eq!(denied.0, 502);
    assert!(denied.1.contains("HttpRequestDenied"), "{}", denied.1);
    assert!(stderr.contains("component 'caller' denied outbound request to 'http://127.0.0.1:2'"), "{stderr}");
    assert!(stderr.contains("[me] fixture says hello on stderr"), "{stderr}");
    assert!(stderr.contains("dev-host: GET /users/me -> me 200"), "{stderr}");
    // As `spin up` says where the default store is, when a component uses it.
    let db = fixture.manifest.parent().unwrap().join(".spin/sqlite_key_value.db");
    assert!(stderr.contains(&format!("dev-host: Storing default key-value data to \"{}\".", db.display())), "{stderr}");
}
