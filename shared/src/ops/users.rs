//! Rows 2–6: the user directory (`/users…`), for platform admins, and the
//! tenant-admin view of `GET /users`.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::access::administered_tenants;
use crate::audit::AuditEvent;
use crate::ctx::Ctx;
use crate::data_api::{coll, decode, DataApi, Find, Sort};
use crate::ejson::{to_api_json, ObjectId};
use crate::models::User;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Params, Route};
use crate::routes;
use crate::types::{Email, PersonName, Role, Slug, Subject};

use super::prologue::prologue;
use super::saga::audited;
use super::user_doc::with_set;

pub const LIST: Route = routes::route("users-list");
pub const GET: Route = routes::route("users-get");
pub const CREATE: Route = routes::route("users-create");
pub const UPDATE: Route = routes::route("users-update");
pub const DEACTIVATE: Route = routes::route("users-deactivate");

/// Row 2: P sees everyone; a tenant admin the users of the tenants they
/// administer (deleted tenants excluded); anyone else `403`.
pub async fn list<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (caller, _, ()) = prologue(ctx, req, &LIST).caller().await?;
    let db = ctx.db()?;
    let filter = if caller.is_platform_admin() {
        json!({})
    } else {
        let mine = administered_tenants(&caller);
        if mine.is_empty() {
            return Err(Error::forbidden("Only platform or workspace administrators may list users."));
        }
        let live: Vec<Value> = db
            .find(
                coll::TENANTS,
                Find::filter(json!({ "_id": { "$in": mine }, "status": { "$ne": "deleted" } })).project(json!({ "_id": 1 })),
            )
            .await?
            .into_iter()
            .filter_map(|t| t.get("_id").cloned())
            .collect();
        if live.is_empty() {
            return Err(Error::forbidden("Only platform or workspace administrators may list users."));
        }
        json!({ "tenantIds": { "$in": live } })
    };
    let users = db.find(coll::USERS, Find::filter(filter).sort(Sort::newest_first()).limit(50_000)).await?;
    Ok(ApiResponse::ok(to_api_json(Value::Array(users))))
}

fn subject_param(params: &Params) -> Result<Subject, Error> {
    let raw = params.get("subject");
    Subject::parse(raw).map_err(|_| user_not_found(raw))
}

fn already_exists(subject: &Subject) -> Error {
    Error::conflict(format!("User {subject} already exists"))
}

fn user_not_found(subject: &str) -> Error {
    Error::not_found(format!("User {subject} not found"))
}

async fn find_by_subject<H: Http>(db: &DataApi<'_, H>, subject: &Subject) -> Result<(User, Value), Error> {
    db.find_one_as::<User>(coll::USERS, json!({ "authentikSubjectId": subject })).await?.ok_or_else(|| user_not_found(subject.as_str()))
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

/// Row 3.
pub async fn get<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (caller, found) = futures::join!(prologue(ctx, req, &GET).caller(), read_named(ctx, req, &GET));
    let (caller, params, ()) = caller?;
    caller.require_platform_admin()?;
    let subject = subject_param(&params)?;
    let (_, doc) = found(&subject)?;
    Ok(ApiResponse::ok(to_api_json(doc)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateBody {
    authentik_subject_id: Subject,
    email: Email,
    name: PersonName,
    role: Option<Role>,
    tenant_slugs: Option<Vec<Slug>>,
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

/// Row 4.
pub async fn create<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    // The body is parsed first but reported after the caller (401 before
    // 400); whenever it parses, the subject's document and the tenants
    // are read concurrently with the caller.
    let parsed = req.json::<CreateBody>();
    let reads = async {
        let body = parsed.as_ref().ok()?;
        let taken = async {
            Ok::<_, Error>(
                ctx.db()?
                    .find_one(coll::USERS, json!({ "authentikSubjectId": body.authentik_subject_id }), Some(json!({ "_id": 1 })))
                    .await?,
            )
        };
        Some(futures::join!(taken, read_tenants(ctx, Some(body.tenant_slugs.clone()))))
    };
    // The prologue reports the body's error in its place.
    let in_order = parsed.as_ref().map(|_| ()).map_err(Error::clone);
    let (caller, reads) = futures::join!(prologue(ctx, req, &CREATE).parsed(in_order).caller(), reads);
    let (caller, _, ()) = caller?;
    let body = parsed?;
    caller.require_platform_admin()?;
    let db = ctx.db()?;
    let subject = &body.authentik_subject_id;
    let (taken, tenants) = reads.expect("read whenever the body parses");
    if taken?.is_some() {
        return Err(already_exists(subject));
    }
    let tenant_ids = tenants.expect("a parsed body names its tenants")?;
    let role = body.role.unwrap_or(Role::Member);
    let id = ctx.new_object_id();
    let now = ctx.now.ejson();
    let mut doc = json!({
        "_id": id,
        "authentikSubjectId": subject,
        "email": body.email,
        "name": body.name,
        "role": role,
        "tenantIds": tenant_ids,
        "platformAdmin": false,
        "active": true,
        "createdAt": now,
        "updatedAt": now,
    });
    // Each tenant gets the role explicitly rather than relying on the
    // global fallback (as the seed).
    if !tenant_ids.is_empty() {
        doc["tenantRoles"] = tenant_ids.iter().map(|t| (t.to_hex(), json!(role))).collect::<Map<_, _>>().into();
    }
    let event = AuditEvent::user("user.created", subject.as_str(), body.email.as_str())
        .metadata(json!({ "name": body.name, "role": role, "tenantCount": tenant_ids.len() }));
    // The document and its event, concurrently; unaudited mutations are
    // not allowed to stand, nor events of writes that failed. The insert
    // is keyed by the subject: the check above answers the plain case, and
    // of concurrent creates of one person (a double click) one inserts and
    // the others find it taken.
    let write = async {
        match db.insert_unless_exists(coll::USERS, json!({ "authentikSubjectId": subject }), doc.clone()).await? {
            true => Ok(()),
            false => Err(already_exists(subject)),
        }
    };
    let undo = || async { db.delete_one(coll::USERS, json!({ "_id": id })).await.map(|_| ()) };
    audited(ctx, &caller, event, write, undo).await?;
    Ok(ApiResponse::created(to_api_json(doc)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateBody {
    email: Option<Email>,
    name: Option<PersonName>,
    role: Option<Role>,
    active: Option<bool>,
    platform_admin: Option<bool>,
    tenant_slugs: Option<Vec<Slug>>,
}

/// Row 5: returns the updated document.
pub async fn update<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    // The user and the tenants named are read concurrently with the caller.
    let slugs = req.json::<UpdateBody>().ok().map(|b| b.tenant_slugs);
    let named_tenants = matches!(slugs, Some(Some(_)));
    let (caller, found, tenants) =
        futures::join!(prologue(ctx, req, &UPDATE).json::<UpdateBody>().caller(), read_named(ctx, req, &UPDATE), async {
            if named_tenants {
                read_tenants(ctx, slugs).await
            } else {
                None
            }
        });
    let (caller, params, body) = caller?;
    caller.require_platform_admin()?;
    let subject = subject_param(&params)?;
    let db = ctx.db()?;
    let (user, before) = found(&subject)?;
    let mut tenants = tenants;

    let mut set = Map::new();
    let mut unset = Map::new();
    let mut changed: Vec<&str> = Vec::new();
    if let Some(e) = &body.email {
        set.insert("email".into(), json!(e));
        changed.push("email");
    }
    if let Some(n) = &body.name {
        set.insert("name".into(), json!(n));
        changed.push("name");
    }
    if let Some(r) = body.role {
        set.insert("role".into(), json!(r));
        changed.push("role");
    }
    if let Some(a) = body.active {
        set.insert("active".into(), json!(a));
        changed.push("active");
    }
    if let Some(p) = body.platform_admin {
        set.insert("platformAdmin".into(), json!(p));
        changed.push("platformAdmin");
    }
    if let Some(slugs) = &body.tenant_slugs {
        let ids = match tenants.take() {
            Some(ids) => ids?,
            None => resolve_tenants(&db, slugs).await?,
        };
        // Roles of tenants the user leaves go with the membership.
        for key in user.tenant_roles.keys() {
            if !ids.iter().any(|t| &t.to_hex() == key) {
                unset.insert(format!("tenantRoles.{key}"), json!(""));
            }
        }
        set.insert("tenantIds".into(), json!(ids));
        changed.push("tenantIds");
    }
    // What the document is after the update, composed rather than read
    // back (the Data API has no findOneAndUpdate): `$set` as MongoDB
    // applies it, then the roles unset.
    let mut after = with_set(&before, &set.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>(), &ctx.now);
    if let Some(Value::Object(roles)) = after.get_mut("tenantRoles") {
        for key in unset.keys() {
            roles.remove(key.trim_start_matches("tenantRoles."));
        }
    }
    set.insert("updatedAt".into(), ctx.now.ejson());
    let mut update = json!({ "$set": set });
    if !unset.is_empty() {
        update["$unset"] = Value::Object(unset);
    }
    let filter = json!({ "_id": user.id });
    // The change and its event, concurrently (each undone if the other fails).
    let write = async {
        if db.update_one(coll::USERS, filter.clone(), update, false).await?.matched == 0 {
            return Err(user_not_found(subject.as_str()));
        }
        Ok(())
    };
    let event = AuditEvent::user("user.updated", subject.as_str(), user.email.as_str()).metadata(json!({ "fields": changed }));
    // Undone only while the document carries this request's stamp: a
    // later writer's change stands.
    let ours = json!({ "_id": user.id, "updatedAt": ctx.now.ejson() });
    let undo = || async { db.replace_one(coll::USERS, ours.clone(), before.clone(), false).await.map(|_| ()) };
    audited(ctx, &caller, event, write, undo).await?;
    Ok(ApiResponse::ok(to_api_json(after)))
}

/// Row 6: `204`.
pub async fn deactivate<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (caller, found) = futures::join!(prologue(ctx, req, &DEACTIVATE).caller(), read_named(ctx, req, &DEACTIVATE));
    let (caller, params, ()) = caller?;
    caller.require_platform_admin()?;
    let subject = subject_param(&params)?;
    let db = ctx.db()?;
    let (user, _) = found(&subject)?;
    let filter = json!({ "_id": user.id });
    let write = async {
        db.update_one(coll::USERS, filter.clone(), json!({ "$set": { "active": false, "updatedAt": ctx.now.ejson() } }), false)
            .await
            .map(|_| ())
            .map_err(Error::from)
    };
    // The subject, as every user event names its person (docs/api.md).
    let event = AuditEvent::user("user.deactivated", subject.as_str(), user.email.as_str());
    let undo =
        || async { db.update_one(coll::USERS, filter.clone(), json!({ "$set": { "active": user.active } }), false).await.map(|_| ()) };
    audited(ctx, &caller, event, write, undo).await?;
    Ok(ApiResponse::no_content())
}
