//! The HTTP face every backend shares: the Data API v1 routes, API keys,
//! Content-Type / Accept, Extended JSON in and out, the body limit, the
//! error envelope, `/healthz` and one log line per request.
//!
//! Check order: unknown endpoint or action (404) → credentials (400/401) →
//! Content-Type (400) → body size (413) → body (400, stages no key may use
//! included) → the key's rights (403, [`crate::Policy::check`]) → the
//! backend. A request without a valid key is answered before its body is
//! read, and one its key has no right to after it is parsed: neither reaches
//! the backend.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bson::{Bson, Document};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::request::{Action, ActionRequest};
use crate::{ejson, ApiError, ApiKeys, Policy};

/// Default and largest accepted request body: MongoDB's 16 MiB document
/// limit (the hosted service's own figure, 18 MB with headers, is
/// unconfirmed: docs/upstreams.md).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Smallest configurable body limit.
pub const MIN_BODY_BYTES: usize = 64 * 1024;

/// What runs the actions: the emulator's engine or a MongoDB deployment.
pub trait Backend: Send + Sync + 'static {
    /// Runs one checked request. The answer is the response document before
    /// encoding: counts as Int32, ids as their BSON values, `document: null`
    /// when `findOne` finds nothing.
    fn execute(&self, req: ActionRequest) -> impl Future<Output = Result<Document, ApiError>> + Send;
    /// Whether the database answers (`/healthz`).
    fn health(&self) -> impl Future<Output = Result<(), ApiError>> + Send;
}

impl<B: Backend> Backend for Arc<B> {
    fn execute(&self, req: ActionRequest) -> impl Future<Output = Result<Document, ApiError>> + Send {
        (**self).execute(req)
    }
    fn health(&self) -> impl Future<Output = Result<(), ApiError>> + Send {
        (**self).health()
    }
}

/// How the routes authenticate and how much they read.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub keys: ApiKeys,
    /// Bodies over this are `413` (default and maximum [`MAX_BODY_BYTES`]).
    pub max_body_bytes: usize,
}

impl HttpOptions {
    pub fn new(keys: ApiKeys) -> HttpOptions {
        HttpOptions { keys, max_body_bytes: MAX_BODY_BYTES }
    }
}

struct Shared<B> {
    backend: B,
    opts: HttpOptions,
}

/// `POST /action/<action>`, `POST /app/<app-id>/endpoint/data/<v1|beta>/action/<action>`
/// and `GET /healthz`; anything else is a `404` with the envelope.
pub fn router<B: Backend>(backend: B, opts: HttpOptions) -> Router {
    let shared = Arc::new(Shared { backend, opts });
    Router::new()
        .route("/action/{action}", post(handle::<B>))
        .route("/app/{app}/endpoint/data/{version}/action/{action}", post(handle::<B>))
        .route("/healthz", get(healthz::<B>))
        .fallback(|| async { ApiError::not_found("no such endpoint").into_response() })
        .with_state(shared)
        .layer(middleware::from_fn(log_request))
}

/// One line per request: method, path (no query: it may carry a secret),
/// status and duration. Never bodies or headers, so never keys.
async fn log_request(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let started = Instant::now();
    let resp = next.run(req).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(target: "gateway::request", %method, path, status = resp.status().as_u16(), ms, "request");
    resp
}

async fn healthz<B: Backend>(State(shared): State<Arc<Shared<B>>>) -> Response {
    match shared.backend.health().await {
        Ok(()) => (StatusCode::OK, axum::Json(serde_json::json!({"status": "ok"}))).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            ApiError::unavailable(e.message).into_response()
        }
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

/// Authentication: `api-key` or `apiKey`. A gateway knows no users, so
/// bearer tokens, e-mail/password and JWT credentials are unknown sessions;
/// the messages are the hosted service's (docs/upstreams.md). A valid key
/// yields its rights.
fn authenticate(keys: &ApiKeys, headers: &HeaderMap) -> Result<Arc<Policy>, ApiError> {
    if header_str(headers, "authorization").is_some() {
        return Err(ApiError::invalid_session());
    }
    // Header names are case-insensitive: `apiKey` arrives as `apikey`.
    if let Some(key) = header_str(headers, "api-key").or_else(|| header_str(headers, "apikey")) {
        return keys.accepts(key).ok_or_else(ApiError::invalid_session);
    }
    let email = header_str(headers, "email").is_some();
    let password = header_str(headers, "password").is_some();
    if email != password {
        return Err(ApiError::missing(
            "must specify some form of authentication (either email+password, api-key, or jwt) in the request header or body",
        ));
    }
    if email || header_str(headers, "jwttokenstring").is_some() {
        return Err(ApiError::invalid_session());
    }
    Err(ApiError::invalid("no authentication methods were specified"))
}

fn media_type(v: &str) -> String {
    v.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    match header_str(headers, "content-type").map(media_type).as_deref() {
        Some("application/json") | Some("application/ejson") => Ok(()),
        Some(other) => Err(ApiError::invalid(format!("unsupported Content-Type '{other}': use application/json or application/ejson"))),
        None => Err(ApiError::invalid("missing Content-Type header: use application/json or application/ejson")),
    }
}

/// Whether the caller asked for canonical Extended JSON.
fn wants_ejson(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| media_type(v) == "application/ejson")
}

/// Reads at most `limit` bytes: a declared or actual larger body is `413`.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    let declared = header_str(headers, "content-length").and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::payload_too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(ApiError::payload_too_large(limit)),
        Err(e) => Err(ApiError::invalid(format!("failed to read the request body: {e}"))),
    }
}

/// Decodes a body: JSON text (its key order kept, as MongoDB reads a sort's
/// keys first to last) holding canonical or relaxed Extended JSON.
pub fn decode_body(body: &[u8]) -> Result<Document, ApiError> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("failed to parse request body as JSON: {e}")))?;
    if !json.is_object() {
        return Err(ApiError::invalid("the request body must be a JSON object"));
    }
    ejson::decode_document(json).map_err(ApiError::invalid)
}

async fn handle<B: Backend>(
    State(shared): State<Arc<Shared<B>>>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match respond(&shared, &params, &headers, body).await {
        Ok(r) => r,
        Err(e) => {
            if e.status >= 500 {
                tracing::error!(status = e.status, code = %e.code, error = %e.message, "action failed");
            }
            e.into_response()
        }
    }
}

async fn respond<B: Backend>(
    shared: &Shared<B>,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if params.get("version").is_some_and(|v| v != "v1" && v != "beta") {
        return Err(ApiError::not_found("no such endpoint"));
    }
    let name = params.get("action").map(String::as_str).unwrap_or("");
    let action = Action::parse(name).ok_or_else(|| ApiError::not_found(format!("no such action '{name}'")))?;
    let policy = authenticate(&shared.opts.keys, headers)?;
    check_content_type(headers)?;
    let bytes = read_body(headers, body, shared.opts.max_body_bytes).await?;
    let request = ActionRequest::parse(action, &decode_body(&bytes)?)?;
    policy.check(&request)?;
    let result = Bson::Document(shared.backend.execute(request).await?);
    let (value, content_type) = if wants_ejson(headers) {
        (ejson::to_canonical(&result), "application/ejson")
    } else {
        (ejson::to_json_mode(&result), "application/json")
    };
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], serde_json::to_vec(&value).unwrap_or_default())
        .into_response())
}
