//! Rows 17 and 18 end to end: members-list, and members-create as a saga
//! across Authentik, Stalwart, OCIS and the Data API.

use e2e::*;
use emulators::issuer::Signing;
use serde_json::json;

const CREATE: &str = "/tenants/acme/members/create";

fn jane() -> serde_json::Value {
    json!({"name": "Jane Doe", "localPart": " Jane.Doe ", "role": "admin"})
}

#[tokio::test]
async fn members_list_authorisation_table() {
    let env = Env::start().await;
    let ok = |r: &Resp| r.json().as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    let r = env.get("/tenants/acme/members", &ACME_OWNER).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let emails = ok(&r);
    for u in USERS.iter().filter(|u| u.tenants.iter().any(|(t, _)| t.slug == "acme")) {
        assert!(emails.contains(&u.email.to_owned()), "{} missing", u.email);
    }
    assert_eq!(emails.len(), 5);
    for (who, status) in [
        (&OPERATOR, 200),
        (&ACME_ADMIN, 200),
        (&NORTHWIND_OWNER, 200),
        (&NORTHWIND_STAFF, 200),
        (&NORTHWIND_SCOPED, 200),
        (&ACME_MEMBER, 403),
        (&ACME_INACTIVE_ADMIN, 403),
        (&SOUTHPOLE_ADMIN, 404),
        (&GLOBEX_ADMIN, 404),
        (&MULTI_TENANT, 403),
    ] {
        assert_eq!(env.get("/tenants/acme/members", who).await.status, status, "{}", who.email);
    }
    // Scoped staff reach only their tenants; deleted tenants are P's only.
    assert_eq!(env.get("/tenants/globex/members", &NORTHWIND_SCOPED).await.status, 404);
    assert_eq!(env.get("/tenants/umbrella/members", &NORTHWIND_OWNER).await.status, 404);
    assert_eq!(env.get("/tenants/umbrella/members", &OPERATOR).await.status, 200);
    assert_eq!(env.get("/tenants/nope/members", &OPERATOR).await.status, 404);
    assert_eq!(env.get("/tenants/Bad%20Slug/members", &OPERATOR).await.status, 404);
    assert_eq!(env.call("GET", "/tenants/acme/members", None, None).await.status, 401);
    let expired = env.token_with(&ACME_OWNER, json!({"exp": 1_000_000_000}), Signing::Rs256);
    assert_eq!(env.call("GET", "/tenants/acme/members", Some(&expired), None).await.status, 401);
    assert_eq!(env.call("POST", "/tenants/acme/members", None, None).await.status, 405);
}

#[tokio::test]
async fn members_create_provisions_every_system_with_one_password() {
    let env = Env::start().await;
    let r = env.post(CREATE, &ACME_OWNER, jane()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let body = r.json();
    assert_eq!(body["email"], "jane.doe@acme.test");
    assert_eq!(body["provisioning"], json!({"authentik": "ok", "stalwart": "ok", "ocis": "ok"}));
    assert!(body.get("stalwartError").is_none() && body.get("ocisNote").is_none(), "absent, not null: {body}");
    let password = body["tempPassword"].as_str().unwrap().to_owned();
    assert_eq!(password.len(), 16);

    // Identity: username = e-mail, the tenant's group, the password.
    let ak = env.authentik().user_by_email("jane.doe@acme.test").expect("identity created");
    assert_eq!(ak.username, "jane.doe@acme.test");
    assert_eq!(ak.groups, vec![ACME.group_uuid.unwrap().to_owned()]);
    assert_eq!(ak.attributes["tenantSlug"], "acme");
    assert_eq!(env.authentik().password_of(ak.pk).as_deref(), Some(password.as_str()));
    // Mailbox with the same password; file account.
    let mbx = env.stalwart().account_by_email("jane.doe@acme.test").expect("mailbox created");
    assert_eq!(env.stalwart().password_of(&mbx.id).as_deref(), Some(password.as_str()), "Stalwart got Authentik's password");
    let files = env.ocis().user("jane.doe@acme.test").expect("file account created");

    // The User document.
    let users = env.find("users", json!({"email": "jane.doe@acme.test"}));
    assert_eq!(users.len(), 1);
    let u = &users[0];
    assert_eq!(u["authentikSubjectId"], ak.uid);
    assert_eq!(u["tenantIds"], json!([oid(ACME.id)]));
    assert_eq!(u["tenantRoles"][ACME.id], "admin");
    assert_eq!(u["stalwartAccountId"], mbx.id);
    assert_eq!(u["ocisUserId"], files.id);
    assert_eq!(u["provisioning"]["stalwart"], "ok");
    assert_eq!(u["mailboxAddress"], "jane.doe@acme.test");
    // The audit event, without the password anywhere in the database.
    let audit = env.find("auditevents", json!({"action": "tenant.user_created", "resourceId": ak.uid}));
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["tenantSlug"], "acme");
    assert_eq!(audit[0]["metadata"], json!({"name": "Jane Doe", "role": "admin", "mailbox": "ok", "ocis": "ok"}));
    assert_eq!(audit[0]["actor"], json!({"userId": ACME_OWNER.id, "email": ACME_OWNER.email}));
    assert!(!env.snapshot().to_string().contains(&password), "the password was stored");
    // It went only to Authentik's set_password and Stalwart's create.
    let carriers: Vec<String> =
        [&env.emu.data_api().controls, &env.emu.authentik().controls, &env.emu.stalwart().controls, &env.emu.ocis().controls]
            .iter()
            .flat_map(|c| c.log.all())
            .filter(|r| r.body.contains(&password))
            .map(|r| format!("{} {}", r.method, r.path()))
            .collect();
    assert_eq!(carriers, vec![format!("POST /api/v3/core/users/{}/set_password/", ak.pk), "POST /jmap/".to_owned()]);

    // The same address again is a conflict.
    let r = env.post(CREATE, &ACME_OWNER, jane()).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.detail(), "jane.doe@acme.test already exists in this workspace.");
}

#[tokio::test]
async fn members_create_authorisation_table() {
    let env = Env::start().await;
    for (i, (who, status)) in [
        (&OPERATOR, 201),
        (&ACME_ADMIN, 201),
        (&NORTHWIND_OWNER, 201),
        (&NORTHWIND_SCOPED, 201),
        (&ACME_MEMBER, 403),
        (&ACME_INACTIVE_ADMIN, 403),
        (&SOUTHPOLE_ADMIN, 404),
        (&GLOBEX_ADMIN, 404),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"name": "Person", "localPart": format!("person{i}"), "role": "member"});
        let r = env.post(CREATE, who, body).await;
        assert_eq!(r.status, status, "{}: {}", who.email, r.text);
    }
    let body = json!({"name": "P", "localPart": "p", "role": "member"});
    assert_eq!(env.post("/tenants/globex/members/create", &NORTHWIND_SCOPED, body.clone()).await.status, 404);
    assert_eq!(env.call("POST", CREATE, None, Some(&body.to_string())).await.status, 401);
}

#[tokio::test]
async fn members_create_refuses_bad_input_and_unprovisioned_tenants() {
    let env = Env::start().await;
    // Globex loses its domains for this test.
    env.db().delete_many("dezky", "domains", json!({"tenantId": oid(GLOBEX.id)}));
    let before = env.world();
    let t = env.token(&OPERATOR);
    let big = format!("{{\"name\":\"{}\",\"localPart\":\"a\",\"role\":\"member\"}}", "x".repeat(65 * 1024));
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        (
            "no identity group",
            "/tenants/hooli/members/create",
            jane().to_string(),
            400,
            "Workspace \"hooli\" isn't fully provisioned (no identity group). Reconcile it first.",
        ),
        ("no domain", "/tenants/globex/members/create", jane().to_string(), 400, "Add a domain to this workspace before creating users."),
        (
            "foreign domain",
            CREATE,
            json!({"name": "J", "localPart": "j", "role": "member", "domain": "globex.test"}).to_string(),
            400,
            "Add a domain to this workspace before creating users.",
        ),
        (
            "bad local part",
            CREATE,
            json!({"name": "J", "localPart": "j d", "role": "member"}).to_string(),
            400,
            "The address prefix may only contain letters, numbers, dots, hyphens and underscores.",
        ),
        (
            "duplicate",
            CREATE,
            json!({"name": "M", "localPart": "mia", "role": "member"}).to_string(),
            409,
            "mia@acme.test already exists in this workspace.",
        ),
        ("owner role", CREATE, json!({"name": "J", "localPart": "j", "role": "owner"}).to_string(), 400, ""),
        ("operator object", CREATE, json!({"name": "J", "localPart": {"$ne": ""}, "role": "member"}).to_string(), 400, ""),
        ("unknown field", CREATE, json!({"name": "J", "localPart": "j", "role": "member", "admin": true}).to_string(), 400, ""),
        ("malformed", CREATE, "{\"name\":".to_owned(), 400, ""),
        ("missing role", CREATE, json!({"name": "J", "localPart": "j"}).to_string(), 400, ""),
        ("65 KiB", CREATE, big, 413, ""),
        ("unknown tenant", "/tenants/nope/members/create", jane().to_string(), 404, "Workspace not found"),
    ];
    for (what, path, body, status, detail) in cases {
        let r = env.call("POST", path, Some(&t), Some(&body)).await;
        assert_eq!(r.status, status, "{what}: {}", r.text);
        if !detail.is_empty() {
            assert_eq!(r.detail(), detail, "{what}");
        }
    }
    assert_eq!(env.world(), before, "a refused request wrote something");
}

#[tokio::test]
async fn an_identity_failure_writes_nothing_anywhere() {
    let env = Env::start().await;
    let before = env.world();
    env.fail(&env.emu.authentik().controls, FaultRule::new("/api/v3/core/users/", Fault::Status(500)).method("POST"));
    let r = env.post(CREATE, &ACME_OWNER, jane()).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(r.detail().starts_with("Authentik answered 500"), "{}", r.detail());
    assert_eq!(env.world(), before);
}

#[tokio::test]
async fn an_identity_timeout_is_504_and_the_saga_looks_for_the_late_identity() {
    let env = Env::start().await;
    let before = env.world();
    // The create succeeds upstream, but too late for us.
    env.fail(&env.emu.authentik().controls, FaultRule::new("/api/v3/core/users/", Fault::DelayMs(2500)).method("POST").times(1));
    let r = env.post(CREATE, &ACME_OWNER, jane()).await;
    assert_eq!(r.status, 504, "{}", r.text);
    // The create may still land upstream: the saga looked the identity up
    // by its invitation nonce to delete it (the native saga test covers the
    // deletion). Nothing else was written.
    let log = env.emu.authentik().controls.log.all();
    let create = log.iter().position(|r| r.method == "POST" && r.path() == "/api/v3/core/users/").unwrap();
    assert!(
        log[create..].iter().any(|r| r.method == "GET" && r.uri.starts_with("/api/v3/core/users/?attributes=%7B%22dezky.invitation%22")),
        "no clean-up lookup after the timed-out create"
    );
    assert_eq!(env.world()["db"], before["db"]);
    assert_eq!(env.world()["stalwart"], before["stalwart"]);
    assert_eq!(env.world()["ocis"], before["ocis"]);
}

#[tokio::test]
async fn mailbox_failures_are_reported_and_the_member_is_created() {
    let env = Env::start().await;
    env.fail(&env.emu.stalwart().controls, FaultRule::new("/jmap", Fault::Status(500)));
    let r = env.post(CREATE, &ACME_OWNER, jane()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let body = r.json();
    assert_eq!(body["provisioning"]["stalwart"], "error");
    assert!(body["stalwartError"].as_str().unwrap().contains("Stalwart answered 500"), "{body}");
    let u = &env.find("users", json!({"email": "jane.doe@acme.test"}))[0];
    assert_eq!(u["provisioning"]["stalwart"], "error");
    assert!(u["provisioning"]["stalwartError"].is_string());
    assert!(u.get("stalwartAccountId").is_none());

    // A mailbox that times out is an error too, never a hang.
    env.emu.stalwart().controls.faults.clear();
    env.fail(&env.emu.stalwart().controls, FaultRule::new("/jmap", Fault::DelayMs(3000)));
    let r = env.post(CREATE, &ACME_OWNER, json!({"name": "Slow Mail", "localPart": "slow", "role": "member"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["provisioning"]["stalwart"], "error");
    assert!(r.json()["stalwartError"].as_str().unwrap().contains("timed out"));
}

#[tokio::test]
async fn a_database_failure_after_the_identity_undoes_every_system() {
    let env = Env::start().await;
    let before = env.world();
    env.fail_data_api(FaultRule::new("/action/updateOne", Fault::Status(500)));
    let r = env.post(CREATE, &ACME_OWNER, jane()).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(env.authentik().user_by_email("jane.doe@acme.test").is_none(), "identity left behind");
    assert!(env.stalwart().account_by_email("jane.doe@acme.test").is_none(), "mailbox left behind");
    assert!(env.ocis().user("jane.doe@acme.test").is_none(), "file account left behind");
    assert_eq!(env.world(), before);

    env.emu.data_api().controls.faults.clear();
    env.fail_data_api(FaultRule::new("/action/updateOne", Fault::Drop));
    assert_eq!(env.post(CREATE, &ACME_OWNER, jane()).await.status, 502);
    assert_eq!(env.world(), before);
}

#[tokio::test]
async fn ocis_autoprovision_defers_the_file_account() {
    let env = Env::start_with(|v, _| {
        v.insert("ocis_autoprovision".into(), "true".into());
        // Mail is off while its token is empty; the URL keeps its inert
        // placeholder default (Spin refuses an empty allowed_outbound_hosts value).
        v.remove("stalwart_url");
        v.insert("stalwart_token".into(), String::new());
    })
    .await;
    let r = env.post(CREATE, &ACME_OWNER, jane()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let body = r.json();
    assert_eq!(body["provisioning"], json!({"authentik": "ok", "stalwart": "skipped", "ocis": "skipped"}));
    assert_eq!(body["ocisNote"], "auto-provisions on first sign-in");
    assert!(env.ocis().user("jane.doe@acme.test").is_none());
    assert!(env.emu.stalwart().controls.log.all().is_empty(), "mail is off when not configured");
}
