//! `members-resume`: POST /tenants/:slug/members/:user_id/resume — resume a
//! suspended member's sign-in (docs/api.md row 21).

use crate::ctx::Ctx;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;

use super::set_suspended;

pub const RESUME: Route = routes::route("members-resume");

/// Row 21.
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    set_suspended(ctx, req, &RESUME, false).await
}
