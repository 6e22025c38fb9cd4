//! Row 1, `GET /users/me`: the caller's own `User`, created or refreshed
//! from the token (the seed's `upsertFromAuthentik` + `meWithPartner`).

use serde_json::{json, Value};

use crate::caller::verify_token;
use crate::ctx::Ctx;
use crate::data_api::{coll, Find, Stage};
use crate::ejson::to_api_json;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::types::Slug;

pub const ROUTE: Route = Route::get("/users/me");

pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    ROUTE.check_method(&req.method)?;
    let token = verify_token(ctx, req).await?;
    req.no_body()?;
    let groups = ctx.groups();
    let db = ctx.db()?;

    // Tenant groups in the token name tenants by slug. Only well-formed
    // slugs reach the filter.
    let slugs: Vec<Slug> = token
        .groups
        .iter()
        .filter_map(|g| g.strip_prefix(groups.tenant_prefix.as_str()))
        .filter_map(|s| Slug::parse(s).ok())
        .collect();
    let tenant_ids: Vec<Value> = if slugs.is_empty() {
        vec![]
    } else {
        db.find(coll::TENANTS, Find::filter(json!({ "slug": { "$in": slugs } })).project(json!({ "_id": 1 })))
            .await?
            .into_iter()
            .filter_map(|t| t.get("_id").cloned())
            .collect()
    };

    let now = ctx.now.ejson();
    let mut set = json!({
        "platformAdmin": token.groups.contains(&groups.platform_admin),
        "lastLoginAt": now,
        "updatedAt": now,
    });
    let mut on_insert = json!({ "role": "member", "active": true, "createdAt": now });
    match &token.email {
        Some(e) => set["email"] = json!(e),
        None => on_insert["email"] = json!(""),
    }
    match &token.name {
        Some(n) => set["name"] = json!(n),
        None => on_insert["name"] = json!(""),
    }
    // The database is the source of truth for memberships: a sign-in only
    // adds tenants the token names, never removes any.
    let mut update = json!({ "$set": set });
    if tenant_ids.is_empty() {
        on_insert["tenantIds"] = json!([]);
    } else {
        update["$addToSet"] = json!({ "tenantIds": { "$each": tenant_ids } });
    }
    update["$setOnInsert"] = on_insert;
    let filter = json!({ "authentikSubjectId": token.subject });
    db.update_one(coll::USERS, filter.clone(), update, true).await?;

    // Read back the user with its partner in one round trip.
    let mut docs = db
        .aggregate(
            coll::USERS,
            &[
                Stage::Match(filter),
                Stage::Limit(1),
                Stage::Lookup { from: coll::PARTNERS, local_field: "partnerId", foreign_field: "_id", as_field: "__partner" },
            ],
        )
        .await?;
    let mut user = docs.pop().ok_or_else(|| Error::Internal("user vanished after upsert".into()))?;
    let partner = user.as_object_mut().and_then(|m| m.remove("__partner"));
    // A partner deleted under the user is simply omitted (as the seed).
    if let Some(p) = partner.as_ref().and_then(|p| p.get(0)) {
        user["partner"] = json!({ "_id": p["_id"], "slug": p["slug"], "name": p["name"], "status": p["status"] });
    }
    Ok(ApiResponse::ok(to_api_json(user)))
}
