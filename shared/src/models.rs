//! Typed views of the stored documents, with the fields as the seed's
//! Mongoose schemas name them. A view holds what the domain reads; the
//! stored document itself (with any field a view does not name) is kept
//! alongside where an operation returns it, so nothing is lost on output.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ejson::{DateTime, Int, ObjectId};
use crate::types::Role;

/// A closed set of names a document stores as strings (a role, a status).
pub trait Named: Copy + Sized {
    fn parse(s: &str) -> Option<Self>;
    fn as_str(self) -> &'static str;
}

impl Named for Role {
    fn parse(s: &str) -> Option<Self> {
        Role::parse(s)
    }
    fn as_str(self) -> &'static str {
        Role::as_str(self)
    }
}

/// A stored name, read leniently: a document written by hand or by another
/// version may hold a value this one does not know. It is kept as read (a
/// compare-and-set or a put-back writes it back exactly) and counts as none
/// of the known ones; it is never a reason to fail a read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored<T> {
    Known(T),
    Unknown(String),
}

impl<T: Named> Stored<T> {
    /// The known value, if it is one.
    pub fn known(&self) -> Option<T> {
        match self {
            Stored::Known(t) => Some(*t),
            Stored::Unknown(_) => None,
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Stored::Known(t) => t.as_str(),
            Stored::Unknown(s) => s,
        }
    }
}

impl<T: Named> Serialize for Stored<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de, T: Named> Deserialize<'de> for Stored<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Ok(T::parse(&raw).map(Stored::Known).unwrap_or(Stored::Unknown(raw)))
    }
}

/// A workspace's `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantStatus {
    Active,
    Pending,
    Suspended,
    Deleted,
}

impl TenantStatus {
    pub const ALL: [TenantStatus; 4] = [TenantStatus::Active, TenantStatus::Pending, TenantStatus::Suspended, TenantStatus::Deleted];
}

impl Named for TenantStatus {
    fn parse(s: &str) -> Option<Self> {
        TenantStatus::ALL.into_iter().find(|t| t.as_str() == s)
    }
    fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Pending => "pending",
            TenantStatus::Suspended => "suspended",
            TenantStatus::Deleted => "deleted",
        }
    }
}

/// `#[serde(default = …)]` of flags that are on unless stored off.
pub(crate) fn yes() -> bool {
    true
}

/// What `User.provisioning.<system>` says of one system's account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provisioned {
    /// The account exists.
    Ok,
    /// Not this service's to create (not configured, or made at first sign-in).
    Skipped,
    /// Creating it failed; the reason is kept beside it.
    Error,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub authentik_subject_id: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub name: String,
    /// Global (legacy) role, the fallback of [`User::role_for_tenant`].
    #[serde(default)]
    pub role: Option<Stored<Role>>,
    #[serde(default)]
    pub tenant_ids: Vec<ObjectId>,
    /// Per-tenant roles, keyed by tenant id hex.
    #[serde(default)]
    pub tenant_roles: BTreeMap<String, Stored<Role>>,
    #[serde(default)]
    pub platform_admin: bool,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub partner_id: Option<ObjectId>,
    #[serde(default)]
    pub partner_tenant_access: Option<Vec<ObjectId>>,
    #[serde(default)]
    pub authentik_user_pk: Option<Int>,
    #[serde(default)]
    pub mailbox_address: Option<String>,
    #[serde(default)]
    pub stalwart_account_id: Option<String>,
    #[serde(default)]
    pub ocis_user_id: Option<String>,
    #[serde(default)]
    pub created_at: Option<DateTime>,
}

impl User {
    /// The field a user document is keyed by: the identity's subject.
    pub const SUBJECT: &'static str = "authentikSubjectId";

    /// The filter matching the document of `subject`.
    pub fn by_subject(subject: impl serde::Serialize) -> serde_json::Value {
        serde_json::json!({ Self::SUBJECT: subject })
    }

    /// `roleForTenant`: the per-tenant role, else the legacy global role.
    pub fn role_for_tenant(&self, tenant: &ObjectId) -> Option<Role> {
        self.tenant_roles.get(&tenant.to_hex()).or(self.role.as_ref()).and_then(Stored::known)
    }

    pub fn belongs_to(&self, tenant: &ObjectId) -> bool {
        self.tenant_ids.contains(tenant)
    }

    /// Scoped partner staff reach only the tenants they list.
    pub fn partner_scope(&self) -> Option<&[ObjectId]> {
        self.partner_tenant_access.as_deref().filter(|s| !s.is_empty())
    }

    pub fn global_role(&self) -> Option<Role> {
        self.role.as_ref().and_then(Stored::known)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub slug: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: Option<Stored<TenantStatus>>,
    #[serde(default)]
    pub partner_id: Option<ObjectId>,
    #[serde(default)]
    pub authentik_group_id: Option<String>,
}

impl Tenant {
    pub fn is_deleted(&self) -> bool {
        self.status.as_ref().and_then(Stored::known) == Some(TenantStatus::Deleted)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Partner {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub slug: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub tenant_id: ObjectId,
    pub domain: String,
    #[serde(default)]
    pub is_primary: bool,
    #[serde(default)]
    pub stalwart_id: Option<String>,
    /// Mongoose's timestamp; `None` when missing or null (older documents).
    #[serde(default)]
    pub created_at: Option<DateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn role_for_tenant_prefers_the_tenant_role() {
        let t1 = "65b000000000000000000001";
        let u: User = serde_json::from_value(json!({
            "_id": {"$oid": "65a000000000000000000001"}, "authentikSubjectId": "s",
            "role": "member", "tenantIds": [{"$oid": t1}], "tenantRoles": {t1: "admin"},
            "authentikUserPk": {"$numberInt": "7"}
        }))
        .unwrap();
        assert_eq!(u.role_for_tenant(&ObjectId::parse(t1).unwrap()), Some(Role::Admin));
        assert_eq!(u.role_for_tenant(&ObjectId::parse("65b000000000000000000002").unwrap()), Some(Role::Member));
        assert!(u.active, "active defaults to true as in the schema");
        assert_eq!(u.authentik_user_pk, Some(Int(7)));
        assert!(u.partner_scope().is_none());
    }

    #[test]
    fn a_stored_name_this_version_does_not_know_is_kept_as_read() {
        let t1 = "65b000000000000000000001";
        let u: User = serde_json::from_value(json!({
            "_id": {"$oid": "65a000000000000000000001"}, "authentikSubjectId": "s",
            "role": "Superuser", "tenantRoles": {t1: "owner"}
        }))
        .unwrap();
        assert_eq!(u.role, Some(Stored::Unknown("Superuser".into())));
        assert_eq!(u.global_role(), None, "an unknown role grants nothing");
        assert_eq!(serde_json::to_value(&u.role).unwrap(), json!("Superuser"), "written back exactly");
        assert_eq!(u.tenant_roles[t1], Stored::Known(Role::Owner));
        let tenant: Tenant = serde_json::from_value(json!({"_id": {"$oid": t1}, "slug": "acme", "status": "archived"})).unwrap();
        assert!(!tenant.is_deleted());
        let gone: Tenant = serde_json::from_value(json!({"_id": {"$oid": t1}, "slug": "acme", "status": "deleted"})).unwrap();
        assert!(gone.is_deleted());
    }
}
