//! Typed client of Stalwart's 0.16 JMAP management API
//! (docs/upstreams.md, Stalwart). "Not configured" when its variables are
//! empty: mail provisioning is then skipped, as in the seed.

use serde_json::{json, Value};

use crate::config::UpstreamConfig;
use crate::ports::Http;
use crate::problem::{System, UpstreamError, UpstreamFailure};
use crate::retry::retried;
use crate::upstream::{excerpt, status_error, Call};

const USING: [&str; 2] = ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"];

pub struct Stalwart<'a, H> {
    http: &'a H,
    cfg: &'a UpstreamConfig,
}

pub struct NewMailbox<'a> {
    /// The `x:Domain` id (`Domain.stalwartId`).
    pub domain_id: &'a str,
    pub local_part: &'a str,
    pub full_name: &'a str,
    pub password: &'a str,
}

fn failed(reason: String) -> UpstreamError {
    UpstreamError::new(System::Stalwart, UpstreamFailure::Status { status: 200, reason })
}

/// A SetError as one line: its type and description.
fn describe(e: &Value) -> String {
    let kind = e.get("type").and_then(Value::as_str).unwrap_or("error");
    match e.get("description").and_then(Value::as_str) {
        Some(d) => format!("{kind}: {d}"),
        None => kind.to_owned(),
    }
}

/// A SetError as the call's error. An address that is already some
/// account's primary address or alias is Stalwart's uniqueness refusal:
/// `primaryKeyViolation` on `email` (`x:*` objects never use JMAP's
/// `alreadyExists`); the standard `alreadyExists`
/// is taken as the same should a method use it.
fn set_error(e: &Value) -> UpstreamError {
    let kind = e.get("type").and_then(Value::as_str);
    let on_email = e.get("properties").and_then(Value::as_array).is_some_and(|p| p.iter().any(|p| p == "email"));
    match kind {
        Some("primaryKeyViolation") if on_email => UpstreamError::taken(System::Stalwart, describe(e)),
        Some("alreadyExists") => UpstreamError::taken(System::Stalwart, describe(e)),
        _ => failed(describe(e)),
    }
}

impl<'a, H: Http> Stalwart<'a, H> {
    pub fn new(http: &'a H, cfg: &'a UpstreamConfig) -> Self {
        Self { http, cfg }
    }

    /// One JMAP request; returns each method call's arguments, after
    /// checking the HTTP status and every method-level `error`.
    async fn request(&self, using: &[&str], calls: Vec<(&str, Value)>) -> Result<Vec<Value>, UpstreamError> {
        let method_calls: Vec<Value> = calls.iter().enumerate().map(|(i, (m, a))| json!([m, a, format!("c{i}")])).collect();
        let body = json!({ "using": using, "methodCalls": method_calls });
        let resp = Call {
            system: System::Stalwart,
            method: "POST",
            url: format!("{}/jmap/", self.cfg.url),
            headers: vec![("authorization".into(), self.cfg.authorization.clone())],
            body: Some(&body),
            timeout: self.cfg.timeout,
        }
        .send(self.http)
        .await?;
        let parsed: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        if resp.status != 200 {
            let reason = parsed.get("detail").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| excerpt(&resp.body));
            return Err(status_error(System::Stalwart, &resp, reason));
        }
        let responses = parsed.get("methodResponses").and_then(Value::as_array).filter(|r| r.len() == calls.len()).ok_or_else(|| {
            UpstreamError::new(System::Stalwart, UpstreamFailure::BadResponse("methodResponses do not match the calls".into()))
        })?;
        responses
            .iter()
            .map(|r| match r.get(0).and_then(Value::as_str) {
                Some("error") => Err(failed(describe(&r[1]))),
                _ => Ok(r[1].clone()),
            })
            .collect()
    }

    /// One method call with the management capability.
    async fn call(&self, method: &str, args: Value) -> Result<Value, UpstreamError> {
        Ok(self.request(&USING, vec![(method, args)]).await?.remove(0))
    }

    /// Applies one patch to one account; a SetError is the call's error.
    async fn update(&self, id: &str, patch: Value) -> Result<(), UpstreamError> {
        let out = self.call("x:Account/set", json!({ "update": { id: patch } })).await?;
        match out.get("notUpdated").and_then(|n| n.get(id)) {
            Some(e) => Err(set_error(e)),
            None => Ok(()),
        }
    }

    /// Reads some properties of one account (`notFound` is an error).
    async fn get(&self, id: &str, properties: &[&str]) -> Result<Value, UpstreamError> {
        let out = self.call("x:Account/get", json!({ "ids": [id], "properties": properties })).await?;
        out.get("list").and_then(|l| l.get(0)).cloned().ok_or_else(|| failed(format!("notFound: account {id}")))
    }

    /// [`Self::create_mailbox`] at `email` (the local part at the domain's
    /// name). When no answer came (a timeout, a broken connection), the
    /// create may have happened: the account at `email` is looked up and
    /// taken as this create's, so it is recorded (or undone) rather than
    /// left without a document. An address in use is refused with
    /// `primaryKeyViolation`, so only a concurrent create of the very same
    /// address could make it another's.
    pub async fn create_mailbox_at(&self, m: NewMailbox<'_>, email: &str) -> Result<String, UpstreamError> {
        match self.create_mailbox(m).await {
            // The lookup is tried again while it fails: giving up would
            // leave a mailbox that did get created without its document.
            Err(e) if e.outcome_unknown() => {
                match retried("stalwart: finding a mailbox whose create lost its answer", || self.find_account_by_email(email)).await {
                    Ok(Some(account)) => Ok(account.id),
                    _ => Err(e),
                }
            }
            r => r,
        }
    }

    /// Creates the mailbox account; returns its id (`User.stalwartAccountId`).
    pub async fn create_mailbox(&self, m: NewMailbox<'_>) -> Result<String, UpstreamError> {
        let args = json!({ "create": { "n1": {
            "@type": "User",
            "name": m.local_part,
            "domainId": m.domain_id,
            "description": m.full_name,
            "credentials": { "0": { "@type": "Password", "secret": m.password } },
            "roles": { "@type": "User" },
            "permissions": { "@type": "Inherit" },
        } } });
        let out = self.call("x:Account/set", args).await?;
        if let Some(err) = out.get("notCreated").and_then(|n| n.get("n1")) {
            return Err(set_error(err));
        }
        out.pointer("/created/n1/id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| UpstreamError::new(System::Stalwart, UpstreamFailure::BadResponse("created without an id".into())))
    }

    /// Deletes the account; an unknown id counts as already gone.
    pub async fn delete_mailbox(&self, id: &str) -> Result<(), UpstreamError> {
        let out = self.call("x:Account/set", json!({ "destroy": [id] })).await?;
        match out.get("notDestroyed").and_then(|n| n.get(id)) {
            Some(e) if e.get("type").and_then(Value::as_str) != Some("notFound") => Err(set_error(e)),
            _ => Ok(()),
        }
    }

    /// The key of the account's Password credential (`0` when it has none),
    /// read ahead of setting it: replacing `credentials` would drop app
    /// passwords.
    pub async fn password_key(&self, id: &str) -> Result<String, UpstreamError> {
        let acc = self.get(id, &["credentials"]).await?;
        Ok(acc
            .get("credentials")
            .and_then(Value::as_object)
            .and_then(|c| c.iter().find(|(_, v)| v.get("@type").and_then(Value::as_str) == Some("Password")).map(|(k, _)| k.clone()))
            .unwrap_or_else(|| "0".into()))
    }

    /// Sets the secret of the credential under `key` ([`Self::password_key`]).
    pub async fn set_password_at(&self, id: &str, key: &str, password: &str) -> Result<(), UpstreamError> {
        self.update(id, json!({ format!("credentials/{key}/secret"): password })).await
    }

    /// Sets the mailbox password.
    pub async fn set_password(&self, id: &str, password: &str) -> Result<(), UpstreamError> {
        let key = self.password_key(id).await?;
        self.set_password_at(id, &key, password).await
    }

    pub async fn set_display_name(&self, id: &str, name: &str) -> Result<(), UpstreamError> {
        self.update(id, json!({ "description": name })).await
    }

    /// The account's `permissions`, read ahead of changing them.
    pub async fn permissions(&self, id: &str) -> Result<Value, UpstreamError> {
        let acc = self.get(id, &["permissions"]).await?;
        Ok(acc.get("permissions").cloned().unwrap_or(json!({ "@type": "Inherit" })))
    }

    /// Suspends or resumes sign-in by the `authenticate` permission
    /// (accounts have no status field), given the account's current
    /// `perms` ([`Self::permissions`]). The password is never touched.
    pub async fn set_suspended_from(&self, id: &str, perms: &Value, suspended: bool) -> Result<(), UpstreamError> {
        let kind = perms.get("@type").and_then(Value::as_str).unwrap_or("Inherit");
        let patch = match (kind, suspended) {
            ("Inherit", true) => {
                json!({ "permissions": { "@type": "Merge", "enabledPermissions": {}, "disabledPermissions": { "authenticate": true } } })
            }
            ("Inherit", false) => return Ok(()),
            (_, true) => json!({ "permissions/disabledPermissions/authenticate": true }),
            (_, false) => {
                // A Merge that existed only for the suspension goes back to Inherit.
                let only_ours = kind == "Merge"
                    && perms.get("enabledPermissions").and_then(Value::as_object).is_none_or(|m| m.is_empty())
                    && perms
                        .get("disabledPermissions")
                        .and_then(Value::as_object)
                        .is_some_and(|m| m.len() == 1 && m.contains_key("authenticate"));
                if only_ours {
                    json!({ "permissions": { "@type": "Inherit" } })
                } else {
                    json!({ "permissions/disabledPermissions/authenticate": null })
                }
            }
        };
        self.update(id, patch).await
    }

    /// Suspends or resumes sign-in.
    pub async fn set_suspended(&self, id: &str, suspended: bool) -> Result<(), UpstreamError> {
        let perms = self.permissions(id).await?;
        self.set_suspended_from(id, &perms, suspended).await
    }

    /// Puts back permissions read by [`Self::permissions`], exactly.
    pub async fn restore_permissions(&self, id: &str, perms: &Value) -> Result<(), UpstreamError> {
        self.update(id, json!({ "permissions": perms })).await
    }

    /// Every user account with its addresses, paged by position.
    pub async fn list_accounts_with_aliases(&self) -> Result<Vec<Account>, UpstreamError> {
        let mut out = Vec::new();
        loop {
            let query = json!({ "filter": { "@type": "User" }, "sort": [{ "property": "id", "isAscending": true }],
                "position": out.len(), "limit": 500, "calculateTotal": true });
            let get = json!({ "#ids": { "resultOf": "c0", "name": "x:Account/query", "path": "/ids" },
                "properties": ["name", "domainId", "emailAddress", "aliases", "description"] });
            let r = self.request(&USING, vec![("x:Account/query", query), ("x:Account/get", get)]).await?;
            let total = r[0].get("total").and_then(Value::as_u64).unwrap_or(0) as usize;
            let page: Vec<Account> =
                r[1].get("list").and_then(Value::as_array).map(|l| l.iter().map(Account::from_json).collect()).unwrap_or_default();
            let empty = page.is_empty();
            out.extend(page);
            if empty || out.len() >= total {
                return Ok(out);
            }
        }
    }

    /// The account whose primary address or enabled alias is `email`.
    pub async fn find_account_by_email(&self, email: &str) -> Result<Option<Account>, UpstreamError> {
        let session = Call {
            system: System::Stalwart,
            method: "GET",
            url: format!("{}/jmap/session", self.cfg.url),
            headers: vec![("authorization".into(), self.cfg.authorization.clone())],
            body: None,
            timeout: self.cfg.timeout,
        }
        .send(self.http)
        .await?;
        if session.status != 200 {
            return Err(status_error(System::Stalwart, &session, excerpt(&session.body)));
        }
        let session: Value = serde_json::from_slice(&session.body).unwrap_or(Value::Null);
        let account = session.pointer("/primaryAccounts/urn:ietf:params:jmap:principals").cloned().unwrap_or(Value::Null);
        let using = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:principals", "urn:stalwart:jmap"];
        let query = json!({ "accountId": account, "filter": { "email": email.to_lowercase() } });
        let get = json!({ "#ids": { "resultOf": "c0", "name": "Principal/query", "path": "/ids" },
            "properties": ["@type", "name", "domainId", "emailAddress", "aliases", "description"] });
        let r = self.request(&using, vec![("Principal/query", query), ("x:Account/get", get)]).await?;
        Ok(r[1]
            .get("list")
            .and_then(Value::as_array)
            .and_then(|l| l.iter().find(|a| a.get("@type").and_then(Value::as_str) == Some("User")))
            .map(Account::from_json))
    }

    /// The account with its addresses and the `x:Account` state it was read
    /// at, or `None` when Stalwart has no such account.
    pub async fn account(&self, id: &str) -> Result<Option<(Account, String)>, UpstreamError> {
        let out = self.call("x:Account/get", json!({ "ids": [id], "properties": ACCOUNT_PROPERTIES })).await?;
        Ok(read_back(&out))
    }

    /// Applies `patch` to account `id` only if no account changed since
    /// `state` (JMAP `ifInState`), and reads the account back in the same
    /// request. `Ok(None)`: the state moved on, so whatever was decided on
    /// the old read must be decided again on a fresh one.
    pub async fn update_in_state(&self, id: &str, state: &str, patch: Value) -> Result<Option<(Account, String)>, UpstreamError> {
        let set = json!({ "ifInState": state, "update": { id: patch } });
        let get = json!({ "ids": [id], "properties": ACCOUNT_PROPERTIES });
        let r = match self.request(&USING, vec![("x:Account/set", set), ("x:Account/get", get)]).await {
            Err(e) if is_state_mismatch(&e) => return Ok(None),
            r => r?,
        };
        if let Some(e) = r[0].get("notUpdated").and_then(|n| n.get(id)) {
            return Err(set_error(e));
        }
        read_back(&r[1]).map(Some).ok_or_else(|| failed(format!("notFound: account {id}")))
    }

    /// Adds the alias `local@domain_id` under the next free list key.
    pub async fn add_alias(&self, id: &str, local_part: &str, domain_id: &str) -> Result<(), UpstreamError> {
        let acc = self.get(id, &["aliases"]).await?;
        let next = acc
            .get("aliases")
            .and_then(Value::as_object)
            .map(|m| m.keys().filter_map(|k| k.parse::<u32>().ok()).max().map_or(0, |k| k + 1))
            .unwrap_or(0);
        self.update(id, json!({ format!("aliases/{next}"): { "name": local_part, "domainId": domain_id } })).await
    }

    /// Removes the alias `local@domain_id`; `false` when there was none.
    pub async fn remove_alias(&self, id: &str, local_part: &str, domain_id: &str) -> Result<bool, UpstreamError> {
        let acc = self.get(id, &["aliases"]).await?;
        let key = acc.get("aliases").and_then(Value::as_object).and_then(|m| {
            m.iter()
                .find(|(_, a)| {
                    a.get("name").and_then(Value::as_str) == Some(local_part)
                        && a.get("domainId").and_then(Value::as_str) == Some(domain_id)
                })
                .map(|(k, _)| k.clone())
        });
        match key {
            Some(k) => self.update(id, json!({ format!("aliases/{k}"): null })).await.map(|()| true),
            None => Ok(false),
        }
    }
}

/// What the alias views read of an account.
const ACCOUNT_PROPERTIES: [&str; 5] = ["name", "domainId", "emailAddress", "aliases", "description"];

/// The one account of an `x:Account/get` answer, with the answer's state.
fn read_back(out: &Value) -> Option<(Account, String)> {
    let state = out.get("state").and_then(Value::as_str).unwrap_or_default().to_owned();
    out.get("list").and_then(|l| l.get(0)).map(|a| (Account::from_json(a), state))
}

/// A method-level `stateMismatch` (an `ifInState` that no longer holds).
/// [`Stalwart::request`] turns method errors into a reason that starts with
/// the JMAP error type ([`describe`]).
fn is_state_mismatch(e: &UpstreamError) -> bool {
    matches!(&e.failure, UpstreamFailure::Status { status: 200, reason } if
        reason == "stateMismatch" || reason.starts_with("stateMismatch:"))
}

/// A mailbox account and its addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub email_address: String,
    /// `(local part, domain id)` of each alias.
    pub aliases: Vec<(String, String)>,
    /// The list key of each of `aliases`, in the same order (a change
    /// addresses an alias by its key).
    pub alias_keys: Vec<u32>,
}

impl Account {
    /// The list key of the alias `local@domain_id`, if the account has it.
    pub fn alias_key(&self, local: &str, domain_id: &str) -> Option<u32> {
        self.aliases.iter().zip(&self.alias_keys).find(|((n, d), _)| n == local && d == domain_id).map(|(_, k)| *k)
    }

    /// The key a new alias takes: one past the highest (as the server does).
    pub fn next_alias_key(&self) -> u32 {
        self.alias_keys.iter().max().map_or(0, |k| k + 1)
    }
}

impl Account {
    fn from_json(v: &Value) -> Account {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let mut aliases: Vec<(u32, String, String)> = v
            .get("aliases")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, a)| {
                        let f = |n: &str| a.get(n).and_then(Value::as_str).unwrap_or_default().to_owned();
                        (k.parse().unwrap_or(u32::MAX), f("name"), f("domainId"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        aliases.sort();
        Account {
            id: s("id"),
            name: s("name"),
            domain_id: s("domainId"),
            email_address: s("emailAddress"),
            alias_keys: aliases.iter().map(|(k, _, _)| *k).collect(),
            aliases: aliases.into_iter().map(|(_, n, d)| (n, d)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canned::{config, Canned};

    /// `x:Account/set` answers with `out`; `x:Account/get` with one account.
    fn jmap(out: Value) -> impl Fn(&str, &str) -> (u16, Value) {
        move |_, _| (200, json!({ "methodResponses": [["x:Account/set", out.clone(), "c0"]] }))
    }

    fn create(out: Value) -> Result<String, UpstreamError> {
        let http = Canned::new(jmap(out));
        let cfg = config();
        let m = NewMailbox { domain_id: "b", local_part: "jane", full_name: "Jane", password: "p" };
        futures::executor::block_on(Stalwart::new(&http, &cfg).create_mailbox(m))
    }

    fn pkv() -> Value {
        json!({ "type": "primaryKeyViolation", "description": "Email address already in use", "properties": ["email"],
            "objectId": { "object": "Account", "id": "d" } })
    }

    #[test]
    fn a_taken_address_is_a_uniqueness_refusal() {
        let e = create(json!({ "notCreated": { "n1": pkv() } })).unwrap_err();
        assert!(e.is_taken(), "{e:?}");
        assert_eq!(crate::problem::Error::from(e).status(), 409);
        let e = create(json!({ "notCreated": { "n1": { "type": "alreadyExists", "existingId": "d" } } })).unwrap_err();
        assert!(e.is_taken(), "{e:?}");
        assert_eq!(create(json!({ "created": { "n1": { "id": "e" } } })).unwrap(), "e");
    }

    #[test]
    fn other_set_errors_are_not_uniqueness_refusals() {
        for err in [
            json!({ "type": "invalidProperties", "description": "Password must be at least 8 characters long.", "properties": ["secret"] }),
            json!({ "type": "invalidForeignKey", "objectId": { "object": "Domain", "id": "zz" } }),
            json!({ "type": "invalidPatch", "description": "Invalid email local part", "properties": ["name"] }),
            // A duplicate on another key (a domain's name) is not an address.
            json!({ "type": "primaryKeyViolation", "properties": ["name"] }),
        ] {
            let e = create(json!({ "notCreated": { "n1": err.clone() } })).unwrap_err();
            assert!(!e.is_taken(), "{err}");
            assert_eq!(crate::problem::Error::from(e).status(), 502);
        }
    }

    #[test]
    fn a_write_in_a_moved_state_is_decided_again_not_failed() {
        let answer = |set: Value| {
            let http = Canned::new(move |_, _| {
                let acc = json!({ "id": "d", "name": "jane", "domainId": "b", "emailAddress": "jane@acme.test",
                    "aliases": { "4": { "name": "b2", "domainId": "b" }, "0": { "name": "a1", "domainId": "c" } } });
                (
                    200,
                    json!({ "methodResponses": [set.clone(), ["x:Account/get", { "state": "s9", "list": [acc], "notFound": [] }, "c1"]] }),
                )
            });
            let cfg = config();
            futures::executor::block_on(Stalwart::new(&http, &cfg).update_in_state(
                "d",
                "s1",
                json!({ "aliases/5": { "name": "x", "domainId": "b" } }),
            ))
        };
        let moved = answer(json!(["error", { "type": "stateMismatch" }, "c0"]));
        assert_eq!(moved, Ok(None));
        let written = answer(json!(["x:Account/set", { "updated": { "d": null } }, "c0"])).unwrap().unwrap();
        assert_eq!(written.1, "s9");
        // Aliases in key order, each with its key.
        assert_eq!(written.0.aliases, vec![("a1".to_owned(), "c".to_owned()), ("b2".to_owned(), "b".to_owned())]);
        assert_eq!((written.0.alias_key("b2", "b"), written.0.next_alias_key()), (Some(4), 5));
        assert!(answer(json!(["x:Account/set", { "notUpdated": { "d": pkv() } }, "c0"])).unwrap_err().is_taken());
        // Other method errors stay failures.
        assert!(answer(json!(["error", { "type": "forbidden" }, "c0"])).is_err());
    }

    #[test]
    fn an_alias_already_in_use_is_a_uniqueness_refusal() {
        let add = |not_updated: Value| {
            let http = Canned::new(move |_, _| {
                (200, json!({ "methodResponses": [["x:Account/set", { "notUpdated": { "d": not_updated.clone() } }, "c0"]] }))
            });
            let cfg = config();
            futures::executor::block_on(
                Stalwart::new(&http, &cfg).update("d", json!({ "aliases/1": { "name": "sales", "domainId": "b" } })),
            )
        };
        assert!(add(pkv()).unwrap_err().is_taken());
        assert!(!add(json!({ "type": "invalidForeignKey", "objectId": { "object": "Domain", "id": "zz" } })).unwrap_err().is_taken());
    }
}
