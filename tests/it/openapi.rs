//! `GET /openapi.json`: a valid OpenAPI 3.1 document (checked by
//! openapi-spec-validator-rs, the meta-schema and the validator's semantic
//! rules), describing every route of `spin.toml` with its method, path
//! parameters, request body, success status and problem responses; and each
//! component accepts exactly the method the document gives it, so the table
//! the document is built from (`shared::routes::TABLE`) cannot drift
//! from the `ROUTE` each component checks. tests/it/docs.rs holds the same
//! document to docs/api.md.

use std::collections::BTreeSet;

use dev_host::manifest::{Manifest, TriggerRoute};
use e2e::*;
use openapi_spec_validator_rs::{validate, ErrorMode, Options, Outcome, SpecVersion};
use serde_json::{json, Value};
use shared::ops::openapi::document;
use shared::routes::TABLE;

fn manifest() -> Manifest {
    Manifest::load(&workspace().join("spin.toml")).expect("spin.toml parses")
}

/// `(component, route)` of every routed trigger of spin.toml.
fn spin_routes() -> Vec<(String, String)> {
    manifest()
        .http_triggers
        .into_iter()
        .filter_map(|t| match t.route {
            TriggerRoute::Path(p) => Some((t.component, p)),
            TriggerRoute::Private => None,
        })
        .collect()
}

/// `/users/:subject` → `/users/{subject}`.
fn openapi_path(route: &str) -> String {
    route.split('/').map(|s| s.strip_prefix(':').map_or(s.to_owned(), |n| format!("{{{n}}}"))).collect::<Vec<_>>().join("/")
}

fn errors(doc: &Value) -> Vec<String> {
    let options = Options { version: Some(SpecVersion::V3_1), errors: ErrorMode::All, ..Options::default() };
    match validate(doc, &options) {
        Outcome::Valid => vec![],
        Outcome::Invalid(errors) => errors.iter().map(|e| e.to_string()).collect(),
        Outcome::Error(e) => vec![e],
    }
}

#[tokio::test]
async fn the_served_document_is_valid_openapi_3_1() {
    let env = Env::start().await;
    let r = env.call("GET", "/openapi.json", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let doc = r.json();
    assert_eq!(doc, document(), "the component serves shared::ops::openapi::document()");
    let found = errors(&doc);
    assert!(found.is_empty(), "/openapi.json is not valid OpenAPI 3.1:\n{}", found.join("\n\n"));
}

/// The validator is live: a path parameter the operation does not declare,
/// a dangling `$ref` and a response without a description are each refused.
#[test]
fn the_validator_refuses_broken_documents() {
    type Spoil = fn(&mut Value);
    let spoils: [(&str, Spoil); 3] = [
        ("'subject' for 'get' operation in '/users/{subject}' was not resolved", |d| {
            d["paths"]["/users/{subject}"]["get"]["parameters"] = json!([])
        }),
        ("'description' is a required property", |d| {
            d["paths"]["/users/me"]["get"]["responses"]["200"].as_object_mut().unwrap().remove("description");
        }),
        ("'pathz' was unexpected", |d| d["pathz"] = json!({})),
    ];
    for (what, spoil) in spoils {
        let mut doc = document();
        spoil(&mut doc);
        let found = errors(&doc);
        assert!(found.iter().any(|e| e.contains(what)), "expected \"{what}\", got {found:?}");
    }
}

#[test]
fn every_spin_toml_route_is_described_with_parameters_bodies_statuses_and_problems() {
    let doc = document();
    let routes = spin_routes();
    let table: BTreeSet<(String, String)> = TABLE.iter().map(|o| (o.component.to_owned(), o.route.pattern.to_owned())).collect();
    let spin: BTreeSet<(String, String)> = routes.iter().cloned().collect();
    assert_eq!(table, spin, "shared::routes::TABLE vs spin.toml (component, route)");
    assert_eq!(doc["paths"].as_object().unwrap().len(), routes.len(), "one path per route");
    let schemas = &doc["components"]["schemas"];
    for (component, route) in &routes {
        let path = openapi_path(route);
        let item = doc["paths"][&path].as_object().unwrap_or_else(|| panic!("{path} is not in /openapi.json"));
        assert_eq!(item.len(), 1, "{path}: one method per route");
        let (method, op) = item.iter().next().unwrap();
        assert_eq!(op["operationId"], json!(component), "{path}");
        // Path parameters: exactly the `:name` segments, required strings.
        let declared: BTreeSet<String> = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "path")
            .inspect(|p| assert!(p["required"] == true && p["schema"]["type"] == "string", "{path}: {p}"))
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        let segments: BTreeSet<String> = route.split('/').filter_map(|s| s.strip_prefix(':')).map(str::to_owned).collect();
        assert_eq!(declared, segments, "{path}: path parameters");
        // Bodies: only on POSTs, and always a schema the document defines.
        if let Some(body) = op.get("requestBody") {
            assert_eq!(method, "post", "{path}: a body on a {method}");
            let r = body["content"]["application/json"]["schema"]["$ref"].as_str().unwrap();
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(schemas[name]["type"] == "object", "{path}: {r} is not defined");
        }
        let responses = op["responses"].as_object().unwrap();
        let success: Vec<&String> = responses.keys().filter(|s| s.starts_with('2')).collect();
        assert_eq!(success.len(), 1, "{path}: one success status");
        if component == "openapi" {
            continue;
        }
        // Every authenticated route can answer these as problem documents.
        for status in ["400", "401", "403", "404", "405", "502", "503", "504"] {
            assert_eq!(
                responses.get(status).map(|r| &r["content"]["application/problem+json"]["schema"]["$ref"]),
                Some(&json!("#/components/schemas/Problem")),
                "{path}: no {status} problem response"
            );
        }
        assert_eq!(op["security"], json!([{ "bearer": [] }]), "{path}");
    }
}

/// Each component refuses every method but the one the route table gives
/// it, with `405` and that method in `Allow`.
#[tokio::test]
async fn each_component_allows_exactly_its_documented_method() {
    let env = Env::start().await;
    for o in TABLE {
        let (component, method) = (o.component, &o.method());
        let concrete = o.route.pattern.split('/').map(|s| if s.starts_with(':') { "x" } else { s }).collect::<Vec<_>>().join("/");
        for other in ["GET", "POST", "PUT", "DELETE"].into_iter().filter(|m| m != method) {
            let r = env.call(other, &concrete, None, None).await;
            assert_eq!(r.status, 405, "{component}: {other} {concrete}: {}", r.text);
            assert_eq!(r.header("allow"), Some(*method), "{component}: {other} {concrete}");
        }
        let r = env.call(method, &concrete, None, if *method == "POST" { Some("{}") } else { None }).await;
        assert_ne!(r.status, 405, "{component}: {method} {concrete} is refused: {}", r.text);
    }
}

/// Each row of the route table is a component in `functions/` (and each
/// component a row) whose package and crate docs start with its method and
/// route.
#[test]
fn every_table_row_is_a_component_in_functions() {
    let root = workspace().join("functions");
    let dirs: BTreeSet<String> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let rows: BTreeSet<String> = TABLE.iter().map(|o| o.component.to_owned()).collect();
    assert_eq!(dirs, rows, "functions/ vs shared::routes::TABLE");
    for o in TABLE {
        let head = format!("{} {} — ", o.method(), o.route.pattern);
        let cargo = std::fs::read_to_string(root.join(o.component).join("Cargo.toml")).unwrap();
        assert!(cargo.contains(&format!("description = \"{head}")), "functions/{}/Cargo.toml: description starts `{head}`", o.component);
        let lib = std::fs::read_to_string(root.join(o.component).join("src/lib.rs")).unwrap();
        assert!(lib.starts_with(&format!("//! {head}")), "functions/{}/src/lib.rs starts `//! {head}`", o.component);
    }
}

/// The answers `/openapi.json` gives a fixed shape (`ops::answers`) are
/// what the routes really send: one real answer of each such route,
/// validated against the schema the served document publishes for it.
#[tokio::test]
async fn each_fixed_shape_answer_matches_its_published_schema() {
    let env = Env::start().await;
    let doc = env.call("GET", "/openapi.json", None, None).await.json();
    let member = ACME_MEMBER.id;
    let calls: Vec<(&str, Resp)> = vec![
        (
            "members-create",
            env.post("/tenants/acme/members/create", &ACME_OWNER, json!({"name": "Val Id", "localPart": "val", "role": "member"})).await,
        ),
        ("members-reset-password", env.post(&format!("/tenants/acme/members/{member}/reset-password"), &ACME_OWNER, json!({})).await),
        ("members-logout", env.post(&format!("/tenants/acme/members/{member}/logout"), &ACME_OWNER, json!({})).await),
        ("aliases-list", env.call("GET", &format!("/tenants/acme/members/{member}/aliases"), Some(&env.token(&ACME_OWNER)), None).await),
        (
            "aliases-add",
            env.post(
                &format!("/tenants/acme/members/{member}/aliases/add"),
                &ACME_OWNER,
                json!({"localPart": "val.alias", "domain": "acme.test"}),
            )
            .await,
        ),
        (
            "operators-invite",
            env.post("/platform/operators/invite", &OPERATOR, json!({"name": "New Op", "email": "new.op@dezky.test"})).await,
        ),
        (
            "tenant-admins-invite",
            env.post("/tenants/acme/admins/invite", &OPERATOR, json!({"name": "Mia", "email": ACME_MEMBER.email})).await,
        ),
        (
            "partner-team-remove",
            env.post(&format!("/users/me/partner/users/{}/remove", NORTHWIND_STAFF.sub), &NORTHWIND_OWNER, json!({})).await,
        ),
        (
            "mailbox-create",
            env.post(
                &format!("/tenants/acme/members/{}/mailbox/create", ACME_INACTIVE_ADMIN.id),
                &ACME_OWNER,
                json!({"localPart": "ivan.box"}),
            )
            .await,
        ),
    ];
    let operator = env.token(&OPERATOR);
    let owner = env.token(&ACME_OWNER);
    let documents: Vec<(&str, Resp)> = vec![
        ("me", env.call("GET", "/users/me", Some(&owner), None).await),
        ("users-list", env.call("GET", "/users", Some(&operator), None).await),
        ("users-get", env.call("GET", &format!("/users/{}", ACME_MEMBER.sub), Some(&operator), None).await),
        (
            "users-create",
            env.post(
                "/users/create",
                &OPERATOR,
                json!({"authentikSubjectId": "sub-schema", "email": "schema@dezky.test", "name": "Sche Ma"}),
            )
            .await,
        ),
        ("users-update", env.post(&format!("/users/{}/update", ACME_MEMBER.sub), &OPERATOR, json!({"name": "Mia Schema"})).await),
        ("partner-users-list", env.call("GET", "/partners/northwind/users", Some(&operator), None).await),
        ("members-list", env.call("GET", "/tenants/acme/members", Some(&owner), None).await),
        ("ownership-transfer", env.post("/tenants/acme/ownership/transfer", &ACME_OWNER, json!({"userId": ACME_ADMIN.id})).await),
    ];
    let mut checked = BTreeSet::new();
    for (component, r) in calls.into_iter().chain(documents) {
        let op = TABLE.iter().find(|o| o.component == component).unwrap();
        assert_eq!(r.status, op.status, "{component}: {}", r.text);
        let name = op.answer.unwrap_or_else(|| panic!("{component} publishes no answer schema"));
        // The schema as published, its references resolved in the document.
        let schema = json!({ "$ref": format!("#/components/schemas/{name}"), "components": doc["components"] });
        let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{name}: {e}"));
        let body = r.json();
        let errors: Vec<String> = validator.iter_errors(&body).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{component}'s answer does not match {name}:\n{}\n{body}", errors.join("\n"));
        checked.insert(name);
    }
    let published: BTreeSet<&str> = TABLE.iter().filter_map(|o| o.answer).collect();
    let unchecked: Vec<_> = published.difference(&checked).collect();
    assert!(unchecked.is_empty(), "answer schemas no real answer was checked against: {unchecked:?}");
}
