//! Fault injection and request logging shared by every emulator.
//!
//! Tests (in-process, through [`Faults`] and [`RequestLog`]) or a developer
//! (over HTTP, `/__emulator/*`) tell an emulator to misbehave on a route: answer
//! a status, wait before answering, or drop the connection without a response.
//! Every request an emulator receives is logged with its body so tests can
//! check what went over the wire.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// What an emulator does instead of (or before) answering normally.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Answer this status with a JSON error body, without running the handler.
    Status(u16),
    /// Wait this many milliseconds, then answer normally.
    DelayMs(u64),
    /// Close the connection without sending a response.
    Drop,
}

/// One fault rule: applies to requests whose path starts with `path_prefix`
/// (and whose method matches, when given), `times` times or forever.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaultRule {
    #[serde(default)]
    pub method: Option<String>,
    pub path_prefix: String,
    pub fault: Fault,
    #[serde(default)]
    pub times: Option<u32>,
}

impl FaultRule {
    pub fn new(path_prefix: impl Into<String>, fault: Fault) -> Self {
        Self { method: None, path_prefix: path_prefix.into(), fault, times: None }
    }
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }
}

/// The fault rules of one emulator. Cheap to clone; clones share the rules.
#[derive(Clone, Default)]
pub struct Faults(Arc<Mutex<Vec<FaultRule>>>);

impl Faults {
    pub fn add(&self, rule: FaultRule) {
        self.0.lock().unwrap().push(rule);
    }
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
    /// The fault for this request, if any; counts down a rule with `times`.
    pub fn take(&self, method: &str, path: &str) -> Option<Fault> {
        let mut rules = self.0.lock().unwrap();
        let i = rules.iter().position(|r| {
            path.starts_with(&r.path_prefix)
                && r.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
        })?;
        let fault = rules[i].fault.clone();
        if let Some(n) = rules[i].times.as_mut() {
            *n -= 1;
            if *n == 0 {
                rules.remove(i);
            }
        }
        Some(fault)
    }
}

/// A request as an emulator received it.
#[derive(Clone, Debug, Serialize)]
pub struct LoggedRequest {
    pub method: String,
    /// Path and query, as sent.
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl LoggedRequest {
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or("")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Every request one emulator received, oldest first.
#[derive(Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<LoggedRequest>>>);

impl RequestLog {
    pub fn all(&self) -> Vec<LoggedRequest> {
        self.0.lock().unwrap().clone()
    }
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
    fn push(&self, r: LoggedRequest) {
        self.0.lock().unwrap().push(r);
    }
}

/// The misbehaviour switches and request log of one emulator.
#[derive(Clone, Default)]
pub struct Controls {
    pub faults: Faults,
    pub log: RequestLog,
}

const CONTROL_PREFIX: &str = "/__emulator/";
/// Largest body an emulator logs and accepts (the Data API allows 18 MB).
const MAX_BODY: usize = 32 * 1024 * 1024;

impl Controls {
    /// Wraps an emulator's router: adds the `/__emulator/*` control routes and
    /// the logging + fault middleware in front of every other route.
    pub fn wrap(&self, app: Router) -> Router {
        let control = Router::new()
            .route("/__emulator/faults", post(add_fault).delete(clear_faults))
            .route("/__emulator/requests", get(list_requests).delete(clear_requests))
            .with_state(self.clone());
        app.layer(axum::middleware::from_fn_with_state(self.clone(), intercept))
            .merge(control)
    }
}

async fn intercept(State(c): State<Controls>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with(CONTROL_PREFIX) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response(),
    };
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    c.log.push(LoggedRequest {
        method: method.clone(),
        uri: parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    });
    match c.faults.take(&method, &path) {
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = serde_json::json!({"error": format!("injected fault {code}"), "error_code": "InjectedFault"});
            return (status, Json(body)).into_response();
        }
        Some(Fault::DelayMs(ms)) => tokio::time::sleep(Duration::from_millis(ms)).await,
        // Unwinding out of the connection task makes hyper drop the socket
        // without a response; resume_unwind skips the panic hook, so no noise.
        Some(Fault::Drop) => std::panic::resume_unwind(Box::new("emulator: dropped connection")),
        None => {}
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

async fn add_fault(State(c): State<Controls>, Json(rule): Json<FaultRule>) -> StatusCode {
    c.faults.add(rule);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(c): State<Controls>) -> StatusCode {
    c.faults.clear();
    StatusCode::NO_CONTENT
}

async fn list_requests(State(c): State<Controls>) -> Json<Vec<LoggedRequest>> {
    Json(c.log.all())
}

async fn clear_requests(State(c): State<Controls>) -> StatusCode {
    c.log.clear();
    StatusCode::NO_CONTENT
}
