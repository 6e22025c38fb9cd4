//! What each component needs from its deployment: the configuration
//! [`Part`]s it reads, and so the variables it declares in `spin.toml`, the
//! hosts it may call (`allowed_outbound_hosts`) and the variables, secrets
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
    pub data: &'static [(&'static str, &'static [&'static str])],
}

/// Every signed-in route: the caller is read (OIDC, Data API) and their
/// roles come from the groups' names; CORS is every component's.
const SIGNED_IN: [Part; 4] = [Part::Cors, Part::DataApi, Part::Oidc, Part::Groups];
const WITH_AUTHENTIK: [Part; 5] = [Part::Cors, Part::DataApi, Part::Oidc, Part::Groups, Part::Authentik];
const WITH_MAIL: [Part; 5] = [Part::Cors, Part::DataApi, Part::Oidc, Part::Groups, Part::Stalwart];
const WITH_AUTHENTIK_AND_MAIL: [Part; 6] = [Part::Cors, Part::DataApi, Part::Oidc, Part::Groups, Part::Authentik, Part::Stalwart];

const fn needs(component: &'static str, parts: &'static [Part], data: &'static [(&'static str, &'static [&'static str])]) -> Needs {
    Needs { component, parts, data }
}

/// In `crate::routes::TABLE`'s order (a test keeps the two in step).
pub const TABLE: &[Needs] = &[
    needs("me", &SIGNED_IN, &[("partners", &["aggregate"]), ("tenants", &["find"]), ("users", &["updateOne", "aggregate"])]),
    needs("users-list", &SIGNED_IN, &[("tenants", &["find"]), ("users", &["findOne", "find"])]),
    needs("users-get", &SIGNED_IN, &[("users", &["findOne"])]),
    needs(
        "users-create",
        &SIGNED_IN,
        &[("auditevents", &["insertOne", "deleteOne"]), ("tenants", &["find"]), ("users", &["findOne", "updateOne", "deleteOne"])],
    ),
    needs(
        "users-update",
        &SIGNED_IN,
        &[("auditevents", &["insertOne", "deleteOne"]), ("tenants", &["find"]), ("users", &["findOne", "updateOne", "replaceOne"])],
    ),
    needs("users-deactivate", &SIGNED_IN, &[("auditevents", &["insertOne", "deleteOne"]), ("users", &["findOne", "updateOne"])]),
    needs(
        "operators-invite",
        &WITH_AUTHENTIK,
        &[("auditevents", &["insertOne", "deleteOne"]), ("users", &["findOne", "updateOne", "deleteOne"])],
    ),
    needs("platform-reports", &SIGNED_IN, &[("subscriptions", &["aggregate"]), ("tenants", &["aggregate"]), ("users", &["findOne"])]),
    needs("partner-users-list", &SIGNED_IN, &[("partners", &["findOne"]), ("users", &["findOne", "find"])]),
    needs(
        "partner-users-invite",
        &WITH_AUTHENTIK,
        &[
            ("auditevents", &["insertOne", "deleteOne"]),
            ("partners", &["findOne"]),
            ("users", &["findOne", "updateOne", "replaceOne", "deleteOne"]),
        ],
    ),
    needs("partner-team", &WITH_AUTHENTIK, &[("users", &["findOne", "find"])]),
    needs(
        "partner-team-remove",
        &WITH_AUTHENTIK,
        &[("auditevents", &["insertOne", "deleteOne"]), ("partners", &["aggregate"]), ("users", &["findOne", "updateOne", "aggregate"])],
    ),
    needs("partner-tenants", &SIGNED_IN, &[("tenants", &["aggregate"]), ("users", &["findOne", "aggregate"])]),
    needs(
        "partner-activity",
        &SIGNED_IN,
        &[("auditevents", &["aggregate"]), ("partners", &["aggregate"]), ("tenants", &["find", "aggregate"]), ("users", &["findOne"])],
    ),
    needs("partner-mrr", &SIGNED_IN, &[("subscriptions", &["aggregate"]), ("tenants", &["aggregate"]), ("users", &["findOne"])]),
    needs(
        "partner-reports",
        &SIGNED_IN,
        &[("partners", &["findOne"]), ("subscriptions", &["aggregate"]), ("tenants", &["aggregate"]), ("users", &["findOne", "aggregate"])],
    ),
    needs("members-list", &SIGNED_IN, &[("domains", &["aggregate"]), ("tenants", &["aggregate"]), ("users", &["findOne", "find"])]),
    // Every upstream: identity, mailbox and file account, the last one
    // skipped when OCIS creates accounts itself.
    needs(
        "members-create",
        &[Part::Cors, Part::DataApi, Part::Oidc, Part::Groups, Part::Authentik, Part::Stalwart, Part::Ocis, Part::OcisAutoprovision],
        &[
            ("auditevents", &["insertOne", "deleteOne"]),
            ("domains", &["aggregate"]),
            ("tenants", &["aggregate"]),
            ("users", &["findOne", "updateOne", "deleteOne", "aggregate"]),
        ],
    ),
    needs(
        "members-remove",
        &[Part::Cors, Part::DataApi, Part::Oidc, Part::Groups, Part::Authentik, Part::Stalwart, Part::Ocis],
        &[
            ("auditevents", &["insertOne", "deleteOne"]),
            ("domains", &["aggregate"]),
            ("tenants", &["aggregate"]),
            ("users", &["findOne", "updateOne", "replaceOne", "deleteOne"]),
        ],
    ),
    needs(
        "members-suspend",
        &WITH_AUTHENTIK_AND_MAIL,
        &[
            ("auditevents", &["insertOne", "deleteOne"]),
            ("domains", &["aggregate"]),
            ("tenants", &["aggregate"]),
            ("users", &["findOne", "updateOne"]),
        ],
    ),
    needs(
        "members-resume",
        &WITH_AUTHENTIK_AND_MAIL,
        &[
            ("auditevents", &["insertOne", "deleteOne"]),
            ("domains", &["aggregate"]),
            ("tenants", &["aggregate"]),
            ("users", &["findOne", "updateOne"]),
        ],
    ),
    needs(
        "members-logout",
        &WITH_AUTHENTIK,
        &[("auditevents", &["insertOne", "deleteOne"]), ("domains", &["aggregate"]), ("tenants", &["aggregate"]), ("users", &["findOne"])],
    ),
    needs(
        "members-reset-password",
        &WITH_AUTHENTIK_AND_MAIL,
        &[("auditevents", &["insertOne", "deleteOne"]), ("domains", &["aggregate"]), ("tenants", &["aggregate"]), ("users", &["findOne"])],
    ),
    needs(
        "members-update",
        &WITH_AUTHENTIK_AND_MAIL,
        &[
            ("auditevents", &["insertOne", "deleteOne"]),
            ("domains", &["aggregate"]),
            ("tenants", &["aggregate"]),
            ("users", &["findOne", "find", "updateOne"]),
        ],
    ),
    needs(
        "members-change-email",
        &WITH_AUTHENTIK,
        &[
            ("auditevents", &["insertOne", "deleteOne"]),
            ("domains", &["aggregate"]),
            ("tenants", &["aggregate"]),
            ("users", &["findOne", "updateOne"]),
        ],
    ),
    needs("aliases-list", &WITH_MAIL, &[("domains", &["aggregate"]), ("tenants", &["aggregate"]), ("users", &["findOne"])]),
    needs(
        "aliases-add",
        &WITH_MAIL,
        &[("auditevents", &["insertOne", "deleteOne"]), ("domains", &["aggregate"]), ("tenants", &["aggregate"]), ("users", &["findOne"])],
    ),
    needs(
        "aliases-remove",
        &WITH_MAIL,
        &[("auditevents", &["insertOne", "deleteOne"]), ("domains", &["aggregate"]), ("tenants", &["aggregate"]), ("users", &["findOne"])],
    ),
    needs(
        "mailbox-create",
        &WITH_MAIL,
        &[
            ("auditevents", &["insertOne", "deleteOne"]),
            ("domains", &["aggregate"]),
            ("tenants", &["aggregate"]),
            ("users", &["findOne", "updateOne"]),
        ],
    ),
    needs(
        "ownership-transfer",
        &SIGNED_IN,
        &[
            ("auditevents", &["insertOne", "deleteOne"]),
            ("domains", &["aggregate"]),
            ("tenants", &["updateOne", "aggregate"]),
            ("users", &["findOne", "find", "updateOne", "updateMany"]),
        ],
    ),
    needs(
        "tenant-admins-invite",
        &WITH_AUTHENTIK,
        &[
            ("auditevents", &["insertOne", "deleteOne"]),
            ("domains", &["aggregate"]),
            ("tenants", &["aggregate"]),
            ("users", &["findOne", "updateOne", "deleteOne"]),
        ],
    ),
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

    /// The variables it cannot do without (each part's [`Part::required`]).
    pub fn required(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.parts.iter().flat_map(|p| p.required().iter().copied()).collect();
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
