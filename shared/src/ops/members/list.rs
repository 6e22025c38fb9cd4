//! `members-list`: GET /tenants/:slug/members — a workspace's members
//! (docs/api.md row 17).

use crate::access::TenantRule;
use crate::ctx::Ctx;
use crate::data_api::{coll, Find, Sort};
use crate::ejson::to_api_json;
use crate::ops::prologue::prologue;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use serde_json::{json, Value};

pub const LIST: Route = routes::route("members-list");

/// Row 17: the tenant's users, newest first.
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (scope, ()) = prologue(ctx, req, &LIST).tenant(TenantRule::AdminsAndPartner).scope().await?;
    let users =
        ctx.db()?.find(coll::USERS, Find::filter(json!({ "tenantIds": scope.tenant.id })).sort(Sort::newest_first()).limit(50_000)).await?;
    Ok(ApiResponse::ok(to_api_json(Value::Array(users))))
}
