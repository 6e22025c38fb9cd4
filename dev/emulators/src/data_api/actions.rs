//! The ten Data API actions over the store.

use bson::{Bson, Document};

use super::collection::{self, Change, FindQuery, NewDocument, OpError};
use super::engine::{integer_arg, show, type_name, Filter, Pipeline, Projection, SortSpec, Update};
use super::store::Store;
use super::ApiError;

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

    /// Whether the action can change the store.
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

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request("InvalidParameter", msg)
}

fn required_string<'a>(body: &'a Document, key: &str) -> Result<&'a str, ApiError> {
    match body.get(key) {
        Some(Bson::String(s)) if !s.is_empty() => Ok(s),
        Some(Bson::String(_)) => Err(bad(format!("'{key}' must not be empty"))),
        Some(other) => Err(bad(format!("'{key}' must be a string, found {}", type_name(other)))),
        None => Err(ApiError::bad_request("MissingParameter", format!("must specify '{key}'"))),
    }
}

fn optional_doc(body: &Document, key: &str) -> Result<Document, ApiError> {
    match body.get(key) {
        None => Ok(Document::new()),
        Some(Bson::Document(d)) => Ok(d.clone()),
        Some(other) => Err(bad(format!("'{key}' must be an object, found {}", type_name(other)))),
    }
}

fn required_doc(body: &Document, key: &str) -> Result<Document, ApiError> {
    match body.get(key) {
        None => Err(ApiError::bad_request("MissingParameter", format!("must specify '{key}'"))),
        Some(_) => optional_doc(body, key),
    }
}

fn optional_count(body: &Document, key: &str) -> Result<Option<usize>, ApiError> {
    match body.get(key) {
        None => Ok(None),
        Some(v) => match integer_arg(v) {
            Some(n) if n >= 0 => Ok(Some(n as usize)),
            _ => Err(bad(format!("'{key}' must be a non-negative integer, found {}", show(v)))),
        },
    }
}

fn optional_bool(body: &Document, key: &str) -> Result<bool, ApiError> {
    match body.get(key) {
        None => Ok(false),
        Some(Bson::Boolean(b)) => Ok(*b),
        Some(other) => Err(bad(format!("'{key}' must be a boolean, found {}", type_name(other)))),
    }
}

fn count(n: usize) -> Bson {
    Bson::Int32(i32::try_from(n).unwrap_or(i32::MAX))
}

/// Runs one action. `body` is the decoded request body. The response is the
/// BSON document to encode (counts as Int32, ids as their BSON values).
pub(crate) fn run(store: &mut Store, action: Action, body: &Document) -> Result<Document, ApiError> {
    for k in body.keys() {
        if !matches!(k.as_str(), "dataSource" | "database" | "collection") && !action.fields().contains(&k.as_str()) {
            return Err(bad(format!("unknown field '{k}' for action {}", action.name())));
        }
    }
    required_string(body, "dataSource")?;
    let db = required_string(body, "database")?.to_owned();
    let coll = required_string(body, "collection")?.to_owned();
    collection::check_namespace(&db, &coll)?;
    let (db, coll) = (db.as_str(), coll.as_str());

    let mut out = Document::new();
    match action {
        Action::FindOne | Action::Find => {
            let filter = Filter::parse(&optional_doc(body, "filter")?)?;
            let projection = Projection::parse(&optional_doc(body, "projection")?)?;
            let mut q = FindQuery { projection, ..FindQuery::matching(filter) };
            if action == Action::FindOne {
                q.limit = Some(1);
                let doc = collection::find(store, db, coll, &q).pop();
                out.insert("document", doc.map(Bson::Document).unwrap_or(Bson::Null));
            } else {
                q.sort = SortSpec::parse(&optional_doc(body, "sort")?)?;
                q.skip = optional_count(body, "skip")?.unwrap_or(0);
                q.limit = Some(match optional_count(body, "limit")? {
                    None => FIND_DEFAULT_LIMIT,
                    Some(0) => MAX_RESULT_DOCUMENTS,
                    Some(n) => n.min(MAX_RESULT_DOCUMENTS),
                });
                let docs = collection::find(store, db, coll, &q);
                out.insert("documents", docs.into_iter().map(Bson::Document).collect::<Vec<_>>());
            }
        }
        Action::InsertOne | Action::InsertMany => {
            // Every document is checked before any is inserted: a malformed
            // one fails the whole request.
            let prepared = if action == Action::InsertOne {
                vec![NewDocument::prepare(required_doc(body, "document")?)?]
            } else {
                match body.get("documents") {
                    None => return Err(ApiError::bad_request("MissingParameter", "must specify 'documents'")),
                    Some(Bson::Array(items)) if items.is_empty() => return Err(bad("'documents' must not be empty")),
                    Some(Bson::Array(items)) => items
                        .iter()
                        .map(|it| match it {
                            Bson::Document(d) => Ok(NewDocument::prepare(d.clone())?),
                            other => Err(bad(format!("'documents' entries must be objects, found {}", type_name(other)))),
                        })
                        .collect::<Result<Vec<_>, ApiError>>()?,
                    Some(other) => return Err(bad(format!("'documents' must be an array, found {}", type_name(other)))),
                }
            };
            // Ordered insert: documents before a duplicate stay inserted, as in MongoDB.
            let outcome = collection::insert(store, db, coll, prepared.into_iter().map(Ok).collect(), true)?;
            if let Some(e) = outcome.write_errors.into_iter().next() {
                return Err(e.error.into());
            }
            let mut ids = outcome.inserted_ids;
            if action == Action::InsertOne {
                out.insert("insertedId", ids.pop().expect("one document inserted"));
            } else {
                out.insert("insertedIds", ids);
            }
        }
        Action::UpdateOne | Action::UpdateMany | Action::ReplaceOne => {
            let filter = Filter::parse(&required_doc(body, "filter")?)?;
            let upsert = optional_bool(body, "upsert")?;
            let change = if action == Action::ReplaceOne {
                Change::replacement(required_doc(body, "replacement")?)?
            } else {
                match body.get("update") {
                    Some(Bson::Array(_)) => return Err(bad("pipeline-style updates are not supported; use update operators")),
                    _ => Change::Update(Update::parse(&required_doc(body, "update")?)?),
                }
            };
            let r = collection::update(store, db, coll, &filter, &change, action == Action::UpdateMany, upsert)?;
            out.insert("matchedCount", count(r.matched));
            out.insert("modifiedCount", count(r.modified));
            if let Some(id) = r.upserted_id {
                out.insert("upsertedId", id);
            }
        }
        Action::DeleteOne | Action::DeleteMany => {
            let filter = Filter::parse(&required_doc(body, "filter")?)?;
            let deleted = collection::delete(store, db, coll, &filter, action == Action::DeleteMany)?;
            out.insert("deletedCount", count(deleted));
        }
        Action::Aggregate => {
            let stages = match body.get("pipeline") {
                None => return Err(ApiError::bad_request("MissingParameter", "must specify 'pipeline'")),
                Some(Bson::Array(items)) => items,
                Some(other) => return Err(bad(format!("'pipeline' must be an array, found {}", type_name(other)))),
            };
            let docs = collection::aggregate(store, db, coll, &Pipeline::parse(stages)?)?;
            out.insert("documents", docs.into_iter().take(MAX_RESULT_DOCUMENTS).map(Bson::Document).collect::<Vec<_>>());
        }
    }
    Ok(out)
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::Engine(e) => e.into(),
            OpError::Persist { .. } => {
                ApiError { status: 500, code: "InternalServerError".to_owned(), message: e.to_string() }
            }
        }
    }
}
