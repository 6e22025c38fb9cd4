//! Typed client of the Data API (docs/upstreams.md, Data API): every action,
//! canonical Extended JSON both ways, the error envelope mapped to an
//! [`UpstreamError`].
//!
//! Filters and updates are built by the domain from typed values only;
//! this client never sees a raw request string.

use serde::de::DeserializeOwned;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{json, Value};

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

/// A sort direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Asc,
    Desc,
}

/// A sort specification (`sort` of `find`, a `$sort` stage): keys in the
/// order given. MongoDB sorts by the first key, then the next, so the order
/// is the meaning. A `serde_json::Map` keeps keys alphabetically unless
/// every build remembers `preserve_order` (the components are built without
/// it), so a sort never becomes a `Value`: it serialises its own list, in
/// order, straight into the request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sort(Vec<(&'static str, Dir)>);

impl Sort {
    pub fn asc(field: &'static str) -> Self {
        Self(vec![(field, Dir::Asc)])
    }
    pub fn desc(field: &'static str) -> Self {
        Self(vec![(field, Dir::Desc)])
    }
    pub fn then_asc(self, field: &'static str) -> Self {
        self.then(field, Dir::Asc)
    }
    pub fn then_desc(self, field: &'static str) -> Self {
        self.then(field, Dir::Desc)
    }
    fn then(mut self, field: &'static str, dir: Dir) -> Self {
        // A repeated key would reach MongoDB as a JSON object with a
        // duplicate name: a bug in the code that built it.
        assert!(self.0.iter().all(|(f, _)| *f != field), "sort key `{field}` given twice");
        self.0.push((field, dir));
        self
    }
    /// The lists' order (docs/api.md): newest `createdAt` first; `_id`
    /// descending breaks ties so equal times still have one order.
    pub fn newest_first() -> Self {
        Self::desc("createdAt").then_desc("_id")
    }
}

impl Serialize for Sort {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (field, dir) in &self.0 {
            m.serialize_entry(field, &if *dir == Dir::Asc { 1 } else { -1 })?;
        }
        m.end()
    }
}

/// One aggregation stage. Stages whose key order matters hold typed values
/// (a `$sort` holds a [`Sort`]), so a pipeline cannot lose that order.
#[derive(Clone, Debug)]
pub enum Stage {
    Match(Value),
    Limit(u32),
    Sort(Sort),
    /// `$lookup` by equality: `from`, `localField`, `foreignField`, `as`.
    Lookup {
        from: &'static str,
        local_field: &'static str,
        foreign_field: &'static str,
        as_field: &'static str,
    },
    /// `$lookup` by equality whose joined documents then pass through
    /// `pipeline` (MongoDB 5.0's concise correlated form): the join uses
    /// the foreign field's index and only the pipeline's output is embedded.
    LookupPipeline {
        from: &'static str,
        local_field: &'static str,
        foreign_field: &'static str,
        pipeline: Vec<Stage>,
        as_field: &'static str,
    },
    /// `$group`: `_id` and accumulators (their order does not matter).
    Group(Value),
    /// `$project` (its field order is the output's only).
    Project(Value),
    /// `$addFields`.
    AddFields(Value),
    /// `$unwind` of a field path (`"$field"`).
    Unwind(&'static str),
    /// `$replaceRoot` with the document at a field path (`"$field"`).
    ReplaceRoot(&'static str),
    /// `$facet`: named sub-pipelines over the same input, in the order given.
    Facet(Vec<(&'static str, Vec<Stage>)>),
}

impl Serialize for Stage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        match self {
            Stage::Match(filter) => m.serialize_entry("$match", filter)?,
            Stage::Limit(n) => m.serialize_entry("$limit", n)?,
            Stage::Sort(sort) => m.serialize_entry("$sort", sort)?,
            Stage::Lookup { from, local_field, foreign_field, as_field } => m.serialize_entry(
                "$lookup",
                &json!({ "from": from, "localField": local_field, "foreignField": foreign_field, "as": as_field }),
            )?,
            Stage::LookupPipeline { from, local_field, foreign_field, pipeline, as_field } => {
                #[derive(Serialize)]
                #[serde(rename_all = "camelCase")]
                struct Spec<'a> {
                    from: &'a str,
                    local_field: &'a str,
                    foreign_field: &'a str,
                    pipeline: &'a [Stage],
                    #[serde(rename = "as")]
                    as_field: &'a str,
                }
                m.serialize_entry("$lookup", &Spec { from, local_field, foreign_field, pipeline, as_field })?
            }
            Stage::Group(spec) => m.serialize_entry("$group", spec)?,
            Stage::Project(spec) => m.serialize_entry("$project", spec)?,
            Stage::AddFields(spec) => m.serialize_entry("$addFields", spec)?,
            Stage::Unwind(path) => m.serialize_entry("$unwind", path)?,
            Stage::ReplaceRoot(path) => m.serialize_entry("$replaceRoot", &json!({ "newRoot": path }))?,
            Stage::Facet(facets) => m.serialize_entry("$facet", &Facets(facets))?,
        }
        m.end()
    }
}

/// The sub-pipelines of a `$facet`, serialised in the order given.
struct Facets<'a>(&'a [(&'static str, Vec<Stage>)]);

impl Serialize for Facets<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (name, stages) in self.0 {
            m.serialize_entry(name, stages)?;
        }
        m.end()
    }
}

/// Options of `find`, serialised as the action's fields.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Find {
    pub filter: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projection: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort: Option<Sort>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip: Option<u32>,
}

impl Find {
    pub fn filter(filter: Value) -> Self {
        Self { filter, ..Self::default() }
    }
    pub fn sort(mut self, sort: Sort) -> Self {
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

/// A request body: the common fields, then the action's own, serialised
/// directly (never through a `Value`) so typed fields keep their order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ActionBody<'a, F> {
    data_source: &'a str,
    database: &'a str,
    collection: &'a str,
    #[serde(flatten)]
    fields: &'a F,
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
    async fn action<F: Serialize>(&self, action: &str, collection: &str, fields: &F) -> Result<Value, UpstreamError> {
        let body = ActionBody { data_source: &self.cfg.data_source, database: &self.cfg.database, collection, fields };
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
        let v = self.action("findOne", collection, &f).await?;
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
        documents(self.action("find", collection, &q).await?)
    }

    pub async fn insert_one(&self, collection: &str, document: Value) -> Result<Value, UpstreamError> {
        let v = self.action("insertOne", collection, &json!({ "document": document })).await?;
        v.get("insertedId").cloned().ok_or_else(|| bad("insertOne: no insertedId".into()))
    }

    pub async fn update_one(&self, collection: &str, filter: Value, update: Value, upsert: bool) -> Result<UpdateResult, UpstreamError> {
        let v = self.action("updateOne", collection, &json!({ "filter": filter, "update": update, "upsert": upsert })).await?;
        update_result(v)
    }

    /// Inserts `document` unless a document matching `key` exists, in one
    /// write: an upsert that only sets on insert. Of concurrent inserts of
    /// one key the database lets one in (the emulator's writes are serial;
    /// a real MongoDB needs a unique index on the key for that). `false`:
    /// the key was taken and nothing was written.
    pub async fn insert_unless_exists(&self, collection: &str, key: Value, document: Value) -> Result<bool, UpstreamError> {
        Ok(self.update_one(collection, key, json!({ "$setOnInsert": document }), true).await?.upserted_id.is_some())
    }

    pub async fn update_many(&self, collection: &str, filter: Value, update: Value) -> Result<UpdateResult, UpstreamError> {
        let v = self.action("updateMany", collection, &json!({ "filter": filter, "update": update })).await?;
        update_result(v)
    }

    pub async fn replace_one(
        &self,
        collection: &str,
        filter: Value,
        replacement: Value,
        upsert: bool,
    ) -> Result<UpdateResult, UpstreamError> {
        let v = self.action("replaceOne", collection, &json!({ "filter": filter, "replacement": replacement, "upsert": upsert })).await?;
        update_result(v)
    }

    pub async fn delete_one(&self, collection: &str, filter: Value) -> Result<u64, UpstreamError> {
        let v = self.action("deleteOne", collection, &json!({ "filter": filter })).await?;
        count(&v, "deletedCount")
    }

    pub async fn aggregate(&self, collection: &str, pipeline: &[Stage]) -> Result<Vec<Value>, UpstreamError> {
        #[derive(Serialize)]
        struct Fields<'a> {
            pipeline: &'a [Stage],
        }
        let v = self.action("aggregate", collection, &Fields { pipeline }).await?;
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
    crate::ejson::int(v.get(key).unwrap_or(&Value::Null)).and_then(|n| u64::try_from(n).ok()).ok_or_else(|| bad(format!("no {key}")))
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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::time::Duration;

    use super::*;
    use crate::ports::{InboundResponse, OutboundRequest, TransportError};

    /// Records each request body and answers with an empty result.
    #[derive(Default)]
    struct Recorder(RefCell<Vec<String>>);

    impl Http for Recorder {
        async fn send(&self, req: OutboundRequest) -> Result<InboundResponse, TransportError> {
            self.0.borrow_mut().push(String::from_utf8(req.body).expect("UTF-8 body"));
            Ok(InboundResponse { status: 200, body: br#"{"documents": []}"#.to_vec(), ..Default::default() })
        }
    }

    fn sent(call: impl FnOnce(&DataApi<'_, Recorder>) -> Vec<Value>) -> String {
        let http = Recorder::default();
        let cfg = DataApiConfig {
            url: "http://db".into(),
            key: "k".into(),
            data_source: "src".into(),
            database: "db".into(),
            timeout: Duration::from_secs(1),
        };
        call(&DataApi::new(&http, &cfg));
        let bodies = http.0.into_inner();
        assert_eq!(bodies.len(), 1);
        bodies.into_iter().next().expect("one body")
    }

    // These run without serde_json's `preserve_order` (as the components
    // are built): a sort that went through a `Map` would come out
    // `{"_id":-1,"createdAt":-1}`.
    #[test]
    fn a_sort_serialises_in_the_order_given() {
        assert_eq!(serde_json::to_string(&Sort::newest_first()).unwrap(), r#"{"createdAt":-1,"_id":-1}"#);
        assert_eq!(serde_json::to_string(&Sort::asc("z").then_desc("a").then_asc("m")).unwrap(), r#"{"z":1,"a":-1,"m":1}"#);
    }

    #[test]
    fn find_sends_its_sort_in_order() {
        let body =
            sent(|db| futures::executor::block_on(db.find("users", Find::filter(json!({})).sort(Sort::newest_first()).limit(5))).unwrap());
        assert!(body.contains(r#""sort":{"createdAt":-1,"_id":-1}"#), "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["collection"], json!("users"));
        assert_eq!(v["limit"], json!(5));
        assert!(v.get("projection").is_none() && v.get("skip").is_none(), "{body}");
    }

    #[test]
    fn a_sort_stage_keeps_its_order_in_a_pipeline() {
        let body = sent(|db| {
            let pipeline = [Stage::Match(json!({ "a": 1 })), Stage::Sort(Sort::desc("seats").then_asc("_id")), Stage::Limit(3)];
            futures::executor::block_on(db.aggregate("tenants", &pipeline)).unwrap()
        });
        assert!(body.contains(r#""pipeline":[{"$match":{"a":1}},{"$sort":{"seats":-1,"_id":1}},{"$limit":3}]"#), "{body}");
    }

    #[test]
    fn nested_stages_keep_their_order_inside_facets_and_lookups() {
        let body = sent(|db| {
            let inner = vec![Stage::Sort(Sort::desc("m").then_asc("_id")), Stage::Limit(1)];
            let pipeline = [
                Stage::LookupPipeline {
                    from: "users",
                    local_field: "_id",
                    foreign_field: "tenantIds",
                    pipeline: vec![Stage::Unwind("$x")],
                    as_field: "u",
                },
                Stage::Facet(vec![("z", inner), ("a", vec![Stage::Group(json!({ "_id": null }))])]),
            ];
            futures::executor::block_on(db.aggregate("tenants", &pipeline)).unwrap()
        });
        assert!(
            body.contains(
                r#"{"$lookup":{"from":"users","localField":"_id","foreignField":"tenantIds","pipeline":[{"$unwind":"$x"}],"as":"u"}}"#
            ),
            "{body}"
        );
        assert!(body.contains(r#"{"$facet":{"z":[{"$sort":{"m":-1,"_id":1}},{"$limit":1}],"a":[{"$group":{"_id":null}}]}}"#), "{body}");
    }

    #[test]
    fn an_insert_unless_exists_is_an_upsert_that_only_sets_on_insert() {
        let body = sent(|db| {
            // The recorder's answer is no update result; only the request matters here.
            let _ = futures::executor::block_on(db.insert_unless_exists("users", json!({ "k": "a" }), json!({ "k": "a", "n": 1 })));
            vec![]
        });
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (&v["filter"], &v["update"], &v["upsert"]),
            (&json!({ "k": "a" }), &json!({ "$setOnInsert": { "k": "a", "n": 1 } }), &json!(true))
        );
    }

    #[test]
    #[should_panic(expected = "given twice")]
    fn a_repeated_sort_key_is_a_bug() {
        let _ = Sort::desc("createdAt").then_asc("createdAt");
    }
}
