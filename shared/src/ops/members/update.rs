//! `members-update`: POST /tenants/:slug/members/:user_id/update — change a
//! member's profile and role in a workspace (docs/api.md row 24).

use crate::access::TenantRule;
use crate::authentik::Authentik;
use crate::ctx::Ctx;
use crate::data_api::{coll, DataApi};
use crate::ejson::{to_api_json, ObjectId};
use crate::models::User;
use crate::ops::prologue::prologue;
use crate::ops::saga::{audited, best_effort};
use crate::ops::tenant::member_not_found;
use crate::ops::tenant::{event, mailbox_here};
use crate::ops::user_doc::{has_mailbox, identity, other_members, put_back, put_back_ours, role_as_read, stamp, with_set};
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use crate::types::{AlternativeEmail, ContactText, MemberRole, PersonName, Role};
use serde::Deserialize;
use serde_json::{json, Map, Value};

pub const UPDATE: Route = routes::route("members-update");

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateBody {
    name: Option<PersonName>,
    first_name: Option<ContactText>,
    last_name: Option<ContactText>,
    phone: Option<ContactText>,
    alternative_email: Option<AlternativeEmail>,
    role: Option<MemberRole>,
}

impl UpdateBody {
    /// The document's `$set`, in the seed's order (its keys, in that
    /// order, are the audit event's `fields`; a map would sort them). Only
    /// this tenant's role changes: the legacy `role` and other tenants'
    /// roles stay.
    fn changes(&self, tenant: &ObjectId) -> Vec<(String, Value)> {
        let mut set = Vec::new();
        let mut put = |k: String, v: Option<&str>| {
            if let Some(v) = v {
                set.push((k, json!(v)));
            }
        };
        put("name".into(), self.name.as_ref().map(PersonName::as_str));
        put("firstName".into(), self.first_name.as_ref().map(ContactText::as_str));
        put("lastName".into(), self.last_name.as_ref().map(ContactText::as_str));
        put("phone".into(), self.phone.as_ref().map(ContactText::as_str));
        put("alternativeEmail".into(), self.alternative_email.as_ref().map(AlternativeEmail::as_str));
        put(format!("tenantRoles.{tenant}"), self.role.map(|r| Role::from(r).as_str()));
        set
    }

    /// The identity's contact attributes this update sets.
    fn attributes(&self) -> Map<String, Value> {
        let mut attrs = Map::new();
        for (k, v) in [("firstName", &self.first_name), ("lastName", &self.last_name), ("phone", &self.phone)] {
            if let Some(v) = v {
                attrs.insert(k.into(), json!(v));
            }
        }
        if let Some(v) = &self.alternative_email {
            attrs.insert("alternativeEmail".into(), json!(v));
        }
        attrs
    }
}

/// The workspace's primary account: its owner, or an admin with no
/// mailbox (the bootstrap admin, invited on a private address).
pub fn is_primary_account(user: &User, tenant: &ObjectId) -> bool {
    user.role_for_tenant(tenant) == Some(Role::Owner) || !has_mailbox(user)
}

/// The seed's role rules, in its order, for giving `user` the role `to` in
/// `tenant` on behalf of the caller whose `User._id` is `caller`. `Ok(true)`
/// when the change demotes an admin, which is allowed only while another
/// admin or owner remains ([`last_admin_check`]).
pub fn check_role_change(user: &User, tenant: &ObjectId, caller: Option<&ObjectId>, to: MemberRole) -> Result<bool, Error> {
    if is_primary_account(user, tenant) {
        return Err(Error::forbidden("The primary account’s role can’t be changed."));
    }
    if caller == Some(&user.id) {
        return Err(Error::forbidden("You can’t change your own role."));
    }
    Ok(to == MemberRole::Member && user.role_for_tenant(tenant) == Some(Role::Admin))
}

/// A workspace must keep an admin or owner besides the one being demoted.
pub fn last_admin_check(others: &[User], tenant: &ObjectId) -> Result<(), Error> {
    if others.iter().any(|u| u.role_for_tenant(tenant).is_some_and(Role::is_admin)) {
        Ok(())
    } else {
        Err(Error::conflict("Can’t remove the last admin of this workspace."))
    }
}

/// [`last_admin_check`] on the tenant's members as they are now.
async fn keeps_an_admin<H: Http>(db: &DataApi<'_, H>, tenant: &ObjectId, demoted: &ObjectId) -> Result<(), Error> {
    let others: Vec<User> = other_members(db, tenant, demoted, false).await?.into_iter().map(|(u, _)| u).collect();
    last_admin_check(&others, tenant)
}

fn role_changed_meanwhile() -> Error {
    Error::conflict("This member’s role changed while the request ran; reload and try again.")
}

/// Adds the fields of the object `more` to the object `filter`.
fn extend(filter: &mut Value, more: Value) {
    if let (Some(f), Value::Object(m)) = (filter.as_object_mut(), more) {
        f.extend(m);
    }
}

/// Row 24. (caller ∥ tenant+domains ∥ member) → [the other admins, only
/// when demoting an admin] → (document [→ the other admins again, when
/// demoting] ∥ audit ∥ identity read) → (identity ∥ mailbox name): three
/// sequential round trips, five when demoting (the second look keeps a
/// workspace's last admin when admins demote each other at once). The
/// database is authoritative; the identity and the mailbox follow
/// best-effort.
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (scope, member, body) = prologue(ctx, req, &UPDATE).json::<UpdateBody>().tenant(TenantRule::AdminsAndPartner).member().await?;
    let (tenant, user) = (&scope.tenant, &member.user);
    let db = ctx.db()?;
    let demotes = match body.role {
        Some(to) => check_role_change(user, &tenant.id, scope.caller.user.as_ref().map(|u| &u.id), to)?,
        None => false,
    };
    if demotes {
        // The plain case answers before anything is written; a concurrent
        // demotion is caught after the write (below).
        keeps_an_admin(&db, &tenant.id, &user.id).await?;
    }
    let set = body.changes(&tenant.id);
    if set.is_empty() {
        return Ok(ApiResponse::ok(to_api_json(member.doc)));
    }
    let ak = ctx.authentik()?;
    let attrs = body.attributes();
    let pk = identity(user).filter(|_| body.name.is_some() || !attrs.is_empty());

    // 1) The document with its audit event; the identity is read meanwhile
    // (its attributes are replaced wholesale by a PATCH, so they are merged).
    let write = async {
        let mut filter = json!({ "_id": user.id, "tenantIds": tenant.id });
        if demotes {
            // Only while the member is still the admin read: of concurrent
            // demotions of one admin, one writes.
            extend(&mut filter, role_as_read(user, &tenant.id));
        }
        let fields: Map<String, Value> = set.iter().cloned().collect();
        let r = db.update_one(coll::USERS, filter, stamp(ctx, json!({ "$set": fields })), false).await?;
        if r.matched == 0 {
            return Err(if demotes { role_changed_meanwhile() } else { member_not_found() });
        }
        if demotes {
            // The check above is count-then-write: two admins demoting each
            // other both pass it. With this demotion written, look again;
            // of two racing demotions the later one's look sees the
            // other's write, so both never stand. A lost race (or a failed
            // look) puts back what this request set, while it stands.
            if let Err(e) = keeps_an_admin(&db, &tenant.id, &user.id).await {
                let ours = json!({ "_id": user.id, format!("tenantRoles.{}", tenant.id): Role::Member.as_str() });
                let keys = set.iter().map(|(k, _)| k.as_str()).chain(["updatedAt"]);
                let back = put_back(&member.doc, keys);
                let what = format!("undo: restoring the role of {}", user.email);
                let _ = super::undo::retried(&what, || async {
                    db.update_one(coll::USERS, ours.clone(), back.clone(), false).await.map(|_| ())
                })
                .await;
                return Err(e);
            }
        }
        Ok(())
    };
    let mut metadata = json!({ "fields": set.iter().map(|(k, _)| k).collect::<Vec<_>>() });
    if let Some(r) = body.role {
        metadata["role"] = json!(r);
    }
    let event = event("tenant.user_updated", &scope, &member).metadata(metadata);
    let read = async {
        match pk {
            Some(pk) => Some(ak.get_user(pk).await),
            None => None,
        }
    };
    let keys: Vec<&str> = set.iter().map(|(k, _)| k.as_str()).collect();
    let (written, read) = futures::join!(audited(ctx, &scope.caller, event, write, || put_back_ours(ctx, &db, &member, &keys, None)), read);
    written?;

    // 2) Best-effort: the identity's name and attributes, the mailbox's name.
    let who = user.email.as_str();
    let identity_sync = async {
        if let Some(read) = read {
            best_effort("identity profile sync", who, async {
                let current = read?;
                let mut attributes = current.attributes.clone();
                attributes.extend(attrs.clone());
                let mut patch = json!({ "attributes": attributes });
                if let Some(n) = &body.name {
                    patch["name"] = json!(n);
                }
                Authentik::patch_user(&ak, current.pk, patch).await.map(|_| ())
            })
            .await;
        }
    };
    let mailbox_sync = async {
        if let (Some(name), Some((mail, id))) = (&body.name, mailbox_here(ctx, &member)) {
            best_effort("mailbox name sync", who, mail.set_display_name(id, name.as_str())).await;
        }
    };
    futures::join!(identity_sync, mailbox_sync);
    Ok(ApiResponse::ok(to_api_json(with_set(&member.doc, &set, &ctx.now))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACME: &str = "65b000000000000000000001";

    fn user(id: &str, extra: Value) -> User {
        let mut doc = json!({"_id": {"$oid": id}, "authentikSubjectId": "s", "tenantIds": [{"$oid": ACME}]});
        doc.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::from_value(doc).unwrap()
    }

    fn acme() -> ObjectId {
        ObjectId::parse(ACME).unwrap()
    }

    const MIA: &str = "65a000000000000000000008";
    const ADAM: &str = "65a000000000000000000007";

    #[test]
    fn the_primary_account_is_the_owner_or_a_mailbox_less_account() {
        let mailbox = json!({"mailboxAddress": "x@acme.test", "stalwartAccountId": "m"});
        let with = |role: &str| {
            let mut v = mailbox.clone();
            v["tenantRoles"] = json!({ACME: role});
            v
        };
        assert!(is_primary_account(&user(MIA, with("owner")), &acme()));
        assert!(!is_primary_account(&user(MIA, with("admin")), &acme()));
        assert!(!is_primary_account(&user(MIA, with("member")), &acme()));
        assert!(is_primary_account(&user(MIA, json!({"tenantRoles": {ACME: "admin"}})), &acme()), "the bootstrap admin");
        // The legacy global role counts when the tenant has none.
        assert!(is_primary_account(&user(MIA, json!({"role": "owner", "mailboxAddress": "x@acme.test"})), &acme()));
        // Empty handles are no mailbox (the seed tests truthiness).
        assert!(is_primary_account(&user(MIA, json!({"mailboxAddress": "", "stalwartAccountId": ""})), &acme()));
    }

    #[test]
    fn role_rules_in_the_seeds_order() {
        let admin = user(MIA, json!({"tenantRoles": {ACME: "admin"}, "mailboxAddress": "mia@acme.test"}));
        let member = user(MIA, json!({"tenantRoles": {ACME: "member"}, "stalwartAccountId": "m3"}));
        let adam = ObjectId::parse(ADAM).unwrap();
        let mia = ObjectId::parse(MIA).unwrap();
        assert_eq!(check_role_change(&admin, &acme(), Some(&adam), MemberRole::Member), Ok(true), "demoting an admin needs another");
        assert_eq!(check_role_change(&admin, &acme(), Some(&adam), MemberRole::Admin), Ok(false));
        assert_eq!(check_role_change(&member, &acme(), Some(&adam), MemberRole::Admin), Ok(false));
        assert_eq!(check_role_change(&member, &acme(), None, MemberRole::Member), Ok(false), "a caller without a User");
        let own = check_role_change(&admin, &acme(), Some(&mia), MemberRole::Member).unwrap_err();
        assert_eq!((own.status(), own.to_string()), (403, "You can’t change your own role.".into()));
        // Primary comes before self.
        let owner = user(MIA, json!({"tenantRoles": {ACME: "owner"}, "mailboxAddress": "mia@acme.test"}));
        let e = check_role_change(&owner, &acme(), Some(&mia), MemberRole::Admin).unwrap_err();
        assert_eq!((e.status(), e.to_string()), (403, "The primary account’s role can’t be changed.".into()));
    }

    #[test]
    fn the_last_admin_stays() {
        let t = acme();
        let others = |roles: &[Value]| roles.iter().map(|r| user(ADAM, r.clone())).collect::<Vec<_>>();
        assert!(last_admin_check(&others(&[json!({"tenantRoles": {ACME: "owner"}})]), &t).is_ok());
        let (member, admin) = (json!({"tenantRoles": {ACME: "member"}}), json!({"tenantRoles": {ACME: "admin"}}));
        assert!(last_admin_check(&others(&[member, admin]), &t).is_ok());
        assert!(last_admin_check(&others(&[json!({"role": "admin"})]), &t).is_ok(), "the legacy role");
        let e = last_admin_check(&others(&[json!({"tenantRoles": {ACME: "member"}, "role": "admin"})]), &t).unwrap_err();
        assert_eq!(e.status(), 409, "the tenant's role wins over the legacy one");
        assert_eq!(last_admin_check(&[], &t).unwrap_err().status(), 409);
    }

    #[test]
    fn changes_follow_the_seeds_field_order() {
        let body: UpdateBody =
            serde_json::from_value(json!({"role": "member", "phone": " 12 ", "alternativeEmail": "", "name": "Mia M"})).unwrap();
        let set = body.changes(&acme());
        let keys: Vec<&str> = set.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["name", "phone", "alternativeEmail", &format!("tenantRoles.{ACME}")]);
        assert_eq!(set[1].1, "12");
        assert_eq!(body.attributes(), json!({"phone": "12", "alternativeEmail": ""}).as_object().unwrap().clone());
        for bad in [json!({"role": "owner"}), json!({"name": {"$ne": ""}}), json!({"phone": 5}), json!({"nick": "x"}), json!({"name": ""})]
        {
            assert!(serde_json::from_value::<UpdateBody>(bad.clone()).is_err(), "{bad}");
        }
    }
}
