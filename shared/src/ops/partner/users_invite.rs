//! `partner-users-invite`: POST /partners/:slug/users/invite — invite or
//! attach partner staff (docs/api.md row 10).

use crate::authentik::AkUser;
use crate::caller::Caller;
use crate::ctx::Ctx;
use crate::models::Partner;
use crate::ops::invite::{self, Invite, InviteAudit, InviteBody, Prefetch};
use crate::ops::prologue::prologue;
use crate::ops::user_doc::stamp;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use crate::types::Slug;
use serde_json::{json, Map, Value};

use super::{find_partner, partner_not_found};

pub const INVITE: Route = routes::route("partner-users-invite");

/// P, or PA of that partner: staff of another partner (or no partner) get
/// `404`, staff of this one without the admin role (or inactive) `403`.
fn authorize_partner_admin(caller: &Caller, partner: &Partner) -> Result<(), Error> {
    if caller.is_platform_admin() {
        return Ok(());
    }
    let user = caller.user.as_ref().filter(|u| u.partner_id == Some(partner.id)).ok_or_else(partner_not_found)?;
    if user.active && user.global_role().is_some_and(|r| r.is_admin()) {
        Ok(())
    } else {
        Err(Error::forbidden("Only the partner's owners and admins may invite staff."))
    }
}

pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let group_name = &ctx.groups().partner_staff;
    // The caller, the partner, the group and the identity are read
    // concurrently (the partner from the path as it will parse).
    let slug = INVITE.params(req.path()).and_then(|p| Slug::parse(p.get("slug")).ok());
    let (caller, partner, mut read) = futures::join!(
        prologue(ctx, req, &INVITE).json::<InviteBody>().caller(),
        find_partner(ctx, slug.as_ref()),
        Prefetch::read(ctx, req, Some(group_name))
    );
    let (caller, _, body) = caller?;
    let partner = partner?.ok_or_else(partner_not_found)?;
    authorize_partner_admin(&caller, &partner)?;
    let group = read.group(ctx, group_name, json!({ "role": "partner-staff" })).await?;
    let update = |u: &AkUser, attached: bool| {
        let (email, name) =
            if attached { (u.email.clone(), body.name_for(u).to_owned()) } else { (body.email.to_string(), body.name.to_string()) };
        // On attach the local name is kept (only seeded on insert).
        let mut set = json!({ "email": email, "partnerId": partner.id, "authentikUserPk": u.pk });
        let mut on_insert = json!({ "role": "member", "active": true, "tenantIds": [], "platformAdmin": false });
        if attached {
            on_insert["name"] = json!(name);
        } else {
            set["name"] = json!(name);
        }
        stamp(ctx, json!({ "$set": set, "$setOnInsert": on_insert }))
    };
    let audit = InviteAudit {
        invited: "partner.user_invited",
        attached: "partner.user_attached",
        role: "partner-staff",
        tenant_slug: None,
        partner_slug: Some(partner.slug.clone()),
    };
    // Moving someone silently from another partner would erase that relation.
    let check = |_: &AkUser, local: Option<&Value>| {
        let other = local.and_then(partner_of);
        match other {
            Some(p) if p != partner.id => {
                Err(Error::conflict(format!("User {} already belongs to partner {p} — detach them from that partner first.", body.email)))
            }
            _ => Ok(()),
        }
    };
    let mut attributes = Map::new();
    attributes.insert("partnerSlug".into(), json!(partner.slug));
    // Already staff of this partner: nothing to grant.
    let granted = |doc: &Value| partner_of(doc) == Some(partner.id);
    let already = |_: &AkUser| Error::conflict(format!("User {} already belongs to partner {}.", body.email, partner.id));
    let inv = Invite {
        email: &body.email,
        name: &body.name,
        group: group.pk,
        attributes,
        user_update: &update,
        audit,
        check_attach: &check,
        granted: &granted,
        already: &already,
    };
    invite::run(ctx, &caller, inv, read).await
}

/// The partner a `User` document names.
fn partner_of(doc: &Value) -> Option<crate::ejson::ObjectId> {
    doc.get("partnerId").and_then(|p| serde_json::from_value(p.clone()).ok())
}
