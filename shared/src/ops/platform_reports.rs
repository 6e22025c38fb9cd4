//! `platform-reports`: GET /platform/reports — the platform's analytics
//! (docs/api.md row 8).

use crate::ctx::Ctx;
use crate::data_api::{coll, Sort, Stage};
use crate::models::{Named, TenantStatus};
use crate::ops::prologue::prologue;
use crate::ports::Http;
use crate::problem::Error;
use crate::reports::{self, facet, int_of, str_of};
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use serde_json::{json, Value};

pub const REPORTS: Route = routes::route("platform-reports");

/// Row 8: tenants by status, revenue by plan, totals, the top 10
/// subscriptions by monthly amount and signups per month — two pipelines
/// (tenants, subscriptions) run concurrently.
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (caller, _, ()) = prologue(ctx, req, &REPORTS).caller().await?;
    caller.require_platform_admin()?;
    let tenants = [Stage::Facet(vec![
        ("status", vec![Stage::Group(json!({ "_id": "$status", "n": { "$sum": 1 } }))]),
        ("growth", reports::by_month(json!({}))),
    ])];
    let mut subscriptions = reports::active_subscriptions();
    let plans = reports::revenue_by_plan("");
    let top = vec![
        // Ties on the amount: the older subscription first (the seed's
        // stable sort over subscriptions in natural order).
        Stage::Sort(Sort::desc("monthlyMinor").then_asc("_id")),
        Stage::Limit(10),
        Stage::LookupPipeline {
            from: coll::TENANTS,
            local_field: "tenantId",
            foreign_field: "_id",
            pipeline: vec![Stage::Project(json!({ "_id": 0, "name": 1 }))],
            as_field: "tenant",
        },
    ];
    subscriptions.push(Stage::Facet(vec![("plans", plans), ("totals", reports::totals("")), ("top", top)]));
    let db = ctx.db()?;
    let (t, s) = futures::join!(db.aggregate(coll::TENANTS, &tenants), db.aggregate(coll::SUBSCRIPTIONS, &subscriptions));
    let (t, s) = (t?, s?);
    // The statuses counted (the seed's `statusCounts`), each from 0;
    // `total` counts every tenant, whatever its status.
    let mut counts = json!({});
    for st in TenantStatus::ALL {
        counts[st.as_str()] = json!(0);
    }
    counts["total"] = json!(0);
    let mut total = 0;
    for g in facet(&t, "status") {
        let n = int_of(g, "n");
        total += n;
        if let Some(status) = g.get("_id").and_then(Value::as_str).and_then(TenantStatus::parse) {
            counts[status.as_str()] = json!(n);
        }
    }
    counts["total"] = json!(total);
    let growth: Vec<Value> =
        facet(&t, "growth").iter().map(|g| json!({ "month": str_of(g, "_id"), "count": int_of(g, "count") })).collect();
    let top: Vec<Value> = facet(&s, "top")
        .iter()
        .map(|r| {
            let tenant_id = reports::id_of(r, "tenantId");
            // A subscription whose tenant is gone is named by its id, as in the seed.
            let name = r.pointer("/tenant/0/name").filter(|n| n.is_string()).cloned().unwrap_or_else(|| tenant_id.clone());
            json!({
                "tenantId": tenant_id,
                "tenantName": name,
                "plan": str_of(r, "plan"),
                "currency": str_of(r, "currency"),
                "monthlyMinor": int_of(r, "monthlyMinor"),
            })
        })
        .collect();
    Ok(ApiResponse::ok(json!({
        "tenants": counts,
        "revenueByPlan": reports::plan_rows(facet(&s, "plans")),
        "totals": reports::ordered_totals(facet(&s, "totals")),
        "topTenants": top,
        "growth": growth,
    })))
}
