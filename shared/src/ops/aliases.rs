//! Rows 26–28: a member's mailbox aliases (the seed's `listMemberAliases`,
//! `addMemberAlias`, `removeMemberAlias`).
//!
//! Only a mailbox that is here (on one of this tenant's domains, the rule
//! of rows 19–23) is shown or changed, and only the one account is read,
//! never every account on the mail server. Aliases are shown as full
//! addresses through this tenant's domains; aliases on other domains are
//! not shown.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::access::TenantRule;
use crate::ctx::Ctx;
use crate::models::Domain;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes;
use crate::stalwart::{Account, Stalwart};
use crate::types::LocalPart;

use super::prologue::prologue;
use super::saga::audited;
use super::tenant::{event, mailbox_here};
use super::tenant::{Member, TenantScope};

pub const LIST: Route = routes::route("aliases-list");
pub const ADD: Route = routes::route("aliases-add");
pub const REMOVE: Route = routes::route("aliases-remove");

/// How many times a change is decided again after a concurrent change to
/// the mail server's accounts (JMAP `stateMismatch`) before giving up.
const ATTEMPTS: usize = 5;

/// The seed's alias view `{hasMailbox, primary, aliases}`. `account` is
/// `None` for no mailbox here (or mail off), `Some(None)` for a mailbox
/// the mail server no longer has.
pub fn view(member: &Member, domains: &[Domain], account: Option<Option<&Account>>) -> Value {
    let primary = member.user.mailbox_address.clone().filter(|a| !a.is_empty()).unwrap_or_else(|| member.user.email.clone());
    match account {
        None => json!({ "hasMailbox": false, "primary": primary, "aliases": [] }),
        Some(None) => json!({ "hasMailbox": true, "primary": primary, "aliases": [] }),
        Some(Some(acc)) => {
            let aliases: Vec<String> = acc
                .aliases
                .iter()
                .filter_map(|(name, domain_id)| {
                    domains.iter().find(|d| d.stalwart_id.as_deref() == Some(domain_id.as_str())).map(|d| format!("{name}@{}", d.domain))
                })
                .collect();
            let primary = if acc.email_address.is_empty() { primary } else { acc.email_address.clone() };
            json!({ "hasMailbox": true, "primary": primary, "aliases": aliases })
        }
    }
}

/// Row 26. (caller ∥ tenant+domains ∥ member) → the account: two
/// sequential round trips.
pub async fn list<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    let (scope, member, ()) = prologue(ctx, req, &LIST).tenant(TenantRule::AdminsAndPartner).member().await?;
    let out = match mailbox_here(ctx, &member) {
        None => view(&member, &scope.domains, None),
        Some((mail, id)) => {
            let account = mail.account(id).await?;
            view(&member, &scope.domains, Some(account.as_ref().map(|(a, _)| a)))
        }
    };
    Ok(ApiResponse::ok(out))
}

/// Reads the account, lets `decide` turn it into a patch (or a refusal),
/// and writes the patch only if no account changed since the read; after
/// a concurrent change, reads and decides again. Returns the account as
/// written.
async fn change_alias<H: Http>(
    mail: &Stalwart<'_, H>,
    id: &str,
    decide: impl Fn(&Account) -> Result<Value, Error>,
) -> Result<Account, Error> {
    for _ in 0..ATTEMPTS {
        let (account, state) =
            mail.account(id).await?.ok_or_else(|| Error::conflict("This member’s mailbox no longer exists on the mail server."))?;
        let patch = decide(&account)?;
        if let Some((account, _)) = mail.update_in_state(id, &state, patch).await? {
            return Ok(account);
        }
    }
    Err(Error::conflict("The mailbox kept changing while the alias was being saved. Try again."))
}

/// One of this tenant's domains with a mail-server id, by name.
fn mail_domain<'a>(scope: &'a TenantScope, name: &str) -> Option<(&'a Domain, &'a str)> {
    scope
        .domains
        .iter()
        .find(|d| d.domain.eq_ignore_ascii_case(name))
        .and_then(|d| d.stalwart_id.as_deref().filter(|s| !s.is_empty()).map(|id| (d, id)))
}

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
pub async fn add<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
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
    Ok(ApiResponse::ok(view(&member, &scope.domains, Some(Some(&account)))))
}

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
pub async fn remove<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
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
    Ok(ApiResponse::ok(view(&member, &scope.domains, Some(Some(&account)))))
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

    #[test]
    fn alias_addresses_have_one_at() {
        assert_eq!(split_address(" Sales@Acme.Test ").unwrap(), ("sales".into(), "acme.test".into()));
        for bad in ["sales", "@acme.test", "sales@", "a@b@c", ""] {
            assert_eq!(split_address(bad).unwrap_err().status(), 400, "{bad}");
        }
    }
}
