//! The ten Data API actions over the engine: a checked
//! [`gateway::ActionRequest`] in (the gateway's parser, shared with the
//! driver backend), the response document out. MongoDB's semantics are the
//! engine's and [`super::collection`]'s; the Data API's own rules (default
//! `find` limit, the 50,000 cap) arrive already applied in the request.

use bson::{Bson, Document};
use gateway::request::Op;
use gateway::{ActionRequest, ApiError};

use super::collection::{self, Change, FindQuery, NewDocument, OpError};
use super::engine::{Filter, Pipeline, Projection, SortSpec, Update};
use super::store::Store;

pub use gateway::request::{Action, FIND_DEFAULT_LIMIT, MAX_RESULT_DOCUMENTS};

/// Counts as Int32, as the hosted service answers them.
fn count(n: usize) -> Bson {
    Bson::Int32(i32::try_from(n).unwrap_or(i32::MAX))
}

/// Runs one action atomically (the caller holds the store's lock). The
/// response is the BSON document to encode (counts as Int32, ids as their
/// BSON values).
pub(crate) fn run(store: &mut Store, req: ActionRequest) -> Result<Document, ApiError> {
    let (db, coll) = (req.ns.database.as_str(), req.ns.collection.as_str());
    // The store's own rule, as for every front end (the request was checked
    // by the gateway's parser too).
    collection::check_namespace(db, coll)?;
    let mut out = Document::new();
    match req.op {
        Op::FindOne { filter, projection } => {
            let q =
                FindQuery { projection: Projection::parse(&projection)?, limit: Some(1), ..FindQuery::matching(Filter::parse(&filter)?) };
            let doc = collection::find(store, db, coll, &q).pop();
            out.insert("document", doc.map(Bson::Document).unwrap_or(Bson::Null));
        }
        Op::Find { filter, projection, sort, skip, limit } => {
            let q = FindQuery {
                projection: Projection::parse(&projection)?,
                sort: SortSpec::parse(&sort)?,
                skip: usize::try_from(skip).unwrap_or(usize::MAX),
                limit: Some(limit.get()),
                ..FindQuery::matching(Filter::parse(&filter)?)
            };
            let docs = collection::find(store, db, coll, &q);
            out.insert("documents", docs.into_iter().map(Bson::Document).collect::<Vec<_>>());
        }
        Op::InsertOne { document } => {
            let mut ids = insert(store, db, coll, vec![document])?;
            out.insert("insertedId", ids.pop().expect("one document inserted"));
        }
        Op::InsertMany { documents } => {
            out.insert("insertedIds", insert(store, db, coll, documents)?);
        }
        Op::Update { many, filter, update, upsert } => {
            let change = Change::Update(Update::parse(&update)?);
            updated(&mut out, collection::update(store, db, coll, &Filter::parse(&filter)?, &change, many, upsert)?);
        }
        Op::ReplaceOne { filter, replacement, upsert } => {
            let change = Change::replacement(replacement)?;
            updated(&mut out, collection::update(store, db, coll, &Filter::parse(&filter)?, &change, false, upsert)?);
        }
        Op::Delete { many, filter } => {
            let deleted = collection::delete(store, db, coll, &Filter::parse(&filter)?, many)?;
            out.insert("deletedCount", count(deleted));
        }
        Op::Aggregate { pipeline } => {
            let stages: Vec<Bson> = pipeline.into_iter().map(Bson::Document).collect();
            let docs = collection::aggregate(store, db, coll, &Pipeline::parse(&stages)?)?;
            out.insert("documents", docs.into_iter().take(MAX_RESULT_DOCUMENTS).map(Bson::Document).collect::<Vec<_>>());
        }
    }
    Ok(out)
}

/// An ordered insert: every document is checked first (a bad one inserts
/// nothing); then documents before a duplicate `_id` stay inserted, as in MongoDB.
fn insert(store: &mut Store, db: &str, coll: &str, docs: Vec<Document>) -> Result<Vec<Bson>, ApiError> {
    let prepared = docs.into_iter().map(NewDocument::prepare).collect::<Result<Vec<_>, _>>()?;
    let outcome = collection::insert(store, db, coll, prepared.into_iter().map(Ok).collect(), true)?;
    match outcome.write_errors.into_iter().next() {
        Some(e) => Err(e.error.into()),
        None => Ok(outcome.inserted_ids),
    }
}

/// `{matchedCount, modifiedCount}`, plus `upsertedId` when an upsert inserted.
fn updated(out: &mut Document, r: collection::UpdateResult) {
    out.insert("matchedCount", count(r.matched));
    out.insert("modifiedCount", count(r.modified));
    if let Some(id) = r.upserted_id {
        out.insert("upsertedId", id);
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::Engine(e) => e.into(),
            OpError::Persist { .. } => ApiError::internal(e.to_string()),
        }
    }
}
