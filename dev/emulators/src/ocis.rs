//! OCIS LibreGraph users API emulator (docs/upstreams.md, OCIS).
//!
//! Routes: `GET`/`POST /graph/v1.0/users`, `GET`/`PATCH`/`DELETE
//! /graph/v1.0/users/{id or username}`.
//!
//! - Auth (the proxy's): `Authorization: Bearer <token>` ([`demo::OCIS_TOKEN`]
//!   by default) or `Basic base64(admin:<token>)` (an app token of the admin).
//!   Both act as the admin user [`OCIS_ADMIN_ID`]. Anything else is `401` with
//!   an empty body, as the proxy answers.
//! - Errors use the graph envelope `{"error": {"code", "message",
//!   "innererror": {"date", "request-id"}}}`.
//! - Create answers `201`; a duplicate username (case-insensitive, as LDAP) is
//!   `409 nameAlreadyExists`; bodies are decoded strictly (unknown fields are
//!   `400`). New users get the `User` app role (`GRAPH_ASSIGN_DEFAULT_USER_ROLE`).
//! - `GET /users/{id}` matches the id or the username (not the mail) and drops
//!   `mail` unless [`OcisState::set_show_user_email`]`(true)` (the ≥ 6.x
//!   default). The admin's list returns full objects, mail included.
//! - `$search` is a case-insensitive substring match on username, mail and
//!   display name; `$orderby` takes `displayName`, `mail`,
//!   `onPremisesSamAccountName` (optionally `desc`); `$filter` supports only
//!   `memberOf/any(…/id eq …)`, `appRoleAssignments/any(…/appRoleId eq …)`,
//!   `userType eq '…'`, `startswith`/`contains(displayName,'…')` and `and`/`or`;
//!   an equality on another property is `501 unsupported filter`.
//!
//! Seeded with one user, the admin (`admin`, "Admin", `admin@dezky.test`): the
//! demo world's people have no OCIS account yet (their accounts are created
//! at first sign-in).

// Handlers answer an error `Response` as the `Err` of a `Result`: large by design.
#![allow(clippy::result_large_err)]

use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde_json::{json, Map, Value};

use crate::authentik::support::{authorization, decode_basic, iso_secs, json_reply, now_ms, parse_query, query_one, uuid_from};
use crate::demo;

/// The id of the seeded admin user (the token's owner).
pub const OCIS_ADMIN_ID: &str = "4c510ada-c86b-4815-8820-42cdf82c3d51";
pub const OCIS_ADMIN_USERNAME: &str = "admin";
/// OCIS's well-known app role ids.
pub const ROLE_ADMIN: &str = "71881883-1768-46bd-a24d-a356a2afdf7f";
pub const ROLE_SPACE_ADMIN: &str = "2aadd357-682c-406b-8874-293091995fdd";
pub const ROLE_USER: &str = "d7beeea8-8ff4-406b-8fb6-ab2dd81e6b11";
pub const ROLE_USER_LIGHT: &str = "38071a68-456a-4553-846a-fa67bf5596cc";
/// The resource id of app role assignments (the OCIS application).
const APP_ID: &str = "601ed9d0-8a2d-4f67-9f2a-7a1b3b9a4c5d";

/// A LibreGraph user as the emulator stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct OcisUser {
    pub id: String,
    /// `onPremisesSamAccountName`.
    pub username: String,
    pub display_name: String,
    pub mail: Option<String>,
    /// `Member` | `Guest`.
    pub user_type: String,
    /// The password from `passwordProfile` (kept in clear by the emulator).
    pub password: Option<String>,
    pub force_change_password: bool,
    /// Group ids (`memberOf`).
    pub member_of: Vec<String>,
    /// The app role id assigned to the user.
    pub app_role: Option<String>,
    /// Other optional properties as sent (`accountEnabled`, `givenName`,
    /// `surname`, `preferredLanguage`, `identities`, `externalID`).
    pub extra: Map<String, Value>,
}

struct Inner {
    token: String,
    users: Vec<OcisUser>,
    counter: u64,
    requests: u64,
    read_only: bool,
    show_email: bool,
}

impl Inner {
    fn find(&self, key: &str) -> Option<usize> {
        self.users.iter().position(|u| u.id == key || u.username.eq_ignore_ascii_case(key))
    }
}

/// State of the OCIS emulator. Clones share the same data.
#[derive(Clone)]
pub struct OcisState(Arc<Mutex<Inner>>);

impl Default for OcisState {
    fn default() -> Self {
        Self::demo()
    }
}

impl OcisState {
    /// The admin user only, accepting [`demo::OCIS_TOKEN`].
    pub fn demo() -> Self {
        Self::with_token(demo::OCIS_TOKEN)
    }

    /// The admin user only, accepting `token`.
    pub fn with_token(token: impl Into<String>) -> Self {
        let s = Self::empty(token);
        s.lock().users.push(OcisUser {
            id: OCIS_ADMIN_ID.to_owned(),
            username: OCIS_ADMIN_USERNAME.to_owned(),
            display_name: "Admin".to_owned(),
            mail: Some("admin@dezky.test".to_owned()),
            user_type: "Member".to_owned(),
            password: None,
            force_change_password: false,
            member_of: vec![],
            app_role: Some(ROLE_ADMIN.to_owned()),
            extra: Map::new(),
        });
        s
    }

    /// No users at all; accepting `token`.
    pub fn empty(token: impl Into<String>) -> Self {
        OcisState(Arc::new(Mutex::new(Inner {
            token: token.into(),
            users: vec![],
            counter: 0,
            requests: 0,
            read_only: false,
            show_email: false,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn token(&self) -> String {
        self.lock().token.clone()
    }
    pub fn set_token(&self, token: impl Into<String>) {
        self.lock().token = token.into();
    }
    /// A read-only user backend: create, update and delete answer `405 notAllowed`.
    pub fn set_read_only(&self, read_only: bool) {
        self.lock().read_only = read_only;
    }
    /// `OCIS_SHOW_USER_EMAIL_IN_RESULTS`: whether `GET /users/{id}` keeps `mail`.
    pub fn set_show_user_email(&self, show: bool) {
        self.lock().show_email = show;
    }

    /// Every user, in creation order.
    pub fn users(&self) -> Vec<OcisUser> {
        self.lock().users.clone()
    }
    /// By id, or by username (case-insensitive).
    pub fn user(&self, id_or_username: &str) -> Option<OcisUser> {
        let inner = self.lock();
        inner.find(id_or_username).map(|i| inner.users[i].clone())
    }
    pub fn user_by_mail(&self, mail: &str) -> Option<OcisUser> {
        self.lock().users.iter().find(|u| u.mail.as_deref() == Some(mail)).cloned()
    }
    /// Creates a user directly (as `POST /users` would) and returns it.
    pub fn add_user(&self, username: &str, display_name: &str, mail: Option<&str>) -> OcisUser {
        let mut inner = self.lock();
        inner.counter += 1;
        let user = OcisUser {
            id: uuid_from(&format!("ocis-user-{}", inner.counter)),
            username: username.to_owned(),
            display_name: display_name.to_owned(),
            mail: mail.map(str::to_owned),
            user_type: "Member".to_owned(),
            password: None,
            force_change_password: false,
            member_of: vec![],
            app_role: Some(ROLE_USER.to_owned()),
            extra: Map::new(),
        };
        inner.users.push(user.clone());
        user
    }
    pub fn remove_user(&self, id_or_username: &str) -> bool {
        let mut inner = self.lock();
        match inner.find(id_or_username) {
            Some(i) => {
                inner.users.remove(i);
                true
            }
            None => false,
        }
    }
    /// Runs `f` on the stored user; `None` if there is no such user.
    pub fn update_user<R>(&self, id_or_username: &str, f: impl FnOnce(&mut OcisUser) -> R) -> Option<R> {
        let mut inner = self.lock();
        let i = inner.find(id_or_username)?;
        Some(f(&mut inner.users[i]))
    }
}

/// The OCIS graph routes (`/graph/v1.0/users…`).
pub fn router(state: OcisState) -> Router {
    Router::new()
        .route("/graph/v1.0/users", any(users_collection))
        .route("/graph/v1.0/users/{id}", any(user_item))
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found\n").into_response() })
        .with_state(state)
}

type Reply = Result<Response, Response>;

fn graph_error(inner: &mut Inner, status: StatusCode, code: &str, message: &str) -> Response {
    inner.requests += 1;
    let body = json!({"error": {"code": code, "message": message, "innererror": {
        "date": iso_secs(now_ms()),
        "request-id": uuid_from(&format!("ocis-request-{}", inner.requests)),
    }}});
    json_reply(status, &body)
}

/// The proxy's authentication: `Bearer <token>` or `Basic admin:<token>`.
fn authenticated(inner: &Inner, headers: &HeaderMap) -> bool {
    match authorization(headers) {
        Some((scheme, cred)) if scheme.eq_ignore_ascii_case("bearer") => !cred.is_empty() && cred == inner.token,
        Some((scheme, cred)) if scheme.eq_ignore_ascii_case("basic") => {
            decode_basic(&cred).is_some_and(|(u, p)| u == OCIS_ADMIN_USERNAME && p == inner.token)
        }
        _ => false,
    }
}

fn handle(s: &OcisState, headers: &HeaderMap, f: impl FnOnce(&mut Inner) -> Reply) -> Response {
    let mut inner = s.lock();
    if !authenticated(&inner, headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    f(&mut inner).unwrap_or_else(|e| e)
}

/// The HTML5 e-mail pattern OCIS validates `mail` with.
fn is_html5_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    let local_ok = !local.is_empty() && local.chars().all(|c| c.is_ascii_alphanumeric() || ".!#$%&'*+/=?^_`{|}~-".contains(c));
    let domain_ok = domain.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    local_ok && domain_ok
}

/// `GRAPH_USERNAME_MATCH=default`: must not start with a digit; ASCII
/// letters, digits and `_ . @ - +` (e-mail style names allowed).
fn is_valid_username(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.@-+".contains(c))
        && s.len() <= 255
}

const USER_FIELDS: [&str; 19] = [
    "accountEnabled",
    "appRoleAssignments",
    "crossInstanceReference",
    "displayName",
    "drive",
    "drives",
    "externalID",
    "givenName",
    "id",
    "identities",
    "instances",
    "mail",
    "memberOf",
    "onPremisesSamAccountName",
    "passwordProfile",
    "preferredLanguage",
    "signInActivity",
    "surname",
    "userType",
];
const EXTRA_FIELDS: [&str; 6] = ["accountEnabled", "givenName", "surname", "preferredLanguage", "identities", "externalID"];

/// Strict JSON decoding of a `user`/`userUpdate` body.
fn decode_user_body(inner: &mut Inner, body: &Bytes) -> Result<Map<String, Value>, Response> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| graph_error(inner, StatusCode::BAD_REQUEST, "invalidRequest", &format!("invalid request body: {e}")))?;
    let Value::Object(m) = v else {
        return Err(graph_error(inner, StatusCode::BAD_REQUEST, "invalidRequest", "invalid request body: expected an object"));
    };
    if let Some(k) = m.keys().find(|k| !USER_FIELDS.contains(&k.as_str())) {
        let msg = format!("invalid request body: json: unknown field \"{k}\"");
        return Err(graph_error(inner, StatusCode::BAD_REQUEST, "invalidRequest", &msg));
    }
    let strings =
        ["displayName", "onPremisesSamAccountName", "mail", "userType", "givenName", "surname", "preferredLanguage", "externalID"];
    for k in strings {
        if m.get(k).is_some_and(|v| !v.is_string() && !v.is_null()) {
            let msg = format!("invalid request body: json: cannot unmarshal into field {k} of type string");
            return Err(graph_error(inner, StatusCode::BAD_REQUEST, "invalidRequest", &msg));
        }
    }
    if m.get("accountEnabled").is_some_and(|v| !v.is_boolean() && !v.is_null()) {
        return Err(graph_error(
            inner,
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            "invalid request body: json: cannot unmarshal into field accountEnabled of type bool",
        ));
    }
    if let Some(p) = m.get("passwordProfile") {
        let ok = p.is_null()
            || p.as_object().is_some_and(|o| {
                o.iter().all(|(k, v)| match k.as_str() {
                    "password" => v.is_string() || v.is_null(),
                    "forceChangePasswordNextSignIn" => v.is_boolean() || v.is_null(),
                    _ => false,
                })
            });
        if !ok {
            return Err(graph_error(inner, StatusCode::BAD_REQUEST, "invalidRequest", "invalid request body: invalid passwordProfile"));
        }
    }
    Ok(m)
}

fn str_field<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

fn user_json(u: &OcisUser, with_mail: bool) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(u.id));
    m.insert("displayName".into(), json!(u.display_name));
    m.insert("onPremisesSamAccountName".into(), json!(u.username));
    if with_mail {
        if let Some(mail) = &u.mail {
            m.insert("mail".into(), json!(mail));
        }
    }
    m.insert("userType".into(), json!(u.user_type));
    for (k, v) in &u.extra {
        m.insert(k.clone(), v.clone());
    }
    Value::Object(m)
}

fn expand(mut v: Value, u: &OcisUser, q: &[(String, String)]) -> Value {
    let Some(exp) = query_one(q, "$expand") else { return v };
    for e in exp.split(',').map(str::trim) {
        match e {
            "memberOf" => v["memberOf"] = Value::Array(u.member_of.iter().map(|g| json!({"id": g})).collect()),
            "appRoleAssignments" => {
                v["appRoleAssignments"] = Value::Array(
                    u.app_role
                        .iter()
                        .map(|r| {
                            json!({"id": uuid_from(&format!("assignment-{}-{r}", u.id)), "appRoleId": r,
                            "principalId": u.id, "principalType": "User", "resourceId": APP_ID})
                        })
                        .collect(),
                )
            }
            _ => {}
        }
    }
    v
}

fn select(v: Value, q: &[(String, String)]) -> Value {
    let Some(sel) = query_one(q, "$select").filter(|s| !s.is_empty()) else { return v };
    let wanted: Vec<&str> = sel.split(',').map(str::trim).collect();
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(k, _)| k == "id" || wanted.contains(&k.as_str())).collect()),
        other => other,
    }
}

// ---------------------------------------------------------------------------
// $filter

#[derive(Debug)]
enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    MemberOf(String),
    AppRole(String),
    UserType(String),
    StartsWith(String),
    Contains(String),
    /// `startswith`/`contains` on another property: matches nothing.
    Nothing,
}

enum FilterError {
    Invalid,
    Unsupported,
}

fn tokenize(s: &str) -> Result<Vec<String>, FilterError> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' || c == ')' || c == ',' {
            out.push(c.to_string());
            i += 1;
        } else if c == '\'' {
            let mut lit = String::from("'");
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(FilterError::Invalid),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        lit.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        lit.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(lit);
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !"(),'".contains(chars[i]) {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        }
    }
    Ok(out)
}

struct FilterParser {
    toks: Vec<String>,
    pos: usize,
}

impl FilterParser {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.pos).map(String::as_str)
    }
    fn next(&mut self) -> Result<String, FilterError> {
        let t = self.toks.get(self.pos).cloned().ok_or(FilterError::Invalid)?;
        self.pos += 1;
        Ok(t)
    }
    fn expect(&mut self, t: &str) -> Result<(), FilterError> {
        if self.next()? == t {
            Ok(())
        } else {
            Err(FilterError::Invalid)
        }
    }
    /// A value: a quoted literal, or a bare token (e.g. a uuid).
    fn value(&mut self) -> Result<String, FilterError> {
        let t = self.next()?;
        if t == "(" || t == ")" || t == "," {
            return Err(FilterError::Invalid);
        }
        Ok(t.strip_prefix('\'').map(str::to_owned).unwrap_or(t))
    }
    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.and()?;
        while self.peek().is_some_and(|t| t.eq_ignore_ascii_case("or")) {
            self.pos += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.primary()?;
        while self.peek().is_some_and(|t| t.eq_ignore_ascii_case("and")) {
            self.pos += 1;
            left = Filter::And(Box::new(left), Box::new(self.primary()?));
        }
        Ok(left)
    }
    fn primary(&mut self) -> Result<Filter, FilterError> {
        let t = self.next()?;
        if t == "(" {
            let e = self.or()?;
            self.expect(")")?;
            return Ok(e);
        }
        if self.peek() == Some("(") {
            self.pos += 1;
            return match t.as_str() {
                "startswith" | "contains" => {
                    let prop = self.next()?;
                    self.expect(",")?;
                    let v = self.value()?;
                    self.expect(")")?;
                    Ok(match (t.as_str(), prop.as_str()) {
                        ("startswith", "displayName") => Filter::StartsWith(v),
                        ("contains", "displayName") => Filter::Contains(v),
                        _ => Filter::Nothing,
                    })
                }
                "memberOf/any" | "appRoleAssignments/any" => {
                    let lambda = self.next()?;
                    let Some((var, path)) = lambda.split_once(':') else { return Err(FilterError::Invalid) };
                    let op = self.next()?;
                    let v = self.value()?;
                    self.expect(")")?;
                    if !op.eq_ignore_ascii_case("eq") {
                        return Err(FilterError::Unsupported);
                    }
                    match (t.as_str(), path.strip_prefix(&format!("{var}/"))) {
                        ("memberOf/any", Some("id")) => Ok(Filter::MemberOf(v)),
                        ("appRoleAssignments/any", Some("appRoleId")) => Ok(Filter::AppRole(v)),
                        _ => Err(FilterError::Unsupported),
                    }
                }
                _ => Err(FilterError::Unsupported),
            };
        }
        let op = self.next()?;
        let v = self.value()?;
        if !["eq", "ne", "gt", "ge", "lt", "le"].contains(&op.to_ascii_lowercase().as_str()) {
            return Err(FilterError::Invalid);
        }
        if t == "userType" && op.eq_ignore_ascii_case("eq") {
            return Ok(Filter::UserType(v));
        }
        Err(FilterError::Unsupported)
    }
}

fn parse_filter(s: &str) -> Result<Filter, FilterError> {
    let mut p = FilterParser { toks: tokenize(s)?, pos: 0 };
    let f = p.or()?;
    if p.pos != p.toks.len() {
        return Err(FilterError::Invalid);
    }
    Ok(f)
}

fn filter_matches(f: &Filter, u: &OcisUser) -> bool {
    match f {
        Filter::And(a, b) => filter_matches(a, u) && filter_matches(b, u),
        Filter::Or(a, b) => filter_matches(a, u) || filter_matches(b, u),
        Filter::MemberOf(g) => u.member_of.iter().any(|x| x == g),
        Filter::AppRole(r) => u.app_role.as_deref() == Some(r.as_str()),
        Filter::UserType(t) => u.user_type.eq_ignore_ascii_case(t),
        Filter::StartsWith(p) => u.display_name.to_lowercase().starts_with(&p.to_lowercase()),
        Filter::Contains(p) => u.display_name.to_lowercase().contains(&p.to_lowercase()),
        Filter::Nothing => false,
    }
}

// ---------------------------------------------------------------------------
// Handlers

async fn users_collection(State(s): State<OcisState>, method: Method, headers: HeaderMap, RawQuery(q): RawQuery, body: Bytes) -> Response {
    handle(&s, &headers, |inner| match method {
        Method::GET | Method::HEAD => list_users(inner, &parse_query(q.as_deref())),
        Method::POST => create_user(inner, &body),
        _ => Err(StatusCode::METHOD_NOT_ALLOWED.into_response()),
    })
}

fn list_users(inner: &mut Inner, q: &[(String, String)]) -> Reply {
    let mut users: Vec<OcisUser> = inner.users.clone();
    if let Some(term) = query_one(q, "$search") {
        let term = term.trim().trim_matches('"').to_lowercase();
        users.retain(|u| {
            u.username.to_lowercase().contains(&term)
                || u.display_name.to_lowercase().contains(&term)
                || u.mail.as_deref().is_some_and(|m| m.to_lowercase().contains(&term))
        });
    }
    if let Some(f) = query_one(q, "$filter").filter(|f| !f.trim().is_empty()) {
        match parse_filter(f) {
            Ok(filter) => users.retain(|u| filter_matches(&filter, u)),
            Err(FilterError::Invalid) => return Err(graph_error(inner, StatusCode::BAD_REQUEST, "generalException", "invalid filter")),
            Err(FilterError::Unsupported) => {
                return Err(graph_error(inner, StatusCode::NOT_IMPLEMENTED, "generalException", "unsupported filter"))
            }
        }
    }
    if let Some(order) = query_one(q, "$orderby").filter(|o| !o.trim().is_empty()) {
        let mut parts = order.split_whitespace();
        let field = parts.next().unwrap_or("");
        let desc = match parts.next() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => {
                return Err(graph_error(
                    inner,
                    StatusCode::BAD_REQUEST,
                    "invalidRequest",
                    &format!("we do not support <{order}> as a order parameter"),
                ))
            }
        };
        let key = |u: &OcisUser| -> String {
            match field {
                "displayName" => u.display_name.to_lowercase(),
                "mail" => u.mail.clone().unwrap_or_default().to_lowercase(),
                _ => u.username.to_lowercase(),
            }
        };
        if !["displayName", "mail", "onPremisesSamAccountName"].contains(&field) {
            return Err(graph_error(
                inner,
                StatusCode::BAD_REQUEST,
                "invalidRequest",
                &format!("we do not support <{field}> as a order parameter"),
            ));
        }
        users.sort_by_key(key);
        if desc {
            users.reverse();
        }
    }
    let value: Vec<Value> = users.iter().map(|u| select(expand(user_json(u, true), u, q), q)).collect();
    Ok(json_reply(StatusCode::OK, &json!({ "value": value })))
}

fn create_user(inner: &mut Inner, body: &Bytes) -> Reply {
    let m = decode_user_body(inner, body)?;
    let bad = |inner: &mut Inner, msg: &str| graph_error(inner, StatusCode::BAD_REQUEST, "invalidRequest", msg);
    if m.contains_key("id") {
        return Err(bad(inner, "user id is a read-only attribute"));
    }
    let Some(display_name) = str_field(&m, "displayName").filter(|s| !s.is_empty()) else {
        return Err(bad(inner, "missing required Attribute: 'displayName'"));
    };
    let Some(username) = str_field(&m, "onPremisesSamAccountName").filter(|s| !s.is_empty()) else {
        return Err(bad(inner, "missing required Attribute: 'onPremisesSamAccountName'"));
    };
    if !is_valid_username(username) {
        return Err(bad(inner, "Invalid username"));
    }
    let mail = str_field(&m, "mail").filter(|s| !s.is_empty());
    if let Some(mail) = mail {
        if !is_html5_email(mail) {
            return Err(bad(inner, "invalid email address"));
        }
    }
    let user_type = match str_field(&m, "userType") {
        None | Some("") => "Member",
        Some(t @ ("Member" | "Guest")) => t,
        Some(_) => return Err(bad(inner, "invalid userType attribute, valid options are 'Member' or 'Guest'")),
    };
    if inner.read_only {
        return Err(graph_error(inner, StatusCode::METHOD_NOT_ALLOWED, "notAllowed", "server is configured read-only"));
    }
    if inner.find(username).is_some() {
        return Err(graph_error(inner, StatusCode::CONFLICT, "nameAlreadyExists", "a user with that name already exists"));
    }
    inner.counter += 1;
    let user = OcisUser {
        id: uuid_from(&format!("ocis-user-{}", inner.counter)),
        username: username.to_owned(),
        display_name: display_name.to_owned(),
        mail: mail.map(str::to_owned),
        user_type: user_type.to_owned(),
        password: m.get("passwordProfile").and_then(|p| p.get("password")).and_then(Value::as_str).map(str::to_owned),
        force_change_password: m
            .get("passwordProfile")
            .and_then(|p| p.get("forceChangePasswordNextSignIn"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        member_of: vec![],
        app_role: Some(ROLE_USER.to_owned()),
        extra: EXTRA_FIELDS.iter().filter_map(|k| m.get(*k).filter(|v| !v.is_null()).map(|v| ((*k).to_owned(), v.clone()))).collect(),
    };
    let out = user_json(&user, true);
    inner.users.push(user);
    Ok(json_reply(StatusCode::CREATED, &out))
}

async fn user_item(
    State(s): State<OcisState>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    handle(&s, &headers, |inner| {
        let q = parse_query(q.as_deref());
        match method {
            Method::GET | Method::HEAD => {
                let Some(i) = inner.find(&id) else {
                    return Err(graph_error(inner, StatusCode::NOT_FOUND, "itemNotFound", "not found"));
                };
                let u = &inner.users[i];
                let v = select(expand(user_json(u, inner.show_email), u, &q), &q);
                Ok(json_reply(StatusCode::OK, &v))
            }
            Method::PATCH => update_user(inner, &id, &body),
            Method::DELETE => {
                let Some(i) = inner.find(&id) else {
                    return Err(graph_error(inner, StatusCode::NOT_FOUND, "itemNotFound", "not found"));
                };
                if inner.users[i].id == OCIS_ADMIN_ID {
                    return Err(graph_error(inner, StatusCode::FORBIDDEN, "notAllowed", "self deletion forbidden"));
                }
                if inner.read_only {
                    return Err(graph_error(inner, StatusCode::METHOD_NOT_ALLOWED, "notAllowed", "server is configured read-only"));
                }
                inner.users.remove(i);
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            _ => Err(StatusCode::METHOD_NOT_ALLOWED.into_response()),
        }
    })
}

fn update_user(inner: &mut Inner, id: &str, body: &Bytes) -> Reply {
    let Some(i) = inner.find(id) else {
        return Err(graph_error(inner, StatusCode::NOT_FOUND, "itemNotFound", "not found"));
    };
    let m = decode_user_body(inner, body)?;
    let bad = |inner: &mut Inner, msg: &str| graph_error(inner, StatusCode::BAD_REQUEST, "invalidRequest", msg);
    if m.get("id").is_some_and(|v| v != &json!(inner.users[i].id)) {
        return Err(bad(inner, "user id is a read-only attribute"));
    }
    if let Some(mail) = str_field(&m, "mail") {
        if !is_html5_email(mail) {
            return Err(bad(inner, &format!("'{mail}' is not a valid email address")));
        }
    }
    if let Some(name) = str_field(&m, "onPremisesSamAccountName") {
        if !is_valid_username(name) {
            return Err(bad(inner, "Invalid username"));
        }
        if inner.find(name).is_some_and(|j| j != i) {
            return Err(graph_error(inner, StatusCode::CONFLICT, "nameAlreadyExists", "a user with that name already exists"));
        }
    }
    if let Some(t) = str_field(&m, "userType") {
        if t != "Member" && t != "Guest" {
            return Err(bad(inner, "invalid userType attribute, valid options are 'Member' or 'Guest'"));
        }
    }
    if str_field(&m, "displayName") == Some("") {
        return Err(bad(inner, "displayName cannot be empty"));
    }
    if inner.read_only {
        return Err(graph_error(inner, StatusCode::METHOD_NOT_ALLOWED, "notAllowed", "server is configured read-only"));
    }
    let u = &mut inner.users[i];
    if let Some(v) = str_field(&m, "displayName") {
        u.display_name = v.to_owned();
    }
    if let Some(v) = str_field(&m, "onPremisesSamAccountName") {
        u.username = v.to_owned();
    }
    if let Some(v) = m.get("mail") {
        u.mail = v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    }
    if let Some(v) = str_field(&m, "userType") {
        u.user_type = v.to_owned();
    }
    if let Some(p) = m.get("passwordProfile").and_then(Value::as_object) {
        if let Some(pw) = p.get("password").and_then(Value::as_str) {
            u.password = Some(pw.to_owned());
        }
        if let Some(f) = p.get("forceChangePasswordNextSignIn").and_then(Value::as_bool) {
            u.force_change_password = f;
        }
    }
    for k in EXTRA_FIELDS {
        match m.get(k) {
            Some(Value::Null) => {
                u.extra.remove(k);
            }
            Some(v) => {
                u.extra.insert(k.to_owned(), v.clone());
            }
            None => {}
        }
    }
    Ok(json_reply(StatusCode::OK, &user_json(u, true)))
}
