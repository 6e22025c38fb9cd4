//! Every built component imports only what the world in `wit/` allows:
//! decoded with wasmparser, compared with the world resolved by wit-parser.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use wasmparser::{Parser, Payload};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `ns:pkg/iface@version` of every interface the world imports.
fn world_imports() -> BTreeSet<String> {
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve.push_dir(workspace().join("wit")).expect("wit/ parses");
    let world = resolve.select_world(&[pkg], Some("function")).expect("world `function`");
    resolve.worlds[world]
        .imports
        .keys()
        .filter_map(|k| match k {
            wit_parser::WorldKey::Interface(id) => resolve.id_of(*id),
            wit_parser::WorldKey::Name(_) => None,
        })
        .collect()
}

/// The instance names a component imports.
fn component_imports(wasm: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    // Only the outermost component's imports reach the host; nested
    // components and modules are satisfied inside it.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.expect("the component decodes") {
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    out.push(import.expect("import decodes").name.0.to_owned());
                }
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    out
}

/// `wasi:http/types@0.2.12` is satisfied by a world importing
/// `wasi:http/types@0.2.6`: same interface on the same semver line (for
/// 0.x, the same minor). Hosts resolve WASI 0.2 imports by that line
/// (wasmtime's linker does), and the toolchain links the newest 0.2 patch
/// it knows; the functions a component calls all exist since 0.2.0.
fn allowed(import: &str, world: &BTreeSet<String>) -> bool {
    if world.contains(import) {
        return true;
    }
    let Some((name, version)) = import.split_once('@') else { return false };
    world.iter().any(|w| match w.split_once('@') {
        Some((wname, wversion)) => wname == name && same_line_not_older(version, wversion),
        None => false,
    })
}

fn same_line_not_older(have: &str, world: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64, u64)> {
        let mut it = v.split(['.', '-']).map(|p| p.parse::<u64>());
        Some((it.next()?.ok()?, it.next()?.ok()?, it.next()?.ok()?))
    };
    match (parse(have), parse(world)) {
        (Some((a, b, _)), Some((x, y, _))) => a == x && (a > 0 || b == y),
        _ => false,
    }
}

#[test]
fn every_component_imports_only_the_world() {
    let world = world_imports();
    assert!(world.contains("fermyon:spin/variables@2.0.0"), "{world:?}");
    let dir = workspace().join("target/wasm32-wasip2/release");
    let mut checked = 0;
    for entry in std::fs::read_dir(workspace().join("functions")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().replace('-', "_");
        let path = dir.join(format!("{name}.wasm"));
        let wasm = std::fs::read(&path).unwrap_or_else(|_| panic!("{} is not built: run `make build`", path.display()));
        let imports = component_imports(&wasm);
        assert!(!imports.is_empty(), "{name}: no imports decoded (not a component?)");
        let stray: Vec<&String> = imports.iter().filter(|i| !allowed(i, &world)).collect();
        assert!(stray.is_empty(), "{name} imports outside wit/: {stray:?}");
        // A component that verifies tokens keeps the JWKS in Spin's store.
        // (Every component links the store's client, as `shared::spin::serve`
        // hands it to each operation; one whose spin.toml lists no store is
        // refused at `open`, and never opens it.)
        let verifies_tokens =
            shared::needs::TABLE.iter().any(|n| n.component.replace('-', "_") == name && n.parts.contains(&shared::config::Part::Oidc));
        if verifies_tokens {
            assert!(imports.iter().any(|i| i.starts_with("fermyon:spin/key-value@2.0.0")), "{name} has no key-value store: {imports:?}");
        }
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} components checked");
}

#[test]
fn the_check_rejects_what_the_world_lacks() {
    let world = world_imports();
    assert!(allowed("wasi:http/types@0.2.0", &world));
    assert!(!allowed("wasi:sockets/tcp@0.2.6", &world), "sockets are not in the world");
    assert!(!allowed("wasi:keyvalue/store@0.2.0-draft2", &world));
    assert!(allowed("fermyon:spin/key-value@2.0.0", &world), "the JWKS cache's store");
    assert!(!allowed("spin:key-value/key-value@3.0.0", &world), "WASIp3's key-value: Spin 4 only");
    assert!(!allowed("fermyon:spin/sqlite@2.0.0", &world));
    assert!(!allowed("wasi:http/types@0.3.0", &world));
    assert!(allowed("wasi:http/types@0.2.12", &world));
    assert!(!allowed("wasi:http/nope@0.2.6", &world));
}
