//! Writes clients/typescript/src/schema.d.ts from the OpenAPI document the
//! routes serve (see devtool::client). Run it after changing a route, a
//! body or an answer; tests/it/typescript.rs fails until it is committed.

use devtool::client::{generate, package, SCHEMA};
use devtool::workspace;

fn main() -> anyhow::Result<()> {
    let root = workspace();
    let out = package(&root).join(SCHEMA);
    generate(&root, &out)?;
    println!("wrote {}", out.display());
    Ok(())
}
