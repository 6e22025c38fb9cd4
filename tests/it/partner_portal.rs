//! Rows 8, 9, 11–16 end to end: platform reports, a partner's users, and
//! the partner portal (team, remove, tenants with health, activity, MRR,
//! reports). The demo world is extended per test with northwind tenants
//! covering every branch (all cycles, a half-way yearly amount, a custom
//! `perSeatAmount: 0`, every status, each seat band, provisioning
//! penalties, a UTC month boundary, no `createdAt`), a partner without
//! tenants and an inactive staff member. Expected values are computed here
//! from the raw collections with the seed's own loops, not by the code
//! under test.

use std::collections::BTreeMap;

use e2e::*;
use emulators::data_api::ejson::{decode, to_relaxed};
use emulators::demo::{self, Partner};
use emulators::faults::{Fault, FaultRule};
use serde_json::{json, Value};

const EASTWIND: Partner = Partner { id: "65c000000000000000000003", slug: "eastwind", name: "Eastwind (no tenants)" };
const EAST_ADMIN: demo::User = demo::User {
    id: "65a0000000000000000000e1",
    sub: "demo-sub-erin-east",
    pk: 901,
    email: "erin@eastwind.test",
    name: "Erin East",
    role: "admin",
    platform_admin: false,
    partner: Some(EASTWIND),
    partner_tenant_access: &[],
    tenants: &[],
    active: true,
    stalwart_account: None,
    created_day: 3,
};
const INACTIVE_STAFF: demo::User = demo::User {
    id: "65a0000000000000000000e2",
    sub: "demo-sub-otto-inactive",
    pk: 902,
    email: "otto@northwind.test",
    name: "Otto Inactive",
    role: "owner",
    platform_admin: false,
    partner: Some(demo::NORTHWIND),
    partner_tenant_access: &[],
    tenants: &[],
    active: false,
    stalwart_account: None,
    created_day: 1,
};
const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn ms_date(ms: i64) -> Value {
    json!({"$date": {"$numberLong": ms.to_string()}})
}

/// Relaxed EJSON of a stored document (ISO dates, plain numbers).
fn relaxed(v: &Value) -> Value {
    to_relaxed(&decode(v.clone()).unwrap())
}

fn num(v: &Value) -> i64 {
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)).unwrap_or(0)
}

fn hex(v: &Value) -> String {
    v["$oid"].as_str().map(str::to_owned).unwrap_or_default()
}

/// The extension of the demo world described at the top.
fn extend(env: &Env) {
    let db = env.db();
    let nw = oid(demo::NORTHWIND.id);
    let now = now_ms();
    db.insert(
        "dezky",
        "partners",
        json!({"_id": oid(EASTWIND.id), "slug": EASTWIND.slug, "name": EASTWIND.name, "status": "active", "marginPct": 12.5}),
    );
    let tenants = [
        // id, slug, status, seats, provisioning, createdAt
        (
            "65b100000000000000000001",
            "nw-monthly",
            "active",
            4,
            json!({"authentik": "ok", "stalwart": "ok", "ocis": "ok"}),
            Some(json!({"$date": "2025-12-31T23:30:00Z"})),
        ),
        (
            "65b100000000000000000002",
            "nw-quarterly",
            "suspended",
            2,
            json!({"authentik": "ok", "stalwart": "error", "ocis": "ok"}),
            Some(json!({"$date": "2026-01-01T00:00:00Z"})),
        ),
        ("65b100000000000000000003", "nw-yearly", "pending", 0, json!({"authentik": "error", "stalwart": "ok", "ocis": "pending"}), None),
        (
            "65b100000000000000000004",
            "nw-custom",
            "suspended",
            10,
            json!({"authentik": "error", "stalwart": "error", "ocis": "error"}),
            Some(json!({"$date": "2025-12-01T00:00:00Z"})),
        ),
        ("65b100000000000000000005", "nw-full", "active", 3, json!({"authentik": "ok"}), Some(json!({"$date": "2026-01-01T00:00:00Z"}))),
    ];
    for (id, slug, status, seats, ps, created) in tenants {
        let mut t = json!({"_id": oid(id), "slug": slug, "name": format!("Tenant {slug}"), "status": status, "partnerId": nw.clone(), "seats": seats, "provisioningStatus": ps});
        if let Some(c) = created {
            t["createdAt"] = c;
        }
        db.insert("dezky", "tenants", t);
    }
    let subs = [
        // id, tenant, plan, cycle, currency, seats, perSeatAmount, status
        ("65e100000000000000000001", "65b100000000000000000001", "pro", "monthly", "DKK", 4, json!(999), "active"),
        ("65e100000000000000000002", "65b100000000000000000002", "mvp", "quarterly", "EUR", 2, json!(1000), "active"),
        // 30 a year: 2.5 a month, 3 with Math.round (2 with $round).
        ("65e100000000000000000003", "65b100000000000000000003", "mvp", "yearly", "USD", 1, json!(30), "active"),
        ("65e100000000000000000004", "65b100000000000000000004", "enterprise", "monthly", "DKK", 10, json!(0), "active"),
        ("65e100000000000000000005", "65b100000000000000000005", "pro", "yearly", "DKK", 3, json!(12000), "active"),
        ("65e100000000000000000006", "65b100000000000000000005", "pro", "monthly", "DKK", 3, json!(99999), "cancelled"),
        // 5000 a month, as globex's older subscription: a tie on the amount.
        ("65e100000000000000000007", "65b100000000000000000001", "mvp", "monthly", "DKK", 1, json!(5000), "active"),
    ];
    for (id, tenant, plan, cycle, currency, seats, amount, status) in subs {
        db.insert(
            "dezky",
            "subscriptions",
            json!({"_id": oid(id), "tenantId": oid(tenant), "plan": plan, "cycle": cycle, "currency": currency,
            "seats": seats, "perSeatAmount": amount, "status": status}),
        );
    }
    let users = [
        // tenant, active, created (ms)
        ("65b100000000000000000001", true, now - 2 * DAY_MS),
        ("65b100000000000000000001", false, now - 2 * DAY_MS),
        ("65b100000000000000000002", true, now - 90 * DAY_MS),
        ("65b100000000000000000002", true, now - 90 * DAY_MS),
        ("65b100000000000000000002", true, now - 90 * DAY_MS),
        ("65b100000000000000000005", true, now - 40 * DAY_MS),
        ("65b100000000000000000005", true, now - 5 * DAY_MS),
        ("65b100000000000000000005", true, now - 400 * DAY_MS),
    ];
    for (i, (tenant, active, created)) in users.into_iter().enumerate() {
        db.insert("dezky", "users", json!({"_id": oid(&format!("65a1000000000000000000{i:02x}")), "authentikSubjectId": format!("ext-{i}"),
            "email": format!("ext{i}@x.test"), "name": "Ext", "role": "member", "active": active, "tenantIds": [oid(tenant)], "createdAt": ms_date(created)}));
    }
    for u in [EAST_ADMIN, INACTIVE_STAFF] {
        db.insert("dezky", "users", json!({"_id": oid(u.id), "authentikSubjectId": u.sub, "email": u.email, "name": u.name, "role": u.role,
            "active": u.active, "platformAdmin": false, "partnerId": oid(u.partner.unwrap().id), "tenantIds": [], "createdAt": ms_date(now - 10 * DAY_MS)}));
    }
}

/// The stored collections, relaxed.
fn coll(env: &Env, name: &str, filter: Value) -> Vec<Value> {
    env.find(name, filter).iter().map(relaxed).collect()
}

/// `normalizeToMonthly`: f64::round rounds halves away from zero, which for
/// these non-negative amounts is Math.round's halves up.
fn monthly(s: &Value) -> i64 {
    let amount = (num(&s["perSeatAmount"]) * num(&s["seats"])) as f64;
    match s["cycle"].as_str() {
        Some("monthly") => amount as i64,
        Some("quarterly") => (amount / 3.0).round() as i64,
        _ => (amount / 12.0).round() as i64,
    }
}

fn ordered_totals(rows: &[(String, i64)]) -> Value {
    let mut by: BTreeMap<String, i64> = BTreeMap::new();
    for (c, m) in rows {
        *by.entry(c.clone()).or_default() += m;
    }
    json!(["DKK", "EUR", "USD"]
        .iter()
        .filter(|c| by.contains_key(**c))
        .map(|c| json!({"currency": c, "monthlyMinor": by[*c]}))
        .collect::<Vec<_>>())
}

/// Active subscriptions of `tenants` (all when `None`), in `_id` order.
fn active_subs(env: &Env, tenants: Option<&[Value]>) -> Vec<Value> {
    let mut subs = coll(env, "subscriptions", json!({"status": "active"}));
    if let Some(ts) = tenants {
        subs.retain(|s| ts.iter().any(|t| t["_id"] == s["tenantId"]));
    }
    subs.sort_by_key(|s| s["_id"]["$oid"].as_str().unwrap().to_owned());
    subs
}

fn revenue_by_plan(subs: &[Value]) -> Value {
    let mut m: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for s in subs {
        let e = m.entry((s["plan"].as_str().unwrap().into(), s["currency"].as_str().unwrap().into())).or_default();
        e.0 += monthly(s);
        e.1 += 1;
    }
    let mut rows: Vec<_> = m.into_iter().collect();
    // Chosen tie-break: amount descending, then plan, then currency.
    rows.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
    json!(rows
        .into_iter()
        .map(|((plan, currency), (m, n))| json!({"plan": plan, "currency": currency, "monthlyMinor": m, "count": n}))
        .collect::<Vec<_>>())
}

/// The seed's `tenantHealth`, with the ratio as a double.
fn health(t: &Value, users: i64) -> (i64, &'static str) {
    let mut score = 100;
    match t["status"].as_str() {
        Some("pending") => score -= 15,
        Some("suspended") | Some("deleted") => score -= 60,
        _ => {}
    }
    let seats = num(&t["seats"]);
    if seats > 0 {
        let u = users as f64 / seats as f64;
        if u < 0.25 {
            score -= 25
        } else if u < 0.5 {
            score -= 10
        } else if u > 1.0 {
            score -= 5
        }
    }
    for k in ["authentik", "stalwart", "ocis"] {
        match t["provisioningStatus"][k].as_str() {
            Some("error") => score -= 10,
            Some("pending") => score -= 5,
            _ => {}
        }
    }
    let score = score.clamp(0, 100);
    (
        score,
        if score >= 80 {
            "healthy"
        } else if score >= 60 {
            "watch"
        } else {
            "at-risk"
        },
    )
}

fn user_counts(env: &Env, t: &Value) -> (i64, i64) {
    let since = now_ms() - 30 * DAY_MS;
    let users: Vec<Value> = coll(env, "users", json!({"active": true}))
        .into_iter()
        .filter(|u| u["tenantIds"].as_array().is_some_and(|a| a.contains(&t["_id"])))
        .collect();
    let new = users.iter().filter(|u| u["createdAt"]["$date"].as_str().is_some_and(|d| iso_ms(d) >= since)).count();
    (users.len() as i64, new as i64)
}

/// Milliseconds of an ISO instant, via the shared crate's parser (not
/// the code under test: it only parses).
fn iso_ms(s: &str) -> i64 {
    shared::ejson::DateTime::parse_rfc3339(s).unwrap().millis()
}

fn js_round(x: f64) -> i64 {
    (x + 0.5).floor() as i64
}

/// A fresh extended world and `GET path`'s `200` answer.
async fn answer(path: &str, user: &demo::User) -> (Env, Value) {
    let env = Env::start().await;
    extend(&env);
    let r = env.get(path, user).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    (env, v)
}

fn northwind_tenants(env: &Env) -> Vec<Value> {
    coll(env, "tenants", json!({"partnerId": oid(demo::NORTHWIND.id)}))
}

/// Totals of subscriptions per currency, DKK, EUR, USD.
fn subscription_totals(subs: &[Value]) -> Value {
    ordered_totals(&subs.iter().map(|s| (s["currency"].as_str().unwrap().to_owned(), monthly(s))).collect::<Vec<_>>())
}

/// The 10 largest subscriptions; a stable sort over subscriptions in `_id`
/// order, so ties keep the older first.
fn top10(subs: &[Value]) -> Vec<&Value> {
    let mut top: Vec<&Value> = subs.iter().collect();
    top.sort_by_key(|s| std::cmp::Reverse(monthly(s)));
    top.truncate(10);
    top
}

/// Newest `createdAt` first (none last), `_id` descending on ties.
fn newest_first(docs: &mut [Value]) {
    docs.sort_by(|a, b| {
        let k = |d: &Value| (d["createdAt"]["$date"].as_str().map(iso_ms), d["_id"]["$oid"].as_str().unwrap().to_owned());
        k(b).cmp(&k(a))
    });
}

#[tokio::test]
async fn partner_mrr_per_subscription_and_currency() {
    let (env, got) = answer("/users/me/partner/mrr", &NORTHWIND_OWNER).await;
    let tenants = northwind_tenants(&env);
    let subs = active_subs(&env, Some(&tenants));
    let breakdown: Vec<Value> = subs
        .iter()
        .map(|s| {
            let t = tenants.iter().find(|t| t["_id"] == s["tenantId"]).unwrap();
            json!({"tenantId": hex(&t["_id"]), "tenantSlug": t["slug"], "tenantName": t["name"], "plan": s["plan"], "cycle": s["cycle"],
                "currency": s["currency"], "seats": num(&s["seats"]), "monthlyMinor": monthly(s), "custom": num(&s["perSeatAmount"]) == 0})
        })
        .collect();
    assert_eq!(got["breakdown"], json!(breakdown));
    assert_eq!(got["totals"], subscription_totals(&subs));
    // The traps, literally: half-way yearly is 3 (not $round's 2), the
    // quarterly 2000/3 is 667, custom is 0 and flagged, cancelled is out.
    let row = |slug: &str| got["breakdown"].as_array().unwrap().iter().filter(|r| r["tenantSlug"] == slug).cloned().collect::<Vec<_>>();
    assert_eq!(row("nw-yearly")[0]["monthlyMinor"], 3);
    assert_eq!(row("nw-quarterly")[0]["monthlyMinor"], 667);
    assert_eq!((row("nw-custom")[0]["monthlyMinor"].clone(), row("nw-custom")[0]["custom"].clone()), (json!(0), json!(true)));
    assert_eq!(row("nw-full").len(), 1);
    assert_eq!(
        got["totals"],
        json!([{"currency": "DKK", "monthlyMinor": 75000 + 3996 + 5000 + 3000}, {"currency": "EUR", "monthlyMinor": 5000 + 667}, {"currency": "USD", "monthlyMinor": 3}])
    );
    // A partner without tenants: empty, not an error.
    let east = env.get("/users/me/partner/mrr", &EAST_ADMIN).await;
    assert_eq!((east.status, east.json()), (200, json!({"totals": [], "breakdown": []})));
}

#[tokio::test]
async fn partner_tenants_with_counts_and_health_scoped_and_unscoped() {
    let (env, got) = answer("/users/me/partner/tenants", &NORTHWIND_STAFF).await;
    let mut tenants = northwind_tenants(&env);
    newest_first(&mut tenants);
    let got = got.as_array().unwrap();
    let slugs = |v: &[Value]| v.iter().map(|t| t["slug"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(slugs(got), slugs(&tenants));
    assert!(slugs(got).contains(&"umbrella".to_owned()), "deleted tenants are listed");
    for (g, t) in got.iter().zip(&tenants) {
        let (n, new) = user_counts(&env, t);
        let (score, band) = health(t, n);
        assert_eq!((g["userCount"].clone(), g["newUserCount30d"].clone()), (json!(n), json!(new)), "{}", t["slug"]);
        assert_eq!((g["healthScore"].clone(), g["healthBand"].clone()), (json!(score), json!(band)), "{}", t["slug"]);
        assert_eq!(g["status"], t["status"]);
        assert!(g.get("_userCounts").is_none());
    }
    // Every band and penalty is exercised by the fixture.
    let by = |slug: &str| got.iter().find(|t| t["slug"] == slug).unwrap().clone();
    assert_eq!((by("nw-monthly")["healthScore"].clone(), by("nw-monthly")["newUserCount30d"].clone()), (json!(90), json!(1)));
    assert_eq!(by("nw-quarterly")["healthScore"], 25);
    assert_eq!((by("nw-yearly")["healthScore"].clone(), by("nw-yearly")["healthBand"].clone()), (json!(70), json!("watch")));
    assert_eq!(by("nw-custom")["healthScore"], 0, "clamped");
    assert_eq!((by("nw-full")["healthScore"].clone(), by("nw-full")["newUserCount30d"].clone()), (json!(100), json!(1)));
    // Scoped staff see only theirs.
    let scoped = env.get("/users/me/partner/tenants", &NORTHWIND_SCOPED).await;
    assert_eq!(slugs(scoped.json().as_array().unwrap()), vec!["acme"]);
    let east = env.get("/users/me/partner/tenants", &EAST_ADMIN).await;
    assert_eq!((east.status, east.json()), (200, json!([])));
}

#[tokio::test]
async fn partner_reports_health_revenue_top_cohorts_and_margin() {
    let (env, got) = answer("/users/me/partner/reports", &NORTHWIND_STAFF).await;
    let tenants = northwind_tenants(&env);
    let live: Vec<&Value> = tenants.iter().filter(|t| t["status"] != "deleted").collect();
    let (mut healthy, mut watch, mut at_risk, mut sum) = (0, 0, 0, 0);
    for t in &live {
        let (score, band) = health(t, user_counts(&env, t).0);
        sum += score;
        match band {
            "healthy" => healthy += 1,
            "watch" => watch += 1,
            _ => at_risk += 1,
        }
    }
    let avg = js_round(sum as f64 / live.len() as f64);
    assert_eq!(got["health"], json!({"healthy": healthy, "watch": watch, "atRisk": at_risk, "total": live.len(), "avgScore": avg}));
    let subs = active_subs(&env, Some(&tenants));
    assert_eq!(got["revenueByPlan"], revenue_by_plan(&subs));
    let top: Vec<Value> = top10(&subs)
        .iter()
        .map(|s| {
            let t = tenants.iter().find(|t| t["_id"] == s["tenantId"]).unwrap();
            json!({"tenantId": hex(&t["_id"]), "tenantName": t["name"], "currency": s["currency"], "monthlyMinor": monthly(s), "custom": num(&s["perSeatAmount"]) == 0})
        })
        .collect();
    assert_eq!(got["topCustomers"], json!(top));
    let mut cohorts: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for t in &tenants {
        let Some(iso) = t["createdAt"]["$date"].as_str() else { continue };
        let e = cohorts.entry(iso[..7].to_owned()).or_default();
        e.0 += 1;
        e.1 += i64::from(t["status"] == "active");
    }
    let cohorts: Vec<Value> = cohorts
        .into_iter()
        .map(|(m, (n, r))| json!({"month": m, "total": n, "retained": r, "retentionPct": js_round(r as f64 / n as f64 * 100.0)}))
        .collect();
    assert_eq!(got["churnCohorts"], json!(cohorts));
    // 23:30 UTC on Dec 31 is December's (the month is UTC's).
    assert_eq!(got["churnCohorts"][0]["month"], "2025-12");
    assert_eq!(got["totals"], subscription_totals(&subs));
    assert_eq!(got["marginPct"], 0, "northwind has no marginPct");
    let east = env.get("/users/me/partner/reports", &EAST_ADMIN).await.json();
    assert_eq!(
        east,
        json!({"health": {"healthy": 0, "watch": 0, "atRisk": 0, "total": 0, "avgScore": 0}, "revenueByPlan": [], "topCustomers": [],
        "churnCohorts": [], "totals": [], "marginPct": 12.5})
    );
}

#[tokio::test]
async fn platform_reports_over_every_tenant_and_subscription() {
    let (env, got) = answer("/platform/reports", &OPERATOR).await;
    let tenants = coll(&env, "tenants", json!({}));
    let mut status = json!({"active": 0, "pending": 0, "suspended": 0, "deleted": 0, "total": tenants.len()});
    for t in &tenants {
        let s = t["status"].as_str().unwrap();
        status[s] = json!(status[s].as_i64().unwrap() + 1);
    }
    assert_eq!(got["tenants"], status);
    let subs = active_subs(&env, None);
    assert_eq!(got["revenueByPlan"], revenue_by_plan(&subs));
    assert_eq!(got["totals"], subscription_totals(&subs));
    let top: Vec<Value> = top10(&subs)
        .iter()
        .map(|s| {
            let name = tenants.iter().find(|t| t["_id"] == s["tenantId"]).map(|t| t["name"].clone()).unwrap_or(json!(hex(&s["tenantId"])));
            json!({"tenantId": hex(&s["tenantId"]), "tenantName": name, "plan": s["plan"], "currency": s["currency"], "monthlyMinor": monthly(s)})
        })
        .collect();
    assert_eq!(got["topTenants"], json!(top));
    // The tie at 5000: globex's older subscription before nw-monthly's.
    let names: Vec<&str> = got["topTenants"].as_array().unwrap().iter().map(|t| t["tenantName"].as_str().unwrap()).collect();
    let g = names.iter().position(|n| *n == "Globex GmbH").unwrap();
    assert_eq!(names[g + 1], "Tenant nw-monthly");
    let mut growth: BTreeMap<String, i64> = BTreeMap::new();
    for t in &tenants {
        if let Some(iso) = t["createdAt"]["$date"].as_str() {
            *growth.entry(iso[..7].to_owned()).or_default() += 1;
        }
    }
    assert_eq!(got["growth"], json!(growth.into_iter().map(|(m, c)| json!({"month": m, "count": c})).collect::<Vec<_>>()));
}

#[tokio::test]
async fn partner_users_list_for_platform_admins() {
    let (env, got) = answer("/partners/northwind/users", &OPERATOR).await;
    let mut want = coll(&env, "users", json!({"partnerId": oid(demo::NORTHWIND.id)}));
    newest_first(&mut want);
    let got: Vec<Value> = got.as_array().unwrap().iter().map(|u| u["authentikSubjectId"].clone()).collect();
    assert_eq!(got, want.iter().map(|u| u["authentikSubjectId"].clone()).collect::<Vec<_>>());
    assert_eq!(env.get("/partners/nowhere/users", &OPERATOR).await.status, 404);
    assert_eq!(env.get("/partners/eastwind/users", &OPERATOR).await.json().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn partner_team_with_access_and_mfa_and_authentik_failing() {
    let (env, team) = answer("/users/me/partner/users", &NORTHWIND_SCOPED).await;
    let by = |t: &Value, sub: &str| t.as_array().unwrap().iter().find(|u| u["authentikSubjectId"] == sub).unwrap().clone();
    let nora = by(&team, NORTHWIND_SCOPED.sub);
    assert_eq!((nora["accessLevel"].clone(), nora["accessCount"].clone()), (json!("scoped"), json!(1)));
    let nina = by(&team, NORTHWIND_OWNER.sub);
    assert_eq!((nina["accessLevel"].clone(), nina["accessCount"].clone()), (json!("all"), Value::Null));
    assert!(nina["mfaEnabled"].is_boolean(), "{nina}");
    // Otto has no Authentik pk: unknown, not false.
    assert_eq!(by(&team, INACTIVE_STAFF.sub)["mfaEnabled"], Value::Null);
    assert_eq!(team.as_array().unwrap().len(), 4);

    env.fail(&env.emu.authentik().controls, FaultRule::new("/api/v3/authenticators", Fault::Status(500)));
    let r = env.get("/users/me/partner/users", &NORTHWIND_OWNER).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json().as_array().unwrap().iter().all(|u| u["mfaEnabled"].is_null()), "{}", r.text);
}

#[tokio::test]
async fn partner_team_remove_guards_the_last_admin_and_audits() {
    let env = Env::start().await;
    extend(&env);
    let path = |sub: &str| format!("/users/me/partner/users/{sub}/remove");
    // Outside the caller's partner, or nobody: 404.
    assert_eq!(env.post(&path(SOUTHPOLE_ADMIN.sub), &NORTHWIND_OWNER, json!({})).await.status, 404);
    assert_eq!(env.post(&path("no-such-subject"), &NORTHWIND_OWNER, json!({})).await.status, 404);
    // A member may not remove: 403. Sam is southpole's only admin: 409.
    assert_eq!(env.post(&path(NORTHWIND_SCOPED.sub), &NORTHWIND_STAFF, json!({})).await.status, 403);
    assert_eq!(env.post(&path(SOUTHPOLE_ADMIN.sub), &SOUTHPOLE_ADMIN, json!({})).await.status, 409);
    let r = env.post(&path(NORTHWIND_SCOPED.sub), &NORTHWIND_OWNER, json!({})).await;
    assert_eq!((r.status, r.json()), (200, json!({"removed": true})), "{}", r.text);
    let nora = relaxed(&env.find("users", json!({"authentikSubjectId": NORTHWIND_SCOPED.sub}))[0]);
    assert!(nora.get("partnerId").is_none() && nora.get("partnerTenantAccess").is_none(), "{nora}");
    let group_members = env.authentik().members_of(demo::PARTNER_STAFF_GROUP_UUID);
    assert!(!group_members.contains(&NORTHWIND_SCOPED.pk), "{group_members:?}");
    let audit = coll(&env, "auditevents", json!({"action": "partner.user_removed"}));
    assert_eq!(audit.len(), 1);
    assert_eq!((audit[0]["resourceId"].clone(), audit[0]["partnerSlug"].clone()), (json!(NORTHWIND_SCOPED.sub), json!("northwind")));
    assert_eq!(audit[0]["metadata"], json!({"partnerId": demo::NORTHWIND.id}));
    assert_eq!(audit[0]["actor"], json!({"userId": NORTHWIND_OWNER.id, "email": NORTHWIND_OWNER.email}));
    // Removed: no longer partner staff, so the portal is a 403.
    assert_eq!(env.get("/users/me/partner/users", &NORTHWIND_SCOPED).await.status, 403);
}

#[tokio::test]
async fn partner_activity_newest_first_with_limit_and_before() {
    let env = Env::start().await;
    extend(&env);
    let t0 = demo::CREATED_AT_MS + 100 * DAY_MS;
    let events = [
        ("65ab00000000000000000001", json!({"partnerSlug": "northwind"}), t0),
        ("65ab00000000000000000003", json!({"tenantSlug": "nw-monthly"}), t0),
        ("65ab00000000000000000002", json!({"tenantSlug": "umbrella"}), t0 + 1000),
        ("65ab00000000000000000004", json!({"tenantSlug": "initech"}), t0 + 2000),
        ("65ab00000000000000000005", json!({"partnerSlug": "southpole"}), t0 + 3000),
    ];
    for (id, extra, at) in events {
        let mut e = json!({"_id": oid(id), "action": "x", "resourceType": "user", "resourceId": "r", "resourceName": "n", "createdAt": ms_date(at)});
        e.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        env.db().insert("dezky", "auditevents", e);
    }
    let ids = |r: &Resp| r.json().as_array().unwrap().iter().map(|e| e["_id"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    let r = env.get("/users/me/partner/activity", &NORTHWIND_OWNER).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Newest first, _id descending on the tie at t0; the demo's own two
    // northwind events (acme's and the partner invite) are older.
    assert_eq!(
        ids(&r),
        vec![
            "65ab00000000000000000002",
            "65ab00000000000000000003",
            "65ab00000000000000000001",
            "65aa00000000000000000001",
            "65aa00000000000000000002"
        ]
    );
    let r = env.get("/users/me/partner/activity?limit=2", &NORTHWIND_OWNER).await;
    assert_eq!(ids(&r), vec!["65ab00000000000000000002", "65ab00000000000000000003"]);
    let before = shared::ejson::DateTime(t0 + 1000).to_iso().replace('Z', "+00:00");
    let r = env.get(&format!("/users/me/partner/activity?before={}", before.replace('+', "%2B")), &NORTHWIND_OWNER).await;
    assert_eq!(ids(&r)[..2], ["65ab00000000000000000003", "65ab00000000000000000001"]);
    for bad in
        ["limit=0", "limit=201", "limit=abc", "limit=-1", "before=2026-01-01", "before=2026-01-01T00:00:00", "before=yesterday", "page=2"]
    {
        assert_eq!(env.get(&format!("/users/me/partner/activity?{bad}"), &NORTHWIND_OWNER).await.status, 400, "{bad}");
    }
    assert_eq!(env.get("/users/me/partner/activity?limit=200", &NORTHWIND_OWNER).await.status, 200);
}

/// Rows 8, 9, 11–16 for every demo caller, plus a partner admin without
/// tenants and an inactive staff member.
#[tokio::test]
async fn authorisation_table() {
    let env = Env::start().await;
    extend(&env);
    let mut callers: Vec<demo::User> = USERS.to_vec();
    callers.extend([EAST_ADMIN, INACTIVE_STAFF]);
    let reads = [
        "/users/me/partner/users",
        "/users/me/partner/tenants",
        "/users/me/partner/activity",
        "/users/me/partner/mrr",
        "/users/me/partner/reports",
    ];
    for u in &callers {
        let p = u.platform_admin && u.active;
        let staff = u.partner.is_some() && u.active;
        let admin = staff && matches!(u.role, "owner" | "admin");
        let unscoped = staff && u.partner_tenant_access.is_empty();
        let want = |ok: bool| if ok { 200 } else { 403 };
        assert_eq!(env.get("/platform/reports", u).await.status, want(p), "row 8 as {}", u.name);
        assert_eq!(env.get("/partners/northwind/users", u).await.status, want(p), "row 9 as {}", u.name);
        assert_eq!(env.get("/partners/nowhere/users", u).await.status, if p { 404 } else { 403 }, "row 9 unknown as {}", u.name);
        for (path, ok) in reads.iter().zip([staff, staff, admin || unscoped, admin || unscoped, admin || unscoped]) {
            assert_eq!(env.get(path, u).await.status, want(ok), "{path} as {}", u.name);
        }
        // Row 12 on a subject of no partner: 403 without a partner, else 404.
        let r = env.post(&format!("/users/me/partner/users/{}/remove", ACME_OWNER.sub), u, json!({})).await;
        assert_eq!(r.status, if u.partner.is_some() { 404 } else { 403 }, "row 12 as {}", u.name);
    }
}
