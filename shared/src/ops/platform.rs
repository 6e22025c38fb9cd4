//! Row 7, `POST /platform/operators/invite`: a new platform admin; row 8,
//! `GET /platform/reports`: the platform's analytics.

use serde_json::{json, Map, Value};

use crate::ctx::Ctx;
use crate::data_api::{coll, Sort, Stage};
use crate::ports::Http;
use crate::problem::Error;
use crate::reports::{self, facet, int_of, str_of};
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;

use super::invite::{self, Invite, InviteAudit, InviteBody, Prefetch};
use super::prologue::prologue;
use super::user_doc::stamp;

pub const INVITE: Route = routes::route("operators-invite");
pub const REPORTS: Route = routes::route("platform-reports");

/// The statuses counted (the seed's `statusCounts`); `total` counts every tenant.
const STATUSES: [&str; 4] = ["active", "pending", "suspended", "deleted"];

/// Row 8: tenants by status, revenue by plan, totals, the top 10
/// subscriptions by monthly amount and signups per month — two pipelines
/// (tenants, subscriptions) run concurrently.
pub async fn platform_reports<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
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
    let mut counts = json!({ "active": 0, "pending": 0, "suspended": 0, "deleted": 0, "total": 0 });
    let mut total = 0;
    for g in facet(&t, "status") {
        let n = int_of(g, "n");
        total += n;
        if let Some(status) = g.get("_id").and_then(Value::as_str).filter(|st| STATUSES.contains(st)) {
            counts[status] = json!(n);
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

pub async fn invite<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let group_name = &ctx.groups().platform_admin;
    // The caller, the group and the identity are read concurrently.
    let (caller, mut read) =
        futures::join!(prologue(ctx, req, &INVITE).json::<InviteBody>().caller(), Prefetch::read(ctx, req, Some(group_name)));
    let (caller, _, body) = caller?;
    caller.require_platform_admin()?;
    let group = read.group(ctx, group_name, json!({ "role": "platform-admin" })).await?;
    let update = |u: &crate::authentik::AkUser, _attached: bool| {
        stamp(
            ctx,
            json!({
                "$set": { "email": body.email, "name": body.name, "platformAdmin": true, "authentikUserPk": u.pk },
                "$setOnInsert": { "role": "admin", "active": true, "tenantIds": [] },
            }),
        )
    };
    let audit = InviteAudit {
        invited: "platform.user_invited",
        attached: "platform.user_attached",
        role: "platform-admin",
        tenant_slug: None,
        partner_slug: None,
    };
    // Operators are always new identities: a clean conflict instead of
    // Authentik's unfriendly duplicate error.
    let exists = |u: &crate::authentik::AkUser| {
        Error::conflict(format!("User with email {} already exists in Authentik (uid={})", body.email, u.uid))
    };
    let never_attach = |u: &crate::authentik::AkUser, _: Option<&serde_json::Value>| Err(exists(u));
    invite::run(
        ctx,
        &caller,
        Invite {
            email: &body.email,
            name: &body.name,
            group: group.pk,
            attributes: Map::new(),
            user_update: &update,
            audit,
            check_attach: &never_attach,
            granted: &|_| true,
            already: &exists,
        },
        read,
    )
    .await
}
