//! `partner-tenants`: GET /users/me/partner/tenants — the caller's partner's
//! workspaces with health (docs/api.md row 13).

use crate::ctx::Ctx;
use crate::data_api::{coll, Sort, Stage};
use crate::ejson::to_api_json;
use crate::ops::prologue::prologue;
use crate::ports::Http;
use crate::problem::Error;
use crate::reports::{self};
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use serde_json::{json, Value};

use super::{since_30d, staff, Need};

pub const TENANTS: Route = routes::route("partner-tenants");

/// Row 13: the partner's tenants (deleted ones too, with their status),
/// newest first, each with `userCount`, `newUserCount30d`, `healthScore`,
/// `healthBand`. Scoped staff see only the tenants they list.
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (caller, _, ()) = prologue(ctx, req, &TENANTS).caller().await?;
    let (user, partner) = staff(&caller, Need::Staff)?;
    let mut filter = json!({ "partnerId": partner });
    if let Some(scope) = user.partner_scope() {
        filter["_id"] = json!({ "$in": scope });
    }
    let mut pipeline = vec![Stage::Match(filter), Stage::Sort(Sort::newest_first()), reports::user_counts(since_30d(ctx))];
    pipeline.extend(reports::with_health());
    let docs = ctx.db()?.aggregate(coll::TENANTS, &pipeline).await?;
    Ok(ApiResponse::ok(to_api_json(Value::Array(docs))))
}
