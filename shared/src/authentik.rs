//! Typed client of the Authentik admin API v3 (docs/upstreams.md, Authentik):
//! the calls the seed makes, each with the timeout of its config and
//! Authentik's error bodies turned into a readable reason.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::config::UpstreamConfig;
use crate::ports::Http;
use crate::problem::{System, UpstreamError, UpstreamFailure};
use crate::upstream::{excerpt, json_body, status_error, Call};

/// The attribute that marks a password as expired (docs/upstreams.md, "Expired passwords").
pub const PASSWORD_CHANGE_REQUIRED: &str = "dezky.password_change_required";

/// The parts of an Authentik `User` we use.
#[derive(Clone, Debug, Deserialize)]
pub struct AkUser {
    pub pk: i64,
    pub uid: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default = "crate::models::yes")]
    pub is_active: bool,
    #[serde(default)]
    pub attributes: Map<String, Value>,
    /// Direct group uuids.
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct AkGroup {
    pub pk: String,
    pub name: String,
}

/// A new user: `groups` are group uuids.
pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub groups: Vec<String>,
    pub attributes: Value,
}

pub struct Authentik<'a, H> {
    http: &'a H,
    cfg: &'a UpstreamConfig,
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
pub fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The most useful text of a DRF error body: `detail`, `non_field_errors`,
/// or the first field's first message.
fn reason(body: &Value, raw: &[u8]) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => a.first().and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    if let Some(d) = body.get("detail").and_then(text) {
        return d;
    }
    if let Some(d) = body.get("non_field_errors").and_then(text) {
        return d;
    }
    if let Value::Object(m) = body {
        if let Some((k, v)) = m.iter().next() {
            if let Some(t) = text(v) {
                return format!("{k}: {t}");
            }
        }
    }
    excerpt(raw)
}

/// Whether a `400` body is a uniqueness refusal: a field error saying the
/// value is taken. DRF's generic `UniqueValidator` says "This field must be
/// unique."; a model's own message (Django's "… with this … already exists.",
/// `AbstractUser`'s "A user with that username already exists.") ends in
/// "already exists.". Any other validation error is not one.
fn is_unique_refusal(body: &Value) -> bool {
    let Value::Object(fields) = body else { return false };
    fields.iter().filter(|(k, _)| k.as_str() != "non_field_errors" && k.as_str() != "detail").any(|(_, v)| {
        let msgs = match v {
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            Value::String(s) => vec![s.as_str()],
            _ => vec![],
        };
        msgs.iter().any(|m| *m == "This field must be unique." || m.ends_with("already exists."))
    })
}

impl<'a, H: Http> Authentik<'a, H> {
    pub fn new(http: &'a H, cfg: &'a UpstreamConfig) -> Self {
        Self { http, cfg }
    }

    async fn call(&self, method: &'static str, path: &str, body: Option<&Value>) -> Result<(u16, Value), UpstreamError> {
        let resp = Call {
            system: System::Authentik,
            method,
            url: format!("{}/api/v3{path}", self.cfg.url),
            headers: vec![("authorization".into(), self.cfg.authorization.clone())],
            body: body.map(|b| b as _),
            timeout: self.cfg.timeout,
        }
        .send(self.http)
        .await?;
        let parsed = serde_json::from_slice::<Value>(&resp.body).unwrap_or(Value::Null);
        if resp.status == 400 && is_unique_refusal(&parsed) {
            return Err(UpstreamError::taken(System::Authentik, reason(&parsed, &resp.body)));
        }
        if resp.status >= 400 {
            return Err(status_error(System::Authentik, &resp, reason(&parsed, &resp.body)));
        }
        Ok((resp.status, json_body(System::Authentik, &resp)?))
    }

    fn decode<T: for<'de> Deserialize<'de>>(v: Value) -> Result<T, UpstreamError> {
        serde_json::from_value(v).map_err(|e| UpstreamError::new(System::Authentik, UpstreamFailure::BadResponse(e.to_string())))
    }

    /// Users whose e-mail is exactly `email` (not unique in Authentik: the
    /// oldest, lowest `pk`, is taken as the person).
    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<AkUser>, UpstreamError> {
        let (_, v) =
            self.call("GET", &format!("/core/users/?email={}&include_groups=false&ordering=pk", query_escape(email)), None).await?;
        let results = v.get("results").cloned().unwrap_or(Value::Array(vec![]));
        let mut users: Vec<AkUser> = Self::decode(results)?;
        users.retain(|u| u.email == email);
        users.sort_by_key(|u| u.pk);
        Ok(users.into_iter().next())
    }

    /// The identities whose attribute `key` is `value` (Authentik's
    /// `attributes` filter: a JSON object matched key by key).
    pub async fn find_users_by_attribute(&self, key: &str, value: &str) -> Result<Vec<AkUser>, UpstreamError> {
        let filter = json!({ key: value }).to_string();
        let (_, v) =
            self.call("GET", &format!("/core/users/?attributes={}&include_groups=false&ordering=pk", query_escape(&filter)), None).await?;
        let results = v.get("results").cloned().unwrap_or(Value::Array(vec![]));
        let users: Vec<AkUser> = Self::decode(results)?;
        Ok(users.into_iter().filter(|u| u.attributes.get(key).and_then(Value::as_str) == Some(value)).collect())
    }

    pub async fn get_user(&self, pk: i64) -> Result<AkUser, UpstreamError> {
        let (_, v) = self.call("GET", &format!("/core/users/{pk}/"), None).await?;
        Self::decode(v)
    }

    pub async fn create_user(&self, u: NewUser<'_>) -> Result<AkUser, UpstreamError> {
        let body = json!({
            "username": u.username, "email": u.email, "name": u.name,
            "groups": u.groups, "attributes": u.attributes, "is_active": true, "path": "users",
        });
        let (_, v) = self.call("POST", "/core/users/", Some(&body)).await?;
        Self::decode(v)
    }

    /// PATCH of the given fields (`attributes`, if present, replaces all).
    pub async fn patch_user(&self, pk: i64, fields: Value) -> Result<AkUser, UpstreamError> {
        let (_, v) = self.call("PATCH", &format!("/core/users/{pk}/"), Some(&fields)).await?;
        Self::decode(v)
    }

    /// Read–merge–write of attributes (PATCH replaces them wholesale).
    pub async fn merge_attributes(&self, user: &AkUser, extra: Map<String, Value>) -> Result<AkUser, UpstreamError> {
        let mut attrs = user.attributes.clone();
        attrs.extend(extra);
        self.patch_user(user.pk, json!({ "attributes": attrs })).await
    }

    /// Marks the password as one the user must change at next sign-in.
    pub async fn mark_password_expired(&self, user: &AkUser) -> Result<AkUser, UpstreamError> {
        let mut m = Map::new();
        m.insert(PASSWORD_CHANGE_REQUIRED.into(), json!(true));
        self.merge_attributes(user, m).await
    }

    pub async fn set_active(&self, pk: i64, active: bool) -> Result<AkUser, UpstreamError> {
        self.patch_user(pk, json!({ "is_active": active })).await
    }

    pub async fn delete_user(&self, pk: i64) -> Result<(), UpstreamError> {
        self.call("DELETE", &format!("/core/users/{pk}/"), None).await.map(|_| ())
    }

    pub async fn set_password(&self, pk: i64, password: &str) -> Result<(), UpstreamError> {
        self.call("POST", &format!("/core/users/{pk}/set_password/"), Some(&json!({ "password": password }))).await.map(|_| ())
    }

    /// A single-use recovery link, or `None` when the brand has no
    /// recovery flow (Authentik's 400 "No recovery flow set.").
    pub async fn recovery_link(&self, pk: i64) -> Result<Option<String>, UpstreamError> {
        match self.call("POST", &format!("/core/users/{pk}/recovery/"), Some(&json!({}))).await {
            Ok((_, v)) => match v.get("link").and_then(Value::as_str) {
                Some(l) if !l.is_empty() => Ok(Some(l.to_owned())),
                _ => Err(UpstreamError::new(System::Authentik, UpstreamFailure::BadResponse("recovery answer without a link".into()))),
            },
            Err(e)
                if e.status() == Some(400)
                    && matches!(&e.failure, UpstreamFailure::Status { reason, .. } if reason.contains("No recovery flow")) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub async fn find_group(&self, name: &str) -> Result<Option<AkGroup>, UpstreamError> {
        let (_, v) = self.call("GET", &format!("/core/groups/?name={}&include_users=false", query_escape(name)), None).await?;
        let groups: Vec<AkGroup> = Self::decode(v.get("results").cloned().unwrap_or(Value::Array(vec![])))?;
        Ok(groups.into_iter().find(|g| g.name == name))
    }

    /// Finds the group by name or creates it; a concurrent creation (the
    /// name is taken) is resolved by reading it again.
    pub async fn ensure_group(&self, name: &str, attributes: Value) -> Result<AkGroup, UpstreamError> {
        if let Some(g) = self.find_group(name).await? {
            return Ok(g);
        }
        match self.call("POST", "/core/groups/", Some(&json!({ "name": name, "attributes": attributes }))).await {
            Ok((_, v)) => Self::decode(v),
            Err(e) if e.is_taken() => self.find_group(name).await?.ok_or(e),
            Err(e) => Err(e),
        }
    }

    pub async fn add_to_group(&self, group: &str, pk: i64) -> Result<(), UpstreamError> {
        self.call("POST", &format!("/core/groups/{group}/add_user/"), Some(&json!({ "pk": pk }))).await.map(|_| ())
    }

    pub async fn remove_from_group(&self, group: &str, pk: i64) -> Result<(), UpstreamError> {
        self.call("POST", &format!("/core/groups/{group}/remove_user/"), Some(&json!({ "pk": pk }))).await.map(|_| ())
    }

    /// The uuids of every session of a user, all pages (Authentik filters
    /// by username only, so the owner's pk is checked too). The first page
    /// says how many there are; the others are read concurrently.
    pub async fn list_sessions(&self, user: &AkUser) -> Result<Vec<String>, UpstreamError> {
        let page = |n: u64| {
            let path = format!("/core/authenticated_sessions/?user__username={}&page_size=100&page={n}", query_escape(&user.username));
            async move { self.call("GET", &path, None).await.map(|(_, v)| v) }
        };
        let first = page(1).await?;
        let pages = first.pointer("/pagination/total_pages").and_then(Value::as_u64).unwrap_or(1);
        // Every page is awaited before an error is answered: no call is
        // left in flight (see `ops`, "joins").
        let rest = futures::future::join_all((2..=pages).map(page)).await.into_iter().collect::<Result<Vec<_>, _>>()?;
        let mut uuids = Vec::new();
        for v in std::iter::once(&first).chain(&rest) {
            // A listing without results is not "no sessions".
            let results = v.get("results").and_then(Value::as_array).ok_or_else(|| {
                UpstreamError::new(System::Authentik, UpstreamFailure::BadResponse("session listing without results".into()))
            })?;
            uuids.extend(
                results
                    .iter()
                    .filter(|s| s.get("user").and_then(Value::as_i64) == Some(user.pk))
                    .filter_map(|s| s.get("uuid").and_then(Value::as_str).map(str::to_owned)),
            );
        }
        Ok(uuids)
    }

    /// Ends one session; an unknown uuid (`404`) has already ended.
    pub async fn delete_session(&self, uuid: &str) -> Result<(), UpstreamError> {
        match self.call("DELETE", &format!("/core/authenticated_sessions/{}/", query_escape(uuid)), None).await {
            Err(e) if e.status() == Some(404) => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// Ends every session of a user; returns how many.
    pub async fn terminate_sessions(&self, pk: i64) -> Result<u64, UpstreamError> {
        let (_, v) = self.call("DELETE", &format!("/core/authenticated_sessions/bulk_delete/?user_pks={pk}"), None).await?;
        Ok(v.get("deleted").and_then(Value::as_u64).unwrap_or(0))
    }

    /// Confirmed MFA devices of a user (static recovery codes count when confirmed).
    pub async fn count_authenticators(&self, pk: i64) -> Result<usize, UpstreamError> {
        let (_, v) = self.call("GET", &format!("/authenticators/admin/all/?user={pk}"), None).await?;
        let devices = v
            .as_array()
            .ok_or_else(|| UpstreamError::new(System::Authentik, UpstreamFailure::BadResponse("devices: not a list".into())))?;
        Ok(devices.iter().filter(|d| d.get("confirmed").and_then(Value::as_bool) == Some(true)).count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(query_escape("a+b@x.dk"), "a%2Bb%40x.dk");
    }

    #[test]
    fn drf_reasons() {
        assert_eq!(reason(&json!({"detail": "Not found."}), b""), "Not found.");
        assert_eq!(reason(&json!({"non_field_errors": "No recovery flow set."}), b""), "No recovery flow set.");
        assert_eq!(reason(&json!({"username": ["This field must be unique."]}), b""), "username: This field must be unique.");
        assert_eq!(reason(&Value::Null, b"<html>oops</html>"), "<html>oops</html>");
    }

    fn create_answered(status: u16, body: Value) -> Result<AkUser, UpstreamError> {
        let http = crate::canned::Canned::new(|_, _| (status, body.clone()));
        let cfg = crate::canned::config();
        let user = NewUser { username: "jane@acme.test", email: "jane@acme.test", name: "Jane", groups: vec![], attributes: json!({}) };
        futures::executor::block_on(Authentik::new(&http, &cfg).create_user(user))
    }

    #[test]
    fn a_taken_username_is_a_uniqueness_refusal() {
        for body in [
            json!({"username": ["This field must be unique."]}),
            json!({"username": ["A user with that username already exists."]}),
            json!({"name": ["Group with this name already exists."]}),
        ] {
            let e = create_answered(400, body.clone()).unwrap_err();
            assert!(e.is_taken(), "{body} is a uniqueness refusal: {e:?}");
            assert_eq!(crate::problem::Error::from(e).status(), 409);
        }
        let e = create_answered(400, json!({"username": ["This field must be unique."]})).unwrap_err();
        assert_eq!(e.to_string(), "Authentik refused a duplicate: username: This field must be unique.");
    }

    #[test]
    fn other_400s_are_not_uniqueness_refusals() {
        for body in [
            json!({"username": ["This field is required."], "name": ["This field is required."]}),
            json!({"username": ["Ensure this field has no more than 150 characters."]}),
            json!({"email": ["Enter a valid email address."]}),
            json!({"non_field_errors": "No recovery flow set."}),
            json!({"non_field_errors": ["User already exists."]}),
            json!({"detail": "A user with that username already exists."}),
            Value::Null,
        ] {
            let e = create_answered(400, body.clone()).unwrap_err();
            assert!(!e.is_taken(), "{body} is not a uniqueness refusal");
            assert_eq!(e.status(), Some(400));
            assert_eq!(crate::problem::Error::from(e).status(), 502);
        }
        // The same text with another status is no refusal either.
        let e = create_answered(500, json!({"username": ["This field must be unique."]})).unwrap_err();
        assert!(!e.is_taken());
    }
}
