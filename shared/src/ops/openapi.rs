//! Row 32, `GET /openapi.json`: an OpenAPI 3.1 document of every route,
//! built from the route table ([`crate::routes::TABLE`]), which
//! tests/it/docs.rs holds equal to docs/api.md and `spin.toml`.

use serde_json::{json, Map, Value};

use crate::ctx::Ctx;
use crate::ports::Http;
use crate::problem::Error;
use crate::request::{ApiRequest, ApiResponse, Route};
use crate::routes::{self, Operation};

use super::answers;
use super::prologue::prologue;

pub const ROUTE: Route = routes::route("openapi");

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
    let mut all = json!({
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
    });
    // Stored documents as the routes answer them: the fields docs/api.md
    // names, typed, and any other field the document holds (open objects).
    let id = json!({ "type": "string", "pattern": "^[0-9a-f]{24}$" });
    let date = json!({ "type": "string", "format": "date-time" });
    let ids = json!({ "type": "array", "items": id.clone() });
    let provisioned = json!({ "type": "string", "enum": ["ok", "skipped", "error"] });
    all["User"] = json!({
        "type": "object",
        "required": ["_id", "authentikSubjectId"],
        "additionalProperties": true,
        "properties": {
            "_id": id.clone(), "authentikSubjectId": string(), "email": string(), "name": string(),
            "role": string(), "tenantIds": ids.clone(), "tenantRoles": { "type": "object", "additionalProperties": string() },
            "platformAdmin": { "type": "boolean" }, "active": { "type": "boolean" },
            "partnerId": id.clone(), "partnerTenantAccess": ids,
            "authentikUserPk": { "type": "integer" }, "mailboxAddress": string(), "stalwartAccountId": string(), "ocisUserId": string(),
            "provisioning": { "type": "object", "additionalProperties": true, "properties": {
                "authentik": provisioned.clone(), "stalwart": provisioned.clone(), "ocis": provisioned,
                "stalwartError": string(), "ocisNote": string() } },
            "partner": { "type": "object", "additionalProperties": true, "properties": {
                "_id": id.clone(), "slug": string(), "name": string(), "status": string() } },
            "createdAt": date.clone(), "updatedAt": date.clone(), "lastLoginAt": date,
        }
    });
    all["Users"] = json!({ "type": "array", "items": { "$ref": "#/components/schemas/User" } });
    all["OwnershipTransferred"] = object(
        &["newOwner", "previousOwners"],
        &[
            ("newOwner", json!({ "$ref": "#/components/schemas/User" })),
            ("previousOwners", json!({ "$ref": "#/components/schemas/Users" })),
        ],
    );
    // The answers', derived from the types the routes answer with.
    for (name, schema) in answers::schemas() {
        all[name.as_str()] = schema;
    }
    all
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for operation in routes::TABLE {
        let Operation { component, callers: who, body, status, answer, .. } = operation;
        let path = operation.openapi_path();
        let mut params: Vec<Value> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": string() }))
            .collect();
        if *component == "partner-activity" {
            params.push(
                json!({ "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 200, "default": 50 } }),
            );
            params.push(json!({ "name": "before", "in": "query", "schema": { "type": "string", "format": "date-time" } }));
        }
        let problem_ref = json!({ "$ref": "#/components/schemas/Problem" });
        let problem = json!({ "description": "Problem", "content": { "application/problem+json": { "schema": problem_ref } } });
        let mut responses = Map::new();
        let ok = match (status, answer) {
            (204, _) => json!({ "description": "Done" }),
            (_, Some(schema)) => {
                let schema_ref = json!({ "$ref": format!("#/components/schemas/{schema}") });
                json!({ "description": "Success", "content": { "application/json": { "schema": schema_ref } } })
            }
            _ => json!({ "description": "Success", "content": { "application/json": { "schema": {} } } }),
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
            let schema_ref = json!({ "$ref": format!("#/components/schemas/{schema}") });
            op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": schema_ref } } });
        }
        paths.insert(path, json!({ operation.method().to_lowercase(): op }));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Dezky account provisioning",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Browsers on other origins: every route answers a CORS preflight (OPTIONS with Origin and \
                Access-Control-Request-Method) before any other check, and grants the origins the cors_allowed_origins \
                variable lists (exact scheme://host[:port], comma-separated, or *; empty turns CORS off) its method, with \
                Authorization and Content-Type headers; every other answer to an allowed origin carries \
                Access-Control-Allow-Origin and Vary: Origin. Tokens go in Authorization, never in cookies."
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } }
        }
    })
}

/// Public: no token; the method and, as everywhere, no body.
pub async fn run<H: Http>(ctx: &Ctx<H>, req: &ApiRequest) -> Result<ApiResponse, Error> {
    prologue(ctx, req, &ROUTE).public()?;
    Ok(ApiResponse::ok(document()))
}
