//! Loading the tenant a `/tenants/:slug/...` route names, with its domains,
//! and checking the caller's access to it.

use serde_json::{json, Value};

use crate::access::{authorize_tenant, tenant_not_found, TenantRelation, TenantRule};
use crate::caller::{authenticate, Caller};
use crate::ctx::Ctx;
use crate::data_api::{coll, decode, Stage};
use crate::models::{Domain, Tenant};
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, Params, Route};
use crate::types::Slug;

pub struct TenantScope {
    pub caller: Caller,
    pub params: Params,
    pub tenant: Tenant,
    pub domains: Vec<Domain>,
    pub relation: TenantRelation,
}

/// The tenant with its domains, in one round trip.
async fn load<H: Http>(ctx: &Ctx<H>, slug: &Slug) -> Result<Option<(Tenant, Vec<Domain>)>, Error> {
    let docs = ctx
        .db()?
        .aggregate(
            coll::TENANTS,
            &[
                Stage::Match(json!({ "slug": slug })),
                Stage::Limit(1),
                Stage::Lookup { from: coll::DOMAINS, local_field: "_id", foreign_field: "tenantId", as_field: "__domains" },
            ],
        )
        .await?;
    let Some(mut doc) = docs.into_iter().next() else { return Ok(None) };
    let domains = match doc.as_object_mut().and_then(|m| m.remove("__domains")) {
        Some(Value::Array(ds)) => ds.iter().map(|d| decode(coll::DOMAINS, d)).collect::<Result<Vec<Domain>, _>>()?,
        _ => vec![],
    };
    Ok(Some((decode(coll::TENANTS, &doc)?, domains)))
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
    route.check_method(&req.method)?;
    let params = route.params(req.path()).ok_or_else(|| Error::not_found("Not found"))?;
    let slug = Slug::parse(params.get("slug")).ok();
    let (caller, tenant) = futures::join!(authenticate(ctx, req), async {
        match &slug {
            Some(s) => load(ctx, s).await,
            None => Ok(None),
        }
    });
    let caller = caller?;
    if req.body.is_none() {
        return Err(Error::PayloadTooLarge);
    }
    let body = parse(req)?;
    let (tenant, domains) = tenant?.ok_or_else(tenant_not_found)?;
    let relation = authorize_tenant(&caller, &tenant, rule)?;
    Ok((TenantScope { caller, params, tenant, domains, relation }, body))
}
