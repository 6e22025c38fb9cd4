//! The Data API emulator's own behaviour over HTTP: fault injection through
//! `Controls`, a changed key, persistence across restarts, and the store
//! helpers tests use. The wire contract itself (every action, encodings,
//! errors, authentication) is gateway/tests/contract.rs, run on the
//! emulator and on the gateway alike.

use std::path::Path;
use std::time::{Duration, Instant};

use emulators::data_api::DataApi;
use emulators::faults::{Fault, FaultRule};
use emulators::{demo, start, Emulators, Options};
use serde_json::{json, Value};

const DB: &str = "dezky";

async fn start_data_api(data_dir: Option<&Path>) -> Emulators {
    start(Options { data_dir: data_dir.map(Path::to_path_buf), authentik_port: None, ..Options::default() }).await.expect("emulators start")
}

fn body(coll: &str, extra: Value) -> Value {
    let mut b = json!({"dataSource": "mongodb-atlas", "database": DB, "collection": coll});
    for (k, v) in extra.as_object().expect("object") {
        b[k] = v.clone();
    }
    b
}

/// POSTs with the right key and `Content-Type: application/json`; JSON-mode answer.
async fn post(emu: &Emulators, action: &str, body: Value) -> (u16, Value) {
    raw(emu, &emu.data_api().action_url(action), &[("api-key", demo::DATA_API_KEY), ("content-type", "application/json")], body.to_string())
        .await
}

async fn raw(_emu: &Emulators, url: &str, headers: &[(&str, &str)], body: String) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

// ---------------------------------------------------------------------------
// Keys

#[tokio::test]
async fn a_changed_key_takes_effect_at_once() {
    let emu = start_data_api(None).await;
    let (s, _) = post(&emu, "find", body("users", json!({}))).await;
    assert_eq!(s, 200);
    emu.data_api().api.set_api_key("rotated");
    let (s, v) = post(&emu, "find", body("users", json!({}))).await;
    assert_eq!(s, 401, "the old key is refused: {v}");
    assert_eq!(v["error_code"], json!("InvalidSession"));
    let url = emu.data_api().action_url("find");
    let (s, _) =
        raw(&emu, &url, &[("api-key", "rotated"), ("content-type", "application/json")], body("users", json!({})).to_string()).await;
    assert_eq!(s, 200);
    assert_eq!(emu.data_api().api.api_key(), "rotated");
}

// ---------------------------------------------------------------------------
// Faults and request log

#[tokio::test]
async fn injected_status_faults_apply_to_data_api_routes_and_count_down() {
    let emu = start_data_api(None).await;
    emu.data_api().controls.faults.add(FaultRule::new("/action/updateOne", Fault::Status(503)).times(1));
    let b = body("users", json!({"filter": {"email": demo::ACME_MEMBER.email}, "update": {"$set": {"name": "Changed"}}}));
    let (s, v) = post(&emu, "updateOne", b.clone()).await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(emu.data_api().api.count(DB, "users", json!({"name": "Changed"})), 0, "a faulted request does not run");
    let (s, _) = post(&emu, "updateOne", b).await;
    assert_eq!(s, 200);
    // Prefix rules reach the /app/... base too.
    emu.data_api().controls.faults.add(FaultRule::new("/app/", Fault::Status(500)).method("POST"));
    let (s, _) = raw(
        &emu,
        &format!("{}/app/x/endpoint/data/v1/action/find", emu.data_api().url),
        &[("api-key", demo::DATA_API_KEY), ("content-type", "application/json")],
        body("users", json!({})).to_string(),
    )
    .await;
    assert_eq!(s, 500);
    emu.data_api().controls.faults.clear();
}

#[tokio::test]
async fn delay_and_drop_faults() {
    let emu = start_data_api(None).await;
    emu.data_api().controls.faults.add(FaultRule::new("/action/find", Fault::DelayMs(300)).times(1));
    let t = Instant::now();
    let (s, _) = post(&emu, "find", body("users", json!({}))).await;
    assert_eq!(s, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    emu.data_api().controls.faults.add(FaultRule::new("/action/find", Fault::Drop).times(1));
    let err = reqwest::Client::new()
        .post(emu.data_api().action_url("find"))
        .header("api-key", demo::DATA_API_KEY)
        .header("content-type", "application/json")
        .body(body("users", json!({})).to_string())
        .send()
        .await;
    assert!(err.is_err(), "the connection is dropped without a response");
    let (s, _) = post(&emu, "find", body("users", json!({}))).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn faults_and_log_are_reachable_over_http_and_the_log_keeps_bodies() {
    let emu = start_data_api(None).await;
    let http = reqwest::Client::new();
    let base = &emu.data_api().url;
    let r = http
        .post(format!("{base}/__emulator/faults"))
        .json(&json!({"path_prefix": "/action/insertOne", "fault": {"status": 502}, "times": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (s, _) = post(&emu, "insertOne", body("notes", json!({"document": {"t": 1}}))).await;
    assert_eq!(s, 502);
    let log = emu.data_api().controls.log.all();
    let last = log.last().expect("logged");
    assert_eq!(last.path(), "/action/insertOne");
    assert_eq!(last.header("api-key"), Some(demo::DATA_API_KEY));
    assert_eq!(last.json()["document"], json!({"t": 1}));
    let listed: Value = http.get(format!("{base}/__emulator/requests")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), log.len());
}

// ---------------------------------------------------------------------------
// Persistence and seeding

fn files_in(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    out.sort();
    out
}

#[tokio::test]
async fn data_survives_a_restart_and_is_not_reseeded() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_data_api(Some(dir.path())).await;
    let (s, v) =
        post(&emu, "insertOne", body("notes", json!({"document": {"text": "kept", "at": {"$date": "2026-03-01T00:00:00Z"}}}))).await;
    assert_eq!(s, 200);
    let id = v["insertedId"].as_str().unwrap().to_owned();
    post(&emu, "updateOne", body("users", json!({"filter": {"email": demo::ACME_MEMBER.email}, "update": {"$set": {"name": "Renamed"}}})))
        .await;
    post(&emu, "deleteOne", body("tenants", json!({"filter": {"slug": "hooli"}}))).await;
    let before = emu.data_api().api.snapshot();
    emu.shutdown().await;

    let files = files_in(&dir.path().join(DB));
    assert!(files.contains(&"notes.json".to_owned()) && files.contains(&"users.json".to_owned()), "{files:?}");
    assert!(!files.iter().any(|f| f.starts_with(".tmp")), "no temporary files left: {files:?}");
    let text = std::fs::read_to_string(dir.path().join(DB).join("notes.json")).unwrap();
    assert!(
        text.contains(&format!(r#"{{"$oid":"{id}"}}"#)) && text.contains(r#""$date":{"$numberLong":"1772323200000"}"#),
        "canonical EJSON on disk: {text}"
    );

    let emu = start_data_api(Some(dir.path())).await;
    assert_eq!(emu.data_api().api.snapshot(), before, "the same data after a restart");
    assert_eq!(emu.data_api().api.count(DB, "tenants", json!({"slug": "hooli"})), 0, "not reseeded");
    let (_, v) = post(&emu, "findOne", body("notes", json!({"filter": {"_id": {"$oid": id}}, "projection": {"_id": 0}}))).await;
    assert_eq!(v, json!({"document": {"text": "kept", "at": "2026-03-01T00:00:00.000Z"}}));
    emu.shutdown().await;
}

#[tokio::test]
async fn deleting_every_document_persists_as_an_empty_collection() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_data_api(Some(dir.path())).await;
    post(&emu, "deleteMany", body("prices", json!({"filter": {}}))).await;
    emu.shutdown().await;
    assert_eq!(std::fs::read_to_string(dir.path().join(DB).join("prices.json")).unwrap().trim(), "[\n]");
    let emu = start_data_api(Some(dir.path())).await;
    assert_eq!(emu.data_api().api.count(DB, "prices", json!({})), 0);
    assert_eq!(emu.data_api().api.count(DB, "users", json!({})), demo::USERS.len());
}

#[tokio::test]
async fn seeding_fills_only_a_new_database_and_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let emu =
        start(Options { data_dir: Some(dir.path().to_path_buf()), seed: false, authentik_port: None, ..Options::default() }).await.unwrap();
    assert_eq!(emu.data_api().api.snapshot(), json!({}));
    emu.shutdown().await;
    let emu =
        start(Options { data_dir: Some(dir.path().to_path_buf()), database: "custom".into(), authentik_port: None, ..Options::default() })
            .await
            .unwrap();
    assert_eq!(
        emu.data_api().api.collections("custom"),
        vec!["auditevents", "domains", "partners", "prices", "subscriptions", "tenants", "users"]
    );
    assert!(emu.data_api().api.collections(DB).is_empty());
}

#[test]
fn a_store_reopened_from_disk_matches_and_clear_removes_files() {
    let dir = tempfile::tempdir().unwrap();
    let opts = emulators::data_api::DataApiOptions { data_dir: Some(dir.path().to_path_buf()), ..Default::default() };
    let api = DataApi::open(opts.clone()).unwrap();
    api.insert("second", "things", json!({"_id": 1, "v": {"$numberDecimal": "2.50"}}));
    let snap = api.snapshot();
    drop(api);
    let api = DataApi::open(opts.clone()).unwrap();
    assert_eq!(api.snapshot(), snap);
    api.clear();
    assert_eq!(api.snapshot(), json!({}));
    assert!(files_in(dir.path()).is_empty(), "{:?}", files_in(dir.path()));
    drop(api);
    // An emptied directory is new again: seeded on the next start.
    assert_eq!(DataApi::open(opts).unwrap().count(DB, "users", json!({})), demo::USERS.len());
}

#[test]
fn memory_store_helpers() {
    let api = DataApi::demo();
    assert_eq!(api.database(), DB);
    assert_eq!(api.count(DB, "users", json!({"tenantIds": {"$oid": demo::ACME.id}})), 5);
    let before = api.snapshot();
    let out = api.update_one(DB, "users", json!({"email": demo::ACME_OWNER.email}), json!({"$set": {"name": demo::ACME_OWNER.name}}));
    assert_eq!((out.matched, out.modified, out.upserted_id), (1, 0, None));
    assert_eq!(api.snapshot(), before, "a no-op update changes nothing");
    let out = api.upsert_one(DB, "users", json!({"authentikSubjectId": "new-sub"}), json!({"$setOnInsert": {"email": "n@x.test"}}));
    assert_eq!((out.matched, out.modified), (0, 0));
    assert!(out.upserted_id.as_ref().is_some_and(|id| id["$oid"].is_string()));
    assert_eq!(api.find(DB, "users", json!({"authentikSubjectId": "new-sub"}))[0]["email"], json!("n@x.test"));
    assert_eq!(api.delete_many(DB, "users", json!({"authentikSubjectId": "new-sub"})), 1);
    assert_eq!(api.snapshot(), before);
    let report = api.aggregate(
        DB,
        "subscriptions",
        json!([{"$match": {"status": "active"}}, {"$group": {"_id": "$currency", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]),
    );
    assert_eq!(
        report,
        vec![
            json!({"_id": "DKK", "n": {"$numberInt": "1"}}),
            json!({"_id": "EUR", "n": {"$numberInt": "1"}}),
            json!({"_id": "USD", "n": {"$numberInt": "1"}}),
        ]
    );
    let err = api
        .action("updateOne", json!({"dataSource": "x", "database": DB, "collection": "users", "filter": {}, "update": {"$bad": {}}}))
        .unwrap_err();
    assert_eq!((err.status, err.code.as_str()), (400, "InvalidParameter"));
    api.clear();
    assert_eq!(api.snapshot(), json!({}));
    api.seed_demo();
    assert_eq!(api.snapshot(), before);
    assert_eq!(DataApi::empty().snapshot(), json!({}));
}
