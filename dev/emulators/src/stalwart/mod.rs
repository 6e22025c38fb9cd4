//! Stalwart 0.16 JMAP management API emulator (docs/upstreams.md, Stalwart).
//!
//! - `GET /.well-known/jmap` → `307` to `/jmap/session`; `GET /jmap/session`
//!   (capabilities only without credentials); `POST /jmap/` (and `/jmap`).
//! - Auth: `Authorization: Bearer <token>` (the API key, [`demo::STALWART_TOKEN`]
//!   by default), or `Basic base64(admin:<token>)` for the admin login (user and
//!   password configurable with [`StalwartState::set_admin_login`]); or
//!   `Basic base64(<mailbox address>:<password>)` as a mailbox user, who then
//!   gets `forbidden` on `x:*` methods and HTTP `403` when suspended. Failures
//!   are `401` problem+json with `WWW-Authenticate`.
//! - Methods: `Core/echo`, `x:Domain/{get,query,set}`, `x:Account/{get,query,set}`,
//!   `Principal/{query,get}` (these need `urn:ietf:params:jmap:principals` in
//!   `using`). Back-references (`#ids` → `resultOf`) and creation-id references
//!   (`"#n1"`) resolve. Method errors are HTTP 200 `["error", …]` entries;
//!   per-object failures are `notCreated`/`notUpdated`/`notDestroyed` SetErrors.
//! - The caller (the admin) has no `x:Account` of its own: its account id is
//!   [`ADMIN_ACCOUNT_ID`], listed in the session but not in the registry (like
//!   Stalwart's recovery admin).
//!
//! Seeded from [`crate::demo`]: each demo domain (`id` = `stalwart_id`) and,
//! for each demo user with a `stalwart_account`, a `User` account with that id,
//! `name` = local part, `domainId` = its domain's id, `description` = the user's
//! name, one `Password` credential (key `"0"`, secret [`DEMO_MAILBOX_PASSWORD`]),
//! no aliases, default roles and `Inherit` permissions. New domain ids continue
//! at `"g"`, new account ids at `"h"` (Stalwart's base32 alphabet).

// Handlers answer an error `Response` as the `Err` of a `Result`: large by design.
#![allow(clippy::result_large_err)]

pub mod model;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde_json::{json, Map, Value};

use crate::authentik::support::{authorization, decode_basic, iso_secs, json_with, media_type, now_ms};
use crate::demo;
use model::{apply_patch, parse_account, parse_domain, Registry, SetErr, ACCOUNT_SERVER_SET};
pub use model::{StAccount, StAlias, StCredential, StDomain};

/// The admin's own account id (`primaryAccounts` values in the session).
pub const ADMIN_ACCOUNT_ID: &str = "a";
/// Default Basic-auth user name of the admin login.
pub const ADMIN_USERNAME: &str = "admin";
/// The password of every seeded demo mailbox.
pub const DEMO_MAILBOX_PASSWORD: &str = "Demo-Mailbox-2026!";
const MAX_CALLS_IN_REQUEST: usize = 16;
const MAX_SIZE_REQUEST: usize = 10_000_000;
const MAX_OBJECTS_IN_GET: usize = 500;
const MAX_OBJECTS_IN_SET: usize = 500;
const MAX_QUERY_RESULTS: usize = 5000;
const CAP_CORE: &str = "urn:ietf:params:jmap:core";
const CAP_PRINCIPALS: &str = "urn:ietf:params:jmap:principals";
const CAP_STALWART: &str = "urn:stalwart:jmap";
const KNOWN_CAPABILITIES: [&str; 14] = [
    CAP_CORE,
    "urn:ietf:params:jmap:mail",
    "urn:ietf:params:jmap:submission",
    "urn:ietf:params:jmap:vacationresponse",
    "urn:ietf:params:jmap:contacts",
    "urn:ietf:params:jmap:calendars",
    "urn:ietf:params:jmap:sieve",
    "urn:ietf:params:jmap:blob",
    "urn:ietf:params:jmap:quota",
    CAP_PRINCIPALS,
    "urn:ietf:params:jmap:principals:owner",
    "urn:ietf:params:jmap:websocket",
    "urn:ietf:params:jmap:filenode",
    CAP_STALWART,
];
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Stalwart's id rendering: the number in base 32, `a`–`z2`–`7`.
fn encode_id(mut n: u64) -> String {
    let mut out = Vec::new();
    loop {
        out.push(BASE32[(n % 32) as usize]);
        n /= 32;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

struct Inner {
    token: String,
    admin_user: String,
    admin_password: String,
    domains: Vec<StDomain>,
    accounts: Vec<StAccount>,
    next_domain: u64,
    next_account: u64,
    next_credential: u64,
    next_seq: u64,
    state: u64,
}

impl Registry for Inner {
    fn domain_exists(&self, id: &str) -> bool {
        self.domains.iter().any(|d| d.id == id)
    }
    fn group_exists(&self, id: &str) -> bool {
        self.accounts.iter().any(|a| a.id == id && a.kind == "Group")
    }
    fn address_owner(&self, local: &str, domain_id: &str, except: Option<&str>) -> Option<String> {
        self.accounts
            .iter()
            .filter(|a| Some(a.id.as_str()) != except)
            .find(|a| {
                (a.name == local && a.domain_id == domain_id)
                    || a.aliases.values().any(|x| x.enabled && x.name == local && x.domain_id == domain_id)
            })
            .map(|a| a.id.clone())
    }
    fn new_credential_id(&mut self) -> String {
        self.next_credential += 1;
        self.next_credential.to_string()
    }
}

impl Inner {
    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }
    fn alloc_account_id(&mut self) -> String {
        loop {
            let id = encode_id(self.next_account);
            self.next_account += 1;
            if !self.accounts.iter().any(|a| a.id == id) && id != ADMIN_ACCOUNT_ID {
                return id;
            }
        }
    }
    fn alloc_domain_id(&mut self) -> String {
        loop {
            let id = encode_id(self.next_domain);
            self.next_domain += 1;
            if !self.domains.iter().any(|d| d.id == id) {
                return id;
            }
        }
    }
    fn domain(&self, id: &str) -> Option<&StDomain> {
        self.domains.iter().find(|d| d.id == id)
    }
    fn domain_by_name_or_alias(&self, name: &str) -> Option<&StDomain> {
        self.domains.iter().find(|d| d.name == name || d.aliases.iter().any(|a| a == name))
    }
    fn account(&self, id: &str) -> Option<&StAccount> {
        self.accounts.iter().find(|a| a.id == id)
    }
    fn email_of(&self, a: &StAccount) -> String {
        format!("{}@{}", a.name, self.domain(&a.domain_id).map(|d| d.name.as_str()).unwrap_or(""))
    }
    fn state_string(&self) -> String {
        format!("s{}", self.state)
    }
}

/// State of the Stalwart emulator. Clones share the same data.
#[derive(Clone)]
pub struct StalwartState(Arc<Mutex<Inner>>);

impl Default for StalwartState {
    fn default() -> Self {
        Self::demo()
    }
}

impl StalwartState {
    /// Seeded from [`crate::demo`], accepting [`demo::STALWART_TOKEN`].
    pub fn demo() -> Self {
        Self::with_token(demo::STALWART_TOKEN)
    }

    /// Seeded from [`crate::demo`], accepting `token`.
    pub fn with_token(token: impl Into<String>) -> Self {
        let s = Self::empty(token);
        s.seed_demo();
        s
    }

    /// No domains or accounts; accepting `token`.
    pub fn empty(token: impl Into<String>) -> Self {
        let token = token.into();
        StalwartState(Arc::new(Mutex::new(Inner {
            admin_user: ADMIN_USERNAME.to_owned(),
            admin_password: token.clone(),
            token,
            domains: vec![],
            accounts: vec![],
            next_domain: 6,
            next_account: 7,
            next_credential: 0,
            next_seq: 0,
            state: 1,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn seed_demo(&self) {
        let mut inner = self.lock();
        for d in demo::DOMAINS.iter() {
            let seq = inner.seq();
            inner.domains.push(StDomain {
                id: d.stalwart_id.to_owned(),
                name: d.domain.to_owned(),
                aliases: vec![],
                is_enabled: true,
                description: Some(d.tenant.name.to_owned()),
                created_at: iso_secs(demo::CREATED_AT_MS + d.created_day * 86_400_000),
                seq,
            });
        }
        for (i, u) in demo::USERS.iter().enumerate() {
            let Some(id) = u.stalwart_account else { continue };
            let (local, domain) = u.email.split_once('@').expect("demo e-mails have an @");
            let Some(d) = demo::DOMAINS.iter().find(|d| d.domain == domain) else { continue };
            let seq = inner.seq();
            let credential_id = inner.new_credential_id();
            let mut credentials = std::collections::BTreeMap::new();
            credentials.insert(
                0,
                StCredential {
                    kind: "Password".into(),
                    secret: DEMO_MAILBOX_PASSWORD.into(),
                    credential_id,
                    expires_at: Value::Null,
                    allowed_ips: json!({}),
                },
            );
            inner.accounts.push(StAccount {
                id: id.to_owned(),
                kind: "User".into(),
                name: local.to_owned(),
                domain_id: d.stalwart_id.to_owned(),
                description: Some(u.name.to_owned()),
                aliases: Default::default(),
                credentials,
                roles: json!({"@type": "User"}),
                permissions: json!({"@type": "Inherit"}),
                quotas: json!({}),
                locale: "en_US".into(),
                time_zone: Value::Null,
                member_group_ids: vec![],
                member_tenant_id: Value::Null,
                encryption_at_rest: json!({"@type": "Disabled"}),
                created_at: iso_secs(demo::CREATED_AT_MS + i as i64 * 86_400_000),
                seq,
            });
        }
    }

    /// The API key (Bearer token) the emulator accepts.
    pub fn token(&self) -> String {
        self.lock().token.clone()
    }
    pub fn set_token(&self, token: impl Into<String>) {
        self.lock().token = token.into();
    }
    /// The Basic-auth login of the admin (default `admin` / the token).
    pub fn set_admin_login(&self, user: impl Into<String>, password: impl Into<String>) {
        let mut inner = self.lock();
        inner.admin_user = user.into();
        inner.admin_password = password.into();
    }

    pub fn domains(&self) -> Vec<StDomain> {
        self.lock().domains.clone()
    }
    pub fn domain(&self, id: &str) -> Option<StDomain> {
        self.lock().domain(id).cloned()
    }
    pub fn domain_by_name(&self, name: &str) -> Option<StDomain> {
        self.lock().domains.iter().find(|d| d.name == name).cloned()
    }
    /// Adds a domain directly and returns its id.
    pub fn add_domain(&self, name: &str) -> String {
        let mut inner = self.lock();
        let id = inner.alloc_domain_id();
        let seq = inner.seq();
        inner.domains.push(StDomain {
            id: id.clone(),
            name: name.to_lowercase(),
            aliases: vec![],
            is_enabled: true,
            description: None,
            created_at: iso_secs(now_ms()),
            seq,
        });
        inner.state += 1;
        id
    }

    /// Every account (users and groups), in creation order.
    pub fn accounts(&self) -> Vec<StAccount> {
        self.lock().accounts.clone()
    }
    pub fn account(&self, id: &str) -> Option<StAccount> {
        self.lock().account(id).cloned()
    }
    /// The account whose primary address or (enabled) alias is `address`.
    pub fn account_by_email(&self, address: &str) -> Option<StAccount> {
        let inner = self.lock();
        let (local, domain) = address.to_lowercase().rsplit_once('@').map(|(l, d)| (l.to_owned(), d.to_owned()))?;
        let d = inner.domain_by_name_or_alias(&domain)?.id.clone();
        let owner = inner.address_owner(&local, &d, None)?;
        inner.account(&owner).cloned()
    }
    /// `name@domain` of the account.
    pub fn email_address_of(&self, id: &str) -> Option<String> {
        let inner = self.lock();
        inner.account(id).map(|a| inner.email_of(a))
    }
    /// The account's aliases as full addresses, by list key.
    pub fn aliases_of(&self, id: &str) -> Vec<String> {
        let inner = self.lock();
        let Some(a) = inner.account(id) else { return vec![] };
        a.aliases.values().map(|x| format!("{}@{}", x.name, inner.domain(&x.domain_id).map(|d| d.name.as_str()).unwrap_or(""))).collect()
    }
    /// The stored secret of the account's `Password` credential.
    pub fn password_of(&self, id: &str) -> Option<String> {
        self.lock().account(id).and_then(|a| a.password().map(str::to_owned))
    }
    /// Whether sign-in is blocked (`authenticate` disabled); `None` if no such account.
    pub fn is_suspended(&self, id: &str) -> Option<bool> {
        self.lock().account(id).map(StAccount::is_suspended)
    }
    /// Runs `f` on the stored account; `None` if there is no such account.
    pub fn update_account<R>(&self, id: &str, f: impl FnOnce(&mut StAccount) -> R) -> Option<R> {
        let mut inner = self.lock();
        let r = inner.accounts.iter_mut().find(|a| a.id == id).map(f);
        if r.is_some() {
            inner.state += 1;
        }
        r
    }
    pub fn remove_account(&self, id: &str) -> bool {
        let mut inner = self.lock();
        let before = inner.accounts.len();
        inner.accounts.retain(|a| a.id != id);
        before != inner.accounts.len()
    }
}

/// The Stalwart routes: `/.well-known/jmap`, `/jmap/session`, `/jmap/`.
pub fn router(state: StalwartState) -> Router {
    Router::new()
        .route("/.well-known/jmap", any(well_known))
        .route("/jmap/session", any(session))
        .route("/jmap", any(api))
        .route("/jmap/", any(api))
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "about:blank", "Not Found", "The requested resource does not exist.") })
        .with_state(state)
}

// ---------------------------------------------------------------------------
// Transport

fn problem(status: StatusCode, kind: &str, title: &str, detail: &str) -> Response {
    json_with(status, "application/problem+json", &json!({"type": kind, "status": status.as_u16(), "title": title, "detail": detail}))
}

fn unauthorized(headers: &HeaderMap) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let mut r = problem(StatusCode::UNAUTHORIZED, "about:blank", "Unauthorized", "You have to authenticate first.");
    let bearer = format!("Bearer realm=\"Stalwart Server\", resource_metadata=\"http://{host}/.well-known/oauth-protected-resource\"");
    if let Ok(v) = HeaderValue::from_str(&bearer) {
        r.headers_mut().append(header::WWW_AUTHENTICATE, v);
    }
    r.headers_mut().append(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"Stalwart Server\""));
    r
}

fn method_not_allowed(allow: &'static str) -> Response {
    let mut r =
        problem(StatusCode::METHOD_NOT_ALLOWED, "about:blank", "Method Not Allowed", "The method is not allowed for this resource.");
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

#[derive(Clone, Debug, PartialEq)]
enum Caller {
    Admin,
    Account(String),
}

impl Caller {
    fn account_id(&self) -> String {
        match self {
            Caller::Admin => ADMIN_ACCOUNT_ID.to_owned(),
            Caller::Account(id) => id.clone(),
        }
    }
}

/// `Ok(None)`: no `Authorization` header.
fn authenticate(inner: &Inner, headers: &HeaderMap) -> Result<Option<Caller>, Response> {
    let Some((scheme, cred)) = authorization(headers) else { return Ok(None) };
    if scheme.eq_ignore_ascii_case("bearer") {
        return if !cred.is_empty() && cred == inner.token { Ok(Some(Caller::Admin)) } else { Err(unauthorized(headers)) };
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(unauthorized(headers));
    }
    let Some((user, pw)) = decode_basic(&cred) else { return Err(unauthorized(headers)) };
    let user = user.trim().to_lowercase();
    if user == inner.admin_user.to_lowercase() && pw == inner.admin_password {
        return Ok(Some(Caller::Admin));
    }
    let account = inner.accounts.iter().find(|a| a.kind == "User" && inner.email_of(a) == user && a.password() == Some(pw.as_str()));
    match account {
        Some(a) if a.is_suspended() => {
            Err(problem(StatusCode::FORBIDDEN, "about:blank", "Forbidden", "You do not have enough permissions to access this resource."))
        }
        Some(a) => Ok(Some(Caller::Account(a.id.clone()))),
        None => Err(unauthorized(headers)),
    }
}

async fn well_known(method: Method) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed("GET, HEAD");
    }
    let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
    r.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/jmap/session"));
    r
}

async fn session(State(s): State<StalwartState>, method: Method, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed("GET, HEAD");
    }
    let inner = s.lock();
    let caller = match authenticate(&inner, &headers) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let base = format!("http://{host}");
    let capabilities = json!({
        CAP_CORE: {"maxSizeUpload": 50_000_000, "maxConcurrentUpload": 4, "maxSizeRequest": MAX_SIZE_REQUEST,
            "maxConcurrentRequests": 4, "maxCallsInRequest": MAX_CALLS_IN_REQUEST,
            "maxObjectsInGet": MAX_OBJECTS_IN_GET, "maxObjectsInSet": MAX_OBJECTS_IN_SET,
            "collationAlgorithms": ["i;ascii-numeric", "i;ascii-casemap", "i;unicode-casemap"]},
        CAP_PRINCIPALS: {},
        CAP_STALWART: {},
    });
    let (accounts, primary, username) = match &caller {
        None => (json!({}), json!({}), String::new()),
        Some(c) => {
            let id = c.account_id();
            let name = match c {
                Caller::Admin => inner.admin_user.clone(),
                Caller::Account(aid) => inner.account(aid).map(|a| inner.email_of(a)).unwrap_or_default(),
            };
            (
                json!({ id.clone(): {"name": name, "isPersonal": true, "isReadOnly": false,
                    "accountCapabilities": {CAP_PRINCIPALS: {}, CAP_STALWART: {}}} }),
                json!({CAP_CORE: id, CAP_PRINCIPALS: id, CAP_STALWART: id}),
                name,
            )
        }
    };
    let body = json!({
        "capabilities": capabilities,
        "accounts": accounts,
        "primaryAccounts": primary,
        "username": username,
        "apiUrl": format!("{base}/jmap/"),
        "downloadUrl": format!("{base}/jmap/download/{{accountId}}/{{blobId}}/{{name}}?accept={{type}}"),
        "uploadUrl": format!("{base}/jmap/upload/{{accountId}}/"),
        "eventSourceUrl": format!("{base}/jmap/eventsource/?types={{types}}&closeafter={{closeafter}}&ping={{ping}}"),
        "state": inner.state_string(),
    });
    json_with(StatusCode::OK, "application/json", &body)
}

async fn api(State(s): State<StalwartState>, method: Method, headers: HeaderMap, body: Bytes) -> Response {
    if method != Method::POST {
        return method_not_allowed("POST");
    }
    let mut inner = s.lock();
    let caller = match authenticate(&inner, &headers) {
        Ok(Some(c)) => c,
        Ok(None) => return unauthorized(&headers),
        Err(e) => return e,
    };
    if let Some(mt) = media_type(&headers) {
        if mt != "application/json" {
            return problem(
                StatusCode::BAD_REQUEST,
                "urn:ietf:params:jmap:error:notJSON",
                "Not JSON",
                "The content type of the request was not application/json.",
            );
        }
    }
    if body.len() > MAX_SIZE_REQUEST {
        return limit_problem("The request is larger than the server is willing to process.", "maxSizeRequest");
    }
    let not_request = |detail: String| problem(StatusCode::BAD_REQUEST, "urn:ietf:params:jmap:error:notRequest", "Not Request", &detail);
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return not_request(format!("{e}: {}", String::from_utf8_lossy(&body))),
    };
    let (Some(using), Some(calls)) = (request.get("using").and_then(Value::as_array), request.get("methodCalls").and_then(Value::as_array))
    else {
        return not_request(format!("Invalid JMAP request: {}", String::from_utf8_lossy(&body)));
    };
    let mut caps = BTreeSet::new();
    for u in using {
        match u.as_str() {
            Some(c) if KNOWN_CAPABILITIES.contains(&c) => {
                caps.insert(c.to_owned());
            }
            _ => return not_request(format!("Unknown capability {u} in using: {}", String::from_utf8_lossy(&body))),
        }
    }
    let mut parsed = Vec::new();
    for c in calls {
        match c.as_array().map(Vec::as_slice) {
            Some([Value::String(name), Value::Object(args), Value::String(id)]) => parsed.push((name.clone(), args.clone(), id.clone())),
            _ => return not_request(format!("Invalid method call {c}: {}", String::from_utf8_lossy(&body))),
        }
    }
    if parsed.len() > MAX_CALLS_IN_REQUEST {
        return limit_problem("Too many method calls in the request.", "maxCallsInRequest");
    }
    let request_created = request.get("createdIds").and_then(Value::as_object).cloned();
    let mut ctx = Ctx { caller, caps, created_ids: request_created.clone().unwrap_or_default(), responses: Vec::new() };
    for (name, args, call_id) in parsed {
        let result = resolve_references(&ctx, args).and_then(|args| run_method(&mut inner, &mut ctx, &name, args));
        match result {
            Ok(out) => ctx.responses.push(json!([name, out, call_id])),
            Err(MethodErr(e)) => ctx.responses.push(json!(["error", e, call_id])),
        }
    }
    let mut out = json!({"methodResponses": ctx.responses, "sessionState": inner.state_string()});
    if request_created.is_some() {
        out["createdIds"] = Value::Object(ctx.created_ids);
    }
    json_with(StatusCode::OK, "application/json", &out)
}

fn limit_problem(detail: &str, limit: &str) -> Response {
    json_with(
        StatusCode::BAD_REQUEST,
        "application/problem+json",
        &json!({"type": "urn:ietf:params:jmap:error:limit", "status": 400, "title": "Limit", "detail": detail, "limit": limit}),
    )
}

// ---------------------------------------------------------------------------
// Method dispatch

struct Ctx {
    caller: Caller,
    caps: BTreeSet<String>,
    created_ids: Map<String, Value>,
    responses: Vec<Value>,
}

struct MethodErr(Value);

fn merr(kind: &str, description: impl Into<String>) -> MethodErr {
    MethodErr(json!({"type": kind, "description": description.into()}))
}

/// Evaluates an RFC 8620 result-reference path (JSON pointer with `*`).
fn eval_path(v: &Value, path: &str) -> Option<Value> {
    let path = path.strip_prefix('/').unwrap_or(path);
    if path.is_empty() {
        return Some(v.clone());
    }
    let (head, rest) = path.split_once('/').unwrap_or((path, ""));
    let head = head.replace("~1", "/").replace("~0", "~");
    if head == "*" {
        let arr = v.as_array()?;
        let mut out = Vec::new();
        for item in arr {
            match eval_path(item, rest)? {
                Value::Array(a) => out.extend(a),
                other => out.push(other),
            }
        }
        return Some(Value::Array(out));
    }
    let next = match v {
        Value::Object(m) => m.get(&head)?,
        Value::Array(a) => a.get(head.parse::<usize>().ok()?)?,
        _ => return None,
    };
    eval_path(next, rest)
}

fn resolve_references(ctx: &Ctx, args: Map<String, Value>) -> Result<Map<String, Value>, MethodErr> {
    let mut out = Map::new();
    for (k, v) in args.iter() {
        let Some(plain) = k.strip_prefix('#') else {
            out.insert(k.clone(), v.clone());
            continue;
        };
        if args.contains_key(plain) {
            return Err(merr("invalidArguments", format!("Both {plain} and #{plain} were given")));
        }
        let (Some(result_of), Some(name), Some(path)) =
            (v.get("resultOf").and_then(Value::as_str), v.get("name").and_then(Value::as_str), v.get("path").and_then(Value::as_str))
        else {
            return Err(merr("invalidArguments", format!("Invalid result reference in #{plain}")));
        };
        let found = ctx.responses.iter().find(|r| r[2] == json!(result_of));
        let Some(resp) = found else {
            return Err(merr("invalidResultReference", format!("No method call with id {result_of}")));
        };
        if resp[0] != json!(name) {
            return Err(merr("invalidResultReference", format!("Method call {result_of} is not {name}")));
        }
        let Some(value) = eval_path(&resp[1], path) else {
            return Err(merr("invalidResultReference", format!("Path {path} not found in {result_of}")));
        };
        out.insert(plain.to_owned(), value);
    }
    Ok(out)
}

fn run_method(inner: &mut Inner, ctx: &mut Ctx, name: &str, args: Map<String, Value>) -> Result<Value, MethodErr> {
    if name == "Core/echo" {
        return Ok(Value::Object(args));
    }
    let registry =
        matches!(name, "x:Domain/get" | "x:Domain/query" | "x:Domain/set" | "x:Account/get" | "x:Account/query" | "x:Account/set");
    let principal = matches!(name, "Principal/query" | "Principal/get");
    if principal && !ctx.caps.contains(CAP_PRINCIPALS) {
        return Err(merr("unknownMethod", format!("Unknown method {name} (capability {CAP_PRINCIPALS} not in using)")));
    }
    if !registry && !principal {
        return Err(merr("unknownMethod", format!("Unknown method {name}")));
    }
    let account_id = check_account_id(inner, &ctx.caller, &args)?;
    if registry && ctx.caller != Caller::Admin {
        return Err(merr("forbidden", "You do not have enough permissions to access this resource."));
    }
    let out = match name {
        "x:Domain/get" => domain_get(inner, ctx, &args),
        "x:Domain/query" => domain_query(inner, &args),
        "x:Domain/set" => domain_set(inner, ctx, &args),
        "x:Account/get" => account_get(inner, ctx, &args),
        "x:Account/query" => account_query(inner, &args),
        "x:Account/set" => account_set(inner, ctx, &args),
        "Principal/query" => principal_query(inner, &args),
        _ => principal_get(inner, ctx, &args),
    }?;
    let mut out = out;
    out["accountId"] = json!(account_id);
    Ok(out)
}

fn check_account_id(inner: &Inner, caller: &Caller, args: &Map<String, Value>) -> Result<String, MethodErr> {
    match args.get("accountId") {
        None | Some(Value::Null) => Ok(caller.account_id()),
        Some(Value::String(id)) if *id == caller.account_id() => Ok(id.clone()),
        Some(Value::String(id)) => match caller {
            Caller::Admin if inner.account(id).is_some() => Ok(id.clone()),
            Caller::Admin => Err(merr("accountNotFound", format!("Account {id} does not exist"))),
            Caller::Account(_) => Err(merr("forbidden", format!("You do not have access to account {id}"))),
        },
        Some(_) => Err(merr("invalidArguments", "accountId must be a string")),
    }
}

/// `ids` of a get: `None` means all.
fn get_ids(ctx: &Ctx, args: &Map<String, Value>) -> Result<Option<Vec<String>>, MethodErr> {
    match args.get("ids") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => {
            if a.len() > MAX_OBJECTS_IN_GET {
                return Err(merr("requestTooLarge", format!("Too many ids, the maximum is {MAX_OBJECTS_IN_GET}")));
            }
            a.iter()
                .map(|v| v.as_str().map(|s| resolve_creation_id(ctx, s)).ok_or_else(|| merr("invalidArguments", "ids must be strings")))
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        }
        Some(_) => Err(merr("invalidArguments", "ids must be an array or null")),
    }
}

fn resolve_creation_id(ctx: &Ctx, id: &str) -> String {
    match id.strip_prefix('#') {
        Some(cid) => ctx.created_ids.get(cid).and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| id.to_owned()),
        None => id.to_owned(),
    }
}

fn select_properties(full: Value, props: Option<&Value>, known: &[&str]) -> Result<Value, MethodErr> {
    let Some(Value::Array(props)) = props else { return Ok(full) };
    let mut out = Map::new();
    out.insert("id".into(), full["id"].clone());
    for p in props {
        let Some(p) = p.as_str() else { return Err(merr("invalidArguments", "properties must be strings")) };
        if !known.contains(&p) {
            return Err(merr("invalidArguments", format!("Unknown property {p}")));
        }
        if let Some(v) = full.get(p) {
            out.insert(p.to_owned(), v.clone());
        }
    }
    Ok(Value::Object(out))
}

const DOMAIN_PROPS: [&str; 17] = [
    "id",
    "name",
    "aliases",
    "isEnabled",
    "description",
    "createdAt",
    "allowRelaying",
    "catchAllAddress",
    "reportAddressUri",
    "subAddressing",
    "certificateManagement",
    "dkimManagement",
    "dnsManagement",
    "dnsZoneFile",
    "logo",
    "directoryId",
    "memberTenantId",
];
const ACCOUNT_PROPS: [&str; 18] = [
    "id",
    "@type",
    "name",
    "domainId",
    "emailAddress",
    "description",
    "aliases",
    "credentials",
    "roles",
    "permissions",
    "quotas",
    "usedDiskQuota",
    "createdAt",
    "memberGroupIds",
    "memberTenantId",
    "locale",
    "timeZone",
    "encryptionAtRest",
];

fn domain_json(d: &StDomain) -> Value {
    let zone = format!(
        "{name}. 3600 IN MX 10 mail.{name}.\n{name}. 3600 IN TXT \"v=spf1 mx -all\"\n_dmarc.{name}. 3600 IN TXT \"v=DMARC1; p=reject\"\n",
        name = d.name
    );
    let mut v = d.to_value();
    let extra = json!({
        "id": d.id, "createdAt": d.created_at, "allowRelaying": false, "catchAllAddress": null,
        "reportAddressUri": "mailto:postmaster", "subAddressing": {"@type": "Enabled"},
        "certificateManagement": {"@type": "Manual"}, "dkimManagement": {"@type": "Automatic"},
        "dnsManagement": {"@type": "Manual"}, "dnsZoneFile": zone, "logo": null, "directoryId": null,
        "memberTenantId": null,
    });
    if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
        m.extend(e);
    }
    v
}

fn account_json(inner: &Inner, a: &StAccount) -> Value {
    let mut v = a.to_value(true);
    v["id"] = json!(a.id);
    v["emailAddress"] = json!(inner.email_of(a));
    v["createdAt"] = json!(a.created_at);
    v["usedDiskQuota"] = json!(0);
    v
}

fn domain_get(inner: &Inner, ctx: &Ctx, args: &Map<String, Value>) -> Result<Value, MethodErr> {
    let ids = get_ids(ctx, args)?;
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    match ids {
        None => {
            for d in inner.domains.iter().take(MAX_OBJECTS_IN_GET) {
                list.push(select_properties(domain_json(d), args.get("properties"), &DOMAIN_PROPS)?);
            }
        }
        Some(ids) => {
            for id in ids {
                match inner.domain(&id) {
                    Some(d) => list.push(select_properties(domain_json(d), args.get("properties"), &DOMAIN_PROPS)?),
                    None => not_found.push(json!(id)),
                }
            }
        }
    }
    Ok(json!({"state": inner.state_string(), "list": list, "notFound": not_found}))
}

fn account_get(inner: &Inner, ctx: &Ctx, args: &Map<String, Value>) -> Result<Value, MethodErr> {
    let ids = get_ids(ctx, args)?;
    let known = &ACCOUNT_PROPS;
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    match ids {
        None => {
            for a in inner.accounts.iter().take(MAX_OBJECTS_IN_GET) {
                list.push(select_properties(account_json(inner, a), args.get("properties"), known)?);
            }
        }
        Some(ids) => {
            for id in ids {
                match inner.account(&id) {
                    Some(a) => list.push(select_properties(account_json(inner, a), args.get("properties"), known)?),
                    None => not_found.push(json!(id)),
                }
            }
        }
    }
    Ok(json!({"state": inner.state_string(), "list": list, "notFound": not_found}))
}

/// Words for the `text` filter: split on non-alphanumerics, lower-cased, 2+ characters.
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().count() >= 2).map(str::to_lowercase).collect()
}

fn text_matches(query: &str, haystack: &[String]) -> bool {
    let q = words(query);
    !q.is_empty() && q.iter().all(|w| haystack.contains(w))
}

/// The filter of a query as simple conditions; operators are unsupported.
fn filter_conditions(args: &Map<String, Value>, supported: &[&str]) -> Result<Vec<(String, Value)>, MethodErr> {
    match args.get("filter") {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Object(m)) => {
            if m.contains_key("operator") || m.contains_key("conditions") {
                return Err(merr("unsupportedFilter", "Filter operators are not supported"));
            }
            for k in m.keys() {
                if !supported.contains(&k.as_str()) {
                    return Err(merr("unsupportedFilter", format!("Property {k} is not indexed")));
                }
            }
            Ok(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        }
        Some(_) => Err(merr("invalidArguments", "filter must be an object")),
    }
}

/// Sorting, paging and the query response, over `(seq, name, id)` rows.
fn query_response(inner: &Inner, mut rows: Vec<(u64, String, String)>, args: &Map<String, Value>) -> Result<Value, MethodErr> {
    let sort: Vec<(String, bool)> = match args.get("sort") {
        None | Some(Value::Null) => vec![("id".into(), false)],
        Some(Value::Array(a)) => {
            let mut out = Vec::new();
            for c in a {
                let prop = c.get("property").and_then(Value::as_str).unwrap_or("");
                if prop != "id" && prop != "name" {
                    return Err(merr("unsupportedSort", format!("Property {prop} cannot be sorted on")));
                }
                out.push((prop.to_owned(), c.get("isAscending").and_then(Value::as_bool).unwrap_or(true)));
            }
            out
        }
        Some(_) => return Err(merr("invalidArguments", "sort must be an array")),
    };
    rows.sort_by(|a, b| {
        for (prop, asc) in &sort {
            let o = if prop == "id" { a.0.cmp(&b.0) } else { a.1.cmp(&b.1).then(a.0.cmp(&b.0)) };
            let o = if *asc { o } else { o.reverse() };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    let ids: Vec<String> = rows.into_iter().map(|r| r.2).collect();
    let total = ids.len();
    let int_arg = |k: &str| -> Result<Option<i64>, MethodErr> {
        match args.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| merr("invalidArguments", format!("{k} must be an integer"))),
        }
    };
    let start = match args.get("anchor").and_then(Value::as_str) {
        Some(anchor) => {
            let Some(i) = ids.iter().position(|id| id == anchor) else {
                return Err(merr("anchorNotFound", format!("Anchor {anchor} not found")));
            };
            (i as i64 + int_arg("anchorOffset")?.unwrap_or(0)).max(0) as usize
        }
        None => {
            let p = int_arg("position")?.unwrap_or(0);
            if p < 0 {
                (total as i64 + p).max(0) as usize
            } else {
                p as usize
            }
        }
    };
    let requested = int_arg("limit")?;
    if requested.is_some_and(|l| l < 0) {
        return Err(merr("invalidArguments", "limit must not be negative"));
    }
    let limit = requested.map_or(MAX_QUERY_RESULTS, |l| (l as usize).min(MAX_QUERY_RESULTS));
    let page: Vec<String> = ids.into_iter().skip(start).take(limit).collect();
    let mut out = json!({
        "queryState": inner.state_string(),
        "canCalculateChanges": false,
        "position": start.min(total),
        "ids": page,
    });
    if args.get("calculateTotal").and_then(Value::as_bool) == Some(true) {
        out["total"] = json!(total);
    }
    if requested.is_some_and(|l| l as usize > MAX_QUERY_RESULTS) {
        out["limit"] = json!(MAX_QUERY_RESULTS);
    }
    Ok(out)
}

fn domain_query(inner: &Inner, args: &Map<String, Value>) -> Result<Value, MethodErr> {
    let conds = filter_conditions(args, &["name", "aliases", "text", "memberTenantId"])?;
    let rows = inner
        .domains
        .iter()
        .filter(|d| {
            conds.iter().all(|(k, v)| match k.as_str() {
                "name" => v.as_str() == Some(d.name.as_str()),
                "aliases" => v.as_str().is_some_and(|a| d.aliases.iter().any(|x| x == a)),
                "text" => v.as_str().is_some_and(|t| {
                    let mut hay = words(&d.name);
                    hay.extend(d.description.as_deref().map(words).unwrap_or_default());
                    text_matches(t, &hay)
                }),
                _ => v.is_null(),
            })
        })
        .map(|d| (d.seq, d.name.clone(), d.id.clone()))
        .collect();
    query_response(inner, rows, args)
}

fn account_words(a: &StAccount) -> Vec<String> {
    let mut hay = words(&a.name);
    hay.extend(a.description.as_deref().map(words).unwrap_or_default());
    for x in a.aliases.values() {
        hay.extend(words(&x.name));
    }
    hay
}

fn account_query(inner: &Inner, args: &Map<String, Value>) -> Result<Value, MethodErr> {
    let conds = filter_conditions(args, &["@type", "name", "domainId", "memberGroupIds", "memberTenantId", "text"])?;
    let rows = inner
        .accounts
        .iter()
        .filter(|a| {
            conds.iter().all(|(k, v)| match k.as_str() {
                "@type" => v.as_str() == Some(a.kind.as_str()),
                "name" => v.as_str() == Some(a.name.as_str()),
                "domainId" => v.as_str() == Some(a.domain_id.as_str()),
                "memberGroupIds" => v.as_str().is_some_and(|g| a.member_group_ids.iter().any(|x| x == g)),
                "memberTenantId" => v == &a.member_tenant_id,
                _ => v.as_str().is_some_and(|t| text_matches(t, &account_words(a))),
            })
        })
        .map(|a| (a.seq, a.name.clone(), a.id.clone()))
        .collect();
    query_response(inner, rows, args)
}

fn principal_query(inner: &Inner, args: &Map<String, Value>) -> Result<Value, MethodErr> {
    let conds = filter_conditions(args, &["email", "type", "name", "text", "accountIds"])?;
    let rows = inner
        .accounts
        .iter()
        .filter(|a| {
            conds.iter().all(|(k, v)| match k.as_str() {
                "email" => v.as_str().is_some_and(|addr| {
                    let Some((local, domain)) = addr.rsplit_once('@') else { return false };
                    let Some(d) = inner.domain_by_name_or_alias(&domain.to_lowercase()) else { return false };
                    (a.name == local && a.domain_id == d.id)
                        || a.aliases.values().any(|x| x.enabled && x.name == local && x.domain_id == d.id)
                }),
                "type" => v.as_str() == Some(if a.kind == "User" { "individual" } else { "group" }),
                "name" => v.as_str() == Some(a.name.as_str()),
                "accountIds" => v.as_array().is_some_and(|ids| ids.iter().any(|i| i == &json!(a.id))),
                _ => v.as_str().is_some_and(|t| text_matches(t, &account_words(a))),
            })
        })
        .map(|a| (a.seq, a.name.clone(), a.id.clone()))
        .collect();
    let mut args = args.clone();
    if !args.contains_key("sort") {
        args.insert("sort".into(), json!([{"property": "id", "isAscending": true}]));
    }
    query_response(inner, rows, &args)
}

fn principal_get(inner: &Inner, ctx: &Ctx, args: &Map<String, Value>) -> Result<Value, MethodErr> {
    let ids = get_ids(ctx, args)?;
    let render = |a: &StAccount| {
        json!({"id": a.id, "type": if a.kind == "User" { "individual" } else { "group" },
            "name": a.description.clone().unwrap_or_else(|| a.name.clone()), "description": a.description,
            "email": inner.email_of(a), "timeZone": a.time_zone, "capabilities": {}, "accounts": null})
    };
    let (mut list, mut not_found) = (Vec::new(), Vec::new());
    match ids {
        None => list.extend(inner.accounts.iter().take(MAX_OBJECTS_IN_GET).map(render)),
        Some(ids) => {
            for id in ids {
                match inner.account(&id) {
                    Some(a) => list.push(render(a)),
                    None => not_found.push(json!(id)),
                }
            }
        }
    }
    Ok(json!({"state": inner.state_string(), "list": list, "notFound": not_found}))
}

/// The create / update / destroy arguments of a `/set`.
struct SetArgs {
    create: Map<String, Value>,
    update: Map<String, Value>,
    destroy: Vec<String>,
}

fn set_args(inner: &Inner, ctx: &Ctx, args: &Map<String, Value>) -> Result<SetArgs, MethodErr> {
    if let Some(s) = args.get("ifInState").and_then(Value::as_str) {
        if s != inner.state_string() {
            return Err(merr("stateMismatch", "The state does not match ifInState"));
        }
    }
    let obj = |k: &str| -> Result<Map<String, Value>, MethodErr> {
        match args.get(k) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(_) => Err(merr("invalidArguments", format!("{k} must be an object"))),
        }
    };
    let create = obj("create")?;
    let update = obj("update")?;
    let destroy = match args.get("destroy") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(|s| resolve_creation_id(ctx, s)).ok_or_else(|| merr("invalidArguments", "destroy ids must be strings")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(merr("invalidArguments", "destroy must be an array")),
    };
    if create.len() + update.len() + destroy.len() > MAX_OBJECTS_IN_SET {
        return Err(merr("requestTooLarge", format!("Too many objects, the maximum is {MAX_OBJECTS_IN_SET}")));
    }
    Ok(SetArgs { create, update, destroy })
}

fn set_response(old_state: String, inner: &mut Inner, parts: [(&str, Value); 6]) -> Value {
    let changed = parts.iter().any(|(k, v)| {
        matches!(*k, "created" | "updated" | "destroyed")
            && (v.as_object().is_some_and(|m| !m.is_empty()) || v.as_array().is_some_and(|a| !a.is_empty()))
    });
    if changed {
        inner.state += 1;
    }
    let mut out = json!({"oldState": old_state, "newState": inner.state_string()});
    for (k, v) in parts {
        let empty = v.as_object().is_some_and(Map::is_empty) || v.as_array().is_some_and(Vec::is_empty);
        if !empty {
            out[k] = v;
        }
    }
    out
}

/// Applies an update's PatchObject to `working`; the first segment of every
/// path must be a mutable property.
fn patch_object(working: &mut Value, patch: &Value, server_set: &[&str], object_lists: &[&str]) -> Result<(), SetErr> {
    let Some(patch) = patch.as_object() else {
        return Err(SetErr::new("invalidPatch", "The patch must be an object"));
    };
    for (path, value) in patch {
        let first = path.split('/').next().unwrap_or("");
        if server_set.contains(&first) {
            return Err(SetErr::invalid_patch(path, "Property is server-set"));
        }
        apply_patch(working, path, value.clone(), object_lists)?;
    }
    Ok(())
}

fn account_set(inner: &mut Inner, ctx: &mut Ctx, args: &Map<String, Value>) -> Result<Value, MethodErr> {
    let SetArgs { create, update, destroy } = set_args(inner, ctx, args)?;
    let old_state = inner.state_string();
    let (mut created, mut not_created) = (Map::new(), Map::new());
    for (cid, obj) in create {
        let id = inner.alloc_account_id();
        match parse_account(&obj, &id, None, inner) {
            Ok(mut acc) => {
                acc.seq = inner.seq();
                acc.created_at = iso_secs(now_ms());
                inner.accounts.push(acc);
                created.insert(cid.clone(), json!({"id": id}));
                ctx.created_ids.insert(cid, json!(id));
            }
            Err(SetErr(e)) => {
                not_created.insert(cid, e);
            }
        }
    }
    let (mut updated, mut not_updated) = (Map::new(), Map::new());
    for (raw_id, patch) in update {
        let id = resolve_creation_id(ctx, &raw_id);
        let Some(old) = inner.account(&id).cloned() else {
            not_updated.insert(raw_id, SetErr::new("notFound", format!("Account {id} not found")).0);
            continue;
        };
        let mut working = old.to_value(false);
        let result = patch_object(&mut working, &patch, &ACCOUNT_SERVER_SET, &["aliases", "credentials"])
            .and_then(|_| parse_account(&working, &id, Some(&old), inner));
        match result {
            Ok(acc) => {
                if let Some(slot) = inner.accounts.iter_mut().find(|a| a.id == id) {
                    *slot = acc;
                }
                updated.insert(id, Value::Null);
            }
            Err(SetErr(e)) => {
                not_updated.insert(id, e);
            }
        }
    }
    let (mut destroyed, mut not_destroyed) = (Vec::new(), Map::new());
    for id in destroy {
        let Some(acc) = inner.account(&id).cloned() else {
            not_destroyed.insert(id.clone(), SetErr::new("notFound", format!("Account {id} not found")).0);
            continue;
        };
        let members: Vec<Value> = inner
            .accounts
            .iter()
            .filter(|a| a.member_group_ids.contains(&acc.id))
            .map(|a| json!({"object": "Account", "id": a.id}))
            .collect();
        if !members.is_empty() {
            let mut e = SetErr::new("objectIsLinked", "The group still has members").0;
            e["linkedObjects"] = Value::Array(members);
            not_destroyed.insert(id, e);
            continue;
        }
        inner.accounts.retain(|a| a.id != id);
        destroyed.push(json!(id));
    }
    Ok(set_response(
        old_state,
        inner,
        [
            ("created", Value::Object(created)),
            ("updated", Value::Object(updated)),
            ("destroyed", Value::Array(destroyed)),
            ("notCreated", Value::Object(not_created)),
            ("notUpdated", Value::Object(not_updated)),
            ("notDestroyed", Value::Object(not_destroyed)),
        ],
    ))
}

fn domain_set(inner: &mut Inner, ctx: &mut Ctx, args: &Map<String, Value>) -> Result<Value, MethodErr> {
    let SetArgs { create, update, destroy } = set_args(inner, ctx, args)?;
    let old_state = inner.state_string();
    let owner_of = |inner: &Inner| {
        let names: Vec<(String, String)> = inner
            .domains
            .iter()
            .flat_map(|d| std::iter::once((d.name.clone(), d.id.clone())).chain(d.aliases.iter().map(|a| (a.clone(), d.id.clone()))))
            .collect();
        move |n: &str| names.iter().find(|(name, _)| name == n).map(|(_, id)| id.clone())
    };
    let (mut created, mut not_created) = (Map::new(), Map::new());
    for (cid, obj) in create {
        let id = inner.alloc_domain_id();
        let lookup = owner_of(inner);
        match parse_domain(&obj, &id, None, &lookup) {
            Ok(mut d) => {
                d.seq = inner.seq();
                d.created_at = iso_secs(now_ms());
                inner.domains.push(d);
                created.insert(cid.clone(), json!({"id": id}));
                ctx.created_ids.insert(cid, json!(id));
            }
            Err(SetErr(e)) => {
                not_created.insert(cid, e);
            }
        }
    }
    let (mut updated, mut not_updated) = (Map::new(), Map::new());
    for (raw_id, patch) in update {
        let id = resolve_creation_id(ctx, &raw_id);
        let Some(old) = inner.domain(&id).cloned() else {
            not_updated.insert(raw_id, SetErr::new("notFound", format!("Domain {id} not found")).0);
            continue;
        };
        let mut working = old.to_value();
        let lookup = owner_of(inner);
        let result = patch_object(&mut working, &patch, &["createdAt", "dnsZoneFile", "id"], &[])
            .and_then(|_| parse_domain(&working, &id, Some(&old), &lookup));
        match result {
            Ok(d) => {
                if let Some(slot) = inner.domains.iter_mut().find(|x| x.id == id) {
                    *slot = d;
                }
                updated.insert(id, Value::Null);
            }
            Err(SetErr(e)) => {
                not_updated.insert(id, e);
            }
        }
    }
    let (mut destroyed, mut not_destroyed) = (Vec::new(), Map::new());
    for id in destroy {
        if inner.domain(&id).is_none() {
            not_destroyed.insert(id.clone(), SetErr::new("notFound", format!("Domain {id} not found")).0);
            continue;
        }
        let linked: Vec<Value> = inner
            .accounts
            .iter()
            .filter(|a| a.domain_id == id || a.aliases.values().any(|x| x.domain_id == id))
            .map(|a| json!({"object": "Account", "id": a.id}))
            .collect();
        if !linked.is_empty() {
            let mut e = SetErr::new("objectIsLinked", "The domain is still in use").0;
            e["linkedObjects"] = Value::Array(linked);
            not_destroyed.insert(id, e);
            continue;
        }
        inner.domains.retain(|d| d.id != id);
        destroyed.push(json!(id));
    }
    Ok(set_response(
        old_state,
        inner,
        [
            ("created", Value::Object(created)),
            ("updated", Value::Object(updated)),
            ("destroyed", Value::Array(destroyed)),
            ("notCreated", Value::Object(not_created)),
            ("notUpdated", Value::Object(not_updated)),
            ("notDestroyed", Value::Object(not_destroyed)),
        ],
    ))
}
