//! `deploy/kubernetes/`, rendered from `spin.toml` (`cargo run -p devtool
//! --bin kube`): the one OCI artifact deployed as several SpinKube SpinApps,
//! each serving a subset of the components (`spec.components`) and scaled on
//! its own. Every component lands in exactly one SpinApp by rule, so a new
//! component cannot be left out; tests/it/kubernetes.rs checks that the
//! committed files are this module's output.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Context, Result};
use dev_host::manifest::Manifest;
use serde_json::{json, Value};

/// Where the rendered files live, relative to the workspace root.
pub const DIR: &str = "deploy/kubernetes";

/// The image the SpinApps name; kustomization.yaml's `images` entry rewrites
/// it to the registry the artifact was pushed to.
pub const IMAGE: &str = "dezky-provisioning";

/// Spin's HTTP trigger answers this path itself ("OK") for every app,
/// whichever components it kept: the one probe target every SpinApp has.
pub const HEALTH_PATH: &str = "/.well-known/spin/health";

/// The aggregations over whole collections: slow, memory-hungry and rare, so
/// they get their own pods and cannot starve the hot reads.
pub const REPORTS: &[&str] = &["platform-reports", "partner-tenants", "partner-activity", "partner-mrr", "partner-reports"];

/// How a SpinApp's pod count is set.
#[derive(Debug, Clone, Copy)]
pub enum Scale {
    /// A fixed `spec.replicas`.
    Replicas(u32),
    /// `spec.enableAutoscaling` plus a HorizontalPodAutoscaler on CPU.
    Autoscale { min: u32, max: u32, cpu_percent: u32 },
}

/// One SpinApp: which components it serves and how it runs.
#[derive(Debug, Clone, Copy)]
pub struct Group {
    /// Suffix of the SpinApp's name (`<application>-<suffix>`).
    pub suffix: &'static str,
    pub scale: Scale,
    /// `(cpu, memory)` requests and limits.
    pub requests: (&'static str, &'static str),
    pub limits: (&'static str, &'static str),
}

/// GETs other than the reports: most of the traffic, cheap per request.
pub const READS: Group = Group {
    suffix: "reads",
    scale: Scale::Autoscale { min: 2, max: 10, cpu_percent: 60 },
    requests: ("100m", "128Mi"),
    limits: ("500m", "256Mi"),
};
/// Every non-GET: the provisioning sagas and mutations, bound by upstream
/// latency rather than CPU, so scaled on a lower ceiling.
pub const PROVISIONING: Group = Group {
    suffix: "provisioning",
    scale: Scale::Autoscale { min: 2, max: 6, cpu_percent: 70 },
    requests: ("100m", "128Mi"),
    limits: ("500m", "256Mi"),
};
/// [`REPORTS`]: a fixed pair of larger pods.
pub const REPORTS_GROUP: Group =
    Group { suffix: "reports", scale: Scale::Replicas(2), requests: ("250m", "256Mi"), limits: ("1", "512Mi") };
pub const GROUPS: [Group; 3] = [READS, PROVISIONING, REPORTS_GROUP];

/// The Data API gateway (`gateway/`): a plain Deployment + Service + HPA in
/// the same namespace, which the SpinApps reach as `data_api_url`. Its image
/// is built from gateway/Dockerfile; kustomize's `images` rewrites the name.
pub const GATEWAY_IMAGE: &str = "dezky-gateway";
/// The port the gateway listens on (its `GATEWAY_LISTEN` default).
pub const GATEWAY_PORT: u16 = 8080;
/// The gateway's `/healthz` pings the database: a readiness check (a pod
/// whose database is unreachable leaves the Service), never a liveness one
/// (restarting it would not bring the database back).
pub const GATEWAY_HEALTH_PATH: &str = "/healthz";
/// The gateway's environment an operator fills in: `(name, secret, example
/// value)`. Secrets come from the app's Secret, the rest from its ConfigMap,
/// like the SpinApps' variables. Its keys and their policies are not among
/// them: they follow from the SpinApps ([`gateway_key_env`]).
pub const GATEWAY_ENV: &[(&str, bool, &str)] = &[
    ("MONGODB_URI", true, ""),
    ("GATEWAY_MAX_BODY_BYTES", false, "16777216"),
    ("GATEWAY_MONGODB_TIMEOUT_MS", false, "10000"),
    ("RUST_LOG", false, "info"),
];

/// The Secret's key holding a SpinApp's Data API key (`data_api_key_reads`):
/// one key per SpinApp, which every component's own-key variable
/// (`data_api_key_<component>`) in it takes, and which the gateway holds
/// to the union of its components' rights.
pub fn app_key_name(group: Group) -> String {
    format!("data_api_key_{}", group.suffix)
}

/// The gateway's environment variable carrying it (`DATA_API_KEY_READS`).
pub fn app_key_env(group: Group) -> String {
    app_key_name(group).to_uppercase()
}

/// A SpinApp's key's policy: its components' rows of
/// `shared::needs::TABLE`, as `GATEWAY_KEY_POLICIES` spells one.
pub fn app_policy(components: &[&str]) -> Value {
    let mut rights: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for needs in components.iter().filter_map(|c| shared::needs::of(c)) {
        for (collection, action) in needs.rights() {
            rights.entry(collection).or_default().insert(action);
        }
    }
    json!(rights)
}

/// The gateway's keys, generated: each SpinApp's key from the Secret (as
/// `DATA_API_KEY_<APP>`), `GATEWAY_API_KEYS` naming each for its SpinApp
/// (Kubernetes expands `$(VAR)` from the variables before it), and
/// `GATEWAY_KEY_POLICIES` holding each SpinApp's components' rights.
pub fn gateway_key_env(manifest: &Manifest, members: &BTreeMap<&str, Vec<&str>>) -> Vec<Value> {
    let groups: Vec<Group> = GROUPS.into_iter().filter(|g| members.contains_key(g.suffix)).collect();
    let mut env: Vec<Value> = groups
        .iter()
        .map(|g| {
            json!({ "name": app_key_env(*g), "valueFrom": { "secretKeyRef": { "name": secret_name(manifest), "key": app_key_name(*g), "optional": false } } })
        })
        .collect();
    let keys: Vec<String> = groups.iter().map(|g| format!("{}=$({})", g.suffix, app_key_env(*g))).collect();
    env.push(json!({ "name": "GATEWAY_API_KEYS", "value": keys.join(",") }));
    let policies: serde_json::Map<String, Value> = groups.iter().map(|g| (g.suffix.to_owned(), app_policy(&members[g.suffix]))).collect();
    env.push(json!({ "name": "GATEWAY_KEY_POLICIES", "value": Value::Object(policies).to_string() }));
    env
}

pub fn gateway_name(manifest: &Manifest) -> String {
    format!("{}-gateway", manifest.name)
}

/// `data_api_url` for the SpinApps: the gateway's Service, by its short name
/// (same namespace; the Service listens on port 80).
pub fn gateway_url(manifest: &Manifest) -> String {
    format!("http://{}", gateway_name(manifest))
}

/// The group a component belongs to, by its method in the route table
/// (`shared::routes::TABLE`) (a component missing there is an error).
pub fn group_of(component: &str) -> Result<Group> {
    if REPORTS.contains(&component) {
        return Ok(REPORTS_GROUP);
    }
    let Some(operation) = shared::routes::TABLE.iter().find(|o| o.component == component) else {
        bail!("component {component} is not in shared::routes::TABLE: add it there first");
    };
    Ok(if operation.method() == "GET" { READS } else { PROVISIONING })
}

/// The application variables a component reads, and those naming the
/// origins it calls: its row of `shared::needs::TABLE` (tests/it/manifest.rs
/// holds spin.toml to the same rows). Its Data API key is its own
/// (`data_api_key_<component>`), never the shared `data_api_key`.
fn variables_of(component: &str) -> Result<BTreeSet<String>> {
    let Some(needs) = shared::needs::of(component) else {
        bail!("component {component} is not in shared::needs::TABLE: add it there first");
    };
    Ok(needs
        .variables()
        .into_iter()
        .chain(needs.hosts())
        .filter(|v| *v != "data_api_key")
        .map(|v| if v == shared::config::OWN_KEY { crate::keys::variable_of(component) } else { v.to_owned() })
        .collect())
}

/// Whether `variable` is one of the components' own Data API keys.
pub fn is_own_key(variable: &str) -> bool {
    crate::keys::callers().any(|n| crate::keys::variable_of(n.component) == variable)
}

pub fn config_map_name(manifest: &Manifest) -> String {
    format!("{}-config", manifest.name)
}

pub fn secret_name(manifest: &Manifest) -> String {
    format!("{}-secrets", manifest.name)
}

/// The rendered files: `(name inside DIR, contents)`, sorted by name.
pub fn render(manifest: &Manifest) -> Result<BTreeMap<String, String>> {
    let mut members: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for component in manifest.components.keys() {
        members.entry(group_of(component)?.suffix).or_default().push(component);
    }
    let mut files = BTreeMap::new();
    let mut resources = vec!["namespace.yaml".to_owned()];
    for group in GROUPS {
        let Some(components) = members.get(group.suffix) else { continue };
        let file = format!("spinapp-{}.yaml", group.suffix);
        files.insert(file.clone(), yaml(&spin_app_documents(manifest, group, components)?)?);
        resources.push(file);
    }
    files.insert("gateway.yaml".to_owned(), yaml(&gateway_documents(manifest, &members))?);
    resources.push("gateway.yaml".to_owned());
    let header = "# Rendered from spin.toml by `cargo run -p devtool --bin kube`; do not edit.\n";
    for text in files.values_mut() {
        text.insert_str(0, header);
    }

    // The SpinApps take their own Data API keys, not spin.toml's shared
    // `data_api_key` nor one per component: one per SpinApp, below.
    let (secrets, plain): (Vec<_>, Vec<_>) =
        manifest.variables.iter().filter(|(name, _)| name.as_str() != "data_api_key" && !is_own_key(name)).partition(|(_, d)| d.secret);
    let app_keys: Vec<String> = GROUPS.into_iter().filter(|g| members.contains_key(g.suffix)).map(app_key_name).collect();
    let env_file = |vars: &[(&String, &dev_host::manifest::VariableDecl)], secret: bool, what: &str, file: &str| {
        let mut s =
            format!("# {what}: one per spin.toml variable, then the gateway's. Copy to {file} and fill in; required ones are marked.\n");
        if secret {
            s.push_str("# Each SpinApp's Data API key (any long random string): its components' own keys, and the\n");
            s.push_str("# gateway's, which holds it to their rights (GATEWAY_KEY_POLICIES in gateway.yaml).\n");
            for key in &app_keys {
                s.push_str(&format!("# required\n{key}=\n"));
            }
        }
        for (name, decl) in vars {
            if decl.required {
                s.push_str("# required\n");
            }
            if name.as_str() == "oidc_jwks_url" {
                s.push_str("# recommended over oidc_jwks: https://<authentik>/application/o/<app>/jwks/, kept in each pod's\n");
                s.push_str("# `default` key-value store for up to 10 minutes (README, \"The JWKS cache\")\n");
            }
            // A secret's default never goes into a file meant for real values;
            // the Data API is the gateway's Service unless you run your own.
            let value = match name.as_str() {
                _ if decl.secret => String::new(),
                "data_api_url" => gateway_url(manifest),
                _ => decl.default.clone().unwrap_or_default(),
            };
            s.push_str(&format!("{name}={value}\n"));
        }
        for (name, is_secret, example) in GATEWAY_ENV.iter().filter(|e| e.1 == secret) {
            if *is_secret {
                s.push_str("# required (gateway)\n");
            }
            s.push_str(&format!("{name}={example}\n"));
        }
        s
    };
    files.insert("config.env.example".to_owned(), env_file(&plain, false, "Plain values", "config.env"));
    files.insert("secrets.env.example".to_owned(), env_file(&secrets, true, "Secret values", "secrets.env"));
    files.insert(".gitignore".to_owned(), "# The real values: never committed.\nconfig.env\nsecrets.env\n".to_owned());
    files.insert(
        "namespace.yaml".to_owned(),
        format!(
            "{header}{}",
            yaml(&[json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": { "name": manifest.name },
            })])?
        ),
    );
    files.insert(
        "kustomizeconfig.yaml".to_owned(),
        format!(
            "{header}# Lets kustomize's `images` transformer rewrite SpinApp images.\n{}",
            yaml(&[json!({ "images": [{ "path": "spec/image", "kind": "SpinApp" }] })])?
        ),
    );
    let kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": manifest.name,
        "resources": resources,
        "configurations": ["kustomizeconfig.yaml"],
        "images": [
            {
                "name": IMAGE,
                "newName": format!("ghcr.io/dezky/{}", manifest.name),
                "newTag": manifest.version.clone().unwrap_or_else(|| "latest".to_owned()),
            },
            {
                "name": GATEWAY_IMAGE,
                "newName": format!("ghcr.io/dezky/{GATEWAY_IMAGE}"),
                "newTag": manifest.version.clone().unwrap_or_else(|| "latest".to_owned()),
            },
        ],
        // The SpinApps name these exactly: kustomize does not know the
        // SpinApp's secretKeyRef/configMapKeyRef fields, so no hash suffix.
        "generatorOptions": { "disableNameSuffixHash": true },
        "configMapGenerator": [{ "name": config_map_name(manifest), "envs": ["config.env"] }],
        "secretGenerator": [{ "name": secret_name(manifest), "envs": ["secrets.env"] }],
    });
    files.insert("kustomization.yaml".to_owned(), format!("{header}{}", yaml(&[kustomization])?));
    Ok(files)
}

/// The SpinApp (and its HPA) serving `components`.
fn spin_app_documents(manifest: &Manifest, group: Group, components: &[&str]) -> Result<Vec<Value>> {
    let name = format!("{}-{}", manifest.name, group.suffix);
    // Spin refuses to start unless every required application variable
    // resolves, whichever components the app kept (none is a secret); the
    // rest, secrets among them, only where its components read them.
    let mut used: BTreeSet<String> = manifest.variables.iter().filter(|(_, d)| d.required).map(|(n, _)| n.clone()).collect();
    let mut needed = used.clone();
    for component in components {
        used.extend(variables_of(component)?);
        needed.extend(shared::needs::of(component).into_iter().flat_map(|n| n.required()).map(str::to_owned));
        // Its own Data API key, which the SpinApp always gives.
        needed.insert(crate::keys::variable_of(component));
    }
    let variables: Vec<Value> = used
        .iter()
        .map(|var| {
            let decl = &manifest.variables[var];
            let (source, from) =
                if decl.secret { ("secretKeyRef", secret_name(manifest)) } else { ("configMapKeyRef", config_map_name(manifest)) };
            // Every component's own Data API key is the SpinApp's one key.
            let key = if is_own_key(var) { app_key_name(group) } else { var.clone() };
            // A key a component cannot do without is not optional: the pod
            // does not start without it, rather than answer 503.
            json!({ "name": var, "valueFrom": { source: { "name": from, "key": key, "optional": !needed.contains(var) } } })
        })
        .collect();
    let probe = json!({ "httpGet": { "path": HEALTH_PATH }, "initialDelaySeconds": 2, "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 3 });
    let mut spec = json!({
        "image": IMAGE,
        "executor": "containerd-shim-spin",
        "components": components,
    });
    match group.scale {
        Scale::Replicas(n) => spec["replicas"] = json!(n),
        Scale::Autoscale { .. } => spec["enableAutoscaling"] = json!(true),
    }
    spec["resources"] = json!({
        "requests": { "cpu": group.requests.0, "memory": group.requests.1 },
        "limits": { "cpu": group.limits.0, "memory": group.limits.1 },
    });
    spec["checks"] = json!({ "liveness": probe, "readiness": probe });
    spec["variables"] = json!(variables);
    let labels = json!({ "app.kubernetes.io/part-of": manifest.name, "app.kubernetes.io/component": group.suffix });
    let mut docs = vec![json!({
        "apiVersion": "core.spinkube.dev/v1alpha1",
        "kind": "SpinApp",
        "metadata": { "name": name, "labels": labels },
        "spec": spec,
    })];
    if let Scale::Autoscale { min, max, cpu_percent } = group.scale {
        // The operator runs a SpinApp as a Deployment of the same name.
        docs.push(json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": { "name": name, "labels": labels },
            "spec": {
                "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": name },
                "minReplicas": min,
                "maxReplicas": max,
                "metrics": [{ "type": "Resource", "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": cpu_percent } } }],
            },
        }));
    }
    Ok(docs)
}

/// The gateway's Deployment, Service and HPA.
fn gateway_documents(manifest: &Manifest, members: &BTreeMap<&str, Vec<&str>>) -> Vec<Value> {
    let name = gateway_name(manifest);
    let labels = json!({ "app.kubernetes.io/part-of": manifest.name, "app.kubernetes.io/component": "gateway" });
    let mut env: Vec<Value> = gateway_key_env(manifest, members);
    env.extend(GATEWAY_ENV.iter().map(|(var, secret, _)| {
        let (source, from) = if *secret { ("secretKeyRef", secret_name(manifest)) } else { ("configMapKeyRef", config_map_name(manifest)) };
        // Plain ones are optional: absent, the gateway's default holds.
        json!({ "name": var, "valueFrom": { source: { "name": from, "key": var, "optional": !secret } } })
    }));
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "labels": labels },
        "spec": {
            "selector": { "matchLabels": labels },
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    // Graceful shutdown finishes in-flight requests first.
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": { "runAsNonRoot": true, "seccompProfile": { "type": "RuntimeDefault" } },
                    "containers": [{
                        "name": "gateway",
                        "image": GATEWAY_IMAGE,
                        "ports": [{ "name": "http", "containerPort": GATEWAY_PORT, "protocol": "TCP" }],
                        "env": env,
                        "resources": {
                            "requests": { "cpu": "100m", "memory": "64Mi" },
                            "limits": { "cpu": "1", "memory": "256Mi" },
                        },
                        "readinessProbe": {
                            "httpGet": { "path": GATEWAY_HEALTH_PATH, "port": "http" },
                            "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 3,
                        },
                        "livenessProbe": {
                            "tcpSocket": { "port": "http" },
                            "initialDelaySeconds": 5, "periodSeconds": 20, "failureThreshold": 3,
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": { "drop": ["ALL"] },
                        },
                    }],
                },
            },
        },
    });
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": name, "labels": labels },
        "spec": {
            "selector": labels,
            "ports": [{ "name": "http", "port": 80, "targetPort": "http", "protocol": "TCP" }],
        },
    });
    // Stateless: any replica serves any request, so CPU decides the count.
    let hpa = json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": name, "labels": labels },
        "spec": {
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": name },
            "minReplicas": 2,
            "maxReplicas": 6,
            "metrics": [{ "type": "Resource", "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 70 } } }],
        },
    });
    vec![deployment, service, hpa]
}

/// Documents joined with `---`.
fn yaml(docs: &[Value]) -> Result<String> {
    let parts: Result<Vec<String>> = docs.iter().map(|d| serde_yaml_ng::to_string(d).context("rendering YAML")).collect();
    Ok(parts?.join("---\n"))
}

/// Parses a multi-document YAML file (for the tests).
pub fn parse_documents(text: &str) -> Result<Vec<Value>> {
    serde_yaml_ng::Deserializer::from_str(text).map(|doc| <Value as serde::Deserialize>::deserialize(doc).context("parsing YAML")).collect()
}

/// Renders from `<root>/spin.toml`.
pub fn render_workspace(root: &Path) -> Result<BTreeMap<String, String>> {
    render(&Manifest::load(&root.join("spin.toml"))?)
}
