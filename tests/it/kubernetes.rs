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
use devtool::kube::{
    gateway_name, is_own_key, parse_documents, render_workspace, DIR, GATEWAY_ENV, GATEWAY_HEALTH_PATH, GATEWAY_PORT, HEALTH_PATH,
};
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
    // The committed examples list exactly the variables of each kind, and
    // the gateway's environment of that kind.
    // The SpinApps take neither the shared `data_api_key` nor one per
    // component, but one per SpinApp (its Secret key `data_api_key_<app>`).
    let app_keys: BTreeSet<String> = spin_apps().iter().map(|(_, a)| suffix_of(a)).map(|g| format!("data_api_key_{g}")).collect();
    let of_kind = |secret: bool| -> BTreeSet<String> {
        let vars = manifest
            .variables
            .iter()
            .filter(|(n, d)| d.secret == secret && n.as_str() != "data_api_key" && !is_own_key(n))
            .map(|(n, _)| n.clone());
        let vars = vars.chain(GATEWAY_ENV.iter().filter(|e| e.1 == secret).map(|e| e.0.to_owned()));
        if secret {
            vars.chain(app_keys.iter().cloned()).collect()
        } else {
            vars.collect()
        }
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
            let key = if is_own_key(var_name) { format!("data_api_key_{}", suffix_of(&app)) } else { var_name.to_owned() };
            assert_eq!(r["key"], json!(key), "{file}: {var_name}");
            // Absent optional keys leave spin.toml's default in force; a key
            // one of its components cannot do without must be there.
            let needed = decl.required
                || is_own_key(var_name)
                || app["spec"]["components"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| shared::needs::of(c.as_str().unwrap()).unwrap().required().contains(&var_name));
            assert_eq!(r["optional"], json!(!needed), "{file}: {var_name}");
            assert!(given.insert(var_name.to_owned()), "{file}: {var_name} twice");
        }
        // Spin refuses to start unless every required variable resolves,
        // whatever components the app kept.
        let mut needed = required.clone();
        for c in app["spec"]["components"].as_array().unwrap() {
            needed.extend(used_by(&manifest, c.as_str().unwrap()));
        }
        needed.remove("data_api_key");
        assert_eq!(given, needed, "{name}: variables given vs required + used by its components");
    }
}

/// Least privilege: a SpinApp holds a secret only if one of its components
/// reads it (its row of `shared::needs::TABLE`); the reports, which call
/// only the Data API, hold no Authentik, Stalwart or OCIS token.
#[test]
fn no_spin_app_holds_a_secret_its_components_do_not_read() {
    let manifest = manifest();
    for (file, app) in spin_apps() {
        let components: Vec<&str> = app["spec"]["components"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        // Its components' variables, each one's own Data API key by its name.
        let read: BTreeSet<String> = components
            .iter()
            .flat_map(|c| {
                let own = devtool::keys::variable_of(c);
                shared::needs::of(c).expect("a needs row").variables().into_iter().map(move |v| {
                    if v == shared::config::OWN_KEY {
                        own.clone()
                    } else {
                        v.to_owned()
                    }
                })
            })
            .collect();
        let secrets: Vec<&str> = app["spec"]["variables"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["valueFrom"].get("secretKeyRef").is_some())
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        for secret in &secrets {
            assert!(manifest.variables[*secret].secret, "{file}: {secret}");
            assert!(read.contains(*secret), "{file}: {secret} is given, but none of {components:?} reads it");
        }
        if file.contains("reports") {
            assert!(secrets.iter().all(|s| is_own_key(s)), "{file}: the reports hold only their Data API keys: {secrets:?}");
        }
    }
}

/// A SpinApp's suffix (`reads`): its name after the application's.
fn suffix_of(app: &Value) -> String {
    let name = app["metadata"]["name"].as_str().unwrap();
    name.rsplit('-').next().unwrap().to_owned()
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

/// Every document the kustomization deploys: `(file, document)`.
fn all_documents() -> Vec<(String, Value)> {
    let mut docs = Vec::new();
    for file in kustomization()["resources"].as_array().expect("resources") {
        let file = file.as_str().unwrap();
        docs.extend(documents(file).into_iter().map(|d| (file.to_owned(), d)));
    }
    docs
}

/// A core Kubernetes object read through k8s-openapi's types (v1.33, the
/// oldest it supports) and written back: a misspelt field is dropped and a
/// wrong type fails, so anything but an identical round trip is an error.
fn k8s_errors(doc: &Value) -> Option<String> {
    use k8s_openapi::api::{
        apps::v1::Deployment,
        autoscaling::v2::HorizontalPodAutoscaler,
        core::v1::{Namespace, Service},
    };
    fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) -> Result<Value, String> {
        let typed: T = serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
        serde_json::to_value(typed).map_err(|e| e.to_string())
    }
    let back = match (doc["apiVersion"].as_str(), doc["kind"].as_str()) {
        (Some("apps/v1"), Some("Deployment")) => round_trip::<Deployment>(doc),
        (Some("v1"), Some("Service")) => round_trip::<Service>(doc),
        (Some("v1"), Some("Namespace")) => round_trip::<Namespace>(doc),
        (Some("autoscaling/v2"), Some("HorizontalPodAutoscaler")) => round_trip::<HorizontalPodAutoscaler>(doc),
        (v, k) => Err(format!("{v:?} {k:?} is not a kind this test knows")),
    };
    match back {
        Ok(back) if back == *doc => None,
        Ok(back) => Some(format!("fields Kubernetes does not know, or of another type:\n  ours: {doc}\n  k8s:  {back}")),
        Err(e) => Some(e),
    }
}

#[test]
fn every_core_object_has_kubernetes_field_names_and_types() {
    let mut seen = BTreeSet::new();
    for (file, doc) in all_documents().into_iter().filter(|(_, d)| d["kind"] != "SpinApp") {
        seen.insert(doc["kind"].as_str().unwrap().to_owned());
        if let Some(e) = k8s_errors(&doc) {
            panic!("{file}: {} {}: {e}", doc["kind"], doc["metadata"]["name"]);
        }
    }
    for kind in ["Namespace", "Deployment", "Service", "HorizontalPodAutoscaler"] {
        assert!(seen.contains(kind), "no {kind} deployed: {seen:?}");
    }
}

/// The round trip above can fail: a misspelt field, a quoted port and an
/// unknown kind are each caught.
#[test]
fn the_kubernetes_check_rejects_wrong_names_and_types() {
    let deployment = all_documents().into_iter().map(|(_, d)| d).find(|d| d["kind"] == "Deployment").expect("a Deployment");
    type Spoil = fn(&mut Value);
    let cases: [Spoil; 4] = [
        |d| d["spec"]["template"]["spec"]["containers"][0]["enviroment"] = json!([]),
        |d| d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = json!("8080"),
        |d| d["spec"]["replica"] = json!(2),
        |d| d["kind"] = json!("Deploymnet"),
    ];
    for (i, spoil) in cases.into_iter().enumerate() {
        let mut bad = deployment.clone();
        spoil(&mut bad);
        assert!(k8s_errors(&bad).is_some(), "case {i} not caught: {bad}");
    }
}

/// The gateway: a Deployment the Service selects on its named port, scaled
/// by an HPA, configured like the SpinApps (secrets from the Secret, the rest
/// from the ConfigMap, nothing inline), probed on /healthz for readiness only,
/// and what the SpinApps' `data_api_url` names.
#[test]
fn the_gateway_is_deployed_and_the_spin_apps_reach_it() {
    let manifest = manifest();
    let name = gateway_name(&manifest);
    let docs: Vec<Value> = all_documents().into_iter().map(|(_, d)| d).filter(|d| d["metadata"]["name"] == name).collect();
    let of = |kind: &str| docs.iter().find(|d| d["kind"] == kind).unwrap_or_else(|| panic!("no gateway {kind}")).clone();
    let (deployment, service, hpa) = (of("Deployment"), of("Service"), of("HorizontalPodAutoscaler"));

    let pod = &deployment["spec"]["template"];
    assert_eq!(deployment["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"]);
    assert_eq!(service["spec"]["selector"], pod["metadata"]["labels"], "the Service selects the gateway's pods");
    let containers = pod["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let port = c["ports"].as_array().unwrap().iter().find(|p| p["containerPort"] == json!(GATEWAY_PORT)).expect("the gateway's port");
    let service_port = &service["spec"]["ports"][0];
    assert_eq!(service_port["targetPort"], port["name"], "the Service targets the container's named port");
    assert_eq!(service_port["port"], json!(80));
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], GATEWAY_HEALTH_PATH);
    assert!(c["livenessProbe"]["httpGet"].is_null(), "/healthz pings the database: not a liveness check");
    assert_eq!(hpa["spec"]["scaleTargetRef"], json!({ "apiVersion": "apps/v1", "kind": "Deployment", "name": name }));
    assert!(deployment["spec"]["replicas"].is_null(), "the HPA owns the replica count");

    let (config_map, _) = generator("configMapGenerator");
    let (secret, _) = generator("secretGenerator");
    // Generated first (each SpinApp's key, then GATEWAY_API_KEYS and
    // GATEWAY_KEY_POLICIES: gateway_keys_are_the_spin_apps_with_their_rights),
    // then what an operator fills in.
    let env = c["env"].as_array().unwrap();
    let generated = env.len() - GATEWAY_ENV.len();
    let env = &env[generated..];
    let names: Vec<&str> = env.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, GATEWAY_ENV.iter().map(|e| e.0).collect::<Vec<_>>());
    for (var, (_, is_secret, _)) in env.iter().zip(GATEWAY_ENV) {
        assert!(var.get("value").is_none(), "{var}: inline");
        let (source, object) = if *is_secret { ("secretKeyRef", &secret) } else { ("configMapKeyRef", &config_map) };
        assert_eq!(var["valueFrom"][source]["name"], json!(object), "{var}");
        assert_eq!(var["valueFrom"][source]["key"], var["name"], "{var}");
        assert_eq!(var["valueFrom"][source]["optional"], json!(!is_secret), "{var}");
    }
    assert!(GATEWAY_ENV.iter().any(|e| e.0 == "MONGODB_URI" && e.1), "MONGODB_URI is a secret");

    // The SpinApps' Data API is the gateway's Service, and Spin lets them call it.
    let config = std::fs::read_to_string(dir().join("config.env.example")).unwrap();
    let url = config.lines().find_map(|l| l.strip_prefix("data_api_url=")).expect("data_api_url in config.env.example");
    assert_eq!(url, format!("http://{}", service["metadata"]["name"].as_str().unwrap()));
    use dev_host::allowed_hosts::{AllowedHosts, OutboundUrl};
    let allowed = AllowedHosts::from_literals(&[url]).expect("Spin accepts the gateway's URL as an allowed host");
    let action = OutboundUrl::parse(&format!("{url}/action/findOne"), "http").unwrap();
    assert!(allowed.allows(&action), "{url}");
}

/// The Deployment sets exactly the variables the gateway's `Config` reads
/// (asked through its reader, so a renamed variable fails here), plus
/// `RUST_LOG` for its log filter; `GATEWAY_LISTEN` stays at its default,
/// the container port.
#[test]
fn the_gateway_deployment_sets_what_the_gateway_reads() {
    use std::cell::RefCell;
    let asked = RefCell::new(BTreeSet::new());
    let config = gateway::Config::from_vars(|name| {
        asked.borrow_mut().insert(name.to_owned());
        match name {
            "MONGODB_URI" => Some("mongodb://db:27017".to_owned()),
            "GATEWAY_API_KEYS" => Some("k".to_owned()),
            _ => None,
        }
    })
    .expect("the gateway reads its required variables");
    assert_eq!(config.listen.port(), GATEWAY_PORT, "the container port is the gateway's default");
    let mut asked = asked.into_inner();
    assert!(asked.remove("GATEWAY_LISTEN"));
    asked.insert("RUST_LOG".to_owned());
    let deployed: BTreeSet<String> = gateway_env().into_iter().map(|(name, _)| name).filter(|n| !n.starts_with("DATA_API_KEY_")).collect();
    assert_eq!(deployed, asked);
}

/// The gateway container's environment: `(name, value)`, secrets and
/// config values as `<from:key>`, `$(VAR)` expanded as Kubernetes does.
fn gateway_env() -> Vec<(String, String)> {
    let name = gateway_name(&manifest());
    let deployment = all_documents()
        .into_iter()
        .map(|(_, d)| d)
        .find(|d| d["metadata"]["name"] == name && d["kind"] == "Deployment")
        .expect("the gateway Deployment");
    let mut out: Vec<(String, String)> = vec![];
    for var in deployment["spec"]["template"]["spec"]["containers"][0]["env"].as_array().unwrap() {
        let name = var["name"].as_str().unwrap().to_owned();
        let value = match var["value"].as_str() {
            Some(v) => {
                let mut v = v.to_owned();
                for (earlier, value) in &out {
                    v = v.replace(&format!("$({earlier})"), value);
                }
                v
            }
            None => {
                let from = var["valueFrom"].as_object().unwrap().values().next().unwrap();
                format!("<{}>", from["key"].as_str().unwrap())
            }
        };
        out.push((name, value));
    }
    out
}

/// Each SpinApp's key reaches the gateway (the same Secret key its
/// components' own-key variables take) named for the SpinApp, with exactly
/// its components' rights from `shared::needs::TABLE`; the gateway starts
/// with what is rendered, and the reads key cannot delete.
#[test]
fn gateway_keys_are_the_spin_apps_with_their_rights() {
    let env: std::collections::HashMap<String, String> = gateway_env().into_iter().collect();
    // Generated values as rendered; what an operator fills in, unset.
    let config = gateway::Config::from_vars(|name| match name {
        "MONGODB_URI" => Some("mongodb://db:27017".to_owned()),
        other => env.get(other).filter(|v| !v.starts_with('<') || other.starts_with("DATA_API_KEY_")).cloned(),
    })
    .unwrap_or_else(|e| panic!("the gateway refuses the rendered environment: {e}"));
    let apps = spin_apps();
    assert_eq!(config.policy_keys.len(), apps.len(), "one key per SpinApp: {:?}", config.policy_keys);
    assert!(config.api_keys.is_empty(), "no bare key (every right): {} of them", config.api_keys.len());
    for (file, app) in &apps {
        let suffix = suffix_of(app);
        let key = config.policy_keys.iter().find(|k| k.name == suffix).unwrap_or_else(|| panic!("{file}: no gateway key {suffix}"));
        assert_eq!(key.key, format!("<data_api_key_{suffix}>"), "{file}: the key is the Secret's data_api_key_{suffix}");
        let mut rights = vec![];
        for c in app["spec"]["components"].as_array().unwrap() {
            for (coll, a) in shared::needs::of(c.as_str().unwrap()).unwrap().rights() {
                rights.push((coll.to_owned(), gateway::Action::parse(a).unwrap()));
            }
        }
        assert_eq!(*key.policy, gateway::Policy::from_rights(rights), "{file}: its components' rights");
        if suffix == "reads" || suffix == "reports" {
            for coll in ["users", "tenants", "auditevents"] {
                for action in [gateway::Action::DeleteOne, gateway::Action::DeleteMany, gateway::Action::InsertOne] {
                    assert!(!key.policy.allows(coll, action), "{file}: {} on {coll}", action.name());
                }
            }
        }
    }
}
