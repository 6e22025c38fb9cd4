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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

fn refuse_blocked(op: &Op) -> Result<(), ApiError> {
    fn scan(d: &Document) -> Result<(), ApiError> {
        d.iter().try_for_each(|(k, v)| match BLOCKED_OPERATORS.contains(&k.as_str()) {
            true => Err(ApiError::invalid(format!("{k} is not allowed through the Data API"))),
            false => scan_value(v),
        })
    }
    fn scan_value(b: &Bson) -> Result<(), ApiError> {
        match b {
            Bson::Document(d) => scan(d),
            Bson::Array(items) => items.iter().try_for_each(scan_value),
            _ => Ok(()),
        }
    }
    let docs: Vec<&Document> = match op {
        Op::FindOne { filter, projection } => vec![filter, projection],
        Op::Find { filter, projection, sort, .. } => vec![filter, projection, sort],
        Op::InsertOne { .. } | Op::InsertMany { .. } => vec![],
        Op::Update { filter, update, .. } => vec![filter, update],
        Op::ReplaceOne { filter, .. } => vec![filter],
        Op::Delete { filter, .. } => vec![filter],
        Op::Aggregate { pipeline } => {
            if let Some(k) = pipeline.iter().flat_map(|s| s.keys()).find(|k| BLOCKED_STAGES.contains(&k.as_str())) {
                return Err(ApiError::invalid(format!("{k} is not allowed through the Data API: aggregate only reads")));
            }
            pipeline.iter().collect()
        }
    };
    docs.into_iter().try_for_each(scan)
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
    if coll.is_empty() || coll.starts_with("system.") || coll.contains('$') || coll.contains('\0') || coll.starts_with('.') {
        return Err(ApiError::invalid(format!("invalid collection name '{coll}'")));
    }
    Ok(())
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
}
