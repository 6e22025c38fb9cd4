//! `mailbox-create`: POST /tenants/:slug/members/:user_id/mailbox/create —
//! create a mailbox for a member who has none (docs/api.md row 29).
//!
//! For a member who has none yet (the seed's `createMailboxForMember`),
//! typically the bootstrap admin, who signs in with a private address. The
//! sign-in identity is left as it is.

use crate::access::TenantRule;
use crate::audit::AuditEvent;
use crate::ctx::Ctx;
use crate::data_api::coll;
use crate::ejson::to_api_json;
use crate::ops::answers::{answer, MailboxCreated};
use crate::ops::prologue::prologue;
use crate::ops::saga::audited;
use crate::ops::tenant::pick_domain;
use crate::ops::user_doc::{has_mailbox, put_back_ours, stamp, with_set};
use crate::ports::Http;
use crate::problem::Error;
use crate::random::temp_password;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use crate::stalwart::NewMailbox;
use crate::types::{DomainName, LocalPart};
use serde::Deserialize;
use serde_json::{json, Map, Value};

pub const CREATE: Route = routes::route("mailbox-create");

fn already() -> Error {
    Error::conflict("This member already has a mailbox.")
}

fn not_provisioned(domain: &str) -> Error {
    Error::bad_request(format!("{domain} isn’t a provisioned mail domain for this workspace."))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateBody {
    /// Kept raw so its rule speaks after the domain's, as in the seed.
    local_part: String,
    domain: Option<DomainName>,
}

/// Row 29. (caller ∥ tenant+domains ∥ member) → mailbox → (document ∥
/// audit): three sequential round trips. The mailbox server refuses an
/// address already in use (`409`); the document is written only while
/// the member still has no mailbox (compare-and-set), so of concurrent
/// creates one wins. Any failure after the mailbox was created deletes it
/// (this request's mailbox only) before answering.
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (scope, member, body) = prologue(ctx, req, &CREATE).json::<CreateBody>().tenant(TenantRule::AdminsAndPartner).member().await?;
    let user = &member.user;
    if has_mailbox(user) {
        return Err(already());
    }
    let mail = ctx.stalwart().ok_or_else(|| Error::bad_request("Mail provisioning is disabled — can’t create a mailbox right now."))?;
    // The named domain, else the primary, else the oldest (as members-create).
    let domain = pick_domain(&scope.domains, body.domain.as_ref()).ok_or_else(|| match &body.domain {
        Some(d) => not_provisioned(d.as_str()),
        None => Error::bad_request("Add a domain to this workspace before creating a mailbox."),
    })?;
    let domain_id = domain.stalwart_id.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| not_provisioned(&domain.domain))?;
    let local = LocalPart::parse(&body.local_part).map_err(Error::BadRequest)?;
    let email = format!("{local}@{}", domain.domain);
    let password = temp_password();

    // 1) The mailbox (the server refuses an address in use).
    let full_name = if user.name.trim().is_empty() { user.email.as_str() } else { user.name.as_str() };
    let id = mail
        .create_mailbox_at(NewMailbox { domain_id, local_part: local.as_str(), full_name, password: &password }, &email)
        .await
        .map_err(|e| if e.is_taken() { Error::conflict(format!("{email} is already in use.")) } else { e.into() })?;

    // 2) The document, while it still has no mailbox, with the event.
    let mut provisioning = member.doc.get("provisioning").filter(|p| p.is_object()).cloned().unwrap_or_else(|| json!({}));
    provisioning["stalwart"] = json!("ok");
    let set = vec![
        ("mailboxAddress".to_owned(), json!(email)),
        ("stalwartAccountId".to_owned(), json!(id)),
        ("provisioning".to_owned(), provisioning),
    ];
    let db = ctx.db()?;
    let write = async {
        let none = json!({ "$in": [Value::Null, ""] });
        let filter = json!({ "_id": user.id, "tenantIds": scope.tenant.id, "stalwartAccountId": none, "mailboxAddress": none });
        let fields: Map<String, Value> = set.iter().cloned().collect();
        let r = db.update_one(coll::USERS, filter, stamp(ctx, json!({ "$set": fields })), false).await?;
        if r.matched == 0 {
            return Err(already());
        }
        Ok(())
    };
    let event = AuditEvent::user("tenant.user_mailbox_created", user.authentik_subject_id.as_str(), email.as_str())
        .tenant(&scope.tenant.slug)
        .metadata(json!({ "mailbox": email, "signIn": user.email }));
    let keys: Vec<&str> = set.iter().map(|(k, _)| k.as_str()).collect();
    if let Err(e) =
        audited(ctx, &scope.caller, event, write, || put_back_ours(ctx, &db, &member, &keys, Some(("stalwartAccountId", json!(id))))).await
    {
        // No orphan: the mailbox this request created goes again.
        let _ = super::undo::deleted(&format!("undo: deleting mailbox {id}"), || mail.delete_mailbox(&id)).await;
        return Err(e);
    }
    // A stored document is an object.
    let user = to_api_json(with_set(&member.doc, &set, &ctx.now)).as_object().cloned().unwrap_or_default();
    Ok(answer(201, &MailboxCreated { email: email.to_string(), temp_password: password, user }))
}
