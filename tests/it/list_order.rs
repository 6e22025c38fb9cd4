//! The list routes' order end to end: newest `createdAt` first, `_id`
//! descending on ties, against demo users whose `_id`s do not follow their
//! creation (imported documents, several writers' clocks). A sort whose keys
//! reach the Data API re-ordered (`_id` first) fails here.

use e2e::*;
use emulators::demo;
use serde_json::{json, Value};

fn subjects(r: &Resp) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.text);
    r.json().as_array().unwrap().iter().map(|u| u["authentikSubjectId"].as_str().unwrap().to_owned()).collect()
}

/// The demo users that pass `keep`, newest first with `_id` as tie-break.
fn newest_first(keep: impl Fn(&demo::User) -> bool) -> Vec<String> {
    let mut users: Vec<&demo::User> = USERS.iter().filter(|u| keep(u)).collect();
    users.sort_by(|a, b| (b.created_day, b.id).cmp(&(a.created_day, a.id)));
    users.iter().map(|u| u.sub.to_owned()).collect()
}

fn in_tenant(t: demo::Tenant) -> impl Fn(&demo::User) -> bool {
    move |u| u.tenants.iter().any(|(x, _)| x.id == t.id)
}

fn subs(users: &[&demo::User]) -> Vec<String> {
    users.iter().map(|u| u.sub.to_owned()).collect()
}

#[tokio::test]
async fn users_list_is_newest_first_for_a_platform_admin() {
    let env = Env::start().await;
    let got = subjects(&env.get("/users", &OPERATOR).await);
    assert_eq!(got, newest_first(|_| true));
    // The data is adversarial: `_id` order is another order.
    let mut by_id: Vec<&demo::User> = USERS.iter().collect();
    by_id.sort_by(|a, b| b.id.cmp(a.id));
    assert_ne!(got, subs(&by_id));

    // A user created now is the newest of all.
    let body = json!({"authentikSubjectId": "sub-fresh", "email": "fresh@acme.test", "name": "Fresh", "tenantSlugs": ["acme"]});
    assert_eq!(env.post("/users/create", &OPERATOR, body).await.status, 201);
    let got = subjects(&env.get("/users", &OPERATOR).await);
    assert_eq!(got[0], "sub-fresh");
    assert_eq!(got[1..], newest_first(|_| true)[..]);
}

#[tokio::test]
async fn users_list_is_newest_first_for_a_tenant_admin() {
    let env = Env::start().await;
    // acme: Mia and Alice were created at the same instant (Mia's _id is
    // greater); Max has the greatest _id but is the oldest.
    let acme = subs(&[&ACME_MEMBER, &ACME_OWNER, &ACME_INACTIVE_ADMIN, &ACME_ADMIN, &MULTI_TENANT]);
    assert_eq!(newest_first(in_tenant(ACME)), acme);
    assert_eq!(subjects(&env.get("/users", &ACME_OWNER).await), acme);
    // Max administers globex only: Gina (newer, smaller _id) first.
    assert_eq!(subjects(&env.get("/users", &MULTI_TENANT).await), subs(&[&GLOBEX_ADMIN, &MULTI_TENANT]));
}

#[tokio::test]
async fn members_list_is_newest_first() {
    let env = Env::start().await;
    let acme = subs(&[&ACME_MEMBER, &ACME_OWNER, &ACME_INACTIVE_ADMIN, &ACME_ADMIN, &MULTI_TENANT]);
    for who in [&ACME_OWNER, &NORTHWIND_STAFF, &OPERATOR] {
        assert_eq!(subjects(&env.get("/tenants/acme/members", who).await), acme, "{}", who.email);
    }
    assert_eq!(subjects(&env.get("/tenants/globex/members", &OPERATOR).await), newest_first(in_tenant(GLOBEX)));
    assert_eq!(subjects(&env.get("/tenants/globex/members", &OPERATOR).await), subs(&[&GLOBEX_ADMIN, &MULTI_TENANT]));

    // Equal `createdAt`, written in ascending `_id` order: the greater
    // `_id` still comes first.
    let at = json!({"$date": {"$numberLong": "1770000000000"}});
    let doc = |id: &str, sub: &str| -> Value {
        json!({"_id": oid(id), "authentikSubjectId": sub, "email": format!("{sub}@acme.test"), "name": sub,
            "role": "member", "active": true, "tenantIds": [oid(ACME.id)], "createdAt": at, "updatedAt": at})
    };
    env.db().insert_many("dezky", "users", vec![doc("65a0000000000000000000f1", "tie-low"), doc("65a0000000000000000000f2", "tie-high")]);
    let got = subjects(&env.get("/tenants/acme/members", &ACME_OWNER).await);
    assert_eq!(got[..2], ["tie-high".to_owned(), "tie-low".to_owned()]);
    assert_eq!(got[2..], acme[..]);
}
