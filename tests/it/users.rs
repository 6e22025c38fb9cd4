//! Rows 1–6 end to end (row 32, `/openapi.json`, is checked against
//! docs/api.md in docs.rs): the built components in the dev host
//! against the emulators — happy paths, each role of the row, bad tokens,
//! bad input and Data API faults.

use e2e::*;
use emulators::issuer::Signing;
use serde_json::{json, Value};

const ALL_USERS: usize = 12;

fn subjects(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|u| u["authentikSubjectId"].as_str().unwrap().to_owned()).collect()
}

// ---- authentication: every way a token can be wrong is a 401 -------------

#[tokio::test]
async fn bad_tokens_are_401_on_every_authenticated_route() {
    let env = Env::start().await;
    let u = &OPERATOR;
    let bad: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("expired", Some(env.token_with(u, json!({"exp": 1_000_000_000, "iat": 999_000_000, "nbf": 999_000_000}), Signing::Rs256))),
        ("wrong iss", Some(env.token_with(u, json!({"iss": "https://evil.test/application/o/dezky/"}), Signing::Rs256))),
        ("wrong aud", Some(env.token_with(u, json!({"aud": "another-client"}), Signing::Es256))),
        ("alg none", Some(env.token_with(u, json!({}), Signing::None))),
        ("HMAC with the public key", Some(env.token_with(u, json!({}), Signing::Hs256WithPublicKey))),
        ("unknown kid", Some(env.token_with(u, json!({}), Signing::Rs256WithKid("nope".into())))),
        ("key not in JWKS", Some(env.token_with(u, json!({}), Signing::Es256OtherKey))),
        ("garbage", Some("not.a.jwt".into())),
    ];
    let routes = [
        ("GET", "/users/me"),
        ("GET", "/users"),
        ("GET", &*format!("/users/{}", ACME_OWNER.sub)),
        ("POST", "/users/create"),
        ("POST", &*format!("/users/{}/update", ACME_OWNER.sub)),
        ("POST", &*format!("/users/{}/deactivate", ACME_OWNER.sub)),
    ];
    let before = env.snapshot();
    for (method, path) in routes {
        for (what, token) in &bad {
            let r = env.call(method, path, token.as_deref(), Some("{}")).await;
            assert_eq!(r.status, 401, "{method} {path} with {what}: {}", r.text);
            assert_eq!(r.header("content-type"), Some("application/problem+json"));
        }
    }
    assert_eq!(env.snapshot(), before, "a rejected token changed the database");
    // Both signing algorithms work when the token is right.
    for how in [Signing::Rs256, Signing::Es256] {
        let t = env.token_with(u, json!({}), how);
        assert_eq!(env.call("GET", "/users/me", Some(&t), None).await.status, 200);
    }
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow_before_authentication() {
    let env = Env::start().await;
    for (method, path, allow) in [
        ("POST", "/users/me", "GET"),
        ("DELETE", "/users", "GET"),
        ("GET", "/users/create", "POST"),
        ("PUT", &*format!("/users/{}/update", ACME_OWNER.sub), "POST"),
        ("POST", "/openapi.json", "GET"),
    ] {
        let r = env.call(method, path, None, None).await;
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
}

// ---- row 1: /users/me --------------------------------------------------------

#[tokio::test]
async fn me_returns_the_user_with_its_partner_for_every_role() {
    let env = Env::start().await;
    for u in USERS.iter() {
        let r = env.get("/users/me", u).await;
        assert_eq!(r.status, 200, "{}: {}", u.email, r.text);
        let body = r.json();
        assert_eq!(body["_id"], u.id, "ids are hex strings");
        assert_eq!(body["email"], u.email);
        assert!(body["lastLoginAt"].as_str().unwrap().ends_with('Z'));
        match u.partner {
            Some(p) => assert_eq!(body["partner"], json!({"_id": p.id, "slug": p.slug, "name": p.name, "status": "active"})),
            None => assert!(body.get("partner").is_none(), "{}", u.email),
        }
    }
}

#[tokio::test]
async fn me_creates_a_new_user_and_only_ever_adds_tenants() {
    let env = Env::start().await;
    let newcomer = User {
        id: "000000000000000000000000",
        sub: "brand-new-sub",
        pk: 999,
        email: "New.Person@Acme.TEST",
        name: "New Person",
        ..ACME_MEMBER
    };
    let mut claims = env.emu.issuer.claims_for(&newcomer);
    claims["groups"] = json!(["dezky-tenant-acme", "dezky-tenant-nope", "dezky-tenant-BAD slug"]);
    let t = env.emu.issuer.sign(claims, Signing::Rs256);
    let r = env.call("GET", "/users/me", Some(&t), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let me = r.json();
    assert_eq!(me["email"], "new.person@acme.test", "lower-cased");
    assert_eq!(me["role"], "member");
    assert_eq!(me["active"], true);
    assert_eq!(me["platformAdmin"], false);
    assert_eq!(me["tenantIds"], json!([ACME.id]));
    assert!(me["createdAt"].is_string() && me["updatedAt"].is_string());

    // A later sign-in naming no tenants keeps the membership (the database decides).
    let mut claims = env.emu.issuer.claims_for(&newcomer);
    claims["groups"] = json!(["dezky-tenant-globex"]);
    let t = env.emu.issuer.sign(claims, Signing::Es256);
    let me = env.call("GET", "/users/me", Some(&t), None).await.json();
    assert_eq!(me["tenantIds"], json!([ACME.id, GLOBEX.id]));
    assert_eq!(env.find("users", json!({"authentikSubjectId": "brand-new-sub"})).len(), 1);
}

// ---- row 2: GET /users ---------------------------------------------------------

#[tokio::test]
async fn users_list_authorisation_table() {
    let env = Env::start().await;
    let r = env.get("/users", &OPERATOR).await;
    assert_eq!(r.status, 200);
    let all = subjects(&r.json());
    assert_eq!(all.len(), ALL_USERS);
    // Newest first.
    let created: Vec<String> = r.json().as_array().unwrap().iter().map(|u| u["createdAt"].as_str().unwrap().to_owned()).collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");

    // A tenant admin sees the users of the tenants they administer.
    let acme = subjects(&env.get("/users", &ACME_OWNER).await.json());
    let mut want: Vec<&str> = USERS.iter().filter(|u| u.tenants.iter().any(|(t, _)| t.id == ACME.id)).map(|u| u.sub).collect();
    want.sort();
    let mut got: Vec<&str> = acme.iter().map(String::as_str).collect();
    got.sort();
    assert_eq!(got, want);
    // Max is a member of acme but admin of globex: sees globex only.
    let globex = subjects(&env.get("/users", &MULTI_TENANT).await.json());
    assert!(globex.contains(&GLOBEX_ADMIN.sub.to_owned()) && !globex.contains(&ACME_OWNER.sub.to_owned()), "{globex:?}");

    for u in [&ACME_MEMBER, &ACME_INACTIVE_ADMIN, &NORTHWIND_OWNER, &NORTHWIND_STAFF, &SOUTHPOLE_ADMIN] {
        assert_eq!(env.get("/users", u).await.status, 403, "{}", u.email);
    }
}

// ---- row 3: GET /users/:subject ------------------------------------------------

#[tokio::test]
async fn users_get_is_for_platform_admins_only() {
    let env = Env::start().await;
    let r = env.get(&format!("/users/{}", ACME_ADMIN.sub), &OPERATOR).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["email"], ACME_ADMIN.email);
    assert_eq!(r.json()["tenantIds"], json!([ACME.id]));
    // Fixed 403 for everyone else, whether or not the subject exists.
    for u in [&ACME_OWNER, &NORTHWIND_OWNER, &ACME_MEMBER, &SOUTHPOLE_ADMIN] {
        assert_eq!(env.get(&format!("/users/{}", ACME_ADMIN.sub), u).await.status, 403);
        assert_eq!(env.get("/users/nobody", u).await.status, 403);
    }
    let r = env.get("/users/nobody-here", &OPERATOR).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.detail(), "User nobody-here not found");
    assert_eq!(env.get("/users/a%20b", &OPERATOR).await.status, 404, "malformed subject");
}

// ---- row 4: POST /users/create -------------------------------------------------

#[tokio::test]
async fn users_create_writes_the_user_and_its_audit_event() {
    let env = Env::start().await;
    let body = json!({"authentikSubjectId": "sub-new", "email": " Jane@Acme.TEST ", "name": " Jane ", "role": "admin", "tenantSlugs": ["acme", "globex"]});
    let r = env.post("/users/create", &OPERATOR, body.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let u = r.json();
    assert_eq!((u["email"].as_str(), u["name"].as_str(), u["role"].as_str()), (Some("jane@acme.test"), Some("Jane"), Some("admin")));
    assert_eq!(u["tenantIds"], json!([ACME.id, GLOBEX.id]));
    assert_eq!(u["tenantRoles"], json!({ACME.id: "admin", GLOBEX.id: "admin"}));
    let stored = env.find("users", json!({"authentikSubjectId": "sub-new"}));
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["tenantIds"][0], oid(ACME.id), "ObjectIds stored as ObjectIds");
    assert!(stored[0]["createdAt"]["$date"].is_object(), "dates stored as dates");
    let audit = env.find("auditevents", json!({"action": "user.created", "resourceId": "sub-new"}));
    assert_eq!(audit.len(), 1);
    // The caller's User._id, not the token's sub (docs/api.md).
    assert_eq!(audit[0]["actor"], json!({"userId": OPERATOR.id, "email": OPERATOR.email}));

    // Again: conflict, nothing new.
    let r = env.post("/users/create", &OPERATOR, body).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.detail(), "User sub-new already exists");
    assert_eq!(env.find("users", json!({"authentikSubjectId": "sub-new"})).len(), 1);
}

#[tokio::test]
async fn a_platform_admin_without_a_user_document_is_named_by_email_in_the_audit() {
    let env = Env::start().await;
    // P by the token's group only: no User document (never called /users/me),
    // so there is no User._id to name.
    let token = env.token_with(&OPERATOR, json!({"sub": "sub-token-only", "email": "root@dezky.test"}), Signing::Rs256);
    assert!(env.find("users", json!({"authentikSubjectId": "sub-token-only"})).is_empty());
    let body = json!({"authentikSubjectId": "sub-by-root", "email": "x@acme.test", "name": "X"});
    let r = env.call("POST", "/users/create", Some(&token), Some(&body.to_string())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let audit = env.find("auditevents", json!({"action": "user.created", "resourceId": "sub-by-root"}));
    assert_eq!(audit[0]["actor"], json!({"email": "root@dezky.test"}));
}

#[tokio::test]
async fn users_create_roles_and_bad_input() {
    let env = Env::start().await;
    let good = json!({"authentikSubjectId": "s1", "email": "a@b.test", "name": "A"});
    for u in [&ACME_OWNER, &NORTHWIND_OWNER, &ACME_MEMBER] {
        assert_eq!(env.post("/users/create", u, good.clone()).await.status, 403, "{}", u.email);
    }
    let before = env.snapshot();
    let big = format!("{{\"authentikSubjectId\":\"s\",\"email\":\"a@b.test\",\"name\":\"{}\"}}", "x".repeat(65 * 1024));
    let cases: Vec<(&str, String, u16)> = vec![
        ("malformed JSON", "{\"email\":".into(), 400),
        ("not an object", "[1,2]".into(), 400),
        ("empty body", "".into(), 400),
        ("wrong type", json!({"authentikSubjectId": 5, "email": "a@b.test", "name": "A"}).to_string(), 400),
        ("unknown field", json!({"authentikSubjectId": "s", "email": "a@b.test", "name": "A", "nmae": "x"}).to_string(), 400),
        ("operator object", json!({"authentikSubjectId": "s", "email": {"$ne": ""}, "name": "A"}).to_string(), 400),
        ("bad email", json!({"authentikSubjectId": "s", "email": "nope", "name": "A"}).to_string(), 400),
        ("bad role", json!({"authentikSubjectId": "s", "email": "a@b.test", "name": "A", "role": "god"}).to_string(), 400),
        ("unknown tenant", json!({"authentikSubjectId": "s", "email": "a@b.test", "name": "A", "tenantSlugs": ["nope"]}).to_string(), 400),
        ("missing field", json!({"email": "a@b.test", "name": "A"}).to_string(), 400),
        ("65 KiB", big, 413),
    ];
    let t = env.token(&OPERATOR);
    for (what, body, want) in cases {
        let r = env.call("POST", "/users/create", Some(&t), Some(&body)).await;
        assert_eq!(r.status, want, "{what}: {}", r.text);
        assert_eq!(r.header("content-type"), Some("application/problem+json"), "{what}");
    }
    assert_eq!(env.snapshot(), before, "bad input changed the database");
}

// ---- row 5: POST /users/:subject/update ----------------------------------------

#[tokio::test]
async fn users_update_changes_fields_and_drops_roles_of_left_tenants() {
    let env = Env::start().await;
    let path = format!("/users/{}/update", MULTI_TENANT.sub);
    let r = env.post(&path, &OPERATOR, json!({"name": "Max M.", "tenantSlugs": ["globex", "initech"], "active": false})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let u = r.json();
    assert_eq!(u["name"], "Max M.");
    assert_eq!(u["active"], false);
    assert_eq!(u["tenantIds"], json!([GLOBEX.id, INITECH.id]));
    assert_eq!(u["tenantRoles"], json!({GLOBEX.id: "admin"}), "acme's role went with the membership");
    let audit = env.find("auditevents", json!({"action": "user.updated", "resourceId": MULTI_TENANT.sub}));
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["actor"], json!({"userId": OPERATOR.id, "email": OPERATOR.email}));

    for u in [&ACME_OWNER, &NORTHWIND_OWNER] {
        assert_eq!(env.post(&path, u, json!({"name": "x"})).await.status, 403);
    }
    let before = env.snapshot();
    assert_eq!(env.post("/users/nobody/update", &OPERATOR, json!({"name": "x"})).await.status, 404);
    assert_eq!(env.post(&path, &OPERATOR, json!({"email": {"$ne": ""}})).await.status, 400);
    assert_eq!(env.post(&path, &OPERATOR, json!({"active": "yes"})).await.status, 400);
    assert_eq!(env.post(&path, &OPERATOR, json!({"tenantIds": []})).await.status, 400, "unknown field");
    assert_eq!(env.snapshot(), before);
}

// ---- row 6: POST /users/:subject/deactivate ------------------------------------

#[tokio::test]
async fn users_deactivate() {
    let env = Env::start().await;
    let path = format!("/users/{}/deactivate", ACME_MEMBER.sub);
    assert_eq!(env.post(&path, &ACME_OWNER, json!({})).await.status, 403);
    let r = env.post(&path, &OPERATOR, json!({})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());
    assert_eq!(env.find("users", json!({"authentikSubjectId": ACME_MEMBER.sub}))[0]["active"], false);
    let audit = env.find("auditevents", json!({"action": "user.deactivated"}));
    // The subject, as every user event names its person (docs/api.md).
    assert_eq!(audit[0]["resourceId"], ACME_MEMBER.sub);
    assert_eq!(audit[0]["actor"], json!({"userId": OPERATOR.id, "email": OPERATOR.email}));
    assert_eq!(env.post("/users/nobody/deactivate", &OPERATOR, json!({})).await.status, 404);
    assert_eq!(env.post(&path, &OPERATOR, json!({"really": true})).await.status, 400, "body-less route");
    // The deactivated user is too weak everywhere now, but /users/me works.
    assert_eq!(env.get("/users/me", &ACME_MEMBER).await.status, 200);
}

// ---- faults --------------------------------------------------------------------

#[tokio::test]
async fn data_api_failures_are_502_or_504_and_leave_nothing_behind() {
    let env = Env::start().await;
    let body = json!({"authentikSubjectId": "s-fault", "email": "f@acme.test", "name": "F"});
    let before = env.snapshot();

    env.fail_data_api(FaultRule::new("/action/insertOne", Fault::Status(500)));
    let r = env.post("/users/create", &OPERATOR, body.clone()).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(r.detail().starts_with("Data API answered 500"), "{}", r.detail());
    env.emu.data_api().controls.faults.clear();
    assert_eq!(env.snapshot(), before);

    env.fail_data_api(FaultRule::new("/action/findOne", Fault::DelayMs(4000)).times(1));
    let r = env.post("/users/create", &OPERATOR, body.clone()).await;
    assert_eq!(r.status, 504, "{}", r.text);
    env.emu.data_api().controls.faults.clear();

    env.fail_data_api(FaultRule::new("/action/find", Fault::Drop));
    assert_eq!(env.get("/users", &OPERATOR).await.status, 502);
    env.emu.data_api().controls.faults.clear();
    assert_eq!(env.snapshot(), before, "a failed call half-wrote something");

    // The audit write fails after the user was inserted: the user goes again.
    env.fail_data_api(FaultRule::new("/action/insertOne", Fault::Status(503)).times(2));
    let ins = env.post("/users/create", &OPERATOR, body).await;
    assert_eq!(ins.status, 502);
    assert!(env.find("users", json!({"authentikSubjectId": "s-fault"})).is_empty());
}

#[tokio::test]
async fn the_host_refuses_hosts_outside_allowed_outbound_hosts() {
    // The JWKS URL points somewhere no component may call.
    let env = Env::start_with(|v, _| {
        v.insert("oidc_jwks".into(), String::new());
        v.insert("oidc_jwks_url".into(), "http://127.0.0.1:9/jwks".into());
    })
    .await;
    let r = env.get("/users/me", &OPERATOR).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(r.detail().contains("may not be called"), "{}", r.detail());
}

#[tokio::test]
async fn the_jwks_can_be_fetched_from_authentik() {
    let env = Env::start_with(|v, emu| {
        v.insert("oidc_jwks".into(), String::new());
        v.insert("oidc_jwks_url".into(), emu.issuer.jwks_uri());
    })
    .await;
    let r = env.get("/users/me", &OPERATOR).await;
    assert_eq!(r.status, 200, "{}", r.text);
}
