//! What rows 24–30 cost: upstream calls per route, and sequential round
//! trips on the critical path (every upstream call delayed 100 ms; the
//! extra latency over the undelayed call, in delays). Held to the figures
//! each operation's doc comment gives.

mod members_ii;

use std::time::{Duration, Instant};

use e2e::*;
use members_ii::*;
use serde_json::{json, Value};

const DELAY_MS: u64 = 100;

struct Op {
    name: &'static str,
    method: &'static str,
    path: String,
    body: Option<Value>,
    status: u16,
    round_trips: f64,
}

fn ops() -> Vec<Op> {
    let m = ACME_MEMBER.id;
    let op = |name, method, path: String, body: Option<Value>, status, round_trips| Op { name, method, path, body, status, round_trips };
    vec![
        op("members-update", "POST", member_path("acme", m, "update"), Some(json!({"name": "Mia M", "phone": "1"})), 200, 3.0),
        op("members-update (demote)", "POST", member_path("acme", ACME_ADMIN.id, "update"), Some(json!({"role": "member"})), 200, 3.0),
        op("members-change-email", "POST", member_path("acme", ACME_INACTIVE_ADMIN.id, "change-email"), Some(json!({"email": "ivan@home.test"})), 200, 4.0),
        op("aliases-list", "GET", member_path("acme", m, "aliases"), None, 200, 2.0),
        op("aliases-add", "POST", member_path("acme", m, "aliases/add"), Some(json!({"localPart": "sales", "domain": "acme.test"})), 200, 3.0),
        op("aliases-remove", "POST", member_path("acme", m, "aliases/remove"), Some(json!({"address": "hello@acme.test"})), 200, 3.0),
        op("mailbox-create", "POST", member_path("acme", ACME_INACTIVE_ADMIN.id, "mailbox/create"), Some(json!({"localPart": "ivan.i"})), 201, 3.0),
        op("ownership-transfer", "POST", "/tenants/acme/ownership/transfer".into(), Some(json!({"userId": ACME_ADMIN.id})), 200, 4.0),
    ]
}

fn controls(env: &Env) -> [(&'static str, &emulators::faults::Controls); 4] {
    [("data", &env.emu.data_api().controls), ("authentik", &env.emu.authentik().controls), ("stalwart", &env.emu.stalwart().controls), ("ocis", &env.emu.ocis().controls)]
}

/// A world where Mia has the alias `hello@acme.test` to remove.
async fn world() -> Env {
    let env = Env::start().await;
    env.stalwart().update_account("m3", |a| {
        a.aliases.insert(0, emulators::stalwart::StAlias { name: "hello".into(), domain_id: "b".into(), enabled: true, description: None });
    });
    // Warm the compiled components' first instantiation out of the timing.
    let _ = env.get("/openapi.json", &OPERATOR).await;
    env
}

async fn timed(env: &Env, op: &Op) -> Duration {
    let start = Instant::now();
    let r = env.call(op.method, &op.path, Some(&env.token(&ACME_OWNER)), op.body.as_ref().map(|b| b.to_string()).as_deref()).await;
    let t = start.elapsed();
    assert_eq!(r.status, op.status, "{}: {}", op.name, r.text);
    t
}

#[tokio::test]
async fn upstream_calls_and_sequential_round_trips() {
    let mut table = Vec::new();
    for op in ops() {
        let env = world().await;
        // The token is verified once per request; warm this caller's path.
        for (_, c) in controls(&env) {
            c.log.clear();
        }
        let plain = timed(&env, &op).await;
        let calls: Vec<String> = controls(&env).iter().map(|(n, c)| (n, c.log.all().len())).filter(|(_, k)| *k > 0).map(|(n, k)| format!("{n} {k}")).collect();

        let env = world().await;
        for (_, c) in controls(&env) {
            c.faults.add(FaultRule::new("/", Fault::DelayMs(DELAY_MS)));
        }
        let slow = timed(&env, &op).await;
        let trips = (slow.as_secs_f64() - plain.as_secs_f64()) / (DELAY_MS as f64 / 1000.0);
        println!("{:<26} {:<40} {trips:.2} sequential round trips", op.name, calls.join(", "));
        table.push((op.name, trips, op.round_trips));
    }
    for (name, trips, expected) in table {
        assert!(trips < expected + 0.6, "{name}: {trips:.2} sequential round trips, expected {expected}");
    }
}
