//! The `aliases-*` routes, rows 26–28: a member's mailbox aliases (the
//! seed's `listMemberAliases`, `addMemberAlias`, `removeMemberAlias`), and
//! what they share: the view of a mailbox's aliases, the alias change, the
//! mail domain an alias is on.
//!
//! Only a mailbox that is here (on one of this tenant's domains, the rule
//! of rows 19–23) is shown or changed, and only the one account is read,
//! never every account on the mail server. Aliases are shown as full
//! addresses through this tenant's domains; aliases on other domains are
//! not shown.

pub mod add;
pub mod list;
pub mod remove;

use crate::models::Domain;
use crate::ops::answers::Aliases;
use crate::ops::tenant::{Member, TenantScope};
use crate::ports::Http;
use crate::problem::Error;
use crate::stalwart::{Account, Stalwart};
use serde_json::Value;

/// How many times a change is decided again after a concurrent change to
/// the mail server's accounts (JMAP `stateMismatch`) before giving up.
const ATTEMPTS: usize = 5;

/// The seed's alias view `{hasMailbox, primary, aliases}`. `account` is
/// `None` for no mailbox here (or mail off), `Some(None)` for a mailbox
/// the mail server no longer has.
pub fn view(member: &Member, domains: &[Domain], account: Option<Option<&Account>>) -> Aliases {
    let primary = member.user.mailbox_address.clone().filter(|a| !a.is_empty()).unwrap_or_else(|| member.user.email.clone());
    match account {
        None => Aliases { has_mailbox: false, primary, aliases: vec![] },
        Some(None) => Aliases { has_mailbox: true, primary, aliases: vec![] },
        Some(Some(acc)) => {
            let aliases: Vec<String> = acc
                .aliases
                .iter()
                .filter_map(|(name, domain_id)| {
                    domains.iter().find(|d| d.stalwart_id.as_deref() == Some(domain_id.as_str())).map(|d| format!("{name}@{}", d.domain))
                })
                .collect();
            let primary = if acc.email_address.is_empty() { primary } else { acc.email_address.clone() };
            Aliases { has_mailbox: true, primary, aliases }
        }
    }
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
