//! `members-change-email`: POST /tenants/:slug/members/:user_id/change-email
//! — change the primary e-mail of a member without a mailbox (docs/api.md row
//! 25).

use crate::access::TenantRule;
use crate::audit::AuditEvent;
use crate::ctx::Ctx;
use crate::data_api::coll;
use crate::ejson::to_api_json;
use crate::ops::prologue::prologue;
use crate::ops::saga::{audited, best_effort};
use crate::ops::user_doc::{has_mailbox, identity, put_back_ours, stamp, with_set};
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use crate::types::Email;
use serde::Deserialize;
use serde_json::{json, Value};

pub const CHANGE_EMAIL: Route = routes::route("members-change-email");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeEmailBody {
    /// Kept raw so the seed's rules (mailbox, identity) speak before the
    /// address's own.
    email: String,
}

/// The seed's address rule: `local@domain.tld`.
fn new_address(raw: &str) -> Result<Email, Error> {
    Email::parse(raw).ok().filter(|e| e.domain().contains('.')).ok_or_else(|| Error::bad_request("Enter a valid email address."))
}

fn in_use(email: &Email) -> Error {
    Error::conflict(format!("{email} is already in use."))
}

/// Row 25. (caller ∥ tenant+domains ∥ member) → (identity ∥ the address
/// in Authentik ∥ the address in the database) → identity PATCH →
/// (document ∥ audit): four sequential round trips. Identity first: if it
/// fails, nothing changes. The document is written only if it still has
/// the address read (compare-and-set), so of concurrent changes one wins
/// and the others are `409`s that leave the winner's change alone.
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (scope, member, body) =
        prologue(ctx, req, &CHANGE_EMAIL).json::<ChangeEmailBody>().tenant(TenantRule::AdminsAndPartner).member().await?;
    let user = &member.user;
    if has_mailbox(user) {
        return Err(Error::bad_request(
            "This member has a mailbox — their primary address is their inbox and can’t be changed here. Add an alias instead.",
        ));
    }
    let pk = identity(user).ok_or_else(|| Error::bad_request("This member isn’t linked to an identity yet."))?;
    let email = new_address(&body.email)?;
    if email.as_str() == user.email.trim().to_lowercase() {
        return Ok(ApiResponse::ok(to_api_json(member.doc)));
    }
    let ak = ctx.authentik()?;
    let db = ctx.db()?;

    // 1) Not taken by anyone else, in Authentik or in the database; the
    // identity is read for what to put back should the document fail.
    let (before, holder, local) = futures::join!(
        ak.get_user(pk),
        ak.find_user_by_email(email.as_str()),
        db.find_one(coll::USERS, json!({ "email": email, "_id": { "$ne": user.id } }), Some(json!({ "_id": 1 })))
    );
    let before = before?;
    if holder?.is_some_and(|h| h.uid != user.authentik_subject_id) || local?.is_some() {
        return Err(in_use(&email));
    }

    // 2) The identity: sign-in name and address, kept equal.
    ak.patch_user(pk, json!({ "username": email, "email": email }))
        .await
        .map_err(|e| if e.is_taken() { in_use(&email) } else { e.into() })?;

    // 3) The document, if it still has the address read, with the event.
    let write = async {
        let filter = json!({ "_id": user.id, "email": user.email });
        let r = db.update_one(coll::USERS, filter, stamp(ctx, json!({ "$set": { "email": email } })), false).await?;
        if r.matched == 0 {
            return Err(in_use(&email));
        }
        Ok(())
    };
    let event = AuditEvent::user("tenant.user_primary_email_changed", user.authentik_subject_id.as_str(), email.as_str())
        .tenant(&scope.tenant.slug)
        .metadata(json!({ "from": user.email, "to": email }));
    if let Err(e) =
        audited(ctx, &scope.caller, event, write, || put_back_ours(ctx, &db, &member, &["email"], Some(("email", json!(email))))).await
    {
        // The identity follows the document as it now stands: back to what
        // it was, or to a concurrent winner's address — unless that winner
        // chose this very address, whose identity change is then its own.
        let now = db.find_one(coll::USERS, json!({ "_id": user.id }), Some(json!({ "email": 1 }))).await;
        let stands = now.ok().flatten().and_then(|d| d.get("email").and_then(Value::as_str).map(str::to_owned));
        let back = match stands.as_deref() {
            Some(e) if e == email.as_str() => None,
            Some(e) if e != user.email => Some(json!({ "username": e, "email": e })),
            _ => Some(json!({ "username": before.username, "email": before.email })),
        };
        if let Some(back) = back {
            best_effort("identity restore", &user.email, async { ak.patch_user(pk, back).await.map(|_| ()) }).await;
        }
        return Err(e);
    }
    Ok(ApiResponse::ok(to_api_json(with_set(&member.doc, &[("email".into(), json!(email))], &ctx.now))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_addresses_follow_the_seeds_rule() {
        assert_eq!(new_address(" Jane@Home.Test ").unwrap().as_str(), "jane@home.test");
        for bad in ["jane", "jane@home", "a b@x.test", "@x.test", ""] {
            assert_eq!(new_address(bad).unwrap_err().to_string(), "Enter a valid email address.", "{bad}");
        }
    }
}
