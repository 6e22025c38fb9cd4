//! The invariants one request keeps, kept when conflicting requests race
//! (docs/api.md, "Failure semantics"): a partner keeps an owner/admin (row 12),
//! a workspace keeps an owner/admin (row 24) and never has two owners
//! (row 30), and the same person is never created twice (row 4).
//!
//! Each test sends the conflicting requests together, round after round on
//! a fresh world, with the Data API holding writes of user documents (see
//! [`world`]) so that the requests overlap where a count-then-write loses. Whatever the order, the
//! answers are one success and `409`s (or only `409`s), never a `5xx`, the
//! invariant holds afterwards, and there is one audit event per success.

use e2e::*;
use serde_json::{json, Value};

const ROUNDS: usize = 8;

/// The Data API's `updateOne`/`updateMany` (their paths share this prefix).
const UPDATES: &str = "/action/update";
const USERS: &str = r#""collection":"users""#;

/// A fresh demo world for round `round`. Even rounds hold every update of
/// a user document, so each request reads before any writes: the widest
/// window, where both pass a count-then-write check and, fixed, both see
/// the other's write and give up (two `409`s). Odd rounds hold only the
/// first update, so the other request writes, looks and wins while the
/// first is held, and the first then sees that write and gives up (one
/// success and a `409`).
async fn world(round: usize) -> Env {
    let env = Env::start().await;
    let hold = FaultRule::new(UPDATES, Fault::DelayMs(300)).method("POST").body_contains(USERS);
    env.fail_data_api(if round.is_multiple_of(2) { hold } else { hold.times(1) });
    env
}

/// Sends every `(path, caller, body)` at once; the answers in the order given.
async fn together(env: &Env, requests: &[(String, &User, Value)]) -> Vec<(u16, Value)> {
    let answers = env.post_all(requests).await;
    answers.into_iter().map(|r| (r.status, serde_json::from_str(&r.text).unwrap_or(Value::Null))).collect()
}

/// At most one `ok`; every other answer the `409` with `detail`s; never a
/// `5xx`. Returns which requests succeeded.
fn one_or_none(answers: &[(u16, Value)], ok: u16, details: &[&str]) -> Vec<bool> {
    for (s, b) in answers {
        assert!(*s == ok || (*s == 409 && details.iter().any(|d| b["detail"] == *d)), "{answers:?}");
    }
    let won: Vec<bool> = answers.iter().map(|(s, _)| *s == ok).collect();
    assert!(won.iter().filter(|w| **w).count() <= 1, "two successes: {answers:?}");
    won
}

fn events(env: &Env, action: &str) -> usize {
    env.find("auditevents", json!({ "action": action })).len()
}

/// How many of `tenant`'s users have `role` there (the tenant's entry,
/// else the legacy global role).
fn with_role(env: &Env, tenant: &Tenant, roles: &[&str]) -> Vec<String> {
    env.find("users", json!({ "tenantIds": oid(tenant.id) }))
        .iter()
        .filter(|u| {
            let role = u["tenantRoles"].get(tenant.id).unwrap_or(&u["role"]);
            roles.iter().any(|r| role == *r)
        })
        .map(|u| u["email"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Row 12: the partner's only two admins remove each other at once. One
/// goes, or neither; the partner always keeps an owner/admin; the one who
/// stays keeps the partner-staff group; a lost removal leaves no event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_admins_removing_each_other_keep_one() {
    let path = |u: &User| format!("/users/me/partner/users/{}/remove", u.sub);
    let mut wins = 0;
    for round in 0..ROUNDS {
        let env = world(round).await;
        // Nate becomes northwind's second admin, beside its owner Nina.
        env.db().update_one("dezky", "users", json!({ "_id": oid(NORTHWIND_STAFF.id) }), json!({ "$set": { "role": "admin" } }));
        let pair = [(NORTHWIND_OWNER, NORTHWIND_STAFF), (NORTHWIND_STAFF, NORTHWIND_OWNER)];
        let staff_group_before = env.authentik().members_of(PARTNER_STAFF_GROUP_UUID);
        let requests: Vec<(String, &User, Value)> = pair.iter().map(|(who, target)| (path(target), who, json!({}))).collect();
        let answers = together(&env, &requests).await;
        let admins = env.find("users", json!({ "partnerId": oid(NORTHWIND.id), "role": { "$in": ["owner", "admin"] } }));
        assert!(!admins.is_empty(), "round {round}: northwind has no owner/admin left: {answers:?}");
        let won = one_or_none(&answers, 200, &["Cannot remove the last partner admin"]);
        wins += won.iter().filter(|w| **w).count();
        assert_eq!(events(&env, "partner.user_removed"), won.iter().filter(|w| **w).count(), "round {round}: {answers:?}");
        let staff_group = env.authentik().members_of(PARTNER_STAFF_GROUP_UUID);
        for ((_, target), won) in pair.iter().zip(&won) {
            let doc = &env.find("users", json!({ "_id": oid(target.id) }))[0];
            assert_eq!(doc.get("partnerId").is_none(), *won, "round {round}: {} {doc}", target.email);
            let in_group = |g: &Vec<i64>| g.contains(&target.pk);
            assert_eq!(in_group(&staff_group), in_group(&staff_group_before) && !won, "round {round}: {}'s staff group", target.email);
        }
    }
    assert!(wins > 0, "no round let a removal stand");
}

/// Row 24: a workspace's only two admins demote each other at once
/// (globex: Gina and Max, both with mailboxes, no owner).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_admins_demoting_each_other_keep_one() {
    demotions(|| [(GLOBEX_ADMIN, MULTI_TENANT), (MULTI_TENANT, GLOBEX_ADMIN)]).await;
}

/// Row 24: a partner admin demotes both of a workspace's admins at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demoting_both_workspace_admins_at_once_keeps_one() {
    demotions(|| [(NORTHWIND_OWNER, MULTI_TENANT), (NORTHWIND_OWNER, GLOBEX_ADMIN)]).await;
}

async fn demotions(pairs: impl Fn() -> [(User, User); 2]) {
    let mut wins = 0;
    for round in 0..ROUNDS {
        let env = world(round).await;
        let pairs = pairs();
        let requests: Vec<(String, &User, Value)> = pairs
            .iter()
            .map(|(who, target)| (format!("/tenants/globex/members/{}/update", target.id), who, json!({ "role": "member" })))
            .collect();
        let answers = together(&env, &requests).await;
        let admins = with_role(&env, &GLOBEX, &["owner", "admin"]);
        assert!(!admins.is_empty(), "round {round}: globex has no owner/admin left: {answers:?}");
        let won = one_or_none(&answers, 200, &["Can’t remove the last admin of this workspace."]);
        wins += won.iter().filter(|w| **w).count();
        assert_eq!(events(&env, "tenant.user_updated"), won.iter().filter(|w| **w).count(), "round {round}: {answers:?}");
        for ((_, target), won) in pairs.iter().zip(&won) {
            let doc = &env.find("users", json!({ "_id": oid(target.id) }))[0];
            assert_eq!(doc["tenantRoles"][GLOBEX.id], if *won { "member" } else { "admin" }, "round {round}: {}", target.email);
        }
    }
    assert!(wins > 0, "no round let a demotion stand");
}

/// Row 30: two transfers of acme's ownership, to different members, at
/// once. Acme ends with exactly one owner, the winner's choice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_ownership_transfers_leave_one_owner() {
    const BUSY: &str = "Another ownership transfer of this workspace is in progress; try again.";
    for round in 0..ROUNDS {
        let env = world(round).await;
        let to = [ACME_ADMIN, ACME_MEMBER];
        let requests: Vec<(String, &User, Value)> = [(&ACME_OWNER, &to[0]), (&NORTHWIND_OWNER, &to[1])]
            .iter()
            .map(|(who, target)| ("/tenants/acme/ownership/transfer".to_owned(), *who, json!({ "userId": target.id })))
            .collect();
        let answers = together(&env, &requests).await;
        let owners = with_role(&env, &ACME, &["owner"]);
        assert_eq!(owners.len(), 1, "round {round}: acme's owners: {owners:?}");
        let won = one_or_none(&answers, 200, &[BUSY]);
        let expected: Vec<&str> = match won.iter().position(|w| *w) {
            Some(i) => vec![to[i].email],
            None => vec![ACME_OWNER.email],
        };
        assert_eq!(owners, expected, "round {round}: {answers:?}");
        assert_eq!(events(&env, "tenant.ownership_transferred"), won.iter().filter(|w| **w).count(), "round {round}: {answers:?}");
    }
}

/// Row 4: the same person created twice at once (a double click) is one
/// document, one event, and a `409`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_the_same_user_twice_at_once_creates_one() {
    for round in 0..ROUNDS {
        let env = Env::start().await;
        // Every user-document call is held, so both requests read "not
        // taken" before either writes.
        env.fail_data_api(FaultRule::new("/action/", Fault::DelayMs(300)).method("POST").body_contains(USERS));
        let body = json!({ "authentikSubjectId": "sub-twice", "email": "twice@dezky.test", "name": "Tw Ice" });
        let requests = vec![("/users/create".to_owned(), &OPERATOR, body.clone()), ("/users/create".to_owned(), &OPERATOR, body)];
        let answers = together(&env, &requests).await;
        assert_eq!(env.find("users", json!({ "authentikSubjectId": "sub-twice" })).len(), 1, "round {round}: user documents");
        let won = one_or_none(&answers, 201, &["User sub-twice already exists"]);
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "round {round}: {answers:?}");
        assert_eq!(events(&env, "user.created"), 1, "round {round}: {answers:?}");
    }
}

/// Rows 10 and 31, attach path: a person with an identity but no document
/// yet (made in Authentik directly, not by an invite) attached twice at
/// once. One document, one event, one `201`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attaching_a_person_without_a_document_twice_creates_one() {
    for round in 0..ROUNDS {
        let env = Env::start().await;
        let email = "newcomer@acme.test";
        env.authentik().add_user(email, "New Comer", email);
        env.fail_data_api(FaultRule::new("/action/", Fault::DelayMs(300)).method("POST").body_contains(USERS));
        let body = json!({ "name": "New Comer", "email": email });
        let requests = vec![
            ("/tenants/acme/admins/invite".to_owned(), &NORTHWIND_OWNER, body.clone()),
            ("/tenants/acme/admins/invite".to_owned(), &OPERATOR, body),
        ];
        let answers = together(&env, &requests).await;
        assert_eq!(env.find("users", json!({ "email": email })).len(), 1, "round {round}: user documents");
        assert_eq!(events(&env, "tenant.admin_attached"), 1, "round {round}: audit events of {answers:?}");
        let won = one_or_none(&answers, 201, &[&format!("{email} is already an admin of this workspace.")]);
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "round {round}: {answers:?}");
    }
}
