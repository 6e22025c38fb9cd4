//! `ownership-transfer`: POST /tenants/:slug/ownership/transfer — move a
//! workspace's ownership to another member (docs/api.md row 30).
//!
//! Built for "the owner left the company": the caller need not be the
//! owner (the seed's `transferOwnership`). Only this tenant's role moves;
//! the legacy `role` and other tenants' roles stay, and previous owners
//! stay as admins.

use crate::access::TenantRule;
use crate::audit::AuditEvent;
use crate::ctx::Ctx;
use crate::data_api::{coll, DataApi};
use crate::ejson::{to_api_json, DateTime, ObjectId};
use crate::models::{Stored, User};
use crate::ops::prologue::prologue;
use crate::ops::saga::audited;
use crate::ops::tenant::member_not_found;
use crate::ops::user_doc::{other_members, role_entry, stamp, with_set};
use crate::ports::Http;
use crate::problem::{Error, UpstreamError};
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use crate::types::Role;
use serde::Deserialize;
use serde_json::{json, Value};

pub const TRANSFER: Route = routes::route("ownership-transfer");

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TransferBody {
    /// `User._id`; anything but 24 hex is an unknown member (`404`).
    user_id: String,
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
    let writes = users.iter().map(|u| async move {
        let back = role_back(tenant, role_entry(u, tenant).as_ref().map(Stored::as_str));
        let what = format!("undo: restoring the role of {}", u.email);
        let _ = super::undo::retried(&what, || async {
            db.update_one(coll::USERS, json!({ "_id": u.id }), back.clone(), false).await.map(|_| ())
        })
        .await;
    });
    futures::future::join_all(writes).await;
}

/// Releases the lock if this request still holds it. A failure is only
/// logged: the lock lapses by itself.
/// Tried again like an undo step: a marker left behind blocks the
/// workspace's transfers until it expires.
async fn unlock<H: Http>(db: &DataApi<'_, H>, tenant: &ObjectId, id: &ObjectId) {
    let filter = json!({ "_id": tenant, format!("{LOCK_FIELD}.id"): id });
    let what = format!("releasing the ownership-transfer lock of tenant {tenant}");
    let _ = super::undo::retried(&what, || async {
        db.update_one(coll::TENANTS, filter.clone(), json!({ "$unset": { LOCK_FIELD: "" } }), false).await.map(|_| ())
    })
    .await;
}

/// Row 30. (caller ∥ tenant+domains ∥ new owner) → the workspace's transfer
/// lock → (new owner promoted ∥ the tenant's other members) → (previous
/// owners demoted ∥ audit) → lock released: five sequential round trips.
///
/// The Data API has no transactions, and a transfer's promote-then-demote
/// spans several documents; two transfers interleaving would each demote
/// the owners it read and leave both new owners (or none of them) owner.
/// So transfers of one workspace take turns: the lock, a conditional write
/// on the tenant, admits one at a time, and the others answer `409`. Role
/// changes of row 24 never touch owners, so they need not take it.
///
/// The new owner is promoted first, so the tenant always has an owner; any
/// failure after that puts every role entry back as it was, under the
/// lock (no two owners, no none).
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    // The target is named in the body, and looked up concurrently with the
    // caller and the tenant; the prologue reports a bad body in its place.
    let body = req.json::<TransferBody>();
    let named = body.as_ref().ok().and_then(|b| ObjectId::parse(b.user_id.trim()));
    let (scope, member, _) =
        prologue(ctx, req, &TRANSFER).parsed(body).tenant(TenantRule::AdminsAndPartner).member_named(|_| named).await?;
    let (tenant, new_owner) = (&scope.tenant.id, &member.user);
    if new_owner.role_for_tenant(tenant) == Some(Role::Owner) {
        return Err(Error::conflict("This member is already the owner."));
    }
    let db = ctx.db()?;
    let key = format!("tenantRoles.{tenant}");
    let lock_id = ctx.new_object_id();
    lock(ctx, &db, tenant, &lock_id).await?;
    let out = async {
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
                let previous: Vec<&User> =
                    others.iter().map(|(u, _)| u).filter(|u| u.role_for_tenant(tenant) == Some(Role::Owner)).collect();

                // 2) Every previous owner becomes an admin here, with the event.
                let demote = async {
                    if previous.is_empty() {
                        return Ok(());
                    }
                    let ids: Vec<&ObjectId> = previous.iter().map(|u| &u.id).collect();
                    let filter = json!({ "_id": { "$in": ids }, "tenantIds": tenant });
                    db.update_many(coll::USERS, filter, stamp(ctx, json!({ "$set": { key.as_str(): "admin" } })))
                        .await
                        .map(|_| ())
                        .map_err(Error::from)
                };
                let from: Vec<&str> = previous.iter().map(|u| u.email.as_str()).collect();
                let event =
                    AuditEvent::user("tenant.ownership_transferred", new_owner.authentik_subject_id.as_str(), new_owner.email.as_str())
                        .tenant(&scope.tenant.slug)
                        .metadata(json!({ "to": new_owner.email, "from": from }));
                if let Err(e) = audited(ctx, &scope.caller, event, demote, || async { Ok::<(), UpstreamError>(()) }).await {
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
                let previous_docs: Vec<Value> =
                    others.iter().filter(|(u, _)| previous.iter().any(|p| p.id == u.id)).map(|(_, d)| now(d, "admin")).collect();
                Ok(ApiResponse::ok(json!({ "newOwner": now(&member.doc, "owner"), "previousOwners": previous_docs })))
            }
        }
    }
    .await;
    unlock(&db, tenant, &lock_id).await;
    out
}

/// How long a transfer may hold its workspace's lock: far longer than its
/// few round trips with their timeouts, so it lapses only when the request
/// holding it died (a crash, a trap) and never stood in the way for good.
const LOCK_MS: i64 = 60_000;

/// The tenant field a running transfer holds (`{id, until}`).
const LOCK_FIELD: &str = "ownershipTransfer";

fn busy() -> Error {
    Error::conflict("Another ownership transfer of this workspace is in progress; try again.")
}

/// Takes the workspace's transfer lock (`id` names this request): a
/// conditional write that matches only while no other transfer holds it,
/// or the one that did has lapsed. Of racing transfers one takes it; the
/// others are `409`s that have written nothing.
async fn lock<H: Http>(ctx: &Ctx<H>, db: &DataApi<'_, H>, tenant: &ObjectId, id: &ObjectId) -> Result<(), Error> {
    let until = format!("{LOCK_FIELD}.until");
    let filter = json!({ "_id": tenant, "$or": [{ LOCK_FIELD: { "$exists": false } }, { until: { "$lt": ctx.now.ejson() } }] });
    let held = json!({ "id": id, "until": DateTime(ctx.now.millis() + LOCK_MS).ejson() });
    match db.update_one(coll::TENANTS, filter, json!({ "$set": { LOCK_FIELD: held } }), false).await?.matched {
        0 => Err(busy()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::user_doc::role_as_read;

    #[test]
    fn a_role_is_re_checked_as_read() {
        let t = ObjectId::parse("65b000000000000000000001").unwrap();
        let user = |extra: Value| -> User {
            let mut doc = json!({"_id": {"$oid": "65a000000000000000000008"}, "authentikSubjectId": "s"});
            doc.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            serde_json::from_value(doc).unwrap()
        };
        let entry = user(json!({"role": "member", "tenantRoles": {"65b000000000000000000001": "admin"}}));
        assert_eq!(role_as_read(&entry, &t), json!({"tenantRoles.65b000000000000000000001": "admin"}));
        // No entry: the legacy role applied, so it must still apply.
        let legacy = user(json!({"role": "admin"}));
        assert_eq!(role_as_read(&legacy, &t), json!({"tenantRoles.65b000000000000000000001": {"$exists": false}, "role": "admin"}));
        assert_eq!(role_as_read(&user(json!({})), &t), json!({"tenantRoles.65b000000000000000000001": {"$exists": false}, "role": null}));
    }

    #[test]
    fn a_role_entry_goes_back_to_what_it_was() {
        let t = ObjectId::parse("65b000000000000000000001").unwrap();
        assert_eq!(role_back(&t, Some("member")), json!({"$set": {"tenantRoles.65b000000000000000000001": "member"}}));
        // An entry that did not exist is removed again, so the legacy role applies as before.
        assert_eq!(role_back(&t, None), json!({"$unset": {"tenantRoles.65b000000000000000000001": ""}}));
    }
}
