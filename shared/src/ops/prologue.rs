//! The one prologue every route starts with, in docs/api.md's check order:
//! `405` → `401` → `413` → `400` → `404` → `403`, then the operation.
//!
//! A route says what it needs and the prologue runs the checks in that
//! order whatever it asked for:
//!
//! ```text
//! prologue(ctx, req, &ROUTE)              // the method (405)
//!     .json::<Body>()                     // the body it takes (413, 400); none by default
//!     .caller()                           // the token and the caller's document (401)
//!     .tenant(rule).member()              // or: the tenant the path names (404), its
//!                                         // member (404), the caller's role in it (403)
//! ```
//!
//! The body is parsed at once but reported in its place, after the token.
//! Reads that depend only on the request (the tenant, a member, a route's
//! own lookup) run concurrently with the caller's; a caller refused later
//! has only read.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::access::{authorize_tenant, tenant_not_found, tenant_relation, TenantRelation, TenantRule};
use crate::caller::{authenticate, verify_token, Caller, TokenIdentity};
use crate::ctx::Ctx;
use crate::data_api::{coll, Stage};
use crate::ejson::ObjectId;
use crate::models::{Domain, Tenant, User};
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, Params, Route};
use crate::types::Slug;

use super::tenant::{load, mailbox_is_here, member_not_found, Member, TenantScope};

/// A route's prologue, before it runs: the request, and its body as the
/// route parses it (held until its place in the check order).
pub struct Prologue<'a, H: Http, B> {
    ctx: &'a Ctx<H>,
    req: &'a ApiRequest,
    route: &'a Route,
    body: Result<B, Error>,
}

/// The prologue of `route` for `req`; the route takes no body (none, or
/// `{}`) unless it says otherwise.
pub fn prologue<'a, H: Http>(ctx: &'a Ctx<H>, req: &'a ApiRequest, route: &'a Route) -> Prologue<'a, H, ()> {
    Prologue { ctx, req, route, body: req.no_body() }
}

impl<'a, H: Http, B> Prologue<'a, H, B> {
    /// The route takes a JSON object, read into `C`.
    pub fn json<C: DeserializeOwned>(self) -> Prologue<'a, H, C> {
        let body = self.req.json::<C>();
        self.parsed(body)
    }

    /// The route parsed its body itself (to start reads that depend on it
    /// before the prologue): `body` is reported in its place all the same.
    pub fn parsed<C>(self, body: Result<C, Error>) -> Prologue<'a, H, C> {
        Prologue { ctx: self.ctx, req: self.req, route: self.route, body }
    }

    /// A public route (the OpenAPI document): the method, nothing else.
    pub fn public(self) -> Result<B, Error> {
        self.route.check_method(&self.req.method)?;
        self.body
    }

    /// The token alone, for a route whose caller may have no document yet
    /// (`/users/me` writes it).
    pub async fn token(self) -> Result<(TokenIdentity, B), Error> {
        self.route.check_method(&self.req.method)?;
        let token = verify_token(self.ctx, self.req).await?;
        Ok((token, self.body?))
    }

    /// The caller (token and document), the body, and the path's
    /// parameters: a path without the route's shape is a `404`.
    pub async fn caller(self) -> Result<(Caller, Params, B), Error> {
        self.route.check_method(&self.req.method)?;
        let caller = authenticate(self.ctx, self.req).await?;
        let body = self.body?;
        let params = self.route.params(self.req.path()).ok_or_else(|| Error::not_found("Not found"))?;
        Ok((caller, params, body))
    }

    /// A `/tenants/:slug/...` route, whose caller must pass `rule`.
    pub fn tenant(self, rule: TenantRule) -> TenantPrologue<'a, H, B> {
        TenantPrologue { base: self, rule, stages: vec![] }
    }
}

/// The prologue of a tenant-scoped route: the tenant (with its domains)
/// is loaded concurrently with the caller.
pub struct TenantPrologue<'a, H: Http, B> {
    base: Prologue<'a, H, B>,
    rule: TenantRule,
    stages: Vec<Stage>,
}

impl<'a, H: Http, B> TenantPrologue<'a, H, B> {
    /// Each domain passes through `stages` inside the tenant's aggregate
    /// (joining what lives at each domain in the same round trip); the
    /// domains' documents as joined are the scope's `joined`.
    pub fn joined(mut self, stages: Vec<Stage>) -> Self {
        self.stages = stages;
        self
    }

    /// The tenant alone.
    pub async fn scope(self) -> Result<(TenantScope, B), Error> {
        let (scope, body, ()) = self.with(|_| async {}, |(), _, _| Ok(())).await?;
        Ok((scope, body))
    }

    /// The member the path's `:user_id` names.
    pub async fn member(self) -> Result<(TenantScope, Member, B), Error> {
        self.member_named(|params| ObjectId::parse(params.get("user_id"))).await
    }

    /// A member named elsewhere than `:user_id` (e.g. in the body): `which`
    /// picks the id out of the path's parameters; `None` (no such value,
    /// not an ObjectId) is a `404`, like a user outside this tenant.
    pub async fn member_named(self, which: impl FnOnce(&Params) -> Option<ObjectId>) -> Result<(TenantScope, Member, B), Error> {
        let ctx = self.base.ctx;
        let lookup = |params: &Params| {
            let id = which(params);
            async move {
                match id {
                    Some(id) => Ok(ctx.db()?.find_one_as::<User>(coll::USERS, json!({ "_id": id })).await?),
                    None => Ok(None),
                }
            }
        };
        let found = |user: Result<Option<(User, Value)>, Error>, tenant: &Tenant, domains: &[Domain]| {
            let (user, doc) = user?.filter(|(u, _)| u.belongs_to(&tenant.id)).ok_or_else(member_not_found)?;
            let mailbox_here = mailbox_is_here(user.mailbox_address.as_deref(), domains);
            Ok(Member { user, doc, mailbox_here })
        };
        let (scope, body, member) = self.with(lookup, found).await?;
        Ok((scope, member, body))
    }

    /// A resource inside the tenant: `lookup` (given the path's parameters)
    /// runs concurrently with the caller and the tenant; `found` turns its
    /// result into the resource or a `404`, after the tenant's visibility
    /// (a caller who cannot see the tenant learns nothing) and before the
    /// caller's role (`404` → `403`).
    pub async fn with<T, F: Future<Output = T>, R>(
        self,
        lookup: impl FnOnce(&Params) -> F,
        found: impl FnOnce(T, &Tenant, &[Domain]) -> Result<R, Error>,
    ) -> Result<(TenantScope, B, R), Error> {
        let Prologue { ctx, req, route, body } = self.base;
        route.check_method(&req.method)?;
        // A path without the route's shape is a 404, but only in its place
        // in the check order: after the token, the size and the body.
        let params = route.params(req.path());
        let slug = params.as_ref().and_then(|p| Slug::parse(p.get("slug")).ok());
        let named = params.as_ref().map(lookup);
        let stages = self.stages;
        let (caller, tenant, named) = futures::join!(
            authenticate(ctx, req),
            async {
                match &slug {
                    Some(s) => load(ctx, s, stages).await,
                    None => Ok(None),
                }
            },
            async {
                match named {
                    Some(named) => Some(named.await),
                    None => None,
                }
            }
        );
        let caller = caller?;
        let body = body?;
        let (Some(params), Some(named)) = (params, named) else { return Err(Error::not_found("Not found")) };
        let (tenant, domains, joined) = tenant?.ok_or_else(tenant_not_found)?;
        if tenant_relation(&caller, &tenant) == TenantRelation::None {
            return Err(tenant_not_found());
        }
        let named = found(named, &tenant, &domains)?;
        let relation = authorize_tenant(&caller, &tenant, self.rule)?;
        Ok((TenantScope { caller, params, tenant, domains, joined, relation }, body, named))
    }
}
