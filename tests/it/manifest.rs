//! The app as Spin runs it: the real `spin.toml` loads and serves with only
//! its required variables and a JWKS source set (every other one at its
//! default), and each
//! outbound request leaves with its body (headers and body in one write),
//! which is what keeps Nagle's algorithm and delayed ACKs from stalling
//! calls on Spin's pooled, `TCP_NODELAY`-less connections.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dev_host::{serve, App, ServeOptions, StateDir};
use e2e::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// `App::load` runs Spin's load-time checks (each templated
/// `allowed_outbound_hosts` entry with the variables' defaults); serving
/// with nothing but the required variables then resolves every allow-list
/// with the defaults, so a default Spin refuses fails here.
#[tokio::test]
async fn spin_toml_serves_with_only_its_required_variables_and_a_jwks_source() {
    let root = workspace();
    let app = Arc::new(
        App::load(&root.join("spin.toml"), &root.join("target/.dev-cache"))
            .unwrap_or_else(|e| panic!("spin.toml does not load as Spin would load it: {e:#}")),
    );
    let emu = emulators::start(emulators::Options::default()).await.expect("emulators start");
    let known: HashMap<&str, String> = HashMap::from([
        ("data_api_url", emu.data_api().url.clone()),
        ("authentik_url", emu.authentik().url.clone()),
        ("oidc_issuer", emu.issuer.issuer().to_owned()),
        ("oidc_audience", emu.issuer.audience().to_owned()),
    ]);
    let mut variables = HashMap::new();
    for (name, decl) in &app.manifest().variables {
        if decl.required {
            let value = known.get(name.as_str()).unwrap_or_else(|| panic!("new required variable {name}: give this test a value for it"));
            variables.insert(name.clone(), value.clone());
        }
    }
    assert_eq!(variables.len(), known.len(), "a variable this test sets is no longer required: {:?}", app.manifest().variables);
    // The contract asks for one of `oidc_jwks` / `oidc_jwks_url`, neither
    // required on its own: the URL, so the JWKS is fetched through the
    // allow-list too.
    variables.insert("oidc_jwks_url".to_owned(), emu.issuer.jwks_uri());
    // No secret is required (each deployment gets only its components'):
    // the route below reads the caller with the Data API key.
    assert!(app.manifest().variables.values().all(|d| !(d.secret && d.required)), "a secret is required");
    variables.insert("data_api_key".to_owned(), emu.data_api().key.clone());
    let options = ServeOptions { addr: "127.0.0.1:0".parse().unwrap(), variables, use_process_env: false, state_dir: StateDir::Unset };
    let host = serve(app, options).await.expect("serves with only the required variables");

    // A route that reads the JWKS from Authentik and the caller from the
    // Data API: both are denied if any allow-list entry fails to resolve.
    let resp = reqwest::Client::new()
        .get(format!("http://{}/users/me", host.addr))
        .bearer_auth(emu.issuer.token_for(&ACME_OWNER))
        .send()
        .await
        .expect("the host answers");
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(ACME_OWNER.sub), "{body}");
}

/// Each component declares exactly the variables its row of
/// `shared::needs::TABLE` reads, may call exactly the origins its parts
/// name and open exactly the key-value stores they keep state in: Spin resolves nothing else for it, so a part read outside its row
/// is unset (a `503` in the suite), and the kube generator, which gives
/// each SpinApp its rows' variables, gives it what it reads.
#[test]
fn every_component_declares_what_its_needs_row_reads_and_calls() {
    let root = workspace();
    let manifest = dev_host::manifest::Manifest::load(&root.join("spin.toml")).expect("spin.toml loads");
    let names: Vec<&str> = manifest.components.keys().map(String::as_str).collect();
    let mut rows: Vec<&str> = shared::needs::TABLE.iter().map(|n| n.component).collect();
    rows.sort_unstable();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, rows, "spin.toml's components and shared::needs::TABLE differ");
    for needs in shared::needs::TABLE {
        let decl = &manifest.components[needs.component];
        let mut declared: Vec<&str> = decl.variables.keys().map(String::as_str).collect();
        declared.sort_unstable();
        assert_eq!(declared, needs.variables(), "component {}: [component.{0}.variables] against its needs row", needs.component);
        for (name, value) in &decl.variables {
            // Its own Data API key is the one renamed: `data_api_key_<component>`.
            let app_variable = if name == shared::config::OWN_KEY { devtool::keys::variable_of(needs.component) } else { name.clone() };
            assert_eq!(value, &format!("{{{{ {app_variable} }}}}"), "component {}: {name}", needs.component);
        }
        let mut hosts: Vec<String> = decl.allowed_outbound_hosts.clone();
        hosts.sort_unstable();
        let mut expected: Vec<String> = needs.hosts().iter().map(|h| format!("{{{{ {h} }}}}")).collect();
        expected.sort_unstable();
        assert_eq!(hosts, expected, "component {}: allowed_outbound_hosts against its needs row", needs.component);
        assert_eq!(
            decl.key_value_stores,
            needs.key_value_stores(),
            "component {}: key_value_stores against its needs row",
            needs.component
        );
    }
}

/// A deployment that leaves out a secret: the components that need it
/// answer `503` naming it (no trap, no call with an empty credential), and
/// the others, which never read it, work.
#[tokio::test]
async fn a_component_missing_its_secret_answers_503_naming_it() {
    let env = Env::start_with(|vars, _| {
        vars.remove("authentik_token");
    })
    .await;
    let before = env.snapshot();
    env.emu.authentik().controls.log.clear();
    let r = env
        .post(
            "/tenants/acme/members/create",
            &ACME_OWNER,
            serde_json::json!({"name": "No Token", "localPart": "no-token", "role": "member"}),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.detail().contains("`authentik_token`"), "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(env.snapshot(), before, "nothing is written");
    assert!(env.emu.authentik().controls.log.all().is_empty(), "no call to Authentik without its token");
    let me = env.get("/users/me", &ACME_OWNER).await;
    assert_eq!(me.status, 200, "a route that never reads the token works: {}", me.text);

    let env = Env::start_with(|vars, _| {
        vars.remove(&devtool::keys::variable_of("me"));
    })
    .await;
    let r = env.get("/users/me", &ACME_OWNER).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.detail().contains("`data_api_key`"), "{}", r.text);
    assert!(env.emu.data_api().controls.log.all().is_empty(), "no call to the Data API without its key");
    assert_eq!(env.call("GET", "/openapi.json", None, None).await.status, 200, "a component without the Data API works");
}

/// How the requests of one connection arrived, read by read.
#[derive(Default)]
struct Arrivals {
    /// Requests whose body came in a later read than the end of its head.
    split: usize,
    /// Requests with a body.
    with_body: usize,
}

/// Parses as many whole requests as `buf` holds, given that the last read
/// ended at its end; `head_waiting` says the current request's head had
/// already arrived in an earlier read.
fn account(buf: &mut Vec<u8>, head_waiting: &mut bool, arrivals: &Mutex<Arrivals>) {
    loop {
        let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().expect("numeric content-length"))
            .unwrap_or(0);
        assert!(!head.contains("transfer-encoding: chunked"), "outbound bodies carry a content-length: {head}");
        if buf.len() < head_end + length {
            // The head is in, the body is not (yet).
            *head_waiting = true;
            return;
        }
        if length > 0 {
            let mut a = arrivals.lock().unwrap();
            a.with_body += 1;
            if *head_waiting {
                a.split += 1;
            }
        }
        *head_waiting = false;
        buf.drain(..head_end + length);
    }
}

/// A TCP proxy to `upstream` that records, for every request it forwards,
/// whether its head and body arrived in the same read.
async fn recording_proxy(upstream: std::net::SocketAddr) -> (String, Arc<Mutex<Arrivals>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let arrivals = Arc::new(Mutex::new(Arrivals::default()));
    let record = arrivals.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else { return };
                // The upstream side answers promptly: only the direction
                // being observed keeps the defaults of the sender.
                let _ = server.set_nodelay(true);
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                    let _ = client_write.shutdown().await;
                });
                let mut buf = Vec::new();
                let mut chunk = vec![0u8; 64 * 1024];
                let mut head_waiting = false;
                loop {
                    let n = match client_read.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    account(&mut buf, &mut head_waiting, &record);
                    if server_write.write_all(&chunk[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = server_write.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), arrivals)
}

/// Every Data API call is a POST with a JSON body, sent over the dev host's
/// pooled connections. Written after `outgoing-handler.handle`, a body
/// often leaves in a second segment that waits for the peer's (delayed)
/// ACK; written and finished before it, it leaves with the head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_bodies_leave_with_their_headers() {
    let mut arrivals = None;
    let env = Env::start_with(|vars, emu| {
        let (url, record) = block_on(recording_proxy(emu.data_api().addr));
        vars.insert("data_api_url".to_owned(), url);
        arrivals = Some(record);
    })
    .await;
    let arrivals = arrivals.unwrap();
    for _ in 0..25 {
        let resp = env.get("/users/me", &ACME_OWNER).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
    }
    let a = arrivals.lock().unwrap();
    assert!(a.with_body >= 25, "the Data API saw {} requests with a body", a.with_body);
    assert_eq!(a.split, 0, "{} of {} Data API requests arrived as a head, then a body in a later read", a.split, a.with_body);
}

/// `Env::start_with`'s tweak is synchronous; the proxy only needs to be
/// bound before the host starts, so it is started on the current runtime.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}
