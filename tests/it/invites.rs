//! Rows 7, 10 and 31 end to end: the invite sagas (create and attach
//! paths, recovery link or temporary password) and their faults.

use e2e::*;
use serde_json::json;

fn invite(email: &str) -> serde_json::Value {
    json!({"name": "New Person", "email": email})
}

// ---- row 7 ----------------------------------------------------------------

#[tokio::test]
async fn operators_invite_with_a_temporary_password() {
    let env = Env::start().await;
    let r = env.post("/platform/operators/invite", &OPERATOR, invite(" New.Op@Dezky.TEST ")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let body = r.json();
    let password = body["tempPassword"].as_str().expect("no recovery flow: a temporary password").to_owned();
    assert!(body.get("link").is_none());
    let ak = env.authentik().user_by_email("new.op@dezky.test").unwrap();
    assert_eq!(body["subject"], ak.uid);
    assert_eq!(body["userId"], ak.pk.to_string());
    assert_eq!(env.authentik().password_of(ak.pk).as_deref(), Some(password.as_str()));
    assert_eq!(ak.attributes["dezky.password_change_required"], true, "marked expired");
    assert_eq!(ak.attributes["invitedBy"], OPERATOR.email);
    assert_eq!(env.authentik().group_names_of(ak.pk), vec![PLATFORM_ADMIN_GROUP.to_owned()]);
    let u = &env.find("users", json!({"authentikSubjectId": ak.uid}))[0];
    assert_eq!((u["platformAdmin"].as_bool(), u["role"].as_str(), u["active"].as_bool()), (Some(true), Some("admin"), Some(true)));
    let audit = &env.find("auditevents", json!({"action": "platform.user_invited"}))[0];
    assert_eq!(audit["metadata"], json!({"role": "platform-admin", "name": "New Person", "handoff": "temp-password"}));
    assert_eq!(audit["actor"], json!({"userId": OPERATOR.id, "email": OPERATOR.email}), "the actor is the caller's User._id");
    assert!(!env.snapshot().to_string().contains(&password));

    // Inviting the same address again is a conflict; so is an existing identity.
    let r = env.post("/platform/operators/invite", &OPERATOR, invite("new.op@dezky.test")).await;
    assert_eq!(r.status, 409);
    assert!(r.detail().starts_with("User with email new.op@dezky.test already exists in Authentik"), "{}", r.detail());
}

#[tokio::test]
async fn operators_invite_with_a_recovery_link_and_its_roles() {
    let env = Env::start().await;
    env.authentik().set_recovery_flow(true);
    let r = env.post("/platform/operators/invite", &OPERATOR, invite("linked@dezky.test")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let link = r.json()["link"].as_str().unwrap().to_owned();
    assert!(link.contains("flow_token="), "{link}");
    assert!(r.json().get("tempPassword").is_none());
    let ak = env.authentik().user_by_email("linked@dezky.test").unwrap();
    assert!(env.authentik().password_of(ak.pk).is_none(), "no password when a link is handed out");
    let audit = &env.find("auditevents", json!({"action": "platform.user_invited"}))[0];
    assert_eq!(audit["metadata"]["handoff"], "recovery-link");
    assert!(!env.snapshot().to_string().contains(&link), "the link was stored");

    for who in [&ACME_OWNER, &NORTHWIND_OWNER, &ACME_MEMBER] {
        assert_eq!(env.post("/platform/operators/invite", who, invite("x@dezky.test")).await.status, 403, "{}", who.email);
    }
    let t = env.token(&OPERATOR);
    for body in
        [json!({"name": "X"}), json!({"name": "X", "email": {"$ne": ""}}), json!({"name": "X", "email": "x@dezky.test", "role": "admin"})]
    {
        assert_eq!(env.call("POST", "/platform/operators/invite", Some(&t), Some(&body.to_string())).await.status, 400, "{body}");
    }
}

#[tokio::test]
async fn operators_invite_faults_leave_no_orphan() {
    let env = Env::start().await;
    let before = env.world();
    env.fail(&env.emu.authentik().controls, FaultRule::new("/api/v3/core/users/", Fault::Status(500)).method("POST").times(1));
    let r = env.post("/platform/operators/invite", &OPERATOR, invite("op2@dezky.test")).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert_eq!(env.world(), before, "nothing written on an identity failure");

    // A later Authentik call (recovery link / password) fails after the
    // identity was created: it is undone.
    env.emu.authentik().controls.faults.clear();
    env.fail(&env.emu.authentik().controls, FaultRule::new("/api/v3/core/users/1", Fault::Status(500)).method("POST"));
    let r = env.post("/platform/operators/invite", &OPERATOR, invite("op3@dezky.test")).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(env.authentik().user_by_email("op3@dezky.test").is_none(), "identity left behind");
    assert_eq!(env.world(), before);

    // The user document cannot be written: the identity goes again.
    env.emu.authentik().controls.faults.clear();
    env.fail_data_api(FaultRule::new("/action/updateOne", Fault::Status(500)));
    let r = env.post("/platform/operators/invite", &OPERATOR, invite("op4@dezky.test")).await;
    assert_eq!(r.status, 502);
    assert!(env.authentik().user_by_email("op4@dezky.test").is_none());
    assert_eq!(env.world(), before);
}

// ---- row 10 ---------------------------------------------------------------

#[tokio::test]
async fn partner_users_invite_create_and_attach() {
    let env = Env::start().await;
    let path = "/partners/northwind/users/invite";
    let r = env.post(path, &NORTHWIND_OWNER, invite("pat@northwind.test")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.json()["tempPassword"].is_string());
    let ak = env.authentik().user_by_email("pat@northwind.test").unwrap();
    assert_eq!(ak.attributes["partnerSlug"], "northwind");
    assert_eq!(env.authentik().group_names_of(ak.pk), vec![PARTNER_STAFF_GROUP.to_owned()]);
    let u = &env.find("users", json!({"authentikSubjectId": ak.uid}))[0];
    assert_eq!(u["partnerId"], oid(NORTHWIND.id));
    assert_eq!(u["role"], "member");
    let audit = env.find("auditevents", json!({"action": "partner.user_invited", "resourceId": ak.uid, "partnerSlug": "northwind"}));
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["actor"], json!({"userId": NORTHWIND_OWNER.id, "email": NORTHWIND_OWNER.email}));

    // Attach: an identity that exists already (a tenant member).
    let r = env.post(path, &OPERATOR, invite(ACME_MEMBER.email)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json(), json!({"subject": ACME_MEMBER.sub, "userId": ACME_MEMBER.pk.to_string(), "attached": true}));
    let u = &env.find("users", json!({"authentikSubjectId": ACME_MEMBER.sub}))[0];
    assert_eq!(u["partnerId"], oid(NORTHWIND.id));
    assert_eq!(u["name"], ACME_MEMBER.name, "the local name is kept");
    assert_eq!(u["tenantIds"], json!([oid(ACME.id)]), "memberships untouched");
    assert!(env.authentik().group_names_of(ACME_MEMBER.pk).contains(&PARTNER_STAFF_GROUP.to_owned()));
    let audit = env.find("auditevents", json!({"action": "partner.user_attached"}));
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["actor"], json!({"userId": OPERATOR.id, "email": OPERATOR.email}));

    // Staff of another partner are not moved silently.
    let before = env.world();
    let r = env.post(path, &OPERATOR, invite(SOUTHPOLE_ADMIN.email)).await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.detail(),
        format!("User {} already belongs to partner {} — detach them from that partner first.", SOUTHPOLE_ADMIN.email, SOUTHPOLE.id)
    );
    assert_eq!(env.world(), before);
}

#[tokio::test]
async fn partner_users_invite_authorisation_table() {
    let env = Env::start().await;
    let path = "/partners/northwind/users/invite";
    for (i, (who, status)) in [
        (&OPERATOR, 201),
        (&NORTHWIND_OWNER, 201),
        (&NORTHWIND_STAFF, 403),
        (&NORTHWIND_SCOPED, 403),
        (&SOUTHPOLE_ADMIN, 404),
        (&ACME_OWNER, 404),
    ]
    .into_iter()
    .enumerate()
    {
        let r = env.post(path, who, invite(&format!("p{i}@northwind.test"))).await;
        assert_eq!(r.status, status, "{}: {}", who.email, r.text);
    }
    assert_eq!(env.post("/partners/nope/users/invite", &OPERATOR, invite("q@x.test")).await.status, 404);
    assert_eq!(env.call("POST", path, None, Some("{}")).await.status, 401);
    assert_eq!(env.post(path, &OPERATOR, json!({"name": "Q", "email": ["q@x.test"]})).await.status, 400);
}

#[tokio::test]
async fn partner_attach_is_undone_when_the_document_cannot_be_written() {
    let env = Env::start().await;
    let before = env.world();
    env.fail_data_api(FaultRule::new("/action/updateOne", Fault::Status(500)));
    let r = env.post("/partners/northwind/users/invite", &OPERATOR, invite(ACME_MEMBER.email)).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(!env.authentik().group_names_of(ACME_MEMBER.pk).contains(&PARTNER_STAFF_GROUP.to_owned()), "group add not undone");
    assert_eq!(env.world(), before);
}

// ---- row 31 ---------------------------------------------------------------

#[tokio::test]
async fn tenant_admins_invite_create_attach_and_roles() {
    let env = Env::start().await;
    let path = "/tenants/acme/admins/invite";
    let r = env.post(path, &NORTHWIND_STAFF, invite("boss@acme.test")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let ak = env.authentik().user_by_email("boss@acme.test").unwrap();
    assert_eq!(ak.groups, vec![ACME.group_uuid.unwrap().to_owned()]);
    let u = &env.find("users", json!({"authentikSubjectId": ak.uid}))[0];
    assert_eq!(u["tenantRoles"][ACME.id], "admin");
    assert_eq!(u["tenantIds"], json!([oid(ACME.id)]));
    let audit = env.find("auditevents", json!({"action": "tenant.admin_invited", "resourceId": ak.uid, "tenantSlug": "acme"}));
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["actor"], json!({"userId": NORTHWIND_STAFF.id, "email": NORTHWIND_STAFF.email}));

    // Attach: Max (member of acme, admin of globex) becomes admin of acme only.
    let r = env.post(path, &OPERATOR, invite(MULTI_TENANT.email)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["attached"], true);
    let u = &env.find("users", json!({"authentikSubjectId": MULTI_TENANT.sub}))[0];
    assert_eq!(u["tenantRoles"], json!({ACME.id: "admin", GLOBEX.id: "admin"}));
    let audit = env.find("auditevents", json!({"action": "tenant.admin_attached", "tenantSlug": "acme"}));
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["actor"], json!({"userId": OPERATOR.id, "email": OPERATOR.email}));

    for (who, status) in [(&ACME_OWNER, 403), (&ACME_MEMBER, 403), (&SOUTHPOLE_ADMIN, 404), (&GLOBEX_ADMIN, 404)] {
        assert_eq!(env.post(path, who, invite("nobody@acme.test")).await.status, status, "{}", who.email);
    }
    let r = env.post("/tenants/hooli/admins/invite", &SOUTHPOLE_ADMIN, invite("h@hooli.test")).await;
    assert_eq!(r.status, 400);
    assert!(r.detail().contains("isn't fully provisioned"), "{}", r.detail());
    assert_eq!(env.post("/tenants/umbrella/admins/invite", &NORTHWIND_OWNER, invite("u@u.test")).await.status, 404);
}

#[tokio::test]
async fn tenant_admin_invite_identity_failure_writes_nothing() {
    let env = Env::start().await;
    let before = env.world();
    env.fail(&env.emu.authentik().controls, FaultRule::new("/api/v3/core/users/", Fault::Drop).method("POST"));
    let r = env.post("/tenants/acme/admins/invite", &OPERATOR, invite("boss@acme.test")).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert_eq!(env.world(), before);
}

// ---- rows 10, 31: attaching someone who already has a document -----------

/// The attach writes the person's document beside its audit event; when the
/// event cannot be written, the document is put back as it was read (a
/// `replaceOne`, which these routes' Data API keys must hold:
/// rights.rs) and the group added is left again.
#[tokio::test]
async fn a_failed_audit_write_puts_an_attached_persons_document_back() {
    for (path, caller, who) in
        [("/partners/northwind/users/invite", &OPERATOR, &ACME_MEMBER), ("/tenants/acme/admins/invite", &NORTHWIND_OWNER, &GLOBEX_ADMIN)]
    {
        let env = Env::start().await;
        let before = env.world();
        env.fail_data_api(FaultRule::new("/action/insertOne", Fault::Status(500)).body_contains("\"collection\":\"auditevents\""));
        let r = env.post(path, caller, invite(who.email)).await;
        assert_eq!(r.status, 502, "{path}: {}", r.text);
        assert_eq!(env.world(), before, "{path}: the attach is undone");
        let replaced = env.emu.data_api().controls.log.all().iter().any(|q| q.path().ends_with("/replaceOne"));
        assert!(replaced, "{path}: the document was put back as read");
    }
}
