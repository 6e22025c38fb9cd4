//! The typed TypeScript client (clients/typescript): its committed
//! `schema.d.ts` is what `openapi-typescript` makes of the OpenAPI document
//! the routes serve (no drift: `cargo run -p devtool --bin client` rewrites
//! it), and `tsc --noEmit` accepts the client, its types and the typed
//! example that calls routes with their bodies and reads their answers.
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
    type_check(&workspace()).unwrap_or_else(|e| panic!("{e:#}"));
}
