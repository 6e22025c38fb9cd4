//! `members-suspend`: POST /tenants/:slug/members/:user_id/suspend — suspend
//! a member's sign-in (docs/api.md row 20).

use crate::ctx::Ctx;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;

use super::set_suspended;

pub const SUSPEND: Route = routes::route("members-suspend");

/// Row 20.
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    set_suspended(ctx, req, &SUSPEND, true).await
}
