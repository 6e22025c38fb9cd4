//! The HTTP face of the Data API emulator: routes, headers, errors.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bson::Bson;

use super::actions::Action;
use super::{ejson, ApiError, DataApi};

/// The emulator's routes: `POST /action/<action>` and
/// `POST /app/<app-id>/endpoint/data/<v1|beta>/action/<action>`.
/// Not wrapped by [`crate::faults::Controls`]; see [`DataApi::router`].
pub fn router(api: DataApi) -> Router {
    Router::new()
        .route("/action/{action}", post(handle))
        .route("/app/{app}/endpoint/data/{version}/action/{action}", post(handle))
        .fallback(|| async { ApiError::not_found("no such endpoint").into_response() })
        .with_state(api)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.envelope()).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

/// Authentication: `api-key` or `apiKey`. The emulator
/// knows no users, so bearer tokens, e-mail/password and JWT credentials are
/// unknown sessions.
fn authenticate(api: &DataApi, headers: &HeaderMap) -> Result<(), ApiError> {
    if header_str(headers, "authorization").is_some() {
        return Err(ApiError::invalid_session());
    }
    // Header names are case-insensitive: `apiKey` arrives as `apikey`.
    if let Some(key) = header_str(headers, "api-key").or_else(|| header_str(headers, "apikey")) {
        return if key == api.api_key() { Ok(()) } else { Err(ApiError::invalid_session()) };
    }
    let email = header_str(headers, "email").is_some();
    let password = header_str(headers, "password").is_some();
    if email != password {
        return Err(ApiError::bad_request(
            "MissingParameter",
            "must specify some form of authentication (either email+password, api-key, or jwt) in the request header or body",
        ));
    }
    if email || header_str(headers, "jwttokenstring").is_some() {
        return Err(ApiError::invalid_session());
    }
    Err(ApiError::bad_request("InvalidParameter", "no authentication methods were specified"))
}

fn media_type(v: &str) -> String {
    v.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

async fn handle(
    State(api): State<DataApi>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match respond(&api, &params, &headers, &body) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn respond(
    api: &DataApi,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    if params.get("version").is_some_and(|v| v != "v1" && v != "beta") {
        return Err(ApiError::not_found("no such endpoint"));
    }
    let name = params.get("action").map(String::as_str).unwrap_or("");
    let action = Action::parse(name).ok_or_else(|| ApiError::not_found(format!("no such action '{name}'")))?;
    authenticate(api, headers)?;
    match header_str(headers, "content-type").map(media_type).as_deref() {
        Some("application/json") | Some("application/ejson") => {}
        Some(other) => {
            return Err(ApiError::bad_request(
                "InvalidParameter",
                format!("unsupported Content-Type '{other}': use application/json or application/ejson"),
            ))
        }
        None => {
            return Err(ApiError::bad_request(
                "InvalidParameter",
                "missing Content-Type header: use application/json or application/ejson",
            ))
        }
    }
    let ejson_out = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| media_type(v) == "application/ejson");

    // Key order survives into the engine, as MongoDB reads it (a sort's
    // keys apply first to last): serde_json's `preserve_order` (set in this
    // crate's Cargo.toml) keeps the text's order, and a bson `Document` is
    // ordered too.
    let json: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("InvalidParameter", format!("failed to parse request body as JSON: {e}")))?;
    if !json.is_object() {
        return Err(ApiError::bad_request("InvalidParameter", "the request body must be a JSON object"));
    }
    let doc = ejson::decode_document(json).map_err(|e| ApiError::bad_request("InvalidParameter", e))?;
    let result = api.execute(action, &doc)?;
    let value = if ejson_out { ejson::to_canonical(&Bson::Document(result)) } else { ejson::to_json_mode(&Bson::Document(result)) };
    let content_type = if ejson_out { "application/ejson" } else { "application/json" };
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        serde_json::to_vec(&value).unwrap_or_default(),
    )
        .into_response())
}
