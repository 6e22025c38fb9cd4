//! `aliases-remove`: POST /tenants/:slug/members/:user_id/aliases/remove —
//! remove an alias from a member's mailbox (docs/api.md row 28).

use crate::access::TenantRule;
use crate::ctx::Ctx;
use crate::ops::answers::answer;
use crate::ops::prologue::prologue;
use crate::ops::saga::audited;
use crate::ops::tenant::{event, mailbox_here};
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use crate::stalwart::Account;
use serde::Deserialize;
use serde_json::json;

use super::{change_alias, mail_domain, view};

pub const REMOVE: Route = routes::route("aliases-remove");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveBody {
    address: String,
}

/// `local@domain`, lower-cased: exactly one `@` with something either side.
pub fn split_address(raw: &str) -> Result<(String, String), Error> {
    let a = raw.trim().to_lowercase();
    match a.split_once('@') {
        Some((l, d)) if !l.is_empty() && !d.is_empty() && !d.contains('@') => Ok((l.to_owned(), d.to_owned())),
        _ => Err(Error::bad_request("Invalid alias address.")),
    }
}

/// Row 28. (caller ∥ tenant+domains ∥ member) → the account → (alias
/// removed if nothing changed meanwhile, and read back ∥ audit): three
/// sequential round trips. An address that is not one of the member's
/// aliases is a `404`.
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (scope, member, body) = prologue(ctx, req, &REMOVE).json::<RemoveBody>().tenant(TenantRule::AdminsAndPartner).member().await?;
    let (mail, id) = mailbox_here(ctx, &member).ok_or_else(|| Error::bad_request("This member has no mailbox."))?;
    let (local, domain) = split_address(&body.address)?;
    let (_, domain_id) =
        mail_domain(&scope, &domain).ok_or_else(|| Error::bad_request(format!("{domain} isn’t a mail domain for this workspace.")))?;
    let address = format!("{local}@{domain}");

    let change = async {
        let decide = |acc: &Account| match acc.alias_key(&local, domain_id) {
            Some(k) => Ok(json!({ format!("aliases/{k}"): null })),
            None => Err(Error::not_found(format!("{address} isn’t an alias of this member."))),
        };
        change_alias(&mail, id, decide).await
    };
    let undo = || mail.add_alias(id, &local, domain_id);
    let event = event("tenant.user_alias_removed", &scope, &member).metadata(json!({ "alias": address }));
    let account = audited(ctx, &scope.caller, event, change, undo).await?;
    Ok(answer(200, &view(&member, &scope.domains, Some(Some(&account)))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_addresses_have_one_at() {
        assert_eq!(split_address(" Sales@Acme.Test ").unwrap(), ("sales".into(), "acme.test".into()));
        for bad in ["sales", "@acme.test", "sales@", "a@b@c", ""] {
            assert_eq!(split_address(bad).unwrap_err().status(), 400, "{bad}");
        }
    }
}
