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

#[derive(Clone, Debug, Default)]
pub struct InboundResponse {
    pub status: u16,
    /// Names lower-cased, as HTTP/2 and `wasi:http` give them.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl InboundResponse {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
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

/// A small store that outlives the request (Spin's key-value store): what
/// a component keeps between instances, each of which lives for one
/// request. Every failure is a plain message: a cache's caller carries on
/// without it.
pub trait KeyValue {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String>;
}

/// A [`KeyValue`] in memory, for native tests. `failing` makes every call
/// fail, as an unreachable store.
#[derive(Default)]
pub struct MemoryKeyValue {
    pub entries: std::cell::RefCell<std::collections::HashMap<String, Vec<u8>>>,
    pub failing: std::cell::Cell<bool>,
}

impl KeyValue for MemoryKeyValue {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        if self.failing.get() {
            return Err("the store is unavailable".into());
        }
        Ok(self.entries.borrow().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        if self.failing.get() {
            return Err("the store is unavailable".into());
        }
        self.entries.borrow_mut().insert(key.to_owned(), value.to_vec());
        Ok(())
    }
}

impl<K: KeyValue + ?Sized> KeyValue for std::rc::Rc<K> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        (**self).get(key)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        (**self).set(key, value)
    }
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
