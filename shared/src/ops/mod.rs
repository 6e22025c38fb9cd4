//! The operations, one module per family of routes. Each operation is
//! `run(ctx, request) -> response` plus its `ROUTE`; a component is a few
//! lines that hand its request to one of them.
//!
//! Every operation checks in docs/api.md's order: `405` → `401` → `413` →
//! `400` → `404` → `403` → the operation itself.

pub mod aliases;
pub mod invite;
pub mod lifecycle;
pub mod mailbox;
pub mod me;
pub mod members;
pub mod ownership;
pub mod partner_portal;
pub mod partners;
pub mod platform;
pub mod profile;
pub mod tenant;
pub mod openapi;
pub mod users;

use crate::caller::{authenticate, Caller};
use crate::ctx::Ctx;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, Params, Route};

/// The common prologue: method, token + caller, body size, path shape.
/// A path that does not fit the route's shape is a `404`.
pub async fn begin<H: Http>(ctx: &Ctx<H>, req: &ApiRequest, route: &Route) -> Result<(Caller, Params), Error> {
    route.check_method(&req.method)?;
    let caller = authenticate(ctx, req).await?;
    if req.body.is_none() {
        return Err(Error::PayloadTooLarge);
    }
    let params = route.params(req.path()).ok_or_else(|| Error::not_found("Not found"))?;
    Ok((caller, params))
}
