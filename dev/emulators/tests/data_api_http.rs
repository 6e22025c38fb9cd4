//! The Data API emulator over HTTP: the wire contract (docs/upstreams.md,
//! Data API), fault injection through `Controls`, persistence across restarts,
//! and the store helpers tests use.

use std::path::Path;
use std::time::{Duration, Instant};

use emulators::data_api::DataApi;
use emulators::faults::{Fault, FaultRule};
use emulators::{demo, start, Emulators, Options};
use serde_json::{json, Value};

const DB: &str = "dezky";

async fn start_data_api(data_dir: Option<&Path>) -> Emulators {
    start(Options { data_dir: data_dir.map(Path::to_path_buf), authentik_port: None, ..Options::default() })
        .await
        .expect("emulators start")
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
    raw(emu, &emu.data_api().action_url(action), &[("api-key", demo::DATA_API_KEY), ("content-type", "application/json")], body.to_string()).await
}

/// Same, asking for canonical EJSON.
async fn post_ejson(emu: &Emulators, action: &str, body: Value) -> (u16, Value) {
    raw(
        emu,
        &emu.data_api().action_url(action),
        &[("api-key", demo::DATA_API_KEY), ("content-type", "application/ejson"), ("accept", "application/ejson")],
        body.to_string(),
    )
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

fn assert_envelope(v: &Value, code: &str) {
    assert_eq!(v["error_code"], json!(code), "{v}");
    assert!(v["error"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    assert!(v["link"].as_str().is_some_and(|s| s.starts_with("https://")), "{v}");
}

// ---------------------------------------------------------------------------
// Actions and encodings

#[tokio::test]
async fn find_on_demo_data_answers_json_mode() {
    let emu = start_data_api(None).await;
    let (status, v) = post(&emu, "find", body("tenants", json!({
        "filter": {"status": "active", "partnerId": {"$oid": demo::NORTHWIND.id}},
        "projection": {"slug": 1, "seats": 1, "createdAt": 1}, "sort": {"slug": -1}}))).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, json!({"documents": [
        {"_id": demo::GLOBEX.id, "slug": "globex", "seats": 5, "createdAt": "2026-01-16T09:00:00.000Z"},
        {"_id": demo::ACME.id, "slug": "acme", "seats": 10, "createdAt": "2026-01-15T09:00:00.000Z"},
    ]}));
}

/// The demo users' `_id`s, newest `createdAt` first, `_id` descending on ties.
fn demo_users_newest_first() -> Vec<&'static str> {
    let mut users = demo::USERS.to_vec();
    users.sort_by(|a, b| b.created_day.cmp(&a.created_day).then(b.id.cmp(a.id)));
    users.iter().map(|u| u.id).collect()
}

#[tokio::test]
async fn sort_keys_apply_in_the_order_the_body_sends_them() {
    // Raw bodies: the text's key order is what the emulator must honour,
    // as MongoDB does (first key, then the next).
    let emu = start_data_api(None).await;
    let find = |sort: &str| {
        let text = format!(
            r#"{{"dataSource": "mongodb-atlas", "database": "{DB}", "collection": "users", "sort": {sort}, "projection": {{"_id": 1}}}}"#
        );
        let emu = &emu;
        async move {
            let (status, v) = raw(emu, &emu.data_api().action_url("find"), &[("api-key", demo::DATA_API_KEY), ("content-type", "application/json")], text).await;
            assert_eq!(status, 200, "{v}");
            v["documents"].as_array().unwrap().iter().map(|d| d["_id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
        }
    };
    let newest = find(r#"{"createdAt": -1, "_id": -1}"#).await;
    assert_eq!(newest, demo_users_newest_first());
    let by_id = find(r#"{"_id": -1, "createdAt": -1}"#).await;
    let mut want: Vec<&str> = demo::USERS.iter().map(|u| u.id).collect();
    want.reverse();
    assert_eq!(by_id, want);
    assert_ne!(newest, by_id, "the demo users' _ids are not in creation order");

    // The same in a `$sort` stage.
    let text = format!(
        r#"{{"dataSource": "mongodb-atlas", "database": "{DB}", "collection": "users", "pipeline": [{{"$sort": {{"createdAt": -1, "_id": -1}}}}, {{"$project": {{"_id": 1}}}}]}}"#
    );
    let (status, v) = raw(&emu, &emu.data_api().action_url("aggregate"), &[("api-key", demo::DATA_API_KEY), ("content-type", "application/json")], text).await;
    assert_eq!(status, 200, "{v}");
    let ids: Vec<&str> = v["documents"].as_array().unwrap().iter().map(|d| d["_id"].as_str().unwrap()).collect();
    assert_eq!(ids, demo_users_newest_first());
}

#[tokio::test]
async fn accept_ejson_answers_canonical_with_canonical_counts() {
    let emu = start_data_api(None).await;
    let (status, v) = post_ejson(&emu, "findOne", body("tenants", json!({"filter": {"slug": "acme"}, "projection": {"seats": 1, "createdAt": 1}}))).await;
    assert_eq!(status, 200);
    assert_eq!(v, json!({"document": {"_id": {"$oid": demo::ACME.id}, "seats": {"$numberInt": "10"}, "createdAt": {"$date": {"$numberLong": "1768467600000"}}}}));
    let (_, v) = post_ejson(&emu, "updateOne", body("tenants", json!({"filter": {"slug": "acme"}, "update": {"$set": {"seats": 11}}}))).await;
    assert_eq!(v, json!({"matchedCount": {"$numberInt": "1"}, "modifiedCount": {"$numberInt": "1"}}));
    let (_, v) = post_ejson(&emu, "deleteMany", body("nothing", json!({"filter": {}}))).await;
    assert_eq!(v, json!({"deletedCount": {"$numberInt": "0"}}));
}

#[tokio::test]
async fn inserted_ids_are_strings_in_json_mode_and_oids_in_ejson() {
    let emu = start_data_api(None).await;
    let (status, v) = post(&emu, "insertOne", body("notes", json!({"document": {"text": "a"}}))).await;
    assert_eq!(status, 200);
    let id = v["insertedId"].as_str().expect("hex string");
    assert_eq!(id.len(), 24);
    let (_, v) = post_ejson(&emu, "insertOne", body("notes", json!({"document": {"text": "b"}}))).await;
    assert!(v["insertedId"]["$oid"].is_string(), "{v}");
    let (_, v) = post(&emu, "insertMany", body("notes", json!({"documents": [{"_id": "custom"}, {"text": "c"}]}))).await;
    assert_eq!(v["insertedIds"][0], json!("custom"));
    assert!(v["insertedIds"][1].is_string());
    // The stored documents have ObjectId _ids first.
    let stored = emu.data_api().api.find(DB, "notes", json!({"text": "a"}));
    assert_eq!(stored, vec![json!({"_id": {"$oid": id}, "text": "a"})]);
}

#[tokio::test]
async fn relaxed_and_canonical_ejson_are_decoded_under_both_content_types() {
    let emu = start_data_api(None).await;
    let doc = json!({"_id": {"$oid": "65f000000000000000000abc"}, "at": {"$date": "2026-02-01T10:00:00Z"},
        "n": {"$numberLong": "7"}, "d": {"$numberDecimal": "1.10"}});
    let (status, _) = post(&emu, "insertOne", body("typed", json!({"document": doc}))).await;
    assert_eq!(status, 200);
    let (_, v) = post(&emu, "findOne", body("typed", json!({"filter": {"at": {"$gte": {"$date": {"$numberLong": "1769940000000"}}}}}))).await;
    assert_eq!(v, json!({"document": {"_id": "65f000000000000000000abc", "at": "2026-02-01T10:00:00.000Z", "n": 7, "d": "1.10"}}));
    let (_, v) = post_ejson(&emu, "findOne", body("typed", json!({"filter": {"_id": {"$oid": "65f000000000000000000abc"}}}))).await;
    assert_eq!(v["document"]["n"], json!({"$numberLong": "7"}));
    assert_eq!(v["document"]["d"], json!({"$numberDecimal": "1.10"}));
    // A hex string is not an ObjectId: no match.
    let (_, v) = post(&emu, "findOne", body("typed", json!({"filter": {"_id": "65f000000000000000000abc"}}))).await;
    assert_eq!(v, json!({"document": null}));
}

#[tokio::test]
async fn all_ten_actions_follow_the_contract() {
    let emu = start_data_api(None).await;
    let (s, v) = post(&emu, "insertMany", body("c", json!({"documents": [{"_id": 1, "k": "a", "n": 1}, {"_id": 2, "k": "a", "n": 2}, {"_id": 3, "k": "b", "n": 3}]}))).await;
    assert_eq!((s, v), (200, json!({"insertedIds": [1, 2, 3]})));
    let (_, v) = post(&emu, "insertOne", body("c", json!({"document": {"_id": 4, "k": "c"}}))).await;
    assert_eq!(v, json!({"insertedId": 4}));
    let (_, v) = post(&emu, "find", body("c", json!({"filter": {"k": "a"}, "sort": {"n": -1}, "projection": {"_id": 0, "n": 1}}))).await;
    assert_eq!(v, json!({"documents": [{"n": 2}, {"n": 1}]}));
    let (_, v) = post(&emu, "find", body("c", json!({"sort": {"_id": 1}, "skip": 1, "limit": 2, "projection": {"k": 0, "n": 0}}))).await;
    assert_eq!(v, json!({"documents": [{"_id": 2}, {"_id": 3}]}));
    let (_, v) = post(&emu, "findOne", body("c", json!({"filter": {"k": "zzz"}}))).await;
    assert_eq!(v, json!({"document": null}));
    let (_, v) = post(&emu, "findOne", body("c", json!({}))).await;
    assert_eq!(v, json!({"document": {"_id": 1, "k": "a", "n": 1}}), "filter defaults to {{}}");
    // updateOne: the first match only; setting the same value is a no-op.
    let (_, v) = post(&emu, "updateOne", body("c", json!({"filter": {"k": "a"}, "update": {"$inc": {"n": 10}}}))).await;
    assert_eq!(v, json!({"matchedCount": 1, "modifiedCount": 1}));
    let (_, v) = post(&emu, "updateOne", body("c", json!({"filter": {"_id": 1}, "update": {"$set": {"n": 11}}}))).await;
    assert_eq!(v, json!({"matchedCount": 1, "modifiedCount": 0}));
    let (_, v) = post(&emu, "updateMany", body("c", json!({"filter": {"k": {"$in": ["a", "b"]}}, "update": {"$set": {"flag": true}}}))).await;
    assert_eq!(v, json!({"matchedCount": 3, "modifiedCount": 3}));
    // Upsert: counts 0 and upsertedId; updateMany inserts at most one.
    let (_, v) = post(&emu, "updateMany", body("c", json!({"filter": {"k": "new"}, "update": {"$set": {"n": 0}}, "upsert": true}))).await;
    assert_eq!(v["matchedCount"], json!(0));
    assert_eq!(v["modifiedCount"], json!(0));
    assert!(v["upsertedId"].as_str().is_some_and(|s| s.len() == 24), "{v}");
    assert_eq!(emu.data_api().api.count(DB, "c", json!({"k": "new"})), 1);
    // replaceOne keeps _id.
    let (_, v) = post(&emu, "replaceOne", body("c", json!({"filter": {"_id": 3}, "replacement": {"k": "replaced"}}))).await;
    assert_eq!(v, json!({"matchedCount": 1, "modifiedCount": 1}));
    assert_eq!(emu.data_api().api.find_one(DB, "c", json!({"_id": 3})), Some(json!({"_id": {"$numberInt": "3"}, "k": "replaced"})));
    let (_, v) = post(&emu, "replaceOne", body("c", json!({"filter": {"_id": 9}, "replacement": {"k": "nine"}, "upsert": true}))).await;
    assert_eq!(v, json!({"matchedCount": 0, "modifiedCount": 0, "upsertedId": 9}));
    // aggregate
    let (_, v) = post(&emu, "aggregate", body("c", json!({"pipeline": [{"$match": {"flag": true}}, {"$group": {"_id": "$k", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]}))).await;
    assert_eq!(v, json!({"documents": [{"_id": "a", "n": 2}]}), "the replaced document lost its flag");
    // deleteOne removes the first match; deleteMany all.
    let (_, v) = post(&emu, "deleteOne", body("c", json!({"filter": {"k": "a"}}))).await;
    assert_eq!(v, json!({"deletedCount": 1}));
    assert_eq!(emu.data_api().api.find(DB, "c", json!({"k": "a"})).len(), 1);
    let (_, v) = post(&emu, "deleteMany", body("c", json!({"filter": {}}))).await;
    assert_eq!(v, json!({"deletedCount": 5}));
}

#[tokio::test]
async fn find_limit_defaults_to_1000_and_zero_means_no_limit() {
    let emu = start_data_api(None).await;
    let docs: Vec<Value> = (0..1005).map(|i| json!({"i": i})).collect();
    emu.data_api().api.insert_many(DB, "many", docs);
    let (_, v) = post(&emu, "find", body("many", json!({}))).await;
    assert_eq!(v["documents"].as_array().unwrap().len(), 1000);
    let (_, v) = post(&emu, "find", body("many", json!({"limit": 0}))).await;
    assert_eq!(v["documents"].as_array().unwrap().len(), 1005);
    let (_, v) = post(&emu, "find", body("many", json!({"skip": 1000, "limit": {"$numberInt": "3"}, "projection": {"_id": 0}}))).await;
    assert_eq!(v, json!({"documents": [{"i": 1000}, {"i": 1001}, {"i": 1002}]}));
}

#[tokio::test]
async fn every_database_is_its_own_namespace() {
    let emu = start_data_api(None).await;
    let mut b = body("users", json!({"document": {"email": "x@other.test"}}));
    b["database"] = json!("other");
    let (s, _) = post(&emu, "insertOne", b).await;
    assert_eq!(s, 200);
    assert_eq!(emu.data_api().api.count("other", "users", json!({})), 1);
    assert_eq!(emu.data_api().api.count(DB, "users", json!({"email": "x@other.test"})), 0);
    assert_eq!(emu.data_api().api.count(DB, "users", json!({})), demo::USERS.len());
}

// ---------------------------------------------------------------------------
// Errors

#[tokio::test]
async fn authentication_errors_follow_the_contract() {
    let emu = start_data_api(None).await;
    let url = emu.data_api().action_url("find");
    let b = body("users", json!({})).to_string();
    let (s, v) = raw(&emu, &url, &[("content-type", "application/json")], b.clone()).await;
    assert_eq!(s, 400);
    assert_envelope(&v, "InvalidParameter");
    assert_eq!(v["error"], json!("no authentication methods were specified"));
    let (s, v) = raw(&emu, &url, &[("api-key", "wrong"), ("content-type", "application/json")], b.clone()).await;
    assert_eq!(s, 401);
    assert_envelope(&v, "InvalidSession");
    assert_eq!(v["error"], json!("invalid session: error finding user for endpoint"));
    let (s, _) = raw(&emu, &url, &[("apiKey", demo::DATA_API_KEY), ("content-type", "application/json")], b.clone()).await;
    assert_eq!(s, 200, "the apiKey spelling is accepted");
    let (s, v) = raw(&emu, &url, &[("email", "a@b.c"), ("content-type", "application/json")], b.clone()).await;
    assert_eq!(s, 400);
    assert_envelope(&v, "MissingParameter");
    let (s, _) = raw(&emu, &url, &[("authorization", "Bearer x"), ("content-type", "application/json")], b.clone()).await;
    assert_eq!(s, 401);
    emu.data_api().api.set_api_key("rotated");
    let (s, _) = raw(&emu, &url, &[("api-key", demo::DATA_API_KEY), ("content-type", "application/json")], b).await;
    assert_eq!(s, 401, "a changed key takes effect at once");
}

#[tokio::test]
async fn both_base_urls_serve_the_actions_and_unknown_endpoints_are_404() {
    let emu = start_data_api(None).await;
    let h = [("api-key", demo::DATA_API_KEY), ("content-type", "application/json")];
    let b = body("tenants", json!({"filter": {"slug": "acme"}, "projection": {"slug": 1, "_id": 0}})).to_string();
    for base in ["/app/data-abcde/endpoint/data/v1", "/app/other-app/endpoint/data/beta", ""] {
        let (s, v) = raw(&emu, &format!("{}{base}/action/findOne", emu.data_api().url), &h, b.clone()).await;
        assert_eq!((s, v), (200, json!({"document": {"slug": "acme"}})), "{base}");
    }
    let (s, v) = raw(&emu, &format!("{}/app/x/endpoint/data/v2/action/findOne", emu.data_api().url), &h, b.clone()).await;
    assert_eq!(s, 404);
    assert_envelope(&v, "NotFound");
    let (s, v) = raw(&emu, &emu.data_api().action_url("count"), &h, b.clone()).await;
    assert_eq!(s, 404);
    assert_envelope(&v, "NotFound");
    let (s, _) = raw(&emu, &format!("{}/nowhere", emu.data_api().url), &h, b).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn malformed_requests_are_400_with_the_envelope() {
    let emu = start_data_api(None).await;
    let url = emu.data_api().action_url("find");
    let json_h = [("api-key", demo::DATA_API_KEY), ("content-type", "application/json")];
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, String, &'a str);
    let cases: Vec<Case> = vec![
        ("missing content type", vec![("api-key", demo::DATA_API_KEY)], body("users", json!({})).to_string(), "InvalidParameter"),
        ("form content type", vec![("api-key", demo::DATA_API_KEY), ("content-type", "application/x-www-form-urlencoded")], body("users", json!({})).to_string(), "InvalidParameter"),
        ("not JSON", json_h.to_vec(), "{not json".to_owned(), "InvalidParameter"),
        ("array body", json_h.to_vec(), "[]".to_owned(), "InvalidParameter"),
        ("missing database", json_h.to_vec(), json!({"dataSource": "x", "collection": "users"}).to_string(), "MissingParameter"),
        ("database not a string", json_h.to_vec(), json!({"dataSource": "x", "database": 5, "collection": "users"}).to_string(), "InvalidParameter"),
        ("invalid database name", json_h.to_vec(), json!({"dataSource": "x", "database": "a.b", "collection": "users"}).to_string(), "InvalidParameter"),
        ("filter not an object", json_h.to_vec(), body("users", json!({"filter": "x"})).to_string(), "InvalidParameter"),
        ("limit negative", json_h.to_vec(), body("users", json!({"limit": -1})).to_string(), "InvalidParameter"),
        ("unknown field", json_h.to_vec(), body("users", json!({"projetion": {"a": 1}})).to_string(), "InvalidParameter"),
        ("bad $oid", json_h.to_vec(), body("users", json!({"filter": {"_id": {"$oid": "xyz"}}})).to_string(), "InvalidParameter"),
        ("unknown operator", json_h.to_vec(), body("users", json!({"filter": {"email": {"$foo": ""}}})).to_string(), "InvalidParameter"),
        ("mixed projection", json_h.to_vec(), body("users", json!({"projection": {"a": 1, "b": 0}})).to_string(), "InvalidParameter"),
        ("bad sort", json_h.to_vec(), body("users", json!({"sort": {"a": "asc"}})).to_string(), "InvalidParameter"),
    ];
    for (name, headers, b, code) in cases {
        let (s, v) = raw(&emu, &url, &headers, b).await;
        assert_eq!(s, 400, "{name}: {v}");
        assert_envelope(&v, code);
    }
    let upd = emu.data_api().action_url("updateOne");
    for (name, b, code) in [
        ("update without operators", body("users", json!({"filter": {}, "update": {"name": "x"}})), "InvalidParameter"),
        ("update missing", body("users", json!({"filter": {}})), "MissingParameter"),
        ("filter missing", body("users", json!({"update": {"$set": {"a": 1}}})), "MissingParameter"),
        ("unknown modifier", body("users", json!({"filter": {}, "update": {"$foo": {"a": 1}}})), "InvalidParameter"),
        ("unknown modifier without fields", body("users", json!({"filter": {}, "update": {"$foo": {}}})), "InvalidParameter"),
        ("upsert not bool", body("users", json!({"filter": {}, "update": {"$set": {"a": 1}}, "upsert": "yes"})), "InvalidParameter"),
        ("changing _id", body("users", json!({"filter": {}, "update": {"$set": {"_id": 1}}})), "InvalidParameter"),
        ("pipeline update", body("users", json!({"filter": {}, "update": [{"$set": {"a": 1}}]})), "InvalidParameter"),
    ] {
        let (s, v) = raw(&emu, &upd, &json_h, b.to_string()).await;
        assert_eq!(s, 400, "{name}: {v}");
        assert_envelope(&v, code);
    }
    let (s, v) = raw(&emu, &emu.data_api().action_url("aggregate"), &json_h, body("users", json!({"pipeline": [{"$out": "x"}]})).to_string()).await;
    assert_eq!(s, 400);
    assert_envelope(&v, "InvalidParameter");
}

#[tokio::test]
async fn failed_requests_change_nothing() {
    let emu = start_data_api(None).await;
    let before = emu.data_api().api.snapshot();
    for (action, b) in [
        ("updateOne", body("users", json!({"filter": {"email": demo::ACME_MEMBER.email}, "update": {"$inc": {"email": 1}}}))),
        ("updateMany", body("users", json!({"filter": {}, "update": {"$set": {"x": 1}, "$unset": {"x": ""}}}))),
        ("insertOne", body("users", json!({"document": {"_id": {"$oid": demo::OPERATOR.id}}}))),
        ("replaceOne", body("users", json!({"filter": {}, "replacement": {"$set": {"a": 1}}}))),
        ("deleteMany", body("users", json!({"filter": {"$where": "true"}}))),
    ] {
        let (s, _) = post(&emu, action, b).await;
        assert_eq!(s, 400, "{action}");
    }
    assert_eq!(emu.data_api().api.snapshot(), before);
}

#[tokio::test]
async fn duplicate_id_is_a_400_duplicate_key() {
    let emu = start_data_api(None).await;
    let (s, v) = post(&emu, "insertOne", body("users", json!({"document": {"_id": {"$oid": demo::OPERATOR.id}, "email": "dup"}}))).await;
    assert_eq!(s, 400);
    assert_envelope(&v, "DuplicateKey");
    assert!(v["error"].as_str().unwrap().starts_with("E11000 duplicate key error collection: dezky.users index: _id_"), "{v}");
    // insertMany is ordered: documents before the duplicate stay inserted.
    let (s, _) = post(&emu, "insertMany", body("m", json!({"documents": [{"_id": 1}, {"_id": 2}, {"_id": 1}, {"_id": 3}]}))).await;
    assert_eq!(s, 400);
    assert_eq!(emu.data_api().api.count(DB, "m", json!({})), 2);
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
    let (s, _) = raw(&emu, &format!("{}/app/x/endpoint/data/v1/action/find", emu.data_api().url),
        &[("api-key", demo::DATA_API_KEY), ("content-type", "application/json")], body("users", json!({})).to_string()).await;
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
    let r = http.post(format!("{base}/__emulator/faults")).json(&json!({"path_prefix": "/action/insertOne", "fault": {"status": 502}, "times": 1})).send().await.unwrap();
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
// Concurrency

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_are_each_atomic() {
    let emu = start_data_api(None).await;
    emu.data_api().api.insert(DB, "counters", json!({"_id": "c", "n": 0}));
    let url = emu.data_api().action_url("updateOne");
    let b = body("counters", json!({"filter": {"_id": "c"}, "update": {"$inc": {"n": 1}, "$push": {"seen": 1}}})).to_string();
    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (client, url, b) = (client.clone(), url.clone(), b.clone());
            tokio::spawn(async move {
                client.post(url).header("api-key", demo::DATA_API_KEY).header("content-type", "application/json").body(b).send().await.unwrap().status().as_u16()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let doc = emu.data_api().api.find_one(DB, "counters", json!({"_id": "c"})).unwrap();
    assert_eq!(doc["n"], json!({"$numberInt": "40"}));
    assert_eq!(doc["seen"].as_array().unwrap().len(), 40);
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
    let (s, v) = post(&emu, "insertOne", body("notes", json!({"document": {"text": "kept", "at": {"$date": "2026-03-01T00:00:00Z"}}}))).await;
    assert_eq!(s, 200);
    let id = v["insertedId"].as_str().unwrap().to_owned();
    post(&emu, "updateOne", body("users", json!({"filter": {"email": demo::ACME_MEMBER.email}, "update": {"$set": {"name": "Renamed"}}}))).await;
    post(&emu, "deleteOne", body("tenants", json!({"filter": {"slug": "hooli"}}))).await;
    let before = emu.data_api().api.snapshot();
    emu.shutdown().await;

    let files = files_in(&dir.path().join(DB));
    assert!(files.contains(&"notes.json".to_owned()) && files.contains(&"users.json".to_owned()), "{files:?}");
    assert!(!files.iter().any(|f| f.starts_with(".tmp")), "no temporary files left: {files:?}");
    let text = std::fs::read_to_string(dir.path().join(DB).join("notes.json")).unwrap();
    assert!(text.contains(&format!(r#"{{"$oid":"{id}"}}"#)) && text.contains(r#""$date":{"$numberLong":"1772323200000"}"#), "canonical EJSON on disk: {text}");

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
    let emu = start(Options { data_dir: Some(dir.path().to_path_buf()), seed: false, authentik_port: None, ..Options::default() }).await.unwrap();
    assert_eq!(emu.data_api().api.snapshot(), json!({}));
    emu.shutdown().await;
    let emu = start(Options { data_dir: Some(dir.path().to_path_buf()), database: "custom".into(), authentik_port: None, ..Options::default() }).await.unwrap();
    assert_eq!(emu.data_api().api.collections("custom"), vec!["auditevents", "domains", "partners", "prices", "subscriptions", "tenants", "users"]);
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
    let report = api.aggregate(DB, "subscriptions", json!([{"$match": {"status": "active"}}, {"$group": {"_id": "$currency", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]));
    assert_eq!(report, vec![
        json!({"_id": "DKK", "n": {"$numberInt": "1"}}),
        json!({"_id": "EUR", "n": {"$numberInt": "1"}}),
        json!({"_id": "USD", "n": {"$numberInt": "1"}}),
    ]);
    let err = api.action("updateOne", json!({"dataSource": "x", "database": DB, "collection": "users", "filter": {}, "update": {"$bad": {}}})).unwrap_err();
    assert_eq!((err.status, err.code.as_str()), (400, "InvalidParameter"));
    api.clear();
    assert_eq!(api.snapshot(), json!({}));
    api.seed_demo();
    assert_eq!(api.snapshot(), before);
    assert_eq!(DataApi::empty().snapshot(), json!({}));
}
