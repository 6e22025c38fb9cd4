//! deploy/kubernetes/ (SpinKube): the committed files are what
//! `cargo run -p devtool --bin kube` renders from spin.toml; every component
//! is served by exactly one SpinApp; every variable comes from the ConfigMap
//! or, when `secret = true`, from the Secret, never inline; and every SpinApp
//! field has the name and type the SpinApp CRD's openAPIV3Schema gives it
//! (tests/fixtures/spinkube/spinapp-spec-schema.json, extracted from the CRD).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use dev_host::manifest::Manifest;
use dev_host::variables::Template;
use devtool::kube::{parse_documents, render_workspace, DIR, HEALTH_PATH};
use e2e::workspace;
use serde_json::{json, Value};

fn dir() -> PathBuf {
    workspace().join(DIR)
}

fn manifest() -> Manifest {
    Manifest::load(&workspace().join("spin.toml")).expect("spin.toml parses")
}

/// Every YAML document of `file` in deploy/kubernetes/.
fn documents(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    parse_documents(&text).unwrap_or_else(|e| panic!("{file}: {e:#}"))
}

fn kustomization() -> Value {
    documents("kustomization.yaml").remove(0)
}

/// `(file, document)` for every SpinApp the kustomization deploys.
fn spin_apps() -> Vec<(String, Value)> {
    let mut apps = Vec::new();
    for file in kustomization()["resources"].as_array().expect("resources") {
        let file = file.as_str().unwrap();
        for doc in documents(file) {
            if doc["kind"] == "SpinApp" {
                apps.push((file.to_owned(), doc));
            }
        }
    }
    assert!(apps.len() >= 2, "selective deployment means several SpinApps: {apps:?}");
    apps
}

#[test]
fn the_committed_files_are_the_generators_output() {
    let rendered = render_workspace(&workspace()).expect("renders");
    // config.env and secrets.env hold an operator's real values (gitignored).
    let local = ["config.env", "secrets.env"];
    let committed: BTreeSet<String> = std::fs::read_dir(dir())
        .expect("deploy/kubernetes exists")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| !local.contains(&name.as_str()))
        .collect();
    let expected: BTreeSet<String> = rendered.keys().cloned().collect();
    assert_eq!(committed, expected, "run `cargo run -p devtool --bin kube`");
    for (name, text) in &rendered {
        let on_disk = std::fs::read_to_string(dir().join(name)).unwrap();
        assert!(on_disk == *text, "{DIR}/{name} is stale: run `cargo run -p devtool --bin kube`");
    }
    let ignored = std::fs::read_to_string(dir().join(".gitignore")).unwrap();
    for file in local {
        assert!(ignored.lines().any(|l| l == file), "{file} must never be committed");
    }
}

#[test]
fn every_component_is_in_exactly_one_spin_app() {
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for (_, app) in spin_apps() {
        let name = app["metadata"]["name"].as_str().unwrap().to_owned();
        for c in app["spec"]["components"].as_array().expect("spec.components (selective deployment)") {
            let c = c.as_str().unwrap().to_owned();
            if let Some(first) = owner.insert(c.clone(), name.clone()) {
                panic!("component {c} is in both {first} and {name}");
            }
        }
    }
    let components: BTreeSet<String> = manifest().components.into_keys().collect();
    assert_eq!(owner.into_keys().collect::<BTreeSet<_>>(), components, "SpinApps vs spin.toml components");
}

/// The application variables `component` reads (its variables and
/// allowed_outbound_hosts templates).
fn used_by(manifest: &Manifest, component: &str) -> BTreeSet<String> {
    let decl = &manifest.components[component];
    decl.variables
        .values()
        .chain(&decl.allowed_outbound_hosts)
        .flat_map(|t| Template::parse(t).unwrap().variable_names().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

/// `name=value` keys of an env file.
fn env_keys(file: &str) -> BTreeSet<String> {
    std::fs::read_to_string(dir().join(file))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split_once('=').expect("name=value").0.to_owned())
        .collect()
}

/// The name of the generator (`configMapGenerator` / `secretGenerator`)
/// and the env file it reads.
fn generator(kind: &str) -> (String, String) {
    let k = kustomization();
    let gens = k[kind].as_array().unwrap_or_else(|| panic!("kustomization has no {kind}"));
    assert_eq!(gens.len(), 1, "{kind}");
    let envs = gens[0]["envs"].as_array().unwrap();
    assert_eq!(envs.len(), 1);
    assert_eq!(k["generatorOptions"]["disableNameSuffixHash"], true, "the SpinApps name the generated objects exactly");
    (gens[0]["name"].as_str().unwrap().to_owned(), envs[0].as_str().unwrap().to_owned())
}

#[test]
fn plain_variables_come_from_the_config_map_and_secrets_from_the_secret() {
    let manifest = manifest();
    let (config_map, config_file) = generator("configMapGenerator");
    let (secret, secret_file) = generator("secretGenerator");
    // The committed examples list exactly the variables of each kind.
    let of_kind = |secret: bool| -> BTreeSet<String> {
        manifest.variables.iter().filter(|(_, d)| d.secret == secret).map(|(n, _)| n.clone()).collect()
    };
    assert_eq!(env_keys(&format!("{config_file}.example")), of_kind(false));
    assert_eq!(env_keys(&format!("{secret_file}.example")), of_kind(true));
    let secret_example = std::fs::read_to_string(dir().join(format!("{secret_file}.example"))).unwrap();
    assert!(secret_example.lines().filter(|l| !l.starts_with('#')).all(|l| l.ends_with('=')), "no secret value is committed");

    let required: BTreeSet<String> = manifest.variables.iter().filter(|(_, d)| d.required).map(|(n, _)| n.clone()).collect();
    for (file, app) in spin_apps() {
        let name = &app["metadata"]["name"];
        let mut given = BTreeSet::new();
        for var in app["spec"]["variables"].as_array().expect("spec.variables") {
            let var_name = var["name"].as_str().unwrap();
            let decl = manifest.variables.get(var_name).unwrap_or_else(|| panic!("{file}: {var_name} is not a spin.toml variable"));
            assert!(var.get("value").is_none(), "{file}: {var_name} is inline");
            let from = var["valueFrom"].as_object().unwrap_or_else(|| panic!("{file}: {var_name} has no valueFrom"));
            assert_eq!(from.len(), 1, "{file}: {var_name}");
            let (source, object) = if decl.secret { ("secretKeyRef", &secret) } else { ("configMapKeyRef", &config_map) };
            let r = from.get(source).unwrap_or_else(|| panic!("{file}: {var_name} must come from a {source}: {var}"));
            assert_eq!(r["name"], json!(object), "{file}: {var_name}");
            assert_eq!(r["key"], json!(var_name), "{file}: {var_name}");
            // Absent optional keys leave spin.toml's default in force.
            assert_eq!(r["optional"], json!(!decl.required), "{file}: {var_name}");
            assert!(given.insert(var_name.to_owned()), "{file}: {var_name} twice");
        }
        // Spin refuses to start unless every required variable resolves,
        // whatever components the app kept.
        let mut needed = required.clone();
        for c in app["spec"]["components"].as_array().unwrap() {
            needed.extend(used_by(&manifest, c.as_str().unwrap()));
        }
        assert_eq!(given, needed, "{name}: variables given vs required + used by its components");
    }
}

/// Checks `value` against the CRD schema subset `schema`, collecting
/// `path: problem` lines (unknown fields, wrong types, missing required ones).
fn check(value: &Value, schema: &Value, path: &str, errors: &mut Vec<String>) {
    if let Some(options) = schema["anyOf"].as_array() {
        let fits = options.iter().any(|o| {
            let mut e = Vec::new();
            check(value, o, path, &mut e);
            e.is_empty()
        });
        if !fits {
            errors.push(format!("{path}: {value} fits none of {options:?}"));
        }
        if schema["x-kubernetes-int-or-string"] == true && !is_quantity(value) {
            errors.push(format!("{path}: {value} is not a Kubernetes quantity"));
        }
        return;
    }
    match schema["type"].as_str() {
        Some("object") => {
            let Some(map) = value.as_object() else { return errors.push(format!("{path}: {value} is not an object")) };
            for key in schema["required"].as_array().into_iter().flatten() {
                if !map.contains_key(key.as_str().unwrap()) {
                    errors.push(format!("{path}: missing required {key}"));
                }
            }
            for (k, v) in map {
                let sub = format!("{path}.{k}");
                match (schema["properties"].get(k), schema.get("additionalProperties")) {
                    (Some(s), _) | (None, Some(s)) => check(v, s, &sub, errors),
                    (None, None) => errors.push(format!("{sub}: no such field in the CRD")),
                }
            }
        }
        Some("array") => match value.as_array() {
            Some(items) => items.iter().enumerate().for_each(|(i, v)| check(v, &schema["items"], &format!("{path}[{i}]"), errors)),
            None => errors.push(format!("{path}: {value} is not an array")),
        },
        Some("string") if !value.is_string() => errors.push(format!("{path}: {value} is not a string")),
        Some("boolean") if !value.is_boolean() => errors.push(format!("{path}: {value} is not a boolean")),
        Some("integer") => {
            let fits = match (value.as_i64(), schema["format"].as_str()) {
                (Some(n), Some("int32")) => i32::try_from(n).is_ok(),
                (Some(_), _) => true,
                (None, _) => false,
            };
            if !fits {
                errors.push(format!("{path}: {value} is not an integer of format {}", schema["format"]));
            }
        }
        Some("string" | "boolean") => {}
        other => errors.push(format!("{path}: schema type {other:?} not handled by this check")),
    }
}

/// The CRD's quantity pattern for what we write: an integer or a decimal
/// number with an optional binary or decimal SI suffix.
fn is_quantity(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_i64(),
        Value::String(s) => {
            let number = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E"]
                .iter()
                .find_map(|suffix| s.strip_suffix(suffix))
                .unwrap_or(s);
            !number.is_empty() && number.parse::<f64>().is_ok() && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        }
        _ => false,
    }
}

fn crd() -> Value {
    let text = std::fs::read_to_string(workspace().join("tests/fixtures/spinkube/spinapp-spec-schema.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn crd_errors(app: &Value) -> Vec<String> {
    let crd = crd();
    let mut errors = Vec::new();
    let api_version = format!("{}/{}", crd["group"].as_str().unwrap(), crd["version"].as_str().unwrap());
    if app["apiVersion"] != json!(api_version) {
        errors.push(format!("apiVersion {} is not {api_version}", app["apiVersion"]));
    }
    check(&app["spec"], &crd["spec"], "spec", &mut errors);
    errors
}

#[test]
fn every_spin_app_field_has_the_crd_name_and_type() {
    for (file, app) in spin_apps() {
        let errors = crd_errors(&app);
        assert!(errors.is_empty(), "{file}:\n{}", errors.join("\n"));
    }
}

/// The check above can fail: a misspelt field, a quoted integer, an inline
/// object where the CRD has a string, and a bad quantity are each caught.
#[test]
fn the_crd_check_rejects_wrong_names_and_types() {
    let (_, good) = spin_apps().remove(0);
    type Spoil = fn(&mut Value);
    let cases: [(&str, Spoil); 6] = [
        ("spec.replica", |a| a["spec"]["replica"] = json!(2)),
        ("spec.replicas", |a| a["spec"]["replicas"] = json!("2")),
        ("spec.replicas", |a| a["spec"]["replicas"] = json!(1u64 << 40)),
        ("spec.enableAutoscaling", |a| a["spec"]["enableAutoscaling"] = json!("true")),
        ("spec.resources.limits.memory", |a| a["spec"]["resources"]["limits"]["memory"] = json!("lots")),
        ("spec.variables[0].valueFrom.secretRef", |a| a["spec"]["variables"][0]["valueFrom"] = json!({ "secretRef": { "name": "x" } })),
    ];
    for (path, spoil) in cases {
        let mut bad = good.clone();
        spoil(&mut bad);
        let errors = crd_errors(&bad);
        assert!(errors.iter().any(|e| e.starts_with(path)), "{path} not caught: {errors:?}");
    }
    let mut no_image = good.clone();
    no_image["spec"].as_object_mut().unwrap().remove("image");
    assert!(crd_errors(&no_image).iter().any(|e| e.contains("missing required \"image\"")));
}

#[test]
fn each_spin_app_scales_on_its_own_with_resources_and_probes() {
    for (file, app) in spin_apps() {
        let name = app["metadata"]["name"].as_str().unwrap();
        let spec = &app["spec"];
        let hpas: Vec<Value> = documents(&file)
            .into_iter()
            .filter(|d| d["kind"] == "HorizontalPodAutoscaler" && d["spec"]["scaleTargetRef"]["name"] == name)
            .collect();
        match (spec.get("replicas"), spec["enableAutoscaling"] == true) {
            (Some(_), false) => assert!(hpas.is_empty(), "{name}: fixed replicas and an HPA"),
            (None, true) => {
                assert_eq!(hpas.len(), 1, "{name}: enableAutoscaling needs one HPA");
                let hpa = &hpas[0]["spec"];
                // The operator runs each SpinApp as a Deployment of its name.
                assert_eq!(hpa["scaleTargetRef"], json!({ "apiVersion": "apps/v1", "kind": "Deployment", "name": name }));
                assert!(hpa["minReplicas"].as_u64().unwrap() <= hpa["maxReplicas"].as_u64().unwrap(), "{name}");
            }
            _ => panic!("{name}: exactly one of replicas / enableAutoscaling"),
        }
        for side in ["requests", "limits"] {
            for what in ["cpu", "memory"] {
                assert!(spec["resources"][side][what].is_string(), "{name}: resources.{side}.{what}");
            }
        }
        for probe in ["liveness", "readiness"] {
            assert_eq!(spec["checks"][probe]["httpGet"]["path"], HEALTH_PATH, "{name}: {probe}");
        }
    }
}
