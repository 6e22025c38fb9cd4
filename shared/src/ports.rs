//! The ports the domain talks through. In a component they are backed by
//! Spin (`crate::spin`); in native unit tests by in-memory fakes.

use std::time::Duration;

/// An outbound HTTP request, fully buffered (our upstream bodies are small).
#[derive(Clone, Debug)]
pub struct OutboundRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Limit on connecting, and on waiting for the first and each next byte.
    pub timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct InboundResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why an outbound call produced no response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportError {
    Timeout,
    /// Connection refused, reset, DNS failure...
    Unreachable(String),
    /// The host would not let this component call that host.
    Denied(String),
}

/// Sends HTTP requests. Not `Send`: a component is single-threaded.
#[allow(async_fn_in_trait)]
pub trait Http {
    async fn send(&self, req: OutboundRequest) -> Result<InboundResponse, TransportError>;
}

/// Reads configuration values (Spin variables). Empty values count as unset.
pub trait Variables {
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Variables for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}
