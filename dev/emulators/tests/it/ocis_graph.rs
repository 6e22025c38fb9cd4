//! The OCIS emulator over HTTP, against OCIS's documented behaviour (docs/upstreams.md).

use emulators::demo;
use emulators::ocis::{router, OcisState, OCIS_ADMIN_ID, ROLE_ADMIN, ROLE_USER};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

struct Oc {
    base: String,
    http: Client,
    state: OcisState,
}

async fn start() -> Oc {
    let state = OcisState::demo();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Oc { base: format!("http://{addr}"), http: Client::new(), state }
}

impl Oc {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self.http.request(method, format!("{}/graph/v1.0{path}", self.base)).bearer_auth(demo::OCIS_TOKEN);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }
    async fn create(&self, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, "/users", Some(body)).await
    }
}

fn assert_graph_error(body: &Value, code: &str, message: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["message"], message, "{body}");
    assert!(body["error"]["innererror"]["date"].as_str().unwrap().ends_with('Z'));
    assert!(body["error"]["innererror"]["request-id"].is_string());
}

#[tokio::test]
async fn proxy_auth_is_401_with_an_empty_body() {
    let oc = start().await;
    let url = format!("{}/graph/v1.0/users", oc.base);
    let r = oc.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("www-authenticate").is_none());
    assert_eq!(r.text().await.unwrap(), "");
    let r = oc.http.get(&url).bearer_auth("nope").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = oc.http.get(&url).basic_auth("admin", Some("nope")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = oc.http.get(&url).basic_auth("admin", Some(demo::OCIS_TOKEN)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = oc.http.get(&url).bearer_auth(demo::OCIS_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn create_user_then_conflict() {
    let oc = start().await;
    let body = json!({"onPremisesSamAccountName": "jane@acme.test", "displayName": "Jane Doe", "mail": "jane@acme.test"});
    let (s, u) = oc.create(body.clone()).await;
    assert_eq!(s, StatusCode::CREATED);
    let id = u["id"].as_str().unwrap().to_owned();
    assert_eq!(u["onPremisesSamAccountName"], "jane@acme.test");
    assert_eq!(u["displayName"], "Jane Doe");
    assert_eq!(u["mail"], "jane@acme.test");
    assert_eq!(u["userType"], "Member");
    assert_eq!(oc.state.user(&id).unwrap().app_role.as_deref(), Some(ROLE_USER));

    let (s, e) = oc.create(body).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_graph_error(&e, "nameAlreadyExists", "a user with that name already exists");
    // Usernames compare case-insensitively (LDAP).
    let (s, _) = oc.create(json!({"onPremisesSamAccountName": "JANE@acme.test", "displayName": "J"})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    // The client's recovery path: look it up by username.
    let (s, found) = oc.call(Method::GET, "/users/jane%40acme.test", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(found["id"], id);
    // A duplicate mail is not a conflict.
    let (s, _) = oc.create(json!({"onPremisesSamAccountName": "jane2", "displayName": "Jane", "mail": "jane@acme.test"})).await;
    assert_eq!(s, StatusCode::CREATED);
    // Password profile is write-only.
    let (s, u) = oc
        .create(json!({"onPremisesSamAccountName": "pw", "displayName": "P", "passwordProfile": {"password": "Secret-123", "forceChangePasswordNextSignIn": true}, "accountEnabled": true}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(u.get("passwordProfile").is_none());
    assert_eq!(u["accountEnabled"], true);
    let stored = oc.state.user("pw").unwrap();
    assert_eq!(stored.password.as_deref(), Some("Secret-123"));
    assert!(stored.force_change_password);
}

#[tokio::test]
async fn create_validation() {
    let oc = start().await;
    let cases = [
        (json!({"onPremisesSamAccountName": "x"}), "missing required Attribute: 'displayName'"),
        (json!({"displayName": "X"}), "missing required Attribute: 'onPremisesSamAccountName'"),
        (json!({"onPremisesSamAccountName": "1abc", "displayName": "X"}), "Invalid username"),
        (json!({"onPremisesSamAccountName": "a b", "displayName": "X"}), "Invalid username"),
        (json!({"onPremisesSamAccountName": "x", "displayName": "X", "mail": "not an email"}), "invalid email address"),
        (json!({"onPremisesSamAccountName": "x", "displayName": "X", "id": "abc"}), "user id is a read-only attribute"),
        (
            json!({"onPremisesSamAccountName": "x", "displayName": "X", "userType": "Admin"}),
            "invalid userType attribute, valid options are 'Member' or 'Guest'",
        ),
    ];
    for (body, msg) in cases {
        let (s, e) = oc.create(body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{msg}");
        assert_graph_error(&e, "invalidRequest", msg);
    }
    let (s, e) = oc.create(json!({"onPremisesSamAccountName": "x", "displayName": "X", "favouriteColour": "blue"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["code"], "invalidRequest");
    assert!(e["error"]["message"].as_str().unwrap().contains("unknown field"));
    let r = oc
        .http
        .post(format!("{}/graph/v1.0/users", oc.base))
        .bearer_auth(demo::OCIS_TOKEN)
        .header("Content-Type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "invalidRequest");
    // Guests are fine.
    let (s, u) = oc.create(json!({"onPremisesSamAccountName": "guest", "displayName": "G", "userType": "Guest"})).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(u["userType"], "Guest");

    oc.state.set_read_only(true);
    let (s, e) = oc.create(json!({"onPremisesSamAccountName": "ro", "displayName": "R"})).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(e["error"]["code"], "notAllowed");
}

#[tokio::test]
async fn get_by_id_or_username_drops_mail_by_default() {
    let oc = start().await;
    let u = oc.state.add_user("mia@acme.test", "Mia Member", Some("mia@acme.test"));
    let (s, got) = oc.call(Method::GET, &format!("/users/{}", u.id), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["onPremisesSamAccountName"], "mia@acme.test");
    assert!(got.get("mail").is_none());
    let (_, got) = oc.call(Method::GET, "/users/mia@acme.test", None).await;
    assert_eq!(got["id"], u.id);
    oc.state.set_show_user_email(true);
    let (_, got) = oc.call(Method::GET, "/users/MIA@acme.test", None).await;
    assert_eq!(got["mail"], "mia@acme.test");
    // Not by mail: the admin's mail is not its key.
    let (s, e) = oc.call(Method::GET, "/users/admin@dezky.test", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_graph_error(&e, "itemNotFound", "not found");
    let (_, got) = oc.call(Method::GET, &format!("/users/{}?$select=displayName&$expand=memberOf", u.id), None).await;
    assert_eq!(got, json!({"id": u.id, "displayName": "Mia Member"}));
    let (_, got) = oc.call(Method::GET, &format!("/users/{}?$expand=memberOf,appRoleAssignments", u.id), None).await;
    assert_eq!(got["memberOf"], json!([]));
    assert_eq!(got["appRoleAssignments"][0]["appRoleId"], ROLE_USER);
}

#[tokio::test]
async fn list_search_order_and_filter() {
    let oc = start().await;
    oc.state.add_user("mia@acme.test", "Mia Member", Some("mia@acme.test"));
    oc.state.add_user("adam@acme.test", "Adam Admin", Some("adam@acme.test"));
    oc.state.add_user("gina@globex.test", "Gina Globex", Some("gina@globex.test"));
    let names = |v: &Value| -> Vec<String> {
        v["value"].as_array().unwrap().iter().map(|u| u["onPremisesSamAccountName"].as_str().unwrap().to_owned()).collect()
    };
    let (s, all) = oc.call(Method::GET, "/users", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(names(&all), vec!["admin", "mia@acme.test", "adam@acme.test", "gina@globex.test"]);
    assert_eq!(all["value"][1]["mail"], "mia@acme.test");
    assert!(all.get("@odata.nextLink").is_none());

    // Find by mail: search, then compare on the client.
    let (_, found) = oc.call(Method::GET, "/users?$search=acme.test", None).await;
    assert_eq!(names(&found), vec!["mia@acme.test", "adam@acme.test"]);
    let (_, found) = oc.call(Method::GET, "/users?$search=%22GLOBEX%22", None).await;
    assert_eq!(names(&found), vec!["gina@globex.test"]);
    let (_, sorted) = oc.call(Method::GET, "/users?$orderby=displayName%20desc", None).await;
    assert_eq!(names(&sorted), vec!["mia@acme.test", "gina@globex.test", "admin", "adam@acme.test"]);
    let (s, _) = oc.call(Method::GET, "/users?$orderby=id", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (_, f) = oc.call(Method::GET, "/users?$filter=startswith(displayName,'gina')", None).await;
    assert_eq!(names(&f), vec!["gina@globex.test"]);
    let (_, f) = oc.call(Method::GET, "/users?$filter=contains(displayName,'a')%20and%20userType%20eq%20'Member'", None).await;
    assert_eq!(names(&f).len(), 4);
    let (_, f) = oc.call(Method::GET, "/users?$filter=startswith(mail,'mia')", None).await;
    assert_eq!(names(&f), Vec::<String>::new());
    let (_, f) = oc.call(Method::GET, &format!("/users?$filter=appRoleAssignments/any(x:x/appRoleId%20eq%20{ROLE_ADMIN})"), None).await;
    assert_eq!(names(&f), vec!["admin"]);
    let (_, f) = oc
        .call(
            Method::GET,
            "/users?$filter=memberOf/any(x:x/id%20eq%20'0b7d3c2a-0000-4000-8000-0000000000a1')%20or%20startswith(displayName,'Adam')",
            None,
        )
        .await;
    assert_eq!(names(&f), vec!["adam@acme.test"]);

    for unsupported in ["mail%20eq%20'mia@acme.test'", "onPremisesSamAccountName%20eq%20'admin'"] {
        let (s, e) = oc.call(Method::GET, &format!("/users?$filter={unsupported}"), None).await;
        assert_eq!(s, StatusCode::NOT_IMPLEMENTED);
        assert_graph_error(&e, "generalException", "unsupported filter");
    }
    let (s, e) = oc.call(Method::GET, "/users?$filter=startswith(displayName", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&e, "generalException", "invalid filter");
}

#[tokio::test]
async fn delete_and_patch() {
    let oc = start().await;
    let u = oc.state.add_user("mia@acme.test", "Mia Member", Some("mia@acme.test"));
    let (s, got) =
        oc.call(Method::PATCH, &format!("/users/{}", u.id), Some(json!({"displayName": "Mia M.", "mail": "mia2@acme.test"}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["displayName"], "Mia M.");
    assert_eq!(got["mail"], "mia2@acme.test");
    let (s, e) = oc.call(Method::PATCH, &format!("/users/{}", u.id), Some(json!({"mail": "bad mail"}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&e, "invalidRequest", "'bad mail' is not a valid email address");
    let (s, _) = oc.call(Method::PATCH, "/users/nobody", Some(json!({"displayName": "x"}))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, body) = oc.call(Method::DELETE, &format!("/users/{}", u.id), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    assert!(oc.state.user(&u.id).is_none());
    let (s, e) = oc.call(Method::DELETE, &format!("/users/{}", u.id), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_graph_error(&e, "itemNotFound", "not found");
    // By username too.
    oc.state.add_user("adam@acme.test", "Adam", None);
    let (s, _) = oc.call(Method::DELETE, "/users/adam%40acme.test", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // Never yourself.
    let (s, e) = oc.call(Method::DELETE, &format!("/users/{OCIS_ADMIN_ID}"), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_graph_error(&e, "notAllowed", "self deletion forbidden");
    // Unknown routes and methods.
    let (s, _) = oc.call(Method::PUT, "/users", None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let r = oc.http.get(format!("{}/graph/v1.0/groups", oc.base)).bearer_auth(demo::OCIS_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn seed_and_constructors() {
    let s = OcisState::demo();
    let users = s.users();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].id, OCIS_ADMIN_ID);
    assert_eq!(users[0].app_role.as_deref(), Some(ROLE_ADMIN));
    assert!(OcisState::empty("t").users().is_empty());
    assert_eq!(OcisState::with_token("t").token(), "t");
    // Deterministic ids.
    let a = OcisState::demo().add_user("x", "X", None);
    let b = OcisState::demo().add_user("x", "X", None);
    assert_eq!(a.id, b.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_creates_make_one_user_and_refuse_the_rest() {
    let oc = start().await;
    let body = json!({"onPremisesSamAccountName": "race@acme.test", "displayName": "Race", "mail": "race@acme.test"});
    let answers = futures::future::join_all((0..16).map(|_| oc.create(body.clone()))).await;
    assert_eq!(answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count(), 1, "{answers:?}");
    for (s, b) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(*s, StatusCode::CONFLICT);
        assert_graph_error(b, "nameAlreadyExists", "a user with that name already exists");
    }
    assert_eq!(oc.state.users().iter().filter(|u| u.username == "race@acme.test").count(), 1);
}
