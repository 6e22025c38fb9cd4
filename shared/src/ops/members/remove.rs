//! `members-remove`: POST /tenants/:slug/members/:user_id/remove — remove a
//! member from a workspace (docs/api.md row 19).

use crate::access::TenantRule;
use crate::ctx::Ctx;
use crate::data_api::coll;
use crate::ejson::ObjectId;
use crate::models::User;
use crate::ops::prologue::prologue;
use crate::ops::saga::{audited, best_effort};
use crate::ops::tenant::event;
use crate::ops::tenant::Member;
use crate::ops::undo;
use crate::ops::user_doc::{identity, stamp};
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use crate::stalwart::Stalwart;
use serde_json::{json, Value};

pub const REMOVE: Route = routes::route("members-remove");

/// Whether removing `user` from `tenant` removes the person altogether:
/// no other tenant, and neither partner staff nor platform admin (those
/// keep their identity and document whatever their tenants).
pub fn fully_removes(user: &User, tenant: &ObjectId) -> bool {
    user.tenant_ids.iter().all(|t| t == tenant) && user.partner_id.is_none() && !user.platform_admin
}

/// What a removal has deleted for certain, so that a document that stays
/// (a member who stays, or a removal answered `502`) stops naming it: a
/// user document never says `ok` for an account that is gone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gone {
    pub identity: bool,
    pub mailbox: bool,
    pub files: bool,
}

impl Gone {
    pub fn any(&self) -> bool {
        self.identity || self.mailbox || self.files
    }

    /// The fields naming what is gone: each account's handle and its
    /// `provisioning` entry (unset, not `$set`: a document without a
    /// `provisioning` object takes an `$unset` of a path in it as a no-op).
    pub fn fields(&self) -> Vec<&'static str> {
        let mut fields = vec![];
        if self.identity {
            fields.extend(["authentikUserPk", "provisioning.authentik"]);
        }
        if self.mailbox {
            fields.extend(["mailboxAddress", "stalwartAccountId", "provisioning.stalwart", "provisioning.stalwartError"]);
        }
        if self.files {
            fields.extend(["ocisUserId", "provisioning.ocis", "provisioning.ocisNote"]);
        }
        fields
    }

    /// The `$unset` of [`Gone::fields`].
    fn unset(&self) -> Value {
        Value::Object(self.fields().into_iter().map(|f| (f.to_owned(), json!(""))).collect())
    }

    /// The update recording what is gone in a document that stays.
    pub fn update(&self) -> Value {
        json!({ "$unset": self.unset() })
    }

    /// `doc` as read, without the fields naming what is gone (what a
    /// failed removal puts back).
    pub fn strip(&self, doc: &Value) -> Value {
        let mut doc = doc.clone();
        for f in self.fields() {
            let (parent, key) = match f.split_once('.') {
                Some((p, k)) => (doc.get_mut(p), k),
                None => (Some(&mut doc), f),
            };
            if let Some(Value::Object(m)) = parent {
                m.remove(key);
            }
        }
        doc
    }
}

/// The document update that detaches `tenant` from a member who stays:
/// the membership and its role, and — when their mailbox was deleted (it
/// was this tenant's) — the mailbox handle and its provisioning status.
pub fn detach_update(tenant: &ObjectId, mailbox_gone: bool) -> Value {
    let mut unset = Gone { mailbox: mailbox_gone, ..Gone::default() }.unset();
    unset[format!("tenantRoles.{tenant}")] = json!("");
    json!({ "$pull": { "tenantIds": tenant }, "$unset": unset })
}

/// The mailbox a removal deletes: wherever it is when the person goes
/// altogether, else only the one here (another tenant's mailbox stays).
fn mailbox_to_delete<'a, H: Http>(ctx: &'a Ctx<H>, member: &'a Member, full: bool) -> Option<(Stalwart<'a, H>, &'a str)> {
    match (ctx.stalwart(), &member.user.stalwart_account_id) {
        (Some(mail), Some(id)) if !id.is_empty() && (full || member.mailbox_here) => Some((mail, id.as_str())),
        _ => None,
    }
}

/// Row 19. (caller ∥ tenant+domains ∥ member) → (mailbox ∥ group, or —
/// when fully removing — mailbox ∥ file account ∥ identity) → (document ∥
/// audit): three sequential round trips. Accounts go before the document,
/// so no account is left without it. Retry-safe: a failed required step
/// answers 502/504 with the member still findable and their document no
/// longer naming what is already gone (so it never says `ok` for it), and
/// deletes that already happened (`404`) count as done on the next try.
/// The mailbox is best-effort: one that cannot be deleted (after the
/// retries) is logged, and a member who stays keeps its handle.
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (scope, member, ()) = prologue(ctx, req, &REMOVE).tenant(TenantRule::AdminsAndPartner).member().await?;
    let ak = ctx.authentik()?;
    let (user, tenant) = (&member.user, &scope.tenant);
    let full = fully_removes(user, &tenant.id);
    let who = user.email.as_str();

    // 1) Upstream. Deleting the identity takes its group memberships along,
    // so the group is left only when the person stays. Each delete is tried
    // again while its failure may be passing.
    let mailbox = async {
        match mailbox_to_delete(ctx, &member, full) {
            Some((mail, id)) => undo::deleted(&format!("mailbox delete for {who}"), || mail.delete_mailbox(id)).await.is_ok(),
            None => false,
        }
    };
    let group = async {
        if let (false, Some(group), Some(pk)) = (full, &tenant.authentik_group_id, identity(user)) {
            best_effort("group removal", who, ak.remove_from_group(group, pk)).await;
        }
    };
    let files = async {
        match (full, &user.ocis_user_id, ctx.ocis()) {
            (true, Some(id), Some(ocis)) => Some(undo::deleted(&format!("file account delete for {who}"), || ocis.delete_user(id)).await),
            _ => None,
        }
    };
    let identity_gone = async {
        match (full, identity(user)) {
            (true, Some(pk)) => Some(undo::deleted(&format!("identity delete for {who}"), || ak.delete_user(pk)).await),
            _ => None,
        }
    };
    let (mailbox, (), files, identity_gone) = futures::join!(mailbox, group, files, identity_gone);
    let gone = Gone { identity: matches!(identity_gone, Some(Ok(()))), mailbox, files: matches!(files, Some(Ok(()))) };
    let db = ctx.db()?;
    let filter = json!({ "_id": user.id });
    // What is gone stops being named by the document that stays (best-effort).
    let record = || async {
        if gone.any() {
            let update = stamp(ctx, gone.update());
            let step = || async { db.update_one(coll::USERS, filter.clone(), update.clone(), false).await.map(|_| ()) };
            let _ = undo::retried(&format!("recording the accounts of {who} that are gone"), step).await;
        }
    };
    if let Some(e) = files.into_iter().chain(identity_gone).find_map(Result::err) {
        record().await;
        return Err(e.into());
    }

    // 2) The document and the audit event.
    let write = async {
        if full {
            db.delete_one(coll::USERS, filter.clone()).await.map(|_| ())
        } else {
            db.update_one(coll::USERS, filter.clone(), stamp(ctx, detach_update(&tenant.id, gone.mailbox)), false).await.map(|_| ())
        }
        .map_err(Error::from)
    };
    let event = event("tenant.user_removed", &scope, &member).metadata(json!({ "fullyRemoved": full }));
    // Undone, the document is as read less what is gone: inserted again
    // after a full removal; after a detach, only while it still carries
    // this request's stamp (a concurrent full removal's delete stands).
    let as_read = gone.strip(&member.doc);
    let undo = || async {
        if full {
            db.replace_one(coll::USERS, filter.clone(), as_read.clone(), true).await
        } else {
            db.replace_one(coll::USERS, json!({ "_id": user.id, "updatedAt": ctx.now.ejson() }), as_read.clone(), false).await
        }
        .map(|_| ())
    };
    if let Err(e) = audited(ctx, &scope.caller, event, write, undo).await {
        // A write that failed outright was not undone: record it there.
        record().await;
        return Err(e);
    }
    if full && !mailbox && mailbox_to_delete(ctx, &member, full).is_some() {
        eprintln!("the mailbox of {who} could not be deleted: it is left without its user document");
    }
    Ok(ApiResponse::no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACME: &str = "65b000000000000000000001";
    const GLOBEX: &str = "65b000000000000000000002";

    fn user(extra: Value) -> User {
        let mut doc = json!({"_id": {"$oid": "65a000000000000000000042"}, "authentikSubjectId": "s"});
        doc.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::from_value(doc).unwrap()
    }

    #[test]
    fn who_is_fully_removed() {
        let acme = ObjectId::parse(ACME).unwrap();
        let cases = [
            ("last tenant", json!({"tenantIds": [{"$oid": ACME}]}), true),
            // A document that lost its membership already (a retry) still goes.
            ("no tenant left", json!({"tenantIds": []}), true),
            ("another tenant too", json!({"tenantIds": [{"$oid": GLOBEX}, {"$oid": ACME}]}), false),
            ("partner staff", json!({"tenantIds": [{"$oid": ACME}], "partnerId": {"$oid": "65c000000000000000000001"}}), false),
            ("platform admin", json!({"tenantIds": [{"$oid": ACME}], "platformAdmin": true}), false),
        ];
        for (what, doc, full) in cases {
            assert_eq!(fully_removes(&user(doc), &acme), full, "{what}");
        }
    }

    #[test]
    fn detaching_drops_the_mailbox_handle_and_its_status_only_when_the_mailbox_is_gone() {
        let acme = ObjectId::parse(ACME).unwrap();
        assert_eq!(
            detach_update(&acme, true),
            json!({"$pull": {"tenantIds": {"$oid": ACME}}, "$unset": {
                format!("tenantRoles.{ACME}"): "", "mailboxAddress": "", "stalwartAccountId": "",
                "provisioning.stalwart": "", "provisioning.stalwartError": "",
            }})
        );
        assert_eq!(
            detach_update(&acme, false),
            json!({"$pull": {"tenantIds": {"$oid": ACME}}, "$unset": {format!("tenantRoles.{ACME}"): ""}})
        );
    }

    #[test]
    fn what_is_gone_is_no_longer_named() {
        let doc = json!({
            "_id": 1, "email": "a@acme.test", "authentikUserPk": 7, "stalwartAccountId": "m1",
                "mailboxAddress": "a@acme.test", "ocisUserId": "o1",
            "provisioning": {"authentik": "ok", "stalwart": "ok", "ocis": "ok"},
        });
        let gone = Gone { identity: true, mailbox: false, files: true };
        assert_eq!(
            gone.strip(&doc),
            json!({"_id": 1, "email": "a@acme.test", "stalwartAccountId": "m1", "mailboxAddress": "a@acme.test",
                "provisioning": {"stalwart": "ok"}})
        );
        assert_eq!(
            gone.update(),
            json!({"$unset": {"authentikUserPk": "", "provisioning.authentik": "",
                "ocisUserId": "", "provisioning.ocis": "", "provisioning.ocisNote": ""}})
        );
        assert!(!Gone::default().any());
        // A document without a provisioning object strips cleanly.
        assert_eq!(
            Gone { mailbox: true, ..Gone::default() }.strip(&json!({"provisioning": null, "stalwartAccountId": "m1"})),
            json!({"provisioning": null})
        );
    }
}
