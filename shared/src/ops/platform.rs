//! Row 7, `POST /platform/operators/invite`: a new platform admin.

use serde_json::{json, Map};

use crate::authentik::Authentik;
use crate::config::UpstreamConfig;
use crate::ctx::Ctx;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};

use super::begin;
use super::invite::{self, stamp, Invite, InviteAudit, InviteBody};

pub const INVITE: Route = Route::post("/platform/operators/invite");

pub async fn invite<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (caller, _) = begin(ctx, req, &INVITE).await?;
    let body: InviteBody = req.json()?;
    caller.require_platform_admin()?;
    let cfg = UpstreamConfig::authentik(ctx.vars())?;
    let group = Authentik::new(&ctx.http, &cfg).ensure_group(&ctx.groups().platform_admin, json!({ "role": "platform-admin" })).await?;
    let update = |u: &crate::authentik::AkUser, _attached: bool| {
        stamp(ctx, json!({
            "$set": { "email": body.email, "name": body.name, "platformAdmin": true, "authentikUserPk": u.pk },
            "$setOnInsert": { "role": "admin", "active": true, "tenantIds": [] },
        }))
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
    let exists = |u: &crate::authentik::AkUser| Error::conflict(format!("User with email {} already exists in Authentik (uid={})", body.email, u.uid));
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
    )
    .await
}
