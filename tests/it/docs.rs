//! The repository's own reference stays true: `docs/api.md` against
//! `spin.toml` (routes, components, variables) and against the served
//! `GET /openapi.json`; and the documents link only to files inside the
//! repository, so a clone of it alone can be read and built.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dev_host::manifest::{Manifest, TriggerRoute};
use e2e::*;

fn read(rel: &str) -> String {
    std::fs::read_to_string(workspace().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn manifest() -> Manifest {
    Manifest::load(&workspace().join("spin.toml")).expect("spin.toml parses")
}

/// The rows of the first Markdown table whose header starts with `header`
/// (cells trimmed; an escaped `\|` stays inside its cell).
fn table(md: &str, header: &[&str]) -> Vec<Vec<String>> {
    let cells = |line: &str| -> Vec<String> {
        let line = line.trim().trim_start_matches('|').trim_end_matches('|');
        line.replace("\\|", "\u{0}").split('|').map(|c| c.trim().replace('\u{0}', "|")).collect()
    };
    let mut lines = md.lines().skip_while(|l| {
        !(l.trim_start().starts_with('|') && cells(l).starts_with(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>()))
    });
    assert!(lines.next().is_some(), "no table with header {header:?}");
    lines
        .skip(1) // the |---| line
        .take_while(|l| l.trim_start().starts_with('|'))
        .map(cells)
        .collect()
}

/// One row of the route table of docs/api.md.
#[derive(Debug)]
struct Row {
    n: u32,
    component: String,
    method: String,
    path: String,
    success: String,
    served: bool,
}

fn documented_routes() -> Vec<Row> {
    let rows: Vec<Row> = table(&read("docs/api.md"), &["#", "component", "route", "who", "success", "state"])
        .into_iter()
        .map(|c| {
            let (method, path) = c[2].split_once(' ').unwrap_or_else(|| panic!("route `{}` is `METHOD /path`", c[2]));
            let served = match c[5].as_str() {
                "served" => true,
                "planned" => false,
                other => panic!("row {}: state is `served` or `planned`, not `{other}`", c[0]),
            };
            Row {
                n: c[0].parse().expect("row number"),
                component: c[1].clone(),
                method: method.into(),
                path: path.into(),
                success: c[4].clone(),
                served,
            }
        })
        .collect();
    let numbers: Vec<u32> = rows.iter().map(|r| r.n).collect();
    assert_eq!(numbers, (1..=rows.len() as u32).collect::<Vec<_>>(), "rows are numbered 1, 2, … in order");
    assert_eq!(rows.iter().map(|r| &r.component).collect::<BTreeSet<_>>().len(), rows.len(), "one row per component");
    assert_eq!(rows.iter().map(|r| &r.path).collect::<BTreeSet<_>>().len(), rows.len(), "Spin routes by path: no path twice");
    rows
}

/// `/users/:subject` → `/users/{subject}`.
fn openapi_path(spin_path: &str) -> String {
    spin_path
        .split('/')
        .map(|s| s.strip_prefix(':').map(|p| format!("{{{p}}}")).unwrap_or_else(|| s.to_owned()))
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn the_route_table_matches_spin_toml() {
    let rows = documented_routes();
    let m = manifest();
    let served: BTreeMap<String, String> = m
        .http_triggers
        .iter()
        .map(|t| match &t.route {
            TriggerRoute::Path(p) => (p.clone(), t.component.clone()),
            TriggerRoute::Private => panic!("component {} has no route; document it", t.component),
        })
        .collect();
    for (path, component) in &served {
        let row = rows.iter().find(|r| &r.path == path).unwrap_or_else(|| panic!("{path} (spin.toml) is not in docs/api.md"));
        assert_eq!(&row.component, component, "row {}: spin.toml routes {path} to `{component}`", row.n);
        assert!(row.served, "row {} ({component}) is in spin.toml but marked planned", row.n);
    }
    for row in rows.iter().filter(|r| r.served) {
        assert!(
            served.contains_key(&row.path),
            "row {} ({}) is marked served but spin.toml has no route {}",
            row.n,
            row.component,
            row.path
        );
        assert!(m.components.contains_key(&row.component), "row {}: no [component.{}]", row.n, row.component);
    }
    // Every route of the contract is a row, numbered 1 to 32, so a table that
    // only mirrored spin.toml (and dropped unserved rows) would fail here.
    assert_eq!(
        rows.iter().map(|r| r.n).collect::<Vec<_>>(),
        (1..=32).collect::<Vec<_>>(),
        "the table lists the contract's 32 routes in order"
    );
}

/// docs/api.md's route table is `shared::routes::TABLE`, row for row:
/// component, method, route, callers and success status.
#[test]
fn the_route_table_is_shared_routes_table() {
    let full = table(&read("docs/api.md"), &["#", "component", "route", "who", "success", "state"]);
    let documented: Vec<(String, String, String, String)> =
        full.iter().map(|c| (c[1].clone(), c[2].clone(), c[3].clone(), c[4].clone())).collect();
    let table: Vec<(String, String, String, String)> = shared::routes::TABLE
        .iter()
        .map(|o| (o.component.to_owned(), format!("{} {}", o.method(), o.route.pattern), o.callers.to_owned(), o.status.to_string()))
        .collect();
    assert_eq!(documented, table, "docs/api.md vs shared::routes::TABLE");
}

/// The README's route table is the short form of docs/api.md's: the same
/// rows, routes, components and callers, so it cannot drift from spin.toml
/// (which the table above is held to).
#[test]
fn the_readme_route_table_is_the_documented_one() {
    let readme = table(&read("README.md"), &["#", "route", "component", "who"]);
    let documented = documented_routes();
    assert_eq!(readme.len(), documented.len(), "README lists {} routes, docs/api.md {}", readme.len(), documented.len());
    let full = table(&read("docs/api.md"), &["#", "component", "route", "who", "success", "state"]);
    for ((short, row), cells) in readme.iter().zip(&documented).zip(&full) {
        let route = format!("`{} {}`", row.method, row.path);
        assert_eq!(
            (short[0].as_str(), short[1].as_str(), short[2].as_str(), short[3].as_str()),
            (row.n.to_string().as_str(), route.as_str(), row.component.as_str(), cells[3].as_str()),
            "README row {}",
            short[0]
        );
    }
}

/// The name a variable is documented under: the components' own Data API
/// keys (`data_api_key_me`, …) share one row, `data_api_key_<component>`.
fn documented_name(name: &str) -> &str {
    let own = devtool::keys::callers().any(|n| devtool::keys::variable_of(n.component) == name);
    if own {
        OWN_KEYS
    } else {
        name
    }
}

const OWN_KEYS: &str = "data_api_key_<component>";

#[test]
fn every_variable_is_documented_with_its_declaration() {
    let m = manifest();
    let rows = table(&read("docs/api.md"), &["variable", "required", "secret", "default"]);
    let documented: BTreeMap<&str, &Vec<String>> = rows.iter().map(|r| (r[0].as_str(), r)).collect();
    assert_eq!(documented.len(), rows.len(), "a variable is documented twice");
    let yes_no = |v: bool| if v { "yes" } else { "no" };
    for (name, decl) in &m.variables {
        let row = documented
            .get(documented_name(name))
            .unwrap_or_else(|| panic!("`{name}` of spin.toml is not in docs/api.md's configuration table"));
        assert_eq!(row[1], yes_no(decl.required), "{name}: required");
        assert_eq!(row[2], yes_no(decl.secret), "{name}: secret");
        let default = match decl.default.as_deref() {
            None => "—".to_owned(),
            Some("") => "empty".to_owned(),
            Some(v) => format!("`{v}`"),
        };
        assert_eq!(row[3], default, "{name}: default");
    }
    for name in documented.keys() {
        assert!(
            m.variables.keys().any(|v| documented_name(v) == *name),
            "docs/api.md documents `{name}`, which spin.toml does not declare"
        );
    }
}

/// The README's least-privilege table shows each SpinApp's key's rights as
/// the generator renders them for the gateway (`shared::needs::TABLE`).
#[test]
fn the_readme_least_privilege_table_is_the_rendered_policies() {
    let rows = table(&read("README.md"), &["SpinApp", "secrets it holds", "its key's Data API rights"]);
    let files = devtool::kube::render_workspace(&workspace()).unwrap();
    let mut apps = vec![];
    for (_, text) in files.iter().filter(|(name, _)| name.starts_with("spinapp-")) {
        for doc in devtool::kube::parse_documents(text).unwrap() {
            if doc["kind"] == "SpinApp" {
                let suffix = doc["metadata"]["name"].as_str().unwrap().rsplit('-').next().unwrap().to_owned();
                let components: Vec<String> =
                    doc["spec"]["components"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
                apps.push((suffix, components));
            }
        }
    }
    assert_eq!(rows.len(), apps.len(), "one README row per SpinApp");
    for (suffix, components) in apps {
        let row = rows.iter().find(|r| r[0] == format!("`-{suffix}`")).unwrap_or_else(|| panic!("README has no row for -{suffix}"));
        let refs: Vec<&str> = components.iter().map(String::as_str).collect();
        let policy = devtool::kube::app_policy(&refs);
        let expected: Vec<String> = policy
            .as_object()
            .unwrap()
            .iter()
            .map(|(coll, actions)| {
                let a: Vec<&str> = actions.as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
                format!("`{coll}`: {}", a.join(", "))
            })
            .collect();
        assert_eq!(row[2], expected.join("; "), "README's rights of -{suffix}");
    }
}

#[test]
fn the_readme_configuration_names_every_variable() {
    let readme = read("README.md");
    let section = readme.split("## Configuration").nth(1).expect("README has a Configuration section");
    let section = section.split("\n## ").next().unwrap();
    for name in manifest().variables.keys() {
        let name = documented_name(name);
        assert!(
            section.contains(&format!("`{name}`")) || section.contains(&format!("| {name} ")),
            "README's configuration does not mention `{name}`"
        );
    }
}

#[tokio::test]
async fn openapi_describes_exactly_the_documented_routes() {
    let env = Env::start().await;
    let r = env.call("GET", "/openapi.json", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let rows = documented_routes();
    for row in &rows {
        let op = &doc["paths"][openapi_path(&row.path)][row.method.to_lowercase()];
        assert!(op.is_object(), "row {}: {} {} is not in /openapi.json", row.n, row.method, row.path);
        assert_eq!(op["operationId"], row.component.as_str(), "row {}", row.n);
        assert!(op["responses"][&row.success].is_object(), "row {}: /openapi.json has no {} response", row.n, row.success);
        let methods: Vec<&String> = doc["paths"][openapi_path(&row.path)].as_object().unwrap().keys().collect();
        assert_eq!(methods, [&row.method.to_lowercase()], "row {}: one method per path", row.n);
    }
    let served: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let documented: BTreeSet<String> = rows.iter().map(|r| openapi_path(&r.path)).collect();
    assert_eq!(served, documented, "/openapi.json and docs/api.md list different paths");
}

/// Every Markdown document a reader of the repository is pointed at.
fn documents() -> Vec<PathBuf> {
    let root = workspace();
    let mut docs = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/") {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "md") {
            docs.push(p);
        }
    }
    docs
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces to `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(md: &str) -> BTreeSet<String> {
    md.lines().filter(|l| l.starts_with('#')).map(|l| anchor(l.trim_start_matches('#'))).collect()
}

/// The targets of `[text](target)` links.
fn links(md: &str) -> Vec<String> {
    md.match_indices("](").filter_map(|(i, _)| md[i + 2..].split_once(')').map(|(t, _)| t.to_owned())).collect()
}

/// The folder beside a clone that CI has and a clone alone does not, spelt
/// in halves so that this file, which checks for it, does not name it.
const BESIDE: &str = concat!("..", "/shared");

#[test]
fn documents_link_only_to_files_inside_the_repository() {
    let root = workspace().canonicalize().unwrap();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        let name = doc.strip_prefix(&root).unwrap_or(&doc).display().to_string();
        assert!(!text.contains(BESIDE), "{name} points at {BESIDE}, which a clone of this repository does not have");
        for target in links(&text) {
            if target.starts_with("http://") || target.starts_with("https://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, frag) = target.split_once('#').unwrap_or((&target, ""));
            let file_path = if file.is_empty() { doc.clone() } else { doc.parent().unwrap().join(file) };
            let resolved = file_path.canonicalize().unwrap_or_else(|_| panic!("{name} links to {target}, which does not exist"));
            assert!(resolved.starts_with(&root), "{name} links to {target}, outside the repository");
            if !frag.is_empty() && resolved.extension().is_some_and(|e| e == "md") {
                let headings = anchors(&std::fs::read_to_string(&resolved).unwrap());
                assert!(headings.contains(frag), "{name} links to {target}, but there is no such heading");
            }
        }
    }
}

/// Text files of the repository (sources, manifests, scripts, documents),
/// build output and local data left out.
fn repository_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | ".git" | ".dev-data" | ".spin") {
                repository_files(&path, out);
            }
        } else if name == "Makefile" || name == "run" || [".rs", ".toml", ".md", ".sh", ".wit"].iter().any(|e| name.ends_with(e)) {
            out.push(path);
        }
    }
}

/// Whether `line` of `file` names something outside the repository. The
/// one exception: the CI script may probe for a Spin CLI beside the
/// repository, and goes on without it.
fn points_outside(file: &str, line: &str) -> bool {
    let probe = file == ".ci/run" && line.contains("/tools/spin");
    // The outside contract is `API.md`; this repository's is `docs/api.md`.
    let outside = [BESIDE, "contracts/", "API.md"];
    !probe && outside.iter().any(|n| line.contains(n))
}

#[test]
fn nothing_refers_to_files_outside_the_repository() {
    assert!(points_outside("shared/src/x.rs", "//! (API.md row 3)"));
    assert!(points_outside("Makefile", &format!("include {BESIDE}/rules.mk")));
    assert!(points_outside("Makefile", &format!("# SPIN_BIN (.ci/run sets it when {BESIDE}/tools/spin is there)")));
    assert!(!points_outside(".ci/run", &format!("launcher={BESIDE}/tools/spin/spin")));
    assert!(!points_outside("shared/src/x.rs", "//! (docs/api.md row 3)"));

    let root = workspace();
    let mut files = Vec::new();
    repository_files(&root, &mut files);
    assert!(files.len() > 50, "the walk found the repository ({} files)", files.len());
    let mut offenders = Vec::new();
    for path in files {
        let rel = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
        if rel == "tests/it/docs.rs" {
            continue; // names the patterns it looks for
        }
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        for (i, line) in text.lines().enumerate() {
            if points_outside(&rel, line) {
                offenders.push(format!("{rel}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "references to files outside the repository:\n{}", offenders.join("\n"));
}

#[test]
fn the_link_checker_sees_links_and_anchors() {
    // Guards the checker above against passing because it finds nothing.
    assert_eq!(links("see [a](docs/api.md#errors) and [b](https://x.test)."), ["docs/api.md#errors", "https://x.test"]);
    assert!(anchors("# HTTP API reference\n## Failure semantics\n### Outbound hosts\n").contains("failure-semantics"));
    assert_eq!(anchor(" What the served routes do"), "what-the-served-routes-do");
    let readme = read("README.md");
    assert!(links(&readme).iter().any(|l| l.starts_with("docs/")), "the README points readers at docs/");
    assert!(Path::new(&workspace().join("docs/api.md")).exists());
}
