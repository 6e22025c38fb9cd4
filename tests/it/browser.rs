//! The demo page (web/) in a real browser: headless Chromium (Debian's,
//! driven by playwright-core, web/tests/browser.mjs) loads it from its own
//! origin, and every call it makes goes cross-origin to the app, which
//! allows exactly that origin. Signed in as a workspace owner it shows
//! `/users/me`, lists the members, creates one and shows the temporary
//! password; signed in as a member, the `403` of the listing is shown.

use std::path::PathBuf;

use devtool::web;
use e2e::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves the files of `dir` (`/` is `index.html`), one request per
/// connection: enough for a page and its assets.
async fn serve_dir(listener: TcpListener, dir: PathBuf) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else { return };
        let dir = dir.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            let n = conn.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("/").split('?').next().unwrap_or("/").to_owned();
            let file = if path == "/" { "index.html".to_owned() } else { path.trim_start_matches('/').to_owned() };
            let (status, body) = match (file.contains(".."), std::fs::read(dir.join(&file))) {
                (false, Ok(body)) => ("200 OK", body),
                _ => ("404 Not Found", b"not found".to_vec()),
            };
            let kind = match file.rsplit('.').next() {
                Some("html") => "text/html; charset=utf-8",
                Some("js") => "text/javascript",
                Some("json") => "application/json",
                Some("css") => "text/css",
                _ => "application/octet-stream",
            };
            let head = format!("HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(&body).await;
        });
    }
}

#[tokio::test]
async fn the_demo_page_works_in_chromium_across_origins() {
    let root = workspace();
    let dist = root.join("target").join(format!("web-{}", std::process::id()));
    web::build(&root, &dist).unwrap_or_else(|e| panic!("{e:#}"));
    // The page's origin first: the app allows exactly that one.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let allowed = origin.clone();
    let env = Env::start_with(move |vars, _| {
        vars.insert("cors_allowed_origins".to_owned(), allowed);
    })
    .await;
    std::fs::write(dist.join("demo.json"), serde_json::to_vec(&web::demo_json(&env.emu, &env.base)).unwrap()).unwrap();
    let server = tokio::spawn(serve_dir(listener, dist.clone()));
    let out = tokio::process::Command::new("node")
        .arg("tests/browser.mjs")
        .current_dir(web::dir(&root))
        .env("PAGE", &origin)
        .env("ADMIN", ACME_OWNER.email)
        .env("MEMBER", ACME_MEMBER.email)
        .env("LOCAL", "browser.made")
        .output()
        .await
        .expect("node runs");
    server.abort();
    let _ = std::fs::remove_dir_all(&dist);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the browser run failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("the script prints what it saw");
    assert_eq!(seen["me"]["email"], json!(ACME_OWNER.email), "{seen}");
    let members = seen["members"].as_array().expect("members listed");
    assert!(members.contains(&json!(ACME_MEMBER.email)), "{seen}");
    assert!(seen["created"].as_str().unwrap_or_default().starts_with("browser.made@acme.test created"), "{seen}");
    assert!(seen["password"].as_str().is_some_and(|p| p.len() >= 12), "{seen}");
    assert!(seen["problem"].as_str().unwrap_or_default().starts_with("403"), "{seen}");
    assert_eq!(seen["failedRequests"], json!([]), "{seen}");
    assert_eq!(env.find("users", json!({"email": "browser.made@acme.test"})).len(), 1, "the member the page created");
}
