//! The typed TypeScript client (clients/typescript): its committed
//! `schema.d.ts` is what `openapi-typescript` makes of the OpenAPI document
//! the routes serve (no drift: `cargo run -p devtool --bin client` rewrites
//! it), and `tsc --noEmit` accepts the client, its types and the typed
//! example that calls routes with their bodies and reads their answers, and
//! the demo page.
//! The package's locked dependencies are installed first if they are not.

use devtool::client::{generate, package, type_check, SCHEMA};
use e2e::workspace;

#[test]
fn the_committed_types_are_a_fresh_generation() {
    let root = workspace();
    let fresh = root.join("target").join(format!("schema-{}.d.ts", std::process::id()));
    generate(&root, &fresh).unwrap_or_else(|e| panic!("{e:#}"));
    let generated = std::fs::read_to_string(&fresh).unwrap();
    let _ = std::fs::remove_file(&fresh);
    let committed = std::fs::read_to_string(package(&root).join(SCHEMA)).unwrap();
    assert!(
        generated == committed,
        "clients/typescript/{SCHEMA} is not the generation of /openapi.json: run `cargo run -p devtool --bin client` and commit it"
    );
}

#[test]
fn the_client_and_its_typed_example_compile() {
    let root = workspace();
    type_check(&root, &package(&root)).unwrap_or_else(|e| panic!("{e:#}"));
}

/// The demo page (web/) uses the client's types too: a list answer is
/// `User[]`, a create answer `MemberCreated`.
#[test]
fn the_demo_page_compiles_against_the_client() {
    let root = workspace();
    type_check(&root, &root.join("web")).unwrap_or_else(|e| panic!("{e:#}"));
}
