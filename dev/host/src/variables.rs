//! Spin variables: `{{ name }}` templates, application-variable resolution
//! and the host side of `fermyon:spin/variables@2.0.0`.
//!
//! Spin's model, reproduced here:
//! - `[variables]` declares *application* variables; each has a default or
//!   is `required`.
//! - A component sees only its own `[component.<id>.variables]`; each value
//!   is a template (`"{{ data_api_url }}"`, `"Bearer {{ token }}"`, or plain
//!   text) over application variables.
//! - An application variable's value comes from, highest first: the
//!   embedder's override map (tests), `SPIN_VARIABLE_<NAME>` in the
//!   process environment, the `[variables]` default. A required variable
//!   with no value stops the app before it serves.
//!
//! Values are fixed for the life of one `serve` call, so each component's
//! variables are resolved once there rather than on every `get`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use anyhow::{bail, Result};

use crate::manifest::VariableDecl;

pub use crate::bindings::fermyon::spin::variables::add_to_linker;
use crate::bindings::fermyon::spin::variables::{Error as GuestError, Host};

/// Prefix of the environment variables Spin's default provider reads.
pub const ENV_PREFIX: &str = "SPIN_VARIABLE_";

/// A variable name that breaks Spin's naming rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidName(pub String);

impl fmt::Display for InvalidName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid variable name: {}", self.0)
    }
}

impl std::error::Error for InvalidName {}

/// Checks a variable name the way Spin does: lower-case ASCII letters,
/// digits and single underscores, starting with a letter and not ending
/// with an underscore. (These rules keep names mappable to env vars.)
pub fn validate_name(name: &str) -> Result<(), InvalidName> {
    let reason = if name.is_empty() {
        Some("must not be empty".to_string())
    } else if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')) {
        Some(format!("invalid character {c:?}. Variable names may contain only lower-case letters, numbers, and underscores."))
    } else if !name.as_bytes()[0].is_ascii_lowercase() {
        Some("must start with a lowercase ASCII letter".to_string())
    } else if !name.as_bytes()[name.len() - 1].is_ascii_alphanumeric() {
        Some("must end with a lowercase ASCII letter or digit".to_string())
    } else if name.contains("__") {
        Some("must not contain multiple consecutive underscores".to_string())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(InvalidName(format!("{name:?}: {reason}"))),
        None => Ok(()),
    }
}

/// A string with `{{ variable }}` expressions, parsed like Spin's
/// `spin_expressions::Template`: text up to `{{` is literal, the text up to
/// the next `}}` (trimmed) is a variable name, an unmatched `{{` is an
/// error. There is no escape for a literal `{{`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(String),
}

impl Template {
    pub fn parse(text: &str) -> Result<Template> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after_open) = rest.strip_prefix("{{") {
                let Some((expr, after)) = after_open.split_once("}}") else {
                    bail!("invalid template {text:?}: unmatched '{{{{' in template");
                };
                parts.push(Part::Var(expr.trim().to_string()));
                rest = after;
            } else {
                let end = rest.find("{{").unwrap_or(rest.len());
                parts.push(Part::Lit(rest[..end].to_string()));
                rest = &rest[end..];
            }
        }
        Ok(Template { parts })
    }

    /// True when the template has no `{{ }}` expression.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// The variable names the template refers to, in order.
    pub fn variable_names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(name) => Some(name.as_str()),
            Part::Lit(_) => None,
        })
    }

    /// Substitutes every expression using `lookup`; fails on the first name
    /// it cannot resolve.
    pub fn resolve<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> Result<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(lit) => out.push_str(lit),
                Part::Var(name) => match lookup(name) {
                    Some(value) => out.push_str(value),
                    None => bail!("no value for application variable {name:?}"),
                },
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Lit(lit) => f.write_str(lit)?,
                Part::Var(name) => write!(f, "{{{{ {name} }}}}")?,
            }
        }
        Ok(())
    }
}

/// Where application-variable values come from, besides `[variables]`
/// defaults.
pub struct VariableSources<'a> {
    /// Explicit values from the embedding code; they win over everything.
    pub overrides: &'a HashMap<String, String>,
    /// Reads `SPIN_VARIABLE_*` when true (the binary); tests usually keep
    /// the process environment out.
    pub use_process_env: bool,
}

/// Resolves every application variable to a value. Errors name all
/// required variables left without one.
pub fn resolve_app_variables(decls: &BTreeMap<String, VariableDecl>, sources: &VariableSources<'_>) -> Result<HashMap<String, String>> {
    resolve_app_variables_with(decls, sources.overrides, |name| {
        if !sources.use_process_env {
            return Ok(None);
        }
        let key = env_key(name);
        match std::env::var(&key) {
            Ok(v) => Ok(Some(v)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(e) => bail!("failed to resolve env var {key}: {e}"),
        }
    })
}

/// `SPIN_VARIABLE_<NAME>` for a variable name.
pub fn env_key(name: &str) -> String {
    format!("{ENV_PREFIX}{}", name.to_ascii_uppercase())
}

fn resolve_app_variables_with(
    decls: &BTreeMap<String, VariableDecl>,
    overrides: &HashMap<String, String>,
    env: impl Fn(&str) -> Result<Option<String>>,
) -> Result<HashMap<String, String>> {
    let mut values = HashMap::new();
    let mut missing = Vec::new();
    for (name, decl) in decls {
        let value = match overrides.get(name) {
            Some(v) => Some(v.clone()),
            None => match env(name)? {
                Some(v) => Some(v),
                None => decl.default.clone(),
            },
        };
        match value {
            Some(v) => {
                values.insert(name.clone(), v);
            }
            None => missing.push(name.as_str()),
        }
    }
    if !missing.is_empty() {
        let hints: Vec<String> = missing.iter().map(|n| env_key(n)).collect();
        bail!(
            "no value for required application variable(s): {} (set {} or pass them as ServeOptions::variables)",
            missing.join(", "),
            hints.join(", ")
        );
    }
    // Spin's providers ignore values for undeclared names; a typo in a
    // test's override map would otherwise go unnoticed, so say so.
    for name in overrides.keys() {
        if !decls.contains_key(name) {
            eprintln!("dev-host: warning: variable override {name:?} is not declared in [variables]; ignored");
        }
    }
    Ok(values)
}

/// The variables one component may read, already resolved.
#[derive(Debug)]
pub struct ComponentVariables {
    component_id: String,
    values: HashMap<String, String>,
}

impl ComponentVariables {
    /// Resolves a component's `[component.<id>.variables]` templates against
    /// the application variables.
    pub fn resolve(
        component_id: &str,
        templates: &BTreeMap<String, String>,
        app_values: &HashMap<String, String>,
    ) -> Result<ComponentVariables> {
        let mut values = HashMap::new();
        for (name, text) in templates {
            let template = Template::parse(text)?;
            let value = template.resolve(|var| app_values.get(var).map(String::as_str))?;
            values.insert(name.clone(), value);
        }
        Ok(ComponentVariables { component_id: component_id.to_string(), values })
    }

    /// What `fermyon:spin/variables.get` answers, with Spin's error texts.
    fn get(&self, name: &str) -> Result<String, GuestError> {
        validate_name(name).map_err(|e| GuestError::InvalidName(e.0))?;
        self.values.get(name).cloned().ok_or_else(|| GuestError::Undefined(format!("no variable for {:?}.{name:?}", self.component_id)))
    }
}

/// Per-store handle implementing the guest import; cheap to create for
/// every request.
pub struct VariablesView(pub Arc<ComponentVariables>);

impl Host for VariablesView {
    fn get(&mut self, name: String) -> Result<String, GuestError> {
        self.0.get(&name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(default: Option<&str>) -> VariableDecl {
        VariableDecl { default: default.map(str::to_string), required: default.is_none(), secret: false }
    }

    #[test]
    fn template_resolution_table() {
        let vars: HashMap<String, String> = [("data_api_url", "http://127.0.0.1:4010"), ("token", "abc"), ("empty", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = |name: &str| vars.get(name).map(String::as_str);
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("plain text", "plain text"),
            ("{{ data_api_url }}", "http://127.0.0.1:4010"),
            ("{{data_api_url}}", "http://127.0.0.1:4010"),
            ("{{   token\t}}", "abc"),
            ("Bearer {{ token }}", "Bearer abc"),
            ("{{ data_api_url }}/v1?k={{ token }}", "http://127.0.0.1:4010/v1?k=abc"),
            ("{{ token }}{{ token }}", "abcabc"),
            ("a{{ empty }}b", "ab"),
            ("single { brace } stays", "single { brace } stays"),
            ("closing }} alone", "closing }} alone"),
        ];
        for (text, expected) in cases {
            let t = Template::parse(text).unwrap();
            assert_eq!(&t.resolve(lookup).unwrap(), expected, "template {text:?}");
        }
        assert!(Template::parse("{{ token }} {{ unmatched").is_err());
        let t = Template::parse("x{{ nope }}").unwrap();
        assert!(!t.is_literal());
        assert_eq!(t.variable_names().collect::<Vec<_>>(), ["nope"]);
        assert!(t.resolve(lookup).unwrap_err().to_string().contains("\"nope\""));
        assert!(Template::parse("just text").unwrap().is_literal());
        assert_eq!(Template::parse("a{{b}}c").unwrap().to_string(), "a{{ b }}c");
    }

    #[test]
    fn name_rules_match_spin() {
        for ok in ["a", "data_api_url", "x1", "a_b_c", "v2_key"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "A", "Data", "1a", "_a", "a_", "a__b", "a-b", "a.b", "ä"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn app_variable_precedence() {
        let decls: BTreeMap<String, VariableDecl> = [
            ("from_default", decl(Some("d"))),
            ("from_env", decl(Some("d"))),
            ("from_override", decl(Some("d"))),
            ("required_env", decl(None)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let overrides: HashMap<String, String> = [("from_override".to_string(), "o".to_string())].into();
        let env = |name: &str| -> Result<Option<String>> {
            Ok(match name {
                "from_env" | "from_override" | "required_env" => Some(format!("env-{name}")),
                _ => None,
            })
        };
        let values = resolve_app_variables_with(&decls, &overrides, env).unwrap();
        assert_eq!(values["from_default"], "d");
        assert_eq!(values["from_env"], "env-from_env");
        assert_eq!(values["from_override"], "o");
        assert_eq!(values["required_env"], "env-required_env");
    }

    #[test]
    fn missing_required_variables_are_named() {
        let decls: BTreeMap<String, VariableDecl> = [("alpha", decl(None)), ("beta", decl(None)), ("gamma", decl(Some("g")))]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let err = resolve_app_variables_with(&decls, &HashMap::new(), |_| Ok(None)).unwrap_err().to_string();
        assert!(err.contains("alpha, beta"), "{err}");
        assert!(err.contains("SPIN_VARIABLE_ALPHA"), "{err}");
        assert!(!err.contains("gamma"), "{err}");
    }

    #[test]
    fn component_sees_only_its_own_variables() {
        let app: HashMap<String, String> =
            [("data_api_url".to_string(), "http://db".to_string()), ("secret_key".to_string(), "s3cret".to_string())].into();
        let templates: BTreeMap<String, String> =
            [("url".to_string(), "{{ data_api_url }}/v1".to_string()), ("mode".to_string(), "literal".to_string())].into();
        let vars = ComponentVariables::resolve("me", &templates, &app).unwrap();
        assert_eq!(vars.get("url").unwrap(), "http://db/v1");
        assert_eq!(vars.get("mode").unwrap(), "literal");
        // An application variable the component did not map is not visible.
        match vars.get("secret_key") {
            Err(GuestError::Undefined(msg)) => {
                assert_eq!(msg, "no variable for \"me\".\"secret_key\"")
            }
            other => panic!("expected undefined, got {other:?}"),
        }
        match vars.get("Bad-Name") {
            Err(GuestError::InvalidName(msg)) => assert!(msg.starts_with("\"Bad-Name\": ")),
            other => panic!("expected invalid-name, got {other:?}"),
        }
    }
}
