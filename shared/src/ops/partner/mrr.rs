//! `partner-mrr`: GET /users/me/partner/mrr — the caller's partner's monthly
//! recurring revenue (docs/api.md row 15).

use crate::ctx::Ctx;
use crate::data_api::{coll, Sort, Stage};
use crate::ops::prologue::prologue;
use crate::ports::Http;
use crate::problem::Error;
use crate::reports::{self, facet, int_of, str_of};
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use serde_json::{json, Value};

use super::{staff, tenants_with_subscriptions, Need};

pub const MRR: Route = routes::route("partner-mrr");

/// One row per active subscription, sorted by the subscription's `_id`
/// (creation order: the seed listed them in natural order).
fn subscription_rows() -> Vec<Stage> {
    vec![
        Stage::Unwind("$subs"),
        Stage::Sort(Sort::asc("subs._id")),
        Stage::Project(json!({
            "_id": 0,
            "tenantId": "$_id", "tenantSlug": "$slug", "tenantName": "$name",
            "plan": "$subs.plan", "cycle": "$subs.cycle", "currency": "$subs.currency", "seats": "$subs.seats",
            "monthlyMinor": "$subs.monthlyMinor", "custom": "$subs.custom",
        })),
    ]
}

/// Row 15: `{totals, breakdown}`, per subscription and per currency.
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (caller, _, ()) = prologue(ctx, req, &MRR).caller().await?;
    let (_, partner) = staff(&caller, Need::AdminOrUnscoped)?;
    let mut pipeline = tenants_with_subscriptions(partner);
    pipeline.extend(subscription_rows());
    pipeline.push(Stage::Facet(vec![("breakdown", vec![]), ("totals", reports::totals(""))]));
    let out = ctx.db()?.aggregate(coll::TENANTS, &pipeline).await?;
    let breakdown: Vec<Value> = facet(&out, "breakdown")
        .iter()
        .map(|r| {
            json!({
                "tenantId": reports::id_of(r, "tenantId"),
                "tenantSlug": str_of(r, "tenantSlug"),
                "tenantName": str_of(r, "tenantName"),
                "plan": str_of(r, "plan"),
                "cycle": str_of(r, "cycle"),
                "currency": str_of(r, "currency"),
                "seats": int_of(r, "seats"),
                "monthlyMinor": int_of(r, "monthlyMinor"),
                "custom": r.get("custom").and_then(Value::as_bool).unwrap_or(false),
            })
        })
        .collect();
    Ok(ApiResponse::ok(json!({ "totals": reports::ordered_totals(facet(&out, "totals")), "breakdown": breakdown })))
}
