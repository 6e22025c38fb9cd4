//! A randomized soak with an invariant checker (issue 19, point 4).
//!
//! Several clients send random sequences of every mutating route, as random
//! callers with mostly valid random bodies (now and then two requests at
//! once, aimed at the races the invariants are about), while every upstream
//! answers after a random delay and now and then fails (an error status, a
//! dropped connection, or a wait past the app's time limit): the emulators'
//! seeded [`Chaos`]. Afterwards, with chaos off, the emulators' state is
//! checked: no orphan accounts, provisioning that says `ok` is true, the
//! partner and workspace role invariants, one audit event per successful
//! mutation, no `500` (nor any undocumented status), no trap.
//!
//! Seeded: one fixed seed by default (`make test`), `SOAK_SEED=random` for
//! a fresh one; `SOAK_SEED=<n>` replays a run's choices (the interleaving of
//! concurrent requests, and so which request meets which fault, can still
//! differ). `SOAK_SECONDS` bounds the load (default 60 s on the dev host,
//! 30 s on a real Spin); `SOAK_CLIENTS` sets the number of clients (4).
//!
//!     SOAK_SEED=… cargo test -p e2e --test it soak:: -- --nocapture

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::*;
use emulators::faults::{Chaos, ChaosHit};
use emulators::issuer::Signing;
use serde_json::{json, Value};

/// The app's `upstream_timeout_ms` in the harness; a chaos timeout waits longer.
const APP_TIMEOUT_MS: u64 = 1500;
const CHAOS_TIMEOUT_MS: u64 = 2000;
const _: () = assert!(CHAOS_TIMEOUT_MS > APP_TIMEOUT_MS);
/// Random latency per upstream call, and how often a call fails.
const DELAY_MAX_MS: u64 = 50;
const FAULT_PER_MILLE: u32 = 40;

// ---------------------------------------------------------------------------
// A small seeded generator (splitmix64): the test crate has no `rand`, and
// this one is stable across versions, so a seed replays forever.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn weighted<'a, T>(&mut self, xs: &'a [(T, u32)]) -> &'a T {
        let total: u32 = xs.iter().map(|(_, w)| w).sum();
        let mut at = (self.next() % u64::from(total)) as u32;
        for (x, w) in xs {
            if at < *w {
                return x;
            }
            at -= w;
        }
        unreachable!()
    }
}

// ---------------------------------------------------------------------------
// Reading the world (straight from the emulators, at generation time).

/// The hex of an ObjectId as the Data API stores it (`{"$oid": …}`).
fn hex(v: &Value) -> String {
    v.get("$oid").and_then(Value::as_str).or(v.as_str()).unwrap_or_default().to_owned()
}

fn s<'a>(doc: &'a Value, key: &str) -> &'a str {
    doc.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn users(env: &Env) -> Vec<Value> {
    let docs = env.find("users", json!({}));
    SUBJECTS.lock().unwrap().extend(docs.iter().map(|d| (hex(&d["_id"]), s(d, "authentikSubjectId").to_owned())));
    docs
}

fn members_of(env: &Env, t: &Tenant) -> Vec<Value> {
    users(env).into_iter().filter(|u| holds(&u["tenantIds"], t.id)).collect()
}

fn holds(ids: &Value, id: &str) -> bool {
    ids.as_array().is_some_and(|a| a.iter().any(|x| hex(x) == id))
}

/// A user's role in a tenant: `tenantRoles[t]`, else the legacy `role`.
fn role_in(u: &Value, t: &str) -> String {
    u["tenantRoles"].get(t).and_then(Value::as_str).unwrap_or(s(u, "role")).to_owned()
}

fn staff_of(env: &Env, p: &Partner) -> Vec<Value> {
    users(env).into_iter().filter(|u| hex(&u["partnerId"]) == p.id).collect()
}

fn domains_of(t: &Tenant) -> Vec<&'static str> {
    DOMAINS.iter().filter(|d| d.tenant.id == t.id).map(|d| d.domain).collect()
}

// ---------------------------------------------------------------------------
// Requests

/// Who sends a request: a demo user, or a person the soak created (signed
/// for as that person, with no groups: roles come from the document).
#[derive(Clone, Debug)]
enum Caller {
    Demo(User),
    Doc { sub: String, email: String },
}

impl Caller {
    fn of(doc: &Value) -> Caller {
        match USERS.iter().find(|u| u.sub == s(doc, "authentikSubjectId")) {
            Some(u) => Caller::Demo(*u),
            None => Caller::Doc { sub: s(doc, "authentikSubjectId").to_owned(), email: s(doc, "email").to_owned() },
        }
    }
    fn token(&self, env: &Env) -> String {
        match self {
            Caller::Demo(u) => env.token(u),
            Caller::Doc { sub, email } => {
                env.token_with(&ACME_MEMBER, json!({"sub": sub, "email": email, "name": "Soak Person", "groups": []}), Signing::Rs256)
            }
        }
    }
    fn name(&self) -> &str {
        match self {
            Caller::Demo(u) => u.email,
            Caller::Doc { email, .. } => email,
        }
    }
}

#[derive(Clone, Debug)]
struct Req {
    route: &'static str,
    caller: Caller,
    path: String,
    /// `None`: no body at all.
    body: Option<String>,
}

impl std::fmt::Display for Req {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] POST {} as {} body {}", self.route, self.path, self.caller.name(), self.body.as_deref().unwrap_or("-"))
    }
}

/// One answer, with the request that got it.
#[derive(Clone, Debug)]
struct Answer {
    client: usize,
    req: Req,
    status: u16,
    text: String,
}

impl Answer {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text: String = self.text.chars().take(200).collect();
        write!(f, "client {}: {} -> {} {}", self.client, self.req, self.status, text)
    }
}

const LOCALS: [&str; 12] = ["ann", "bo", "cy", "dee", "eli", "fay", "gus", "hal", "ida", "jo", "kai", "lu"];

/// Mostly valid: one body in ten is spoilt (unknown field, wrong type, or
/// a required field missing), which must be a 400 and change nothing.
fn body(r: &mut Rng, mut v: Value) -> Option<String> {
    if r.chance(10) {
        let obj = v.as_object_mut().unwrap();
        match r.below(3) {
            0 => drop(obj.insert("surprise".into(), json!(1))),
            1 => {
                if let Some(k) = obj.keys().next().cloned() {
                    obj.insert(k, json!({"$ne": ""}));
                }
            }
            _ => {
                if let Some(k) = obj.keys().next().cloned() {
                    obj.remove(&k);
                }
            }
        }
    }
    Some(v.to_string())
}

fn tenant(r: &mut Rng) -> Tenant {
    *r.weighted(&[(ACME, 4), (GLOBEX, 3), (INITECH, 3), (HOOLI, 1), (UMBRELLA, 1)])
}

/// Mostly someone allowed to act on `t`, sometimes anyone (403/404 paths).
fn tenant_caller(r: &mut Rng, env: &Env, t: &Tenant) -> Caller {
    if r.chance(25) {
        return Caller::Demo(*r.pick(&USERS));
    }
    let mut strong: Vec<Caller> = vec![Caller::Demo(OPERATOR)];
    strong.extend(staff_of(env, &t.partner).iter().map(Caller::of));
    strong.extend(members_of(env, t).iter().filter(|u| matches!(role_in(u, t.id).as_str(), "owner" | "admin")).map(Caller::of));
    r.pick(&strong).clone()
}

/// A member of `t` (a tenth of the time someone who is not: a 404).
fn member(r: &mut Rng, env: &Env, t: &Tenant) -> Option<Value> {
    let members = members_of(env, t);
    if members.is_empty() || r.chance(10) {
        return users(env).get(r.below(USERS.len() + 4)).cloned();
    }
    Some(r.pick(&members).clone())
}

fn member_path(r: &mut Rng, env: &Env, t: &Tenant, verb: &str) -> (Caller, String, Option<Value>) {
    let m = member(r, env, t);
    let id = m.as_ref().map(|m| hex(&m["_id"])).unwrap_or_else(|| "65a0000000000000000000ff".into());
    (tenant_caller(r, env, t), format!("/tenants/{}/members/{id}/{verb}", t.slug), m)
}

fn some_email(r: &mut Rng, t: Option<&Tenant>) -> String {
    match r.below(4) {
        0 => r.pick(&USERS).email.to_owned(),
        1 => match t.map(domains_of).filter(|d| !d.is_empty()) {
            Some(d) => format!("{}@{}", r.pick(&LOCALS), r.pick(&d)),
            None => format!("{}@soak.test", r.pick(&LOCALS)),
        },
        _ => format!("{}@soak.test", r.pick(&LOCALS)),
    }
}

fn req(route: &'static str, caller: Caller, path: String, body: Option<String>) -> Vec<Req> {
    vec![Req { route, caller, path, body }]
}

type Gen = fn(&mut Rng, &Env) -> Vec<Req>;

/// Every mutating route (and a few races), with its weight.
static ROUTES: &[(&str, u32, Gen)] = &[
    ("members-create", 6, |r, env| {
        let t = tenant(r);
        let mut b =
            json!({"name": format!("Soak {}", r.pick(&LOCALS)), "localPart": r.pick(&LOCALS), "role": r.pick(&["admin", "member"])});
        if r.chance(30) {
            b["domain"] =
                json!(r.pick(&["acme.test", "mail.acme.test", "globex.test", "initech.test", "initech-legacy.test", "nowhere.test"]));
        }
        req("members-create", tenant_caller(r, env, &t), format!("/tenants/{}/members/create", t.slug), body(r, b))
    }),
    ("members-remove", 2, |r, env| lifecycle(r, env, "members-remove", "remove")),
    ("members-suspend", 3, |r, env| lifecycle(r, env, "members-suspend", "suspend")),
    ("members-resume", 3, |r, env| lifecycle(r, env, "members-resume", "resume")),
    ("members-logout", 3, |r, env| lifecycle(r, env, "members-logout", "logout")),
    ("members-reset-password", 3, |r, env| lifecycle(r, env, "members-reset-password", "reset-password")),
    ("members-update", 4, |r, env| {
        let t = tenant(r);
        let (caller, path, _) = member_path(r, env, &t, "update");
        let b = update_body(r);
        req("members-update", caller, path, body(r, b))
    }),
    ("members-change-email", 3, |r, env| {
        let t = tenant(r);
        let (caller, path, _) = member_path(r, env, &t, "change-email");
        let email = format!("{}{}@{}", r.pick(&LOCALS), r.below(3), r.pick(&["soak.test", "acme.test", "globex.test"]));
        req("members-change-email", caller, path, body(r, json!({"email": email})))
    }),
    ("aliases-add", 3, |r, env| {
        let t = tenant(r);
        let (caller, path, _) = member_path(r, env, &t, "aliases/add");
        let domain = domains_of(&t).first().copied().unwrap_or("acme.test");
        let b = json!({"localPart": format!("{}.alias", r.pick(&LOCALS)), "domain": domain});
        req("aliases-add", caller, path, body(r, b))
    }),
    ("aliases-remove", 2, |r, env| {
        let t = tenant(r);
        let (caller, path, m) = member_path(r, env, &t, "aliases/remove");
        let aliases = m.map(|m| env.stalwart().aliases_of(s(&m, "stalwartAccountId"))).unwrap_or_default();
        let address = if aliases.is_empty() || r.chance(20) {
            format!("{}.alias@{}", r.pick(&LOCALS), domains_of(&t).first().unwrap_or(&"x.test"))
        } else {
            r.pick(&aliases).clone()
        };
        req("aliases-remove", caller, path, body(r, json!({"address": address})))
    }),
    ("mailbox-create", 3, |r, env| {
        let t = tenant(r);
        let (caller, path, _) = member_path(r, env, &t, "mailbox/create");
        let mut b = json!({"localPart": format!("{}.box", r.pick(&LOCALS))});
        if r.chance(40) {
            b["domain"] = json!(domains_of(&t).first().copied().unwrap_or("acme.test"));
        }
        req("mailbox-create", caller, path, body(r, b))
    }),
    ("ownership-transfer", 3, |r, env| {
        let t = tenant(r);
        let to = member(r, env, &t).map(|m| hex(&m["_id"])).unwrap_or_default();
        req(
            "ownership-transfer",
            tenant_caller(r, env, &t),
            format!("/tenants/{}/ownership/transfer", t.slug),
            body(r, json!({"userId": to})),
        )
    }),
    ("tenant-admins-invite", 4, |r, env| {
        let t = tenant(r);
        let b = json!({"name": format!("Soak {}", r.pick(&LOCALS)), "email": some_email(r, Some(&t))});
        req("tenant-admins-invite", tenant_caller(r, env, &t), format!("/tenants/{}/admins/invite", t.slug), body(r, b))
    }),
    ("operators-invite", 2, |r, _| {
        let caller = if r.chance(80) { OPERATOR } else { *r.pick(&USERS) };
        let b = json!({"name": format!("Soak {}", r.pick(&LOCALS)), "email": some_email(r, None)});
        req("operators-invite", Caller::Demo(caller), "/platform/operators/invite".into(), body(r, b))
    }),
    ("partner-users-invite", 4, |r, env| {
        let p = *r.pick(&PARTNERS);
        let admins: Vec<Caller> = staff_of(env, &p).iter().filter(|u| matches!(s(u, "role"), "owner" | "admin")).map(Caller::of).collect();
        let caller = if admins.is_empty() || r.chance(30) {
            Caller::Demo(*r.pick(&[OPERATOR, NORTHWIND_STAFF, ACME_OWNER]))
        } else {
            r.pick(&admins).clone()
        };
        let b = json!({"name": format!("Soak {}", r.pick(&LOCALS)), "email": some_email(r, None)});
        req("partner-users-invite", caller, format!("/partners/{}/users/invite", p.slug), body(r, b))
    }),
    ("partner-team-remove", 2, |r, env| {
        let p = *r.pick(&PARTNERS);
        let staff = staff_of(env, &p);
        if staff.is_empty() {
            return vec![];
        }
        let (who, whom) = (r.pick(&staff).clone(), r.pick(&staff).clone());
        req(
            "partner-team-remove",
            Caller::of(&who),
            format!("/users/me/partner/users/{}/remove", s(&whom, "authentikSubjectId")),
            Some("{}".into()),
        )
    }),
    ("users-create", 3, |r, _| {
        let slugs: Vec<&str> = ["acme", "globex", "initech", "nowhere"].into_iter().filter(|_| r.chance(30)).collect();
        // Never `owner`: P's raw create is not guarded, and an owner here would be a second one.
        let b = json!({"authentikSubjectId": format!("soak-sub-{}", r.below(20)), "email": some_email(r, None),
            "name": format!("Soak {}", r.pick(&LOCALS)), "role": r.pick(&["admin", "member"]), "tenantSlugs": slugs});
        req("users-create", Caller::Demo(OPERATOR), "/users/create".into(), body(r, b))
    }),
    ("users-update", 3, |r, env| {
        // P's raw edit is not guarded by the role invariants: it only
        // reshapes documents the soak created with row 4, and promotes
        // partner staff (which gives the partner races something to race).
        let all = users(env);
        let soak: Vec<Value> = all.iter().filter(|u| s(u, "authentikSubjectId").starts_with("soak-sub-")).cloned().collect();
        let staff: Vec<Value> = all.iter().filter(|u| u.get("partnerId").is_some() && s(u, "role") == "member").cloned().collect();
        let (subject, b) = match (soak.is_empty(), staff.is_empty(), r.chance(50)) {
            (_, false, true) | (true, false, _) => (s(r.pick(&staff), "authentikSubjectId").to_owned(), json!({"role": "admin"})),
            (false, _, _) => {
                let mut b = json!({});
                for (k, v) in [
                    ("name", json!("Soak Renamed")),
                    ("email", json!(some_email(r, None))),
                    ("role", json!(r.pick(&["admin", "member"]))),
                    ("active", json!(r.chance(50))),
                    ("tenantSlugs", json!(["acme"])),
                ] {
                    if r.chance(40) {
                        b[k] = v;
                    }
                }
                (s(r.pick(&soak), "authentikSubjectId").to_owned(), b)
            }
            _ => return vec![],
        };
        req("users-update", Caller::Demo(OPERATOR), format!("/users/{subject}/update"), body(r, b))
    }),
    ("users-deactivate", 1, |r, env| {
        let soak: Vec<Value> = users(env).into_iter().filter(|u| s(u, "authentikSubjectId").starts_with("soak-sub-")).collect();
        let subject = if soak.is_empty() { "soak-sub-none".to_owned() } else { s(r.pick(&soak), "authentikSubjectId").to_owned() };
        req("users-deactivate", Caller::Demo(OPERATOR), format!("/users/{subject}/deactivate"), None)
    }),
    // Races: two requests at once.
    ("race: partner admins remove each other", 2, |r, env| {
        let p = *r.pick(&PARTNERS);
        let admins: Vec<Value> = staff_of(env, &p).into_iter().filter(|u| matches!(s(u, "role"), "owner" | "admin")).collect();
        if admins.len() < 2 {
            return vec![];
        }
        let (a, b) = (r.below(admins.len()), r.below(admins.len() - 1));
        let (a, b) = (&admins[a], &admins[if b >= a { b + 1 } else { b }]);
        let rm = |who: &Value, whom: &Value| Req {
            route: "partner-team-remove",
            caller: Caller::of(who),
            path: format!("/users/me/partner/users/{}/remove", s(whom, "authentikSubjectId")),
            body: None,
        };
        vec![rm(a, b), rm(b, a)]
    }),
    ("race: two transfers", 2, |r, env| {
        let t = *r.pick(&[ACME, GLOBEX, INITECH]);
        let caller = tenant_caller(r, env, &t);
        let mut out = vec![];
        for _ in 0..2 {
            let to = member(r, env, &t).map(|m| hex(&m["_id"])).unwrap_or_default();
            out.push(Req {
                route: "ownership-transfer",
                caller: caller.clone(),
                path: format!("/tenants/{}/ownership/transfer", t.slug),
                body: Some(json!({"userId": to}).to_string()),
            });
        }
        out
    }),
    ("race: two demotions", 2, |r, env| {
        let t = *r.pick(&[ACME, GLOBEX, INITECH]);
        let admins: Vec<Value> = members_of(env, &t).into_iter().filter(|u| role_in(u, t.id) == "admin").collect();
        if admins.len() < 2 {
            return vec![];
        }
        let (a, b) = (r.pick(&admins).clone(), r.pick(&admins).clone());
        let demote = |u: &Value| Req {
            route: "members-update",
            caller: Caller::Demo(OPERATOR),
            path: format!("/tenants/{}/members/{}/update", t.slug, hex(&u["_id"])),
            body: Some(r#"{"role":"member"}"#.into()),
        };
        vec![demote(&a), demote(&b)]
    }),
    ("race: double click", 3, |r, env| {
        let singles: Vec<(Gen, u32)> = ROUTES.iter().filter(|(name, ..)| !name.starts_with("race")).map(|(_, w, g)| (*g, *w)).collect();
        let mut out = r.weighted(&singles)(r, env);
        out.extend(out.clone());
        out
    }),
];

fn lifecycle(r: &mut Rng, env: &Env, route: &'static str, verb: &str) -> Vec<Req> {
    let t = tenant(r);
    let (caller, path, _) = member_path(r, env, &t, verb);
    req(route, caller, path, if r.chance(50) { None } else { Some("{}".into()) })
}

fn update_body(r: &mut Rng) -> Value {
    let mut b = json!({});
    for (k, v) in [
        ("name", json!("Soak Updated")),
        ("firstName", json!("Soak")),
        ("lastName", json!("")),
        ("phone", json!("+45 1234")),
        ("alternativeEmail", json!("alt@soak.test")),
        ("role", json!(r.pick(&["admin", "member"]))),
    ] {
        if r.chance(35) {
            b[k] = v;
        }
    }
    b
}

// ---------------------------------------------------------------------------
// The documented answers, and the audit event each success leaves.

/// The route's success statuses.
fn success(route: &str) -> &'static [u16] {
    match route {
        "members-create" | "mailbox-create" | "tenant-admins-invite" | "operators-invite" | "partner-users-invite" | "users-create" => {
            &[201]
        }
        "members-remove" | "members-suspend" | "members-resume" | "users-deactivate" => &[204],
        _ => &[200],
    }
}

/// Statuses any mutating route may answer besides its success: the
/// documented errors (413 cannot happen here: bodies are small).
const ERRORS: [u16; 8] = [400, 401, 403, 404, 409, 502, 503, 504];

/// The audit action a success leaves, with how many events: `(action, min, max)`.
fn expected_event(a: &Answer) -> (String, usize, usize) {
    let attached = a.json()["attached"] == json!(true);
    let invite = |inv: &str, att: &str| if attached { att.to_owned() } else { inv.to_owned() };
    let action = match a.req.route {
        "members-create" => "tenant.user_created".into(),
        "members-remove" => "tenant.user_removed".into(),
        "members-suspend" => "tenant.user_suspended".into(),
        "members-resume" => "tenant.user_resumed".into(),
        "members-logout" => "tenant.user_logout_forced".into(),
        "members-reset-password" => "tenant.user_password_reset".into(),
        "members-update" => "tenant.user_updated".into(),
        "members-change-email" => "tenant.user_primary_email_changed".into(),
        "aliases-add" => "tenant.user_alias_added".into(),
        "aliases-remove" => "tenant.user_alias_removed".into(),
        "mailbox-create" => "tenant.user_mailbox_created".into(),
        "ownership-transfer" => "tenant.ownership_transferred".into(),
        "tenant-admins-invite" => invite("tenant.admin_invited", "tenant.admin_attached"),
        "operators-invite" => invite("platform.user_invited", "platform.user_attached"),
        "partner-users-invite" => invite("partner.user_invited", "partner.user_attached"),
        "partner-team-remove" => "partner.user_removed".into(),
        "users-create" => "user.created".into(),
        "users-update" => "user.updated".into(),
        "users-deactivate" => "user.deactivated".into(),
        other => panic!("no audit action known for {other}"),
    };
    // `{}` changes nothing (no event); a change to the address the member
    // already has is a no-op too, which the answer cannot tell apart.
    match a.req.route {
        "members-update" if a.req.body.as_deref() == Some("{}") => (action, 0, 0),
        "members-change-email" => (action, 0, 1),
        _ => (action, 1, 1),
    }
}

// ---------------------------------------------------------------------------
// The run

/// `make test` (and CI) soaks with one fixed seed, so a run that passed
/// passes again and a failure is the code's, not the draw's;
/// `SOAK_SEED=random` draws a fresh one to look for new failures.
const DEFAULT_SEED: u64 = 20_261_207;

fn seed() -> u64 {
    match std::env::var("SOAK_SEED").as_deref().map(str::trim) {
        Err(_) | Ok("") => DEFAULT_SEED,
        Ok("random") => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 % 1_000_000_000,
        Ok(s) => s.parse().unwrap_or_else(|_| panic!("SOAK_SEED={s:?} is neither a u64 nor `random`")),
    }
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const SYSTEMS: [System; 4] = [System::DataApi, System::Authentik, System::Stalwart, System::Ocis];

fn chaos(env: &Env, seed: Option<u64>) {
    for (i, sys) in SYSTEMS.iter().enumerate() {
        let setting = seed.map(|seed| Chaos {
            seed: seed.wrapping_mul(31).wrapping_add(i as u64),
            delay_max_ms: DELAY_MAX_MS,
            fault_per_mille: FAULT_PER_MILLE,
            timeout_ms: CHAOS_TIMEOUT_MS,
        });
        env.controls(*sys).faults.set_chaos(setting);
    }
}

/// What the emulators held before the run.
struct Baseline {
    identities: BTreeSet<String>,
    mailboxes: BTreeSet<String>,
    files: BTreeSet<String>,
    events: BTreeSet<String>,
    /// Tenants that had an owner or admin.
    led: BTreeSet<&'static str>,
}

fn baseline(env: &Env) -> Baseline {
    Baseline {
        identities: env.authentik().users().into_iter().map(|u| u.uid).collect(),
        mailboxes: env.stalwart().accounts().into_iter().map(|a| a.id).collect(),
        files: env.ocis().users().into_iter().map(|u| u.id).collect(),
        events: env.find("auditevents", json!({})).iter().map(|e| hex(&e["_id"])).collect(),
        led: TENANTS
            .iter()
            .filter(|t| members_of(env, t).iter().any(|u| matches!(role_in(u, t.id).as_str(), "owner" | "admin")))
            .map(|t| t.id)
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak() {
    let seed = seed();
    let spin = matches!(runtime(), Runtime::Spin(_));
    let seconds = env_num("SOAK_SECONDS", if spin { 30 } else { 60 });
    let clients = env_num("SOAK_CLIENTS", 4) as usize;
    println!("soak: SOAK_SEED={seed} ({seconds} s, {clients} clients, {runtime:?})", runtime = runtime());
    eprintln!("soak: SOAK_SEED={seed}");
    // Tokens checked as in production: the JWKS from Authentik's URL, kept
    // in the key-value store; its fetches take Authentik's chaos too.
    let env = Arc::new(
        Env::start_with(|vars, emu| {
            vars.insert("oidc_jwks".into(), String::new());
            vars.insert("oidc_jwks_url".into(), emu.issuer.jwks_uri());
        })
        .await,
    );
    let before = baseline(&env);
    chaos(&env, Some(seed));

    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let (env, answers, http) = (env.clone(), answers.clone(), http.clone());
        tasks.spawn(async move {
            let mut r = Rng(seed ^ (client as u64 + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93));
            while Instant::now() < deadline {
                let gen = *r.weighted(&ROUTES.iter().map(|(_, w, g)| (*g, *w)).collect::<Vec<_>>());
                let reqs = gen(&mut r, &env);
                let sent = reqs.into_iter().map(|q| {
                    let (http, token, url) = (http.clone(), q.caller.token(&env), format!("{}{}", env.base, q.path));
                    async move {
                        let mut b = http.post(url).bearer_auth(token);
                        if let Some(body) = &q.body {
                            b = b.header("content-type", "application/json").body(body.clone());
                        }
                        let (status, text) = match b.send().await {
                            Ok(resp) => (resp.status().as_u16(), resp.text().await.unwrap_or_default()),
                            Err(e) => (0, format!("no answer: {e}")),
                        };
                        Answer { client, req: q, status, text }
                    }
                });
                let done = futures_join_all(sent).await;
                answers.lock().unwrap().extend(done);
            }
        });
    }
    tasks.join_all().await;
    let load = started.elapsed();
    // Chaos off; a change an emulator held past the app's time limit still
    // lands, so wait for the last of those before reading the state.
    let hits: Vec<(System, ChaosHit)> =
        SYSTEMS.iter().flat_map(|s| env.controls(*s).faults.chaos_hits().into_iter().map(move |h| (*s, h))).collect();
    chaos(&env, None);
    tokio::time::sleep(Duration::from_millis(CHAOS_TIMEOUT_MS + DELAY_MAX_MS + 500)).await;

    let answers = answers.lock().unwrap().clone();
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for a in &answers {
        *by_status.entry(a.status).or_default() += 1;
    }
    println!(
        "soak: SOAK_SEED={seed}: {} requests in {load:.1?}, statuses {by_status:?}, {} upstream faults injected, {} JWKS fetches",
        answers.len(),
        hits.len(),
        env.emu.authentik().jwks_fetches()
    );

    let findings = check(&env, &before, &answers, &hits);
    let traps = env.traps();
    let mut report: Vec<String> = findings;
    if traps > 0 {
        report.push(format!("{traps} request(s) trapped in the runtime:\n{}", env.trap_log()));
    }
    if !report.is_empty() {
        panic!(
            "soak SOAK_SEED={seed}: {} invariant(s) broken (replay: SOAK_SEED={seed} cargo test -p e2e --test it soak:: -- --nocapture)\n\n{}",
            report.len(),
            report.join("\n\n")
        );
    }
    println!("soak: SOAK_SEED={seed}: every invariant holds");
}

/// `futures::future::join_all` without the `futures` dependency: the
/// requests of one step run at once.
async fn futures_join_all<F: std::future::Future<Output = Answer> + Send + 'static>(fs: impl Iterator<Item = F>) -> Vec<Answer> {
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = vec![];
    for h in handles {
        out.push(h.await.expect("a request task"));
    }
    out
}

// ---------------------------------------------------------------------------
// The invariant checker. Each finding names what broke and the requests
// (and injected faults) that mention the thing it broke on.

fn check(env: &Env, before: &Baseline, answers: &[Answer], hits: &[(System, ChaosHit)]) -> Vec<String> {
    let mut out = vec![];
    let docs = users(env);
    // The successes and upstream failures (4xx answers are noise here) of
    // requests that name `email` (a members-create names it by local part
    // and workspace) or one of `ids`, and the injected faults naming them.
    let mentions = |email: &str, ids: &[String]| -> String {
        let mut needles: Vec<String> = ids.iter().filter(|n| !n.is_empty()).cloned().collect();
        needles.extend((!email.is_empty()).then(|| email.to_owned()));
        let named_by = |needles: &[String], a: &Answer| {
            let body = a.req.body.as_deref().unwrap_or("");
            needles.iter().any(|n| a.req.path.contains(n.as_str()) || body.contains(n.as_str()) || a.text.contains(n.as_str()))
                || created_as(a, email)
        };
        // One step further: the documents those answers show (a removal
        // names the person by document id only).
        let docs: Vec<String> =
            answers.iter().filter(|a| named_by(&needles, a)).filter_map(|a| a.json()["_id"].as_str().map(str::to_owned)).collect();
        needles.extend(docs);
        needles.sort();
        needles.dedup();
        let named = |a: &Answer| named_by(&needles, a);
        let reqs: Vec<String> =
            answers.iter().filter(|a| a.ok() || a.status >= 500).filter(|a| named(a)).map(|a| format!("    {a}")).collect();
        let faults: Vec<String> = hits
            .iter()
            .filter(|(_, h)| needles.iter().any(|n| h.path.contains(n.as_str()) || h.body.contains(n.as_str())))
            .map(|(sys, h)| format!("    {sys:?} #{}: {} {} -> {:?}", h.n, h.method, h.path, h.fault))
            .collect();
        format!(
            "  requests naming it (2xx and 5xx):\n{}\n  faults injected on upstream calls naming it:\n{}",
            or_none(reqs),
            or_none(faults)
        )
    };

    // 1) No account without its document.
    for u in env.authentik().users() {
        if !docs.iter().any(|d| s(d, "authentikSubjectId") == u.uid) {
            let origin =
                if before.identities.contains(&u.uid) { "a demo identity whose document is gone" } else { "created during the run" };
            out.push(format!(
                "orphan identity: Authentik user pk {} {} ({origin}) has no user document\n{}",
                u.pk,
                u.email,
                mentions(&u.email, &[u.uid.clone(), format!("/{}/", u.pk)])
            ));
        }
    }
    for a in env.stalwart().accounts().into_iter().filter(|a| a.kind == "User") {
        if !docs.iter().any(|d| s(d, "stalwartAccountId") == a.id) {
            let address = env.stalwart().email_address_of(&a.id).unwrap_or_default();
            let origin = if before.mailboxes.contains(&a.id) { "a demo mailbox" } else { "created during the run" };
            out.push(format!(
                "orphan mailbox: Stalwart account {} <{address}> ({origin}) has no user document naming it\n{}",
                a.id,
                mentions(&address, &[format!("\"{}\"", a.id)])
            ));
        }
    }
    for f in env.ocis().users() {
        if !before.files.contains(&f.id) && !docs.iter().any(|d| s(d, "ocisUserId") == f.id) {
            out.push(format!(
                "orphan file account: OCIS user {} ({}) has no user document naming it\n{}",
                f.id,
                f.username,
                mentions(&f.username, std::slice::from_ref(&f.id))
            ));
        }
    }

    // 2) Provisioning that says `ok` is true.
    for d in &docs {
        let p = &d["provisioning"];
        let who = format!("{} ({})", s(d, "email"), hex(&d["_id"]));
        if p["authentik"] == "ok" && env.authentik().user_by_uid(s(d, "authentikSubjectId")).is_none() {
            out.push(format!("provisioning.authentik is ok but {who} has no identity\n{}", mentions(s(d, "email"), &ids(d))));
        }
        if p["stalwart"] == "ok" && env.stalwart().account(s(d, "stalwartAccountId")).is_none() {
            out.push(format!(
                "provisioning.stalwart is ok but {who} has no mailbox (stalwartAccountId {:?})\n{}",
                d.get("stalwartAccountId"),
                mentions(s(d, "email"), &ids(d))
            ));
        }
        if p["ocis"] == "ok" && env.ocis().user(s(d, "ocisUserId")).is_none() {
            out.push(format!(
                "provisioning.ocis is ok but {who} has no file account (ocisUserId {:?})\n{}",
                d.get("ocisUserId"),
                mentions(s(d, "email"), &ids(d))
            ));
        }
    }

    // 3) Roles: a partner keeps an owner/admin; a workspace has at most one
    // owner, and one that had an owner or admin keeps one.
    let role_changes = |slug: &str| -> String {
        let touching: Vec<String> = answers
            .iter()
            .filter(|a| a.ok() && (a.req.path.contains(&format!("/tenants/{slug}/")) || a.req.path.starts_with("/users/")))
            .filter(|a| {
                matches!(
                    a.req.route,
                    "members-remove"
                        | "ownership-transfer"
                        | "members-update"
                        | "partner-team-remove"
                        | "users-update"
                        | "users-create"
                        | "tenant-admins-invite"
                )
            })
            .map(|a| format!("    {a}"))
            .collect();
        format!("  successful requests that may change roles there:\n{}", or_none(touching))
    };
    for p in PARTNERS {
        let staff: Vec<&Value> = docs.iter().filter(|u| hex(&u["partnerId"]) == p.id).collect();
        if !staff.iter().any(|u| matches!(s(u, "role"), "owner" | "admin")) {
            let names: Vec<String> = staff.iter().map(|u| format!("{} ({})", s(u, "email"), s(u, "role"))).collect();
            let removals: Vec<String> =
                answers.iter().filter(|a| a.ok() && a.req.route == "partner-team-remove").map(|a| format!("    {a}")).collect();
            out.push(format!(
                "partner {} has no owner or admin left (staff: {names:?})\n  successful partner-team removals:\n{}",
                p.slug,
                or_none(removals)
            ));
        }
    }
    for t in TENANTS {
        let members: Vec<&Value> = docs.iter().filter(|u| holds(&u["tenantIds"], t.id)).collect();
        let owners: Vec<&str> = members.iter().filter(|u| role_in(u, t.id) == "owner").map(|u| s(u, "email")).collect();
        if owners.len() > 1 {
            out.push(format!("workspace {} has {} owners: {owners:?}\n{}", t.slug, owners.len(), role_changes(t.slug)));
        }
        if before.led.contains(t.id) && !members.iter().any(|u| matches!(role_in(u, t.id).as_str(), "owner" | "admin")) {
            out.push(format!("workspace {} had an owner or admin and has none now\n{}", t.slug, role_changes(t.slug)));
        }
    }

    // 4) One audit event per successful mutation, none per failed one: each
    // success takes one new event of its action naming the same person
    // (and workspace); what is left over on either side is reported.
    let mut events: Vec<Option<Value>> =
        env.find("auditevents", json!({})).into_iter().filter(|e| !before.events.contains(&hex(&e["_id"]))).map(Some).collect();
    let new_events = events.len();
    let mut unaudited = vec![];
    let mut optional = vec![];
    let successes: Vec<&Answer> = answers.iter().filter(|a| a.ok()).collect();
    for a in &successes {
        let (action, min, _) = expected_event(a);
        match events.iter_mut().find(|e| e.as_ref().is_some_and(|e| s(e, "action") == action && names(a, e))) {
            Some(e) if min > 0 => drop(e.take()),
            _ if min > 0 => unaudited.push(format!("    {a}")),
            _ => optional.push(*a),
        }
    }
    // Optional events (a change that may have been a no-op) last, so they
    // never take an event a real change left.
    for a in optional {
        let action = expected_event(a).0;
        if let Some(e) = events.iter_mut().find(|e| e.as_ref().is_some_and(|e| s(e, "action") == action && names(a, e))) {
            e.take();
        }
    }
    if !unaudited.is_empty() {
        out.push(format!("audit: {} successful mutation(s) left no event of their own\n{}", unaudited.len(), or_none(unaudited)));
    }
    for e in events.into_iter().flatten() {
        let action = s(&e, "action").to_owned();
        let tries: Vec<String> = answers
            .iter()
            .filter(|a| {
                !a.ok()
                    && expected_event(&Answer { status: 200, ..(*a).clone() }).0.replace("attached", "invited")
                        == action.replace("attached", "invited")
                    && names(a, &e)
            })
            .map(|a| format!("    {a}"))
            .collect();
        // Writes and deletes of this very event that were made to fail.
        let id = hex(&e["_id"]);
        let faults: Vec<String> = hits
            .iter()
            .filter(|(_, h)| h.body.contains(&id))
            .map(|(sys, h)| {
                format!("    {sys:?} #{}: {} {} {} -> {:?}", h.n, h.method, h.path, h.body.chars().take(120).collect::<String>(), h.fault)
            })
            .collect();
        out.push(format!(
            "audit: an event no successful request accounts for: {action} on {} {} (workspace {:?}) by {}\n  failed requests it may belong to:\n{}\n  faults injected on calls naming the event {id}:\n{}",
            s(&e, "resourceId"), s(&e, "resourceName"), s(&e, "tenantSlug"), s(&e["actor"], "email"), or_none(tries), or_none(faults)
        ));
    }
    let ok_count = successes.iter().filter(|a| expected_event(a).1 > 0).count();
    println!(
        "soak: {new_events} new audit events for {ok_count} successful mutations (+{} that may have been no-ops)",
        successes.len() - ok_count
    );

    // 5) Every answer is a documented one: no 500, no dropped request.
    for a in answers {
        if !success(a.req.route).contains(&a.status) && !ERRORS.contains(&a.status) {
            out.push(format!("undocumented answer {}: {a}", a.status));
        }
    }
    out
}

/// What names a user document in requests and upstream calls: its id,
/// subject and identity pk.
fn ids(d: &Value) -> Vec<String> {
    let pk = d["authentikUserPk"].as_i64().or_else(|| d["authentikUserPk"]["$numberInt"].as_str().and_then(|p| p.parse().ok()));
    let mut out = vec![hex(&d["_id"]), s(d, "authentikSubjectId").to_owned()];
    out.extend(pk.map(|pk| format!("/{pk}/")));
    out
}

/// Whether `a` is a members-create of `email` (named by local part and
/// the workspace's domain).
fn created_as(a: &Answer, email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    let Some(t) = TENANTS.iter().find(|t| a.req.path == format!("/tenants/{}/members/create", t.slug)) else { return false };
    let body: Value = serde_json::from_str(a.req.body.as_deref().unwrap_or("")).unwrap_or(Value::Null);
    body["localPart"] == local && domains_of(t).contains(&domain)
}

/// `_id` hex → subject of every user document the soak has read (so a
/// request can be matched to its audit event after the document is gone).
static SUBJECTS: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

fn subject_of(id: &str) -> String {
    SUBJECTS.lock().unwrap().get(id).cloned().unwrap_or_default()
}

/// Whether audit event `e` is about the person (and workspace) request `a` names.
fn names(a: &Answer, e: &Value) -> bool {
    let body: Value = serde_json::from_str(a.req.body.as_deref().unwrap_or("")).unwrap_or(Value::Null);
    let seg: Vec<&str> = a.req.path.split('/').collect();
    let (id, name) = (s(e, "resourceId"), s(e, "resourceName").to_lowercase());
    let slug_ok = seg.get(1) != Some(&"tenants") || seg.get(2) == Some(&s(e, "tenantSlug"));
    slug_ok
        && match a.req.route {
            "members-create" => name.starts_with(&format!("{}@", s(&body, "localPart"))),
            "ownership-transfer" => id == subject_of(s(&body, "userId")),
            "tenant-admins-invite" | "operators-invite" | "partner-users-invite" => {
                name == s(&body, "email").to_lowercase() || a.json()["subject"] == id
            }
            "users-create" => id == s(&body, "authentikSubjectId"),
            // /users/:subject/…, /users/me/partner/users/:subject/remove
            "users-deactivate" | "users-update" | "partner-team-remove" => seg.contains(&id),
            // /tenants/:slug/members/:user_id/…
            _ => seg.get(4).is_some_and(|m| subject_of(m) == id),
        }
}

fn or_none(lines: Vec<String>) -> String {
    if lines.is_empty() {
        return "    (none)".into();
    }
    const MAX: usize = 25;
    let more = lines.len().saturating_sub(MAX);
    let mut out = lines.into_iter().take(MAX).collect::<Vec<_>>().join("\n");
    if more > 0 {
        out.push_str(&format!("\n    … and {more} more"));
    }
    out
}
