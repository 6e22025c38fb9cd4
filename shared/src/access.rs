//! Authorisation rules of docs/api.md as plain functions over the caller and the
//! resource: visibility first (`404` without a relation, never leaking
//! existence), then role (`403`).

use crate::caller::Caller;
use crate::ejson::ObjectId;
use crate::models::{Tenant, User};
use crate::problem::Error;

/// Who may act on a tenant-scoped route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantRule {
    /// P, TA(t), PT(t) — rows 17–30.
    AdminsAndPartner,
    /// P, PT(t) — row 31 (a tenant admin cannot invite more admins).
    PartnerOnly,
}

/// How the caller relates to a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantRelation {
    Platform,
    /// Staff of the owning partner, within their scope.
    Partner,
    /// A member of the tenant; `admin` when their role there is owner/admin.
    Member {
        admin: bool,
    },
    None,
}

/// PT(t): partner staff of the partner owning `t`, unscoped or scoped to `t`.
pub fn is_partner_of(user: &User, tenant: &Tenant) -> bool {
    match (user.partner_id, tenant.partner_id) {
        (Some(p), Some(tp)) if p == tp => user.partner_scope().is_none_or(|scope| scope.contains(&tenant.id)),
        _ => false,
    }
}

/// TA(t) without the `active` check: member with role owner/admin there.
pub fn is_admin_of(user: &User, tenant: &ObjectId) -> bool {
    user.belongs_to(tenant) && user.role_for_tenant(tenant).is_some_and(|r| r.is_admin())
}

/// How the caller relates to `tenant`, whether or not they are active
/// (being inactive is a role too weak, decided by [`authorize_tenant`]).
pub fn tenant_relation(caller: &Caller, tenant: &Tenant) -> TenantRelation {
    if caller.has_platform_role() {
        return TenantRelation::Platform;
    }
    let Some(user) = caller.user.as_ref() else { return TenantRelation::None };
    if tenant.is_deleted() {
        return TenantRelation::None;
    }
    if is_partner_of(user, tenant) {
        TenantRelation::Partner
    } else if user.belongs_to(&tenant.id) {
        TenantRelation::Member { admin: is_admin_of(user, &tenant.id) }
    } else {
        TenantRelation::None
    }
}

/// The tenant check of rows 17–31: `404` when the caller has no relation
/// to the tenant (or it is deleted and they are not P), `403` when the
/// relation is too weak or the caller's `User` is inactive.
pub fn authorize_tenant(caller: &Caller, tenant: &Tenant, rule: TenantRule) -> Result<TenantRelation, Error> {
    let relation = tenant_relation(caller, tenant);
    let active = caller.user.as_ref().is_none_or(|u| u.active);
    let allowed = match relation {
        TenantRelation::Platform => active,
        TenantRelation::None => return Err(tenant_not_found()),
        TenantRelation::Partner => active,
        TenantRelation::Member { admin } => active && admin && rule == TenantRule::AdminsAndPartner,
    };
    if allowed {
        Ok(relation)
    } else {
        Err(Error::forbidden("You do not have permission to manage this workspace."))
    }
}

pub fn tenant_not_found() -> Error {
    Error::not_found("Workspace not found")
}

/// Tenants the caller administers as TA (active, owner/admin there).
pub fn administered_tenants(caller: &Caller) -> Vec<ObjectId> {
    match caller.active_user() {
        Some(u) => u.tenant_ids.iter().filter(|t| is_admin_of(u, t)).copied().collect(),
        None => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caller::TokenIdentity;
    use serde_json::json;

    const ACME: &str = "65b000000000000000000001";
    const GLOBEX: &str = "65b000000000000000000002";
    const NORTHWIND: &str = "65c000000000000000000001";
    const SOUTHPOLE: &str = "65c000000000000000000002";

    fn tenant(id: &str, partner: &str, status: &str) -> Tenant {
        serde_json::from_value(json!({"_id": {"$oid": id}, "slug": "t", "partnerId": {"$oid": partner}, "status": status})).unwrap()
    }

    fn caller(user: serde_json::Value, token_admin: bool) -> Caller {
        let mut doc = json!({"_id": {"$oid": "65a000000000000000000099"}, "authentikSubjectId": "s"});
        doc.as_object_mut().unwrap().extend(user.as_object().unwrap().clone());
        Caller {
            token: TokenIdentity { subject: crate::types::Subject::parse("s").unwrap(), email: None, name: None, groups: vec![] },
            token_platform_admin: token_admin,
            user: Some(serde_json::from_value(doc).unwrap()),
        }
    }

    fn member(role: &str, active: bool) -> Caller {
        caller(json!({"tenantIds": [{"$oid": ACME}], "tenantRoles": {ACME: role}, "role": "member", "active": active}), false)
    }

    fn status(r: Result<TenantRelation, Error>) -> u16 {
        r.map(|_| 200).unwrap_or_else(|e| e.status())
    }

    #[test]
    fn tenant_table() {
        let acme = tenant(ACME, NORTHWIND, "active");
        let globex = tenant(GLOBEX, NORTHWIND, "active");
        let deleted = tenant(ACME, NORTHWIND, "deleted");
        let rule = TenantRule::AdminsAndPartner;
        let partner_only = TenantRule::PartnerOnly;
        let staff = caller(json!({"partnerId": {"$oid": NORTHWIND}, "role": "member"}), false);
        let scoped = caller(json!({"partnerId": {"$oid": NORTHWIND}, "partnerTenantAccess": [{"$oid": ACME}]}), false);
        let foreign_staff = caller(json!({"partnerId": {"$oid": SOUTHPOLE}, "role": "owner"}), false);
        let platform = caller(json!({"platformAdmin": true}), false);
        let token_platform = caller(json!({}), true);
        let (owner, admin, plain, inactive) =
            (member("owner", true), member("admin", true), member("member", true), member("admin", false));
        let inactive_platform = caller(json!({"platformAdmin": true, "active": false}), false);
        let inactive_token_platform = caller(json!({"active": false}), true);
        let cases: Vec<(&str, &Caller, &Tenant, TenantRule, u16)> = vec![
            ("platform admin by User", &platform, &acme, rule, 200),
            ("platform admin by token", &token_platform, &acme, rule, 200),
            ("P sees deleted tenants", &platform, &deleted, rule, 200),
            // P sees every workspace, so an inactive P is too weak, not blind.
            ("inactive platform admin by User", &inactive_platform, &acme, rule, 403),
            ("inactive platform admin by token", &inactive_token_platform, &acme, rule, 403),
            ("inactive P, deleted tenant", &inactive_platform, &deleted, rule, 403),
            ("inactive P, partner-only rule", &inactive_platform, &acme, partner_only, 403),
            ("owner", &owner, &acme, rule, 200),
            ("admin", &admin, &acme, rule, 200),
            ("member is visible but too weak", &plain, &acme, rule, 403),
            ("inactive admin", &inactive, &acme, rule, 403),
            ("admin of another tenant", &admin, &globex, rule, 404),
            ("admin, deleted tenant", &admin, &deleted, rule, 404),
            ("TA cannot invite admins", &admin, &acme, partner_only, 403),
            ("partner staff", &staff, &acme, rule, 200),
            ("partner staff invite admins", &staff, &globex, partner_only, 200),
            ("scoped staff in scope", &scoped, &acme, rule, 200),
            ("scoped staff out of scope", &scoped, &globex, rule, 404),
            ("staff of another partner", &foreign_staff, &acme, rule, 404),
            ("partner staff, deleted tenant", &staff, &deleted, rule, 404),
        ];
        for (name, c, t, r, want) in cases {
            assert_eq!(status(authorize_tenant(c, t, r)), want, "{name}");
        }
    }

    #[test]
    fn inactive_platform_admin_is_not_p() {
        let c = caller(json!({"platformAdmin": true, "active": false}), true);
        assert!(!c.is_platform_admin());
    }

    #[test]
    fn administered_tenants_are_admin_roles_of_an_active_user() {
        let c = caller(json!({"tenantIds": [{"$oid": ACME}, {"$oid": GLOBEX}], "tenantRoles": {ACME: "admin", GLOBEX: "member"}}), false);
        assert_eq!(administered_tenants(&c), vec![ObjectId::parse(ACME).unwrap()]);
        assert!(administered_tenants(&member("owner", false)).is_empty());
    }
}
