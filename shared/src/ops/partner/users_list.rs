//! `partner-users-list`: GET /partners/:slug/users — a partner's users, for
//! platform admins (docs/api.md row 9).

use crate::ctx::Ctx;
use crate::data_api::{coll, Find, Sort};
use crate::ejson::to_api_json;
use crate::ops::prologue::prologue;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use crate::types::Slug;
use serde_json::{json, Value};

use super::{find_partner, partner_not_found};

pub const USERS: Route = routes::route("partner-users-list");

/// Row 9 (P): the partner's users, newest first (`_id` descending on ties).
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let slug = USERS.params(req.path()).and_then(|p| Slug::parse(p.get("slug")).ok());
    let (caller, partner) = futures::join!(prologue(ctx, req, &USERS).caller(), find_partner(ctx, slug.as_ref()));
    let (caller, _, ()) = caller?;
    caller.require_platform_admin()?;
    let partner = partner?.ok_or_else(partner_not_found)?;
    let users =
        ctx.db()?.find(coll::USERS, Find::filter(json!({ "partnerId": partner.id })).sort(Sort::newest_first()).limit(50_000)).await?;
    Ok(ApiResponse::ok(to_api_json(Value::Array(users))))
}
