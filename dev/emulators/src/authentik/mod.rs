//! Authentik admin API v3 emulator (docs/upstreams.md, Authentik).
//!
//! Speaks the subset of `/api/v3/` the functions use, with Authentik's wire
//! behaviour: DRF error bodies, `403` (never `401`) for failed token auth,
//! the `pagination` envelope with `0` (not `null`) for absent pages, trailing
//! slashes on every path, `PATCH` replacing `attributes` wholesale.
//!
//! Seeded from [`crate::demo`]: every demo user (username = e-mail, `uid` = the
//! demo `sub`, `pk` = the demo pk, attributes `{}`), the platform-admin,
//! partner-staff and tenant groups with the demo memberships, three sessions
//! (two for [`demo::ACME_MEMBER`], one for [`demo::ACME_ADMIN`]) and
//! authenticator devices: [`demo::ACME_OWNER`] has a confirmed TOTP device and
//! confirmed static recovery codes, [`demo::ACME_ADMIN`] an *unconfirmed* TOTP
//! device. Users created through the API get `pk` 113, 114, … and
//! `uid = sha256("<pk>-<install id>")`.
//!
//! The recovery flow is **not configured** by default (as on a fresh
//! Authentik brand): `recovery/` answers `400 {"non_field_errors": "No
//! recovery flow set."}` until [`AuthentikState::set_recovery_flow`]`(true)`.

// Handlers answer an error `Response` as the `Err` of a `Result`: large by design.
#![allow(clippy::result_large_err)]

pub(crate) mod support;
mod viewset;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde_json::{json, Map, Value};

use crate::demo;
use support::{
    authorization, is_email, is_uuid, iso_micros, json_reply, media_type, normalize_uuid, now_ms, parse_query, py_type, query_all,
    query_one, sha256_hex, uuid_from,
};
use viewset::{Action, Model};

/// The install id used for `uid = sha256("<pk>-<install id>")` unless changed.
pub const DEFAULT_INSTALL_ID: &str = "6f1c2d3e-0000-4000-8000-00000000a11c";
/// Slug of the recovery flow in generated links.
pub const RECOVERY_FLOW_SLUG: &str = "default-recovery-flow";
/// First pk handed to a user created through the API (demo pks are 101–112).
pub const FIRST_NEW_USER_PK: i64 = 113;
const DEFAULT_PAGE_SIZE: usize = 20;
const MAX_PAGE_SIZE: usize = 100;
const DEFAULT_AVATAR: &str = "/static/dist/assets/images/user_default.png";
const DAY_MS: i64 = 86_400_000;

/// An Authentik user as the emulator stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct AkUser {
    pub pk: i64,
    /// `sha256("<pk>-<install id>")` for API-created users; the demo `sub` for demo users.
    pub uid: String,
    pub uuid: String,
    pub username: String,
    pub name: String,
    pub email: String,
    pub is_active: bool,
    /// Direct group memberships (group uuids), in the order they were set.
    pub groups: Vec<String>,
    pub attributes: Value,
    pub path: String,
    /// `internal` | `external` | `service_account` | `internal_service_account`.
    pub user_type: String,
    /// The last password set through `set_password/` (the emulator keeps it in clear).
    pub password: Option<String>,
    pub date_joined: String,
    pub last_login: Option<String>,
    pub password_change_date: String,
    pub last_updated: String,
}

/// An Authentik group.
#[derive(Clone, Debug, PartialEq)]
pub struct AkGroup {
    /// The group uuid (`pk` on the wire).
    pub pk: String,
    pub name: String,
    pub is_superuser: bool,
    pub attributes: Value,
    pub parents: Vec<String>,
}

/// An authenticated session (`/core/authenticated_sessions/`).
#[derive(Clone, Debug, PartialEq)]
pub struct AkSession {
    pub uuid: String,
    /// The user's pk.
    pub user: i64,
    pub last_ip: String,
    pub last_user_agent: String,
    pub last_used: String,
    pub expires: String,
}

/// Kinds of authenticator devices `/authenticators/admin/all/` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    Totp,
    WebAuthn,
    /// Static recovery codes.
    Static,
    Duo,
    Sms,
    Email,
}

impl DeviceKind {
    /// `<app_label>.<Model>`, the device's `type` on the wire.
    pub fn type_name(self) -> &'static str {
        match self {
            DeviceKind::Totp => "authentik_stages_authenticator_totp.TOTPDevice",
            DeviceKind::WebAuthn => "authentik_stages_authenticator_webauthn.WebAuthnDevice",
            DeviceKind::Static => "authentik_stages_authenticator_static.StaticDevice",
            DeviceKind::Duo => "authentik_stages_authenticator_duo.DuoDevice",
            DeviceKind::Sms => "authentik_stages_authenticator_sms.SMSDevice",
            DeviceKind::Email => "authentik_stages_authenticator_email.EmailDevice",
        }
    }
    fn verbose(self) -> (&'static str, &'static str) {
        match self {
            DeviceKind::Totp => ("TOTP Device", "TOTP Devices"),
            DeviceKind::WebAuthn => ("WebAuthn Device", "WebAuthn Devices"),
            DeviceKind::Static => ("Static Device", "Static Devices"),
            DeviceKind::Duo => ("Duo Device", "Duo Devices"),
            DeviceKind::Sms => ("SMS Device", "SMS Devices"),
            DeviceKind::Email => ("Email Device", "Email Devices"),
        }
    }
}

/// An authenticator device of a user.
#[derive(Clone, Debug, PartialEq)]
pub struct AkDevice {
    /// Device pk (a string on the wire).
    pub pk: String,
    pub user: i64,
    pub name: String,
    pub kind: DeviceKind,
    pub confirmed: bool,
    pub created: String,
}

struct Inner {
    token: String,
    install_id: String,
    recovery_flow: bool,
    users: BTreeMap<i64, AkUser>,
    groups: Vec<AkGroup>,
    sessions: Vec<AkSession>,
    devices: Vec<AkDevice>,
    /// User pk → the current recovery link (a new one replaces the old).
    recovery_links: BTreeMap<i64, String>,
    next_pk: i64,
    /// Feeds deterministic ids (session uuids, group uuids, device pks, tokens).
    counter: u64,
}

impl Inner {
    /// A new user with the next pk and the defaults Authentik gives one
    /// (active, internal, under `users`), not yet stored.
    fn new_user(&mut self) -> AkUser {
        let pk = self.next_pk;
        self.next_pk += 1;
        let now = iso_micros(now_ms());
        AkUser {
            pk,
            uid: sha256_hex(&format!("{pk}-{}", self.install_id)),
            uuid: uuid_from(&format!("authentik-user-{pk}")),
            username: String::new(),
            name: String::new(),
            email: String::new(),
            is_active: true,
            groups: vec![],
            attributes: json!({}),
            path: "users".to_owned(),
            user_type: "internal".to_owned(),
            password: None,
            date_joined: now.clone(),
            last_login: None,
            password_change_date: now.clone(),
            last_updated: now,
        }
    }

    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }
    fn group(&self, uuid: &str) -> Option<&AkGroup> {
        self.groups.iter().find(|g| g.pk == uuid)
    }
    fn members(&self, group: &str) -> Vec<i64> {
        self.users.values().filter(|u| u.groups.iter().any(|g| g == group)).map(|u| u.pk).collect()
    }
}

/// State of the Authentik emulator. Clones share the same data.
#[derive(Clone)]
pub struct AuthentikState(Arc<Mutex<Inner>>);

impl Default for AuthentikState {
    fn default() -> Self {
        Self::demo()
    }
}

impl AuthentikState {
    /// Seeded from [`crate::demo`], accepting [`demo::AUTHENTIK_TOKEN`].
    pub fn demo() -> Self {
        Self::with_token(demo::AUTHENTIK_TOKEN)
    }

    /// Seeded from [`crate::demo`], accepting `token`.
    pub fn with_token(token: impl Into<String>) -> Self {
        let s = Self::empty(token);
        s.seed_demo();
        s
    }

    /// No users, groups, sessions or devices; accepting `token`.
    pub fn empty(token: impl Into<String>) -> Self {
        AuthentikState(Arc::new(Mutex::new(Inner {
            token: token.into(),
            install_id: DEFAULT_INSTALL_ID.to_owned(),
            recovery_flow: false,
            users: BTreeMap::new(),
            groups: Vec::new(),
            sessions: Vec::new(),
            devices: Vec::new(),
            recovery_links: BTreeMap::new(),
            next_pk: FIRST_NEW_USER_PK,
            counter: 0,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn seed_demo(&self) {
        let mut groups = vec![
            AkGroup {
                pk: demo::PLATFORM_ADMIN_GROUP_UUID.to_owned(),
                name: demo::PLATFORM_ADMIN_GROUP.to_owned(),
                is_superuser: false,
                attributes: json!({}),
                parents: vec![],
            },
            AkGroup {
                pk: demo::PARTNER_STAFF_GROUP_UUID.to_owned(),
                name: demo::PARTNER_STAFF_GROUP.to_owned(),
                is_superuser: false,
                attributes: json!({}),
                parents: vec![],
            },
        ];
        for t in demo::TENANTS.iter() {
            if let Some(g) = t.group_uuid {
                groups.push(AkGroup {
                    pk: g.to_owned(),
                    name: format!("{}{}", demo::TENANT_GROUP_PREFIX, t.slug),
                    is_superuser: false,
                    attributes: json!({"tenantSlug": t.slug}),
                    parents: vec![],
                });
            }
        }
        let mut users = BTreeMap::new();
        for (i, u) in demo::USERS.iter().enumerate() {
            let mut member_of = Vec::new();
            if u.platform_admin {
                member_of.push(demo::PLATFORM_ADMIN_GROUP_UUID.to_owned());
            }
            if u.partner.is_some() {
                member_of.push(demo::PARTNER_STAFF_GROUP_UUID.to_owned());
            }
            for (t, _) in u.tenants {
                if let Some(g) = t.group_uuid {
                    member_of.push(g.to_owned());
                }
            }
            let joined = iso_micros(demo::CREATED_AT_MS + i as i64 * DAY_MS);
            users.insert(
                u.pk,
                AkUser {
                    pk: u.pk,
                    uid: u.sub.to_owned(),
                    uuid: uuid_from(&format!("authentik-user-{}", u.pk)),
                    username: u.email.to_owned(),
                    name: u.name.to_owned(),
                    email: u.email.to_owned(),
                    is_active: u.active,
                    groups: member_of,
                    attributes: json!({}),
                    path: "users".to_owned(),
                    user_type: "internal".to_owned(),
                    password: None,
                    date_joined: joined.clone(),
                    last_login: None,
                    password_change_date: joined.clone(),
                    last_updated: joined,
                },
            );
        }
        {
            let mut inner = self.lock();
            inner.groups = groups;
            inner.users = users;
            inner.next_pk = inner.users.keys().max().map_or(FIRST_NEW_USER_PK, |m| (m + 1).max(FIRST_NEW_USER_PK));
        }
        self.add_session_with(demo::ACME_MEMBER.pk, "192.0.2.10", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Firefox/128.0");
        self.add_session_with(demo::ACME_MEMBER.pk, "198.51.100.7", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1");
        self.add_session_with(demo::ACME_ADMIN.pk, "192.0.2.20", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0");
        self.add_device(demo::ACME_OWNER.pk, DeviceKind::Totp, true);
        self.add_device(demo::ACME_OWNER.pk, DeviceKind::Static, true);
        self.add_device(demo::ACME_ADMIN.pk, DeviceKind::Totp, false);
    }

    /// The API token the emulator accepts.
    pub fn token(&self) -> String {
        self.lock().token.clone()
    }
    pub fn set_token(&self, token: impl Into<String>) {
        self.lock().token = token.into();
    }
    pub fn install_id(&self) -> String {
        self.lock().install_id.clone()
    }
    /// Changes the install id used for the `uid` of users created from now on.
    pub fn set_install_id(&self, id: impl Into<String>) {
        self.lock().install_id = id.into();
    }
    /// Whether the brand has a recovery flow (`recovery/` works).
    pub fn recovery_flow(&self) -> bool {
        self.lock().recovery_flow
    }
    pub fn set_recovery_flow(&self, configured: bool) {
        self.lock().recovery_flow = configured;
    }

    /// Every user, by pk.
    pub fn users(&self) -> Vec<AkUser> {
        self.lock().users.values().cloned().collect()
    }
    pub fn user(&self, pk: i64) -> Option<AkUser> {
        self.lock().users.get(&pk).cloned()
    }
    /// The first user (lowest pk) whose e-mail is exactly `email`.
    pub fn user_by_email(&self, email: &str) -> Option<AkUser> {
        self.lock().users.values().find(|u| u.email == email).cloned()
    }
    pub fn user_by_username(&self, username: &str) -> Option<AkUser> {
        self.lock().users.values().find(|u| u.username == username).cloned()
    }
    pub fn user_by_uid(&self, uid: &str) -> Option<AkUser> {
        self.lock().users.values().find(|u| u.uid == uid).cloned()
    }
    /// Creates a user directly (as the API would, without validation) and returns it.
    pub fn add_user(&self, username: &str, name: &str, email: &str) -> AkUser {
        let mut inner = self.lock();
        let mut user = inner.new_user();
        user.username = username.to_owned();
        user.name = name.to_owned();
        user.email = email.to_owned();
        inner.users.insert(user.pk, user.clone());
        user
    }
    /// Runs `f` on the stored user; `None` if there is no such user.
    pub fn update_user<R>(&self, pk: i64, f: impl FnOnce(&mut AkUser) -> R) -> Option<R> {
        self.lock().users.get_mut(&pk).map(f)
    }
    /// Deletes a user with its sessions, devices and memberships.
    pub fn remove_user(&self, pk: i64) -> bool {
        remove_user(&mut self.lock(), pk)
    }

    pub fn groups(&self) -> Vec<AkGroup> {
        let mut g = self.lock().groups.clone();
        g.sort_by(|a, b| a.name.cmp(&b.name));
        g
    }
    pub fn group(&self, uuid: &str) -> Option<AkGroup> {
        self.lock().group(uuid).cloned()
    }
    pub fn group_by_name(&self, name: &str) -> Option<AkGroup> {
        self.lock().groups.iter().find(|g| g.name == name).cloned()
    }
    /// Creates a group directly and returns it.
    pub fn add_group(&self, name: &str) -> AkGroup {
        let mut inner = self.lock();
        let n = inner.next();
        let g = AkGroup {
            pk: uuid_from(&format!("authentik-group-{n}")),
            name: name.to_owned(),
            is_superuser: false,
            attributes: json!({}),
            parents: vec![],
        };
        inner.groups.push(g.clone());
        g
    }
    /// Pks of the group's direct members, ascending.
    pub fn members_of(&self, group_uuid: &str) -> Vec<i64> {
        self.lock().members(group_uuid)
    }
    /// Names of the user's direct groups (what the `groups` claim carries).
    pub fn group_names_of(&self, pk: i64) -> Vec<String> {
        let inner = self.lock();
        let Some(u) = inner.users.get(&pk) else { return vec![] };
        u.groups.iter().filter_map(|g| inner.group(g).map(|g| g.name.clone())).collect()
    }

    pub fn sessions(&self) -> Vec<AkSession> {
        self.lock().sessions.clone()
    }
    pub fn sessions_of(&self, pk: i64) -> Vec<AkSession> {
        self.lock().sessions.iter().filter(|s| s.user == pk).cloned().collect()
    }
    /// Adds a session for the user and returns its uuid.
    pub fn add_session(&self, pk: i64) -> String {
        self.add_session_with(pk, "192.0.2.99", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
    }
    fn add_session_with(&self, pk: i64, ip: &str, agent: &str) -> String {
        let mut inner = self.lock();
        let n = inner.next();
        let uuid = uuid_from(&format!("authentik-session-{n}"));
        let used = demo::CREATED_AT_MS + 30 * DAY_MS + n as i64 * 3_600_000;
        inner.sessions.push(AkSession {
            uuid: uuid.clone(),
            user: pk,
            last_ip: ip.to_owned(),
            last_user_agent: agent.to_owned(),
            last_used: iso_micros(used),
            expires: iso_micros(used + DAY_MS),
        });
        uuid
    }

    pub fn devices(&self) -> Vec<AkDevice> {
        self.lock().devices.clone()
    }
    pub fn devices_of(&self, pk: i64) -> Vec<AkDevice> {
        self.lock().devices.iter().filter(|d| d.user == pk).cloned().collect()
    }
    /// Adds an authenticator device for the user and returns its pk.
    pub fn add_device(&self, pk: i64, kind: DeviceKind, confirmed: bool) -> String {
        let mut inner = self.lock();
        let n = inner.next();
        let dpk = n.to_string();
        let name = match kind {
            DeviceKind::Static => "Recovery codes".to_owned(),
            _ => format!("{} {n}", kind.verbose().0),
        };
        inner.devices.push(AkDevice {
            pk: dpk.clone(),
            user: pk,
            name,
            kind,
            confirmed,
            created: iso_micros(demo::CREATED_AT_MS + 7 * DAY_MS),
        });
        dpk
    }

    /// The password last set through `set_password/`.
    pub fn password_of(&self, pk: i64) -> Option<String> {
        self.lock().users.get(&pk).and_then(|u| u.password.clone())
    }
    /// The user's current recovery link, if one was generated.
    pub fn recovery_link_of(&self, pk: i64) -> Option<String> {
        self.lock().recovery_links.get(&pk).cloned()
    }
}

fn remove_user(inner: &mut Inner, pk: i64) -> bool {
    if inner.users.remove(&pk).is_none() {
        return false;
    }
    inner.sessions.retain(|s| s.user != pk);
    inner.devices.retain(|d| d.user != pk);
    inner.recovery_links.remove(&pk);
    true
}

/// The Authentik API routes (`/api/v3/...`). Unknown paths under `/api/v3/`
/// get `404 {"detail":"Not found."}`; the router has no global fallback, so it
/// merges with other routers (e.g. the OIDC issuer's) on the same port.
pub fn router(state: AuthentikState) -> Router {
    let api = Router::new()
        .route("/core/users/", any(viewset::collection::<Users>))
        .route("/core/users/{id}/", any(viewset::item::<Users>))
        .route("/core/users/{id}/set_password/", any(viewset::action::<SetPassword>))
        .route("/core/users/{id}/recovery/", any(viewset::action::<Recovery>))
        .route("/core/groups/", any(viewset::collection::<Groups>))
        .route("/core/groups/{id}/", any(viewset::item::<Groups>))
        .route("/core/groups/{id}/add_user/", any(viewset::action::<AddUser>))
        .route("/core/groups/{id}/remove_user/", any(viewset::action::<RemoveUser>))
        .route("/core/authenticated_sessions/", any(sessions_collection))
        .route("/core/authenticated_sessions/bulk_delete/", any(sessions_bulk_delete))
        .route("/core/authenticated_sessions/{id}/", any(session_item))
        .route("/authenticators/admin/all/", any(devices_all))
        .fallback(|| async { detail(StatusCode::NOT_FOUND, "Not found.") })
        .with_state(state);
    Router::new().nest("/api/v3", api)
}

// ---------------------------------------------------------------------------
// Plumbing: auth, bodies, errors

type Reply = Result<Response, Response>;

fn detail(status: StatusCode, msg: &str) -> Response {
    json_reply(status, &json!({ "detail": msg }))
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn ok(body: Value) -> Reply {
    Ok(json_reply(StatusCode::OK, &body))
}

fn bad_request(body: Value) -> Response {
    json_reply(StatusCode::BAD_REQUEST, &body)
}

fn field_error(field: &str, msg: &str) -> Response {
    bad_request(json!({ field: [msg] }))
}

fn method_not_allowed(method: &Method, allow: &'static str) -> Response {
    let mut r = detail(StatusCode::METHOD_NOT_ALLOWED, &format!("Method \"{method}\" not allowed."));
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

fn not_found_model(model: &str) -> Response {
    detail(StatusCode::NOT_FOUND, &format!("No {model} matches the given query."))
}

/// DRF `TokenAuthentication` as Authentik configures it: failures are 403.
fn check_auth(inner: &Inner, headers: &HeaderMap) -> Result<(), Response> {
    match authorization(headers) {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => {
            if !key.is_empty() && key == inner.token {
                Ok(())
            } else {
                Err(detail(StatusCode::FORBIDDEN, "Token invalid/expired"))
            }
        }
        _ => Err(detail(StatusCode::FORBIDDEN, "Authentication credentials were not provided.")),
    }
}

/// Runs `f` with the lock held, after authenticating the request.
fn handle(s: &AuthentikState, headers: &HeaderMap, f: impl FnOnce(&mut Inner) -> Reply) -> Response {
    let mut inner = s.lock();
    if let Err(e) = check_auth(&inner, headers) {
        return e;
    }
    f(&mut inner).unwrap_or_else(|e| e)
}

/// `request.data` as DRF parses it: JSON only; no body or no content type
/// means empty data.
fn body_json(headers: &HeaderMap, body: &Bytes) -> Result<Value, Response> {
    let Some(mt) = media_type(headers) else { return Ok(json!({})) };
    if body.is_empty() {
        return Ok(json!({}));
    }
    if mt != "application/json" && !(mt.starts_with("application/") && mt.ends_with("+json")) {
        let raw = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        return Err(detail(StatusCode::UNSUPPORTED_MEDIA_TYPE, &format!("Unsupported media type \"{raw}\" in request.")));
    }
    serde_json::from_slice(body).map_err(|e| bad_request(json!({"detail": format!("JSON parse error - {e}")})))
}

/// The serializer's top-level check: data must be an object.
fn as_object(v: &Value) -> Result<&Map<String, Value>, Response> {
    v.as_object().ok_or_else(|| {
        bad_request(json!({"non_field_errors": [format!(
            "Invalid data. Expected a dictionary, but got {}.", py_type(v)
        )]}))
    })
}

/// Collected field errors of one serializer run.
#[derive(Default)]
struct Errors(Map<String, Value>);

impl Errors {
    fn add(&mut self, field: &str, msg: impl Into<String>) {
        let entry = self.0.entry(field.to_owned()).or_insert_with(|| json!([]));
        if let Some(a) = entry.as_array_mut() {
            a.push(Value::String(msg.into()));
        }
    }
    fn into_result(self) -> Result<(), Response> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(bad_request(Value::Object(self.0)))
        }
    }
}

/// DRF `CharField` (trim_whitespace on): `Ok(None)` when absent.
fn char_field(data: &Map<String, Value>, field: &str, errors: &mut Errors, allow_blank: bool, max_len: Option<usize>) -> Option<String> {
    let v = data.get(field)?;
    let s = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Null => {
            errors.add(field, "This field may not be null.");
            return None;
        }
        _ => {
            errors.add(field, "Not a valid string.");
            return None;
        }
    };
    if s.is_empty() && !allow_blank {
        errors.add(field, "This field may not be blank.");
        return None;
    }
    if let Some(max) = max_len {
        if s.chars().count() > max {
            errors.add(field, format!("Ensure this field has no more than {max} characters."));
            return None;
        }
    }
    Some(s)
}

/// DRF `BooleanField`.
fn bool_field(data: &Map<String, Value>, field: &str, errors: &mut Errors) -> Option<bool> {
    let v = data.get(field)?;
    let b = match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) if n.as_i64() == Some(1) => Some(true),
        Value::Number(n) if n.as_i64() == Some(0) => Some(false),
        Value::String(s) => match s.as_str() {
            "true" | "True" | "TRUE" | "1" | "yes" | "on" | "y" | "t" => Some(true),
            "false" | "False" | "FALSE" | "0" | "no" | "off" | "n" | "f" => Some(false),
            _ => None,
        },
        _ => None,
    };
    if b.is_none() {
        errors.add(field, "Must be a valid boolean.");
    }
    b
}

/// A JSON-object field (`attributes`).
fn dict_field(data: &Map<String, Value>, field: &str, errors: &mut Errors) -> Option<Value> {
    let v = data.get(field)?;
    if v.is_object() {
        Some(v.clone())
    } else {
        errors.add(field, format!("Expected a dictionary of items but got type \"{}\".", py_type(v)));
        None
    }
}

/// A list field of uuid primary keys that must exist (`exists` decides).
fn uuid_list_field(data: &Map<String, Value>, field: &str, errors: &mut Errors, exists: impl Fn(&str) -> bool) -> Option<Vec<String>> {
    let v = data.get(field)?;
    let Some(items) = v.as_array() else {
        errors.add(field, format!("Expected a list of items but got type \"{}\".", py_type(v)));
        return None;
    };
    let mut out = Vec::new();
    for item in items {
        let raw = match item {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if is_uuid(&raw) && exists(&normalize_uuid(&raw)) {
            let id = normalize_uuid(&raw);
            if !out.contains(&id) {
                out.push(id);
            }
        } else {
            errors.add(field, format!("Invalid pk \"{raw}\" - object does not exist."));
            return None;
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------
// Rendering

fn num_pk(uuid: &str) -> i64 {
    let hex: String = uuid.chars().filter(|c| c.is_ascii_hexdigit()).take(8).collect();
    i64::from_str_radix(&hex, 16).unwrap_or(0) % (1 << 31)
}

fn partial_group(g: &AkGroup) -> Value {
    json!({"pk": g.pk, "num_pk": num_pk(&g.pk), "name": g.name, "is_superuser": g.is_superuser,
        "attributes": g.attributes})
}

fn user_json(inner: &Inner, u: &AkUser, include_groups: bool, include_roles: bool) -> Value {
    let groups: Vec<&AkGroup> = u.groups.iter().filter_map(|g| inner.group(g)).collect();
    json!({
        "pk": u.pk,
        "username": u.username,
        "name": u.name,
        "is_active": u.is_active,
        "last_login": u.last_login,
        "date_joined": u.date_joined,
        "is_superuser": groups.iter().any(|g| g.is_superuser),
        "groups": u.groups,
        "groups_obj": if include_groups { Value::Array(groups.iter().map(|g| partial_group(g)).collect()) } else { Value::Null },
        "roles": [],
        "roles_obj": if include_roles { json!([]) } else { Value::Null },
        "email": u.email,
        "avatar": DEFAULT_AVATAR,
        "attributes": u.attributes,
        "uid": u.uid,
        "path": u.path,
        "type": u.user_type,
        "uuid": u.uuid,
        "password_change_date": u.password_change_date,
        "last_updated": u.last_updated,
    })
}

fn partial_user(u: &AkUser) -> Value {
    json!({"pk": u.pk, "username": u.username, "name": u.name, "is_active": u.is_active,
        "last_login": u.last_login, "email": u.email, "attributes": u.attributes, "uid": u.uid,
        "path": u.path})
}

fn group_json(inner: &Inner, g: &AkGroup, include_users: bool, include_children: bool, include_parents: bool) -> Value {
    let members = inner.members(&g.pk);
    let children: Vec<&AkGroup> = inner.groups.iter().filter(|c| c.parents.contains(&g.pk)).collect();
    let related = |x: &AkGroup| json!({"pk": x.pk, "name": x.name});
    json!({
        "pk": g.pk,
        "num_pk": num_pk(&g.pk),
        "name": g.name,
        "is_superuser": g.is_superuser,
        "parents": g.parents,
        "parents_obj": if include_parents {
            Value::Array(g.parents.iter().filter_map(|p| inner.group(p)).map(related).collect())
        } else { Value::Null },
        "users": members,
        "users_obj": if include_users {
            Value::Array(members.iter().filter_map(|pk| inner.users.get(pk)).map(partial_user).collect())
        } else { Value::Null },
        "attributes": g.attributes,
        "roles": [],
        "roles_obj": [],
        "inherited_roles_obj": Value::Null,
        "children": children.iter().map(|c| c.pk.clone()).collect::<Vec<_>>(),
        "children_obj": if include_children { Value::Array(children.iter().map(|c| related(c)).collect()) } else { Value::Null },
    })
}

/// A crude parse of the user agent into the shape Authentik reports.
fn user_agent_json(agent: &str) -> Value {
    let (browser, major) = ["Firefox", "Chrome", "Safari"]
        .iter()
        .find_map(|b| {
            agent.split(' ').find(|t| t.starts_with(&format!("{b}/"))).map(|t| {
                let ver = t.split('/').nth(1).unwrap_or("");
                (*b, ver.split('.').next().unwrap_or("").to_owned())
            })
        })
        .unwrap_or(("Other", String::new()));
    let os = if agent.contains("iPhone") {
        "iOS"
    } else if agent.contains("Mac OS X") {
        "Mac OS X"
    } else if agent.contains("Windows") {
        "Windows"
    } else if agent.contains("Linux") {
        "Linux"
    } else {
        "Other"
    };
    let device = if agent.contains("iPhone") { "iPhone" } else { "Other" };
    json!({
        "device": {"brand": if device == "iPhone" { json!("Apple") } else { Value::Null }, "family": device, "model": if device == "iPhone" { json!("iPhone") } else { Value::Null }},
        "os": {"family": os, "major": Value::Null, "minor": Value::Null, "patch": Value::Null, "patch_minor": Value::Null},
        "user_agent": {"family": browser, "major": major, "minor": "0", "patch": ""},
        "string": agent,
    })
}

fn session_json(s: &AkSession) -> Value {
    json!({
        "uuid": s.uuid,
        "current": false,
        "user_agent": user_agent_json(&s.last_user_agent),
        "geo_ip": Value::Null,
        "asn": Value::Null,
        "user": s.user,
        "last_ip": s.last_ip,
        "last_user_agent": s.last_user_agent,
        "last_used": s.last_used,
        "expires": s.expires,
    })
}

fn device_json(d: &AkDevice) -> Value {
    let (verbose, plural) = d.kind.verbose();
    json!({
        "verbose_name": verbose,
        "verbose_name_plural": plural,
        "meta_model_name": d.kind.type_name().to_ascii_lowercase(),
        "pk": d.pk,
        "name": d.name,
        "type": d.kind.type_name(),
        "confirmed": d.confirmed,
        "created": d.created,
        "last_updated": d.created,
        "last_used": Value::Null,
        "extra_description": Value::Null,
        "external_id": Value::Null,
    })
}

// ---------------------------------------------------------------------------
// Lists: filters, ordering, pagination

/// django-filter's boolean parsing: anything else means "no filter".
fn query_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "True" | "1" => Some(true),
        "false" | "False" | "0" => Some(false),
        _ => None,
    }
}

/// `include_*` switches (DRF `BooleanField` on a query serializer).
fn include_flag(q: &[(String, String)], name: &str, default: bool) -> bool {
    query_one(q, name).and_then(query_bool).unwrap_or(default)
}

/// `?attributes=<JSON object>`: every key must equal.
fn attributes_filter(q: &[(String, String)]) -> Result<Option<Map<String, Value>>, Response> {
    let Some(raw) = query_one(q, "attributes").filter(|v| !v.is_empty()) else { return Ok(None) };
    let parsed: Value = serde_json::from_str(raw).map_err(|_| bad_request(json!(["filter: failed to parse JSON"])))?;
    match parsed {
        Value::Object(m) => Ok(Some(m)),
        _ => Err(bad_request(json!(["filter: value must be key:value mapping"]))),
    }
}

fn attributes_match(attrs: &Value, want: &Map<String, Value>) -> bool {
    want.iter().all(|(k, v)| {
        let mut cur = attrs;
        for part in k.split("__") {
            match cur.get(part) {
                Some(next) => cur = next,
                None => return false,
            }
        }
        cur == v
    })
}

/// DRF `PageNumberPagination` as Authentik configures it.
fn paginate(items: Vec<Value>, q: &[(String, String)]) -> Reply {
    let page_size = query_one(q, "page_size")
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .map(|n| (n as usize).min(MAX_PAGE_SIZE))
        .unwrap_or(DEFAULT_PAGE_SIZE);
    let count = items.len();
    let total_pages = count.div_ceil(page_size).max(1);
    let page = match query_one(q, "page") {
        None | Some("") => 1,
        Some("last") => total_pages,
        Some(p) => match p.parse::<i64>() {
            Ok(n) if n >= 1 && (n as usize) <= total_pages => n as usize,
            _ => return Err(detail(StatusCode::NOT_FOUND, "Invalid page.")),
        },
    };
    let start = (page - 1) * page_size;
    let end = (start + page_size).min(count);
    let results: Vec<Value> = items.into_iter().skip(start).take(page_size).collect();
    ok(json!({
        "pagination": {
            "next": if page < total_pages { page + 1 } else { 0 },
            "previous": page.saturating_sub(1),
            "count": count,
            "current": page,
            "total_pages": total_pages,
            "start_index": if count == 0 { 0 } else { start + 1 },
            "end_index": end,
        },
        "results": results,
        "autocomplete": {},
    }))
}

/// Sorts by DRF `?ordering=a,-b` over the fields `key` knows; unknown fields
/// are ignored; `default` applies when nothing valid was given.
fn order_by<T>(items: &mut [T], q: &[(String, String)], default: &str, key: impl Fn(&T, &str) -> Option<Value>) {
    let spec = query_one(q, "ordering").unwrap_or("");
    let mut fields: Vec<(String, bool)> = spec
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| match f.strip_prefix('-') {
            Some(rest) => (rest.to_owned(), true),
            None => (f.to_owned(), false),
        })
        .filter(|(f, _)| items.first().is_none_or(|i| key(i, f).is_some()))
        .collect();
    if fields.is_empty() {
        fields.push((default.to_owned(), false));
    }
    items.sort_by(|a, b| {
        for (f, desc) in &fields {
            let (x, y) = (key(a, f).unwrap_or(Value::Null), key(b, f).unwrap_or(Value::Null));
            let o = cmp_json(&x, &y);
            let o = if *desc { o.reverse() } else { o };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
}

fn cmp_json(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.as_f64().unwrap_or(0.0).partial_cmp(&y.as_f64().unwrap_or(0.0)).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        _ => a.to_string().cmp(&b.to_string()),
    }
}

fn icontains(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(&needle.to_lowercase())
}

// ---------------------------------------------------------------------------
// Users

/// `/core/users/`: keyed by pk.
struct Users;

impl Model for Users {
    type Key = i64;

    fn list(inner: &Inner, q: &[(String, String)]) -> Reply {
        let mut users: Vec<&AkUser> = inner.users.values().collect();
        let exact = |users: &mut Vec<&AkUser>, name: &str, get: fn(&AkUser) -> &str| {
            if let Some(v) = query_one(q, name).filter(|v| !v.is_empty()) {
                users.retain(|u| get(u) == v);
            }
        };
        exact(&mut users, "email", |u| &u.email);
        exact(&mut users, "username", |u| &u.username);
        exact(&mut users, "name", |u| &u.name);
        exact(&mut users, "path", |u| &u.path);
        if let Some(v) = query_one(q, "uuid").filter(|v| !v.is_empty()) {
            if !is_uuid(v) {
                return Err(field_error("uuid", "Enter a valid UUID."));
            }
            let want = normalize_uuid(v);
            users.retain(|u| u.uuid == want);
        }
        if let Some(b) = query_one(q, "is_active").and_then(query_bool) {
            users.retain(|u| u.is_active == b);
        }
        if let Some(b) = query_one(q, "is_superuser").and_then(query_bool) {
            users.retain(|u| u.groups.iter().any(|g| inner.group(g).is_some_and(|g| g.is_superuser)) == b);
        }
        if let Some(p) = query_one(q, "path_startswith").filter(|v| !v.is_empty()) {
            users.retain(|u| u.path.starts_with(p));
        }
        let types: Vec<&str> = query_all(q, "type").into_iter().filter(|v| !v.is_empty()).collect();
        if !types.is_empty() {
            for t in &types {
                if !["internal", "external", "service_account", "internal_service_account"].contains(t) {
                    return Err(field_error("type", &format!("Select a valid choice. {t} is not one of the available choices.")));
                }
            }
            users.retain(|u| types.contains(&u.user_type.as_str()));
        }
        let by_pk: Vec<&str> = query_all(q, "groups_by_pk").into_iter().filter(|v| !v.is_empty()).collect();
        if !by_pk.is_empty() {
            let mut wanted = BTreeSet::new();
            for g in by_pk {
                if !is_uuid(g) {
                    return Err(field_error("groups_by_pk", &format!("“{g}” is not a valid UUID.")));
                }
                let id = normalize_uuid(g);
                if inner.group(&id).is_none() {
                    return Err(field_error("groups_by_pk", &format!("Select a valid choice. {g} is not one of the available choices.")));
                }
                wanted.insert(id);
            }
            users.retain(|u| u.groups.iter().any(|g| wanted.contains(g)));
        }
        let by_name: Vec<&str> = query_all(q, "groups_by_name").into_iter().filter(|v| !v.is_empty()).collect();
        if !by_name.is_empty() {
            let mut wanted = BTreeSet::new();
            for n in by_name {
                match inner.groups.iter().find(|g| g.name == n) {
                    Some(g) => {
                        wanted.insert(g.pk.clone());
                    }
                    None => {
                        return Err(field_error(
                            "groups_by_name",
                            &format!("Select a valid choice. {n} is not one of the available choices."),
                        ))
                    }
                }
            }
            users.retain(|u| u.groups.iter().any(|g| wanted.contains(g)));
        }
        if let Some(want) = attributes_filter(q)? {
            users.retain(|u| attributes_match(&u.attributes, &want));
        }
        if let Some(term) = query_one(q, "search").filter(|v| !v.is_empty()) {
            users.retain(|u| {
                icontains(&u.username, term) || icontains(&u.name, term) || icontains(&u.email, term) || icontains(&u.uuid, term)
            });
        }
        order_by(&mut users, q, "username", |u, f| match f {
            "pk" | "id" => Some(json!(u.pk)),
            "username" => Some(json!(u.username)),
            "name" => Some(json!(u.name)),
            "email" => Some(json!(u.email)),
            "is_active" => Some(json!(u.is_active)),
            "date_joined" => Some(json!(u.date_joined)),
            "last_login" => Some(json!(u.last_login)),
            "last_updated" => Some(json!(u.last_updated)),
            "path" => Some(json!(u.path)),
            "type" => Some(json!(u.user_type)),
            _ => None,
        });
        let include_groups = include_flag(q, "include_groups", true);
        let include_roles = include_flag(q, "include_roles", true);
        let items = users.iter().map(|u| user_json(inner, u, include_groups, include_roles)).collect();
        paginate(items, q)
    }

    fn create(inner: &mut Inner, data: &Value) -> Reply {
        let data = as_object(data)?;
        let fields = validate_user(inner, data, Mode::Create, None)?;
        let mut user = inner.new_user();
        apply_user_fields(&mut user, fields);
        let body = user_json(inner, &user, true, true);
        inner.users.insert(user.pk, user);
        Ok(json_reply(StatusCode::CREATED, &body))
    }

    /// `{id}` of `/core/users/{id}/`: an integer pk of an existing user, else 404.
    fn find(inner: &Inner, id: &str) -> Result<i64, Response> {
        id.parse::<i64>().ok().filter(|pk| inner.users.contains_key(pk)).ok_or_else(|| not_found_model("User"))
    }

    fn read(inner: &Inner, pk: &i64, _: &[(String, String)]) -> Reply {
        ok(user_json(inner, &inner.users[pk], true, true))
    }

    fn delete(inner: &mut Inner, pk: i64) {
        remove_user(inner, pk);
    }

    fn update(inner: &mut Inner, pk: i64, data: &Map<String, Value>, mode: Mode) -> Reply {
        let existing = inner.users[&pk].clone();
        let fields = validate_user(inner, data, mode, Some(&existing))?;
        let user = inner.users.get_mut(&pk).expect("user found");
        apply_user_fields(user, fields);
        // A PATCH that deactivates the user ends its sessions.
        if mode == Mode::Patch && !user.is_active {
            inner.sessions.retain(|s| s.user != pk);
        }
        ok(user_json(inner, &inner.users[&pk], true, true))
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Create,
    Put,
    Patch,
}

#[derive(Default)]
struct UserFields {
    username: Option<String>,
    name: Option<String>,
    email: Option<String>,
    is_active: Option<bool>,
    groups: Option<Vec<String>>,
    attributes: Option<Value>,
    path: Option<String>,
    user_type: Option<String>,
    last_login: Option<Option<String>>,
}

fn validate_user(inner: &Inner, data: &Map<String, Value>, mode: Mode, existing: Option<&AkUser>) -> Result<UserFields, Response> {
    let mut e = Errors::default();
    let mut f = UserFields::default();
    if mode != Mode::Patch {
        for req in ["username", "name"] {
            if !data.contains_key(req) {
                e.add(req, "This field is required.");
            }
        }
    }
    f.username = char_field(data, "username", &mut e, false, Some(150));
    if let Some(u) = &f.username {
        let taken = inner.users.values().any(|x| &x.username == u && Some(x.pk) != existing.map(|x| x.pk));
        if taken {
            e.add("username", "This field must be unique.");
        }
    }
    f.name = char_field(data, "name", &mut e, true, None);
    f.email = char_field(data, "email", &mut e, true, Some(254));
    if let Some(m) = &f.email {
        if !m.is_empty() && !is_email(m) {
            e.add("email", "Enter a valid email address.");
        }
    }
    f.is_active = bool_field(data, "is_active", &mut e);
    f.groups = uuid_list_field(data, "groups", &mut e, |g| inner.group(g).is_some());
    if mode != Mode::Patch && f.groups.is_none() && !data.contains_key("groups") {
        f.groups = Some(vec![]);
    }
    // No roles exist in the emulator: any role uuid is unknown.
    let _ = uuid_list_field(data, "roles", &mut e, |_| false);
    f.attributes = dict_field(data, "attributes", &mut e);
    f.path = char_field(data, "path", &mut e, false, None);
    if let Some(p) = &f.path {
        if p.starts_with('/') || p.ends_with('/') {
            e.add("path", "No leading or trailing slashes allowed.");
        } else if p.split('/').any(str::is_empty) {
            e.add("path", "No empty segments in user path allowed.");
        }
    }
    if let Some(v) = data.get("type") {
        let t = v.as_str().unwrap_or("");
        if !["internal", "external", "service_account", "internal_service_account"].contains(&t) {
            e.add("type", format!("\"{}\" is not a valid choice.", v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())));
        } else if mode == Mode::Create && t == "internal_service_account" {
            e.add("type", "Setting a user to internal service account is not allowed.");
        } else if existing.is_some_and(|u| u.user_type == "internal_service_account") && t != "internal_service_account" {
            e.add("type", "Can't change internal service account to other user type.");
        } else {
            f.user_type = Some(t.to_owned());
        }
    }
    if let Some(v) = data.get("last_login") {
        match v {
            Value::Null => f.last_login = Some(None),
            Value::String(s) if !s.is_empty() => f.last_login = Some(Some(s.clone())),
            _ => e.add(
                "last_login",
                "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].",
            ),
        }
    }
    e.into_result()?;
    Ok(f)
}

/// A validated field, when the request gave it, replaces the stored one.
fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

fn apply_user_fields(u: &mut AkUser, f: UserFields) {
    set(&mut u.username, f.username);
    set(&mut u.name, f.name);
    set(&mut u.email, f.email);
    set(&mut u.is_active, f.is_active);
    set(&mut u.groups, f.groups);
    set(&mut u.attributes, f.attributes);
    set(&mut u.path, f.path);
    set(&mut u.user_type, f.user_type);
    set(&mut u.last_login, f.last_login);
    u.last_updated = iso_micros(now_ms());
}

/// `POST /core/users/<pk>/set_password/`.
struct SetPassword;

impl Action for SetPassword {
    type On = Users;

    fn run(inner: &mut Inner, pk: i64, data: &Map<String, Value>, _: &HeaderMap) -> Reply {
        let mut e = Errors::default();
        if !data.contains_key("password") {
            e.add("password", "This field is required.");
        }
        let pw = char_field(data, "password", &mut e, false, None);
        e.into_result()?;
        let user = inner.users.get_mut(&pk).expect("user checked above");
        user.password = pw;
        user.password_change_date = iso_micros(now_ms());
        Ok(no_content())
    }
}

/// `POST /core/users/<pk>/recovery/`: a recovery link.
struct Recovery;

impl Action for Recovery {
    type On = Users;

    fn run(inner: &mut Inner, pk: i64, data: &Map<String, Value>, headers: &HeaderMap) -> Reply {
        if let Some(d) = data.get("token_duration") {
            let text = d.as_str().unwrap_or("");
            if !valid_timedelta(text) {
                return Err(field_error("token_duration", &format!("{text} is not in the correct format of 'hours=3;minutes=1'.")));
            }
        }
        if !inner.recovery_flow {
            return Err(bad_request(json!({"non_field_errors": "No recovery flow set."})));
        }
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost").to_owned();
        let n = inner.next();
        let key = sha256_hex(&format!("authentik-recovery-{pk}-{n}"));
        let link = format!("http://{host}/if/flow/{RECOVERY_FLOW_SLUG}/?flow_token={key}");
        inner.recovery_links.insert(pk, link.clone());
        ok(json!({ "link": link }))
    }
}

/// Validates a timedelta string such as `days=1;hours=2`.
fn valid_timedelta(s: &str) -> bool {
    let keys = ["weeks", "days", "hours", "minutes", "seconds", "milliseconds", "microseconds"];
    !s.trim().is_empty()
        && s.split(';')
            .filter(|p| !p.trim().is_empty())
            .all(|part| part.split_once('=').is_some_and(|(k, v)| keys.contains(&k.trim()) && v.trim().parse::<f64>().is_ok()))
}

// ---------------------------------------------------------------------------
// Groups

/// `/core/groups/`: keyed by uuid.
struct Groups;

impl Model for Groups {
    type Key = String;

    fn list(inner: &Inner, q: &[(String, String)]) -> Reply {
        let mut groups: Vec<&AkGroup> = inner.groups.iter().collect();
        if let Some(n) = query_one(q, "name").filter(|v| !v.is_empty()) {
            groups.retain(|g| g.name == n);
        }
        if let Some(b) = query_one(q, "is_superuser").and_then(query_bool) {
            groups.retain(|g| g.is_superuser == b);
        }
        let by_pk: Vec<&str> = query_all(q, "members_by_pk").into_iter().filter(|v| !v.is_empty()).collect();
        if !by_pk.is_empty() {
            let mut wanted = BTreeSet::new();
            for p in by_pk {
                match p.parse::<i64>().ok().filter(|pk| inner.users.contains_key(pk)) {
                    Some(pk) => {
                        wanted.insert(pk);
                    }
                    None => {
                        return Err(field_error(
                            "members_by_pk",
                            &format!("Select a valid choice. {p} is not one of the available choices."),
                        ))
                    }
                }
            }
            groups.retain(|g| inner.members(&g.pk).iter().any(|m| wanted.contains(m)));
        }
        let by_username: Vec<&str> = query_all(q, "members_by_username").into_iter().filter(|v| !v.is_empty()).collect();
        if !by_username.is_empty() {
            let mut wanted = BTreeSet::new();
            for n in by_username {
                match inner.users.values().find(|u| u.username == n) {
                    Some(u) => {
                        wanted.insert(u.pk);
                    }
                    None => {
                        return Err(field_error(
                            "members_by_username",
                            &format!("Select a valid choice. {n} is not one of the available choices."),
                        ))
                    }
                }
            }
            groups.retain(|g| inner.members(&g.pk).iter().any(|m| wanted.contains(m)));
        }
        if let Some(want) = attributes_filter(q)? {
            groups.retain(|g| attributes_match(&g.attributes, &want));
        }
        if let Some(term) = query_one(q, "search").filter(|v| !v.is_empty()) {
            groups.retain(|g| icontains(&g.name, term));
        }
        order_by(&mut groups, q, "name", |g, f| match f {
            "name" => Some(json!(g.name)),
            "is_superuser" => Some(json!(g.is_superuser)),
            "pk" | "group_uuid" => Some(json!(g.pk)),
            _ => None,
        });
        let include_users = include_flag(q, "include_users", true);
        let include_children = include_flag(q, "include_children", false);
        let include_parents = include_flag(q, "include_parents", false);
        let items = groups.iter().map(|g| group_json(inner, g, include_users, include_children, include_parents)).collect();
        paginate(items, q)
    }

    fn create(inner: &mut Inner, data: &Value) -> Reply {
        let data = as_object(data)?;
        let fields = validate_group(inner, data, Mode::Create, None)?;
        let n = inner.next();
        let uuid = uuid_from(&format!("authentik-group-{n}"));
        inner.groups.push(AkGroup { pk: uuid.clone(), name: String::new(), is_superuser: false, attributes: json!({}), parents: vec![] });
        apply_group_fields(inner, &uuid, fields);
        let g = inner.group(&uuid).expect("just inserted");
        Ok(json_reply(StatusCode::CREATED, &group_json(inner, g, true, false, false)))
    }

    /// `{id}` of `/core/groups/{id}/`: an existing group uuid, else 404.
    fn find(inner: &Inner, id: &str) -> Result<String, Response> {
        if !is_uuid(id) {
            return Err(not_found_model("Group"));
        }
        let id = normalize_uuid(id);
        inner.group(&id).map(|g| g.pk.clone()).ok_or_else(|| not_found_model("Group"))
    }

    fn read(inner: &Inner, uuid: &String, q: &[(String, String)]) -> Reply {
        let g = inner.group(uuid).expect("group found");
        ok(group_json(
            inner,
            g,
            include_flag(q, "include_users", true),
            include_flag(q, "include_children", false),
            include_flag(q, "include_parents", false),
        ))
    }

    fn delete(inner: &mut Inner, uuid: String) {
        inner.groups.retain(|g| g.pk != uuid);
        for u in inner.users.values_mut() {
            u.groups.retain(|g| g != &uuid);
        }
        for g in inner.groups.iter_mut() {
            g.parents.retain(|p| p != &uuid);
        }
    }

    fn update(inner: &mut Inner, uuid: String, data: &Map<String, Value>, mode: Mode) -> Reply {
        let fields = validate_group(inner, data, mode, Some(&uuid))?;
        apply_group_fields(inner, &uuid, fields);
        ok(group_json(inner, inner.group(&uuid).expect("group found"), true, false, false))
    }
}

#[derive(Default)]
struct GroupFields {
    name: Option<String>,
    is_superuser: Option<bool>,
    attributes: Option<Value>,
    parents: Option<Vec<String>>,
    users: Option<Vec<i64>>,
}

fn validate_group(inner: &Inner, data: &Map<String, Value>, mode: Mode, existing: Option<&str>) -> Result<GroupFields, Response> {
    let mut e = Errors::default();
    let mut f = GroupFields::default();
    if mode != Mode::Patch && !data.contains_key("name") {
        e.add("name", "This field is required.");
    }
    f.name = char_field(data, "name", &mut e, false, None);
    if let Some(n) = &f.name {
        if inner.groups.iter().any(|g| &g.name == n && Some(g.pk.as_str()) != existing) {
            e.add("name", "Group with this name already exists.");
        }
    }
    f.is_superuser = bool_field(data, "is_superuser", &mut e);
    f.attributes = dict_field(data, "attributes", &mut e);
    f.parents = uuid_list_field(data, "parents", &mut e, |g| inner.group(g).is_some() && Some(g) != existing);
    let _ = uuid_list_field(data, "roles", &mut e, |_| false);
    if let Some(v) = data.get("users") {
        match v.as_array() {
            None => e.add("users", format!("Expected a list of items but got type \"{}\".", py_type(v))),
            Some(items) => {
                let mut pks = Vec::new();
                for item in items {
                    match item.as_i64().or_else(|| item.as_str().and_then(|s| s.parse().ok())) {
                        Some(pk) if inner.users.contains_key(&pk) => pks.push(pk),
                        Some(pk) => {
                            e.add("users", format!("Invalid pk \"{pk}\" - object does not exist."));
                            break;
                        }
                        None => {
                            e.add("users", format!("Incorrect type. Expected pk value, received {}.", py_type(item)));
                            break;
                        }
                    }
                }
                f.users = Some(pks);
            }
        }
    }
    e.into_result()?;
    Ok(f)
}

fn apply_group_fields(inner: &mut Inner, uuid: &str, f: GroupFields) {
    if let Some(g) = inner.groups.iter_mut().find(|g| g.pk == uuid) {
        set(&mut g.name, f.name);
        set(&mut g.is_superuser, f.is_superuser);
        set(&mut g.attributes, f.attributes);
        set(&mut g.parents, f.parents);
    }
    if let Some(members) = f.users {
        for u in inner.users.values_mut() {
            let is_member = u.groups.iter().any(|g| g == uuid);
            let want = members.contains(&u.pk);
            if want && !is_member {
                u.groups.push(uuid.to_owned());
            } else if !want && is_member {
                u.groups.retain(|g| g != uuid);
            }
        }
    }
}

/// `POST /core/groups/<uuid>/add_user/` (idempotent).
struct AddUser;

impl Action for AddUser {
    type On = Groups;

    fn run(inner: &mut Inner, uuid: String, data: &Map<String, Value>, _: &HeaderMap) -> Reply {
        membership_change(inner, uuid, data, true)
    }
}

/// `POST /core/groups/<uuid>/remove_user/` (idempotent).
struct RemoveUser;

impl Action for RemoveUser {
    type On = Groups;

    fn run(inner: &mut Inner, uuid: String, data: &Map<String, Value>, _: &HeaderMap) -> Reply {
        membership_change(inner, uuid, data, false)
    }
}

/// Adds or removes the user named by the body's `pk`.
fn membership_change(inner: &mut Inner, uuid: String, data: &Map<String, Value>, add: bool) -> Reply {
    let pk = match data.get("pk") {
        None => return Err(field_error("pk", "This field is required.")),
        Some(Value::Null) => return Err(field_error("pk", "This field may not be null.")),
        Some(v) => match v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())) {
            Some(pk) => pk,
            None => return Err(field_error("pk", "A valid integer is required.")),
        },
    };
    let Some(user) = inner.users.get_mut(&pk) else {
        return Err(detail(StatusCode::NOT_FOUND, "Not found."));
    };
    let member = user.groups.iter().any(|g| g == &uuid);
    if add && !member {
        user.groups.push(uuid);
    } else if !add && member {
        user.groups.retain(|g| g != &uuid);
    }
    Ok(no_content())
}

// ---------------------------------------------------------------------------
// Sessions

async fn sessions_collection(State(s): State<AuthentikState>, method: Method, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    handle(&s, &headers, |inner| {
        if method != Method::GET && method != Method::HEAD {
            return Err(method_not_allowed(&method, "GET, HEAD, OPTIONS"));
        }
        let q = parse_query(q.as_deref());
        let username_of = |pk: i64| inner.users.get(&pk).map(|u| u.username.clone()).unwrap_or_default();
        let mut sessions: Vec<&AkSession> = inner.sessions.iter().collect();
        // There is no filter by user pk upstream: `?user=` is ignored, as there.
        if let Some(n) = query_one(&q, "user__username").filter(|v| !v.is_empty()) {
            sessions.retain(|s| username_of(s.user) == n);
        }
        if let Some(ip) = query_one(&q, "session__last_ip").filter(|v| !v.is_empty()) {
            sessions.retain(|s| s.last_ip == ip);
        }
        if let Some(ua) = query_one(&q, "session__last_user_agent").filter(|v| !v.is_empty()) {
            sessions.retain(|s| s.last_user_agent == ua);
        }
        if let Some(term) = query_one(&q, "search").filter(|v| !v.is_empty()) {
            sessions
                .retain(|s| icontains(&username_of(s.user), term) || icontains(&s.last_ip, term) || icontains(&s.last_user_agent, term));
        }
        order_by(&mut sessions, &q, "user__username", |s, f| match f {
            "user__username" => Some(json!(username_of(s.user))),
            "session__last_ip" => Some(json!(s.last_ip)),
            "session__last_user_agent" => Some(json!(s.last_user_agent)),
            "session__last_used" => Some(json!(s.last_used)),
            "expires" | "session__expires" => Some(json!(s.expires)),
            _ => None,
        });
        paginate(sessions.iter().map(|s| session_json(s)).collect(), &q)
    })
}

async fn session_item(State(s): State<AuthentikState>, Path(id): Path<String>, method: Method, headers: HeaderMap) -> Response {
    handle(&s, &headers, |inner| {
        if ![Method::GET, Method::HEAD, Method::DELETE].contains(&method) {
            return Err(method_not_allowed(&method, "GET, DELETE, HEAD, OPTIONS"));
        }
        let want = if is_uuid(&id) { normalize_uuid(&id) } else { String::new() };
        let Some(i) = inner.sessions.iter().position(|s| s.uuid == want) else {
            return Err(not_found_model("AuthenticatedSession"));
        };
        if method == Method::DELETE {
            inner.sessions.remove(i);
            Ok(no_content())
        } else {
            ok(session_json(&inner.sessions[i]))
        }
    })
}

async fn sessions_bulk_delete(State(s): State<AuthentikState>, method: Method, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    handle(&s, &headers, |inner| {
        if method != Method::DELETE {
            return Err(method_not_allowed(&method, "DELETE, OPTIONS"));
        }
        let q = parse_query(q.as_deref());
        let raw = query_all(&q, "user_pks");
        if raw.is_empty() {
            return Err(field_error("user_pks", "This field is required."));
        }
        let mut pks = Vec::new();
        for (i, v) in raw.iter().enumerate() {
            match v.trim().parse::<i64>() {
                Ok(pk) => pks.push(pk),
                Err(_) => return Err(bad_request(json!({"user_pks": { i.to_string(): ["A valid integer is required."] }}))),
            }
        }
        let before = inner.sessions.len();
        inner.sessions.retain(|s| !pks.contains(&s.user));
        ok(json!({ "deleted": before - inner.sessions.len() }))
    })
}

// ---------------------------------------------------------------------------
// Authenticator devices

async fn devices_all(State(s): State<AuthentikState>, method: Method, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    handle(&s, &headers, |inner| {
        if method != Method::GET && method != Method::HEAD {
            return Err(method_not_allowed(&method, "GET, HEAD, OPTIONS"));
        }
        let q = parse_query(q.as_deref());
        let mut devices: Vec<&AkDevice> = inner.devices.iter().collect();
        if let Some(raw) = query_one(&q, "user").filter(|v| !v.is_empty()) {
            let pk = match raw.trim().parse::<i64>() {
                Ok(pk) => pk,
                Err(_) => return Err(field_error("user", "Incorrect type. Expected pk value, received str.")),
            };
            if !inner.users.contains_key(&pk) {
                return Err(field_error("user", &format!("Invalid pk \"{pk}\" - object does not exist.")));
            }
            devices.retain(|d| d.user == pk);
        }
        ok(Value::Array(devices.iter().map(|d| device_json(d)).collect()))
    })
}
