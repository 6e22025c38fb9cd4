//! The ten Data API actions over the store.

use bson::oid::ObjectId;
use bson::{Bson, Document};

use super::engine::compare::{eq_bson, identical_docs};
use super::engine::update::{replace, upsert_document, upsert_replacement};
use super::engine::{id_first, integer_arg, show, type_name, EngineError, Filter, Pipeline, Projection, SortSpec, Update};
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

/// MongoDB's naming rules for databases and collections.
fn check_names(db: &str, coll: &str) -> Result<(), ApiError> {
    if db.len() >= 64 || db.chars().any(|c| matches!(c, '/' | '\\' | '.' | ' ' | '"' | '$' | '\0')) {
        return Err(bad(format!("invalid database name '{db}'")));
    }
    if coll.starts_with("system.") || coll.contains('$') || coll.contains('\0') || coll.starts_with('.') {
        return Err(bad(format!("invalid collection name '{coll}'")));
    }
    Ok(())
}

fn count(n: usize) -> Bson {
    Bson::Int32(i32::try_from(n).unwrap_or(i32::MAX))
}

/// Checks a document for insertion and gives it an `_id` (first).
fn prepare_insert(mut doc: Document) -> Result<Document, ApiError> {
    if let Some(k) = doc.keys().find(|k| k.starts_with('$')) {
        return Err(bad(format!("Document can't have $ prefixed field names: {k}")));
    }
    match doc.get("_id") {
        Some(Bson::Array(_)) => return Err(bad("can't use an array for _id")),
        Some(Bson::RegularExpression(_)) => return Err(bad("can't use a regex for _id")),
        Some(Bson::Undefined) => return Err(bad("can't use a undefined for _id")),
        Some(_) => {}
        None => {
            let mut with_id = Document::new();
            with_id.insert("_id", ObjectId::new());
            with_id.extend(doc);
            doc = with_id;
        }
    }
    Ok(id_first(doc))
}

fn duplicate(db: &str, coll: &str, id: &Bson) -> ApiError {
    EngineError::duplicate_key(format!(
        "E11000 duplicate key error collection: {db}.{coll} index: _id_ dup key: {{ _id: {} }}",
        show(id)
    ))
    .into()
}

fn check_unique_id(docs: &[Document], db: &str, coll: &str, doc: &Document) -> Result<(), ApiError> {
    let id = doc.get("_id").expect("prepared documents have an _id");
    if docs.iter().any(|d| d.get("_id").is_some_and(|x| eq_bson(x, id))) {
        return Err(duplicate(db, coll, id));
    }
    Ok(())
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
    check_names(&db, &coll)?;
    let (db, coll) = (db.as_str(), coll.as_str());

    let mut out = Document::new();
    match action {
        Action::FindOne => {
            let filter = Filter::parse(&optional_doc(body, "filter")?)?;
            let projection = Projection::parse(&optional_doc(body, "projection")?)?;
            let found = store.docs(db, coll).iter().find(|d| filter.matches(d));
            let doc = found.map(|d| match &projection {
                Some(p) => p.apply(d),
                None => d.clone(),
            });
            out.insert("document", doc.map(Bson::Document).unwrap_or(Bson::Null));
        }
        Action::Find => {
            let filter = Filter::parse(&optional_doc(body, "filter")?)?;
            let projection = Projection::parse(&optional_doc(body, "projection")?)?;
            let sort = SortSpec::parse(&optional_doc(body, "sort")?)?;
            let skip = optional_count(body, "skip")?.unwrap_or(0);
            let limit = match optional_count(body, "limit")? {
                None => FIND_DEFAULT_LIMIT,
                Some(0) => MAX_RESULT_DOCUMENTS,
                Some(n) => n.min(MAX_RESULT_DOCUMENTS),
            };
            let mut docs: Vec<Document> = store.docs(db, coll).iter().filter(|d| filter.matches(d)).cloned().collect();
            sort.sort(&mut docs);
            let docs: Vec<Bson> = docs
                .into_iter()
                .skip(skip)
                .take(limit)
                .map(|d| Bson::Document(projection.as_ref().map(|p| p.apply(&d)).unwrap_or(d)))
                .collect();
            out.insert("documents", docs);
        }
        Action::InsertOne => {
            let doc = prepare_insert(required_doc(body, "document")?)?;
            check_unique_id(store.docs(db, coll), db, coll, &doc)?;
            let id = doc.get("_id").cloned().expect("prepared");
            store.docs_mut(db, coll).push(doc);
            persist(store, db, coll)?;
            out.insert("insertedId", id);
        }
        Action::InsertMany => {
            let items = match body.get("documents") {
                None => return Err(ApiError::bad_request("MissingParameter", "must specify 'documents'")),
                Some(Bson::Array(items)) if items.is_empty() => return Err(bad("'documents' must not be empty")),
                Some(Bson::Array(items)) => items,
                Some(other) => return Err(bad(format!("'documents' must be an array, found {}", type_name(other)))),
            };
            let mut prepared = Vec::with_capacity(items.len());
            for it in items {
                match it {
                    Bson::Document(d) => prepared.push(prepare_insert(d.clone())?),
                    other => return Err(bad(format!("'documents' entries must be objects, found {}", type_name(other)))),
                }
            }
            // Ordered insert: documents before a duplicate stay inserted, as in MongoDB.
            let mut ids = Vec::new();
            let mut failure = None;
            for doc in prepared {
                if let Err(e) = check_unique_id(store.docs(db, coll), db, coll, &doc) {
                    failure = Some(e);
                    break;
                }
                ids.push(doc.get("_id").cloned().expect("prepared"));
                store.docs_mut(db, coll).push(doc);
            }
            if !ids.is_empty() {
                persist(store, db, coll)?;
            }
            if let Some(e) = failure {
                return Err(e);
            }
            out.insert("insertedIds", ids);
        }
        Action::UpdateOne | Action::UpdateMany | Action::ReplaceOne => {
            let filter = Filter::parse(&required_doc(body, "filter")?)?;
            let upsert = optional_bool(body, "upsert")?;
            let change = if action == Action::ReplaceOne {
                let r = required_doc(body, "replacement")?;
                super::engine::update::check_replacement(&r)?;
                Change::Replace(r)
            } else {
                match body.get("update") {
                    Some(Bson::Array(_)) => return Err(bad("pipeline-style updates are not supported; use update operators")),
                    _ => Change::Update(Update::parse(&required_doc(body, "update")?)?),
                }
            };
            let many = action == Action::UpdateMany;
            let (mut matched, mut modified) = (0usize, 0usize);
            let mut failure = None;
            let docs = store.docs_mut(db, coll);
            for current in docs.iter_mut() {
                if !filter.matches(current) {
                    continue;
                }
                let new = match &change {
                    Change::Update(u) => {
                        let mut d = current.clone();
                        u.apply(&mut d, false).map(|_| d)
                    }
                    Change::Replace(r) => replace(current, r),
                };
                match new {
                    Ok(new) => {
                        matched += 1;
                        if !identical_docs(&new, current) {
                            *current = new;
                            modified += 1;
                        }
                    }
                    Err(e) => {
                        failure = Some(ApiError::from(e));
                        break;
                    }
                }
                if !many {
                    break;
                }
            }
            if modified > 0 {
                persist(store, db, coll)?;
            }
            if let Some(e) = failure {
                return Err(e);
            }
            if matched == 0 && upsert {
                let doc = match &change {
                    Change::Update(u) => upsert_document(&filter, u)?,
                    Change::Replace(r) => upsert_replacement(&filter, r)?,
                };
                let doc = prepare_insert(doc)?;
                check_unique_id(store.docs(db, coll), db, coll, &doc)?;
                let id = doc.get("_id").cloned().expect("prepared");
                store.docs_mut(db, coll).push(doc);
                persist(store, db, coll)?;
                out.insert("matchedCount", count(0));
                out.insert("modifiedCount", count(0));
                out.insert("upsertedId", id);
            } else {
                out.insert("matchedCount", count(matched));
                out.insert("modifiedCount", count(modified));
            }
        }
        Action::DeleteOne | Action::DeleteMany => {
            let filter = Filter::parse(&required_doc(body, "filter")?)?;
            let docs = store.docs_mut(db, coll);
            let before = docs.len();
            if action == Action::DeleteOne {
                if let Some(i) = docs.iter().position(|d| filter.matches(d)) {
                    docs.remove(i);
                }
            } else {
                docs.retain(|d| !filter.matches(d));
            }
            let deleted = before - docs.len();
            if deleted > 0 {
                persist(store, db, coll)?;
            }
            out.insert("deletedCount", count(deleted));
        }
        Action::Aggregate => {
            let stages = match body.get("pipeline") {
                None => return Err(ApiError::bad_request("MissingParameter", "must specify 'pipeline'")),
                Some(Bson::Array(items)) => items,
                Some(other) => return Err(bad(format!("'pipeline' must be an array, found {}", type_name(other)))),
            };
            let pipeline = Pipeline::parse(stages)?;
            let store_ref: &Store = store;
            let docs = pipeline.run_on(store_ref.docs(db, coll), &|from: &str| store_ref.docs(db, from))?;
            out.insert("documents", docs.into_iter().take(MAX_RESULT_DOCUMENTS).map(Bson::Document).collect::<Vec<_>>());
        }
    }
    Ok(out)
}

enum Change {
    Update(Update),
    Replace(Document),
}

fn persist(store: &Store, db: &str, coll: &str) -> Result<(), ApiError> {
    store.persist(db, coll).map_err(|e| {
        tracing::error!(database = db, collection = coll, error = %e, "data api emulator: persisting failed");
        ApiError { status: 500, code: "InternalServerError".to_owned(), message: format!("persisting {db}.{coll} failed: {e}") }
    })
}
