//! The `users-*` routes, rows 2–6: the user directory (`/users…`), for
//! platform admins, and the tenant-admin view of `GET /users`; here, what
//! they share: the user a path names, read concurrently with the caller,
//! and the tenants a body names.

pub mod create;
pub mod deactivate;
pub mod get;
pub mod list;
pub mod update;

use crate::ctx::Ctx;
use crate::data_api::{coll, decode, DataApi, Find};
use crate::ejson::ObjectId;
use crate::models::User;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, Params, Route};
use crate::types::{Slug, Subject};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn subject_param(params: &Params) -> Result<Subject, Error> {
    let raw = params.get("subject");
    Subject::parse(raw).map_err(|_| user_not_found(raw))
}

fn user_not_found(subject: &str) -> Error {
    Error::not_found(format!("User {subject} not found"))
}

async fn find_by_subject<H: Http>(db: &DataApi<'_, H>, subject: &Subject) -> Result<(User, Value), Error> {
    db.find_one_as::<User>(coll::USERS, User::by_subject(subject)).await?.ok_or_else(|| user_not_found(subject.as_str()))
}

/// The user the path names, read concurrently with the caller (a read:
/// a caller refused later has only read). Returns the lookup's answer
/// for the subject the route then parses, `404` when there is none.
async fn read_named<H: Http>(ctx: &Ctx<H>, req: &ApiRequest, route: &Route) -> impl FnOnce(&Subject) -> Result<(User, Value), Error> {
    let named = route.params(req.path()).and_then(|p| Subject::parse(p.get("subject")).ok());
    let found = match &named {
        Some(subject) => Some(async { find_by_subject(&ctx.db()?, subject).await }.await),
        None => None,
    };
    move |subject: &Subject| match (named, found) {
        (Some(n), Some(found)) if &n == subject => found,
        _ => Err(user_not_found(subject.as_str())),
    }
}

/// The tenants the body names, resolved concurrently with the caller
/// (`None`: the body does not parse, and the route fails on it first).
async fn read_tenants<H: Http>(ctx: &Ctx<H>, slugs: Option<Option<Vec<Slug>>>) -> Option<Result<Vec<ObjectId>, Error>> {
    let slugs = slugs?;
    Some(async { resolve_tenants(&ctx.db()?, slugs.as_deref().unwrap_or_default()).await }.await)
}

/// Resolves slugs to tenant ids; an unknown slug is a `400` (the seed
/// dropped it silently, which hid typos).
async fn resolve_tenants<H: Http>(db: &DataApi<'_, H>, slugs: &[Slug]) -> Result<Vec<ObjectId>, Error> {
    let wanted: BTreeSet<&str> = slugs.iter().map(Slug::as_str).collect();
    if wanted.is_empty() {
        return Ok(vec![]);
    }
    let found = db.find(coll::TENANTS, Find::filter(json!({ "slug": { "$in": wanted } })).project(json!({ "_id": 1, "slug": 1 }))).await?;
    let mut ids = Vec::new();
    let mut seen = BTreeSet::new();
    for t in &found {
        #[derive(Deserialize)]
        struct T {
            #[serde(rename = "_id")]
            id: ObjectId,
            slug: String,
        }
        let t: T = decode(coll::TENANTS, t)?;
        seen.insert(t.slug);
        ids.push(t.id);
    }
    let missing: Vec<&str> = wanted.into_iter().filter(|s| !seen.contains(*s)).collect();
    if !missing.is_empty() {
        return Err(Error::bad_request(format!("Unknown workspace(s): {}", missing.join(", "))));
    }
    Ok(ids)
}
