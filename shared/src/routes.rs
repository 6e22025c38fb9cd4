//! The route table: each operation's component, route, callers, request
//! body and success status, stated once. The `Route` constants of `ops`
//! are looked up here at compile time ([`route`]), `GET /openapi.json` is
//! built from it, and tests/it/docs.rs holds `spin.toml`, docs/api.md,
//! the README and `functions/` equal to it. Adding an operation is one
//! line here, its module in `ops`, and its component in `functions/`.

use crate::request::Route;

/// One row of docs/api.md's route table.
#[derive(Clone, Copy, Debug)]
pub struct Operation {
    /// The Spin component (`functions/<component>`).
    pub component: &'static str,
    /// Its path pattern (Spin syntax, `:name` segments) and method.
    pub route: Route,
    /// Who may call it, as docs/api.md says.
    pub callers: &'static str,
    /// The OpenAPI schema of its JSON body, if it takes one.
    pub body: Option<&'static str>,
    /// Its success status.
    pub status: u16,
    /// The OpenAPI schema of its answer, when it has a fixed shape
    /// (`ops::answers`).
    pub answer: Option<&'static str>,
}

const fn op(component: &'static str, route: Route, callers: &'static str, body: Option<&'static str>, status: u16) -> Operation {
    Operation { component, route, callers, body, status, answer: None }
}

impl Operation {
    /// This operation answers `schema` (one of `ops::answers`).
    const fn answers(self, schema: &'static str) -> Operation {
        Operation { answer: Some(schema), ..self }
    }
}

/// docs/api.md's rows 1–32, in order.
pub const TABLE: &[Operation] = &[
    op("me", Route::get("/users/me"), "any signed-in user", None, 200).answers("User"),
    op("users-list", Route::get("/users"), "P: everyone; TA: users of the workspaces they administer; others 403", None, 200)
        .answers("Users"),
    op("users-get", Route::get("/users/:subject"), "P", None, 200).answers("User"),
    op("users-create", Route::post("/users/create"), "P", Some("CreateUser"), 201).answers("User"),
    op("users-update", Route::post("/users/:subject/update"), "P", Some("UpdateUser"), 200).answers("User"),
    op("users-deactivate", Route::post("/users/:subject/deactivate"), "P", None, 204),
    op("operators-invite", Route::post("/platform/operators/invite"), "P", Some("Invite"), 201).answers("Invited"),
    op("platform-reports", Route::get("/platform/reports"), "P", None, 200),
    op("partner-users-list", Route::get("/partners/:slug/users"), "P", None, 200).answers("Users"),
    op("partner-users-invite", Route::post("/partners/:slug/users/invite"), "P, PA of that partner", Some("Invite"), 201)
        .answers("Invited"),
    op("partner-team", Route::get("/users/me/partner/users"), "PS", None, 200),
    op("partner-team-remove", Route::post("/users/me/partner/users/:subject/remove"), "PA", None, 200).answers("Removed"),
    op("partner-tenants", Route::get("/users/me/partner/tenants"), "PS (scoped staff: only their workspaces)", None, 200),
    op("partner-activity", Route::get("/users/me/partner/activity"), "PA, unscoped PS", None, 200),
    op("partner-mrr", Route::get("/users/me/partner/mrr"), "PA, unscoped PS", None, 200),
    op("partner-reports", Route::get("/users/me/partner/reports"), "PA, unscoped PS", None, 200),
    op("members-list", Route::get("/tenants/:slug/members"), "P, TA, PT", None, 200).answers("Users"),
    op("members-create", Route::post("/tenants/:slug/members/create"), "P, TA, PT", Some("CreateMember"), 201).answers("MemberCreated"),
    op("members-remove", Route::post("/tenants/:slug/members/:user_id/remove"), "P, TA, PT", None, 204),
    op("members-suspend", Route::post("/tenants/:slug/members/:user_id/suspend"), "P, TA, PT", None, 204),
    op("members-resume", Route::post("/tenants/:slug/members/:user_id/resume"), "P, TA, PT", None, 204),
    op("members-logout", Route::post("/tenants/:slug/members/:user_id/logout"), "P, TA, PT", None, 200).answers("SessionsEnded"),
    op("members-reset-password", Route::post("/tenants/:slug/members/:user_id/reset-password"), "P, TA, PT", None, 200)
        .answers("PasswordReset"),
    op("members-update", Route::post("/tenants/:slug/members/:user_id/update"), "P, TA, PT", Some("UpdateMember"), 200),
    op("members-change-email", Route::post("/tenants/:slug/members/:user_id/change-email"), "P, TA, PT", Some("ChangeEmail"), 200),
    op("aliases-list", Route::get("/tenants/:slug/members/:user_id/aliases"), "P, TA, PT", None, 200).answers("Aliases"),
    op("aliases-add", Route::post("/tenants/:slug/members/:user_id/aliases/add"), "P, TA, PT", Some("AddAlias"), 200).answers("Aliases"),
    op("aliases-remove", Route::post("/tenants/:slug/members/:user_id/aliases/remove"), "P, TA, PT", Some("RemoveAlias"), 200)
        .answers("Aliases"),
    op("mailbox-create", Route::post("/tenants/:slug/members/:user_id/mailbox/create"), "P, TA, PT", Some("CreateMailbox"), 201)
        .answers("MailboxCreated"),
    op("ownership-transfer", Route::post("/tenants/:slug/ownership/transfer"), "P, TA, PT", Some("TransferOwnership"), 200)
        .answers("OwnershipTransferred"),
    op("tenant-admins-invite", Route::post("/tenants/:slug/admins/invite"), "P, PT", Some("Invite"), 201).answers("Invited"),
    op("openapi", Route::get("/openapi.json"), "anyone, no token", None, 200),
];

/// The route of `component` in [`TABLE`]; used in constants, so a name
/// that is not in the table fails the build.
pub const fn route(component: &str) -> Route {
    let mut i = 0;
    while i < TABLE.len() {
        if same(TABLE[i].component.as_bytes(), component.as_bytes()) {
            return TABLE[i].route;
        }
        i += 1;
    }
    panic!("the component is not in shared::routes::TABLE")
}

/// `a == b`, in a `const fn`.
const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The operation Spin routes `path` to: of the patterns it fits, the
/// most specific (`/users/create` before `/users/:subject`), as Spin's
/// router prefers exact segments to parameters.
pub fn for_path(path: &str) -> Option<&'static Operation> {
    TABLE.iter().filter(|o| o.route.params(path).is_some()).min_by_key(|o| o.route.pattern.matches(':').count())
}

impl Operation {
    /// Its one method (each component answers one).
    pub fn method(&self) -> &'static str {
        self.route.methods[0]
    }

    /// The path as OpenAPI writes it: `/users/:subject` → `/users/{subject}`.
    pub fn openapi_path(&self) -> String {
        let segments: Vec<String> =
            self.route.pattern.split('/').map(|s| s.strip_prefix(':').map_or_else(|| s.to_owned(), |p| format!("{{{p}}}"))).collect();
        segments.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_component_and_path() {
        let mut components: Vec<_> = TABLE.iter().map(|o| o.component).collect();
        let mut paths: Vec<_> = TABLE.iter().map(|o| o.route.pattern).collect();
        components.sort_unstable();
        components.dedup();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!((components.len(), paths.len()), (TABLE.len(), TABLE.len()));
    }

    #[test]
    fn routes_are_found_by_component() {
        assert_eq!(route("members-create").pattern, "/tenants/:slug/members/create");
        assert_eq!(route("users-get").methods, ["GET"]);
        assert_eq!(TABLE[2].openapi_path(), "/users/{subject}");
    }

    #[test]
    fn a_path_finds_the_route_spin_gives_it() {
        let of = |p: &str| for_path(p).map(|o| o.component);
        assert_eq!(of("/users/create"), Some("users-create"));
        assert_eq!(of("/users/me"), Some("me"));
        assert_eq!(of("/users/u-1"), Some("users-get"));
        assert_eq!(of("/tenants/acme/members/65a000000000000000000008/remove"), Some("members-remove"));
        assert_eq!(of("/nowhere"), None);
    }
}
