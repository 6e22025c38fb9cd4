//! The part of a Spin manifest (`spin.toml`, `spin_manifest_version = 2`)
//! that the dev host serves: application variables, HTTP triggers and the
//! components they name.
//!
//! Parsing is lenient where Spin's is irrelevant to serving (unknown keys,
//! `[component.<id>.build]`, non-HTTP triggers are ignored) and strict where
//! Spin would refuse to start (variable declarations, variable names,
//! component-variable templates naming undeclared variables,
//! `allowed_outbound_hosts` entries, literal or templated, checked as
//! Spin's loader does (see [`crate::allowed_hosts`]), `key_value_stores`
//! labels that are not kebab-case or snake_case, triggers naming unknown
//! components). Anything the dev host
//! cannot reproduce (remote sources, inline components, static responses)
//! is an error rather than being silently skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::allowed_hosts;
use crate::key_value;
use crate::variables::{validate_name, Template};

/// A loaded, validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Absolute path of the manifest file.
    pub path: PathBuf,
    /// `[application] name`.
    pub name: String,
    /// `[application] version`, if any.
    pub version: Option<String>,
    /// `[variables]`, by name.
    pub variables: BTreeMap<String, VariableDecl>,
    /// `[[trigger.http]]`, in manifest order.
    pub http_triggers: Vec<HttpTrigger>,
    /// `[component.<id>]`, by id.
    pub components: BTreeMap<String, ComponentDecl>,
}

/// One `[variables]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableDecl {
    pub default: Option<String>,
    pub required: bool,
    /// Only affects logging: secret values are never printed.
    pub secret: bool,
}

/// One `[[trigger.http]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTrigger {
    pub route: TriggerRoute,
    pub component: String,
}

/// A trigger's `route`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerRoute {
    /// A routable pattern such as `/users/:subject` or `/static/...`.
    Path(String),
    /// `route = { private = true }`: the component exists but has no route.
    Private,
}

/// One `[component.<id>]` table.
#[derive(Debug, Clone)]
pub struct ComponentDecl {
    /// Absolute path of the component's `.wasm`.
    pub source: PathBuf,
    /// Raw `allowed_outbound_hosts` entries (literal or templated).
    pub allowed_outbound_hosts: Vec<String>,
    /// `[component.<id>.variables]`: name → template over application variables.
    pub variables: BTreeMap<String, String>,
    /// `key_value_stores`: the store labels the component may open (see
    /// [`crate::key_value`]).
    pub key_value_stores: Vec<String>,
}

// ---- raw TOML shapes -------------------------------------------------------

#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: toml::Value,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
struct RawApplication {
    name: String,
    #[serde(default)]
    version: Option<String>,
}

#[derive(Deserialize)]
struct RawVariable {
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    secret: bool,
}

#[derive(Deserialize, Default)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    #[serde(default)]
    route: Option<RawRoute>,
    #[serde(default)]
    component: Option<toml::Value>,
    #[serde(default)]
    static_response: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Path(String),
    Private { private: bool },
}

#[derive(Deserialize)]
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading manifest {}", path.display()))?;
        let path = std::path::absolute(path).with_context(|| format!("resolving manifest path {}", path.display()))?;
        Self::parse(&text, &path).with_context(|| format!("Failed to load Spin app from {:?}", path.display().to_string()))
    }

    /// Parses manifest text; `path` is where it lives (component sources are
    /// relative to its directory).
    pub fn parse(text: &str, path: &Path) -> Result<Manifest> {
        let raw: RawManifest = toml::from_str(text).context("invalid spin.toml")?;
        if raw.spin_manifest_version.as_integer() != Some(2) {
            bail!("spin_manifest_version must be 2 (found {}); the dev host only reads version 2 manifests", raw.spin_manifest_version);
        }
        let dir = path.parent().unwrap_or(Path::new("."));

        let mut variables = BTreeMap::new();
        for (name, raw_var) in raw.variables {
            validate_name(&name).map_err(|e| anyhow::anyhow!("[variables] {e}"))?;
            // Spin's loader: "must be `required` OR have a `default`".
            if raw_var.required == raw_var.default.is_some() {
                bail!("[variables] {name}: must be `required` OR have a `default`");
            }
            variables.insert(name, VariableDecl { default: raw_var.default, required: raw_var.required, secret: raw_var.secret });
        }

        let mut components = BTreeMap::new();
        for (id, raw_component) in raw.component {
            let source = match &raw_component.source {
                toml::Value::String(s) => dir.join(s),
                other => bail!("component {id:?}: source {other} is not a local path; the dev host only loads local .wasm files"),
            };
            for (key, template) in &raw_component.variables {
                validate_name(key).map_err(|e| anyhow::anyhow!("component {id:?} variable {e}"))?;
                let parsed = Template::parse(template).with_context(|| format!("component {id:?} variable {key:?}"))?;
                check_template_vars(&parsed, &variables).with_context(|| format!("component {id:?} variable {key:?}"))?;
            }
            // Spin's loader: literal entries must parse, and templated ones
            // must parse once resolved with the variables' defaults.
            allowed_hosts::validate_entries(&raw_component.allowed_outbound_hosts, &variables)
                .context("`allowed_outbound_hosts` is malformed")
                .with_context(|| format!("Failed to load component `{id}`"))?;
            // Spin's manifest: each label is a kebab-case or snake_case id.
            // (Whether a store has that label is checked when the app is
            // configured: `App::load`, `key_value::check_labels`.)
            for label in &raw_component.key_value_stores {
                key_value::validate_label(label).map_err(|e| anyhow::anyhow!("component {id:?}: key_value_stores: {e}"))?;
            }
            components.insert(
                id,
                ComponentDecl {
                    source,
                    allowed_outbound_hosts: raw_component.allowed_outbound_hosts,
                    variables: raw_component.variables,
                    key_value_stores: raw_component.key_value_stores,
                },
            );
        }

        let mut http_triggers = Vec::new();
        for (index, trigger) in raw.trigger.http.into_iter().enumerate() {
            let what = format!("[[trigger.http]] #{}", index + 1);
            if trigger.static_response.is_some() {
                bail!("{what}: static_response triggers are not supported by the dev host");
            }
            let component = match trigger.component {
                Some(toml::Value::String(id)) => id,
                Some(_) => {
                    bail!("{what}: inline components are not supported; name a [component.<id>]")
                }
                None => bail!("{what}: missing `component`"),
            };
            if !components.contains_key(&component) {
                bail!("{what}: component {component:?} is not defined");
            }
            let route = match trigger.route {
                Some(RawRoute::Path(p)) => TriggerRoute::Path(p),
                Some(RawRoute::Private { private: true }) => TriggerRoute::Private,
                Some(RawRoute::Private { private: false }) => {
                    bail!("{what}: route must be a string pattern or '{{ private = true }}': '{component}' has {{ private = false }}")
                }
                None => bail!("{what}: missing `route`"),
            };
            http_triggers.push(HttpTrigger { route, component });
        }

        Ok(Manifest {
            path: path.to_path_buf(),
            name: raw.application.name,
            version: raw.application.version,
            variables,
            http_triggers,
            components,
        })
    }

    /// Directory holding the manifest.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

/// Spin rejects templates naming variables that `[variables]` does not declare.
fn check_template_vars(template: &Template, variables: &BTreeMap<String, VariableDecl>) -> Result<()> {
    for name in template.variable_names() {
        if !variables.contains_key(name) {
            bail!("template refers to unknown application variable {name:?}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
spin_manifest_version = 2

[application]
name = "accounts"
version = "0.1.0"
unknown_key = "ignored"

[variables]
data_api_url = { default = "http://127.0.0.1:4010" }
data_api_key = { required = true, secret = true }

[[trigger.http]]
route = "/users/me"
component = "me"

[[trigger.http]]
route = { private = true }
component = "hidden"

[component.me]
source = "../target/wasm32-wasip2/release/me.wasm"
allowed_outbound_hosts = ["{{ data_api_url }}", "https://*.example.com"]
key_value_stores = ["default"]
[component.me.variables]
data_api_url = "{{ data_api_url }}"
label = "key={{data_api_key}}!"
[component.me.build]
command = "cargo build --target wasm32-wasip2 --release"

[component.hidden]
source = "hidden.wasm"
"#;

    #[test]
    fn parses_the_parts_the_host_serves() {
        let m = Manifest::parse(MANIFEST, Path::new("/app/spin.toml")).unwrap();
        assert_eq!(m.name, "accounts");
        assert_eq!(m.version.as_deref(), Some("0.1.0"));
        assert_eq!(m.variables.len(), 2);
        assert!(m.variables["data_api_key"].required);
        assert!(m.variables["data_api_key"].secret);
        assert_eq!(
            m.http_triggers,
            vec![
                HttpTrigger { route: TriggerRoute::Path("/users/me".into()), component: "me".into() },
                HttpTrigger { route: TriggerRoute::Private, component: "hidden".into() },
            ]
        );
        let me = &m.components["me"];
        assert_eq!(me.source, Path::new("/app/../target/wasm32-wasip2/release/me.wasm"));
        assert_eq!(me.allowed_outbound_hosts.len(), 2);
        assert_eq!(me.variables["label"], "key={{data_api_key}}!");
        assert_eq!(me.key_value_stores, ["default"]);
        assert!(m.components["hidden"].key_value_stores.is_empty());
    }

    fn parse_err(text: &str) -> String {
        format!("{:#}", Manifest::parse(text, Path::new("/app/spin.toml")).unwrap_err())
    }

    #[test]
    fn rejects_what_spin_rejects() {
        let head = "spin_manifest_version = 2\n[application]\nname = \"a\"\n";
        assert!(parse_err("spin_manifest_version = 1\n[application]\nname = \"a\"\n").contains("must be 2"));
        assert!(parse_err(&format!("{head}[variables]\nx = {{ required = true, default = \"1\" }}\n")).contains("required` OR"));
        assert!(parse_err(&format!("{head}[variables]\nx = {{ secret = true }}\n")).contains("required` OR"));
        assert!(parse_err(&format!("{head}[variables]\nBad = {{ default = \"1\" }}\n")).contains("invalid variable name"));
        assert!(parse_err(&format!("{head}[[trigger.http]]\nroute = \"/\"\ncomponent = \"nope\"\n")).contains("not defined"));
        assert!(parse_err(&format!("{head}[component.c]\nsource = \"c.wasm\"\n[component.c.variables]\nv = \"{{{{ missing }}}}\"\n"))
            .contains("unknown application variable \"missing\""));
        assert!(parse_err(&format!("{head}[component.c]\nsource = \"c.wasm\"\nallowed_outbound_hosts = [\"example.com\"]\n"))
            .contains("does not contain a scheme"));
        assert!(parse_err(&format!("{head}[component.c]\nsource = {{ url = \"https://x/c.wasm\", digest = \"sha256:0\" }}\n"))
            .contains("not a local path"));
        // Labels are checked for spelling here, for a defined store by `App::load`.
        assert!(parse_err(&format!("{head}[component.c]\nsource = \"c.wasm\"\nkey_value_stores = [\"b@dlabel\"]\n"))
            .contains("component \"c\": key_value_stores: expected kebab-case or snake_case"));
        Manifest::parse(
            &format!("{head}[component.c]\nsource = \"c.wasm\"\nkey_value_stores = [\"jwks-cache\"]\n"),
            Path::new("/app/spin.toml"),
        )
        .unwrap();
    }

    #[test]
    fn allowed_hosts_are_checked_at_load_with_spins_error_chain() {
        let head = "spin_manifest_version = 2\n[application]\nname = \"a\"\n";
        let app = |variables: &str, hosts: &str| {
            format!("{head}[variables]\n{variables}\n[component.members-create]\nsource = \"c.wasm\"\nallowed_outbound_hosts = {hosts}\n")
        };
        // The message Spin 4.0.2 printed for this repository's old manifest.
        let err = parse_err(&app("stalwart_url = { default = \"\" }", "[\"{{ stalwart_url }}\"]"));
        assert!(
            err.starts_with(
                "Failed to load component `members-create`: `allowed_outbound_hosts` is malformed: using default variable value(s) with template \"{{ stalwart_url }}\" results in invalid config \"\""
            ),
            "{err}"
        );
        let err =
            parse_err(&app("data_api_url = { default = \"https://data.example.com/app/x/endpoint/data/v1\" }", "[\"{{ data_api_url }}\"]"));
        assert!(err.contains("must not include a path"), "{err}");
        let err = parse_err(&app("", "[\"insecure:allow-all\"]"));
        assert!(err.contains("'insecure:allow-all' is not allowed"), "{err}");
        let err = parse_err(&app("", "[\"http://[::1]\"]"));
        assert!(err.contains("`allowed_outbound_hosts` is malformed"), "{err}");

        // What Spin loads: a required variable (no default to check), a
        // placeholder origin, a variable Spin only resolves per instance.
        for (variables, hosts) in [
            ("url = { required = true }", "[\"{{ url }}\"]"),
            ("url = { default = \"http://stalwart.invalid\" }", "[\"{{ url }}\"]"),
            ("", "[\"{{ undeclared }}\"]"),
            ("host = { default = \"x.example\" }", "[\"https://{{ host }}:8443/\"]"),
        ] {
            Manifest::parse(&app(variables, hosts), Path::new("/app/spin.toml")).unwrap_or_else(|e| panic!("{variables} {hosts}: {e:#}"));
        }
    }

    /// The repository's own manifest passes the checks Spin makes when it
    /// loads an app (the wasm files need not exist for this part).
    #[test]
    fn the_repositorys_spin_toml_passes_spins_load_checks() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spin.toml");
        let manifest = Manifest::load(&path).unwrap_or_else(|e| panic!("{e:#}"));
        assert!(!manifest.components.is_empty());
    }
}
