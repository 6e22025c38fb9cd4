//! Typed client of OCIS's LibreGraph users API (docs/upstreams.md, OCIS).
//! Account creation is deferred (reported, not done) when OCIS is not
//! configured or creates accounts itself at first sign-in.

use serde_json::{json, Value};

use crate::config::UpstreamConfig;
use crate::ports::Http;
use crate::problem::{System, UpstreamError, UpstreamFailure};
use crate::retry::retried;
use crate::upstream::{excerpt, status_error, Call};

/// What `ensure_user` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ensured {
    /// This request created the account.
    Created(String),
    /// The account already existed (`409`), looked up by username.
    Existing(String),
}

pub struct Ocis<'a, H> {
    http: &'a H,
    cfg: &'a UpstreamConfig,
}

fn reason(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| excerpt(body))
}

impl<'a, H: Http> Ocis<'a, H> {
    pub fn new(http: &'a H, cfg: &'a UpstreamConfig) -> Self {
        Self { http, cfg }
    }

    async fn call(&self, method: &'static str, path: &str, body: Option<&Value>) -> Result<crate::ports::InboundResponse, UpstreamError> {
        Call {
            system: System::Ocis,
            method,
            url: format!("{}/graph/v1.0{path}", self.cfg.url),
            headers: vec![("authorization".into(), self.cfg.authorization.clone())],
            body: body.map(|b| b as _),
            timeout: self.cfg.timeout,
        }
        .send(self.http)
        .await
    }

    fn id_of(resp: &crate::ports::InboundResponse) -> Result<String, UpstreamError> {
        serde_json::from_slice::<Value>(&resp.body)
            .ok()
            .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned))
            .ok_or_else(|| UpstreamError::new(System::Ocis, UpstreamFailure::BadResponse("user without an id".into())))
    }

    /// Creates the user (username = the identity's username, so sign-in
    /// matches it); an existing one is looked up and used.
    pub async fn ensure_user(&self, username: &str, display_name: &str, mail: &str) -> Result<Ensured, UpstreamError> {
        let body = json!({ "onPremisesSamAccountName": username, "displayName": display_name, "mail": mail });
        let resp = match self.call("POST", "/users", Some(&body)).await {
            // No answer: the user may have been created. One found now is
            // taken as this create's (one that existed before would have
            // been refused with 409), so it is recorded or undone, never
            // left without a document.
            // The lookup is tried again while it fails (giving up would
            // leave an account that did get created without its document).
            Err(e) if e.outcome_unknown() => {
                let found = retried("ocis: finding a user whose create lost its answer", || async {
                    let found = self.call("GET", &format!("/users/{}", crate::authentik::query_escape(username)), None).await?;
                    match found.status {
                        200 => Ok(Some(Self::id_of(&found)?)),
                        404 => Ok(None),
                        _ => Err(status_error(System::Ocis, &found, reason(&found.body))),
                    }
                })
                .await;
                return match found {
                    Ok(Some(id)) => Ok(Ensured::Created(id)),
                    _ => Err(e),
                };
            }
            r => r?,
        };
        match resp.status {
            200 | 201 => Ok(Ensured::Created(Self::id_of(&resp)?)),
            409 => {
                let found = self.call("GET", &format!("/users/{}", crate::authentik::query_escape(username)), None).await?;
                if found.status != 200 {
                    return Err(status_error(System::Ocis, &found, reason(&found.body)));
                }
                Ok(Ensured::Existing(Self::id_of(&found)?))
            }
            _ => Err(status_error(System::Ocis, &resp, reason(&resp.body))),
        }
    }

    /// Deletes the user; `404` counts as already gone.
    pub async fn delete_user(&self, id: &str) -> Result<(), UpstreamError> {
        let resp = self.call("DELETE", &format!("/users/{}", crate::authentik::query_escape(id)), None).await?;
        match resp.status {
            204 | 200 | 404 => Ok(()),
            _ => Err(status_error(System::Ocis, &resp, reason(&resp.body))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canned::{config, Canned};

    fn ensure(create: (u16, Value)) -> Result<Ensured, UpstreamError> {
        let http = Canned::new(move |method, _| match method {
            "POST" => create.clone(),
            _ => (200, json!({ "id": "u-existing", "onPremisesSamAccountName": "jane@acme.test" })),
        });
        let cfg = config();
        futures::executor::block_on(Ocis::new(&http, &cfg).ensure_user("jane@acme.test", "Jane", "jane@acme.test"))
    }

    fn graph_error(code: &str, message: &str) -> Value {
        json!({ "error": { "code": code, "message": message, "innererror": { "date": "2026-01-01T00:00:00Z", "request-id": "r" } } })
    }

    #[test]
    fn a_taken_username_is_the_existing_account_never_ours() {
        let found = ensure((409, graph_error("nameAlreadyExists", "a user with that name already exists"))).unwrap();
        // Not `Created`: a saga never deletes an account it did not create.
        assert_eq!(found, Ensured::Existing("u-existing".into()));
        assert_eq!(ensure((201, json!({ "id": "u-new" }))).unwrap(), Ensured::Created("u-new".into()));
    }

    #[test]
    fn other_refusals_are_errors() {
        for (status, body) in
            [(400, graph_error("invalidRequest", "Invalid username")), (405, graph_error("notAllowed", "read-only backend"))]
        {
            let e = ensure((status, body)).unwrap_err();
            assert!(!e.is_taken());
            assert_eq!(e.status(), Some(status));
        }
    }
}
