//! The `partner-*` routes: the partner portal, rows 11–16
//! (`/users/me/partner/…`), where a partner's staff see their team,
//! customers, activity and revenue (the partner is always the caller's own
//! `User.partnerId`; the counting runs in the database, see
//! [`crate::reports`]); and rows 9–10 (`/partners/:slug/users…`), a
//! partner's users for platform admins. Here, what they share: the staff
//! check, the partner a path names, the subscription stages.

pub mod activity;
pub mod mrr;
pub mod reports;
pub mod team;
pub mod team_remove;
pub mod tenants;
pub mod users_invite;
pub mod users_list;

use crate::caller::Caller;
use crate::ctx::Ctx;
use crate::data_api::{coll, Stage};
use crate::ejson::{DateTime, ObjectId};
use crate::models::{Partner, User};
use crate::ports::Http;
use crate::problem::Error;
use crate::types::Slug;
use serde_json::json;

/// The partner a path names (`None`: no such partner, or a slug that is
/// not one); read concurrently with the caller, so a caller refused
/// later has only read.
async fn find_partner<H: Http>(ctx: &Ctx<H>, slug: Option<&Slug>) -> Result<Option<Partner>, Error> {
    let Some(slug) = slug else { return Ok(None) };
    Ok(ctx.db()?.find_one_as::<Partner>(coll::PARTNERS, json!({ "slug": slug })).await?.map(|(p, _)| p))
}

fn partner_not_found() -> Error {
    Error::not_found("Partner not found")
}

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

fn since_30d<H>(ctx: &Ctx<H>) -> DateTime {
    DateTime(ctx.now.millis() - 30 * DAY_MS)
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
            pipeline: crate::reports::active_subscriptions(),
            as_field: "subs",
        },
    ]
}
