//! `users-get`: GET /users/:subject — one user (docs/api.md row 3).

use crate::ctx::Ctx;
use crate::ejson::to_api_json;
use crate::ops::prologue::prologue;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;

use super::{read_named, subject_param};

pub const GET: Route = routes::route("users-get");

/// Row 3.
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (caller, found) = futures::join!(prologue(ctx, req, &GET).caller(), read_named(ctx, req, &GET));
    let (caller, params, ()) = caller?;
    caller.require_platform_admin()?;
    let subject = subject_param(&params)?;
    let (_, doc) = found(&subject)?;
    Ok(ApiResponse::ok(to_api_json(doc)))
}
