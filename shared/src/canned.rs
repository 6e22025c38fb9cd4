//! Test support: an [`Http`] that answers every call from a script, so a
//! client's reading of one upstream answer can be unit-tested natively.

use std::cell::RefCell;

use serde_json::Value;

use crate::config::{UpstreamConfig, DEFAULT_TIMEOUT};
use crate::ports::{Http, InboundResponse, OutboundRequest, TransportError};

/// Answers `(method, path)` with `(status, body)`; records each call.
pub struct Canned<F: Fn(&str, &str) -> (u16, Value)> {
    answer: F,
    pub calls: RefCell<Vec<(String, String)>>,
}

impl<F: Fn(&str, &str) -> (u16, Value)> Canned<F> {
    pub fn new(answer: F) -> Self {
        Self { answer, calls: RefCell::default() }
    }
}

impl<F: Fn(&str, &str) -> (u16, Value)> Http for Canned<F> {
    async fn send(&self, req: OutboundRequest) -> Result<InboundResponse, TransportError> {
        let path = req.url.strip_prefix(CONFIG_URL).unwrap_or(&req.url).to_owned();
        self.calls.borrow_mut().push((req.method.to_owned(), path.clone()));
        let (status, body) = (self.answer)(req.method, &path);
        let body = if body.is_null() { Vec::new() } else { serde_json::to_vec(&body).expect("JSON serialises") };
        Ok(InboundResponse { status, headers: vec![], body })
    }
}

const CONFIG_URL: &str = "http://upstream.test";

/// The configuration of an upstream at [`CONFIG_URL`].
pub fn config() -> UpstreamConfig {
    UpstreamConfig { url: CONFIG_URL.into(), authorization: "Bearer t".into(), timeout: DEFAULT_TIMEOUT }
}
