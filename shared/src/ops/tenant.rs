//! The tenant a `/tenants/:slug/...` route names, with its domains, and
//! what the tenant routes share about its members: the scope and member
//! the prologue (`ops::prologue`) loads, the member's audit event, the
//! mailbox that is the tenant's to change, and the domain a new address
//! goes on.

use serde_json::{json, Value};

use crate::access::TenantRelation;
use crate::audit::AuditEvent;
use crate::caller::Caller;
use crate::ctx::Ctx;
use crate::data_api::{coll, decode, Stage};
use crate::models::{Domain, Tenant, User};
use crate::ports::Http;
use crate::problem::Error;
use crate::request::Params;
use crate::stalwart::Stalwart;
use crate::types::DomainName;
use crate::types::Slug;

pub struct TenantScope {
    pub caller: Caller,
    pub params: Params,
    pub tenant: Tenant,
    pub domains: Vec<Domain>,
    /// The domains' documents as the prologue's domain stages left them
    /// (`TenantPrologue::joined`; the domains as stored without stages).
    pub joined: Vec<Value>,
    pub relation: TenantRelation,
}

/// The tenant with its domains, in one round trip; `domain_stages` run
/// over each domain inside the join (empty: the domains as stored), and
/// the joined documents come back as read too.
pub(super) async fn load<H: Http>(
    ctx: &Ctx<H>,
    slug: &Slug,
    domain_stages: Vec<Stage>,
) -> Result<Option<(Tenant, Vec<Domain>, Vec<Value>)>, Error> {
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

/// A tenant without its identity group cannot take members yet.
pub fn not_provisioned(tenant: &Tenant) -> Error {
    Error::bad_request(format!("Workspace \"{}\" isn't fully provisioned (no identity group). Reconcile it first.", tenant.slug))
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
