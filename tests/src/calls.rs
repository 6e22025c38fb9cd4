//! Fault rules aimed at the upstream calls the app makes, by each system's
//! wire contract (docs/upstreams.md): a test names the call it fails or
//! holds, not its path pattern. `*` stands for an id the test cannot know;
//! a final `$` ends the path (a user's PATCH is not its `set_password/`).

use crate::{data_api_action, data_api_rule, Fault, FaultRule};

pub fn status(code: u16) -> Fault {
    Fault::Status(code)
}

// ---- Authentik --------------------------------------------------------------

pub fn ak_set_password(f: Fault) -> FaultRule {
    FaultRule::new("/api/v3/core/users/*/set_password/", f).method("POST")
}
pub fn ak_patch_user(f: Fault) -> FaultRule {
    FaultRule::new("/api/v3/core/users/*/$", f).method("PATCH")
}
pub fn ak_delete_user(f: Fault) -> FaultRule {
    FaultRule::new("/api/v3/core/users/*/$", f).method("DELETE")
}
pub fn ak_recovery(f: Fault) -> FaultRule {
    FaultRule::new("/api/v3/core/users/*/recovery/", f).method("POST")
}
pub fn ak_get_user(pk: i64, f: Fault) -> FaultRule {
    FaultRule::new(format!("/api/v3/core/users/{pk}/$"), f).method("GET")
}
/// The user listing (by e-mail); the filter is in the query.
pub fn ak_find_user(f: Fault) -> FaultRule {
    FaultRule::new("/api/v3/core/users/$", f).method("GET")
}
/// An identity create (the listing's POST).
pub fn ak_create_user(f: Fault) -> FaultRule {
    FaultRule::new("/api/v3/core/users/$", f).method("POST")
}
pub fn ak_find_group(f: Fault) -> FaultRule {
    FaultRule::new("/api/v3/core/groups/$", f).method("GET")
}

// ---- Stalwart (JMAP: one endpoint, the method in the body) -------------------

/// Any account change: create, update or destroy.
pub fn mail_set(f: Fault) -> FaultRule {
    FaultRule::new("/jmap/", f).method("POST").body_contains("\"x:Account/set\"")
}
pub fn mail_get(f: Fault) -> FaultRule {
    FaultRule::new("/jmap/", f).method("POST").body_contains("\"x:Account/get\"")
}
/// The JMAP session, read first by a lookup of an account by address.
pub fn mail_session(f: Fault) -> FaultRule {
    FaultRule::new("/jmap/session", f).method("GET")
}
pub fn mail_destroy(f: Fault) -> FaultRule {
    FaultRule::new("/jmap/", f).method("POST").body_contains("\"destroy\"")
}

// ---- OCIS ---------------------------------------------------------------------

pub fn files_create(f: Fault) -> FaultRule {
    FaultRule::new("/graph/v1.0/users$", f).method("POST")
}
/// A user read by name or id.
pub fn files_get(f: Fault) -> FaultRule {
    FaultRule::new("/graph/v1.0/users/", f).method("GET")
}
pub fn files_delete(f: Fault) -> FaultRule {
    FaultRule::new("/graph/v1.0/users/", f).method("DELETE")
}

// ---- the Data API ---------------------------------------------------------------

/// One action on one collection.
pub fn db(action: &str, collection: &str, f: Fault) -> FaultRule {
    data_api_rule(action, collection, f)
}
/// One action whose body holds `needle`: tells two reads of one collection
/// apart (the caller's subject, a member's id).
pub fn db_naming(action: &str, needle: &str, f: Fault) -> FaultRule {
    FaultRule::new(data_api_action(action), f).method("POST").body_contains(needle)
}
