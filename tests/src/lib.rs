//! The end-to-end harness: each test gets its own emulators (seeded with the
//! demo world, in memory) and its own host serving the real built components
//! from `spin.toml`, wired together by Spin variables.
//!
//! The host is the dev host (in process; the compiled app is shared by every
//! test of a binary) unless `E2E_RUNTIME=spin`: then each test starts a real
//! `spin up` (`SPIN_BIN`, one binary) with the same variables as
//! `SPIN_VARIABLE_*`, against the same in-process emulators.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use dev_host::{serve, App, ServeOptions, Server, StateDir};
use devtool::spin::SpinUp;
use emulators::demo;
use emulators::issuer::Signing;
use emulators::{Emulators, Options};
use serde_json::{json, Value};

pub mod calls;

pub use emulators::demo::*;
pub use emulators::faults::{Fault, FaultRule};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn app() -> Arc<App> {
    static APP: OnceLock<Arc<App>> = OnceLock::new();
    APP.get_or_init(|| {
        let root = workspace();
        Arc::new(App::load(&root.join("spin.toml"), &root.join("target/.dev-cache")).expect("spin.toml loads: run `make build` first"))
    })
    .clone()
}

/// Which host serves the app in this test run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    /// `dev_host`, in process (the default).
    Dev,
    /// A real `spin up` of this binary (`E2E_RUNTIME=spin SPIN_BIN=…`).
    Spin(PathBuf),
}

/// The runtime chosen by the environment; a wrong choice stops every test
/// with the reason rather than silently testing the dev host.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| match std::env::var("E2E_RUNTIME").unwrap_or_default().as_str() {
        "" | "dev" => Runtime::Dev,
        "spin" => match devtool::spin::spin_bins().as_slice() {
            [bin] => Runtime::Spin(bin.clone()),
            [] => panic!("E2E_RUNTIME=spin needs SPIN_BIN=/path/to/spin"),
            _ => panic!("E2E_RUNTIME=spin takes one SPIN_BIN (`make test` runs the suite once per binary of a list)"),
        },
        other => panic!("E2E_RUNTIME={other:?}: expected `dev` or `spin`"),
    })
}

/// The host of one test.
pub enum Host {
    Dev(Server),
    Spin(SpinUp),
}

/// One test's world: emulators + host.
pub struct Env {
    pub emu: Emulators,
    pub host: Host,
    pub base: String,
    client: reqwest::Client,
}

/// Where each test's emulator writes the Data API rights the components'
/// calls used, one `component<TAB>collection<TAB>action` line per call
/// (`tests/it/rights.rs` reads them after the suite; `dev/test.sh` empties
/// the folder before it).
pub fn rights_dir() -> PathBuf {
    workspace().join("target/e2e-rights")
}

/// The rights each call of a component's key used, from the Data API
/// emulator's request log (parsed by the gateway's own code).
pub fn rights_used(emu: &Emulators) -> Vec<(&'static str, String, gateway::Action)> {
    let mut out = vec![];
    for req in emu.data_api().controls.log.all() {
        let Some(component) = req.header("api-key").and_then(devtool::keys::component_of) else { continue };
        let Some(action) = req.path().rsplit('/').next().and_then(gateway::Action::parse) else { continue };
        let Ok(body) = gateway::http::decode_body(req.body.as_bytes()) else { continue };
        let Ok(parsed) = gateway::ActionRequest::parse(action, &body) else { continue };
        out.extend(gateway::policy::rights(&parsed).into_iter().map(|(coll, action)| (component, coll, action)));
    }
    out
}

impl Drop for Env {
    fn drop(&mut self) {
        use std::io::Write;
        let lines: String = rights_used(&self.emu).iter().map(|(c, coll, a)| format!("{c}\t{coll}\t{}\n", a.name())).collect();
        if lines.is_empty() {
            return;
        }
        let dir = rights_dir();
        let _ = std::fs::create_dir_all(&dir);
        // One file per process; each test's lines in one append.
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{}.tsv", std::process::id()))) {
            let _ = f.write_all(lines.as_bytes());
        }
    }
}

/// An answer from the app.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not JSON: {:?}", self.text))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The problem's `detail`.
    pub fn detail(&self) -> String {
        self.json()["detail"].as_str().unwrap_or_default().to_owned()
    }
}

impl Env {
    pub async fn start() -> Env {
        Env::start_with(|_, _| {}).await
    }

    /// Starts with extra or changed application variables.
    pub async fn start_with(tweak: impl FnOnce(&mut HashMap<String, String>, &Emulators)) -> Env {
        Env::start_in(None, tweak).await
    }

    /// [`Env::start_with`], the app's key-value store in `state_dir` (made
    /// beforehand by the test, e.g. broken on purpose) instead of a fresh
    /// one of its own.
    pub async fn start_in(state_dir: Option<PathBuf>, tweak: impl FnOnce(&mut HashMap<String, String>, &Emulators)) -> Env {
        let emu = emulators::start(Options::default()).await.expect("emulators start");
        let mut vars = devtool::variables(&emu);
        // Short, so timeout tests stay quick.
        vars.insert("upstream_timeout_ms".to_owned(), "1500".to_owned());
        tweak(&mut vars, &emu);
        let host = match runtime() {
            Runtime::Dev => Host::Dev(
                // A key-value store of its own, as each `spin up` below gets a fresh state dir.
                serve(
                    app(),
                    ServeOptions {
                        variables: vars,
                        state_dir: state_dir.map_or(StateDir::Unset, StateDir::Path),
                        ..ServeOptions::default()
                    },
                )
                .await
                .expect("host serves"),
            ),
            Runtime::Spin(bin) => {
                let root = workspace();
                let dir = state_dir.unwrap_or_else(|| devtool::spin::state_dir(&root.join("target/e2e-spin")));
                Host::Spin(SpinUp::start(bin, &root.join("spin.toml"), &vars, &dir).await.unwrap_or_else(|e| panic!("{e:#}")))
            }
        };
        let base = match &host {
            Host::Dev(s) => s.url(),
            Host::Spin(s) => s.url(),
        };
        Env { emu, host, base, client: reqwest::Client::new() }
    }

    pub fn token(&self, user: &demo::User) -> String {
        self.emu.issuer.token_for(user)
    }

    /// A token with the given claims changed (`null` removes a claim).
    pub fn token_with(&self, user: &demo::User, changes: Value, how: Signing) -> String {
        let mut claims = self.emu.issuer.claims_for(user);
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        self.emu.issuer.sign(claims, how)
    }

    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Resp {
        self.call_with(method, path, &[], token, body).await
    }

    /// [`Env::call`] with extra request headers (a browser's `Origin`, a
    /// preflight's `Access-Control-Request-Method`).
    pub async fn call_with(&self, method: &str, path: &str, headers: &[(&str, &str)], token: Option<&str>, body: Option<&str>) -> Resp {
        let mut req = self.client.request(method.parse().unwrap(), format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_owned());
        }
        let resp = req.send().await.expect("the host answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        Resp { status, headers, text }
    }

    pub async fn get(&self, path: &str, as_user: &demo::User) -> Resp {
        self.call("GET", path, Some(&self.token(as_user)), None).await
    }

    pub async fn post(&self, path: &str, as_user: &demo::User, body: Value) -> Resp {
        self.call("POST", path, Some(&self.token(as_user)), Some(&body.to_string())).await
    }

    /// Sends every `(path, caller, body)` POST at once (all in flight
    /// together: the races' and invariants' tests); the answers in the
    /// order given.
    pub async fn post_all(&self, requests: &[(String, &demo::User, Value)]) -> Vec<Resp> {
        futures::future::join_all(requests.iter().map(|(path, who, body)| self.post(path, who, body.clone()))).await
    }

    pub fn db(&self) -> &emulators::data_api::DataApi {
        &self.emu.data_api().api
    }

    /// The whole database, to prove "nothing changed".
    pub fn snapshot(&self) -> Value {
        let db = self.db();
        let names = db.collections("dezky");
        json!(names.iter().map(|c| (c.clone(), json!(db.collection("dezky", c)))).collect::<serde_json::Map<_, _>>())
    }

    pub fn find(&self, coll: &str, filter: Value) -> Vec<Value> {
        self.db().find("dezky", coll, filter)
    }

    pub fn fail_data_api(&self, rule: FaultRule) {
        self.emu.data_api().controls.faults.add(rule);
    }
}

pub fn oid(hex: &str) -> Value {
    json!({ "$oid": hex })
}

impl Env {
    pub fn authentik(&self) -> &emulators::authentik::AuthentikState {
        &self.emu.authentik().state
    }
    pub fn stalwart(&self) -> &emulators::stalwart::StalwartState {
        &self.emu.stalwart().state
    }
    pub fn ocis(&self) -> &emulators::ocis::OcisState {
        &self.emu.ocis().state
    }

    /// Everything every system holds, to prove "nothing written anywhere".
    pub fn world(&self) -> Value {
        let mut ak: Vec<Value> =
            self.authentik().users().iter().map(|u| json!([u.pk, u.email, u.groups, u.attributes, u.is_active])).collect();
        ak.sort_by_key(|v| v[0].as_i64());
        let mut groups: Vec<Value> = self.authentik().groups().iter().map(|g| json!([g.pk, g.name])).collect();
        groups.sort_by_key(|v| v.to_string());
        let members: Vec<Value> = self.authentik().groups().iter().map(|g| json!([g.pk, self.authentik().members_of(&g.pk)])).collect();
        let mail: Vec<Value> = self.stalwart().accounts().iter().map(|a| json!([a.id, a.name, a.domain_id])).collect();
        let files: Vec<Value> = self.ocis().users().iter().map(|u| json!([u.id, u.username])).collect();
        json!({"db": self.snapshot(), "authentik": ak, "groups": groups, "members": members, "stalwart": mail, "ocis": files})
    }

    pub fn fail(&self, controls: &emulators::faults::Controls, rule: FaultRule) {
        controls.faults.add(rule);
    }
}

impl Env {
    /// `METHOD path` of every request any emulator received whose body
    /// holds `secret`: where a password went over the wire.
    pub fn carriers_of(&self, secret: &str) -> Vec<String> {
        [&self.emu.data_api().controls, &self.emu.authentik().controls, &self.emu.stalwart().controls, &self.emu.ocis().controls]
            .iter()
            .flat_map(|c| c.log.all())
            .filter(|r| r.body.contains(secret))
            .map(|r| format!("{} {}", r.method, r.path()))
            .collect()
    }
}

/// Creates Jane in acme through row 18 (identity, mailbox, file account,
/// document): her `User._id` hex and document.
pub async fn create_jane(env: &Env) -> (String, Value) {
    let r = env.post("/tenants/acme/members/create", &ACME_OWNER, json!({"name": "Jane Doe", "localPart": "jane", "role": "member"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let doc = env.find("users", json!({"email": "jane@acme.test"})).remove(0);
    assert!(doc["ocisUserId"].is_string() && doc["stalwartAccountId"].is_string(), "{doc}");
    (doc["_id"]["$oid"].as_str().unwrap().to_owned(), doc)
}

/// One of the four upstream systems, to aim a fault at.
pub use shared::problem::System;

/// The Data API's path of `action`, exactly (`data_api_url` is the
/// emulator's origin: the app calls `<data_api_url>/action/<action>`; the
/// `$` keeps `find` from matching `findOne`).
pub fn data_api_action(action: &str) -> String {
    format!("/action/{action}$")
}

/// A fault on one Data API action on one collection (the collection is
/// named in the body, so it is told apart there).
pub fn data_api_rule(action: &str, collection: &str, fault: Fault) -> FaultRule {
    FaultRule::new(data_api_action(action), fault).method("POST").body_contains(format!("\"collection\":\"{collection}\""))
}

impl Env {
    pub fn controls(&self, system: System) -> &emulators::faults::Controls {
        match system {
            System::DataApi => &self.emu.data_api().controls,
            System::Authentik => &self.emu.authentik().controls,
            System::Stalwart => &self.emu.stalwart().controls,
            System::Ocis => &self.emu.ocis().controls,
        }
    }

    /// Adds a fault rule to one system.
    pub fn inject(&self, system: System, rule: FaultRule) {
        self.controls(system).faults.add(rule);
    }

    /// How many requests ended in a trap (or another guest failure without
    /// a response) in the runtime serving this test: the dev host counts
    /// them; for a real Spin, its log entries saying so are counted.
    pub fn traps(&self) -> usize {
        match &self.host {
            Host::Dev(server) => server.traps(),
            Host::Spin(spin) => spin_failed_requests(&spin.stderr()).len(),
        }
    }

    /// What the app's components wrote to stderr, where the runtime lets a
    /// test read it: a real Spin keeps it in its state directory. The dev
    /// host passes guest output through to this process's stderr, which a
    /// test cannot read back (`None`).
    pub fn app_log(&self) -> Option<String> {
        let Host::Spin(spin) = &self.host else { return None };
        let mut log = spin.stderr();
        if let Ok(files) = std::fs::read_dir(spin.dir.join("logs")) {
            for f in files.flatten() {
                log += &std::fs::read_to_string(f.path()).unwrap_or_default();
            }
        }
        Some(log)
    }

    /// Waits (a little: Spin writes its logs asynchronously) for a line of
    /// the app's log containing every one of `words`; `Ok` on the dev host,
    /// whose guest output a test cannot read.
    pub async fn logged(&self, words: &[&str]) -> Result<(), String> {
        for _ in 0..20 {
            match self.app_log() {
                None => return Ok(()),
                Some(log) if log.lines().any(|l| words.iter().all(|w| l.contains(w))) => return Ok(()),
                Some(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
        Err(format!("no log line with {words:?} in:\n{}", self.app_log().unwrap_or_default()))
    }

    /// The runtime's log entries about failed guests (for assertion messages).
    pub fn trap_log(&self) -> String {
        match &self.host {
            Host::Dev(_) => "(the dev host's lines start with `dev-host: component`)".to_owned(),
            Host::Spin(spin) => spin_failed_requests(&spin.stderr()).join("\n"),
        }
    }
}

/// Spin's log entries for requests whose guest failed, one per request.
/// Spin 3.6 and 4.0 log a handler that traps (or returns without a
/// response) as one ERROR line, `spin_trigger_http::server: Error
/// processing request: guest invocation failed`, followed by wasmtime's
/// indented cause chain (`0: error while executing at wasm backtrace:`,
/// `1: resource has children`); an entry is the line with its chain.
pub fn spin_failed_requests(log: &str) -> Vec<String> {
    let mut entries: Vec<String> = Vec::new();
    let mut in_entry = false;
    for line in log.lines() {
        if line.contains("Error processing request") {
            entries.push(line.to_owned());
            in_entry = true;
        } else if in_entry && line.starts_with(char::is_whitespace) {
            let last = entries.last_mut().expect("an entry is open");
            last.push('\n');
            last.push_str(line);
        } else {
            in_entry = false;
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    /// Spin 4.0.2's own lines for a trapping request (captured from this
    /// suite before issue 19's fix), between two ordinary ones.
    #[test]
    fn a_spin_trap_entry_is_one_failed_request() {
        let log = "Serving http://127.0.0.1:3000\n\
            2026-12-07T03:57:14.979599Z ERROR spin_trigger_http::server: Error processing request: guest invocation failed\n    \
            0: error while executing at wasm backtrace:\n    \
            1: resource has children\n\
            POST /platform/operators/invite -> 502: Authentik answered 500\n";
        let entries = super::spin_failed_requests(log);
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert!(entries[0].ends_with("1: resource has children"), "{}", entries[0]);
        assert!(super::spin_failed_requests("Serving http://127.0.0.1:3000\nPOST /x -> 502: y\n").is_empty());
    }
}
