//! Concurrent identical requests (a double click, a retrying client) on the
//! routes that create people: exactly one succeeds, the others answer
//! `409` (never `502`), and afterwards there is one of everything — the
//! losers undid nothing the winner created.

use e2e::*;
use serde_json::{json, Value};

const N: usize = 12;

/// How the race is run.
#[derive(Clone, Copy, PartialEq)]
enum Race {
    /// As it comes: some requests find the winner's identity, some lose
    /// the create, some find its document.
    Natural,
    /// Every identity create is held until all requests have sent theirs,
    /// so all but one lose the create to Authentik's uniqueness refusal.
    AllCreate,
}

const IDENTITY_CREATE: &str = "/api/v3/core/users/";

/// Starts a world; with [`Race::AllCreate`], identity creates wait first.
async fn world(how: Race) -> Env {
    let env = Env::start().await;
    if how == Race::AllCreate {
        let ak = env.emu.authentik();
        env.fail(&ak.controls, FaultRule::new(IDENTITY_CREATE, Fault::DelayMs(700)).method("POST"));
    }
    env
}

/// With [`Race::AllCreate`], every request really reached the identity create.
fn check_race(env: &Env, how: Race) {
    let creates = env.emu.authentik().controls.log.all().iter().filter(|r| r.method == "POST" && r.path() == IDENTITY_CREATE).count();
    if how == Race::AllCreate {
        assert_eq!(creates, N, "every request tried to create the identity");
    }
}

/// Sends `N` identical POSTs at once; returns each `(status, body)`.
async fn race(env: &Env, path: &str, as_user: &User, body: Value) -> Vec<(u16, Value)> {
    let answers = env.post_all(&vec![(path.to_owned(), as_user, body); N]).await;
    answers.into_iter().map(|r| (r.status, serde_json::from_str(&r.text).unwrap_or(Value::Null))).collect()
}

/// Exactly one `201`; every other answer the `409` with `detail`.
fn one_winner(answers: &[(u16, Value)], detail: impl Fn(&Value) -> bool) -> Value {
    let winners: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 201).map(|(_, b)| b).collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    for (s, b) in answers.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*s, 409, "{b}");
        assert!(detail(&b["detail"]), "{b}");
    }
    winners[0].clone()
}

/// How many of each thing exist for `email`.
fn count(env: &Env, email: &str) -> Value {
    json!({
        "identities": env.authentik().users().iter().filter(|u| u.email == email || u.username == email).count(),
        "documents": env.find("users", json!({"email": email})).len(),
        "mailboxes": env.stalwart().accounts().iter().filter(|a| env.stalwart().email_address_of(&a.id).as_deref() == Some(email)).count(),
        "files": env.ocis().users().iter().filter(|u| u.username == email).count(),
        "audit": env.find("auditevents", json!({"resourceName": email})).len(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_create_race() {
    members_create(Race::Natural).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_create_race_all_creating() {
    members_create(Race::AllCreate).await;
}

async fn members_create(how: Race) {
    let env = world(how).await;
    let body = json!({"name": "Rae Race", "localPart": "rae", "role": "member"});
    let answers = race(&env, "/tenants/acme/members/create", &ACME_OWNER, body).await;
    let won = one_winner(&answers, |d| d == "rae@acme.test already exists in this workspace.");
    check_race(&env, how);
    assert_eq!(won["provisioning"], json!({"authentik": "ok", "stalwart": "ok", "ocis": "ok"}));
    assert_eq!(count(&env, "rae@acme.test"), json!({"identities": 1, "documents": 1, "mailboxes": 1, "files": 1, "audit": 1}));
    // The winner's accounts are whole: its password signs in to the mailbox.
    let ak = env.authentik().user_by_email("rae@acme.test").unwrap();
    assert_eq!(env.authentik().password_of(ak.pk).as_deref(), won["tempPassword"].as_str());
    let doc = &env.find("users", json!({"email": "rae@acme.test"}))[0];
    assert_eq!(doc["authentikSubjectId"], ak.uid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_invite_race() {
    operators_invite(Race::Natural).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_invite_race_all_creating() {
    operators_invite(Race::AllCreate).await;
}

async fn operators_invite(how: Race) {
    let env = world(how).await;
    let answers = race(&env, "/platform/operators/invite", &OPERATOR, json!({"name": "Ola Op", "email": "ola@dezky.test"})).await;
    let won = one_winner(&answers, |d| d.as_str().unwrap().starts_with("User with email ola@dezky.test already exists in Authentik (uid="));
    check_race(&env, how);
    let ak = env.authentik().user_by_email("ola@dezky.test").unwrap();
    assert_eq!(won["subject"], ak.uid);
    assert_eq!(count(&env, "ola@dezky.test"), json!({"identities": 1, "documents": 1, "mailboxes": 0, "files": 0, "audit": 1}));
    assert_eq!(env.authentik().group_names_of(ak.pk), vec![PLATFORM_ADMIN_GROUP.to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_users_invite_race() {
    partner_users_invite(Race::Natural).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_users_invite_race_all_creating() {
    partner_users_invite(Race::AllCreate).await;
}

async fn partner_users_invite(how: Race) {
    let env = world(how).await;
    let answers =
        race(&env, "/partners/northwind/users/invite", &NORTHWIND_OWNER, json!({"name": "Pia", "email": "pia@northwind.test"})).await;
    let won = one_winner(&answers, |d| d == &json!(format!("User pia@northwind.test already belongs to partner {}.", NORTHWIND.id)));
    check_race(&env, how);
    assert!(won.get("attached").is_none(), "the winner created the identity: {won}");
    assert_eq!(count(&env, "pia@northwind.test"), json!({"identities": 1, "documents": 1, "mailboxes": 0, "files": 0, "audit": 1}));
    let doc = &env.find("users", json!({"email": "pia@northwind.test"}))[0];
    assert_eq!(doc["partnerId"], oid(NORTHWIND.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_admins_invite_race() {
    tenant_admins_invite(Race::Natural).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_admins_invite_race_all_creating() {
    tenant_admins_invite(Race::AllCreate).await;
}

async fn tenant_admins_invite(how: Race) {
    let env = world(how).await;
    let answers = race(&env, "/tenants/acme/admins/invite", &NORTHWIND_OWNER, json!({"name": "Tia", "email": "tia@acme.test"})).await;
    let won = one_winner(&answers, |d| d == "tia@acme.test is already an admin of this workspace.");
    check_race(&env, how);
    assert!(won.get("attached").is_none(), "{won}");
    assert_eq!(count(&env, "tia@acme.test"), json!({"identities": 1, "documents": 1, "mailboxes": 0, "files": 0, "audit": 1}));
    let ak = env.authentik().user_by_email("tia@acme.test").unwrap();
    assert_eq!(ak.groups, vec![ACME.group_uuid.unwrap().to_owned()]);
}

/// The attach path races too: promoting an existing member to admin twelve
/// times at once promotes once, audits once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_admins_attach_race() {
    let env = Env::start().await;
    let answers = race(&env, "/tenants/acme/admins/invite", &NORTHWIND_OWNER, json!({"name": "Mia", "email": ACME_MEMBER.email})).await;
    let won = one_winner(&answers, |d| d == &json!(format!("{} is already an admin of this workspace.", ACME_MEMBER.email)));
    assert_eq!(won["attached"], true);
    assert_eq!(env.find("auditevents", json!({"action": "tenant.admin_attached"})).len(), 1);
    let doc = &env.find("users", json!({"email": ACME_MEMBER.email}))[0];
    assert_eq!(doc["tenantRoles"][ACME.id], "admin");
    // And once it is done, inviting again is the same conflict.
    let r = env.post("/tenants/acme/admins/invite", &NORTHWIND_OWNER, json!({"name": "Mia", "email": ACME_MEMBER.email})).await;
    assert_eq!((r.status, r.detail()), (409, format!("{} is already an admin of this workspace.", ACME_MEMBER.email)));
}

/// A person not yet in the partner-staff group: the group add is
/// idempotent, the document write decides the one winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_users_attach_race() {
    let env = Env::start().await;
    let answers =
        race(&env, "/partners/northwind/users/invite", &NORTHWIND_OWNER, json!({"name": "Adam", "email": ACME_ADMIN.email})).await;
    let won = one_winner(&answers, |d| d == &json!(format!("User {} already belongs to partner {}.", ACME_ADMIN.email, NORTHWIND.id)));
    assert_eq!(won["attached"], true);
    assert_eq!(env.find("auditevents", json!({"action": "partner.user_attached"})).len(), 1);
    let ak = env.authentik().user_by_email(ACME_ADMIN.email).unwrap();
    assert!(env.authentik().group_names_of(ak.pk).contains(&PARTNER_STAFF_GROUP.to_owned()), "the winner's group add stays");
}
