//! Row 30: workspace ownership moves to another member (the seed's
//! `transferOwnership`). Built for "the owner left the company": the caller
//! need not be the owner. Only this tenant's role moves; the legacy `role`
//! and other tenants' roles stay, and previous owners stay as admins.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::access::TenantRule;
use crate::audit::AuditEvent;
use crate::ctx::Ctx;
use crate::data_api::{coll, DataApi};
use crate::ejson::{to_api_json, ObjectId};
use crate::models::User;
use crate::ports::Http;
use crate::problem::{Error, UpstreamError};
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::types::Role;

use super::invite::stamp;
use super::lifecycle::audited;
use super::profile::{other_members, with_set};
use super::tenant::{begin_member_named, member_not_found};

pub const TRANSFER: Route = Route::post("/tenants/:slug/ownership/transfer");

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TransferBody {
    /// `User._id`; anything but 24 hex is an unknown member (`404`).
    user_id: String,
}

/// What a user's role entry in `tenant` was, to put it back exactly: the
/// value, or its absence (the legacy `role` applied).
fn role_entry(user: &User, tenant: &ObjectId) -> Option<String> {
    user.tenant_roles.get(&tenant.to_hex()).cloned()
}

/// The update that puts a role entry back as it was.
pub fn role_back(tenant: &ObjectId, was: Option<&str>) -> Value {
    let key = format!("tenantRoles.{tenant}");
    match was {
        Some(r) => json!({ "$set": { key: r } }),
        None => json!({ "$unset": { key: "" } }),
    }
}

/// Puts every touched role entry back (each write runs to its end, so one
/// failure does not stop the others).
async fn roles_back<H: Http>(db: &DataApi<'_, H>, tenant: &ObjectId, users: &[&User]) {
    let writes = users.iter().map(|u| db.update_one(coll::USERS, json!({ "_id": u.id }), role_back(tenant, role_entry(u, tenant).as_deref()), false));
    for (u, r) in users.iter().zip(futures::future::join_all(writes).await) {
        if let Err(e) = r {
            eprintln!("undo: restoring the role of {} failed: {e}", u.email);
        }
    }
}

/// Row 30. (caller ∥ tenant+domains ∥ new owner) → (new owner promoted ∥
/// the tenant's other members) → (previous owners demoted ∥ audit):
/// three sequential round trips. The new owner is
/// promoted first, so the tenant always has an owner; any failure after
/// that puts every role entry back as it was (no two owners, no none).
pub async fn transfer<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    // The target is named in the body, read here only to look it up
    // concurrently with the caller and the tenant; the body is checked
    // properly by the prologue.
    let named = |_: &_| req.json::<TransferBody>().ok().and_then(|b| ObjectId::parse(b.user_id.trim()));
    let (scope, member, _) = begin_member_named(ctx, req, &TRANSFER, TenantRule::AdminsAndPartner, |r| r.json::<TransferBody>(), named).await?;
    let (tenant, new_owner) = (&scope.tenant.id, &member.user);
    if new_owner.role_for_tenant(tenant) == Some(Role::Owner) {
        return Err(Error::conflict("This member is already the owner."));
    }
    let db = ctx.db()?;
    let key = format!("tenantRoles.{tenant}");

    // 1) The new owner first (the tenant never has none), while the other
    // members are read.
    let promote = async {
        let filter = json!({ "_id": new_owner.id, "tenantIds": tenant });
        db.update_one(coll::USERS, filter, stamp(ctx, json!({ "$set": { key.as_str(): "owner" } })), false).await
    };
    let (promoted, others) = futures::join!(promote, other_members(&db, tenant, &new_owner.id, true));
    match (promoted, others) {
        (Ok(r), _) if r.matched == 0 => Err(member_not_found()),
        (Err(e), _) => Err(e.into()),
        (Ok(_), Err(e)) => {
            roles_back(&db, tenant, &[new_owner]).await;
            Err(e)
        }
        (Ok(_), Ok(others)) => {
            let previous: Vec<&User> = others.iter().map(|(u, _)| u).filter(|u| u.role_for_tenant(tenant) == Some(Role::Owner)).collect();

            // 2) Every previous owner becomes an admin here, with the event.
            let demote = async {
                if previous.is_empty() {
                    return Ok(());
                }
                let ids: Vec<&ObjectId> = previous.iter().map(|u| &u.id).collect();
                let filter = json!({ "_id": { "$in": ids }, "tenantIds": tenant });
                db.update_many(coll::USERS, filter, stamp(ctx, json!({ "$set": { key.as_str(): "admin" } }))).await.map(|_| ()).map_err(Error::from)
            };
            let from: Vec<&str> = previous.iter().map(|u| u.email.as_str()).collect();
            let event = AuditEvent::user("tenant.ownership_transferred", new_owner.authentik_subject_id.as_str(), new_owner.email.as_str())
                .tenant(&scope.tenant.slug)
                .metadata(json!({ "to": new_owner.email, "from": from }));
            if let Err(e) = audited(ctx, &scope.caller, event, demote, async { Ok::<(), UpstreamError>(()) }).await {
                let mut touched = previous.clone();
                touched.push(new_owner);
                roles_back(&db, tenant, &touched).await;
                return Err(e);
            }

            // The documents as they now stand, so the caller sees the new
            // roles: composed from the ones read and the updates made (what
            // reading them again returns, one round trip less). The
            // previous owners keep the order they were read in, the
            // collection's, as a read of them by id has.
            let now = |doc: &Value, role: &str| to_api_json(with_set(doc, &[(key.clone(), json!(role))], &ctx.now));
            let previous_docs: Vec<Value> = others.iter().filter(|(u, _)| previous.iter().any(|p| p.id == u.id)).map(|(_, d)| now(d, "admin")).collect();
            Ok(ApiResponse::ok(json!({ "newOwner": now(&member.doc, "owner"), "previousOwners": previous_docs })))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_entry_goes_back_to_what_it_was() {
        let t = ObjectId::parse("65b000000000000000000001").unwrap();
        assert_eq!(role_back(&t, Some("member")), json!({"$set": {"tenantRoles.65b000000000000000000001": "member"}}));
        // An entry that did not exist is removed again, so the legacy role applies as before.
        assert_eq!(role_back(&t, None), json!({"$unset": {"tenantRoles.65b000000000000000000001": ""}}));
    }
}
