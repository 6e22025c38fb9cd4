//! Store-level collection operations, shared by every front end of the
//! emulator (the Data API actions, the MongoDB wire listener).
//!
//! Each function takes already-parsed engine values ([`Filter`], [`Update`],
//! [`SortSpec`], [`Projection`], [`Pipeline`]) and the [`Store`], applies
//! MongoDB's semantics, persists what it changed (as every write must), and
//! answers a typed outcome. Nothing here knows a request format or a
//! front end's limits (the Data API's default `find` limit of 1000 and cap
//! of 50,000 stay in `actions.rs`); callers hold the store's lock for the
//! whole call, so each operation is atomic.
//!
//! Errors are [`OpError`]: an [`EngineError`] (the request is refused; any
//! writes made before it — an ordered insert's earlier documents, a multi
//! update's earlier documents — stay, as in MongoDB) or a persistence
//! failure.

use bson::oid::ObjectId;
use bson::{Bson, Document};

use super::engine::compare::{eq_bson, identical_docs};
use super::engine::update::{check_replacement, replace, upsert_document, upsert_replacement};
use super::engine::{id_first, show, EngineError, Filter, Pipeline, Projection, SortSpec, Update};
use super::store::Store;

/// Why an operation failed.
#[derive(Debug)]
pub(crate) enum OpError {
    /// The engine refused the request (bad operator, duplicate `_id`, …).
    Engine(EngineError),
    /// A write succeeded in memory but could not be persisted.
    Persist { db: String, coll: String, error: std::io::Error },
}

impl From<EngineError> for OpError {
    fn from(e: EngineError) -> Self {
        OpError::Engine(e)
    }
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpError::Engine(e) => write!(f, "{e}"),
            OpError::Persist { db, coll, error } => write!(f, "persisting {db}.{coll} failed: {error}"),
        }
    }
}

pub(crate) type OpResult<T> = Result<T, OpError>;

/// Writes one collection to disk (a no-op in memory), logging a failure.
fn persist(store: &Store, db: &str, coll: &str) -> OpResult<()> {
    store.persist(db, coll).map_err(|error| {
        tracing::error!(database = db, collection = coll, error = %error, "data api emulator: persisting failed");
        OpError::Persist { db: db.to_owned(), coll: coll.to_owned(), error }
    })
}

/// MongoDB's naming rules for databases and collections (the gateway's
/// [`gateway::request::check_names`], so every front end refuses alike).
pub(crate) fn check_namespace(db: &str, coll: &str) -> Result<(), EngineError> {
    gateway::request::check_names(db, coll).map_err(|e| EngineError::bad(e.message))
}

// ---------------------------------------------------------------------------
// Reads

/// A `find`: documents matching `filter`, sorted (stably; natural order
/// without a sort), then `skip`, then at most `limit` (`None`: all), then
/// projected.
#[derive(Clone, Debug)]
pub(crate) struct FindQuery {
    pub filter: Filter,
    pub sort: SortSpec,
    pub skip: usize,
    pub limit: Option<usize>,
    pub projection: Option<Projection>,
}

impl FindQuery {
    /// The documents matching `filter`, natural order, unprojected.
    pub fn matching(filter: Filter) -> FindQuery {
        FindQuery { filter, sort: SortSpec::parse(&Document::new()).expect("an empty sort"), skip: 0, limit: None, projection: None }
    }
}

/// Runs a [`FindQuery`].
pub(crate) fn find(store: &Store, db: &str, coll: &str, q: &FindQuery) -> Vec<Document> {
    let limit = q.limit.unwrap_or(usize::MAX);
    let project = |d: Document| match &q.projection {
        Some(p) => p.apply(&d),
        None => d,
    };
    let matching = store.docs(db, coll).iter().filter(|d| q.filter.matches(d));
    if q.sort.is_empty() {
        // Natural order: copy only the documents returned.
        return matching.skip(q.skip).take(limit).cloned().map(project).collect();
    }
    let mut refs: Vec<&Document> = matching.collect();
    q.sort.sort_items(&mut refs, |d| Some(*d));
    refs.into_iter().skip(q.skip).take(limit).cloned().map(project).collect()
}

/// How many documents match `filter`, after `skip`, at most `limit` (`None`: all).
pub(crate) fn count(store: &Store, db: &str, coll: &str, filter: &Filter, skip: usize, limit: Option<usize>) -> usize {
    let n = store.docs(db, coll).iter().filter(|d| filter.matches(d)).count().saturating_sub(skip);
    limit.map_or(n, |l| n.min(l))
}

/// Runs a pipeline over a collection; `$lookup` reads collections of the same database.
pub(crate) fn aggregate(store: &Store, db: &str, coll: &str, pipeline: &Pipeline) -> Result<Vec<Document>, EngineError> {
    pipeline.run_on(store.docs(db, coll), &|from: &str| store.docs(db, from))
}

// ---------------------------------------------------------------------------
// Inserts

/// A document ready for insertion: no top-level `$` field, a valid `_id`
/// (an ObjectId is generated when absent), `_id` first.
#[derive(Clone, Debug)]
pub(crate) struct NewDocument(Document);

impl NewDocument {
    pub fn prepare(mut doc: Document) -> Result<NewDocument, EngineError> {
        if let Some(k) = doc.keys().find(|k| k.starts_with('$')) {
            return Err(EngineError::bad(format!("Document can't have $ prefixed field names: {k}")));
        }
        match doc.get("_id") {
            Some(Bson::Array(_)) => return Err(EngineError::bad("can't use an array for _id")),
            Some(Bson::RegularExpression(_)) => return Err(EngineError::bad("can't use a regex for _id")),
            Some(Bson::Undefined) => return Err(EngineError::bad("can't use a undefined for _id")),
            Some(_) => {}
            None => {
                let mut with_id = Document::new();
                with_id.insert("_id", ObjectId::new());
                with_id.extend(doc);
                doc = with_id;
            }
        }
        Ok(NewDocument(id_first(doc)))
    }

    pub fn id(&self) -> &Bson {
        self.0.get("_id").expect("prepared documents have an _id")
    }
}

/// MongoDB's duplicate-key error for `_id` (code 11000 on the wire).
fn duplicate(db: &str, coll: &str, id: &Bson) -> EngineError {
    EngineError::duplicate_key(format!("E11000 duplicate key error collection: {db}.{coll} index: _id_ dup key: {{ _id: {} }}", show(id)))
}

/// Inserts one document unless its `_id` is taken. Does not persist.
fn insert_unpersisted(store: &mut Store, db: &str, coll: &str, doc: NewDocument) -> Result<Bson, EngineError> {
    let id = doc.id().clone();
    if store.docs(db, coll).iter().any(|d| d.get("_id").is_some_and(|x| eq_bson(x, &id))) {
        return Err(duplicate(db, coll, &id));
    }
    store.docs_mut(db, coll).push(doc.0);
    Ok(id)
}

/// A document an insert refused: its index in the request and why.
#[derive(Clone, Debug)]
pub(crate) struct WriteError {
    pub index: usize,
    pub error: EngineError,
}

/// What an insert did.
#[derive(Clone, Debug, Default)]
pub(crate) struct InsertOutcome {
    /// The `_id`s inserted, in request order.
    pub inserted_ids: Vec<Bson>,
    /// The refused documents (at most one when ordered).
    pub write_errors: Vec<WriteError>,
}

/// Inserts documents in order. `ordered`: stop at the first refused
/// document (those before it stay inserted); otherwise try every one.
/// `docs` may hold documents that failed [`NewDocument::prepare`]; they are
/// reported at their index like a duplicate.
pub(crate) fn insert(
    store: &mut Store,
    db: &str,
    coll: &str,
    docs: Vec<Result<NewDocument, EngineError>>,
    ordered: bool,
) -> OpResult<InsertOutcome> {
    let mut out = InsertOutcome::default();
    for (index, doc) in docs.into_iter().enumerate() {
        match doc.and_then(|d| insert_unpersisted(store, db, coll, d)) {
            Ok(id) => out.inserted_ids.push(id),
            Err(error) => {
                out.write_errors.push(WriteError { index, error });
                if ordered {
                    break;
                }
            }
        }
    }
    if !out.inserted_ids.is_empty() {
        persist(store, db, coll)?;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Updates

/// What an update does to a matched document.
#[derive(Clone, Debug)]
pub(crate) enum Change {
    /// Update operators (`{$set: …}`).
    Update(Update),
    /// A replacement document (no `$` fields; keeps the `_id`).
    Replace(Document),
}

impl Change {
    /// A replacement, refused when it holds update operators.
    pub fn replacement(doc: Document) -> Result<Change, EngineError> {
        check_replacement(&doc)?;
        Ok(Change::Replace(doc))
    }

    /// The document `current` becomes.
    fn apply(&self, current: &Document) -> Result<Document, EngineError> {
        match self {
            Change::Update(u) => {
                let mut d = current.clone();
                u.apply(&mut d, false).map(|_| d)
            }
            Change::Replace(r) => replace(current, r),
        }
    }

    /// The document an upsert inserts when nothing matches `filter`.
    fn upsert(&self, filter: &Filter) -> Result<NewDocument, EngineError> {
        let doc = match self {
            Change::Update(u) => upsert_document(filter, u)?,
            Change::Replace(r) => upsert_replacement(filter, r)?,
        };
        NewDocument::prepare(doc)
    }
}

/// What an update did. `matched` and `modified` are 0 when it upserted.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct UpdateResult {
    pub matched: usize,
    pub modified: usize,
    /// The `_id` of the document an upsert inserted.
    pub upserted_id: Option<Bson>,
}

/// Applies `change` at `index` when it changes the document; `Ok(true)`
/// when it did (the update no-op rule: an identical result is not a modification).
fn change_at(docs: &mut [Document], index: usize, change: &Change) -> Result<bool, EngineError> {
    let new = change.apply(&docs[index])?;
    if identical_docs(&new, &docs[index]) {
        return Ok(false);
    }
    docs[index] = new;
    Ok(true)
}

/// Updates the first (`multi: false`) or every matching document, in
/// natural order; with `upsert`, inserts when nothing matched. A document
/// the change fails on stops the update (earlier ones stay changed).
pub(crate) fn update(
    store: &mut Store,
    db: &str,
    coll: &str,
    filter: &Filter,
    change: &Change,
    multi: bool,
    upsert: bool,
) -> OpResult<UpdateResult> {
    let (mut matched, mut modified) = (0usize, 0usize);
    let mut failure = None;
    let docs = store.docs_mut(db, coll);
    for i in 0..docs.len() {
        if !filter.matches(&docs[i]) {
            continue;
        }
        match change_at(docs, i, change) {
            Ok(changed) => {
                matched += 1;
                modified += usize::from(changed);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
        if !multi {
            break;
        }
    }
    if modified > 0 {
        persist(store, db, coll)?;
    }
    if let Some(e) = failure {
        return Err(e.into());
    }
    if matched == 0 && upsert {
        let id = insert_unpersisted(store, db, coll, change.upsert(filter)?)?;
        persist(store, db, coll)?;
        return Ok(UpdateResult { matched: 0, modified: 0, upserted_id: Some(id) });
    }
    Ok(UpdateResult { matched, modified, upserted_id: None })
}

// ---------------------------------------------------------------------------
// Deletes

/// Deletes the first (`multi: false`) or every matching document; answers how many.
pub(crate) fn delete(store: &mut Store, db: &str, coll: &str, filter: &Filter, multi: bool) -> OpResult<usize> {
    let docs = store.docs_mut(db, coll);
    let before = docs.len();
    if multi {
        docs.retain(|d| !filter.matches(d));
    } else if let Some(i) = docs.iter().position(|d| filter.matches(d)) {
        docs.remove(i);
    }
    let deleted = before - docs.len();
    if deleted > 0 {
        persist(store, db, coll)?;
    }
    Ok(deleted)
}

// ---------------------------------------------------------------------------
// Find and modify

/// What a find-and-modify does to the document it picks.
#[derive(Clone, Debug)]
pub(crate) enum Modify {
    Remove,
    /// Change it (or, with `upsert`, insert when nothing matches);
    /// `return_new`: answer the document after the change.
    Change {
        change: Change,
        upsert: bool,
        return_new: bool,
    },
}

/// What a find-and-modify did.
#[derive(Clone, Debug, Default)]
pub(crate) struct Modified {
    /// Whether a document matched.
    pub found: bool,
    /// The document before (or after, with `return_new`) the change.
    pub value: Option<Document>,
    /// The `_id` an upsert inserted.
    pub upserted_id: Option<Bson>,
}

/// Picks the first document matching `filter` in `sort` order (natural
/// order without one) and removes or changes it, atomically.
pub(crate) fn find_and_modify(
    store: &mut Store,
    db: &str,
    coll: &str,
    filter: &Filter,
    sort: &SortSpec,
    modify: &Modify,
) -> OpResult<Modified> {
    let mut matching: Vec<(usize, &Document)> = store.docs(db, coll).iter().enumerate().filter(|(_, d)| filter.matches(d)).collect();
    sort.sort_items(&mut matching, |(_, d)| Some(*d));
    let Some((index, before)) = matching.first().map(|(i, d)| (*i, (*d).clone())) else {
        return match modify {
            Modify::Change { change, upsert: true, return_new } => {
                let doc = change.upsert(filter)?;
                let inserted = doc.0.clone();
                let id = insert_unpersisted(store, db, coll, doc)?;
                persist(store, db, coll)?;
                let value = return_new.then_some(inserted);
                Ok(Modified { found: false, value, upserted_id: Some(id) })
            }
            _ => Ok(Modified::default()),
        };
    };
    let value = match modify {
        Modify::Remove => {
            store.docs_mut(db, coll).remove(index);
            persist(store, db, coll)?;
            before
        }
        Modify::Change { change, return_new, .. } => {
            let docs = store.docs_mut(db, coll);
            if change_at(docs, index, change)? {
                let after = docs[index].clone();
                persist(store, db, coll)?;
                if *return_new {
                    after
                } else {
                    before
                }
            } else {
                before
            }
        }
    };
    Ok(Modified { found: true, value: Some(value), upserted_id: None })
}
