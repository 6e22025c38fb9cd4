//! What each component needs from its deployment: the configuration
//! [`Part`]s it reads, and so the variables it declares in `spin.toml`, the
//! hosts it may call (`allowed_outbound_hosts`), the key-value stores it
//! opens (`key_value_stores`) and the variables, secrets
//! among them, that its SpinApp is given (`cargo run -p devtool --bin kube`).
//!
//! One table for all three, held to the code from both sides: each part's
//! loader reads exactly [`Part::variables`] (a unit test in `config`), and
//! `tests/it/manifest.rs` holds every component's `spin.toml` declarations
//! to its row here. Spin resolves only the variables a component declares,
//! so a part read outside its row is unset at run time and answers `503`
//! in the end-to-end suite that runs every route.

use crate::config::Part;

/// One component's needs.
#[derive(Debug)]
pub struct Needs {
    pub component: &'static str,
    pub parts: &'static [Part],
    /// Its Data API rights: `(collection, actions)`, as the gateway's key
    /// policies spell them (an `aggregate` whose pipeline `$lookup`s another
    /// collection needs `aggregate` on that one too). `make dev` and the
    /// tests give each component a key with exactly these rights, the kube
    /// generator each SpinApp a key with its components' rights, and
    /// `tests/it/rights.rs` proves the table from the end-to-end suite's
    /// Data API calls: none outside it, no entry never used.
    /// Listed as groups of rights ([`Rights`]), the shared ones named below.
    pub data: &'static [Rights],
}

/// Data API rights: `(collection, actions)`.
pub type Rights = &'static [(&'static str, &'static [&'static str])];

/// The caller's user document, read by every signed-in route but `me`.
const CALLER: Rights = &[("users", &["findOne"])];
/// The caller and the workspace with its domains (`ops::prologue`'s
/// `.tenant(..)`: one aggregation over tenants that looks up domains).
const TENANT: Rights = &[("domains", &["aggregate"]), ("tenants", &["aggregate"]), ("users", &["findOne"])];
/// A mutation's audit event, and its delete when the change fails beside
/// it (`ops::saga::audited`).
const AUDITED: Rights = &[("auditevents", &["insertOne", "deleteOne"])];

/// Every signed-in route: the caller is read (OIDC, Data API) and their
/// roles come from the groups' names; CORS is every component's.
const SIGNED_IN: [Part; 4] = [Part::Cors, Part::DataApi, Part::Oidc, Part::Groups];
const WITH_AUTHENTIK: [Part; 5] = [Part::Cors, Part::DataApi, Part::Oidc, Part::Groups, Part::Authentik];
const WITH_MAIL: [Part; 5] = [Part::Cors, Part::DataApi, Part::Oidc, Part::Groups, Part::Stalwart];
const WITH_AUTHENTIK_AND_MAIL: [Part; 6] = [Part::Cors, Part::DataApi, Part::Oidc, Part::Groups, Part::Authentik, Part::Stalwart];

const fn needs(component: &'static str, parts: &'static [Part], data: &'static [Rights]) -> Needs {
    Needs { component, parts, data }
}

/// In `crate::routes::TABLE`'s order (a test keeps the two in step).
pub const TABLE: &[Needs] = &[
    needs("me", &SIGNED_IN, &[&[("partners", &["aggregate"]), ("tenants", &["find"]), ("users", &["updateOne", "aggregate"])]]),
    needs("users-list", &SIGNED_IN, &[CALLER, &[("tenants", &["find"]), ("users", &["find"])]]),
    needs("users-get", &SIGNED_IN, &[CALLER]),
    needs("users-create", &SIGNED_IN, &[CALLER, AUDITED, &[("tenants", &["find"]), ("users", &["updateOne", "deleteOne"])]]),
    needs("users-update", &SIGNED_IN, &[CALLER, AUDITED, &[("tenants", &["find"]), ("users", &["updateOne", "replaceOne"])]]),
    needs("users-deactivate", &SIGNED_IN, &[CALLER, AUDITED, &[("users", &["updateOne"])]]),
    needs("operators-invite", &WITH_AUTHENTIK, &[CALLER, AUDITED, &[("users", &["updateOne", "deleteOne"])]]),
    needs("platform-reports", &SIGNED_IN, &[CALLER, &[("subscriptions", &["aggregate"]), ("tenants", &["aggregate"])]]),
    needs("partner-users-list", &SIGNED_IN, &[CALLER, &[("partners", &["findOne"]), ("users", &["find"])]]),
    needs(
        "partner-users-invite",
        &WITH_AUTHENTIK,
        &[CALLER, AUDITED, &[("partners", &["findOne"]), ("users", &["updateOne", "replaceOne", "deleteOne"])]],
    ),
    needs("partner-team", &WITH_AUTHENTIK, &[CALLER, &[("users", &["find"])]]),
    needs(
        "partner-team-remove",
        &WITH_AUTHENTIK,
        &[CALLER, AUDITED, &[("partners", &["aggregate"]), ("users", &["updateOne", "aggregate"])]],
    ),
    needs("partner-tenants", &SIGNED_IN, &[CALLER, &[("tenants", &["aggregate"]), ("users", &["aggregate"])]]),
    needs(
        "partner-activity",
        &SIGNED_IN,
        &[CALLER, &[("auditevents", &["aggregate"]), ("partners", &["aggregate"]), ("tenants", &["find", "aggregate"])]],
    ),
    needs("partner-mrr", &SIGNED_IN, &[CALLER, &[("subscriptions", &["aggregate"]), ("tenants", &["aggregate"])]]),
    needs(
        "partner-reports",
        &SIGNED_IN,
        &[CALLER, &[("partners", &["findOne"]), ("subscriptions", &["aggregate"]), ("tenants", &["aggregate"]), ("users", &["aggregate"])]],
    ),
    needs("members-list", &SIGNED_IN, &[TENANT, &[("users", &["find"])]]),
    // Every upstream: identity, mailbox and file account, the last one
    // skipped when OCIS creates accounts itself.
    needs(
        "members-create",
        &[Part::Cors, Part::DataApi, Part::Oidc, Part::Groups, Part::Authentik, Part::Stalwart, Part::Ocis, Part::OcisAutoprovision],
        &[TENANT, AUDITED, &[("users", &["updateOne", "deleteOne", "aggregate"])]],
    ),
    needs(
        "members-remove",
        &[Part::Cors, Part::DataApi, Part::Oidc, Part::Groups, Part::Authentik, Part::Stalwart, Part::Ocis],
        &[TENANT, AUDITED, &[("users", &["updateOne", "replaceOne", "deleteOne"])]],
    ),
    needs("members-suspend", &WITH_AUTHENTIK_AND_MAIL, &[TENANT, AUDITED, &[("users", &["updateOne"])]]),
    needs("members-resume", &WITH_AUTHENTIK_AND_MAIL, &[TENANT, AUDITED, &[("users", &["updateOne"])]]),
    needs("members-logout", &WITH_AUTHENTIK, &[TENANT, AUDITED]),
    needs("members-reset-password", &WITH_AUTHENTIK_AND_MAIL, &[TENANT, AUDITED]),
    needs("members-update", &WITH_AUTHENTIK_AND_MAIL, &[TENANT, AUDITED, &[("users", &["find", "updateOne"])]]),
    needs("members-change-email", &WITH_AUTHENTIK, &[TENANT, AUDITED, &[("users", &["updateOne"])]]),
    needs("aliases-list", &WITH_MAIL, &[TENANT]),
    needs("aliases-add", &WITH_MAIL, &[TENANT, AUDITED]),
    needs("aliases-remove", &WITH_MAIL, &[TENANT, AUDITED]),
    needs("mailbox-create", &WITH_MAIL, &[TENANT, AUDITED, &[("users", &["updateOne"])]]),
    needs(
        "ownership-transfer",
        &SIGNED_IN,
        &[TENANT, AUDITED, &[("tenants", &["updateOne"]), ("users", &["find", "updateOne", "updateMany"])]],
    ),
    needs("tenant-admins-invite", &WITH_AUTHENTIK, &[TENANT, AUDITED, &[("users", &["updateOne", "replaceOne", "deleteOne"])]]),
    // No token, no upstream: the document is built in.
    needs("openapi", &[Part::Cors], &[]),
];

/// `component`'s row.
pub fn of(component: &str) -> Option<&'static Needs> {
    TABLE.iter().find(|n| n.component == component)
}

impl Needs {
    /// The variables it reads, sorted, each once.
    pub fn variables(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.parts.iter().flat_map(|p| p.variables().iter().copied()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Its Data API rights, `(collection, action)`, each once, sorted.
    pub fn rights(&self) -> Vec<(&'static str, &'static str)> {
        let mut v: Vec<(&'static str, &'static str)> =
            self.data.iter().flat_map(|r| r.iter()).flat_map(|(coll, actions)| actions.iter().map(move |a| (*coll, *a))).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The variables it cannot do without (each part's [`Part::required`]).
    pub fn required(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.parts.iter().flat_map(|p| p.required().iter().copied()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The key-value stores it opens (`key_value_stores`), sorted, each once.
    pub fn key_value_stores(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.parts.iter().filter_map(|p| p.key_value_store()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The variables naming the origins it calls, sorted, each once.
    pub fn hosts(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.parts.iter().filter_map(|p| p.host()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_route_in_the_route_tables_order() {
        let routes: Vec<&str> = crate::routes::TABLE.iter().map(|o| o.component).collect();
        let rows: Vec<&str> = TABLE.iter().map(|n| n.component).collect();
        assert_eq!(rows, routes);
    }

    #[test]
    fn only_the_routes_that_call_authentik_read_its_token() {
        let with_token: Vec<&str> = TABLE.iter().filter(|n| n.variables().contains(&"authentik_token")).map(|n| n.component).collect();
        assert!(!with_token.contains(&"me") && !with_token.contains(&"platform-reports"), "{with_token:?}");
        assert!(with_token.contains(&"members-create"));
    }
}
