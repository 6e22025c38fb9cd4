//! The Authentik emulator over HTTP, against Authentik's documented behaviour (docs/upstreams.md).

use emulators::authentik::{router, AuthentikState, DeviceKind, DEFAULT_INSTALL_ID};
use emulators::demo;
use emulators::faults::{Controls, Fault, FaultRule};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

struct Ak {
    base: String,
    http: Client,
    state: AuthentikState,
}

async fn serve_router(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn start() -> Ak {
    let state = AuthentikState::demo();
    let base = serve_router(router(state.clone())).await;
    Ak { base, http: Client::new(), state }
}

impl Ak {
    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}/api/v3{}", self.base, path)).bearer_auth(demo::AUTHENTIK_TOKEN)
    }
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self.req(method, path);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn auth_failures_are_403_with_drf_detail() {
    let ak = start().await;
    let url = format!("{}/api/v3/core/users/", ak.base);
    let r = ak.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"detail": "Authentication credentials were not provided."}));

    let r = ak.http.get(&url).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"detail": "Token invalid/expired"}));

    let r = ak.http.get(&url).basic_auth("akadmin", Some(demo::AUTHENTIK_TOKEN)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Scheme word is case-insensitive.
    let r = ak.http.get(&url).header("Authorization", format!("bearer {}", demo::AUTHENTIK_TOKEN)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Auth comes before 404 of an object and before 405.
    let r = ak.http.delete(format!("{url}999/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Configurable token.
    let custom = AuthentikState::with_token("other-token");
    let base = serve_router(router(custom)).await;
    let r = ak.http.get(format!("{base}/api/v3/core/users/")).bearer_auth("other-token").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = ak.http.get(format!("{base}/api/v3/core/users/")).bearer_auth(demo::AUTHENTIK_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn find_user_by_email_is_exact_and_case_sensitive() {
    let ak = start().await;
    let (s, body) = ak.get("/core/users/?email=alice%40acme.test").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["pagination"]["count"], 1);
    let u = &body["results"][0];
    assert_eq!(u["pk"], demo::ACME_OWNER.pk);
    assert_eq!(u["uid"], demo::ACME_OWNER.sub);
    assert_eq!(u["username"], demo::ACME_OWNER.email);
    assert_eq!(u["name"], demo::ACME_OWNER.name);
    assert_eq!(u["attributes"], json!({}));
    assert_eq!(u["groups"], json!([demo::ACME.group_uuid.unwrap()]));
    assert_eq!(u["groups_obj"][0]["name"], "dezky-tenant-acme");
    assert!(body["autocomplete"].is_object());

    let (_, body) = ak.get("/core/users/?email=ALICE%40acme.test").await;
    assert_eq!(body["pagination"]["count"], 0);
    assert_eq!(body["results"], json!([]));
    assert_eq!(
        body["pagination"],
        json!({"next": 0, "previous": 0, "count": 0, "current": 1, "total_pages": 1, "start_index": 0, "end_index": 0})
    );

    let (_, body) = ak.get("/core/users/?username=olivia%40dezky.test").await;
    assert_eq!(body["results"][0]["pk"], demo::OPERATOR.pk);
    let (_, body) = ak.get("/core/users/?is_active=false").await;
    assert_eq!(body["pagination"]["count"], 1);
    assert_eq!(body["results"][0]["pk"], demo::ACME_INACTIVE_ADMIN.pk);
    let uuid = body["results"][0]["uuid"].as_str().unwrap().to_owned();
    let (_, body) = ak.get(&format!("/core/users/?uuid={uuid}")).await;
    assert_eq!(body["results"][0]["uuid"], uuid);
    let (s, body) = ak.get("/core/users/?uuid=nope").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"uuid": ["Enter a valid UUID."]}));
    // An empty filter value means no filter (django-filter).
    let (_, body) = ak.get("/core/users/?email=").await;
    assert_eq!(body["pagination"]["count"], 12);
    let (_, body) = ak.get("/core/users/?groups_by_name=dezky-platform-admins").await;
    assert_eq!(body["pagination"]["count"], 1);
    let (_, body) = ak.get("/core/users/?include_groups=false&username=olivia%40dezky.test").await;
    assert_eq!(body["results"][0]["groups_obj"], Value::Null);
}

#[tokio::test]
async fn pagination_envelope() {
    let ak = start().await;
    let (_, body) = ak.get("/core/users/?page_size=5").await;
    assert_eq!(
        body["pagination"],
        json!({"next": 2, "previous": 0, "count": 12, "current": 1, "total_pages": 3, "start_index": 1, "end_index": 5})
    );
    assert_eq!(body["results"].as_array().unwrap().len(), 5);
    let (_, body) = ak.get("/core/users/?page_size=5&page=3").await;
    assert_eq!(
        body["pagination"],
        json!({"next": 0, "previous": 2, "count": 12, "current": 3, "total_pages": 3, "start_index": 11, "end_index": 12})
    );
    assert_eq!(body["results"].as_array().unwrap().len(), 2);
    let (s, body) = ak.get("/core/users/?page_size=5&page=4").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"detail": "Invalid page."}));
    let (s, _) = ak.get("/core/users/?page=0").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Default page size 20, cap 100.
    let (_, body) = ak.get("/core/users/").await;
    assert_eq!(body["pagination"]["total_pages"], 1);
    let (_, body) = ak.get("/core/users/?page_size=1000").await;
    assert_eq!(body["results"].as_array().unwrap().len(), 12);
    // Ordered by username by default; `ordering` works.
    let names: Vec<String> = body["results"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_owned()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let (_, body) = ak.get("/core/users/?ordering=-pk&page_size=1").await;
    assert_eq!(body["results"][0]["pk"], 112);
}

#[tokio::test]
async fn create_user_validation_and_uid() {
    let ak = start().await;
    let body = json!({
        "username": "new@acme.test", "name": "New Person", "email": "new@acme.test",
        "groups": [demo::ACME.group_uuid.unwrap()],
        "attributes": {"tenantSlug": "acme", "invitedAt": "2026-02-01T00:00:00.000Z"},
        "is_active": true, "path": "users/dezky", "type": "internal",
    });
    let (s, u) = ak.post("/core/users/", body.clone()).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(u["pk"], 113);
    assert_eq!(u["uid"], sha256_hex(&format!("113-{DEFAULT_INSTALL_ID}")));
    assert_eq!(u["path"], "users/dezky");
    assert_eq!(u["attributes"]["tenantSlug"], "acme");
    assert_eq!(u["groups"], json!([demo::ACME.group_uuid.unwrap()]));
    assert!(ak.state.members_of(demo::ACME.group_uuid.unwrap()).contains(&113));
    assert_eq!(ak.state.user_by_email("new@acme.test").unwrap().pk, 113);

    let (s, e) = ak.post("/core/users/", body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"username": ["This field must be unique."]}));

    let (s, e) = ak.post("/core/users/", json!({"username": "x"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"name": ["This field is required."]}));

    let (s, e) = ak.post("/core/users/", json!({"username": "", "name": "X"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"username": ["This field may not be blank."]}));

    let (s, e) = ak.post("/core/users/", json!({"username": "y", "name": "Y", "groups": ["0b7d3c2a-0000-4000-8000-0000000000ff"]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"groups": ["Invalid pk \"0b7d3c2a-0000-4000-8000-0000000000ff\" - object does not exist."]}));

    let (s, e) = ak.post("/core/users/", json!({"username": "y", "name": "Y", "path": "/users"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"path": ["No leading or trailing slashes allowed."]}));

    let (s, e) = ak.post("/core/users/", json!({"username": "y", "name": "Y", "type": "internal_service_account"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"type": ["Setting a user to internal service account is not allowed."]}));

    let (s, e) = ak.post("/core/users/", json!({"username": "y", "name": "Y", "attributes": []})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e["attributes"].is_array());

    let (s, e) = ak.post("/core/users/", json!({"username": "y", "name": "Y", "email": "not-an-email"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"email": ["Enter a valid email address."]}));

    // Defaults: no groups, active, path "users", unknown fields ignored, no password.
    let (s, u) = ak.post("/core/users/", json!({"username": "z", "name": "", "password": "ignored"})).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(u["pk"], 114);
    assert_eq!(u["groups"], json!([]));
    assert_eq!(u["is_active"], true);
    assert_eq!(u["path"], "users");
    assert_eq!(u["type"], "internal");
    assert_eq!(ak.state.password_of(114), None);

    // A changed install id changes the uid of later users.
    ak.state.set_install_id("other-install");
    let (_, u) = ak.post("/core/users/", json!({"username": "w", "name": "W"})).await;
    assert_eq!(u["uid"], sha256_hex("115-other-install"));
}

#[tokio::test]
async fn bodies_must_be_json() {
    let ak = start().await;
    let r = ak
        .req(Method::POST, "/core/users/")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("username=a&name=b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(r.json::<Value>().await.unwrap()["detail"].as_str().unwrap().starts_with("Unsupported media type"));
    let r = ak.req(Method::POST, "/core/users/").header("Content-Type", "application/json").body("{not json").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.json::<Value>().await.unwrap()["detail"].as_str().unwrap().starts_with("JSON parse error"));
    let (s, e) = ak.post("/core/users/", json!([1])).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}));
}

#[tokio::test]
async fn patch_replaces_attributes_and_put_resets_groups() {
    let ak = start().await;
    let pk = demo::ACME_MEMBER.pk;
    let (s, u) = ak.call(Method::PATCH, &format!("/core/users/{pk}/"), Some(json!({"attributes": {"a": 1}}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(u["attributes"], json!({"a": 1}));
    let (_, u) =
        ak.call(Method::PATCH, &format!("/core/users/{pk}/"), Some(json!({"attributes": {"dezky.password_change_required": true}}))).await;
    assert_eq!(u["attributes"], json!({"dezky.password_change_required": true}));
    assert_eq!(u["name"], demo::ACME_MEMBER.name);
    assert_eq!(u["groups"], json!([demo::ACME.group_uuid.unwrap()]));

    // Username change; uniqueness excludes the user itself.
    let (s, u) =
        ak.call(Method::PATCH, &format!("/core/users/{pk}/"), Some(json!({"username": "mia2@acme.test", "email": "mia2@acme.test"}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(u["username"], "mia2@acme.test");
    let (s, _) = ak.call(Method::PATCH, &format!("/core/users/{pk}/"), Some(json!({"username": "mia2@acme.test"}))).await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = ak.call(Method::PATCH, &format!("/core/users/{pk}/"), Some(json!({"username": "alice@acme.test"}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"username": ["This field must be unique."]}));

    // Deactivating through PATCH ends the user's sessions.
    assert_eq!(ak.state.sessions_of(pk).len(), 2);
    let (_, u) = ak.call(Method::PATCH, &format!("/core/users/{pk}/"), Some(json!({"is_active": false}))).await;
    assert_eq!(u["is_active"], false);
    assert!(ak.state.sessions_of(pk).is_empty());

    // PUT requires username and name and resets omitted groups.
    let (s, e) = ak.call(Method::PUT, &format!("/core/users/{pk}/"), Some(json!({"name": "M"}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"username": ["This field is required."]}));
    let (s, u) = ak.call(Method::PUT, &format!("/core/users/{pk}/"), Some(json!({"username": "mia2@acme.test", "name": "M"}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(u["groups"], json!([]));
    assert_eq!(u["attributes"], json!({"dezky.password_change_required": true}));

    let (s, e) = ak.call(Method::PATCH, "/core/users/999/", Some(json!({"name": "x"}))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(e, json!({"detail": "No User matches the given query."}));
}

#[tokio::test]
async fn get_and_delete_user() {
    let ak = start().await;
    let (s, u) = ak.get("/core/users/101/").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(u["uid"], demo::OPERATOR.sub);
    assert_eq!(u["groups_obj"][0]["name"], demo::PLATFORM_ADMIN_GROUP);
    for f in ["pk", "uuid", "date_joined", "last_updated", "password_change_date", "avatar", "is_superuser", "roles_obj", "type", "path"] {
        assert!(u.get(f).is_some(), "missing {f}");
    }
    let (s, _) = ak.get("/core/users/abc/").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, body) = ak.call(Method::DELETE, "/core/users/108/", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    assert!(ak.state.user(108).is_none());
    assert!(ak.state.sessions_of(108).is_empty());
    assert!(!ak.state.members_of(demo::ACME.group_uuid.unwrap()).contains(&108));
    let (s, _) = ak.call(Method::DELETE, "/core/users/108/", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn set_password() {
    let ak = start().await;
    let (s, body) = ak.post("/core/users/106/set_password/", json!({"password": "Tr1cky-Temp-Pass"})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    assert_eq!(ak.state.password_of(106).as_deref(), Some("Tr1cky-Temp-Pass"));
    let (s, e) = ak.post("/core/users/106/set_password/", json!({"password": ""})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"password": ["This field may not be blank."]}));
    let (s, e) = ak.post("/core/users/106/set_password/", json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"password": ["This field is required."]}));
    let (s, _) = ak.post("/core/users/999/set_password/", json!({"password": "x"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = ak.get("/core/users/106/set_password/").await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn recovery_link_depends_on_the_brand_flow() {
    let ak = start().await;
    assert!(!ak.state.recovery_flow());
    let (s, e) = ak.post("/core/users/106/recovery/", json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"non_field_errors": "No recovery flow set."}));
    // Empty body is fine too.
    let r = ak.req(Method::POST, "/core/users/106/recovery/").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    ak.state.set_recovery_flow(true);
    let (s, body) = ak.post("/core/users/106/recovery/", json!({"token_duration": "days=1;hours=2"})).await;
    assert_eq!(s, StatusCode::OK);
    let link = body["link"].as_str().unwrap().to_owned();
    let host = ak.base.trim_start_matches("http://");
    assert!(link.starts_with(&format!("http://{host}/if/flow/default-recovery-flow/?flow_token=")), "{link}");
    assert_eq!(ak.state.recovery_link_of(106).as_deref(), Some(link.as_str()));
    let (_, body2) = ak.post("/core/users/106/recovery/", json!({})).await;
    assert_ne!(body2["link"], body["link"]);
    assert_eq!(ak.state.recovery_link_of(106).as_deref(), body2["link"].as_str());

    let (s, _) = ak.post("/core/users/999/recovery/", json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, e) = ak.post("/core/users/106/recovery/", json!({"token_duration": "forever"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e["token_duration"].is_array());
}

#[tokio::test]
async fn groups_find_create_and_membership() {
    let ak = start().await;
    let (s, body) = ak.get("/core/groups/?name=dezky-partner-staff").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["pagination"]["count"], 1);
    let g = &body["results"][0];
    assert_eq!(g["pk"], demo::PARTNER_STAFF_GROUP_UUID);
    assert_eq!(g["users"], json!([102, 103, 104, 105]));
    assert_eq!(g["users_obj"].as_array().unwrap().len(), 4);
    let (_, body) = ak.get("/core/groups/?name=dezky-partner-staff&include_users=false").await;
    assert_eq!(body["results"][0]["users_obj"], Value::Null);
    let (_, body) = ak.get("/core/groups/").await;
    assert_eq!(body["pagination"]["count"], 6); // 2 + 4 tenant groups (hooli has none)
    let (_, body) = ak.get("/core/groups/?name=nope").await;
    assert_eq!(body["pagination"]["count"], 0);
    let (_, body) = ak.get("/core/groups/?members_by_pk=112").await;
    assert_eq!(body["pagination"]["count"], 2);

    let (s, g) = ak.post("/core/groups/", json!({"name": "dezky-tenant-hooli", "attributes": {"tenantSlug": "hooli"}})).await;
    assert_eq!(s, StatusCode::CREATED);
    let gid = g["pk"].as_str().unwrap().to_owned();
    assert_eq!(g["users"], json!([]));
    assert!(g["num_pk"].is_i64());
    let (s, e) = ak.post("/core/groups/", json!({"name": "dezky-tenant-hooli"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"name": ["Group with this name already exists."]}));
    let (s, g) = ak.get(&format!("/core/groups/{gid}/")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(g["name"], "dezky-tenant-hooli");

    let (s, body) = ak.post(&format!("/core/groups/{gid}/add_user/"), json!({"pk": 105})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    assert_eq!(ak.state.members_of(&gid), vec![105]);
    assert!(ak.state.group_names_of(105).contains(&"dezky-tenant-hooli".to_owned()));
    // Adding twice is fine.
    let (s, _) = ak.post(&format!("/core/groups/{gid}/add_user/"), json!({"pk": 105})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, e) = ak.post(&format!("/core/groups/{gid}/add_user/"), json!({"pk": 999})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(e, json!({"detail": "Not found."}));
    let (s, e) = ak.post(&format!("/core/groups/{gid}/add_user/"), json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"pk": ["This field is required."]}));
    let (s, _) = ak.post("/core/groups/0b7d3c2a-0000-4000-8000-0000000000ff/add_user/", json!({"pk": 105})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, _) = ak.post(&format!("/core/groups/{gid}/remove_user/"), json!({"pk": 105})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(ak.state.members_of(&gid).is_empty());
    let (s, _) = ak.post(&format!("/core/groups/{gid}/remove_user/"), json!({"pk": 105})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = ak.post(&format!("/core/groups/{gid}/remove_user/"), json!({"pk": 999})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, _) = ak.call(Method::DELETE, &format!("/core/groups/{gid}/"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, e) = ak.get(&format!("/core/groups/{gid}/")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(e, json!({"detail": "No Group matches the given query."}));
}

#[tokio::test]
async fn sessions_list_delete_and_bulk_delete() {
    let ak = start().await;
    let (_, body) = ak.get("/core/authenticated_sessions/?user__username=mia%40acme.test").await;
    assert_eq!(body["pagination"]["count"], 2);
    let s0 = &body["results"][0];
    assert_eq!(s0["user"], demo::ACME_MEMBER.pk);
    for f in ["uuid", "current", "user_agent", "geo_ip", "asn", "last_ip", "last_user_agent", "last_used", "expires"] {
        assert!(s0.get(f).is_some(), "missing {f}");
    }
    // There is no filter by pk: `user=` is ignored and every session is listed.
    let (_, body) = ak.get("/core/authenticated_sessions/?user=108").await;
    assert_eq!(body["pagination"]["count"], 3);

    let uuid = ak.state.sessions_of(108)[0].uuid.clone();
    let (s, _) = ak.call(Method::DELETE, &format!("/core/authenticated_sessions/{uuid}/"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = ak.call(Method::DELETE, &format!("/core/authenticated_sessions/{uuid}/"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    ak.state.add_session(107);
    let (s, body) = ak.call(Method::DELETE, "/core/authenticated_sessions/bulk_delete/?user_pks=107&user_pks=108", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, json!({"deleted": 3}));
    assert!(ak.state.sessions().is_empty());
    let (s, body) = ak.call(Method::DELETE, "/core/authenticated_sessions/bulk_delete/?user_pks=107", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, json!({"deleted": 0}));
    let (s, e) = ak.call(Method::DELETE, "/core/authenticated_sessions/bulk_delete/", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"user_pks": ["This field is required."]}));
    let (s, _) = ak.post("/core/authenticated_sessions/bulk_delete/?user_pks=1", json!({})).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn authenticator_devices_are_a_plain_array() {
    let ak = start().await;
    let (s, body) = ak.get(&format!("/authenticators/admin/all/?user={}", demo::ACME_OWNER.pk)).await;
    assert_eq!(s, StatusCode::OK);
    let list = body.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|d| d["confirmed"] == true));
    assert_eq!(list[0]["type"], "authentik_stages_authenticator_totp.TOTPDevice");
    assert_eq!(list[1]["type"], "authentik_stages_authenticator_static.StaticDevice");
    let (_, body) = ak.get(&format!("/authenticators/admin/all/?user={}", demo::ACME_ADMIN.pk)).await;
    assert_eq!(body.as_array().unwrap().len(), 1);
    assert_eq!(body[0]["confirmed"], false);
    let (_, body) = ak.get("/authenticators/admin/all/?user=101").await;
    assert_eq!(body, json!([]));
    let (_, body) = ak.get("/authenticators/admin/all/").await;
    assert_eq!(body.as_array().unwrap().len(), 3);
    let (s, e) = ak.get("/authenticators/admin/all/?user=999").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e, json!({"user": ["Invalid pk \"999\" - object does not exist."]}));

    ak.state.add_device(101, DeviceKind::WebAuthn, true);
    let (_, body) = ak.get("/authenticators/admin/all/?user=101").await;
    assert_eq!(body[0]["type"], "authentik_stages_authenticator_webauthn.WebAuthnDevice");
}

#[tokio::test]
async fn routing_details() {
    let ak = start().await;
    // Paths end with a slash.
    let (s, e) = ak.get("/core/users").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(e, json!({"detail": "Not found."}));
    let (s, _) = ak.get("/core/nothing/").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let r = ak.req(Method::DELETE, "/core/users/").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.headers().get("allow").is_some());
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"detail": "Method \"DELETE\" not allowed."}));
}

#[tokio::test]
async fn seed_matches_the_demo_world() {
    let s = AuthentikState::demo();
    assert_eq!(s.users().len(), demo::USERS.len());
    for u in demo::USERS {
        let ak = s.user(u.pk).unwrap();
        assert_eq!(ak.uid, u.sub);
        assert_eq!(ak.email, u.email);
        assert_eq!(ak.is_active, u.active);
        let names = s.group_names_of(u.pk);
        assert_eq!(names.contains(&demo::PLATFORM_ADMIN_GROUP.to_owned()), u.platform_admin);
        assert_eq!(names.contains(&demo::PARTNER_STAFF_GROUP.to_owned()), u.partner.is_some());
        for (t, _) in u.tenants {
            assert!(names.contains(&format!("{}{}", demo::TENANT_GROUP_PREFIX, t.slug)));
        }
    }
    assert_eq!(s.group_by_name(demo::PLATFORM_ADMIN_GROUP).unwrap().pk, demo::PLATFORM_ADMIN_GROUP_UUID);
    assert_eq!(s.group_by_name("dezky-tenant-umbrella").unwrap().pk, demo::UMBRELLA.group_uuid.unwrap());
    assert!(s.group_by_name("dezky-tenant-hooli").is_none());
    assert_eq!(s.devices_of(demo::ACME_OWNER.pk).iter().filter(|d| d.confirmed).count(), 2);
    // Deterministic: two seeds agree.
    let t = AuthentikState::demo();
    assert_eq!(s.sessions(), t.sessions());
    assert_eq!(s.users(), t.users());
}

#[tokio::test]
async fn works_behind_controls() {
    let state = AuthentikState::demo();
    let controls = Controls::default();
    let base = serve_router(controls.wrap(router(state))).await;
    let http = Client::new();
    controls.faults.add(FaultRule::new("/api/v3/core/users/", Fault::Status(502)).times(1));
    let r = http.get(format!("{base}/api/v3/core/users/")).bearer_auth(demo::AUTHENTIK_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let r = http.get(format!("{base}/api/v3/core/users/?email=a%40b.c")).bearer_auth(demo::AUTHENTIK_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let log = controls.log.all();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].uri, "/api/v3/core/users/?email=a%40b.c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_creates_make_one_user_and_refuse_the_rest() {
    let ak = start().await;
    let body = json!({"username": "race@acme.test", "email": "race@acme.test", "name": "Race", "path": "users"});
    let answers = futures::future::join_all((0..16).map(|_| ak.post("/core/users/", body.clone()))).await;
    let created = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    assert_eq!(created, 1, "{answers:?}");
    for (s, b) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(*s, StatusCode::BAD_REQUEST);
        assert_eq!(*b, json!({"username": ["This field must be unique."]}));
    }
    assert_eq!(ak.state.users().iter().filter(|u| u.username == "race@acme.test").count(), 1);
}
