//! The same hostile bodies against every body route, the fixed 403 of the
//! platform-only rows for every other demo user, and refused connections.

use e2e::*;
use serde_json::json;

/// `(route, a valid body)` for every route that takes a body.
fn body_routes() -> Vec<(String, serde_json::Value)> {
    vec![
        ("/users/create".into(), json!({"authentikSubjectId": "s", "email": "a@acme.test", "name": "A"})),
        (format!("/users/{}/update", ACME_MEMBER.sub), json!({"name": "A"})),
        ("/platform/operators/invite".into(), json!({"name": "A", "email": "a@dezky.test"})),
        ("/partners/northwind/users/invite".into(), json!({"name": "A", "email": "a@northwind.test"})),
        ("/tenants/acme/admins/invite".into(), json!({"name": "A", "email": "a@acme.test"})),
        ("/tenants/acme/members/create".into(), json!({"name": "A", "localPart": "a", "role": "member"})),
    ]
}

#[tokio::test]
async fn hostile_bodies_are_4xx_problems_and_change_nothing() {
    let env = Env::start().await;
    let token = env.token(&OPERATOR);
    let before = env.world();
    for (route, good) in body_routes() {
        let first = good.as_object().unwrap().keys().next().unwrap().clone();
        let mut wrong_type = good.clone();
        wrong_type[&first] = json!(42);
        let mut operator = good.clone();
        operator[&first] = json!({"$ne": ""});
        let mut array = good.clone();
        array[&first] = json!(["a"]);
        let mut unknown = good.clone();
        unknown["$where"] = json!("1");
        let mut huge = good.clone();
        huge["name"] = json!("x".repeat(65 * 1024));
        let cases = [
            ("malformed JSON", "{\"name\": \"A\",".to_owned(), 400),
            ("not an object", "\"A\"".to_owned(), 400),
            ("null", "null".to_owned(), 400),
            ("wrong type", wrong_type.to_string(), 400),
            ("operator object", operator.to_string(), 400),
            ("array for a string", array.to_string(), 400),
            ("unknown field", unknown.to_string(), 400),
            ("65 KiB", huge.to_string(), 413),
        ];
        for (what, body, status) in cases {
            let r = env.call("POST", &route, Some(&token), Some(&body)).await;
            assert_eq!(r.status, status, "{route} with {what}: {}", r.text);
            assert_eq!(r.header("content-type"), Some("application/problem+json"), "{route} {what}");
            let p = r.json();
            assert_eq!(p["status"], status, "{route} {what}");
            assert!(p["title"].is_string() && p["type"].is_string() && p["detail"].is_string(), "{p}");
        }
    }
    assert_eq!(env.world(), before, "a rejected body wrote something somewhere");
}

#[tokio::test]
async fn platform_only_rows_are_403_for_everyone_else_whatever_the_resource() {
    let env = Env::start().await;
    let routes: Vec<(&str, String, Option<serde_json::Value>)> = vec![
        ("GET", format!("/users/{}", ACME_MEMBER.sub), None),
        ("GET", "/users/no-such-subject".into(), None),
        ("POST", "/users/create".into(), Some(json!({"authentikSubjectId": "s", "email": "a@acme.test", "name": "A"}))),
        ("POST", format!("/users/{}/update", ACME_MEMBER.sub), Some(json!({"name": "A"}))),
        ("POST", "/users/no-such-subject/update".into(), Some(json!({"name": "A"}))),
        ("POST", format!("/users/{}/deactivate", ACME_MEMBER.sub), None),
        ("POST", "/platform/operators/invite".into(), Some(json!({"name": "A", "email": "a@dezky.test"}))),
    ];
    let before = env.world();
    for u in USERS.iter().filter(|u| !u.platform_admin) {
        let t = env.token(u);
        for (method, path, body) in &routes {
            let r = env.call(method, path, Some(&t), body.as_ref().map(|b| b.to_string()).as_deref()).await;
            assert_eq!(r.status, 403, "{} {method} {path}: {}", u.email, r.text);
        }
    }
    assert_eq!(env.world(), before);
}

#[tokio::test]
async fn refused_connections_are_502_or_reported() {
    // Nothing listens on port 1.
    let env = Env::start_with(|v, _| {
        v.insert("stalwart_url".into(), "http://127.0.0.1:1".into());
    })
    .await;
    let r = env.post("/tenants/acme/members/create", &ACME_OWNER, json!({"name": "A", "localPart": "a", "role": "member"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["provisioning"]["stalwart"], "error");
    assert!(r.json()["stalwartError"].as_str().unwrap().contains("could not be reached"), "{}", r.text);

    let env = Env::start_with(|v, _| {
        v.insert("data_api_url".into(), "http://127.0.0.1:1".into());
    })
    .await;
    let r = env.get("/users/me", &OPERATOR).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(r.detail().starts_with("Data API could not be reached"), "{}", r.detail());
}
