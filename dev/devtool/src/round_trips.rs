//! `make bench`: what each operation costs upstream. For every route of
//! `spin.toml` but `/openapi.json` (no upstream), a valid request by a demo
//! caller allowed to make it, each run in a fresh world (mutations change
//! it): the calls each emulator received, and the sequential round trips
//! on the critical path, measured as the extra latency when every upstream
//! call is delayed, in units of the delay (the median of a few runs each
//! way, so one slow scheduling does not decide the figure).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dev_host::App;
use emulators::demo::{self, User};
use emulators::faults::{Controls, Fault, FaultRule};
use emulators::{Emulators, Options};
use serde_json::{json, Value};

/// The delay added to every upstream call for the round-trip count.
const DELAY_MS: u64 = 50;
/// Runs per operation, undelayed and delayed (the median of each is used).
const RUNS: usize = 3;

/// One operation: its component, request and caller, and a request that
/// first puts the world in the state the operation needs.
struct Op {
    component: &'static str,
    method: &'static str,
    path: String,
    who: &'static User,
    body: Option<Value>,
    setup: Option<(String, Value)>,
}

fn member(verb: &str, user: &User) -> String {
    format!("/tenants/acme/members/{}/{verb}", user.id)
}

fn ops() -> Vec<Op> {
    use demo::{ACME_ADMIN, ACME_INACTIVE_ADMIN, ACME_MEMBER, ACME_OWNER, NORTHWIND_OWNER, NORTHWIND_SCOPED, OPERATOR};
    let op = |component, method, path: String, who, body: Option<Value>| Op { component, method, path, who, body, setup: None };
    let get = |component, path: &str, who| op(component, "GET", path.to_owned(), who, None);
    let post = |component, path: String, who, body: Value| op(component, "POST", path, who, Some(body));
    let mia = |verb: &str| member(verb, &ACME_MEMBER);
    vec![
        get("me", "/users/me", &OPERATOR),
        get("users-list", "/users", &OPERATOR),
        get("users-get", &format!("/users/{}", ACME_MEMBER.sub), &OPERATOR),
        post("users-create", "/users/create".into(), &OPERATOR, json!({"authentikSubjectId": "bench-sub", "email": "bench@acme.test", "name": "Bench"})),
        post("users-update", format!("/users/{}/update", ACME_MEMBER.sub), &OPERATOR, json!({"name": "Mia 2"})),
        post("users-deactivate", format!("/users/{}/deactivate", ACME_MEMBER.sub), &OPERATOR, json!({})),
        post("operators-invite", "/platform/operators/invite".into(), &OPERATOR, json!({"name": "New Op", "email": "newop@dezky.test"})),
        post("partner-users-invite", "/partners/northwind/users/invite".into(), &OPERATOR, json!({"name": "New Staff", "email": "staff2@northwind.test"})),
        get("members-list", "/tenants/acme/members", &ACME_OWNER),
        post("members-create", "/tenants/acme/members/create".into(), &ACME_OWNER, json!({"name": "Rt Count", "localPart": "rt.count", "role": "member"})),
        post("tenant-admins-invite", "/tenants/acme/admins/invite".into(), &OPERATOR, json!({"name": "Ad Min", "email": "ad.min@acme.test"})),
        post("members-remove", mia("remove"), &ACME_OWNER, json!({})),
        post("members-suspend", mia("suspend"), &ACME_OWNER, json!({})),
        Op { setup: Some((mia("suspend"), json!({}))), ..post("members-resume", mia("resume"), &ACME_OWNER, json!({})) },
        post("members-logout", mia("logout"), &ACME_OWNER, json!({})),
        post("members-reset-password", mia("reset-password"), &ACME_OWNER, json!({})),
        post("members-update", mia("update"), &ACME_OWNER, json!({"name": "Mia M", "phone": "1"})),
        post("members-change-email", member("change-email", &ACME_INACTIVE_ADMIN), &ACME_OWNER, json!({"email": "ivan@home.test"})),
        get("aliases-list", &mia("aliases"), &ACME_OWNER),
        post("aliases-add", mia("aliases/add"), &ACME_OWNER, json!({"localPart": "sales", "domain": "acme.test"})),
        Op {
            setup: Some((mia("aliases/add"), json!({"localPart": "sales", "domain": "acme.test"}))),
            ..post("aliases-remove", mia("aliases/remove"), &ACME_OWNER, json!({"address": "sales@acme.test"}))
        },
        post("mailbox-create", member("mailbox/create", &ACME_INACTIVE_ADMIN), &ACME_OWNER, json!({"localPart": "ivan.i"})),
        post("ownership-transfer", "/tenants/acme/ownership/transfer".into(), &ACME_OWNER, json!({"userId": ACME_ADMIN.id})),
        get("platform-reports", "/platform/reports", &OPERATOR),
        get("partner-users-list", "/partners/northwind/users", &OPERATOR),
        get("partner-team", "/users/me/partner/users", &NORTHWIND_OWNER),
        post("partner-team-remove", format!("/users/me/partner/users/{}/remove", NORTHWIND_SCOPED.sub), &NORTHWIND_OWNER, json!({})),
        get("partner-tenants", "/users/me/partner/tenants", &NORTHWIND_OWNER),
        get("partner-activity", "/users/me/partner/activity", &NORTHWIND_OWNER),
        get("partner-mrr", "/users/me/partner/mrr", &NORTHWIND_OWNER),
        get("partner-reports", "/users/me/partner/reports", &NORTHWIND_OWNER),
    ]
}

/// The emulators' controls in the table's column order.
pub fn controls(emu: &Emulators) -> [&Controls; 4] {
    [&emu.data_api().controls, &emu.authentik().controls, &emu.stalwart().controls, &emu.ocis().controls]
}

/// A fresh world served by the dev host (request log off): the emulators,
/// the server and a client (devtool::me_bench measures in one too).
pub struct World {
    pub emu: Emulators,
    pub server: dev_host::Server,
    pub client: reqwest::Client,
}

impl World {
    pub async fn start(app: &Arc<App>) -> anyhow::Result<World> {
        let emu = emulators::start(Options { stalwart_port: Some(0), ocis_port: Some(0), ..Options::default() }).await?;
        let server = crate::serve_app(app.clone(), &emu, ([127, 0, 0, 1], 0).into(), false).await?;
        server.log_requests(false);
        Ok(World { emu, server, client: reqwest::Client::new() })
    }

    async fn call(&self, method: &str, path: &str, who: &User, body: Option<&Value>) -> (u16, String, Duration) {
        let mut req = self.client.request(method.parse().unwrap(), format!("{}{path}", self.server.url())).bearer_auth(self.emu.issuer.token_for(who));
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let start = Instant::now();
        let resp = req.send().await.expect("the host answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, text, start.elapsed())
    }

    /// Runs `op` once, after its setup, with every upstream call delayed
    /// by `delay_ms` (0: none). Returns its status, body, time and the calls
    /// per upstream.
    async fn run(app: &Arc<App>, op: &Op, delay_ms: u64) -> anyhow::Result<(u16, String, Duration, [usize; 4])> {
        let w = World::start(app).await?;
        // The first request of a fresh host pays one-off costs; keep them
        // out of the timing.
        w.call("GET", "/openapi.json", op.who, None).await;
        if let Some((path, body)) = &op.setup {
            let (status, text, _) = w.call("POST", path, op.who, Some(body)).await;
            anyhow::ensure!(status < 300, "{} setup {path}: {status} {text}", op.component);
        }
        for c in controls(&w.emu) {
            c.log.clear();
            if delay_ms > 0 {
                c.faults.add(FaultRule::new("/", Fault::DelayMs(delay_ms)));
            }
        }
        let (status, text, t) = w.call(op.method, &op.path, op.who, op.body.as_ref()).await;
        let calls = controls(&w.emu).map(|c| c.log.all().len());
        w.server.shutdown().await;
        w.emu.shutdown().await;
        Ok((status, text, t, calls))
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Prints the table: one row per operation.
pub async fn run(app: Arc<App>) -> anyhow::Result<()> {
    println!("\n== Upstream calls and sequential round trips per operation (dev host, a fresh world per run; round trips = extra latency with every upstream call delayed {DELAY_MS} ms, ÷ {DELAY_MS} ms, median of {RUNS})");
    println!("| operation | route | status | data api | authentik | stalwart | ocis | total | p50 undelayed | sequential round trips |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for op in ops() {
        let (mut plain, mut slow) = (Vec::new(), Vec::new());
        let (status, text, _, calls) = World::run(&app, &op, 0).await?;
        for _ in 0..RUNS {
            plain.push(World::run(&app, &op, 0).await?.2);
            slow.push(World::run(&app, &op, DELAY_MS).await?.2);
        }
        let (plain, slow) = (median(plain), median(slow));
        let trips = (slow.as_secs_f64() - plain.as_secs_f64()) / (DELAY_MS as f64 / 1000.0);
        let [data, ak, st, oc] = calls;
        // A failed request would count the wrong path: show why.
        let status = if status < 300 { status.to_string() } else { format!("{status} ({})", text.chars().take(80).collect::<String>()) };
        println!(
            "| {} | {} {} | {status} | {data} | {ak} | {st} | {oc} | {} | {:.1} ms | {trips:.1} |",
            op.component,
            op.method,
            op.path,
            calls.iter().sum::<usize>(),
            plain.as_secs_f64() * 1000.0
        );
    }
    println!("(the token check reads the caller's User: 1 Data API call and 1 round trip of every row; goal for members-create ≤ 5 round trips)");
    Ok(())
}
