//! The Stalwart emulator over HTTP, against Stalwart's documented behaviour (docs/upstreams.md).

use base64::Engine as _;
use emulators::demo;
use emulators::stalwart::{router, StalwartState, ADMIN_ACCOUNT_ID, DEMO_MAILBOX_PASSWORD};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const CORE: &str = "urn:ietf:params:jmap:core";
const STALWART: &str = "urn:stalwart:jmap";
const PRINCIPALS: &str = "urn:ietf:params:jmap:principals";

struct St {
    base: String,
    http: Client,
    state: StalwartState,
}

async fn start() -> St {
    let state = StalwartState::demo();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    St { base: format!("http://{addr}"), http: Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(), state }
}

fn basic(user: &str, pw: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}")))
}

impl St {
    async fn raw(&self, auth: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut r = self.http.post(format!("{}/jmap/", self.base)).json(&body);
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }
    /// Sends the calls as the admin; returns the methodResponses.
    async fn jmap_with(&self, using: &[&str], calls: Value) -> Vec<Value> {
        let (s, body) = self.raw(Some(&format!("Bearer {}", demo::STALWART_TOKEN)), json!({"using": using, "methodCalls": calls})).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        body["methodResponses"].as_array().unwrap().clone()
    }
    async fn jmap(&self, calls: Value) -> Vec<Value> {
        self.jmap_with(&[CORE, STALWART], calls).await
    }
    /// One call; returns its arguments (asserting the method name).
    async fn one(&self, name: &str, args: Value) -> Value {
        let r = self.jmap(json!([[name, args, "c0"]])).await;
        assert_eq!(r[0][0], name, "{}", r[0]);
        assert_eq!(r[0][2], "c0");
        r[0][1].clone()
    }
    async fn error(&self, name: &str, args: Value) -> Value {
        let r = self.jmap(json!([[name, args, "c0"]])).await;
        assert_eq!(r[0][0], "error", "{}", r[0]);
        r[0][1].clone()
    }
}

fn jane(extra: Value) -> Value {
    let mut v = json!({"@type": "User", "name": "jane", "domainId": "b", "description": "Jane Doe",
        "credentials": {"0": {"@type": "Password", "secret": "Correct-Horse-42"}},
        "roles": {"@type": "User"}, "permissions": {"@type": "Inherit"}});
    if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
        m.extend(e);
    }
    v
}

#[tokio::test]
async fn session_discovery() {
    let st = start().await;
    let r = st.http.get(format!("{}/.well-known/jmap", st.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(r.headers()["location"], "/jmap/session");

    let r = st.http.get(format!("{}/jmap/session", st.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let s: Value = r.json().await.unwrap();
    assert_eq!(s["accounts"], json!({}));
    assert_eq!(s["username"], "");
    assert_eq!(s["capabilities"][CORE]["maxObjectsInGet"], 500);
    assert_eq!(s["capabilities"][CORE]["maxCallsInRequest"], 16);

    let r = st.http.get(format!("{}/jmap/session", st.base)).bearer_auth(demo::STALWART_TOKEN).send().await.unwrap();
    let s: Value = r.json().await.unwrap();
    assert_eq!(s["primaryAccounts"][STALWART], ADMIN_ACCOUNT_ID);
    assert_eq!(s["primaryAccounts"][PRINCIPALS], ADMIN_ACCOUNT_ID);
    assert_eq!(s["accounts"][ADMIN_ACCOUNT_ID]["isPersonal"], true);
    assert_eq!(s["username"], "admin");
    assert_eq!(s["apiUrl"], format!("{}/jmap/", st.base));

    let r = st.http.get(format!("{}/jmap/session", st.base)).bearer_auth("nope").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn authentication_and_request_errors() {
    let st = start().await;
    let body = json!({"using": [CORE, STALWART], "methodCalls": [["Core/echo", {"x": 1}, "e"]]});
    let r = st.http.post(format!("{}/jmap/", st.base)).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let www: Vec<&str> = r.headers().get_all("www-authenticate").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(www.len(), 2);
    assert!(www[0].starts_with("Bearer realm=\"Stalwart Server\""));
    assert_eq!(www[1], "Basic realm=\"Stalwart Server\"");
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["status"], 401);
    assert_eq!(p["title"], "Unauthorized");
    assert_eq!(p["type"], "about:blank");

    let (s, _) = st.raw(Some("Bearer wrong"), body.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = st.raw(Some(&basic("admin", "wrong")), body.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = st.raw(Some(&format!("Token {}", demo::STALWART_TOKEN)), body.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // The admin login: Basic admin:<token>.
    let (s, b) = st.raw(Some(&basic("admin", demo::STALWART_TOKEN)), body.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["methodResponses"][0], json!(["Core/echo", {"x": 1}, "e"]));
    assert!(b["sessionState"].is_string());
    // `/jmap` without the slash works too.
    let r = st.http.post(format!("{}/jmap", st.base)).bearer_auth(demo::STALWART_TOKEN).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let auth = format!("Bearer {}", demo::STALWART_TOKEN);
    let r = st
        .http
        .post(format!("{}/jmap/", st.base))
        .header("Authorization", &auth)
        .header("Content-Type", "text/plain")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["type"], "urn:ietf:params:jmap:error:notJSON");
    let r = st
        .http
        .post(format!("{}/jmap/", st.base))
        .header("Authorization", &auth)
        .header("Content-Type", "application/json")
        .body("{broken")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["type"], "urn:ietf:params:jmap:error:notRequest");
    assert!(p["detail"].as_str().unwrap().contains("{broken"));
    let (s, p) = st.raw(Some(&auth), json!({"using": ["urn:example:nope"], "methodCalls": []})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(p["type"], "urn:ietf:params:jmap:error:notRequest");
    let calls: Vec<Value> = (0..17).map(|i| json!(["Core/echo", {}, format!("c{i}")])).collect();
    let (s, p) = st.raw(Some(&auth), json!({"using": [CORE], "methodCalls": calls})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(p["type"], "urn:ietf:params:jmap:error:limit");
    assert_eq!(p["limit"], "maxCallsInRequest");

    // Method-level errors are HTTP 200.
    let e = st.error("x:Nope/get", json!({})).await;
    assert_eq!(e["type"], "unknownMethod");
    let e = st.error("x:Account/get", json!({"accountId": "zzz"})).await;
    assert_eq!(e["type"], "accountNotFound");
}

#[tokio::test]
async fn find_domain_by_name_with_back_reference() {
    let st = start().await;
    let r = st
        .jmap(json!([
            ["x:Domain/query", {"filter": {"name": "acme.test"}}, "q"],
            ["x:Domain/get", {"#ids": {"resultOf": "q", "name": "x:Domain/query", "path": "/ids"},
                "properties": ["id", "name", "aliases", "isEnabled", "description"]}, "g"]
        ]))
        .await;
    assert_eq!(r[0][0], "x:Domain/query");
    assert_eq!(r[0][1]["ids"], json!(["b"]));
    assert_eq!(r[0][1]["accountId"], ADMIN_ACCOUNT_ID);
    assert_eq!(r[1][0], "x:Domain/get");
    assert_eq!(r[1][1]["list"], json!([{"id": "b", "name": "acme.test", "aliases": {}, "isEnabled": true, "description": "Acme A/S"}]));
    assert_eq!(r[1][1]["notFound"], json!([]));

    let r = st.one("x:Domain/query", json!({"filter": {"name": "nope.test"}})).await;
    assert_eq!(r["ids"], json!([]));
    let e = st.error("x:Domain/query", json!({"filter": {"isEnabled": true}})).await;
    assert_eq!(e["type"], "unsupportedFilter");
    let r = st.one("x:Domain/get", json!({"ids": ["b", "zz"], "properties": ["name"]})).await;
    assert_eq!(r["list"], json!([{"id": "b", "name": "acme.test"}]));
    assert_eq!(r["notFound"], json!(["zz"]));
    // A bare get returns everything, zone file included.
    let r = st.one("x:Domain/get", json!({"ids": ["b"]})).await;
    assert!(r["list"][0]["dnsZoneFile"].as_str().unwrap().contains("acme.test"));

    // Wrong reference name.
    let r = st
        .jmap(json!([
            ["x:Domain/query", {"filter": {"name": "acme.test"}}, "q"],
            ["x:Domain/get", {"#ids": {"resultOf": "q", "name": "x:Account/query", "path": "/ids"}}, "g"]
        ]))
        .await;
    assert_eq!(r[1][0], "error");
    assert_eq!(r[1][1]["type"], "invalidResultReference");

    // Domain aliases resolve through their own filter.
    let r = st.one("x:Domain/set", json!({"update": {"b": {"aliases/alt.acme.test": true}}})).await;
    assert_eq!(r["updated"], json!({"b": null}));
    let r = st.one("x:Domain/query", json!({"filter": {"aliases": "alt.acme.test"}})).await;
    assert_eq!(r["ids"], json!(["b"]));
}

#[tokio::test]
async fn create_get_and_destroy_a_mailbox() {
    let st = start().await;
    let r = st
        .one(
            "x:Account/set",
            json!({"create": {"n1": jane(json!({"aliases": {"0": {"name": "j.doe", "domainId": "b"}},
            "quotas": {"maxDiskQuota": 1073741824u64}}))}}),
        )
        .await;
    let id = r["created"]["n1"]["id"].as_str().unwrap().to_owned();
    assert_eq!(id, "h");
    assert_eq!(r["accountId"], ADMIN_ACCOUNT_ID);
    assert!(r.get("notCreated").is_none());
    assert_ne!(r["oldState"], r["newState"]);

    let r = st
        .one("x:Account/get", json!({"ids": [id], "properties": ["@type", "name", "domainId", "emailAddress", "description", "aliases", "roles", "permissions"]}))
        .await;
    assert_eq!(
        r["list"][0],
        json!({"id": id, "@type": "User", "name": "jane", "domainId": "b", "emailAddress": "jane@acme.test",
            "description": "Jane Doe", "aliases": {"0": {"enabled": true, "name": "j.doe", "domainId": "b", "description": null}},
            "roles": {"@type": "User"}, "permissions": {"@type": "Inherit"}})
    );
    // `id` always, `@type` only if asked.
    let r = st.one("x:Account/get", json!({"ids": [id], "properties": ["name"]})).await;
    assert_eq!(r["list"][0], json!({"id": id, "name": "jane"}));
    // A bare get masks secrets.
    let r = st.one("x:Account/get", json!({"ids": [id]})).await;
    assert_eq!(r["list"][0]["credentials"]["0"]["secret"], "****");
    assert_eq!(r["list"][0]["locale"], "en_US");
    assert_eq!(st.state.password_of(&id).as_deref(), Some("Correct-Horse-42"));
    assert_eq!(st.state.account_by_email("j.doe@acme.test").unwrap().id, id);

    let r = st.one("x:Account/set", json!({"destroy": [id]})).await;
    assert_eq!(r["destroyed"], json!([id]));
    let r = st.one("x:Account/set", json!({"destroy": [id]})).await;
    assert_eq!(r["notDestroyed"][&id]["type"], "notFound");
    assert!(r.get("destroyed").is_none());
    // The address is free again at once.
    let r = st.one("x:Account/set", json!({"create": {"n2": jane(json!({}))}})).await;
    assert!(r["created"]["n2"]["id"].is_string(), "{r}");
}

#[tokio::test]
async fn create_errors_are_set_errors() {
    let st = start().await;
    let r = st
        .one(
            "x:Account/set",
            json!({"create": {
                "taken": jane(json!({"name": "Alice"})),
                "aliasTaken": jane(json!({"aliases": {"0": {"name": "adam", "domainId": "b"}}})),
                "badDomain": jane(json!({"domainId": "zz"})),
                "badName": jane(json!({"name": "jane@acme.test"})),
                "emptyName": jane(json!({"name": ""})),
                "weak": jane(json!({"credentials": {"0": {"@type": "Password", "secret": "short"}}})),
                "missing": {"@type": "User"},
                "noType": {"name": "x", "domainId": "b"},
                "serverSet": jane(json!({"emailAddress": "x@acme.test"})),
                "unknown": jane(json!({"colour": "blue"})),
                "apiKey": jane(json!({"credentials": {"0": {"@type": "ApiKey", "description": "k"}}})),
                "twoPasswords": jane(json!({"credentials": {"0": {"@type": "Password", "secret": "Correct-Horse-42"}, "1": {"@type": "Password", "secret": "Battery-Staple-42"}}})),
                "emptyDescription": jane(json!({"description": ""})),
                "ok": jane(json!({"name": "ok"})),
            }}),
        )
        .await;
    let nc = &r["notCreated"];
    assert_eq!(nc["taken"]["type"], "primaryKeyViolation");
    assert_eq!(nc["taken"]["properties"], json!(["email"]));
    assert_eq!(nc["taken"]["objectId"], json!({"object": "Account", "id": "m1"}));
    assert_eq!(nc["aliasTaken"]["type"], "primaryKeyViolation");
    assert_eq!(nc["aliasTaken"]["objectId"]["id"], "m2");
    assert_eq!(nc["badDomain"]["type"], "invalidForeignKey");
    assert_eq!(nc["badDomain"]["objectId"], json!({"object": "Domain", "id": "zz"}));
    assert_eq!(nc["badName"]["type"], "invalidPatch");
    assert_eq!(nc["badName"]["properties"], json!(["name"]));
    assert_eq!(nc["badName"]["description"], "Invalid email local part");
    assert_eq!(nc["emptyName"]["type"], "invalidPatch");
    assert_eq!(nc["weak"]["type"], "invalidProperties");
    assert_eq!(nc["weak"]["properties"], json!(["secret"]));
    assert_eq!(nc["weak"]["description"], "Password must be at least 8 characters long.");
    assert_eq!(nc["missing"]["type"], "validationFailed");
    assert_eq!(
        nc["missing"]["validationErrors"],
        json!([{"type": "Required", "property": "name"}, {"type": "Required", "property": "domainId"}])
    );
    assert_eq!(nc["noType"]["type"], "invalidPatch");
    assert_eq!(nc["serverSet"]["type"], "invalidPatch");
    assert_eq!(nc["serverSet"]["properties"], json!(["emailAddress"]));
    assert_eq!(nc["unknown"]["type"], "invalidPatch");
    assert_eq!(nc["apiKey"]["type"], "invalidProperties");
    assert_eq!(nc["twoPasswords"]["type"], "invalidProperties");
    assert_eq!(nc["emptyDescription"]["type"], "invalidPatch");
    assert_eq!(nc.as_object().unwrap().len(), 13);
    assert!(r["created"]["ok"]["id"].is_string());
    // A recognised hash is stored as sent, without a strength check.
    let r = st
        .one(
            "x:Account/set",
            json!({"create": {"h": jane(json!({"name": "hashed", "credentials": {"0": {"@type": "Password", "secret": "$6$salt$abc"}}}))}}),
        )
        .await;
    let id = r["created"]["h"]["id"].as_str().unwrap();
    assert_eq!(st.state.password_of(id).as_deref(), Some("$6$salt$abc"));
}

#[tokio::test]
async fn update_password_description_and_aliases() {
    let st = start().await;
    // m3 = mia@acme.test
    let r = st
        .one(
            "x:Account/set",
            json!({"update": {"m3": {"credentials/0/secret": "New-Secret-Pass-9", "description": "Mia Q. Member",
            "aliases/0": {"name": "sales", "domainId": "b"}, "aliases/1": {"name": "info", "domainId": "c"}}}}),
        )
        .await;
    assert_eq!(r["updated"], json!({"m3": null}));
    assert_eq!(st.state.password_of("m3").as_deref(), Some("New-Secret-Pass-9"));
    assert_eq!(st.state.aliases_of("m3"), vec!["sales@acme.test", "info@mail.acme.test"]);
    let a = st.state.account("m3").unwrap();
    assert_eq!(a.description.as_deref(), Some("Mia Q. Member"));

    // "****" keeps the old secret; a no-op update still reports `updated`.
    let r = st.one("x:Account/set", json!({"update": {"m3": {"credentials/0/secret": "****"}}})).await;
    assert_eq!(r["updated"], json!({"m3": null}));
    assert_eq!(st.state.password_of("m3").as_deref(), Some("New-Secret-Pass-9"));
    let r = st.one("x:Account/set", json!({"update": {"m3": {}}})).await;
    assert_eq!(r["updated"], json!({"m3": null}));

    // Patching an existing alias merges; removing one by key; unknown key fails.
    let r = st.one("x:Account/set", json!({"update": {"m3": {"aliases/1": {"enabled": false}}}})).await;
    assert_eq!(r["updated"], json!({"m3": null}));
    assert!(!st.state.account("m3").unwrap().aliases[&1].enabled);
    assert_eq!(st.state.account("m3").unwrap().aliases[&1].name, "info");
    let r = st.one("x:Account/set", json!({"update": {"m3": {"aliases/0": null}}})).await;
    assert_eq!(r["updated"], json!({"m3": null}));
    let r = st.one("x:Account/set", json!({"update": {"m3": {"aliases/0": null}}})).await;
    assert_eq!(r["notUpdated"]["m3"]["type"], "invalidPatch");
    assert_eq!(r["notUpdated"]["m3"]["properties"], json!(["aliases/0"]));

    // One bad path rejects the whole object.
    let r = st
        .one("x:Account/set", json!({"update": {"m3": {"description": "Changed", "aliases/5": {"name": "alice", "domainId": "b"}}}}))
        .await;
    assert_eq!(r["notUpdated"]["m3"]["type"], "primaryKeyViolation");
    assert_eq!(st.state.account("m3").unwrap().description.as_deref(), Some("Mia Q. Member"));

    let r = st.one("x:Account/set", json!({"update": {"m3": {"description": null}}})).await;
    assert_eq!(r["updated"], json!({"m3": null}));
    assert_eq!(st.state.account("m3").unwrap().description, None);

    let r = st
        .one("x:Account/set", json!({"update": {"m3": {"emailAddress": "x@acme.test"}, "zz": {"description": "x"}, "m2": {"@type": "Group"}, "m1": {"credentials/0/secret": "weak"}}}))
        .await;
    assert_eq!(r["notUpdated"]["m3"]["type"], "invalidPatch");
    assert_eq!(r["notUpdated"]["zz"]["type"], "notFound");
    assert_eq!(r["notUpdated"]["m2"]["type"], "invalidProperties");
    assert_eq!(r["notUpdated"]["m1"]["type"], "invalidProperties");
    assert!(r.get("updated").is_none());
}

#[tokio::test]
async fn suspend_and_resume_sign_in() {
    let st = start().await;
    let mia = basic("mia@acme.test", DEMO_MAILBOX_PASSWORD);
    let echo = json!({"using": [CORE], "methodCalls": [["Core/echo", {}, "e"]]});
    let (s, _) = st.raw(Some(&mia), echo.clone()).await;
    assert_eq!(s, StatusCode::OK);
    // A mailbox user has no management permissions.
    let (_, b) = st.raw(Some(&mia), json!({"using": [CORE, STALWART], "methodCalls": [["x:Account/get", {"ids": ["m3"]}, "g"]]})).await;
    assert_eq!(b["methodResponses"][0][0], "error");
    assert_eq!(b["methodResponses"][0][1]["type"], "forbidden");

    // A sub-path on Inherit is an invalid patch.
    let r = st.one("x:Account/set", json!({"update": {"m3": {"permissions/disabledPermissions/authenticate": true}}})).await;
    assert_eq!(r["notUpdated"]["m3"]["type"], "invalidPatch");
    assert_eq!(st.state.is_suspended("m3"), Some(false));

    let r = st
        .one("x:Account/set", json!({"update": {"m3": {"permissions": {"@type": "Merge", "enabledPermissions": {}, "disabledPermissions": {"authenticate": true}}}}}))
        .await;
    assert_eq!(r["updated"], json!({"m3": null}));
    assert_eq!(st.state.is_suspended("m3"), Some(true));
    let (s, p) = st.raw(Some(&mia), echo.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(p["title"], "Forbidden");
    let (s, _) = st.raw(Some(&basic("mia@acme.test", "wrong-password")), echo.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let r = st.one("x:Account/get", json!({"ids": ["m3"], "properties": ["permissions"]})).await;
    assert_eq!(
        r["list"][0]["permissions"],
        json!({"@type": "Merge", "enabledPermissions": {}, "disabledPermissions": {"authenticate": true}})
    );
    // Resume through the sub-path now that permissions are Merge.
    let r = st.one("x:Account/set", json!({"update": {"m3": {"permissions/disabledPermissions/authenticate": null}}})).await;
    assert_eq!(r["updated"], json!({"m3": null}));
    assert_eq!(st.state.is_suspended("m3"), Some(false));
    let (s, _) = st.raw(Some(&mia), echo.clone()).await;
    assert_eq!(s, StatusCode::OK);
    // Suspend again with the sub-path, then resume with Inherit.
    let r = st.one("x:Account/set", json!({"update": {"m3": {"permissions/disabledPermissions/authenticate": true}}})).await;
    assert_eq!(r["updated"], json!({"m3": null}));
    assert_eq!(st.state.is_suspended("m3"), Some(true));
    st.one("x:Account/set", json!({"update": {"m3": {"permissions": {"@type": "Inherit"}}}})).await;
    assert_eq!(st.state.is_suspended("m3"), Some(false));
}

#[tokio::test]
async fn list_accounts_with_paging() {
    let st = start().await;
    let r = st
        .jmap(json!([
            ["x:Account/query", {"filter": {"@type": "User", "domainId": "b"}, "sort": [{"property": "id", "isAscending": true}],
                "position": 0, "limit": 100, "calculateTotal": true}, "q"],
            ["x:Account/get", {"#ids": {"resultOf": "q", "name": "x:Account/query", "path": "/ids"},
                "properties": ["name", "domainId", "emailAddress", "aliases", "description"]}, "g"]
        ]))
        .await;
    assert_eq!(r[0][1]["ids"], json!(["m1", "m2", "m3", "m6"]));
    assert_eq!(r[0][1]["total"], 4);
    assert_eq!(r[0][1]["position"], 0);
    let emails: Vec<&str> = r[1][1]["list"].as_array().unwrap().iter().map(|a| a["emailAddress"].as_str().unwrap()).collect();
    assert_eq!(emails, vec!["alice@acme.test", "adam@acme.test", "mia@acme.test", "max@acme.test"]);

    let r = st
        .one(
            "x:Account/query",
            json!({"sort": [{"property": "id", "isAscending": true}], "position": 2, "limit": 2, "calculateTotal": true}),
        )
        .await;
    assert_eq!(r["ids"], json!(["m3", "m4"]));
    assert_eq!(r["total"], 6);
    assert_eq!(r["position"], 2);
    let r = st
        .one("x:Account/query", json!({"sort": [{"property": "id", "isAscending": true}], "anchor": "m4", "anchorOffset": 1, "limit": 10}))
        .await;
    assert_eq!(r["ids"], json!(["m5", "m6"]));
    assert!(r.get("total").is_none());
    let r = st.one("x:Account/query", json!({"sort": [{"property": "name", "isAscending": true}], "calculateTotal": true})).await;
    assert_eq!(r["ids"], json!(["m2", "m1", "m4", "m5", "m6", "m3"]));
    let r = st.one("x:Account/query", json!({"filter": {"name": "max", "domainId": "b"}})).await;
    assert_eq!(r["ids"], json!(["m6"]));

    for f in ["emailAddress", "email", "description"] {
        let e = st.error("x:Account/query", json!({"filter": {f: "x"}})).await;
        assert_eq!(e["type"], "unsupportedFilter", "{f}");
    }
    let e = st.error("x:Account/query", json!({"filter": {"operator": "OR", "conditions": []}})).await;
    assert_eq!(e["type"], "unsupportedFilter");
    let e = st.error("x:Account/query", json!({"sort": [{"property": "description"}]})).await;
    assert_eq!(e["type"], "unsupportedSort");
    let e = st.error("x:Account/query", json!({"anchor": "zz"})).await;
    assert_eq!(e["type"], "anchorNotFound");

    // `text` matches words of names, descriptions and alias local parts.
    st.one("x:Account/set", json!({"update": {"m4": {"aliases/0": {"name": "billing-team", "domainId": "d"}}}})).await;
    let r = st.one("x:Account/query", json!({"filter": {"text": "billing"}})).await;
    assert_eq!(r["ids"], json!(["m4"]));
    let r = st.one("x:Account/query", json!({"filter": {"text": "Gina"}})).await;
    assert_eq!(r["ids"], json!(["m4"]));
    let r = st.one("x:Account/query", json!({"filter": {"text": "g"}})).await;
    assert_eq!(r["ids"], json!([]));
}

#[tokio::test]
async fn find_account_by_email_through_principals() {
    let st = start().await;
    let find = |addr: &str| {
        json!([
            ["Principal/query", {"accountId": ADMIN_ACCOUNT_ID, "filter": {"email": addr}}, "p"],
            ["x:Account/get", {"#ids": {"resultOf": "p", "name": "Principal/query", "path": "/ids"},
                "properties": ["@type", "name", "domainId", "emailAddress", "aliases"]}, "g"]
        ])
    };
    let r = st.jmap_with(&[CORE, PRINCIPALS, STALWART], find("adam@acme.test")).await;
    assert_eq!(r[0][1]["ids"], json!(["m2"]));
    assert_eq!(r[1][1]["list"][0]["@type"], "User");
    assert_eq!(r[1][1]["list"][0]["emailAddress"], "adam@acme.test");
    let r = st.jmap_with(&[CORE, PRINCIPALS, STALWART], find("nobody@acme.test")).await;
    assert_eq!(r[0][1]["ids"], json!([]));
    assert_eq!(r[1][1]["list"], json!([]));

    // Enabled aliases resolve, disabled ones do not; domain aliases resolve.
    st.one("x:Account/set", json!({"update": {"m2": {"aliases/0": {"name": "support", "domainId": "c"}, "aliases/1": {"name": "old", "domainId": "b", "enabled": false}}}})).await;
    st.one("x:Domain/set", json!({"update": {"b": {"aliases": {"acme-alt.test": true}}}})).await;
    let r = st.jmap_with(&[CORE, PRINCIPALS, STALWART], find("support@mail.acme.test")).await;
    assert_eq!(r[0][1]["ids"], json!(["m2"]));
    let r = st.jmap_with(&[CORE, PRINCIPALS, STALWART], find("old@acme.test")).await;
    assert_eq!(r[0][1]["ids"], json!([]));
    let r = st.jmap_with(&[CORE, PRINCIPALS, STALWART], find("adam@acme-alt.test")).await;
    assert_eq!(r[0][1]["ids"], json!(["m2"]));
    // A disabled alias is not in the unique index: the address can be reused.
    let r = st.one("x:Account/set", json!({"create": {"n": jane(json!({"name": "old"}))}})).await;
    assert!(r["created"]["n"]["id"].is_string(), "{r}");

    // Without the principals capability the method is unknown.
    let r = st.jmap(find("adam@acme.test")).await;
    assert_eq!(r[0][0], "error");
    assert_eq!(r[0][1]["type"], "unknownMethod");
    assert_eq!(r[1][0], "error");
    assert_eq!(r[1][1]["type"], "invalidResultReference");
}

#[tokio::test]
async fn creation_ids_and_domain_set() {
    let st = start().await;
    let r = st
        .jmap(json!([
            ["x:Domain/set", {"create": {"d1": {"name": "Newco.test"}}}, "c1"],
            ["x:Account/set", {"create": {"a1": jane(json!({"domainId": "#d1"}))}}, "c2"],
        ]))
        .await;
    let did = r[0][1]["created"]["d1"]["id"].as_str().unwrap().to_owned();
    assert!(demo::DOMAINS.iter().all(|d| d.stalwart_id != did), "a fresh id, not a seeded one: {did}");
    // Creation ids are not resolved inside object properties: that is a bad foreign key.
    assert_eq!(r[1][1]["notCreated"]["a1"]["type"], "invalidForeignKey");
    let r = st.one("x:Account/set", json!({"create": {"a1": jane(json!({"domainId": did}))}})).await;
    let aid = r["created"]["a1"]["id"].as_str().unwrap().to_owned();
    assert_eq!(st.state.email_address_of(&aid).as_deref(), Some("jane@newco.test"));

    let r = st.one("x:Domain/set", json!({"create": {"dup": {"name": "acme.test"}, "noName": {}}})).await;
    assert_eq!(r["notCreated"]["dup"]["type"], "primaryKeyViolation");
    assert_eq!(r["notCreated"]["dup"]["properties"], json!(["name"]));
    assert_eq!(r["notCreated"]["noName"]["type"], "validationFailed");
    let r = st.one("x:Domain/set", json!({"destroy": [did, "zz"]})).await;
    assert_eq!(r["notDestroyed"][&did]["type"], "objectIsLinked");
    assert_eq!(r["notDestroyed"][&did]["linkedObjects"], json!([{"object": "Account", "id": aid}]));
    assert_eq!(r["notDestroyed"]["zz"]["type"], "notFound");

    // A creation id can be destroyed later in the same request.
    let r = st
        .jmap(json!([
            ["x:Account/set", {"create": {"t": jane(json!({"name": "temp", "domainId": did}))}}, "c"],
            ["x:Account/set", {"destroy": ["#t"]}, "d"],
        ]))
        .await;
    let tid = r[0][1]["created"]["t"]["id"].clone();
    assert_eq!(r[1][1]["destroyed"], json!([tid]));

    st.one("x:Account/set", json!({"destroy": [aid]})).await;
    let r = st.one("x:Domain/set", json!({"destroy": [did]})).await;
    assert_eq!(r["destroyed"], json!([did]));

    // ifInState.
    let e = st.error("x:Account/set", json!({"ifInState": "s0", "destroy": []})).await;
    assert_eq!(e["type"], "stateMismatch");
}

#[tokio::test]
async fn seed_matches_the_demo_world() {
    let s = StalwartState::demo();
    assert_eq!(s.domains().len(), demo::DOMAINS.len());
    for d in demo::DOMAINS {
        assert_eq!(s.domain(d.stalwart_id).unwrap().name, d.domain);
    }
    let with_mailbox: Vec<_> = demo::USERS.iter().filter(|u| u.stalwart_account.is_some()).collect();
    assert_eq!(s.accounts().len(), with_mailbox.len());
    for u in with_mailbox {
        let id = u.stalwart_account.unwrap();
        assert_eq!(s.email_address_of(id).as_deref(), Some(u.email));
        assert_eq!(s.account(id).unwrap().description.as_deref(), Some(u.name));
        assert_eq!(s.password_of(id).as_deref(), Some(DEMO_MAILBOX_PASSWORD));
        assert_eq!(s.account_by_email(u.email).unwrap().id, id);
    }
    // A custom token.
    let custom = StalwartState::with_token("t2");
    assert_eq!(custom.token(), "t2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_creates_make_one_account_and_refuse_the_rest() {
    let st = start().await;
    let before = st.state.accounts().len();
    let create = || st.one("x:Account/set", json!({"create": {"n1": jane(json!({"name": "race"}))}}));
    let answers = futures::future::join_all((0..16).map(|_| create())).await;
    assert_eq!(answers.iter().filter(|r| r["created"]["n1"]["id"].is_string()).count(), 1, "{answers:?}");
    for r in answers.iter().filter(|r| r["created"].get("n1").is_none()) {
        assert_eq!(r["notCreated"]["n1"]["type"], "primaryKeyViolation", "{r}");
        assert_eq!(r["notCreated"]["n1"]["properties"], json!(["email"]));
    }
    assert_eq!(st.state.accounts().len(), before + 1);
}
