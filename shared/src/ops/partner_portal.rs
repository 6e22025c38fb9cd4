//! The partner portal, rows 11–16 (`/users/me/partner/…`): a partner's
//! staff see their team, customers, activity and revenue. The partner is
//! always the caller's own (`User.partnerId`); the counting runs in the
//! database (see [`crate::reports`]).

use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use crate::audit::AuditEvent;
use crate::authentik::AkGroup;
use crate::caller::Caller;
use crate::ctx::Ctx;
use crate::data_api::{coll, decode, DataApi, Find, Sort, Stage};
use crate::ejson::{to_api_json, DateTime, ObjectId};
use crate::models::User;
use crate::ports::Http;
use crate::problem::{Error, UpstreamError};
use crate::reports::{self, facet, int_of, js_round, str_of};
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use crate::types::Subject;

use super::prologue::prologue;
use super::saga::{audited, best_effort};
use super::user_doc::{identity_or_by_email, put_back};

pub const TEAM: Route = routes::route("partner-team");
pub const TEAM_REMOVE: Route = routes::route("partner-team-remove");
pub const TENANTS: Route = routes::route("partner-tenants");
pub const ACTIVITY: Route = routes::route("partner-activity");
pub const MRR: Route = routes::route("partner-mrr");
pub const REPORTS: Route = routes::route("partner-reports");

/// Authentik MFA lookups in flight at once on the team page.
const MFA_CONCURRENCY: usize = 8;
/// Row 14's page sizes.
const ACTIVITY_DEFAULT: u32 = 50;
const ACTIVITY_MAX: u32 = 200;
/// Lists the portal returns whole (a partner's staff and customers); the
/// Data API's `find` would stop at 1000 without a limit.
const ALL: u32 = 50_000;
const DAY_MS: i64 = 86_400_000;

/// Who on a partner's staff may call a route.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Any staff (rows 11, 13).
    Staff,
    /// Owners and admins (row 12).
    Admin,
    /// Owners and admins, or staff not scoped to some tenants (rows 14–16).
    AdminOrUnscoped,
}

/// The caller's partner: callers without one get the fixed `403`, before
/// any lookup.
fn partner_of(caller: &Caller) -> Result<ObjectId, Error> {
    caller.user.as_ref().and_then(|u| u.partner_id).ok_or_else(|| Error::forbidden("Only partner staff may use the partner portal."))
}

/// The caller's partner staff `User` and partner ([`partner_of`]); inactive
/// callers and roles too weak get `403`.
fn staff(caller: &Caller, need: Need) -> Result<(&User, ObjectId), Error> {
    let partner = partner_of(caller)?;
    let user = caller.user.as_ref().expect("partner_of found a user");
    let admin = user.global_role().is_some_and(|r| r.is_admin());
    let allowed = user.active
        && match need {
            Need::Staff => true,
            Need::Admin => admin,
            Need::AdminOrUnscoped => admin || user.partner_scope().is_none(),
        };
    if allowed {
        Ok((user, partner))
    } else if !user.active {
        Err(Error::forbidden("Your account is deactivated."))
    } else {
        Err(Error::forbidden("Your role in the partner organisation does not allow this."))
    }
}

/// Row 11: the partner's users, newest first, with `accessLevel`
/// (`all`/`scoped`), `accessCount` (null for all) and `mfaEnabled`
/// (confirmed authenticators; null when unknown: no Authentik pk, or the
/// lookup failed — never a failed page).
pub async fn team<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (caller, _, ()) = prologue(ctx, req, &TEAM).caller().await?;
    let (_, partner) = staff(&caller, Need::Staff)?;
    let docs = ctx.db()?.find(coll::USERS, Find::filter(json!({ "partnerId": partner })).sort(Sort::newest_first()).limit(ALL)).await?;
    let ak = ctx.authentik().ok();
    let mfa: Vec<Option<bool>> = stream::iter(docs.iter().map(|d| {
        let pk = d.get("authentikUserPk").and_then(crate::ejson::int);
        let ak = ak.as_ref();
        async move {
            let (pk, ak) = (pk?, ak?);
            ak.count_authenticators(pk).await.ok().map(|n| n > 0)
        }
    }))
    .buffered(MFA_CONCURRENCY)
    .collect()
    .await;
    let out: Vec<Value> = docs
        .into_iter()
        .zip(mfa)
        .map(|(doc, mfa)| {
            let scope = doc.get("partnerTenantAccess").and_then(Value::as_array).map(Vec::len).filter(|n| *n > 0);
            let mut v = to_api_json(doc);
            v["accessLevel"] = json!(if scope.is_some() { "scoped" } else { "all" });
            v["accessCount"] = json!(scope);
            v["mfaEnabled"] = json!(mfa);
            v
        })
        .collect();
    Ok(ApiResponse::ok(Value::Array(out)))
}

/// Row 12: detaches a user from the caller's partner (unsets `partnerId`
/// and `partnerTenantAccess`). A user outside the partner is `404`; the
/// last owner/admin cannot be removed (`409`); leaving the partner-staff
/// group in Authentik is best-effort, once the removal stands. Answers
/// `{removed: true}`.
///
/// (caller ∥ target with the partner's admins ∥ staff group) → (document
/// [→ the partner's admins again, when removing one] ∥ audit) → group
/// leave. The admins read first are a count-then-write: two admins
/// removing each other both pass it. So a removed admin is followed by a
/// second look, after the write; of two such removals the later look sees
/// the other's write, so both never stand. A removal that finds no
/// owner/admin left puts the user back and is a `409` (its event deleted,
/// the group untouched): one removal stands, or neither.
pub async fn team_remove<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    // Read concurrently with the caller, from the path as it will parse:
    // the target with its partner and that partner's admins, and the
    // staff group. The target's partner is the caller's whenever the
    // removal goes ahead, so these are the reads the caller's partner
    // would have named.
    let named = TEAM_REMOVE.params(req.path()).and_then(|p| Subject::parse(p.get("subject")).ok());
    let (caller, target, group) =
        futures::join!(prologue(ctx, req, &TEAM_REMOVE).caller(), read_target(ctx, named.as_ref()), find_staff_group(ctx));
    let (caller, params, ()) = caller?;
    let partner_id = partner_of(&caller)?;
    let raw = params.get("subject");
    let not_found = || Error::not_found(format!("User {raw} not found"));
    let subject = Subject::parse(raw).map_err(|_| not_found())?;
    let target = target?.filter(|t| t.user.partner_id == Some(partner_id)).ok_or_else(not_found)?;
    staff(&caller, Need::Admin)?;
    let removes_admin = target.user.global_role().is_some_and(|r| r.is_admin());
    if removes_admin && target.admins <= 1 {
        return Err(last_partner_admin());
    }
    let db = ctx.db()?;
    let write = async {
        let removed = db
            .update_one(
                coll::USERS,
                json!({ "_id": target.user.id, "partnerId": partner_id }),
                json!({ "$unset": { "partnerId": "", "partnerTenantAccess": "" }, "$set": { "updatedAt": ctx.now.ejson() } }),
                false,
            )
            .await?;
        if removed.matched == 0 {
            // A concurrent removal of the same user got there first (and
            // is the one audited).
            return Err(not_found());
        }
        if removes_admin {
            let kept = has_admin(&db, partner_id).await;
            if !matches!(kept, Ok(true)) {
                let what = format!("undo: putting {} back on partner {}", target.user.email, partner_id.to_hex());
                let _ = super::undo::retried(&what, || rejoin(&db, &target)).await;
                return Err(match kept {
                    Err(e) => e.into(),
                    Ok(_) => last_partner_admin(),
                });
            }
        }
        Ok(())
    };
    let mut event = AuditEvent::user("partner.user_removed", subject.as_str(), target.user.email.clone())
        .metadata(json!({ "partnerId": partner_id.to_hex() }));
    // Not in the seed: with the partner's slug the removal shows in the
    // partner's own activity feed (row 14).
    if let Some(slug) = &target.partner_slug {
        event = event.partner(slug);
    }
    audited(ctx, &caller, event, write, || rejoin(&db, &target)).await?;
    // Only now that the removal stands: a lost race must not leave the
    // user outside the group with their partner access back.
    leave_staff_group(ctx, &target.user, group).await;
    Ok(ApiResponse::ok(json!({ "removed": true })))
}

fn last_partner_admin() -> Error {
    Error::conflict("Cannot remove the last partner admin")
}

/// A partner's owners and admins (their global `role`).
fn partner_admin_filter() -> Value {
    json!({ "role": { "$in": ["owner", "admin"] } })
}

/// Whether `partner` has an owner or admin now.
async fn has_admin<H: Http>(db: &DataApi<'_, H>, partner: ObjectId) -> Result<bool, UpstreamError> {
    let mut filter = partner_admin_filter();
    filter["partnerId"] = json!(partner);
    Ok(db.find_one(coll::USERS, filter, Some(json!({ "_id": 1 }))).await?.is_some())
}

/// Undoes this request's removal: the partner fields (and the timestamp)
/// back as read, only while the user is on no partner, so an attach to
/// another partner made meanwhile stands.
async fn rejoin<H: Http>(db: &DataApi<'_, H>, target: &Target) -> Result<(), UpstreamError> {
    let filter = json!({ "_id": target.user.id, "partnerId": { "$exists": false } });
    let update = put_back(&target.doc, ["partnerId", "partnerTenantAccess", "updatedAt"]);
    db.update_one(coll::USERS, filter, update, false).await.map(|_| ())
}

/// Row 12's target: the `User`, as stored, with its partner's slug and
/// how many owners/admins that partner has (two at most: "more than one"
/// is all that is asked).
struct Target {
    user: User,
    doc: Value,
    partner_slug: Option<String>,
    admins: usize,
}

/// [`Target`] in one aggregate (`None`: no such user, or no subject).
async fn read_target<H: Http>(ctx: &Ctx<H>, subject: Option<&Subject>) -> Result<Option<Target>, Error> {
    let Some(subject) = subject else { return Ok(None) };
    let pipeline = [
        Stage::Match(json!({ "authentikSubjectId": subject })),
        Stage::Limit(1),
        Stage::LookupPipeline {
            from: coll::PARTNERS,
            local_field: "partnerId",
            foreign_field: "_id",
            pipeline: vec![Stage::Project(json!({ "_id": 0, "slug": 1 }))],
            as_field: "__partner",
        },
        Stage::LookupPipeline {
            from: coll::USERS,
            local_field: "partnerId",
            foreign_field: "partnerId",
            pipeline: vec![Stage::Match(partner_admin_filter()), Stage::Project(json!({ "_id": 1 })), Stage::Limit(2)],
            as_field: "__admins",
        },
    ];
    let Some(mut doc) = ctx.db()?.aggregate(coll::USERS, &pipeline).await?.into_iter().next() else { return Ok(None) };
    let mut take = |k: &str| match doc.as_object_mut().and_then(|m| m.remove(k)) {
        Some(Value::Array(v)) => v,
        _ => vec![],
    };
    let (partner, admins) = (take("__partner"), take("__admins").len());
    let partner_slug = partner.first().and_then(|p| p.get("slug")).and_then(Value::as_str).map(str::to_owned);
    Ok(Some(Target { user: decode(coll::USERS, &doc)?, doc, partner_slug, admins }))
}

/// The partner-staff group, if it exists (`None` too when Authentik is
/// not configured or the lookup failed: leaving it is best-effort).
async fn find_staff_group<H: Http>(ctx: &Ctx<H>) -> Option<AkGroup> {
    match ctx.authentik().ok()?.find_group(&ctx.groups().partner_staff).await {
        Ok(group) => group,
        Err(e) => {
            eprintln!("finding the partner-staff group failed: {e}");
            None
        }
    }
}

/// Best-effort: the user leaves the partner-staff group (the seed only
/// logged a failure). A missing group has nothing to leave.
async fn leave_staff_group<H: Http>(ctx: &Ctx<H>, user: &User, group: Option<AkGroup>) {
    let (Ok(ak), Some(group)) = (ctx.authentik(), group) else { return };
    let leave = async {
        match identity_or_by_email(&ak, user).await? {
            Some(pk) => ak.remove_from_group(&group.pk, pk).await,
            None => Ok(()),
        }
    };
    best_effort("leaving the partner-staff group", &user.email, leave).await;
}

/// Row 13: the partner's tenants (deleted ones too, with their status),
/// newest first, each with `userCount`, `newUserCount30d`, `healthScore`,
/// `healthBand`. Scoped staff see only the tenants they list.
pub async fn tenants<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
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

fn since_30d<H>(ctx: &Ctx<H>) -> DateTime {
    DateTime(ctx.now.millis() - 30 * DAY_MS)
}

/// Row 14's query: `limit` 1–200 (default 50), `before` an RFC 3339
/// instant with an offset; any other parameter value is a `400`.
fn activity_query(req: &ApiRequest) -> Result<(u32, Option<DateTime>), Error> {
    let q = req.query_params();
    if let Some(k) = q.keys().find(|k| !matches!(k.as_str(), "limit" | "before")) {
        return Err(Error::bad_request(format!("Unknown query parameter `{k}`.")));
    }
    let limit = match q.get("limit") {
        None => ACTIVITY_DEFAULT,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=ACTIVITY_MAX).contains(n) && s.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| Error::bad_request(format!("`limit` must be an integer from 1 to {ACTIVITY_MAX}.")))?,
    };
    let before = match q.get("before") {
        None => None,
        Some(s) => Some(
            DateTime::parse_rfc3339(s)
                .ok_or_else(|| Error::bad_request("`before` must be an RFC 3339 instant with an offset, e.g. 2026-01-31T12:00:00Z."))?,
        ),
    };
    Ok((limit, before))
}

/// Row 14: audit events with the partner's slug or on one of its tenants,
/// newest first (then `_id` descending), older than `before` if given.
///
/// One round trip after the caller: a pipeline from the partner joins its
/// tenants' slugs, then the newest `limit` events on those slugs and the
/// newest `limit` on the partner's own slug (each join through the events'
/// index), and merges the two lists in the database's order. An event naming
/// both the partner and one of its tenants is in both lists, adjacent after
/// the sort, and is kept once. Only string slugs join: a missing slug would
/// otherwise match every event without one.
pub async fn activity<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (caller, _, ()) = prologue(ctx, req, &ACTIVITY).caller().await?;
    let (limit, before) = activity_query(req)?;
    let (_, partner_id) = staff(&caller, Need::AdminOrUnscoped)?;
    let newest = |slug_field: &str| {
        let mut filter = json!({ slug_field: { "$type": "string" } });
        if let Some(b) = before {
            filter["createdAt"] = json!({ "$lt": b.ejson() });
        }
        vec![Stage::Match(filter), Stage::Sort(Sort::newest_first()), Stage::Limit(limit)]
    };
    let events = vec![
        Stage::Project(json!({ "_id": 0, "events": ["$__byTenant", "$__byPartner"] })),
        Stage::Unwind("$events"),
        Stage::Unwind("$events"),
        Stage::ReplaceRoot("$events"),
        Stage::Sort(Sort::newest_first()),
        Stage::Limit(2 * limit),
    ];
    let pipeline = [
        Stage::Match(json!({ "_id": partner_id })),
        Stage::LookupPipeline {
            from: coll::TENANTS,
            local_field: "_id",
            foreign_field: "partnerId",
            pipeline: vec![Stage::Match(json!({ "slug": { "$type": "string" } })), Stage::Project(json!({ "_id": 0, "slug": 1 }))],
            as_field: "__tenants",
        },
        Stage::LookupPipeline {
            from: coll::AUDIT_EVENTS,
            local_field: "__tenants.slug",
            foreign_field: "tenantSlug",
            pipeline: newest("tenantSlug"),
            as_field: "__byTenant",
        },
        Stage::LookupPipeline {
            from: coll::AUDIT_EVENTS,
            local_field: "slug",
            foreign_field: "partnerSlug",
            pipeline: newest("partnerSlug"),
            as_field: "__byPartner",
        },
        // `$facet` answers one document even when the partner is gone.
        Stage::Facet(vec![("events", events), ("partner", vec![Stage::Project(json!({ "_id": 1 }))])]),
    ];
    let db = ctx.db()?;
    let out = db.aggregate(coll::PARTNERS, &pipeline).await?;
    let events = if facet(&out, "partner").is_empty() {
        // The caller's partner was deleted under them: its tenants' events
        // still show, as before the partner went (one more round trip).
        let slugs = db
            .find(
                coll::TENANTS,
                Find::filter(json!({ "partnerId": partner_id, "slug": { "$type": "string" } }))
                    .project(json!({ "_id": 0, "slug": 1 }))
                    .limit(ALL),
            )
            .await?;
        let slugs: Vec<Value> = slugs.into_iter().filter_map(|t| t.get("slug").cloned()).collect();
        let mut stages = vec![Stage::Match(json!({ "tenantSlug": { "$in": slugs } }))];
        stages.extend(newest("tenantSlug"));
        db.aggregate(coll::AUDIT_EVENTS, &stages).await?
    } else {
        let mut events = facet(&out, "events").to_vec();
        events.dedup_by(|a, b| a.get("_id") == b.get("_id"));
        events.truncate(limit as usize);
        events
    };
    Ok(ApiResponse::ok(to_api_json(Value::Array(events))))
}

/// The partner's tenants joined with their active subscriptions
/// (`subs`, each with `monthlyMinor` and `custom`).
fn tenants_with_subscriptions(partner: ObjectId) -> Vec<Stage> {
    vec![
        Stage::Match(json!({ "partnerId": partner })),
        Stage::LookupPipeline {
            from: coll::SUBSCRIPTIONS,
            local_field: "_id",
            foreign_field: "tenantId",
            pipeline: reports::active_subscriptions(),
            as_field: "subs",
        },
    ]
}

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
pub async fn mrr<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
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

/// Row 16: portfolio health, revenue by plan, top 10 customers, signup
/// cohorts, totals and the partner's margin, from one pipeline.
pub async fn partner_reports<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
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
