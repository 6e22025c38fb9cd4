//! `users-deactivate`: POST /users/:subject/deactivate — deactivate a user
//! (docs/api.md row 6).

use crate::audit::AuditEvent;
use crate::ctx::Ctx;
use crate::data_api::coll;
use crate::ops::prologue::prologue;
use crate::ops::saga::audited;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use serde_json::json;

use super::{read_named, subject_param};

pub const DEACTIVATE: Route = routes::route("users-deactivate");

/// Row 6: `204`.
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (caller, found) = futures::join!(prologue(ctx, req, &DEACTIVATE).caller(), read_named(ctx, req, &DEACTIVATE));
    let (caller, params, ()) = caller?;
    caller.require_platform_admin()?;
    let subject = subject_param(&params)?;
    let db = ctx.db()?;
    let (user, _) = found(&subject)?;
    let filter = json!({ "_id": user.id });
    let write = async {
        db.update_one(coll::USERS, filter.clone(), json!({ "$set": { "active": false, "updatedAt": ctx.now.ejson() } }), false)
            .await
            .map(|_| ())
            .map_err(Error::from)
    };
    // The subject, as every user event names its person (docs/api.md).
    let event = AuditEvent::user("user.deactivated", subject.as_str(), user.email.as_str());
    let undo =
        || async { db.update_one(coll::USERS, filter.clone(), json!({ "$set": { "active": user.active } }), false).await.map(|_| ()) };
    audited(ctx, &caller, event, write, undo).await?;
    Ok(ApiResponse::no_content())
}
