//! `users-list`: GET /users — the user directory (docs/api.md row 2).

use crate::access::administered_tenants;
use crate::ctx::Ctx;
use crate::data_api::{coll, Find, Sort};
use crate::ejson::to_api_json;
use crate::ops::prologue::prologue;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use serde_json::{json, Value};

pub const LIST: Route = routes::route("users-list");

/// Row 2: P sees everyone; a tenant admin the users of the tenants they
/// administer (deleted tenants excluded); anyone else `403`.
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
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
