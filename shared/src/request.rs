//! The inbound side: a buffered request, its route, path parameters taken
//! from the URI by the component's own route pattern, strict JSON bodies
//! (64 KiB cap, unknown fields rejected), and the response.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::problem::Error;

/// Bodies over this get `413`.
pub const MAX_BODY: usize = 64 * 1024;

/// A request as an operation sees it.
#[derive(Clone, Debug)]
pub struct ApiRequest {
    pub method: String,
    /// Path and query, as received.
    pub uri: String,
    pub authorization: Option<String>,
    /// `None` when the body was larger than [`MAX_BODY`] (not kept).
    pub body: Option<Vec<u8>>,
}

impl ApiRequest {
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or("/")
    }

    pub fn query(&self) -> &str {
        self.uri.split_once('?').map(|(_, q)| q).unwrap_or("")
    }

    /// Query parameters, percent-decoded; a repeated key keeps its last value.
    pub fn query_params(&self) -> BTreeMap<String, String> {
        self.query()
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (percent_decode(&k.replace('+', " ")), percent_decode(&v.replace('+', " ")))
            })
            .collect()
    }

    fn body_bytes(&self) -> Result<&[u8], Error> {
        self.body.as_deref().ok_or(Error::PayloadTooLarge)
    }

    /// Parses the JSON body into `T` (whose types reject unknown fields and
    /// wrong types). Every failure is a `400` naming what was wrong.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let bytes = self.body_bytes()?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::bad_request("A JSON body is required."));
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| Error::bad_request(format!("Malformed JSON: {e}")))?;
        if !value.is_object() {
            return Err(Error::bad_request("The body must be a JSON object."));
        }
        serde_json::from_value(value).map_err(|e| Error::bad_request(format!("Invalid body: {e}")))
    }

    /// For routes that take no body: empty or `{}` only.
    pub fn no_body(&self) -> Result<(), Error> {
        let bytes = self.body_bytes()?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(m)) if m.is_empty() => Ok(()),
            _ => Err(Error::bad_request("This route takes no body (send none, or {}).")),
        }
    }
}

/// A component's route: its path pattern (Spin syntax) and the methods it answers.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub pattern: &'static str,
    pub methods: &'static [&'static str],
}

impl Route {
    pub const fn get(pattern: &'static str) -> Route {
        Route { pattern, methods: &["GET"] }
    }

    pub const fn post(pattern: &'static str) -> Route {
        Route { pattern, methods: &["POST"] }
    }

    /// `405` (with the allowed methods) for any other method.
    pub fn check_method(&self, method: &str) -> Result<(), Error> {
        if self.methods.iter().any(|m| m.eq_ignore_ascii_case(method)) {
            Ok(())
        } else {
            Err(Error::MethodNotAllowed(self.methods))
        }
    }

    /// The `:name` segments of `path`, percent-decoded; `None` when the
    /// path does not have the pattern's shape.
    pub fn params(&self, path: &str) -> Option<Params> {
        let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
        let mut pat = self.pattern.split('/');
        let mut seg = path.split('/');
        let mut out = BTreeMap::new();
        loop {
            match (pat.next(), seg.next()) {
                (None, None) => return Some(Params(out)),
                (Some(p), Some(s)) if p.starts_with(':') => {
                    if s.is_empty() {
                        return None;
                    }
                    out.insert(p[1..].to_owned(), percent_decode(s));
                }
                (Some(p), Some(s)) if p == s => {}
                _ => return None,
            }
        }
    }
}

/// Path parameters of one request.
#[derive(Clone, Debug, Default)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or("")
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What an operation answers.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Option<Value>,
}

impl ApiResponse {
    pub fn ok(body: Value) -> Self {
        Self { status: 200, body: Some(body) }
    }
    pub fn created(body: Value) -> Self {
        Self { status: 201, body: Some(body) }
    }
    pub fn no_content() -> Self {
        Self { status: 204, body: None }
    }
}

/// An encoded HTTP answer: status, headers, body bytes.
pub struct Encoded {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Encodes an operation's outcome (success or problem) for the wire.
pub fn encode(outcome: Result<ApiResponse, Error>) -> Encoded {
    match outcome {
        Ok(r) => match r.body {
            Some(v) => Encoded {
                status: r.status,
                headers: vec![("content-type", "application/json; charset=utf-8".into())],
                body: serde_json::to_vec(&v).expect("JSON values always serialise"),
            },
            None => Encoded { status: r.status, headers: vec![], body: vec![] },
        },
        Err(e) => {
            let mut headers = vec![("content-type", "application/problem+json".to_owned())];
            match &e {
                Error::MethodNotAllowed(allowed) => headers.push(("allow", allowed.join(", "))),
                Error::Unauthorized(_) => headers.push(("www-authenticate", "Bearer".into())),
                _ => {}
            }
            let p = e.problem();
            Encoded { status: p.status, headers, body: p.to_json() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn req(body: &str) -> ApiRequest {
        ApiRequest { method: "POST".into(), uri: "/x".into(), authorization: None, body: Some(body.as_bytes().to_vec()) }
    }

    #[test]
    fn params_come_from_the_uri_by_pattern() {
        let r = Route::post("/tenants/:slug/members/:user_id/remove");
        let p = r.params("/tenants/acme/members/65a000000000000000000001/remove").unwrap();
        assert_eq!((p.get("slug"), p.get("user_id")), ("acme", "65a000000000000000000001"));
        assert!(r.params("/tenants/acme/members/remove").is_none());
        assert!(r.params("/tenants//members/x/remove").is_none());
        assert_eq!(Route::get("/users/:subject").params("/users/a%20b").unwrap().get("subject"), "a b");
        assert!(Route::get("/users/me").params("/users/me/").is_some());
    }

    #[test]
    fn methods_other_than_the_route_s_are_405_with_allow() {
        let e = Route::get("/users").check_method("DELETE").unwrap_err();
        let enc = encode(Err(e));
        assert_eq!(enc.status, 405);
        assert!(enc.headers.contains(&("allow", "GET".into())));
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct B {
        name: String,
    }

    #[test]
    fn bodies_are_strict() {
        assert!(req(r#"{"name":"x"}"#).json::<B>().is_ok());
        for bad in ["", "{", r#"{"name":1}"#, r#"{"name":"x","nmae":"y"}"#, "[]", r#""x""#] {
            assert_eq!(req(bad).json::<B>().unwrap_err().status(), 400, "{bad}");
        }
        let big = ApiRequest { body: None, ..req("") };
        assert_eq!(big.json::<B>().unwrap_err().status(), 413);
    }

    #[test]
    fn body_less_routes_take_nothing_or_an_empty_object() {
        assert!(req("").no_body().is_ok());
        assert!(req(" {} ").no_body().is_ok());
        assert_eq!(req(r#"{"a":1}"#).no_body().unwrap_err().status(), 400);
        assert_eq!(req("x").no_body().unwrap_err().status(), 400);
    }

    #[test]
    fn query_params_are_decoded() {
        let r = ApiRequest { uri: "/a?limit=5&before=2026-01-01T00%3A00%3A00Z&x".into(), ..req("") };
        let q = r.query_params();
        assert_eq!(q["limit"], "5");
        assert_eq!(q["before"], "2026-01-01T00:00:00Z");
        assert_eq!(q["x"], "");
    }
}
