//! Typed client of the Data API (docs/upstreams.md, Data API): every action,
//! canonical Extended JSON both ways, the error envelope mapped to an
//! [`UpstreamError`].
//!
//! Filters and updates are built by the domain from typed values only;
//! this client never sees a raw request string.

use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use crate::config::DataApiConfig;
use crate::ejson::ObjectId;
use crate::ports::Http;
use crate::problem::{System, UpstreamError, UpstreamFailure};
use crate::upstream::{excerpt, Call};

/// The collections, by Mongoose's plural names.
pub mod coll {
    pub const USERS: &str = "users";
    pub const TENANTS: &str = "tenants";
    pub const PARTNERS: &str = "partners";
    pub const SUBSCRIPTIONS: &str = "subscriptions";
    pub const PRICES: &str = "prices";
    pub const DOMAINS: &str = "domains";
    pub const AUDIT_EVENTS: &str = "auditevents";
}

/// Options of `find`.
#[derive(Clone, Debug, Default)]
pub struct Find {
    pub filter: Value,
    pub projection: Option<Value>,
    pub sort: Option<Value>,
    pub limit: Option<u32>,
    pub skip: Option<u32>,
}

impl Find {
    pub fn filter(filter: Value) -> Self {
        Self { filter, ..Self::default() }
    }
    pub fn sort(mut self, sort: Value) -> Self {
        self.sort = Some(sort);
        self
    }
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }
    pub fn project(mut self, p: Value) -> Self {
        self.projection = Some(p);
        self
    }
}

/// The answer to `updateOne`/`updateMany`/`replaceOne`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateResult {
    pub matched: u64,
    pub modified: u64,
    pub upserted_id: Option<Value>,
}

pub struct DataApi<'a, H> {
    http: &'a H,
    cfg: &'a DataApiConfig,
}

impl<'a, H: Http> DataApi<'a, H> {
    pub fn new(http: &'a H, cfg: &'a DataApiConfig) -> Self {
        Self { http, cfg }
    }

    /// One action: `POST <url>/action/<action>` with the common fields.
    async fn action(&self, action: &str, collection: &str, fields: Value) -> Result<Value, UpstreamError> {
        let mut body = Map::new();
        body.insert("dataSource".into(), json!(self.cfg.data_source));
        body.insert("database".into(), json!(self.cfg.database));
        body.insert("collection".into(), json!(collection));
        if let Value::Object(extra) = fields {
            body.extend(extra);
        }
        let body = Value::Object(body);
        let resp = Call {
            system: System::DataApi,
            method: "POST",
            url: format!("{}/action/{action}", self.cfg.url),
            headers: vec![
                ("api-key".into(), self.cfg.key.clone()),
                // Canonical EJSON back, so ObjectIds and dates keep their types.
                ("accept".into(), "application/ejson".into()),
            ],
            body: Some(&body),
            timeout: self.cfg.timeout,
        }
        .send(self.http)
        .await?;
        let parsed: Option<Value> = serde_json::from_slice(&resp.body).ok();
        if resp.status != 200 {
            let reason = parsed
                .as_ref()
                .and_then(|v| v.get("error"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| excerpt(&resp.body));
            return Err(UpstreamError::new(System::DataApi, UpstreamFailure::Status { status: resp.status, reason }));
        }
        parsed.ok_or_else(|| bad(format!("{action}: invalid JSON")))
    }

    pub async fn find_one(&self, collection: &str, filter: Value, projection: Option<Value>) -> Result<Option<Value>, UpstreamError> {
        let mut f = json!({ "filter": filter });
        if let Some(p) = projection {
            f["projection"] = p;
        }
        let v = self.action("findOne", collection, f).await?;
        match v.get("document") {
            Some(Value::Null) | None => Ok(None),
            Some(doc) => Ok(Some(doc.clone())),
        }
    }

    /// `findOne`, decoded into a typed view of the document.
    pub async fn find_one_as<T: DeserializeOwned>(&self, collection: &str, filter: Value) -> Result<Option<(T, Value)>, UpstreamError> {
        match self.find_one(collection, filter, None).await? {
            None => Ok(None),
            Some(doc) => Ok(Some((decode(collection, &doc)?, doc))),
        }
    }

    pub async fn find(&self, collection: &str, q: Find) -> Result<Vec<Value>, UpstreamError> {
        let mut f = json!({ "filter": q.filter });
        if let Some(p) = q.projection {
            f["projection"] = p;
        }
        if let Some(s) = q.sort {
            f["sort"] = s;
        }
        if let Some(l) = q.limit {
            f["limit"] = json!(l);
        }
        if let Some(s) = q.skip {
            f["skip"] = json!(s);
        }
        let v = self.action("find", collection, f).await?;
        documents(v)
    }

    pub async fn insert_one(&self, collection: &str, document: Value) -> Result<Value, UpstreamError> {
        let v = self.action("insertOne", collection, json!({ "document": document })).await?;
        v.get("insertedId").cloned().ok_or_else(|| bad("insertOne: no insertedId".into()))
    }

    pub async fn insert_many(&self, collection: &str, documents: Vec<Value>) -> Result<Vec<Value>, UpstreamError> {
        let v = self.action("insertMany", collection, json!({ "documents": documents })).await?;
        match v.get("insertedIds") {
            Some(Value::Array(ids)) => Ok(ids.clone()),
            _ => Err(bad("insertMany: no insertedIds".into())),
        }
    }

    pub async fn update_one(&self, collection: &str, filter: Value, update: Value, upsert: bool) -> Result<UpdateResult, UpstreamError> {
        let v = self.action("updateOne", collection, json!({ "filter": filter, "update": update, "upsert": upsert })).await?;
        update_result(v)
    }

    pub async fn update_many(&self, collection: &str, filter: Value, update: Value) -> Result<UpdateResult, UpstreamError> {
        let v = self.action("updateMany", collection, json!({ "filter": filter, "update": update })).await?;
        update_result(v)
    }

    pub async fn replace_one(&self, collection: &str, filter: Value, replacement: Value, upsert: bool) -> Result<UpdateResult, UpstreamError> {
        let v = self
            .action("replaceOne", collection, json!({ "filter": filter, "replacement": replacement, "upsert": upsert }))
            .await?;
        update_result(v)
    }

    pub async fn delete_one(&self, collection: &str, filter: Value) -> Result<u64, UpstreamError> {
        let v = self.action("deleteOne", collection, json!({ "filter": filter })).await?;
        count(&v, "deletedCount")
    }

    pub async fn delete_many(&self, collection: &str, filter: Value) -> Result<u64, UpstreamError> {
        let v = self.action("deleteMany", collection, json!({ "filter": filter })).await?;
        count(&v, "deletedCount")
    }

    pub async fn aggregate(&self, collection: &str, pipeline: Vec<Value>) -> Result<Vec<Value>, UpstreamError> {
        let v = self.action("aggregate", collection, json!({ "pipeline": pipeline })).await?;
        documents(v)
    }
}

fn bad(msg: String) -> UpstreamError {
    UpstreamError::new(System::DataApi, UpstreamFailure::BadResponse(msg))
}

/// Decodes a stored document into a typed view, or names the collection
/// whose document did not fit.
pub fn decode<T: DeserializeOwned>(collection: &str, doc: &Value) -> Result<T, UpstreamError> {
    serde_json::from_value(doc.clone()).map_err(|e| bad(format!("a document in `{collection}` does not fit its model: {e}")))
}

fn documents(v: Value) -> Result<Vec<Value>, UpstreamError> {
    match v {
        Value::Object(mut m) => match m.remove("documents") {
            Some(Value::Array(docs)) => Ok(docs),
            _ => Err(bad("no documents array".into())),
        },
        _ => Err(bad("not an object".into())),
    }
}

/// A count in either JSON (`3`) or canonical EJSON (`{"$numberInt": "3"}`).
fn count(v: &Value, key: &str) -> Result<u64, UpstreamError> {
    crate::ejson::int(v.get(key).unwrap_or(&Value::Null))
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| bad(format!("no {key}")))
}

fn update_result(v: Value) -> Result<UpdateResult, UpstreamError> {
    Ok(UpdateResult {
        matched: count(&v, "matchedCount")?,
        modified: count(&v, "modifiedCount")?,
        upserted_id: v.get("upsertedId").cloned(),
    })
}

/// The ObjectId in an `insertedId`/`upsertedId` (EJSON or JSON mode).
pub fn object_id(v: &Value) -> Option<ObjectId> {
    serde_json::from_value(v.clone()).ok()
}
