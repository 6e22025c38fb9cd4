//! One contract suite (docs/upstreams.md, Data API), every backend: each
//! test runs against
//! - `engine`: the Data API emulator's HTTP endpoint (the emulator's engine);
//! - `driver`: the gateway in process, driver backend, over the emulator's
//!   MongoDB wire listener (the real driver's path, on every run);
//! - `mongodb`: the gateway against a real MongoDB (a database of its own
//!   per test, dropped afterwards): ignored (reported as skipped) unless
//!   run with `--ignored`, which `make test` does when `MONGODB_URI` is set.
//!
//! Tests reach the data through the HTTP contract only, so the same test
//! proves the same behaviour everywhere. Every target also accepts keys with
//! a policy ([`POLICY_KEYS`]): the emulator through `DataApi::set_keys`, the
//! gateways through `Config::from_vars` (`name=key`, `GATEWAY_KEY_POLICIES`).
//! The gateway's own checks (several keys, 413, `/healthz`, a wrong key or a
//! refused right never reaching the backend, graceful shutdown) serve the
//! target's backend through a gateway built here.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bson::Document;
use emulators::data_api::DataApi;
use emulators::{demo, Emulators, Options};
use gateway::{ActionRequest, ApiError, ApiKeys, Backend, Config, DriverBackend, HttpOptions, Policy, Running};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// Targets

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Engine,
    Driver,
    MongoDb,
}

/// What a target's actions run on, for the gateways tests build.
#[derive(Clone)]
enum TargetBackend {
    Engine(DataApi),
    Driver(DriverBackend),
}

impl Backend for TargetBackend {
    async fn execute(&self, req: ActionRequest) -> Result<Document, ApiError> {
        match self {
            TargetBackend::Engine(b) => Backend::execute(b, req).await,
            TargetBackend::Driver(b) => b.execute(req).await,
        }
    }
    async fn health(&self) -> Result<(), ApiError> {
        match self {
            TargetBackend::Engine(b) => Backend::health(b).await,
            TargetBackend::Driver(b) => b.health().await,
        }
    }
}

/// One backend behind the HTTP contract, with a fresh database.
struct Target {
    kind: Kind,
    /// Base URL: actions at `<base>/action/<name>`.
    base: String,
    key: String,
    /// This test's database (unique per test).
    db: String,
    backend: TargetBackend,
    /// Databases to drop afterwards (real MongoDB only).
    created: std::sync::Mutex<Vec<String>>,
    _emulators: Option<Emulators>,
    gateway: Option<Running>,
}

const KEY: &str = demo::DATA_API_KEY;
/// `find` on `users`, nothing else.
const USERS_FIND_KEY: &str = "users-find-key";
/// `find` and `aggregate` on `users`, nothing else: a lookup into another collection is refused.
const USERS_READ_KEY: &str = "users-read-key";
/// The named policies of every target (`GATEWAY_KEY_POLICIES`), and the keys that have them.
const KEY_POLICIES: &str = r#"{"users-find": {"users": ["find"]}, "users-read": {"users": ["find", "aggregate"]}}"#;
const POLICY_KEYS: [(&str, &str); 2] = [("users-find", USERS_FIND_KEY), ("users-read", USERS_READ_KEY)];

fn named_policy(name: &str) -> Policy {
    let all: Value = serde_json::from_str(KEY_POLICIES).unwrap();
    Policy::parse(&all[name]).unwrap()
}
/// Short: a test waiting on an unreachable database should not wait long.
const TIMEOUT: Duration = Duration::from_secs(5);

fn unique_db() -> String {
    format!("contract_{}", bson::oid::ObjectId::new().to_hex())
}

async fn emulator() -> Emulators {
    emulators::start(Options { seed: false, authentik_port: None, stalwart_port: None, ocis_port: None, ..Options::default() })
        .await
        .expect("the Data API emulator starts")
}

async fn local_listener() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind")
}

impl Target {
    async fn start(kind: Kind) -> Option<Target> {
        let (uri, emu) = match kind {
            Kind::Engine => {
                let emu = emulator().await;
                let d = emu.data_api();
                d.api.set_keys([(KEY, Policy::all())].into_iter().chain(POLICY_KEYS.map(|(name, key)| (key, named_policy(name)))));
                let (base, backend) = (d.url.clone(), TargetBackend::Engine(d.api.clone()));
                return Some(Target::new(kind, base, backend, Some(emu), None));
            }
            Kind::Driver => {
                let emu = emulator().await;
                (emu.data_api().wire_url(), Some(emu))
            }
            Kind::MongoDb => match std::env::var("MONGODB_URI").ok().filter(|u| !u.is_empty()) {
                Some(uri) => (uri, None),
                None => panic!("the mongodb:: contract tests need MONGODB_URI (a real MongoDB); without it they are ignored"),
            },
        };
        let keys = [KEY.to_owned()].into_iter().chain(POLICY_KEYS.map(|(name, key)| format!("{name}={key}"))).collect::<Vec<_>>().join(",");
        let config = Config::from_vars(|name| match name {
            "MONGODB_URI" => Some(uri.clone()),
            "GATEWAY_API_KEYS" => Some(keys.clone()),
            "GATEWAY_KEY_POLICIES" => Some(KEY_POLICIES.to_owned()),
            "GATEWAY_MONGODB_TIMEOUT_MS" => Some(TIMEOUT.as_millis().to_string()),
            _ => None,
        })
        .expect("a valid configuration");
        let backend = DriverBackend::connect(&config.mongodb_uri, config.mongodb_timeout).await.expect("a valid MongoDB URI");
        let running = Running::serve(local_listener().await, gateway::router(backend.clone(), config.http_options()));
        Some(Target::new(kind, running.url.clone(), TargetBackend::Driver(backend), emu, Some(running)))
    }

    fn new(kind: Kind, base: String, backend: TargetBackend, emu: Option<Emulators>, gateway: Option<Running>) -> Target {
        let db = unique_db();
        Target { kind, base, key: KEY.to_owned(), created: std::sync::Mutex::new(vec![db.clone()]), db, backend, _emulators: emu, gateway }
    }

    /// Another fresh database of this target.
    fn other_db(&self) -> String {
        let db = unique_db();
        self.created.lock().unwrap().push(db.clone());
        db
    }

    /// Drops this test's databases on a real MongoDB; stops the gateway.
    async fn finish(self) {
        if let (Kind::MongoDb, TargetBackend::Driver(d)) = (self.kind, &self.backend) {
            let created = std::mem::take(&mut *self.created.lock().unwrap());
            for db in created {
                d.client().database(&db).drop().await.expect("dropping the test database");
            }
        }
        if let Some(g) = self.gateway {
            g.shutdown().await.expect("the gateway stops cleanly");
        }
    }

    fn url(&self, action: &str) -> String {
        format!("{}/action/{action}", self.base)
    }

    fn body(&self, coll: &str, extra: Value) -> Value {
        body_in(&self.db, coll, extra)
    }

    /// POSTs with the key and `Content-Type: application/json`; JSON-mode answer.
    async fn post(&self, action: &str, body: Value) -> (u16, Value) {
        raw(&self.url(action), &[("api-key", &self.key), ("content-type", "application/json")], body.to_string()).await
    }

    /// Same, asking for canonical EJSON.
    async fn post_ejson(&self, action: &str, body: Value) -> (u16, Value) {
        let h = [("api-key", self.key.as_str()), ("content-type", "application/ejson"), ("accept", "application/ejson")];
        raw(&self.url(action), &h, body.to_string()).await
    }

    /// A successful action's canonical EJSON answer.
    async fn ok(&self, action: &str, body: Value) -> Value {
        let (s, v) = self.post_ejson(action, body).await;
        assert_eq!(s, 200, "{action}: {v}");
        v
    }

    /// Every document of a collection of this test's database, `_id` order, canonical EJSON.
    async fn all(&self, coll: &str) -> Vec<Value> {
        self.all_in(&self.db, coll).await
    }

    async fn all_in(&self, db: &str, coll: &str) -> Vec<Value> {
        let v = self.ok("find", body_in(db, coll, json!({"sort": {"_id": 1}, "limit": 0}))).await;
        v["documents"].as_array().expect("documents").clone()
    }

    async fn count(&self, coll: &str, filter: Value) -> usize {
        let v = self.ok("find", self.body(coll, json!({"filter": filter, "limit": 0, "projection": {"_id": 1}}))).await;
        v["documents"].as_array().expect("documents").len()
    }

    /// The demo collections, inserted through the contract (`insertMany`).
    async fn seed_demo(&self) {
        for (coll, docs) in demo::collections() {
            self.ok("insertMany", self.body(coll, json!({"documents": docs}))).await;
        }
    }

    /// A gateway in process over this target's backend, with `opts`.
    fn gateway_with<B: Backend>(&self, backend: B, opts: HttpOptions) -> impl Future<Output = Running> {
        async move { Running::serve(local_listener().await, gateway::router(backend, opts)) }
    }
}

fn body_in(db: &str, coll: &str, extra: Value) -> Value {
    let mut b = json!({"dataSource": "mongodb-atlas", "database": db, "collection": coll});
    for (k, v) in extra.as_object().expect("object") {
        b[k] = v.clone();
    }
    b
}

async fn raw(url: &str, headers: &[(&str, &str)], body: String) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// One request over a plain connection, for bodies the server refuses
/// before reading them: a client library may fail writing the rest (the
/// server answered and closed), so write what goes through, then read the
/// answer. `chunked`: no Content-Length, chunked transfer encoding.
async fn oversized(base: &str, path: &str, headers: &[(&str, &str)], body: &[u8], chunked: bool) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.strip_prefix("http://").expect("an http base URL");
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("POST {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&match chunked {
        true => "transfer-encoding: chunked\r\n\r\n".to_owned(),
        false => format!("content-length: {}\r\n\r\n", body.len()),
    });
    let mut parts = vec![head.into_bytes()];
    for chunk in body.chunks(64 * 1024) {
        match chunked {
            true => parts.extend([format!("{:x}\r\n", chunk.len()).into_bytes(), chunk.to_vec(), b"\r\n".to_vec()]),
            false => parts.push(chunk.to_vec()),
        }
    }
    if chunked {
        parts.push(b"0\r\n\r\n".to_vec());
    }
    for part in parts {
        if conn.write_all(&part).await.is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status line: {answer}"));
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())))
}

fn assert_envelope(v: &Value, code: &str) {
    assert_eq!(v["error_code"], json!(code), "{v}");
    assert!(v["error"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    assert!(v["link"].as_str().is_some_and(|s| s.starts_with("https://")), "{v}");
}

/// Runs each named test on every backend: `engine::<name>`, `driver::<name>`, `mongodb::<name>`.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        // (`cfg(all())` is always true: no attribute in effect.)
        contract!(@kind engine, Engine, [cfg(all())], $($name),*);
        contract!(@kind driver, Driver, [cfg(all())], $($name),*);
        // Counted as skipped, not passed, unless a real MongoDB is given
        // (`make test` runs them when MONGODB_URI is set).
        contract!(@kind mongodb, MongoDb, [ignore = "needs a real MongoDB: MONGODB_URI=mongodb://… cargo test -p gateway --test contract -- --ignored"], $($name),*);
    };
    (@kind $module:ident, $kind:ident, $attr:tt, $($name:ident),*) => {
        mod $module {
            $(
                #$attr
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(t) = super::Target::start(super::Kind::$kind).await else { return };
                    super::$name(&t).await;
                    t.finish().await;
                }
            )*
        }
    };
}

contract!(
    find_on_demo_data_answers_json_mode,
    sort_keys_apply_in_the_order_the_body_sends_them,
    accept_ejson_answers_canonical_with_canonical_counts,
    inserted_ids_are_strings_in_json_mode_and_oids_in_ejson,
    relaxed_and_canonical_ejson_are_decoded_under_both_content_types,
    all_ten_actions_follow_the_contract,
    find_limit_defaults_to_1000_and_zero_means_no_limit,
    every_database_is_its_own_namespace,
    authentication_errors_follow_the_contract,
    both_base_urls_serve_the_actions_and_unknown_endpoints_are_404,
    malformed_requests_are_400_with_the_envelope,
    failed_requests_change_nothing,
    duplicate_id_is_a_400_duplicate_key,
    concurrent_updates_are_each_atomic,
    any_of_several_keys_is_accepted,
    bodies_over_the_limit_are_413_and_change_nothing,
    healthz_is_200_while_the_database_answers,
    a_wrong_key_never_reaches_the_backend,
    shutdown_finishes_the_request_in_flight,
    a_key_may_do_only_what_its_policy_allows,
    a_refused_request_never_reaches_the_backend,
);

// ---------------------------------------------------------------------------
// Actions and encodings

async fn find_on_demo_data_answers_json_mode(t: &Target) {
    t.seed_demo().await;
    let (status, v) = t
        .post(
            "find",
            t.body(
                "tenants",
                json!({
        "filter": {"status": "active", "partnerId": {"$oid": demo::NORTHWIND.id}},
        "projection": {"slug": 1, "seats": 1, "createdAt": 1}, "sort": {"slug": -1}}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!({"documents": [
            {"_id": demo::GLOBEX.id, "slug": "globex", "seats": 5, "createdAt": "2026-01-16T09:00:00.000Z"},
            {"_id": demo::ACME.id, "slug": "acme", "seats": 10, "createdAt": "2026-01-15T09:00:00.000Z"},
        ]})
    );
}

/// The demo users' `_id`s, newest `createdAt` first, `_id` descending on ties.
fn demo_users_newest_first() -> Vec<&'static str> {
    let mut users = demo::USERS.to_vec();
    users.sort_by(|a, b| b.created_day.cmp(&a.created_day).then(b.id.cmp(a.id)));
    users.iter().map(|u| u.id).collect()
}

async fn sort_keys_apply_in_the_order_the_body_sends_them(t: &Target) {
    // Raw bodies: the text's key order is what must be honoured, as MongoDB
    // does (first key, then the next).
    t.seed_demo().await;
    let h = [("api-key", t.key.as_str()), ("content-type", "application/json")];
    let db = &t.db;
    let find = |sort: &'static str| {
        let text = format!(
            r#"{{"dataSource": "mongodb-atlas", "database": "{db}", "collection": "users", "sort": {sort}, "projection": {{"_id": 1}}}}"#
        );
        async move {
            let (status, v) = raw(&t.url("find"), &h, text).await;
            assert_eq!(status, 200, "{v}");
            v["documents"].as_array().unwrap().iter().map(|d| d["_id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
        }
    };
    let newest = find(r#"{"createdAt": -1, "_id": -1}"#).await;
    assert_eq!(newest, demo_users_newest_first());
    let by_id = find(r#"{"_id": -1, "createdAt": -1}"#).await;
    let mut want: Vec<&str> = demo::USERS.iter().map(|u| u.id).collect();
    want.sort();
    want.reverse();
    assert_eq!(by_id, want);
    assert_ne!(newest, by_id, "the demo users' _ids are not in creation order");

    // The same in a `$sort` stage.
    let text = format!(
        r#"{{"dataSource": "mongodb-atlas", "database": "{db}", "collection": "users", "pipeline": [{{"$sort": {{"createdAt": -1, "_id": -1}}}}, {{"$project": {{"_id": 1}}}}]}}"#
    );
    let (status, v) = raw(&t.url("aggregate"), &h, text).await;
    assert_eq!(status, 200, "{v}");
    let ids: Vec<&str> = v["documents"].as_array().unwrap().iter().map(|d| d["_id"].as_str().unwrap()).collect();
    assert_eq!(ids, demo_users_newest_first());
}

async fn accept_ejson_answers_canonical_with_canonical_counts(t: &Target) {
    t.seed_demo().await;
    let (status, v) =
        t.post_ejson("findOne", t.body("tenants", json!({"filter": {"slug": "acme"}, "projection": {"seats": 1, "createdAt": 1}}))).await;
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({"document": {"_id": {"$oid": demo::ACME.id}, "seats": {"$numberInt": "10"}, "createdAt": {"$date": {"$numberLong": "1768467600000"}}}})
    );
    let (_, v) = t.post_ejson("updateOne", t.body("tenants", json!({"filter": {"slug": "acme"}, "update": {"$set": {"seats": 11}}}))).await;
    assert_eq!(v, json!({"matchedCount": {"$numberInt": "1"}, "modifiedCount": {"$numberInt": "1"}}));
    let (_, v) = t.post_ejson("deleteMany", t.body("nothing", json!({"filter": {}}))).await;
    assert_eq!(v, json!({"deletedCount": {"$numberInt": "0"}}));
}

async fn inserted_ids_are_strings_in_json_mode_and_oids_in_ejson(t: &Target) {
    let (status, v) = t.post("insertOne", t.body("notes", json!({"document": {"text": "a"}}))).await;
    assert_eq!(status, 200, "{v}");
    let id = v["insertedId"].as_str().expect("hex string").to_owned();
    assert_eq!(id.len(), 24);
    let (_, v) = t.post_ejson("insertOne", t.body("notes", json!({"document": {"text": "b"}}))).await;
    assert!(v["insertedId"]["$oid"].is_string(), "{v}");
    let (_, v) = t.post("insertMany", t.body("notes", json!({"documents": [{"_id": "custom"}, {"text": "c"}]}))).await;
    assert_eq!(v["insertedIds"][0], json!("custom"));
    assert!(v["insertedIds"][1].is_string());
    // The stored document has its ObjectId _id first.
    let v = t.ok("findOne", t.body("notes", json!({"filter": {"text": "a"}}))).await;
    assert_eq!(v, json!({"document": {"_id": {"$oid": id}, "text": "a"}}));
    let text = serde_json::to_string(&v).unwrap();
    assert!(text.starts_with(r#"{"document":{"_id""#), "{text}");
}

async fn relaxed_and_canonical_ejson_are_decoded_under_both_content_types(t: &Target) {
    let doc = json!({"_id": {"$oid": "65f000000000000000000abc"}, "at": {"$date": "2026-02-01T10:00:00Z"},
        "n": {"$numberLong": "7"}, "d": {"$numberDecimal": "1.10"}});
    let (status, _) = t.post("insertOne", t.body("typed", json!({"document": doc}))).await;
    assert_eq!(status, 200);
    let (_, v) = t.post("findOne", t.body("typed", json!({"filter": {"at": {"$gte": {"$date": {"$numberLong": "1769940000000"}}}}}))).await;
    assert_eq!(v, json!({"document": {"_id": "65f000000000000000000abc", "at": "2026-02-01T10:00:00.000Z", "n": 7, "d": "1.10"}}));
    let (_, v) = t.post_ejson("findOne", t.body("typed", json!({"filter": {"_id": {"$oid": "65f000000000000000000abc"}}}))).await;
    assert_eq!(v["document"]["n"], json!({"$numberLong": "7"}));
    assert_eq!(v["document"]["d"], json!({"$numberDecimal": "1.10"}));
    // A hex string is not an ObjectId: no match.
    let (_, v) = t.post("findOne", t.body("typed", json!({"filter": {"_id": "65f000000000000000000abc"}}))).await;
    assert_eq!(v, json!({"document": null}));
}

async fn all_ten_actions_follow_the_contract(t: &Target) {
    let (s, v) = t
        .post(
            "insertMany",
            t.body("c", json!({"documents": [{"_id": 1, "k": "a", "n": 1}, {"_id": 2, "k": "a", "n": 2}, {"_id": 3, "k": "b", "n": 3}]})),
        )
        .await;
    assert_eq!((s, v), (200, json!({"insertedIds": [1, 2, 3]})));
    let (_, v) = t.post("insertOne", t.body("c", json!({"document": {"_id": 4, "k": "c"}}))).await;
    assert_eq!(v, json!({"insertedId": 4}));
    let (_, v) = t.post("find", t.body("c", json!({"filter": {"k": "a"}, "sort": {"n": -1}, "projection": {"_id": 0, "n": 1}}))).await;
    assert_eq!(v, json!({"documents": [{"n": 2}, {"n": 1}]}));
    let (_, v) = t.post("find", t.body("c", json!({"sort": {"_id": 1}, "skip": 1, "limit": 2, "projection": {"k": 0, "n": 0}}))).await;
    assert_eq!(v, json!({"documents": [{"_id": 2}, {"_id": 3}]}));
    let (_, v) = t.post("findOne", t.body("c", json!({"filter": {"k": "zzz"}}))).await;
    assert_eq!(v, json!({"document": null}));
    let (_, v) = t.post("findOne", t.body("c", json!({}))).await;
    assert_eq!(v, json!({"document": {"_id": 1, "k": "a", "n": 1}}), "filter defaults to {{}}");
    // updateOne: the first match only; setting the same value is a no-op.
    let (_, v) = t.post("updateOne", t.body("c", json!({"filter": {"k": "a"}, "update": {"$inc": {"n": 10}}}))).await;
    assert_eq!(v, json!({"matchedCount": 1, "modifiedCount": 1}));
    let (_, v) = t.post("updateOne", t.body("c", json!({"filter": {"_id": 1}, "update": {"$set": {"n": 11}}}))).await;
    assert_eq!(v, json!({"matchedCount": 1, "modifiedCount": 0}));
    let (_, v) = t.post("updateMany", t.body("c", json!({"filter": {"k": {"$in": ["a", "b"]}}, "update": {"$set": {"flag": true}}}))).await;
    assert_eq!(v, json!({"matchedCount": 3, "modifiedCount": 3}));
    // Upsert: counts 0 and upsertedId; updateMany inserts at most one.
    let (_, v) = t.post("updateMany", t.body("c", json!({"filter": {"k": "new"}, "update": {"$set": {"n": 0}}, "upsert": true}))).await;
    assert_eq!(v["matchedCount"], json!(0));
    assert_eq!(v["modifiedCount"], json!(0));
    assert!(v["upsertedId"].as_str().is_some_and(|s| s.len() == 24), "{v}");
    assert_eq!(t.count("c", json!({"k": "new"})).await, 1);
    // replaceOne keeps _id.
    let (_, v) = t.post("replaceOne", t.body("c", json!({"filter": {"_id": 3}, "replacement": {"k": "replaced"}}))).await;
    assert_eq!(v, json!({"matchedCount": 1, "modifiedCount": 1}));
    let v = t.ok("findOne", t.body("c", json!({"filter": {"_id": 3}}))).await;
    assert_eq!(v, json!({"document": {"_id": {"$numberInt": "3"}, "k": "replaced"}}));
    let (_, v) = t.post("replaceOne", t.body("c", json!({"filter": {"_id": 9}, "replacement": {"k": "nine"}, "upsert": true}))).await;
    assert_eq!(v, json!({"matchedCount": 0, "modifiedCount": 0, "upsertedId": 9}));
    // aggregate
    let (_, v) = t
        .post(
            "aggregate",
            t.body(
                "c",
                json!({"pipeline": [{"$match": {"flag": true}}, {"$group": {"_id": "$k", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]}),
            ),
        )
        .await;
    assert_eq!(v, json!({"documents": [{"_id": "a", "n": 2}]}), "the replaced document lost its flag");
    // deleteOne removes the first match; deleteMany all.
    let (_, v) = t.post("deleteOne", t.body("c", json!({"filter": {"k": "a"}}))).await;
    assert_eq!(v, json!({"deletedCount": 1}));
    assert_eq!(t.count("c", json!({"k": "a"})).await, 1);
    let (_, v) = t.post("deleteMany", t.body("c", json!({"filter": {}}))).await;
    assert_eq!(v, json!({"deletedCount": 5}));
}

async fn find_limit_defaults_to_1000_and_zero_means_no_limit(t: &Target) {
    let docs: Vec<Value> = (0..1005).map(|i| json!({"i": i})).collect();
    t.ok("insertMany", t.body("many", json!({"documents": docs}))).await;
    let (_, v) = t.post("find", t.body("many", json!({}))).await;
    assert_eq!(v["documents"].as_array().unwrap().len(), 1000);
    let (_, v) = t.post("find", t.body("many", json!({"limit": 0}))).await;
    assert_eq!(v["documents"].as_array().unwrap().len(), 1005);
    let (_, v) = t
        .post("find", t.body("many", json!({"sort": {"i": 1}, "skip": 1000, "limit": {"$numberInt": "3"}, "projection": {"_id": 0}})))
        .await;
    assert_eq!(v, json!({"documents": [{"i": 1000}, {"i": 1001}, {"i": 1002}]}));
}

async fn every_database_is_its_own_namespace(t: &Target) {
    t.seed_demo().await;
    let other = t.other_db();
    let (s, _) = t.post("insertOne", body_in(&other, "users", json!({"document": {"email": "x@other.test"}}))).await;
    assert_eq!(s, 200);
    assert_eq!(t.all_in(&other, "users").await.len(), 1);
    assert_eq!(t.count("users", json!({"email": "x@other.test"})).await, 0);
    assert_eq!(t.count("users", json!({})).await, demo::USERS.len());
}

// ---------------------------------------------------------------------------
// Errors

async fn authentication_errors_follow_the_contract(t: &Target) {
    let url = t.url("find");
    let b = t.body("users", json!({})).to_string();
    let (s, v) = raw(&url, &[("content-type", "application/json")], b.clone()).await;
    assert_eq!(s, 400);
    assert_envelope(&v, "InvalidParameter");
    assert_eq!(v["error"], json!("no authentication methods were specified"));
    let (s, v) = raw(&url, &[("api-key", "wrong"), ("content-type", "application/json")], b.clone()).await;
    assert_eq!(s, 401);
    assert_envelope(&v, "InvalidSession");
    assert_eq!(v["error"], json!("invalid session: error finding user for endpoint"));
    let (s, _) = raw(&url, &[("api-key", ""), ("content-type", "application/json")], b.clone()).await;
    assert_eq!(s, 401, "an empty key is a wrong key");
    let (s, _) = raw(&url, &[("apiKey", &t.key), ("content-type", "application/json")], b.clone()).await;
    assert_eq!(s, 200, "the apiKey spelling is accepted");
    let (s, v) = raw(&url, &[("email", "a@b.c"), ("content-type", "application/json")], b.clone()).await;
    assert_eq!(s, 400);
    assert_envelope(&v, "MissingParameter");
    let (s, _) = raw(&url, &[("authorization", "Bearer x"), ("content-type", "application/json")], b.clone()).await;
    assert_eq!(s, 401);
    let (s, _) = raw(&url, &[("email", "a@b.c"), ("password", "p"), ("content-type", "application/json")], b).await;
    assert_eq!(s, 401, "no users: e-mail and password are an unknown session");
}

async fn both_base_urls_serve_the_actions_and_unknown_endpoints_are_404(t: &Target) {
    t.seed_demo().await;
    let h = [("api-key", t.key.as_str()), ("content-type", "application/json")];
    let b = t.body("tenants", json!({"filter": {"slug": "acme"}, "projection": {"slug": 1, "_id": 0}})).to_string();
    for base in ["/app/data-abcde/endpoint/data/v1", "/app/other-app/endpoint/data/beta", ""] {
        let (s, v) = raw(&format!("{}{base}/action/findOne", t.base), &h, b.clone()).await;
        assert_eq!((s, v), (200, json!({"document": {"slug": "acme"}})), "{base}");
    }
    let (s, v) = raw(&format!("{}/app/x/endpoint/data/v2/action/findOne", t.base), &h, b.clone()).await;
    assert_eq!(s, 404);
    assert_envelope(&v, "NotFound");
    let (s, v) = raw(&t.url("count"), &h, b.clone()).await;
    assert_eq!(s, 404);
    assert_envelope(&v, "NotFound");
    let (s, v) = raw(&format!("{}/nowhere", t.base), &h, b).await;
    assert_eq!(s, 404);
    assert_envelope(&v, "NotFound");
}

async fn malformed_requests_are_400_with_the_envelope(t: &Target) {
    t.seed_demo().await;
    let url = t.url("find");
    let key = t.key.as_str();
    let json_h = [("api-key", key), ("content-type", "application/json")];
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, String, &'a str);
    let cases: Vec<Case> = vec![
        ("missing content type", vec![("api-key", key)], t.body("users", json!({})).to_string(), "InvalidParameter"),
        (
            "form content type",
            vec![("api-key", key), ("content-type", "application/x-www-form-urlencoded")],
            t.body("users", json!({})).to_string(),
            "InvalidParameter",
        ),
        ("not JSON", json_h.to_vec(), "{not json".to_owned(), "InvalidParameter"),
        ("array body", json_h.to_vec(), "[]".to_owned(), "InvalidParameter"),
        ("missing database", json_h.to_vec(), json!({"dataSource": "x", "collection": "users"}).to_string(), "MissingParameter"),
        (
            "database not a string",
            json_h.to_vec(),
            json!({"dataSource": "x", "database": 5, "collection": "users"}).to_string(),
            "InvalidParameter",
        ),
        (
            "invalid database name",
            json_h.to_vec(),
            json!({"dataSource": "x", "database": "a.b", "collection": "users"}).to_string(),
            "InvalidParameter",
        ),
        ("filter not an object", json_h.to_vec(), t.body("users", json!({"filter": "x"})).to_string(), "InvalidParameter"),
        ("limit negative", json_h.to_vec(), t.body("users", json!({"limit": -1})).to_string(), "InvalidParameter"),
        ("unknown field", json_h.to_vec(), t.body("users", json!({"projetion": {"a": 1}})).to_string(), "InvalidParameter"),
        ("bad $oid", json_h.to_vec(), t.body("users", json!({"filter": {"_id": {"$oid": "xyz"}}})).to_string(), "InvalidParameter"),
        ("unknown operator", json_h.to_vec(), t.body("users", json!({"filter": {"email": {"$foo": ""}}})).to_string(), "InvalidParameter"),
        ("mixed projection", json_h.to_vec(), t.body("users", json!({"projection": {"a": 1, "b": 0}})).to_string(), "InvalidParameter"),
        ("bad sort", json_h.to_vec(), t.body("users", json!({"sort": {"a": "asc"}})).to_string(), "InvalidParameter"),
        ("server-side JavaScript", json_h.to_vec(), t.body("users", json!({"filter": {"$where": "true"}})).to_string(), "InvalidParameter"),
    ];
    for (name, headers, b, code) in cases {
        let (s, v) = raw(&url, &headers, b).await;
        assert_eq!(s, 400, "{name}: {v}");
        assert_envelope(&v, code);
    }
    let upd = t.url("updateOne");
    for (name, b, code) in [
        ("update without operators", t.body("users", json!({"filter": {}, "update": {"name": "x"}})), "InvalidParameter"),
        ("update missing", t.body("users", json!({"filter": {}})), "MissingParameter"),
        ("filter missing", t.body("users", json!({"update": {"$set": {"a": 1}}})), "MissingParameter"),
        ("unknown modifier", t.body("users", json!({"filter": {}, "update": {"$foo": {"a": 1}}})), "InvalidParameter"),
        ("unknown modifier without fields", t.body("users", json!({"filter": {}, "update": {"$foo": {}}})), "InvalidParameter"),
        ("upsert not bool", t.body("users", json!({"filter": {}, "update": {"$set": {"a": 1}}, "upsert": "yes"})), "InvalidParameter"),
        ("changing _id", t.body("users", json!({"filter": {}, "update": {"$set": {"_id": 1}}})), "InvalidParameter"),
        ("pipeline update", t.body("users", json!({"filter": {}, "update": [{"$set": {"a": 1}}]})), "InvalidParameter"),
    ] {
        let (s, v) = raw(&upd, &json_h, b.to_string()).await;
        assert_eq!(s, 400, "{name}: {v}");
        assert_envelope(&v, code);
    }
    for stage in [json!({"$out": "x"}), json!({"$merge": {"into": "x"}})] {
        let (s, v) = raw(&t.url("aggregate"), &json_h, t.body("users", json!({"pipeline": [stage]})).to_string()).await;
        assert_eq!(s, 400, "{stage}: {v}");
        assert_envelope(&v, "InvalidParameter");
    }
}

async fn failed_requests_change_nothing(t: &Target) {
    t.seed_demo().await;
    let before = t.all("users").await;
    for (action, b) in [
        ("updateOne", t.body("users", json!({"filter": {"email": demo::ACME_MEMBER.email}, "update": {"$inc": {"email": 1}}}))),
        ("updateMany", t.body("users", json!({"filter": {}, "update": {"$set": {"x": 1}, "$unset": {"x": ""}}}))),
        ("insertOne", t.body("users", json!({"document": {"_id": {"$oid": demo::OPERATOR.id}}}))),
        ("replaceOne", t.body("users", json!({"filter": {}, "replacement": {"$set": {"a": 1}}}))),
        ("deleteMany", t.body("users", json!({"filter": {"$where": "true"}}))),
    ] {
        let (s, v) = t.post(action, b).await;
        assert_eq!(s, 400, "{action}: {v}");
    }
    assert_eq!(t.all("users").await, before);
}

async fn duplicate_id_is_a_400_duplicate_key(t: &Target) {
    t.seed_demo().await;
    let (s, v) = t.post("insertOne", t.body("users", json!({"document": {"_id": {"$oid": demo::OPERATOR.id}, "email": "dup"}}))).await;
    assert_eq!(s, 400);
    assert_envelope(&v, "DuplicateKey");
    let prefix = format!("E11000 duplicate key error collection: {}.users index: _id_", t.db);
    assert!(v["error"].as_str().unwrap().starts_with(&prefix), "{v}");
    // insertMany is ordered: documents before the duplicate stay inserted.
    let (s, v) = t.post("insertMany", t.body("m", json!({"documents": [{"_id": 1}, {"_id": 2}, {"_id": 1}, {"_id": 3}]}))).await;
    assert_eq!(s, 400);
    assert_envelope(&v, "DuplicateKey");
    assert_eq!(t.all("m").await, vec![json!({"_id": {"$numberInt": "1"}}), json!({"_id": {"$numberInt": "2"}})]);
    // An upsert colliding with an existing _id is a duplicate too.
    let (s, v) = t.post("replaceOne", t.body("m", json!({"filter": {"_id": 5, "x": 1}, "replacement": {"_id": 1}, "upsert": true}))).await;
    assert_eq!(s, 400, "{v}");
}

// ---------------------------------------------------------------------------
// Concurrency

async fn concurrent_updates_are_each_atomic(t: &Target) {
    t.ok("insertOne", t.body("counters", json!({"document": {"_id": "c", "n": 0}}))).await;
    let url = t.url("updateOne");
    let b = t.body("counters", json!({"filter": {"_id": "c"}, "update": {"$inc": {"n": 1}, "$push": {"seen": 1}}})).to_string();
    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (client, url, b, key) = (client.clone(), url.clone(), b.clone(), t.key.clone());
            tokio::spawn(async move {
                client
                    .post(url)
                    .header("api-key", key)
                    .header("content-type", "application/json")
                    .body(b)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    let v = t.ok("findOne", t.body("counters", json!({"filter": {"_id": "c"}}))).await;
    assert_eq!(v["document"]["n"], json!({"$numberInt": "40"}));
    assert_eq!(v["document"]["seen"].as_array().unwrap().len(), 40);
}

// ---------------------------------------------------------------------------
// The gateway's own

async fn any_of_several_keys_is_accepted(t: &Target) {
    let g = t.gateway_with(t.backend.clone(), HttpOptions::new(ApiKeys::new(["key-one", "key-two", "key-three"]))).await;
    let b = t.body("users", json!({})).to_string();
    for (key, want) in [("key-one", 200), ("key-two", 200), ("key-three", 200), ("key-four", 401), ("key-one,key-two", 401), (KEY, 401)] {
        let (s, v) = raw(&format!("{}/action/find", g.url), &[("api-key", key), ("content-type", "application/json")], b.clone()).await;
        assert_eq!(s, want, "{key}: {v}");
    }
    g.shutdown().await.unwrap();
}

async fn bodies_over_the_limit_are_413_and_change_nothing(t: &Target) {
    let limit = gateway::http::MIN_BODY_BYTES;
    let g = t.gateway_with(t.backend.clone(), HttpOptions { max_body_bytes: limit, ..HttpOptions::new(ApiKeys::new([KEY])) }).await;
    let h = [("api-key", KEY), ("content-type", "application/json")];
    let sized = |n: usize| t.body("big", json!({"document": {"_id": n as i64, "pad": "x".repeat(n)}})).to_string();
    for chunked in [false, true] {
        let (s, v) = oversized(&g.url, "/action/insertOne", &h, sized(limit + 1).as_bytes(), chunked).await;
        assert_eq!(s, 413, "chunked {chunked}: {v}");
        assert_envelope(&v, "PayloadTooLarge");
    }
    let (s, v) = raw(&format!("{}/action/insertOne", g.url), &h, sized(limit - 200)).await;
    assert_eq!(s, 200, "just under the limit: {v}");
    assert_eq!(t.count("big", json!({})).await, 1, "only the body under the limit was inserted");
    // The emulator's and the gateway's default: 16 MiB.
    let (s, v) = oversized(&t.base, "/action/insertOne", &h, sized(gateway::http::MAX_BODY_BYTES).as_bytes(), false).await;
    assert_eq!(s, 413, "{v}");
    assert_envelope(&v, "PayloadTooLarge");
    g.shutdown().await.unwrap();
}

async fn healthz_is_200_while_the_database_answers(t: &Target) {
    let resp = reqwest::get(format!("{}/healthz", t.base)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"status": "ok"}));
}

/// Counts the requests that reach the backend.
#[derive(Clone)]
struct Counting<B> {
    inner: B,
    calls: Arc<AtomicUsize>,
}

impl<B: Backend> Backend for Counting<B> {
    async fn execute(&self, req: ActionRequest) -> Result<Document, ApiError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.execute(req).await
    }
    async fn health(&self) -> Result<(), ApiError> {
        self.inner.health().await
    }
}

async fn a_wrong_key_never_reaches_the_backend(t: &Target) {
    let calls = Arc::new(AtomicUsize::new(0));
    let backend = Counting { inner: t.backend.clone(), calls: calls.clone() };
    let g = t.gateway_with(backend, HttpOptions::new(ApiKeys::new([KEY]))).await;
    let url = format!("{}/action/deleteMany", g.url);
    let b = t.body("users", json!({"filter": {}})).to_string();
    let huge = t.body("users", json!({"filter": {"x": "y".repeat(20 << 20)}})).to_string();
    for (headers, body) in [
        (vec![("api-key", "wrong"), ("content-type", "application/json")], b.clone()),
        (vec![("apikey", "WRONG"), ("content-type", "application/json")], b.clone()),
        (vec![("content-type", "application/json")], b.clone()),
        (vec![("authorization", "Bearer x"), ("content-type", "application/json")], b.clone()),
    ] {
        let (s, _) = raw(&url, &headers, body).await;
        assert!(s == 400 || s == 401, "{headers:?}: {s}");
    }
    let (s, _) =
        oversized(&g.url, "/action/deleteMany", &[("api-key", "wrong"), ("content-type", "application/json")], huge.as_bytes(), false)
            .await;
    assert_eq!(s, 401, "a wrong key with a body over the limit");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let (s, _) = raw(&url, &[("api-key", KEY), ("content-type", "application/json")], b).await;
    assert_eq!(s, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    g.shutdown().await.unwrap();
}

/// Holds every request for a while before running it.
#[derive(Clone)]
struct Slow<B>(B, Duration);

impl<B: Backend> Backend for Slow<B> {
    async fn execute(&self, req: ActionRequest) -> Result<Document, ApiError> {
        tokio::time::sleep(self.1).await;
        self.0.execute(req).await
    }
    async fn health(&self) -> Result<(), ApiError> {
        self.0.health().await
    }
}

async fn shutdown_finishes_the_request_in_flight(t: &Target) {
    let g = t.gateway_with(Slow(t.backend.clone(), Duration::from_millis(600)), HttpOptions::new(ApiKeys::new([KEY]))).await;
    let url = format!("{}/action/insertOne", g.url);
    let base = g.url.clone();
    let b = t.body("inflight", json!({"document": {"_id": "kept"}})).to_string();
    let in_flight = tokio::spawn(async move { raw(&url, &[("api-key", KEY), ("content-type", "application/json")], b).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    g.shutdown().await.expect("a clean stop");
    assert!(started.elapsed() >= Duration::from_millis(200), "shutdown waited for the request");
    let (s, v) = in_flight.await.unwrap();
    assert_eq!((s, v), (200, json!({"insertedId": "kept"})));
    assert_eq!(t.count("inflight", json!({})).await, 1);
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err(), "no longer accepting");
}

// ---------------------------------------------------------------------------
// Per-key rights

/// An action with `key`; JSON-mode answer.
async fn post_as(t: &Target, key: &str, action: &str, body: Value) -> (u16, Value) {
    raw(&t.url(action), &[("api-key", key), ("content-type", "application/json")], body.to_string()).await
}

fn assert_forbidden(s: u16, v: &Value, namespace: &str, what: &str) {
    assert_eq!(s, 403, "{what}: {v}");
    assert_envelope(v, "NoMatchingRuleFound");
    let want = format!("no rule exists for namespace '{namespace}'");
    assert!(v["error"].as_str().unwrap().starts_with(&want), "{what}: {v}");
}

fn lookup(from: &str) -> Value {
    json!({"$lookup": {"from": from, "localField": "tenantIds", "foreignField": "_id", "as": "joined"}})
}

async fn a_key_may_do_only_what_its_policy_allows(t: &Target) {
    t.seed_demo().await;
    let member = json!({"$match": {"email": demo::ACME_MEMBER.email}});
    let users = demo::USERS.len();

    // users-find: find on users, and nothing else.
    let (s, v) = post_as(t, USERS_FIND_KEY, "find", t.body("users", json!({"projection": {"_id": 1}}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["documents"].as_array().unwrap().len(), users);
    let users_ns = format!("{}.users", t.db);
    let tenants_ns = format!("{}.tenants", t.db);
    let refused = [
        ("insertOne on users", "insertOne", t.body("users", json!({"document": {"_id": "intruder"}})), &users_ns),
        ("findOne on users", "findOne", t.body("users", json!({})), &users_ns),
        ("deleteMany on users", "deleteMany", t.body("users", json!({"filter": {"_id": "intruder"}})), &users_ns),
        ("find on tenants", "find", t.body("tenants", json!({})), &tenants_ns),
        ("aggregate on users", "aggregate", t.body("users", json!({"pipeline": [member.clone()]})), &users_ns),
        (
            "aggregate on users with a $lookup of tenants",
            "aggregate",
            t.body("users", json!({"pipeline": [member.clone(), lookup("tenants")]})),
            &users_ns,
        ),
    ];
    for (what, action, body, ns) in &refused {
        let (s, v) = post_as(t, USERS_FIND_KEY, action, body.clone()).await;
        assert_forbidden(s, &v, ns, what);
    }

    // users-read: aggregate on users too, but a pipeline reading tenants anywhere is refused.
    let (s, v) = post_as(
        t,
        USERS_READ_KEY,
        "aggregate",
        t.body("users", json!({"pipeline": [member.clone(), {"$project": {"email": 1, "_id": 0}}]})),
    )
    .await;
    assert_eq!((s, v), (200, json!({"documents": [{"email": demo::ACME_MEMBER.email}]})));
    let self_join = json!({"$lookup": {"from": "users", "localField": "_id", "foreignField": "_id", "as": "joined"}});
    let (s, v) = post_as(t, USERS_READ_KEY, "aggregate", t.body("users", json!({"pipeline": [member.clone(), self_join]}))).await;
    assert_eq!(s, 200, "a lookup of the key's own collection: {v}");
    for (what, pipeline) in [
        ("$lookup", json!([member.clone(), lookup("tenants")])),
        ("$lookup in $facet", json!([member.clone(), {"$facet": {"mine": [{"$project": {"_id": 1}}], "theirs": [lookup("tenants")]}}])),
        (
            "$lookup in a $lookup pipeline",
            json!([member.clone(), {"$lookup": {"from": "users", "as": "j", "let": {"id": "$_id"}, "pipeline": [lookup("tenants")]}}]),
        ),
        ("$unionWith", json!([member.clone(), {"$unionWith": "tenants"}])),
    ] {
        let (s, v) = post_as(t, USERS_READ_KEY, "aggregate", t.body("users", json!({"pipeline": pipeline}))).await;
        assert_forbidden(s, &v, &tenants_ns, what);
        assert!(v["error"].as_str().unwrap().contains("the pipeline reads it"), "{what}: {v}");
    }

    // A bare key may do all of it.
    for (what, action, body, _) in refused {
        let (s, v) = post_as(t, KEY, action, body).await;
        assert_eq!(s, 200, "{what} with a bare key: {v}");
    }
    let v =
        t.ok("aggregate", t.body("users", json!({"pipeline": [{"$match": {"email": demo::ACME_MEMBER.email}}, lookup("tenants")]}))).await;
    let joined = v["documents"][0]["joined"].as_array().expect("the lookup ran");
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0]["_id"], json!({"$oid": demo::ACME.id}));
    assert_eq!(t.count("users", json!({"_id": "intruder"})).await, 0, "the bare key inserted it, then deleted it");
    assert_eq!(t.count("users", json!({})).await, users);
}

async fn a_refused_request_never_reaches_the_backend(t: &Target) {
    t.seed_demo().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let backend = Counting { inner: t.backend.clone(), calls: calls.clone() };
    let keys = ApiKeys::with_policies([(USERS_FIND_KEY, named_policy("users-find")), (KEY, Policy::all())]);
    let g = t.gateway_with(backend, HttpOptions::new(keys)).await;
    let send = |key: &'static str, action: &'static str, body: Value| {
        let url = format!("{}/action/{action}", g.url);
        async move { raw(&url, &[("api-key", key), ("content-type", "application/json")], body.to_string()).await }
    };
    let before = t.all("users").await;
    for (action, body, ns) in [
        ("insertOne", t.body("users", json!({"document": {"_id": "intruder"}})), "users"),
        ("deleteMany", t.body("users", json!({"filter": {}})), "users"),
        ("find", t.body("tenants", json!({})), "tenants"),
        ("aggregate", t.body("users", json!({"pipeline": [lookup("tenants")]})), "users"),
    ] {
        let (s, v) = send(USERS_FIND_KEY, action, body).await;
        assert_forbidden(s, &v, &format!("{}.{ns}", t.db), action);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no refused request reached the backend");
    assert_eq!(t.all("users").await, before, "and nothing changed");
    let (s, v) = send(USERS_FIND_KEY, "find", t.body("users", json!({"limit": 1}))).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = send(KEY, "find", t.body("tenants", json!({"limit": 1}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    g.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------
// The driver backend when the database is unreachable (once: no database).

#[tokio::test]
async fn an_unreachable_database_is_503_on_healthz_and_actions() {
    // A port nothing listens on: connections are refused.
    let port = local_listener().await.local_addr().unwrap().port();
    let mut config = Config::new(format!("mongodb://127.0.0.1:{port}/?directConnection=true"), vec![KEY.to_owned()]);
    config.mongodb_timeout = Duration::from_millis(300);
    let g = Running::start(&config, local_listener().await).await.unwrap();
    let resp = reqwest::get(format!("{}/healthz", g.url)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert_envelope(&resp.json().await.unwrap(), "ServiceUnavailable");
    let started = Instant::now();
    let (s, v) = raw(
        &format!("{}/action/findOne", g.url),
        &[("api-key", KEY), ("content-type", "application/json")],
        body_in("db", "c", json!({})).to_string(),
    )
    .await;
    assert_eq!(s, 503, "{v}");
    assert_envelope(&v, "ServiceUnavailable");
    assert!(started.elapsed() < Duration::from_secs(3), "bounded by the timeout: {:?}", started.elapsed());
    g.shutdown().await.unwrap();
}
