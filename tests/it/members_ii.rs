//! What the tests of rows 24–30 share: calling a member route, reading
//! documents and audit events back, and the demo callers' table.
#![allow(dead_code)]

use e2e::*;
use serde_json::{json, Value};

pub fn member_path(tenant: &str, user_id: &str, verb: &str) -> String {
    format!("/tenants/{tenant}/members/{user_id}/{verb}")
}

pub fn user_doc(env: &Env, id: &str) -> Value {
    env.find("users", json!({"_id": oid(id)})).into_iter().next().unwrap_or_else(|| panic!("no user {id}"))
}

pub fn events(env: &Env, action: &str) -> Vec<Value> {
    env.find("auditevents", json!({"action": action}))
}

/// Everything but the audit log, to compare worlds around an operation.
pub fn without_audit(mut world: Value) -> Value {
    world["db"].as_object_mut().unwrap().remove("auditevents");
    world
}

/// The aliases of every mailbox (the harness's world leaves them out).
pub fn all_aliases(env: &Env) -> Vec<(String, Vec<String>)> {
    env.stalwart().accounts().iter().map(|a| (a.id.clone(), env.stalwart().aliases_of(&a.id))).collect()
}

/// The world with every mailbox's aliases and Authentik's usernames and
/// names: "nothing changed anywhere".
pub fn everything(env: &Env) -> Value {
    let mut w = env.world();
    w["aliases"] = json!(all_aliases(env));
    let mut ak: Vec<Value> = env.authentik().users().iter().map(|u| json!([u.pk, u.username, u.name, u.email])).collect();
    ak.sort_by_key(|v| v[0].as_i64());
    w["identities"] = json!(ak);
    w["mailboxNames"] = json!(env.stalwart().accounts().iter().map(|a| json!([a.id, a.description])).collect::<Vec<_>>());
    w
}

/// A member of `tenant` with nothing but a document (no identity, no
/// mailbox), as another service might have written it.
pub fn insert_member(env: &Env, id: &str, email: &str, tenant: &str, role: &str) {
    env.db().insert(
        "dezky",
        "users",
        json!({"_id": oid(id), "authentikSubjectId": format!("sub-{id}"), "email": email, "name": "Doc Only",
            "tenantIds": [oid(tenant)], "tenantRoles": {tenant: role}, "active": true,
            "provisioning": {"authentik": "ok", "ocis": "skipped"}}),
    );
}

/// Callers refused on acme's member routes, with the status each gets:
/// a plain member, an inactive admin, a member of acme who administers
/// another tenant (403: they see acme); admins of other tenants and staff
/// of another partner (404: they do not).
pub const DENIED: [(&User, u16); 6] = [
    (&ACME_MEMBER, 403),
    (&ACME_INACTIVE_ADMIN, 403),
    (&MULTI_TENANT, 403),
    (&GLOBEX_ADMIN, 404),
    (&SOUTHPOLE_ADMIN, 404),
    (&INITECH_ADMIN, 404),
];

/// Callers allowed on acme's member routes: P, its owner and admin, and
/// its partner's owner, staff and staff scoped to acme.
pub const ALLOWED: [&User; 6] = [&OPERATOR, &ACME_OWNER, &ACME_ADMIN, &NORTHWIND_OWNER, &NORTHWIND_STAFF, &NORTHWIND_SCOPED];

pub fn assert_table_complete() {
    assert!(
        USERS.iter().all(|u| ALLOWED.iter().any(|a| a.id == u.id) || DENIED.iter().any(|(d, _)| d.id == u.id)),
        "a demo caller is missing"
    );
}

/// Fires `n` identical requests at once.
pub async fn concurrently(env: &Env, n: usize, path: &str, who: &User, body: Value) -> Vec<Resp> {
    concurrently_each(env, path, who, vec![body; n]).await
}

/// Fires one request per body at once.
pub async fn concurrently_each(env: &Env, path: &str, who: &User, bodies: Vec<Value>) -> Vec<Resp> {
    env.post_all(&bodies.into_iter().map(|b| (path.to_owned(), who, b)).collect::<Vec<_>>()).await
}

/// Exactly one success with `ok`, every other answer a `409`.
pub fn one_winner(rs: &[Resp], ok: u16) -> &Resp {
    let statuses: Vec<u16> = rs.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == ok).count(), 1, "{statuses:?}: {:?}", rs.iter().map(|r| &r.text).collect::<Vec<_>>());
    assert!(statuses.iter().all(|s| *s == ok || *s == 409), "{statuses:?}: {:?}", rs.iter().map(|r| &r.text).collect::<Vec<_>>());
    rs.iter().find(|r| r.status == ok).unwrap()
}
