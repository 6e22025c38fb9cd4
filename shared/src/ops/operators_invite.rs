//! `operators-invite`: POST /platform/operators/invite — invite a platform
//! admin (docs/api.md row 7).

use crate::ctx::Ctx;
use crate::ops::invite::{self, Invite, InviteAudit, InviteBody, Prefetch};
use crate::ops::prologue::prologue;
use crate::ops::user_doc::stamp;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use serde_json::{json, Map};

pub const INVITE: Route = routes::route("operators-invite");

pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
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
