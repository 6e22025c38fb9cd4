//! The registry objects the Stalwart emulator keeps (`x:Domain`, `x:Account`),
//! their wire form, validation and JMAP PatchObject handling.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// An `x:Domain`.
#[derive(Clone, Debug, PartialEq)]
pub struct StDomain {
    pub id: String,
    pub name: String,
    /// Domain aliases (other names of the same domain).
    pub aliases: Vec<String>,
    pub is_enabled: bool,
    pub description: Option<String>,
    pub created_at: String,
    pub(crate) seq: u64,
}

/// One entry of an account's `aliases` list.
#[derive(Clone, Debug, PartialEq)]
pub struct StAlias {
    /// Local part.
    pub name: String,
    pub domain_id: String,
    pub enabled: bool,
    pub description: Option<String>,
}

/// One entry of an account's `credentials` list.
#[derive(Clone, Debug, PartialEq)]
pub struct StCredential {
    /// `Password` (the only kind `x:Account/set` accepts).
    pub kind: String,
    /// The secret as stored: a recognised hash as sent, else the plaintext
    /// (the emulator does not hash; reads always show `"****"`).
    pub secret: String,
    pub credential_id: String,
    pub expires_at: Value,
    pub allowed_ips: Value,
}

/// An `x:Account` (`@type` `User` or `Group`).
#[derive(Clone, Debug, PartialEq)]
pub struct StAccount {
    pub id: String,
    /// `User` | `Group`.
    pub kind: String,
    /// Lower-cased local part.
    pub name: String,
    pub domain_id: String,
    /// Display name.
    pub description: Option<String>,
    /// List key → alias.
    pub aliases: BTreeMap<u32, StAlias>,
    /// List key → credential (users only).
    pub credentials: BTreeMap<u32, StCredential>,
    /// `{"@type": "User"|"Admin"|"Custom", …}`.
    pub roles: Value,
    /// `{"@type": "Inherit"}` or `{"@type": "Merge"|"Replace", "enabledPermissions": {…}, "disabledPermissions": {…}}`.
    pub permissions: Value,
    pub quotas: Value,
    pub locale: String,
    pub time_zone: Value,
    /// Group ids (set).
    pub member_group_ids: Vec<String>,
    pub member_tenant_id: Value,
    pub encryption_at_rest: Value,
    pub created_at: String,
    pub(crate) seq: u64,
}

impl StAccount {
    /// Sign-in is blocked: `authenticate` is disabled (or, with `Replace`, not enabled).
    pub fn is_suspended(&self) -> bool {
        let p = &self.permissions;
        let disabled = p.pointer("/disabledPermissions/authenticate").is_some_and(|v| v == &json!(true));
        let replace_without = p["@type"] == "Replace" && p.pointer("/enabledPermissions/authenticate").is_none_or(|v| v != &json!(true));
        disabled || replace_without
    }

    /// The secret of the `Password` credential, if any.
    pub fn password(&self) -> Option<&str> {
        self.credentials.values().find(|c| c.kind == "Password").map(|c| c.secret.as_str())
    }

    /// The mutable properties as JSON (secrets in clear or masked).
    pub(crate) fn to_value(&self, mask: bool) -> Value {
        let mut m = Map::new();
        m.insert("@type".into(), json!(self.kind));
        m.insert("name".into(), json!(self.name));
        m.insert("domainId".into(), json!(self.domain_id));
        m.insert("description".into(), json!(self.description));
        m.insert(
            "aliases".into(),
            Value::Object(
                self.aliases
                    .iter()
                    .map(|(k, a)| {
                        (
                            k.to_string(),
                            json!({"name": a.name, "domainId": a.domain_id, "enabled": a.enabled, "description": a.description}),
                        )
                    })
                    .collect(),
            ),
        );
        if self.kind == "User" {
            m.insert(
                "credentials".into(),
                Value::Object(
                    self.credentials
                        .iter()
                        .map(|(k, c)| {
                            (
                                k.to_string(),
                                json!({"@type": c.kind, "credentialId": c.credential_id,
                                "secret": if mask { "****" } else { c.secret.as_str() },
                                "expiresAt": c.expires_at, "allowedIps": c.allowed_ips}),
                            )
                        })
                        .collect(),
                ),
            );
            m.insert("memberGroupIds".into(), Value::Object(self.member_group_ids.iter().map(|g| (g.clone(), json!(true))).collect()));
            m.insert("encryptionAtRest".into(), self.encryption_at_rest.clone());
        }
        m.insert("roles".into(), self.roles.clone());
        m.insert("permissions".into(), self.permissions.clone());
        m.insert("quotas".into(), self.quotas.clone());
        m.insert("locale".into(), json!(self.locale));
        m.insert("timeZone".into(), self.time_zone.clone());
        m.insert("memberTenantId".into(), self.member_tenant_id.clone());
        Value::Object(m)
    }
}

impl StDomain {
    pub(crate) fn to_value(&self) -> Value {
        json!({
            "name": self.name,
            "aliases": Value::Object(self.aliases.iter().map(|a| (a.clone(), json!(true))).collect()),
            "isEnabled": self.is_enabled,
            "description": self.description,
        })
    }
}

/// A JMAP SetError.
#[derive(Debug)]
pub(crate) struct SetErr(pub Value);

impl SetErr {
    pub fn new(kind: &str, description: impl Into<String>) -> Self {
        SetErr(json!({"type": kind, "description": description.into()}))
    }
    pub fn props(mut self, props: &[&str]) -> Self {
        self.0["properties"] = json!(props);
        self
    }
    pub fn object(mut self, object: &str, id: &str) -> Self {
        self.0["objectId"] = json!({"object": object, "id": id});
        self
    }
    pub fn invalid_patch(path: &str, description: impl Into<String>) -> Self {
        SetErr::new("invalidPatch", description).props(&[path])
    }
}

/// The parts of the registry validation needs to see.
pub(crate) trait Registry {
    fn domain_exists(&self, id: &str) -> bool;
    fn group_exists(&self, id: &str) -> bool;
    /// Which account (other than `except`) owns the indexed address `local@domain_id`.
    fn address_owner(&self, local: &str, domain_id: &str, except: Option<&str>) -> Option<String>;
    fn new_credential_id(&mut self) -> String;
}

pub(crate) const ACCOUNT_SERVER_SET: [&str; 4] = ["emailAddress", "createdAt", "usedDiskQuota", "id"];
const USER_PROPS: [&str; 15] = [
    "@type",
    "name",
    "domainId",
    "description",
    "aliases",
    "credentials",
    "roles",
    "permissions",
    "quotas",
    "locale",
    "timeZone",
    "memberGroupIds",
    "memberTenantId",
    "encryptionAtRest",
    "id",
];
const GROUP_PROPS: [&str; 12] =
    ["@type", "name", "domainId", "description", "aliases", "roles", "permissions", "quotas", "locale", "timeZone", "memberTenantId", "id"];

/// Known password-hash formats are stored as sent; anything else is plaintext.
fn is_known_hash(s: &str) -> bool {
    const PREFIXES: [&str; 20] = [
        "$argon2",
        "$pbkdf2",
        "$scrypt",
        "$2a$",
        "$2b$",
        "$2x$",
        "$2y$",
        "$1$",
        "$5$",
        "$6$",
        "$sha1$",
        "{SHA}",
        "{SSHA}",
        "{SHA256}",
        "{SSHA256}",
        "{SHA512}",
        "{SSHA512}",
        "{MD5}",
        "{PBKDF2}",
        "{CRYPT}",
    ];
    PREFIXES.iter().any(|p| s.starts_with(p)) || s.starts_with("{ARGON2")
}

/// Stalwart's plaintext policy (8–128 characters, zxcvbn score ≥ 3),
/// approximated: short single-class or common passwords are "too weak".
fn password_problem(secret: &str) -> Option<&'static str> {
    let len = secret.chars().count();
    if len < 8 {
        return Some("Password must be at least 8 characters long.");
    }
    if len > 128 {
        return Some("Password must be at most 128 characters long.");
    }
    let classes = [
        secret.chars().any(|c| c.is_ascii_lowercase()),
        secret.chars().any(|c| c.is_ascii_uppercase()),
        secret.chars().any(|c| c.is_ascii_digit()),
        secret.chars().any(|c| !c.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    let lower = secret.to_lowercase();
    let common = ["password", "passw0rd", "qwerty", "123456", "letmein", "welcome", "admin", "iloveyou", "abc123"];
    let distinct = {
        let mut c: Vec<char> = secret.chars().collect();
        c.sort_unstable();
        c.dedup();
        c.len()
    };
    if distinct < 4 || (classes <= 1 && len < 12) || (common.iter().any(|w| lower.contains(w)) && len < 16) {
        return Some("Password is too weak.");
    }
    None
}

/// A valid local part: non-empty, no `@`, no whitespace or control characters.
fn local_part_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.contains('@') || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("Invalid email local part")
    } else {
        None
    }
}

fn list_key(k: &str) -> Option<u32> {
    if k.is_empty() || (k.len() > 1 && k.starts_with('0')) {
        return None;
    }
    k.parse().ok()
}

fn opt_string(v: &Value, path: &str) -> Result<Option<String>, SetErr> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Err(SetErr::invalid_patch(path, "Value cannot be empty")),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(SetErr::invalid_patch(path, "Invalid value, expected a string or null")),
    }
}

/// A set property (`{"key": true}`).
fn set_keys(v: &Value, path: &str) -> Result<Vec<String>, SetErr> {
    let Some(m) = v.as_object() else {
        return Err(SetErr::invalid_patch(path, "Invalid value, expected a set"));
    };
    let mut out = Vec::new();
    for (k, val) in m {
        if val != &json!(true) {
            return Err(SetErr::invalid_patch(&format!("{path}/{k}"), "Set members must be true"));
        }
        out.push(k.clone());
    }
    Ok(out)
}

fn permission_list(v: Option<&Value>, path: &str) -> Result<Value, SetErr> {
    match v {
        None => Ok(json!({})),
        Some(v) => {
            let keys = set_keys(v, path)?;
            for k in &keys {
                if !k.chars().next().is_some_and(|c| c.is_ascii_lowercase()) || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(SetErr::invalid_patch(&format!("{path}/{k}"), format!("Unknown permission {k:?}")));
                }
            }
            Ok(Value::Object(keys.into_iter().map(|k| (k, json!(true))).collect()))
        }
    }
}

fn parse_permissions(v: &Value) -> Result<Value, SetErr> {
    let Some(m) = v.as_object() else {
        return Err(SetErr::invalid_patch("permissions", "Invalid value, expected an object"));
    };
    match m.get("@type").and_then(Value::as_str) {
        Some("Inherit") => {
            if let Some(k) = m.keys().find(|k| *k != "@type") {
                return Err(SetErr::invalid_patch(&format!("permissions/{k}"), "Unknown property"));
            }
            Ok(json!({"@type": "Inherit"}))
        }
        Some(t @ ("Merge" | "Replace")) => {
            if let Some(k) = m.keys().find(|k| !["@type", "enabledPermissions", "disabledPermissions"].contains(&k.as_str())) {
                return Err(SetErr::invalid_patch(&format!("permissions/{k}"), "Unknown property"));
            }
            Ok(json!({
                "@type": t,
                "enabledPermissions": permission_list(m.get("enabledPermissions"), "permissions/enabledPermissions")?,
                "disabledPermissions": permission_list(m.get("disabledPermissions"), "permissions/disabledPermissions")?,
            }))
        }
        _ => Err(SetErr::invalid_patch("permissions/@type", "Invalid or missing @type")),
    }
}

fn parse_roles(v: &Value, group: bool) -> Result<Value, SetErr> {
    let Some(m) = v.as_object() else {
        return Err(SetErr::invalid_patch("roles", "Invalid value, expected an object"));
    };
    let allowed: &[&str] = if group { &["Default", "Custom"] } else { &["User", "Admin", "Custom"] };
    match m.get("@type").and_then(Value::as_str) {
        Some("Custom") if allowed.contains(&"Custom") => {
            let ids = set_keys(m.get("roleIds").unwrap_or(&json!({})), "roles/roleIds")?;
            if let Some(id) = ids.first() {
                return Err(SetErr::new("invalidForeignKey", format!("Role {id} does not exist"))
                    .props(&["roles/roleIds"])
                    .object("Role", id));
            }
            Ok(json!({"@type": "Custom", "roleIds": {}}))
        }
        Some(t) if allowed.contains(&t) => {
            if let Some(k) = m.keys().find(|k| *k != "@type") {
                return Err(SetErr::invalid_patch(&format!("roles/{k}"), "Unknown property"));
            }
            Ok(json!({"@type": t}))
        }
        _ => Err(SetErr::invalid_patch("roles/@type", "Invalid or missing @type")),
    }
}

fn parse_quotas(v: &Value) -> Result<Value, SetErr> {
    let Some(m) = v.as_object() else {
        return Err(SetErr::invalid_patch("quotas", "Invalid value, expected an object"));
    };
    for (k, val) in m {
        if !k.starts_with("max") || !val.is_u64() {
            return Err(SetErr::invalid_patch(&format!("quotas/{k}"), "Invalid quota"));
        }
    }
    Ok(v.clone())
}

fn parse_alias(key: &str, v: &Value, reg: &dyn Registry, required: &mut Vec<Value>) -> Result<Option<StAlias>, SetErr> {
    let base = format!("aliases/{key}");
    let Some(m) = v.as_object() else {
        return Err(SetErr::invalid_patch(&base, "Invalid value, expected an object"));
    };
    if let Some(k) = m.keys().find(|k| !["name", "domainId", "enabled", "description"].contains(&k.as_str())) {
        return Err(SetErr::invalid_patch(&format!("{base}/{k}"), "Unknown property"));
    }
    let name = match m.get("name") {
        None => {
            required.push(json!({"type": "Required", "property": format!("{base}/name")}));
            None
        }
        Some(Value::String(s)) => {
            let s = s.trim().to_lowercase();
            if let Some(p) = local_part_problem(&s) {
                return Err(SetErr::invalid_patch(&format!("{base}/name"), p));
            }
            Some(s)
        }
        Some(_) => return Err(SetErr::invalid_patch(&format!("{base}/name"), "Invalid value, expected a string")),
    };
    let domain_id = match m.get("domainId") {
        None => {
            required.push(json!({"type": "Required", "property": format!("{base}/domainId")}));
            None
        }
        Some(Value::String(d)) => {
            if !reg.domain_exists(d) {
                return Err(SetErr::new("invalidForeignKey", format!("Domain {d} does not exist"))
                    .props(&[&format!("{base}/domainId")])
                    .object("Domain", d));
            }
            Some(d.clone())
        }
        Some(_) => return Err(SetErr::invalid_patch(&format!("{base}/domainId"), "Invalid value, expected an id")),
    };
    let enabled = match m.get("enabled") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(SetErr::invalid_patch(&format!("{base}/enabled"), "Invalid value, expected a boolean")),
    };
    let description = match m.get("description") {
        None => None,
        Some(d) => opt_string(d, &format!("{base}/description"))?,
    };
    Ok(match (name, domain_id) {
        (Some(name), Some(domain_id)) => Some(StAlias { name, domain_id, enabled, description }),
        _ => None,
    })
}

fn parse_credential(key: &str, v: &Value, old: Option<&StCredential>, reg: &mut dyn Registry) -> Result<StCredential, SetErr> {
    let base = format!("credentials/{key}");
    let Some(m) = v.as_object() else {
        return Err(SetErr::invalid_patch(&base, "Invalid value, expected an object"));
    };
    match m.get("@type").and_then(Value::as_str) {
        Some("Password") => {}
        Some(t @ ("AppPassword" | "ApiKey")) => {
            return Err(SetErr::new("invalidProperties", format!("{t} credentials cannot be created through x:Account")).props(&[&base]))
        }
        _ => return Err(SetErr::invalid_patch(&format!("{base}/@type"), "Invalid or missing @type")),
    }
    if let Some(k) = m.keys().find(|k| !["@type", "secret", "credentialId", "expiresAt", "allowedIps", "otpAuth"].contains(&k.as_str())) {
        return Err(SetErr::invalid_patch(&format!("{base}/{k}"), "Unknown property"));
    }
    if let Some(cid) = m.get("credentialId") {
        if old.is_none_or(|o| cid != &json!(o.credential_id)) {
            return Err(SetErr::invalid_patch(&format!("{base}/credentialId"), "Property is server-set"));
        }
    }
    let secret = match m.get("secret") {
        Some(Value::String(s)) if s == "****" && old.is_some() => old.map(|o| o.secret.clone()).unwrap_or_default(),
        Some(Value::String(s)) => {
            if !is_known_hash(s) {
                if let Some(p) = password_problem(s) {
                    return Err(SetErr::new("invalidProperties", p).props(&["secret"]));
                }
            }
            s.clone()
        }
        Some(_) => return Err(SetErr::invalid_patch(&format!("{base}/secret"), "Invalid value, expected a string")),
        None => {
            return Err(SetErr(json!({"type": "validationFailed", "description": "Validation failed",
                "validationErrors": [{"type": "Required", "property": format!("{base}/secret")}]})))
        }
    };
    let expires_at = m.get("expiresAt").cloned().unwrap_or(Value::Null);
    if !(expires_at.is_null() || expires_at.is_string()) {
        return Err(SetErr::invalid_patch(&format!("{base}/expiresAt"), "Invalid value, expected a date"));
    }
    let allowed_ips = m.get("allowedIps").cloned().unwrap_or(json!({}));
    set_keys(&allowed_ips, &format!("{base}/allowedIps"))?;
    Ok(StCredential {
        kind: "Password".into(),
        secret,
        credential_id: match old {
            Some(o) => o.credential_id.clone(),
            None => reg.new_credential_id(),
        },
        expires_at,
        allowed_ips,
    })
}

/// Validates a full account object (a create, or the result of applying an
/// update's patches to the stored object) and builds the account.
pub(crate) fn parse_account(v: &Value, id: &str, old: Option<&StAccount>, reg: &mut dyn Registry) -> Result<StAccount, SetErr> {
    let Some(m) = v.as_object() else {
        return Err(SetErr::new("invalidProperties", "Expected an object"));
    };
    let kind = match m.get("@type").and_then(Value::as_str) {
        Some(t @ ("User" | "Group")) => t.to_owned(),
        Some(_) => return Err(SetErr::invalid_patch("@type", "Invalid @type")),
        None => return Err(SetErr::invalid_patch("@type", "Missing @type")),
    };
    if let Some(o) = old {
        if o.kind != kind {
            return Err(SetErr::new("invalidProperties", "Cannot change @type").props(&["@type"]));
        }
    }
    let allowed: &[&str] = if kind == "User" { &USER_PROPS } else { &GROUP_PROPS };
    for k in m.keys() {
        if ACCOUNT_SERVER_SET.contains(&k.as_str()) && !(k == "id" && m[k] == json!(id)) {
            return Err(SetErr::invalid_patch(k, "Property is server-set"));
        }
        if !allowed.contains(&k.as_str()) {
            return Err(SetErr::invalid_patch(k, "Unknown property"));
        }
    }
    let mut required = Vec::new();
    let name = match m.get("name") {
        None => {
            required.push(json!({"type": "Required", "property": "name"}));
            String::new()
        }
        Some(Value::String(s)) => {
            let s = s.trim().to_lowercase();
            if let Some(p) = local_part_problem(&s) {
                return Err(SetErr::invalid_patch("name", p));
            }
            s
        }
        Some(_) => return Err(SetErr::invalid_patch("name", "Invalid value, expected a string")),
    };
    let domain_id = match m.get("domainId") {
        None | Some(Value::Null) => {
            required.push(json!({"type": "Required", "property": "domainId"}));
            String::new()
        }
        Some(Value::String(d)) => d.clone(),
        Some(_) => return Err(SetErr::invalid_patch("domainId", "Invalid value, expected an id")),
    };
    let description = match m.get("description") {
        None => None,
        Some(d) => opt_string(d, "description")?,
    };
    let mut aliases = BTreeMap::new();
    match m.get("aliases") {
        None => {}
        Some(Value::Object(list)) => {
            for (k, a) in list {
                let Some(key) = list_key(k) else {
                    return Err(SetErr::invalid_patch(&format!("aliases/{k}"), "Invalid list key"));
                };
                if let Some(alias) = parse_alias(k, a, reg, &mut required)? {
                    aliases.insert(key, alias);
                }
            }
        }
        Some(_) => return Err(SetErr::invalid_patch("aliases", "Invalid value, expected an object list")),
    }
    if !required.is_empty() {
        return Err(SetErr(json!({"type": "validationFailed", "description": "Validation failed", "validationErrors": required})));
    }
    if !reg.domain_exists(&domain_id) {
        return Err(SetErr::new("invalidForeignKey", format!("Domain {domain_id} does not exist"))
            .props(&["domainId"])
            .object("Domain", &domain_id));
    }
    let mut credentials = BTreeMap::new();
    if kind == "User" {
        match m.get("credentials") {
            None => {}
            Some(Value::Object(list)) => {
                for (k, c) in list {
                    let Some(key) = list_key(k) else {
                        return Err(SetErr::invalid_patch(&format!("credentials/{k}"), "Invalid list key"));
                    };
                    let prev = old.and_then(|o| o.credentials.get(&key));
                    credentials.insert(key, parse_credential(k, c, prev, reg)?);
                }
                if credentials.values().filter(|c: &&StCredential| c.kind == "Password").count() > 1 {
                    return Err(SetErr::new("invalidProperties", "Only one password credential is allowed").props(&["credentials"]));
                }
            }
            Some(_) => return Err(SetErr::invalid_patch("credentials", "Invalid value, expected an object list")),
        }
    }
    let roles = match m.get("roles") {
        None => json!({"@type": if kind == "User" { "User" } else { "Default" }}),
        Some(r) => parse_roles(r, kind == "Group")?,
    };
    let permissions = match m.get("permissions") {
        None => json!({"@type": "Inherit"}),
        Some(p) => parse_permissions(p)?,
    };
    let quotas = match m.get("quotas") {
        None => json!({}),
        Some(q) => parse_quotas(q)?,
    };
    let locale = match m.get("locale") {
        None => "en_US".to_owned(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => return Err(SetErr::invalid_patch("locale", "Invalid locale")),
    };
    let time_zone = match m.get("timeZone") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) if !s.is_empty() => json!(s),
        Some(_) => return Err(SetErr::invalid_patch("timeZone", "Invalid time zone")),
    };
    let member_tenant_id = match m.get("memberTenantId") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(t)) => {
            return Err(SetErr::new("invalidForeignKey", format!("Tenant {t} does not exist"))
                .props(&["memberTenantId"])
                .object("Tenant", t))
        }
        Some(_) => return Err(SetErr::invalid_patch("memberTenantId", "Invalid value, expected an id")),
    };
    let member_group_ids = match m.get("memberGroupIds") {
        None => vec![],
        Some(g) => {
            let ids = set_keys(g, "memberGroupIds")?;
            if let Some(bad) = ids.iter().find(|g| !reg.group_exists(g)) {
                return Err(SetErr::new("invalidForeignKey", format!("Group {bad} does not exist"))
                    .props(&["memberGroupIds"])
                    .object("Account", bad));
            }
            ids
        }
    };
    let encryption_at_rest = match m.get("encryptionAtRest") {
        None => json!({"@type": "Disabled"}),
        Some(e) if e.get("@type").and_then(Value::as_str).is_some() => e.clone(),
        Some(_) => return Err(SetErr::invalid_patch("encryptionAtRest/@type", "Invalid or missing @type")),
    };
    // Unique address index: primary address and enabled aliases.
    let mut addresses = vec![(name.clone(), domain_id.clone(), "email")];
    addresses.extend(aliases.values().filter(|a| a.enabled).map(|a| (a.name.clone(), a.domain_id.clone(), "email")));
    for (local, dom, prop) in &addresses {
        if let Some(owner) = reg.address_owner(local, dom, Some(id)) {
            return Err(SetErr::new("primaryKeyViolation", "Email address already in use").props(&[prop]).object("Account", &owner));
        }
    }
    Ok(StAccount {
        id: id.to_owned(),
        kind,
        name,
        domain_id,
        description,
        aliases,
        credentials,
        roles,
        permissions,
        quotas,
        locale,
        time_zone,
        member_group_ids,
        member_tenant_id,
        encryption_at_rest,
        created_at: old.map(|o| o.created_at.clone()).unwrap_or_default(),
        seq: old.map_or(0, |o| o.seq),
    })
}

/// Validates a full domain object.
pub(crate) fn parse_domain(
    v: &Value,
    id: &str,
    old: Option<&StDomain>,
    owner_of_name: &dyn Fn(&str) -> Option<String>,
) -> Result<StDomain, SetErr> {
    let Some(m) = v.as_object() else {
        return Err(SetErr::new("invalidProperties", "Expected an object"));
    };
    const ALLOWED: [&str; 5] = ["name", "aliases", "isEnabled", "description", "id"];
    const SERVER_SET: [&str; 3] = ["createdAt", "dnsZoneFile", "id"];
    for k in m.keys() {
        if SERVER_SET.contains(&k.as_str()) && !(k == "id" && m[k] == json!(id)) {
            return Err(SetErr::invalid_patch(k, "Property is server-set"));
        }
        if !ALLOWED.contains(&k.as_str()) {
            return Err(SetErr::invalid_patch(k, "Unknown property"));
        }
    }
    let name = match m.get("name") {
        None => {
            return Err(SetErr(json!({"type": "validationFailed", "description": "Validation failed",
                "validationErrors": [{"type": "Required", "property": "name"}]})))
        }
        Some(Value::String(s)) => {
            let s = s.trim().to_lowercase();
            let ok = s.split('.').count() >= 2
                && s.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
            if !ok {
                return Err(SetErr::invalid_patch("name", "Invalid domain name"));
            }
            s
        }
        Some(_) => return Err(SetErr::invalid_patch("name", "Invalid value, expected a string")),
    };
    let aliases = match m.get("aliases") {
        None => vec![],
        Some(a) => set_keys(a, "aliases")?.into_iter().map(|a| a.to_lowercase()).collect(),
    };
    let is_enabled = match m.get("isEnabled") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(SetErr::invalid_patch("isEnabled", "Invalid value, expected a boolean")),
    };
    let description = match m.get("description") {
        None => None,
        Some(d) => opt_string(d, "description")?,
    };
    for n in std::iter::once(&name).chain(aliases.iter()) {
        if let Some(owner) = owner_of_name(n).filter(|o| o != id) {
            let prop = if n == &name { "name" } else { "aliases" };
            return Err(SetErr::new("primaryKeyViolation", "Domain name already in use").props(&[prop]).object("Domain", &owner));
        }
    }
    Ok(StDomain {
        id: id.to_owned(),
        name,
        aliases,
        is_enabled,
        description,
        created_at: old.map(|o| o.created_at.clone()).unwrap_or_default(),
        seq: old.map_or(0, |o| o.seq),
    })
}

fn unescape(seg: &str) -> String {
    seg.replace("~1", "/").replace("~0", "~")
}

/// Applies one RFC 8620 PatchObject entry (`path` → `value`) to `obj`.
///
/// Intermediate segments must exist. A `null` on a nested path removes that
/// key; removing a missing entry of an object list (`aliases`,
/// `credentials`) is an error, of a set or map a no-op. Patching an existing
/// object-list entry with an object merges into it.
pub(crate) fn apply_patch(obj: &mut Value, path: &str, value: Value, object_lists: &[&str]) -> Result<(), SetErr> {
    let segs: Vec<String> = path.split('/').map(unescape).collect();
    if segs.iter().any(String::is_empty) {
        return Err(SetErr::invalid_patch(path, "Invalid patch path"));
    }
    if segs.len() == 1 {
        obj[&segs[0]] = value;
        return Ok(());
    }
    let mut cur = &mut *obj;
    for seg in &segs[..segs.len() - 1] {
        cur = match cur.get_mut(seg.as_str()) {
            Some(next) if next.is_object() => next,
            _ => return Err(SetErr::invalid_patch(path, "Invalid patch path")),
        };
    }
    let last = &segs[segs.len() - 1];
    let parent_is_list = segs.len() == 2 && object_lists.contains(&segs[0].as_str());
    let map = cur.as_object_mut().expect("checked above");
    if value.is_null() {
        if map.remove(last).is_none() && parent_is_list {
            return Err(SetErr::invalid_patch(path, "List item not found"));
        }
        return Ok(());
    }
    match (map.get_mut(last), value) {
        (Some(Value::Object(existing)), Value::Object(patch)) if parent_is_list => {
            for (k, v) in patch {
                existing.insert(k, v);
            }
        }
        (_, value) => {
            map.insert(last.clone(), value);
        }
    }
    Ok(())
}
