//! `aliases-list`: GET /tenants/:slug/members/:user_id/aliases — a member's
//! mailbox aliases (docs/api.md row 26).

use crate::access::TenantRule;
use crate::ctx::Ctx;
use crate::ops::answers::answer;
use crate::ops::prologue::prologue;
use crate::ops::tenant::mailbox_here;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;

use super::view;

pub const LIST: Route = routes::route("aliases-list");

/// Row 26. (caller ∥ tenant+domains ∥ member) → the account: two
/// sequential round trips.
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (scope, member, ()) = prologue(ctx, req, &LIST).tenant(TenantRule::AdminsAndPartner).member().await?;
    let out = match mailbox_here(ctx, &member) {
        None => view(&member, &scope.domains, None),
        Some((mail, id)) => {
            let account = mail.account(id).await?;
            view(&member, &scope.domains, Some(account.as_ref().map(|(a, _)| a)))
        }
    };
    Ok(answer(200, &out))
}
