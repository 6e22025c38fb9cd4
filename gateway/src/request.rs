//! Data API request bodies as typed requests: the action, its namespace and
//! its fields, checked once here for every backend ("parse, don't
//! validate"). Query semantics (operators, update modifiers, stages) are the
//! backend's: MongoDB's own rules, answered by the database or the engine.

use bson::{Bson, Document};

use crate::ejson::type_name;
use crate::ApiError;

/// Default `limit` of `find` (the hosted Data API's).
pub const FIND_DEFAULT_LIMIT: usize = 1000;
/// Most documents one `find` or `aggregate` response carries (the hosted Data API's limit).
pub const MAX_RESULT_DOCUMENTS: usize = 50_000;

/// A Data API action (`POST …/action/<name>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    FindOne,
    Find,
    InsertOne,
    InsertMany,
    UpdateOne,
    UpdateMany,
    ReplaceOne,
    DeleteOne,
    DeleteMany,
    Aggregate,
}

impl Action {
    pub const ALL: [Action; 10] = [
        Action::FindOne,
        Action::Find,
        Action::InsertOne,
        Action::InsertMany,
        Action::UpdateOne,
        Action::UpdateMany,
        Action::ReplaceOne,
        Action::DeleteOne,
        Action::DeleteMany,
        Action::Aggregate,
    ];

    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::FindOne => "findOne",
            Action::Find => "find",
            Action::InsertOne => "insertOne",
            Action::InsertMany => "insertMany",
            Action::UpdateOne => "updateOne",
            Action::UpdateMany => "updateMany",
            Action::ReplaceOne => "replaceOne",
            Action::DeleteOne => "deleteOne",
            Action::DeleteMany => "deleteMany",
            Action::Aggregate => "aggregate",
        }
    }

    /// Whether the action can change the database.
    pub fn writes(self) -> bool {
        !matches!(self, Action::FindOne | Action::Find | Action::Aggregate)
    }

    /// The body fields this action takes besides `dataSource`, `database`, `collection`.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Action::FindOne => &["filter", "projection"],
            Action::Find => &["filter", "projection", "sort", "limit", "skip"],
            Action::InsertOne => &["document"],
            Action::InsertMany => &["documents"],
            Action::UpdateOne | Action::UpdateMany => &["filter", "update", "upsert"],
            Action::ReplaceOne => &["filter", "replacement", "upsert"],
            Action::DeleteOne | Action::DeleteMany => &["filter"],
            Action::Aggregate => &["pipeline"],
        }
    }
}

/// Where an action runs. `dataSource` names the cluster in the hosted
/// service; a gateway fronts one deployment, so it is required but not used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    pub data_source: String,
    pub database: String,
    pub collection: String,
}

/// One checked request: the namespace and the action's typed fields.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionRequest {
    pub ns: Namespace,
    pub op: Op,
}

/// How many documents `find` returns: the contract's default and cap applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit(usize);

impl Limit {
    /// `None` → 1000; `0` → no limit, i.e. the 50,000 cap; `n` → `min(n, 50,000)`.
    pub fn from_request(n: Option<u64>) -> Limit {
        Limit(match n {
            None => FIND_DEFAULT_LIMIT,
            Some(0) => MAX_RESULT_DOCUMENTS,
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX).min(MAX_RESULT_DOCUMENTS),
        })
    }
    pub fn get(self) -> usize {
        self.0
    }
}

/// The action's fields. Absent optional documents are empty (`{}`).
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    FindOne {
        filter: Document,
        projection: Document,
    },
    Find {
        filter: Document,
        projection: Document,
        sort: Document,
        skip: u64,
        limit: Limit,
    },
    InsertOne {
        document: Document,
    },
    /// Never empty.
    InsertMany {
        documents: Vec<Document>,
    },
    /// `updateOne` (`many: false`) and `updateMany`; `update` holds update operators.
    Update {
        many: bool,
        filter: Document,
        update: Document,
        upsert: bool,
    },
    ReplaceOne {
        filter: Document,
        replacement: Document,
        upsert: bool,
    },
    Delete {
        many: bool,
        filter: Document,
    },
    Aggregate {
        pipeline: Vec<Document>,
    },
}

impl ActionRequest {
    /// Checks a decoded body for `action`: known fields only, the namespace,
    /// and each field's type.
    pub fn parse(action: Action, body: &Document) -> Result<ActionRequest, ApiError> {
        if let Some(k) =
            body.keys().find(|k| !matches!(k.as_str(), "dataSource" | "database" | "collection") && !action.fields().contains(&k.as_str()))
        {
            return Err(ApiError::invalid(format!("unknown field '{k}' for action {}", action.name())));
        }
        let ns = Namespace {
            data_source: required_string(body, "dataSource")?,
            database: required_string(body, "database")?,
            collection: required_string(body, "collection")?,
        };
        check_names(&ns.database, &ns.collection)?;
        let op = match action {
            Action::FindOne => Op::FindOne { filter: optional_doc(body, "filter")?, projection: optional_doc(body, "projection")? },
            Action::Find => Op::Find {
                filter: optional_doc(body, "filter")?,
                projection: optional_doc(body, "projection")?,
                sort: optional_doc(body, "sort")?,
                skip: optional_count(body, "skip")?.unwrap_or(0),
                limit: Limit::from_request(optional_count(body, "limit")?),
            },
            Action::InsertOne => Op::InsertOne { document: required_doc(body, "document")? },
            Action::InsertMany => {
                let documents = required_docs(body, "documents")?;
                if documents.is_empty() {
                    return Err(ApiError::invalid("'documents' must not be empty"));
                }
                Op::InsertMany { documents }
            }
            Action::UpdateOne | Action::UpdateMany => {
                let filter = required_doc(body, "filter")?;
                if let Some(Bson::Array(_)) = body.get("update") {
                    return Err(ApiError::invalid("pipeline-style updates are not supported; use update operators"));
                }
                let update = required_doc(body, "update")?;
                Op::Update { many: action == Action::UpdateMany, filter, update, upsert: optional_bool(body, "upsert")? }
            }
            Action::ReplaceOne => Op::ReplaceOne {
                filter: required_doc(body, "filter")?,
                replacement: required_doc(body, "replacement")?,
                upsert: optional_bool(body, "upsert")?,
            },
            Action::DeleteOne | Action::DeleteMany => {
                Op::Delete { many: action == Action::DeleteMany, filter: required_doc(body, "filter")? }
            }
            Action::Aggregate => Op::Aggregate { pipeline: required_docs(body, "pipeline")? },
        };
        refuse_blocked(&op)?;
        Ok(ActionRequest { ns, op })
    }

    pub fn action(&self) -> Action {
        match &self.op {
            Op::FindOne { .. } => Action::FindOne,
            Op::Find { .. } => Action::Find,
            Op::InsertOne { .. } => Action::InsertOne,
            Op::InsertMany { .. } => Action::InsertMany,
            Op::Update { many: false, .. } => Action::UpdateOne,
            Op::Update { many: true, .. } => Action::UpdateMany,
            Op::ReplaceOne { .. } => Action::ReplaceOne,
            Op::Delete { many: false, .. } => Action::DeleteOne,
            Op::Delete { many: true, .. } => Action::DeleteMany,
            Op::Aggregate { .. } => Action::Aggregate,
        }
    }
}

/// Operators a gateway refuses anywhere in a request: server-side
/// JavaScript (system-only in the hosted service too, docs/upstreams.md), so
/// an API key never runs code in the database.
const BLOCKED_OPERATORS: [&str; 3] = ["$where", "$function", "$accumulator"];
/// Stages that write elsewhere: an `aggregate` only reads.
const BLOCKED_STAGES: [&str; 2] = ["$out", "$merge"];
/// Stages that read outside the request's collections (other databases, the
/// server's sessions and operations, change streams, literal documents that
/// stand in for a collection) or the server's internals (statistics, plan
/// caches, sharding, query settings): refused for every key, whatever its
/// rights, so that the rights of [`crate::Policy`] are the whole story of what
/// a key reads. `$_…` (the server's internal stages) are refused alike.
pub const DENIED_STAGES: [&str; 18] = [
    "$currentOp",
    "$listSessions",
    "$listLocalSessions",
    "$collStats",
    "$indexStats",
    "$planCacheStats",
    "$changeStream",
    "$documents",
    "$listSearchIndexes",
    "$shardedDataDistribution",
    "$querySettings",
    "$listSampledQueries",
    "$listCatalog",
    "$listClusterCatalog",
    "$queryStats",
    "$listCachedAndActiveUsers",
    "$backupCursor",
    "$backupCursorExtend",
];

/// Refuses what no key may ask for: server-side JavaScript anywhere, and in
/// a pipeline (its sub-pipelines included: `$facet`, `$lookup`, `$unionWith`,
/// found wherever the key appears) writing and denied stages, and a
/// `$lookup`/`$graphLookup`/`$unionWith` whose collection is not a plain
/// collection name of the request's database.
fn refuse_blocked(op: &Op) -> Result<(), ApiError> {
    fn scan(d: &Document, pipeline: bool) -> Result<(), ApiError> {
        d.iter().try_for_each(|(k, v)| {
            let k = k.as_str();
            if BLOCKED_OPERATORS.contains(&k) {
                return Err(ApiError::invalid(format!("{k} is not allowed through the Data API")));
            }
            if pipeline {
                if BLOCKED_STAGES.contains(&k) {
                    return Err(ApiError::invalid(format!("{k} is not allowed through the Data API: aggregate only reads")));
                }
                if DENIED_STAGES.contains(&k) || k.starts_with("$_") {
                    return Err(ApiError::invalid(format!(
                        "{k} is not allowed through the Data API: it reads outside the collections of the request's database or the server's internals"
                    )));
                }
                check_foreign_collection(k, v)?;
            }
            scan_value(v, pipeline)
        })
    }
    fn scan_value(b: &Bson, pipeline: bool) -> Result<(), ApiError> {
        match b {
            Bson::Document(d) => scan(d, pipeline),
            Bson::Array(items) => items.iter().try_for_each(|it| scan_value(it, pipeline)),
            _ => Ok(()),
        }
    }
    let (docs, pipeline): (Vec<&Document>, bool) = match op {
        Op::FindOne { filter, projection } => (vec![filter, projection], false),
        Op::Find { filter, projection, sort, .. } => (vec![filter, projection, sort], false),
        Op::InsertOne { .. } | Op::InsertMany { .. } => (vec![], false),
        Op::Update { filter, update, .. } => (vec![filter, update], false),
        Op::ReplaceOne { filter, .. } => (vec![filter], false),
        Op::Delete { filter, .. } => (vec![filter], false),
        Op::Aggregate { pipeline } => (pipeline.iter().collect(), true),
    };
    docs.into_iter().try_for_each(|d| scan(d, pipeline))
}

/// The collection a `$lookup`/`$graphLookup` (`from`) or `$unionWith` (a
/// string, or `coll`) reads must be a collection name, in the request's
/// database: MongoDB's `{db, coll}` form and system collections are refused.
/// Absent is left to the server (a `$lookup` on `$documents` reads none).
fn check_foreign_collection(stage: &str, spec: &Bson) -> Result<(), ApiError> {
    let (field, target) = match (stage, spec) {
        ("$lookup" | "$graphLookup", Bson::Document(d)) => ("from", d.get("from")),
        ("$unionWith", Bson::Document(d)) => ("coll", d.get("coll")),
        ("$unionWith", name) => ("coll", Some(name)),
        _ => return Ok(()),
    };
    match target {
        None => Ok(()),
        Some(Bson::String(name)) if collection_name_problem(name).is_none() => Ok(()),
        Some(Bson::String(name)) => Err(ApiError::invalid(format!("invalid collection name '{name}' in {stage}"))),
        Some(other) => Err(ApiError::invalid(format!(
            "{stage} '{field}' must be the name of a collection of the request's database, found {}",
            type_name(other)
        ))),
    }
}

fn required_string(body: &Document, key: &str) -> Result<String, ApiError> {
    match body.get(key) {
        Some(Bson::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Bson::String(_)) => Err(ApiError::invalid(format!("'{key}' must not be empty"))),
        Some(other) => Err(ApiError::invalid(format!("'{key}' must be a string, found {}", type_name(other)))),
        None => Err(ApiError::missing(format!("must specify '{key}'"))),
    }
}

fn optional_doc(body: &Document, key: &str) -> Result<Document, ApiError> {
    match body.get(key) {
        None => Ok(Document::new()),
        Some(Bson::Document(d)) => Ok(d.clone()),
        Some(other) => Err(ApiError::invalid(format!("'{key}' must be an object, found {}", type_name(other)))),
    }
}

fn required_doc(body: &Document, key: &str) -> Result<Document, ApiError> {
    match body.get(key) {
        None => Err(ApiError::missing(format!("must specify '{key}'"))),
        Some(_) => optional_doc(body, key),
    }
}

/// A required array of objects (`documents`, `pipeline`).
fn required_docs(body: &Document, key: &str) -> Result<Vec<Document>, ApiError> {
    match body.get(key) {
        None => Err(ApiError::missing(format!("must specify '{key}'"))),
        Some(Bson::Array(items)) => items
            .iter()
            .map(|it| match it {
                Bson::Document(d) => Ok(d.clone()),
                other => Err(ApiError::invalid(format!("'{key}' entries must be objects, found {}", type_name(other)))),
            })
            .collect(),
        Some(other) => Err(ApiError::invalid(format!("'{key}' must be an array, found {}", type_name(other)))),
    }
}

/// A non-negative integer: Int32, Int64, or an integral double or decimal.
fn optional_count(body: &Document, key: &str) -> Result<Option<u64>, ApiError> {
    let Some(v) = body.get(key) else { return Ok(None) };
    let n = match v {
        Bson::Int32(n) => u64::try_from(*n).ok(),
        Bson::Int64(n) => u64::try_from(*n).ok(),
        Bson::Double(f) if f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64 => Some(*f as u64),
        Bson::Decimal128(d) => d.to_string().parse::<u64>().ok(),
        _ => None,
    };
    n.map(Some).ok_or_else(|| ApiError::invalid(format!("'{key}' must be a non-negative integer, found {v}")))
}

fn optional_bool(body: &Document, key: &str) -> Result<bool, ApiError> {
    match body.get(key) {
        None => Ok(false),
        Some(Bson::Boolean(b)) => Ok(*b),
        Some(other) => Err(ApiError::invalid(format!("'{key}' must be a boolean, found {}", type_name(other)))),
    }
}

/// MongoDB's naming rules for databases and collections: the one copy,
/// which the emulator's wire listener applies too.
pub fn check_names(db: &str, coll: &str) -> Result<(), ApiError> {
    if db.is_empty() || db.len() >= 64 || db.chars().any(|c| matches!(c, '/' | '\\' | '.' | ' ' | '"' | '$' | '\0')) {
        return Err(ApiError::invalid(format!("invalid database name '{db}'")));
    }
    if collection_name_problem(coll).is_some() {
        return Err(ApiError::invalid(format!("invalid collection name '{coll}'")));
    }
    Ok(())
}

/// Why MongoDB would refuse `coll` as a collection name, if it would (the
/// length of the whole namespace is left to the server).
pub fn collection_name_problem(coll: &str) -> Option<&'static str> {
    if coll.is_empty() {
        Some("it is empty")
    } else if coll.starts_with("system.") {
        Some("'system.' is reserved")
    } else if coll.contains('$') {
        Some("it contains '$'")
    } else if coll.contains('\0') {
        Some("it contains a NUL character")
    } else if coll.starts_with('.') {
        Some("it starts with '.'")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn body(extra: Document) -> Document {
        let mut b = doc! {"dataSource": "x", "database": "db", "collection": "c"};
        b.extend(extra);
        b
    }

    #[test]
    fn find_limits_follow_the_contract() {
        let limit = |d: Document| match ActionRequest::parse(Action::Find, &body(d)).unwrap().op {
            Op::Find { limit, .. } => limit.get(),
            other => panic!("{other:?}"),
        };
        assert_eq!(limit(doc! {}), 1000);
        assert_eq!(limit(doc! {"limit": 0}), 50_000);
        assert_eq!(limit(doc! {"limit": 7_i64}), 7);
        assert_eq!(limit(doc! {"limit": 3.0}), 3);
        assert_eq!(limit(doc! {"limit": 1_000_000}), 50_000);
        for bad in [doc! {"limit": -1}, doc! {"limit": 1.5}, doc! {"limit": "3"}, doc! {"skip": -2_i64}] {
            let e = ActionRequest::parse(Action::Find, &body(bad.clone())).unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (400, "InvalidParameter"), "{bad}");
        }
    }

    #[test]
    fn fields_and_names_are_checked_before_any_backend() {
        let e = ActionRequest::parse(Action::FindOne, &body(doc! {"limit": 1})).unwrap_err();
        assert!(e.message.contains("unknown field 'limit'"), "{e}");
        let e = ActionRequest::parse(Action::InsertOne, &doc! {"database": "db", "collection": "c", "document": {}}).unwrap_err();
        assert_eq!(e.code, "MissingParameter");
        for (db, coll) in [("a.b", "c"), ("a b", "c"), (&"d".repeat(64)[..], "c"), ("db", "system.users"), ("db", "a$b")] {
            let b = doc! {"dataSource": "x", "database": db, "collection": coll, "filter": {}};
            assert_eq!(ActionRequest::parse(Action::DeleteOne, &b).unwrap_err().code, "InvalidParameter", "{db}.{coll}");
        }
        let e = ActionRequest::parse(Action::InsertMany, &body(doc! {"documents": []})).unwrap_err();
        assert_eq!(e.code, "InvalidParameter");
        let e = ActionRequest::parse(Action::Aggregate, &body(doc! {"pipeline": [{"$match": {}}, 5]})).unwrap_err();
        assert!(e.message.contains("entries must be objects"), "{e}");
        for (action, b) in [
            (Action::DeleteMany, doc! {"filter": {"$where": "true"}}),
            (Action::Find, doc! {"filter": {"$and": [{"a": 1}, {"$where": "sleep(1000)"}]}}),
            (Action::Aggregate, doc! {"pipeline": [{"$group": {"_id": null, "x": {"$accumulator": {}}}}]}),
            (Action::Aggregate, doc! {"pipeline": [{"$match": {}}, {"$merge": "other"}]}),
        ] {
            let e = ActionRequest::parse(action, &body(b.clone())).unwrap_err();
            assert!(e.message.contains("not allowed"), "{b}: {e}");
        }
        let r = ActionRequest::parse(Action::UpdateMany, &body(doc! {"filter": {}, "update": {"$set": {"a": 1}}, "upsert": true})).unwrap();
        assert_eq!(r.action(), Action::UpdateMany);
        assert_eq!(r.op, Op::Update { many: true, filter: doc! {}, update: doc! {"$set": {"a": 1}}, upsert: true });
    }

    #[test]
    fn stages_that_reach_beyond_collections_are_refused_for_everyone_nested_too() {
        let refused = |pipeline: Bson| {
            let e = ActionRequest::parse(Action::Aggregate, &body(doc! {"pipeline": pipeline.clone()})).unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (400, "InvalidParameter"), "{pipeline}");
            e.message
        };
        for stage in DENIED_STAGES.iter().chain(["$_internalUnpackBucket"].iter()) {
            let spec = Bson::Document(doc! {*stage: {}});
            for pipeline in [
                bson::bson!([spec.clone()]),
                bson::bson!([{"$match": {}}, {"$facet": {"a": [{"$match": {}}], "b": [spec.clone()]}}]),
                bson::bson!([{"$lookup": {"from": "c", "as": "x", "pipeline": [spec.clone()]}}]),
                bson::bson!([{"$unionWith": {"coll": "c", "pipeline": [{"$facet": {"a": [spec.clone()]}}]}}]),
            ] {
                let m = refused(pipeline);
                assert!(m.starts_with(&format!("{stage} is not allowed through the Data API: it reads outside")), "{m}");
            }
        }
        let m = refused(bson::bson!([{"$facet": {"a": [{"$out": "x"}]}}]));
        assert!(m.contains("aggregate only reads"), "{m}");
        for pipeline in [
            bson::bson!([{"$lookup": {"from": {"db": "admin", "coll": "users"}, "localField": "a", "foreignField": "b", "as": "c"}}]),
            bson::bson!([{"$lookup": {"from": "system.users", "localField": "a", "foreignField": "b", "as": "c"}}]),
            bson::bson!([{"$graphLookup": {"from": "a$b", "startWith": "$a", "connectFromField": "a", "connectToField": "b", "as": "c"}}]),
            bson::bson!([{"$unionWith": "system.views"}]),
            bson::bson!([{"$unionWith": {"coll": 5}}]),
            bson::bson!([{"$facet": {"a": [{"$lookup": {"from": "", "localField": "a", "foreignField": "b", "as": "c"}}]}}]),
        ] {
            let m = refused(pipeline.clone());
            assert!(m.contains("collection"), "{pipeline}: {m}");
        }
        // What MongoDB's own lookups look like passes.
        for pipeline in [
            bson::bson!([{"$lookup": {"from": "tenants", "localField": "a", "foreignField": "_id", "as": "t"}}]),
            bson::bson!([{"$lookup": {"let": {"a": "$a"}, "pipeline": [{"$match": {}}], "as": "t"}}]),
            bson::bson!([{"$unionWith": "other"}, {"$unionWith": {"coll": "third", "pipeline": [{"$project": {"a": 1}}]}}]),
            bson::bson!([{"$group": {"_id": "$a", "n": {"$sum": 1}, "docs": {"$push": "$$ROOT"}}}, {"$sort": {"n": -1}}]),
        ] {
            ActionRequest::parse(Action::Aggregate, &body(doc! {"pipeline": pipeline.clone()}))
                .unwrap_or_else(|e| panic!("{pipeline}: {e}"));
        }
    }
}
