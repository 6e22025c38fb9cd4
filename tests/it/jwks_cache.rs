//! The JWKS cache (`shared::auth::jwks`) through the built components on
//! the host, whose `default` key-value store keeps the set between
//! instances: with `oidc_jwks_url` the JWKS is fetched once, refetched
//! for a rotated key, not for a flood of made-up ones, and a broken store
//! costs fetches, never answers. The fetches are counted in the Authentik
//! emulator's request log.

use std::path::PathBuf;

use e2e::*;
use emulators::issuer::Signing;
use serde_json::json;

/// The app with its JWKS from Authentik's URL rather than inline.
async fn with_jwks_url(state_dir: Option<PathBuf>) -> Env {
    Env::start_in(state_dir, |vars, emu| {
        vars.insert("oidc_jwks".into(), String::new());
        vars.insert("oidc_jwks_url".into(), emu.issuer.jwks_uri());
    })
    .await
}

fn fetches(env: &Env) -> usize {
    env.emu.authentik().jwks_fetches()
}

#[tokio::test]
async fn a_hundred_requests_make_one_jwks_fetch() {
    let env = with_jwks_url(None).await;
    // Two components and two callers: the store is the app's, not a
    // component's, and the kept set serves every token it signed.
    for i in 0..100 {
        let r = match i % 3 {
            0 => env.get("/users/me", &ACME_OWNER).await,
            1 => env.get("/tenants/acme/members", &ACME_OWNER).await,
            _ => env.get("/users/me", &ACME_MEMBER).await,
        };
        assert_eq!(r.status, 200, "request {i}: {}", r.text);
    }
    assert_eq!(fetches(&env), 1, "one JWKS fetch for 100 requests");
}

#[tokio::test]
async fn a_rotated_key_is_accepted_after_one_refetch() {
    let env = with_jwks_url(None).await;
    assert_eq!(env.get("/users/me", &ACME_OWNER).await.status, 200);
    assert_eq!(fetches(&env), 1);
    // Authentik's signing key changes: the new key joins its JWKS.
    env.emu.issuer.rotate();
    let next = env.token_with(&ACME_OWNER, json!({}), Signing::Es256NextKey);
    let r = env.call("GET", "/users/me", Some(&next), None).await;
    assert_eq!(r.status, 200, "a token of the new key: {}", r.text);
    assert_eq!(fetches(&env), 2, "one refetch");
    for token in [next.clone(), env.token(&ACME_OWNER)] {
        let r = env.call("GET", "/users/me", Some(&token), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(fetches(&env), 2, "the refetched set is kept, old key and new");
}

#[tokio::test]
async fn a_flood_of_unknown_kids_makes_one_refetch_and_every_one_401() {
    let env = with_jwks_url(None).await;
    assert_eq!(env.get("/users/me", &ACME_OWNER).await.status, 200);
    let forged = |i: usize| env.token_with(&ACME_OWNER, json!({}), Signing::Rs256WithKid(format!("made-up-{i}")));
    let r = env.call("GET", "/users/me", Some(&forged(0)), None).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(fetches(&env), 2, "the first unknown kid refetches");
    // Sixty more, each with a kid of its own, all at once.
    let tokens: Vec<String> = (1..=60).map(forged).collect();
    let answers = futures::future::join_all(tokens.iter().map(|t| env.call("GET", "/users/me", Some(t), None))).await;
    for (i, r) in answers.iter().enumerate() {
        assert_eq!(r.status, 401, "forged token {i}: {}", r.text);
        assert_eq!(r.detail(), "The token is invalid.");
    }
    assert_eq!(fetches(&env), 2, "no refetch within 30 s of the last");
    assert_eq!(env.get("/users/me", &ACME_MEMBER).await.status, 200, "good tokens still pass");
    assert_eq!(fetches(&env), 2);
}

#[tokio::test]
async fn a_failing_store_costs_a_fetch_per_request_never_an_answer() {
    // A state directory whose database path is taken by a directory: the
    // runtime starts, and every use of `default` fails.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = workspace().join("target/e2e-broken-kv").join(format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(dir.join("sqlite_key_value.db")).unwrap();
    let env = with_jwks_url(Some(dir.clone())).await;
    for i in 0..5 {
        let r = env.get("/users/me", &ACME_OWNER).await;
        assert_eq!(r.status, 200, "request {i}: {}", r.text);
    }
    assert_eq!(fetches(&env), 5, "each request fetched the set itself");
    let r =
        env.call("GET", "/users/me", Some(&env.token_with(&ACME_OWNER, json!({}), Signing::Rs256WithKid("made-up".into()))), None).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(fetches(&env), 6, "a set fetched just now is not fetched again");
    env.logged(&["JWKS cache", "failed", "fetched without it"]).await.unwrap();
    drop(env);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_answers_cache_control_bounds_the_keeping() {
    let env = with_jwks_url(None).await;
    env.emu.issuer.set_jwks_cache_control(Some("public, max-age=1"));
    assert_eq!(env.get("/users/me", &ACME_OWNER).await.status, 200);
    assert_eq!(env.get("/users/me", &ACME_OWNER).await.status, 200);
    assert_eq!(fetches(&env), 1);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(env.get("/users/me", &ACME_OWNER).await.status, 200);
    assert_eq!(fetches(&env), 2, "kept one second, as max-age said");

    env.emu.issuer.set_jwks_cache_control(Some("no-store"));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    for _ in 0..3 {
        assert_eq!(env.get("/users/me", &ACME_OWNER).await.status, 200);
    }
    assert_eq!(fetches(&env), 5, "no-store: never kept");
}

#[tokio::test]
async fn a_failed_jwks_fetch_answers_502_writes_nothing_and_keeps_nothing() {
    let env = with_jwks_url(None).await;
    let jwks_path = env.emu.issuer.jwks_uri().strip_prefix(&env.emu.authentik().url).unwrap().to_owned();
    let before = env.world();
    // Cold: Authentik fails the fetch, then drops the connection.
    for fault in [Fault::Status(503), Fault::Drop] {
        env.inject(System::Authentik, FaultRule::new(jwks_path.as_str(), fault).times(1));
        let r = env
            .post("/tenants/acme/members/create", &ACME_OWNER, json!({"name": "No Keys", "localPart": "no.keys", "role": "member"}))
            .await;
        assert_eq!(r.status, 502, "{}", r.text);
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
    }
    assert_eq!(env.world(), before, "nothing written anywhere");
    assert_eq!(fetches(&env), 2);
    // Nothing was kept from the failures: the next request fetches and passes.
    assert_eq!(env.get("/users/me", &ACME_OWNER).await.status, 200);
    assert_eq!(fetches(&env), 3);
    // A refetch for a rotated key that fails: 502, and the kept set still serves.
    env.emu.issuer.rotate();
    env.inject(System::Authentik, FaultRule::new(jwks_path.as_str(), Fault::Status(500)).times(1));
    let next = env.token_with(&ACME_OWNER, json!({}), Signing::Es256NextKey);
    assert_eq!(env.call("GET", "/users/me", Some(&next), None).await.status, 502);
    assert_eq!(env.get("/users/me", &ACME_MEMBER).await.status, 200, "the kept set is untouched");
    assert_eq!(fetches(&env), 4);
    assert_eq!(env.traps(), 0, "{}", env.trap_log());
}
