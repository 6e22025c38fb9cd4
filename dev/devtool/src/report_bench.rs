//! The report routes at scale (`make bench`): a generated world of 10,000
//! tenants under 50 partners (one holding 2,000), 100,000 users and
//! 10,000 active subscriptions, written as the Data API emulator's data
//! directory (inserting 120,000 documents one by one through the API would
//! take longer than the measurement), then p50 latency, upstream calls and
//! sequential round trips of rows 8, 13, 15 and 16 through the dev host,
//! and the largest wasm linear memory one request of each route reached
//! (measured by the dev host's resource limiter).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dev_host::App;
use emulators::demo::{self, Partner};
use emulators::faults::{Fault, FaultRule};
use emulators::{Emulators, Options};
use serde_json::{json, Value};

/// The sizes of the generated world.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub partners: usize,
    pub tenants: usize,
    /// Tenants of the first ("big") partner.
    pub big_partner_tenants: usize,
    pub users: usize,
    pub subscriptions: usize,
}

/// The issue's figures.
pub const ISSUE: Scale = Scale { partners: 50, tenants: 10_000, big_partner_tenants: 2_000, users: 100_000, subscriptions: 10_000 };

pub const BIG: Partner = Partner { id: "66c000000000000000000000", slug: "bench-p0", name: "Bench Partner 0" };
/// The big partner's owner: the caller of the partner routes.
pub const BIG_OWNER: demo::User = demo::User {
    id: "66a0000000000000000fffff",
    sub: "bench-sub-big-owner",
    pk: 990_001,
    email: "owner@bench-p0.test",
    name: "Big Owner",
    role: "owner",
    platform_admin: false,
    partner: Some(BIG),
    partner_tenant_access: &[],
    tenants: &[],
    active: true,
    stalwart_account: None,
    created_day: 0,
};

/// A small deterministic generator (xorshift64*): the same world every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn oid(prefix: &str, n: usize) -> Value {
    json!({ "$oid": format!("{prefix}{n:020x}") })
}

fn date(ms: i64) -> Value {
    json!({ "$date": { "$numberLong": ms.to_string() } })
}

/// The demo collections plus the generated world, by collection.
pub fn world(scale: Scale, now_ms: i64) -> Vec<(&'static str, Vec<Value>)> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut colls = demo::collections();
    let day = 86_400_000i64;
    let mut partners = vec![json!({"_id": {"$oid": BIG.id}, "slug": BIG.slug, "name": BIG.name, "status": "active", "marginPct": 20})];
    for p in 1..scale.partners {
        partners.push(json!({"_id": oid("66c0", p), "slug": format!("bench-p{p}"), "name": format!("Bench Partner {p}"), "status": "active", "marginPct": 15}));
    }
    let partner_of = |t: usize| -> Value {
        if t < scale.big_partner_tenants {
            json!({"$oid": BIG.id})
        } else {
            oid("66c0", 1 + (t - scale.big_partner_tenants) % (scale.partners - 1))
        }
    };
    let statuses = ["active", "active", "active", "active", "active", "active", "pending", "suspended", "deleted"];
    let provisioning = ["ok", "ok", "ok", "ok", "ok", "ok", "ok", "error", "pending"];
    let mut tenants = Vec::with_capacity(scale.tenants);
    for t in 0..scale.tenants {
        let mut doc = json!({
            "_id": oid("66b0", t), "slug": format!("bench-t{t}"), "name": format!("Bench Tenant {t}"), "status": rng.pick(&statuses),
            "partnerId": partner_of(t), "seats": 1 + rng.below(30),
            "provisioningStatus": {"authentik": rng.pick(&provisioning), "stalwart": rng.pick(&provisioning), "ocis": rng.pick(&provisioning)},
        });
        // Two years of signups; one in fifty without createdAt.
        if rng.below(50) != 0 {
            doc["createdAt"] = date(now_ms - rng.below(730) as i64 * day);
        }
        tenants.push(doc);
    }
    let mut users = Vec::with_capacity(scale.users + 1);
    for u in 0..scale.users {
        let t = rng.below(scale.tenants as u64) as usize;
        users.push(json!({
            "_id": oid("66a0", u), "authentikSubjectId": format!("bench-sub-{u}"), "email": format!("u{u}@bench-t{t}.test"), "name": format!("User {u}"),
            "role": "member", "active": rng.below(10) != 0, "platformAdmin": false, "tenantIds": [oid("66b0", t)],
            "tenantRoles": { format!("{:024x}", 0x66b0u128 << 80 | t as u128): "member" },
            "createdAt": date(now_ms - rng.below(120) as i64 * day),
        }));
    }
    users
        .push(json!({"_id": {"$oid": BIG_OWNER.id}, "authentikSubjectId": BIG_OWNER.sub, "email": BIG_OWNER.email, "name": BIG_OWNER.name,
        "role": "owner", "active": true, "platformAdmin": false, "partnerId": {"$oid": BIG.id}, "tenantIds": []}));
    let mut subscriptions = Vec::with_capacity(scale.subscriptions);
    for s in 0..scale.subscriptions {
        let t = s % scale.tenants;
        subscriptions.push(json!({
            "_id": oid("66e0", s), "tenantId": oid("66b0", t), "plan": rng.pick(&["mvp", "pro", "enterprise"]),
            "cycle": rng.pick(&["monthly", "quarterly", "yearly"]), "currency": rng.pick(&["DKK", "EUR", "USD"]),
            "seats": 1 + rng.below(30), "perSeatAmount": if rng.below(20) == 0 { 0 } else { 100 * (1 + rng.below(120)) },
            "status": "active",
        }));
    }
    for (name, docs) in colls.iter_mut() {
        match *name {
            "partners" => docs.append(&mut partners),
            "tenants" => docs.append(&mut tenants),
            "users" => docs.append(&mut users),
            "subscriptions" => docs.append(&mut subscriptions),
            _ => {}
        }
    }
    colls
}

/// Writes `world` as a Data API data directory (`<dir>/dezky/<coll>.json`).
pub fn write_data_dir(dir: &Path, colls: &[(&str, Vec<Value>)]) -> anyhow::Result<()> {
    let db = dir.join("dezky");
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(&db)?;
    for (name, docs) in colls {
        let mut text = String::from("[\n");
        for (i, d) in docs.iter().enumerate() {
            let _ = writeln!(text, "{}{}", d, if i + 1 < docs.len() { "," } else { "" });
        }
        text.push_str("]\n");
        std::fs::write(db.join(format!("{name}.json")), text)?;
    }
    Ok(())
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> (u16, usize, Duration) {
    let start = Instant::now();
    let resp = client.get(url).bearer_auth(token).send().await.expect("the host answers");
    let status = resp.status().as_u16();
    let len = resp.bytes().await.map(|b| b.len()).unwrap_or(0);
    (status, len, start.elapsed())
}

fn p50(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Generates the world, serves the app on it and prints the table.
pub async fn run(app: Arc<App>, scale: Scale) -> anyhow::Result<()> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let start = Instant::now();
    let dir = crate::workspace().join("target/bench-reports-data");
    write_data_dir(&dir, &world(scale, now))?;
    let emu: Emulators = emulators::start(Options { data_dir: Some(dir), seed: false, ..Options::default() }).await?;
    println!(
        "\n== Reports at scale: {} tenants, {} partners ({} under {}), {} users, {} active subscriptions (generated and loaded in {:.1} s)",
        scale.tenants,
        scale.partners,
        scale.big_partner_tenants,
        BIG.slug,
        scale.users,
        scale.subscriptions,
        start.elapsed().as_secs_f64()
    );
    let server = crate::serve_app(app, &emu, ([127, 0, 0, 1], 0).into(), false).await?;
    server.log_requests(false);
    let base = server.url();
    let client = reqwest::Client::new();
    let (operator, owner) = (emu.issuer.token_for(&demo::OPERATOR), emu.issuer.token_for(&BIG_OWNER));
    let controls = [("data api", &emu.data_api().controls), ("authentik", &emu.authentik().controls)];
    println!("| route | p50 | response | upstream calls | sequential round trips | peak wasm memory |");
    println!("|---|---|---|---|---|---|");
    for (route, token) in [
        ("/platform/reports", &operator),
        ("/users/me/partner/reports", &owner),
        ("/users/me/partner/mrr", &owner),
        ("/users/me/partner/tenants", &owner),
    ] {
        let url = format!("{base}{route}");
        crate::take_peak_memory(server.memory_peaks());
        let (status, len, _) = get(&client, &url, token).await;
        assert_eq!(status, 200, "{route}");
        let mut times = Vec::new();
        for _ in 0..9 {
            times.push(get(&client, &url, token).await.2);
        }
        let plain = p50(times);
        for (_, c) in &controls {
            c.log.clear();
        }
        get(&client, &url, token).await;
        let calls: Vec<String> =
            controls.iter().map(|(n, c)| (n, c.log.all().len())).filter(|(_, k)| *k > 0).map(|(n, k)| format!("{n} {k}")).collect();
        // Sequential round trips: the extra latency when every upstream call
        // takes 200 ms longer, in units of 200 ms.
        for (_, c) in &controls {
            c.faults.add(FaultRule::new("/", Fault::DelayMs(200)));
        }
        let mut slow = Vec::new();
        for _ in 0..3 {
            slow.push(get(&client, &url, token).await.2);
        }
        for (_, c) in &controls {
            c.faults.clear();
        }
        let trips = (p50(slow).as_secs_f64() - plain.as_secs_f64()) / 0.2;
        println!(
            "| GET {route} | {:.0} ms | {:.1} KiB | {} | {trips:.1} | {} |",
            plain.as_secs_f64() * 1000.0,
            len as f64 / 1024.0,
            calls.join(", "),
            crate::take_peak_memory(server.memory_peaks())
        );
    }
    println!("(goals: p50 ≤ 500 ms, peak wasm linear memory ≤ 32 MiB; the token check reads the caller's User: 1 of the calls and trips)");
    server.shutdown().await;
    emu.shutdown().await;
    Ok(())
}
