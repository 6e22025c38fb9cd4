//! Browsers on other origins (docs/api.md "Browsers (CORS)"): every
//! route's preflight is answered before any other check, granting exactly
//! the allowed origins the route's method; every other answer to an allowed
//! origin (successes, problems, `405`) carries the grant; with the
//! variable empty nothing changes: a preflight is an `OPTIONS` like any
//! other, and no answer carries a CORS header.

use e2e::*;
use serde_json::json;
use shared::routes::TABLE;

const ALLOWED: &str = "http://127.0.0.1:5173";
const OTHER: &str = "https://evil.test";

async fn with_origins(origins: &str) -> Env {
    let origins = origins.to_owned();
    Env::start_with(move |vars, _| {
        vars.insert("cors_allowed_origins".to_owned(), origins);
    })
    .await
}

/// A path Spin routes to `pattern`, with real values where they exist.
fn concrete(pattern: &str) -> String {
    pattern.replace(":slug", "acme").replace(":user_id", ACME_MEMBER.id).replace(":subject", NORTHWIND_STAFF.sub)
}

fn grants(r: &Resp) -> Vec<(String, String)> {
    r.headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("access-control-"))
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect()
}

async fn preflight(env: &Env, path: &str, origin: &str, method: &str) -> Resp {
    env.call_with("OPTIONS", path, &[("origin", origin), ("access-control-request-method", method)], None, None).await
}

#[tokio::test]
async fn every_routes_preflight_grants_its_method_to_an_allowed_origin_only() {
    let env = with_origins(&format!("https://app.example.com, {ALLOWED}")).await;
    for op in TABLE {
        let path = concrete(op.route.pattern);
        let method = op.method();
        let r = preflight(&env, &path, ALLOWED, method).await;
        assert_eq!(r.status, 204, "{path}: {}", r.text);
        assert_eq!(r.header("access-control-allow-origin"), Some(ALLOWED), "{path}");
        assert_eq!(r.header("access-control-allow-methods"), Some(method), "{path}");
        assert_eq!(r.header("access-control-allow-headers"), Some("Authorization, Content-Type"), "{path}");
        assert_eq!(r.header("access-control-max-age"), Some("7200"), "{path}");
        assert_eq!(r.header("vary"), Some("Origin"), "{path}");
        assert_eq!(r.header("access-control-allow-credentials"), None, "{path}: tokens are not cookies");
        assert!(r.text.is_empty(), "{path}: {}", r.text);
        let refused = preflight(&env, &path, OTHER, method).await;
        assert_eq!(refused.status, 204, "{path}");
        assert!(grants(&refused).is_empty(), "{path}: another origin was granted {:?}", grants(&refused));
        assert_eq!(refused.header("vary"), Some("Origin"), "{path}");
    }
}

#[tokio::test]
async fn with_cors_off_a_preflight_is_an_options_like_any_other() {
    let env = with_origins("").await;
    for op in TABLE {
        let path = concrete(op.route.pattern);
        let r = preflight(&env, &path, ALLOWED, op.method()).await;
        assert_eq!(r.status, 405, "{path}: {}", r.text);
        assert_eq!(r.header("allow"), Some(op.method()), "{path}");
        assert!(grants(&r).is_empty() && r.header("vary").is_none(), "{path}: {:?}", r.headers);
    }
    let me = env.call_with("GET", "/users/me", &[("origin", ALLOWED)], Some(&env.token(&ACME_MEMBER)), None).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert!(grants(&me).is_empty() && me.header("vary").is_none(), "{:?}", me.headers);
}

#[tokio::test]
async fn every_answer_to_an_allowed_origin_carries_the_grant() {
    let env = with_origins(ALLOWED).await;
    let token = env.token(&ACME_OWNER);
    let unknown_member = "/tenants/acme/members/65a0000000000000000000ff/logout";
    let cases = [
        ("GET", "/users/me", Some(token.as_str()), None, 200),
        ("GET", "/openapi.json", None, None, 200),
        (
            "POST",
            "/tenants/acme/members/create",
            Some(token.as_str()),
            Some(json!({"name": "Bro Wser", "localPart": "browser", "role": "member"})),
            201,
        ),
        ("GET", "/tenants/acme/members", None, None, 401),
        ("POST", unknown_member, Some(token.as_str()), None, 404),
        (
            "POST",
            "/tenants/acme/members/create",
            Some(token.as_str()),
            Some(json!({"name": "Bro Wser", "localPart": "browser", "role": "member"})),
            409,
        ),
        ("PUT", "/users/me", Some(token.as_str()), None, 405),
        // An OPTIONS that is not a preflight (no requested method) is a 405 too.
        ("OPTIONS", "/users/me", None, None, 405),
    ];
    for (method, path, token, body, status) in cases {
        let body = body.map(|b| b.to_string());
        let r = env.call_with(method, path, &[("origin", ALLOWED)], token, body.as_deref()).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.text);
        assert_eq!(r.header("access-control-allow-origin"), Some(ALLOWED), "{method} {path}");
        assert_eq!(r.header("vary"), Some("Origin"), "{method} {path}");
        let other = env.call_with(method, path, &[("origin", OTHER)], None, None).await;
        assert!(grants(&other).is_empty(), "{method} {path}: another origin was granted {:?}", grants(&other));
    }
}

#[tokio::test]
async fn a_star_grants_any_origin() {
    let env = with_origins("*").await;
    let r = preflight(&env, "/users/me", OTHER, "GET").await;
    assert_eq!((r.status, r.header("access-control-allow-origin")), (204, Some(OTHER)));
    let r = env.call_with("GET", "/tenants/acme/members", &[("origin", OTHER)], None, None).await;
    assert_eq!((r.status, r.header("access-control-allow-origin")), (401, Some(OTHER)));
}
