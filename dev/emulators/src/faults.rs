//! Fault injection and request logging shared by every emulator.
//!
//! Tests (in-process, through [`Faults`] and [`RequestLog`]) or a developer
//! (over HTTP, `/__emulator/*`) tell an emulator to misbehave on a route: answer
//! a status, wait before answering, or drop the connection without a response.
//! Every request an emulator receives is logged with its body so tests can
//! check what went over the wire. For soak tests, [`Chaos`] gives every
//! request no rule matches a random delay and, now and then, a random fault.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// What an emulator does instead of (or before) answering normally.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Answer this status with a JSON error body, without running the handler.
    Status(u16),
    /// Wait this many milliseconds, then answer normally: the request is
    /// held before it is carried out (a call held in flight).
    DelayMs(u64),
    /// Carry the request out at once, then wait this many milliseconds
    /// before answering: the change happens, its answer is late (a client
    /// that gives up first does not learn that it happened).
    LateAnswerMs(u64),
    /// Close the connection without sending a response.
    Drop,
}

/// One fault rule: applies to requests whose path starts with `path_prefix`
/// (`*` standing for any one segment's characters; and whose method matches, and whose body holds `body_contains`, when
/// given), `times` times or forever. The body match tells Data API calls
/// apart: they share a path per action and name their collection in the
/// body (`"collection":"auditevents"`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaultRule {
    #[serde(default)]
    pub method: Option<String>,
    pub path_prefix: String,
    #[serde(default)]
    pub body_contains: Option<String>,
    pub fault: Fault,
    #[serde(default)]
    pub times: Option<u32>,
}

impl FaultRule {
    pub fn new(path_prefix: impl Into<String>, fault: Fault) -> Self {
        Self { method: None, path_prefix: path_prefix.into(), body_contains: None, fault, times: None }
    }
    pub fn body_contains(mut self, needle: impl Into<String>) -> Self {
        self.body_contains = Some(needle.into());
        self
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

/// Random misbehaviour for soak tests, applied to every request that no
/// [`FaultRule`] matches: a delay of `0..=delay_max_ms`, then, with
/// probability `fault_per_mille`/1000, one fault: an error status (500, 502
/// or 503), a dropped connection, or an answer `timeout_ms` late (longer
/// than the app's time limit: the app gives up, the change has happened,
/// as with a slow real server). The late answer comes *after* the change:
/// a write the server only carries out once the client has given up and
/// undone it would outlive its undo, and without transactions no
/// compensation closes that window (docs/api.md, Failure semantics), so
/// the soak does not draw it. The n-th request
/// draws from a generator seeded with `seed` and n, so a run replays as far
/// as its requests arrive in the same order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chaos {
    pub seed: u64,
    pub delay_max_ms: u64,
    pub fault_per_mille: u32,
    pub timeout_ms: u64,
}

impl Chaos {
    /// What happens to the `n`-th request: a delay, then maybe a fault.
    pub fn draw(&self, n: u64) -> (Duration, Option<Fault>) {
        let mut rng = StdRng::seed_from_u64(self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let delay = Duration::from_millis(rng.gen_range(0..=self.delay_max_ms));
        let fault = (rng.gen_range(0..1000) < self.fault_per_mille).then(|| match rng.gen_range(0..5) {
            0 => Fault::Status(500),
            1 => Fault::Status(502),
            2 => Fault::Status(503),
            3 => Fault::Drop,
            _ => Fault::LateAnswerMs(self.timeout_ms),
        });
        (delay, fault)
    }
}

/// A fault [`Chaos`] chose, with the request it hit (for a soak's report).
#[derive(Clone, Debug, Serialize)]
pub struct ChaosHit {
    /// The request's number under this chaos setting.
    pub n: u64,
    pub method: String,
    pub path: String,
    pub body: String,
    pub fault: Fault,
}

#[derive(Default)]
struct ChaosState {
    setting: Option<Chaos>,
    count: u64,
    hits: Vec<ChaosHit>,
}

/// The fault rules (and chaos setting) of one emulator. Cheap to clone;
/// clones share them.
#[derive(Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<FaultRule>>>,
    chaos: Arc<Mutex<ChaosState>>,
}

impl Faults {
    pub fn add(&self, rule: FaultRule) {
        self.rules.lock().unwrap().push(rule);
    }
    /// Removes every rule (the chaos setting stays).
    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
    }
    /// The rules not yet used up (a test checks its faults were hit).
    pub fn rules(&self) -> Vec<FaultRule> {
        self.rules.lock().unwrap().clone()
    }
    /// Turns chaos on (`Some`, restarting its request count and hit list) or off.
    pub fn set_chaos(&self, chaos: Option<Chaos>) {
        *self.chaos.lock().unwrap() = ChaosState { setting: chaos, ..ChaosState::default() };
    }
    /// The faults chaos has chosen since it was last set, oldest first.
    pub fn chaos_hits(&self) -> Vec<ChaosHit> {
        self.chaos.lock().unwrap().hits.clone()
    }
    /// Chaos's plan for a request no rule matched (`None` while chaos is off).
    fn chaos_for(&self, method: &str, path: &str, body: &[u8]) -> Option<(Duration, Option<Fault>)> {
        let mut st = self.chaos.lock().unwrap();
        let chaos = st.setting?;
        let n = st.count;
        st.count += 1;
        let (delay, fault) = chaos.draw(n);
        if let Some(f) = &fault {
            let hit = ChaosHit {
                n,
                method: method.to_owned(),
                path: path.to_owned(),
                body: String::from_utf8_lossy(body).into_owned(),
                fault: f.clone(),
            };
            st.hits.push(hit);
        }
        Some((delay, fault))
    }
    /// The fault for this request, if any; counts down a rule with `times`.
    pub fn take(&self, method: &str, path: &str, body: &[u8]) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap();
        let i = rules.iter().position(|r| {
            prefix_matches(&r.path_prefix, path)
                && r.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
                && r.body_contains.as_deref().is_none_or(|n| contains(body, n.as_bytes()))
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

/// Whether `path` starts with `pattern`, where a `*` in the pattern stands
/// for one path segment's worth of characters (none of them `/`), and a
/// final `$` for the path's end: ids that
/// a test cannot know in advance, e.g. `/api/v3/core/users/*/set_password/`
/// or the Data API's `/app/*/endpoint/data/v1/action/insertOne`.
fn prefix_matches(pattern: &str, path: &str) -> bool {
    match pattern.split_once('*') {
        // A final `$` ends the path: `/action/find$` is not `/action/findOne`.
        None => match pattern.strip_suffix('$') {
            Some(whole) => path == whole,
            None => path.starts_with(pattern),
        },
        Some((head, tail)) => match path.strip_prefix(head) {
            None => false,
            Some(rest) => {
                let segment_end = rest.find('/').unwrap_or(rest.len());
                (0..=segment_end).any(|i| prefix_matches(tail, &rest[i..]))
            }
        },
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
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
            .route("/__emulator/chaos", post(set_chaos).delete(clear_chaos))
            .with_state(self.clone());
        app.layer(axum::middleware::from_fn_with_state(self.clone(), intercept)).merge(control)
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
        headers: parts.headers.iter().map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    });
    // An explicit rule wins; otherwise chaos (when on) may delay or fault.
    let fault = match c.faults.take(&method, &path, &bytes) {
        Some(f) => Some(f),
        None => match c.faults.chaos_for(&method, &path, &bytes) {
            Some((delay, fault)) => {
                tokio::time::sleep(delay).await;
                fault
            }
            None => None,
        },
    };
    match fault {
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = serde_json::json!({"error": format!("injected fault {code}"), "error_code": "InjectedFault"});
            return (status, Json(body)).into_response();
        }
        Some(Fault::DelayMs(ms)) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Some(Fault::LateAnswerMs(ms)) => {
            let answer = next.run(Request::from_parts(parts, Body::from(bytes))).await;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            return answer;
        }
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

async fn set_chaos(State(c): State<Controls>, Json(chaos): Json<Chaos>) -> StatusCode {
    c.faults.set_chaos(Some(chaos));
    StatusCode::NO_CONTENT
}

async fn clear_chaos(State(c): State<Controls>) -> StatusCode {
    c.faults.set_chaos(None);
    StatusCode::NO_CONTENT
}

async fn list_requests(State(c): State<Controls>) -> Json<Vec<LoggedRequest>> {
    Json(c.log.all())
}

async fn clear_requests(State(c): State<Controls>) -> StatusCode {
    c.log.clear();
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_stands_for_one_segment() {
        let cases = [
            ("/api/v3/core/users/", "/api/v3/core/users/12/set_password/", true),
            ("/api/v3/core/users/*/set_password/", "/api/v3/core/users/12/set_password/", true),
            ("/api/v3/core/users/*/set_password/", "/api/v3/core/users/12/recovery/", false),
            // One segment only: `*` never crosses a `/`.
            ("/api/v3/core/*/set_password/", "/api/v3/core/users/12/set_password/", false),
            ("/app/*/endpoint/data/v1/action/insertOne", "/app/data-x/endpoint/data/v1/action/insertOne", true),
            ("/app/*/endpoint/data/v1/action/insertOne", "/app/data-x/endpoint/data/v1/action/insertMany", false),
            ("/api/v3/core/users/*", "/api/v3/core/users/", true),
            ("/action/find$", "/action/find", true),
            ("/action/find$", "/action/findOne", false),
            ("/api/v3/core/users/*/$", "/api/v3/core/users/12/", true),
            ("/api/v3/core/users/*/$", "/api/v3/core/users/12/set_password/", false),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(prefix_matches(pattern, path), want, "{pattern} on {path}");
        }
    }

    #[test]
    fn rules_match_on_method_and_body_and_count_down() {
        let faults = Faults::default();
        faults.add(FaultRule::new("/x", Fault::Status(500)).method("post").body_contains("\"collection\":\"auditevents\"").times(1));
        assert_eq!(faults.take("GET", "/x", br#"{"collection":"auditevents"}"#), None);
        assert_eq!(faults.take("POST", "/x", br#"{"collection":"users"}"#), None);
        assert_eq!(faults.take("POST", "/x", br#"{"collection":"auditevents"}"#), Some(Fault::Status(500)));
        assert_eq!(faults.take("POST", "/x", br#"{"collection":"auditevents"}"#), None, "used up");
    }
}

#[cfg(test)]
mod chaos_tests {
    use super::*;

    #[test]
    fn chaos_replays_from_its_seed() {
        let chaos = Chaos { seed: 7, delay_max_ms: 50, fault_per_mille: 100, timeout_ms: 2000 };
        let draws: Vec<_> = (0..2000).map(|n| chaos.draw(n)).collect();
        assert_eq!(draws, (0..2000).map(|n| chaos.draw(n)).collect::<Vec<_>>());
        assert!(draws.iter().all(|(d, _)| *d <= Duration::from_millis(50)));
        let faults: Vec<&Fault> = draws.iter().filter_map(|(_, f)| f.as_ref()).collect();
        // About a tenth, each kind among them.
        assert!((120..=280).contains(&faults.len()), "{}", faults.len());
        for kind in [Fault::Status(500), Fault::Status(502), Fault::Status(503), Fault::Drop, Fault::LateAnswerMs(2000)] {
            assert!(faults.contains(&&kind), "{kind:?}");
        }
        let other = Chaos { seed: 8, ..chaos };
        assert_ne!(draws, (0..2000).map(|n| other.draw(n)).collect::<Vec<_>>());
    }
}
