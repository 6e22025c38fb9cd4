//! Loading the tenant a `/tenants/:slug/...` route names, with its domains,
//! and checking the caller's access to it.

use std::future::Future;

use serde_json::{json, Value};

use crate::access::{authorize_tenant, tenant_not_found, tenant_relation, TenantRelation, TenantRule};
use crate::audit::AuditEvent;
use crate::caller::{authenticate, Caller};
use crate::ctx::Ctx;
use crate::data_api::{coll, decode, Stage};
use crate::ejson::ObjectId;
use crate::models::{Domain, Tenant, User};
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, Params, Route};
use crate::stalwart::Stalwart;
use crate::types::DomainName;
use crate::types::Slug;

pub struct TenantScope {
    pub caller: Caller,
    pub params: Params,
    pub tenant: Tenant,
    pub domains: Vec<Domain>,
    pub relation: TenantRelation,
}

/// The tenant with its domains, in one round trip; `domain_stages` run
/// over each domain inside the join (empty: the domains as stored), and
/// the joined documents come back as read too.
async fn load<H: Http>(ctx: &Ctx<H>, slug: &Slug, domain_stages: Vec<Stage>) -> Result<Option<(Tenant, Vec<Domain>, Vec<Value>)>, Error> {
    let (from, local_field, foreign_field, as_field) = (coll::DOMAINS, "_id", "tenantId", "__domains");
    let join = if domain_stages.is_empty() {
        Stage::Lookup { from, local_field, foreign_field, as_field }
    } else {
        Stage::LookupPipeline { from, local_field, foreign_field, pipeline: domain_stages, as_field }
    };
    let docs = ctx.db()?.aggregate(coll::TENANTS, &[Stage::Match(json!({ "slug": slug })), Stage::Limit(1), join]).await?;
    let Some(mut doc) = docs.into_iter().next() else { return Ok(None) };
    let raw = match doc.as_object_mut().and_then(|m| m.remove("__domains")) {
        Some(Value::Array(ds)) => ds,
        _ => vec![],
    };
    let domains = raw.iter().map(|d| decode(coll::DOMAINS, d)).collect::<Result<Vec<Domain>, _>>()?;
    Ok(Some((decode(coll::TENANTS, &doc)?, domains, raw)))
}

/// The prologue of rows 17–31: method, token, body size, then — with the
/// caller and the tenant loaded concurrently — body parsing (`parse`, run
/// before any `404`), the tenant's visibility and the caller's role.
pub async fn begin<H: Http, B>(
    ctx: &Ctx<H>,
    req: &ApiRequest,
    route: &Route,
    rule: TenantRule,
    parse: impl FnOnce(&ApiRequest) -> Result<B, Error>,
) -> Result<(TenantScope, B), Error> {
    let (scope, body, ()) = begin_with(ctx, req, route, rule, parse, |_| async {}, |(), _, _| Ok(())).await?;
    Ok((scope, body))
}

/// [`begin`] for routes that name a resource inside the tenant: `lookup`
/// (given the path parameters) runs concurrently with the caller and the
/// tenant; `found` turns its result into the resource or a `404`, after the
/// tenant's visibility check (a caller who cannot see the tenant learns
/// nothing) and before the role check (`404` → `403`).
pub async fn begin_with<H: Http, B, T, F: Future<Output = T>, R>(
    ctx: &Ctx<H>,
    req: &ApiRequest,
    route: &Route,
    rule: TenantRule,
    parse: impl FnOnce(&ApiRequest) -> Result<B, Error>,
    lookup: impl FnOnce(&Params) -> F,
    found: impl FnOnce(T, &Tenant, &[Domain]) -> Result<R, Error>,
) -> Result<(TenantScope, B, R), Error> {
    let (scope, body, named, _) = begin_joined(ctx, req, route, rule, parse, vec![], lookup, found).await?;
    Ok((scope, body, named))
}

/// [`begin_with`] whose domains pass through `domain_stages` inside the
/// tenant's aggregate (e.g. joining what lives at each domain, in the same
/// round trip); also returns the domains' documents as joined.
#[allow(clippy::too_many_arguments)]
pub(super) async fn begin_joined<H: Http, B, T, F: Future<Output = T>, R>(
    ctx: &Ctx<H>,
    req: &ApiRequest,
    route: &Route,
    rule: TenantRule,
    parse: impl FnOnce(&ApiRequest) -> Result<B, Error>,
    domain_stages: Vec<Stage>,
    lookup: impl FnOnce(&Params) -> F,
    found: impl FnOnce(T, &Tenant, &[Domain]) -> Result<R, Error>,
) -> Result<(TenantScope, B, R, Vec<Value>), Error> {
    route.check_method(&req.method)?;
    // A path without the route's shape is a 404, but only in its place in
    // the check order: after the token, the size and the body.
    let params = route.params(req.path());
    let slug = params.as_ref().and_then(|p| Slug::parse(p.get("slug")).ok());
    let named = params.as_ref().map(lookup);
    let (caller, tenant, named) = futures::join!(
        authenticate(ctx, req),
        async {
            match &slug {
                Some(s) => load(ctx, s, domain_stages).await,
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
    if req.body.is_none() {
        return Err(Error::PayloadTooLarge);
    }
    let body = parse(req)?;
    let (Some(params), Some(named)) = (params, named) else { return Err(Error::not_found("Not found")) };
    let (tenant, domains, raw) = tenant?.ok_or_else(tenant_not_found)?;
    if tenant_relation(&caller, &tenant) == TenantRelation::None {
        return Err(tenant_not_found());
    }
    let named = found(named, &tenant, &domains)?;
    let relation = authorize_tenant(&caller, &tenant, rule)?;
    Ok((TenantScope { caller, params, tenant, domains, relation }, body, named, raw))
}

/// A member of the tenant, named by `:user_id`.
pub struct Member {
    pub user: User,
    /// The stored document, every field (also those `User` does not name).
    pub doc: Value,
    /// The mailbox is on one of this tenant's domains: mailbox-side
    /// changes touch only such a mailbox, never another tenant's.
    pub mailbox_here: bool,
}

/// "The mailbox is here": the domain of `address` is one of `domains`.
pub fn mailbox_is_here(address: Option<&str>, domains: &[Domain]) -> bool {
    match address.and_then(|a| a.rsplit_once('@')) {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => domains.iter().any(|d| d.domain.eq_ignore_ascii_case(domain)),
        _ => false,
    }
}

pub fn member_not_found() -> Error {
    Error::not_found("User not found in this workspace")
}

/// The prologue of the `/tenants/:slug/members/:user_id/...` routes:
/// [`begin`] plus the member, looked up concurrently with the caller and
/// the tenant. A `:user_id` that is not an ObjectId, or a user outside
/// this tenant, is a `404`.
pub async fn begin_member<H: Http, B>(
    ctx: &Ctx<H>,
    req: &ApiRequest,
    route: &Route,
    rule: TenantRule,
    parse: impl FnOnce(&ApiRequest) -> Result<B, Error>,
) -> Result<(TenantScope, Member, B), Error> {
    begin_member_named(ctx, req, route, rule, parse, |params| ObjectId::parse(params.get("user_id"))).await
}

/// [`begin_member`] for a member named elsewhere than `:user_id` (e.g. in
/// the body): `which` picks the id out of the request; `None` (no such
/// value, not an ObjectId) is a `404` like an unknown member.
pub async fn begin_member_named<H: Http, B>(
    ctx: &Ctx<H>,
    req: &ApiRequest,
    route: &Route,
    rule: TenantRule,
    parse: impl FnOnce(&ApiRequest) -> Result<B, Error>,
    which: impl FnOnce(&Params) -> Option<ObjectId>,
) -> Result<(TenantScope, Member, B), Error> {
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
    let (scope, body, member) = begin_with(ctx, req, route, rule, parse, lookup, found).await?;
    Ok((scope, member, body))
}

/// The member's audit event in this tenant.
pub fn event(action: &'static str, scope: &TenantScope, member: &Member) -> AuditEvent {
    AuditEvent::user(action, member.user.authentik_subject_id.as_str(), member.user.email.as_str()).tenant(&scope.tenant.slug)
}

/// The member's mailbox and a client for it, only when mail is configured
/// and the mailbox is here: mailbox-side changes never touch another
/// tenant's mailbox.
pub fn mailbox_here<'a, H: Http>(ctx: &'a Ctx<H>, member: &'a Member) -> Option<(Stalwart<'a, H>, &'a str)> {
    match (ctx.stalwart(), &member.user.stalwart_account_id) {
        (Some(mail), Some(id)) if member.mailbox_here => Some((mail, id.as_str())),
        _ => None,
    }
}

/// The named domain, else the primary, else the oldest (as the seed).
pub fn pick_domain<'a>(domains: &'a [Domain], wanted: Option<&DomainName>) -> Option<&'a Domain> {
    match wanted {
        Some(d) => domains.iter().find(|x| x.domain.eq_ignore_ascii_case(d.as_str())),
        None => domains.iter().find(|x| x.is_primary).or_else(|| oldest(domains)),
    }
}

/// The seed's `.sort({ createdAt: 1 })`, as MongoDB orders it: a missing or
/// null `createdAt` before any date, then by date; ties (and the undated)
/// in `_id` order, which a real `findOne` leaves to the index but which must
/// not depend on insertion order here.
fn oldest(domains: &[Domain]) -> Option<&Domain> {
    domains.iter().min_by_key(|x| (x.created_at, x.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains(names: &[&str]) -> Vec<Domain> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                serde_json::from_value(json!({"_id": {"$oid": format!("65d00000000000000000000{i}")}, "tenantId":
                {"$oid": "65b000000000000000000001"}, "domain": n}))
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn the_mailbox_is_here_when_its_domain_is_one_of_the_tenants() {
        let acme = domains(&["acme.test", "mail.acme.test"]);
        for (address, here) in [
            (Some("mia@acme.test"), true),
            (Some("mia@MAIL.Acme.Test"), true),
            (Some("max@globex.test"), false),
            // A suffix or a prefix of one of the domains is another domain.
            (Some("x@evil-acme.test"), false),
            (Some("x@acme.test.evil"), false),
            (Some("x@test"), false),
            (Some("acme.test"), false),
            (Some("@acme.test"), false),
            (Some("mia@"), false),
            (Some(""), false),
            (None, false),
        ] {
            assert_eq!(mailbox_is_here(address, &acme), here, "{address:?}");
        }
        assert!(!mailbox_is_here(Some("mia@acme.test"), &[]), "a tenant without domains holds no mailbox");
    }
}
