//! `members-reset-password`: POST /tenants/:slug/members/:user_id/reset-
//! password — a fresh temporary password for a member (docs/api.md row 23).

use crate::access::TenantRule;
use crate::ctx::Ctx;
use crate::ops::answers::{answer, PasswordReset};
use crate::ops::prologue::prologue;
use crate::ops::saga::{audited_first, best_effort};
use crate::ops::tenant::{event, mailbox_here};
use crate::ops::user_doc::identity;
use crate::ports::Http;
use crate::problem::Error;
use crate::random::temp_password;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;

pub const RESET_PASSWORD: Route = routes::route("members-reset-password");

/// Row 23. (caller ∥ tenant+domains ∥ member) → (audit → identity
/// password, beside the mailbox's credential read) → mailbox password: four
/// sequential round trips. Audit first: a password set cannot be undone,
/// and one set but never shown would lock the member out. The password
/// goes to Authentik and Stalwart and into this response only.
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (scope, member, ()) = prologue(ctx, req, &RESET_PASSWORD).tenant(TenantRule::AdminsAndPartner).member().await?;
    let pk =
        identity(&member.user).ok_or_else(|| Error::conflict("This member has no sign-in identity, so there is no password to reset."))?;
    let ak = ctx.authentik()?;
    let mail = mailbox_here(ctx, &member);
    let password = temp_password();
    // 1) The audit event, then the identity (required); the mailbox's
    // credential key is only read meanwhile.
    let set = async { ak.set_password(pk, &password).await.map_err(Error::from) };
    let key = async {
        match &mail {
            Some((client, id)) => Some(client.password_key(id).await),
            None => None,
        }
    };
    let (done, key) = futures::join!(audited_first(ctx, &scope.caller, event("tenant.user_password_reset", &scope, &member), set), key);
    done?;
    // 2) The mailbox, if here (best-effort).
    if let (Some((client, id)), Some(key)) = (&mail, key) {
        best_effort("mailbox password reset", &member.user.email, async { client.set_password_at(id, &key?, &password).await }).await;
    }
    Ok(answer(200, &PasswordReset { email: member.user.email, temp_password: password }))
}
