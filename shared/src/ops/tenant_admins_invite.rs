//! `tenant-admins-invite`: POST /tenants/:slug/admins/invite — invite or
//! attach a workspace admin (docs/api.md row 31).

use crate::access::TenantRule;
use crate::authentik::AkUser;
use crate::ctx::Ctx;
use crate::models::User;
use crate::ops::invite::{self, Invite, InviteAudit, InviteBody, Prefetch};
use crate::ops::prologue::prologue;
use crate::ops::tenant::not_provisioned;
use crate::ops::tenant::TenantScope;
use crate::ops::user_doc::stamp;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use crate::types::Role;
use serde_json::{json, Map, Value};

pub const INVITE_ADMIN: Route = routes::route("tenant-admins-invite");

/// Row 31: P or PT (a tenant admin cannot appoint more admins).
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    // The identity is read concurrently with the caller and the tenant.
    let read = |_: &_| Prefetch::read(ctx, req, None);
    let (scope, body, read) =
        prologue(ctx, req, &INVITE_ADMIN).json::<InviteBody>().tenant(TenantRule::PartnerOnly).with(read, |r, _, _| Ok(r)).await?;
    let TenantScope { caller, tenant, .. } = scope;
    let group = tenant.authentik_group_id.clone().ok_or_else(|| not_provisioned(&tenant))?;
    let role_key = format!("tenantRoles.{}", tenant.id);
    let update = |u: &AkUser, attached: bool| {
        // The per-tenant role is $set so an existing user becomes admin
        // here without changing their role elsewhere.
        let mut set = json!({ "authentikUserPk": u.pk });
        set[role_key.as_str()] = json!("admin");
        let mut on_insert = json!({ "role": "admin", "active": true, "platformAdmin": false });
        if attached {
            set["email"] = json!(u.email);
            on_insert["name"] = json!(body.name_for(u));
        } else {
            set["email"] = json!(body.email);
            set["name"] = json!(body.name);
        }
        stamp(ctx, json!({ "$set": set, "$setOnInsert": on_insert, "$addToSet": { "tenantIds": tenant.id } }))
    };
    let audit = InviteAudit {
        invited: "tenant.admin_invited",
        attached: "tenant.admin_attached",
        role: "admin",
        tenant_slug: Some(tenant.slug.clone()),
        partner_slug: None,
    };
    let mut attributes = Map::new();
    attributes.insert("tenantSlug".into(), json!(tenant.slug));
    // Already an admin (or the owner) of this tenant: nothing to grant.
    let granted = |doc: &Value| {
        serde_json::from_value::<User>(doc.clone())
            .is_ok_and(|u| u.belongs_to(&tenant.id) && matches!(u.role_for_tenant(&tenant.id), Some(Role::Admin | Role::Owner)))
    };
    let already = |_: &AkUser| Error::conflict(format!("{} is already an admin of this workspace.", body.email));
    let inv = Invite {
        email: &body.email,
        name: &body.name,
        group,
        attributes,
        user_update: &update,
        audit,
        check_attach: &|_, _| Ok(()),
        granted: &granted,
        already: &already,
    };
    invite::run(ctx, &caller, inv, read).await
}
