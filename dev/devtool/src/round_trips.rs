//! `make bench`: what each operation costs upstream. For every route of
//! `spin.toml` but `/openapi.json` (no upstream), a valid request by a demo
//! caller allowed to make it, each run in a fresh world (mutations change
//! it): the calls each emulator received, the latency undelayed and with
//! every upstream call delayed [`DELAY_MS`], and the sequential round
//! trips on the critical path (the extra latency in units of the delay;
//! the median of a few runs each way, so one slow scheduling does not
//! decide the figure). Each row also states its floor — the fewest
//! sequential round trips the data dependencies allow — and why (issue
//! 12); docs/upstreams.md holds the same table ([`floors_table`], kept
//! equal by this module's test).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dev_host::App;
use emulators::demo::{self, User};
use emulators::faults::{Controls, Fault, FaultRule};
use emulators::{Emulators, Options};
use serde_json::{json, Value};

/// The delay added to every upstream call for the round-trip count (the
/// issue's 20 ms: a Data API or identity server nearby).
pub const DELAY_MS: u64 = 20;
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
    /// The fewest sequential round trips this request can take, and why
    /// (what each step needs from the one before).
    floor: u8,
    why: &'static str,
}

impl Op {
    fn floor(self, floor: u8, why: &'static str) -> Op {
        Op { floor, why, ..self }
    }
}

fn member(verb: &str, user: &User) -> String {
    format!("/tenants/acme/members/{}/{verb}", user.id)
}

fn ops() -> Vec<Op> {
    use demo::{ACME_ADMIN, ACME_INACTIVE_ADMIN, ACME_MEMBER, ACME_OWNER, NORTHWIND_OWNER, NORTHWIND_SCOPED, OPERATOR};
    let op = |component, method, path: String, who, body: Option<Value>| Op {
        component,
        method,
        path,
        who,
        body,
        setup: None,
        floor: 0,
        why: "",
    };
    let get = |component, path: &str, who| op(component, "GET", path.to_owned(), who, None);
    let post = |component, path: String, who, body: Value| op(component, "POST", path, who, Some(body));
    let mia = |verb: &str| member(verb, &ACME_MEMBER);
    // Steps are written `a ∥ b` (concurrent) and `→` (sequential); "the
    // prologue" is the caller ∥ the tenant+domains ∥ the named member.
    vec![
        get("me", "/users/me", &OPERATOR).floor(1, "the upsert and the read with the partner sent together (the token names no tenant group; one more to resolve tenant slugs when it does)"),
        get("users-list", "/users", &OPERATOR).floor(2, "caller → users: the filter depends on who calls (P: all; a tenant admin: their live tenants, one trip more)"),
        get("users-get", &format!("/users/{}", ACME_MEMBER.sub), &OPERATOR).floor(1, "caller ∥ the user: the path names the user"),
        post("users-create", "/users/create".into(), &OPERATOR, json!({"authentikSubjectId": "bench-sub", "email": "bench@acme.test", "name": "Bench"}))
            .floor(2, "(caller ∥ subject taken? ∥ tenants) → (insert ∥ audit, each undone if the other fails)"),
        post("users-update", format!("/users/{}/update", ACME_MEMBER.sub), &OPERATOR, json!({"name": "Mia 2"}))
            .floor(2, "(caller ∥ user ∥ tenants) → (update ∥ audit); the answer is composed from the document read and the update, not read back"),
        post("users-deactivate", format!("/users/{}/deactivate", ACME_MEMBER.sub), &OPERATOR, json!({}))
            .floor(2, "(caller ∥ user) → (update ∥ audit)"),
        post("operators-invite", "/platform/operators/invite".into(), &OPERATOR, json!({"name": "New Op", "email": "newop@dezky.test"}))
            .floor(4, "(caller ∥ group ∥ identity by e-mail) → create the identity → (User ∥ recovery link) → (password ∥ expiry marker ∥ audit): the password waits on the link's answer, the audit names the handoff"),
        post("partner-users-invite", "/partners/northwind/users/invite".into(), &OPERATOR, json!({"name": "New Staff", "email": "staff2@northwind.test"}))
            .floor(4, "(caller ∥ partner ∥ group ∥ identity by e-mail) → then as operators-invite"),
        get("members-list", "/tenants/acme/members", &ACME_OWNER)
            .floor(2, "(caller ∥ tenant) → members: up to 50 000 members cannot ride in the tenant's aggregate (one document, 16 MB)"),
        post("members-create", "/tenants/acme/members/create".into(), &ACME_OWNER, json!({"name": "Rt Count", "localPart": "rt.count", "role": "member"}))
            .floor(4, "(caller ∥ tenant+domains+users at <localPart>@each domain) → identity → (password ∥ mailbox ∥ file account) → (User ∥ audit): the side systems need the identity, the User their ids"),
        post("tenant-admins-invite", "/tenants/acme/admins/invite".into(), &OPERATOR, json!({"name": "Ad Min", "email": "ad.min@acme.test"}))
            .floor(4, "(caller ∥ tenant ∥ identity by e-mail) → then as operators-invite (the tenant names the group)"),
        post("members-remove", mia("remove"), &ACME_OWNER, json!({}))
            .floor(3, "prologue → (identity ∥ mailbox ∥ files removed) → (document ∥ audit): the document goes only once the upstream deletes succeeded"),
        post("members-suspend", mia("suspend"), &ACME_OWNER, json!({}))
            .floor(3, "prologue → (sign-in off ∥ mailbox permissions read) → (mailbox ∥ document ∥ audit): the mailbox write is a change of the permissions read"),
        Op { setup: Some((mia("suspend"), json!({}))), ..post("members-resume", mia("resume"), &ACME_OWNER, json!({})) }
            .floor(3, "as members-suspend"),
        post("members-logout", mia("logout"), &ACME_OWNER, json!({}))
            .floor(5, "prologue → identity (its username) → sessions (Authentik filters them by username) → audit → each ended: audit first, as an ended session cannot be restored, and the event counts the sessions listed; more than one page adds one (bulk_delete by pk, 2 in all, exists only from Authentik 2026.2)"),
        post("members-reset-password", mia("reset-password"), &ACME_OWNER, json!({}))
            .floor(4, "prologue → (audit → password, beside the mailbox secret read) → mailbox password: audit first, as a password set cannot be undone; Stalwart's change names the secret it replaces"),
        post("members-update", mia("update"), &ACME_OWNER, json!({"name": "Mia M", "phone": "1"}))
            .floor(3, "prologue → (document ∥ audit ∥ identity read) → (identity ∥ mailbox name): a PATCH replaces all attributes, so they are merged with the ones read"),
        post("members-change-email", member("change-email", &ACME_INACTIVE_ADMIN), &ACME_OWNER, json!({"email": "ivan@home.test"}))
            .floor(4, "prologue → (identity ∥ address taken in Authentik ∥ in the database) → identity → (document ∥ audit): a refused address must change nothing, and the document follows the identity"),
        get("aliases-list", &mia("aliases"), &ACME_OWNER).floor(2, "prologue → mailbox: its id is in the member's document"),
        post("aliases-add", mia("aliases/add"), &ACME_OWNER, json!({"localPart": "sales", "domain": "acme.test"}))
            .floor(3, "prologue → mailbox read → (alias change ∥ audit): the change is a compare-and-set on the state read"),
        Op {
            setup: Some((mia("aliases/add"), json!({"localPart": "sales", "domain": "acme.test"}))),
            ..post("aliases-remove", mia("aliases/remove"), &ACME_OWNER, json!({"address": "sales@acme.test"}))
        }
        .floor(3, "as aliases-add"),
        post("mailbox-create", member("mailbox/create", &ACME_INACTIVE_ADMIN), &ACME_OWNER, json!({"localPart": "ivan.i"}))
            .floor(3, "prologue → mailbox → (document ∥ audit): the document stores the new mailbox's id"),
        post("ownership-transfer", "/tenants/acme/ownership/transfer".into(), &ACME_OWNER, json!({"userId": ACME_ADMIN.id}))
            .floor(5, "prologue → the tenant's transfer marker set (transfers of one workspace take turns: never two owners) → (new owner promoted ∥ members read) → (previous owners demoted ∥ audit) → marker removed: promoting first keeps an owner at every moment, demoting needs the members read; the answer is composed, not read back"),
        get("platform-reports", "/platform/reports", &OPERATOR)
            .floor(2, "caller → (tenants ∥ subscriptions pipelines): 1 by the data, kept at 2 so two platform-wide pipelines run only for a caller known to be P"),
        get("partner-users-list", "/partners/northwind/users", &OPERATOR)
            .floor(2, "(caller ∥ partner) → users: up to 50 000 users cannot ride in the partner's document"),
        get("partner-team", "/users/me/partner/users", &NORTHWIND_OWNER)
            .floor(3, "caller → the partner's users (the partner is the caller's) → MFA devices per user (by their Authentik pk)"),
        post("partner-team-remove", format!("/users/me/partner/users/{}/remove", NORTHWIND_SCOPED.sub), &NORTHWIND_OWNER, json!({}))
            .floor(3, "(caller ∥ target+its partner+its partner's admins ∥ staff group) → (document ∥ audit) → group left: the group is left only once the removal stands (removing an owner/admin adds one, the partner's admins read again after the write, so two admins removing each other cannot both stand)"),
        get("partner-tenants", "/users/me/partner/tenants", &NORTHWIND_OWNER).floor(2, "caller → tenants of the caller's partner"),
        get("partner-activity", "/users/me/partner/activity", &NORTHWIND_OWNER)
            .floor(2, "caller → one pipeline from the caller's partner: its tenants' slugs joined, then the newest events on those slugs and on the partner's own, merged"),
        get("partner-mrr", "/users/me/partner/mrr", &NORTHWIND_OWNER).floor(2, "caller → one pipeline over the caller's partner's tenants"),
        get("partner-reports", "/users/me/partner/reports", &NORTHWIND_OWNER).floor(2, "caller → (tenants ∥ partner) pipelines of the caller's partner"),
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
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.server.url()))
            .bearer_auth(self.emu.issuer.token_for(who));
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
    println!("\n== Upstream calls and sequential round trips per operation (dev host, a fresh world per run; p50 of {RUNS} runs undelayed and with every upstream call delayed {DELAY_MS} ms; round trips = the difference ÷ {DELAY_MS} ms; floor = the fewest the data dependencies allow)");
    println!("| operation | route | status | data api | authentik | stalwart | ocis | total | p50 at 0 ms/call | p50 at {DELAY_MS} ms/call | sequential round trips | floor | why |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut above = Vec::new();
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
            "| {} | {} {} | {status} | {data} | {ak} | {st} | {oc} | {} | {:.1} ms | {:.1} ms | {trips:.1} | {} | {} |",
            op.component,
            op.method,
            op.path,
            calls.iter().sum::<usize>(),
            plain.as_secs_f64() * 1000.0,
            slow.as_secs_f64() * 1000.0,
            op.floor,
            op.why,
        );
        // Half a trip of slack: host time and scheduling are in the figure.
        if trips > f64::from(op.floor) + 0.5 {
            above.push(op.component);
        }
    }
    println!("(the token check reads the caller's User: 1 Data API call, concurrent with the route's first reads where they do not depend on it)");
    println!("above the floor: {}", if above.is_empty() { "none".to_owned() } else { above.join(", ") });
    Ok(())
}

/// The floors as docs/upstreams.md shows them: one row per operation.
pub fn floors_table() -> String {
    let mut t = String::from("| operation | floor | why |\n|---|---|---|\n");
    for op in ops() {
        t.push_str(&format!("| {} | {} | {} |\n", op.component, op.floor, op.why));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_states_a_floor_and_why() {
        for op in ops() {
            assert!(op.floor >= 1 && !op.why.is_empty(), "{}", op.component);
        }
    }

    #[test]
    fn docs_upstreams_holds_the_floors_table() {
        let doc = std::fs::read_to_string(crate::workspace().join("docs/upstreams.md")).expect("docs/upstreams.md");
        let table = floors_table();
        assert!(doc.contains(&table), "docs/upstreams.md must hold this table (devtool::round_trips::floors_table):\n{table}");
    }
}
