//! Data API emulator: the MongoDB Atlas Data API v1 wire contract
//! (docs/upstreams.md, Data API) over an in-memory store, optionally persisted.
//!
//! - HTTP: [`DataApi::router`] serves `POST /action/<action>` and
//!   `POST /app/<app-id>/endpoint/data/v1/action/<action>` for the ten
//!   actions, checks `api-key` / `apiKey`, decodes canonical and relaxed
//!   Extended JSON, answers canonical EJSON for `Accept: application/ejson`
//!   and "JSON mode" otherwise, and reports errors in the contract's
//!   envelope `{"error", "error_code", "link"}`.
//! - Semantics: [`engine`] (MongoDB's query/update/aggregation rules).
//! - Tests: the methods below read and write the store directly, in
//!   canonical Extended JSON, without HTTP or authentication.
//!
//! Decisions where the Data API's documentation is silent:
//! - runtime errors (unknown operator, bad operator argument, `$inc` on a
//!   string, changing `_id`, …) are `400` with `error_code`
//!   `InvalidParameter`; a duplicate `_id` is `400` `DuplicateKey` with
//!   MongoDB's `E11000 duplicate key error …` message;
//! - unknown body fields are `400` (catches typos such as `projetion`);
//! - a missing or other `Content-Type` is `400`;
//! - `insertMany` is ordered: documents before a duplicate stay inserted;
//!   `updateMany` stops at the first failing document (earlier ones stay
//!   updated), as MongoDB does;
//! - `find` `limit: 0` means "no limit" (capped at 50,000, like any limit);
//! - an upsert does not copy a one-element `$in` from the filter.

pub mod actions;
mod collection;
pub mod ejson;
pub mod engine;
pub mod server;
mod store;
pub mod wire;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use bson::{Bson, Document};
use gateway::{ActionRequest, ApiKeys, HttpOptions, Policy};
use serde_json::{json, Value};

pub use actions::Action;
use store::Store;

/// The `dataSource` the test helpers send.
pub const DEFAULT_DATA_SOURCE: &str = "mongodb-atlas";
/// The database the demo data is seeded into unless told otherwise.
pub const DEFAULT_DATABASE: &str = "dezky";

/// How to start a [`DataApi`].
#[derive(Clone, Debug)]
pub struct DataApiOptions {
    /// Persist here (one file per collection); `None` keeps data in memory.
    pub data_dir: Option<PathBuf>,
    /// Load [`crate::demo::collections`] into `database` when that database
    /// does not exist yet (a new data directory, or memory).
    pub seed: bool,
    /// The database the demo data goes into (default `dezky`).
    pub database: String,
    /// The API key requests must carry (default [`crate::demo::DATA_API_KEY`]).
    pub api_key: String,
}

impl Default for DataApiOptions {
    fn default() -> Self {
        DataApiOptions { data_dir: None, seed: true, database: DEFAULT_DATABASE.to_owned(), api_key: crate::demo::DATA_API_KEY.to_owned() }
    }
}

/// A Data API error: the gateway's (status, `error_code`, message).
pub use gateway::ApiError;

impl From<engine::EngineError> for ApiError {
    fn from(e: engine::EngineError) -> Self {
        ApiError::new(400, e.code, e.message)
    }
}

/// The result of an update or replace through the test helpers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateOutcome {
    pub matched: u64,
    pub modified: u64,
    /// Canonical EJSON of the inserted `_id` when an upsert inserted.
    pub upserted_id: Option<Value>,
}

/// The Data API emulator's state. Cheap to clone; clones share the store.
#[derive(Clone)]
pub struct DataApi(Arc<Inner>);

struct Inner {
    store: Mutex<Store>,
    api_key: Mutex<String>,
    /// What the HTTP layer checks: [`DataApi::api_key`], as a key set.
    keys: ApiKeys,
    database: String,
}

impl DataApi {
    /// Opens the store (loading `data_dir` when given) and seeds it.
    pub fn open(opts: DataApiOptions) -> anyhow::Result<DataApi> {
        let store = match &opts.data_dir {
            Some(dir) => Store::open(dir)?,
            None => Store::memory(),
        };
        let fresh = !store.has_database(&opts.database);
        let api = DataApi(Arc::new(Inner {
            store: Mutex::new(store),
            keys: ApiKeys::new([&opts.api_key]),
            api_key: Mutex::new(opts.api_key),
            database: opts.database,
        }));
        if opts.seed && fresh {
            api.try_seed_demo()?;
        }
        Ok(api)
    }

    /// In memory, seeded with the demo data, accepting [`crate::demo::DATA_API_KEY`].
    pub fn demo() -> DataApi {
        DataApi::open(DataApiOptions::default()).expect("an in-memory store cannot fail to open")
    }

    /// In memory and empty, accepting [`crate::demo::DATA_API_KEY`].
    pub fn empty() -> DataApi {
        DataApi::open(DataApiOptions { seed: false, ..DataApiOptions::default() }).expect("an in-memory store cannot fail to open")
    }

    /// The HTTP routes (not wrapped by [`crate::faults::Controls`]).
    pub fn router(&self) -> Router {
        gateway::router(self.clone(), HttpOptions::new(self.0.keys.clone()))
    }

    pub fn api_key(&self) -> String {
        self.0.api_key.lock().unwrap().clone()
    }

    pub fn set_api_key(&self, key: impl Into<String>) {
        let key = key.into();
        self.0.keys.set([&key]);
        *self.0.api_key.lock().unwrap() = key;
    }

    /// Replaces the accepted keys with `keys`, each with its rights: a
    /// request its key has no right to is a `403` (the gateway's
    /// [`Policy::check`]). [`DataApi::api_key`] is left as it was; give it
    /// here (with [`Policy::all`]) to keep it working. [`DataApi::set_api_key`]
    /// goes back to that one key with every right.
    pub fn set_keys<S: AsRef<str>, P: Into<Arc<Policy>>>(&self, keys: impl IntoIterator<Item = (S, P)>) {
        self.0.keys.set_with_policies(keys);
    }

    /// The database the demo data lives in.
    pub fn database(&self) -> &str {
        &self.0.database
    }

    /// Where the store persists, if anywhere.
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.lock().dir().map(Path::to_path_buf)
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave a half-applied action
        // (actions build their results before committing), so recover.
        self.0.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one action on a decoded request body, atomically (no HTTP, no
    /// authentication). The result is the response document before encoding.
    pub fn execute(&self, action: Action, body: &Document) -> Result<Document, ApiError> {
        self.run(ActionRequest::parse(action, body)?)
    }

    /// Runs one checked request atomically: what the HTTP route runs.
    pub fn run(&self, req: ActionRequest) -> Result<Document, ApiError> {
        actions::run(&mut self.lock(), req)
    }

    /// Runs one action with an Extended JSON body, answering canonical EJSON:
    /// exactly what the HTTP route does after authentication.
    pub fn action(&self, action: &str, body: Value) -> Result<Value, ApiError> {
        let action = Action::parse(action).ok_or_else(|| ApiError::not_found(format!("no such action '{action}'")))?;
        let doc = ejson::decode_document(body).map_err(|e| ApiError::bad_request("InvalidParameter", e))?;
        let out = self.execute(action, &doc)?;
        Ok(ejson::to_canonical(&Bson::Document(out)))
    }

    fn call(&self, action: &str, db: &str, coll: &str, mut extra: Value) -> Value {
        let body = extra.as_object_mut().expect("helper bodies are objects");
        body.insert("dataSource".into(), json!(DEFAULT_DATA_SOURCE));
        body.insert("database".into(), json!(db));
        body.insert("collection".into(), json!(coll));
        match self.action(action, extra) {
            Ok(v) => v,
            Err(e) => panic!("data api emulator: {action} on {db}.{coll} failed: {e}"),
        }
    }

    /// Documents matching `filter` (canonical or relaxed EJSON), in natural
    /// order, as canonical EJSON. No limit. Panics on a malformed filter.
    pub fn find(&self, db: &str, coll: &str, filter: Value) -> Vec<Value> {
        let f = engine::Filter::from_ejson(filter).unwrap_or_else(|e| panic!("data api emulator: bad filter: {e}"));
        self.lock().docs(db, coll).iter().filter(|d| f.matches(d)).map(ejson::doc_to_canonical).collect()
    }

    /// The first document matching `filter`, as canonical EJSON.
    pub fn find_one(&self, db: &str, coll: &str, filter: Value) -> Option<Value> {
        let f = engine::Filter::from_ejson(filter).unwrap_or_else(|e| panic!("data api emulator: bad filter: {e}"));
        self.lock().docs(db, coll).iter().find(|d| f.matches(d)).map(ejson::doc_to_canonical)
    }

    /// How many documents match `filter`.
    pub fn count(&self, db: &str, coll: &str, filter: Value) -> usize {
        let f = engine::Filter::from_ejson(filter).unwrap_or_else(|e| panic!("data api emulator: bad filter: {e}"));
        self.lock().docs(db, coll).iter().filter(|d| f.matches(d)).count()
    }

    /// Every document of a collection, as canonical EJSON.
    pub fn collection(&self, db: &str, coll: &str) -> Vec<Value> {
        self.lock().docs(db, coll).iter().map(ejson::doc_to_canonical).collect()
    }

    /// The non-empty collections of a database, sorted.
    pub fn collections(&self, db: &str) -> Vec<String> {
        self.lock().all().get(db).map(|c| c.iter().filter(|(_, d)| !d.is_empty()).map(|(n, _)| n.clone()).collect()).unwrap_or_default()
    }

    /// Inserts a document (an `_id` is generated when absent); returns the
    /// `_id` as canonical EJSON. Panics on a duplicate `_id`.
    pub fn insert(&self, db: &str, coll: &str, doc: Value) -> Value {
        self.call("insertOne", db, coll, json!({ "document": doc }))["insertedId"].clone()
    }

    /// Inserts several documents; returns their `_id`s.
    pub fn insert_many(&self, db: &str, coll: &str, docs: Vec<Value>) -> Vec<Value> {
        match self.call("insertMany", db, coll, json!({ "documents": docs }))["insertedIds"].take() {
            Value::Array(ids) => ids,
            _ => Vec::new(),
        }
    }

    fn outcome(v: &Value) -> UpdateOutcome {
        let n = |k: &str| v[k]["$numberInt"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
        UpdateOutcome { matched: n("matchedCount"), modified: n("modifiedCount"), upserted_id: v.get("upsertedId").cloned() }
    }

    /// `updateOne` without upsert. Panics on a malformed update.
    pub fn update_one(&self, db: &str, coll: &str, filter: Value, update: Value) -> UpdateOutcome {
        Self::outcome(&self.call("updateOne", db, coll, json!({ "filter": filter, "update": update })))
    }

    /// `updateMany` without upsert.
    pub fn update_many(&self, db: &str, coll: &str, filter: Value, update: Value) -> UpdateOutcome {
        Self::outcome(&self.call("updateMany", db, coll, json!({ "filter": filter, "update": update })))
    }

    /// `updateOne` with `upsert: true`.
    pub fn upsert_one(&self, db: &str, coll: &str, filter: Value, update: Value) -> UpdateOutcome {
        Self::outcome(&self.call("updateOne", db, coll, json!({ "filter": filter, "update": update, "upsert": true })))
    }

    /// `replaceOne` without upsert.
    pub fn replace_one(&self, db: &str, coll: &str, filter: Value, replacement: Value) -> UpdateOutcome {
        Self::outcome(&self.call("replaceOne", db, coll, json!({ "filter": filter, "replacement": replacement })))
    }

    /// `deleteMany`; returns how many were deleted.
    pub fn delete_many(&self, db: &str, coll: &str, filter: Value) -> u64 {
        let v = self.call("deleteMany", db, coll, json!({ "filter": filter }));
        v["deletedCount"]["$numberInt"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    /// Runs an aggregation pipeline; returns the output documents.
    pub fn aggregate(&self, db: &str, coll: &str, pipeline: Value) -> Vec<Value> {
        match self.call("aggregate", db, coll, json!({ "pipeline": pipeline }))["documents"].take() {
            Value::Array(docs) => docs,
            _ => Vec::new(),
        }
    }

    /// Every database as canonical EJSON: `{db: {collection: [docs…]}}`,
    /// empty collections and databases left out. Compare two snapshots to
    /// assert that nothing changed.
    pub fn snapshot(&self) -> Value {
        let store = self.lock();
        let mut out = serde_json::Map::new();
        for (db, colls) in store.all() {
            let mut c = serde_json::Map::new();
            for (name, docs) in colls {
                if !docs.is_empty() {
                    c.insert(name.clone(), Value::Array(docs.iter().map(ejson::doc_to_canonical).collect()));
                }
            }
            if !c.is_empty() {
                out.insert(db.clone(), Value::Object(c));
            }
        }
        Value::Object(out)
    }

    /// One database of [`DataApi::snapshot`] (`{}` when it is empty).
    pub fn snapshot_db(&self, db: &str) -> Value {
        self.snapshot().get(db).cloned().unwrap_or_else(|| json!({}))
    }

    /// Removes every database (and its files). Panics if the files cannot be removed.
    pub fn clear(&self) {
        self.lock().clear().unwrap_or_else(|e| panic!("data api emulator: clearing failed: {e}"));
    }

    /// Replaces the demo collections of [`DataApi::database`] with
    /// [`crate::demo::collections`] (other collections are left alone).
    pub fn seed_demo(&self) {
        self.try_seed_demo().unwrap_or_else(|e| panic!("data api emulator: seeding failed: {e}"));
    }

    fn try_seed_demo(&self) -> anyhow::Result<()> {
        let mut store = self.lock();
        let db = self.0.database.clone();
        for (coll, docs) in crate::demo::collections() {
            let docs = docs
                .into_iter()
                .map(|d| ejson::decode_document(d).map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<Vec<Document>>>()?;
            *store.docs_mut(&db, coll) = docs;
            store.persist(&db, coll)?;
        }
        Ok(())
    }
}
