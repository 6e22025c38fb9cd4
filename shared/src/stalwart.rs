//! Typed client of Stalwart's 0.16 JMAP management API
//! (`contracts/stalwart.md`). "Not configured" when its variables are
//! empty: mail provisioning is then skipped, as in the seed.

use serde_json::{json, Value};

use crate::config::UpstreamConfig;
use crate::ports::Http;
use crate::problem::{System, UpstreamError, UpstreamFailure};
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
fn set_error(e: &Value) -> String {
    let kind = e.get("type").and_then(Value::as_str).unwrap_or("error");
    match e.get("description").and_then(Value::as_str) {
        Some(d) => format!("{kind}: {d}"),
        None => kind.to_owned(),
    }
}

impl<'a, H: Http> Stalwart<'a, H> {
    pub fn new(http: &'a H, cfg: &'a UpstreamConfig) -> Self {
        Self { http, cfg }
    }

    /// One JMAP request of one method call; returns that call's arguments,
    /// after checking the HTTP status and the method-level `error`.
    async fn call(&self, method: &str, args: Value) -> Result<Value, UpstreamError> {
        let body = json!({ "using": USING, "methodCalls": [[method, args, "c0"]] });
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
        let response = parsed
            .get("methodResponses")
            .and_then(|r| r.get(0))
            .ok_or_else(|| UpstreamError::new(System::Stalwart, UpstreamFailure::BadResponse("no methodResponses".into())))?;
        if response.get(0).and_then(Value::as_str) == Some("error") {
            return Err(failed(set_error(&response[1])));
        }
        Ok(response[1].clone())
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
            return Err(failed(set_error(err)));
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
            Some(e) if e.get("type").and_then(Value::as_str) != Some("notFound") => Err(failed(set_error(e))),
            _ => Ok(()),
        }
    }
}
