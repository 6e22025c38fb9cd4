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
pub mod answers;
pub mod invite;
pub mod mailbox_create;
pub mod me;
pub mod members;
pub mod openapi;
pub mod operators_invite;
pub mod ownership_transfer;
pub mod partner;
pub mod platform_reports;
pub mod prologue;
pub mod saga;
pub mod tenant;
pub mod tenant_admins_invite;
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
    const MACHINERY: &[&str] = &["answers", "prologue", "tenant", "invite", "saga", "user_doc", "undo"];

    fn ops_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ops")
    }

    /// The module path of a component's operation: `members-create` →
    /// `members::create` (a family folder holds the routes that share the
    /// first word), `ownership-transfer` → `ownership_transfer`.
    fn module_of(component: &str) -> String {
        match component.split_once('-') {
            Some((family, rest)) if ops_dir().join(family).is_dir() => format!("{family}::{}", rest.replace('-', "_")),
            _ => component.replace('-', "_"),
        }
    }

    /// Each component's operation is `shared::ops::<its module>::run`, a
    /// module named for it that holds that one route.
    #[test]
    fn every_component_runs_the_module_named_for_it() {
        let functions = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
        let mut components = 0;
        for entry in std::fs::read_dir(&functions).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            let lib = std::fs::read_to_string(functions.join(&name).join("src/lib.rs")).unwrap();
            let module = module_of(&name);
            assert!(lib.contains(&format!("shared::ops::{module}::run(")), "{name} does not run shared::ops::{module}::run");
            let file = ops_dir().join(format!("{}.rs", module.replace("::", "/")));
            let text = std::fs::read_to_string(&file).unwrap_or_else(|_| panic!("{name}: no {}", file.display()));
            assert!(text.contains(&format!("routes::route(\"{name}\")")), "{} holds another route than {name}", file.display());
            assert_eq!(text.matches("routes::route(\"").count(), 1, "{} holds more than one route", file.display());
            components += 1;
        }
        assert_eq!(components, crate::routes::TABLE.len());
    }

    /// A route module never borrows from another: what two routes share
    /// lives in a machinery module, or in their family's `mod.rs`.
    #[test]
    fn no_route_module_imports_another() {
        // (module path, file) of every route module.
        let mut routes = Vec::new();
        for entry in std::fs::read_dir(ops_dir()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                for child in std::fs::read_dir(&path).unwrap() {
                    let child = child.unwrap().path();
                    let stem = child.file_stem().unwrap().to_string_lossy().into_owned();
                    if stem != "mod" {
                        routes.push((format!("{name}::{stem}"), child));
                    }
                }
            } else if !MACHINERY.contains(&name.as_str()) && name != "mod" {
                routes.push((name, path));
            }
        }
        assert!(routes.len() >= 30, "the route modules were not found: {routes:?}");
        let mut offenders = Vec::new();
        for (module, file) in &routes {
            let text = std::fs::read_to_string(file).unwrap();
            let family = module.split_once("::").map(|(f, _)| f);
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for (other, _) in routes.iter().filter(|(o, _)| o != module) {
                    let sibling = other.split_once("::").filter(|(f, _)| Some(*f) == family).map(|(_, s)| s);
                    let hit = code.contains(&format!("ops::{other}::"))
                        || sibling.is_some_and(|s| code.contains(&format!("super::{s}::")) || code.contains(&format!("super::{s};")));
                    if hit {
                        offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                    }
                }
            }
        }
        assert!(offenders.is_empty(), "route modules importing each other:\n{}", offenders.join("\n"));
    }
}
