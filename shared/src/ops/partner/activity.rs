//! `partner-activity`: GET /users/me/partner/activity — the caller's
//! partner's audit events (docs/api.md row 14).

use crate::ctx::Ctx;
use crate::data_api::{coll, Find, Sort, Stage};
use crate::ejson::{to_api_json, DateTime};
use crate::ops::prologue::prologue;
use crate::ports::Http;
use crate::problem::Error;
use crate::reports::facet;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use serde_json::{json, Value};

use super::{staff, Need, ALL};

pub const ACTIVITY: Route = routes::route("partner-activity");

/// Row 14's page sizes.
const ACTIVITY_DEFAULT: u32 = 50;

const ACTIVITY_MAX: u32 = 200;

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
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
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
