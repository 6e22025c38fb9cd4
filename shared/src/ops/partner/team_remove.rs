//! `partner-team-remove`: POST /users/me/partner/users/:subject/remove —
//! detach a user from the caller's partner (docs/api.md row 12).

use crate::audit::AuditEvent;
use crate::authentik::AkGroup;
use crate::ctx::Ctx;
use crate::data_api::{coll, decode, DataApi, Stage};
use crate::ejson::ObjectId;
use crate::models::User;
use crate::ops::prologue::prologue;
use crate::ops::saga::{audited, best_effort};
use crate::ops::user_doc::{identity_or_by_email, put_back};
use crate::ports::Http;
use crate::problem::{Error, UpstreamError};
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use crate::types::Subject;
use serde_json::{json, Value};

use super::{partner_of, staff, Need};
use crate::ops::answers::{answer, Removed};

pub const TEAM_REMOVE: Route = routes::route("partner-team-remove");

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
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
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
                let _ = crate::ops::undo::retried(&what, || rejoin(&db, &target)).await;
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
    Ok(answer(200, &Removed { removed: true }))
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
        Stage::Match(User::by_subject(subject)),
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
