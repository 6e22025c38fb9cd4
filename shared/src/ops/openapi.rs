//! Row 32, `GET /openapi.json`: an OpenAPI 3.1 document of every route of
//! docs/api.md, built from one table so the document and the reference
//! cannot drift apart silently (tests/tests/docs.rs compares them).

use serde_json::{json, Map, Value};

use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};

pub const ROUTE: Route = Route::get("/openapi.json");

/// `(component, method, path, who may call, request body schema, success status)`.
pub const ROUTES: &[(&str, &str, &str, &str, Option<&str>, u16)] = &[
    ("me", "GET", "/users/me", "any authenticated caller", None, 200),
    ("users-list", "GET", "/users", "P: all; TA: users of their tenants", None, 200),
    ("users-get", "GET", "/users/{subject}", "P", None, 200),
    ("users-create", "POST", "/users/create", "P", Some("CreateUser"), 201),
    ("users-update", "POST", "/users/{subject}/update", "P", Some("UpdateUser"), 200),
    ("users-deactivate", "POST", "/users/{subject}/deactivate", "P", None, 204),
    ("operators-invite", "POST", "/platform/operators/invite", "P", Some("Invite"), 201),
    ("platform-reports", "GET", "/platform/reports", "P", None, 200),
    ("partner-users-list", "GET", "/partners/{slug}/users", "P", None, 200),
    ("partner-users-invite", "POST", "/partners/{slug}/users/invite", "P or PA of that partner", Some("Invite"), 201),
    ("partner-team", "GET", "/users/me/partner/users", "PS", None, 200),
    ("partner-team-remove", "POST", "/users/me/partner/users/{subject}/remove", "PA", None, 200),
    ("partner-tenants", "GET", "/users/me/partner/tenants", "PS (scoped staff: their tenants)", None, 200),
    ("partner-activity", "GET", "/users/me/partner/activity", "PA or unscoped PS", None, 200),
    ("partner-mrr", "GET", "/users/me/partner/mrr", "PA or unscoped PS", None, 200),
    ("partner-reports", "GET", "/users/me/partner/reports", "PA or unscoped PS", None, 200),
    ("members-list", "GET", "/tenants/{slug}/members", "P, TA, PT", None, 200),
    ("members-create", "POST", "/tenants/{slug}/members/create", "P, TA, PT", Some("CreateMember"), 201),
    ("members-remove", "POST", "/tenants/{slug}/members/{user_id}/remove", "P, TA, PT", None, 204),
    ("members-suspend", "POST", "/tenants/{slug}/members/{user_id}/suspend", "P, TA, PT", None, 204),
    ("members-resume", "POST", "/tenants/{slug}/members/{user_id}/resume", "P, TA, PT", None, 204),
    ("members-logout", "POST", "/tenants/{slug}/members/{user_id}/logout", "P, TA, PT", None, 200),
    ("members-reset-password", "POST", "/tenants/{slug}/members/{user_id}/reset-password", "P, TA, PT", None, 200),
    ("members-update", "POST", "/tenants/{slug}/members/{user_id}/update", "P, TA, PT", Some("UpdateMember"), 200),
    ("members-change-email", "POST", "/tenants/{slug}/members/{user_id}/change-email", "P, TA, PT", Some("ChangeEmail"), 200),
    ("aliases-list", "GET", "/tenants/{slug}/members/{user_id}/aliases", "P, TA, PT", None, 200),
    ("aliases-add", "POST", "/tenants/{slug}/members/{user_id}/aliases/add", "P, TA, PT", Some("AddAlias"), 200),
    ("aliases-remove", "POST", "/tenants/{slug}/members/{user_id}/aliases/remove", "P, TA, PT", Some("RemoveAlias"), 200),
    ("mailbox-create", "POST", "/tenants/{slug}/members/{user_id}/mailbox/create", "P, TA, PT", Some("CreateMailbox"), 201),
    ("ownership-transfer", "POST", "/tenants/{slug}/ownership/transfer", "P, TA, PT", Some("TransferOwnership"), 200),
    ("tenant-admins-invite", "POST", "/tenants/{slug}/admins/invite", "P, PT", Some("Invite"), 201),
    ("openapi", "GET", "/openapi.json", "anyone", None, 200),
];

fn string() -> Value {
    json!({ "type": "string" })
}

fn object(required: &[&str], props: &[(&str, Value)]) -> Value {
    let properties: Map<String, Value> = props.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    json!({ "type": "object", "additionalProperties": false, "required": required, "properties": properties })
}

fn schemas() -> Value {
    let role = json!({ "type": "string", "enum": ["owner", "admin", "member"] });
    let member_role = json!({ "type": "string", "enum": ["admin", "member"] });
    let slugs = json!({ "type": "array", "items": { "type": "string" } });
    let email = json!({ "type": "string", "format": "email" });
    json!({
        "Problem": {
            "type": "object",
            "required": ["type", "title", "status", "detail"],
            "properties": { "type": string(), "title": string(), "status": { "type": "integer" }, "detail": string() }
        },
        "CreateUser": object(&["authentikSubjectId", "email", "name"], &[
            ("authentikSubjectId", string()), ("email", email.clone()), ("name", string()),
            ("role", role.clone()), ("tenantSlugs", slugs.clone())]),
        "UpdateUser": object(&[], &[
            ("email", email.clone()), ("name", string()), ("role", role), ("active", json!({"type": "boolean"})),
            ("platformAdmin", json!({"type": "boolean"})), ("tenantSlugs", slugs)]),
        "Invite": object(&["name", "email"], &[("name", string()), ("email", email.clone())]),
        "CreateMember": object(&["name", "localPart", "role"], &[
            ("name", string()), ("localPart", string()), ("role", member_role.clone()), ("domain", string())]),
        "UpdateMember": object(&[], &[
            ("name", string()), ("firstName", string()), ("lastName", string()), ("phone", string()),
            ("alternativeEmail", email.clone()), ("role", member_role)]),
        "ChangeEmail": object(&["email"], &[("email", email)]),
        "AddAlias": object(&["localPart", "domain"], &[("localPart", string()), ("domain", string())]),
        "RemoveAlias": object(&["address"], &[("address", string())]),
        "CreateMailbox": object(&["localPart"], &[("localPart", string()), ("domain", string())]),
        "TransferOwnership": object(&["userId"], &[("userId", string())]),
    })
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (component, method, path, who, body, status) in ROUTES {
        let mut params: Vec<Value> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": string() }))
            .collect();
        if *component == "partner-activity" {
            params.push(json!({ "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 200, "default": 50 } }));
            params.push(json!({ "name": "before", "in": "query", "schema": { "type": "string", "format": "date-time" } }));
        }
        let problem = json!({ "description": "Problem", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } });
        let mut responses = Map::new();
        let ok = if *status == 204 {
            json!({ "description": "Done" })
        } else {
            json!({ "description": "Success", "content": { "application/json": { "schema": {} } } })
        };
        responses.insert(status.to_string(), ok);
        let errors: &[u16] = if *component == "openapi" { &[] } else { &[400, 401, 403, 404, 405, 409, 413, 502, 503, 504] };
        for code in errors {
            responses.insert(code.to_string(), problem.clone());
        }
        let mut op = json!({
            "operationId": component,
            "summary": format!("{component} ({who})"),
            "parameters": params,
            "responses": responses,
        });
        if *component != "openapi" {
            op["security"] = json!([{ "bearer": [] }]);
        }
        if let Some(schema) = body {
            op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } });
        }
        paths.insert(path.to_string(), json!({ method.to_lowercase(): op }));
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Dezky account provisioning", "version": env!("CARGO_PKG_VERSION") },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } }
        }
    })
}

pub async fn run(req: &ApiRequest) -> Result<ApiResponse, Error> {
    ROUTE.check_method(&req.method)?;
    Ok(ApiResponse::ok(document()))
}
