//! `members-logout`: POST /tenants/:slug/members/:user_id/logout — end every
//! session of a member (docs/api.md row 22).

use crate::access::TenantRule;
use crate::ctx::Ctx;
use crate::ops::answers::{answer, SessionsEnded};
use crate::ops::prologue::prologue;
use crate::ops::saga::audited_first;
use crate::ops::tenant::event;
use crate::ops::user_doc::identity;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use serde_json::json;

pub const LOGOUT: Route = routes::route("members-logout");

/// Row 22. (caller ∥ tenant+domains ∥ member) → identity (for its
/// username) → session listing (first page, then the others concurrently)
/// → audit → every session ended: five sequential round trips, six with
/// more than one page. The event names how many sessions end, so it is
/// written once they are listed, and before any ends (audit first: an
/// ended session cannot be restored). Any failure is a 502: a logout is
/// never reported when it did not happen.
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (scope, member, ()) = prologue(ctx, req, &LOGOUT).tenant(TenantRule::AdminsAndPartner).member().await?;
    let ak = ctx.authentik()?;
    let sessions = match identity(&member.user) {
        None => vec![],
        Some(pk) => match ak.get_user(pk).await {
            Ok(identity) => ak.list_sessions(&identity).await?,
            // No identity, no sessions (Authentik deletes them with it).
            Err(e) if e.status() == Some(404) => vec![],
            Err(e) => return Err(e.into()),
        },
    };
    let count = sessions.len();
    let end_all = async {
        // Every delete runs to its end, so one failure still ends the others.
        let results = futures::future::join_all(sessions.iter().map(|s| ak.delete_session(s))).await;
        results.into_iter().collect::<Result<Vec<()>, _>>().map(|_| ()).map_err(Error::from)
    };
    let event = event("tenant.user_logout_forced", &scope, &member).metadata(json!({ "sessions": count }));
    audited_first(ctx, &scope.caller, event, end_all).await?;
    Ok(answer(200, &SessionsEnded { sessions: count as u64 }))
}
