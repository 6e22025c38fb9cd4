//! `users-create`: POST /users/create — create a user document (docs/api.md
//! row 4).

use crate::audit::AuditEvent;
use crate::ctx::Ctx;
use crate::data_api::coll;
use crate::ejson::to_api_json;
use crate::models::User;
use crate::ops::prologue::prologue;
use crate::ops::saga::audited;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use crate::types::{Email, PersonName, Role, Slug, Subject};
use serde::Deserialize;
use serde_json::{json, Map};

use super::read_tenants;

pub const CREATE: Route = routes::route("users-create");

fn already_exists(subject: &Subject) -> Error {
    Error::conflict(format!("User {subject} already exists"))
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

/// Row 4.
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    // The body is parsed first but reported after the caller (401 before
    // 400); whenever it parses, the subject's document and the tenants
    // are read concurrently with the caller.
    let parsed = req.json::<CreateBody>();
    let reads = async {
        let body = parsed.as_ref().ok()?;
        let taken = async {
            Ok::<_, Error>(ctx.db()?.find_one(coll::USERS, User::by_subject(&body.authentik_subject_id), Some(json!({ "_id": 1 }))).await?)
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
        User::SUBJECT: subject,
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
        match db.insert_unless_exists(coll::USERS, User::by_subject(subject), doc.clone()).await? {
            true => Ok(()),
            false => Err(already_exists(subject)),
        }
    };
    let undo = || async { db.delete_one(coll::USERS, json!({ "_id": id })).await.map(|_| ()) };
    audited(ctx, &caller, event, write, undo).await?;
    Ok(ApiResponse::created(to_api_json(doc)))
}
