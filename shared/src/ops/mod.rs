//! The operations, one module per family of routes. Each operation is
//! `run(ctx, request) -> response` plus its `ROUTE`; a component is a few
//! lines that hand its request to one of them.
//!
//! Every operation checks in docs/api.md's order: `405` → `401` → `413` →
//! `400` → `404` → `403` → the operation itself.
//!
//! **Joins.** Calls run concurrently only through joins that await every
//! branch (`futures::join!`, `join_all`): a failure is answered, and
//! compensated, once nothing of the request is still in flight. A join
//! that drops its siblings on the first error (`try_join!`,
//! `try_join_all`, `select!`) would leave calls whose outcome is unknown
//! to the undo (an audit event landing after its delete) — the test below
//! keeps them out. (Dropping a call half-way is still safe for the
//! runtime: `spin::SpinHttp` releases its resources child-first.)

// What several routes share lives in `prologue` (the checks every route
// starts with), `tenant` (the tenant scope and its members), `invite` (the three invites' saga), `saga` (audit
// and undo), `user_doc` (the user document's writes) and `undo`; every
// other module holds routes only and imports from these alone (a test
// below holds that).
pub mod aliases;
pub mod invite;
pub mod lifecycle;
pub mod mailbox;
pub mod me;
pub mod members;
pub mod openapi;
pub mod ownership;
pub mod partner_portal;
pub mod partners;
pub mod platform;
pub mod profile;
pub mod prologue;
pub mod saga;
pub mod tenant;
pub mod undo;
pub mod user_doc;
pub mod users;

#[cfg(test)]
mod tests {
    /// No join in the domain drops a sibling still in flight (see "Joins").
    #[test]
    fn every_join_awaits_all_its_branches() {
        // Spelt in halves so this file does not find itself.
        const DROPPING: [&str; 4] = [concat!("try", "_join"), concat!("select", "!"), concat!("select", "_all"), concat!("select", "(")];
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offenders = Vec::new();
        let mut dirs = vec![src];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (n, line) in text.lines().enumerate() {
                        let code = line.split("//").next().unwrap_or("");
                        if DROPPING.iter().any(|p| code.contains(p)) {
                            offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                        }
                    }
                }
            }
        }
        assert!(offenders.is_empty(), "joins that drop siblings:\n{}", offenders.join("\n"));
    }

    /// The modules that hold what several routes share.
    const MACHINERY: &[&str] = &["prologue", "tenant", "invite", "saga", "user_doc", "undo"];

    /// A route module never borrows from another: what two routes share
    /// lives in a machinery module.
    #[test]
    fn no_route_module_imports_another() {
        let ops = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ops");
        let mut routes = Vec::new();
        for entry in std::fs::read_dir(&ops).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().trim_end_matches(".rs").to_owned();
            if !MACHINERY.contains(&name.as_str()) && name != "mod" {
                routes.push(name);
            }
        }
        assert!(routes.len() >= 10, "the route modules were not found: {routes:?}");
        let mut offenders = Vec::new();
        for module in &routes {
            let text = std::fs::read_to_string(ops.join(format!("{module}.rs"))).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for other in routes.iter().filter(|o| *o != module) {
                    if code.contains(&format!("super::{other}::")) || code.contains(&format!("ops::{other}::")) {
                        offenders.push(format!("ops/{module}.rs:{}: {}", n + 1, line.trim()));
                    }
                }
            }
        }
        assert!(offenders.is_empty(), "route modules importing each other:\n{}", offenders.join("\n"));
    }
}
