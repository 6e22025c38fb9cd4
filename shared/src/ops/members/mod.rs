//! The `members-*` routes, rows 17–25: a workspace's members listed,
//! created, removed, suspended and resumed, signed out, their password
//! reset, their profile and role changed, their e-mail changed (the seed's
//! `removeTenantMember`, `setMemberSuspended`, `forceLogoutMember`,
//! `resetMemberPassword`, `updateTenantMember`, `changeMemberPrimaryEmail`).
//!
//! The member routes have the member prologue (P, TA, PT; the member looked
//! up concurrently with the caller and the tenant), one "mailbox is here"
//! rule (`tenant::mailbox_here`) and two ways of writing a change with its
//! audit event (`saga`): beside it, for a change that can be undone
//! (`saga::audited`), and before it, for one that cannot
//! (`saga::audited_first`). What two of them share (suspend and resume's
//! one body) is here.

pub mod change_email;
pub mod create;
pub mod list;
pub mod logout;
pub mod remove;
pub mod reset_password;
pub mod resume;
pub mod suspend;
pub mod update;

use crate::access::TenantRule;
use crate::ctx::Ctx;
use crate::data_api::coll;
use crate::ops::prologue::prologue;
use crate::ops::saga::{audited, best_effort};
use crate::ops::tenant::{event, mailbox_here};
use crate::ops::undo;
use crate::ops::user_doc::{identity_or_by_email, put_back_ours, stamp};
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use serde_json::json;

/// Rows 20 and 21. (caller ∥ tenant+domains ∥ member) → (identity ∥ the
/// mailbox's permissions read) → (mailbox ∥ document ∥ audit): three
/// sequential round trips; one more, first, to find the identity by e-mail
/// when the document does not name it.
async fn set_suspended<H: Http>(ctx: &Ctx<H>, req: &ApiRequest, route: &Route, suspended: bool) -> Result<ApiResponse, Error> {
    let (scope, member, ()) = prologue(ctx, req, route).tenant(TenantRule::AdminsAndPartner).member().await?;
    let ak = &ctx.authentik()?;
    let who = member.user.email.as_str();
    let pk = identity_or_by_email(ak, &member.user).await?;
    let sign_in = |active: bool| async move {
        match pk {
            Some(pk) => ak.set_active(pk, active).await.map(|_| ()),
            None => Ok(()),
        }
    };
    let mail = mailbox_here(ctx, &member);

    // 1) The identity first: if it fails, nothing else changes. The
    // mailbox's permissions are only read meanwhile.
    let read = async {
        match &mail {
            Some((client, id)) => Some(client.permissions(id).await),
            None => None,
        }
    };
    let (signed, perms) = futures::join!(sign_in(!suspended), read);
    signed?;

    // 2) The mailbox (by permission, so its password never changes and a
    // resume gives back exactly the sign-in it had), the document and the
    // audit event.
    let mailbox = async {
        if let (Some((client, id)), Some(perms)) = (&mail, &perms) {
            let step = async { client.set_suspended_from(id, perms.as_ref().map_err(Clone::clone)?, suspended).await };
            best_effort(if suspended { "mailbox suspend" } else { "mailbox resume" }, who, step).await;
        }
    };
    let db = ctx.db()?;
    let write = async {
        let update = stamp(ctx, json!({ "$set": { "active": !suspended } }));
        db.update_one(coll::USERS, json!({ "_id": member.user.id }), update, false).await.map(|_| ()).map_err(Error::from)
    };
    let action = if suspended { "tenant.user_suspended" } else { "tenant.user_resumed" };
    let ((), done) = futures::join!(
        mailbox,
        audited(ctx, &scope.caller, event(action, &scope, &member), write, || put_back_ours(ctx, &db, &member, &["active"], None))
    );
    if let Err(e) = done {
        // Answered as not done, so the sign-in goes back to what it was.
        let identity_back = async {
            if member.user.active == suspended {
                let _ = undo::retried(&format!("restoring the sign-in of {who}"), || sign_in(member.user.active)).await;
            }
        };
        let mailbox_back = async {
            if let (Some((client, id)), Some(Ok(perms))) = (&mail, &perms) {
                let _ = undo::retried(&format!("mailbox restore for {who}"), || client.restore_permissions(id, perms)).await;
            }
        };
        futures::join!(identity_back, mailbox_back);
        return Err(e);
    }
    Ok(ApiResponse::no_content())
}
