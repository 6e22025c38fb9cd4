//! `aliases-add`: POST /tenants/:slug/members/:user_id/aliases/add — add an
//! alias to a member's mailbox (docs/api.md row 27).

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
use crate::types::LocalPart;
use serde::Deserialize;
use serde_json::json;

use super::{change_alias, mail_domain, view};

pub const ADD: Route = routes::route("aliases-add");

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AddBody {
    /// Raw: the seed's rules and messages apply in its order.
    local_part: String,
    domain: String,
}

/// The alias prefix rule (the address prefix's, with the seed's wording).
pub fn alias_local_part(raw: &str) -> Result<LocalPart, Error> {
    LocalPart::parse(raw)
        .map_err(|_| Error::bad_request("The alias prefix may only contain letters, numbers, dots, hyphens and underscores."))
}

/// Row 27. (caller ∥ tenant+domains ∥ member) → the account → (alias
/// written if nothing changed meanwhile, and read back ∥ audit): three
/// sequential round trips (one more per concurrent change). An address in
/// use anywhere on the mail server is refused by the server (`409`).
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (scope, member, body) = prologue(ctx, req, &ADD).json::<AddBody>().tenant(TenantRule::AdminsAndPartner).member().await?;
    let (mail, id) = mailbox_here(ctx, &member).ok_or_else(|| Error::bad_request("This member has no mailbox to attach an alias to."))?;
    let local = alias_local_part(&body.local_part)?;
    let wanted = body.domain.trim().to_lowercase();
    let (domain, domain_id) = mail_domain(&scope, &wanted)
        .ok_or_else(|| Error::bad_request(format!("{wanted} isn’t a provisioned mail domain for this workspace.")))?;
    let address = format!("{local}@{}", domain.domain);
    let in_use = || Error::conflict(format!("{address} is already in use."));

    let change = async {
        // Its own address or alias is "in use" too (the seed looks the
        // address up on the whole server, this account included).
        let decide = |acc: &Account| match acc.alias_key(local.as_str(), domain_id) {
            Some(_) => Err(in_use()),
            None if acc.email_address.eq_ignore_ascii_case(&address) => Err(in_use()),
            None => Ok(json!({ format!("aliases/{}", acc.next_alias_key()): { "name": local, "domainId": domain_id } })),
        };
        change_alias(&mail, id, decide).await.map_err(|e| match e {
            Error::Upstream(u) if u.is_taken() => in_use(),
            e => e,
        })
    };
    let undo = || async { mail.remove_alias(id, local.as_str(), domain_id).await.map(|_| ()) };
    let event = event("tenant.user_alias_added", &scope, &member).metadata(json!({ "alias": address }));
    let account = audited(ctx, &scope.caller, event, change, undo).await?;
    Ok(answer(200, &view(&member, &scope.domains, Some(Some(&account)))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_prefixes_follow_the_seed_rule() {
        assert_eq!(alias_local_part(" Sales.Team ").unwrap().as_str(), "sales.team");
        for bad in ["", "a b", "a@b", "a+b", "æ"] {
            let e = alias_local_part(bad).unwrap_err();
            assert_eq!(e.to_string(), "The alias prefix may only contain letters, numbers, dots, hyphens and underscores.", "{bad}");
        }
    }
}
