//! `partner-reports`: GET /users/me/partner/reports — the caller's partner's
//! analytics (docs/api.md row 16).

use crate::ctx::Ctx;
use crate::data_api::{coll, Sort, Stage};
use crate::ejson::to_api_json;
use crate::ops::prologue::prologue;
use crate::ports::Http;
use crate::problem::Error;
use crate::reports::{self, facet, int_of, js_round, str_of};
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use serde_json::{json, Value};

use super::{since_30d, staff, tenants_with_subscriptions, Need};

pub const REPORTS: Route = routes::route("partner-reports");

/// Row 16: portfolio health, revenue by plan, top 10 customers, signup
/// cohorts, totals and the partner's margin, from one pipeline.
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (caller, _, ()) = prologue(ctx, req, &REPORTS).caller().await?;
    let (_, partner_id) = staff(&caller, Need::AdminOrUnscoped)?;
    let mut health = vec![Stage::Match(json!({ "status": { "$ne": "deleted" } })), reports::user_counts(since_30d(ctx))];
    health.extend(reports::with_health());
    health.push(Stage::Group(json!({
        "_id": null,
        "total": { "$sum": 1 },
        "scoreSum": { "$sum": "$healthScore" },
        "healthy": { "$sum": { "$cond": [{ "$eq": ["$healthBand", "healthy"] }, 1, 0] } },
        "watch": { "$sum": { "$cond": [{ "$eq": ["$healthBand", "watch"] }, 1, 0] } },
    })));
    let cohorts = reports::by_month(json!({ "retained": { "$sum": { "$cond": [{ "$eq": ["$status", "active"] }, 1, 0] } } }));
    let mut subs = vec![Stage::Unwind("$subs")];
    let mut plans = subs.clone();
    plans.extend(reports::revenue_by_plan("subs."));
    let mut totals = subs.clone();
    totals.extend(reports::totals("subs."));
    subs.extend([
        // Ties on the amount: the older subscription first (the seed's
        // stable sort over subscriptions in natural order).
        Stage::Sort(Sort::desc("subs.monthlyMinor").then_asc("subs._id")),
        Stage::Limit(10),
        Stage::Project(json!({ "_id": 0, "tenantId": "$_id", "tenantName": "$name",
            "currency": "$subs.currency", "monthlyMinor": "$subs.monthlyMinor", "custom": "$subs.custom" })),
    ]);
    let mut pipeline = tenants_with_subscriptions(partner_id);
    pipeline.push(Stage::Facet(vec![("health", health), ("cohorts", cohorts), ("plans", plans), ("top", subs), ("totals", totals)]));
    let db = ctx.db()?;
    let (out, partner) = futures::join!(
        db.aggregate(coll::TENANTS, &pipeline),
        db.find_one(coll::PARTNERS, json!({ "_id": partner_id }), Some(json!({ "marginPct": 1 }))),
    );
    let (out, partner) = (out?, partner?);
    let h = facet(&out, "health").first().cloned().unwrap_or(Value::Null);
    let total = int_of(&h, "total");
    let (healthy, watch) = (int_of(&h, "healthy"), int_of(&h, "watch"));
    let avg = if total > 0 { js_round(int_of(&h, "scoreSum") as f64 / total as f64) } else { 0 };
    let cohorts: Vec<Value> = facet(&out, "cohorts")
        .iter()
        .map(|c| {
            let (total, retained) = (int_of(c, "count"), int_of(c, "retained"));
            // As the seed: Math.round((retained / total) * 100) in doubles.
            let pct = if total > 0 { js_round(retained as f64 / total as f64 * 100.0) } else { 0 };
            json!({ "month": str_of(c, "_id"), "total": total, "retained": retained, "retentionPct": pct })
        })
        .collect();
    let top: Vec<Value> = facet(&out, "top")
        .iter()
        .map(|r| {
            json!({
                "tenantId": reports::id_of(r, "tenantId"),
                "tenantName": str_of(r, "tenantName"),
                "currency": str_of(r, "currency"),
                "monthlyMinor": int_of(r, "monthlyMinor"),
                "custom": r.get("custom").and_then(Value::as_bool).unwrap_or(false),
            })
        })
        .collect();
    let margin =
        partner.as_ref().and_then(|p| p.get("marginPct")).map(|m| to_api_json(m.clone())).filter(Value::is_number).unwrap_or(json!(0));
    Ok(ApiResponse::ok(json!({
        "health": { "healthy": healthy, "watch": watch, "atRisk": total - healthy - watch, "total": total, "avgScore": avg },
        "revenueByPlan": reports::plan_rows(facet(&out, "plans")),
        "topCustomers": top,
        "churnCohorts": cohorts,
        "totals": reports::ordered_totals(facet(&out, "totals")),
        "marginPct": margin,
    })))
}
