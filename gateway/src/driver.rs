//! The driver backend: the official `mongodb` driver (connection pool,
//! server selection, retryable reads and writes: the driver's defaults)
//! against any MongoDB deployment.
//!
//! Error mapping (docs/upstreams.md, the gateway):
//! - a duplicate key (write error 11000) → `400 DuplicateKey`, the server's message;
//! - other command and write errors, and requests the driver refuses
//!   (an update without operators, a replacement with them) → `400 InvalidParameter`;
//! - refused connections, timeouts, no selectable server → `503 ServiceUnavailable`, logged.

use std::future::IntoFuture;
use std::time::Duration;

use bson::oid::ObjectId;
use bson::{doc, Bson, Document};
use futures::{StreamExt, TryStreamExt};
use mongodb::error::{Error, ErrorKind, WriteFailure};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection};

use crate::http::Backend;
use crate::request::{ActionRequest, Op, MAX_RESULT_DOCUMENTS};
use crate::ApiError;

/// MongoDB's duplicate key error code.
const DUPLICATE_KEY: i32 = 11000;

/// Server error codes that mean "the deployment cannot serve this now"
/// (shutting down, stepping down, unreachable hosts, time limits), answered
/// like an unreachable database rather than like a bad request.
const UNAVAILABLE_CODES: [i32; 9] = [
    6,     // HostUnreachable
    7,     // HostNotFound
    50,    // MaxTimeMSExpired
    89,    // NetworkTimeout
    91,    // ShutdownInProgress
    189,   // PrimarySteppedDown
    10107, // NotWritablePrimary
    11600, // InterruptedAtShutdown
    13435, // NotPrimaryNoSecondaryOk
];

/// A MongoDB deployment reached through one [`Client`] (its pool is shared
/// by every request).
#[derive(Clone)]
pub struct DriverBackend {
    client: Client,
    timeout: Duration,
}

impl DriverBackend {
    /// Parses `uri` (`mongodb://` or `mongodb+srv://`, resolving SRV records)
    /// and builds the client. `timeout` bounds connecting, server selection
    /// and each operation. Nothing is contacted yet: the pool connects on
    /// first use, so a gateway starts while its database is still coming up.
    pub async fn connect(uri: &str, timeout: Duration) -> Result<DriverBackend, Error> {
        let mut opts = ClientOptions::parse(uri).await?;
        opts.connect_timeout = Some(timeout);
        opts.server_selection_timeout = Some(timeout);
        opts.app_name.get_or_insert_with(|| "dezky-gateway".to_owned());
        Ok(DriverBackend { client: Client::with_options(opts)?, timeout })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn collection(&self, req: &ActionRequest) -> Collection<Document> {
        self.client.database(&req.ns.database).collection(&req.ns.collection)
    }

    async fn run(&self, req: ActionRequest) -> Result<Document, Error> {
        let coll = self.collection(&req);
        let mut out = Document::new();
        match req.op {
            Op::FindOne { filter, projection } => {
                let mut find = coll.find_one(filter);
                if !projection.is_empty() {
                    find = find.projection(projection);
                }
                let found = find.await?;
                out.insert("document", found.map(Bson::Document).unwrap_or(Bson::Null));
            }
            Op::Find { filter, projection, sort, skip, limit } => {
                let mut find = coll.find(filter).skip(skip).limit(limit.get() as i64);
                if !projection.is_empty() {
                    find = find.projection(projection);
                }
                if !sort.is_empty() {
                    find = find.sort(sort);
                }
                let cursor = find.await?;
                let docs: Vec<Document> = cursor.try_collect().await?;
                out.insert("documents", docs);
            }
            Op::InsertOne { document } => {
                let (id, document) = with_id(document);
                coll.insert_one(document).await?;
                out.insert("insertedId", id);
            }
            Op::InsertMany { documents } => {
                let (ids, documents): (Vec<Bson>, Vec<Document>) = documents.into_iter().map(with_id).unzip();
                // Ordered (the driver's default): documents before a failing one stay inserted.
                coll.insert_many(documents).await?;
                out.insert("insertedIds", ids);
            }
            Op::Update { many, filter, update, upsert } => {
                let result = match many {
                    false => coll.update_one(filter, update).upsert(upsert).await?,
                    true => coll.update_many(filter, update).upsert(upsert).await?,
                };
                counts(&mut out, result.matched_count, result.modified_count, result.upserted_id);
            }
            Op::ReplaceOne { filter, replacement, upsert } => {
                let result = coll.replace_one(filter, replacement).upsert(upsert).await?;
                counts(&mut out, result.matched_count, result.modified_count, result.upserted_id);
            }
            Op::Delete { many, filter } => {
                let result = match many {
                    false => coll.delete_one(filter).await?,
                    true => coll.delete_many(filter).await?,
                };
                out.insert("deletedCount", count(result.deleted_count));
            }
            Op::Aggregate { pipeline } => {
                let cursor = coll.aggregate(pipeline).await?;
                let docs: Vec<Document> = cursor.take(MAX_RESULT_DOCUMENTS).try_collect().await?;
                out.insert("documents", docs);
            }
        }
        Ok(out)
    }
}

/// The document with an `_id` (a new ObjectId, first, when absent), and that
/// `_id`: the answer names it without reading it back.
fn with_id(doc: Document) -> (Bson, Document) {
    match doc.get("_id") {
        Some(id) => (id.clone(), doc),
        None => {
            let id = Bson::ObjectId(ObjectId::new());
            let mut with = doc! {"_id": id.clone()};
            with.extend(doc);
            (id, with)
        }
    }
}

/// Counts as Int32, as the hosted service answers them (`{"$numberInt": …}` in EJSON).
fn count(n: u64) -> Bson {
    Bson::Int32(i32::try_from(n).unwrap_or(i32::MAX))
}

/// `{matchedCount, modifiedCount}`, plus `upsertedId` when an upsert
/// inserted (both counts are 0 then, as the contract says).
fn counts(out: &mut Document, matched: u64, modified: u64, upserted: Option<Bson>) {
    let inserted = upserted.is_some();
    out.insert("matchedCount", count(if inserted { 0 } else { matched }));
    out.insert("modifiedCount", count(if inserted { 0 } else { modified }));
    if let Some(id) = upserted {
        out.insert("upsertedId", id);
    }
}

/// The driver's error in the contract's terms.
pub fn map_error(e: &Error) -> ApiError {
    let server = |code: i32, message: &str| match code {
        DUPLICATE_KEY => ApiError::bad_request("DuplicateKey", message),
        c if UNAVAILABLE_CODES.contains(&c) => ApiError::unavailable(message),
        _ => ApiError::invalid(message),
    };
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => server(w.code, &w.message),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => server(w.code, &w.message),
        ErrorKind::InsertMany(m) => match (&m.write_errors, &m.write_concern_error) {
            (Some(errors), _) if !errors.is_empty() => server(errors[0].code, &errors[0].message),
            (_, Some(w)) => server(w.code, &w.message),
            _ => ApiError::internal(e.to_string()),
        },
        ErrorKind::Command(c) => server(c.code, &c.message),
        ErrorKind::InvalidArgument { message, .. } => ApiError::invalid(message.clone()),
        ErrorKind::Io(_)
        | ErrorKind::ServerSelection { .. }
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. }
        | ErrorKind::Authentication { .. }
        | ErrorKind::Shutdown => ApiError::unavailable(format!("the database is unavailable: {e}")),
        _ => ApiError::internal(e.to_string()),
    }
}

impl DriverBackend {
    /// Runs `fut` within the per-operation timeout, mapping errors.
    async fn bounded<T>(&self, what: &str, fut: impl IntoFuture<Output = Result<T, Error>>) -> Result<T, ApiError> {
        let result = match tokio::time::timeout(self.timeout, fut.into_future()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => map_error(&e),
            Err(_) => ApiError::unavailable(format!("{what} timed out after {} ms", self.timeout.as_millis())),
        };
        if result.status >= 500 {
            tracing::warn!(operation = what, status = result.status, error = %result.message, "database unavailable");
        }
        Err(result)
    }
}

impl Backend for DriverBackend {
    async fn execute(&self, req: ActionRequest) -> Result<Document, ApiError> {
        let action = req.action().name();
        self.bounded(action, self.run(req)).await
    }

    async fn health(&self) -> Result<(), ApiError> {
        self.bounded("ping", self.client.database("admin").run_command(doc! {"ping": 1})).await.map(drop)
    }
}
