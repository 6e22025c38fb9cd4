//! `partner-team`: GET /users/me/partner/users — the caller's partner team
//! with access and MFA (docs/api.md row 11).

use crate::ctx::Ctx;
use crate::data_api::{coll, Find, Sort};
use crate::ejson::to_api_json;
use crate::ops::prologue::prologue;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use super::{staff, Need, ALL};

pub const TEAM: Route = routes::route("partner-team");

/// Authentik MFA lookups in flight at once on the team page.
const MFA_CONCURRENCY: usize = 8;

/// Row 11: the partner's users, newest first, with `accessLevel`
/// (`all`/`scoped`), `accessCount` (null for all) and `mfaEnabled`
/// (confirmed authenticators; null when unknown: no Authentik pk, or the
/// lookup failed — never a failed page).
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (caller, _, ()) = prologue(ctx, req, &TEAM).caller().await?;
    let (_, partner) = staff(&caller, Need::Staff)?;
    let docs = ctx.db()?.find(coll::USERS, Find::filter(json!({ "partnerId": partner })).sort(Sort::newest_first()).limit(ALL)).await?;
    let ak = ctx.authentik().ok();
    let mfa: Vec<Option<bool>> = stream::iter(docs.iter().map(|d| {
        let pk = d.get("authentikUserPk").and_then(crate::ejson::int);
        let ak = ak.as_ref();
        async move {
            let (pk, ak) = (pk?, ak?);
            ak.count_authenticators(pk).await.ok().map(|n| n > 0)
        }
    }))
    .buffered(MFA_CONCURRENCY)
    .collect()
    .await;
    let out: Vec<Value> = docs
        .into_iter()
        .zip(mfa)
        .map(|(doc, mfa)| {
            let scope = doc.get("partnerTenantAccess").and_then(Value::as_array).map(Vec::len).filter(|n| *n > 0);
            let mut v = to_api_json(doc);
            v["accessLevel"] = json!(if scope.is_some() { "scoped" } else { "all" });
            v["accessCount"] = json!(scope);
            v["mfaEnabled"] = json!(mfa);
            v
        })
        .collect();
    Ok(ApiResponse::ok(Value::Array(out)))
}
