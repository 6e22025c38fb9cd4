//! `users-update`: POST /users/:subject/update — change a user (docs/api.md
//! row 5).

use crate::audit::AuditEvent;
use crate::ctx::Ctx;
use crate::data_api::coll;
use crate::ejson::to_api_json;
use crate::ops::prologue::prologue;
use crate::ops::saga::audited;
use crate::ops::user_doc::with_set;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use crate::types::{Email, PersonName, Role, Slug};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{read_named, read_tenants, resolve_tenants, subject_param, user_not_found};

pub const UPDATE: Route = routes::route("users-update");

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
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
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
