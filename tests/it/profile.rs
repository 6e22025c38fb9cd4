//! Rows 24 and 25 end to end (a member's profile and role; the primary
//! e-mail of a member without a mailbox), and what rows 24–30 share: the
//! authorisation table, the prologue's checks.

use crate::members_ii::*;
use e2e::*;
use serde_json::{json, Value};

async fn update(env: &Env, tenant: &str, id: &str, who: &User, body: Value) -> Resp {
    env.post(&member_path(tenant, id, "update"), who, body).await
}

async fn change_email(env: &Env, id: &str, who: &User, email: &str) -> Resp {
    env.post(&member_path("acme", id, "change-email"), who, json!({ "email": email })).await
}

fn role_key(t: &Tenant) -> String {
    format!("tenantRoles.{}", t.id)
}

#[tokio::test]
async fn update_writes_the_document_and_syncs_identity_and_mailbox() {
    let env = Env::start().await;
    // Attributes someone else wrote must survive the merge.
    env.authentik()
        .update_user(ACME_MEMBER.pk, |u| u.attributes = json!({"locale": "da", "dezky.password_change_required": true, "phone": "old"}));
    let before = env.world();

    let body = json!({"name": " Mia Marie ", "firstName": "Mia", "lastName": "Marie", "phone": " +45 1234 ", "alternativeEmail": "Mia@Home.Test", "role": "admin"});
    let r = update(&env, "acme", ACME_MEMBER.id, &ACME_ADMIN, body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let out = r.json();
    let doc = user_doc(&env, ACME_MEMBER.id);
    for (k, v) in
        [("name", "Mia Marie"), ("firstName", "Mia"), ("lastName", "Marie"), ("phone", "+45 1234"), ("alternativeEmail", "mia@home.test")]
    {
        assert_eq!(doc[k], v, "{k}");
        assert_eq!(out[k], v, "{k}");
    }
    assert_eq!(doc["tenantRoles"], json!({ACME.id: "admin"}));
    assert_eq!(doc["role"], "member", "the legacy role changed");
    assert_eq!(out["_id"], ACME_MEMBER.id);
    assert_eq!(out["tenantRoles"], json!({ACME.id: "admin"}));
    assert!(out["updatedAt"].as_str().unwrap().ends_with('Z'));
    let ak = env.authentik().user(ACME_MEMBER.pk).unwrap();
    assert_eq!(ak.name, "Mia Marie");
    assert_eq!(
        ak.attributes,
        json!({"locale": "da", "dezky.password_change_required": true, "phone": "+45 1234", "firstName": "Mia", "lastName": "Marie", "alternativeEmail": "mia@home.test"})
    );
    assert_eq!(env.stalwart().account("m3").unwrap().description.as_deref(), Some("Mia Marie"));
    assert_eq!(env.world()["ocis"], before["ocis"]);
    let audit = events(&env, "tenant.user_updated");
    assert_eq!(audit.len(), 1);
    assert_eq!(
        audit[0]["metadata"],
        json!({"fields": ["name", "firstName", "lastName", "phone", "alternativeEmail", role_key(&ACME)], "role": "admin"})
    );
    assert_eq!((audit[0]["resourceId"].as_str(), audit[0]["resourceName"].as_str()), (Some(ACME_MEMBER.sub), Some("mia@acme.test")));
    assert_eq!(audit[0]["actor"]["email"], ACME_ADMIN.email);

    // `{}` changes nothing and answers the document.
    let world = env.world();
    let r = update(&env, "acme", ACME_MEMBER.id, &ACME_ADMIN, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["name"], "Mia Marie");
    assert_eq!(env.world(), world);
}

#[tokio::test]
async fn a_role_changes_in_this_workspace_only() {
    // Max is a member of acme (mailbox there) and an admin of globex.
    let env = Env::start().await;
    let m6 = env.stalwart().account("m6").unwrap();
    let r = update(&env, "globex", MULTI_TENANT.id, &GLOBEX_ADMIN, json!({"role": "member", "name": "Max M"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let doc = user_doc(&env, MULTI_TENANT.id);
    assert_eq!(doc["tenantRoles"], json!({ACME.id: "member", GLOBEX.id: "member"}));
    assert_eq!(doc["role"], "member");
    assert_eq!(env.authentik().user(MULTI_TENANT.pk).unwrap().name, "Max M");
    assert_eq!(env.stalwart().account("m6"), Some(m6), "acme's mailbox was renamed from globex");
}

#[tokio::test]
async fn role_rules_refuse_and_change_nothing() {
    let env = Env::start().await;
    let before = everything(&env);
    for (what, tenant, id, who, status, detail) in [
        ("the owner", "acme", ACME_OWNER.id, &OPERATOR, 403, "The primary account’s role can’t be changed."),
        ("the mailbox-less admin", "acme", ACME_INACTIVE_ADMIN.id, &OPERATOR, 403, "The primary account’s role can’t be changed."),
        ("one's own", "acme", ACME_ADMIN.id, &ACME_ADMIN, 403, "You can’t change your own role."),
    ] {
        let r = update(&env, tenant, id, who, json!({"role": "member", "phone": "1"})).await;
        assert_eq!((r.status, r.detail().as_str()), (status, detail), "{what}: {}", r.text);
    }
    assert_eq!(everything(&env), before);
    // Their contact fields still change.
    let r = update(&env, "acme", ACME_OWNER.id, &ACME_OWNER, json!({"phone": "1"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = update(&env, "acme", ACME_INACTIVE_ADMIN.id, &ACME_OWNER, json!({"lastName": "Inactive"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(user_doc(&env, ACME_INACTIVE_ADMIN.id)["lastName"], "Inactive");

    // globex has two admins (Gina, and Max there): one may go, not both.
    let r = update(&env, "globex", GLOBEX_ADMIN.id, &OPERATOR, json!({"role": "member"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let before = everything(&env);
    let r = update(&env, "globex", MULTI_TENANT.id, &OPERATOR, json!({"role": "member"})).await;
    assert_eq!((r.status, r.detail().as_str()), (409, "Can’t remove the last admin of this workspace."));
    assert_eq!(everything(&env), before);
    // Promoting is always fine; so is keeping a role.
    assert_eq!(update(&env, "globex", MULTI_TENANT.id, &OPERATOR, json!({"role": "admin"})).await.status, 200);
    // Bodies are strict.
    for body in [
        json!({"role": "owner"}),
        json!({"name": {"$ne": ""}}),
        json!({"phone": 5}),
        json!({"nickname": "x"}),
        json!({"name": "  "}),
        json!({"alternativeEmail": "nope"}),
    ] {
        assert_eq!(update(&env, "acme", ACME_MEMBER.id, &OPERATOR, body.clone()).await.status, 400, "{body}");
    }
}

#[tokio::test]
async fn identity_and_mailbox_syncs_are_best_effort() {
    for (what, fault) in [
        (
            "identity write",
            (|e: &Env| {
                e.fail(
                    &e.emu.authentik().controls,
                    FaultRule::new(format!("/api/v3/core/users/{}/", ACME_MEMBER.pk), Fault::Status(500)).method("PATCH"),
                )
            }) as fn(&Env),
        ),
        ("identity read", |e: &Env| {
            e.fail(
                &e.emu.authentik().controls,
                FaultRule::new(format!("/api/v3/core/users/{}/", ACME_MEMBER.pk), Fault::Status(503)).method("GET"),
            )
        }),
        ("mailbox", |e: &Env| e.fail(&e.emu.stalwart().controls, FaultRule::new("/jmap", Fault::Status(500)))),
    ] {
        let env = Env::start().await;
        fault(&env);
        let r = update(&env, "acme", ACME_MEMBER.id, &ACME_OWNER, json!({"name": "Mia Marie", "phone": "7"})).await;
        assert_eq!(r.status, 200, "{what}: {}", r.text);
        assert_eq!(user_doc(&env, ACME_MEMBER.id)["name"], "Mia Marie", "{what}");
        assert_eq!(events(&env, "tenant.user_updated").len(), 1, "{what}");
        let (ak, mailbox) = (env.authentik().user(ACME_MEMBER.pk).unwrap(), env.stalwart().account("m3").unwrap());
        assert_eq!(ak.name == "Mia Marie", what == "mailbox", "{what}: identity");
        assert_eq!(mailbox.description.as_deref() == Some("Mia Marie"), what != "mailbox", "{what}: mailbox");
    }
}

#[tokio::test]
async fn a_failed_document_or_audit_write_changes_nothing() {
    for rule in [FaultRule::new("/action/updateOne", Fault::Status(500)), FaultRule::new("/action/insertOne", Fault::Status(500))] {
        let env = Env::start().await;
        let before = everything(&env);
        env.fail_data_api(rule);
        let r = update(&env, "acme", ACME_MEMBER.id, &ACME_OWNER, json!({"name": "Mia Marie", "role": "admin"})).await;
        assert_eq!(r.status, 502, "{}", r.text);
        assert_eq!(everything(&env), before);
    }
}

#[tokio::test]
async fn change_email_moves_sign_in_and_document_together() {
    let env = Env::start().await;
    let before = env.world();
    let r = change_email(&env, ACME_INACTIVE_ADMIN.id, &ACME_OWNER, " Ivan@Home.Test ").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["email"], "ivan@home.test");
    assert_eq!(user_doc(&env, ACME_INACTIVE_ADMIN.id)["email"], "ivan@home.test");
    let ak = env.authentik().user(ACME_INACTIVE_ADMIN.pk).unwrap();
    assert_eq!((ak.username.as_str(), ak.email.as_str(), ak.uid.as_str()), ("ivan@home.test", "ivan@home.test", ACME_INACTIVE_ADMIN.sub));
    assert_eq!(env.world()["stalwart"], before["stalwart"]);
    let audit = events(&env, "tenant.user_primary_email_changed");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["metadata"], json!({"from": "ivan@acme.test", "to": "ivan@home.test"}));
    assert_eq!(
        (audit[0]["resourceId"].as_str(), audit[0]["resourceName"].as_str()),
        (Some(ACME_INACTIVE_ADMIN.sub), Some("ivan@home.test"))
    );

    // The same address, in any case: a no-op.
    let world = env.world();
    let r = change_email(&env, ACME_INACTIVE_ADMIN.id, &ACME_OWNER, "IVAN@home.test ").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(env.world(), world);
}

#[tokio::test]
async fn change_email_refusals_change_nothing() {
    let env = Env::start().await;
    let doc_only = "65a0000000000000000000d1";
    insert_member(&env, doc_only, "doc@home.test", ACME.id, "member");
    // Taken in Authentik only, by someone with no document.
    env.authentik().add_user("zed@home.test", "Zed", "zed@home.test");
    let before = everything(&env);
    for (what, id, email, status, detail) in [
        (
            "has a mailbox",
            ACME_MEMBER.id,
            "mia@home.test",
            400,
            "This member has a mailbox — their primary address is their inbox and can’t be changed here. Add an alias instead.",
        ),
        ("no identity", doc_only, "doc2@home.test", 400, "This member isn’t linked to an identity yet."),
        ("invalid", ACME_INACTIVE_ADMIN.id, "ivan@home", 400, "Enter a valid email address."),
        ("taken by a member", ACME_INACTIVE_ADMIN.id, "Alice@acme.test", 409, "alice@acme.test is already in use."),
        ("taken in Authentik", ACME_INACTIVE_ADMIN.id, "zed@home.test", 409, "zed@home.test is already in use."),
        ("taken in the database", ACME_INACTIVE_ADMIN.id, "doc@home.test", 409, "doc@home.test is already in use."),
    ] {
        let r = change_email(&env, id, &OPERATOR, email).await;
        assert_eq!((r.status, r.detail().as_str()), (status, detail), "{what}: {}", r.text);
    }
    for body in [json!({"email": {"$ne": ""}}), json!({}), json!({"email": "a@b.test", "name": "x"})] {
        assert_eq!(
            env.post(&member_path("acme", ACME_INACTIVE_ADMIN.id, "change-email"), &OPERATOR, body.clone()).await.status,
            400,
            "{body}"
        );
    }
    assert_eq!(everything(&env), before);
}

#[tokio::test]
async fn change_email_failures_leave_identity_and_document_as_they_were() {
    let patch = format!("/api/v3/core/users/{}/", ACME_INACTIVE_ADMIN.pk);
    for (what, fault) in [
        ("identity", FaultRule::new(patch.as_str(), Fault::Status(500)).method("PATCH").times(1)),
        ("document", FaultRule::new("/action/updateOne", Fault::Status(500))),
        ("audit", FaultRule::new("/action/insertOne", Fault::Status(500))),
    ] {
        let env = Env::start().await;
        let before = everything(&env);
        if what == "identity" {
            env.fail(&env.emu.authentik().controls, fault);
        } else {
            env.fail_data_api(fault);
        }
        let r = change_email(&env, ACME_INACTIVE_ADMIN.id, &ACME_OWNER, "ivan@home.test").await;
        assert_eq!(r.status, 502, "{what}: {}", r.text);
        assert_eq!(everything(&env), before, "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_email_changes_succeed_once() {
    let env = Env::start().await;
    // A slow identity write: every request reads the old state first.
    let patch = format!("/api/v3/core/users/{}/", ACME_INACTIVE_ADMIN.pk);
    env.fail(&env.emu.authentik().controls, FaultRule::new(patch, Fault::DelayMs(400)).method("PATCH"));
    let rs = concurrently(
        &env,
        12,
        &member_path("acme", ACME_INACTIVE_ADMIN.id, "change-email"),
        &ACME_OWNER,
        json!({"email": "ivan@home.test"}),
    )
    .await;
    one_winner(&rs, 200);
    assert_eq!(user_doc(&env, ACME_INACTIVE_ADMIN.id)["email"], "ivan@home.test");
    let ak = env.authentik().user(ACME_INACTIVE_ADMIN.pk).unwrap();
    assert_eq!((ak.username.as_str(), ak.email.as_str()), ("ivan@home.test", "ivan@home.test"), "a loser undid the winner");
    assert_eq!(events(&env, "tenant.user_primary_email_changed").len(), 1);
    assert_eq!(env.find("users", json!({"email": "ivan@home.test"})).len(), 1);
}

/// One allowed call per route (each caller a fresh target where needed).
async fn allowed_call(env: &Env, route: &str, i: usize, who: &User) -> u16 {
    let m = ACME_MEMBER.id;
    match route {
        "update" => update(env, "acme", m, who, json!({"phone": format!("{i}")})).await.status,
        "change-email" => change_email(env, ACME_INACTIVE_ADMIN.id, who, &format!("ivan{i}@home.test")).await.status,
        "aliases" => env.get(&member_path("acme", m, "aliases"), who).await.status,
        "aliases/add" => {
            env.post(&member_path("acme", m, "aliases/add"), who, json!({"localPart": format!("a{i}"), "domain": "acme.test"})).await.status
        }
        "aliases/remove" => {
            env.post(&member_path("acme", m, "aliases/remove"), who, json!({"address": format!("a{i}@acme.test")})).await.status
        }
        "mailbox/create" => {
            let id = format!("65a0000000000000000001{i:02}");
            insert_member(env, &id, &format!("p{i}@home.test"), ACME.id, "member");
            env.post(&member_path("acme", &id, "mailbox/create"), who, json!({"localPart": format!("p{i}")})).await.status
        }
        // Ownership goes back and forth between Adam and Alice.
        "ownership" => {
            let to = if i.is_multiple_of(2) { ACME_ADMIN.id } else { ACME_OWNER.id };
            env.post("/tenants/acme/ownership/transfer", who, json!({"userId": to})).await.status
        }
        _ => unreachable!(),
    }
}

const ROUTES: [(&str, u16); 7] = [
    ("update", 200),
    ("change-email", 200),
    ("aliases", 200),
    ("aliases/add", 200),
    ("aliases/remove", 200),
    ("mailbox/create", 201),
    ("ownership", 200),
];

/// A refused call of each route, with a valid body, against acme.
async fn refused_call(env: &Env, route: &str, tenant: &str, who: &User) -> Resp {
    let m = ACME_MEMBER.id;
    match route {
        "aliases" => env.get(&member_path(tenant, m, "aliases"), who).await,
        "ownership" => env.post(&format!("/tenants/{tenant}/ownership/transfer"), who, json!({"userId": ACME_ADMIN.id})).await,
        "change-email" => env.post(&member_path(tenant, ACME_INACTIVE_ADMIN.id, route), who, json!({"email": "x@home.test"})).await,
        "mailbox/create" => env.post(&member_path(tenant, ACME_INACTIVE_ADMIN.id, route), who, json!({"localPart": "x"})).await,
        "update" => env.post(&member_path(tenant, m, route), who, json!({"phone": "1"})).await,
        "aliases/add" => env.post(&member_path(tenant, m, route), who, json!({"localPart": "x", "domain": "acme.test"})).await,
        "aliases/remove" => env.post(&member_path(tenant, m, route), who, json!({"address": "x@acme.test"})).await,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn authorisation_table_of_rows_24_to_30() {
    assert_table_complete();
    let env = Env::start().await;
    let before = everything(&env);
    for (route, _) in ROUTES {
        for (who, status) in DENIED {
            let r = refused_call(&env, route, "acme", who).await;
            assert_eq!(r.status, status, "{route} by {}: {}", who.email, r.text);
        }
        // Staff scoped to acme do not see globex.
        let r = refused_call(&env, route, "globex", &NORTHWIND_SCOPED).await;
        assert_eq!((r.status, r.detail().as_str()), (404, "Workspace not found"), "{route}: {}", r.text);
    }
    assert_eq!(everything(&env), before, "a refused call changed something");

    for (i, who) in ALLOWED.into_iter().enumerate() {
        for (route, ok) in ROUTES {
            assert_eq!(allowed_call(&env, route, i, who).await, ok, "{route} by {}", who.email);
        }
    }
}

#[tokio::test]
async fn methods_tokens_sizes_and_unknown_members_are_checked_first() {
    let env = Env::start().await;
    let before = everything(&env);
    let t = env.token(&ACME_OWNER);
    let big = format!("{{\"x\":\"{}\"}}", "x".repeat(65 * 1024));
    for (route, _) in ROUTES {
        let (path, method, wrong) = match route {
            "aliases" => (member_path("acme", ACME_MEMBER.id, route), "GET", "POST"),
            "ownership" => ("/tenants/acme/ownership/transfer".to_owned(), "POST", "GET"),
            _ => (member_path("acme", ACME_MEMBER.id, route), "POST", "GET"),
        };
        let r = env.call(wrong, &path, Some(&t), None).await;
        assert_eq!((r.status, r.header("allow")), (405, Some(method)), "{route}");
        assert_eq!(env.call(method, &path, None, None).await.status, 401, "{route}");
        assert_eq!(env.call(method, &path, Some(&t), Some(&big)).await.status, 413, "{route}");
        for body in ["[]", "null", "{", "\"\""] {
            assert_eq!(env.call(method, &path, Some(&t), Some(body)).await.status, 400, "{route} {body}");
        }
    }
    // Unknown, malformed and foreign members are 404, also as the body's userId.
    for id in ["zzz", "65a00000000000000000008", "65a0000000000000000000ff", GLOBEX_ADMIN.id] {
        for (route, _) in ROUTES {
            let r = match route {
                "ownership" => env.post("/tenants/acme/ownership/transfer", &ACME_OWNER, json!({"userId": id})).await,
                "aliases" => env.get(&member_path("acme", id, route), &ACME_OWNER).await,
                _ => env.post(&member_path("acme", id, route), &ACME_OWNER, json!({})).await,
            };
            // Row 24 takes `{}`; the others' bodies fail first when they need fields.
            let expected = if matches!(route, "update" | "ownership" | "aliases") { 404 } else { 400 };
            assert_eq!(r.status, expected, "{route} {id}: {}", r.text);
        }
    }
    assert_eq!(everything(&env), before);
}
