//! Issue 19, points 3 and 5: audit-first for the steps that cannot be
//! undone (rows 22 and 23), and the smaller defects found reading the code.
//! Each test names the rule it holds.

use std::time::Duration;

use e2e::*;
use emulators::issuer::Signing;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn member_path(tenant: &str, user_id: &str, verb: &str) -> String {
    format!("/tenants/{tenant}/members/{user_id}/{verb}")
}

/// Row 19–23 with an empty body, as the frontends send it.
async fn act(env: &Env, user_id: &str, verb: &str, who: &User) -> Resp {
    env.call("POST", &member_path("acme", user_id, verb), Some(&env.token(who)), None).await
}

fn events(env: &Env, action: &str) -> Vec<Value> {
    env.find("auditevents", json!({"action": action}))
}

/// The Data API's insert into the audit collection, and nothing else.
fn audit_insert(fault: Fault) -> FaultRule {
    FaultRule::new("/action/insertOne", fault).body_contains("\"collection\":\"auditevents\"")
}

/// Requests Authentik received: `METHOD path`.
fn authentik_calls(env: &Env) -> Vec<String> {
    env.emu.authentik().controls.log.all().iter().map(|r| format!("{} {}", r.method, r.path())).collect()
}

// ---- A: audit first for the steps that cannot be undone (rows 22, 23) ----

#[tokio::test]
async fn reset_password_whose_audit_write_fails_sets_no_password() {
    let env = Env::start().await;
    let before = env.authentik().password_of(ACME_MEMBER.pk);
    env.fail_data_api(audit_insert(Fault::Status(500)));
    let r = act(&env, ACME_MEMBER.id, "reset-password", &ACME_OWNER).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert_eq!(env.authentik().password_of(ACME_MEMBER.pk), before, "the password changed without its event");
    let set = format!("POST /api/v3/core/users/{}/set_password/", ACME_MEMBER.pk);
    assert!(!authentik_calls(&env).contains(&set), "set_password was sent: {:?}", authentik_calls(&env));
    assert!(events(&env, "tenant.user_password_reset").is_empty());
}

#[tokio::test]
async fn reset_password_whose_step_fails_leaves_no_audit_event() {
    let env = Env::start().await;
    let set = format!("/api/v3/core/users/{}/set_password/", ACME_MEMBER.pk);
    env.fail(&env.emu.authentik().controls, FaultRule::new(set, Fault::Status(500)));
    let r = act(&env, ACME_MEMBER.id, "reset-password", &ACME_OWNER).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(events(&env, "tenant.user_password_reset").is_empty(), "an event for a reset that did not happen");

    // And the success case still leaves exactly one.
    env.emu.authentik().controls.faults.clear();
    let r = act(&env, ACME_MEMBER.id, "reset-password", &ACME_OWNER).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(events(&env, "tenant.user_password_reset").len(), 1);
}

#[tokio::test]
async fn logout_whose_audit_write_fails_ends_no_session() {
    let env = Env::start().await;
    env.authentik().add_session(ACME_MEMBER.pk);
    env.authentik().add_session(ACME_MEMBER.pk);
    let sessions = env.authentik().sessions_of(ACME_MEMBER.pk).len();
    env.fail_data_api(audit_insert(Fault::Status(500)));
    let r = act(&env, ACME_MEMBER.id, "logout", &ACME_OWNER).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert_eq!(env.authentik().sessions_of(ACME_MEMBER.pk).len(), sessions, "sessions ended without an event");
    let deletes: Vec<String> = authentik_calls(&env).into_iter().filter(|c| c.starts_with("DELETE")).collect();
    assert!(deletes.is_empty(), "{deletes:?}");
    assert!(events(&env, "tenant.user_logout_forced").is_empty());
}

#[tokio::test]
async fn logout_whose_step_fails_leaves_no_audit_event() {
    let env = Env::start().await;
    env.authentik().add_session(ACME_MEMBER.pk);
    let sessions = env.authentik().sessions_of(ACME_MEMBER.pk).len();
    env.fail(&env.emu.authentik().controls, FaultRule::new("/api/v3/core/authenticated_sessions/", Fault::Status(500)).method("DELETE"));
    let r = act(&env, ACME_MEMBER.id, "logout", &ACME_OWNER).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(events(&env, "tenant.user_logout_forced").is_empty(), "an event for a logout that did not happen");

    env.emu.authentik().controls.faults.clear();
    let r = act(&env, ACME_MEMBER.id, "logout", &ACME_OWNER).await;
    assert_eq!((r.status, r.json()), (200, json!({"sessions": sessions})), "{}", r.text);
    assert_eq!(events(&env, "tenant.user_logout_forced").len(), 1);
}

// ---- B: the smaller defects ----

/// 1. P sees every workspace, so an inactive P passes visibility and is
/// refused for being inactive: 403, never 404.
#[tokio::test]
async fn an_inactive_platform_admin_is_403_not_404() {
    let env = Env::start().await;
    env.db().update_one("dezky", "users", json!({"_id": oid(OPERATOR.id)}), json!({"$set": {"active": false}}));
    let by_group = env.token(&OPERATOR);
    let by_document = env.token_with(&OPERATOR, json!({"groups": []}), Signing::Rs256);
    for (how, token) in [("P by group and document", &by_group), ("P by document only", &by_document)] {
        for (tenant, what) in [("acme", "a workspace"), ("umbrella", "a deleted workspace")] {
            let r = env.call("GET", &format!("/tenants/{tenant}/members"), Some(token), None).await;
            assert_eq!(r.status, 403, "{how}, {what}: {}", r.text);
            let r = env.call("POST", &member_path(tenant, ACME_MEMBER.id, "suspend"), Some(token), None).await;
            assert_ne!(r.status, 204, "{how}, {what}: an inactive P suspended someone");
        }
        // A workspace that does not exist is still 404.
        let r = env.call("GET", "/tenants/nope/members", Some(token), None).await;
        assert_eq!(r.status, 404, "{how}: {}", r.text);
    }
}

/// 2. A body whose stream breaks before its end never fully arrived: 400,
/// not 413 (the body was not too large). Sent over a raw connection as a
/// chunked body whose second chunk size is not a number.
#[tokio::test]
async fn a_broken_upload_is_400_not_413() {
    let env = Env::start().await;
    let token = env.token(&ACME_OWNER);
    let addr = env.base.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /tenants/acme/members/create HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(b"5\r\n{\"nam\r\nzz\r\n").await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(read.is_ok(), "no answer: {answer}");
    let status = answer.split_whitespace().nth(1).unwrap_or_default();
    assert_eq!(status, "400", "{answer}");
    assert!(env.find("users", json!({"email": "nam@acme.test"})).is_empty());
}

/// 3. The check order is 405 → 401 → 413 → 400 → 404: a path whose member
/// id is malformed is still 401 without a token, 413 with a huge body and
/// 400 with a bad one.
#[tokio::test]
async fn a_malformed_member_path_is_checked_in_order() {
    let env = Env::start().await;
    let token = env.token(&ACME_OWNER);
    let big = format!("{{\"x\":\"{}\"}}", "x".repeat(65 * 1024));
    for path in [
        "/tenants/acme/members/not-an-id/remove",
        "/tenants/no%20slug/members/not-an-id/logout",
        "/tenants//members/not-an-id/remove",
        "/tenants/acme/members//remove",
        "/tenants/acme/members/a.b/suspend",
        "/tenants/acme/members/x/remove//",
    ] {
        assert_eq!(env.call("POST", path, None, None).await.status, 401, "{path}");
        assert_eq!(env.call("POST", path, Some("not-a-jwt"), None).await.status, 401, "{path}");
        assert_eq!(env.call("POST", path, Some(&token), Some(&big)).await.status, 413, "{path}");
        assert_eq!(env.call("POST", path, Some(&token), Some("[]")).await.status, 400, "{path}");
        assert_eq!(env.call("POST", path, Some(&token), None).await.status, 404, "{path}");
    }
}

/// 3b. The same order outside a tenant: a path without its route's shape
/// is a `404` only after the token, the size and the body.
#[tokio::test]
async fn a_malformed_path_outside_a_tenant_is_checked_in_order() {
    let env = Env::start().await;
    let big = format!("{{\"x\":\"{}\"}}", "x".repeat(65 * 1024));
    for (path, who) in [
        ("/users/x/update//", &OPERATOR),
        ("/users/x/deactivate//", &OPERATOR),
        ("/partners/northwind/users/invite//", &OPERATOR),
        ("/users/me/partner/users/x/remove//", &NORTHWIND_OWNER),
    ] {
        let token = env.token(who);
        assert_eq!(env.call("POST", path, None, None).await.status, 401, "{path}");
        assert_eq!(env.call("POST", path, Some(&token), Some(&big)).await.status, 413, "{path}");
        assert_eq!(env.call("POST", path, Some(&token), Some("[]")).await.status, 400, "{path}");
    }
    let token = env.token(&OPERATOR);
    assert_eq!(env.call("POST", "/users/x/deactivate//", Some(&token), None).await.status, 404);
}

/// 4. A token whose `sub` is blank names nobody: 401, never the empty
/// subject (which `/users/me` would sign in as a new user).
#[tokio::test]
async fn a_blank_subject_is_401() {
    let env = Env::start().await;
    for sub in [" ", "\t", "  \n "] {
        let token = env.token_with(&ACME_MEMBER, json!({"sub": sub}), Signing::Rs256);
        for (method, path) in [("GET", "/users/me"), ("GET", "/tenants/acme/members")] {
            let r = env.call(method, path, Some(&token), None).await;
            assert_eq!(r.status, 401, "{path}, sub {sub:?}: {}", r.text);
        }
    }
    assert!(env.find("users", json!({"authentikSubjectId": ""})).is_empty(), "a user with an empty subject was created");
}

/// 5a. Row 18: the document was written, the audit write failed, and so
/// did deleting the document again: the failed undo is logged.
#[tokio::test]
async fn a_failed_undo_of_a_member_document_is_logged() {
    let env = Env::start().await;
    env.fail_data_api(audit_insert(Fault::Status(500)));
    env.fail_data_api(FaultRule::new("/action/deleteOne", Fault::Status(500)).body_contains("\"collection\":\"users\""));
    let r = env.post("/tenants/acme/members/create", &ACME_OWNER, json!({"name": "Jane Doe", "localPart": "jane", "role": "member"})).await;
    assert_eq!(r.status, 502, "{}", r.text);
    env.logged(&["undo of tenant.user_created", "failed"]).await.unwrap();
}

/// 5b. Row 12: leaving the partner-staff group failed: logged, and the
/// removal still stands.
#[tokio::test]
async fn a_failed_group_leave_of_partner_staff_is_logged() {
    let env = Env::start().await;
    env.fail(&env.emu.authentik().controls, FaultRule::new("/api/v3/core/groups/", Fault::Status(500)).method("POST"));
    let r = env.post(&format!("/users/me/partner/users/{}/remove", NORTHWIND_STAFF.sub), &NORTHWIND_OWNER, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    env.logged(&["partner-staff group", "failed"]).await.unwrap();
}

/// 6. A refused connection is named in plain words; the transport's debug
/// text (`ErrorCode::ConnectionRefused`) stays in the log.
#[tokio::test]
async fn a_refused_connection_is_described_in_plain_words() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let env = Env::start_with(|vars, _| {
        vars.insert("authentik_url".into(), format!("http://127.0.0.1:{closed}"));
    })
    .await;
    let r = act(&env, ACME_MEMBER.id, "reset-password", &ACME_OWNER).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert_eq!(r.detail(), "Authentik could not be reached (connection refused).");
    assert!(events(&env, "tenant.user_password_reset").is_empty());
    env.logged(&["ConnectionRefused"]).await.unwrap();
}

/// 8. Suspend and resume reach the identity of a member whose document
/// lost its `authentikUserPk`: found by e-mail, as removal does.
#[tokio::test]
async fn suspend_and_resume_find_the_identity_by_email() {
    let env = Env::start().await;
    env.db().update_one("dezky", "users", json!({"_id": oid(ACME_MEMBER.id)}), json!({"$unset": {"authentikUserPk": ""}}));
    let r = act(&env, ACME_MEMBER.id, "suspend", &ACME_OWNER).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(!env.authentik().user(ACME_MEMBER.pk).unwrap().is_active, "the identity can still sign in");
    let r = act(&env, ACME_MEMBER.id, "resume", &ACME_OWNER).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(env.authentik().user(ACME_MEMBER.pk).unwrap().is_active, "the identity stays suspended");
    // Another identity's sign-in is never touched.
    assert!(env.authentik().users().iter().all(|u| u.is_active || u.pk == ACME_INACTIVE_ADMIN.pk));
}
