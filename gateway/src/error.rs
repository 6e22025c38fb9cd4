//! The contract's error: an HTTP status and the envelope
//! `{"error", "error_code", "link"}` (docs/upstreams.md, Data API).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// A Data API error: the HTTP status and the contract's envelope fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError { status, code: code.to_owned(), message: message.into() }
    }
    pub fn bad_request(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(400, code, message)
    }
    /// `400 InvalidParameter`: the Data API's code for a malformed request.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::bad_request("InvalidParameter", message)
    }
    pub fn missing(message: impl Into<String>) -> ApiError {
        ApiError::bad_request("MissingParameter", message)
    }
    pub fn invalid_session() -> ApiError {
        ApiError::new(401, "InvalidSession", "invalid session: error finding user for endpoint")
    }
    /// `403 NoMatchingRuleFound`: the key has no right to what the request
    /// does ([`crate::Policy::check`]). The wire contract (docs/upstreams.md)
    /// documents no answer for this. The
    /// hosted service let App Services rules decide what a caller could do,
    /// and answered a namespace no rule covered with the code
    /// `NoMatchingRuleFound` (in MongoDB's SDK error codes:
    /// mongodb/stitch-js-sdk, `StitchServiceErrorCode.ts`) and the message
    /// `no rule exists for namespace '<db>.<collection>'` (as MongoDB's Realm
    /// SDK examples show it), which our message starts with. Its HTTP status
    /// is not in an official source (**UNCONFIRMED**); 403 because the key
    /// is known (not 401) and the request well formed (not 400).
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "NoMatchingRuleFound", message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "NotFound", message)
    }
    pub fn payload_too_large(limit: usize) -> ApiError {
        ApiError::new(413, "PayloadTooLarge", format!("the request body exceeds the limit of {limit} bytes"))
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalServerError", message)
    }
    /// The database cannot be reached (refused, timed out, no server selectable).
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(503, "ServiceUnavailable", message)
    }

    /// `{"error", "error_code", "link"}`. The hosted service's `link` points
    /// at its log entry; there is no such page here, so it keeps the shape
    /// (an https URL with a fresh id) for clients that read it.
    pub fn envelope(&self) -> Value {
        json!({
            "error": self.message,
            "error_code": self.code,
            "link": format!(
                "https://services.cloud.mongodb.com/groups/gateway/apps/gateway/logs?co_id={}",
                bson::oid::ObjectId::new().to_hex()
            ),
        })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.envelope()).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
    }
}
