//! Rows 19–23 end to end: members-remove, members-suspend, members-resume,
//! members-logout and members-reset-password, with the state of all four
//! systems checked afterwards.

use e2e::*;
use serde_json::{json, Value};

const VERBS: [&str; 5] = ["remove", "suspend", "resume", "logout", "reset-password"];

fn path(tenant: &str, user_id: &str, verb: &str) -> String {
    format!("/tenants/{tenant}/members/{user_id}/{verb}")
}

/// An empty body, as the frontends send it.
async fn act(env: &Env, tenant: &str, user_id: &str, verb: &str, who: &User) -> Resp {
    env.call("POST", &path(tenant, user_id, verb), Some(&env.token(who)), None).await
}

fn user_doc(env: &Env, id: &str) -> Option<Value> {
    env.find("users", json!({"_id": oid(id)})).into_iter().next()
}

fn events(env: &Env, action: &str) -> Vec<Value> {
    env.find("auditevents", json!({"action": action}))
}

fn pk_of(doc: &Value) -> i64 {
    doc["authentikUserPk"]["$numberInt"].as_str().map(|s| s.parse().unwrap()).or_else(|| doc["authentikUserPk"].as_i64()).unwrap()
}

/// Everything but the audit log, to compare worlds around an operation.
fn without_audit(mut world: Value) -> Value {
    world["db"].as_object_mut().unwrap().remove("auditevents");
    world
}

#[tokio::test]
async fn remove_from_the_last_tenant_deletes_the_person_everywhere() {
    let env = Env::start().await;
    let before = env.world();
    let (id, doc) = create_jane(&env).await;
    let pk = pk_of(&doc);
    env.authentik().add_session(pk);

    let r = act(&env, "acme", &id, "remove", &ACME_ADMIN).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());
    assert!(user_doc(&env, &id).is_none(), "document kept");
    assert!(env.authentik().user(pk).is_none(), "identity kept");
    assert!(env.authentik().sessions_of(pk).is_empty());
    assert!(env.stalwart().account(doc["stalwartAccountId"].as_str().unwrap()).is_none(), "mailbox kept");
    assert!(env.ocis().user(doc["ocisUserId"].as_str().unwrap()).is_none(), "file account kept");
    // Everyone else is exactly as before.
    assert_eq!(without_audit(env.world()), without_audit(before));
    let audit = events(&env, "tenant.user_removed");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["resourceId"], doc["authentikSubjectId"]);
    assert_eq!(audit[0]["resourceName"], "jane@acme.test");
    assert_eq!(audit[0]["tenantSlug"], "acme");
    assert_eq!(audit[0]["metadata"], json!({"fullyRemoved": true}));
    assert_eq!(audit[0]["actor"]["email"], ACME_ADMIN.email);

    // Gone: the same call again finds no member.
    let r = act(&env, "acme", &id, "remove", &ACME_ADMIN).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.detail(), "User not found in this workspace");
}

#[tokio::test]
async fn remove_detaches_a_member_of_several_tenants() {
    // From globex: the mailbox is acme's, so it stays, and so do its handles.
    let env = Env::start().await;
    let mailbox = env.stalwart().account("m6").unwrap();
    let r = act(&env, "globex", MULTI_TENANT.id, "remove", &GLOBEX_ADMIN).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let doc = user_doc(&env, MULTI_TENANT.id).expect("the person stays");
    assert_eq!(doc["tenantIds"], json!([oid(ACME.id)]));
    assert_eq!(doc["tenantRoles"], json!({ACME.id: "member"}));
    assert_eq!(doc["mailboxAddress"], "max@acme.test");
    assert_eq!(doc["stalwartAccountId"], "m6");
    assert_eq!(env.stalwart().account("m6"), Some(mailbox), "another tenant's mailbox was touched");
    let ak = env.authentik().user(MULTI_TENANT.pk).expect("identity stays");
    assert_eq!(ak.groups, vec![ACME.group_uuid.unwrap().to_owned()]);
    assert_eq!(events(&env, "tenant.user_removed")[0]["metadata"], json!({"fullyRemoved": false}));

    // From acme: the mailbox is here, so it goes with its handles.
    let env = Env::start().await;
    let r = act(&env, "acme", MULTI_TENANT.id, "remove", &NORTHWIND_STAFF).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let doc = user_doc(&env, MULTI_TENANT.id).expect("the person stays");
    assert_eq!(doc["tenantIds"], json!([oid(GLOBEX.id)]));
    assert_eq!(doc["tenantRoles"], json!({GLOBEX.id: "admin"}));
    assert!(doc.get("mailboxAddress").is_none() && doc.get("stalwartAccountId").is_none(), "{doc}");
    assert!(env.stalwart().account("m6").is_none(), "this tenant's mailbox stayed");
    let ak = env.authentik().user(MULTI_TENANT.pk).expect("identity stays");
    assert_eq!(ak.groups, vec![GLOBEX.group_uuid.unwrap().to_owned()]);
    let audit = events(&env, "tenant.user_removed");
    assert_eq!(audit[0]["metadata"], json!({"fullyRemoved": false}));
    assert_eq!(audit[0]["tenantSlug"], "acme");
}

#[tokio::test]
async fn partner_staff_and_platform_admins_are_never_fully_removed() {
    let env = Env::start().await;
    for u in [&NORTHWIND_STAFF, &OPERATOR] {
        // They are members of acme too (and in its group) for this test.
        env.db().update_one(
            "dezky",
            "users",
            json!({"_id": oid(u.id)}),
            json!({"$set": {"tenantIds": [oid(ACME.id)], format!("tenantRoles.{}", ACME.id): "admin"}}),
        );
        env.authentik().update_user(u.pk, |a| a.groups.push(ACME.group_uuid.unwrap().to_owned()));
        let before = env.authentik().user(u.pk).unwrap();
        let r = act(&env, "acme", u.id, "remove", &ACME_OWNER).await;
        assert_eq!(r.status, 204, "{}: {}", u.email, r.text);
        let doc = user_doc(&env, u.id).expect("document kept");
        assert_eq!(doc["tenantIds"], json!([]), "{}", u.email);
        assert_eq!(doc["tenantRoles"], json!({}), "{}", u.email);
        let after = env.authentik().user(u.pk).expect("identity kept");
        assert!(!after.groups.contains(&ACME.group_uuid.unwrap().to_owned()));
        assert_eq!(after.groups.len(), before.groups.len() - 1, "only acme's group was left");
    }
    assert_eq!(user_doc(&env, NORTHWIND_STAFF.id).unwrap()["partnerId"], oid(NORTHWIND.id));
    assert_eq!(user_doc(&env, OPERATOR.id).unwrap()["platformAdmin"], true);
    let audit = events(&env, "tenant.user_removed");
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().all(|e| e["metadata"] == json!({"fullyRemoved": false})));
}

#[tokio::test]
async fn remove_is_retry_safe_after_each_required_step_fails() {
    struct Case {
        what: &'static str,
        fault: fn(&Env, i64),
        status: u16,
    }
    let cases = [
        Case {
            what: "file account",
            fault: |e, _| e.fail(&e.emu.ocis().controls, FaultRule::new("/graph/v1.0/users/", Fault::Status(500)).method("DELETE")),
            status: 502,
        },
        Case {
            what: "identity",
            fault: |e, pk| {
                e.fail(
                    &e.emu.authentik().controls,
                    FaultRule::new(format!("/api/v3/core/users/{pk}/"), Fault::Status(500)).method("DELETE"),
                )
            },
            status: 502,
        },
        // The identity is deleted upstream, too late for us (each of the
        // attempts times out): the retry's 404 counts as done.
        Case {
            what: "identity timeout",
            fault: |e, pk| {
                e.fail(
                    &e.emu.authentik().controls,
                    FaultRule::new(format!("/api/v3/core/users/{pk}/"), Fault::DelayMs(2500))
                        .method("DELETE")
                        .times(shared::retry::ATTEMPTS as u32),
                )
            },
            status: 504,
        },
        // Once only, so undoing the audit event (also a deleteOne) works.
        Case {
            what: "document delete",
            fault: |e, _| e.fail_data_api(FaultRule::new("/action/deleteOne", Fault::Status(500)).times(1)),
            status: 502,
        },
        Case { what: "audit write", fault: |e, _| e.fail_data_api(FaultRule::new("/action/insertOne", Fault::Status(500))), status: 502 },
        Case { what: "audit write dropped", fault: |e, _| e.fail_data_api(FaultRule::new("/action/insertOne", Fault::Drop)), status: 502 },
    ];
    for case in cases {
        let env = Env::start().await;
        let (id, doc) = create_jane(&env).await;
        let pk = pk_of(&doc);
        (case.fault)(&env, pk);
        let r = act(&env, "acme", &id, "remove", &ACME_OWNER).await;
        assert_eq!(r.status, case.status, "{}: {}", case.what, r.text);
        // Still findable, unchanged but for the accounts already gone (no
        // longer named, nor `ok`), and no event claims a removal.
        let after = user_doc(&env, &id).unwrap_or_else(|| panic!("{}: the document is gone", case.what));
        let named = ["updatedAt", "authentikUserPk", "stalwartAccountId", "mailboxAddress", "ocisUserId", "provisioning"];
        let rest = |d: &Value| {
            d.as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| !named.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<serde_json::Map<_, _>>()
        };
        assert_eq!(rest(&after), rest(&doc), "{}: the document changed", case.what);
        let p = &after["provisioning"];
        assert!(p["authentik"] != "ok" || env.authentik().user(pk).is_some(), "{}: {after}", case.what);
        assert!(
            p["stalwart"] != "ok" || after["stalwartAccountId"].as_str().and_then(|m| env.stalwart().account(m)).is_some(),
            "{}: {after}",
            case.what
        );
        assert!(p["ocis"] != "ok" || after["ocisUserId"].as_str().and_then(|o| env.ocis().user(o)).is_some(), "{}: {after}", case.what);
        assert!(events(&env, "tenant.user_removed").is_empty(), "{}: an event for a failed removal", case.what);
        let listed = env.get("/tenants/acme/members", &ACME_OWNER).await.json();
        assert!(listed.as_array().unwrap().iter().any(|u| u["email"] == "jane@acme.test"), "{}", case.what);

        for c in [&env.emu.data_api().controls, &env.emu.authentik().controls, &env.emu.ocis().controls] {
            c.faults.clear();
        }
        // Let a late upstream delete land before the retry.
        tokio::time::sleep(std::time::Duration::from_millis(if case.status == 504 { 2000 } else { 0 })).await;
        let r = act(&env, "acme", &id, "remove", &ACME_OWNER).await;
        assert_eq!(r.status, 204, "{} retry: {}", case.what, r.text);
        assert!(user_doc(&env, &id).is_none(), "{}", case.what);
        assert!(env.authentik().user(pk).is_none(), "{}", case.what);
        assert!(env.ocis().user(doc["ocisUserId"].as_str().unwrap()).is_none(), "{}", case.what);
        assert!(env.stalwart().account(doc["stalwartAccountId"].as_str().unwrap()).is_none(), "{}", case.what);
        assert_eq!(events(&env, "tenant.user_removed").len(), 1, "{}", case.what);
    }
}

#[tokio::test]
async fn suspend_then_resume_gives_back_exactly_the_sign_in_the_member_had() {
    let env = Env::start().await;
    let mailbox = env.stalwart().account("m3").unwrap();
    assert_eq!(env.authentik().sessions_of(ACME_MEMBER.pk).len(), 2);

    let r = act(&env, "acme", ACME_MEMBER.id, "suspend", &NORTHWIND_SCOPED).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let ak = env.authentik().user(ACME_MEMBER.pk).unwrap();
    assert!(!ak.is_active);
    assert!(env.authentik().sessions_of(ACME_MEMBER.pk).is_empty(), "Authentik ends a deactivated user's sessions");
    assert_eq!(env.stalwart().is_suspended("m3"), Some(true));
    assert_eq!(env.stalwart().password_of("m3"), mailbox.password().map(str::to_owned), "suspending changed the password");
    assert_eq!(user_doc(&env, ACME_MEMBER.id).unwrap()["active"], false);
    let audit = events(&env, "tenant.user_suspended");
    assert_eq!(audit.len(), 1);
    assert_eq!((audit[0]["resourceId"].as_str(), audit[0]["tenantSlug"].as_str()), (Some(ACME_MEMBER.sub), Some("acme")));
    assert!(audit[0].get("metadata").is_none());
    // Other members and their mailboxes are untouched.
    assert!(env.authentik().user(ACME_ADMIN.pk).unwrap().is_active);
    assert_eq!(env.stalwart().is_suspended("m2"), Some(false));

    let r = act(&env, "acme", ACME_MEMBER.id, "resume", &ACME_OWNER).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(env.authentik().user(ACME_MEMBER.pk).unwrap().is_active);
    assert_eq!(env.stalwart().account("m3"), Some(mailbox), "the mailbox is not as it was");
    assert_eq!(user_doc(&env, ACME_MEMBER.id).unwrap()["active"], true);
    assert_eq!(events(&env, "tenant.user_resumed").len(), 1);
}

#[tokio::test]
async fn suspend_touches_only_a_mailbox_that_is_here() {
    let env = Env::start().await;
    let r = act(&env, "globex", MULTI_TENANT.id, "suspend", &GLOBEX_ADMIN).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(!env.authentik().user(MULTI_TENANT.pk).unwrap().is_active);
    assert_eq!(env.stalwart().is_suspended("m6"), Some(false), "acme's mailbox was suspended from globex");
}

#[tokio::test]
async fn an_identity_failure_on_suspend_or_reset_changes_nothing() {
    for (verb, method, suffix) in [("suspend", "PATCH", ""), ("resume", "PATCH", ""), ("reset-password", "POST", "set_password/")] {
        let env = Env::start().await;
        let before = env.world();
        let mailbox = env.stalwart().account("m3");
        let rule = FaultRule::new(format!("/api/v3/core/users/{}/{suffix}", ACME_MEMBER.pk), Fault::Status(500)).method(method);
        env.fail(&env.emu.authentik().controls, rule);
        let r = act(&env, "acme", ACME_MEMBER.id, verb, &ACME_OWNER).await;
        assert_eq!(r.status, 502, "{verb}: {}", r.text);
        assert!(r.detail().starts_with("Authentik answered 500"), "{verb}: {}", r.detail());
        assert_eq!(env.world(), before, "{verb}");
        assert_eq!(env.stalwart().account("m3"), mailbox, "{verb}: the mailbox changed");
        assert!(env.authentik().password_of(ACME_MEMBER.pk).is_none(), "{verb}");
    }
}

#[tokio::test]
async fn a_database_failure_on_suspend_puts_the_sign_in_back() {
    let env = Env::start().await;
    let before = env.world();
    let mailbox = env.stalwart().account("m3").unwrap();
    env.fail_data_api(FaultRule::new("/action/updateOne", Fault::Status(500)));
    let r = act(&env, "acme", ACME_MEMBER.id, "suspend", &ACME_OWNER).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(env.authentik().user(ACME_MEMBER.pk).unwrap().is_active, "identity left suspended");
    assert_eq!(env.stalwart().account("m3"), Some(mailbox), "mailbox left suspended");
    assert_eq!(env.world()["db"], before["db"], "an audit event stayed");
}

#[tokio::test]
async fn mailbox_failures_are_best_effort() {
    let env = Env::start().await;
    let mailbox = env.stalwart().account("m3").unwrap();
    env.fail(&env.emu.stalwart().controls, FaultRule::new("/jmap", Fault::Status(500)));

    let r = act(&env, "acme", ACME_MEMBER.id, "suspend", &ACME_OWNER).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(!env.authentik().user(ACME_MEMBER.pk).unwrap().is_active);
    assert_eq!(user_doc(&env, ACME_MEMBER.id).unwrap()["active"], false);

    let r = act(&env, "acme", ACME_MEMBER.id, "reset-password", &ACME_OWNER).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let password = r.json()["tempPassword"].as_str().unwrap().to_owned();
    assert_eq!(env.authentik().password_of(ACME_MEMBER.pk), Some(password));

    let r = act(&env, "acme", ACME_MEMBER.id, "remove", &ACME_OWNER).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(user_doc(&env, ACME_MEMBER.id).is_none());
    assert_eq!(env.stalwart().account("m3"), Some(mailbox), "the failing mailbox changed");
}

#[tokio::test]
async fn logout_ends_every_session_on_every_page() {
    let env = Env::start().await;
    for _ in 0..118 {
        env.authentik().add_session(ACME_MEMBER.pk);
    }
    let others = env.authentik().sessions().len() - 120;
    env.authentik().add_session(ACME_ADMIN.pk);

    let r = act(&env, "acme", ACME_MEMBER.id, "logout", &ACME_ADMIN).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"sessions": 120}));
    assert!(env.authentik().sessions_of(ACME_MEMBER.pk).is_empty(), "sessions left");
    assert_eq!(env.authentik().sessions().len(), others + 1, "another user's session ended");
    let pages: Vec<String> = env
        .emu
        .authentik()
        .controls
        .log
        .all()
        .iter()
        .filter(|r| r.method == "GET" && r.path() == "/api/v3/core/authenticated_sessions/")
        .map(|r| r.uri.clone())
        .collect();
    assert_eq!(pages.len(), 2, "{pages:?}");
    let audit = events(&env, "tenant.user_logout_forced");
    assert_eq!(audit.len(), 1);
    // Stored as an int32 (canonical Extended JSON here).
    assert_eq!(audit[0]["metadata"], json!({"sessions": {"$numberInt": "120"}}));

    // Nothing left to end is an honest zero.
    let r = act(&env, "acme", ACME_MEMBER.id, "logout", &ACME_ADMIN).await;
    assert_eq!(r.json(), json!({"sessions": 0}));
}

#[tokio::test]
async fn logout_never_claims_a_logout_that_did_not_happen() {
    let sessions = "/api/v3/core/authenticated_sessions/";
    for (what, rule) in [
        ("listing fails", FaultRule::new(sessions, Fault::Status(500)).method("GET")),
        ("listing dropped", FaultRule::new(sessions, Fault::Drop).method("GET")),
        ("a delete fails", FaultRule::new(sessions, Fault::Status(500)).method("DELETE").times(1)),
        ("identity unreadable", FaultRule::new(format!("/api/v3/core/users/{}/", ACME_MEMBER.pk), Fault::Status(503)).method("GET")),
    ] {
        let env = Env::start().await;
        env.fail(&env.emu.authentik().controls, rule);
        let r = act(&env, "acme", ACME_MEMBER.id, "logout", &ACME_OWNER).await;
        assert_eq!(r.status, 502, "{what}: {}", r.text);
        assert!(events(&env, "tenant.user_logout_forced").is_empty(), "{what}: audited a failed logout");
    }
}

#[tokio::test]
async fn reset_password_sets_one_fresh_password_shown_once() {
    let env = Env::start().await;
    let r = act(&env, "acme", ACME_MEMBER.id, "reset-password", &NORTHWIND_STAFF).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = r.json();
    assert_eq!(body["email"], "mia@acme.test");
    let password = body["tempPassword"].as_str().unwrap().to_owned();
    assert_eq!(password.len(), 16);
    assert_eq!(body.as_object().unwrap().len(), 2);
    assert_eq!(env.authentik().password_of(ACME_MEMBER.pk).as_deref(), Some(password.as_str()));
    assert_eq!(env.stalwart().password_of("m3").as_deref(), Some(password.as_str()));
    assert!(!env.snapshot().to_string().contains(&password), "the password was stored");
    let audit = events(&env, "tenant.user_password_reset");
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0]["resourceName"].as_str(), audit[0]["actor"]["email"].as_str()),
        (Some("mia@acme.test"), Some(NORTHWIND_STAFF.email))
    );
    let carriers = env.carriers_of(&password);
    assert_eq!(carriers, vec![format!("POST /api/v3/core/users/{}/set_password/", ACME_MEMBER.pk), "POST /jmap/".to_owned()]);

    // A second reset is another password; a mailbox elsewhere is not touched.
    let again = act(&env, "acme", ACME_MEMBER.id, "reset-password", &NORTHWIND_STAFF).await.json();
    assert_ne!(again["tempPassword"], body["tempPassword"]);
    let m6 = env.stalwart().account("m6").unwrap();
    let r = act(&env, "globex", MULTI_TENANT.id, "reset-password", &GLOBEX_ADMIN).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(env.stalwart().account("m6"), Some(m6));
}

#[tokio::test]
async fn authorisation_table_of_rows_19_to_23() {
    let env = Env::start().await;
    let denied = crate::members_ii::DENIED;
    let before = env.world();
    for verb in VERBS {
        for (who, status) in denied {
            let r = act(&env, "acme", ACME_ADMIN.id, verb, who).await;
            assert_eq!(r.status, status, "{verb} by {}: {}", who.email, r.text);
        }
    }
    assert_eq!(env.world(), before, "a refused call changed something");

    let allowed = [&OPERATOR, &ACME_OWNER, &ACME_ADMIN, &NORTHWIND_OWNER, &NORTHWIND_STAFF, &NORTHWIND_SCOPED];
    assert!(
        USERS.iter().all(|u| allowed.iter().any(|a| a.id == u.id) || denied.iter().any(|(d, _)| d.id == u.id)),
        "a demo caller is missing"
    );
    for (i, who) in allowed.into_iter().enumerate() {
        for verb in ["suspend", "resume", "logout", "reset-password"] {
            let r = act(&env, "acme", ACME_MEMBER.id, verb, who).await;
            assert_eq!(r.status, if verb == "suspend" || verb == "resume" { 204 } else { 200 }, "{verb} by {}: {}", who.email, r.text);
        }
        // A member with nothing but a document (no identity, no mailbox) to remove.
        let id = format!("65a0000000000000000001{i:02}");
        env.db().insert("dezky", "users", json!({"_id": oid(&id), "authentikSubjectId": format!("sub-{i}"), "email": format!("p{i}@elsewhere.test"), "tenantIds": [oid(ACME.id)], "tenantRoles": {ACME.id: "member"}}));
        let r = act(&env, "acme", &id, "remove", who).await;
        assert_eq!(r.status, 204, "remove by {}: {}", who.email, r.text);
        assert!(user_doc(&env, &id).is_none());
    }
    // Scoped staff reach only their tenants.
    assert_eq!(act(&env, "globex", GLOBEX_ADMIN.id, "suspend", &NORTHWIND_SCOPED).await.status, 404);
}

#[tokio::test]
async fn members_and_tenants_that_cannot_be_seen_are_404() {
    let env = Env::start().await;
    let before = env.world();
    for verb in VERBS {
        for (what, tenant, user_id, who, detail) in [
            ("a member of another tenant", "acme", GLOBEX_ADMIN.id, &ACME_OWNER, "User not found in this workspace"),
            ("malformed id", "acme", "mia", &ACME_OWNER, "User not found in this workspace"),
            ("23 hex", "acme", "65a00000000000000000008", &ACME_OWNER, "User not found in this workspace"),
            ("unknown id", "acme", "65a0000000000000000000ff", &OPERATOR, "User not found in this workspace"),
            // 404 before 403: a weak caller who sees the tenant hears "no such member" first.
            ("unknown id, weak caller", "acme", "zzz", &ACME_MEMBER, "User not found in this workspace"),
            // The tenant's own visibility comes first: nothing about its members leaks.
            ("foreign caller, real member", "acme", ACME_MEMBER.id, &SOUTHPOLE_ADMIN, "Workspace not found"),
            ("foreign caller, malformed id", "acme", "zzz", &GLOBEX_ADMIN, "Workspace not found"),
            ("deleted tenant", "umbrella", ACME_MEMBER.id, &NORTHWIND_OWNER, "Workspace not found"),
            ("deleted tenant, P, not its member", "umbrella", ACME_MEMBER.id, &OPERATOR, "User not found in this workspace"),
            ("unknown tenant", "nope", ACME_MEMBER.id, &OPERATOR, "Workspace not found"),
        ] {
            let r = act(&env, tenant, user_id, verb, who).await;
            assert_eq!(r.status, 404, "{verb}, {what}: {}", r.text);
            assert_eq!(r.detail(), detail, "{verb}, {what}");
        }
    }
    assert_eq!(env.world(), before);
}

#[tokio::test]
async fn methods_tokens_and_bodies_are_checked_first() {
    let env = Env::start().await;
    let before = env.world();
    let t = env.token(&ACME_OWNER);
    let big = format!("{{\"x\":\"{}\"}}", "x".repeat(65 * 1024));
    for verb in VERBS {
        let p = path("acme", ACME_MEMBER.id, verb);
        let r = env.call("GET", &p, Some(&t), None).await;
        assert_eq!((r.status, r.header("allow")), (405, Some("POST")), "{verb}");
        assert_eq!(env.call("POST", &p, None, None).await.status, 401, "{verb}");
        assert_eq!(env.call("POST", &p, Some("not-a-jwt"), None).await.status, 401, "{verb}");
        assert_eq!(env.call("POST", &p, Some(&t), Some(&big)).await.status, 413, "{verb}");
        for body in ["{\"reason\":\"x\"}", "[]", "null", "{", "\"\""] {
            assert_eq!(env.call("POST", &p, Some(&t), Some(body)).await.status, 400, "{verb} {body}");
        }
        // 400 comes before any 404.
        assert_eq!(env.call("POST", &path("nope", "zzz", verb), Some(&t), Some("{\"a\":1}")).await.status, 400, "{verb}");
    }
    assert_eq!(env.world(), before);
    // `{}` is as good as no body.
    let r = env.call("POST", &path("acme", ACME_MEMBER.id, "logout"), Some(&t), Some("{}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn a_member_without_an_identity() {
    // A document only (e.g. created by another service): nothing to sign out
    // or reset in Authentik, no mailbox.
    let env = Env::start().await;
    let id = "65a0000000000000000000f1";
    env.db().insert("dezky", "users", json!({"_id": oid(id), "authentikSubjectId": "sub-doc-only", "email": "doc@acme.test", "tenantIds": [oid(ACME.id)], "active": true}));
    let before = env.world();
    let r = act(&env, "acme", id, "reset-password", &ACME_OWNER).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(env.world(), before, "a refused reset wrote something");
    let r = act(&env, "acme", id, "logout", &ACME_OWNER).await;
    assert_eq!(r.json(), json!({"sessions": 0}));
    assert_eq!(act(&env, "acme", id, "suspend", &ACME_OWNER).await.status, 204);
    assert_eq!(user_doc(&env, id).unwrap()["active"], false);
    // Suspending looks the identity up by e-mail (issue 19), finds none,
    // and so changes nothing there.
    let calls: Vec<String> = env.emu.authentik().controls.log.all().iter().map(|r| format!("{} {}", r.method, r.uri)).collect();
    assert_eq!(
        calls,
        vec!["GET /api/v3/core/users/?email=doc%40acme.test&include_groups=false&ordering=pk".to_owned()],
        "Authentik was changed for a member without an identity"
    );
}
