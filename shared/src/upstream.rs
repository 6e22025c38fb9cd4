//! The one place outbound calls are made: JSON in, JSON out, transport
//! failures turned into typed [`UpstreamError`]s. Never logs bodies (they
//! can hold passwords and tokens).

use serde::Serialize;
use serde_json::Value;

use crate::ports::{Http, InboundResponse, OutboundRequest, TransportError};
use crate::problem::{System, UpstreamError, UpstreamFailure};

/// A JSON request body. Anything `Serialize` is one; the Data API client
/// sends typed bodies whose key order matters (a sort), which a `Value`
/// would re-order alphabetically.
pub trait JsonBody {
    fn to_json(&self) -> Vec<u8>;
}

impl<T: Serialize + ?Sized> JsonBody for T {
    fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("request bodies have string keys and finite numbers")
    }
}

/// A JSON call to one upstream system.
pub struct Call<'a> {
    pub system: System,
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<&'a dyn JsonBody>,
    pub timeout: std::time::Duration,
}

impl Call<'_> {
    pub async fn send<H: Http>(self, http: &H) -> Result<InboundResponse, UpstreamError> {
        let mut headers = self.headers;
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("accept")) {
            headers.push(("accept".into(), "application/json".into()));
        }
        let body = match self.body {
            Some(v) => {
                headers.push(("content-type".into(), "application/json".into()));
                v.to_json()
            }
            None => Vec::new(),
        };
        let req = OutboundRequest { method: self.method, url: self.url, headers, body, timeout: self.timeout };
        http.send(req).await.map_err(|e| {
            UpstreamError::new(
                self.system,
                match e {
                    TransportError::Timeout => UpstreamFailure::Timeout,
                    TransportError::Unreachable(m) => UpstreamFailure::Unreachable(m),
                    TransportError::Denied(m) => UpstreamFailure::Denied(m),
                },
            )
        })
    }
}

/// Parses a JSON body, or says which system sent something else.
pub fn json_body(system: System, resp: &InboundResponse) -> Result<Value, UpstreamError> {
    if resp.body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&resp.body).map_err(|e| UpstreamError::new(system, UpstreamFailure::BadResponse(format!("invalid JSON: {e}"))))
}

/// An upstream error status with the most useful message its body holds.
pub fn status_error(system: System, resp: &InboundResponse, reason: String) -> UpstreamError {
    UpstreamError::new(system, UpstreamFailure::Status { status: resp.status, reason })
}

/// A short, single-line excerpt of an error body for messages.
pub fn excerpt(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 200 {
        s.chars().take(200).collect::<String>() + "…"
    } else if s.is_empty() {
        "(empty body)".into()
    } else {
        s
    }
}
